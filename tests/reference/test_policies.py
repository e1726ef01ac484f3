"""Tests of reference.policies (softmax and tanh-Gaussian heads) and reference.atari_shapes.

Exact comparisons use reference.tolerance. Finite differences use
:func:`reference.tolerance.central_difference` (step FD_H = 1e-4): its bound is the Richardson estimate of
the truncation error from the steps h and 2h plus the rounding error of f over h, computed from f alone.
The rounding error of one evaluation of f is :func:`reference.tolerance.tolerance` of the sum of the
magnitudes of f's terms, one term per rounding (stated at each use).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate

from reference.atari_shapes import (
    ATARI_N_ACTIONS,
    actions_per_second,
    atari_a3c_layer_shapes,
    atari_a3c_parameter_count,
    conv_output_size,
)
from reference.errors import InvalidPolicyError, ShapeError
from reference.policies import (
    categorical_entropy,
    categorical_log_prob,
    clamp_log_std,
    expected_score,
    log1m_tanh2,
    log_softmax,
    score_norm_sq,
    softmax,
    softmax_score,
    softmax_score_full,
    tanh_gaussian_grad_log_prob,
    tanh_gaussian_log_prob,
    tanh_gaussian_log_prob_of_action,
    tanh_gaussian_log_prob_text,
    tanh_gaussian_sample,
)
from reference.tolerance import central_difference, counted_tolerance, tolerance

FD_H = 1e-4


def _log_softmax_f_error(theta: np.ndarray) -> float:
    """Rounding of one entry of log_softmax over a row of A logits with spread D = max - min: theta - max
    (|.| <= D), A exps and an A-term sum (>= 1), its log (<= log A), and the subtraction: terms of total
    magnitude <= 3 D + log A + A, each rounded once or twice."""
    spread = float(np.max(np.ptp(theta, axis=-1))) + 2 * FD_H
    n_a = theta.shape[-1]
    return tolerance(3.0 * spread + math.log(n_a) + n_a, terms=n_a + 4)


def _tanh_gaussian_f_error(z: float, mu: float, ls: float) -> float:
    """Rounding of one evaluation of -tau - w^2 / 2 - log(2 pi) / 2 - log(1 - tanh^2 z), w = (z - mu) e^-tau
    (steps of up to 2 h in mu or tau included): the sum of the terms' magnitudes, 8 roundings (w: 3, w^2 / 2:
    2, the log term: 2 ulp + 1, the 3 additions)."""
    w = (abs(z - mu) + 2 * FD_H) * math.exp(-ls + 2 * FD_H)
    return tolerance(abs(ls) + 2 * FD_H + 0.5 * w * w + 1.0 + 2.0 * abs(z) + 2.0 * math.log(2.0), terms=8)
logits_sa = arrays(np.float64, (3, 4), elements=st.floats(-6.0, 6.0))


# ------------------------------------------------------------------------------ categorical / softmax
@given(logits_sa)
def test_PG_48_categorical_head_is_a_distribution_and_log_prob_matches(theta: np.ndarray) -> None:
    p = softmax(theta)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=tolerance(1.0, terms=4))
    acts = np.array([0, 3, 1])
    lp = categorical_log_prob(theta, acts)
    np.testing.assert_allclose(lp, np.log(p[np.arange(3), acts]), rtol=0, atol=tolerance(20.0, terms=4))
    ent = categorical_entropy(theta)
    np.testing.assert_allclose(ent, -(p * np.log(p)).sum(axis=1), rtol=0, atol=tolerance(20.0, terms=4))
    assert np.all(ent <= math.log(4) + tolerance(1.0, terms=4))


def test_PG_48_log_softmax_is_finite_for_huge_logits() -> None:
    lp = log_softmax(np.array([[1e300, 0.0, -1e300]]))
    assert np.all(np.isfinite(lp[:, :2])) and lp[0, 0] == 0.0


def test_PG_48_categorical_errors_name_the_offending_action() -> None:
    with pytest.raises(InvalidPolicyError, match="action 5"):
        categorical_log_prob(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ShapeError):
        categorical_log_prob(np.zeros((2, 3)), np.array([0]))
    with pytest.raises(InvalidPolicyError):
        log_softmax(np.array([0.0, np.nan]))


@given(logits_sa, st.integers(0, 2), st.integers(0, 3))
def test_PG_07_softmax_score_closed_form_matches_finite_differences(theta: np.ndarray, s: int, a: int) -> None:
    full = softmax_score_full(theta, s, a)
    fd, bound = central_difference(lambda th: float(log_softmax(th)[s, a]), theta, h=FD_H,
                                   f_error=_log_softmax_f_error(theta))
    assert np.all(np.abs(full - fd) <= bound), (full - fd, bound)
    # only row s is non-zero, and it is e_a - pi(. | s)
    assert np.all(np.delete(full, s, axis=0) == 0.0)
    np.testing.assert_array_equal(full[s], softmax_score(theta, np.array(s), np.array(a)))


@given(logits_sa)
def test_PG_09_PG_11_expected_score_is_zero(theta: np.ndarray) -> None:
    """sum_a pi(a | s) grad log pi(a | s) = grad sum_a pi(a | s) = grad 1 = 0 (the step used by PG-09, PG-11)."""
    np.testing.assert_allclose(expected_score(theta), 0.0, rtol=0, atol=tolerance(2.0, terms=8))


@given(logits_sa)
def test_PG_19_score_norm_matches_definition(theta: np.ndarray) -> None:
    p = softmax(theta)
    direct = np.array([[np.sum((np.eye(4)[a] - p[s]) ** 2) for a in range(4)] for s in range(3)])
    np.testing.assert_allclose(score_norm_sq(theta), direct, rtol=0, atol=tolerance(2.0, terms=8))


# ------------------------------------------------------------------------------ tanh-Gaussian
@given(arrays(np.float64, 16, elements=st.floats(-18.0, 18.0)))
def test_PG_51_log1m_tanh2_matches_naive_form_where_naive_is_accurate(z: np.ndarray) -> None:
    """For |z| <= 18, 1 - tanh(z)^2 >= 4e-16 is computed with relative error ~ eps / (1 - tanh^2) by the naive
    form; compare in the relative sense against sech^2 = 1 / cosh^2 (accurate everywhere)."""
    stable = log1m_tanh2(z)
    ref = -2.0 * np.log(np.cosh(z))
    np.testing.assert_allclose(stable, ref, rtol=0, atol=tolerance(40.0, terms=4))


def test_PG_51_log1m_tanh2_is_finite_and_symmetric_in_the_tails() -> None:
    z = np.array([20.0, 50.0, 400.0, 1e6])
    with np.errstate(divide="ignore"):
        naive = np.log(1.0 - np.tanh(z) ** 2)
    assert np.all(np.isneginf(naive))  # the pitfall the stable form avoids
    out = log1m_tanh2(z)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, log1m_tanh2(-z))
    # asymptote: log(4) - 2|z| (softplus(-2z) underflows to 0 there)
    np.testing.assert_allclose(out, math.log(4.0) - 2.0 * z, rtol=0, atol=tolerance(2e6))


@pytest.mark.parametrize(("mu", "log_std"), [(0.0, 0.0), (0.7, -0.5), (-1.2, 0.3), (0.3, -1.5)])
def test_PG_51_density_integrates_to_one_over_the_open_interval(mu: float, log_std: float) -> None:
    """quad with epsabs = epsrel = 1e-13; the integrand is smooth on (-1, 1) and vanishes at the endpoints.
    Accepted: |I - 1| <= abserr + the integrand's own rounding. abserr is QUADPACK's error estimate (it
    includes the quadrature's roundoff term, 50 eps int |f|); the integrand exp(log p) carries a relative error
    <= |delta log p| + u, with |delta log p| <= tolerance(|log p|, terms=4) (atanh, log1p, a square and a sum),
    so it adds at most tolerance(int p (|log p| + 1), terms=4), integrated by quad too."""
    def log_p(a: float) -> float:
        return float(tanh_gaussian_log_prob_of_action(a, mu, log_std))

    def weighted(a: float) -> float:  # p (|log p| + 1), 0 where p underflows
        lp = log_p(a)
        return math.exp(lp) * (abs(lp) + 1.0) if lp > -700.0 else 0.0

    val, abserr = integrate.quad(lambda a: math.exp(log_p(a)), -1.0, 1.0, epsabs=1e-13, epsrel=1e-13, limit=200)
    weight, _ = integrate.quad(weighted, -1.0, 1.0, limit=200)
    assert abs(val - 1.0) <= abserr + tolerance(weight, terms=4), (val - 1.0, abserr)


@given(st.floats(-0.999, 0.999), st.floats(-2.0, 2.0), st.floats(-2.0, 1.0), st.floats(-2.0, 2.0),
       st.floats(-2.0, 1.0))
def test_PG_51_text_formula_differs_by_a_theta_free_term(a: float, mu: float, ls: float, mu2: float,
                                                         ls2: float) -> None:
    """E-51: true - text = -log(1 - a^2) - log(2 pi)/2, the same for every (mu, tau): its theta-gradient is 0."""
    c = -math.log1p(-a * a) - 0.5 * math.log(2 * math.pi)
    scale = abs(c) + 20.0 + (math.atanh(a) ** 2 + 4) * math.exp(4)
    for m, s in ((mu, ls), (mu2, ls2)):
        diff = float(tanh_gaussian_log_prob_of_action(a, m, s) - tanh_gaussian_log_prob_text(a, m, s))
        assert abs(diff - c) <= tolerance(scale, terms=8)


@given(st.floats(-25.0, 25.0), st.floats(-2.0, 2.0), st.floats(-2.0, 1.0))
def test_PG_51_closed_form_gradients_match_finite_differences(z: float, mu: float, ls: float) -> None:
    g_mu, g_ls = tanh_gaussian_grad_log_prob(z, mu, ls)
    fd, bound = central_difference(lambda p: float(tanh_gaussian_log_prob(z, p[0], p[1])), np.array([mu, ls]),
                                   h=FD_H, f_error=_tanh_gaussian_f_error(z, mu, ls))
    assert abs(float(g_mu) - fd[0]) <= bound[0]
    assert abs(float(g_ls) - fd[1]) <= bound[1]


@given(st.floats(-0.99, 0.99), st.floats(-2.0, 2.0), st.floats(-2.0, 1.0))
def test_PG_51_text_formula_has_the_true_gradient(a: float, mu: float, ls: float) -> None:
    """The text's log-density (without C) has the same (mu, tau)-gradient as the true one (E-51)."""
    z = math.atanh(a)
    g_mu, g_ls = tanh_gaussian_grad_log_prob(z, mu, ls)
    # the text's formula has the same terms, with log(1 - a^2) from a itself: the same rounding count
    fd, bound = central_difference(lambda p: float(tanh_gaussian_log_prob_text(a, p[0], p[1])),
                                   np.array([mu, ls]), h=FD_H, f_error=_tanh_gaussian_f_error(z, mu, ls))
    assert abs(float(g_mu) - fd[0]) <= bound[0]
    assert abs(float(g_ls) - fd[1]) <= bound[1]


def test_PG_50_log_prob_from_stored_z_is_finite_where_the_action_saturates() -> None:
    """Open choice 15: at z = 25, tanh(z) == 1.0 exactly in float64; atanh(a) is infinite, the stored z is not."""
    z = np.array([25.0, -30.0])
    a = np.tanh(z)
    assert np.all(np.abs(a) == 1.0)
    lp = tanh_gaussian_log_prob(z, 0.0, 0.0)
    assert np.all(np.isfinite(lp))
    with pytest.raises(InvalidPolicyError, match="stored pre-squash z"):
        tanh_gaussian_log_prob_of_action(a, 0.0, 0.0)


def test_PG_50_sampler_returns_tanh_of_a_gaussian_z() -> None:
    """a = tanh(z) exactly; and z ~ N(mu, e^{2 tau}): the sample mean of z lies within 4 sigma / sqrt(n) of mu
    (open choice 22; sigma known here, fixed seed)."""
    rng = np.random.default_rng(7)
    n, mu, ls = 20_000, 0.4, -0.3
    a, z = tanh_gaussian_sample(rng, np.full(n, mu), ls)
    np.testing.assert_array_equal(a, np.tanh(z))
    assert abs(z.mean() - mu) <= 4 * math.exp(ls) / math.sqrt(n)
    assert abs(z.std() - math.exp(ls)) <= 4 * math.exp(ls) / math.sqrt(2 * n)


def test_PG_50_log_std_clamp() -> None:
    np.testing.assert_array_equal(clamp_log_std(np.array([-9.0, 0.0, 7.0])), [-5.0, 0.0, 2.0])
    with pytest.raises(ValueError):
        clamp_log_std(0.0, low=1.0, high=0.0)


# ------------------------------------------------------------------------------ Atari arithmetic
def test_PG_42_PG_43_atari_action_count_and_rate() -> None:
    assert ATARI_N_ACTIONS == 18
    assert actions_per_second() == 15.0
    assert actions_per_second(frame_skip=1) == 60.0


def test_PG_46_E_49_atari_network_shapes() -> None:
    shapes = {layer.name: layer.shape for layer in atari_a3c_layer_shapes(6)}
    assert shapes["input"] == (4, 84, 84)
    assert shapes["conv1"] == (16, 20, 20)
    assert shapes["conv2"] == (32, 9, 9)  # E-49: 32 channels, not 23
    assert shapes["fc"] == (256,)
    assert shapes["policy"] == (6,)
    assert shapes["value"] == (1,)
    typo = {layer.name: layer.shape for layer in atari_a3c_layer_shapes(6, conv2_channels=23)}
    assert typo["conv2"] == (23, 9, 9)
    # parameter count: conv1 16*4*64+16, conv2 32*16*16+32, fc 256*2592+256, heads
    expected = (16 * 4 * 64 + 16) + (32 * 16 * 16 + 32) + (256 * 32 * 81 + 256) + (18 * 256 + 18) + 257
    assert atari_a3c_parameter_count(18) == expected


def test_PG_46_conv_output_size_formula_and_errors() -> None:
    assert conv_output_size(84, kernel=8, stride=4) == 20
    assert conv_output_size(20, kernel=4, stride=2) == 9
    assert conv_output_size(84, kernel=3, stride=1, padding=1) == 84
    with pytest.raises(ShapeError):
        conv_output_size(3, kernel=4, stride=1)
    with pytest.raises(ShapeError):
        atari_a3c_layer_shapes(0)
    # found by the black-box review (2026-12-07): non-integer and non-positive counts gave nonsense counts
    # (1156.5 parameters for n_actions=4.5, -7779 for hidden=-3, 16 for frames=0, 31.0 for stride=2.5)
    for kw in ({"n_actions": 4.5}, {"n_actions": True}, {"n_actions": 4, "hidden": -3}, {"n_actions": 4, "frames": 0},
               {"n_actions": 4, "size": 84.5}):
        with pytest.raises(ShapeError):
            atari_a3c_layer_shapes(**kw)
    with pytest.raises(ShapeError, match="stride"):
        conv_output_size(84, kernel=8, stride=2.5)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="fps"):
        actions_per_second(fps=60.5)  # type: ignore[arg-type]


@settings(max_examples=50)
@given(st.integers(1, 300), st.integers(1, 9), st.integers(1, 5), st.integers(0, 3))
def test_PG_46_conv_output_size_counts_window_positions(size: int, kernel: int, stride: int, pad: int) -> None:
    """The formula equals a direct count of the window start positions that fit."""
    assume(size + 2 * pad >= kernel)
    direct = len(range(0, size + 2 * pad - kernel + 1, stride))
    assert conv_output_size(size, kernel=kernel, stride=stride, padding=pad) == direct


def test_PG_48_actions_outside_the_range_are_refused() -> None:
    """Found by the mutation audit (2026-12-06): a negative action would index from the end in numpy."""
    for bad in (-1, 3):
        with pytest.raises(InvalidPolicyError, match=f"action {bad}"):
            categorical_log_prob(np.zeros((2, 3)), np.array([0, bad]))


# --- found by the black-box review (F4, F7, F8, F12) ---------------------------------------------------------
def _softmax_roundings(big_l: float, n_actions: int) -> int:
    """Relative error of pi_b = exp(lp_b), lp = z - log sum exp z, in units of u = 2^-53 (first order).

    With z = x - max exact (the logits below are multiples of 1/2): each exp and the log are within 1 ulp
    (2 u), the sum of A terms adds (A - 1) u, so log(sum) is off by (A + 1 + log A) u <= (2 A + 1) u in
    absolute terms; the subtraction adds u |lp_b|; exp turns an absolute error into a relative one and adds
    2 u. Total: u (L + 2 A + 3) with L = max |lp|."""
    return math.ceil(big_l + 2 * n_actions + 3)


@pytest.mark.parametrize("n_actions", [2, 3])
def test_PG_19_score_norm_sq_matches_mpmath_for_near_deterministic_rows(n_actions: int) -> None:
    """w_a = ||e_a - pi||^2 for logit gaps 0..40 against 60-digit arithmetic. The expanded form
    1 - 2 pi_a + ||pi||^2 cancelled: logits [0, -20] gave w_0 = 0 for 8.4967e-18.

    Relative tolerance: pi_b is off by d = _softmax_roundings(L, A) u; 1 - pi_a = sum_{b != a} pi_b by
    d + (A - 1) u, its square by 2 d + (2 A - 1) u; sum_{b != a} pi_b^2 by 2 d + A u; their sum adds u:
    (2 d + 2 A) u in all (sums of positive terms only, so relative errors do not grow)."""
    import mpmath  # type: ignore[import-untyped]

    gaps = np.arange(0.0, 40.5, 0.5)
    theta = np.stack([np.array([0.0, -g, -g / 2][:n_actions]) for g in gaps])
    got = score_norm_sq(theta)
    with mpmath.workdps(60):
        for row, w in zip(theta, got, strict=True):
            e = [mpmath.exp(mpmath.mpf(float(x))) for x in row]
            pi = [x / sum(e) for x in e]
            big_l = float(max(-mpmath.log(p) for p in pi)) + 1e-9
            rel = counted_tolerance(1.0, roundings=2 * _softmax_roundings(big_l, n_actions) + 2 * n_actions)
            for a in range(n_actions):
                want = (1 - pi[a]) ** 2 + sum(pi[b] ** 2 for b in range(n_actions) if b != a)
                assert abs(mpmath.mpf(float(w[a])) - want) <= rel * want, (row, a, float(w[a]), float(want))


@pytest.mark.parametrize(("logits", "want"), [
    ([1e308, -1e308], 0.0),
    ([[-1e308, 1e308, 0.0]], 0.0),
    ([-1e308, 1e308], 0.0),
    ([1e308, 1e308, -1e308], math.log(2.0)),
])
def test_PG_48_entropy_at_extreme_logits_counts_zero_probability_actions_as_zero(
        logits: list[float], want: float) -> None:
    """The logit gap 2e308 overflows to -inf: lp = -inf, pi = 0 and 0 * -inf was NaN. By the docstring
    (the limit p log p -> 0) such actions contribute exactly 0. The log 2 row: log, exp (1 ulp each, on an
    argument of size log 2 < 1), a product and a sum of two terms: within 8 u relative."""
    got = categorical_entropy(logits)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=counted_tolerance(1.0, roundings=8), atol=0.0)
    if want == 0.0:
        assert np.all(got == 0.0)


_LOG_STDS = [-1000.0, -900.0, -800.0, -710.0, -709.9, -709.0, -100.0, 0.0, 100.0, 700.0]
_DIFFS = [(0.0, 0.0), (1e-300, 0.0), (0.75, 0.25), (-3.0, 0.0), (2e-5, 0.0)]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the cases beyond the float range
@pytest.mark.parametrize("log_std", _LOG_STDS)
@pytest.mark.parametrize(("z", "mu"), _DIFFS)
def test_PG_51_tanh_gaussian_log_prob_and_score_match_mpmath_for_extreme_log_std(
        z: float, mu: float, log_std: float) -> None:
    """exp(-log_std) overflows below log_std = -709.78: log_prob(0, 0, -710) was NaN (0 * inf) for
    709.0810614667953, log_prob(1e-300, 0, -710) -inf for -2.4953663076188882e16, the score (NaN, NaN) for
    (0, -1). Against 60-digit arithmetic; a value beyond the float range must be the signed inf.

    Bounds (u = 2^-53; z - mu is exact for these pairs): u = (z - mu) / sigma takes <= 6 roundings (two exps of
    1 ulp each and two products), u^2 <= 13; the log-density adds the constant, three sums and
    log1m_tanh2 (<= 8 roundings of terms <= 2 (1 + 3 |z|)), each relative to S = |log_std| + u^2 / 2 +
    0.92 + 2 (1 + 3 |z|): counted_tolerance(S, 32). d/d mu = u / sigma: <= 12 roundings relative; d/d log_std
    = -1 + u^2: counted_tolerance(1 + u^2, 14). Entries below the normal range (|x| < 2^-1022) may be off
    by the subnormal spacing (2^-1074) per rounding: an absolute slack of 2^-1070."""
    import mpmath

    lp = float(tanh_gaussian_log_prob(z, mu, log_std))
    dmu, dls = (float(x) for x in tanh_gaussian_grad_log_prob(z, mu, log_std))
    big = np.finfo(np.float64).max
    slack = 2.0**-1070
    with mpmath.workdps(60):
        d = mpmath.mpf(z) - mpmath.mpf(mu)
        inv = mpmath.exp(-mpmath.mpf(log_std))
        uu = d * inv
        jac = mpmath.log(1 - mpmath.tanh(mpmath.mpf(z)) ** 2)
        want_lp = -mpmath.mpf(log_std) - uu**2 / 2 - mpmath.log(2 * mpmath.pi) / 2 - jac
        want_dmu = uu * inv
        want_dls = -1 + uu**2
        checks = [
            (lp, want_lp, counted_tolerance(float(abs(log_std) + min(uu**2 / 2, big) + 0.92 + 2 * (1 + 3 * abs(z))),
                                            roundings=32)),
            (dmu, want_dmu, counted_tolerance(float(min(abs(want_dmu), big)), roundings=12)),
            (dls, want_dls, counted_tolerance(float(min(1 + uu**2, big)), roundings=14)),
        ]
        for got, want, tol in checks:
            if abs(want) > big:
                assert got == (math.inf if want > 0 else -math.inf), (got, want)
            else:
                assert abs(mpmath.mpf(got) - want) <= tol + slack, (got, float(want), tol)


@pytest.mark.parametrize("a", [1.5, 1.0, -1.0, float("nan"), [0.5, -1.5]])
def test_PG_51_text_log_density_refuses_actions_outside_the_open_interval(a: float | list[float]) -> None:
    """tanh_gaussian_log_prob_text(1.5, 0, 0) was NaN (-inf at a = 1) with a RuntimeWarning only; it raises
    now, as tanh_gaussian_log_prob_of_action does."""
    for f in (tanh_gaussian_log_prob_text, tanh_gaussian_log_prob_of_action):
        with pytest.raises(InvalidPolicyError, match=r"must lie in \(-1, 1\)"):
            f(a, 0.0, 0.0)


# --- found by the mutation audit of the review (P4) ---------------------------------------------------------
@pytest.mark.parametrize(("low", "high", "want"), [
    (-2.0, 1.0, [-2.0, -2.0, -1.5, 0.0, 1.0, 1.0, 1.0]),
    (-8.0, 3.0, [-8.0, -3.0, -1.5, 0.0, 1.5, 2.5, 3.0]),
])
def test_PG_50_log_std_clamp_uses_the_given_bounds(low: float, high: float, want: list[float]) -> None:
    """clamp_log_std clips to the [low, high] it is given, not to the default [-5, 2] of open choice 15:
    values inside the defaults but outside [-2, 1] are clipped, values outside the defaults but inside [-8, 3]
    are kept. np.clip returns the bound or the input itself, so the comparison is exact."""
    got = clamp_log_std(np.array([-9.0, -3.0, -1.5, 0.0, 1.5, 2.5, 7.0]), low=low, high=high)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("logits", [[0.0, -36.0], [0.0, -38.0], [0.0, -40.0, -745.0], [3.0, 3.0, -50.0], [1.0, 0.5]])
def test_PG_48_log_softmax_and_entropy_keep_relative_accuracy_at_nearly_deterministic_rows(logits: list[float]) -> None:
    """log pi(dominant) = -log(1 + s) with s the sum of the other exp gaps: computed as log(1 + s) it was 0 for
    [0, -38] (exact -3.1e-17) and the entropy 2.6 % off (review 2026-12-07); with log1p both keep their relative
    accuracy. Oracle: 50-digit mpmath. Bound: a few roundings relative to each value (counted_tolerance, 8)."""
    import mpmath as mp

    from reference.tolerance import counted_tolerance

    mp.mp.dps = 50
    x = [mp.mpf(v) for v in logits]
    lse = mp.log(sum(mp.e ** v for v in x))
    want_lp = [float(v - lse) for v in x]
    want_h = float(-sum(mp.e ** (v - lse) * (v - lse) for v in x))
    got_lp = log_softmax(np.array(logits))
    for g, w in zip(got_lp, want_lp, strict=True):
        assert abs(g - w) <= counted_tolerance(abs(w), roundings=8) + 1e-300
    got_h = float(categorical_entropy(np.array(logits)))
    assert abs(got_h - want_h) <= counted_tolerance(want_h, roundings=8 * len(logits))


def test_PG_51_log_density_at_astronomical_z_is_minus_inf_not_nan() -> None:
    """|z| >= ~9e307: the Gaussian term and the tanh term were both -inf and their difference NaN (review
    2026-12-07); the limit is -inf (-z^2 / 2 dominates -2 |z|). Ordinary z are unchanged."""
    z = np.array([1e308, -1e308, -np.finfo(float).max, 1e200])
    out = tanh_gaussian_log_prob(z, np.zeros(4), np.zeros(4))
    assert np.all(out == -np.inf)
    assert np.isfinite(tanh_gaussian_log_prob(np.array([3.0]), np.zeros(1), np.zeros(1))).all()


def test_PG_43_PG_46_shapes_and_rates_away_from_the_defaults() -> None:
    """The defaults hid three paths (review 2026-12-07): the value head left out of the parameter count, conv1's
    input channels tied to 4 frames, and fps // frame_skip for rates that do not divide evenly. Closed forms:
    without the value head the count drops by hidden + 1 = 257; with 2 frames conv1 has 16 * 2 * 64 + 16
    parameters and the input is (2, 84, 84); 60 fps with an action repeat of 7 gives 60 / 7 actions a second."""
    assert atari_a3c_parameter_count(18) - atari_a3c_parameter_count(18, value_head=False) == 257
    names = [layer.name for layer in atari_a3c_layer_shapes(18, value_head=False)]
    assert names == ["input", "conv1", "conv2", "fc", "policy"]
    two = {layer.name: layer for layer in atari_a3c_layer_shapes(6, frames=2)}
    assert two["input"].shape == (2, 84, 84)
    assert two["conv1"].n_params == 16 * 2 * 64 + 16
    assert actions_per_second(fps=60, frame_skip=7) == 60 / 7
