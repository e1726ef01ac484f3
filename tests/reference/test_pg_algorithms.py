"""Tests of reference.pg_algorithms: Policy Gradient Algorithm #1, #2 and A2C on tiny finite MDPs.

Acceptance rule (stated before running): a run "reaches J*" when the final exact J(theta) closes at least
95% of the initial gap, J* - J(theta_final) <= MARGIN (J* - J(theta_0)) with MARGIN = 0.05, theta_0 = 0
(the uniform policy), J* from policy iteration (reference.dp.v_star). The runs are seeded, so each test
is deterministic. Every algorithm runs on the same six seeds fixed in advance; runs that stop on a
softmax-PG plateau are strict xfails (Alg. #1 on seeds 1 and 4, A2C on seed 4), reported rather than
dropped. Measured gaps are listed in docs/policy_gradients.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reference.dp import v_star
from reference.exact import j_pi
from reference.generators import random_layered_mdp
from reference.mdp import FiniteMDP, from_arrays, uniform_policy
from reference.pg_algorithms import (
    PGResult,
    a2c,
    policy_gradient_algorithm_1,
    policy_gradient_algorithm_2,
)

MARGIN = 0.05


def _mdp(seed: int, gamma: float) -> FiniteMDP:
    return random_layered_mdp(np.random.default_rng(seed), 3, 2, 2, gamma=gamma, reward_outcomes=2)


def _gap_fraction(mdp: FiniteMDP, res: PGResult) -> float:
    j_star = float(mdp.p0 @ v_star(mdp))
    j0 = j_pi(mdp, uniform_policy(mdp))
    assert j_star > j0
    return (j_star - float(res.j_history[-1])) / (j_star - j0)


def _layer_features(mdp: FiniteMDP) -> np.ndarray:
    """A linear critic with fewer features than states: one-hot layer + in-layer index (4 features)."""
    x = np.zeros((mdp.n_states_plus, 4))
    s = np.arange(mdp.n_states)
    x[s, s // 2] = 1.0
    x[s, 3] = s % 2
    return x


# The first six seeds, fixed in advance (gamma = 1 on seed 2, 0.9 otherwise). Runs that stop on a plateau
# of softmax policy gradient (the exact grad J at the final iterate is ~2e-3, J still 25-41% of the gap
# below J*; Mei et al. 2020 describe such plateaus) are strict xfails: they are reported, never dropped,
# and a fix that makes them pass turns the xfail into a failure to be updated.
SEEDS = [(0, 0.9), (1, 0.9), (2, 1.0), (3, 0.9), (4, 0.9), (5, 0.9)]


def _plateau(seeds: set[int]) -> list[object]:
    return [pytest.param(s, g, marks=pytest.mark.xfail(strict=True, reason="softmax-PG plateau (measured)"))
            if s in seeds else (s, g) for s, g in SEEDS]


@pytest.mark.parametrize(("seed", "gamma"), _plateau({1, 4}))
def test_PG_27_algorithm_1_reaches_optimal_J(seed: int, gamma: float) -> None:
    mdp = _mdp(seed, gamma)
    res = policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(100 + seed), num_iters=1500, k=None,
                                      lr_theta=1.0, lr_phi=0.2)
    assert _gap_fraction(mdp, res) <= MARGIN
    assert res.num_updates == 1500 and res.num_env_steps >= 1500


def test_PG_27_algorithm_1_with_k_step_and_linear_critic_reaches_optimal_J() -> None:
    mdp = _mdp(2, 0.9)
    res = policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(7), num_iters=1500, k=1, lr_theta=1.0,
                                      lr_phi=0.2, features=_layer_features(mdp))
    assert _gap_fraction(mdp, res) <= MARGIN
    assert res.phi.shape == (4,)


@pytest.mark.parametrize(("seed", "gamma"), _plateau(set()))
def test_PG_32_algorithm_2_reaches_optimal_J(seed: int, gamma: float) -> None:
    mdp = _mdp(seed, gamma)
    res = policy_gradient_algorithm_2(mdp, rng=np.random.default_rng(100 + seed), num_iters=1500, k=2,
                                      lr_theta=1.0, lr_phi=0.2)
    assert _gap_fraction(mdp, res) <= MARGIN


@pytest.mark.parametrize(("seed", "gamma"), _plateau({4}))
def test_PG_38_a2c_reaches_optimal_J(seed: int, gamma: float) -> None:
    mdp = _mdp(seed, gamma)
    res = a2c(mdp, rng=np.random.default_rng(100 + seed), num_updates=2000, k=5, lr_theta=1.0, lr_phi=0.2)
    assert _gap_fraction(mdp, res) <= MARGIN


def test_PG_39_a2c_default_k_and_first_pass_resets_E_45() -> None:
    """k = 5 by default; starting at term, the first update resets and uses a real episode (E-45)."""
    mdp = _mdp(0, 0.9)
    res = a2c(mdp, rng=np.random.default_rng(0), num_updates=1, lr_theta=0.1, lr_phi=0.1)
    assert res.num_env_steps == 3  # one whole episode of the 3-layer MDP (T = 3 <= k = 5)
    assert not np.allclose(res.theta, 0.0)


def test_runs_are_reproducible_and_seed_dependent() -> None:
    mdp = _mdp(0, 0.9)
    kw = {"num_iters": 50, "lr_theta": 0.5, "lr_phi": 0.2}
    r1 = policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(3), **kw)  # type: ignore[arg-type]
    r2 = policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(3), **kw)  # type: ignore[arg-type]
    r3 = policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(4), **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(r1.theta, r2.theta)
    assert not np.array_equal(r1.theta, r3.theta)


def test_algorithm_2_equals_algorithm_1_at_gamma_one() -> None:
    """Open choice 6: the gamma^t factor is the only difference; at gamma = 1 the runs coincide."""
    mdp = _mdp(0, 1.0)
    kw = {"num_iters": 100, "lr_theta": 0.5, "lr_phi": 0.2, "k": 2}
    r1 = policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(3), **kw)  # type: ignore[arg-type]
    r2 = policy_gradient_algorithm_2(mdp, rng=np.random.default_rng(3), **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(r1.theta, r2.theta)
    mdp9 = _mdp(0, 0.9)
    r3 = policy_gradient_algorithm_1(mdp9, rng=np.random.default_rng(3), **kw)  # type: ignore[arg-type]
    r4 = policy_gradient_algorithm_2(mdp9, rng=np.random.default_rng(3), **kw)  # type: ignore[arg-type]
    assert not np.array_equal(r3.theta, r4.theta)


def test_a2c_entropy_bonus_keeps_the_policy_more_stochastic() -> None:
    mdp = _mdp(2, 0.9)
    runs = [a2c(mdp, rng=np.random.default_rng(1), num_updates=800, lr_theta=1.0, lr_phi=0.2, entropy_beta=b)
            for b in (0.0, 0.5)]
    from reference.policies import categorical_entropy

    ent = [float(categorical_entropy(r.theta[: mdp.n_states]).mean()) for r in runs]
    assert ent[1] > ent[0]


def test_algorithm_arguments_are_validated() -> None:
    mdp = _mdp(0, 0.9)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="lr_theta"):
        policy_gradient_algorithm_1(mdp, rng=rng, num_iters=1, lr_theta=0.0, lr_phi=0.1)
    for bad in (0, 1.5, None):
        with pytest.raises(ValueError, match="k must be"):
            a2c(mdp, rng=rng, num_updates=1, lr_theta=0.1, lr_phi=0.1, k=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="theta0"):
        a2c(mdp, rng=rng, num_updates=1, lr_theta=0.1, lr_phi=0.1, theta0=np.zeros((2, 2)))


def test_open_choice_14_entropy_gradient_matches_finite_differences() -> None:
    """grad_theta H(softmax(theta)) = -pi (log pi + H) (the entropy bonus of A2C; found by the mutation audit of
    2026-12-06: dropping the + H survived). Checked against central differences of categorical_entropy, with
    the bound of reference.tolerance.central_difference (H within tolerance(log A, terms=2 A) per evaluation)."""
    from reference.pg_algorithms import _entropy_grad
    from reference.policies import categorical_entropy, softmax
    from reference.tolerance import central_difference, tolerance

    rng = np.random.default_rng(0)
    for _ in range(5):
        theta = rng.normal(size=4)
        fd, bound = central_difference(lambda t: float(categorical_entropy(t)), theta, h=1e-4,
                                       f_error=tolerance(np.log(4.0), terms=8))
        g = _entropy_grad(softmax(theta))
        assert np.all(np.abs(g - fd) <= bound + tolerance(1.0, terms=8)), (g - fd, bound)


def test_PG_38_a2c_time_limit_truncation_bootstraps_and_resets() -> None:
    """max_episode_length truncates an episode: the segment bootstraps V_phi (not 0) and the next pass resets to
    s_0 ~ p0 (found by the mutation audit of 2026-12-06: neither was checked). s0 -> s1 (reward 0), s1 -> s1
    (reward 1) forever, one action, gamma = 1/2: V = (1, 2). With L = 3 and k = 2 every transition is sampled
    deterministically; bootstrapping at the limit makes V^pi the critic's fixed point (a bootstrap of 0 would
    make V(s1) = 4/3, and without the reset s0 is never seen again). Convergence budget stated in advance: the
    critic's error contracts by a constant factor per episode, so after 3000 updates it is far below 1e-9, which
    is the bound asserted (rounding at the fixed point is ~1e-15)."""
    P = np.zeros((2, 1, 3))
    P[0, 0, 1] = P[1, 0, 1] = 1.0
    mdp = from_arrays(P, np.array([[0.0], [1.0]]), [1.0, 0.0], gamma=0.5)
    res = a2c(mdp, rng=np.random.default_rng(0), num_updates=3000, lr_theta=0.1, lr_phi=0.2, k=2,
              max_episode_length=3)
    np.testing.assert_allclose(res.phi[:2], [1.0, 2.0], rtol=0, atol=1e-9)


# --- found by the black-box review (F10) ---------------------------------------------------------------------
class _ConstantRng:
    """A stand-in for numpy.random.Generator: every uniform is ``u``; choice picks the last state of positive
    initial probability (so that the outcome row sits at the end of a long outcome table)."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u

    def choice(self, n: int, p: np.ndarray) -> int:
        return int(np.flatnonzero(np.asarray(p) > 0)[-1])


@pytest.mark.parametrize("u", [1.0 - 2.0**-53, 0.0])
@pytest.mark.parametrize("draw", ["action", "outcome"])
def test_PG_38_a2c_never_draws_a_zero_probability_action_or_outcome(draw: str, u: float) -> None:
    """The impossible choice pays reward 99, so one A2C update with lr_phi = 1 moves the critic iff it was
    drawn. Action: softmax([-0.29, 1.57, -0.43, -1000]) has pi_3 = 0 and a cdf ending below 1 - 2^-53, so
    the old min(searchsorted(cumsum(pi), u), A - 1) drew action 3 at u = 1 - 2^-53. Outcome: 2000 states,
    each row [p = 1 -> state 0, p = 0 -> state 1 with reward 99]; the old global cumsum put row 1999 near
    2000, where u = 1 - 2^-53 rounded up to the row's end. Both draws now use sampling.inverse_cdf."""
    from typing import cast

    from reference.mdp import from_outcomes

    if draw == "action":
        p = np.zeros((1, 4, 2))
        p[0, :, 1] = 1.0
        r = np.array([[0.0, 0.0, 0.0, 99.0]])
        mdp = from_arrays(p, r, [1.0], gamma=0.9)
        theta0 = np.array([[-0.29, 1.57, -0.43, -1000.0], [0.0, 0.0, 0.0, 0.0]])
    else:
        n = 2000
        mdp = from_outcomes(n, 1, np.arange(0, 2 * n + 1, 2), np.tile([0, 1], n), np.tile([0.0, 99.0], n),
                            np.tile([1.0, 0.0], n), np.full(n, 1.0 / n), gamma=0.9)
        theta0 = None
    res = a2c(mdp, rng=cast(np.random.Generator, _ConstantRng(u)), num_updates=1, lr_theta=1e-3, lr_phi=1.0,
              k=1, theta0=theta0, eval_every=1)
    np.testing.assert_array_equal(res.phi, 0.0)


def _score(th: np.ndarray, s: int, a: int) -> np.ndarray:
    """grad_theta log softmax(theta[s])[a] over row s: e_a - pi(.|s)."""
    from reference.policies import softmax

    p = softmax(th[s])
    g = -p.copy()
    g[a] += 1.0
    return np.asarray(g)


def _replay_trajectory_pg(mdp: FiniteMDP, trajs: list[Any], k: int | None, lr_t: float, lr_p: float, gamma_t: bool,
                          x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The text's Algorithm #1 (gamma_t) / #2 written out step by step on given trajectories (one per
    iteration): Q_t = sum_{j<m} gamma^j r_{t+j} + gamma^m V(s_{t+m}), m = k ^ (T - t); g_theta = -sum_t
    [gamma^t] score * [[Q_t - V(s_t)]], g_phi = -sum_t [[Q_t - V(s_t)]] x(s_t); theta -= lr g_theta, phi -= lr g_phi."""
    th = np.zeros((mdp.n_states_plus, mdp.n_actions))
    phi = np.zeros(x.shape[1])
    g, term = mdp.gamma, mdp.term
    for tr in trajs:
        big_t, st, ac, rw = int(tr.lengths[0]), tr.states[0], tr.actions[0], tr.rewards[0]

        def v(s: int, phi: np.ndarray = phi) -> float:
            return 0.0 if s == term else float(x[s] @ phi)

        gth, gph = np.zeros_like(th), np.zeros_like(phi)
        for t in range(big_t):
            m = big_t - t if k is None else min(k, big_t - t)
            q = sum(g**j * rw[t + j] for j in range(m)) + g**m * v(int(st[t + m]))
            adv = q - v(int(st[t]))
            gth[st[t]] -= _score(th, int(st[t]), int(ac[t])) * (g**t if gamma_t else 1.0) * adv
            gph -= adv * x[st[t]]
        th -= lr_t * gth
        phi -= lr_p * gph
    return th, phi


def _replay_a2c(mdp: FiniteMDP, rng: np.random.Generator, n_upd: int, lr_t: float, lr_p: float, k: int,
                x: np.ndarray, beta: float, max_len: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """A2C as in the text (PG-38), with E-45's start at term and the package's documented draw order (one
    uniform per action, then one per outcome, inverse CDF within the row): k-step segments, the return
    accumulated backwards from V(s_{t+m}) (0 at term), entropy gradient -p (log p + H)."""
    from reference.policies import softmax
    from reference.sampling import inverse_cdf

    th = np.zeros((mdp.n_states_plus, mdp.n_actions))
    phi = np.zeros(x.shape[1])
    term, g, na = mdp.term, mdp.gamma, mdp.n_actions
    s, t, steps = term, 0, 0
    for _ in range(n_upd):
        if s == term or (max_len is not None and t >= max_len):
            t = 0
            s = int(rng.choice(mdp.n_states_plus, p=mdp.p0))
            while s == term:
                s = int(rng.choice(mdp.n_states_plus, p=mdp.p0))
        pi = softmax(th)
        seg = []
        for _ in range(k):
            a = int(inverse_cdf(pi[s][None, :], np.array([rng.random()]))[0])
            lo, hi = int(mdp.indptr[s * na + a]), int(mdp.indptr[s * na + a + 1])
            e = lo + int(inverse_cdf(mdp.prob[None, lo:hi], np.array([rng.random()]))[0])
            seg.append((s, a, float(mdp.reward[e])))
            s = int(mdp.next_state[e])
            t += 1
            steps += 1
            if s == term or (max_len is not None and t >= max_len):
                break

        def v(z: int, phi: np.ndarray = phi) -> float:
            return 0.0 if z == term else float(x[z] @ phi)

        q = v(s)
        gth, gph = np.zeros_like(th), np.zeros_like(phi)
        for si, ai, ri in reversed(seg):
            q = ri + g * q
            adv = q - v(si)
            gth[si] -= _score(th, si, ai) * adv
            if beta:
                p = pi[si]
                lp = np.log(p)
                gth[si] -= beta * (-p * (lp + (-(p @ lp))))
            gph -= adv * x[si]
        th -= lr_t * gth
        phi -= lr_p * gph
    return th, phi, steps


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("gamma", [0.8, 1.0])
def test_PG_27_38_39_algorithms_replay_the_text_update_by_update(seed: int, gamma: float,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Algorithms #1 / #2 fed the same trajectories and A2C on the same random stream against the updates written
    out from the text above (actor *and* critic: halving the critic step passed every test before, since the
    tests only read J or the critic's fixed point), with tabular and random linear features, k = 1, 2, inf
    (A2C: k = 1, 5 with and without the entropy bonus and a length cap), and E-45's first pass from term (A2C
    started at a real state shifts the stream and fails). Tolerance: the two computations differ only in the
    order of their sums; each iteration rounds at most 64 times on parameters bounded by their final scale."""
    import reference.pg_algorithms as pga
    from reference.sampling import sample_trajectories
    from reference.tolerance import counted_tolerance

    mdp = random_layered_mdp(np.random.default_rng(seed), 3, 2, 2, gamma=gamma, reward_outcomes=2,
                             early_stop_prob=0.2)
    feats = [pga.tabular_features(mdp), np.random.default_rng(9).normal(size=(mdp.n_states_plus, 3))]
    iters = 15

    def close(got: np.ndarray, want: np.ndarray) -> bool:
        scale = float(np.max(np.abs(want))) + 1.0
        return bool(np.max(np.abs(got - want)) <= counted_tolerance(scale * iters, roundings=64 * iters))

    for x in feats:
        for k in (1, 2, None):
            for gamma_t, fn in ((True, pga.policy_gradient_algorithm_1), (False, pga.policy_gradient_algorithm_2)):
                fed: list[Any] = []

                def record(*args: Any, _fed: list[Any] = fed, **kwargs: Any) -> Any:
                    tr = sample_trajectories(*args, **kwargs)
                    _fed.append(tr)
                    return tr

                with monkeypatch.context() as mp:
                    mp.setattr("reference.pg_algorithms.sample_trajectories", record)
                    res = fn(mdp, rng=np.random.default_rng(seed), num_iters=iters, lr_theta=0.7, lr_phi=0.3, k=k,
                             features=x)
                th, phi = _replay_trajectory_pg(mdp, fed, k, 0.7, 0.3, gamma_t, x)
                assert close(res.theta, th) and close(res.phi, phi), (k, gamma_t)
                assert res.num_env_steps == sum(int(t.lengths[0]) for t in fed)
        for k2 in (1, 5):
            for beta in (0.0, 0.3):
                for cap in (None, 2):
                    r = pga.a2c(mdp, rng=np.random.default_rng(seed), num_updates=30, lr_theta=0.7, lr_phi=0.3,
                                k=k2, features=x, entropy_beta=beta, max_episode_length=cap)
                    th, phi, steps = _replay_a2c(mdp, np.random.default_rng(seed), 30, 0.7, 0.3, k2, x, beta, cap)
                    assert steps == r.num_env_steps
                    assert close(r.theta, th) and close(r.phi, phi), (k2, beta, cap)
    assert pga.a2c.__kwdefaults__ is not None and pga.a2c.__kwdefaults__["k"] == 5  # PG-39: k ~ 5


def test_step_sizes_and_gamma_t_flags_are_validated() -> None:
    """lr_theta=True ran as 1.0, "1" raised a bare TypeError, inf failed later as 'logits must be finite', and
    gamma_t="no" was read as True (the gamma^t factor kept): all are refused with a named error now."""
    from reference.errors import ReferenceError_
    from reference.gradients import g_reward_to_go
    from reference.sampling import sample_trajectories
    from reference.trust_region import is_surrogate_terms

    mdp = _mdp(0, 0.9)
    for bad in (True, "1", float("inf"), float("nan"), 0.0, -1.0):
        with pytest.raises((ValueError, ReferenceError_), match="lr_theta"):
            a2c(mdp, rng=np.random.default_rng(0), num_updates=1, lr_theta=bad, lr_phi=0.1)  # type: ignore[arg-type]
        with pytest.raises((ValueError, ReferenceError_), match="lr_phi"):
            policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(0), num_iters=1, lr_theta=0.1,
                                        lr_phi=bad if bad != 0.0 else -0.5)  # type: ignore[arg-type]
    tr = sample_trajectories(mdp, uniform_policy(mdp), rng=np.random.default_rng(0), n=2, horizon=4)
    theta = np.zeros((mdp.n_states_plus, mdp.n_actions))
    with pytest.raises(ReferenceError_, match="gamma_t"):
        g_reward_to_go(theta, tr, gamma=0.9, gamma_t="no")  # type: ignore[arg-type]
    z = np.zeros((2, 1))
    with pytest.raises(ReferenceError_, match="gamma_t"):
        is_surrogate_terms(z, z, z, np.ones((2, 1), dtype=bool), gamma=0.9, gamma_t="no")  # type: ignore[arg-type]
