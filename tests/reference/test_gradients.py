"""Tests of reference.gradients: exact J and grad J, the estimators #0..#4, Rao-Blackwell, baselines,
the gamma-trick and the SGD selection rules (PG-01..PG-37).

Exact checks enumerate every trajectory of tiny layered (acyclic) MDPs with their probabilities
(reference.sampling.enumerate_trajectories) and compare with the linear-solve gradient. Tolerances come
from reference.tolerance: the scale of an estimator's mean is bounded by 2 H R_G with R_G = R H the
largest return (|score| <= 2 per step in the 1-norm, at most H steps), the sums run over N trajectories
times H steps, and the linear solves have condition number discount_condition(gamma, H).

Variance orderings use the trace of the covariance (open choice 21). On a layered MDP with a tabular
softmax policy the scores of different steps live in different rows of theta (s_t is in layer t), so
E<g_t, g_u> = 0 for t != u and the trace-variance of sum_t g_t is sum_t E||g_t||^2 - ||grad J||^2: the
per-step Rao-Blackwell and baseline results therefore carry over to the whole estimator. This is the
stated hypothesis of the ordering tests; on general MDPs those orderings are not theorems.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.dp import q_star, v_star
from reference.errors import InvalidDiscountError, ShapeError
from reference.exact import q_pi, v_pi
from reference.generators import random_layered_mdp, random_mdp
from reference.gradients import (
    bootstrap_values,
    conditional_expectation,
    discount_powers,
    exact_moments,
    expand_random_time_step,
    g_baseline_term,
    g_k_step,
    g_past_rewards,
    g_q_estimate,
    g_reward_to_go,
    g_state_baseline,
    g_total_return,
    gamma_trick_gradient,
    grad_j_exact,
    j_theta,
    k_step_q_estimates,
    log_prob_trajectories,
    optimal_baseline,
    past_discounted_rewards,
    per_step_terms,
    prefix_groups,
    rao_blackwellize,
    score_function_estimator,
    selection_probabilities,
    trajectory_score,
    weighted_min_variance_baseline,
    weighted_squared_error,
)
from reference.mdp import FiniteMDP, FloatArray, from_arrays
from reference.policies import score_norm_sq, softmax
from reference.sampling import Trajectories, discounted_returns, enumerate_trajectories, sample_trajectories
from reference.testing.strategies_pg import baselines, layered_mdps, softmax_parameters
from reference.tolerance import central_difference, counted_tolerance, discount_condition, tolerance, value_scale

EXACT_EXAMPLES = 30  # enumeration per example: keep the property tests inside the time budget


def _setup(mdp: FiniteMDP, theta: FloatArray) -> tuple[Trajectories, float]:
    """The oracle's trajectories and the tolerance for comparing an estimator's exact mean with grad J."""
    tr = enumerate_trajectories(mdp, softmax(theta))
    h = max(tr.horizon, 1)
    ret = max(mdp.max_abs_reward, 1.0) * h
    scale = 2.0 * h * (ret + 3.0 * 3.0) * h  # |psi| <= return + |b| (|b| <= 3 in the strategies), <= 2 per step
    return tr, tolerance(scale, terms=tr.n * h + mdp.n_states_plus, condition=discount_condition(mdp.gamma, h))


def _fixture(seed: int = 3, *, gamma: float = 0.9, stochastic: bool = True) -> tuple[FiniteMDP, FloatArray]:
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, reward_outcomes=2 if stochastic else 1,
                             early_stop_prob=0.2)
    theta = rng.normal(size=(mdp.n_states_plus, mdp.n_actions))
    return mdp, theta


# ------------------------------------------------------------------------------ J, p_theta, grad J
@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_01_PG_02_J_is_the_mean_return_over_trajectories(data: st.DataObject) -> None:
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    tr, tol = _setup(mdp, theta)
    g0 = discounted_returns(tr.rewards, mdp.gamma)[:, 0]
    assert abs(float(tr.weights @ g0) - j_theta(mdp, theta)) <= tol


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_03_trajectory_probability_is_the_product_formula(data: st.DataObject) -> None:
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    tr = enumerate_trajectories(mdp, softmax(theta))
    np.testing.assert_allclose(np.exp(log_prob_trajectories(mdp, theta, tr)), tr.weights, rtol=tolerance(
        1.0, terms=4 * tr.horizon + 4), atol=0)
    assert abs(tr.weights.sum() - 1.0) <= tolerance(1.0, terms=tr.n)


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_12_exact_gradient_matches_finite_differences(data: st.DataObject) -> None:
    """Central differences match grad J within the computed bound of :func:`reference.tolerance.central_difference`
    (Richardson truncation + rounding); h = 1e-4 keeps its worst-case rounding term f_error / h at ~1e-9 with
    the truncation below it (eps^(1/3), the optimum for a rounding of eps |J|, is too small for the
    worst-case f_error, which includes the solve's condition number). One evaluation of J
    is a linear solve: scale |J| <= R H, terms |S+| + A + 2 (the solve and the softmax), condition
    ||I - gamma P_pi|| ||(I - gamma P_pi)^{-1}|| <= 2 H (acyclic, T <= H, any gamma <= 1). The analytic
    gradient d pi A adds its own rounding: scale H * 2 R H (d <= H visits, |A| <= 2 R H), same condition."""
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    g = grad_j_exact(mdp, theta)
    horizon = max(enumerate_trajectories(mdp, softmax(theta)).horizon, 1)
    r_max = max(mdp.max_abs_reward, 1.0)
    kappa = discount_condition(1.0, horizon)
    f_error = tolerance(r_max * horizon, terms=mdp.n_states_plus + mdp.n_actions + 2, condition=kappa)
    g_error = tolerance(2.0 * r_max * horizon**2, terms=mdp.n_states_plus + 2, condition=kappa)
    fd, bound = central_difference(lambda t: j_theta(mdp, t), theta, h=1e-4, f_error=f_error)
    assert np.all(np.abs(g - fd) <= bound + g_error), float(np.max(np.abs(g - fd) - bound))


def test_PG_12_exact_gradient_on_a_cyclic_mdp_matches_finite_differences() -> None:
    """As above on a cyclic MDP: |J| <= R / (1 - gamma), condition (1 + gamma) / (1 - gamma); the analytic
    gradient's scale is d * 2 R / (1 - gamma) with sum_s d(s) <= 1 / (1 - gamma)."""
    mdp = random_mdp(np.random.default_rng(5), 4, 3, gamma=0.8)
    theta = np.random.default_rng(6).normal(size=(mdp.n_states_plus, mdp.n_actions))
    kappa = discount_condition(mdp.gamma)
    vmax = value_scale(mdp.max_abs_reward, mdp.gamma)
    f_error = tolerance(vmax, terms=mdp.n_states_plus + mdp.n_actions + 2, condition=kappa)
    g_error = tolerance(2.0 * vmax / (1.0 - mdp.gamma), terms=mdp.n_states_plus + 2, condition=kappa)
    fd, bound = central_difference(lambda t: j_theta(mdp, t), theta, h=1e-4, f_error=f_error)
    err = np.abs(grad_j_exact(mdp, theta) - fd)
    assert np.all(err <= bound + g_error), float(np.max(err - bound))


# ------------------------------------------------------------------------------ unbiasedness (exact)
@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_05_PG_07_total_return_estimator_is_unbiased_exact(data: st.DataObject) -> None:
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    tr, tol = _setup(mdp, theta)
    m = exact_moments(g_total_return(theta, tr, gamma=mdp.gamma), tr.weights)
    np.testing.assert_allclose(m.mean, grad_j_exact(mdp, theta), rtol=0, atol=tol)
    # PG-07: G_0 times the trajectory score is estimator #0
    g0 = discounted_returns(tr.rewards, mdp.gamma)[:, 0]
    np.testing.assert_allclose(g0[:, None, None] * trajectory_score(theta, tr),
                               g_total_return(theta, tr, gamma=mdp.gamma), rtol=0, atol=tol)


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_08_reward_to_go_estimator_is_unbiased_exact(data: st.DataObject) -> None:
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    tr, tol = _setup(mdp, theta)
    m = exact_moments(g_reward_to_go(theta, tr, gamma=mdp.gamma), tr.weights)
    np.testing.assert_allclose(m.mean, grad_j_exact(mdp, theta), rtol=0, atol=tol)


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_09_past_reward_terms_have_zero_mean_exact(data: st.DataObject) -> None:
    """E[Y_t | tau^(t)] = 0 for every prefix (exact conditional expectation), hence E sum_t Y_t = 0."""
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    tr, tol = _setup(mdp, theta)
    disc = tr.rewards * mdp.gamma ** np.arange(tr.horizon)
    past = np.cumsum(disc, axis=1) - disc  # sum_{t' < t} gamma^t' r_t' (E-26: from r_0)
    terms = per_step_terms(theta, tr, past)
    for t in range(tr.horizon):
        cond = conditional_expectation(terms[:, t], tr.weights, prefix_groups(tr, t, include_action=False))
        np.testing.assert_allclose(cond, 0.0, rtol=0, atol=tol)
    m = exact_moments(g_past_rewards(theta, tr, gamma=mdp.gamma), tr.weights)
    np.testing.assert_allclose(m.mean, 0.0, rtol=0, atol=tol)


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_10_PG_11_state_baseline_keeps_the_estimator_unbiased_exact(data: st.DataObject) -> None:
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    b = data.draw(baselines(mdp))
    tr, tol = _setup(mdp, theta)
    # PG-11: the baseline term has conditional mean 0 given tau^(t), and mean 0
    terms = per_step_terms(theta, tr, b[np.minimum(tr.states[:, :-1], b.size - 1)])
    for t in range(tr.horizon):
        cond = conditional_expectation(terms[:, t], tr.weights, prefix_groups(tr, t, include_action=False))
        np.testing.assert_allclose(cond, 0.0, rtol=0, atol=tol)
    np.testing.assert_allclose(exact_moments(g_baseline_term(theta, tr, b, gamma=mdp.gamma), tr.weights).mean,
                               0.0, rtol=0, atol=tol)
    m = exact_moments(g_state_baseline(theta, tr, b, gamma=mdp.gamma), tr.weights)
    np.testing.assert_allclose(m.mean, grad_j_exact(mdp, theta), rtol=0, atol=tol)


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_12_PG_14_q_estimate_with_any_critic_baseline_is_unbiased_exact(data: st.DataObject) -> None:
    """Q = Q^pi exact and b = V_phi arbitrary (PG-14: unbiased whatever the accuracy of V_phi)."""
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    v_phi = data.draw(baselines(mdp))
    tr, tol = _setup(mdp, theta)
    q = q_pi(mdp, softmax(theta))
    m = exact_moments(g_q_estimate(theta, tr, q, v_phi, gamma=mdp.gamma), tr.weights)
    np.testing.assert_allclose(m.mean, grad_j_exact(mdp, theta), rtol=0, atol=tol)


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data(), st.sampled_from([1, 2, 3, None]))
def test_PG_25_k_step_with_true_value_is_unbiased_exact(data: st.DataObject, k: int | None) -> None:
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    v_phi = data.draw(baselines(mdp))
    tr, tol = _setup(mdp, theta)
    v = v_pi(mdp, softmax(theta))
    m = exact_moments(g_k_step(theta, tr, v, v_phi, gamma=mdp.gamma, k=k, term=mdp.term), tr.weights)
    np.testing.assert_allclose(m.mean, grad_j_exact(mdp, theta), rtol=0, atol=tol)


def test_PG_25_k_step_with_a_wrong_critic_is_biased_and_bias_is_measured() -> None:
    """With V_phi != V^pi the k-step estimator is biased (exhibited exactly); k = inf is unbiased."""
    mdp, theta = _fixture()
    tr, tol = _setup(mdp, theta)
    v = v_pi(mdp, softmax(theta))
    v_phi = v + np.random.default_rng(0).normal(size=v.size)
    g = grad_j_exact(mdp, theta)
    bias = {k: float(np.linalg.norm(exact_moments(
        g_k_step(theta, tr, v_phi, v_phi, gamma=mdp.gamma, k=k, term=mdp.term), tr.weights).mean - g))
        for k in (1, 2, None)}
    assert bias[1] > 1e3 * tol and bias[2] > 1e3 * tol
    assert bias[None] <= tol
    # k-step estimate of Q: its exact conditional mean given (s_t, a_t) is Q^pi when V = V^pi
    boot = np.where(tr.states == mdp.term, 0.0, v[np.minimum(tr.states, v.size - 1)])
    qhat = k_step_q_estimates(tr.rewards, boot, tr.lengths, gamma=mdp.gamma, k=1)
    q = q_pi(mdp, softmax(theta))
    cond = conditional_expectation(qhat[:, 0], tr.weights, prefix_groups(tr, 0, include_action=True))
    np.testing.assert_allclose(cond, q[tr.states[:, 0], tr.actions[:, 0]], rtol=0, atol=tol)


def test_PG_24_learned_q_makes_the_estimator_biased() -> None:
    mdp, theta = _fixture()
    tr, tol = _setup(mdp, theta)
    q_phi = q_pi(mdp, softmax(theta)) + np.random.default_rng(1).normal(scale=0.3, size=(mdp.n_states_plus, 2))
    v_phi = v_pi(mdp, softmax(theta))
    bias = exact_moments(g_q_estimate(theta, tr, q_phi, v_phi, gamma=mdp.gamma), tr.weights).mean - \
        grad_j_exact(mdp, theta)
    assert float(np.linalg.norm(bias)) > 1e3 * tol


def test_k_step_q_estimates_reduce_to_monte_carlo_for_large_k() -> None:
    """'Reduces to': k >= T gives G_t (no bootstrap: V(term) = 0)."""
    mdp, theta = _fixture()
    tr = enumerate_trajectories(mdp, softmax(theta))
    boot = np.where(tr.states == mdp.term, 0.0, 5.0)
    g = discounted_returns(tr.rewards, mdp.gamma) * tr.valid
    for k in (tr.horizon, tr.horizon + 3, None):
        np.testing.assert_allclose(k_step_q_estimates(tr.rewards, boot, tr.lengths, gamma=mdp.gamma, k=k), g,
                                   rtol=0, atol=tolerance(3.0, terms=3))
    for bad in (0, 2.9, True, float("inf")):  # refused, never floored (k = 2.9 once ran as k = 2)
        with pytest.raises(ValueError, match="k must be"):
            k_step_q_estimates(tr.rewards, boot, tr.lengths, gamma=mdp.gamma, k=bad)  # type: ignore[arg-type]


def test_PG_12_statistical_on_a_cyclic_mdp() -> None:
    """Cyclic MDP (no enumeration): sampled estimators #1 and #4 (k = 2, V^pi) against grad J, per coordinate
    |mean - grad J| <= 4 sd / sqrt(n) (open choice 22), fixed seed. gamma = 0.5 and horizon 60: the
    truncated tail is bounded by gamma^60 R / (1 - gamma)^2 < 1e-17, far below the statistical bound."""
    mdp = random_mdp(np.random.default_rng(11), 3, 2, gamma=0.5, terminal_prob=0.2)
    theta = np.random.default_rng(12).normal(size=(mdp.n_states_plus, mdp.n_actions))
    pi = softmax(theta)
    n = 20_000
    tr = sample_trajectories(mdp, pi, rng=np.random.default_rng(13), n=n, horizon=60)
    g = grad_j_exact(mdp, theta)
    v = v_pi(mdp, pi)
    for est in (g_reward_to_go(theta, tr, gamma=mdp.gamma),
                g_k_step(theta, tr, v, v, gamma=mdp.gamma, k=2, term=mdp.term)):
        mean = est.mean(axis=0)
        sd = est.std(axis=0, ddof=1)
        assert np.all(np.abs(mean - g) <= 4 * sd / math.sqrt(n) + 1e-15)


# ------------------------------------------------------------------------------ Rao-Blackwell, baselines
@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_16_PG_17_rao_blackwell_per_step_exact_with_erratum_E_30(data: st.DataObject) -> None:
    """I_1 = grad log pi(a_t|s_t) gamma^t G_t; Y = (tau^(t), a_t) (E-30: r_t is not in Y). Then
    E[I_1 | Y] = grad log pi gamma^t Q^pi(s_t, a_t) exactly, with the same mean and no larger variance."""
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    tr, tol = _setup(mdp, theta)
    q = q_pi(mdp, softmax(theta))
    disc = mdp.gamma ** np.arange(tr.horizon)
    i1 = per_step_terms(theta, tr, disc * discounted_returns(tr.rewards, mdp.gamma))
    s = np.minimum(tr.states[:, :-1], mdp.term)
    i2_expected = per_step_terms(theta, tr, disc * q[s, tr.actions])
    for t in range(tr.horizon):
        i2 = rao_blackwellize(i1[:, t], tr.weights, prefix_groups(tr, t, include_action=True))
        np.testing.assert_allclose(i2, i2_expected[:, t], rtol=0, atol=tol)
        m1, m2 = exact_moments(i1[:, t], tr.weights), exact_moments(i2, tr.weights)
        np.testing.assert_allclose(m1.mean, m2.mean, rtol=0, atol=tol)
        assert m2.trace_variance <= m1.trace_variance + tol


def test_E_30_conditioning_on_r_t_does_not_give_Q() -> None:
    """With stochastic rewards, the text's Y (which would contain r_t) gives r_t + gamma E[V(s')|...], not Q."""
    mdp, theta = _fixture(stochastic=True)
    tr, tol = _setup(mdp, theta)
    q = q_pi(mdp, softmax(theta))
    g = discounted_returns(tr.rewards, mdp.gamma)[:, 0]
    wrong = conditional_expectation(g, tr.weights, prefix_groups(tr, 0, include_action=True, include_reward=True))
    right = conditional_expectation(g, tr.weights, prefix_groups(tr, 0, include_action=True))
    target = q[tr.states[:, 0], tr.actions[:, 0]]
    np.testing.assert_allclose(right, target, rtol=0, atol=tol)
    assert float(np.max(np.abs(wrong - target))) > 1e3 * tol


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_variance_orderings_on_layered_mdps_exact(data: st.DataObject) -> None:
    """PG-08/PG-12/PG-16/PG-25 (see the module docstring for why these hold on layered tabular MDPs):
    Var(#3, b) <= Var(#2, b) for every b, and Var(#4, k) is non-decreasing in k (V^pi bootstrap),
    ending at Var(#2, V^pi) for k = inf."""
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    b = data.draw(baselines(mdp))
    tr, tol = _setup(mdp, theta)
    pi = softmax(theta)
    q, v = q_pi(mdp, pi), v_pi(mdp, pi)
    def var(x: FloatArray) -> float:
        return exact_moments(x, tr.weights).trace_variance

    tol_v = tol * 50.0  # variances are squares of the estimator scale: same relative rounding
    assert var(g_q_estimate(theta, tr, q, b, gamma=mdp.gamma)) <= var(
        g_state_baseline(theta, tr, b, gamma=mdp.gamma)) + tol_v
    ks = [var(g_k_step(theta, tr, v, v, gamma=mdp.gamma, k=k, term=mdp.term)) for k in (1, 2, 3, None)]
    assert all(ks[i] <= ks[i + 1] + tol_v for i in range(3))
    assert abs(ks[-1] - var(g_state_baseline(theta, tr, v, gamma=mdp.gamma))) <= tol_v


@given(st.integers(0, 2**32 - 1))
def test_PG_18_weighted_minimum_variance_lemma(seed: int) -> None:
    """b* minimises E[w^2 (Q - b(s))^2]; the objective is b-quadratic, so E(b* + d) - E(b*) = E[w^2 d(s)^2]."""
    rng = np.random.default_rng(seed)
    s_n, a_n = 3, 4
    rho = rng.dirichlet(np.ones(s_n))
    p = rng.dirichlet(np.ones(a_n), size=s_n)
    w2 = rng.uniform(0.0, 2.0, size=(s_n, a_n))
    q = rng.normal(size=(s_n, a_n))
    b_star = weighted_min_variance_baseline(p, w2, q)
    f_star = weighted_squared_error(rho, p, w2, q, b_star)
    for _ in range(5):
        d = rng.normal(size=s_n)
        gap = weighted_squared_error(rho, p, w2, q, b_star + d) - f_star
        expect = float(rho @ ((p * w2).sum(axis=1) * d * d))
        assert abs(gap - expect) <= tolerance(10.0 * (1 + float(np.max(d * d))), terms=4 * s_n * a_n)
        assert gap >= -tolerance(10.0, terms=s_n * a_n)
    # w = 1: the conditional mean
    np.testing.assert_allclose(weighted_min_variance_baseline(p, np.ones_like(w2), q), (p * q).sum(axis=1),
                               rtol=0, atol=tolerance(4.0, terms=a_n))


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_19_optimal_baseline_minimises_exact_variance_on_layered_mdps(data: st.DataObject) -> None:
    """E-31: b* with w^2 = ||grad log pi||^2. On layered MDPs Var(#3, b) - Var(#3, b*) is the quadratic
    sum_s d_2(s) E_a[w^2] (b - b*)^2 >= 0 (d_2 = sum_t gamma^{2t} P(s_t = s)); checked against random b
    and against V^pi."""
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    b = data.draw(baselines(mdp))
    tr, tol = _setup(mdp, theta)
    pi = softmax(theta)
    q, v = q_pi(mdp, pi), v_pi(mdp, pi)
    b_star = optimal_baseline(mdp, theta)
    def var(x: FloatArray) -> float:
        return exact_moments(g_q_estimate(theta, tr, q, x, gamma=mdp.gamma), tr.weights).trace_variance

    tol_v = tol * 50.0
    assert var(b_star) <= var(b) + tol_v
    assert var(b_star) <= var(v) + tol_v
    assert var(b_star) <= exact_moments(g_state_baseline(theta, tr, b_star, gamma=mdp.gamma),
                                        tr.weights).trace_variance + tol_v


def test_PG_19_value_baseline_is_not_variance_optimal_exhibit() -> None:
    """An instance where b = V^pi has strictly larger variance than b* (0.059 against 0.0093; b = 0 gives 0.285,
    so the value baseline helps but is far from optimal)."""
    mdp, theta = _fixture(seed=0, gamma=1.0)
    tr, tol = _setup(mdp, theta)
    pi = softmax(theta)
    q, v = q_pi(mdp, pi), v_pi(mdp, pi)
    var = {name: exact_moments(g_q_estimate(theta, tr, q, b, gamma=1.0), tr.weights).trace_variance
           for name, b in (("0", np.zeros_like(v)), ("V", v), ("b*", optimal_baseline(mdp, theta)))}
    assert var["b*"] < var["V"] - 1e3 * tol
    # the weights that make b* differ from V: ||grad log pi||^2 varies with a
    w2 = score_norm_sq(theta)
    assert float(np.max(np.ptp(w2[: mdp.n_states], axis=1))) > 0.1


def test_PG_21_optimal_advantage_is_nonpositive() -> None:
    for seed, gamma in ((0, 0.9), (1, 1.0), (2, 0.5)):
        mdp = random_layered_mdp(np.random.default_rng(seed), 3, 3, 3, gamma=gamma)
        adv = q_star(mdp) - v_star(mdp)[:, None]
        tol = tolerance(3.0, terms=10, condition=discount_condition(gamma, 3))
        assert float(adv.max()) <= tol
        np.testing.assert_allclose(adv.max(axis=1), 0.0, rtol=0, atol=tol)  # the greedy action has A = 0
    mdp = random_mdp(np.random.default_rng(4), 5, 3, gamma=0.9)
    adv = q_star(mdp) - v_star(mdp)[:, None]
    assert float(adv.max()) <= tolerance(10.0, terms=10, condition=discount_condition(0.9))


def test_PG_22_nonnegative_rewards_give_nonnegative_q_and_push_up_every_sampled_action() -> None:
    """E-32: with rewards >= 0, Q^pi >= 0, so without a baseline the sampled action's own logit gets
    (1 - pi(a|s)) Q >= 0: every sampled action is pushed up; with b = V^pi it moves with the sign of A."""
    mdp0, theta = _fixture(seed=2)
    mdp = FiniteMDP(mdp0.n_states, mdp0.n_actions, mdp0.p0, mdp0.gamma, mdp0.indptr, mdp0.next_state,
                    np.abs(mdp0.reward), mdp0.prob)
    pi = softmax(theta)
    q = q_pi(mdp, pi)
    assert float(q.min()) >= 0.0
    tr = enumerate_trajectories(mdp, pi)
    g = g_q_estimate(theta, tr, q, np.zeros(mdp.n_states_plus), gamma=mdp.gamma)
    own = g[np.arange(tr.n), tr.states[:, 0], tr.actions[:, 0]]
    assert float(own.min()) >= 0.0
    g_adv = g_q_estimate(theta, tr, q, v_pi(mdp, pi), gamma=mdp.gamma)
    own_adv = g_adv[np.arange(tr.n), tr.states[:, 0], tr.actions[:, 0]]
    a0 = (q - v_pi(mdp, pi)[:, None])[tr.states[:, 0], tr.actions[:, 0]]
    # own_adv = (1 - pi(a0 | s0)) (q - v)(s0, a0) from the same floats as a0 (a layered MDP visits s0 once), and
    # 0 < 1 - pi < 1 here: a rounded product keeps its sign, so the signs agree everywhere, zeros included
    assert float(np.max(softmax(theta)[tr.states[:, 0], tr.actions[:, 0]])) < 1.0
    np.testing.assert_array_equal(np.sign(own_adv), np.sign(a0))
    assert np.any(a0 < 0.0) and np.any(a0 > 0.0)  # both signs occur: the baseline turns some pushes around


def test_PG_06_total_return_estimator_has_the_largest_exact_variance_on_the_fixture() -> None:
    """Nearest measurable check of the claim "g(tau) has large variance": exact trace-variances on the fixture."""
    mdp, theta = _fixture()
    tr, _ = _setup(mdp, theta)
    pi = softmax(theta)
    q, v = q_pi(mdp, pi), v_pi(mdp, pi)
    var0 = exact_moments(g_total_return(theta, tr, gamma=mdp.gamma), tr.weights).trace_variance
    others = [g_reward_to_go(theta, tr, gamma=mdp.gamma), g_state_baseline(theta, tr, v, gamma=mdp.gamma),
              g_q_estimate(theta, tr, q, v, gamma=mdp.gamma),
              g_q_estimate(theta, tr, q, optimal_baseline(mdp, theta), gamma=mdp.gamma)]
    assert all(exact_moments(o, tr.weights).trace_variance < var0 for o in others)


# ------------------------------------------------------------------------------ gamma-trick
@settings(max_examples=EXACT_EXAMPLES)
@given(st.data(), st.sampled_from([0.5, 0.9, 0.99, 1.0]))
def test_PG_29_PG_30_gamma_trick_mean_is_exact(data: st.DataObject, gamma_tilde: float) -> None:
    """gamma = 1 MDP, artificial gamma~: the exact mean of sum_t grad log pi (G_t^{gamma~} - b(s_t)) (no gamma^t)
    is gamma_trick_gradient; at gamma~ = 1 it is grad J (PG-29), i.e. unbiased."""
    mdp = data.draw(layered_mdps(gamma=1.0))
    theta = data.draw(softmax_parameters(mdp))
    b = data.draw(baselines(mdp))
    tr, tol = _setup(mdp, theta)
    m = exact_moments(g_state_baseline(theta, tr, b, gamma=gamma_tilde, gamma_t=False), tr.weights)
    np.testing.assert_allclose(m.mean, gamma_trick_gradient(mdp, theta, gamma_tilde=gamma_tilde), rtol=0, atol=tol)
    if gamma_tilde == 1.0:
        np.testing.assert_allclose(m.mean, grad_j_exact(mdp, theta), rtol=0, atol=tol)


def test_PG_30_gamma_trick_trades_bias_for_variance_exhibit() -> None:
    """On the fixture (gamma = 1): bias ||E g - grad J|| grows as gamma~ decreases while the variance drops."""
    mdp, theta = _fixture(seed=3, gamma=1.0)
    tr, tol = _setup(mdp, theta)
    g = grad_j_exact(mdp, theta)
    rows = []
    for gt in (1.0, 0.9, 0.5, 0.1):
        est = g_state_baseline(theta, tr, np.zeros(mdp.n_states_plus), gamma=gt, gamma_t=False)
        m = exact_moments(est, tr.weights)
        rows.append((float(np.linalg.norm(m.mean - g)), m.trace_variance))
    assert rows[0][0] <= tol
    assert all(rows[i][0] < rows[i + 1][0] for i in range(3))
    assert all(rows[i][1] > rows[i + 1][1] for i in range(3))


# ------------------------------------------------------------------------------ SGD selection rules
@given(st.integers(1, 8), st.integers(0, 50), st.integers(0, 2**32 - 1))
def test_PG_33_uniform_index_gives_unbiased_gradient_E_40(n: int, k: int, seed: int) -> None:
    g = np.random.default_rng(seed).normal(size=(n, 3))
    grad_f = g.mean(axis=0)  # grad F = (1/N) sum_i g_i; E g_{i(k)} = grad F, no extra 1/N (E-40)
    np.testing.assert_allclose(selection_probabilities("uniform", k, n) @ g, grad_f, rtol=0,
                               atol=tolerance(float(np.abs(g).max()), terms=n))


def test_PG_34_cyclic_selection_is_biased_at_each_step_but_not_over_a_cycle() -> None:
    n = 4
    g = np.random.default_rng(0).normal(size=(n, 3))
    grad_f = g.mean(axis=0)
    biases = [float(np.linalg.norm(selection_probabilities("cyclic", k, n) @ g - grad_f)) for k in range(n)]
    assert min(biases) > 1e-3
    cycle_mean = sum(selection_probabilities("cyclic", k, n) for k in range(n)) / n
    np.testing.assert_allclose(cycle_mean @ g, grad_f, rtol=0, atol=tolerance(5.0, terms=n))
    with pytest.raises(ValueError):
        selection_probabilities("shuffled", 0, n)  # type: ignore[arg-type]


@settings(max_examples=EXACT_EXAMPLES)
@given(st.data())
def test_PG_35_PG_36_random_step_times_T_is_unbiased_exact(data: st.DataObject) -> None:
    """E[T g_{t(k)} | tau] = sum_t g_t (PG-35) and the full-episode sum is unbiased (PG-36), exactly; the
    random-step estimator has no smaller variance (it is the sum plus the noise of t(k))."""
    mdp = data.draw(layered_mdps())
    theta = data.draw(softmax_parameters(mdp))
    tr, tol = _setup(mdp, theta)
    psi = (mdp.gamma ** np.arange(tr.horizon)) * discounted_returns(tr.rewards, mdp.gamma)
    per_step = per_step_terms(theta, tr, psi)
    full = per_step.sum(axis=1)
    samples, w = expand_random_time_step(per_step, tr.lengths, tr.weights)
    m_rand, m_full = exact_moments(samples, w), exact_moments(full, tr.weights)
    g = grad_j_exact(mdp, theta)
    np.testing.assert_allclose(m_full.mean, g, rtol=0, atol=tol)
    np.testing.assert_allclose(m_rand.mean, g, rtol=0, atol=tol * tr.horizon)
    assert m_rand.trace_variance >= m_full.trace_variance - 50 * tol * tr.horizon


def test_PG_37_per_transition_step_without_T_is_biased_exhibit() -> None:
    mdp, theta = _fixture()
    tr, tol = _setup(mdp, theta)
    psi = (mdp.gamma ** np.arange(tr.horizon)) * discounted_returns(tr.rewards, mdp.gamma)
    samples, w = expand_random_time_step(per_step_terms(theta, tr, psi), tr.lengths, tr.weights,
                                         scale_by_length=False)
    bias = float(np.linalg.norm(exact_moments(samples, w).mean - grad_j_exact(mdp, theta)))
    assert bias > 1e3 * tol


def test_exact_moments_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="probability vector"):
        exact_moments(np.zeros((2, 3)), np.array([0.5, 0.6]))


# --- found by the mutation audit of 2026-12-06 -------------------------------------------------------------
def test_PG_18_baseline_falls_back_to_the_mean_of_q_where_the_weight_vanishes() -> None:
    """E[w^2 | s] = 0 (any b is optimal there): b*(s) = E[Q | s]; here 0.25 * 1 + 0.75 * 3 = 2.5, exact in binary
    (every product and the sum are exact), next to a state with weights where b* is the weighted mean."""
    b = weighted_min_variance_baseline(np.array([[0.25, 0.75], [0.5, 0.5]]), np.array([[0.0, 0.0], [1.0, 3.0]]),
                                       np.array([[1.0, 3.0], [2.0, 6.0]]))
    np.testing.assert_array_equal(b, [2.5, (0.5 * 2.0 + 1.5 * 6.0) / 2.0])


def test_PG_34_cyclic_rule_picks_k_mod_n() -> None:
    for k in range(7):
        np.testing.assert_array_equal(selection_probabilities("cyclic", k, 3), np.eye(3)[k % 3])


# --- found by the black-box review (F1, F3, F4) --------------------------------------------------------------
def _review_batch() -> tuple[FiniteMDP, FloatArray, Trajectories]:
    """A 4-state MDP (S+ = 5 rows) and sampled trajectories that visit states 0..3."""
    mdp = random_mdp(np.random.default_rng(0), 4, 2, gamma=0.9)
    theta = np.random.default_rng(1).normal(size=(mdp.n_states_plus, mdp.n_actions))
    tr = sample_trajectories(mdp, softmax(theta), rng=np.random.default_rng(2), n=20, horizon=4)
    assert np.max(tr.states[:, :-1][tr.valid]) >= 2  # a state past the short tables below is visited
    return mdp, theta, tr


@pytest.mark.parametrize("gamma", [1.5, "0.9", True, 0.0, float("nan")])
@pytest.mark.parametrize("call", ["discount_powers", "past_discounted_rewards", "k_step_q_estimates",
                                  "g_k_step", "g_k_step_no_gamma_t", "g_past_rewards", "g_baseline_term",
                                  "g_q_estimate"])
def test_PG_25_every_reader_of_gamma_validates_it(call: str, gamma: object) -> None:
    """gamma 1.5, "0.9", True, 0 and NaN were accepted (float(gamma)); MDP-18 needs gamma in (0, 1]."""
    mdp, theta, tr = _review_batch()
    v = v_pi(mdp, softmax(theta))
    q = q_pi(mdp, softmax(theta))
    g: float = gamma  # type: ignore[assignment]
    calls = {
        "discount_powers": lambda: discount_powers(3, gamma=g),
        "past_discounted_rewards": lambda: past_discounted_rewards(np.ones((1, 3)), gamma=g),
        "k_step_q_estimates": lambda: k_step_q_estimates(np.ones((1, 2)), np.zeros((1, 3)), np.array([2]),
                                                         gamma=g, k=1),
        "g_k_step": lambda: g_k_step(theta, tr, v, v, gamma=g, k=1, term=mdp.term),
        "g_k_step_no_gamma_t": lambda: g_k_step(theta, tr, v, v, gamma=g, k=1, term=mdp.term, gamma_t=False),
        "g_past_rewards": lambda: g_past_rewards(theta, tr, gamma=g),
        "g_baseline_term": lambda: g_baseline_term(theta, tr, v, gamma=g),
        "g_q_estimate": lambda: g_q_estimate(theta, tr, q, v, gamma=g),
    }
    with pytest.raises(InvalidDiscountError, match="gamma"):
        calls[call]()


@pytest.mark.parametrize(("call", "match"), [
    ("bootstrap_values", r"values must have shape \[term \+ 1\] = \[5\]"),
    ("g_state_baseline", r"baseline must have \|S\+\| = term \+ 1 = 5 rows"),
    ("g_q_estimate_baseline", r"baseline must have \|S\+\| = term \+ 1 = 5 rows"),
    ("g_q_estimate_q", r"q must have \|S\+\| = term \+ 1 = 5 rows"),
    ("g_k_step_v_boot", r"values must have shape \[term \+ 1\] = \[5\]"),
    ("g_k_step_baseline", r"baseline must have \|S\+\| = term \+ 1 = 5 rows"),
    ("g_k_step_term", r"term = 3 disagrees with the trajectories' terminal state 4"),
    ("g_baseline_term", r"baseline must have \|S\+\| = term \+ 1 = 5 rows"),
    ("score_function_estimator", r"theta must have \|S\+\| = term \+ 1 = 5 rows"),
    ("g_reward_to_go", r"theta must have \|S\+\| = term \+ 1 = 5 rows"),
    ("per_step_terms", r"theta must have \|S\+\| = term \+ 1 = 5 rows"),
    ("hand_built_batch", r"theta must have a row for every state of the trajectories \(at least [45]\)"),
])
def test_PG_10_short_tables_are_refused_not_read_at_clamped_indices(call: str, match: str) -> None:
    """np.minimum(s, size - 1) read a short table at its last entry: bootstrap_values([1, 2], [[0..4]],
    term=4) gave [[1, 2, 2, 2, 0]] (states 2 and 3 read V[1]) and a [2, 2] theta on a 5-state MDP merged the
    scores of states 1..3. Every table read along the trajectories now has the batch's |S+| rows."""
    import dataclasses

    mdp, theta, tr = _review_batch()
    v = v_pi(mdp, softmax(theta))
    q = q_pi(mdp, softmax(theta))
    psi = np.ones(tr.rewards.shape)
    calls = {
        "bootstrap_values": lambda: bootstrap_values(np.array([1.0, 2.0]), np.array([[0, 1, 2, 3, 4]]), term=4),
        "g_state_baseline": lambda: g_state_baseline(theta, tr, v[:2], gamma=0.9),
        "g_q_estimate_baseline": lambda: g_q_estimate(theta, tr, q, v[:2], gamma=0.9),
        "g_q_estimate_q": lambda: g_q_estimate(theta, tr, q[:2], v, gamma=0.9),
        "g_k_step_v_boot": lambda: g_k_step(theta, tr, v[:2], v, gamma=0.9, k=1, term=mdp.term),
        "g_k_step_baseline": lambda: g_k_step(theta, tr, v, v[:2], gamma=0.9, k=1, term=mdp.term),
        "g_k_step_term": lambda: g_k_step(theta, tr, v[:4], v, gamma=0.9, k=1, term=3),
        "g_baseline_term": lambda: g_baseline_term(theta, tr, v[:2], gamma=0.9),
        "score_function_estimator": lambda: score_function_estimator(theta[:2], tr, psi),
        "g_reward_to_go": lambda: g_reward_to_go(theta[:2], tr, gamma=0.9),
        "per_step_terms": lambda: per_step_terms(theta[:2], tr, psi),
        "hand_built_batch": lambda: score_function_estimator(theta[:2], dataclasses.replace(tr, term=None), psi),
    }
    with pytest.raises(ShapeError, match=match):
        calls[call]()
    # the full tables still work, and bootstrap_values reads V at the state itself (a direct loop)
    boot = bootstrap_values(v, tr.states, term=mdp.term)
    for i, t in np.ndindex(*tr.states.shape):
        s = int(tr.states[i, t])
        assert boot[i, t] == (0.0 if s == mdp.term else v[s])


def test_PG_19_optimal_baseline_of_a_near_deterministic_policy_matches_mpmath() -> None:
    """One state, action 0 -> term with reward 1, action 1 -> term with reward 0, gamma = 1, logits [0, -20].
    b* = sum_a pi_a w_a Q_a / sum_a pi_a w_a with w_a = ||e_a - pi||^2; the old score_norm_sq cancelled
    w_0 = 2 pi_1^2 = 8.5e-18 to 0, so b* was 0 for 2.0612e-9.

    Tolerance (relative, first order in u = 2^-53): each pi_b = exp(lp_b) is off by
    d_pi = u (L + 2 A + 3) (L = max |lp|, derived in test_policies.py's _softmax_roundings); each w_a by
    d_w = 2 d_pi + 2 A u (test_policies.py's score_norm_sq test); Q = [1, 0] is exact; num and den each add
    two products and one sum of positive terms, the ratio one rounding: 2 (d_pi + d_w + 3 u) + u."""
    import mpmath  # type: ignore[import-untyped]

    p = np.zeros((1, 2, 2))
    p[0, :, 1] = 1.0
    mdp = from_arrays(p, np.array([[1.0, 0.0]]), [1.0], gamma=1.0)
    theta = np.array([[0.0, -20.0], [0.0, 0.0]])
    got = optimal_baseline(mdp, theta)
    with mpmath.workdps(60):
        e = [mpmath.exp(mpmath.mpf(x)) for x in theta[0]]
        pi = [x / sum(e) for x in e]
        w = [(1 - pi[a]) ** 2 + sum(pi[b] ** 2 for b in range(2) if b != a) for a in range(2)]
        q = [mpmath.mpf(1), mpmath.mpf(0)]
        want = float(sum(pi[a] * w[a] * q[a] for a in range(2)) / sum(pi[a] * w[a] for a in range(2)))
    big_l, n_a = 21, 2  # |lp| <= 20 + log(1 + e^-20) < 21
    d_pi = big_l + 2 * n_a + 3
    d_w = 2 * d_pi + 2 * n_a
    rel = counted_tolerance(1.0, roundings=2 * (d_pi + d_w + 3) + 1)
    assert abs(got[0] - want) <= rel * want
    assert got[mdp.term] == 0.0


# --- found by the mutation audit of the review (G7) ---------------------------------------------------------
@pytest.mark.parametrize("gamma_tilde", [0.5, 0.9, 1.0])
def test_PG_29_PG_30_gamma_trick_on_a_discounted_mdp_counts_undiscounted_visits(gamma_tilde: float) -> None:
    """The gamma-trick estimator sum_t grad log pi(a_t | s_t) G_t^{gamma~} has no gamma^t factor, so its mean
    weights a state by its undiscounted expected number of visits whatever the MDP's own gamma (here 0.9; the
    trajectory law does not depend on gamma). Oracle: the exact mean over every enumerated trajectory of the
    hand-written sum_t (e_{a_t} - pi(. | s_t)) G_t^{gamma~} in row s_t (b = 0, which drops out of the mean),
    with the tolerance of :func:`_setup`."""
    mdp, theta = _fixture(seed=3, gamma=0.9)
    tr, tol = _setup(mdp, theta)
    pi = softmax(theta)
    own = np.zeros_like(theta)
    for i in range(tr.n):
        length = int(tr.lengths[i])
        for t in range(length):
            s, a = int(tr.states[i, t]), int(tr.actions[i, t])
            ret = sum(gamma_tilde ** (u - t) * float(tr.rewards[i, u]) for u in range(t, length))
            own[s] -= tr.weights[i] * ret * pi[s]
            own[s, a] += tr.weights[i] * ret
    np.testing.assert_allclose(gamma_trick_gradient(mdp, theta, gamma_tilde=gamma_tilde), own, rtol=0, atol=tol)
    assert tr.horizon >= 2 and float(np.max(np.abs(own))) > 1e6 * tol  # later steps carry weight: gamma^t would show


def test_PG_09_E_26_past_discounted_rewards_do_not_cancel_behind_a_huge_reward() -> None:
    """sum_{t' < t} gamma^t' r_t' as a shifted running sum: computed as cumsum minus the current term, the
    rewards (1, 1e20, 0) gave the past sum 0 at t = 1 (the exact value is 1: the 1 was absorbed by 1e20 and
    subtracted away). Exact here: every partial sum is of integers below 2^53 or a single huge term."""
    got = past_discounted_rewards(np.array([[1.0, 1e20, 0.0]]), gamma=1.0)
    np.testing.assert_array_equal(got, [[0.0, 1.0, 1e20 + 1.0]])
    half = past_discounted_rewards(np.array([[4.0, 2.0, 8.0, 1.0]]), gamma=0.5)  # dyadic: exact
    np.testing.assert_array_equal(half, [[0.0, 4.0, 5.0, 7.0]])


@pytest.mark.parametrize("gap", [20.0, 33.0])
def test_PG_12_exact_gradient_keeps_its_relative_accuracy_at_nearly_deterministic_rows(gap: float) -> None:
    """grad J[s, a] = d(s) pi(a|s) A(s, a): with A = Q - V a nearly deterministic row (logit gap 33, pi_rare ~ 5e-15)
    kept an absolute error of eps |V| on advantages of size pi_rare dQ: 1e-3 relative, and the row no longer
    summed to 0 (review 2026-12-07). A is now sum_b pi_b (Q_a - Q_b). Oracle: the same quantities from the
    MDP's tables in 50-digit mpmath (linear solves included). Bound per row, relative to its largest entry: the
    float64 Q carries kappa eps |Q| (kappa = (1 + gamma) / (1 - gamma)), so each difference Q_a - Q_b is within that
    of the exact one, i.e. a relative kappa eps max|Q| / min |Q_a - Q_b| of the row's advantages
    (tolerance(..., terms=|S+|, condition=kappa))."""
    import mpmath as mp

    from reference.generators import random_mdp
    from reference.tolerance import discount_condition, tolerance

    mp.mp.dps = 50
    rng = np.random.default_rng(1)
    mdp = random_mdp(rng, 3, 2, gamma=0.9)
    theta = rng.normal(size=(4, 2))
    theta[1] = [gap, 0.0]
    g = grad_j_exact(mdp, theta)
    n = mdp.n_states_plus
    P, R = mdp.P, mdp.r
    pi = [[mp.e ** mp.mpf(float(x)) for x in row] for row in theta]
    pi = [[x / sum(row) for x in row] for row in pi]
    gam = mp.mpf(mdp.gamma)
    ppi = mp.matrix(n, n)
    rpi = mp.matrix(n, 1)
    for s in range(n):
        for a in range(2):
            rpi[s] += pi[s][a] * mp.mpf(float(R[s, a]))
            for t in range(n):
                ppi[s, t] += pi[s][a] * mp.mpf(float(P[s, a, t]))
    eye = mp.eye(n)
    v = mp.lu_solve(eye - gam * ppi, rpi)
    p0 = mp.matrix([mp.mpf(float(x)) for x in mdp.p0])
    d = mp.lu_solve((eye - gam * ppi).T, p0)
    kappa = discount_condition(mdp.gamma)
    for s in range(mdp.n_states):
        q = [mp.mpf(float(R[s, a])) + gam * sum(mp.mpf(float(P[s, a, t])) * v[t] for t in range(n)) for a in range(2)]
        want = [d[s] * pi[s][a] * (q[a] - v[s]) for a in range(2)]
        row_max = float(max(abs(w) for w in want))
        gap_q = float(abs(q[0] - q[1]))
        tol = tolerance(row_max * float(max(abs(x) for x in q)) / gap_q, terms=n, condition=kappa)
        for a in range(2):
            assert abs(g[s, a] - float(want[a])) <= tol, (s, a, g[s, a], float(want[a]), tol)
        assert abs(g[s, 0] + g[s, 1]) <= tol  # a tabular softmax gradient row sums to 0


@pytest.mark.parametrize("gap", [30.0, 50.0])
def test_PG_29_gamma1_occupancy_refuses_episodes_too_long_for_float64(gap: float) -> None:
    """At gamma = 1 the occupancy (expected visits) solves I - P_TT, whose condition number is about 2 E[T].
    discounted_occupancy had no E[T] guard: on stay-or-go with pi(go) = 1 / (1 + e^30) (E[T] = 1e13) the gamma-trick
    gradient came back 1e-3 off with no error, and at e^50 grad_j_exact raised numpy's LinAlgError (review
    2026-12-07). Both now raise NotConvergedError, as v_pi does; a moderate gap (E[T] = e^10) still works."""
    from reference.errors import NotConvergedError
    from reference.exact import discounted_occupancy
    from reference.generators import stay_or_go_mdp
    from reference.gradients import gamma_trick_gradient

    mdp = stay_or_go_mdp(gamma=1.0)
    theta = np.zeros((2, 2))
    theta[0, 0] = gap
    with pytest.raises(NotConvergedError):
        gamma_trick_gradient(mdp, theta, gamma_tilde=0.9)
    with pytest.raises(NotConvergedError):
        grad_j_exact(mdp, theta)
    theta[0, 0] = 10.0
    visits = discounted_occupancy(mdp, softmax(theta))[0]
    # E[visits] = 1 / pi(go) = 1 + e^10 = E[T]; the solve's relative error is bounded by its condition number
    # 2 E[T] times eps (the estimate GAMMA1_MAX_REL_ERROR is checked against), with the SAFETY factor 8
    want = 1.0 + math.exp(10.0)
    assert abs(visits - want) <= 8 * 2.0 * want * np.finfo(float).eps * want


def test_PG_08_padding_rewards_must_be_zero_and_read_values_finite() -> None:
    """A hand-built batch (term=None) with a padded reward of 5 after T = 1 made estimators #0 and #1 give
    [-3, 3] for [-0.5, 0.5] (the returns sum every column); a NaN there made them NaN; a NaN in q or the
    baseline at a visited state made #2 / #3 NaN with no error (review 2026-12-07). Trajectories now refuses
    non-zero padding, and the estimators refuse non-finite values read at steps t < T; NaN at a state never
    visited is not read and passes."""
    from reference.errors import ReferenceError_
    from reference.gradients import g_q_estimate, g_reward_to_go, g_state_baseline
    from reference.sampling import Trajectories

    def batch(pad: float) -> Trajectories:
        return Trajectories(states=np.array([[0, 1, 1]]), actions=np.array([[0, 0]]), rewards=np.array([[1.0, pad]]),
                            lengths=np.array([1]), terminated=np.array([True]), truncated=np.array([False]),
                            weights=np.array([1.0]))

    for pad in (5.0, np.nan):
        with pytest.raises(ReferenceError_, match="padding"):
            batch(pad)
    tr = batch(0.0)
    theta = np.zeros((2, 2))
    np.testing.assert_array_equal(g_reward_to_go(theta, tr, gamma=1.0)[0, 0], [0.5, -0.5])
    with pytest.raises(ReferenceError_, match="baseline"):
        g_state_baseline(theta, tr, np.array([np.nan, 0.0]), gamma=1.0)
    with pytest.raises(ReferenceError_, match="q is not finite"):
        g_q_estimate(theta, tr, np.array([[np.nan, 0.0], [0.0, 0.0]]), np.zeros(2), gamma=1.0)
    g_state_baseline(theta, tr, np.array([0.0, np.nan]), gamma=1.0)  # state 1 = term is never read at t < T


def test_PG_18_19_weighted_squared_error_and_other_inputs_refused() -> None:
    """weighted_squared_error broadcast a w2 of shape [A] and accepted a p that is not a distribution, while its
    sibling weighted_min_variance_baseline refused both; expected_score on a 1-D theta raised IndexError;
    prefix_groups(t=1.5) a TypeError and t=True was read as 1; exact_moments and selection_probabilities raised a
    plain ValueError (review 2026-12-07). All are ReferenceError_ subclasses now."""
    from reference.errors import InvalidPolicyError, ReferenceError_
    from reference.gradients import prefix_groups, selection_probabilities, weighted_squared_error
    from reference.policies import expected_score
    from reference.sampling import Trajectories, exact_moments

    p = np.full((2, 2), 0.5)
    with pytest.raises(ShapeError):
        weighted_squared_error(np.ones(2), p, np.ones(2), np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(InvalidPolicyError):
        weighted_squared_error(np.ones(2), np.full((2, 2), 0.7), np.ones((2, 2)), np.zeros((2, 2)), np.zeros(2))
    assert weighted_squared_error(np.ones(2), p, np.ones((2, 2)), np.array([[1.0, 3.0], [0.0, 2.0]]),
                                  np.array([2.0, 1.0])) == 2.0  # (1 + 1) / 2 + (1 + 1) / 2
    with pytest.raises(ShapeError):
        expected_score(np.zeros(3))
    tr = Trajectories(states=np.array([[0, 1, 1]]), actions=np.array([[0, 0]]), rewards=np.array([[1.0, 0.0]]),
                      lengths=np.array([1]), terminated=np.array([True]), truncated=np.array([False]),
                      weights=np.array([1.0]))
    for t in (1.5, True):
        with pytest.raises(ReferenceError_, match="t"):
            prefix_groups(tr, t, include_action=False)  # type: ignore[arg-type]
    with pytest.raises(ReferenceError_, match="probability"):
        exact_moments(np.zeros((2, 1)), np.array([0.7, 0.7]))
    with pytest.raises(ReferenceError_, match="rule"):
        selection_probabilities("random", 0, 3)  # type: ignore[arg-type]
