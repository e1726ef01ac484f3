"""BEL-01..BEL-24: Bellman operators, contraction, Bellman (optimality) equations, optimal policies."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reference import exact
from reference.bellman import (
    bellman_optimality_q,
    bellman_optimality_v,
    bellman_q,
    bellman_v,
    greedy_from_q,
    greedy_from_v,
    sup_norm,
)
from reference.dp import policy_iteration, q_star, v_star
from reference.mdp import FiniteMDP, deterministic_policy, from_arrays, greedy
from reference.testing.oracles import expectation_by_outcomes, optimal_values_by_enumeration, value_tolerance
from reference.testing.strategies import finite_mdps, policies, value_functions
from reference.tolerance import tolerance

# Contraction checks compare ||B x - B y|| with gamma ||x - y||; both sides are computed in float64 from
# operands of magnitude ~ scale, so the slack is tolerance(scale, terms=|S+|) (sums of |S+| products).


def _contraction_slack(mdp: FiniteMDP, *xs: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(x))) for x in xs) + mdp.max_abs_reward
    return tolerance(scale, terms=mdp.n_states_plus)


@given(finite_mdps(), st.data())
def test_BEL_08_bellman_operator_is_gamma_contraction(mdp: FiniteMDP, data: st.DataObject) -> None:
    pi = data.draw(policies(mdp))
    v1, v2 = data.draw(value_functions(mdp)), data.draw(value_functions(mdp))
    lhs = sup_norm(bellman_v(mdp, pi, v1) - bellman_v(mdp, pi, v2))
    assert lhs <= mdp.gamma * sup_norm(v1 - v2) + _contraction_slack(mdp, v1, v2)


@given(finite_mdps(), st.data())
def test_BEL_09_q_bellman_operator_is_contraction_with_fixed_point_q_pi(mdp: FiniteMDP,
                                                                       data: st.DataObject) -> None:
    pi = data.draw(policies(mdp))
    q1, q2 = data.draw(value_functions(mdp, q=True)), data.draw(value_functions(mdp, q=True))
    lhs = sup_norm(bellman_q(mdp, pi, q1) - bellman_q(mdp, pi, q2))
    assert lhs <= mdp.gamma * sup_norm(q1 - q2) + _contraction_slack(mdp, q1, q2)
    q = exact.q_pi(mdp, pi)
    assert sup_norm(bellman_q(mdp, pi, q) - q) <= value_tolerance(mdp)


@given(finite_mdps(), st.data())
def test_BEL_15_optimality_operator_is_gamma_contraction(mdp: FiniteMDP, data: st.DataObject) -> None:
    v1, v2 = data.draw(value_functions(mdp)), data.draw(value_functions(mdp))
    lhs = sup_norm(bellman_optimality_v(mdp, v1) - bellman_optimality_v(mdp, v2))
    assert lhs <= mdp.gamma * sup_norm(v1 - v2) + _contraction_slack(mdp, v1, v2)


@given(finite_mdps(), st.data())
def test_BEL_22_q_optimality_operator_is_gamma_contraction(mdp: FiniteMDP, data: st.DataObject) -> None:
    q1, q2 = data.draw(value_functions(mdp, q=True)), data.draw(value_functions(mdp, q=True))
    lhs = sup_norm(bellman_optimality_q(mdp, q1) - bellman_optimality_q(mdp, q2))
    assert lhs <= mdp.gamma * sup_norm(q1 - q2) + _contraction_slack(mdp, q1, q2)


@given(finite_mdps(), st.data())
def test_BEL_04_v_pi_is_the_unique_fixed_point_of_bellman_operator(mdp: FiniteMDP, data: st.DataObject) -> None:
    """V^pi = B^pi V^pi, and iterating B^pi from any V (BEL-02, Banach) reaches the same point."""
    pi = data.draw(policies(mdp))
    v = exact.v_pi(mdp, pi)
    tol = value_tolerance(mdp)
    assert sup_norm(bellman_v(mdp, pi, v) - v) <= tol
    x = data.draw(value_functions(mdp))
    d0 = sup_norm(x - v)
    # each sweep rounds at the magnitude of its operand, |x_k| <= |V^pi| + d0, not only at the MDP-19 bound
    # (with all rewards 0, V^pi = 0 and that bound is 0, while x is not)
    sweep_tol = value_tolerance(mdp, extra_scale=d0)
    for k in range(1, 60):
        x = bellman_v(mdp, pi, x)
        # BEL-02: ||B^k x - V^pi|| <= gamma^k ||x - V^pi|| (plus accumulated rounding of k sweeps)
        assert sup_norm(x - v) <= mdp.gamma**k * d0 + k * sweep_tol


@given(finite_mdps(max_states=5, max_actions=3), st.data())
def test_BEL_02_any_fixed_point_found_by_iteration_equals_v_pi(mdp: FiniteMDP, data: st.DataObject) -> None:
    """Converse of BEL-04: a V with V = B^pi V (found here by iterating to a certified residual)
    equals V^pi: ||V - V^pi|| <= ||B^pi V - V|| / (1 - gamma)."""
    pi = data.draw(policies(mdp))
    x = data.draw(value_functions(mdp))
    for _ in range(200):
        x = bellman_v(mdp, pi, x)
    res = sup_norm(bellman_v(mdp, pi, x) - x)
    # the residual is computed at the magnitude of x (with all rewards 0 the bound is tight, x = gamma x
    # on a self-loop, and only rounding at |x| separates the two sides)
    tol = 2 * value_tolerance(mdp, extra_scale=sup_norm(x))
    assert sup_norm(x - exact.v_pi(mdp, pi)) <= res / (1 - mdp.gamma) + tol


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.data())
def test_BEL_13_max_lemma(u: list[float], data: st.DataObject) -> None:
    v = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(u), max_size=len(u)))
    ua, va = np.array(u), np.array(v)
    # max and subtraction: each side is exact up to one rounding of the difference (relative eps)
    assert abs(va.max() - ua.max()) <= np.max(np.abs(ua - va)) * (1 + 4 * np.finfo(float).eps)


@given(finite_mdps(), st.data())
def test_BEL_07_sup_norm_is_a_norm(mdp: FiniteMDP, data: st.DataObject) -> None:
    x, y = data.draw(value_functions(mdp)), data.draw(value_functions(mdp))
    c = data.draw(st.floats(-10, 10))
    slack = tolerance(sup_norm(x) + sup_norm(y))
    assert sup_norm(x + y) <= sup_norm(x) + sup_norm(y) + slack
    assert abs(sup_norm(c * x) - abs(c) * sup_norm(x)) <= tolerance(abs(c) * sup_norm(x))
    assert sup_norm(np.zeros_like(x)) == 0.0 and (sup_norm(x) > 0) == bool(np.any(x != 0))


@given(finite_mdps(), st.data())
def test_BEL_18_bellman_pi_below_optimality_and_monotone(mdp: FiniteMDP, data: st.DataObject) -> None:
    pi = data.draw(policies(mdp))
    v = data.draw(value_functions(mdp))
    slack = _contraction_slack(mdp, v)
    assert np.all(bellman_v(mdp, pi, v) <= bellman_optimality_v(mdp, v) + slack)
    w = v + np.abs(data.draw(value_functions(mdp)))  # w >= v pointwise
    assert np.all(bellman_optimality_v(mdp, v) <= bellman_optimality_v(mdp, w) + _contraction_slack(mdp, w))


@given(finite_mdps(), st.data())
def test_BEL_19_bellman_optimality_iterates_increase_from_v_pi_to_v_star(mdp: FiniteMDP,
                                                                        data: st.DataObject) -> None:
    pi = data.draw(policies(mdp))
    x = exact.v_pi(mdp, pi)
    vs = v_star(mdp)
    tol = value_tolerance(mdp)
    for _k in range(1, 40):
        nxt = bellman_optimality_v(mdp, x)
        assert np.all(x <= nxt + tol)
        assert np.all(nxt <= vs + tol)
        x = nxt
    assert sup_norm(x - vs) <= mdp.gamma**39 * sup_norm(exact.v_pi(mdp, pi) - vs) + 40 * tol


@given(finite_mdps(max_states=4, max_actions=3), st.data())
def test_BEL_10_v_star_dominates_every_deterministic_and_random_policy(mdp: FiniteMDP,
                                                                      data: st.DataObject) -> None:
    vs = v_star(mdp)
    tol = value_tolerance(mdp)
    for acts in itertools.product(range(mdp.n_actions), repeat=mdp.n_states):
        pol = deterministic_policy([*list(acts), 0], mdp.n_actions)
        assert np.all(exact.v_pi(mdp, pol) <= vs + tol)
    pi = data.draw(policies(mdp))
    assert np.all(exact.v_pi(mdp, pi) <= vs + tol)


@given(finite_mdps(), st.data())
def test_BEL_12_v_star_solves_optimality_equation_uniquely_and_greedy_is_optimal(
        mdp: FiniteMDP, data: st.DataObject) -> None:
    vs = v_star(mdp)
    tol = value_tolerance(mdp)
    assert sup_norm(bellman_optimality_v(mdp, vs) - vs) <= tol
    # uniqueness: iterating B^* from any start converges to the same point (contraction, BEL-15)
    x = data.draw(value_functions(mdp))
    d0 = sup_norm(x - vs)
    sweep_tol = value_tolerance(mdp, extra_scale=d0)  # each sweep rounds at |x|, not only at the rewards' scale
    for _ in range(300):
        x = bellman_optimality_v(mdp, x)
    assert sup_norm(x - vs) <= mdp.gamma**300 * d0 + 300 * sweep_tol
    # BEL-17: the greedy policy w.r.t. V* has value V*
    pol = deterministic_policy(greedy_from_v(mdp, vs), mdp.n_actions)
    assert sup_norm(exact.v_pi(mdp, pol) - vs) <= 2 * tol


@given(finite_mdps(), st.data())
def test_BEL_17_value_of_greedy_policy_is_fixed_point_of_optimality_operator(
        mdp: FiniteMDP, data: st.DataObject) -> None:
    vs = v_star(mdp)
    pol = deterministic_policy(greedy_from_v(mdp, vs), mdp.n_actions)
    v = exact.v_pi(mdp, pol)
    assert sup_norm(bellman_optimality_v(mdp, v) - v) <= 2 * value_tolerance(mdp)


@given(finite_mdps())
def test_BEL_20_lookahead_of_v_star_is_q_star_and_q_of_optimal_policy(mdp: FiniteMDP) -> None:
    vs = v_star(mdp)
    pol = deterministic_policy(greedy_from_v(mdp, vs), mdp.n_actions)
    tol = value_tolerance(mdp)
    look = mdp.lookahead(vs)
    look[mdp.term] = 0.0
    assert sup_norm(look - exact.q_pi(mdp, pol)) <= 2 * tol


@given(finite_mdps(), st.data())
def test_BEL_21_q_star_solves_q_optimality_equation_and_argmax_is_optimal(mdp: FiniteMDP,
                                                                         data: st.DataObject) -> None:
    qs = q_star(mdp)
    tol = value_tolerance(mdp)
    assert sup_norm(bellman_optimality_q(mdp, qs) - qs) <= tol
    x = data.draw(value_functions(mdp, q=True))
    d0 = sup_norm(x - qs)
    sweep_tol = value_tolerance(mdp, extra_scale=d0)  # each sweep rounds at |x|, not only at the rewards' scale
    for _ in range(300):
        x = bellman_optimality_q(mdp, x)
    assert sup_norm(x - qs) <= mdp.gamma**300 * d0 + 300 * sweep_tol
    pol = deterministic_policy(greedy_from_q(qs), mdp.n_actions)
    assert sup_norm(exact.v_pi(mdp, pol) - v_star(mdp)) <= 2 * tol


@given(finite_mdps(max_states=4, max_actions=3))
def test_BEL_23_max_of_q_star_is_v_star(mdp: FiniteMDP) -> None:
    """max_a Q*(., a) is a fixed point of B* on V, hence V*. Q* here is the fixed point of the Q-optimality
    operator (BEL-21), found by iterating it from 0 until the residual stops shrinking; not ``q_star``, which
    is q_from_v(v_star), so that max_a q_star = B* v_star would re-check BEL-12 only. Bound (contraction):
    ||Q_n - Q*|| <= (||B* Q_n - Q_n|| + e) / (1 - gamma), e = the rounding of one application (the
    contraction slack); V* from the enumeration oracle (no code shared with dp)."""
    x = np.zeros((mdp.n_states_plus, mdp.n_actions))
    res = np.inf
    for _ in range(20_000):
        nxt = bellman_optimality_q(mdp, x)
        r_new = sup_norm(nxt - x)
        x = nxt
        if r_new == 0.0 or r_new >= res:  # converged to the rounding floor
            break
        res = r_new
    res = sup_norm(bellman_optimality_q(mdp, x) - x)
    e = _contraction_slack(mdp, x)
    q_err = (res + e) / (1.0 - mdp.gamma)
    w = x.max(axis=1)
    assert sup_norm(bellman_optimality_v(mdp, w) - w) <= (1.0 + mdp.gamma) * q_err + e  # fixed point of B*
    vs = optimal_values_by_enumeration(mdp)
    assert sup_norm(w - vs) <= q_err + value_tolerance(mdp)
    assert sup_norm(v_star(mdp) - w) <= q_err + value_tolerance(mdp)


@given(finite_mdps(max_states=4, max_actions=3))
def test_BEL_24_q_star_is_q_of_optimal_policy(mdp: FiniteMDP) -> None:
    """Q* = Q^{pi*} against an oracle that shares no code with policy iteration (q_star is computed from PI's
    V*): Q*(s, a) = E[r + gamma V*(s') | s, a] by the outcome loop, V* the best of all deterministic policies."""
    q_oracle = expectation_by_outcomes(mdp, optimal_values_by_enumeration(mdp))
    q_oracle[mdp.term] = 0.0
    tol = 2 * value_tolerance(mdp)
    assert sup_norm(q_star(mdp) - q_oracle) <= tol
    pol = deterministic_policy(policy_iteration(mdp).policy, mdp.n_actions)
    assert sup_norm(exact.q_pi(mdp, pol) - q_oracle) <= tol


def test_BEL_11_optimal_values_unique_but_optimal_policies_not() -> None:
    """Two actions with identical outcomes: both deterministic choices are optimal with equal values."""
    P = np.zeros((2, 3, 3))
    P[0, 0, 1] = P[0, 1, 1] = 1.0  # actions 0 and 1 identical at state 0
    P[0, 2, 2] = 1.0
    P[1, :, 2] = 1.0
    R = np.array([[0.0, 0.0, 0.5], [1.0, 1.0, 1.0]])
    mdp = from_arrays(P, R, [1.0, 0.0], gamma=0.9)
    vs = v_star(mdp)
    pa, pb = deterministic_policy([0, 0, 0], 3), deterministic_policy([1, 0, 0], 3)
    np.testing.assert_array_equal(exact.v_pi(mdp, pa), exact.v_pi(mdp, pb))
    assert sup_norm(exact.v_pi(mdp, pa) - vs) <= value_tolerance(mdp)
    # documented tie-break: lowest index among maximisers; PI keeps the current maximiser
    assert greedy_from_v(mdp, vs)[0] == 0
    assert greedy_from_v(mdp, vs, current=np.array([1, 0, 0]))[0] == 1


def test_BEL_16_greedy_tie_break_is_lowest_index_within_window() -> None:
    q = np.array([[1.0, 1.0 + 1e-13, 0.5], [0.0, -1e-14, 0.0], [3.0, 2.0, 3.0 - 1e-9]])
    np.testing.assert_array_equal(greedy(q), [0, 0, 0])
    np.testing.assert_array_equal(greedy(q, current=np.array([1, 2, 2])), [1, 2, 0])


@given(finite_mdps(), st.data())
def test_BEL_06_bellman_operator_matches_text_expectation(mdp: FiniteMDP, data: st.DataObject) -> None:
    """(B^pi V)(s) = E_{a ~ pi, (r, s') ~ p}[r + gamma V(s')], by a loop over the joint kernel."""
    from reference.testing.oracles import expectation_by_outcomes
    pi = data.draw(policies(mdp))
    v = data.draw(value_functions(mdp))
    rhs = (pi * expectation_by_outcomes(mdp, v)).sum(axis=1)
    assert sup_norm(bellman_v(mdp, pi, v) - rhs) <= _contraction_slack(mdp, v)
    rhs_star = expectation_by_outcomes(mdp, v).max(axis=1)
    assert sup_norm(bellman_optimality_v(mdp, v) - rhs_star) <= _contraction_slack(mdp, v)


def test_BEL_21_greedy_from_q_keeps_the_current_maximiser_on_ties() -> None:
    """Found by the mutation audit (2026-12-06): ``current`` of greedy_from_q was never exercised."""
    q = np.array([[1.0, 1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(greedy_from_q(q), [0, 1])
    np.testing.assert_array_equal(greedy_from_q(q, current=np.array([1, 0])), [1, 1])


def test_BEL_08_residual_rounding_bound_is_the_documented_count_and_bounds_the_true_rounding() -> None:
    """residual_rounding_bound is, by its docstring, gamma_n * (R + (1 + gamma) max|V|) (1 + 1e-9) with
    n = 2 m + 3 roundings (m the most outcomes of a row; a stochastic policy: m A terms and A + 1 more roundings).
    It must bound |computed - exact| of the residual r + gamma P V - V, the exact one in rationals from the stored
    floats. On rewards of 1e6 (two outcomes each, so r(s, a) itself is a rounded sum) and values of order 1, the
    true rounding exceeds one rounding's worth gamma_1 * scale: a bound with fewer roundings would not hold."""
    from fractions import Fraction

    from reference.bellman import residual_rounding_bound
    from reference.mdp import from_outcomes
    from reference.tolerance import counted_tolerance

    n_s, n_a, k, g = 3, 2, 2, 0.9
    worst_over_one_rounding = 0.0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        p = rng.uniform(0.0, 1.0, size=(n_s * n_a, k))
        p /= p.sum(axis=1, keepdims=True)
        rw = rng.choice([-1.0, 1.0], size=(n_s * n_a, k)) * rng.uniform(0.5, 1.0, size=(n_s * n_a, k)) * 1e6
        ns = rng.integers(0, n_s + 1, size=(n_s * n_a, k))
        mdp = from_outcomes(n_s, n_a, np.arange(0, n_s * n_a * k + 1, k), ns.ravel(), rw.ravel(), p.ravel(),
                            np.full(n_s, 1.0 / n_s), gamma=g, backend="dense")
        v = rng.choice([-1.0, 1.0], size=n_s + 1) * rng.uniform(0.5, 1.0, size=n_s + 1)
        v[n_s] = 0.0
        v_max = float(np.max(np.abs(v)))
        scale = (mdp.max_abs_reward + (1.0 + g) * v_max) * (1.0 + 1e-9)
        bound = residual_rounding_bound(mdp, v_max)
        assert mdp.max_outcomes == k
        assert bound == counted_tolerance(scale, roundings=2 * k + 3)
        assert residual_rounding_bound(mdp, v_max, stochastic_policy=True) == counted_tolerance(
            scale, roundings=2 * k * n_a + 3 + n_a + 1)
        computed = mdp.lookahead(v) - v[:, None]
        for s in range(n_s):
            for a in range(n_a):
                pp, rr, nn = mdp.outcomes(s, a)
                exact_res = sum(Fraction(float(x)) * (Fraction(float(y)) + Fraction(g) * Fraction(float(v[z])))
                                for x, y, z in zip(pp, rr, nn, strict=True)) - Fraction(float(v[s]))
                err = float(abs(Fraction(float(computed[s, a])) - exact_res))
                assert err <= bound, (seed, s, a, err, bound)
                worst_over_one_rounding = max(worst_over_one_rounding,
                                              err / counted_tolerance(mdp.max_abs_reward + (1.0 + g) * v_max,
                                                                      roundings=1))
    assert worst_over_one_rounding > 1.0  # the inputs are adversarial enough to need the counted roundings


def test_BEL_16_bare_greedy_window_scales_with_the_largest_q() -> None:
    """greedy(q) with the default scale 1: the documented window is tie_rtol * max(scale, |max_a q|), so at
    q of order 1e20 (ulp 16384) actions 1e6 apart are a tie (lowest index), 1e9 apart are not (1e-12 * 1e20 =
    1e8); a window of 1e-12 alone would split values that differ by less than one ulp's rounding of a sum."""
    top = 1e20
    np.testing.assert_array_equal(greedy(np.array([[top - 1e6, top]])), [0])
    np.testing.assert_array_equal(greedy(np.array([[top - 1e9, top]])), [1])
    np.testing.assert_array_equal(greedy(np.array([[-top, -top + 1e6]])), [0])  # |max q| on the negative side


def test_BEL_16_greedy_window_uses_expected_absolute_reward_of_stochastic_rewards() -> None:
    """Two actions with exactly equal expected reward 2^-32 (checked in rationals): action 0 draws 2^34, 2^-30
    and -2^33 with probabilities 1/4, 1/4, 1/2, action 1 pays 2^-32. r(s, 0) is a rounded sum of terms of size
    2^32 (it comes out 0 in float64); the window tie_rtol * (E|r| + gamma P|V|) of the docs covers that rounding
    through E|r| = 2^33, so the two are a tie and the lowest index, 0, is greedy. |E r| (2^-32) would not."""
    from fractions import Fraction

    from reference.mdp import from_outcomes

    mdp = from_outcomes(1, 2, [0, 3, 4], [1, 1, 1, 1], [2.0**34, 2.0**-30, -(2.0**33), 2.0**-32],
                        [0.25, 0.25, 0.5, 1.0], [1.0], gamma=0.9)
    means = [sum(Fraction(float(p)) * Fraction(float(r)) for p, r, _ in zip(*mdp.outcomes(0, a), strict=True))
             for a in range(2)]
    assert means[0] == means[1] == Fraction(1, 2**32)
    v = np.zeros(2)
    assert greedy_from_v(mdp, v)[0] == 0
    assert policy_iteration(mdp).policy[0] == 0
    assert abs(float(v_star(mdp)[0]) - 2.0**-32) <= mdp.tie_rtol * float(mdp.abs_r[0, 0])
