"""Bad input gets a clear, typed error instead of a silent number (found by an audit of the reference).

Each case below used to return a number: a NaN policy row read as KL 0, an infinite ratio gave NaN
where the piecewise form gives 0, beta = NaN dropped the KL penalty, an unknown TRPO improvement rule
fell back to the surrogate, a fractional k was floored, NaN rewards propagated, and an empty batch
divided by zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from reference.advantages import gae, td_k_advantages, td_residuals, value_regression_loss
from reference.errors import ReferenceError_, ShapeError
from reference.generators import random_mdp
from reference.grpo import grpo_objective
from reference.surrogates import categorical_kl, ppo_clip_objective, ppo_clip_piecewise
from reference.tolerance import counted_tolerance
from reference.trust_region import trpo_exact

Z = np.zeros((3, 2))
F = np.zeros((3, 2), dtype=bool)


def test_kl_rejects_nan_probabilities() -> None:
    with pytest.raises(ReferenceError_, match="simplex"):
        categorical_kl([np.nan, np.nan], [0.5, 0.5])
    with pytest.raises(ReferenceError_, match="simplex"):
        categorical_kl([[0.5, 0.5], [np.nan, np.nan]], [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize("fn", [ppo_clip_objective, ppo_clip_piecewise])
def test_clip_objectives_reject_non_finite_ratio_and_advantage(fn: Callable[..., Any]) -> None:
    with pytest.raises(ReferenceError_, match="ratio"):
        fn(np.inf, 0.0, eps=0.2)
    with pytest.raises(ReferenceError_, match="advantages"):
        fn(1.0, np.nan, eps=0.2)


def test_grpo_beta_must_be_finite() -> None:
    lp = np.full((2, 2), -0.7)
    with pytest.raises(ReferenceError_, match="beta"):
        grpo_objective(lp, lp, [0.0, 1.0], np.ones((2, 2), bool), group_size=2, beta=float("nan"), log_prob_ref=lp)


def test_trpo_improvement_rule_is_checked() -> None:
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    with pytest.raises(ReferenceError_, match="improvement"):
        trpo_exact(mdp, np.zeros((4, 2)), iters=1, improvement="J")  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [1.5, float("inf"), 0, True])
def test_td_k_needs_an_integer_k(k: object) -> None:
    with pytest.raises(ReferenceError_, match="k must be"):
        td_k_advantages(Z, Z, Z, F, F, gamma=0.9, k=k)  # type: ignore[arg-type]


def test_rewards_and_values_must_be_finite_masked_bootstraps_may_be_nan() -> None:
    bad = Z.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ReferenceError_, match="rewards must be finite"):
        td_residuals(bad, Z, Z, F, gamma=0.9)
    with pytest.raises(ReferenceError_, match="values must be finite"):
        gae(Z, bad, Z, F, F, gamma=0.9, lam=0.95)
    term = F.copy()
    term[1, 0] = True
    nv = Z.copy()
    nv[1, 0] = np.nan  # the bootstrap of a terminated row is never read
    assert np.all(np.isfinite(td_residuals(Z, Z, nv, term, gamma=0.9)))


def test_value_regression_loss_needs_a_non_empty_batch() -> None:
    with pytest.raises(ShapeError, match="T >= 1"):
        value_regression_loss(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2), bool), np.zeros((0, 2), bool))


# ------------------------------------------------------------------ greedy tie window relative to the MDP
def _tiny_mdp(c: float) -> object:
    from reference.mdp import from_arrays

    P = np.zeros((1, 2, 2))
    P[0, :, 1] = 1.0  # both actions end the episode
    return from_arrays(P, np.array([[0.0, c]]), gamma=0.9)


@pytest.mark.parametrize("c", [1e-13, 1e-30, 1.0, 1e12])
def test_greedy_ties_are_relative_to_the_value_scale(c: float) -> None:
    """Rewards [0, c]: action 1 is strictly better at every scale c > 0. With an absolute 1e-12 window
    (the old floor) c = 1e-13 read as a tie and V* came out 0; the window is now relative to the MDP's
    value scale R / (1 - gamma) (open choice 1), so V*, PI, certified VI and Newton-Krylov PI all
    pick action 1 and V*(s0) = c exactly."""
    from reference import dp, solvers

    mdp = _tiny_mdp(c)
    assert dp.v_star(mdp)[0] == c  # type: ignore[arg-type]
    assert dp.policy_iteration(mdp).policies[-1][0] == 1  # type: ignore[arg-type]
    assert dp.solve_value_iteration(mdp, eps=c * 1e-3).policy[0] == 1  # type: ignore[arg-type]
    sol = solvers.solve_optimal(mdp, eps=c * 1e-3)  # type: ignore[arg-type]
    assert sol.policy[0] == 1 and abs(sol.value[0] - c) <= c * 1e-3


def test_greedy_policies_are_invariant_to_reward_scale() -> None:
    """PI's optimal policy does not change when every reward is multiplied by c > 0 (exact ties aside)."""
    from reference import dp
    from reference.generators import random_mdp as rm

    base = rm(np.random.default_rng(3), 6, 3, gamma=0.95)
    want = dp.policy_iteration(base).policies[-1]
    for c in (1e-150, 1e-14, 1e9):
        scaled = dataclasses.replace(base, reward=base.reward * c)
        assert np.array_equal(dp.policy_iteration(scaled).policies[-1], want)


def test_greedy_scale_is_validated() -> None:
    from reference.mdp import greedy

    with pytest.raises(ReferenceError_, match="scale"):
        greedy(np.zeros((2, 2)), scale=float("nan"))


def test_tiny_positive_reward_cycle_at_gamma_1_is_divergent() -> None:
    """gamma = 1, a self-loop with reward c > 0 per step: V = +inf (DivergentReturnError, BEL-36) at
    every scale; the old absolute floor called c = 1e-13 a zero-mean (non-summable) cycle."""
    from reference.errors import DivergentReturnError
    from reference.exact import v_pi
    from reference.mdp import from_arrays

    for c in (1e-13, 1.0):
        P = np.zeros((1, 1, 2))
        P[0, 0, 0] = 1.0  # never reaches term
        mdp = from_arrays(P, np.array([[c]]), gamma=1.0)
        with pytest.raises(DivergentReturnError):
            v_pi(mdp, np.ones((2, 1)))


def test_stored_zero_probabilities_are_not_edges() -> None:
    """A CSR chain with an explicitly stored 0 (e.g. a zero-probability outcome) must not gain that edge
    in the reachability / closed-class analysis; the caller's matrix is left unchanged."""
    import scipy.sparse as sp

    from reference.chains import states_reaching

    m = sp.csr_array((np.array([1.0, 0.0, 1.0]), np.array([0, 1, 1]), np.array([0, 2, 3])), shape=(2, 2))
    assert m.nnz == 3
    assert list(states_reaching(m, 1)) == [1]  # 0 -> 1 has probability 0: state 0 never reaches 1
    assert m.nnz == 3


# ------------------------------------------------------------------ policy evaluation / gradients (audit)
@pytest.mark.parametrize(("gamma", "h", "k"), [(0.9, 400, 2), (0.01, 200, 2), (0.5, 80, 3), (0.99, 50, None)])
def test_k_step_q_estimates_have_no_cancellation_on_long_horizons(gamma: float, h: int, k: int | None) -> None:
    """Rewards 1, V = 0, an episode of length h: Q_t = sum_{j < k ∧ (h - t)} gamma^j exactly. The old prefix-sum
    form returned 0.0 at t = 350 (gamma 0.9, true 1.9) and NaN once gamma^t underflowed."""
    from reference.gradients import k_step_q_estimates

    q = k_step_q_estimates(np.ones((1, h)), np.zeros((1, h + 1)), np.array([h]), gamma=gamma, k=k)
    m = np.minimum(h if k is None else k, h - np.arange(h))
    want = np.array([sum(gamma**j for j in range(int(mi))) for mi in m])
    # both sides add the same positive terms gamma^j (pow within 1 ulp) left to right: each within
    # gamma_{m+2} relative of the exact sum (Higham 4.4 with 2u per term), so they differ by <= gamma_{2h+4}
    np.testing.assert_allclose(q[0], want, rtol=counted_tolerance(1.0, roundings=2 * h + 4), atol=0)


def test_residual_gradient_of_a_terminated_trajectory_needs_no_pi_and_ignores_term_features() -> None:
    """Trajectories that terminate exactly at the padded horizon are not truncated: q_gradients(residual)
    needs no pi; the bootstrap at term is the constant 0, so non-zero features on the term row change
    nothing (V and Q)."""
    from reference.evaluation import q_gradients, v_gradients
    from reference.generators import random_layered_mdp
    from reference.policies import softmax
    from reference.sampling import enumerate_trajectories

    rng = np.random.default_rng(0)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=0.9)
    pi = softmax(rng.normal(size=(mdp.n_states_plus, 2)))
    tr = enumerate_trajectories(mdp, pi)
    assert not np.any(tr.truncated)
    xq = rng.normal(size=(mdp.n_states_plus, 2, 3))
    w = rng.normal(size=3)
    g = q_gradients(tr, xq, w, gamma=0.9, k=None, gradient="residual")
    xq2 = xq.copy()
    xq2[mdp.term] = 0.0
    np.testing.assert_array_equal(g, q_gradients(tr, xq2, w, gamma=0.9, k=None, gradient="residual"))
    xv = rng.normal(size=(mdp.n_states_plus, 3))
    xv2 = xv.copy()
    xv2[mdp.term] = 0.0
    np.testing.assert_array_equal(v_gradients(tr, xv, w, gamma=0.9, k=1, gradient="residual"),
                                  v_gradients(tr, xv2, w, gamma=0.9, k=1, gradient="residual"))


def test_start_state_and_action_are_range_checked_and_weights_finite() -> None:
    from reference.policies import softmax
    from reference.sampling import enumerate_trajectories, exact_moments, sample_trajectories

    mdp = random_mdp(np.random.default_rng(1), 3, 2, gamma=0.9)
    pi = softmax(np.zeros((4, 2)))
    with pytest.raises(ShapeError, match="a0"):
        sample_trajectories(mdp, pi, rng=np.random.default_rng(0), n=2, horizon=3, s0=0, a0=2)
    with pytest.raises(ShapeError, match="s0"):
        enumerate_trajectories(mdp, pi, s0=7)
    with pytest.raises(ValueError, match="probability vector"):
        exact_moments(np.ones((2, 1)), np.array([np.nan, 1.0]))


# ------------------------------------------------------------------ games / search (audit)
def test_mcts_hyperparameters_and_elo_budgets_are_validated() -> None:
    from reference.alphago import elo_per_doubling
    from reference.search import MNKGame, mcts

    game = MNKGame()
    root = game.initial_state()
    for kw in ({"c_puct": -1.0}, {"rho": 0.0, "rule": "text"}, {"dirichlet_alpha": 0.3, "dirichlet_epsilon": 2.0},
               {"parent_count": "parent"}):
        with pytest.raises(ValueError):
            mcts(game, root, num_simulations=4, rng=np.random.default_rng(0), **kw)
    with pytest.raises(ValueError, match="budgets"):
        elo_per_doubling(np.array([0.0, 2.0]), np.array([0.0, 100.0]))


def test_openspiel_adapter_rejects_general_sum_games() -> None:
    pyspiel = pytest.importorskip("pyspiel")
    from reference.errors import InvalidGameError
    from reference.openspiel_adapter import OpenSpielGame

    gs = pyspiel.load_game("tic_tac_toe")
    assert gs.get_type().utility == pyspiel.GameType.Utility.ZERO_SUM
    OpenSpielGame(gs)  # accepted
    efg = """EFG 2 R "general-sum" { "A" "B" } ""
p "" 1 1 "" { "l" "r" } 0
t "" 1 "o1" { 3.0 1.0 }
t "" 2 "o2" { 0.0 0.0 }
"""
    g = pyspiel.load_efg_game(efg)
    with pytest.raises(InvalidGameError, match="zero-sum"):
        OpenSpielGame(g)


def test_action_indices_are_integers_in_range_never_truncated_or_wrapped() -> None:
    """A float action 0.9 was truncated to 0 and current = -1 wrapped to the last action, silently."""
    from reference import dp, solvers
    from reference.errors import InvalidPolicyError
    from reference.mdp import deterministic_policy, greedy

    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    with pytest.raises(InvalidPolicyError, match="not an integer"):
        deterministic_policy(np.array([0.9, 1.9, 0.2]), 2)
    with pytest.raises(InvalidPolicyError, match="integer action indices"):
        deterministic_policy(np.array([True, False]), 2)
    np.testing.assert_array_equal(deterministic_policy(np.array([1.0, 0.0]), 2), [[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(InvalidPolicyError, match="outside"):
        greedy(np.zeros((3, 2)), current=np.array([-1, 0, 0]))
    with pytest.raises(ShapeError, match="current"):
        greedy(np.zeros((3, 2)), current=np.array([0, 0]))
    with pytest.raises(InvalidPolicyError, match="outside"):
        solvers.solve_optimal(mdp, pi0=np.array([-1, -1, 0, 0]))
    with pytest.raises(InvalidPolicyError, match="not an integer"):
        solvers.evaluate_policy(mdp, np.array([0.9, 1.9, 0.2, 0.0]))
    with pytest.raises(InvalidPolicyError, match="not an integer"):
        dp.policy_iteration(mdp, np.array([0.5, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("gamma", [0.0, 1.5, -0.5, float("nan")])
def test_discount_of_returns_targets_and_ancvi_constants_is_checked(gamma: float) -> None:
    from reference.dp import ancvi_beta, ancvi_bound
    from reference.errors import InvalidDiscountError
    from reference.evaluation import v_targets
    from reference.sampling import discounted_returns, enumerate_trajectories

    with pytest.raises(InvalidDiscountError):
        discounted_returns(np.ones((2, 3)), gamma)
    with pytest.raises(InvalidDiscountError):
        ancvi_beta(gamma, 2)
    with pytest.raises(InvalidDiscountError):
        ancvi_bound(gamma, 2)
    mdp = random_mdp(np.random.default_rng(1), 2, 2, gamma=0.9)
    tr = enumerate_trajectories(mdp, np.full((3, 2), 0.5), horizon=2)
    with pytest.raises(InvalidDiscountError):
        v_targets(tr, np.zeros(3), gamma=gamma, k=1)


def test_a_q_handed_to_a_v_function_is_a_shape_error_even_when_the_shapes_could_be_confused() -> None:
    """|S+| = |A| = 2: a Q [2, 2] used to pass V's validation (which took either shape), and
    bellman_residual(mdp, Q) returned 8.0 where ||B* Q - Q|| is 18; V functions now take [S] only, Q
    functions [S, A] only, anchored VI either."""
    from reference import bellman, dp
    from reference.mdp import from_arrays

    p = np.zeros((1, 2, 2))
    p[0, 0, 0] = 1.0
    p[0, 1, 1] = 1.0
    mdp = from_arrays(p, [[1.0, 2.0]], gamma=0.5)
    q = np.array([[10.0, 20.0], [0.0, 0.0]])
    for fn in (bellman.bellman_residual, bellman.bellman_optimality_v, bellman.greedy_from_v):
        with pytest.raises(ShapeError, match=r"V must have shape \(2,\), got \(2, 2\)"):
            fn(mdp, q)
    with pytest.raises(ShapeError, match=r"Q must have shape \(2, 2\), got \(2,\)"):
        bellman.bellman_optimality_q(mdp, np.zeros(2))
    assert dp.anchored_value_iteration(mdp, q, num_iters=2).values[-1].shape == (2, 2)  # U0 may be a Q


@pytest.mark.parametrize("c", [1e-12, 1.0, 1e9])
def test_default_certificates_are_relative_to_the_value_scale(c: float) -> None:
    """State 0: a0 pays c/10 and ends, a1 pays 0 and moves to state 1, which pays c and ends; gamma = 0.9, so a1
    is worth 0.9 c and is optimal. With the old absolute defaults (solvers.solve_optimal eps = 1e-8) and
    c = 1e-12, V = 0 and the greedy-in-r policy a0 were certified at step 0; evaluate_policy (1e-10) returned
    V = 0. The defaults are now relative to R / (1 - gamma), so every scale gets the optimal policy and values
    within EPS_RTOL-relative certificates."""
    from reference import dp, solvers
    from reference.mdp import from_arrays

    P = np.zeros((2, 2, 3))
    P[0, 0, 2] = 1.0
    P[0, 1, 1] = 1.0
    P[1, :, 2] = 1.0
    mdp = from_arrays(P, [[c / 10, 0.0], [c, c]], [1.0, 0.0], gamma=0.9)
    scale = c / (1 - 0.9)
    sol = solvers.solve_optimal(mdp)
    assert sol.policy[0] == 1 and sol.bound <= solvers.OPT_EPS_RTOL * scale
    assert abs(sol.value[0] - 0.9 * c) <= solvers.OPT_EPS_RTOL * scale
    ev = solvers.evaluate_policy(mdp, np.array([1, 0, 0]))
    assert abs(ev.value[0] - 0.9 * c) <= solvers.EVAL_EPS_RTOL * scale
    d = dp.solve_optimal(mdp)
    assert d.policy[0] == 1 and d.bound <= dp.EPS_RTOL * scale


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan"), float("inf")])
def test_certificate_eps_must_be_finite_and_positive(eps: float) -> None:
    from reference import dp, solvers
    from reference.generators import stay_or_go_mdp

    mdp = stay_or_go_mdp(gamma=0.9)
    for call in (lambda: dp.solve_optimal(mdp, eps=eps), lambda: solvers.solve_optimal(mdp, eps=eps),
                 lambda: solvers.evaluate_policy(mdp, np.array([1, 0]), eps=eps)):
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            call()
