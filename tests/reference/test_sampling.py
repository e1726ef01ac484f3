"""MDP-04, PG-03: the shared inverse-CDF sampler of reference.sampling and the batch's record of term."""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.errors import ShapeError
from reference.mdp import from_arrays
from reference.sampling import enumerate_trajectories, inverse_cdf, sample_trajectories

U_MAX = 1.0 - 2.0**-53  # the largest value Generator.random() returns


class ConstantRng:
    """A stand-in for numpy.random.Generator whose uniforms are all ``u`` (the sampler's edge cases)."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self, size: int | None = None) -> float | np.ndarray:
        return self.u if size is None else np.full(size, self.u)


@pytest.mark.parametrize("u", [U_MAX, 0.0])
def test_MDP_04_action_draw_never_picks_a_zero_probability_action(u: float) -> None:
    """The review's row: its cumsum ends a few ulps below 1 after validate_policy's renormalisation, so the old
    rule min(#{cdf < u}, A - 1) picked action 4 (probability 0) for u = 1 - 2^-53. Action 4 pays 99."""
    row = [0.21164685654158605, 0.13726787251951225, 0.24884118622921436, 0.4022440847096875, 0.0]
    p = np.zeros((1, 5, 2))
    p[0, :, 1] = 1.0
    r = np.zeros((1, 5))
    r[0, 4] = 99.0
    mdp = from_arrays(p, r, [1.0], gamma=0.9)
    rng = cast(np.random.Generator, ConstantRng(u))
    tr = sample_trajectories(mdp, np.array([row]), rng=rng, n=3, horizon=1, s0=0)
    assert np.all(np.array(row)[tr.actions[:, 0]] > 0.0)
    np.testing.assert_array_equal(tr.actions[:, 0], 3 if u == U_MAX else 0)
    np.testing.assert_array_equal(tr.rewards, 0.0)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6).filter(lambda w: sum(w) > 0),
       st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=10))
def test_MDP_04_inverse_cdf_is_the_first_cdf_entry_above_u_times_total(w: list[float], us: list[float]) -> None:
    """Against a plain loop over the row (cdf summed left to right, as np.cumsum): the first j with
    cdf(j) > u * cdf(W - 1), or, where u * total rounds up to the total (no such j: e.g. a total of 5e-324, the
    smallest subnormal, where 0.75 * 5e-324 rounds to 5e-324; found by the 'thorough' profile), the last
    positive entry, as inverse_cdf documents; never a zero-weight index."""
    p = np.tile(np.array(w), (len(us), 1))
    got = inverse_cdf(p, np.array(us))
    _, e = math.frexp(max(w))
    ws = [math.ldexp(x, -e) for x in w]  # the documented exact scaling: the largest entry in [1/2, 1)
    for k, u in enumerate(us):
        total = 0.0
        for x in ws:
            total += x
        acc, pick = 0.0, None
        for j, x in enumerate(ws):
            acc += x
            if acc > u * total:
                pick = j
                break
        if pick is None:  # the target rounded up to the row total
            assert u * total >= total
            pick = max(j for j, x in enumerate(w) if x > 0.0)
        assert got[k] == pick and w[pick] > 0.0


def test_MDP_04_action_draws_for_ordinary_seeds_are_the_old_rule() -> None:
    """The shared sampler compares u * (row total) with the cdf, the old action rule u itself; the two differ
    only for u within a few ulps of a cdf boundary. For 10^5 seeded uniforms over 200 random rows (a zero
    entry in each) every draw is the old one, so seeded runs are unchanged."""
    rng = np.random.default_rng(7)
    pi = rng.dirichlet(np.ones(5), size=200)
    pi[np.arange(200), rng.integers(0, 5, size=200)] = 0.0
    pi /= pi.sum(axis=1, keepdims=True)
    rows = rng.integers(0, 200, size=100_000)
    u = rng.random(100_000)
    old = np.minimum((u[:, None] > np.cumsum(pi, axis=1)[rows]).sum(axis=1), 4)
    np.testing.assert_array_equal(inverse_cdf(pi[rows], u), old)


def test_MDP_04_inverse_cdf_checks_its_shapes() -> None:
    with pytest.raises(ShapeError, match="inverse_cdf needs p"):
        inverse_cdf(np.ones(3), np.zeros(1))
    with pytest.raises(ShapeError, match="inverse_cdf needs p"):
        inverse_cdf(np.ones((2, 3)), np.zeros(3))


def test_PG_03_sampled_and_enumerated_batches_record_term() -> None:
    """The batch records the MDP's term (|S+| = term + 1), against which V / Q / theta tables are checked."""
    p = np.zeros((2, 1, 3))
    p[0, 0, 1] = p[1, 0, 2] = 1.0
    mdp = from_arrays(p, np.ones((2, 1)), [1.0, 0.0], gamma=0.9)
    pi = np.ones((3, 1))
    assert enumerate_trajectories(mdp, pi).term == mdp.term == 2
    assert sample_trajectories(mdp, pi, rng=np.random.default_rng(0), n=2, horizon=3).term == 2


def test_PG_03_enumeration_yields_only_trajectories_of_positive_probability() -> None:
    """PG-03 enumerates 'every trajectory of positive probability'. State 0 has three outcomes, one of probability
    0 (reward 5, to term); state 1 has two, one of probability 0 (back to state 0). By hand the positive ones are
    0 -(r=1)-> term with probability 0.5 and 0 -(r=2)-> 1 -(r=3)-> term with probability 0.5: two trajectories,
    weights summing to 1, none with the zero-probability rewards 5 or 7."""
    from reference.mdp import from_outcomes

    mdp = from_outcomes(2, 1, [0, 3, 5], [2, 2, 1, 2, 0], [1.0, 5.0, 2.0, 3.0, 7.0], [0.5, 0.0, 0.5, 1.0, 0.0],
                        [1.0, 0.0], gamma=0.9)
    tr = enumerate_trajectories(mdp, np.ones((3, 1)))
    assert tr.weights.size == 2
    assert np.all(tr.weights > 0.0)
    assert sorted(tr.lengths.tolist()) == [1, 2]
    assert sorted(float(tr.rewards[i, : tr.lengths[i]].sum()) for i in range(2)) == [1.0, 5.0]
    assert float(tr.weights.sum()) == 1.0


def _trajectory_keys(tr: object) -> np.ndarray:
    """One row per trajectory identifying it: states (s_0..s_T), actions, reward indices and T; -1 padding."""
    from reference.sampling import Trajectories

    assert isinstance(tr, Trajectories)
    h = tr.horizon
    valid = tr.valid
    st_valid = np.concatenate([np.ones((tr.n, 1), dtype=bool), valid], axis=1)
    _, r_idx = np.unique(np.round(tr.rewards, 12), return_inverse=True)
    return np.concatenate([np.where(st_valid, tr.states, -1), np.where(valid, tr.actions, -1),
                           np.where(valid, r_idx.reshape(tr.n, h), -1), tr.lengths[:, None]], axis=1)


@pytest.mark.parametrize("seed", range(4))
def test_MDP_04_05_sampled_trajectories_follow_the_enumerated_law(seed: int) -> None:
    """sample_trajectories draws whole trajectories with the law that enumerate_trajectories computes exactly:
    a chi-square goodness-of-fit test of 100 000 samples against the exact probabilities of every trajectory
    (cells with expected count < 5 pooled), from p0, from a fixed s0, and from a fixed (s0, a0), on random
    cyclic MDPs with stochastic rewards cut at H = 3 (one policy with a 1e-3 action). No sampled trajectory may
    have probability 0. Stated bound: reject when p < 1e-4 (a correct sampler fails one of these 12 fixed-seed
    tests with probability at most 1.2e-3). Before, only means were compared (4 sigma rules)."""
    from scipy import stats

    from reference.generators import random_mdp

    rng = np.random.default_rng(100 + seed)
    mdp = random_mdp(rng, 2, 2, gamma=0.9, branching=2, terminal_prob=0.3, reward_outcomes=2)
    pi = rng.dirichlet(np.ones(2), size=3)
    if seed == 3:
        pi[0] = [1e-3, 1 - 1e-3]
    for kw in ({}, {"s0": 1}, {"s0": 0, "a0": 1}):
        ex = enumerate_trajectories(mdp, pi, horizon=3, **kw)
        sm = sample_trajectories(mdp, pi, rng=np.random.default_rng(seed), n=100_000, horizon=3,
                                 **kw)
        # the same reward values index the same way in both batches (same MDP outcomes)
        both = np.concatenate([ex.rewards, sm.rewards], axis=0)
        keys_all = _trajectory_keys(type(ex)(np.concatenate([ex.states, sm.states]),
                                             np.concatenate([ex.actions, sm.actions]), both,
                                             np.concatenate([ex.lengths, sm.lengths]),
                                             np.concatenate([ex.terminated, sm.terminated]),
                                             np.concatenate([ex.truncated, sm.truncated]),
                                             np.concatenate([ex.weights, sm.weights]), ex.term))
        uniq, inv = np.unique(keys_all, axis=0, return_inverse=True)
        inv = inv.ravel()
        probs = np.bincount(inv[: ex.n], weights=ex.weights, minlength=len(uniq))
        counts = np.bincount(inv[ex.n:], minlength=len(uniq)).astype(float)
        assert np.all(counts[probs == 0.0] == 0.0), "a trajectory of probability 0 was sampled"
        assert abs(float(probs.sum()) - 1.0) <= 1e-12
        expected = probs * sm.n
        keep = expected >= 5.0
        obs = np.append(counts[keep], counts[~keep].sum())
        exp = np.append(expected[keep], expected[~keep].sum())
        if exp[-1] == 0.0:
            obs, exp = obs[:-1], exp[:-1]
        exp *= obs.sum() / exp.sum()  # exact up to rounding: the same total
        p = float(stats.chisquare(obs, exp).pvalue)
        assert p >= 1e-4, (kw, p, len(uniq))


def test_MDP_04_inverse_cdf_rows_of_any_scale_draw_their_proportions() -> None:
    """A row's cumsum overflowed near the largest float (index 0, of weight 0, for [0, 1e308, 1e308]; every draw
    of [1e308] * 3 was index 2) and subnormal rows lost their proportions ([5e-324] * 3 drew about 1/6, 1/3, 1/2).
    Each row is scaled by a power of two first: the draws equal those of the row divided by its maximum, for
    10^4 seeded uniforms (exact: the scaling is exact and the divided rows are exact here)."""
    u = np.random.default_rng(0).random(10_000)
    for row, unit in (([0.0, 1e308, 1e308], [0.0, 1.0, 1.0]), ([1e308] * 3, [1.0] * 3),
                      ([5e-324] * 3, [1.0] * 3), ([1e-310, 0.0, 3e-310], [1.0, 0.0, 3.0])):
        got = inverse_cdf(np.tile(row, (u.size, 1)), u)
        want = inverse_cdf(np.tile(unit, (u.size, 1)), u)
        np.testing.assert_array_equal(got, want)
        assert np.all(np.array(row)[got] > 0.0)


def test_PG_03_enumeration_merges_identical_trajectories_into_one_weight() -> None:
    """An (s, a) row that lists the same (r, s') outcome twice (FrozenLake's slips into a wall do) gave one
    trajectory per outcome entry, each with part of p(tau), against the documented "weights[i] is the probability
    of trajectory i". Here (s=0, a=0) lists (r=1, s'=1) twice with 1/4 each and (r=1, term) with 1/2; from 1 the
    episode ends. Exact: two trajectories, of probabilities 1/2 each, listed once."""
    from reference.mdp import from_outcomes

    mdp = from_outcomes(2, 1, [0, 3, 4], [1, 1, 2, 2], [1.0, 1.0, 1.0, 0.0], [0.25, 0.25, 0.5, 1.0], [1.0, 0.0],
                        gamma=1.0)
    tr = enumerate_trajectories(mdp, np.ones((3, 1)))
    assert tr.n == 2
    rows = {tuple(int(x) for x in tr.states[i, : int(tr.lengths[i]) + 1]): float(tr.weights[i]) for i in range(tr.n)}
    assert rows == {(0, 1, 2): 0.5, (0, 2): 0.5}


def test_PG_03_enumeration_of_frozenlake_lists_each_trajectory_once() -> None:
    """FrozenLake's uniform policy at H = 3: 1530 rows for 1078 distinct trajectories before the merge; now each
    (states, actions, rewards) sequence occurs once and the weights still sum to 1 (exact dyadic arithmetic: 1/3
    slips times 1/4 actions are not dyadic, so within 4 n eps)."""
    pytest.importorskip("gymnasium")
    from reference.mdp import from_gymnasium

    mdp = from_gymnasium("FrozenLake-v1", gamma=1.0)
    pi = np.full((mdp.n_states_plus, mdp.n_actions), 0.25)
    tr = enumerate_trajectories(mdp, pi, horizon=3)
    keys = {(tuple(tr.states[i]), tuple(tr.actions[i]), tuple(tr.rewards[i])) for i in range(tr.n)}
    assert len(keys) == tr.n == 1078
    assert abs(float(tr.weights.sum()) - 1.0) <= 4 * tr.n * np.finfo(float).eps


def test_PG_03_enumeration_skips_zero_probability_actions_and_conditions_on_a0() -> None:
    """With three actions and pi(1 | s) = 0, no enumerated trajectory takes action 1 (the only earlier test had a
    single action); with a0 = 1 at s0 (an exploring start where pi(a0 | s0) = 0) every trajectory starts with
    action 1, weighted by the kernel alone (sum 1). Both were mutants that survived (review 2026-12-07)."""
    p = np.zeros((2, 3, 3))
    p[0, :, 1] = 0.5
    p[0, :, 2] = 0.5
    p[1, :, 2] = 1.0
    r = np.array([[1.0, 5.0, 2.0], [0.5, 0.0, 3.0]])
    mdp = from_arrays(p, r, [1.0, 0.0], gamma=1.0)
    pi = np.tile([0.5, 0.0, 0.5], (3, 1))
    tr = enumerate_trajectories(mdp, pi)
    assert not np.any(tr.actions[tr.valid] == 1)
    assert abs(float(tr.weights.sum()) - 1.0) <= 4 * np.finfo(float).eps
    ex = enumerate_trajectories(mdp, pi, s0=0, a0=1)
    assert ex.n > 0 and np.all(ex.actions[:, 0] == 1)
    assert abs(float(ex.weights.sum()) - 1.0) <= 4 * np.finfo(float).eps
    assert np.all(ex.rewards[:, 0] == 5.0)


def test_MDP_04_from_arrays_puts_each_reward_on_its_next_state() -> None:
    """R of shape [S, A, S+1] makes the reward depend on s' (the joint kernel): each outcome (r, s') of (s, a) must
    carry R[s, a, s']. No test passed a 3-D R (a reversed assignment survived); checked against the arrays."""
    p = np.zeros((2, 2, 3))
    p[0, 0] = [0.2, 0.3, 0.5]
    p[0, 1] = [0.0, 1.0, 0.0]
    p[1, 0] = [0.6, 0.0, 0.4]
    p[1, 1] = [0.0, 0.0, 1.0]
    rr = np.arange(12, dtype=float).reshape(2, 2, 3) + 1.0
    mdp = from_arrays(p, rr, gamma=0.9)
    for s in range(2):
        for a in range(2):
            probs, rews, nexts = mdp.outcomes(s, a)
            assert sorted(zip(nexts.tolist(), rews.tolist(), probs.tolist(), strict=True)) == sorted(
                (s2, rr[s, a, s2], p[s, a, s2]) for s2 in range(3) if p[s, a, s2] > 0)


def test_MDP_04_chunked_outcome_draws_equal_the_unchunked_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """_sample_outcome draws in blocks of _SAMPLE_CHUNK entries; with blocks of 7 entries the batch must be the one
    drawn in a single block, bit for bit (a mutant reusing the first block's uniforms survived every test)."""
    import reference.sampling as sampling_mod
    from reference.generators import random_mdp

    mdp = random_mdp(np.random.default_rng(3), 6, 3, gamma=0.9, branching=3)
    pi = np.full((mdp.n_states_plus, 3), 1 / 3)
    whole = sample_trajectories(mdp, pi, rng=np.random.default_rng(5), n=50, horizon=8)
    monkeypatch.setattr(sampling_mod, "_SAMPLE_CHUNK", 7)
    chunked = sample_trajectories(mdp, pi, rng=np.random.default_rng(5), n=50, horizon=8)
    for name in ("states", "actions", "rewards", "lengths", "terminated"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def test_MDP_02_an_episode_ending_exactly_at_the_horizon_is_terminated_not_truncated() -> None:
    """A chain 0 -> 1 -> term: with horizon 2 the episode reaches term at T = 2 = H: terminated, not truncated
    (the flag was only checked incidentally by an advantages test). With horizon 1 it is truncated at s_1 = 1."""
    p = np.zeros((2, 1, 3))
    p[0, 0, 1] = 1.0
    p[1, 0, 2] = 1.0
    mdp = from_arrays(p, np.ones((2, 1)), [1.0, 0.0], gamma=1.0)
    for tr in (sample_trajectories(mdp, np.ones((3, 1)), rng=np.random.default_rng(0), n=3, horizon=2),
               enumerate_trajectories(mdp, np.ones((3, 1)), horizon=2)):
        assert np.all(tr.terminated) and not np.any(tr.truncated) and np.all(tr.lengths == 2)
    cut = sample_trajectories(mdp, np.ones((3, 1)), rng=np.random.default_rng(0), n=3, horizon=1)
    assert np.all(cut.truncated) and not np.any(cut.terminated) and np.all(cut.states[:, 1] == 1)


def test_MDP_02_trajectory_flags_must_agree_with_the_states_when_term_is_known() -> None:
    """With term recorded, three contradictions were accepted (review 2026-12-07): neither flag set on a cut
    trajectory (mc_returns took it for a whole episode, v_targets bootstrapped it), truncated although s_T =
    term, and term visited before T (rewards after the end were summed). Each is refused now."""
    from reference.errors import ReferenceError_
    from reference.sampling import Trajectories

    def batch(states: list[int], length: int, terminated: bool, truncated: bool) -> Trajectories:
        h = len(states) - 1
        rewards = np.where(np.arange(h) < length, 1.0, 0.0)[None, :]
        return Trajectories(np.array([states]), np.zeros((1, h), dtype=np.int64), rewards, np.array([length]),
                            np.array([terminated]), np.array([truncated]), np.ones(1), term=2)

    batch([0, 1, 2], 2, True, False)  # a consistent terminated batch
    batch([0, 1], 1, False, True)  # a consistent truncated one
    for states, length, term_flag, trunc_flag, what in (
            ([0, 1, 2], 1, False, False, "neither"), ([0, 2], 1, False, True, "not flagged terminated"),
            ([0, 2, 1], 2, False, True, "before its end"), ([0, 1, 1], 1, False, True, "before the horizon")):
        with pytest.raises(ReferenceError_, match=what):
            batch(states, length, term_flag, trunc_flag)


def test_MDP_04_builders_refuse_strings_booleans_and_misshapen_p0() -> None:
    """from_outcomes parsed prob=["0.5", "0.5"], reward=["7"], p0=["1"] and p0=[True]; from_arrays parsed a P of
    strings; a p0 of shape (2, 2) for |S| = 3 was flattened; a complex reward raised a bare TypeError. All are
    ReferenceError_ (a ValueError) now, naming the argument."""
    from reference.errors import ReferenceError_
    from reference.mdp import from_outcomes

    good = dict(indptr=[0, 2], next_state=[0, 1], reward=[1.0, 0.0], prob=[0.5, 0.5], p0=[1.0])
    from_outcomes(1, 1, gamma=0.9, **good)  # type: ignore[arg-type]
    for key, bad in (("prob", ["0.5", "0.5"]), ("reward", ["7", "0"]), ("p0", ["1"]), ("p0", [True]),
                     ("prob", [True, False]), ("reward", [1 + 1j, 0.0])):
        with pytest.raises(ReferenceError_, match=key):
            from_outcomes(1, 1, gamma=0.9, **{**good, key: bad})  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="p0"):
        from_arrays(np.full((3, 1, 4), 0.25), np.zeros((3, 1)), np.full((2, 2), 0.25), gamma=0.9)
    with pytest.raises(ReferenceError_, match="P"):
        from_arrays(np.full((1, 1, 2), "0.5"), np.zeros((1, 1)), gamma=0.9)


def test_MDP_04_a_padded_batch_too_large_to_allocate_is_a_clear_error() -> None:
    """horizon = 10**12 raised numpy's raw MemoryError ("7.28 TiB") before drawing anything; now a ShapeError that
    states the size and what to do."""
    p = np.zeros((1, 1, 2))
    p[0, 0, 1] = 1.0
    mdp = from_arrays(p, np.zeros((1, 1)), gamma=0.9)
    with pytest.raises(ShapeError, match="GiB"):
        sample_trajectories(mdp, np.ones((2, 1)), rng=np.random.default_rng(0), n=8, horizon=10**12)
