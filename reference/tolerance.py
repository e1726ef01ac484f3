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
"""

from __future__ import annotations

import numpy as np

__all__ = ["EPS", "SAFETY", "discount_condition", "tolerance", "value_scale"]

EPS: float = float(np.finfo(np.float64).eps)
"""Machine epsilon of float64 (2.22e-16)."""

SAFETY: float = 8.0
"""Constant factor covering the few extra roundings around the dominant operation."""


def tolerance(scale: float, *, terms: int = 1, condition: float = 1.0) -> float:
    """Absolute tolerance ``SAFETY * terms * condition * eps * scale`` (see the module docstring).

    ``scale`` is a bound on the magnitude of the compared quantities (e.g. ``R / (1 - gamma)`` for
    values), ``terms`` the length of the longest sum involved, ``condition`` the condition number of
    any linear solve involved.
    """
    if not (scale >= 0.0 and terms >= 1 and condition >= 1.0):
        raise ValueError(f"tolerance: need scale >= 0, terms >= 1, condition >= 1; got {scale}, {terms}, "
                         f"{condition}")
    return SAFETY * terms * condition * EPS * max(scale, np.finfo(np.float64).tiny)


def discount_condition(gamma: float, horizon: float | None = None) -> float:
    """Bound on the inf-norm condition number of ``I - gamma P`` for row-stochastic ``P``.

    ``||I - gamma P|| <= 1 + gamma`` and ``||(I - gamma P)^{-1}|| <= 1 / (1 - gamma)``. At gamma = 1
    pass ``horizon``, a bound on the expected time to termination (``||(I - P_TT)^{-1}||_inf``).
    """
    if gamma < 1.0:
        return (1.0 + gamma) / (1.0 - gamma)
    if horizon is None:
        raise ValueError("discount_condition: gamma = 1 needs the expected-termination-time bound `horizon`")
    return 2.0 * max(horizon, 1.0)


def value_scale(max_abs_reward: float, gamma: float, horizon: float | None = None) -> float:
    """MDP-19 / BEL-05 bound on |G_0|: ``R / (1 - gamma)``, or ``R * horizon`` at gamma = 1."""
    if gamma < 1.0:
        return max_abs_reward / (1.0 - gamma)
    if horizon is None:
        raise ValueError("value_scale: gamma = 1 needs the expected-termination-time bound `horizon`")
    return max_abs_reward * max(horizon, 1.0)
