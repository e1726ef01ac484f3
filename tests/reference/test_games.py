"""Tests of reference.games: matrix games, Nash equilibria, SimGAD / extragradient / anchoring (GAME-01..17).

Convergence is measured on strategies, ``||mu(theta1) - p*||_1 + ||mu(theta2) - q*||_1`` (open choice 20).
Exact comparisons use ``reference.tolerance``. LP outputs are checked against nash_equilibrium's certificate,
exploitability <= NASH_GAP_RTOL times the half-range of the sub-game it was solved on (HiGHS runs with feasibility
tolerances 1e-10 on that sub-game scaled to [-1, 1]), plus the rounding of the check itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from reference.errors import InvalidGameError, InvalidPolicyError, NotConvergedError, ReferenceError_, ShapeError
from reference.games import (
    NASH_GAP_RTOL,
    MinimaxTrajectory,
    QuadraticGame,
    anchored_extragradient,
    anchored_simgad,
    bilinear_gradient,
    exploitability,
    extragradient,
    grad_R,
    is_antisymmetric,
    is_nash_equilibrium,
    linearised_iteration_matrix,
    mu,
    nash_equilibrium,
    payoff,
    random_antisymmetric_game,
    random_zero_sum_game,
    regularised_equilibrium,
    rps_payoff,
    self_play_simgad,
    simgad,
    softmax_game_gradient,
    softmax_jacobian,
    strategy_distance,
    symmetric_equilibrium,
)
from reference.tolerance import central_difference, counted_tolerance, tolerance

UNIFORM3 = np.full(3, 1.0 / 3.0)
E1 = np.array([1.0, 0.0, 0.0])
E2 = np.array([0.0, 1.0, 0.0])

thetas3 = arrays(np.float64, 3, elements=st.floats(-5.0, 5.0))


def _game(seed: int, m: int, n: int) -> NDArray[np.float64]:
    return random_zero_sum_game(np.random.default_rng(seed), m, n)


def _anchored_iterate_error_bound(grad: Callable[[NDArray[np.float64], NDArray[np.float64]],
                                                 tuple[NDArray[np.float64], NDArray[np.float64]]],
                                  tr: MinimaxTrajectory, x: NDArray[np.float64], y: NDArray[np.float64], *,
                                  alpha: float, lam: float) -> float:
    """Bound on ``||z_K - z_hat||_inf`` for constant-lam anchored SimGAD, ``z_hat = (x, y)`` the solver's fixed
    point. Linearised at z_hat (J = the step's Jacobian): ``z_{k+1} - z_hat = J (z_k - z_hat) + r + delta_k``
    with ``r = T(z_hat) - z_hat`` the solver's residual and ``delta_k`` a step's rounding, so from the midpoint
    ``m = K / 2``: ``|e_K| <= ||J^(K-m)|| |e_m| + (1 + ||J^(K-m)||) ||(I - J)^{-1}|| (|r| + delta)``.
    delta = tolerance(|(1 - lam) z| + alpha |grad|, terms = n1 + n2 + 4) (the gradient's products and the
    step's three operations). The stated factor 2 covers the quadratic remainder of the linearisation and
    the finite-difference error of J (relative ~1e-10)."""
    jac = linearised_iteration_matrix(grad, x, y, method="anchored", alpha=alpha, lam=lam)
    z_hat = np.concatenate([x, y])
    g1, g2 = grad(x, y)
    residual = float(np.max(np.abs(np.concatenate([lam * x - alpha * g1, lam * y + alpha * g2]))))
    step_scale = (1.0 - lam) * float(np.max(np.abs(z_hat))) + alpha * float(np.max(np.abs(np.concatenate([g1, g2]))))
    delta = tolerance(step_scale, terms=z_hat.size + 4)
    k = tr.theta1.shape[0] - 1
    mid = k // 2
    e_mid = float(np.max(np.abs(np.concatenate([tr.theta1[mid], tr.theta2[mid]]) - z_hat)))
    power = float(np.linalg.norm(np.linalg.matrix_power(jac, k - mid), np.inf))
    resolvent = float(np.linalg.norm(np.linalg.inv(np.eye(z_hat.size) - jac), np.inf))
    return 2.0 * (power * e_mid + (1.0 + power) * resolvent * (residual + delta))


# --- GAME-01..05: matrix games and Nash equilibria -------------------------------------------------------


@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 6), n=st.integers(1, 6))
def test_GAME_03_lp_equilibrium_satisfies_saddle_inequalities(seed: int, m: int, n: int) -> None:
    M = _game(seed, m, n)
    ne = nash_equilibrium(M)
    scale = float(np.max(np.abs(M)))
    # nash_equilibrium's certificate (exploitability <= NASH_GAP_RTOL * scale) plus the rounding of M q here
    atol = NASH_GAP_RTOL * scale + tolerance(scale, terms=m * n)
    assert exploitability(M, ne.p, ne.q) >= -tolerance(scale, terms=m * n)
    assert is_nash_equilibrium(M, ne.p, ne.q, atol=atol)
    # Saddle inequalities of L2126 against every pure deviation (E-71: weak inequalities).
    assert np.all(M @ ne.q <= ne.value + atol)
    assert np.all(M.T @ ne.p >= ne.value - atol)


@given(seed=st.integers(0, 2**32 - 1), t1=arrays(np.float64, 4, elements=st.floats(-4, 4)),
       t2=arrays(np.float64, 3, elements=st.floats(-4, 4)))
def test_GAME_03_no_softmax_deviation_beats_the_equilibrium(seed: int, t1: NDArray[np.float64],
                                                           t2: NDArray[np.float64]) -> None:
    M = _game(seed, 4, 3)
    ne = nash_equilibrium(M)
    scale = float(np.max(np.abs(M)))
    atol = NASH_GAP_RTOL * scale + tolerance(scale, terms=12)
    assert float(mu(t1) @ M @ ne.q) <= ne.value + atol
    assert float(ne.p @ M @ mu(t2)) >= ne.value - atol


def test_GAME_02_minimax_equals_maximin_on_random_games() -> None:
    for seed in range(20):
        M = _game(seed, 5, 4)
        ne = nash_equilibrium(M)
        # min_q max_i (Mq)_i == max_p min_j (M^T p)_j (minimax theorem), both evaluated at the LP solutions.
        scale = float(np.max(np.abs(M)))
        gap = float(np.max(M @ ne.q)) - float(np.min(M.T @ ne.p))
        assert abs(gap) <= NASH_GAP_RTOL * scale + tolerance(scale, terms=20)


@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 6), n=st.integers(1, 6), e=st.integers(-250, 250))
def test_GAME_03_equilibrium_is_exact_to_rounding_at_every_payoff_scale(seed: int, m: int, n: int, e: int) -> None:
    """HiGHS's tolerances are absolute (about 1e-7): on payoffs of scale 1e-12 the raw LP returned a pure
    strategy of rock-paper-scissors (exploitability 4.6 times the scale). Random Gaussian games have a unique
    equilibrium with square supports (almost surely), so the LP's basic solution is exact to rounding: its gap
    is within tolerance(scale, terms=m n) (SAFETY m n eps scale), at every scale from 1e-250 to 1e250."""
    M = _game(seed, m, n) * 10.0**e
    ne = nash_equilibrium(M)
    scale = float(np.max(np.abs(M)))
    assert exploitability(M, ne.p, ne.q) <= tolerance(scale, terms=m * n)
    assert abs(ne.value - float(ne.p @ M @ ne.q)) <= tolerance(scale, terms=m * n)


@pytest.mark.parametrize("scale", [1e-300, 1e-12, 1e-6, 1.0, 1e12, 1e300])
def test_GAME_05_rock_paper_scissors_at_any_scale_is_uniform(scale: float) -> None:
    ne = nash_equilibrium(rps_payoff() * scale)
    np.testing.assert_allclose(ne.p, UNIFORM3, rtol=0, atol=tolerance(1.0, terms=9))
    np.testing.assert_allclose(ne.q, UNIFORM3, rtol=0, atol=tolerance(1.0, terms=9))
    np.testing.assert_array_equal(symmetric_equilibrium(rps_payoff() * scale), ne.p)


def test_GAME_03_degenerate_games_are_certified() -> None:
    """Integer payoffs with duplicate rows and ties (many equilibria, non-square supports): the certificate
    exploitability <= NASH_GAP_RTOL * max|M| holds on each (checked here, independently of the function)."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        m, n = (int(v) for v in rng.integers(1, 6, 2))
        M = rng.integers(-2, 3, (m, n)).astype(np.float64)
        M = np.vstack([M, M[:1]])
        ne = nash_equilibrium(M)
        scale = max(float(np.max(np.abs(M))), np.finfo(np.float64).tiny)
        assert exploitability(M, ne.p, ne.q) <= NASH_GAP_RTOL * scale + tolerance(scale, terms=M.size)


@given(t1=thetas3, t2=thetas3)
def test_GAME_04_payoff_is_p_M_q_and_shift_invariant(t1: NDArray[np.float64], t2: NDArray[np.float64]) -> None:
    M = rps_payoff()
    p, q = mu(t1), mu(t2)
    assert abs(p.sum() - 1.0) <= tolerance(1.0, terms=3)
    assert payoff(M, t1, t2) == pytest.approx(float(p @ M @ q), abs=tolerance(1.0, terms=9))
    assert abs(payoff(M, t1 + 2.5, t2 - 1.0) - payoff(M, t1, t2)) <= tolerance(1.0, terms=9)


@given(seed=st.integers(0, 2**32 - 1), t1=arrays(np.float64, 4, elements=st.floats(-4, 4)),
       t2=arrays(np.float64, 2, elements=st.floats(-4, 4)))
def test_GAME_07_grad_R_is_softmax_jacobian_times_M_q(seed: int, t1: NDArray[np.float64],
                                                     t2: NDArray[np.float64]) -> None:
    M = _game(seed, 4, 2)
    g1, g2 = grad_R(M, t1, t2)
    scale = float(np.max(np.abs(M)))
    np.testing.assert_allclose(g1, softmax_jacobian(t1) @ M @ mu(t2), rtol=0, atol=tolerance(scale, terms=16))
    np.testing.assert_allclose(g2, softmax_jacobian(t2) @ M.T @ mu(t1), rtol=0, atol=tolerance(scale, terms=16))
    # Central differences within the computed bound of reference.tolerance.central_difference (Richardson
    # truncation + rounding). Rounding, u = EPS / 2, scale = max|M| >= sum p_i |M_ij| q_j: a softmax of n entries
    # of spread s = max - min theta (s + 4 h at the steps) is within e(s, n) = 2 s + n + 8 units u, relative
    # (theta - max: u s; exp, 2 ulp: 4; the n-term sum: n - 1 and its terms' e; the division: 1); one payoff
    # p M q adds the n1 + n2 roundings of its two products: f_error = gamma_{e_p + e_q + n1 + n2} scale.
    # grad_1 R = p (M q - p . M q): the products' n2 and n1 roundings, the subtraction and the product
    # (|M q - p . M q| <= 2 scale), with p's and q's errors: 3 e_p + 2 e_q + n1 + 2 n2 + 4 units of u scale.
    h = 1e-4
    e_p = math.ceil(2.0 * (float(np.ptp(t1)) + 4.0 * h)) + t1.size + 8
    e_q = math.ceil(2.0 * float(np.ptp(t2))) + t2.size + 8
    f_error = counted_tolerance(scale, roundings=e_p + e_q + t1.size + t2.size)
    g_error = counted_tolerance(scale, roundings=3 * e_p + 2 * e_q + t1.size + 2 * t2.size + 4)
    fd, bound = central_difference(lambda t: payoff(M, t, t2), t1, h=h, f_error=f_error)
    assert np.all(np.abs(g1 - fd) <= bound + g_error), (g1 - fd, bound + g_error)


def test_GAME_05_rps_equilibrium_is_uniform_for_any_constant_theta() -> None:
    M = rps_payoff()
    ne = nash_equilibrium(M)
    np.testing.assert_allclose(ne.p, UNIFORM3, rtol=0, atol=tolerance(1.0, terms=9))
    np.testing.assert_allclose(ne.q, UNIFORM3, rtol=0, atol=tolerance(1.0, terms=9))
    for c1, c2 in [(0.0, 0.0), (3.0, -7.0), (-1.5, 100.0)]:
        p, q = mu(np.full(3, c1)), mu(np.full(3, c2))
        assert exploitability(M, p, q) == 0.0  # theta = c 1 gives exactly p = 1/3, and M 1 = 0 exactly
    assert exploitability(M, mu(E1), UNIFORM3) > 0.1


def test_GAME_01_errors_name_the_offending_entry() -> None:
    M = np.array([[0.0, np.nan], [1.0, 0.0]])
    with pytest.raises(InvalidGameError, match=r"M\[0, 1\]"):
        payoff(M, np.zeros(2), np.zeros(2))
    with pytest.raises(ShapeError):
        payoff(rps_payoff(), np.zeros(2), np.zeros(3))
    with pytest.raises(InvalidPolicyError, match=r"p\[1\]"):
        exploitability(rps_payoff(), np.array([1.2, -0.2, 0.0]), UNIFORM3)


# --- GAME-08, GAME-09: SimGAD ----------------------------------------------------------------------------


def test_GAME_08_simgad_drifts_away_on_rps() -> None:
    # E-72 figure: alpha = 0.1 from theta1 = e1, theta2 = e2 ends 20k steps at L1 distance 2.472 (spec/game.toml,
    # printed to 3 decimals): a printed figure is read to half a unit in its last digit, abs = 5e-4.
    tr = simgad(softmax_game_gradient(rps_payoff()), E1, E2, alpha=0.1, num_steps=20_000)
    d = strategy_distance(tr, UNIFORM3, UNIFORM3)
    assert d[-1] == pytest.approx(2.472, abs=0.5e-3)
    blocks = d[1:].reshape(4, -1)  # four blocks of 5000 steps: the distance oscillates but drifts upward
    assert np.all(np.diff(blocks.mean(axis=1)) > 0.0)
    assert np.all(np.diff(blocks.min(axis=1)) > 0.0)


def test_GAME_08_simgad_diverges_on_bilinear_games_at_the_exact_rate() -> None:
    # R(x, y) = x^T M y with M orthogonal (all singular values 1): the SimGAD matrix [[I, aM], [-aM^T, I]]
    # scales |z|^2 by exactly (1 + alpha^2) per step.
    rng = np.random.default_rng(1)
    M, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    alpha, K = 0.1, 200
    x0, y0 = rng.standard_normal(3), rng.standard_normal(3)
    tr = simgad(bilinear_gradient(M), x0, y0, alpha=alpha, num_steps=K)
    norms2 = (tr.theta1**2).sum(axis=1) + (tr.theta2**2).sum(axis=1)
    expected = norms2[0] * (1.0 + alpha**2) ** np.arange(K + 1)
    # each step: a 3-term matvec and a square; relative error grows at most linearly in k
    np.testing.assert_allclose(norms2, expected, rtol=tolerance(1.0, terms=6 * (K + 1)))
    assert norms2[-1] > 7.0 * norms2[0]


def test_GAME_08_E72_simgad_converges_on_a_strongly_monotone_game() -> None:
    # E-72 counterexample: R = -x^2/2 + xy + y^2/2; eigenvalues 1 - alpha +- i alpha, modulus < 1 for alpha < 1.
    game = QuadraticGame(B=np.eye(1), a=1.0, c=1.0, x_star=np.zeros(1), y_star=np.zeros(1))
    alpha, K = 0.1, 300
    tr = simgad(game.gradient, np.array([1.0]), np.array([-2.0]), alpha=alpha, num_steps=K)
    norms = np.sqrt(tr.theta1[:, 0] ** 2 + tr.theta2[:, 0] ** 2)
    rate = abs(complex(1 - alpha, alpha))
    np.testing.assert_allclose(norms, norms[0] * rate ** np.arange(K + 1), rtol=tolerance(1.0, terms=4 * (K + 1)))
    assert norms[-1] < 1e-6 * norms[0]


def test_GAME_08_linearisation_at_uniform_explains_simgad_and_eg_on_rps() -> None:
    # At theta = 0 the field (grad_1 R, -grad_2 R) has Jacobian J = [[0, M/9], [M/9, 0]] (checked symbolically in
    # proofs_checks/check_games.py): eigenvalues 0 (x2, the shift directions) and +-i w, w = sqrt(3)/9 (x2 each).
    M = rps_payoff()
    F = softmax_game_gradient(M)
    alpha, h, n = 0.1, 1e-5, 6
    z = np.zeros(3)
    sim_m = linearised_iteration_matrix(F, z, z, method="simgad", alpha=alpha, h=h)
    eg_m = linearised_iteration_matrix(F, z, z, method="extragradient", alpha=alpha, h=h)

    # 1. The finite-difference Jacobian inside linearised_iteration_matrix, within a computed bound of the exact J.
    # One field component p_i (Mq_i - p.Mq) with |M| <= 1: the softmax (max, subtraction, exp within 1 ulp,
    # a 3-term sum, a division) leaves p with relative error <= 8u; Mq (products exact, 2 sums) <= 10u; p.Mq <= 23u;
    # the difference <= 35u and the product with p_i <= 53u in all, counted as 64 roundings of a quantity <= 1.
    f_error = counted_tolerance(1.0, roundings=64)

    def component(i: int) -> Callable[[NDArray[np.float64]], float]:
        def f(w: NDArray[np.float64]) -> float:
            gx, gy = F(w[:3], w[3:])
            return float(np.concatenate([gx, -gy])[i])
        return f

    rows = [central_difference(component(i), np.zeros(n), h=h, f_error=f_error) for i in range(n)]
    j_fd = np.stack([r[0] for r in rows])
    j_bound = np.stack([r[1] for r in rows])
    np.testing.assert_array_equal(sim_m, np.eye(n) + alpha * j_fd)  # the same differences, same order
    j_exact = np.block([[np.zeros((3, 3)), M / 9.0], [M / 9.0, np.zeros((3, 3))]])
    assert np.all(np.abs(j_fd - j_exact) <= j_bound), (j_fd - j_exact, j_bound)

    # 2. Eigenvalue moduli. J is antisymmetric (M^T = -M), so I + alpha J and I + alpha J + alpha^2 J^2 are normal
    # and Bauer-Fike holds with condition 1: every computed eigenvalue lies within ||E_A||_2 + ||F||_2 of an exact
    # one, E_A the finite-difference error of the iteration matrix and F the backward error of eigvals
    # (tolerance(||A||_2, terms=n)). The discs around the distinct exact eigenvalues are disjoint (asserted), so
    # by continuity each holds as many computed eigenvalues as its multiplicity; the sorted moduli then agree
    # within the radius. ||E||_2 <= ||E||_F <= ||j_bound||_F; for EG, E_A = alpha E + alpha^2 (J E + E J + E^2).
    e = float(np.linalg.norm(j_bound))
    jn = float(np.linalg.norm(j_exact, 2))
    w = np.sqrt(3.0) / 9.0
    moduli = []
    for m, err_a, lam_exact in (
        (sim_m, alpha * e, [1.0, 1.0, *[complex(1.0, s * alpha * w) for s in (1, 1, -1, -1)]]),
        (eg_m, alpha * e + alpha**2 * (2.0 * jn * e + e * e),
         [1.0, 1.0, *[complex(1.0 - (alpha * w) ** 2, s * alpha * w) for s in (1, 1, -1, -1)]]),
    ):
        radius = err_a + tolerance(float(np.linalg.norm(m, 2)), terms=n)
        distinct = np.unique(np.round(np.asarray(lam_exact, dtype=np.complex128), 12))
        gaps = np.abs(distinct[:, None] - distinct[None, :])[~np.eye(len(distinct), dtype=bool)]
        assert gaps.min() > 2.0 * radius
        got = np.sort(np.abs(np.linalg.eigvals(m)))
        np.testing.assert_allclose(got, np.sort(np.abs(lam_exact)), rtol=0, atol=radius)
        moduli.append(got)
    sim, eg = moduli
    assert sim[-1] > 1.0 + 1e-4 and eg[0] < 1.0 - 1e-5


def test_GAME_09_simgad_cycles_counter_the_counter() -> None:
    # L2166: P1 rock -> P2 paper -> P1 scissors -> P2 rock -> P1 paper -> ...
    tr = simgad(softmax_game_gradient(rps_payoff()), E1, E2, alpha=0.1, num_steps=3000)
    events: list[tuple[int, int, int]] = []  # (step, player, new argmax)
    for player, T in ((1, tr.theta1), (2, tr.theta2)):
        a = np.argmax(T, axis=1)
        events.append((0, player, int(a[0])))
        events += [(k, player, int(a[k])) for k in range(1, len(a)) if a[k] != a[k - 1]]
    events.sort()
    moves = [(player, a) for _, player, a in events]
    assert moves[:6] == [(1, 0), (2, 1), (1, 2), (2, 0), (1, 1), (2, 2)]
    M = rps_payoff()
    # each switch is a best response to the other player's current favourite
    last = {1: moves[0][1], 2: moves[1][1]}
    for player, a in moves[2:]:
        other = last[3 - player]
        assert (M[a, other] if player == 1 else -M[other, a]) == 1.0
        last[player] = a
    assert len(moves) >= 20


# --- GAME-10, GAME-11: extragradient --------------------------------------------------------------------


def test_GAME_11_extragradient_converges_on_bilinear_games_at_the_exact_rate() -> None:
    rng = np.random.default_rng(2)
    M, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    alpha, K = 0.3, 200  # L = 1, alpha < 1/L
    x0, y0 = rng.standard_normal(3), rng.standard_normal(3)
    tr = extragradient(bilinear_gradient(M), x0, y0, alpha=alpha, num_steps=K)
    norms2 = (tr.theta1**2).sum(axis=1) + (tr.theta2**2).sum(axis=1)
    rate2 = (1 - alpha**2) ** 2 + alpha**2  # |1 - a^2 +- i a|^2 (proofs_checks: EG eigenvalues)
    np.testing.assert_allclose(norms2, norms2[0] * rate2 ** np.arange(K + 1), rtol=tolerance(1.0, terms=12 * (K + 1)))
    assert norms2[-1] < 1e-6 * norms2[0]


def test_GAME_11_E74_extragradient_converges_locally_on_softmax_rps() -> None:
    # E-74 figure: L1 distance 0.0166 after 20k steps from (e1, e2) with alpha = 0.1 (spec/game.toml, printed
    # to 4 decimals): a printed figure is read to half a unit in its last digit, abs = 5e-5. (The run's own
    # rounding, 20k steps of a few eps each, is < 1e-10 even without the local contraction: negligible.)
    tr = extragradient(softmax_game_gradient(rps_payoff()), E1, E2, alpha=0.1, num_steps=20_000)
    d = strategy_distance(tr, UNIFORM3, UNIFORM3)
    assert d[-1] == pytest.approx(0.0166, abs=0.5e-4)
    assert np.all(np.diff(d[::2000]) < 0.0)


def test_strategy_distance_checks_the_equilibrium_it_is_given() -> None:
    """Found by the black-box review (2026-12-07): a p* of shape (1,) broadcast (1.304 for every iterate) and
    p* = [5, -3, 0] gave 8.33; both now raise, as exploitability does."""
    tr = extragradient(softmax_game_gradient(rps_payoff()), E1, E2, alpha=0.1, num_steps=3)
    with pytest.raises(ShapeError, match="p_star"):
        strategy_distance(tr, np.array([0.5]), UNIFORM3)
    with pytest.raises(InvalidPolicyError, match="p_star"):
        strategy_distance(tr, np.array([5.0, -3.0, 0.0]), UNIFORM3)
    with pytest.raises(InvalidPolicyError, match="q_star"):
        strategy_distance(tr, UNIFORM3, np.array([0.5, 0.5, 0.5]))


# --- GAME-12: anchoring ---------------------------------------------------------------------------------


def test_GAME_12_anchored_simgad_converges_on_rps() -> None:
    tr = anchored_simgad(softmax_game_gradient(rps_payoff()), E1, E2, alpha=0.1, lam=0.01, num_steps=3000)
    d = strategy_distance(tr, UNIFORM3, UNIFORM3)
    # linear rate: spectral radius sqrt(0.99^2 + (0.1 sqrt(3)/9)^2) < 0.9905 at the fixed point 0.
    # A convergence budget stated in advance, not a rounding tolerance: 0.9905^3000 d[0] ~ 4e-13, and 1e-8
    # leaves the constant of the linear rate (the transient before it applies) a factor ~3e4
    assert d[-1] <= 1e-8


def test_GAME_12_E75_constant_lambda_reaches_the_regularised_equilibrium_not_the_nash() -> None:
    M = _game(0, 3, 3)
    F = softmax_game_gradient(M)
    alpha, lam = 0.1, 0.01
    tr = anchored_simgad(F, np.zeros(3), np.zeros(3), alpha=alpha, lam=lam, num_steps=4000)
    x, y = regularised_equilibrium(F, tr.theta1[-1], tr.theta2[-1], alpha=alpha, lam=lam)
    # fixed point of the iteration = stationary point of R - lam/(2 alpha)|x|^2 + lam/(2 alpha)|y|^2
    g1, g2 = grad_R(M, x, y)
    # the solver's own guarantee, not a rounding tolerance: regularised_equilibrium raises unless this residual,
    # computed by the same expression, is <= tol * scale with scale = max(1, ..., alpha max|M|) (1 here:
    # alpha max|M| = 0.13), i.e. <= 1e-12 for this game
    np.testing.assert_allclose(lam * x, alpha * g1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lam * y, -alpha * g2, rtol=0, atol=1e-12)
    rho = float(np.max(np.abs(np.linalg.eigvals(
        linearised_iteration_matrix(F, x, y, method="anchored", alpha=alpha, lam=lam)))))
    assert rho < 1.0  # locally contractive, so the iterates converge to it
    bound = _anchored_iterate_error_bound(F, tr, x, y, alpha=alpha, lam=lam)
    np.testing.assert_allclose(tr.theta1[-1], x, rtol=0, atol=bound)
    np.testing.assert_allclose(tr.theta2[-1], y, rtol=0, atol=bound)
    assert exploitability(M, mu(x), mu(y)) > 0.1  # ... which is not a Nash equilibrium of the game


def test_GAME_12_E75_vanishing_lambda_reaches_the_true_equilibrium() -> None:
    # Strongly monotone game with equilibrium away from the anchor 0.
    game = QuadraticGame(B=np.array([[1.0, 0.5], [-0.5, 1.0]]), a=1.0, c=1.0,
                         x_star=np.array([1.0, -2.0]), y_star=np.array([0.5, 3.0]))
    z0 = np.zeros(2)
    const = anchored_simgad(game.gradient, z0, z0, alpha=0.1, lam=0.05, num_steps=2000)
    vanish = anchored_simgad(game.gradient, z0, z0, alpha=0.1, lam=lambda k: 1.0 / (k + 2.0), num_steps=20_000)

    def dist(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
        return float(np.linalg.norm(np.concatenate([x - game.x_star, y - game.y_star])))

    x_reg, y_reg = regularised_equilibrium(game.gradient, z0, z0, alpha=0.1, lam=0.05)
    bound = _anchored_iterate_error_bound(game.gradient, const, x_reg, y_reg, alpha=0.1, lam=0.05)
    np.testing.assert_allclose(const.theta1[-1], x_reg, rtol=0, atol=bound)
    assert dist(x_reg, y_reg) > 0.5
    # lam_k = 1/(k+2): the fixed-point bias is O(lam_k / alpha) -> 0
    assert dist(vanish.theta1[-1], vanish.theta2[-1]) < 0.01
    assert dist(vanish.theta1[-1], vanish.theta2[-1]) < dist(vanish.theta1[2000], vanish.theta2[2000])


def test_GAME_12_E75_anchored_extragradient_reaches_the_equilibrium_of_a_bilinear_game() -> None:
    M = np.array([[1.0, 0.0], [0.0, 1.0]])
    x_star, y_star = np.array([1.0, -1.0]), np.array([2.0, 0.5])
    game = QuadraticGame(B=M, a=0.0, c=0.0, x_star=x_star, y_star=y_star)
    tr = anchored_extragradient(game.gradient, np.zeros(2), np.zeros(2), alpha=0.1, num_steps=4000)
    d = np.sqrt(((tr.theta1 - x_star) ** 2).sum(1) + ((tr.theta2 - y_star) ** 2).sum(1))
    assert d[-1] < 0.01 * d[0]
    # pitfall: the text's anchored SimGAD with vanishing lam_k expands once lam_k < alpha^2 / 2
    text = anchored_simgad(game.gradient, np.zeros(2), np.zeros(2), alpha=0.1, lam=lambda k: 1.0 / (k + 2.0),
                           num_steps=4000)
    dt = np.sqrt(((text.theta1 - x_star) ** 2).sum(1) + ((text.theta2 - y_star) ** 2).sum(1))
    assert dt[-1] > dt[1000] > d[0]


def test_GAME_12_anchored_extragradient_steps_follow_the_formula() -> None:
    """Each EAG step is the documented formula, the look-ahead anchored too (found by the mutation audit of
    2026-12-06: the convergence test above passes without the anchor in the look-ahead). The test repeats the
    formula's expressions on the trajectory's own floats, so the steps agree bit for bit; from k = 1 on the
    anchor term lam_k (z_0 - z_k) is non-zero."""
    rng = np.random.default_rng(0)
    grad = bilinear_gradient(rng.standard_normal((2, 3)))
    x0, y0 = rng.standard_normal(2), rng.standard_normal(3)
    alpha = 0.1
    tr = anchored_extragradient(grad, x0, y0, alpha=alpha, num_steps=4)
    for k in range(4):
        x, y = tr.theta1[k], tr.theta2[k]
        lk = 1.0 / (k + 2.0)
        gx, gy = grad(x, y)
        xh, yh = x + lk * (x0 - x) + alpha * gx, y + lk * (y0 - y) - alpha * gy
        gx, gy = grad(xh, yh)
        np.testing.assert_array_equal(tr.theta1[k + 1], x + lk * (x0 - x) + alpha * gx)
        np.testing.assert_array_equal(tr.theta2[k + 1], y + lk * (y0 - y) - alpha * gy)


# --- GAME-13..17: antisymmetric games and self-play ------------------------------------------------------


@given(seed=st.integers(0, 2**32 - 1), t1=arrays(np.float64, 4, elements=st.floats(-5, 5)),
       t2=arrays(np.float64, 4, elements=st.floats(-5, 5)))
def test_GAME_13_antisymmetric_payoff_and_GAME_15_gradient_identity(seed: int, t1: NDArray[np.float64],
                                                                   t2: NDArray[np.float64]) -> None:
    M = random_antisymmetric_game(np.random.default_rng(seed), 4)
    assert is_antisymmetric(M)
    scale = float(np.max(np.abs(M)))
    assert abs(payoff(M, t2, t1) + payoff(M, t1, t2)) <= tolerance(scale, terms=16)
    assert abs(payoff(M, t1, t1)) <= tolerance(scale, terms=16)
    g1, g2 = grad_R(M, t1, t1)
    np.testing.assert_allclose(g1, -g2, rtol=0, atol=tolerance(scale, terms=16))


@given(seed=st.integers(0, 2**32 - 1), theta=arrays(np.float64, 5, elements=st.floats(-5, 5)))
def test_GAME_14_symmetric_equilibrium_has_value_zero(seed: int, theta: NDArray[np.float64]) -> None:
    M = random_antisymmetric_game(np.random.default_rng(seed), 5)
    p_star = symmetric_equilibrium(M)
    # (p, q)'s certificate gap g bounds max_i (M p*)_i <= g (value 0), and the gap of (p*, p*) is twice that
    atol = 2.0 * NASH_GAP_RTOL * float(np.max(np.abs(M))) + tolerance(float(np.max(np.abs(M))), terms=25)
    assert abs(float(p_star @ M @ p_star)) <= tolerance(float(np.max(np.abs(M))), terms=25)
    assert is_nash_equilibrium(M, p_star, p_star, atol=atol)
    # R(theta, theta*) <= 0 <= R(theta*, theta)  (L2203)
    assert float(mu(theta) @ M @ p_star) <= atol
    assert float(p_star @ M @ mu(theta)) >= -atol


def test_GAME_14_symmetric_equilibrium_rejects_non_antisymmetric_games() -> None:
    with pytest.raises(InvalidGameError):
        symmetric_equilibrium(np.array([[1.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_GAME_16_17_self_play_equals_simgad_from_identical_initialisation(lam: float) -> None:
    M = random_antisymmetric_game(np.random.default_rng(5), 4)
    theta0 = np.array([0.3, -1.0, 2.0, 0.0])
    selfplay = self_play_simgad(M, theta0, alpha=0.1, lam=lam, num_steps=500)
    two = anchored_simgad(softmax_game_gradient(M), theta0, theta0, alpha=0.1, lam=lam, num_steps=500)
    # grad_2 R(theta, theta) = -grad_1 R(theta, theta) holds bit-for-bit when M^T = -M exactly
    np.testing.assert_array_equal(selfplay, two.theta1)
    np.testing.assert_array_equal(selfplay, two.theta2)


def test_GAME_16_17_self_play_follows_an_anchor_schedule_like_two_player_anchoring() -> None:
    """A schedule lam_k = 1/(k+2) is applied step by step (it was once evaluated at k = 0 only, so the run
    silently equalled constant lam = 0.5)."""
    M = random_antisymmetric_game(np.random.default_rng(6), 4)
    theta0 = np.array([0.3, -1.0, 2.0, 0.0])

    def schedule(k: int) -> float:
        return 1.0 / (k + 2)

    selfplay = self_play_simgad(M, theta0, alpha=0.1, lam=schedule, num_steps=200)
    two = anchored_simgad(softmax_game_gradient(M), theta0, theta0, alpha=0.1, lam=schedule, num_steps=200)
    np.testing.assert_array_equal(selfplay, two.theta1)
    const = self_play_simgad(M, theta0, alpha=0.1, lam=0.5, num_steps=200)
    assert float(np.max(np.abs(selfplay - const))) > 1e-3
    with pytest.raises(ValueError, match="k=3"):
        self_play_simgad(M, theta0, alpha=0.1, lam=lambda k: 0.1 if k < 3 else 1.0, num_steps=10)


def test_GAME_16_E77_reduction_needs_identical_initialisation() -> None:
    M = rps_payoff()
    two = simgad(softmax_game_gradient(M), E1, E2, alpha=0.1, num_steps=200)
    assert float(np.max(np.abs(two.theta1 - two.theta2))) > 0.5  # two different trajectories
    # E-78: theta -> R(theta, theta) is identically 0, so the self-play step is a *partial* gradient.
    # p^T M p with p = mu(E1) is 0 in exact arithmetic; in float64 it is two nested dot products of 3 terms
    # with sum_ij p_i |M_ij| p_j <= max |M_ij| (p is a distribution), so |fl(R)| <= tolerance(max|M|, 6).
    # (It is exactly 0.0 on some machines and -3.4e-18 on others, by the BLAS kernel's summation order.)
    assert abs(payoff(M, E1, E1)) <= tolerance(float(np.abs(M).max()), terms=2 * M.shape[0])
    assert abs(payoff(M, E1, E2)) > 0.1  # while R itself is not identically 0
    assert float(np.linalg.norm(grad_R(M, E1, E1)[0])) > 0.1


def test_GAME_17_self_play_rejects_non_antisymmetric_games() -> None:
    with pytest.raises(InvalidGameError):
        self_play_simgad(np.eye(3), np.zeros(3), alpha=0.1, num_steps=1)


def test_GAME_03_an_lp_profile_that_fails_the_certificate_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The certificate is the guard against a solver that reports success with a poor profile: a pure strategy
    of rock-paper-scissors (exploitability 2, twice the payoff scale) must raise, never be returned."""
    import reference.games as games_mod

    monkeypatch.setattr(games_mod, "_lp_strategy", lambda M: np.eye(M.shape[0])[0])
    with pytest.raises(NotConvergedError, match="exploitability"):
        nash_equilibrium(rps_payoff())


# --- input validation (black-box review): bad input raises a typed error naming the argument --------------


@pytest.mark.parametrize("atol", [math.nan, -1.0, -1e-300, math.inf, "0.1"])
def test_GAME_03_is_nash_equilibrium_refuses_a_tolerance_that_is_not_finite_and_non_negative(atol: object) -> None:
    """NaN or a negative atol answered False even at the exact equilibrium, instead of an error."""
    with pytest.raises(ReferenceError_, match="atol"):
        is_nash_equilibrium(rps_payoff(), UNIFORM3, UNIFORM3, atol=atol)  # type: ignore[arg-type]
    assert is_nash_equilibrium(rps_payoff(), UNIFORM3, UNIFORM3, atol=0.0)


_F_RPS = softmax_game_gradient(rps_payoff())


@pytest.mark.parametrize(("kw", "err", "match"), [
    ({"method": "anchored", "lam": 5.0}, ValueError, "lam"),  # anchored_simgad refuses lam outside [0, 1)
    ({"method": "anchored", "lam": 1.0}, ValueError, "lam"),
    ({"method": "anchored", "lam": -0.1}, ValueError, "lam"),
    ({"method": "anchored", "lam": math.nan}, ValueError, "lam"),
    ({"method": "simgad", "alpha": math.nan}, ValueError, "alpha"),  # was a NaN matrix
    ({"method": "extragradient", "alpha": -0.1}, ValueError, "alpha"),
    ({"method": "simgad", "h": 0.0}, ReferenceError_, "h must be"),
    ({"method": "simgad", "theta1": np.array([math.nan, 0.0, 0.0])}, InvalidGameError, r"theta1\[0\]"),
    ({"method": "simgad", "theta2": np.zeros(2)}, ShapeError, "do not match"),
    ({"method": "anchor"}, ValueError, "method"),
])
def test_GAME_08_12_linearised_iteration_matrix_validates_its_arguments(kw: dict[str, object],
                                                                        err: type[Exception], match: str) -> None:
    args: dict[str, object] = {"theta1": np.zeros(3), "theta2": np.zeros(3), "alpha": 0.1, **kw}
    with pytest.raises(err, match=match):
        linearised_iteration_matrix(_F_RPS, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("theta", [[math.inf, 0.0], [0.0, -math.inf], [math.nan, 1.0]])
def test_GAME_04_mu_refuses_non_finite_logits(theta: list[float]) -> None:
    """mu([inf, 0]) was [nan, nan] (inf - inf); the softmax Jacobian inherits the check."""
    bad = int(np.flatnonzero(~np.isfinite(theta))[0])
    with pytest.raises(InvalidGameError, match=rf"theta\[{bad}\]"):
        mu(np.array(theta))
    with pytest.raises(InvalidGameError, match=rf"theta\[{bad}\]"):
        softmax_jacobian(np.array(theta))


_QUAD = QuadraticGame(B=np.eye(2), a=1.0, c=1.0, x_star=np.zeros(2), y_star=np.zeros(2))
_DYNAMICS: dict[str, Callable[..., MinimaxTrajectory]] = {
    "simgad": simgad,
    "extragradient": extragradient,
    "anchored_simgad": lambda g, t1, t2, **kw: anchored_simgad(g, t1, t2, lam=0.1, **kw),
    "anchored_extragradient": anchored_extragradient,
}


@pytest.mark.parametrize("dynamics", sorted(_DYNAMICS))
@pytest.mark.parametrize(("field", "theta1", "theta2", "err", "match"), [
    ("rps", np.array([math.nan, 0.0, 0.0]), np.zeros(3), InvalidGameError, r"theta1\[0\]"),  # a NaN trajectory
    ("rps", np.zeros(3), np.array([0.0, math.inf, 0.0]), InvalidGameError, r"theta2\[1\]"),
    ("bilinear", np.zeros(3), np.zeros(2), ShapeError, "do not match M"),  # a raw matmul error
    ("quadratic", np.zeros(3), np.zeros(2), ShapeError, "do not match the game"),  # a raw broadcasting error
    ("wrong_output", np.zeros(3), np.zeros(2), ShapeError, "returned shapes"),  # broadcast silently
])
def test_GAME_07_12_dynamics_refuse_non_finite_starts_and_mismatched_shapes(
        dynamics: str, field: str, theta1: NDArray[np.float64], theta2: NDArray[np.float64],
        err: type[Exception], match: str) -> None:
    fields: dict[str, Callable[[NDArray[np.float64], NDArray[np.float64]],
                               tuple[NDArray[np.float64], NDArray[np.float64]]]] = {
        "rps": _F_RPS, "bilinear": bilinear_gradient(np.eye(2)), "quadratic": _QUAD.gradient,
        "wrong_output": lambda x, y: (np.zeros(1), np.zeros(2)),
    }
    with pytest.raises(err, match=match):
        _DYNAMICS[dynamics](fields[field], theta1, theta2, alpha=0.1, num_steps=2)


# --- found by the mutation audit (2026-12-08, second pass) --------------------------------------------------------
def test_GAME_08_quadratic_game_payoff_matches_the_closed_form_exactly() -> None:
    """R(x, y) = -a/2 |x - x*|^2 + (x - x*)^T B (y - y*) + c/2 |y - y*|^2 at dyadic points, against exact
    fractions: every entry is a multiple of 1/4 below 8, so each product and sum is exact in float64 and the
    comparison is equality (the c term's sign was pinned by nothing: only the gradient was checked)."""
    B = np.array([[3.0, -0.5], [1.25, 2.0]])
    a, c = 1.0, 2.0
    xs, ys = np.array([0.5, -1.0]), np.array([-0.25, 0.75])
    game = QuadraticGame(B=B, a=a, c=c, x_star=xs, y_star=ys)
    for x, y in [([1.5, 0.0], [0.75, 0.75]), ([0.5, -1.0], [1.75, -0.25]), ([-0.5, 2.0], [-0.25, 0.75])]:
        dx = [Fraction(v) - Fraction(s) for v, s in zip(x, xs.tolist(), strict=True)]
        dy = [Fraction(v) - Fraction(s) for v, s in zip(y, ys.tolist(), strict=True)]
        exact = (-Fraction(a) / 2 * sum(d * d for d in dx)
                 + sum(dx[i] * Fraction(B[i, j]) * dy[j] for i in range(2) for j in range(2))
                 + Fraction(c) / 2 * sum(d * d for d in dy))
        assert game.payoff(np.array(x), np.array(y)) == float(exact)


def test_GAME_08_quadratic_game_refuses_a_negative_curvature() -> None:
    """c < 0 (like a < 0) is not the concave-convex game of E-72: refused, not silently accepted."""
    with pytest.raises(InvalidGameError, match="c >= 0"):
        QuadraticGame(B=np.eye(1), a=1.0, c=-1.0, x_star=np.zeros(1), y_star=np.zeros(1))


def test_GAME_04_softmax_is_shift_invariant_at_large_logits() -> None:
    """mu(theta + c 1) = mu(theta) (L2137-L2139) also where e^theta overflows or underflows: theta is a
    multiple of 1/8 and c = +-1024, so theta + c is exact, theta - max theta is the same float vector and the
    two results are bit-identical (without the max subtracted, e^1024 = inf gave NaN)."""
    theta = np.array([0.5, -1.25, 2.0])
    base = mu(theta)
    for shift in (1024.0, -1024.0):
        np.testing.assert_array_equal(mu(theta + shift), base)


def test_GAME_08_strategy_distance_is_shift_invariant_at_large_logits() -> None:
    """strategy_distance measures mu(theta_k), invariant to theta_k + c 1 (open choice 20); as above the
    shift by +-1024 is exact, so the distances are bit-identical and finite."""
    t1 = np.array([[0.5, -1.25, 2.0], [0.0, 0.0, 0.0]])
    t2 = np.array([[1.0, 0.25, -0.5], [0.125, 0.0, 0.0]])
    base = strategy_distance(MinimaxTrajectory(theta1=t1, theta2=t2), UNIFORM3, E1)
    assert np.all(np.isfinite(base))
    for shift in (1024.0, -1024.0):
        moved = strategy_distance(MinimaxTrajectory(theta1=t1 + shift, theta2=t2 - shift), UNIFORM3, E1)
        np.testing.assert_array_equal(moved, base)


@pytest.mark.parametrize("p", [np.array([0.5, 0.4, 0.0]), np.array([0.3, 0.3, 0.3])])
def test_GAME_03_exploitability_refuses_a_strategy_summing_below_one(p: NDArray[np.float64]) -> None:
    """A p summing to 0.9 is no mixed strategy (the check was one-sided for a moment in the audit)."""
    with pytest.raises(InvalidPolicyError, match="sums to"):
        exploitability(rps_payoff(), p, UNIFORM3)


@pytest.mark.parametrize("dynamics", ["simgad", "extragradient", "anchored_simgad", "anchored_extragradient",
                                      "self_play", "linearised"])
def test_GAME_07_12_dynamics_refuse_a_zero_step_size(dynamics: str) -> None:
    """alpha = 0 is no step (the trajectory would stand still): refused like a negative one."""
    z = np.zeros(3)
    calls: dict[str, Callable[[], object]] = {
        "simgad": lambda: simgad(_F_RPS, z, z, alpha=0.0, num_steps=1),
        "extragradient": lambda: extragradient(_F_RPS, z, z, alpha=0.0, num_steps=1),
        "anchored_simgad": lambda: anchored_simgad(_F_RPS, z, z, alpha=0.0, lam=0.1, num_steps=1),
        "anchored_extragradient": lambda: anchored_extragradient(_F_RPS, z, z, alpha=0.0, num_steps=1),
        "self_play": lambda: self_play_simgad(rps_payoff(), z, alpha=0.0, num_steps=1),
        "linearised": lambda: linearised_iteration_matrix(_F_RPS, z, z, method="simgad", alpha=0.0),
    }
    with pytest.raises(ValueError, match="alpha"):
        calls[dynamics]()


def test_GAME_12_regularised_equilibrium_refuses_lam_zero() -> None:
    """lam = 0 has no regularised game (E-75 needs 0 < lam < 1): refused, not solved as the raw game."""
    with pytest.raises(ValueError, match="lam"):
        regularised_equilibrium(_F_RPS, np.zeros(3), np.zeros(3), alpha=0.1, lam=0.0)


def test_GAME_17_self_play_refuses_a_bad_constant_lam_even_without_steps() -> None:
    """lam = 1 is outside [0, 1): refused at once, also with num_steps = 0 (as documented)."""
    with pytest.raises(ValueError, match="lam"):
        self_play_simgad(rps_payoff(), np.zeros(3), alpha=0.1, num_steps=0, lam=1.0)


@pytest.mark.parametrize("offset", [1e6, 1e10, -1e12])
def test_GAME_05_nash_equilibrium_is_shift_invariant(offset: float) -> None:
    """Adding a constant to every payoff changes no equilibrium. On matching pennies + 1e10 (entries 1e10 +- 1,
    exact in float64) the LP on M / max|M| returned the pure profile (0, 1), (0, 1) with exploitability 2, and its
    certificate (gap <= 1e-9 max|M| = 10) passed it (review 2026-12-07). The LP now runs on the game centred by
    its midrange and scaled by its half-range. Oracle: the equilibrium of the centred game, (1/2, 1/2) exactly,
    and value offset + 0 (p M q sums four entries of size |offset|: within 4 eps |offset| of it); on a 3 x 3
    game, the equilibrium of the unshifted game."""
    from reference.games import exploitability, nash_equilibrium

    pennies = np.array([[1.0, -1.0], [-1.0, 1.0]])
    ne = nash_equilibrium(pennies + offset)
    np.testing.assert_array_equal(ne.p, [0.5, 0.5])
    np.testing.assert_array_equal(ne.q, [0.5, 0.5])
    assert abs(ne.value - offset) <= 4 * np.finfo(float).eps * abs(offset)
    assert exploitability(pennies + offset, ne.p, ne.q) <= 4 * np.finfo(float).eps * abs(offset)
    m = np.array([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0], [-1.0, 0.5, 0.75]])
    base = nash_equilibrium(m)
    shifted = nash_equilibrium(m + offset)
    # the shifted game's entries carry a rounding of eps |offset| / 2 each, and the gap is Lipschitz in M
    tol = 8 * np.finfo(float).eps * abs(offset)
    assert exploitability(m, shifted.p, shifted.q) <= tol + 1e-12
    assert abs((shifted.value - offset) - base.value) <= tol + 1e-12


def test_GAME_08_linearised_matrix_uses_a_step_relative_to_theta() -> None:
    """For a bilinear field the Jacobian of one SimGAD step is the constant I + alpha [[0, B], [-B^T, 0]]. The
    fixed central-difference step 1e-6 was off by 2.4e-4 at |theta| = 1e6 and returned the identity at 1e10,
    where theta + 1e-6 rounds to theta (review 2026-12-07). With the step h max(1, |z_j|) and the width actually
    taken, the difference quotient of a linear field is exact up to rounding: (f(z + e) - f(z - e)) / width with
    |f| <= 2 ||B|| |z|, i.e. about eps ||B|| |z| / (h |z|) = eps ||B|| / h relative to the entries (1e-10 at h =
    1e-6, scaled here by 8 for the two subtractions)."""
    from reference.games import bilinear_gradient, linearised_iteration_matrix

    B = np.array([[1.0, 2.0], [-1.0, 0.5]])
    alpha = 0.5
    exact = np.eye(4) + alpha * np.block([[np.zeros((2, 2)), B], [-B.T, np.zeros((2, 2))]])
    for s in (1.0, 1e3, 1e6, 1e10):
        L = linearised_iteration_matrix(bilinear_gradient(B), np.array([s, -s]), np.array([s, 2 * s]),
                                        method="simgad", alpha=alpha)
        assert float(np.max(np.abs(L - exact))) <= 8 * alpha * 2 * 2.0 * np.finfo(float).eps / 1e-6, s


def test_GAME_12_regularised_equilibrium_judges_its_residual_relative_to_its_terms() -> None:
    """On payoffs of 1e6 the converged solve (scipy: "The solution converged") left a residual of 1.9e-11, 9e-17
    relative to alpha max|M|, and the absolute 1e-12 check raised NotConvergedError (review 2026-12-07). Checked
    now: the result is a fixed point of constant-lam anchored SimGAD up to tol times the documented scale of the
    step's terms (alpha max|M| included: the softmax field carries max|M|), for payoffs from 1 to 1e6; and bad
    inputs get typed errors."""
    from reference.errors import InvalidGameError, ReferenceError_, ShapeError
    from reference.games import anchored_simgad, regularised_equilibrium, softmax_game_gradient

    base = np.array([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0], [-1.0, 0.2, 0.7]])
    for scale in (1.0, 1e3, 1e6):
        grad = softmax_game_gradient(scale * base)
        x, y = regularised_equilibrium(grad, np.zeros(3), np.zeros(3), alpha=0.1, lam=0.1)
        nxt = anchored_simgad(grad, x, y, alpha=0.1, lam=0.1, num_steps=1)
        gx, gy = grad(x, y)
        size = max(1.0, float(np.max(np.abs(0.1 * np.concatenate([gx, gy])))), float(np.max(np.abs(0.1 * x))),
                   0.1 * scale * float(np.max(np.abs(base))))  # the documented scale: alpha max|M| included
        moved = max(float(np.max(np.abs(nxt.theta1[1] - x))), float(np.max(np.abs(nxt.theta2[1] - y))))
        assert moved <= 1e-12 * size + 4 * np.finfo(float).eps * size, scale
    grad = softmax_game_gradient(base)
    with pytest.raises(ShapeError):
        regularised_equilibrium(grad, np.zeros((3, 1)), np.zeros(3), alpha=0.1, lam=0.1)
    with pytest.raises(InvalidGameError):
        regularised_equilibrium(grad, np.full(3, np.nan), np.zeros(3), alpha=0.1, lam=0.1)
    with pytest.raises((ValueError, ReferenceError_)):
        regularised_equilibrium(grad, np.zeros(3), np.zeros(3), alpha=np.inf, lam=0.1)
    with pytest.raises(ReferenceError_):
        regularised_equilibrium(grad, np.zeros(3), np.zeros(3), alpha=0.1, lam=0.1, tol=0.0)


def test_game_inputs_refused_with_typed_errors() -> None:
    """Accepted before 2026-12-07: a = inf in QuadraticGame, a complex payoff (its imaginary part dropped with a
    warning), lam = 1 in anchored_simgad when num_steps = 0; symmetric_equilibrium of a 2 x 3 matrix raised a raw
    numpy broadcast error."""
    from reference.errors import InvalidGameError, ShapeError
    from reference.games import (
        QuadraticGame,
        anchored_simgad,
        bilinear_gradient,
        nash_equilibrium,
        symmetric_equilibrium,
    )

    with pytest.raises(InvalidGameError, match="finite"):
        QuadraticGame(np.eye(1), np.inf, 1.0, np.zeros(1), np.zeros(1))
    with pytest.raises(InvalidGameError, match="real"):
        nash_equilibrium(np.array([[1j, 1.0]]))
    with pytest.raises(ShapeError, match="square"):
        symmetric_equilibrium(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="lam"):
        anchored_simgad(bilinear_gradient(np.eye(1)), np.ones(1), np.ones(1), alpha=0.1, lam=1.0, num_steps=0)


# --- review 2026-12-07 (session 20): scale of the LP, closed forms, refusals -----------------------------------


@pytest.mark.parametrize("big", [1e4, 1e8, 1e10, 1e12])
def test_GAME_03_a_strictly_dominated_huge_row_does_not_change_the_equilibrium(big: float) -> None:
    """One strictly dominated row of -big next to rock-paper-scissors: the unique equilibrium is p = (0, 1/3, 1/3,
    1/3), q uniform, value 0 (a strictly dominated strategy is in no equilibrium's support, and RPS's equilibrium
    is unique). Scaled by the whole game's range the RPS block fell below HiGHS's absolute tolerance: at big =
    1e10 the LP returned p = (0, 0, 0, 1), q = (0, 0, 1), Nash gap 2, and the certificate (gap <= 1e-9 h, h = 5e9)
    passed it (review 2026-12-07). The LP now solves sub-games on their own scale (double oracle). Tolerance:
    the RPS block's LP is exact to rounding, tolerance(1, terms=9) as for RPS alone."""
    M = np.vstack([np.full((1, 3), -big), rps_payoff()])
    ne = nash_equilibrium(M)
    np.testing.assert_allclose(ne.p, [0.0, 1 / 3, 1 / 3, 1 / 3], rtol=0, atol=tolerance(1.0, terms=9))
    np.testing.assert_allclose(ne.q, UNIFORM3, rtol=0, atol=tolerance(1.0, terms=9))
    assert ne.p[0] == 0.0  # never entered the sub-game
    assert exploitability(M, ne.p, ne.q) <= tolerance(1.0, terms=9)
    A = np.zeros((4, 4))  # the antisymmetric version: a fourth strategy that loses 1e9.. to each of R, P, S
    A[:3, :3] = rps_payoff()
    A[3, :3], A[:3, 3] = -big, big
    np.testing.assert_allclose(symmetric_equilibrium(A), [1 / 3, 1 / 3, 1 / 3, 0.0], rtol=0,
                               atol=tolerance(1.0, terms=9))


@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 4), n=st.integers(1, 4), e=st.integers(4, 14))
def test_GAME_03_random_games_with_a_dominated_huge_row_keep_their_equilibrium(seed: int, m: int, n: int,
                                                                               e: int) -> None:
    """Random Gaussian G plus a row of -10^e (strictly dominated by every row of G, whose entries are far above
    it): the equilibrium is G's, so the Nash gap of the whole game must be within rounding of G's scale,
    tolerance(max|G|, terms=m n), not of 10^e (the old certificate allowed 1e-9 * 10^e / 2; the gap reached
    1e-3 max|G| at e = 8). Oracle: the gap is computed independently of the solver, on the whole game."""
    G = _game(seed, m, n)
    M = np.vstack([G, np.full((1, n), -(10.0**e))])
    ne = nash_equilibrium(M)
    scale = float(np.max(np.abs(G)))
    assert ne.p[-1] == 0.0
    assert exploitability(M, ne.p, ne.q) <= tolerance(scale, terms=m * n)


def test_GAME_03_subnormal_payoff_differences_are_not_a_constant_game() -> None:
    """0.5 hi - 0.5 lo rounded a difference of two subnormal ulps to 0, and [[5e-324, -5e-324]] was taken for a
    constant game: q uniform, value 5e-324. Exact: the minimiser plays column 1, value -5e-324 (and 0 for
    [[5e-324, 0]])."""
    ne = nash_equilibrium(np.array([[5e-324, -5e-324]]))
    np.testing.assert_array_equal(ne.q, [0.0, 1.0])
    assert ne.value == -5e-324
    ne = nash_equilibrium(np.array([[5e-324, 0.0]]))
    np.testing.assert_array_equal(ne.q, [0.0, 1.0])
    assert ne.value == 0.0
    from reference.games import _half_range  # the helper every scaling uses: exact halves, no overflow

    assert _half_range(5e-324, -5e-324) == 5e-324
    assert _half_range(1e-323, 0.0) == 5e-324
    assert _half_range(1.7e308, -1.7e308) == 1.7e308


def test_GAME_03_the_certificate_refuses_a_small_gap_not_only_a_gross_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The certificate is gap <= NASH_GAP_RTOL * h: an LP answer off by 1e-6 (relative gap about 2e-6, 2000 times
    the certificate) must raise. A certificate loosened to 1e-3 passed every earlier test (review)."""
    import reference.games as games_mod

    exact = games_mod._lp_strategy

    def off(M: NDArray[np.float64]) -> NDArray[np.float64]:
        x = exact(M).copy()
        x[0] += 1e-6
        out: NDArray[np.float64] = x / x.sum()
        return out

    monkeypatch.setattr(games_mod, "_lp_strategy", off)
    with pytest.raises(NotConvergedError, match="exploitability"):
        nash_equilibrium(rps_payoff())
    monkeypatch.setattr(games_mod, "_lp_strategy", exact)
    nash_equilibrium(rps_payoff())  # the exact LP passes


@pytest.mark.parametrize("alpha,lam", [(0.1, 0.01), (0.5, 0.3), (1.3, 0.0), (0.05, 0.9)])
def test_GAME_12_anchored_linearisation_has_the_closed_form_eigenvalues(alpha: float, lam: float) -> None:
    """For R = x^T B y the field F = (B y, -B^T x) is linear, so the anchored step's Jacobian is exactly
    (1 - lam) I + alpha J_F with eigenvalues (1 - lam) +- i alpha sigma_k (sigma_k the singular values of B) and
    (1 - lam) on the remaining dimension. (1 - lam)(I + alpha J) or (1 - lam)^2 I + alpha J passed every earlier
    test (review). Tolerance: the difference quotient of a linear field, 8 alpha ||B|| eps / h (as for SimGAD above)
    plus the eigenvalue solver's eps ||L|| (normal matrix: eigenvalues are perfectly conditioned)."""
    B = np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0]])
    sig = np.linalg.svd(B, compute_uv=False)
    L = linearised_iteration_matrix(bilinear_gradient(B), np.array([0.3, -0.2]), np.array([0.1, 0.4, -0.5]),
                                    method="anchored", alpha=alpha, lam=lam)
    want = (1 - lam) * np.eye(5) + alpha * np.block([[np.zeros((2, 2)), B], [-B.T, np.zeros((3, 3))]])
    tol = 8 * alpha * float(np.max(sig)) * 2.0 * np.finfo(float).eps / 1e-6
    assert float(np.max(np.abs(L - want))) <= tol
    ev = np.linalg.eigvals(L)
    closed = np.array([complex(1 - lam, s * alpha) for s in sig]
                      + [complex(1 - lam, -s * alpha) for s in sig] + [complex(1 - lam, 0.0)])
    # a normal matrix: each eigenvalue moves by at most ||L - want||_2 <= 5 max|L - want| (Bauer-Fike, kappa = 1)
    dist = np.abs(ev[:, None] - closed[None, :])
    bound = 5 * tol + tolerance(float(np.linalg.norm(L, 2)), terms=5)
    assert float(np.max(dist.min(axis=1))) <= bound and float(np.max(dist.min(axis=0))) <= bound


def test_GAME_08_strategy_distance_uses_p_star_for_player_1_and_q_star_for_player_2() -> None:
    """Every earlier test passed p* = q* (swapping them passed): here p* != q* and the distance is computed by
    hand, ||mu(theta1) - p*||_1 + ||mu(theta2) - q*||_1, on a trajectory of two points."""
    t1 = np.array([[0.0, 0.0, 0.0], [np.log(2.0), 0.0, 0.0]])
    t2 = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, np.log(2.0)]])
    d = strategy_distance(MinimaxTrajectory(theta1=t1, theta2=t2), E1, E2)
    first = (2 / 3 + 1 / 3 + 1 / 3) + (1 / 3 + 2 / 3 + 1 / 3)
    second = (abs(0.5 - 1) + 0.25 + 0.25) + (0.25 + abs(0.25 - 1) + 0.5)
    np.testing.assert_allclose(d, [first, second], rtol=0, atol=tolerance(2.0, terms=6))
    swapped = strategy_distance(MinimaxTrajectory(theta1=t1, theta2=t2), E2, E1)
    assert abs(float(swapped[1]) - second) > 0.1


@pytest.mark.parametrize("total", [1.0 + 1e-6, 1.0 - 1e-9])
def test_GAME_03_a_strategy_off_the_simplex_by_more_than_rounding_is_refused(total: float) -> None:
    """The sum check is 64 n eps (about 4e-14 for n = 3): a sum of 1 + 1e-6 or 1 - 1e-9 is no mixed strategy
    (a check loosened to 1e-3 passed every earlier test)."""
    p = UNIFORM3 * total
    with pytest.raises(InvalidPolicyError, match="sums to"):
        exploitability(rps_payoff(), p, UNIFORM3)


def test_GAME_07_12_scalar_arguments_must_be_real_numbers() -> None:
    """alpha=True ran with alpha = 1, lam="0.5" and lam=False ran as 0.5 and 0 (through float()), a payoff matrix
    of strings was parsed; all refused now, with errors naming the argument. lam given to a method that has no
    anchor was ignored, and anchored_extragradient took a constant lam although it is a vanishing schedule."""
    z = np.zeros(3)
    with pytest.raises(ReferenceError_, match="alpha"):
        simgad(_F_RPS, z, z, alpha=True, num_steps=1)
    with pytest.raises(ReferenceError_, match="alpha"):
        regularised_equilibrium(_F_RPS, z, z, alpha=True, lam=0.1)
    for lam in ("0.5", False):
        with pytest.raises(ReferenceError_, match="lam"):
            anchored_simgad(_F_RPS, z, z, alpha=0.1, lam=lam, num_steps=1)  # type: ignore[arg-type]
    with pytest.raises(ReferenceError_, match="lam"):
        anchored_simgad(_F_RPS, z, z, alpha=0.1, lam=lambda k: "0.5", num_steps=1)  # type: ignore[arg-type,return-value]
    with pytest.raises(ReferenceError_, match="payoff matrix"):
        nash_equilibrium(np.array([["1", "0"], ["0", "1"]]))
    with pytest.raises(ReferenceError_, match="payoff matrix"):
        nash_equilibrium(np.array([[True, False], [False, True]]))
    with pytest.raises(ValueError, match="only read by method='anchored'"):
        linearised_iteration_matrix(_F_RPS, z, z, method="simgad", alpha=0.1, lam=0.9)
    with pytest.raises(ValueError, match="vanishing schedule"):
        anchored_extragradient(_F_RPS, z, z, alpha=0.1, num_steps=1, lam=0.3)  # type: ignore[arg-type]
    assert linearised_iteration_matrix(_F_RPS, z, z, method="simgad", alpha=0.1, lam=0.0).shape == (6, 6)


def test_GAME_12_E75_constant_anchor_can_converge_to_a_stationary_point_that_is_no_saddle() -> None:
    """E-75's "regularised equilibrium" needs R concave-convex (monotone): for R = x^2 + 2 x y + y^2 / 2 (x
    maximises), alpha = lam = 0.1, the anchored step is linear with matrix [[1.1, 0.2], [-0.2, 0.8]], spectral
    radius sqrt(0.92) < 1, so the iterates converge to (0, 0), the regularised game's only stationary point;
    but R_reg(x, 0) = x^2 / 2 has a minimum in the maximiser's direction there: no saddle. (The ledger had said
    "saddle" for every contractive case; review 2026-12-07.) Checked: the fixed point, the exact spectral radius,
    and the sign of the maximiser's second derivative of R_reg."""
    def grad(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return 2 * x + 2 * y, 2 * x + y

    tr = anchored_simgad(grad, np.ones(1), np.ones(1), alpha=0.1, lam=0.1, num_steps=600)
    J = linearised_iteration_matrix(grad, np.zeros(1), np.zeros(1), method="anchored", alpha=0.1, lam=0.1)
    rho = float(np.max(np.abs(np.linalg.eigvals(J))))
    assert abs(rho - math.sqrt(0.92)) <= 1e-9  # difference quotient of a linear field (see above)
    # z_600 = J^600 z_0 exactly for this linear step (up to rounding), and ||J^600 z_0||_2 <= cond_2(V) rho^600
    # ||z_0||_2 with V the eigenvectors of the diagonalisable J; the factor 2 covers the rounding of 600 steps
    cond_v = float(np.linalg.cond(np.linalg.eig(J)[1]))
    z600 = float(np.linalg.norm(np.concatenate([tr.theta1[-1], tr.theta2[-1]])))
    assert z600 <= 2 * cond_v * rho**600 * math.sqrt(2.0)
    x, y = regularised_equilibrium(grad, np.full(1, 0.3), np.full(1, -0.2), alpha=0.1, lam=0.1)
    assert abs(float(x[0])) <= 1e-12 and abs(float(y[0])) <= 1e-12
    d2_max = 2.0 - 0.1 / 0.1  # d2 R / dx2 - lam / alpha: R_reg = R - lam/(2 alpha) x^2 + lam/(2 alpha) y^2
    assert d2_max > 0  # convex in the maximiser's variable: a minimum, not a saddle


def test_GAME_03_payoffs_near_the_float_limit_keep_their_equilibrium() -> None:
    """Matching pennies at +-1e308 (and +-1.7e308): the double oracle centred its first 1x1 sub-game at 1e308, the
    other entries overflowed to -inf, the gap was NaN and passed the certificate, and the pure profile (1, 0),
    (1, 0) of exploitability 4e308 was returned (self-review 2026-12-07). The matrix is now scaled by a power of
    two first and a NaN gap is refused. Exact: uniform, value 0."""
    for big in (1e308, 1.7e308):
        ne = nash_equilibrium(np.array([[big, -big], [-big, big]]))
        np.testing.assert_array_equal(ne.p, [0.5, 0.5])
        np.testing.assert_array_equal(ne.q, [0.5, 0.5])
        assert ne.value == 0.0


def test_GAME_03_never_a_poor_profile_when_an_extreme_strategy_enters_the_sub_game() -> None:
    """A strategy of extreme payoffs that is a best response to some sub-game profile enters the double oracle's
    sub-game and makes its LP too coarse for the other payoffs: RPS next to a row (1e10, -1e10, -1e10) gave the
    pure profile R vs P (exploitability 2), certified against 1e-9 times the sub-game's half-range 1e10
    (self-review 2026-12-07). The certificate is now relative to the payoffs the profile plays and the best
    responses to it, so such profiles are refused. Fuzz: 400 random integer games in [-3, 3] with up to two
    entries of +-10^4..10^13; every answer is either NotConvergedError or a profile whose exploitability, computed
    exactly in rationals, is within 1e-9 times the half-range of the payoffs it plays plus the rounding of p, q."""
    rps_d = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0], [1e10, -1e10, -1e10]], dtype=float)
    with pytest.raises(NotConvergedError, match="exploitability"):
        nash_equilibrium(rps_d)
    rng = np.random.default_rng(2026)
    answered = 0
    for _ in range(400):
        m, n = (int(x) for x in rng.integers(1, 6, 2))
        g = rng.integers(-3, 4, (m, n)).astype(float)
        for _k in range(int(rng.integers(0, 3))):
            g[rng.integers(0, m), rng.integers(0, n)] = float(rng.choice([-1, 1]) * 10.0 ** rng.integers(4, 14))
        try:
            ne = nash_equilibrium(g)
        except NotConvergedError:
            continue
        answered += 1
        p = [Fraction(float(x)) for x in ne.p]
        q = [Fraction(float(x)) for x in ne.q]
        rows = [sum(Fraction(g[i, j]) * q[j] for j in range(n)) / sum(q) for i in range(m)]
        cols = [sum(Fraction(g[i, j]) * p[i] for i in range(m)) / sum(p) for j in range(n)]
        gap = max(rows) - min(cols)
        live_r = [i for i in range(m) if ne.p[i] > 0 or rows[i] == max(rows)]
        live_c = [j for j in range(n) if ne.q[j] > 0 or cols[j] == min(cols)]
        played = g[np.ix_(live_r, live_c)]
        half = (float(played.max()) - float(played.min())) / 2
        scale = float(np.max(np.abs(played)))
        assert gap <= Fraction(NASH_GAP_RTOL * half + tolerance(scale, terms=4 * (m + n))), (g, ne)
    assert answered >= 300
