"""Tests of reference.trust_region: surrogate K, IS estimator, KL, Fisher, CG, line search, TRPO, PPO.

Exact checks compare two float64 computations with reference.tolerance: advantages have scale
2 R / (1 - gamma), occupancies sum to 1 / (1 - gamma) (kappa = discount_condition(gamma) bounds the
linear solves). Trajectory identities enumerate every trajectory of small layered MDPs.

Convergence claims carry margins stated before running (see each test): TRPO with exact advantages
(delta = 0.01, 200 iterations) reaches J* within 1e-4 R / (1 - gamma); PPO-Clip and PPO-Penalty
(lr = 1, 10 epochs, 300 iterations) within 1e-2 R / (1 - gamma) (first-order softmax methods converge
at rate O(1/k) (Mei et al. 2020), so a looser margin and a fixed budget).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.advantages import rollout_from_trajectories
from reference.dp import v_star
from reference.errors import ReferenceError_, ShapeError
from reference.exact import a_pi, discounted_occupancy, j_pi
from reference.generators import random_layered_mdp, random_mdp
from reference.gradients import grad_j_exact, j_theta
from reference.mdp import FiniteMDP, FloatArray
from reference.policies import softmax, softmax_score_full
from reference.sampling import enumerate_trajectories, exact_moments, sample_trajectories
from reference.tolerance import central_difference, discount_condition, tolerance, value_scale
from reference.trust_region import (
    Direction,
    backtracking_line_search,
    conjugate_gradient,
    fisher_matrix,
    fisher_vector_product,
    grad_surrogate_k,
    hessian_j_fd,
    hessian_surrogate_k,
    is_surrogate_estimate,
    is_surrogate_terms,
    natural_gradient,
    policy_kl,
    ppo_clip_exact,
    ppo_clip_surrogate_exact,
    ppo_penalty_exact,
    state_kl,
    state_weights,
    surrogate_k,
    trpo_exact,
)


def _tol(mdp: FiniteMDP) -> float:
    g = mdp.gamma
    kappa = discount_condition(g, mdp.n_states + 1)
    return tolerance(2.0 * value_scale(max(mdp.max_abs_reward, 1e-300), g, mdp.n_states + 1) * kappa,
                     terms=mdp.n_states + 1, condition=kappa)


def _theta(mdp: FiniteMDP, rng: np.random.Generator, scale: float = 1.0) -> FloatArray:
    return np.asarray(scale * rng.normal(size=(mdp.n_states_plus, mdp.n_actions)), dtype=np.float64)


def _log_probs(pi: FloatArray, traj_states: np.ndarray, actions: np.ndarray, term: int) -> FloatArray:
    s = np.minimum(traj_states[:, :-1], term)
    return np.asarray(np.log(pi[s, actions]).T, dtype=np.float64)


# ----------------------------------------------------------------------------- K and its IS form
@settings(max_examples=10)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.8, 1.0]))
def test_TR_04_TR_05_is_forms_of_j_difference_and_surrogate(seed: int, gamma: float) -> None:
    """TR-04: J(theta) - J(theta0) = E_{tau ~ pi_theta, a'_t ~ pi0}[sum_t gamma^t ratio(a'_t) A0(s_t, a'_t)];
    TR-05: K(theta; theta0) - J(theta0) = E_{tau ~ pi0}[sum_t gamma^t ratio(a_t) A0(s_t, a_t)] (exact)."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, early_stop_prob=0.3)
    th, th0 = _theta(mdp, rng), _theta(mdp, rng)
    pi, pi0 = softmax(th), softmax(th0)
    adv0 = a_pi(mdp, pi0)
    h = 3
    tol = tolerance(h * 2.0 * value_scale(1.0, gamma, h) * 10.0, terms=h * 64,
                    condition=discount_condition(gamma, h))
    # TR-04: inner expectation over a' ~ pi0 of ratio * A0 is sum_a' pi(a'|s) A0(s, a')
    tr = enumerate_trajectories(mdp, pi)
    inner = np.sum(pi * adv0, axis=1)
    disc = gamma ** np.arange(tr.horizon)
    per = np.where(tr.valid, inner[np.minimum(tr.states[:, :-1], mdp.term)], 0.0) @ disc
    assert abs(float(tr.weights @ per) - (j_pi(mdp, pi) - j_pi(mdp, pi0))) <= tol
    # TR-05: the same ratio * A0 with tau ~ pi0 and on-policy actions gives K - C, C = J(theta0)
    tr0 = enumerate_trajectories(mdp, pi0)
    ro = rollout_from_trajectories(mdp, tr0, np.zeros(mdp.n_states_plus))
    a_t = np.where(ro.valid, adv0[np.minimum(tr0.states[:, :-1], mdp.term), tr0.actions].T, 0.0)
    terms = is_surrogate_terms(_log_probs(pi, tr0.states, tr0.actions, mdp.term),
                               _log_probs(pi0, tr0.states, tr0.actions, mdp.term), a_t, ro.valid, gamma=gamma)
    k = surrogate_k(mdp, th, th0)
    assert abs(float(tr0.weights @ terms) - (k - j_pi(mdp, pi0))) <= tol
    assert abs(surrogate_k(mdp, th0, th0) - j_pi(mdp, pi0)) <= tol


def test_TR_06_gradients_agree_at_theta0_and_hessians_differ() -> None:
    """grad K(theta0; theta0) = grad J(theta0) (exact); the Hessians differ. The finite-difference errors
    are estimated, not assumed: for K against its exact Hessian, for J by halving h (Richardson)."""
    rng = np.random.default_rng(7)
    mdp = random_mdp(rng, 3, 2, gamma=0.8)
    th0 = _theta(mdp, rng)
    np.testing.assert_allclose(grad_surrogate_k(mdp, th0, th0), grad_j_exact(mdp, th0), rtol=0, atol=_tol(mdp))
    hk = hessian_surrogate_k(mdp, th0, th0)
    h = 1e-4
    n = th0.size
    hk_fd = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        hk_fd[:, i] = (grad_surrogate_k(mdp, th0 + e.reshape(th0.shape), th0)
                       - grad_surrogate_k(mdp, th0 - e.reshape(th0.shape), th0)).ravel() / (2 * h)
    err_k = float(np.max(np.abs(hk_fd - hk)))
    hj, hj2 = hessian_j_fd(mdp, th0, h=h), hessian_j_fd(mdp, th0, h=h / 2)
    err_j = float(np.max(np.abs(hj - hj2))) * 4.0 / 3.0
    gap = float(np.max(np.abs(hj - hk)))
    assert gap > 100.0 * (err_j + err_k), (gap, err_j, err_k)


def test_TR_07_is_estimator_unbiased_and_its_variance_grows_with_the_kl() -> None:
    """Exact (enumeration): the IS terms have mean K - C for every theta (unbiased). Along theta0 + s u
    (s = 0..3, measured on this instance) the mean KL, the second moment E_{s~rho, a~pi0}[ratio^2]
    = 1 + chi^2 of the per-step weights and the surrogate gap |J(theta) - K(theta; theta0)| all grow,
    while the variance of the K - C estimate itself is NOT monotone here (0.269, 0.242, 0.230, 0.254,
    0.298): the error that grows with the divergence is the weights' spread and the gap to J. A sampled
    check at s = 1: |mean - (K - C)| <= 4 sigma_hat / sqrt(n) (open choice 22)."""
    rng = np.random.default_rng(3)
    mdp = random_layered_mdp(rng, 3, 2, 3, gamma=0.9, early_stop_prob=0.2)
    th0 = _theta(mdp, rng, 0.5)
    u = np.zeros_like(th0)
    u[:, 0] = 1.0  # raise the logit of action 0 everywhere
    pi0 = softmax(th0)
    adv0 = a_pi(mdp, pi0)
    tr0 = enumerate_trajectories(mdp, pi0)
    ro = rollout_from_trajectories(mdp, tr0, np.zeros(mdp.n_states_plus))
    a_t = np.where(ro.valid, adv0[np.minimum(tr0.states[:, :-1], mdp.term), tr0.actions].T, 0.0)
    lp0 = _log_probs(pi0, tr0.states, tr0.actions, mdp.term)
    tol = tolerance(3 * 2.0 * value_scale(1.0, 0.9) * 50.0, terms=3 * tr0.n, condition=discount_condition(0.9))
    kls, chi, gaps = [], [], []
    w0 = state_weights(mdp, pi0)
    for s in (0.0, 0.5, 1.0, 2.0, 3.0):
        th = th0 + s * u
        terms = is_surrogate_terms(_log_probs(softmax(th), tr0.states, tr0.actions, mdp.term), lp0, a_t,
                                   ro.valid, gamma=0.9)
        mom = exact_moments(terms, tr0.weights)
        assert abs(float(mom.mean) - (surrogate_k(mdp, th, th0) - j_pi(mdp, pi0))) <= tol
        kls.append(policy_kl(mdp, pi0, softmax(th)))
        chi.append(float(w0 @ np.sum(softmax(th) ** 2 / pi0, axis=1)))
        gaps.append(abs(j_theta(mdp, th) - surrogate_k(mdp, th, th0)))
    assert np.all(np.diff(kls) > 0) and np.all(np.diff(chi) > 0) and np.all(np.diff(gaps) > 0), (kls, chi, gaps)
    # sampled
    th = th0 + u
    smp = sample_trajectories(mdp, pi0, rng=np.random.default_rng(11), n=4000, horizon=3)
    rs = rollout_from_trajectories(mdp, smp, np.zeros(mdp.n_states_plus))
    a_s = np.where(rs.valid, adv0[np.minimum(smp.states[:, :-1], mdp.term), smp.actions].T, 0.0)
    t_s = is_surrogate_terms(_log_probs(softmax(th), smp.states, smp.actions, mdp.term),
                             _log_probs(pi0, smp.states, smp.actions, mdp.term), a_s, rs.valid, gamma=0.9)
    target = surrogate_k(mdp, th, th0) - j_pi(mdp, pi0)
    assert abs(float(t_s.mean()) - target) <= 4.0 * float(t_s.std(ddof=1)) / np.sqrt(t_s.size)


# ----------------------------------------------------------------------------- KL, Fisher, natural gradient
def test_TR_10_kl_directions_and_reductions_E_56() -> None:
    """Exact per-state KL both ways; they differ (E-56: the text's new||old is not Schulman's old||new);
    mean over rho^{pi_old} <= max over S; KL(pi, pi) = 0."""
    rng = np.random.default_rng(1)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    p_old, p_new = softmax(_theta(mdp, rng)), softmax(_theta(mdp, rng))
    direct = np.sum(p_old * np.log(p_old / p_new), axis=1)
    tol = tolerance(float(np.max(np.abs(np.log(p_old / p_new)))), terms=mdp.n_actions)
    np.testing.assert_allclose(state_kl(p_old, p_new), direct, rtol=0, atol=tol)
    fwd, rev = state_kl(p_old, p_new), state_kl(p_old, p_new, direction="new_old")
    assert float(np.max(np.abs(fwd - rev)[: mdp.n_states])) > 1e3 * tol
    directions: tuple[Direction, Direction] = ("old_new", "new_old")
    for d in directions:
        mean = policy_kl(mdp, p_old, p_new, direction=d)
        mx = policy_kl(mdp, p_old, p_new, direction=d, reduce="max")
        assert 0.0 < mean <= mx
        w = state_weights(mdp, p_old)
        kl = state_kl(p_old, p_new, direction=d)
        assert abs(mean - float(w[: mdp.n_states] @ kl[: mdp.n_states])) <= tol
        assert mx == float(np.max(kl[: mdp.n_states]))
    assert policy_kl(mdp, p_old, p_old) == 0.0
    with pytest.raises(ReferenceError_, match="direction"):
        policy_kl(mdp, p_old, p_new, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ReferenceError_, match="reduce"):
        policy_kl(mdp, p_old, p_new, reduce="median")  # type: ignore[arg-type]


def test_TR_09_fisher_is_score_covariance_and_kl_hessian() -> None:
    """F = E_{s~rho, a~pi}[score score^T] (exact sum); F v = fisher_vector_product; F is the Jacobian at
    theta0 of the gradient rho(s) (pi_theta - pi0) of E_rho KL(pi0 || pi_theta) (central differences,
    error <= h^2 max|f'''| / 6 with |f'''| <= 1 for softmax probabilities, plus rounding eps/h)."""
    rng = np.random.default_rng(2)
    mdp = random_mdp(rng, 3, 3, gamma=0.9)
    th = _theta(mdp, rng)
    pi = softmax(th)
    w = state_weights(mdp, pi)
    f = fisher_matrix(th, w)
    emp = np.zeros_like(f)
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            sc = softmax_score_full(th, s, a).ravel()
            emp += w[s] * pi[s, a] * np.outer(sc, sc)
    np.testing.assert_allclose(f, emp, rtol=0, atol=tolerance(4.0, terms=mdp.n_states * mdp.n_actions))
    v = rng.normal(size=th.shape)
    np.testing.assert_allclose(fisher_vector_product(th, v, w).ravel(), f @ v.ravel(), rtol=0,
                               atol=tolerance(4.0 * float(np.max(np.abs(v))), terms=th.size))
    h = 1e-4
    jac = np.zeros_like(f)
    for i in range(th.size):
        e = np.zeros(th.size)
        e[i] = h
        gp = w[:, None] * (softmax(th + e.reshape(th.shape)) - pi)
        gm = w[:, None] * (softmax(th - e.reshape(th.shape)) - pi)
        jac[:, i] = (gp - gm).ravel() / (2 * h)
    live = np.repeat(np.arange(mdp.n_states_plus) != mdp.term, mdp.n_actions)
    np.testing.assert_allclose(jac[np.ix_(live, live)], f[np.ix_(live, live)], rtol=0,
                               atol=h * h / 6.0 + tolerance(1.0) / h)


@settings(max_examples=20)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.5, 0.9]))
def test_TR_09_natural_gradient_of_tabular_softmax_is_the_centred_advantage(seed: int, gamma: float) -> None:
    """With the Fisher weighted by d^pi (unnormalised) and g = grad J: F^+ g = A^pi(s, .) - mean_a A^pi(s, .)
    (Kakade 2001); CG on the damped system matches the direct solve."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 4, 3, gamma=gamma)
    th = _theta(mdp, rng)
    pi = softmax(th)
    d = discounted_occupancy(mdp, pi)
    d[mdp.term] = 0.0
    x = natural_gradient(th, grad_j_exact(mdp, th), d)
    adv = a_pi(mdp, pi)
    want = adv - adv.mean(axis=1, keepdims=True)
    want[mdp.term] = 0.0
    f = fisher_matrix(th, d)
    # condition of F on its range: block s = d(s) (diag(pi_s) - pi_s pi_s^T) has rank A - 1 when d(s) > 0 (every
    # pi_s > 0 under softmax) and is 0 otherwise, so rank F is known exactly; the remaining computed eigenvalues
    # are eigvalsh's rounding of zeros, within its backward error tolerance(||F||_2, terms=D)
    ev = np.linalg.eigvalsh(f)
    rank = int(np.count_nonzero(d > 0.0)) * (mdp.n_actions - 1)
    nz, null = ev[ev.size - rank:], ev[:ev.size - rank]
    zero_tol = tolerance(float(ev.max()), terms=th.size)
    assert np.all(np.abs(null) <= zero_tol) and nz.min() > zero_tol
    kappa_f = float(nz.max() / nz.min())
    np.testing.assert_allclose(x, want, rtol=0,
                               atol=tolerance(2.0 * value_scale(1.0, gamma), terms=th.size,
                                              condition=kappa_f * discount_condition(gamma)))


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12))
def test_TR_09_conjugate_gradient_matches_a_direct_solve(seed: int, n: int) -> None:
    """CG with 2n iterations on an SPD system (condition <= 1e3): residual <= 1e-10 ||b|| (margin stated
    in advance: CG is exact after n steps in exact arithmetic), and the a-posteriori bound
    ||x - x*|| <= ||b - A x|| / lambda_min + the direct solve's rounding holds."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.geomspace(1.0, 1e3, n)
    a = (q * lam) @ q.T
    a = 0.5 * (a + a.T)
    b = rng.normal(size=n)
    x = conjugate_gradient(lambda v: a @ v, b, iters=2 * n)
    r = float(np.linalg.norm(b - a @ x))
    assert r <= 1e-10 * float(np.linalg.norm(b))
    xd = np.linalg.solve(a, b)
    assert float(np.linalg.norm(x - xd)) <= r / lam[0] + tolerance(float(np.linalg.norm(xd)), terms=n,
                                                                    condition=1e3)
    with pytest.raises(ReferenceError_, match="positive definite"):
        conjugate_gradient(lambda v: -v, b, iters=3)


def test_TR_10_line_search_enforces_the_kl_constraint_and_improvement() -> None:
    rng = np.random.default_rng(4)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    th = _theta(mdp, rng)
    pi = softmax(th)
    delta = 0.01

    def kl(t: FloatArray) -> float:
        return policy_kl(mdp, pi, softmax(t))

    def obj(t: FloatArray) -> float:
        return j_theta(mdp, t)

    step = 100.0 * natural_gradient(th, grad_j_exact(mdp, th), state_weights(mdp, pi), damping=0.1)
    assert kl(th + step) > delta
    res = backtracking_line_search(th, step, objective=obj, constraint=kl, delta=delta)
    assert res.accepted and res.backtracks > 0
    assert kl(res.theta) <= delta and obj(res.theta) > obj(th)
    bad = backtracking_line_search(th, -step, objective=obj, constraint=kl, delta=delta, max_backtracks=5)
    assert not bad.accepted and np.array_equal(bad.theta, th)
    with pytest.raises(ReferenceError_, match="delta"):
        backtracking_line_search(th, step, objective=obj, constraint=kl, delta=0.0)


# ----------------------------------------------------------------------------- TRPO and PPO loops
@pytest.mark.parametrize("seed", [0, 1])
def test_TR_10_trpo_monotone_improvement_and_reaches_j_star(seed: int) -> None:
    """Exact TRPO (delta = 0.01, 10 CG iterations, damping 0.1): J never decreases (the line search
    accepts only improvements of the exact J: the non-decrease is exact), every step keeps the mean
    KL(old || new) <= delta, and after 200 iterations J* - J <= 1e-4 R / (1 - gamma) (margin stated in
    advance)."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 5, 3, gamma=0.9)
    res = trpo_exact(mdp, np.zeros((mdp.n_states_plus, mdp.n_actions)), delta=0.01, iters=200)
    assert np.all(np.diff(res.j) >= 0.0)
    assert np.all(res.kl <= 0.01)
    j_star = float(mdp.p0 @ v_star(mdp))
    assert j_star - res.j[-1] <= 1e-4 * value_scale(mdp.max_abs_reward, 0.9)
    assert res.j[-1] <= j_star + _tol(mdp)


def test_TR_15_ppo_clip_exact_gradient_matches_finite_differences() -> None:
    """The exact clipped surrogate is piecewise smooth; away from kinks (every ratio here is >= 0.1 from
    1 +- eps, the steps move it by ~1e-4) its central difference matches the analytic gradient within the
    computed bound of :func:`reference.tolerance.central_difference` (Richardson truncation + rounding).

    Rounding of one evaluation of L: d^{pi_k} and A^{pi_k} depend on theta_k only and are computed
    identically in every call (common data, shared by the analytic gradient), so only the theta-dependent
    roundings count: softmax (A + 2), the ratio, C_eps and two products (5) per summand and the sum of
    |S+| A summands, n = |S+| A + A + 6, at the scale sum_s d(s) sum_a pi_k |C_eps| <= (2 + eps) max|A| /
    (1 - gamma) with |C_eps(ell, A)| <= (ell + 1 + eps) |A| and |A| <= 2 R / (1 - gamma). The gradient's own
    rounding (A + 4 roundings at scale 2 max|A| / (1 - gamma)) is added. h = 1e-4 balances that rounding
    term f_error / h (~2e-7) against the truncation term (~5e-10 here)."""
    rng = np.random.default_rng(5)
    mdp = random_mdp(rng, 3, 3, gamma=0.9)
    thk = _theta(mdp, rng)
    th = thk + 0.05 * rng.normal(size=thk.shape)
    _, g = ppo_clip_surrogate_exact(mdp, th, thk, eps=0.2)
    adv_max = 2.0 * value_scale(mdp.max_abs_reward, mdp.gamma)
    f_error = tolerance((2.0 + 0.2) * adv_max / (1.0 - mdp.gamma),
                        terms=mdp.n_states_plus * mdp.n_actions + mdp.n_actions + 6)
    g_error = tolerance(2.0 * adv_max / (1.0 - mdp.gamma), terms=mdp.n_actions + 4)
    fd, bound = central_difference(lambda t: ppo_clip_surrogate_exact(mdp, t, thk, eps=0.2)[0], th, h=1e-4,
                                   f_error=f_error)
    assert np.all(np.abs(fd - g) <= bound + g_error), float(np.max(np.abs(fd - g) - bound))
    v0, g0 = ppo_clip_surrogate_exact(mdp, thk, thk, eps=0.2)
    assert abs(v0) <= _tol(mdp)  # C_eps(1, A) = A and E_{pi_k}[A^{pi_k}] = 0
    np.testing.assert_allclose(g0, grad_j_exact(mdp, thk), rtol=0, atol=_tol(mdp))


def test_TR_15_TR_12_ppo_clip_and_penalty_reach_an_optimal_policy() -> None:
    """PPO-Clip (eps = 0.2) and PPO-Penalty (adaptive beta, d_targ = 0.01) with exact advantages, lr = 1,
    10 epochs, 300 iterations: J* - J <= 1e-2 R / (1 - gamma) (margin and budget stated in advance)."""
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 5, 3, gamma=0.9)
    j_star = float(mdp.p0 @ v_star(mdp))
    th0 = np.zeros((mdp.n_states_plus, mdp.n_actions))
    margin = 1e-2 * value_scale(mdp.max_abs_reward, 0.9)
    clip = ppo_clip_exact(mdp, th0, eps=0.2, lr=1.0, epochs=10, iters=300)
    pen = ppo_penalty_exact(mdp, th0, beta=1.0, d_targ=0.01, lr=1.0, epochs=10, iters=300)
    for res in (clip, pen):
        assert j_star - res.j[-1] <= margin
        assert res.j[-1] <= j_star + _tol(mdp)


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1), st.sampled_from([12.0, 20.0, 30.0, 40.0]), st.booleans())
def test_TR_09_natural_gradient_is_the_exact_pseudo_inverse_at_near_deterministic_policies(
        seed: int, gap: float, consistent: bool) -> None:
    """F^+ g against a 50-digit oracle, per block: pi_s = softmax(theta_s) and F_s from theta in 50 digits, the
    float g taken exactly; solve (F_s + 1 1^T) z = g_s and remove z's mean (F_s 1 = 0 and 1 is an eigenvector of
    F_s + 1 1^T, so this is the minimum-norm least-squares solution). One action per state dominates by ``gap``
    logits, so the blocks' smallest nonzero eigenvalues are about w_s e^-gap: a generic pseudo-inverse with a
    relative cut-off (the code before this test) returned 0 or an offset there. g is grad J (consistent: each row
    sums to 0 up to rounding) or a random vector (least squares). The closed form's only errors are the float
    softmax (each p_a within (A + 2) eps relative) and about 4 roundings of u_a = (g_a - c) / (w p_a) and of the
    two means: within (2 A + 4) eps max|x| per block, checked with tolerance(terms=2 A + 4)."""
    import mpmath  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 3, 3, gamma=0.9)
    th = rng.uniform(0.0, 1.0, size=(mdp.n_states_plus, 3))
    th[np.arange(mdp.n_states_plus), rng.integers(0, 3, mdp.n_states_plus)] += gap
    pi = softmax(th)
    w = discounted_occupancy(mdp, pi)
    w[mdp.term] = 0.0
    g = grad_j_exact(mdp, th) if consistent else rng.normal(size=th.shape)
    x = natural_gradient(th, g, w)
    with mpmath.workdps(50):
        for s in range(mdp.n_states_plus):
            if w[s] == 0.0:
                assert np.all(x[s] == 0.0)
                continue
            ex = [mpmath.exp(mpmath.mpf(float(t))) for t in th[s]]
            p = [e / sum(ex) for e in ex]
            m = mpmath.matrix(3, 3)
            for i in range(3):
                for j in range(3):
                    m[i, j] = mpmath.mpf(float(w[s])) * ((p[i] if i == j else 0) - p[i] * p[j]) + 1
            z = mpmath.lu_solve(m, mpmath.matrix([mpmath.mpf(float(v)) for v in g[s]]))
            zbar = sum(z) / 3
            want = np.array([float(z[i] - zbar) for i in range(3)])
            assert np.max(np.abs(x[s] - want)) <= tolerance(float(np.max(np.abs(want))), terms=2 * 3 + 4)


def test_TR_09_natural_gradient_example_states_of_the_review() -> None:
    """The two examples of the 2026-12-06 review: a near-deterministic state (pi ~ 9e-14) whose natural
    gradient came back as 0, and a one-state MDP at a logit gap of 12 (off by 0.5 per entry); the correct
    value is A - mean_a A = (-0.5, 0.5) in both (rewards 0 and 1, each action ends the episode)."""
    from reference.mdp import from_outcomes

    m2 = from_outcomes(2, 2, [0, 1, 2, 3, 4], [2, 2, 2, 2], [0.0, 1.0, 0.0, 1.0], [1, 1, 1, 1],
                       np.array([0.5, 0.5]), gamma=0.9)
    th = np.array([[0.0, 0.0], [0.0, -30.0], [0.0, 0.0]])
    x = natural_gradient(th, grad_j_exact(m2, th), state_weights(m2, softmax(th)))
    # the same rounding model as the test above (a few sums of at most |S+| + 4 terms on entries of size 0.5)
    np.testing.assert_allclose(x[:2], [[-0.5, 0.5], [-0.5, 0.5]], rtol=0, atol=tolerance(0.5, terms=2 * 3 + 4))
    m1 = from_outcomes(1, 2, [0, 1, 2], [1, 1], [0.0, 1.0], [1, 1], np.array([1.0]), gamma=0.9)
    th1 = np.array([[0.0, -12.0], [0.0, 0.0]])
    x1 = natural_gradient(th1, grad_j_exact(m1, th1), state_weights(m1, softmax(th1)))
    np.testing.assert_allclose(x1[0], [-0.5, 0.5], rtol=0, atol=tolerance(0.5, terms=2 * 2 + 4))


def test_TR_10_mean_kl_ignores_states_of_weight_zero_even_where_kl_is_infinite() -> None:
    """A state that rho^{pi_old} never visits, where KL(old || new) = inf: it does not enter the expectation
    (0 * inf was NaN). Oracle: the one visited state, 0.5 log(0.5 / 0.6) + 0.5 log(0.5 / 0.4)."""
    from reference.mdp import from_outcomes

    m = from_outcomes(2, 2, [0, 1, 2, 3, 4], [2, 2, 2, 2], [1.0, 0.0, 0.5, -0.5], [1, 1, 1, 1],
                      np.array([1.0, 0.0]), gamma=0.9)
    got = policy_kl(m, np.full((3, 2), 0.5), np.array([[0.6, 0.4], [1.0, 0.0], [0.5, 0.5]]))
    want = 0.5 * np.log(0.5 / 0.6) + 0.5 * np.log(0.5 / 0.4)
    assert abs(got - want) <= tolerance(abs(want), terms=4)
    assert policy_kl(m, np.full((3, 2), 0.5), np.array([[0.6, 0.4], [1.0, 0.0], [0.5, 0.5]]),
                     reduce="max") == np.inf


@pytest.mark.parametrize("bad", ["damping_inf", "damping_nan", "weights_negative", "weights_nan", "grad_nan"])
def test_TR_09_natural_gradient_and_fisher_refuse_bad_numbers(bad: str) -> None:
    th = np.zeros((3, 2))
    w = np.ones(3)
    g = np.array([[0.1, -0.1], [0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ReferenceError_):
        if bad == "damping_inf":
            natural_gradient(th, g, w, damping=float("inf"))
        elif bad == "damping_nan":
            natural_gradient(th, g, w, damping=float("nan"))
        elif bad == "weights_negative":
            natural_gradient(th, g, np.array([1.0, -1.0, 0.0]))
        elif bad == "weights_nan":
            fisher_vector_product(th, g, np.array([1.0, np.nan, 0.0]))
        else:
            natural_gradient(th, np.array([[np.nan, 0.0], [0.0, 0.0], [0.0, 0.0]]), w)
    if bad == "weights_negative":
        with pytest.raises(ReferenceError_):
            fisher_matrix(th, np.array([1.0, -1.0, 0.0]))


def test_TR_09_bad_inputs_raise() -> None:
    mdp = random_mdp(np.random.default_rng(0), 2, 2, gamma=0.9)
    th = np.zeros((3, 2))
    with pytest.raises(ShapeError, match="theta"):
        surrogate_k(mdp, np.zeros((2, 2)), th)
    with pytest.raises(ShapeError):
        natural_gradient(th, np.zeros((2, 2)), np.ones(3))
    with pytest.raises(ReferenceError_, match="damping"):
        natural_gradient(th, th, np.ones(3), damping=-1.0)
    with pytest.raises(ShapeError):
        is_surrogate_terms(np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 2)), np.ones((2, 2)), gamma=0.9)
    with pytest.raises(ReferenceError_, match="lr"):
        ppo_clip_exact(mdp, th, lr=0.0, iters=1)


def test_TR_03_E_54_a2c_makes_one_update_per_k_step_segment() -> None:
    """E-54: on a deterministic chain with T = 7 steps and k = 5, A2C (reference.pg_algorithms.a2c) finishes
    an episode every ceil(T/k) = 2 updates (7 transitions per 2 updates), not T = 7 updates."""
    from reference.mdp import from_outcomes
    from reference.pg_algorithms import a2c

    t_len = 7
    mdp = from_outcomes(t_len, 1, np.arange(t_len + 1), np.arange(1, t_len + 1), np.zeros(t_len), np.ones(t_len),
                        np.eye(t_len)[0], gamma=0.9, name="chain")
    for episodes in (1, 3):
        res = a2c(mdp, rng=np.random.default_rng(0), num_updates=2 * episodes, lr_theta=0.1, lr_phi=0.1, k=5)
        assert res.num_env_steps == t_len * episodes


# --- found by the mutation audit of 2026-12-06 -------------------------------------------------------------
def test_TR_10_state_weights_drop_term_and_renormalise() -> None:
    """rho = d^pi with d(term) = 0, normalised over the non-terminal states (the same expression: bit for bit)."""
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 4, 2, gamma=0.9, terminal_prob=0.3)
    pi = np.full((mdp.n_states_plus, mdp.n_actions), 0.5)
    d = discounted_occupancy(mdp, pi)
    d[mdp.term] = 0.0
    w = state_weights(mdp, pi)
    assert w[mdp.term] == 0.0
    np.testing.assert_array_equal(w, d / float(d.sum()))


def test_TR_10_max_kl_excludes_term() -> None:
    rng = np.random.default_rng(1)
    mdp = random_mdp(rng, 3, 3, gamma=0.9)
    th = rng.normal(size=(mdp.n_states_plus, mdp.n_actions))
    th2 = th.copy()
    th2[mdp.term] += np.array([5.0, 0.0, -5.0])  # the policies differ only in the inert term row
    assert policy_kl(mdp, softmax(th), softmax(th2), reduce="max") == 0.0
    assert policy_kl(mdp, softmax(th), softmax(th2), reduce="mean") == 0.0


def test_TR_10_line_search_needs_strict_improvement() -> None:
    res = backtracking_line_search(np.zeros((2, 2)), np.zeros((2, 2)), objective=lambda t: 1.0,
                                   constraint=lambda t: 0.0, delta=0.01, max_backtracks=2)
    assert not res.accepted


def test_TR_10_trpo_step_has_quadratic_kl_delta() -> None:
    """The full step s = sqrt(2 delta / x^T (F + lam I) x) x has 1/2 s^T (F + lam I) s = delta, and backtracking
    halves it: the accepted step (from theta0 = 0, so theta1 - theta0 is exact) satisfies
    1/2 s^T (F + lam I) s * 4^j = delta for an integer j >= 0. Tolerance: the quadratic form and the step are
    sums of D = |theta| products each (tolerance(delta, terms=2 D)). A step of the wrong length
    (sqrt(delta / ...)) is off by a factor 2, half a power of 4."""
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 5, 3, gamma=0.9)
    th0 = np.zeros((mdp.n_states_plus, mdp.n_actions))
    delta, damping = 1e-3, 0.1
    res = trpo_exact(mdp, th0, delta=delta, iters=1, damping=damping)
    s = res.thetas[1] - th0
    assert np.any(s != 0.0)  # the step was accepted
    w = state_weights(mdp, softmax(th0))
    q = 0.5 * float(np.sum(s * (fisher_vector_product(th0, s, w) + damping * s)))
    j = round(float(np.log(delta / q) / np.log(4.0)))
    assert j >= 0
    assert abs(q * 4.0**j - delta) <= tolerance(delta, terms=2 * th0.size)


def test_TR_12_ppo_penalty_halves_beta_when_kl_is_small() -> None:
    """Adaptive rule: KL < d_targ / 1.5 after an iteration halves beta, so the second iteration of an adaptive run
    is a fixed-beta (0.5) iteration from theta_1 (the same floats: bit for bit)."""
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    th0 = np.zeros((mdp.n_states_plus, mdp.n_actions))
    two = ppo_penalty_exact(mdp, th0, beta=1.0, d_targ=1.0, lr=0.5, epochs=5, iters=2)
    assert two.kl[0] < 1.0 / 1.5
    one = ppo_penalty_exact(mdp, two.thetas[1], beta=0.5, d_targ=None, lr=0.5, epochs=5, iters=1)
    np.testing.assert_array_equal(two.thetas[2], one.thetas[1])
    keep = ppo_penalty_exact(mdp, two.thetas[1], beta=1.0, d_targ=None, lr=0.5, epochs=5, iters=1)
    assert not np.array_equal(two.thetas[2], keep.thetas[1])  # beta matters here


def test_TR_12_ppo_penalty_pulls_towards_the_old_policy() -> None:
    """A larger beta gives a smaller KL(pi_k || pi_theta) after the same epochs (the penalty's gradient sign)."""
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    th0 = np.zeros((mdp.n_states_plus, mdp.n_actions))
    lo = ppo_penalty_exact(mdp, th0, beta=1e-6, d_targ=None, lr=0.05, epochs=10, iters=1)
    hi = ppo_penalty_exact(mdp, th0, beta=10.0, d_targ=None, lr=0.05, epochs=10, iters=1)
    assert hi.kl[0] < lo.kl[0]


def test_TR_09_cg_stops_on_an_exact_solution() -> None:
    """A residual of exactly 0 ends CG (it must not go on and divide by p^T A p = 0): on 2 I one step is exact
    (alpha = 5 / 10 = 1/2, exact in binary), and b = 0 returns 0 at once."""
    np.testing.assert_array_equal(conjugate_gradient(lambda v: 2.0 * v, np.array([1.0, 2.0]), iters=5), [0.5, 1.0])
    np.testing.assert_array_equal(conjugate_gradient(lambda v: v, np.zeros(3)), np.zeros(3))


# --- found by the black-box input review ----------------------------------------------------------------------
@pytest.mark.parametrize(("rtol", "b", "match"), [
    (-1.0, [1.0, 2.0], "rtol"),  # stopped before the first iteration and returned [0, 0]
    (-1e-300, [1.0, 2.0], "rtol"),
    (float("nan"), [1.0, 2.0], "rtol"),
    (float("inf"), [1.0, 2.0], "rtol"),
    ("0.1", [1.0, 2.0], "rtol"),
    (True, [1.0, 2.0], "rtol"),
    (0.0, [1.0, float("nan")], "b"),
    (0.0, [float("inf"), 2.0], "b"),
])
def test_TR_09_conjugate_gradient_refuses_a_bad_rtol_or_b(rtol: object, b: list[float], match: str) -> None:
    a = np.array([[4.0, 1.0], [1.0, 3.0]])
    with pytest.raises(ReferenceError_, match=match):
        conjugate_gradient(lambda v: a @ v, b, rtol=rtol)  # type: ignore[arg-type]
    # the boundary rtol = 0 and a positive rtol still solve the system (2 steps are exact for n = 2)
    for ok in (0.0, 1e-12):
        x = conjugate_gradient(lambda v: a @ v, [1.0, 2.0], rtol=ok)
        np.testing.assert_allclose(a @ x, [1.0, 2.0], rtol=0, atol=tolerance(4.0, terms=2, condition=3.0))


_INF, _NAN = float("inf"), float("nan")


@pytest.mark.parametrize(("new", "old", "adv", "valid", "want"), [
    # non-finite inputs on valid steps are refused (a NaN log-prob gave [nan], an inf advantage [inf])
    ([[_NAN]], [[0.0]], [[1.0]], [[True]], "log_prob_new must be"),
    ([[_INF]], [[0.0]], [[1.0]], [[True]], "log_prob_new must be"),
    ([[0.0]], [[_NAN]], [[1.0]], [[True]], "log_prob_old must be"),
    ([[0.0]], [[-_INF]], [[1.0]], [[True]], "log_prob_old must be"),
    ([[0.0]], [[0.0]], [[_INF]], [[True]], "advantages must be"),
    ([[0.0]], [[0.0]], [[_NAN]], [[True]], "advantages must be"),
    # a ratio that overflows against a non-zero advantage: not representable
    ([[1000.0]], [[0.0]], [[1.0]], [[True]], "overflows"),
    ([[1000.0]], [[0.0]], [[-1e-3]], [[True]], "overflows"),
    ([[700.0]], [[-700.0]], [[1.0]], [[True]], "overflows"),
    ([[700.0], [700.0]], [[0.0], [0.0]], [[1e4], [1e4]], [[True], [True]], "overflows"),  # the sum overflows
    # a zero advantage is an exact 0 whatever the ratio (e^1000 * 0 was NaN); so is a zero ratio
    ([[1000.0]], [[0.0]], [[0.0]], [[True]], [0.0]),
    ([[1000.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [1.0, 0.0]], np.ones((2, 2), bool),
     [0.9, 2.0]),
    ([[-_INF]], [[0.0]], [[5.0]], [[True]], [0.0]),
    # padding (valid = False) is ignored, whatever it holds
    ([[0.0], [_NAN]], [[0.0], [_INF]], [[1.0], [_NAN]], [[True], [False]], [1.0]),
])
def test_TR_07_is_surrogate_refuses_non_finite_inputs_and_zero_advantages_are_exact(
        new: list[list[float]], old: list[list[float]], adv: list[list[float]], valid: list[list[bool]],
        want: str | list[float]) -> None:
    if isinstance(want, str):
        with pytest.raises(ReferenceError_, match=want):
            is_surrogate_terms(new, old, adv, valid, gamma=0.9)
        with pytest.raises(ReferenceError_, match=want):
            is_surrogate_estimate(new, old, adv, valid, gamma=0.9)
    else:  # exact: every term is 0, an exact power of 0.9 times 1, or 1 * 2
        np.testing.assert_array_equal(is_surrogate_terms(new, old, adv, valid, gamma=0.9), want)
        assert is_surrogate_estimate(new, old, adv, valid, gamma=0.9) == float(np.mean(want))


@pytest.mark.parametrize("t", [0, 1, 3])
def test_TR_07_is_surrogate_estimate_refuses_an_empty_batch(t: int) -> None:
    """B = 0: the mean over no trajectories is undefined (it returned NaN); the per-trajectory terms are []."""
    z = np.zeros((t, 0))
    with pytest.raises(ShapeError, match="B = 0"):
        is_surrogate_estimate(z, z, z, z.astype(bool), gamma=0.9)
    assert is_surrogate_terms(z, z, z, z.astype(bool), gamma=0.9).shape == (0,)


# --- found by the mutation review (mutants n5, n7..n12, n16, n23, n24) -----------------------------------------
def _by_hand(mdp: FiniteMDP, pi: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Independent exact quantities of pi on the non-terminal states, from explicit loops over the outcome table:
    d(s) = sum_t gamma^t P(s_t = s) (row vector p0 (I - gamma P_pi)^{-1} over S; term is absorbing, so dropping its
    column gives the occupancy of S), rho = d / sum d (the state weights of the module docstring), A = Q - V and
    J = p0 . V. Returns (d [S], rho [S], A [S, A], J). One dense solve of condition <= (1 + gamma) / (1 - gamma)."""
    n, na, g = mdp.n_states, mdp.n_actions, float(mdp.gamma)
    p = np.zeros((n, na, n))
    r = np.zeros((n, na))
    for s in range(n):
        for a in range(na):
            probs, rewards, nexts = mdp.outcomes(s, a)
            for pr, rw, s2 in zip(probs, rewards, nexts, strict=True):
                r[s, a] += float(pr) * float(rw)
                if int(s2) < n:
                    p[s, a, int(s2)] += float(pr)
    p_pi = np.einsum("sa,sat->st", pi[:n], p)
    v = np.linalg.solve(np.eye(n) - g * p_pi, np.sum(pi[:n] * r, axis=1))
    adv = r + g * (p @ v) - v[:, None]
    p0 = np.asarray(mdp.p0, dtype=np.float64)[:n]
    d = np.linalg.solve((np.eye(n) - g * p_pi).T, p0)
    return d, d / float(d.sum()), adv, float(p0 @ v)


def _kl_rows(p: FloatArray, q: FloatArray) -> FloatArray:
    """KL(p(.|s) || q(.|s)) per row, written out (every entry > 0 here: softmax policies)."""
    return np.asarray(np.sum(p * (np.log(p) - np.log(q)), axis=1), dtype=np.float64)


def _fisher_by_enumeration(th: FloatArray, w: FloatArray) -> FloatArray:
    """F = sum_s w(s) sum_a pi(a|s) vec(score) vec(score)^T with score[s', b] = [s' = s] ([b = a] - pi(b|s))
    (the score of the tabular softmax, PG-07), summed over every (s, a): the definition of TR-09, no block formula."""
    pi = softmax(th)
    n, na = th.shape
    f = np.zeros((n * na, n * na))
    for s in range(n):
        for a in range(na):
            sc = np.zeros((n, na))
            sc[s] = -pi[s]
            sc[s, a] += 1.0
            f += w[s] * pi[s, a] * np.outer(sc.ravel(), sc.ravel())
    return f


def test_TR_10_trpo_accepts_the_first_step_with_mean_kl_old_new_within_delta() -> None:
    """The constraint of TRPO's line search is E_{s ~ rho^{pi_old}} KL(pi_old(.|s) || pi_new(.|s)) <= delta (E-56),
    checked with an independent oracle (`_by_hand`'s rho, the KL written out), not with the KL trpo_exact reports.

    The candidates are theta0 + 2^-i s_full; the accepted one has index j with q 4^j = delta, q = 1/2 s^T (F + lam I) s
    (F by enumeration; tolerance(delta, terms=2 D) as in the quadratic-delta test). The accepted candidate must be
    within the constraint and improve J, and every earlier candidate must not be clearly acceptable (KL > delta - tol
    or J not above J0 + tol). On this instance (seed 13, delta = 0.05, damping 0.01, found by a scan) the full step
    has mean KL(old || new) = 0.979 delta, while its max over states is 2.12 delta and its mean KL(new || old) is
    1.17 delta: a search with the max or with the reversed direction rejects the full step and returns a shorter one.
    KL tolerance: the oracle and the code's KL are sums of |S| A terms of scale max|log pi| (tolerance with
    condition kappa for rho's solve); J: _tol."""
    rng = np.random.default_rng(13)
    mdp = random_mdp(rng, 2, 3, gamma=0.9)
    th0 = rng.normal(size=(mdp.n_states_plus, mdp.n_actions))
    delta, damping = 0.05, 0.01
    res = trpo_exact(mdp, th0, delta=delta, iters=1, damping=damping)
    th1 = res.thetas[1]
    s = th1 - th0
    assert np.any(s != 0.0)  # a step was accepted
    n = mdp.n_states
    p_old = softmax(th0)
    _, rho, _, j0 = _by_hand(mdp, p_old)
    w = np.zeros(mdp.n_states_plus)
    w[:n] = rho
    f = _fisher_by_enumeration(th0, w)
    q = 0.5 * float(s.ravel() @ ((f + damping * np.eye(f.shape[0])) @ s.ravel()))
    j = round(float(np.log(delta / q) / np.log(4.0)))
    assert j >= 0 and abs(q * 4.0**j - delta) <= tolerance(delta, terms=2 * th0.size)
    full = s * 2.0**j

    kappa = discount_condition(mdp.gamma)

    def kls(t: FloatArray) -> tuple[float, float, float]:
        pn = softmax(t)
        fwd, rev = _kl_rows(p_old[:n], pn[:n]), _kl_rows(pn[:n], p_old[:n])
        return float(rho @ fwd), float(np.max(fwd)), float(rho @ rev)

    def kl_tol(t: FloatArray) -> float:
        scale = float(np.max(np.abs(np.log(softmax(t)[:n])))) + float(np.max(np.abs(np.log(p_old[:n]))))
        return tolerance(scale, terms=n * mdp.n_actions, condition=kappa)

    mean1, _, _ = kls(th1)
    assert mean1 <= delta + kl_tol(th1)
    assert _by_hand(mdp, softmax(th1))[3] > j0
    for i in range(j):
        cand = th0 + 2.0**-i * full
        kl_i = kls(cand)[0]
        assert kl_i > delta - kl_tol(cand) or _by_hand(mdp, softmax(cand))[3] <= j0 + _tol(mdp), i
    # the data discriminate: the full step is accepted, but not under max_s KL or KL(new || old)
    assert j == 0
    mean_f, max_f, rev_f = kls(th0 + full)
    tol_f = kl_tol(th0 + full)
    assert mean_f < delta - tol_f and max_f > delta + tol_f and rev_f > delta + tol_f


def test_TR_10_line_search_tries_the_full_step_first() -> None:
    """Candidates theta + shrink^j step for j = 0, 1, ...: with a linear objective and a constraint that every
    candidate meets, the full step itself is returned (theta = 0, so theta + step is exact: bit for bit). With the
    constraint |t|^2 <= delta = 0.1 on the step (1, 0) and shrink 1/2, the candidates have |t|^2 = 1, 0.25, 0.0625:
    the first acceptable one is j = 2, theta + step / 4 (exact)."""
    step = np.array([[0.75, -1.5], [3.0, 0.375]])
    res = backtracking_line_search(np.zeros((2, 2)), step, objective=lambda t: float(np.sum(t * step)),
                                   constraint=lambda t: 0.0, delta=0.01)
    assert res.accepted and res.backtracks == 0
    np.testing.assert_array_equal(res.theta, step)
    two = backtracking_line_search(np.zeros(2), np.array([1.0, 0.0]), objective=lambda t: float(t[0]),
                                   constraint=lambda t: float(t @ t), delta=0.1)
    assert two.accepted and two.backtracks == 2
    np.testing.assert_array_equal(two.theta, [0.25, 0.0])


def test_TR_09_conjugate_gradient_stops_when_the_residual_norm_is_within_rtol_times_norm_b() -> None:
    """The documented rule ||r_k|| <= rtol ||b||, on A = diag(1, 4), b = c (1, 1), where CG's iterates are known in
    closed form: x_0 = 0 (||r_0|| / ||b|| = 1), x_1 = alpha b with alpha = b.b / b.A b = 2/5 (r_1 = 0.6 c (1, -1),
    ||r_1|| / ||b|| = 0.6), x_2 = A^-1 b = c (1, 1/4) (exact after n = 2 steps). The rule is scale free: for every
    scale c, rtol = 0.7 stops at x_1, rtol = 0.5 goes on to x_2 and rtol = 1 returns 0. (Comparing ||r||^2 with
    rtol ||b|| instead would stop at x_0 for c = 0.01 and reach x_2 for c = 100.) Tolerance: x_1 and x_2 come out
    of a handful of roundings of quantities of scale |c|: tolerance(|c|, terms=4)."""
    a = np.diag([1.0, 4.0])
    for c in (0.01, 1.0, 100.0):
        b = np.array([c, c])
        tol = tolerance(abs(c), terms=4)
        np.testing.assert_allclose(conjugate_gradient(lambda v: a @ v, b, iters=5, rtol=0.7), 0.4 * b, rtol=0,
                                   atol=tol)
        np.testing.assert_allclose(conjugate_gradient(lambda v: a @ v, b, iters=5, rtol=0.5), [c, c / 4.0], rtol=0,
                                   atol=tol)
        np.testing.assert_array_equal(conjugate_gradient(lambda v: a @ v, b, iters=5, rtol=1.0), [0.0, 0.0])


@pytest.mark.parametrize("damping", [1e-3, 0.1, 2.0])
def test_TR_09_damped_natural_gradient_solves_f_plus_damping_i(damping: float) -> None:
    """natural_gradient(damping > 0) = (F + damping I)^{-1} g with F by enumeration of the scores (TR-09's
    E[score score^T] under arbitrary positive state weights, term included). Both sides solve a system of 2-norm
    condition kappa = (||F||_2 + damping) / damping: tolerance(||x||_inf, terms=D, condition=kappa); the residual
    ||(F + damping I) x - g||_inf is a backward error, within tolerance((||F|| + damping) ||x||, terms=D). The data
    discriminate: the solutions for damping and 2 damping, and the undamped F^+ g, all differ from the oracle by more
    than 100 tolerances."""
    rng = np.random.default_rng(21)
    th = rng.normal(size=(4, 3))
    w = rng.uniform(0.2, 1.0, size=4)
    g = rng.normal(size=th.shape)
    f = _fisher_by_enumeration(th, w)
    m = f + damping * np.eye(th.size)
    want = np.linalg.solve(m, g.ravel()).reshape(th.shape)
    norm_f = float(np.linalg.eigvalsh(f).max())
    kappa = (norm_f + damping) / damping
    tol = tolerance(float(np.max(np.abs(want))), terms=th.size, condition=kappa)
    x = natural_gradient(th, g, w, damping=damping)
    np.testing.assert_allclose(x, want, rtol=0, atol=tol)
    resid = float(np.max(np.abs(m @ x.ravel() - g.ravel())))
    assert resid <= tolerance((norm_f + damping) * float(np.max(np.abs(x))), terms=th.size)
    other = np.linalg.solve(f + 2.0 * damping * np.eye(th.size), g.ravel()).reshape(th.shape)
    assert float(np.max(np.abs(other - want))) > 100.0 * tol
    assert float(np.max(np.abs(natural_gradient(th, g, w) - want))) > 100.0 * tol


def _penalty_instance(seed: int) -> tuple[FiniteMDP, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """A seeded 3-state, 3-action MDP, random logits theta_k and pi_k, with `_by_hand`'s d, rho and A^{pi_k}."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 3, 3, gamma=0.9)
    thk = rng.normal(size=(mdp.n_states_plus, mdp.n_actions))
    pk = softmax(thk)
    d, rho, adv, _ = _by_hand(mdp, pk)
    return mdp, thk, pk, d, rho, adv


def test_TR_12_ppo_penalty_gradient_is_that_of_the_rho_weighted_penalised_objective() -> None:
    """PPO-Penalty ascends f(theta) = sum_s d(s) sum_a pi_theta(a|s) A^{pi_k}(s, a) - beta sum_s rho(s)
    KL(pi_k(.|s) || pi_theta(.|s)) (K - C minus the rho-weighted KL; d, rho, A^{pi_k} from `_by_hand`). The step of
    epoch e is lr * grad f(theta_e), so the second epoch (theta_1 != theta_k, where the penalty's gradient is not 0)
    is checked against central differences of f at theta_1 (reference.tolerance.central_difference). Rounding of
    one evaluation of f (d, rho, A are common data computed once): softmax and log (A + 3 roundings), the products
    and the sums of |S| A terms, at the scale sum_s d(s) max|A| + beta sum_s rho max|log pi|: tolerance(scale,
    terms=|S| A + A + 6). The comparison theta_2 - (theta_1 + lr D) adds the rounding of the two updates
    (tolerance(|theta_2|, terms=2)). With an unweighted penalty the step differs by lr beta (1 - rho(s)) (pi - pi_k),
    far above the bound here (checked)."""
    mdp, thk, pk, d, rho, adv = _penalty_instance(3)
    n, na = mdp.n_states, mdp.n_actions
    beta, lr = 5.0, 1.0

    def f(t: FloatArray) -> float:
        p = softmax(t)[:n]
        return float(np.sum(d[:, None] * p * adv)) - beta * float(rho @ _kl_rows(pk[:n], p))

    # the first epoch of the 2-epoch run is the 1-epoch run (the same floats), so theta_1 is observable
    one = ppo_penalty_exact(mdp, thk, beta=beta, d_targ=None, lr=lr, epochs=1, iters=1).thetas[1]
    two = ppo_penalty_exact(mdp, thk, beta=beta, d_targ=None, lr=lr, epochs=2, iters=1).thetas[1]
    max_log = float(np.max(np.abs(np.log(softmax(one)[:n])))) + float(np.max(np.abs(np.log(pk[:n]))))
    scale = float(np.sum(d)) * float(np.max(np.abs(adv))) + beta * max_log
    f_error = tolerance(scale, terms=n * na + na + 6)
    fd, bound = central_difference(f, one, h=1e-4, f_error=f_error)
    err = np.abs(two - (one + lr * fd))
    allowed = lr * bound + tolerance(float(np.max(np.abs(two))), terms=2)
    assert np.all(err <= allowed), float(np.max(err - allowed))
    unweighted = beta * (1.0 - rho[:, None]) * (softmax(one)[:n] - pk[:n])
    assert float(np.max(np.abs(unweighted))) > 100.0 * float(np.max(allowed))


def test_TR_15_ppo_clip_exact_steps_with_its_eps_and_reports_kl_old_new() -> None:
    """Each epoch of PPO-Clip steps by lr grad L_eps(theta; theta_k), L_eps = sum_s d(s) sum_a pi_k(a|s)
    C_eps(pi_theta / pi_k, A^{pi_k}(s, a)) (d, A^{pi_k} from `_by_hand`, C_eps written as TR-13's piecewise form).
    Checked for two epochs against central differences of L_eps (away from the kinks: every ratio at the
    evaluation points is more than 4 h max ratio from 1 +- eps, farther than a step of 2h can move it), with
    eps = 0.05: after the first epoch ratios lie beyond 1 +- eps, so the second step depends on eps (the gradients
    of L_0.05 and L_0.2 there differ by more than 100 times the bound). The reported KL is
    E_{s ~ rho^{pi_k}} KL(pi_k || pi_theta) (module docstring), within tolerance(max|log pi|, terms=|S| A,
    condition=kappa) of the written-out sum, and the reversed direction is more than 100 such tolerances away.
    Rounding of L_eps as in test_TR_15_ppo_clip_exact_gradient_matches_finite_differences."""
    mdp, thk, pk, d, rho, adv = _penalty_instance(5)
    n, na = mdp.n_states, mdp.n_actions
    lr, h = 1.0, 1e-4

    def clip_l(eps: float) -> Callable[[FloatArray], float]:
        def f(t: FloatArray) -> float:
            ell = softmax(t)[:n] / pk[:n]
            c = np.where(adv >= 0.0, np.minimum(ell, 1.0 + eps) * adv, np.maximum(ell, 1.0 - eps) * adv)
            return float(np.sum(d[:, None] * pk[:n] * c))
        return f

    adv_max = float(np.max(np.abs(adv)))
    thetas = [ppo_clip_exact(mdp, thk, eps=0.05, lr=lr, epochs=e, iters=1) for e in (1, 2)]
    points = [thk, thetas[0].thetas[1]]  # the 2-epoch run's first epoch is the 1-epoch run (the same floats)
    for e, (start, res) in enumerate(zip(points, thetas, strict=True)):
        ell = softmax(start)[:n] / pk[:n]
        # a step of 2h in one logit moves ell_a by at most ell_a (e^{2h} - 1) < 2 (2h) ell_a: no kink is crossed
        assert float(np.min(np.abs(np.abs(ell - 1.0) - 0.05))) > 4.0 * h * float(np.max(ell))
        f_error = tolerance((1.0 + float(np.max(ell)) + 0.05) * adv_max * float(np.sum(d)), terms=n * na + na + 6)
        fd, bound = central_difference(clip_l(0.05), start, h=h, f_error=f_error)
        err = np.abs(res.thetas[1] - (start + lr * fd))
        allowed = lr * bound + tolerance(float(np.max(np.abs(res.thetas[1]))), terms=2 * (e + 1))
        assert np.all(err <= allowed), (e, float(np.max(err - allowed)))
        if e == 1:
            fd2, bound2 = central_difference(clip_l(0.2), start, h=h, f_error=f_error)
            assert float(np.max(np.abs(fd2 - fd))) > 100.0 * float(np.max(bound + bound2))
    for res in thetas:
        pn = softmax(res.thetas[1])
        fwd, rev = float(rho @ _kl_rows(pk[:n], pn[:n])), float(rho @ _kl_rows(pn[:n], pk[:n]))
        tol = tolerance(float(np.max(np.abs(np.log(pn[:n])))) + float(np.max(np.abs(np.log(pk[:n])))),
                        terms=n * na, condition=discount_condition(mdp.gamma))
        assert abs(float(res.kl[0]) - fwd) <= tol
        assert abs(fwd - rev) > 100.0 * tol


def test_TR_07_is_surrogate_terms_gamma_trick_drops_only_the_discount() -> None:
    """gamma_t=False: the per-trajectory term is sum_{t < T^(i)} ratio_t A_hat_t (no gamma^t); gamma_t=True keeps
    gamma^t. Oracle: explicit loops over (t, b) with math.exp and math.fsum on the valid steps. Each term is exp of
    a difference times A_hat (times gamma^t): a few roundings of |term|, and the code's sum over T terms:
    tolerance(sum |terms|, terms=T + 4). gamma = 0.5 makes the two variants differ far beyond that (checked)."""
    import math

    rng = np.random.default_rng(8)
    t_len, b_n, gamma = 5, 4, 0.5
    ln = rng.normal(-1.0, 0.5, size=(t_len, b_n))
    lo = rng.normal(-1.0, 0.5, size=(t_len, b_n))
    ad = rng.normal(size=(t_len, b_n))
    lengths = [5, 3, 1, 4]
    valid = np.array([[t < lengths[b] for b in range(b_n)] for t in range(t_len)])
    ln[~valid] = np.nan  # padding is ignored
    for gamma_t in (False, True):
        got = is_surrogate_terms(ln, lo, ad, valid, gamma=gamma, gamma_t=gamma_t)
        for b in range(b_n):
            parts = [(gamma**t if gamma_t else 1.0) * math.exp(float(ln[t, b] - lo[t, b])) * float(ad[t, b])
                     for t in range(lengths[b])]
            want = math.fsum(parts)
            assert abs(float(got[b]) - want) <= tolerance(math.fsum(abs(x) for x in parts), terms=t_len + 4)
    plain = is_surrogate_terms(ln, lo, ad, valid, gamma=gamma, gamma_t=False)
    disc = is_surrogate_terms(ln, lo, ad, valid, gamma=gamma)
    assert float(np.max(np.abs(plain - disc))) > 1e6 * tolerance(float(np.max(np.abs(plain))), terms=t_len + 4)
    assert is_surrogate_estimate(ln, lo, ad, valid, gamma=gamma, gamma_t=False) == pytest.approx(
        float(np.mean(plain)), rel=0, abs=tolerance(float(np.max(np.abs(plain))), terms=b_n))


@pytest.mark.parametrize("seed", range(8))
def test_TR_09_cg_on_an_undamped_fisher_matrix_converges_to_the_min_norm_solution(seed: int) -> None:
    """F of a tabular softmax policy is singular (each state's row sums to 0), and trpo_exact documents
    damping >= 0. CG kept iterating after convergence: p^T F p came out -8e-20 and trpo_exact(damping=0) raised
    "A is not positive definite" on 40 of 40 random 3 x 3 MDPs at cg_iters=20 (review 2026-12-07). CG now stops
    at rounding level. Oracle: from x0 = 0 CG on a consistent singular system stays in range(F), so it reaches
    pinv(F) b; perturbation bound |x - x*| <= kappa * level * |x*| with kappa = lambda_max / lambda_min over range(F)
    and level = 8 n eps, CG's own stopping level (times 8 for the steps it accumulates)."""
    rng = np.random.default_rng(seed)
    n_s, n_a = 4, 3
    theta = rng.normal(size=(n_s, n_a))
    w = rng.random(n_s) + 0.1
    f = fisher_matrix(theta, w)
    b = f @ rng.normal(size=n_s * n_a)  # in range(F)
    lam = np.linalg.eigvalsh(f)
    rank_tol = 1e3 * np.finfo(float).eps * float(lam.max()) * f.shape[0]
    kappa = float(lam.max()) / float(lam[lam > rank_tol].min())
    want = np.linalg.pinv(f, rcond=rank_tol / float(lam.max())) @ b
    level = 8 * b.size * np.finfo(float).eps
    for iters in (12, 50, 200):
        x = conjugate_gradient(lambda v: f @ v, b, iters=iters)
        assert float(np.linalg.norm(x - want)) <= 8 * kappa * level * float(np.linalg.norm(want)), iters
    mdp = random_mdp(rng, 3, 3, gamma=0.9)
    th0 = rng.normal(size=(4, 3))
    for cg_iters in (3, 10, 20):
        trpo_exact(mdp, th0, iters=3, damping=0.0, cg_iters=cg_iters)  # raised before


def test_TR_09_cg_still_refuses_an_indefinite_matrix() -> None:
    """The rounding-level stop must not hide a matrix that is not positive semidefinite: negative curvature on the
    first direction, or clearly negative (far beyond rounding) on a later one, raises ReferenceError_."""
    for a, b in ((np.diag([1.0, -1.0]), np.array([1.0, 1.0])), (np.diag([2.0, -1.0]), np.array([1.0, 0.5])),
                 (-np.eye(3), np.ones(3))):
        def matvec(v: FloatArray, a: FloatArray = a) -> FloatArray:
            return np.asarray(a @ v)

        with pytest.raises(ReferenceError_, match="positive"):
            conjugate_gradient(matvec, b, iters=10)
    x = conjugate_gradient(lambda v: np.diag([2.0, 5.0]) @ v, np.array([2.0, 5.0]), iters=200)  # long runs stop
    np.testing.assert_array_equal(x, [1.0, 1.0])


@pytest.mark.parametrize("r3", [-5.0, 5.0])
def test_TR_15_exact_ppo_surrogate_with_an_underflowed_old_probability(r3: float) -> None:
    """pi_k(a|s) = e^-800 / (2 + e^-800) underflows to 0, so ell = pi / pi_k is 0/0 or inf and the exact PPO
    surrogate raised "ratio must be finite", although each term pi_k C(ell, A) is finite (review 2026-12-07).
    One state, three terminating actions with rewards (1, 0, r3); theta_k logits (0, 0, -800), theta uniform. Oracle,
    in closed form: d(0) = 1, A = r - V with V = (1 + 0) / 2 (pi_k's weight on action 3 is below 1e-347); the two
    ordinary actions have ell = (1/3) / (1/2) = 2/3 and the third contributes pk C(ell, A3) -> min(pi3 A3, 0) with
    dC/d ell -> (A3 if A3 < 0 else 0) as pi_k3 -> 0 (the error of the limit is below 1e-347). Tolerance: a few
    roundings of terms of size max |r| (counted_tolerance)."""
    from reference.mdp import from_arrays
    from reference.tolerance import counted_tolerance

    mdp = from_arrays(np.array([[[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]]), np.array([[1.0, 0.0, r3]]), gamma=0.9)
    theta_k = np.array([[0.0, 0.0, -800.0], [0.0, 0.0, 0.0]])
    theta = np.zeros((2, 3))
    val, grad = ppo_clip_surrogate_exact(mdp, theta, theta_k, eps=0.2)
    adv = np.array([1.0, 0.0, r3]) - 0.5
    pi = np.full(3, 1.0 / 3.0)
    ell = 2.0 / 3.0  # below 1 - eps = 0.8: clipped where A < 0, unclipped where A > 0
    c12 = [adv[0], 0.0 if adv[1] < 0 else adv[1]]  # A1 = 0.5 > 0: unclipped (ell < 1 + eps); A2 = -0.5 < 0: clipped
    want_val = 0.5 * min(ell * adv[0], 0.8 * adv[0]) + 0.5 * max(ell, 0.8) * adv[1] + min(pi[2] * adv[2], 0.0)
    c = np.array([c12[0], c12[1], adv[2] if adv[2] < 0 else 0.0])
    want_grad = pi * (c - float(np.sum(pi * c)))
    tol = counted_tolerance(float(np.max(np.abs(adv))) * 3, roundings=12)
    assert abs(val - want_val) <= tol
    assert float(np.max(np.abs(grad[0] - want_grad))) <= tol
    np.testing.assert_array_equal(grad[1], 0.0)  # the term row


def test_TR_09_cg_stops_when_the_curvature_vanishes_on_a_singular_matrix() -> None:
    """A = diag(1, 0) is positive semidefinite and b = (1, 1e-3) has a null-space part (a gradient whose state
    rows do not sum to exactly 0 gives F such a part, at rounding level). After one step the residual (-1e-6, 1e-3)
    is far above rounding, but the next direction has p^T A p = 0: CG stops there (it divided by zero before the
    curvature stop) with the first step's x = (1 + 1e-6) b, exact up to two roundings."""
    a = np.diag([1.0, 0.0])
    b = np.array([1.0, 1e-3])
    x = conjugate_gradient(lambda v: a @ v, b, iters=10)
    alpha = float(b @ b) / float(b @ a @ b)
    np.testing.assert_allclose(x, alpha * b, rtol=4 * np.finfo(float).eps, atol=0)


@pytest.mark.parametrize("factor,expected", [(1.7, 0.5), (1 / 1.7, 2.0), (1.2, 1.0), (1 / 1.2, 1.0)])
def test_TR_12_ppo_penalty_thresholds_and_factors_are_1_5_and_2(factor: float, expected: float) -> None:
    """Only halving far below d_targ / 1.5 was tested: the thresholds 2 d_targ or d_targ / 2 and the factors 1.5
    or 1 passed (review 2026-12-07). With d_targ = factor * KL_0 the first KL sits at d_targ / 1.7 (halve under
    the rule's 1.5, not under 2), 1.7 d_targ (double), or within (d_targ / 1.5, 1.5 d_targ) (keep); the second
    iteration must then be a fixed-beta iteration with beta = expected, bit for bit."""
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    th0 = np.zeros((mdp.n_states_plus, mdp.n_actions))
    kl0 = float(ppo_penalty_exact(mdp, th0, beta=1.0, d_targ=None, lr=0.5, epochs=5, iters=1).kl[0])
    two = ppo_penalty_exact(mdp, th0, beta=1.0, d_targ=factor * kl0, lr=0.5, epochs=5, iters=2)
    one = ppo_penalty_exact(mdp, two.thetas[1], beta=expected, d_targ=None, lr=0.5, epochs=5, iters=1)
    np.testing.assert_array_equal(two.thetas[2], one.thetas[1])


def test_TR_10_trpo_line_search_keeps_the_kl_within_delta_without_damping() -> None:
    """Every trpo_exact test used damping > 0, whose full step lands at 0.5 - 0.98 delta, so a line search
    accepting KL <= 2 delta passed (review 2026-12-07). Undamped, the full step overshoots (KL 0.0104 > delta =
    0.01 here) and must be cut back: the returned step's mean KL (the E-56 constraint) is within delta."""
    rng = np.random.default_rng(2)
    mdp = random_mdp(rng, 3, 3, gamma=0.9)
    th = rng.normal(size=(4, 3))
    th[mdp.term] = 0.0
    res = trpo_exact(mdp, th, delta=0.01, iters=1, damping=0.0, cg_iters=20)
    assert 0.0 < float(res.kl[0]) <= 0.01


def test_TR_09_natural_gradient_without_damping_at_underflowing_weights_and_probabilities() -> None:
    """w_s p_a underflowed to 0 for a positive weight and probability, and the closed form's (y - c) / (w p) gave
    NaN: at a state of weight 7.8e-11 whose second action has probability 1.4e-315 the gradient row is exactly 0,
    so the minimum-norm solution is 0 (it returned [nan, nan]); and a row (1e-300, -1e-300) at weight 1e-170 and
    logits (0, -390) has the finite x = +-(g0 - g1) / (4 w p0 p1) = +-1.1853e39 (mpmath; it returned inf, nan).
    A bool damping ran as 1.0; an infinite delta passed every step of the line search."""
    p = np.zeros((2, 2, 3))
    p[0, 0] = [0.5, 0.0, 0.5]
    p[0, 1] = [0.0, 0.0, 1.0]
    p[1, :, 2] = 1.0
    from reference.mdp import from_arrays

    mdp = from_arrays(p, [[1.0, 0.0], [1.0, 0.0]], [1 - 1e-10, 1e-10], gamma=0.9)
    th = np.array([[0.0, 0.0], [0.0, -725.0], [0.0, 0.0]])
    x = natural_gradient(th, grad_j_exact(mdp, th), state_weights(mdp, softmax(th)))
    np.testing.assert_array_equal(x[1], [0.0, 0.0])
    y = natural_gradient(np.array([[0.0, -390.0], [0.0, 0.0], [0.0, 0.0]]),
                         np.array([[1e-300, -1e-300], [0.1, -0.1], [0.0, 0.0]]), np.array([1e-170, 1.0, 0.0]))
    import mpmath

    with mpmath.workdps(40):  # x_a = u_a - mean(u), u = (y - mean(y)) / (w p) with p = softmax(0, -390)
        e = mpmath.exp(mpmath.mpf(-390))
        pm = [1 / (1 + e), e / (1 + e)]
        u = [mpmath.mpf(1e-300) / (mpmath.mpf(1e-170) * pm[0]), -mpmath.mpf(1e-300) / (mpmath.mpf(1e-170) * pm[1])]
        want = [float(u[0] - (u[0] + u[1]) / 2), float(u[1] - (u[0] + u[1]) / 2)]
    np.testing.assert_allclose(y[0], want, rtol=1e-13)  # a few roundings of two divisions and a mean
    with pytest.raises(ReferenceError_, match="damping"):
        natural_gradient(th, np.zeros_like(th), np.ones(3), damping=True)
    with pytest.raises(ReferenceError_, match="delta"):
        backtracking_line_search(np.zeros(2), np.ones(2), objective=lambda t: float(t.sum()),
                                 constraint=lambda t: 1e300, delta=np.inf)


def test_TR_07_is_term_is_formed_in_logs_where_the_ratio_alone_overflows() -> None:
    """exp(710) overflows, but exp(710) * 1e-3 = 2.234e305 is representable: it was refused as an overflow; and
    gamma^t underflowing to 0 next to a huge ratio gave 0 for 0.5^1101 e^800 = 1.00e16. Oracle: mpmath."""
    import mpmath

    got = is_surrogate_terms(np.array([[710.0]]), np.array([[0.0]]), np.array([[1e-3]]), np.array([[True]]),
                             gamma=1.0)
    assert abs(float(got[0]) / float(mpmath.e**710 * mpmath.mpf("1e-3")) - 1) <= 1e-13
    t = 1102
    ln = np.zeros((t, 1))
    ln[-1, 0] = 800.0
    got = is_surrogate_terms(ln, np.zeros((t, 1)), np.ones((t, 1)), np.ones((t, 1), dtype=bool), gamma=0.5)
    want = float(sum(mpmath.mpf(0.5) ** k for k in range(t - 1)) + mpmath.mpf(0.5) ** (t - 1) * mpmath.e**800)
    assert abs(float(got[0]) / want - 1) <= 1e-12
