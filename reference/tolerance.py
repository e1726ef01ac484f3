"""Tolerances for floating-point comparisons, derived in one place.

Every exact check in the test-suite compares two float64 computations of the same quantity. We never
pick a tolerance "until green"; we use the standard forward-error model of floating point:

* a sum or dot product of ``n`` terms has absolute error at most ``n * eps * sum |x_i y_i|``
  (Higham, *Accuracy and Stability of Numerical Algorithms*, eq. 3.5); we bound ``sum |x_i y_i|``
  by the ``scale`` of the quantities;
* solving a linear system with condition number ``kappa`` adds a relative error ``O(kappa * eps)``.
  For ``I - gamma P`` with ``P`` row-stochastic, ``kappa_inf <= (1 + gamma) / (1 - gamma)``.

``tolerance(scale, terms=n, condition=kappa)`` returns ``SAFETY * n * kappa * eps * scale`` with
``SAFETY = 8``: a constant factor for the handful of rounding steps around the dominant operation.

``counted_tolerance(scale, roundings=n, eps=...)`` is the bound without that factor, for a computation
whose roundings are all counted: Higham's ``gamma_n * scale`` with ``gamma_n = n u / (1 - n u)`` and the unit
roundoff ``u = eps / 2`` (Higham, Lemma 3.1), for float64 (``EPS``) or float32 (``EPS32``) arithmetic.

``mean_confidence_radius(samples, comparisons=m, delta=...)`` is the statistical counterpart: the half-width of
m simultaneous Student-t intervals for means estimated from few independent runs (a normal 4 sigma rule with
sigma estimated from 10 runs fails a correct learner about 50 times more often than it claims).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EPS",
    "EPS32",
    "SAFETY",
    "U32",
    "U64",
    "central_difference",
    "counted_tolerance",
    "discount_condition",
    "mean_confidence_radius",
    "tolerance",
    "value_scale",
]

EPS: float = float(np.finfo(np.float64).eps)
"""Machine epsilon of float64 (2.22e-16)."""

EPS32: float = float(np.finfo(np.float32).eps)
"""Machine epsilon of float32 (2^-23 = 1.19e-7), twice its unit roundoff, as ``EPS`` is for float64."""

U64: float = EPS / 2.0
"""Unit roundoff of float64 (2^-53): the relative error of one correctly rounded operation."""

U32: float = EPS32 / 2.0
"""Unit roundoff of float32 (2^-24)."""

SAFETY: float = 8.0
"""Constant factor covering the few extra roundings around the dominant operation."""


def tolerance(scale: float, *, terms: int = 1, condition: float = 1.0) -> float:
    """Absolute tolerance ``SAFETY * terms * condition * eps * scale`` (see the module docstring).

    ``scale`` is a bound on the magnitude of the compared quantities (e.g. ``R / (1 - gamma)`` for
    values), ``terms`` the length of the longest sum involved, ``condition`` the condition number of
    any linear solve involved.

    Spec: none (the test tolerances, see the module docstring).
    """
    if not (np.isfinite(scale) and scale >= 0.0 and terms >= 1 and np.isfinite(condition) and condition >= 1.0):
        raise ValueError(f"tolerance: need a finite scale >= 0, terms >= 1, a finite condition >= 1; got {scale}, "
                         f"{terms}, {condition} (an infinite tolerance would pass any comparison)")
    return SAFETY * terms * condition * EPS * max(scale, np.finfo(np.float64).tiny)


def counted_tolerance(scale: float, *, roundings: int, eps: float = EPS) -> float:
    """Absolute bound ``gamma_n * scale``, ``gamma_n = n u / (1 - n u)``, ``u = eps / 2``, ``n = roundings``.

    Higham's Lemma 3.1: a result reached through at most ``n`` roundings, each a relative error ``<= u`` of
    a quantity bounded by ``scale`` and carried to the result with a factor ``<= 1``, is within
    ``gamma_n * scale`` of the exact value. Every rounding is counted (inputs converted to a narrower format
    included), so no ``SAFETY`` factor is applied. ``eps``: ``EPS`` (float64) or ``EPS32`` (float32).

    Spec: none (the test tolerances, see the module docstring).
    """
    if not (np.isfinite(eps) and eps > 0.0):
        raise ValueError(f"counted_tolerance: eps must be a finite number > 0 (a machine epsilon), got {eps!r}")
    if isinstance(roundings, bool) or not float(roundings).is_integer():
        raise ValueError(f"counted_tolerance: roundings must be a whole number, got {roundings!r}")
    u = eps / 2.0
    if not (np.isfinite(scale) and scale >= 0.0 and roundings >= 0 and roundings * u < 1.0):
        raise ValueError(f"counted_tolerance: need a finite scale >= 0, 0 <= roundings < 1 / u; got {scale}, "
                         f"{roundings}")
    return roundings * u / (1.0 - roundings * u) * scale


def central_difference(f: Callable[[NDArray[np.float64]], float], x: NDArray[np.float64], *, h: float,
                       f_error: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Central differences ``D(h) = (f(x + h e_i) - f(x - h e_i)) / (2h)`` of ``f`` at ``x``, and a bound on
    ``|D(h) - df/dx_i|``; both shaped like ``x``. ``f_error`` bounds the rounding error of one evaluation of f.

    Truncation, estimated by Richardson: ``D(h) - f' = c h^2 + d h^4 + ...`` (``c`` = the third derivative
    over 6), so ``D(2h) - D(h) = 3 c h^2 + 15 d h^4 + ...`` and ``|c h^2| = |D(2h) - D(h)| / 3`` up to the
    ``h^4`` terms; the stated factor 2 on that estimate covers them while they are below 1/11 of the
    ``h^2`` term (``|a + b| <= 2 |a + 5 b|`` for ``|b| <= |a| / 11``), and where ``c ~ 0`` they are
    ``O(h^4)`` (``h^4 <= 1e-16`` at the steps used here), far below the rounding term.
    Rounding: a computed ``D(H)`` is within ``f_error / H`` of its exact-arithmetic value, so the computed
    ``D(2h) - D(h)`` is off by at most ``1.5 f_error / h``; the step ``x_i + h`` itself rounds, a relative
    error ``EPS (|x_i| + h) / h`` of ``D``. Bound:
    ``2 (|D(2h) - D(h)| + 1.5 f_error / h) / 3 + f_error / h + EPS (|x_i| + h) / h |D(h)|``.
    Nothing in it is tuned to the function: a derivative that is wrong by more than the bound fails. It is a
    bound only under the condition above, which is not checked: where the h^2 and h^4 terms cancel at this h
    (D(2h) - D(h) small while D(h) - f' is not), or where f oscillates on the scale of h, the true error can
    exceed it; it is then an estimate. Use smooth test functions and a step well inside their scale.

    Spec: none (the test tolerances, see the module docstring).
    """
    if not (np.isfinite(h) and h > 0.0 and np.isfinite(f_error) and f_error >= 0.0):
        raise ValueError(f"central_difference: need a finite step h > 0 and a finite f_error >= 0, got {h!r}, "
                         f"{f_error!r}")
    x = np.asarray(x, dtype=np.float64)
    d1 = np.zeros_like(x)
    d2 = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        for step, out in ((h, d1), (2.0 * h, d2)):
            e = np.zeros_like(x)
            e[idx] = step
            out[idx] = (f(x + e) - f(x - e)) / (2.0 * step)
    rounding = f_error / h
    bound = (2.0 * (np.abs(d2 - d1) + 1.5 * rounding) / 3.0 + rounding
             + EPS * (np.abs(x) + h) / h * np.abs(d1))
    return d1, np.asarray(bound, dtype=np.float64)


def discount_condition(gamma: float, horizon: float | None = None) -> float:
    """Bound on the inf-norm condition number of ``I - gamma P`` for row-stochastic ``P``.

    ``||I - gamma P|| <= 1 + gamma`` and ``||(I - gamma P)^{-1}|| <= 1 / (1 - gamma)``. At gamma = 1
    pass ``horizon``, a bound on the expected time to termination (``||(I - P_TT)^{-1}||_inf``).

    Spec: none (the test tolerances, see the module docstring).
    """
    _check_gamma_horizon("discount_condition", gamma, horizon)
    if gamma < 1.0:
        return (1.0 + gamma) / (1.0 - gamma)
    if horizon is None:
        raise ValueError("discount_condition: gamma = 1 needs the expected-termination-time bound `horizon`")
    return 2.0 * max(horizon, 1.0)


def _check_gamma_horizon(name: str, gamma: float, horizon: float | None) -> None:
    """gamma in (0, 1] and, if given, a finite horizon > 0 (gamma = 1.5 or NaN took the gamma = 1 branch, a
    negative gamma gave a condition number below 1, a negative horizon was read as 1)."""
    if not (0.0 < gamma <= 1.0):
        raise ValueError(f"{name}: gamma must lie in (0, 1], got {gamma!r}")
    if horizon is not None and not (np.isfinite(horizon) and horizon > 0.0):
        raise ValueError(f"{name}: horizon must be a finite number > 0, got {horizon!r}")


def value_scale(max_abs_reward: float, gamma: float, horizon: float | None = None) -> float:
    """MDP-19 / BEL-05 bound on |G_0|: ``R / (1 - gamma)``, or ``R * horizon`` at gamma = 1."""
    _check_gamma_horizon("value_scale", gamma, horizon)
    if not (np.isfinite(max_abs_reward) and max_abs_reward >= 0.0):
        raise ValueError(f"value_scale: max_abs_reward must be a finite number >= 0, got {max_abs_reward!r}")
    if gamma < 1.0:
        return max_abs_reward / (1.0 - gamma)
    if horizon is None:
        raise ValueError("value_scale: gamma = 1 needs the expected-termination-time bound `horizon`")
    return max_abs_reward * max(horizon, 1.0)


def mean_confidence_radius(samples: NDArray[np.float64], *, comparisons: int = 1,
                           delta: float = 1e-4) -> NDArray[np.float64]:
    """Half-width of a two-sided confidence interval for the mean of each column of ``samples`` [R, ...].

    ``t_{R-1}^{-1}(1 - delta / (2 m)) * sd / sqrt(R)``, sd with ddof = 1 and m = ``comparisons``: Student's t
    with R - 1 degrees of freedom, because sd is estimated from the same R independent runs (inventory open
    choice 22's "4 sigma / sqrt(n)" is the normal quantile, valid when R is large), and a Bonferroni correction,
    so that all m intervals hold together with probability >= 1 - delta. Exact for normal samples; for the
    final iterates of a stochastic approximation (sums of many small independent increments) the normal
    model is the stated approximation. Returns the shape of ``samples[0]``. ``ValueError`` for R < 2,
    m < 1 or delta outside (0, 1).

    Spec: none (the statistical tolerance of sampled checks, inventory open choice 22).
    """
    from scipy import stats

    x = np.asarray(samples, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError(f"mean_confidence_radius: needs at least 2 runs (axis 0), got shape {x.shape}")
    if isinstance(comparisons, bool) or not isinstance(comparisons, int | np.integer) or comparisons < 1:
        raise ValueError(f"mean_confidence_radius: comparisons must be an int >= 1, got {comparisons!r}")
    if not (0.0 < delta < 1.0):
        raise ValueError(f"mean_confidence_radius: delta must be in (0, 1), got {delta!r}")
    r = x.shape[0]
    q = float(stats.t.isf(delta / (2.0 * int(comparisons)), r - 1))
    return np.asarray(q * x.std(axis=0, ddof=1) / np.sqrt(r), dtype=np.float64)
