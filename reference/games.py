"""Two-player zero-sum simultaneous games: minimax, Nash equilibria, SimGAD, extragradient, anchoring.

Text: Ryu, Chapter 1, "AlphaGo, Test-Time Compute, and Expert Iteration", L2104-L2220.

Conventions
-----------
* Player 1 *maximises* and player 2 *minimises* ``R(theta1, theta2)`` (GAME-02, L2118-L2122).
* A matrix game is a payoff matrix ``M`` of shape ``[A1, A2]``; mixed strategies are softmax-parametrised,
  ``p = mu(theta1)``, ``q = mu(theta2)``, and ``R = p^T M q`` (GAME-04, L2134-L2140).
* Softmax is invariant to ``theta + c 1``, so convergence of the dynamics is measured on *strategies*
  (``||mu(theta1) - p*||_1 + ||mu(theta2) - q*||_1``), never on ``theta`` (inventory open choice 20).
* A "gradient field" is a callable ``(theta1, theta2) -> (grad_1 R, grad_2 R)``; SimGAD, extragradient and
  anchoring are written once against it, so they run on softmax matrix games, bilinear games and the
  quadratic (strongly monotone) games of erratum E-72 alike.
* The anchor weight is called ``lam`` (the text's lambda; not GAE's lambda, E-75).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linprog, root

from reference.errors import InvalidGameError, InvalidPolicyError, NotConvergedError, ReferenceError_, ShapeError
from reference.mdp import _real, _real_array, validate_int

__all__ = [
    "NASH_GAP_RTOL",
    "RPS_PAYOFF",
    "GradientField",
    "MinimaxTrajectory",
    "NashEquilibrium",
    "QuadraticGame",
    "anchored_extragradient",
    "anchored_simgad",
    "bilinear_gradient",
    "exploitability",
    "extragradient",
    "grad_R",
    "is_antisymmetric",
    "is_nash_equilibrium",
    "linearised_iteration_matrix",
    "mu",
    "nash_equilibrium",
    "payoff",
    "random_antisymmetric_game",
    "random_zero_sum_game",
    "regularised_equilibrium",
    "rps_payoff",
    "self_play_simgad",
    "simgad",
    "softmax_game_gradient",
    "softmax_jacobian",
    "strategy_distance",
    "symmetric_equilibrium",
]

FloatArray = NDArray[np.float64]
GradientField = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]
"""``(theta1, theta2) -> (grad_1 R(theta1, theta2), grad_2 R(theta1, theta2))``."""


def _readonly(x: FloatArray) -> FloatArray:
    y = np.array(x, dtype=np.float64, copy=True)
    y.setflags(write=False)
    return y


def _check_matrix(M: FloatArray) -> FloatArray:
    if np.iscomplexobj(M):  # float64 would drop the imaginary part with only a warning
        raise InvalidGameError("payoff matrix must be real, got a complex array")
    M = _real_array(M, "payoff matrix")  # strings were parsed, booleans read as 0 / 1
    if M.ndim != 2 or M.shape[0] == 0 or M.shape[1] == 0:
        raise ShapeError(f"payoff matrix must be 2-D and non-empty, got shape {M.shape}")
    bad = np.argwhere(~np.isfinite(M))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise InvalidGameError(f"payoff matrix entry M[{i}, {j}] = {M[i, j]} is not finite")
    return M


def _check_vector(x: FloatArray, n: int, name: str) -> FloatArray:
    x = _real_array(x, name)
    if x.shape != (n,):
        raise ShapeError(f"{name} must have shape ({n},), got {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise InvalidGameError(f"{name}[{int(bad[0])}] = {x[bad[0]]} is not finite")
    return x


def _check_distribution(p: FloatArray, n: int, name: str) -> FloatArray:
    p = _check_vector(p, n, name)
    neg = np.flatnonzero(p < 0.0)
    if neg.size:
        raise InvalidPolicyError(f"{name}[{int(neg[0])}] = {p[neg[0]]} is negative")
    if abs(float(p.sum()) - 1.0) > 64 * n * np.finfo(np.float64).eps:
        raise InvalidPolicyError(f"{name} sums to {float(p.sum())!r}, not 1")
    return p


# ---------------------------------------------------------------------------------------------------------
# Matrix games (GAME-01..GAME-05)
# ---------------------------------------------------------------------------------------------------------

RPS_PAYOFF: FloatArray = _readonly(np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]))
"""GAME-04: the rock-paper-scissors payoff of L2138 (rows: player 1 plays R, P, S; payoff to player 1)."""


def rps_payoff() -> FloatArray:
    """Rock-paper-scissors payoff matrix, antisymmetric.

    M = [[0, -1, 1], [1, 0, -1], [-1, 1, 0]]   (L2138)

    Spec: GAME-04. Returns a read-only ``[3, 3]`` array.
    """
    return RPS_PAYOFF


def mu(theta: FloatArray) -> FloatArray:
    """Softmax strategy ``p_theta = mu(theta)``.

    p_theta = (e^{theta_1}, ..., e^{theta_n}) / sum_i e^{theta_i}   (L2138-L2140)

    Spec: GAME-04. ``theta``: ``[n]`` -> ``[n]``. Computed with the max subtracted (shift invariance). A
    non-finite entry raises ``InvalidGameError`` (inf - inf is NaN: ``mu([inf, 0])`` was ``[nan, nan]``).
    """
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 1 or theta.shape[0] == 0:
        raise ShapeError(f"theta must be a non-empty vector, got shape {theta.shape}")
    theta = _check_vector(theta, theta.shape[0], "theta")
    z = np.exp(theta - np.max(theta))
    out: FloatArray = z / z.sum()
    return out


def softmax_jacobian(theta: FloatArray) -> FloatArray:
    """Jacobian of the softmax, ``d mu / d theta = diag(p) - p p^T`` (symmetric).

    Spec: GAME-04. ``theta``: ``[n]`` -> ``[n, n]``.
    """
    p = mu(theta)
    out: FloatArray = np.diag(p) - np.outer(p, p)
    return out


def payoff(M: FloatArray, theta1: FloatArray, theta2: FloatArray) -> float:
    """Expected payoff to player 1, ``R(theta1, theta2) = mu(theta1)^T M mu(theta2)``.

    R(theta^(1), theta^(2)) = p_{theta^(1)}^T M p_{theta^(2)}   (L2138)

    Spec: GAME-01, GAME-04. ``M``: ``[A1, A2]``, ``theta1``: ``[A1]``, ``theta2``: ``[A2]`` -> scalar.
    """
    M = _check_matrix(M)
    theta1 = _check_vector(theta1, M.shape[0], "theta1")
    theta2 = _check_vector(theta2, M.shape[1], "theta2")
    return float(mu(theta1) @ M @ mu(theta2))


def grad_R(M: FloatArray, theta1: FloatArray, theta2: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Partial gradients ``(grad_1 R, grad_2 R)`` of the softmax matrix game.

    grad_1 R = (diag(p) - p p^T) M q,   grad_2 R = (diag(q) - q q^T) M^T p,   p = mu(theta1), q = mu(theta2)

    Spec: GAME-07. Shapes as in :func:`payoff`; returns ``([A1], [A2])``.
    """
    M = _check_matrix(M)
    theta1 = _check_vector(theta1, M.shape[0], "theta1")
    theta2 = _check_vector(theta2, M.shape[1], "theta2")
    return _grad_R_unchecked(M, np.ascontiguousarray(M.T), theta1, theta2)


def _softmax_unchecked(theta: FloatArray) -> FloatArray:
    z = np.exp(theta - np.max(theta))
    out: FloatArray = z / z.sum()
    return out


def _grad_R_unchecked(M: FloatArray, MT: FloatArray, theta1: FloatArray,
                      theta2: FloatArray) -> tuple[FloatArray, FloatArray]:
    # MT is a C-contiguous copy of M^T: both products then run the same kernel, so for M^T = -M exactly
    # grad_2 R(theta, theta) = -grad_1 R(theta, theta) holds bit-for-bit (GAME-15).
    p, q = _softmax_unchecked(theta1), _softmax_unchecked(theta2)
    Mq = M @ q
    MTp = MT @ p
    g1: FloatArray = p * (Mq - p @ Mq)
    g2: FloatArray = q * (MTp - q @ MTp)
    return g1, g2


def softmax_game_gradient(M: FloatArray) -> GradientField:
    """The gradient field ``(theta1, theta2) -> grad_R(M, theta1, theta2)`` of a softmax matrix game.

    Spec: GAME-07. ``M``: ``[A1, A2]``.
    """
    M = _readonly(_check_matrix(M))
    MT = _readonly(np.ascontiguousarray(M.T))
    m, n = M.shape

    def field(theta1: FloatArray, theta2: FloatArray) -> tuple[FloatArray, FloatArray]:
        if theta1.shape != (m,) or theta2.shape != (n,):
            raise ShapeError(f"theta shapes {theta1.shape}, {theta2.shape} do not match M {M.shape}")
        return _grad_R_unchecked(M, MT, theta1, theta2)

    setattr(field, "payoff_scale", float(np.max(np.abs(M))))  # noqa: B010 (a function: mypy needs setattr)
    return field


def bilinear_gradient(M: FloatArray) -> GradientField:
    """Gradient field of the bilinear game ``R(x, y) = x^T M y`` (no softmax): ``(M y, M^T x)``.

    Spec: GAME-08, GAME-11 (the monotone case of E-72 / E-74). ``M``: ``[n1, n2]``.
    """
    M = _readonly(_check_matrix(M))
    m, n = M.shape

    def field(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        if np.shape(x) != (m,) or np.shape(y) != (n,):
            raise ShapeError(f"x, y shapes {np.shape(x)}, {np.shape(y)} do not match M {M.shape}")
        gx: FloatArray = M @ y
        gy: FloatArray = M.T @ x
        return gx, gy

    setattr(field, "payoff_scale", float(np.max(np.abs(M))))  # noqa: B010 (a function: mypy needs setattr)
    return field


@dataclass(frozen=True)
class QuadraticGame:
    """``R(x, y) = -a/2 |x - x*|^2 + (x - x*)^T B (y - y*) + c/2 |y - y*|^2``, max over x, min over y.

    ``a = c = 0`` is a bilinear game with equilibrium ``(x*, y*)``; ``a, c > 0`` is strongly
    concave-convex (strongly monotone). E-72's counterexample is ``a = c = 1``, ``B = [[1]]``, ``x* = y* = 0``.

    Spec: GAME-08 (E-72), GAME-12 (E-75). ``B``: ``[n1, n2]``, ``x_star``: ``[n1]``, ``y_star``: ``[n2]``.
    """

    B: FloatArray
    a: float
    c: float
    x_star: FloatArray
    y_star: FloatArray

    def __post_init__(self) -> None:
        B = _check_matrix(self.B)
        if not (np.isfinite(self.a) and np.isfinite(self.c) and self.a >= 0.0 and self.c >= 0.0):
            raise InvalidGameError(f"QuadraticGame needs finite a >= 0 and c >= 0, got a={self.a}, c={self.c}")
        object.__setattr__(self, "B", _readonly(B))
        object.__setattr__(self, "x_star", _readonly(_check_vector(self.x_star, B.shape[0], "x_star")))
        object.__setattr__(self, "y_star", _readonly(_check_vector(self.y_star, B.shape[1], "y_star")))

    def _check_xy(self, x: FloatArray, y: FloatArray) -> None:
        if np.shape(x) != self.x_star.shape or np.shape(y) != self.y_star.shape:
            raise ShapeError(f"x, y shapes {np.shape(x)}, {np.shape(y)} do not match the game's "
                             f"{self.x_star.shape}, {self.y_star.shape}")

    def payoff(self, x: FloatArray, y: FloatArray) -> float:
        """``R(x, y)``. Shapes ``[n1]``, ``[n2]`` -> scalar."""
        self._check_xy(x, y)
        dx, dy = np.asarray(x) - self.x_star, np.asarray(y) - self.y_star
        return float(-0.5 * self.a * dx @ dx + dx @ self.B @ dy + 0.5 * self.c * dy @ dy)

    def gradient(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(grad_x R, grad_y R) = (-a dx + B dy, B^T dx + c dy)``."""
        self._check_xy(x, y)
        dx, dy = np.asarray(x) - self.x_star, np.asarray(y) - self.y_star
        gx: FloatArray = -self.a * dx + self.B @ dy
        gy: FloatArray = self.B.T @ dx + self.c * dy
        return gx, gy


# ---------------------------------------------------------------------------------------------------------
# Nash equilibria (GAME-02, GAME-03, GAME-05, GAME-14)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NashEquilibrium:
    """A mixed Nash equilibrium ``(p*, q*)`` of a matrix game and its value ``v = p*^T M q*``."""

    p: FloatArray
    q: FloatArray
    value: float


def exploitability(M: FloatArray, p: FloatArray, q: FloatArray) -> float:
    """Nash gap ``max_i (M q)_i - min_j (M^T p)_j >= 0``; zero exactly at a Nash equilibrium.

    The saddle condition R(theta1, theta2*) <= R(theta*) <= R(theta1*, theta2) (L2126) holds for all
    mixed deviations iff it holds for pure ones, so the gap is the sum of both players' best-response gains.
    The inequality holds in exact arithmetic; the computed gap is within rounding of the exact one (about
    (A1 + A2) eps max |M|), so at an equilibrium it can come out a few ulps below or above 0 (a constant game:
    -1.3e-15 .. 1.3e-15). Compare it with a tolerance (:func:`is_nash_equilibrium`'s ``atol``), not with 0.

    Spec: GAME-03 (weak inequalities, E-71). ``M``: ``[A1, A2]``, ``p``: ``[A1]``, ``q``: ``[A2]``.
    """
    M = _check_matrix(M)
    p = _check_distribution(p, M.shape[0], "p")
    q = _check_distribution(q, M.shape[1], "q")
    return float(np.max(M @ q) - np.min(M.T @ p))


def is_nash_equilibrium(M: FloatArray, p: FloatArray, q: FloatArray, *, atol: float) -> bool:
    """Whether ``(p, q)`` satisfies the saddle inequalities of L2126 up to ``atol``.

    R(theta^(1), theta_*^(2)) <= R(theta_*) <= R(theta_*^(1), theta^(2))  for all deviations (E-71: weak)

    Spec: GAME-03. Shapes as in :func:`exploitability`. ``atol`` is a finite number >= 0 (``ReferenceError_``:
    NaN or a negative one answered False for every profile, the exact equilibrium included).
    """
    tol = _real(atol, "atol")
    if not (np.isfinite(tol) and tol >= 0.0):
        raise ReferenceError_(f"atol must be a finite number >= 0 (a tolerance on the Nash gap), got {atol!r}")
    return exploitability(M, p, q) <= atol


def _lp_strategy(M: FloatArray) -> FloatArray:
    """Player 1's maximin strategy of M [m, n]: maximise v s.t. v <= (M^T p)_j, sum p = 1, p >= 0 (HiGHS)."""
    m, n = M.shape
    c = np.zeros(m + 1)
    c[-1] = -1.0
    A = np.hstack([-M.T, np.ones((n, 1))])
    res = linprog(c, A_ub=A, b_ub=np.zeros(n), A_eq=np.hstack([np.ones((1, m)), np.zeros((1, 1))]),
                  b_eq=np.ones(1), bounds=[(0.0, None)] * m + [(None, None)], method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    if res.status != 0:
        raise NotConvergedError(f"linprog failed: status {res.status} ({res.message})")
    x = np.clip(np.asarray(res.x[:m], dtype=np.float64), 0.0, None)
    return np.asarray(x / x.sum(), dtype=np.float64)


NASH_GAP_RTOL: float = 1e-9
"""Certificate of :func:`nash_equilibrium`: exploitability <= NASH_GAP_RTOL * h, h the half-range of the payoffs
of the final sub-game (else NotConvergedError); see :func:`nash_equilibrium`."""


def _half_range(hi: float, lo: float) -> float:
    """(hi - lo) / 2 without overflow near the float64 limit and without losing a subnormal difference
    (0.5 hi - 0.5 lo rounded [[5e-324, -5e-324]] to a constant game)."""
    d = hi - lo
    return d / 2.0 if np.isfinite(d) else 0.5 * hi - 0.5 * lo


def _scaled(M: FloatArray) -> tuple[FloatArray, float]:
    """(M - c) / h with c the mid-range and h the half-range of M (entries in [-1, 1]), and h; h = 0 for a
    constant M, which is then returned centred but unscaled (all zeros)."""
    hi, lo = float(np.max(M)), float(np.min(M))
    half = _half_range(hi, lo)
    centred = M - (lo + half)
    return (centred / half if half > 0.0 else centred), half


def _subgame_equilibrium(M: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Both players' LP strategies of M on its own scale; the uniform profile for a constant M."""
    Ms, half = _scaled(M)
    if half == 0.0:
        return np.full(M.shape[0], 1.0 / M.shape[0]), np.full(M.shape[1], 1.0 / M.shape[1])
    return _lp_strategy(Ms), _lp_strategy(-Ms.T)


def nash_equilibrium(M: FloatArray) -> NashEquilibrium:
    """A mixed Nash equilibrium of the matrix game by linear programming (scipy HiGHS), certified.

    max_p min_j (M^T p)_j  and  min_q max_i (M q)_i;  the two optimal values coincide (minimax theorem).

    Spec: GAME-02, GAME-03, GAME-05. ``M``: ``[A1, A2]`` -> ``NashEquilibrium(p [A1], q [A2], value)``.

    HiGHS's tolerances are absolute, so every LP is solved on (M' - c) / h with c the mid-range and h the
    half-range of the (sub-)game M' it solves, entries in [-1, 1] (adding a constant to every payoff changes no
    equilibrium; on payoffs of order 1e-12 the raw LP returned a pure strategy of rock-paper-scissors, on
    matching pennies plus 1e10, scaled by max |M| only, a pure profile of Nash gap 2). Scaling by the whole
    game's range is not enough either: one strictly dominated row of -1e10 next to rock-paper-scissors shrank
    the game below the LP's tolerance and gave a pure profile of gap 2. So the equilibrium is found by a double
    oracle on sub-games (McMahan, Gordon and Blum 2003): start from both players' pure maximin strategies; solve
    the sub-game's LPs on the sub-game's own scale; add each player's best response in the whole game if it
    beats every strategy of the sub-game; stop when neither does (at most A1 + A2 rounds). A strategy that is
    never a best response (a dominated row) never enters, and the sub-game's equilibrium is then one of the
    whole game. Certificate: the returned profile's :func:`exploitability` is at most :data:`NASH_GAP_RTOL`
    times the half-range of the payoffs the profile plays (its supports and the best responses to it; for a pure
    saddle point the gap is exactly 0 by the stopping rule); otherwise ``NotConvergedError``. A strategy that is
    a best response to some sub-game profile enters even if its payoffs are extreme, and then the sub-game's LP
    can be too coarse for the rest (rock-paper-scissors next to a row (1e10, -1e10, -1e10)): such games are
    refused, never answered with a poor profile. A constant matrix returns the uniform profile
    (every profile is an equilibrium). Payoffs must be real numbers (strings and booleans are refused).
    """
    M = _check_matrix(M)
    m, n = M.shape
    hi, lo = float(np.max(M)), float(np.min(M))
    if hi == lo:
        return NashEquilibrium(p=_readonly(np.full(m, 1.0 / m)), q=_readonly(np.full(n, 1.0 / n)), value=hi)
    # a power of two brings max |M| below 2^1020, so that the centred payoffs below cannot overflow (matching
    # pennies at +-1e308 centred on a 1x1 sub-game at 1e308 gave -inf, a NaN gap and a certified pure profile)
    _, e = np.frexp(max(abs(hi), abs(lo)))
    Mw = np.ldexp(M, -max(0, int(e) - 1020))
    rows = [int(np.argmax(Mw.min(axis=1)))]  # pure maximin row and minimax column: never a dominated one
    cols = [int(np.argmin(Mw.max(axis=0)))]
    for _ in range(m + n + 1):
        sub = Mw[np.ix_(rows, cols)]
        ps, qs = _subgame_equilibrium(sub)
        p = np.zeros(m)
        q = np.zeros(n)
        p[rows], q[cols] = ps, qs
        Mc = Mw - (float(np.min(sub)) + _half_range(float(np.max(sub)), float(np.min(sub))))  # sub-game centred
        u, w = Mc @ q, Mc.T @ p  # payoffs of every pure strategy against the other's sub-game strategy
        i, j = int(np.argmax(u)), int(np.argmin(w))
        grow_r = i not in rows and u[i] > np.max(u[rows])
        grow_c = j not in cols and w[j] < np.min(w[cols])
        if grow_r:
            rows.append(i)
        if grow_c:
            cols.append(j)
        if not (grow_r or grow_c):
            break
    else:  # pragma: no cover - each round adds a strategy, so at most m + n rounds
        raise NotConvergedError(f"double oracle did not stop after {m + n + 1} rounds")
    gap = float(np.max(u) - np.min(w))  # the exploitability, on the sub-game's centring
    # judged on the payoffs the profile plays and the best responses to it (a strategy of extreme payoff that
    # entered the sub-game without being played must not loosen the tolerance: RPS next to a row of +-1e10 that is
    # a best response to one column was certified with gap 2 against 1e-9 * 1e10)
    live_r = sorted(set(np.flatnonzero(p > 0.0).tolist()) | {int(np.argmax(u))})
    live_c = sorted(set(np.flatnonzero(q > 0.0).tolist()) | {int(np.argmin(w))})
    played = Mw[np.ix_(live_r, live_c)]
    half = _half_range(float(np.max(played)), float(np.min(played)))
    if not gap <= NASH_GAP_RTOL * half:  # also refuses a NaN gap
        raise NotConvergedError(f"the LP equilibrium has exploitability {gap:.3e}, more than {NASH_GAP_RTOL:.0e} "
                                f"times the half-range {half:.3e} of the payoffs it plays (the LP runs on the "
                                f"{len(rows)} x {len(cols)} sub-game's own scale, which strategies of extreme payoff "
                                f"can make too coarse)")
    return NashEquilibrium(p=_readonly(p), q=_readonly(q), value=float(p @ M @ q))


def is_antisymmetric(M: FloatArray) -> bool:
    """Whether the softmax matrix game has antisymmetric payoff, i.e. ``M = -M^T`` exactly.

    R(theta^(2), theta^(1)) = -R(theta^(1), theta^(2)) for all thetas  <=>  M^T = -M   (L2197)

    Spec: GAME-13. ``M``: ``[A, A]``.
    """
    M = _check_matrix(M)
    return M.shape[0] == M.shape[1] and bool(np.array_equal(M, -M.T))


def symmetric_equilibrium(M: FloatArray) -> FloatArray:
    """The symmetric equilibrium strategy ``p*`` of an antisymmetric game: ``(p*, p*)`` is a NE of value 0.

    R(theta, theta*) <= R(theta*, theta*) = 0 <= R(theta*, theta)   (L2201-L2203; E-76: if a NE exists,
    a symmetric one exists, by interchangeability of saddle points)

    Spec: GAME-14. ``M``: ``[A, A]`` antisymmetric -> ``[A]``. Player 1's LP strategy is used for both.
    """
    M = _check_matrix(M)
    if M.shape[0] != M.shape[1]:
        raise ShapeError(f"a symmetric equilibrium needs a square (antisymmetric) M, got shape {M.shape}")
    if not is_antisymmetric(M):
        raise InvalidGameError(f"M is not antisymmetric: max |M + M^T| = {float(np.max(np.abs(M + M.T)))}")
    return nash_equilibrium(M).p


def random_zero_sum_game(rng: np.random.Generator, m: int, n: int) -> FloatArray:
    """A random ``[m, n]`` payoff matrix with i.i.d. standard normal entries.

    Spec: GAME-01. ``rng``: seeded generator.
    """
    if m < 1 or n < 1:
        raise ShapeError(f"need m, n >= 1, got m={m}, n={n}")
    return rng.standard_normal((m, n))


def random_antisymmetric_game(rng: np.random.Generator, n: int) -> FloatArray:
    """A random antisymmetric ``[n, n]`` payoff ``G - G^T`` with ``G`` standard normal.

    Spec: GAME-13.
    """
    G = random_zero_sum_game(rng, n, n)
    out: FloatArray = G - G.T
    return out


# ---------------------------------------------------------------------------------------------------------
# Minimax dynamics (GAME-07..GAME-12, GAME-16, GAME-17)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinimaxTrajectory:
    """Iterates of a two-player dynamics: ``theta1`` ``[K+1, n1]``, ``theta2`` ``[K+1, n2]`` (row 0 = start)."""

    theta1: FloatArray
    theta2: FloatArray


def _check_alpha(alpha: float) -> None:
    a = _real(alpha, "alpha")  # True ran as alpha = 1; "0.1" raised a raw TypeError
    if not (np.isfinite(a) and a > 0.0):
        raise ValueError(f"alpha must be a positive finite step size, got {alpha}")


def _check_step(alpha: float, num_steps: int) -> None:
    _check_alpha(alpha)
    validate_int(num_steps, "num_steps")


def _check_thetas(theta1: FloatArray, theta2: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Copies of the starting points as float vectors with finite entries (``ShapeError`` /
    ``InvalidGameError``): a NaN start gave a NaN trajectory."""
    x = np.array(theta1, dtype=np.float64)
    y = np.array(theta2, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ShapeError(f"theta1 and theta2 must be vectors, got shapes {x.shape}, {y.shape}")
    return _check_vector(x, x.shape[0], "theta1"), _check_vector(y, y.shape[0], "theta2")


def _shape_checked(grad: GradientField, theta1: FloatArray, theta2: FloatArray) -> GradientField:
    """``grad`` with its output checked to have the shapes of ``theta1`` and ``theta2`` (``ShapeError``: a
    wrongly shaped gradient would be broadcast into the iterate silently). The built-in fields
    (:func:`softmax_game_gradient`, :func:`bilinear_gradient`, :meth:`QuadraticGame.gradient`) check their
    inputs' shapes themselves."""
    s1, s2 = np.shape(theta1), np.shape(theta2)

    def checked(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        gx, gy = grad(x, y)
        if np.shape(gx) != s1 or np.shape(gy) != s2:
            raise ShapeError(f"the gradient field returned shapes {np.shape(gx)}, {np.shape(gy)} for theta "
                             f"shapes {s1}, {s2}")
        return gx, gy

    return checked


def _lam_at(lam: float | Callable[[int], float], k: int) -> float:
    # a real number, constant or from the schedule: "0.5" and False ran as 0.5 and 0 through float()
    value = _real(lam(k), f"lam({k})") if callable(lam) else _real(lam, "lam")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"anchor weight lam at step k={k} must lie in [0, 1), got {value}")
    return value


def _run(step: Callable[[int, FloatArray, FloatArray], tuple[FloatArray, FloatArray]], theta1: FloatArray,
         theta2: FloatArray, num_steps: int) -> MinimaxTrajectory:
    x, y = _check_thetas(theta1, theta2)
    X = np.empty((num_steps + 1, x.shape[0]))
    Y = np.empty((num_steps + 1, y.shape[0]))
    X[0], Y[0] = x, y
    for k in range(num_steps):
        x, y = step(k, x, y)
        X[k + 1], Y[k + 1] = x, y
    return MinimaxTrajectory(theta1=_readonly(X), theta2=_readonly(Y))


def simgad(grad: GradientField, theta1: FloatArray, theta2: FloatArray, *, alpha: float,
           num_steps: int) -> MinimaxTrajectory:
    """Simultaneous gradient ascent-descent.

    theta1_next = theta1 + alpha grad_1 R(theta1, theta2),  theta2_next = theta2 - alpha grad_2 R(theta1, theta2)
    (L2158-L2162)

    Spec: GAME-07 (converges on strongly monotone games, cycles/diverges on bilinear games and RPS: E-72).
    ``theta1``: ``[n1]``, ``theta2``: ``[n2]`` -> trajectory ``[K+1, n1]``, ``[K+1, n2]``.
    """
    _check_step(alpha, num_steps)
    theta1, theta2 = _check_thetas(theta1, theta2)
    grad = _shape_checked(grad, theta1, theta2)

    def step(k: int, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        gx, gy = grad(x, y)
        return x + alpha * gx, y - alpha * gy

    return _run(step, theta1, theta2, num_steps)


def extragradient(grad: GradientField, theta1: FloatArray, theta2: FloatArray, *, alpha: float,
                  num_steps: int) -> MinimaxTrajectory:
    """Extragradient: a look-ahead SimGAD step, then the update with the look-ahead gradient.

    theta_temp = theta +- alpha grad R(theta);  theta_next = theta +- alpha grad R(theta_temp)   (L2170-L2179)

    Spec: GAME-10, GAME-11 (E-74: guaranteed for monotone games with L-Lipschitz gradient and alpha < 1/L;
    only locally on softmax RPS). Shapes as in :func:`simgad`.
    """
    _check_step(alpha, num_steps)
    theta1, theta2 = _check_thetas(theta1, theta2)
    grad = _shape_checked(grad, theta1, theta2)

    def step(k: int, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        gx, gy = grad(x, y)
        xt, yt = x + alpha * gx, y - alpha * gy
        gx, gy = grad(xt, yt)
        return x + alpha * gx, y - alpha * gy

    return _run(step, theta1, theta2, num_steps)


def anchored_simgad(grad: GradientField, theta1: FloatArray, theta2: FloatArray, *, alpha: float,
                    lam: float | Callable[[int], float], num_steps: int) -> MinimaxTrajectory:
    """Anchored SimGAD (weight decay toward the anchor 0).

    theta1_next = (1 - lam) theta1 + alpha grad_1 R,  theta2_next = (1 - lam) theta2 - alpha grad_2 R
    (L2187-L2191)

    Spec: GAME-12. ``lam`` is a constant in [0, 1) or a schedule ``k -> lam_k`` (k = 0, 1, ...).
    Erratum E-75: with a constant ``lam`` the fixed point is a stationary point of the *regularised* game
    ``R - lam/(2 alpha) |theta1|^2 + lam/(2 alpha) |theta2|^2``, its equilibrium when R is concave-convex (see
    :func:`regularised_equilibrium`);
    vanishing ``lam_k`` is needed for the true one. Shapes as in :func:`simgad`.
    """
    _check_step(alpha, num_steps)
    _lam_at(lam, 0)  # a bad constant fails even when num_steps = 0 (as self_play_simgad)
    theta1, theta2 = _check_thetas(theta1, theta2)
    grad = _shape_checked(grad, theta1, theta2)

    def step(k: int, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        lk = _lam_at(lam, k)
        gx, gy = grad(x, y)
        return (1.0 - lk) * x + alpha * gx, (1.0 - lk) * y - alpha * gy

    return _run(step, theta1, theta2, num_steps)


def anchored_extragradient(grad: GradientField, theta1: FloatArray, theta2: FloatArray, *, alpha: float,
                           num_steps: int, lam: Callable[[int], float] | None = None) -> MinimaxTrajectory:
    """Extra anchored gradient (EAG, Yoon and Ryu 2021): Halpern anchoring to the start with ``lam_k -> 0``.

    z_half = z_k + lam_k (z_0 - z_k) - alpha F(z_k),  z_{k+1} = z_k + lam_k (z_0 - z_k) - alpha F(z_half),
    F(theta1, theta2) = (-grad_1 R, grad_2 R),  lam_k = 1/(k+2) by default.

    Spec: GAME-12 (E-75: reaching the true NE needs vanishing anchor weights; the text's anchored SimGAD
    with vanishing ``lam_k`` is not enough on bilinear games, whose SimGAD step is expansive). Monotone
    games with L-Lipschitz F need ``alpha <= 1/(8L)`` for the guarantee. Shapes as in :func:`simgad`.
    """
    _check_step(alpha, num_steps)
    if lam is not None and not callable(lam):  # a constant ran, and does not reach the equilibrium (E-75)
        raise ValueError(f"lam must be a vanishing schedule k -> lam_k (or None for 1/(k+2)), got the constant "
                         f"{lam!r}; a constant anchor weight is anchored_simgad / regularised_equilibrium")
    schedule: Callable[[int], float] = lam if lam is not None else (lambda k: 1.0 / (k + 2.0))
    x0, y0 = _check_thetas(theta1, theta2)
    grad = _shape_checked(grad, x0, y0)

    def step(k: int, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        lk = _lam_at(schedule, k)
        gx, gy = grad(x, y)
        xh = x + lk * (x0 - x) + alpha * gx
        yh = y + lk * (y0 - y) - alpha * gy
        gx, gy = grad(xh, yh)
        return x + lk * (x0 - x) + alpha * gx, y + lk * (y0 - y) - alpha * gy

    return _run(step, x0, y0, num_steps)


def regularised_equilibrium(grad: GradientField, theta1: FloatArray, theta2: FloatArray, *, alpha: float,
                            lam: float, tol: float = 1e-12,
                            payoff_scale: float | None = None) -> tuple[FloatArray, FloatArray]:
    """Fixed point of constant-``lam`` anchored SimGAD = a stationary point of the regularised game.

    lam theta1 = alpha grad_1 R(theta1, theta2),  lam theta2 = -alpha grad_2 R(theta1, theta2),
    i.e. a stationary point of R - lam/(2 alpha)|theta1|^2 + lam/(2 alpha)|theta2|^2   (E-75)

    It is that regularised game's saddle (equilibrium) when R is concave-convex (the monotone case of E-75);
    otherwise it need not be one: R = x^2 + 2 x y + y^2 / 2, alpha = lam = 0.1 converges to (0, 0), a minimum
    of the regularised payoff in the maximiser's direction (tests/reference/test_games.py).

    Spec: GAME-12. Solved by ``scipy.optimize.root`` (hybr) from ``(theta1, theta2)``; raises
    ``NotConvergedError`` if the residual exceeds ``tol`` relative to the scale of its terms,
    ``max(1, max |lam z|, max |alpha grad|, alpha payoff_scale)``, where ``payoff_scale`` bounds the terms the
    field sums internally (max |M| for a matrix game: :func:`softmax_game_gradient` and :func:`bilinear_gradient`
    carry it, and it is read from them by default). An absolute 1e-12 failed a converged solve on payoffs of 1e6:
    residual 1.9e-11, 9e-17 relative to alpha max |M| (the softmax saturates there, so the gradient itself is
    small while its terms are not). ``alpha`` finite > 0, ``lam`` in (0, 1), ``tol`` finite > 0, finite
    thetas of the shapes ``grad`` takes (typed errors, as the dynamics check them). Returns ``([n1], [n2])``.
    """
    _check_alpha(alpha)
    lm = _real(lam, "lam")
    if not 0.0 < lm < 1.0:
        raise ValueError(f"need 0 < lam < 1 (a constant anchor weight), got lam={lam!r}")
    t = _real(tol, "tol")
    if not (np.isfinite(t) and t > 0.0):
        raise ReferenceError_(f"tol must be a finite number > 0, got {tol!r}")
    inner = _real(getattr(grad, "payoff_scale", 0.0) if payoff_scale is None else payoff_scale, "payoff_scale")
    if not (np.isfinite(inner) and inner >= 0.0):
        raise ReferenceError_(f"payoff_scale must be a finite number >= 0, got {payoff_scale!r}")
    x0, y0 = _check_thetas(theta1, theta2)
    grad = _shape_checked(grad, x0, y0)
    n1 = x0.shape[0]

    def terms(z: FloatArray) -> tuple[FloatArray, FloatArray]:
        gx, gy = grad(z[:n1], z[n1:])
        return lm * z, alpha * np.concatenate([gx, -gy])

    def residual(z: FloatArray) -> FloatArray:
        anchor, step = terms(z)
        out: FloatArray = anchor - step
        return out

    sol = root(residual, np.concatenate([x0, y0]), method="hybr", tol=t)
    z = np.asarray(sol.x, dtype=np.float64)
    anchor, step = terms(z)
    res = float(np.max(np.abs(anchor - step)))
    scale = max(1.0, float(np.max(np.abs(anchor))), float(np.max(np.abs(step))), alpha * inner)
    if not res <= t * scale:
        raise NotConvergedError(f"regularised equilibrium: residual {res:.3e} > tol * scale = {t:g} * {scale:.3g} "
                                f"({sol.message})")
    return z[:n1], z[n1:]


def linearised_iteration_matrix(grad: GradientField, theta1: FloatArray, theta2: FloatArray, *,
                                method: str, alpha: float, lam: float = 0.0, h: float = 1e-6) -> FloatArray:
    """Jacobian of one step of ``method`` at ``(theta1, theta2)`` (central differences of the field).

    SimGAD: I + alpha J_F;  EG: I + alpha J_F + alpha^2 J_F^2;  anchored: (1 - lam) I + alpha J_F,
    where J_F is the Jacobian of (grad_1 R, -grad_2 R). Its spectral radius decides local convergence.
    The EG form is the exact step Jacobian at a stationary point (F = 0) or for a linear field; elsewhere
    the true EG Jacobian is I + alpha J_F(z~) (I + alpha J_F(z)) with z~ the look-ahead point.

    Spec: GAME-08, GAME-11, GAME-12. ``method`` in {"simgad", "extragradient", "anchored"}.
    Returns ``[n1+n2, n1+n2]``. The closed forms are checked symbolically in proofs_checks/check_games.py.
    Checked as the dynamics check them: ``alpha`` finite > 0, ``lam`` in [0, 1) for "anchored" (as
    :func:`anchored_simgad`), finite thetas (``InvalidGameError``), ``h`` finite > 0 (``ReferenceError_``): the
    relative step, ``h max(1, |z_j|)`` on coordinate j (a fixed step was off by 2.4e-4 at |z| = 1e6 and gave the
    identity at 1e10, where z + h rounds to z).
    """
    if method not in ("simgad", "extragradient", "anchored"):
        raise ValueError(f"method must be 'simgad', 'extragradient' or 'anchored', got {method!r}")
    _check_alpha(alpha)
    if method == "anchored":
        _lam_at(lam, 0)
    elif _real(lam, "lam") != 0.0:  # SimGAD and EG have no anchor: a lam given to them was ignored silently
        raise ValueError(f"lam={lam!r} is only read by method='anchored', not by {method!r}")
    hh = _real(h, "h")
    if not (np.isfinite(hh) and hh > 0.0):
        raise ReferenceError_(f"h must be a finite number > 0 (the central-difference step), got {h!r}")
    x0, y0 = _check_thetas(theta1, theta2)
    grad = _shape_checked(grad, x0, y0)
    n1, n = x0.shape[0], x0.shape[0] + y0.shape[0]
    z0 = np.concatenate([x0, y0])

    def field(z: FloatArray) -> FloatArray:
        gx, gy = grad(z[:n1], z[n1:])
        out: FloatArray = np.concatenate([gx, -gy])
        return out

    J = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = hh * max(1.0, abs(float(z0[j])))  # relative to |z_j|: a fixed 1e-6 vanished at |z| = 1e10
        zp, zm = z0 + e, z0 - e
        width = float(zp[j] - zm[j])  # the step actually taken, after rounding
        J[:, j] = (field(zp) - field(zm)) / width
    eye = np.eye(n)
    if method == "simgad":
        out: FloatArray = eye + alpha * J
    elif method == "extragradient":
        out = eye + alpha * J + alpha**2 * J @ J
    else:  # "anchored" (the method was checked above)
        out = (1.0 - lam) * eye + alpha * J
    return out


def strategy_distance(traj: MinimaxTrajectory, p_star: FloatArray, q_star: FloatArray) -> FloatArray:
    """Distance of the *strategies* to an equilibrium, ``||mu(theta1_k) - p*||_1 + ||mu(theta2_k) - q*||_1``.

    Spec: GAME-08, GAME-11, GAME-12 (open choice 20: measure on strategies, not on theta, because
    mu(theta + c 1) = mu(theta)). ``traj``: ``K+1`` iterates -> ``[K+1]``.
    """
    def softmax_rows(T: FloatArray) -> FloatArray:
        Z = np.exp(T - T.max(axis=1, keepdims=True))
        out: FloatArray = Z / Z.sum(axis=1, keepdims=True)
        return out

    P, Q = softmax_rows(traj.theta1), softmax_rows(traj.theta2)
    # a p* of the wrong length broadcast (shape (1,) gave a plausible distance) and one off the simplex was taken
    p_star = _check_distribution(p_star, P.shape[1], "p_star")
    q_star = _check_distribution(q_star, Q.shape[1], "q_star")
    out: FloatArray = np.abs(P - p_star).sum(axis=1) + np.abs(Q - q_star).sum(axis=1)
    return out


def self_play_simgad(M: FloatArray, theta: FloatArray, *, alpha: float, num_steps: int,
                     lam: float | Callable[[int], float] = 0.0) -> FloatArray:
    """Self-play reduction of (anchored) SimGAD on an antisymmetric game: one parameter vector.

    theta_next = (1 - lam) theta + alpha grad_1 R(theta, [[theta]])   (L2209-L2217)

    The gradient is partial, with the opponent copy frozen (E-78: R(theta, theta) = 0 identically); it equals
    SimGAD only from identical initialisations theta1_0 = theta2_0 (E-77).
    Spec: GAME-16, GAME-17. ``M``: ``[A, A]`` antisymmetric, ``theta``: ``[A]`` -> ``[K+1, A]``. ``lam`` is a
    constant in [0, 1) or a schedule ``k -> lam_k`` (k = 0, 1, ...), as in :func:`anchored_simgad`.
    """
    M = _check_matrix(M)
    if not is_antisymmetric(M):
        raise InvalidGameError("self-play reduction needs an antisymmetric payoff (M = -M^T)")
    _check_step(alpha, num_steps)
    _lam_at(lam, 0)  # a bad constant fails even when num_steps = 0
    MT = np.ascontiguousarray(M.T)
    t = _check_vector(theta, M.shape[0], "theta").copy()
    out = np.empty((num_steps + 1, t.shape[0]))
    out[0] = t
    for k in range(num_steps):
        lk = _lam_at(lam, k)
        g1, _ = _grad_R_unchecked(M, MT, t, t)
        t = (1.0 - lk) * t + alpha * g1
        out[k + 1] = t
    return _readonly(out)
