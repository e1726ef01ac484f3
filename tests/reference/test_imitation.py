"""Tests of reference.imitation: behaviour cloning and DAgger (MDP-12..MDP-16).

Costs of learned policies are exact (linear solves on the constructed layered MDP); only the datasets are
random (fixed seeds). The horizon comparison of BC and DAgger is a fixed-seed measurement accepted with the
rule of open choice 22 (differences larger than 4 standard errors over the seeds).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.bellman import bellman_optimality_v
from reference.errors import InvalidPolicyError, ShapeError
from reference.exact import j_pi
from reference.generators import random_layered_mdp, random_mdp
from reference.imitation import (
    Dataset,
    behaviour_cloning,
    compounding_error_mdp,
    cross_entropy,
    dagger,
    dataset_from_trajectories,
    deploy,
    expert_policy,
    fit_bc_counts,
    fit_bc_softmax,
    label_states,
    on_expert_error,
    policy_cost,
)
from reference.mdp import deterministic_policy, softmax_policy
from reference.sampling import sample_trajectories
from reference.tolerance import central_difference, tolerance


def _random_dataset(seed: int, n_states: int, n_actions: int, n: int) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(rng.integers(0, n_states, size=n).astype(np.int64),
                   rng.integers(0, n_actions, size=n).astype(np.int64))


# ---------------------------------------------------------------------------------- MDP-12, 13
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_MDP_12_13_counts_minimise_the_cross_entropy(seed: int, n: int) -> None:
    """The empirical conditional (count model = next-token MLE) is the cross-entropy minimiser.

    On rows where every action occurs, theta = log pi_counts is a stationary point (gradient 0 up to
    rounding); and no random softmax policy attains a lower loss (the loss is convex in theta).
    """
    data = _random_dataset(seed, 4, 3, n)
    pc = fit_bc_counts(data, n_states_plus=4, n_actions=3)
    full = pc > 0
    theta = np.log(np.where(full, pc, 1e-300))
    loss_c, grad = cross_entropy(theta, data)
    assert np.max(np.abs(grad[full.all(axis=1)]), initial=0.0) <= tolerance(1.0, terms=n)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        th = rng.normal(size=(4, 3))
        assert cross_entropy(th, data)[0] >= loss_c - tolerance(loss_c + 1.0, terms=n)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
@settings(max_examples=10)
def test_MDP_12_softmax_gradient_descent_decreases_loss_and_matches_counts_argmax(seed: int, n: int) -> None:
    """GD on the mean cross-entropy: the loss is L-smooth with L <= 1/2, so lr = 1 decreases it monotonically;
    after training, the argmax of pi_theta on every seen state with a unique modal label is that label."""
    data = _random_dataset(seed, 4, 3, n)
    th = np.zeros((4, 3))
    losses = []
    for _ in range(200):
        loss, g = cross_entropy(th, data)
        losses.append(loss)
        th -= 1.0 * g
    assert np.all(np.diff(losses) <= tolerance(1.0, terms=n))
    th2 = fit_bc_softmax(data, n_states_plus=4, n_actions=3, lr=1.0, n_iters=200)
    np.testing.assert_array_equal(th, th2)
    counts = np.zeros((4, 3))
    np.add.at(counts, (data.states, data.actions), 1.0)
    for s in range(4):
        top = np.flatnonzero(counts[s] == counts[s].max())
        if counts[s].sum() > 0 and top.size == 1:
            assert int(np.argmax(softmax_policy(th)[s])) == int(top[0])
    unseen = counts.sum(axis=1) == 0
    np.testing.assert_array_equal(th[unseen], 0.0)


def test_MDP_12_expert_is_optimal_and_bc_recovers_it_on_seen_states() -> None:
    rng = np.random.default_rng(0)
    ch = compounding_error_mdp(horizon=6, width=4, rng=rng)
    ex = expert_policy(ch.mdp)
    pe = deterministic_policy(ex, 2)
    tol = tolerance(6.0, terms=ch.mdp.n_states_plus)
    # V* by backward induction (the chain is acyclic with depth <= 6: |S+| sweeps of B* from 0 are exact),
    # not v_star, which is policy iteration like expert_policy itself
    v = np.zeros(ch.mdp.n_states_plus)
    for _ in range(ch.mdp.n_states_plus):
        v = bellman_optimality_v(ch.mdp, v)
    assert abs(j_pi(ch.mdp, pe) - float(ch.mdp.p0 @ v)) <= tol
    np.testing.assert_array_equal(ex[ch.good], ch.correct)
    pi, data = behaviour_cloning(ch.mdp, ex, n_traj=3, horizon=6, rng=rng)
    assert len(data) == 18 and np.all(data.actions == ex[data.states])
    seen = np.unique(data.states)
    np.testing.assert_array_equal(np.argmax(pi[seen], axis=1), ex[seen])


def test_MDP_12_bad_labels_are_rejected() -> None:
    with pytest.raises(InvalidPolicyError, match="label 5"):
        fit_bc_counts(Dataset(np.array([0]), np.array([5])), n_states_plus=2, n_actions=2)
    with pytest.raises(ShapeError):
        cross_entropy(np.zeros((2, 2)), Dataset(np.zeros(0, np.int64), np.zeros(0, np.int64)))
    with pytest.raises(ValueError, match="mode"):
        deploy(np.full((2, 2), 0.5), "softmax")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ MDP-14, 15
def test_MDP_14_15_bc_trains_on_expert_states_but_visits_others() -> None:
    """Covariate shift, exactly: D_expert lies in the expert's support (no bad state), while the deployed
    BC policy reaches bad states with positive probability (computed by propagating p0 through P_pi)."""
    rng = np.random.default_rng(1)
    h = 12
    ch = compounding_error_mdp(horizon=h, width=8, rng=rng)
    ex = expert_policy(ch.mdp)
    pi, data = behaviour_cloning(ch.mdp, ex, n_traj=5, horizon=h, rng=rng)
    assert not np.isin(data.states, ch.bad).any()

    def visits(p: np.ndarray) -> np.ndarray:
        m = np.asarray(ch.mdp.transition_pi(p))
        d, tot = ch.mdp.p0.copy(), np.zeros(ch.mdp.n_states_plus)
        for _ in range(h):
            tot += d
            d = d @ m
        return tot

    assert visits(deterministic_policy(ex, 2))[ch.bad].sum() == 0.0
    assert visits(pi)[ch.bad].sum() > 0.1


@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 8))
@settings(max_examples=15)
def test_MDP_14_cost_at_most_H_squared_eps_exact(seed: int, h: int) -> None:
    """Ross & Bagnell (2010, Thm 2.1): for any policy pi, cost(pi) - cost(pi_expert) <= H^2 eps, where eps is
    pi's per-step error on the expert's state distribution (costs per step in [0, 1]); exact."""
    rng = np.random.default_rng(seed)
    ch = compounding_error_mdp(horizon=h, width=3, rng=rng)
    ex = expert_policy(ch.mdp)
    pi = softmax_policy(2.0 * rng.normal(size=(ch.mdp.n_states_plus, 2)))
    for p in (pi, deploy(pi, "greedy")):
        eps = on_expert_error(ch.mdp, p, ex, horizon=h)
        gap = policy_cost(ch.mdp, p) - policy_cost(ch.mdp, deterministic_policy(ex, 2))
        assert gap <= h * h * eps + tolerance(float(h), terms=ch.mdp.n_states_plus, condition=2.0 * h)


def _costs(h: int, seeds: range) -> tuple[np.ndarray, np.ndarray]:
    bc, dg = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        ch = compounding_error_mdp(horizon=h, width=20, rng=rng)
        ex = expert_policy(ch.mdp)
        pb, _ = behaviour_cloning(ch.mdp, ex, n_traj=40, horizon=h, rng=rng)
        res = dagger(ch.mdp, ex, n_rounds=5, n_traj=8, horizon=h, rng=rng)
        bc.append(policy_cost(ch.mdp, pb) / h)
        dg.append(policy_cost(ch.mdp, res.policies[-1]) / h)
    return np.array(bc), np.array(dg)


def test_MDP_14_16_bc_error_compounds_with_horizon_dagger_does_not() -> None:
    """Measured (fixed seeds 0..7; same budget of 40 trajectories): BC's cost per step grows from H = 5 to
    H = 30 (O(eps H^2)); DAgger's does not grow like it, and is below BC's at H = 30. Each claim must
    exceed 4 standard errors (open choice 22). Numbers in docs/evidence/imitation_horizon.md."""
    seeds = range(8)
    bc5, dg5 = _costs(5, seeds)
    bc30, dg30 = _costs(30, seeds)

    def se(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))

    assert bc30.mean() - bc5.mean() > 4 * se(bc30, bc5)
    assert bc30.mean() - dg30.mean() > 4 * se(bc30, dg30)
    growth_bc = bc30.mean() - bc5.mean()
    growth_dg = dg30.mean() - dg5.mean()
    assert growth_bc - growth_dg > 4 * np.sqrt(se(bc30, bc5) ** 2 + se(dg30, dg5) ** 2)


# ----------------------------------------------------------------------------------- MDP-16
def test_MDP_16_dagger_aggregates_expert_labelled_learner_states() -> None:
    rng = np.random.default_rng(2)
    h = 10
    ch = compounding_error_mdp(horizon=h, width=6, rng=rng)
    ex = expert_policy(ch.mdp)
    res = dagger(ch.mdp, ex, n_rounds=4, n_traj=5, horizon=h, rng=rng)
    assert res.policies.shape == (4, ch.mdp.n_states_plus, 2)
    assert res.sizes[0] == 5 * h and np.all(np.diff(res.sizes) == 5 * h)
    assert len(res.data) == res.sizes[-1]
    np.testing.assert_array_equal(res.data.actions, ex[res.data.states])  # step 3: the expert labels
    assert np.isin(res.data.states, ch.bad).any()  # on-policy data reaches states the expert never visits
    # the last policy is BC on the aggregated data (step 1)
    np.testing.assert_array_equal(res.policies[-1], deploy(fit_bc_counts(
        Dataset(res.data.states[: res.sizes[-1]], res.data.actions[: res.sizes[-1]]),
        n_states_plus=ch.mdp.n_states_plus, n_actions=2), "greedy"))
    with pytest.raises(ShapeError):
        dagger(ch.mdp, ex, n_rounds=0, n_traj=1, horizon=h, rng=rng)


def test_MDP_16_dataset_helpers() -> None:
    rng = np.random.default_rng(3)
    ch = compounding_error_mdp(horizon=4, width=2, rng=rng)
    ex = expert_policy(ch.mdp)
    tr = sample_trajectories(ch.mdp, deterministic_policy(ex, 2), rng=rng, n=3, horizon=4)
    d = dataset_from_trajectories(tr)
    assert len(d) == int(tr.lengths.sum())
    lab = label_states(d.states, ex)
    np.testing.assert_array_equal(lab.actions, d.actions)
    assert len(d | lab) == 2 * len(d)


# --- found by the mutation audit of 2026-12-06 -------------------------------------------------------------
def test_MDP_13_bc_counts_are_uniform_on_unseen_states() -> None:
    data = Dataset(np.array([0, 0, 1]), np.array([1, 1, 0]))
    pi = fit_bc_counts(data, n_states_plus=4, n_actions=2)
    np.testing.assert_array_equal(pi[:2], [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(pi[2:], np.full((2, 2), 0.5))  # unseen: a distribution, not zeros


def test_MDP_16_dagger_labels_the_states_its_learner_visits() -> None:
    """Replays one DAgger round on the same random stream: D = D_expert ∪ {(s_t, pi_expert(s_t)): t < T of the
    learner's trajectories} (the visited s_t, not s_{t+1}), pair for pair."""
    mdp = random_layered_mdp(np.random.default_rng(5), 4, 3, 2, gamma=1.0)
    expert = expert_policy(mdp)
    res = dagger(mdp, expert, n_rounds=2, n_traj=6, horizon=4, rng=np.random.default_rng(1))
    rng = np.random.default_rng(1)
    d0 = dataset_from_trajectories(sample_trajectories(mdp, deterministic_policy(expert, mdp.n_actions), rng=rng,
                                                       n=6, horizon=4))
    learner = deploy(fit_bc_counts(d0, n_states_plus=mdp.n_states_plus, n_actions=mdp.n_actions), "greedy")
    traj = sample_trajectories(mdp, learner, rng=rng, n=6, horizon=4)
    want = d0 | label_states(traj.states[:, :-1][traj.valid], expert)
    np.testing.assert_array_equal(res.data.states, want.states)
    np.testing.assert_array_equal(res.data.actions, want.actions)


def test_MDP_14_on_expert_error_ignores_the_term_row() -> None:
    """After termination the expert's state distribution sits on term, where no action matters (MDP-11): a
    learner that differs from the expert only at term has error 0."""
    mdp = random_layered_mdp(np.random.default_rng(2), 2, 2, 2, gamma=1.0)
    expert = expert_policy(mdp)
    pi = deterministic_policy(expert, mdp.n_actions).astype(np.float64)
    pi[mdp.term] = np.eye(mdp.n_actions)[(expert[mdp.term] + 1) % mdp.n_actions]
    assert on_expert_error(mdp, pi, expert, horizon=5) == 0.0


# --- found by the black-box input review ----------------------------------------------------------------------
_I = np.array


@pytest.mark.parametrize(("call", "err", "match"), [
    # negative indices were wrapped: action -1 read as the last action, state -1 as the term row
    (lambda: cross_entropy(np.zeros((3, 2)), Dataset(_I([0]), _I([-1]))), InvalidPolicyError, "action -1"),
    (lambda: cross_entropy(np.zeros((3, 2)), Dataset(_I([-1]), _I([0]))), ShapeError, "state -1"),
    (lambda: fit_bc_counts(Dataset(_I([-1]), _I([1])), n_states_plus=3, n_actions=2), ShapeError, "state -1"),
    (lambda: fit_bc_counts(Dataset(_I([0]), _I([-2])), n_states_plus=3, n_actions=2), InvalidPolicyError,
     "action -2"),
    # fractional indices are refused, never truncated
    (lambda: Dataset(_I([0.9]), _I([0])), ShapeError, r"Dataset.states\[0\] = 0.9"),
    (lambda: Dataset(_I([0]), _I([0.5])), InvalidPolicyError, r"Dataset.actions\[0\] = 0.5"),
    (lambda: Dataset(_I([0, 1]), _I([0])), ShapeError, "same length"),
    (lambda: Dataset(_I([[0]]), _I([[0]])), ShapeError, "1-D"),
    # indices beyond the consumer's table raised a bare IndexError
    (lambda: cross_entropy(np.zeros((3, 2)), Dataset(_I([3]), _I([0]))), ShapeError, "state 3"),
    (lambda: cross_entropy(np.zeros((3, 2)), Dataset(_I([0]), _I([2]))), InvalidPolicyError, "action 2"),
    (lambda: fit_bc_counts(Dataset(_I([3]), _I([1])), n_states_plus=3, n_actions=2), ShapeError, "state 3"),
])
def test_MDP_12_datasets_refuse_negative_fractional_and_out_of_range_indices(call: Any, err: type[Exception],
                                                                            match: str) -> None:
    with pytest.raises(err, match=match):
        call()
    # integral floats are indices (2.0 is 2), stored as int64; aggregation keeps them
    d = Dataset(_I([2.0, 0.0]), _I([1.0, 0.0]))
    assert d.states.dtype == np.int64 and d.actions.dtype == np.int64
    np.testing.assert_array_equal((d | d).states, [2, 0, 2, 0])
    np.testing.assert_array_equal(fit_bc_counts(d, n_states_plus=3, n_actions=2), [[1, 0], [0.5, 0.5], [0, 1]])


@pytest.mark.parametrize(("row", "err"), [
    ([2.0, -1.0], InvalidPolicyError),  # gave a negative "error rate"
    ([np.nan, np.nan], InvalidPolicyError),  # gave NaN
    ([np.inf, 0.0], InvalidPolicyError),
    ([0.5, 0.6], InvalidPolicyError),
    (None, ShapeError),
])
def test_MDP_14_on_expert_error_refuses_a_policy_off_the_simplex(row: list[float] | None,
                                                                  err: type[Exception]) -> None:
    mdp = random_mdp(np.random.default_rng(1), 3, 2, gamma=0.9)
    expert = np.zeros(mdp.n_states_plus, dtype=np.int64)
    pi = np.full((mdp.n_states_plus, 2), 0.5)
    if row is None:
        pi = np.full((mdp.n_states_plus, 3), 1.0 / 3.0)
    else:
        pi[1] = row
    with pytest.raises(err, match="s=1" if row is not None else "shape"):
        on_expert_error(mdp, pi, expert, horizon=3)
    # a valid policy whose term row is garbage is fine: error rate 1/2 at every step (MDP-11)
    ok = np.full((mdp.n_states_plus, 2), 0.5)
    ok[mdp.term] = np.nan
    assert abs(on_expert_error(mdp, ok, expert, horizon=3) - 0.5) <= tolerance(1.0, terms=3)


# --- found by the mutation audit (2026-12-08, second pass) --------------------------------------------------------
def test_MDP_12_cross_entropy_is_the_mean_loss_and_its_gradient() -> None:
    """The loss is the *mean* -(1/N) sum_i log softmax(theta[s_i])_{a_i} (open choice 8), checked against
    math.log of the explicit softmax, and the returned gradient against central differences of the loss.
    Tolerances: the loss sums N = 3 logs of magnitude <= L = max |log p| over A = 3 exponentials each,
    tolerance(L, terms=N + A); central_difference derives its own bound from f alone, with f_error that
    same tolerance."""
    theta = np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]])
    data = Dataset(np.array([0, 0, 1]), np.array([0, 2, 1]))

    def logp(s: int, a: int) -> float:
        return float(theta[s, a]) - math.log(sum(math.exp(float(v)) for v in theta[s]))

    pairs = [(0, 0), (0, 2), (1, 1)]
    exact = -sum(logp(s, a) for s, a in pairs) / 3
    big = max(abs(logp(s, a)) for s, a in pairs)
    tol = tolerance(big, terms=3 + 3)
    loss, grad = cross_entropy(theta, data)
    assert abs(loss - exact) <= tol
    fd, bound = central_difference(lambda th: cross_entropy(th, data)[0], theta, h=1e-4, f_error=tol)
    assert np.all(np.abs(grad - fd) <= bound)


def test_MDP_12_cross_entropy_is_shift_invariant_at_large_logits() -> None:
    """softmax(theta[s] + c) = softmax(theta[s]): with theta a multiple of 1/8 and c = +-1024 the shift is
    exact, theta - max theta is the same float array, so loss and gradient are bit-identical (e^1024 = inf
    would give NaN without the max subtracted)."""
    theta = np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]])
    data = Dataset(np.array([0, 0, 1]), np.array([0, 2, 1]))
    loss, grad = cross_entropy(theta, data)
    for shift in (1024.0, -1024.0):
        l2, g2 = cross_entropy(theta + shift, data)
        assert l2 == loss
        np.testing.assert_array_equal(g2, grad)


def test_MDP_16_label_states_refuses_a_state_outside_the_expert() -> None:
    """A state index >= S (the expert's length) is a ShapeError naming the state, not a raw IndexError."""
    with pytest.raises(ShapeError):
        label_states(np.array([0, 3]), np.array([1, 0, 1]))


def test_MDP_14_compounding_chain_refuses_a_recover_action_out_of_range() -> None:
    """recover must be the action 0 or 1 of the 2-action chain; 2 was accepted and gave an MDP where no
    action recovers."""
    with pytest.raises(ShapeError, match="recover"):
        compounding_error_mdp(horizon=3, width=2, rng=np.random.default_rng(0), recover=2)


def test_MDP_14_compounding_chain_starts_uniformly_on_the_good_states_of_step_0() -> None:
    """p0 is exactly 1/W on good(0, j) and 0 elsewhere (W = 4: 1/4 is exact)."""
    ch = compounding_error_mdp(horizon=3, width=4, rng=np.random.default_rng(0))
    expected = np.zeros(ch.mdp.n_states_plus)
    expected[ch.good[0]] = 0.25
    np.testing.assert_array_equal(np.asarray(ch.mdp.p0, dtype=np.float64), expected)


def test_imitation_inputs_refused_with_typed_errors() -> None:
    """Accepted before 2026-12-07 (review): a NaN logit (cross_entropy returned a NaN loss), a NaN or negative lr
    (gradient ascent) and a theta0 of the wrong shape in fit_bc_softmax, a policy row [1.5, -0.5] deployed as is
    and a row summing to 0.5 deployed greedily; an expert of the wrong length in on_expert_error raised a raw
    numpy broadcast error."""
    from reference.errors import ReferenceError_
    from reference.imitation import (
        Dataset,
        compounding_error_mdp,
        cross_entropy,
        deploy,
        expert_policy,
        fit_bc_softmax,
        on_expert_error,
    )

    d = Dataset(np.array([0, 1]), np.array([1, 0]))
    with pytest.raises(InvalidPolicyError, match="non-finite"):
        cross_entropy(np.array([[np.nan, 0.0], [0.0, 0.0]]), d)
    for lr in (np.nan, -1.0, 0.0, np.inf):
        with pytest.raises(ReferenceError_, match="lr"):
            fit_bc_softmax(d, n_states_plus=2, n_actions=2, lr=lr, n_iters=2)
    with pytest.raises(ShapeError, match="theta0"):
        fit_bc_softmax(d, n_states_plus=5, n_actions=2, lr=1.0, n_iters=1, theta0=np.zeros((2, 2)))
    for row in ([1.5, -0.5], [0.2, 0.3], [np.nan, 1.0]):
        for mode in ("stochastic", "greedy"):
            with pytest.raises(InvalidPolicyError):
                deploy(np.array([row]), mode)
    np.testing.assert_array_equal(deploy(np.array([[0.25, 0.75]]), "greedy"), [[0.0, 1.0]])
    ch = compounding_error_mdp(horizon=2, width=1, rng=np.random.default_rng(0))
    ex = expert_policy(ch.mdp)
    with pytest.raises(ShapeError, match="expert"):
        on_expert_error(ch.mdp, np.full((ch.mdp.n_states, 2), 0.5), ex[:-2], horizon=2)
    # an expert without the term entry is accepted, as by behaviour_cloning and dagger (MDP-11)
    assert on_expert_error(ch.mdp, np.full((ch.mdp.n_states, 2), 0.5), ex[:-1], horizon=2) == 0.5


@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 5), backend=st.sampled_from(["dense", "sparse"]))
@settings(max_examples=20)
def test_MDP_14_on_expert_error_is_measured_on_the_expert_state_distribution(seed: int, h: int,
                                                                             backend: str) -> None:
    """eps = (1/H) sum_{t<H} E_{s_t ~ d_t^expert}[1 - pi(pi_expert(s_t) | s_t)] against the enumeration of every
    trajectory of the *expert* (a layered MDP with early stops, a stochastic learner that differs from the expert
    everywhere, so the learner's own state distribution would give another number), dense and sparse storage."""
    from reference.generators import random_layered_mdp
    from reference.mdp import from_arrays
    from reference.sampling import enumerate_trajectories

    rng = np.random.default_rng(seed)
    base = random_layered_mdp(rng, 3, 2, 2, gamma=1.0, early_stop_prob=0.3)
    n = base.n_states_plus
    P = base.transition_dense.reshape(n, base.n_actions, n)[:-1]
    mdp = from_arrays(P, base.r[:-1], np.asarray(base.p0)[:-1], gamma=1.0, backend=backend)  # type: ignore[arg-type]
    expert = rng.integers(0, 2, size=n).astype(np.int64)
    pi = softmax_policy(rng.normal(size=(n, 2)))
    tr = enumerate_trajectories(mdp, deterministic_policy(expert, 2), horizon=h)
    miss = 1.0 - pi[np.arange(n), expert]
    miss[mdp.term] = 0.0
    # the enumeration stops once every trajectory has ended: later steps sit on term, where miss = 0
    oracle = sum(float(tr.weights @ miss[tr.states[:, t]]) for t in range(min(h, tr.states.shape[1]))) / h
    assert abs(on_expert_error(mdp, pi, expert, horizon=h) - oracle) <= tolerance(1.0, terms=2 * n * h)


def test_MDP_14_the_h2_eps_bound_needs_episodes_to_end_within_h() -> None:
    """The docstring's condition, shown: costs in [0, 1], the expert stops at once, the learner strays with
    delta = 0.1 into a 10-step chain costing 1 per step. Its error on the expert's states is delta / H exactly
    (the expert visits s0 at t = 0 only), so H^2 eps = H delta, below the true gap 1 for every H < 10: the bound
    holds only for H >= the longest episode (here 11), where it does hold."""
    from reference.mdp import from_outcomes

    n = 11
    indptr, nxt, rew = [0], [], []
    for s_ in range(n):
        for a in range(2):
            if s_ == 0:
                nxt.append(n if a == 0 else 1)
                rew.append(0.0)
            else:
                nxt.append(s_ + 1 if s_ < n - 1 else n)
                rew.append(-1.0)
            indptr.append(len(nxt))
    mdp = from_outcomes(n, 2, indptr, nxt, rew, [1.0] * len(nxt), np.eye(n)[0], gamma=1.0)
    ex = np.zeros(n + 1, dtype=np.int64)
    pi = np.tile([1.0, 0.0], (n + 1, 1))
    pi[0] = [0.9, 0.1]
    gap = policy_cost(mdp, pi) - policy_cost(mdp, deterministic_policy(ex, 2))
    assert abs(gap - 1.0) <= tolerance(10.0, terms=n + 1, condition=float(n))
    for h in (1, 5, 10):
        eps = on_expert_error(mdp, pi, ex, horizon=h)
        assert abs(eps - 0.1 / h) <= tolerance(0.1, terms=h)
        assert h * h * eps < gap  # the bound fails without T <= H
    assert 11 * 11 * on_expert_error(mdp, pi, ex, horizon=11) >= gap


def test_MDP_14_policy_cost_evaluates_the_looping_expert_at_gamma_1() -> None:
    """At gamma = 1 with a reward-free loop optimal, expert_policy returns the loop (value 0, MDP-17: T = inf,
    G_0 = 0); policy_cost raised ImproperPolicyError and its message named an option it did not have."""
    from reference.errors import ImproperPolicyError
    from reference.mdp import from_outcomes

    m = from_outcomes(1, 2, [0, 1, 2], [0, 1], [0.0, -1.0], [1.0, 1.0], [1.0], gamma=1.0)
    ex = expert_policy(m)
    assert ex[0] == 0
    with pytest.raises(ImproperPolicyError):
        policy_cost(m, deterministic_policy(ex, 2))
    assert policy_cost(m, deterministic_policy(ex, 2), improper="finite") == 0.0
    assert policy_cost(m, deterministic_policy([1, 0], 2)) == 1.0


@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 2), (4, 3)])
def test_MDP_14_compounding_chain_is_the_documented_table(h: int, w: int) -> None:
    """Every (s, a) of the chain against its docstring, rebuilt here: good(t, j) with the correct action ->
    reward 0, uniform on good(t+1, .); the wrong action -> reward -1, bad(t+1); bad(t): reward -1 for both
    actions, recover -> uniform on good(t+1, .), the other -> bad(t+1); step H-1 -> term."""
    ch = compounding_error_mdp(horizon=h, width=w, rng=np.random.default_rng(h * 10 + w))
    mdp, term = ch.mdp, ch.mdp.term
    for t in range(h):
        goods = {term: 1.0} if t == h - 1 else {int(s): 1.0 / w for s in ch.good[t + 1]}
        to_bad = {term: 1.0} if t == h - 1 else {int(ch.bad[t + 1]): 1.0}
        rows = [(int(ch.good[t, j]), a, (goods, 0.0) if a == ch.correct[t, j] else (to_bad, -1.0))
                for j in range(w) for a in range(2)]
        rows += [(int(ch.bad[t]), a, (goods if a == ch.recover else to_bad, -1.0)) for a in range(2)]
        for s_, a, (succ, r) in rows:
            probs, rewards, nexts = mdp.outcomes(s_, a)
            got: dict[int, float] = {}
            for p_, r_, s2 in zip(probs, rewards, nexts, strict=True):
                assert float(r_) == r, (t, s_, a)
                got[int(s2)] = got.get(int(s2), 0.0) + float(p_)
            assert got.keys() == succ.keys() and all(abs(got[k] - succ[k]) <= 1e-15 for k in succ), (t, s_, a)


def test_MDP_12_fit_bc_softmax_keeps_theta0_on_states_absent_from_d() -> None:
    """Rows of states absent from D keep theta0 exactly (their cross-entropy gradient is 0); rows in D move."""
    d = Dataset(np.array([0, 0, 2]), np.array([1, 1, 0]))
    theta0 = np.array([[0.3, -0.2], [1.5, -4.0], [0.0, 0.7], [2.0, 2.0]])
    th = fit_bc_softmax(d, n_states_plus=4, n_actions=2, lr=0.5, n_iters=7, theta0=theta0)
    np.testing.assert_array_equal(th[[1, 3]], theta0[[1, 3]])
    assert th[0, 1] - th[0, 0] > theta0[0, 1] - theta0[0, 0]
    assert th[2, 0] - th[2, 1] > theta0[2, 0] - theta0[2, 1]


def test_MDP_12_16_more_inputs_refused() -> None:
    """Accepted before 2026-12-07: a NaN theta0 with n_iters = 0 (returned as the fit), recover = 1.0 (stored as
    a float where an int is documented), and a custom DAgger fit of the wrong shape with n_rounds = 1 (returned
    as the final policy unchecked)."""
    d = Dataset(np.array([0]), np.array([1]))
    with pytest.raises(InvalidPolicyError, match="theta0"):
        fit_bc_softmax(d, n_states_plus=2, n_actions=2, lr=1.0, n_iters=0, theta0=np.array([[np.nan, 0], [0, 0]]))
    with pytest.raises(ShapeError, match="recover"):
        compounding_error_mdp(horizon=2, width=1, rng=np.random.default_rng(0), recover=1.0)  # type: ignore[arg-type]
    ch = compounding_error_mdp(horizon=2, width=1, rng=np.random.default_rng(0))
    with pytest.raises(ShapeError, match="fit returned"):
        dagger(ch.mdp, expert_policy(ch.mdp), n_rounds=1, n_traj=2, horizon=2, rng=np.random.default_rng(0),
               fit=lambda _: np.full((7, 2), 0.5))
