"""Bad input gets a clear, typed error instead of a silent number (found by an audit of the reference).

Each case below used to return a number: a NaN policy row read as KL 0, an infinite ratio gave NaN
where the piecewise form gives 0, beta = NaN dropped the KL penalty, an unknown TRPO improvement rule
fell back to the surrogate, a fractional k was floored, NaN rewards propagated, and an empty batch
divided by zero.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from reference.advantages import gae, next_values_from_rollout, td_k_advantages, td_residuals, value_regression_loss
from reference.alphago import board_symmetries, masked_softmax, monte_carlo_value_fit
from reference.errors import InvalidGameError, InvalidMDPError, InvalidPolicyError, ReferenceError_, ShapeError
from reference.generators import random_layered_mdp, random_mdp
from reference.gradients import bootstrap_values, conditional_expectation, expand_random_time_step, k_step_q_estimates
from reference.grpo import grpo_objective
from reference.imitation import label_states
from reference.mdp import from_outcomes, from_toy_text_P
from reference.policies import categorical_log_prob, softmax_score, softmax_score_full
from reference.sampling import enumerate_trajectories, sample_trajectories
from reference.search import MNKGame, enumerate_game
from reference.solvers import BellmanKernel
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
    from reference.dp import ancvi_beta, ancvi_bound, ancvi_general_bounds
    from reference.errors import InvalidDiscountError
    from reference.evaluation import v_targets
    from reference.sampling import discounted_returns, enumerate_trajectories

    with pytest.raises(InvalidDiscountError):
        discounted_returns(np.ones((2, 3)), gamma)
    with pytest.raises(InvalidDiscountError):
        ancvi_beta(gamma, 2)
    with pytest.raises(InvalidDiscountError):
        ancvi_bound(gamma, 2)
    with pytest.raises(InvalidDiscountError):
        ancvi_bound(gamma, 2, assume_u0_le_bu0=False)
    with pytest.raises(InvalidDiscountError):
        ancvi_general_bounds(gamma, 2)
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


# ------------------------------------------------------------------ integer indices, counts, masks, reals (audit)
def _mdp3() -> Any:
    return random_mdp(np.random.default_rng(1), 3, 2, gamma=0.9)


_PI = np.full((4, 2), 0.5)
_TH = np.zeros((4, 2))
_RNG = np.random.default_rng


def _g22() -> Any:
    """The 2 x 2 board, 2 in a row (29 positions): a small game graph for the AlphaGo pipeline."""
    return enumerate_game(MNKGame(2, 2, 2))


def _P22() -> Any:
    return masked_softmax(_g22(), np.zeros((29, 4)))


def _float32_operator(pi: Any) -> Any:
    """policy_operator_float32 after a float32 operator was built for the policy 0 (dense MDP)."""
    kern = BellmanKernel(_mdp3())
    kern.policy_operator(np.zeros(4, dtype=np.int64), float32=True)
    return kern.policy_operator_float32(pi)


def _toy(s2: float) -> Any:
    """A toy-text dict whose only live transition enters s2 (0.9 was entered as state 0)."""
    P: Any = {0: {0: [(1.0, s2, 0.0, False)]}, 1: {0: [(1.0, 1, 1.0, True)]}}
    return from_toy_text_P(P, [1.0, 0.0], gamma=0.9)


@pytest.mark.parametrize(("call", "err", "match"), [
    (lambda: categorical_log_prob(np.zeros((2, 3)), np.array([0.9, 1.0])), InvalidPolicyError, r"actions\[0\] = 0.9"),
    (lambda: softmax_score(_TH, np.array([0.9]), np.array([0])), ShapeError, r"states\[0\] = 0.9"),
    (lambda: softmax_score(_TH, np.array([0]), np.array([1.5])), InvalidPolicyError, r"actions\[0\] = 1.5"),
    (lambda: softmax_score(_TH, np.array([-1]), np.array([0])), ShapeError, "state -1"),
    (lambda: softmax_score(_TH, np.array([0]), np.array([-1])), InvalidPolicyError, "action -1"),
    (lambda: softmax_score_full(_TH, 0.9, 0), ShapeError, "states = 0.9"),  # type: ignore[arg-type]
    (lambda: sample_trajectories(_mdp3(), _PI, rng=_RNG(0), n=2, horizon=3, s0=0.9), ShapeError, "s0 = 0.9"),  # type: ignore[arg-type]
    (lambda: sample_trajectories(_mdp3(), _PI, rng=_RNG(0), n=2, horizon=3, s0=0, a0=0.9), ShapeError, "a0 = 0.9"),  # type: ignore[arg-type]
    (lambda: enumerate_trajectories(_mdp3(), _PI, horizon=2, s0=1.5), ShapeError, "s0 = 1.5"),  # type: ignore[arg-type]
    (lambda: enumerate_trajectories(_mdp3(), _PI, horizon=2, s0=0, a0=0.5), ShapeError, "a0 = 0.5"),  # type: ignore[arg-type]
    (lambda: enumerate_trajectories(_mdp3(), _PI, horizon=2, s0=True), ShapeError, "s0 must be integer"),
    (lambda: label_states(np.array([0, 1]), np.array([0.9, 1.0])), InvalidPolicyError, r"expert\[0\] = 0.9"),
    (lambda: label_states(np.array([0.9]), np.array([0, 1])), ShapeError, r"states\[0\] = 0.9"),
    (lambda: label_states(np.array([-1]), np.array([0, 1])), ShapeError, "state -1"),
    (lambda: bootstrap_values(np.arange(4.0), np.array([[0.9, 3]]), term=3), ShapeError, r"states\[0, 0\] = 0.9"),
    (lambda: bootstrap_values(np.arange(4.0), np.array([[-1, 3]]), term=3), ShapeError, "state -1"),
    (lambda: from_outcomes(2, 1, [0, 1, 2], [0.9, 2], [0.0, 0.0], [1.0, 1.0], [1.0, 0.0], gamma=0.9), InvalidMDPError,
     r"next_state\[0\] of \(s=0, a=0\) = 0.9"),
    (lambda: from_outcomes(2, 1, [0, 1.5, 2], [1, 2], [0.0, 0.0], [1.0, 1.0], [1.0, 0.0], gamma=0.9), ShapeError,
     r"indptr\[1\] = 1.5"),
    (lambda: _toy(0.9), InvalidMDPError, r"s' of P\[0\]\[0\] = 0.9"),
    (lambda: BellmanKernel(_mdp3()).policy_operator(np.array([0.9, 0, 0, 0])), InvalidPolicyError, r"pi\[0\] = 0.9"),
    (lambda: _float32_operator(np.array([0.9, 0, 0, 0])), InvalidPolicyError, r"pi\[0\] = 0.9"),
    (lambda: k_step_q_estimates(np.ones((1, 3)), np.zeros((1, 4)), np.array([2.5]), gamma=0.9, k=1), ShapeError,
     r"lengths\[0\] = 2.5"),
    (lambda: expand_random_time_step(np.ones((1, 3)), np.array([2.5]), np.ones(1)), ShapeError, r"lengths\[0\] = 2.5"),
    (lambda: conditional_expectation(np.ones(2), np.ones(2), np.array([0.0, 0.5])), ShapeError, r"groups\[1\] = 0.5"),
    (lambda: board_symmetries(_g22(), [np.array([0.5, 1.0, 2.0, 3.0])]), InvalidGameError,
     r"cell_perms\[0\]\[0\] = 0.5"),
    (lambda: monte_carlo_value_fit(_g22(), _P22(), _RNG(0), num_games=1, start=0.9),  # type: ignore[arg-type]
     ShapeError, "start = 0.9"),
    (lambda: monte_carlo_value_fit(_g22(), _P22(), _RNG(0), num_games=1, start=-1), ShapeError, "state -1 at start"),
])
def test_float_state_and_action_indices_are_refused_not_truncated(call: Callable[[], Any], err: type[Exception],
                                                                   match: str) -> None:
    """0.9 used to be truncated to 0 (and -1 wrapped to the last row / action in softmax_score, label_states,
    bootstrap_values and monte_carlo_value_fit's start): state / action / next-state indices, DAgger's expert
    labels, CSR pointers, lengths, group ids and cell permutations."""
    with pytest.raises(err, match=match):
        call()


def test_integral_float_indices_are_read_as_integers_as_validate_actions_does() -> None:
    th = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(categorical_log_prob(th, np.array([1.0, 0.0, 1.0, 0.0])),
                                  categorical_log_prob(th, np.array([1, 0, 1, 0])))
    np.testing.assert_array_equal(softmax_score(th, np.array([2.0]), np.array([1.0])),
                                  softmax_score(th, np.array([2]), np.array([1])))
    mdp = _mdp3()
    a = sample_trajectories(mdp, _PI, rng=_RNG(0), n=3, horizon=3, s0=2.0, a0=np.int64(1))  # type: ignore[arg-type]
    b = sample_trajectories(mdp, _PI, rng=_RNG(0), n=3, horizon=3, s0=2, a0=1)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.actions, b.actions)
    d_f = label_states(np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    d_i = label_states(np.array([1, 0]), np.array([1, 0]))
    assert d_f.states.dtype == d_f.actions.dtype == np.int64
    np.testing.assert_array_equal(d_f.actions, d_i.actions)
    np.testing.assert_array_equal(bootstrap_values(np.arange(4.0), np.array([[2.0, 3.0]]), term=3), [[2.0, 0.0]])
    args = ([1.0, 0.0], [1.0, 1.0], [1.0, 0.0])
    m_f = from_outcomes(2, 1, [0.0, 1.0, 2.0], [1.0, 2.0], *args, gamma=0.9)
    m_i = from_outcomes(2, 1, [0, 1, 2], [1, 2], *args, gamma=0.9)
    assert m_f.next_state.dtype == m_f.indptr.dtype == np.int64
    np.testing.assert_array_equal(m_f.next_state, m_i.next_state)
    np.testing.assert_array_equal(_toy(1.0).next_state, _toy(1).next_state)
    x = np.arange(4.0)
    pmv_f, r_f = BellmanKernel(mdp).policy_operator(np.array([1.0, 0.0, 1.0, 0.0]))
    pmv_i, r_i = BellmanKernel(mdp).policy_operator(np.array([1, 0, 1, 0]))
    np.testing.assert_array_equal(pmv_f(x), pmv_i(x))
    np.testing.assert_array_equal(r_f, r_i)
    assert _float32_operator(np.zeros(4)) is not None


def _rows(bad: float, row: int) -> Any:
    nv = Z.copy()
    nv[row, 0] = bad
    return nv


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", [
    lambda nv: td_residuals(Z, Z, nv, F, gamma=0.9),
    lambda nv: gae(Z, Z, nv, F, F, gamma=0.9, lam=0.95),
    lambda nv: td_k_advantages(Z, Z, nv, F, F, gamma=0.9, k=1),
    lambda nv: td_k_advantages(Z, Z, nv, F, F, gamma=0.9, k=2),
    lambda nv: td_k_advantages(Z, Z, nv, F, F, gamma=0.9, k=None),
], ids=["td", "gae", "td1", "td2", "td_inf"])
def test_non_finite_next_values_on_a_row_that_bootstraps_are_refused(call: Callable[[Any], Any], bad: float) -> None:
    """Row T-1 (not terminated) bootstraps with next_values[T-1]: NaN / inf there gave NaN / inf advantages."""
    with pytest.raises(ReferenceError_, match=r"next_values must be finite .*next_values\[2, 0\]"):
        call(_rows(bad, 2))


def test_non_finite_next_values_are_refused_only_where_they_enter_the_result() -> None:
    """TR-29: terminated rows ignore their next value, and TD(k) reads a row's next value only where its sum
    stops (TD(inf): at episode / rollout ends; TD(2) on 3 rows: never row 0's), so NaN there is accepted."""
    term = F.copy()
    term[2, 0] = True
    calls: tuple[Callable[[Any], Any], ...] = (lambda nv: td_residuals(Z, Z, nv, term, gamma=0.9),
                                               lambda nv: gae(Z, Z, nv, term, F, gamma=0.9, lam=0.95),
                                               lambda nv: td_k_advantages(Z, Z, nv, term, F, gamma=0.9, k=2))
    for call in calls:
        assert np.all(np.isfinite(call(_rows(np.nan, 2))))
    for row, k in ((0, None), (1, None), (0, 2)):
        assert np.all(np.isfinite(td_k_advantages(Z, Z, _rows(np.nan, row), F, F, gamma=0.9, k=k)))
    with pytest.raises(ReferenceError_, match=r"next_values\[1, 0\]"):
        td_k_advantages(Z, Z, _rows(np.nan, 1), F, F, gamma=0.9, k=2)  # row 1 ends TD(2) from row 0


def test_next_values_from_rollout_refuses_a_non_finite_bootstrap_it_reads() -> None:
    trunc = F.copy()
    trunc[0, 1] = True
    vf = np.full((3, 2), np.nan)  # read only where truncated
    with pytest.raises(ReferenceError_, match=r"v_final\[0, 1\]"):
        next_values_from_rollout(Z, np.zeros(2), F, trunc, vf)
    vf[0, 1] = 1.0
    assert np.all(np.isfinite(next_values_from_rollout(Z, np.zeros(2), F, trunc, vf)))
    with pytest.raises(ReferenceError_, match=r"last_value\[1\]"):
        next_values_from_rollout(Z, np.array([0.0, np.inf]), F, F)
    term = F.copy()
    term[2, 1] = True  # row T-1 of column 1 terminated: its last_value is never read
    assert np.all(np.isfinite(next_values_from_rollout(Z, np.array([0.0, np.inf]), term, F)))


def _count_calls() -> dict[str, Callable[[Any], Any]]:
    from reference import dp, solvers
    from reference.alphago import behaviour_cloning as ag_behaviour_cloning
    from reference.alphago import (
        expert_dataset,
        expert_iteration,
        fit_fast_policy,
        reinforce_self_play,
        square_board_symmetries,
    )
    from reference.evaluation import expected_update_v, learn_v, tabular_features
    from reference.games import simgad
    from reference.gradients import discount_powers, selection_probabilities
    from reference.grpo import group_gradient_moments, grpo_advantage_conditional_means
    from reference.imitation import (
        Dataset,
        behaviour_cloning,
        compounding_error_mdp,
        dagger,
        fit_bc_softmax,
        on_expert_error,
    )
    from reference.mdp import from_outcomes
    from reference.pg_algorithms import a2c, policy_gradient_algorithm_1
    from reference.search import NimGame, RandomTreeGame, mcts, rollout_value, uniform_prior
    from reference.trust_region import (
        backtracking_line_search,
        conjugate_gradient,
        ppo_clip_exact,
        ppo_penalty_exact,
        trpo_exact,
    )

    m = _mdp3()
    lay = random_layered_mdp(_RNG(0), 2, 2, 2, gamma=1.0)  # GRPO's exact studies need an acyclic MDP
    lay_pi = np.full((lay.n_states_plus, 2), 0.5)
    v0, q0, th = np.zeros(4), np.zeros((4, 2)), np.zeros((4, 2))
    x = tabular_features(m)
    ex = np.zeros(4, dtype=np.int64)
    data = Dataset(np.array([0]), np.array([1]))
    pg: dict[str, Any] = {"rng": _RNG(0), "lr_theta": 0.1, "lr_phi": 0.1}
    lp = np.full((2, 2), -0.7)
    ls: dict[str, Any] = {"objective": lambda t: 0.0, "constraint": lambda t: 0.0, "delta": 0.01}
    g22, p22, game = _g22(), _P22(), MNKGame(2, 2, 2)
    root, det = game.initial_state(), np.zeros(4, dtype=np.int64)

    def self_play(**kw: Any) -> Any:
        return reinforce_self_play(g22, np.zeros((29, 4)), _RNG(0), **{"alpha": 0.1, "num_iterations": 1,
                                                                       "batch_size": 1, "pool_every": 1, **kw})

    def ex_it(**kw: Any) -> Any:
        return expert_iteration(g22, _RNG(0), **{"num_iterations": 1, "games_per_iteration": 1, "num_simulations": 2,
                                                 **kw})

    return {
        "value_iteration:num_iters": lambda n: dp.value_iteration(m, v0, num_iters=n),
        "q_value_iteration:num_iters": lambda n: dp.q_value_iteration(m, q0, num_iters=n),
        "anchored_value_iteration:num_iters": lambda n: dp.anchored_value_iteration(m, v0, num_iters=n),
        "solve_value_iteration:max_iters": lambda n: dp.solve_value_iteration(m, eps=1e-3, max_iters=n),
        "policy_iteration:max_iters": lambda n: dp.policy_iteration(m, max_iters=n),
        "ancvi_beta:k": lambda n: dp.ancvi_beta(0.9, n),
        "ancvi_bound:k": lambda n: dp.ancvi_bound(0.9, n),
        "ancvi_bound(general):k": lambda n: dp.ancvi_bound(0.9, n, assume_u0_le_bu0=False),
        "ancvi_general_bounds:num_iters": lambda n: dp.ancvi_general_bounds(0.9, n),
        "value_iteration_sweeps:num_sweeps": lambda n: solvers.value_iteration_sweeps(m, v0, num_sweeps=n),
        "solve_optimal:max_iters": lambda n: solvers.solve_optimal(m, max_iters=n),
        "sample_trajectories:n": lambda n: sample_trajectories(m, _PI, rng=_RNG(0), n=n, horizon=2),
        "sample_trajectories:horizon": lambda n: sample_trajectories(m, _PI, rng=_RNG(0), n=2, horizon=n),
        "enumerate_trajectories:horizon": lambda n: enumerate_trajectories(m, _PI, horizon=n),
        "enumerate_trajectories:max_trajectories": lambda n: enumerate_trajectories(m, _PI, horizon=2,
                                                                                    max_trajectories=n),
        "discount_powers:horizon": lambda n: discount_powers(n, gamma=0.9),
        "selection_probabilities:n": lambda n: selection_probabilities("uniform", 0, n),
        "selection_probabilities:k": lambda n: selection_probabilities("cyclic", n, 3),
        "expected_update_v:horizon": lambda n: expected_update_v(m, _PI, x, k=1, states="visited", horizon=n),
        "learn_v:n_iters": lambda n: learn_v(m, _PI, x, k=1, lr=0.1, n_iters=n, rng=_RNG(0)),
        "learn_v:horizon": lambda n: learn_v(m, _PI, x, k=None, lr=0.1, n_iters=1, rng=_RNG(0), horizon=n),
        "learn_v:batch_size": lambda n: learn_v(m, _PI, x, k=1, lr=0.1, n_iters=1, rng=_RNG(0), batch_size=n),
        "grpo_advantage_conditional_means:n": lambda n: grpo_advantage_conditional_means(lay, lay_pi, s0=0, n=n),
        "grpo_objective:group_size": lambda n: grpo_objective(lp, lp, [0.0, 1.0], np.ones((2, 2), bool), group_size=n),
        "group_gradient_moments:n": lambda n: group_gradient_moments(lay, 0 * lay_pi, s0=0, n=n, baseline="none"),
        "fit_bc_softmax:n_iters": lambda n: fit_bc_softmax(data, n_states_plus=4, n_actions=2, lr=0.1, n_iters=n),
        "behaviour_cloning:n_traj": lambda n: behaviour_cloning(m, ex, n_traj=n, horizon=2, rng=_RNG(0)),
        "behaviour_cloning:horizon": lambda n: behaviour_cloning(m, ex, n_traj=2, horizon=n, rng=_RNG(0)),
        "dagger:n_rounds": lambda n: dagger(m, ex, n_rounds=n, n_traj=2, horizon=2, rng=_RNG(0)),
        "compounding_error_mdp:horizon": lambda n: compounding_error_mdp(horizon=n, width=2, rng=_RNG(0)),
        "compounding_error_mdp:width": lambda n: compounding_error_mdp(horizon=2, width=n, rng=_RNG(0)),
        "on_expert_error:horizon": lambda n: on_expert_error(m, _PI, ex, horizon=n),
        # (m has a cycle: the default horizon is refused there, so one is given)
        "policy_gradient_algorithm_1:num_iters": lambda n: policy_gradient_algorithm_1(m, num_iters=n, horizon=3,
                                                                                        **pg),
        "policy_gradient_algorithm_1:horizon": lambda n: policy_gradient_algorithm_1(m, num_iters=1, horizon=n, **pg),
        "policy_gradient_algorithm_1:eval_every": lambda n: policy_gradient_algorithm_1(m, num_iters=1, eval_every=n,
                                                                                         horizon=3, **pg),
        "a2c:num_updates": lambda n: a2c(m, num_updates=n, **pg),
        "a2c:max_episode_length": lambda n: a2c(m, num_updates=1, max_episode_length=n, **pg),
        "conjugate_gradient:iters": lambda n: conjugate_gradient(lambda v: v, np.ones(2), iters=n),
        "backtracking_line_search:max_backtracks": lambda n: backtracking_line_search(th, th, max_backtracks=n, **ls),
        "trpo_exact:iters": lambda n: trpo_exact(m, th, iters=n),
        "trpo_exact:cg_iters": lambda n: trpo_exact(m, th, iters=1, cg_iters=n),
        "trpo_exact:max_backtracks": lambda n: trpo_exact(m, th, iters=1, max_backtracks=n),
        "ppo_clip_exact:iters": lambda n: ppo_clip_exact(m, th, lr=0.1, iters=n),
        "ppo_clip_exact:epochs": lambda n: ppo_clip_exact(m, th, lr=0.1, iters=1, epochs=n),
        "ppo_penalty_exact:iters": lambda n: ppo_penalty_exact(m, th, lr=0.1, iters=n),
        "simgad:num_steps": lambda n: simgad(lambda a, b: (a, b), np.zeros(1), np.zeros(1), alpha=0.1, num_steps=n),
        "gmres:restart": lambda n: solvers.gmres(lambda x: x, np.ones(3), tol=1e-8, restart=n),
        "gmres:max_matvecs": lambda n: solvers.gmres(lambda x: x, np.ones(3), tol=1e-8, max_matvecs=n),
        "evaluate_policy:restart": lambda n: solvers.evaluate_policy(m, det, restart=n),
        "evaluate_policy:max_matvecs": lambda n: solvers.evaluate_policy(m, det, max_matvecs=n),
        "solve_optimal:restart": lambda n: solvers.solve_optimal(m, restart=n),
        "expert_dataset:num_games": lambda n: expert_dataset(g22, p22, _RNG(0), num_games=n),
        "alphago.behaviour_cloning:num_steps": lambda n: ag_behaviour_cloning(g22, np.array([0]), np.eye(4)[:1], lr=0.1,
                                                                              num_steps=n),
        "reinforce_self_play:num_iterations": lambda n: self_play(num_iterations=n),
        "reinforce_self_play:batch_size": lambda n: self_play(batch_size=n),
        "reinforce_self_play:pool_every": lambda n: self_play(pool_every=n),
        "monte_carlo_value_fit:num_games": lambda n: monte_carlo_value_fit(g22, p22, _RNG(0), num_games=n),
        "fit_fast_policy:num_steps": lambda n: fit_fast_policy(g22, np.array([0]), np.array([0]), lr=0.1, num_steps=n),
        "expert_iteration:num_iterations": lambda n: ex_it(num_iterations=n),
        "expert_iteration:games_per_iteration": lambda n: ex_it(games_per_iteration=n),
        "expert_iteration:num_simulations": lambda n: ex_it(num_simulations=n),
        "expert_iteration:policy_steps": lambda n: ex_it(policy_steps=n),
        "expert_iteration:temperature_moves": lambda n: ex_it(temperature_moves=n),
        "square_board_symmetries:size": lambda n: square_board_symmetries(n),
        "mcts:num_simulations": lambda n: mcts(game, root, num_simulations=n, rng=_RNG(0)),
        "mcts:num_rollouts": lambda n: mcts(game, root, num_simulations=2, rng=_RNG(0), num_rollouts=n,
                                            rollout_policy=uniform_prior(game)),
        "rollout_value:num_rollouts": lambda n: rollout_value(game, root, uniform_prior(game), _RNG(0), num_rollouts=n),
        "from_outcomes:n_states": lambda n: from_outcomes(n, 1, np.arange(3), [2, 2], [0.0, 0.0], [1.0, 1.0],
                                                          [0.5, 0.5], gamma=0.9),
        "from_outcomes:n_actions": lambda n: from_outcomes(1, n, np.arange(3), [1, 1], [0.0, 0.0], [1.0, 1.0], [1.0],
                                                           gamma=0.9),
        "MNKGame:m": lambda n: MNKGame(n, 2, 2),
        "MNKGame:n": lambda n: MNKGame(2, n, 2),
        "MNKGame:k": lambda n: MNKGame(2, 2, n),
        "NimGame:piles[0]": lambda n: NimGame((n, 1), 2),
        "NimGame:max_take": lambda n: NimGame((1, 2), n),
        "RandomTreeGame:depth": lambda n: RandomTreeGame(n, 2, np.zeros(4)),
        "RandomTreeGame:branching": lambda n: RandomTreeGame(2, n, np.zeros(4)),
        "RandomTreeGame.sample:depth": lambda n: RandomTreeGame.sample(_RNG(0), depth=n, branching=2),
        "RandomTreeGame.sample:branching": lambda n: RandomTreeGame.sample(_RNG(0), depth=2, branching=n),
    }


_COUNT_CALLS = sorted(_count_calls())


@pytest.mark.parametrize("value", [-1, 1.5, 2.0, True, "2", float("nan")])
@pytest.mark.parametrize("key", _COUNT_CALLS)
def test_count_arguments_must_be_non_negative_integers(key: str, value: object) -> None:
    """A fractional count was a bare TypeError from range() (or silently floored: horizon 2.5 ran as 2, ancvi_beta
    took k = 1.5 off the sequence), a negative one ran 0 iterations. Now a ReferenceError_ (a ValueError) names
    the argument and the value; 2.0 is refused as validate_k refuses it. So are the counts of the AlphaGo pipeline,
    MCTS and the built-in games (games_per_iteration 2.5 was a bare TypeError, MNKGame(2.0, 2, 2) a board whose
    every move failed) and GMRES's restart / max_matvecs (restart 0 silently ran as 1, max_matvecs -1 returned
    x0 as an answer)."""
    arg = key.split(":")[1]
    with pytest.raises(ReferenceError_, match=f"{re.escape(arg)} must be an integer >= [01]"):
        _count_calls()[key](value)


@pytest.mark.parametrize("key", _COUNT_CALLS)
def test_count_arguments_accept_numpy_integers(key: str) -> None:
    big = key.split(":")[1] in ("max_iters", "max_trajectories", "max_matvecs")  # budgets: large enough to converge
    _count_calls()[key](np.int64(1000) if big else np.int32(2))


@pytest.mark.parametrize("tie_rtol", [-1e-12, 1.0, 2.0, float("nan"), float("inf"), "1e-12"])
def test_greedy_tie_rtol_must_lie_in_0_1(tie_rtol: object) -> None:
    from reference.mdp import greedy

    with pytest.raises(ReferenceError_, match="tie_rtol"):
        greedy(np.zeros((2, 2)), tie_rtol=tie_rtol)  # type: ignore[arg-type]
    assert list(greedy(np.array([[0.0, 1.0]]), tie_rtol=0.0)) == [1]


@pytest.mark.parametrize("mask", [0.5, 2, -1, float("nan")])
def test_masks_must_be_boolean_or_exactly_0_1(mask: float) -> None:
    """A valid mask of 0.5 was read as True by grpo_objective and the IS surrogates (astype(bool))."""
    from reference.dp import end_components
    from reference.grpo import grpo_objective
    from reference.trust_region import is_surrogate_estimate, is_surrogate_terms

    lp = np.full((2, 2), -0.7)
    va = np.ones((2, 2))
    va[1, 0] = mask
    for call in (lambda v: grpo_objective(lp, lp, [0.0, 1.0], v, group_size=2),
                 lambda v: is_surrogate_terms(lp, lp, lp, v, gamma=0.9),
                 lambda v: is_surrogate_estimate(lp, lp, lp, v, gamma=0.9),
                 lambda v: value_regression_loss(lp, lp, np.zeros((2, 2)), np.zeros((2, 2)), v)):
        with pytest.raises(ReferenceError_, match="valid must be boolean"):
            call(va)
        assert np.array_equal(call(np.ones((2, 2))), call(np.ones((2, 2), dtype=bool)))
    allowed = np.ones((4, 2))
    allowed[0, 0] = mask
    with pytest.raises(ReferenceError_, match="allowed must be boolean"):
        end_components(_mdp3(), allowed)  # type: ignore[arg-type]


@pytest.mark.parametrize("gamma", ["0.9", b"0.9", True, np.True_, None, [0.9], np.array([0.9])])
def test_gamma_must_be_a_real_number(gamma: object) -> None:
    """validate_gamma("0.9") and validate_gamma(True) passed as 0.9 and 1.0."""
    from reference.errors import InvalidDiscountError
    from reference.mdp import validate_gamma

    with pytest.raises(InvalidDiscountError, match="gamma must be a real number"):
        validate_gamma(gamma)  # type: ignore[arg-type]
    assert validate_gamma(1) == 1.0 and validate_gamma(np.float32(0.5)) == 0.5  # type: ignore[arg-type]
    assert validate_gamma(np.array(0.9)) == 0.9  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_row", [[0.7, 1.0], [float("nan"), 1.0], [-0.5, 1.0], [0.0, 0.9]])
def test_MDP_11_from_arrays_checks_the_whole_term_row(bad_row: list[float]) -> None:
    """With P of shape [S+1, A, S+1] only P[term, a, term] was checked: a term row [0.7, 1.0] (sum 1.7), NaN or
    -0.5 elsewhere was accepted and dropped (review 2026-12-06). The whole row must be e_term."""
    from reference.errors import InvalidMDPError
    from reference.mdp import from_arrays

    P = np.array([[[0.5, 0.5]], [bad_row]])
    with pytest.raises(InvalidMDPError, match="term"):
        from_arrays(P, np.array([[1.0]]), np.array([1.0]), gamma=0.9)
    P[1, 0] = [0.0, 1.0]
    assert from_arrays(P, np.array([[1.0]]), np.array([1.0]), gamma=0.9).n_states == 1


@pytest.mark.parametrize("what", ["values_str", "values_complex", "policy_str", "policy_complex", "q_nan", "q_str"])
def test_MDP_validators_refuse_strings_complex_numbers_and_nan_q(what: str) -> None:
    """validate_values / validate_policy parsed string arrays and dropped imaginary parts (a warning only);
    greedy gave a NaN row action 0 (review 2026-12-06)."""
    from reference.errors import ReferenceError_
    from reference.mdp import greedy, validate_policy, validate_values

    mdp = random_mdp(np.random.default_rng(0), 1, 2, gamma=0.9)
    with pytest.raises(ReferenceError_):
        if what == "values_str":
            validate_values(mdp, np.array(["1.5", "0"]))
        elif what == "values_complex":
            validate_values(mdp, np.array([1.5 + 1j, 0.0]))
        elif what == "policy_str":
            validate_policy(mdp, np.array([["0.5", "0.5"], ["0.5", "0.5"]]))
        elif what == "policy_complex":
            validate_policy(mdp, np.array([[0.5 + 0j, 0.5], [0.5, 0.5]]))
        elif what == "q_nan":
            greedy(np.array([[np.nan, 1.0], [0.0, 0.0]]))
        else:
            greedy(np.array([["1", "0"], ["0", "0"]]))


@pytest.mark.parametrize("call", [
    "tolerance_inf", "tolerance_cond_inf", "counted_eps_neg", "counted_eps_zero", "counted_frac",
    "cond_gamma_big", "cond_gamma_nan", "cond_gamma_neg", "cond_horizon_neg", "scale_neg_r", "scale_gamma_big",
    "cd_h_zero", "cd_f_error_neg"])
def test_tolerance_helpers_refuse_nonsense(call: str) -> None:
    """Review 2026-12-06: tolerance(inf) returned inf (a tolerance every comparison passes); a negative eps in
    counted_tolerance gave a negative bound; discount_condition(1.5) took the gamma = 1 branch and (-0.5) gave a
    condition number below 1; value_scale(-1, 0.9) = -10; central_difference(h=0) a raw ZeroDivisionError."""
    from reference import tolerance as T

    calls: dict[str, Callable[[], object]] = {
        "tolerance_inf": lambda: T.tolerance(float("inf")),
        "tolerance_cond_inf": lambda: T.tolerance(1.0, condition=float("inf")),
        "counted_eps_neg": lambda: T.counted_tolerance(1.0, roundings=3, eps=-1e-16),
        "counted_eps_zero": lambda: T.counted_tolerance(1.0, roundings=3, eps=0.0),
        "counted_frac": lambda: T.counted_tolerance(1.0, roundings=2.5),  # type: ignore[arg-type]
        "cond_gamma_big": lambda: T.discount_condition(1.5, 3.0),
        "cond_gamma_nan": lambda: T.discount_condition(float("nan"), 3.0),
        "cond_gamma_neg": lambda: T.discount_condition(-0.5),
        "cond_horizon_neg": lambda: T.discount_condition(1.0, -5.0),
        "scale_neg_r": lambda: T.value_scale(-1.0, 0.9),
        "scale_gamma_big": lambda: T.value_scale(1.0, 1.5, 2.0),
        "cd_h_zero": lambda: T.central_difference(lambda x: float(np.sum(x)), np.zeros(1), h=0.0, f_error=0.0),
        "cd_f_error_neg": lambda: T.central_difference(lambda x: float(np.sum(x)), np.zeros(1), h=1e-3, f_error=-1.0),
    }
    with pytest.raises(ValueError):
        calls[call]()


def test_generators_refuse_out_of_range_parameters_and_cap_the_early_stop_mass() -> None:
    """random_mdp took terminal_prob = -0.1 / NaN silently (a continual task) and floored branching = 2.7;
    random_layered_mdp(early_stop_prob = 0.6) raised a negative-probability error (its mass was not capped)."""
    from reference.generators import random_layered_mdp

    rng = np.random.default_rng(0)
    for kw in ({"terminal_prob": -0.1}, {"terminal_prob": float("nan")}, {"branching": 2.7}, {"branching": 0},
               {"reward_outcomes": 2.5}):
        with pytest.raises(ValueError):
            random_mdp(rng, 3, 2, gamma=0.9, **kw)
    m = random_layered_mdp(rng, n_layers=3, width=2, n_actions=2, early_stop_prob=0.6, gamma=1.0)
    assert m.n_states == 6
    with pytest.raises(ValueError):
        random_layered_mdp(rng, n_layers=3, width=2, n_actions=2, early_stop_prob=1.5, gamma=1.0)


def test_conjugate_gradient_refuses_a_nan_or_misshapen_matvec() -> None:
    """p^T A p = NaN passed the "<= 0" check and x came back NaN; a matvec of another shape broadcast."""
    from reference.trust_region import conjugate_gradient

    b = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ReferenceError_, match="not finite and > 0"):
        conjugate_gradient(lambda p: np.full(3, np.nan), b, iters=5)
    with pytest.raises(ReferenceError_, match="not finite and > 0"):
        conjugate_gradient(lambda p: np.full(3, np.inf) * p, b, iters=5)
    with pytest.raises(ShapeError, match="matvec returned shape"):
        conjugate_gradient(lambda p: np.ones((3, 3)) @ p[:, None] + 1.0, b, iters=5)


@pytest.mark.parametrize(("kw", "match"), [
    ({"damping": float("nan")}, "damping"), ({"damping": -0.1}, "damping"), ({"damping": "0.1"}, "damping"),
    ({"delta": 0.0}, "delta"), ({"delta": float("inf")}, "delta"),
])
def test_trpo_damping_and_delta_are_checked(kw: dict[str, Any], match: str) -> None:
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    with pytest.raises(ReferenceError_, match=match):
        trpo_exact(mdp, np.zeros((mdp.n_states_plus, mdp.n_actions)), iters=1, **kw)


def test_value_targets_that_overflow_raise() -> None:
    """A + V and the discounted reward-to-go beyond the float64 range returned inf with a RuntimeWarning."""
    from reference.advantages import reward_to_go_targets, value_targets

    big = np.full((2, 1), 1e308)
    with pytest.raises(ReferenceError_, match="overflows"):
        value_targets(big, big)
    with pytest.raises(ReferenceError_, match="overflows"):
        reward_to_go_targets(big, np.zeros((2, 1), bool), np.zeros((2, 1), bool), gamma=1.0)


# ------------------------------------------------------- evaluation / gradients / pg_algorithms (review 2026-12-07)
def _loop_mdp() -> Any:
    """One state that loops with probability 0.5 under both actions (a cycle), else ends."""
    from reference.mdp import from_arrays

    return from_arrays(np.array([[[0.5, 0.5], [0.5, 0.5]]]), np.array([[1.0, 0.0]]), gamma=0.9)


def test_pg_algorithm_default_horizon_is_refused_on_a_cyclic_mdp() -> None:
    """The default horizon |S| + 1 cut the loop's episodes at 2 steps: the mean step was 22 % short of -grad J,
    silently. On an acyclic MDP the default stays (it never truncates there)."""
    from reference.pg_algorithms import is_acyclic, policy_gradient_algorithm_1, policy_gradient_algorithm_2

    loop = _loop_mdp()
    assert not is_acyclic(loop)
    lay = random_layered_mdp(np.random.default_rng(0), 3, 2, 2, gamma=0.9)
    assert is_acyclic(lay)
    for alg in (policy_gradient_algorithm_1, policy_gradient_algorithm_2):
        with pytest.raises(ReferenceError_, match="pass horizon="):
            alg(loop, rng=np.random.default_rng(0), num_iters=1, lr_theta=0.1, lr_phi=0.1)
        alg(loop, rng=np.random.default_rng(0), num_iters=1, lr_theta=0.1, lr_phi=0.1, horizon=50)
        alg(lay, rng=np.random.default_rng(0), num_iters=1, lr_theta=0.1, lr_phi=0.1)


def test_a2c_entropy_beta_must_be_a_finite_number() -> None:
    """NaN dropped the entropy bonus silently (NaN > 0 is False); "0.1" raised a bare TypeError."""
    from reference.pg_algorithms import a2c

    lay = random_layered_mdp(np.random.default_rng(0), 2, 2, 2, gamma=0.9)
    for beta in (float("nan"), -0.1, float("inf"), "0.1"):
        with pytest.raises(ReferenceError_, match="entropy_beta"):
            a2c(lay, rng=np.random.default_rng(0), num_updates=1, lr_theta=0.1, lr_phi=0.1,
                entropy_beta=beta)  # type: ignore[arg-type]


def test_learners_and_losses_check_step_sizes_weights_and_policies() -> None:
    """lr = -1 ascended the loss and NaN gave NaN weights; w / w0 / v of the wrong length raised numpy's bare
    ValueError; a pi at the horizon that is not a distribution gave a made-up target (2.8 for 4.15)."""
    from reference.evaluation import learn_q, learn_v, q_targets, v_gradients, v_loss, v_loss_gradient
    from reference.sampling import sample_trajectories

    mdp = _loop_mdp()
    pi = np.full((2, 2), 0.5)
    x = np.array([[1.0], [0.0]])  # features of term are 0 (EVAL-04)
    xq = np.array([[[1.0], [1.0]], [[0.0], [0.0]]])
    for lr in (-1.0, float("nan"), 0.0, "0.1"):
        with pytest.raises(ReferenceError_, match="lr"):
            learn_v(mdp, pi, x, k=1, lr=lr, n_iters=1, rng=np.random.default_rng(0))  # type: ignore[arg-type]
        with pytest.raises(ReferenceError_, match="lr"):
            learn_q(mdp, pi, xq, k=1, lr=lr, n_iters=1, rng=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="w0 must have shape"):
        learn_v(mdp, pi, x, k=1, lr=0.1, n_iters=1, rng=np.random.default_rng(0), w0=np.zeros(3))
    traj = sample_trajectories(mdp, pi, rng=np.random.default_rng(0), n=2, horizon=3)
    with pytest.raises(ShapeError, match="w must have shape"):
        v_gradients(traj, x, np.zeros(3), gamma=0.9, k=1)
    with pytest.raises(ShapeError, match="w must have shape"):
        v_loss_gradient(mdp, pi, x, np.zeros(2))
    with pytest.raises(ShapeError, match="v must have shape"):
        v_loss(mdp, pi, np.zeros(1))
    q = np.array([[1.0, 2.0], [0.0, 0.0]])
    for bad in ([[2.0, -1.0], [0.5, 0.5]], [[5.0, 5.0], [0.5, 0.5]], [[np.nan, 1.0], [0.5, 0.5]]):
        with pytest.raises(InvalidPolicyError, match="not on the simplex"):
            q_targets(traj, q, gamma=0.9, k=5, pi=np.array(bad))


def test_gradient_helpers_check_weights_and_distributions() -> None:
    """weighted_min_variance_baseline broadcast a w2 of shape [A] and took negative w2 or a p off the simplex;
    conditional_expectation gave NaN for a group of total weight 0 and took negative weights;
    expand_random_time_step returned negative sample weights and raised a bare IndexError for short weights;
    k_step_q_estimates returned NaN for a NaN bootstrap value it reads."""
    from reference.gradients import (
        conditional_expectation,
        expand_random_time_step,
        k_step_q_estimates,
        weighted_min_variance_baseline,
    )

    p = np.array([[0.5, 0.5], [0.2, 0.8]])
    q = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ShapeError, match="share one"):
        weighted_min_variance_baseline(p, np.array([1.0, 2.0]), q)
    with pytest.raises(ReferenceError_, match="w2 must be >= 0"):
        weighted_min_variance_baseline(p, -np.ones((2, 2)), q)
    with pytest.raises(InvalidPolicyError, match="distribution"):
        weighted_min_variance_baseline(2 * p, np.ones((2, 2)), q)
    with pytest.raises(ReferenceError_, match="total weight 0"):
        conditional_expectation(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0]), np.array([0, 0, 1]))
    with pytest.raises(ReferenceError_, match="weights"):
        conditional_expectation(np.array([1.0, 2.0]), np.array([-1.0, 2.0]), np.array([0, 0]))
    g = np.ones((2, 3))
    with pytest.raises(ReferenceError_, match="weights"):
        expand_random_time_step(g, np.array([2, 3]), np.array([-0.5, 1.5]))
    with pytest.raises(ShapeError, match="weights must have shape"):
        expand_random_time_step(g, np.array([2, 3]), np.array([1.0]))
    boot = np.array([[0.0, np.nan, 0.0]])
    with pytest.raises(ReferenceError_, match="must be finite"):
        k_step_q_estimates(np.ones((1, 2)), boot, np.array([2]), gamma=0.9, k=1)
    # a NaN the estimate does not read (past the episode's end) is allowed, as elsewhere
    k_step_q_estimates(np.ones((1, 2)), np.array([[0.0, 0.0, np.nan]]), np.array([1]), gamma=0.9, k=1)


def test_trust_region_and_grpo_inputs_of_the_2026_12_07_review() -> None:
    """Accepted or refused with a raw TypeError / numpy error before: a NaN or +inf log_prob_ref on a valid step
    (grpo_objective returned NaN), eps_std '0.5' or True and reward strings ['1', '2'] (parsed), beta / lr / delta
    given as strings (raw TypeError), d_targ NaN (beta never adapted) or negative, hessian_j_fd(h=0) (NaN),
    fisher_vector_product with a 1-D theta (numpy AxisError). And kl_k3(+inf) is +inf, its limit (it was NaN)."""
    from reference.grpo import grpo_objective
    from reference.surrogates import grpo_advantages, kl_k3
    from reference.trust_region import (
        backtracking_line_search,
        fisher_vector_product,
        hessian_j_fd,
        ppo_clip_exact,
        ppo_penalty_exact,
    )

    ln = np.log(np.full((2, 2), 0.5))
    valid = np.ones((2, 2), dtype=bool)
    for ref in (np.full((2, 2), np.nan), np.full((2, 2), np.inf)):
        with pytest.raises(ReferenceError_, match="log_prob_ref"):
            grpo_objective(ln, ln, np.array([1.0, 0.0]), valid, group_size=2, beta=0.1, log_prob_ref=ref)
    with pytest.raises(ReferenceError_, match="beta"):
        grpo_objective(ln, ln, np.array([1.0, 0.0]), valid, group_size=2, beta="0.1",  # type: ignore[arg-type]
                       log_prob_ref=ln)
    for eps_std in ("0.5", True):
        with pytest.raises(ReferenceError_, match="eps_std"):
            grpo_advantages(np.array([1.0, 2.0]), eps_std=eps_std)  # type: ignore[arg-type]
    with pytest.raises(ReferenceError_, match="rewards"):
        grpo_advantages(np.array(["1", "2"]))
    mdp = random_mdp(np.random.default_rng(0), 2, 2, gamma=0.9)
    th = np.zeros((3, 2))
    with pytest.raises(ReferenceError_, match="lr"):
        ppo_clip_exact(mdp, th, lr="0.1", iters=1)  # type: ignore[arg-type]
    for d_targ in (np.nan, -0.01, 0.0):
        with pytest.raises(ReferenceError_, match="d_targ"):
            ppo_penalty_exact(mdp, th, lr=0.1, iters=1, d_targ=d_targ)
    with pytest.raises(ReferenceError_, match="h must"):
        hessian_j_fd(mdp, th, h=0.0)
    with pytest.raises(ShapeError):
        fisher_vector_product(np.zeros(3), np.zeros(3), np.ones(3))
    with pytest.raises(ReferenceError_, match="delta"):
        backtracking_line_search(np.zeros(2), np.ones(2), objective=lambda t: 0.0, constraint=lambda t: 0.0,
                                 delta="0.1")  # type: ignore[arg-type]
    assert kl_k3(np.array([np.inf]))[0] == np.inf
