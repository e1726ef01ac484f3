"""Tests of reference.grpo: terminal-reward targets (TR-46), the GRPO / PPO-without-baseline objective
(TR-47, TR-49), the bias of group advantages (TR-50) and the baseline-variance study (TR-48).

Exact studies enumerate every trajectory from s_0 and every group of n of them (reference.grpo). Sums
run over K = M^n groups of gradients with entries <= (R + |c|) H; tolerances use reference.tolerance
with that scale and K terms. The variance comparisons are exact values, compared with each other (each
inequality's margin exceeds the tolerance by orders of magnitude; the numbers are in
docs/evidence/tr_measurements.md).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from reference.advantages import reward_to_go_targets, rollout_from_trajectories
from reference.errors import ReferenceError_, ShapeError
from reference.exact import a_pi, q_pi, v_pi
from reference.gradients import grad_j_exact
from reference.grpo import (
    group_gradient_moments,
    grpo_advantage_conditional_means,
    grpo_objective,
    terminal_reward_mdp,
)
from reference.mdp import FiniteMDP, FloatArray, from_outcomes
from reference.policies import softmax
from reference.sampling import sample_trajectories
from reference.surrogates import GRPO_EPS_STD, grpo_advantages, kl_k3
from reference.tolerance import tolerance


def _instance(seed: int, layers: int = 2) -> tuple[FiniteMDP, FloatArray, int]:
    rng = np.random.default_rng(seed)
    mdp = terminal_reward_mdp(rng, layers, 2, 2)
    th = np.asarray(rng.normal(size=(mdp.n_states_plus, 2)), dtype=np.float64)
    return mdp, th, int(np.argmax(mdp.p0))


def test_TR_46_terminal_reward_targets_equal_r_at_every_step() -> None:
    """Undiscounted, reward only at the end: R_t = r = r_{T-1} for every t < T (E-57's targets)."""
    rng = np.random.default_rng(0)
    mdp = terminal_reward_mdp(rng, 3, 2, 2, rewards=(-1.0, 0.5, 2.0))
    tr = sample_trajectories(mdp, softmax(np.zeros((mdp.n_states_plus, 2))), rng=rng, n=50, horizon=3)
    ro = rollout_from_trajectories(mdp, tr, np.zeros(mdp.n_states_plus))
    tgt = reward_to_go_targets(ro.rewards, ro.terminated, ro.truncated, gamma=1.0)
    r_final = tr.rewards[np.arange(tr.n), tr.lengths - 1]
    assert np.all(tr.rewards[:, :-1] == 0.0)
    np.testing.assert_array_equal(np.where(ro.valid, tgt, 0.0), np.where(ro.valid, r_final[None, :], 0.0))


def test_TR_47_TR_49_objective_matches_the_formula() -> None:
    """At ratio 1 the clip is inactive and the objective is mean_i T^(i) A^(i); center=False,
    scale_by_std=False gives A^(i) = r^(i) (PPO without baseline); the k3 penalty is >= 0 and 0 when
    pi_ref = pi_new; length_norm divides rollout i by T^(i)."""
    rng = np.random.default_rng(1)
    t, g, n = 5, 3, 4
    lengths = rng.integers(1, t + 1, size=g * n)
    valid = np.arange(t)[:, None] < lengths[None, :]
    r = rng.choice([0.0, 1.0], size=g * n)
    lp = np.log(rng.uniform(0.1, 1.0, size=(t, g * n)))
    adv = grpo_advantages(r.reshape(g, n)).reshape(-1)
    tol = tolerance(float(np.max(np.abs(adv))) * t, terms=t * g * n)
    assert abs(grpo_objective(lp, lp, r, valid, group_size=n) - float(np.mean(lengths * adv))) <= tol
    assert abs(grpo_objective(lp, lp, r, valid, group_size=n, length_norm=True) - float(np.mean(adv))) <= tol
    raw = grpo_objective(lp, lp, r, valid, group_size=n, center=False, scale_by_std=False)
    assert abs(raw - float(np.mean(lengths * r))) <= tol
    dr = grpo_objective(lp, lp, r, valid, group_size=n, scale_by_std=False)
    dr_adv = grpo_advantages(r.reshape(g, n), scale_by_std=False).reshape(-1)
    assert abs(dr - float(np.mean(lengths * dr_adv))) <= tol
    ref = lp + rng.normal(scale=0.3, size=lp.shape)
    pen = grpo_objective(lp, lp, r, valid, group_size=n, beta=0.1, log_prob_ref=ref)
    k3 = float(np.mean(np.sum(np.where(valid, kl_k3(ref - lp), 0.0), axis=0)))
    assert k3 > 0 and abs(pen - (float(np.mean(lengths * adv)) - 0.1 * k3)) <= tol + tolerance(k3, terms=t * g * n)
    assert grpo_objective(lp, lp, r, valid, group_size=n, beta=0.1, log_prob_ref=lp) == grpo_objective(
        lp, lp, r, valid, group_size=n)
    with pytest.raises(ReferenceError_, match="group_size"):
        grpo_objective(lp, lp, r, valid, group_size=5)
    with pytest.raises(ReferenceError_, match="log_prob_ref"):
        grpo_objective(lp, lp, r, valid, group_size=n, beta=0.1)
    with pytest.raises(ShapeError):
        grpo_objective(lp, lp, r[:-1], valid, group_size=n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_TR_50_group_advantage_is_biased_for_a_pi(seed: int) -> None:
    """Exact conditional means over all groups of n = 3 from s0. Dr. GRPO: E[A^(1) | s, a] =
    (n-1)/n (Q^pi(s, a) - V^pi(s0)) (closed form), not A^pi(s, a) = Q^pi(s, a) - V^pi(s); with the std
    division there is no closed form, and the mean differs from A^pi by far more than the tolerance."""
    mdp, th, s0 = _instance(seed, layers=3)
    pi = softmax(th)
    n = 3
    dr = grpo_advantage_conditional_means(mdp, pi, s0=s0, n=n, scale_by_std=False)
    q, v, adv = q_pi(mdp, pi), v_pi(mdp, pi), a_pi(mdp, pi)
    seen = dr.visit_prob > 0
    tol = tolerance(2.0, terms=8**n)
    np.testing.assert_allclose(dr.mean[seen], ((n - 1) / n * (q - v[s0]))[seen], rtol=0, atol=tol)
    assert float(np.max(np.abs(dr.mean[seen] - adv[seen]))) > 1e3 * tol
    std = grpo_advantage_conditional_means(mdp, pi, s0=s0, n=n)
    assert float(np.max(np.abs(std.mean[seen] - adv[seen]))) > 1e3 * tol


def test_TR_48_variance_without_baseline_when_rewards_sit_away_from_zero() -> None:
    """Rewards in {c, 1 + c}. (i) The group-mean, leave-one-out and V^pi baselines are shift invariant
    (exact); the no-baseline variance is a convex quadratic in c. (ii) Means: none, leave-one-out and
    V^pi are unbiased for grad J; the group mean gives (n-1)/n grad J (so leave-one-out, its n/(n-1)
    rescaling, is the equal-scale unbiased comparison). (iii) c = 5 (rewards away from zero): the
    no-baseline variance exceeds all three, for n = 2, 3, 4 and three instances. (iv) Where the ordering
    fails: rewards centred at zero (c = -V^pi(s0)) on instance 0 -- no baseline beats leave-one-out at
    n = 2 and the group mean at n = 3, 4."""
    for seed in (0, 1, 2):
        mdp, th, s0 = _instance(seed)
        p0 = np.zeros(mdp.n_states_plus)
        p0[s0] = 1.0
        gj = grad_j_exact(dataclasses.replace(mdp, p0=p0), th)  # grad V^pi(s0)
        v0 = float(v_pi(mdp, softmax(th))[s0])
        for n in (2, 3, 4):
            tol = tolerance(6.0 * 2 * 4, terms=8**n)
            m = {(b, c): group_gradient_moments(mdp, th, s0=s0, n=n, baseline=b, reward_shift=c)
                 for b in ("none", "group_mean", "leave_one_out", "value") for c in (0.0, 5.0, -v0)}
            for b in ("group_mean", "leave_one_out", "value"):
                assert abs(m[(b, 5.0)].trace_variance - m[(b, 0.0)].trace_variance) <= tol
                assert m[("none", 5.0)].trace_variance > m[(b, 5.0)].trace_variance + 1e3 * tol
            mean_none = m[("none", 0.0)].mean
            np.testing.assert_allclose(mean_none, gj, rtol=0, atol=tol)
            for b in ("leave_one_out", "value"):
                np.testing.assert_allclose(m[(b, 0.0)].mean, mean_none, rtol=0, atol=tol)
            np.testing.assert_allclose(m[("group_mean", 0.0)].mean, (n - 1) / n * mean_none, rtol=0, atol=tol)
            np.testing.assert_allclose(m[("none", 5.0)].mean, mean_none, rtol=0, atol=tol)
            if seed == 0:
                cen = m[("none", -v0)].trace_variance
                if n == 2:
                    assert cen < m[("leave_one_out", -v0)].trace_variance - 1e3 * tol
                else:
                    assert cen < m[("group_mean", -v0)].trace_variance - 1e3 * tol


def test_TR_52_remax_greedy_baseline_is_unbiased_and_shift_invariant() -> None:
    """ReMax (TR-52's critic-free precedent): psi = r^(i) - r(tau_greedy), with tau_greedy an independent
    greedy rollout from s0. Exact over every group and every greedy trajectory: the mean is grad J
    (the baseline is independent of tau^(i)), the moments do not move when every reward is shifted by
    c (the baseline moves with it), and with rewards away from zero (c = 5) its variance is below the
    no-baseline variance. Sums run over K M_g <= 8^n * 8 (group, greedy trajectory) pairs: that is the
    term count of the tolerance."""
    for seed in (0, 1, 2):
        mdp, th, s0 = _instance(seed)
        p0 = np.zeros(mdp.n_states_plus)
        p0[s0] = 1.0
        gj = grad_j_exact(dataclasses.replace(mdp, p0=p0), th)
        for n in (1, 2, 3):
            tol = tolerance(6.0 * 2 * 4, terms=8**n * 8)
            m0 = group_gradient_moments(mdp, th, s0=s0, n=n, baseline="remax")
            m5 = group_gradient_moments(mdp, th, s0=s0, n=n, baseline="remax", reward_shift=5.0)
            none5 = group_gradient_moments(mdp, th, s0=s0, n=n, baseline="none", reward_shift=5.0)
            np.testing.assert_allclose(m0.mean, gj, rtol=0, atol=tol)
            np.testing.assert_allclose(m5.mean, gj, rtol=0, atol=tol)
            assert abs(m5.trace_variance - m0.trace_variance) <= tol
            assert none5.trace_variance > m5.trace_variance + 1e3 * tol


def test_TR_52_remax_reduces_to_a_constant_baseline_in_a_deterministic_greedy_rollout() -> None:
    """Reduces-to check: with a deterministic MDP the greedy rollout has one return b, and ReMax is the
    no-baseline estimator with every reward shifted by -b (exact equality of the moments)."""
    mdp, th, s0 = _instance(3)
    det_prob = np.zeros_like(mdp.prob)
    rows = np.repeat(np.arange(mdp.indptr.size - 1), np.diff(mdp.indptr))
    first = np.r_[True, rows[1:] != rows[:-1]]  # keep each (s, a)'s first outcome, probability 1
    det_prob[first] = 1.0
    det = dataclasses.replace(mdp, prob=det_prob)
    greedy = np.zeros_like(th)
    greedy[np.arange(th.shape[0]), np.argmax(th, axis=1)] = 1.0
    b = float(v_pi(det, greedy)[s0])
    for n in (1, 2):
        tol = tolerance(6.0 * 2 * 4, terms=8**n)
        rm = group_gradient_moments(det, th, s0=s0, n=n, baseline="remax")
        shifted = group_gradient_moments(det, th, s0=s0, n=n, baseline="none", reward_shift=-b)
        np.testing.assert_allclose(rm.mean, shifted.mean, rtol=0, atol=tol)
        assert abs(rm.trace_variance - shifted.trace_variance) <= tol


def test_TR_47_std_scaling_without_centering_is_refused() -> None:
    """Found by the mutation audit (2026-12-06): center=False with scale_by_std=True is no defined objective."""
    z = np.zeros((2, 4))
    with pytest.raises(ReferenceError_, match="center"):
        grpo_objective(z, z, np.arange(4.0), np.ones((2, 4), bool), group_size=2, center=False)


# --- found by the black-box input review ----------------------------------------------------------------------
@pytest.mark.parametrize(("t", "center", "scale_by_std", "length_norm"), [
    (2, True, True, False), (2, True, False, True), (2, False, False, False), (0, True, True, False)])
def test_TR_49_grpo_objective_refuses_an_empty_batch(t: int, center: bool, scale_by_std: bool,
                                                     length_norm: bool) -> None:
    """B = 0 rollouts: the mean over no rollouts is undefined (it returned NaN), in every variant."""
    z = np.zeros((t, 0))
    with pytest.raises(ShapeError, match="B = 0"):
        grpo_objective(z, z, np.zeros(0), z.astype(bool), group_size=1, center=center, scale_by_std=scale_by_std,
                       length_norm=length_norm)


# --- found by the mutation audit (2026-12-08, second pass) --------------------------------------------------------
def test_TR_47_TR_49_objective_uses_the_ratio_new_over_old_and_clips_at_the_default_eps() -> None:
    """One step per rollout, A = r (center=False, scale_by_std=False), so the objective is
    mean_i min(rho_i r_i, clip(rho_i, 1 - eps, 1 + eps) r_i) by hand. Rollout 1: rho = pi_new / pi_old =
    0.5 / 0.45 = 10/9 inside the clip, r = 1: 10/9 (the inverse ratio 0.9 would give 0.9). Rollout 2: rho =
    1.25, r = 1: clipped at 1 + eps = 1.2 with the default eps = 0.2. Rollout 3: rho = 0.75, r = -1:
    min(-0.75, -0.8) = -0.8. Tolerance: each term is exp of a difference of two logs, a few ulps of values
    <= 1.25, summed over 3 rollouts: tolerance(1.25, terms=3 * 4)."""
    ln = np.log(np.array([[0.5, 1.25, 0.75]]))
    lo = np.log(np.array([[0.45, 1.0, 1.0]]))
    r = np.array([1.0, 1.0, -1.0])
    valid = np.ones((1, 3), dtype=bool)
    got = grpo_objective(ln, lo, r, valid, group_size=1, center=False, scale_by_std=False)
    expected = (10.0 / 9.0 + 1.2 - 0.8) / 3.0
    assert abs(got - expected) <= tolerance(1.25, terms=3 * 4)


def _two_arm_bandit() -> FiniteMDP:
    """One state, action 0 ends with reward 0 and action 1 with reward 1 (gamma = 1)."""
    return from_outcomes(1, 2, [0, 1, 2], [1, 1], [0.0, 1.0], [1.0, 1.0], [1.0], gamma=1.0, name="two-arm")


def test_TR_50_conditional_means_of_a_two_arm_bandit_in_closed_form() -> None:
    """Uniform pi, n = 2: A^(1) = 0 when both rollouts agree, else +-(1/2) / (std + eps_std) with the sample
    std of {0, 1}, sqrt(1/2) (ddof = 1, TR-49). So E[A^(1) | a = 1] = (1/2) (1/2) / (sqrt(1/2) + eps_std) and
    E[A^(1) | a = 0] is its negative; the default is GRPO's std scaling (Dr. GRPO's mean (1/2)(1 - 1/2) = 1/4
    is different), and both one-step actions count as visited with probability 1/2. Tolerance: a handful of
    roundings of numbers <= 1, tolerance(1.0, terms=2**2 * 4)."""
    mdp = _two_arm_bandit()
    pi = np.full((2, 2), 0.5)
    got = grpo_advantage_conditional_means(mdp, pi, s0=0, n=2)
    a1 = 0.25 / (np.sqrt(0.5) + GRPO_EPS_STD)
    tol = tolerance(1.0, terms=2**2 * 4)
    np.testing.assert_allclose(got.mean[0], [-a1, a1], rtol=0, atol=tol)
    np.testing.assert_array_equal(got.visit_prob[0], [0.5, 0.5])
    dr = grpo_advantage_conditional_means(mdp, pi, s0=0, n=2, scale_by_std=False)
    np.testing.assert_allclose(dr.mean[0], [-0.25, 0.25], rtol=0, atol=tol)


def test_TR_48_leave_one_out_refuses_a_group_of_one() -> None:
    """leave_one_out's n / (n - 1) is undefined at n = 1 (it gave NaN moments)."""
    mdp = _two_arm_bandit()
    with pytest.raises(ReferenceError_, match="n >= 2"):
        group_gradient_moments(mdp, np.zeros((2, 2)), s0=0, n=1, baseline="leave_one_out")


def test_TR_49_objective_refuses_a_reference_log_prob_of_the_wrong_shape() -> None:
    """log_prob_ref [T, 1] against a [T, B] batch broadcast silently into a plausible penalty."""
    z = np.zeros((2, 4))
    with pytest.raises(ShapeError, match="log_prob_ref"):
        grpo_objective(z, z, np.arange(4.0), np.ones((2, 4), bool), group_size=2, beta=0.1,
                       log_prob_ref=np.zeros((2, 1)))


def test_TR_52_remax_variance_with_a_stochastic_greedy_return_in_closed_form() -> None:
    """One state, 2 actions, both end the episode. Action 0 pays 1 w.p. 1/4 (else 0), action 1 pays 2 w.p.
    1/4 (else 0); theta = (0.5, 0), so the greedy action is 0 and its return b is 1 w.p. 1/4, independent of
    the rollout. n = 1: g = (r - b) s_a with s_a = e_a - pi (row s = 0; zero on term's row). By hand:
    E g = sum_a pi_a E[r | a] s_a, E|g|^2 = sum_a pi_a |s_a|^2 E[(r - b)^2 | a] with
    E[(r - b)^2 | a] = E[r^2 | a] - 2 E[r | a] E b + E b^2. The greedy return's own probabilities weigh b
    (equal weights 1/2 would give E b = E b^2 = 1/2). Tolerance: sums of <= 8 terms of magnitude <= 4,
    tolerance(4.0, terms=8 * 4)."""
    mdp = from_outcomes(1, 2, [0, 2, 4], [1, 1, 1, 1], [1.0, 0.0, 2.0, 0.0], [0.25, 0.75, 0.25, 0.75], [1.0],
                        gamma=1.0, name="stochastic-bandit")
    th = np.array([[0.5, 0.0], [0.0, 0.0]])
    pi = softmax(th)[0]
    er, er2 = np.array([0.25, 0.5]), np.array([0.25, 1.0])
    eb, eb2 = 0.25, 0.25
    s = np.eye(2) - pi[None, :]  # s[a] = e_a - pi
    mean = np.zeros((2, 2))
    mean[0] = sum(pi[a] * er[a] * s[a] for a in range(2))
    second = sum(pi[a] * float(s[a] @ s[a]) * (er2[a] - 2 * er[a] * eb + eb2) for a in range(2))
    got = group_gradient_moments(mdp, th, s0=0, n=1, baseline="remax")
    tol = tolerance(4.0, terms=8 * 4)
    np.testing.assert_allclose(got.mean, mean, rtol=0, atol=tol)
    assert abs(got.second_moment - second) <= tol
    assert abs(got.trace_variance - (second - float(np.sum(mean**2)))) <= tol


@pytest.mark.parametrize("seed", range(3))
def test_TR_50_dr_grpo_mean_with_rewards_on_every_layer(seed: int) -> None:
    """Rewards on every layer (not only at the end): Dr. GRPO's conditional mean is (n - 1)/n (E[r | (s, a)
    visited] - V^pi(s0)), where E[r | visit] = E[rewards before s | visit] + Q^pi(s, a), not Q^pi(s, a) as the
    docstring said for any undiscounted return (up to 0.376 off, review 2026-12-07). Oracle: E[r | visit] by
    direct enumeration of the trajectories from s0 (weights and returns, no groups), V^pi(s0) by a linear solve."""
    from reference.generators import random_layered_mdp
    from reference.sampling import enumerate_trajectories

    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 2, 2, 2, gamma=1.0, reward_outcomes=2)
    pi = softmax(rng.normal(size=(mdp.n_states_plus, 2)))
    s0, n = int(np.argmax(mdp.p0)), 3
    dr = grpo_advantage_conditional_means(mdp, pi, s0=s0, n=n, scale_by_std=False)
    tr = enumerate_trajectories(mdp, pi, s0=s0)
    ret = tr.rewards.sum(axis=1)
    num = np.zeros((mdp.n_states_plus, mdp.n_actions))
    den = np.zeros_like(num)
    for j in range(tr.n):
        for t in range(int(tr.lengths[j])):
            num[tr.states[j, t], tr.actions[j, t]] += tr.weights[j] * ret[j]
            den[tr.states[j, t], tr.actions[j, t]] += tr.weights[j]
    seen = den > 0
    cond = np.where(seen, num / np.where(seen, den, 1.0), 0.0)
    want = (n - 1) / n * (cond - v_pi(mdp, pi)[s0])
    r_max = float(np.max(np.abs(ret)))
    tol = tolerance(2.0 * r_max, terms=8**n)
    np.testing.assert_allclose(dr.mean[seen], want[seen], rtol=0, atol=tol)
    # and Q^pi alone is off wherever rewards precede s (states after the first layer)
    assert float(np.max(np.abs(dr.mean[seen] - ((n - 1) / n * (q_pi(mdp, pi) - v_pi(mdp, pi)[s0]))[seen]))) > 1e3 * tol


@pytest.mark.parametrize("case", range(6))
def test_TR_49_group_advantages_of_nearly_equal_rewards_keep_their_deviations(case: int) -> None:
    """Rewards a few ulps apart: the rounded group mean's error, divided by std + 1e-4, swamped the deviations
    ([1, 1 + 2^-52] gave [0, 2.2e-12] for the exact [-1.1e-12, 1.1e-12]; the advantages did not sum to 0; review
    2026-12-07). Oracle: exact rational mean, deviations and sample variance (fractions.Fraction); the std as the
    correctly rounded sqrt of the exact variance; bound: the result is a few roundings from the exact one in
    relative terms (counted_tolerance with N + 8 roundings of max |A|)."""
    from fractions import Fraction

    from reference.tolerance import counted_tolerance

    rng = np.random.default_rng(case)
    fixed = [np.array([1.0, 1.0 + 2.0**-52]), np.array([0.3, 0.3, np.nextafter(0.3, 1.0)])]
    if case < len(fixed):
        r = fixed[case]
    else:  # c + k ulp(c) for small integers k
        c = float(rng.uniform(0.1, 10.0))
        r = c + rng.integers(-3, 4, size=int(rng.integers(2, 9))) * np.spacing(c)
        r[0] = np.nextafter(r[0], np.inf)  # never a flat group
    n = r.size
    exact = [Fraction(float(x)) for x in r]
    mean = sum(exact, Fraction(0)) / n
    dev = [x - mean for x in exact]
    var = sum((d * d for d in dev), Fraction(0)) / (n - 1)
    std = math.sqrt(var)
    want = np.array([float(d / (Fraction(std) + Fraction(GRPO_EPS_STD))) for d in dev])
    got = grpo_advantages(r)
    assert float(np.max(np.abs(got - want))) <= counted_tolerance(float(np.max(np.abs(want))), roundings=n + 8)
    assert abs(float(np.sum(got))) <= counted_tolerance(float(np.max(np.abs(want))), roundings=2 * n + 8)


@pytest.mark.parametrize("seed,n", [(0, 2), (2, 2), (0, 3)])
def test_TR_48_value_baseline_moments_by_independent_enumeration(seed: int, n: int) -> None:
    """``baseline="value"`` is psi_t = r^(i) - V^pi(s_t^(i)): recomputed here from scratch over every group of n
    enumerated trajectories, with the tabular softmax score e_a - pi(s) written out by hand. Replacing V^pi(s_t)
    by V^pi(s0) changed the trace variance by up to 2.25 times and passed every test (review 2026-12-07).
    Tolerance: sums of at most M^n products of bounded terms (|r|, |V| <= 1, |score| <= 2, <= 3 steps)."""
    import itertools

    from reference.sampling import enumerate_trajectories

    rng = np.random.default_rng(seed)
    mdp = terminal_reward_mdp(rng, 3, 2, 2)
    th = rng.normal(size=(mdp.n_states_plus, 2))
    s0 = int(np.argmax(mdp.p0))
    pi = softmax(th)
    tr = enumerate_trajectories(mdp, pi, s0=s0)
    v = v_pi(mdp, pi)
    per = []
    for j in range(tr.n):
        ret = float(tr.rewards[j].sum())
        g = np.zeros_like(th)
        for t in range(int(tr.lengths[j])):
            s, a = int(tr.states[j, t]), int(tr.actions[j, t])
            score = np.zeros_like(th)
            score[s] = -pi[s]
            score[s, a] += 1.0
            g += (ret - v[s]) * score
        per.append((float(tr.weights[j]), g))
    m1 = np.zeros_like(th)
    m2 = 0.0
    for tup in itertools.product(per, repeat=n):
        w = float(np.prod([x[0] for x in tup]))
        g = np.sum([x[1] for x in tup], axis=0) / n
        m1 = m1 + w * g
        m2 += w * float(np.sum(g * g))
    got = group_gradient_moments(mdp, th, s0=s0, n=n, baseline="value")
    scale = (2.0 * 2.0 * 3.0) ** 2
    np.testing.assert_allclose(got.mean, m1, rtol=0, atol=tolerance(12.0, terms=tr.n**n * 8))
    assert abs(got.trace_variance - (m2 - float(np.sum(m1 * m1)))) <= tolerance(scale, terms=tr.n**n * 16)


def test_TR_48_TR_50_discounted_mdps_are_refused() -> None:
    """group_gradient_moments and grpo_advantage_conditional_means take the undiscounted terminal return; at
    gamma = 0.5 they returned undiscounted quantities (0.012 off grad J). Refused now, naming gamma."""
    rng = np.random.default_rng(0)
    mdp = terminal_reward_mdp(rng, 2, 2, 2).with_gamma(0.5)
    th = np.zeros((mdp.n_states_plus, 2))
    s0 = int(np.argmax(mdp.p0))
    with pytest.raises(ReferenceError_, match="gamma"):
        group_gradient_moments(mdp, th, s0=s0, n=2, baseline="none")
    with pytest.raises(ReferenceError_, match="gamma"):
        grpo_advantage_conditional_means(mdp, np.full((mdp.n_states_plus, 2), 0.5), s0=s0, n=2)
