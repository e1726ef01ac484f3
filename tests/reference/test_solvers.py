"""Property tests of reference.solvers: agreement with dp / exact on small random MDPs, and certificates.

Every tolerance comes from reference.tolerance: values are bounded by ``scale = R / (1 - gamma)``
(MDP-19); a dot product over S+ has ``terms = |S+|``; the exact dense solve (LU of I - gamma P_pi) has
condition ``discount_condition(gamma)``; a residual computed with rounding error ``tol_res`` moves the
certificate by ``tol_res / (1 - gamma)``.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import dp, exact, solvers
from reference.bellman import certificate_factor, kernel_row_sum_bound, residual_rounding_bound
from reference.errors import InvalidDiscountError
from reference.generators import random_mdp
from reference.mdp import Backend, FiniteMDP, deterministic_policy, from_arrays, from_outcomes, validate_policy
from reference.tolerance import EPS32, counted_tolerance, discount_condition, tolerance

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def small_mdps(draw: st.DrawFn) -> FiniteMDP:
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(1, 12))
    na = draw(st.integers(1, 4))
    gamma = draw(st.sampled_from([0.5, 0.9, 0.99]))
    branching = draw(st.sampled_from([None, 1, 2]))
    term = draw(st.sampled_from([0.0, 0.2]))
    backend: Backend = draw(st.sampled_from(["dense", "sparse"]))
    return random_mdp(np.random.default_rng(seed), n, na, gamma=gamma, branching=branching, terminal_prob=term,
                      backend=backend)


def _scale(mdp: FiniteMDP) -> float:
    return max(mdp.max_abs_reward, 1.0) / (1.0 - mdp.gamma)


def _tol_exact(mdp: FiniteMDP) -> float:
    """Error of the exact dense LU solve plus the rounding of one residual evaluation / (1 - gamma)."""
    n, s = mdp.n_states_plus, _scale(mdp)
    return (tolerance(s, terms=n, condition=discount_condition(mdp.gamma))
            + tolerance(s, terms=n) / (1.0 - mdp.gamma))


@SETTINGS
@given(small_mdps())
def test_solve_optimal_agrees_with_policy_iteration_and_certificate_holds(mdp: FiniteMDP) -> None:
    eps = 1e-9 * _scale(mdp)
    sol = solvers.solve_optimal(mdp, eps=eps)
    v_star = dp.policy_iteration(mdp).value  # exact (LU) evaluation of the optimal policy
    err = float(np.max(np.abs(sol.value - v_star)))
    assert sol.bound <= eps
    assert err <= sol.bound + _tol_exact(mdp)
    # the greedy policy of an eps-certified V is 2 gamma eps / (1 - gamma)-optimal
    v_greedy = exact.v_pi(mdp, deterministic_policy(sol.policy, mdp.n_actions))
    assert np.all(v_greedy >= v_star - 2 * mdp.gamma * sol.bound / (1 - mdp.gamma) - _tol_exact(mdp))
    assert sol.value[mdp.term] == 0.0


@SETTINGS
@given(small_mdps(), st.integers(0, 2**31 - 1), st.booleans())
def test_evaluate_policy_certificate_holds(mdp: FiniteMDP, seed: int, deterministic: bool) -> None:
    rng = np.random.default_rng(seed)
    if deterministic:
        pi = deterministic_policy(rng.integers(0, mdp.n_actions, size=mdp.n_states_plus), mdp.n_actions)
    else:
        pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states_plus)
    eps = 1e-10 * _scale(mdp)
    cert = solvers.evaluate_policy(mdp, pi, eps=eps)
    v_exact = exact.v_pi(mdp, pi)
    assert cert.bound <= eps
    assert float(np.max(np.abs(cert.value - v_exact))) <= cert.bound + _tol_exact(mdp)
    # the bound is BEL-08's residual plus its own rounding, over (1 - gamma) (the check above holds for most
    # smaller bounds too, since the solve usually lands far inside it: the mutation audit's `bound = residual`
    # survived it)
    # judged on the policy as the solver reads it (validate_policy renormalises: a Dirichlet row of
    # 0.9999999999999999 is one-hot there, and deciding on the raw row made this equality fail on correct code)
    pv = validate_policy(mdp, pi)
    stochastic = not bool(np.all((pv[: mdp.n_states] == 0.0) | (pv[: mdp.n_states] == 1.0)))
    delta = residual_rounding_bound(mdp, float(np.max(np.abs(cert.value))), stochastic_policy=stochastic)
    factor = certificate_factor(mdp, solvers._as_policy(mdp, pi))  # 1 / (1 - gamma rho), the stored rows' sums
    assert factor >= 1.0 / (1.0 - mdp.gamma)
    assert cert.bound == (cert.residual + delta) * factor
    # the certificate is the residual formula of exact.v_pi_certified
    resid = mdp.reward_pi(pi) + mdp.gamma * (mdp.transition_pi(pi) @ cert.value) - cert.value
    assert abs(float(np.max(np.abs(resid))) - cert.residual) <= tolerance(_scale(mdp), terms=mdp.n_states_plus)


@SETTINGS
@given(small_mdps(), st.integers(1, 30))
def test_value_iteration_sweeps_match_dp(mdp: FiniteMDP, k: int) -> None:
    v0 = np.zeros(mdp.n_states_plus)
    ours = solvers.value_iteration_sweeps(mdp, v0, num_sweeps=k)
    ref = dp.value_iteration(mdp, v0, num_iters=k).values[-1]
    # each sweep rounds by <= tolerance(scale, terms=|S+|); B^* is a gamma-contraction, so the
    # accumulated difference is at most that / (1 - gamma)
    tol = tolerance(_scale(mdp), terms=mdp.n_states_plus) / (1.0 - mdp.gamma)
    assert float(np.max(np.abs(ours - ref))) <= tol


@pytest.mark.parametrize("backend", ["dense", "sparse"])
def test_kernel_matches_lookahead_and_split_path(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solvers, "_SPLIT_MIN_NNZ", 0)  # force the threaded row-block product
    mdp = random_mdp(np.random.default_rng(3), 50, 3, gamma=0.9, branching=4, terminal_prob=0.1, backend=backend)
    kern = solvers.BellmanKernel(mdp, threads=3)
    v = np.random.default_rng(4).uniform(-5, 5, size=mdp.n_states_plus)
    tol = tolerance(float(np.max(np.abs(v))) + mdp.max_abs_reward, terms=mdp.n_states_plus)
    assert float(np.max(np.abs(kern.lookahead(v) - mdp.lookahead(v)))) <= tol
    bv, _q = kern.optimality(v)
    assert float(np.max(np.abs(bv - mdp.lookahead(v).max(axis=1)))) <= tol


def test_gmres_reaches_its_residual_target() -> None:
    rng = np.random.default_rng(0)
    n = 200
    a = np.eye(n) + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    b = rng.standard_normal(n)
    out = solvers.gmres(lambda x: a @ x, b, tol=1e-10, restart=10)
    assert out.converged
    # the solver's own guarantee, not a rounding tolerance: gmres stops on the true residual
    # ||b - a x||_2 <= tol, computed by the same expression as here
    assert float(np.linalg.norm(b - a @ out.x)) <= 1e-10


def test_one_hot_policy_uses_deterministic_path_and_agrees() -> None:
    mdp = random_mdp(np.random.default_rng(1), 30, 3, gamma=0.95, branching=3, backend="sparse")
    act = np.random.default_rng(2).integers(0, 3, size=mdp.n_states_plus)
    a = solvers.evaluate_policy(mdp, act, eps=1e-11)
    b = solvers.evaluate_policy(mdp, deterministic_policy(act, 3), eps=1e-11)
    assert float(np.max(np.abs(a.value - b.value))) <= a.bound + b.bound


# ------------------------------------------------------------------ float32 inner products (dense)
@pytest.mark.parametrize(("seed", "n", "na", "gamma", "term"),
                         [(0, 300, 4, 0.99, 0.0), (1, 200, 3, 0.9, 0.2), (2, 150, 2, 0.999, 0.0),
                          (3, 120, 5, 0.99, 0.05)])
def test_float32_inner_solve_is_certified_like_float64(seed: int, n: int, na: int, gamma: float,
                                                       term: float) -> None:
    mdp = random_mdp(np.random.default_rng(seed), n, na, gamma=gamma, terminal_prob=term, backend="dense")
    eps = 1e-8
    mixed = solvers.solve_optimal(mdp, eps=eps, float32_inner=True)
    plain = solvers.solve_optimal(mdp, eps=eps, float32_inner=False)
    v_star = dp.policy_iteration(mdp).value
    for sol in (mixed, plain):
        assert sol.bound <= eps
        # the certificate is float64: recomputing it with the reference lookahead gives the same number
        recomputed = float(np.max(np.abs(mdp.lookahead(sol.value).max(axis=1) - sol.value))) / (1 - gamma)
        assert abs(recomputed - sol.bound) <= tolerance(_scale(mdp), terms=mdp.n_states_plus) / (1 - gamma)
        assert float(np.max(np.abs(sol.value - v_star))) <= sol.bound + _tol_exact(mdp)
    assert float(np.max(np.abs(mixed.value - plain.value))) <= mixed.bound + plain.bound + _tol_exact(mdp)


def test_float32_inner_policy_evaluation_is_certified() -> None:
    mdp = random_mdp(np.random.default_rng(5), 250, 3, gamma=0.99, terminal_prob=0.05, backend="dense")
    act = np.random.default_rng(6).integers(0, 3, size=mdp.n_states_plus)
    cert = solvers.evaluate_policy(mdp, act, eps=1e-10, float32_inner=True)
    v_exact = exact.v_pi(mdp, deterministic_policy(act, 3))
    assert cert.bound <= 1e-10  # the requested certificate eps, which evaluate_policy guarantees
    assert float(np.max(np.abs(cert.value - v_exact))) <= cert.bound + _tol_exact(mdp)


def test_kernel_float32_copy_follows_policy_changes() -> None:
    mdp = random_mdp(np.random.default_rng(7), 60, 3, gamma=0.9, backend="dense")
    kern = solvers.BellmanKernel(mdp)
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, size=mdp.n_states_plus)
    tol64 = tolerance(float(np.max(np.abs(x))), terms=mdp.n_states_plus)
    tol32 = counted_tolerance(float(np.max(np.abs(x))), roundings=mdp.n_states_plus + 2, eps=EPS32)
    pol = rng.integers(0, 3, size=mdp.n_states_plus)
    kern.policy_operator(pol)  # float64 only: no float32 operator yet
    assert kern.policy_operator_float32(pol) is None
    for step in range(4):
        pol = pol.copy()
        pol[rng.integers(0, mdp.n_states_plus, size=5 * step)] = rng.integers(0, 3, size=5 * step)
        pmv, _r = kern.policy_operator(pol, float32=True)
        pmv32 = kern.policy_operator_float32(pol)
        assert pmv32 is not None
        p_pi = mdp.transition_pi(deterministic_policy(pol, 3))
        # two float64 products of |S+| terms at scale sum_j P(s, j) |x_j| <= max|x|
        assert np.allclose(pmv(x), p_pi @ x, rtol=0, atol=tol64)
        # float32: P_pi and x rounded to float32 (2 roundings) and an |S+|-term float32 dot product
        # (|S+| more), counted: gamma_{|S+| + 2}(u_32) max|x|, plus the float64 reference's rounding
        assert np.allclose(pmv32(x), p_pi @ x, rtol=0, atol=tol32 + tol64)
    other = (pol + 1) % 3
    assert kern.policy_operator_float32(other) is None  # stale for another policy


def test_gmres_inner_refinement_and_fallback() -> None:
    rng = np.random.default_rng(0)
    n = 300
    a = np.eye(n) - 0.99 * rng.dirichlet(np.ones(n), size=n)  # I - gamma P: eigenvalue 0.01 on constants
    a32 = a.astype(np.float32)
    b = rng.standard_normal(n)
    out = solvers.gmres(lambda x: a @ x, b, tol=1e-11, inner=lambda x: (a32 @ x.astype(np.float32)).astype(np.float64))
    assert out.converged
    # the solver's guarantee (stopping test on the true float64 residual, the same expression as here)
    assert float(np.linalg.norm(b - a @ out.x)) <= 1e-11
    # a useless inner operator is dropped after one cycle and the solve still converges exactly
    bad = solvers.gmres(lambda x: a @ x, b, tol=1e-11, inner=lambda x: np.asarray(x, dtype=np.float64))
    assert bad.converged
    assert float(np.linalg.norm(b - a @ bad.x)) <= 1e-11  # the same stopping guarantee


def test_BEL_08_v_pi_certified_bound_is_residual_over_one_minus_gamma() -> None:
    """Found by the mutation audit (2026-12-06): the residual of an exact solve is ~1e-16, so any bound >= it
    passed. The certificate is (||B^pi V - V|| + its rounding bound) / (1 - gamma rho), bit for bit (rho bounds the
    stored rows' exact sums, 1 + a few ulps: certificate_factor)."""
    rng = np.random.default_rng(1)
    mdp = random_mdp(rng, 30, 3, gamma=0.99)
    pi = np.full((mdp.n_states_plus, mdp.n_actions), 1.0 / mdp.n_actions)
    c = exact.v_pi_certified(mdp, pi)
    assert c.residual > 0.0  # rounding leaves a non-zero residual, so bound and residual differ here
    delta = residual_rounding_bound(mdp, float(np.max(np.abs(c.value))), stochastic_policy=True)
    factor = certificate_factor(mdp, validate_policy(mdp, pi))  # 1 / (1 - gamma rho) of the stored rows
    assert 1.0 / (1.0 - mdp.gamma) <= factor <= 1.0 / (1.0 - mdp.gamma) * (1.0 + 1e-12)
    assert c.bound == (c.residual + delta) * factor
    assert c.bound > c.residual


def test_solvers_policy_iteration_keeps_the_current_action_on_ties() -> None:
    """Two identical actions everywhere: solve_optimal from pi0 = action 1 must return action 1 (keep current on
    ties, open choice 1), not the lowest index (found by the mutation audit of 2026-12-06)."""
    P = np.zeros((2, 2, 3))
    P[0, :, 1] = P[1, :, 2] = 1.0
    mdp = from_arrays(P, np.ones((2, 2)), [1.0, 0.0], gamma=0.9)
    sol = solvers.solve_optimal(mdp, pi0=np.ones(mdp.n_states_plus, dtype=np.int64))
    np.testing.assert_array_equal(sol.policy[:2], [1, 1])


def test_solvers_gmres_reports_non_convergence() -> None:
    """With a matvec budget too small for the tolerance, converged is False (and the residual says why)."""
    rng = np.random.default_rng(0)
    a = np.eye(40) + 0.5 * rng.standard_normal((40, 40))
    b = rng.standard_normal(40)
    out = solvers.gmres(lambda x: a @ x, b, tol=1e-12, restart=5, max_matvecs=5)
    assert not out.converged and out.residual_norm > 1e-12


def test_solvers_evaluate_policy_refuses_gamma_1() -> None:
    P = np.zeros((1, 1, 2))
    P[0, 0, 1] = 1.0
    mdp = from_arrays(P, np.ones((1, 1)), [1.0, 0.0], gamma=1.0)
    with pytest.raises(InvalidDiscountError):
        solvers.evaluate_policy(mdp, np.ones((2, 1)))


def _exact_v(mdp: FiniteMDP, pol: np.ndarray) -> list[Fraction]:
    """V^pi of a deterministic policy in exact rationals (the float P, r and gamma read exactly): Gauss-Jordan."""
    n = mdp.n_states_plus
    P = mdp.transition_dense.reshape(n, mdp.n_actions, n) if not mdp.is_sparse else \
        mdp.transition_csr.toarray().reshape(n, mdp.n_actions, n)
    g = Fraction(mdp.gamma)
    a = [[(Fraction(1) if i == j else Fraction(0)) - g * Fraction(float(P[i, pol[i], j])) for j in range(n)]
         + [Fraction(float(mdp.r[i, pol[i]]))] for i in range(n)]
    for c in range(n):
        piv = next(i for i in range(c, n) if a[i][c] != 0)
        a[c], a[piv] = a[piv], a[c]
        for i in range(n):
            if i != c and a[i][c] != 0:
                f = a[i][c] / a[c][c]
                a[i] = [x - f * y for x, y in zip(a[i], a[c], strict=True)]
    return [a[i][n] / a[i][i] for i in range(n)]


def _true_error(v: np.ndarray, exact_v: list[Fraction]) -> float:
    return float(max(abs(Fraction(float(x)) - e) for x, e in zip(v, exact_v, strict=True)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.5, 0.9, 0.99, 0.999, 0.9999]),
       st.sampled_from([1.0, 1e6, 1e-6]), st.sampled_from([None, 1e-4, 1e-9]))
def test_BEL_08_certificates_are_true_bounds_against_exact_rationals(seed: int, gamma: float, scale: float,
                                                                     eps: float | None) -> None:
    """Found by the 2026-12-06 review: the certificate ||B V - V|| / (1 - gamma) used the computed residual,
    which rounds to 0 on large values (bound 0.0 for a true error of 4.3e-3 at values of order 1e10, 43 times
    the requested eps). Every certificate now adds the residual's rounding bound, and an eps below that floor
    raises. Oracle: V^pi and V* (enumerating every deterministic policy) in exact rationals. Each solver either
    raises NotConvergedError or returns a bound >= the exact error (no tolerance: the bound must hold)."""
    import itertools

    from reference.errors import NotConvergedError

    rng = np.random.default_rng(seed)
    n_s, n_a = int(rng.integers(1, 3)), 2
    P = rng.dirichlet(np.ones(n_s + 1), size=(n_s, n_a))
    if rng.uniform(0.0, 1.0) < 0.5:  # half the MDPs never terminate (the values are then largest)
        P[..., n_s] = 0.0
        P /= P.sum(axis=-1, keepdims=True)
    R = rng.uniform(-1.0, 1.0, size=(n_s, n_a)) * scale
    mdp = from_arrays(P, R, np.full(n_s, 1.0 / n_s), gamma=gamma)
    pols = [np.array([*p, 0]) for p in itertools.product(range(n_a), repeat=n_s)]
    exact_vs = [_exact_v(mdp, p) for p in pols]
    v_star = [max(col) for col in zip(*exact_vs, strict=True)]
    ip = int(rng.integers(len(pols)))
    pol = pols[ip]
    runs: list[tuple[str, Callable[[], Any], list[Fraction]]] = [
        ("evaluate_policy", lambda: solvers.evaluate_policy(mdp, pol, eps=eps), exact_vs[ip]),
        ("solvers.solve_optimal", lambda: solvers.solve_optimal(mdp, eps=eps), v_star),
        ("dp.solve_optimal", lambda: dp.solve_optimal(mdp, eps=eps), v_star),
        ("v_pi_certified", lambda: exact.v_pi_certified(mdp, deterministic_policy(pol, n_a)), exact_vs[ip]),
    ]
    if eps is not None:
        runs.append(("solve_value_iteration", lambda: dp.solve_value_iteration(mdp, eps=eps, max_iters=200_000),
                     v_star))
    for name, run, truth in runs:
        try:
            out = run()
        except NotConvergedError:
            # only an explicit eps may be out of reach; the default is documented to be certifiable
            # (dp.certificate_eps), so a solver that always raised no longer passes
            assert eps is not None, name
            continue
        err = _true_error(out.value, truth)
        assert err <= out.bound, (name, err, out.bound)


def test_BEL_08_review_cycle_example_raises_instead_of_a_zero_bound() -> None:
    """The review's example: a deterministic cycle 0 -> 1 -> 0 with rewards about -9.4e5 at gamma = 0.9999
    (values about -9.4e9). eps = 1e-4 is below what a float64 residual can certify there (its rounding alone
    allows about 0.08): NotConvergedError, where a bound of 0.0 was returned for a true error of 4.3e-3."""
    from reference.errors import NotConvergedError

    P = np.zeros((2, 1, 3))
    P[0, 0, 1] = 1.0
    P[1, 0, 0] = 1.0
    mdp = from_arrays(P, np.array([[-918053.0], [-966945.0]]), np.array([1.0, 0.0]), gamma=0.9999)
    for run in (lambda: solvers.evaluate_policy(mdp, np.zeros(3, dtype=np.int64), eps=1e-4),
                lambda: solvers.solve_optimal(mdp, eps=1e-4), lambda: dp.solve_optimal(mdp, eps=1e-4)):
        with pytest.raises(NotConvergedError, match=r"cannot certify|exceeds"):
            run()
    c = solvers.evaluate_policy(mdp, np.zeros(3, dtype=np.int64))  # the default eps is certifiable
    err = _true_error(c.value, _exact_v(mdp, np.zeros(3, dtype=np.int64)))
    assert 0.0 < err <= c.bound


def test_solvers_refuse_a_kernel_built_for_another_mdp() -> None:
    """A kernel carries its MDP's P, r and gamma: solve_optimal(m90, kernel=BellmanKernel(m99)) returned V* of
    m99 (21.2 for 1.61) under m90's certificate."""
    m99 = random_mdp(np.random.default_rng(0), 5, 2, gamma=0.99)
    m90 = m99.with_gamma(0.9)
    with pytest.raises(ValueError, match="another FiniteMDP"):
        solvers.solve_optimal(m90, kernel=solvers.BellmanKernel(m99))
    with pytest.raises(ValueError, match="another FiniteMDP"):
        solvers.evaluate_policy(m90, np.zeros(m90.n_states_plus, dtype=np.int64), kernel=solvers.BellmanKernel(m99))
    k = solvers.BellmanKernel(m90)
    assert solvers.solve_optimal(m90, kernel=k).bound > 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_BEL_08_an_eps_just_above_the_rounding_floor_is_met_or_refused_never_exceeded(seed: int) -> None:
    """eps = 1.05 x the certificate floor (residual_rounding_bound / (1 - gamma) at max|V|): the solvers must
    stop only once residual + its rounding bound <= eps (1 - gamma), so the returned bound is <= eps, or raise
    NotConvergedError. Stopping on the residual alone (the mutation audit's cert1 / cert4) returned bounds up to
    twice eps here."""
    from reference.bellman import residual_rounding_bound
    from reference.errors import NotConvergedError

    mdp = random_mdp(np.random.default_rng(seed), 6, 3, gamma=0.99)
    pol = np.zeros(mdp.n_states_plus, dtype=np.int64)
    # a deterministic policy and the optimality residual: the same rounding count (stochastic_policy=False)
    cases: list[tuple[Callable[[float], Any], np.ndarray]] = [
        (lambda eps: solvers.evaluate_policy(mdp, pol, eps=eps, max_matvecs=200),
         exact.v_pi(mdp, deterministic_policy(pol, mdp.n_actions))),
        (lambda eps: solvers.solve_optimal(mdp, eps=eps, max_iters=50), dp.v_star(mdp)),
    ]
    for run, v in cases:
        eps = 1.05 * residual_rounding_bound(mdp, float(np.max(np.abs(v)))) / (1.0 - mdp.gamma)
        try:
            out = run(eps)
        except NotConvergedError:
            continue
        assert out.bound <= eps


@pytest.mark.parametrize("scale", [1e-160, 1e-200, 1e160])
def test_solvers_work_at_reward_scales_where_2_norms_overflow_or_vanish(scale: float) -> None:
    """GMRES measured its residual with a 2-norm, which squares the entries: with rewards of 1e-160 or 1e160 a
    valid MDP raised NotConvergedError, and b = 1e-170 "converged" at x = 0. The right-hand side is now scaled by
    a power of two (exact). Compared with the direct solves (V^pi, V*), each within value_tolerance: the error is
    at most the solver's own certificate (``bound``) plus that."""
    from reference.generators import random_mdp
    from reference.mdp import from_outcomes
    from reference.testing.oracles import value_tolerance

    m0 = random_mdp(np.random.default_rng(1), n_states=20, n_actions=2, gamma=0.9)
    e = int(m0.indptr[m0.n_states * m0.n_actions])
    m = from_outcomes(m0.n_states, m0.n_actions, m0.indptr[: m0.n_states * m0.n_actions + 1], m0.next_state[:e],
                      m0.reward[:e] * scale, m0.prob[:e], m0.p0, gamma=0.9)
    pol = np.zeros(m.n_states_plus, dtype=np.int64)
    want = exact.v_pi(m, deterministic_policy(pol, 2))
    tol = value_tolerance(m)
    got = solvers.evaluate_policy(m, pol)
    assert np.max(np.abs(got.value - want)) <= got.bound + tol
    opt = solvers.solve_optimal(m)
    assert np.max(np.abs(opt.value - dp.v_star(m))) <= opt.bound + tol
    res = solvers.gmres(lambda x: 2.0 * x, np.full(4, scale * 1e-10), tol=scale * 1e-22)
    assert res.converged and np.all(res.x == scale * 1e-10 / 2.0)


@pytest.mark.parametrize("gamma", [0.9999, 1 - 2.0**-40])
def test_BEL_08_certificates_hold_when_the_stored_rows_sum_above_one(gamma: float) -> None:
    """Rows [0.1, 0.9] are stored as they are (their float sum is 1.0) but sum to 1 + 2.8e-17 exactly, so the
    stored operator contracts by gamma rho, rho > 1, and the textbook 1 / (1 - gamma) made every certificate too
    small when the residual dominated it: at gamma = 1 - 2^-40 by 3e-5 relative (about 3.4e7 absolute; review
    2026-12-07). Oracle: the exact value of the stored MDP, 1 / (1 - gamma (0.1 + 0.9)) in rationals of the
    stored floats; every certified solver's bound must cover the exact error, with a loose eps so that the
    residual term dominates."""
    mdp = from_outcomes(2, 1, [0, 2, 4], [0, 1, 0, 1], [1.0] * 4, [0.1, 0.9, 0.1, 0.9], [0.5, 0.5], gamma=gamma,
                        backend="sparse")
    exact_v = 1 / (1 - Fraction(gamma) * (Fraction(0.1) + Fraction(0.9)))
    sols: list[exact.Certified | dp.CertifiedSolution] = [
            solvers.evaluate_policy(mdp, np.zeros(3, dtype=np.int64), v0=np.zeros(3), eps=4 / (1 - gamma)),
            solvers.solve_optimal(mdp, v0=np.zeros(3), eps=4 / (1 - gamma)),
            dp.solve_value_iteration(mdp, eps=2 / (1 - gamma))]
    for sol in sols:
        err = max(abs(Fraction(float(sol.value[i])) - exact_v) for i in range(2))
        assert Fraction(sol.bound) >= err


@pytest.mark.parametrize("reward", [1e-320, 1e-312, 1e-300])
def test_BEL_08_certificates_hold_for_subnormal_rewards(reward: float) -> None:
    """Higham's relative rounding model fails under gradual underflow: with rewards of 1e-320 the certificates
    came back 0 for a non-zero error and solve_optimal certified V = 0 for V* = 1e-319 (review 2026-12-07). The
    rounding bound now carries an absolute underflow term. Oracle: V = r / (1 - gamma) in rationals."""
    p = np.zeros((1, 1, 2))
    p[0, 0, 0] = 1.0
    mdp = from_arrays(p, np.array([[reward]]), gamma=0.9)
    exact_v = Fraction(reward) / (1 - Fraction(0.9))
    sols: list[exact.Certified | dp.CertifiedSolution] = [
            solvers.evaluate_policy(mdp, np.zeros(2, dtype=np.int64)), solvers.solve_optimal(mdp),
            dp.solve_optimal(mdp), exact.v_pi_certified(mdp, np.ones((2, 1))),
            dp.solve_value_iteration(mdp, eps=1e-6 * reward + 1e-310)]
    for sol in sols:
        assert Fraction(sol.bound) >= abs(Fraction(float(sol.value[0])) - exact_v)


@given(small_mdps())
def test_BEL_12_solvers_solve_optimal_bound_carries_the_residual_rounding(mdp: FiniteMDP) -> None:
    """solvers.solve_optimal's bound is (||B* V - V|| + delta) / (1 - gamma rho); a delta divided by 10 passed
    every test (review 2026-12-07), since converged solves land far inside it. The rounding part alone, delta
    times the factor, is a lower bound of the certificate."""
    sol = solvers.solve_optimal(mdp)
    delta = residual_rounding_bound(mdp, float(np.max(np.abs(sol.value))))
    assert sol.bound >= delta * certificate_factor(mdp)


def test_BEL_08_kernel_row_sum_bound_covers_the_exact_sums_with_the_documented_margin() -> None:
    """rho must bound the exact sum of every stored row: a row of 1000 probabilities of 1e-17 next to one of
    1 - 1e-14 (each tiny term below half an ulp of the running sum) sums to 1 + 1e-14 exactly after the builder's
    float renormalisation. Checked in rationals, and the documented Higham margin (the float sum times 1 + 2 (m - 1)
    u) is applied, not only the next float up: the float sum's error on a row of m terms can reach gamma_{m-1}."""
    k = 1000
    w = np.r_[1 - k * 1e-17, np.full(k, 1e-17)]
    m = w.size
    mdp = from_outcomes(1, 1, [0, m], np.zeros(m, dtype=np.int64), np.zeros(m), w, [1.0], gamma=0.9)
    rho = kernel_row_sum_bound(mdp)
    exact_sum = sum(Fraction(float(x)) for x in mdp.prob[:m])
    assert Fraction(rho) >= exact_sum
    float_sum = float(np.add.reduceat(np.asarray(mdp.prob[:m]), [0])[0])
    assert rho >= float_sum * (1.0 + 2.0 * (m - 1) * np.finfo(np.float64).eps / 2)
