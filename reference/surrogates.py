"""PPO's clipped surrogate, KL estimators k1/k2/k3 and GRPO group advantages (TR-13, TR-14, TR-49, TR-51).

Spec: TR-13, TR-14, TR-49, TR-51 (errata E-68, E-69; open choices 9, 10, 12).

Conventions (once for the module; the scalable PyTorch package mirrors them):

* Everything is elementwise on arrays of any common (broadcastable) shape, typically [T, B] for PPO
  and [G, N] (G groups of N rollouts, group along the last axis) for GRPO.
* ``ratio`` is ell = pi_theta(a | s) / pi_old(a | s), computed by callers as exp(log pi - log pi_old)
  (open choice 12). ``eps`` is the clip range eps_clip (0.2 in the text); GRPO's std stabiliser is the
  separate ``eps_std`` = 1e-4 (E-68).
* KL estimators take ``log_rho = log p_ref(x) - log p(x)`` for samples x ~ p, and estimate
  KL(p || p_ref) (Schulman's k1, k2, k3).
* Hyperparameters are keyword-only. Bad values raise :class:`~reference.errors.ReferenceError_`
  naming them; bad shapes :class:`~reference.errors.ShapeError`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.errors import ReferenceError_, ShapeError
from reference.mdp import FloatArray, _real, _real_array

__all__ = [
    "GRPO_EPS_STD",
    "PPO_EPS_CLIP",
    "categorical_kl",
    "grpo_advantages",
    "kl_estimator_expectations",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "ppo_clip_gradient_is_zero",
    "ppo_clip_objective",
    "ppo_clip_piecewise",
    "ppo_clip_ratio_gradient",
    "validate_clip_eps",
]

PPO_EPS_CLIP: float = 0.2
"""The clip range of Schulman et al. (TR-17)."""

GRPO_EPS_STD: float = 1e-4
"""The std stabiliser of GRPO (TR-51; E-69: the value of TRL's ``GRPOTrainer``)."""


def validate_clip_eps(eps: float) -> float:
    """PPO's clip range eps as a float in [0, 1) (TR-14); ``ReferenceError_`` otherwise ("0.2" and True are
    refused, not parsed). Shared with the torch twins (``scalable.core.losses``)."""
    e = _real(eps, "eps (clip range)")
    if not (0.0 <= e < 1.0):
        raise ReferenceError_(f"eps (clip range) must lie in [0, 1), got {eps!r}")
    return e


_eps = validate_clip_eps  # the short name this module's code uses


def _ratio_adv(ratio: ArrayLike, adv: ArrayLike) -> tuple[FloatArray, FloatArray]:
    r = np.asarray(ratio, dtype=np.float64)
    a = np.asarray(adv, dtype=np.float64)
    try:
        np.broadcast_shapes(r.shape, a.shape)
    except ValueError as exc:
        raise ShapeError(f"ratio {list(r.shape)} and advantage {list(a.shape)} do not broadcast") from exc
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ReferenceError_(f"ratio must be finite and >= 0 (a probability ratio; exp of a log-ratio above ~709 "
                              f"overflows), got min {np.min(r)!r}, max {np.max(r)!r}")
    if not np.all(np.isfinite(a)):
        raise ReferenceError_("advantages must be finite")
    return r, a


def ppo_clip_objective(ratio: ArrayLike, adv: ArrayLike, *, eps: float) -> FloatArray:
    """PPO's clipped objective C_eps(ell, A) = min(ell A, clip(ell, 1 - eps, 1 + eps) A), elementwise.

    Spec: TR-14, TR-16 (compact form). Shapes: ratio, adv broadcastable -> broadcast shape.
    """
    e = _eps(eps)
    r, a = _ratio_adv(ratio, adv)
    return np.asarray(np.minimum(r * a, np.clip(r, 1.0 - e, 1.0 + e) * a), dtype=np.float64)


def ppo_clip_piecewise(ratio: ArrayLike, adv: ArrayLike, *, eps: float) -> FloatArray:
    """The text's piecewise form: min(ell, 1 + eps) A if A >= 0, max(ell, 1 - eps) A if A < 0.

    Spec: TR-13 (equal to :func:`ppo_clip_objective` for every ell >= 0 and A, TR-14).
    Shapes: ratio, adv broadcastable -> broadcast shape.
    """
    e = _eps(eps)
    r, a = _ratio_adv(ratio, adv)
    return np.asarray(np.where(a >= 0, np.minimum(r, 1.0 + e) * a, np.maximum(r, 1.0 - e) * a),
                      dtype=np.float64)


def ppo_clip_gradient_is_zero(ratio: ArrayLike, adv: ArrayLike, *, eps: float) -> NDArray[np.bool_]:
    """Where dC_eps/d ell = 0: A = 0, or A > 0 and ell > 1 + eps, or A < 0 and ell < 1 - eps.

    Spec: TR-13. Shapes: ratio, adv broadcastable -> bool array of the broadcast shape.
    The clip only removes the incentive to move ell *further* in the direction that increases
    ell A; on the other side of 1 the unclipped term ell A is the minimum and the gradient is A.
    """
    e = _eps(eps)
    r, a = _ratio_adv(ratio, adv)
    return np.asarray((a == 0) | ((a > 0) & (r > 1.0 + e)) | ((a < 0) & (r < 1.0 - e)))


def ppo_clip_ratio_gradient(ratio: ArrayLike, adv: ArrayLike, *, eps: float) -> FloatArray:
    """dC_eps(ell, A)/d ell: A where the unclipped term is active, 0 on the clipped side.

    Spec: TR-13. At the kinks ell = 1 +- eps the one-sided derivative from inside the trust region
    (A) is returned. Shapes: ratio, adv broadcastable -> broadcast shape.
    """
    zero = ppo_clip_gradient_is_zero(ratio, adv, eps=eps)
    a = np.broadcast_to(np.asarray(adv, dtype=np.float64), zero.shape)
    return np.asarray(np.where(zero, 0.0, a), dtype=np.float64)


def kl_k1(log_rho: ArrayLike) -> FloatArray:
    """k1 = -log rho, rho = p_ref(x) / p(x), x ~ p: unbiased for KL(p || p_ref), can be negative.

    Spec: TR-49.
    """
    return np.asarray(-np.asarray(log_rho, dtype=np.float64), dtype=np.float64)


def kl_k2(log_rho: ArrayLike) -> FloatArray:
    """k2 = (log rho)^2 / 2: non-negative, biased (second-order accurate when p_ref ~ p).

    Spec: TR-49.
    """
    lr = np.asarray(log_rho, dtype=np.float64)
    return np.asarray(0.5 * lr * lr, dtype=np.float64)


_K3_SERIES_MAX: float = 0.1
"""kl_k3 uses its Taylor series for |log rho| < this, expm1(log rho) - log rho above (see :func:`kl_k3`)."""

_K3_COEFFS: tuple[float, ...] = tuple(1.0 / math.factorial(k) for k in range(10, 1, -1))
"""1/10!, 1/9!, ..., 1/2! (Python's int / int is correctly rounded): Horner coefficients of kl_k3's series."""


def kl_k3(log_rho: ArrayLike) -> FloatArray:
    """k3 = rho - 1 - log rho: non-negative and unbiased for KL(p || p_ref) (supp p_ref in supp p).

    With x = log rho, k3 = e^x - 1 - x = sum_{k >= 2} x^k / k!, computed two ways:

    * |x| < 0.1: the series to x^10 by Horner, x (x (1/2! + x (1/3! + ... + x / 10!))). expm1(x) - x
      cancels there (at x = 1e-10 it lost 6 digits; at x = 1e-16 it gave 0 instead of 5e-33). The
      truncation error is at most 1.01 |x|^11 / 11! (the tail is bounded by a geometric series of ratio
      |x| / 12) against k3 >= 0.967 x^2 / 2 (|x| <= 0.1), i.e. a relative 2.1 |x|^9 / 11! <= 5.3e-17 < eps / 4
      (eps = 2^-52; 9 terms: with 8, up to x^9, it would be 2.2 |x|^8 / 10! = 6e-15, above eps). Horner's
      sum is dominated by 1/2 (the other terms add at most 3.5% to it), so it and the two products cost a few
      roundings; the product is taken as x (x p), not (x x) p, so that x p ~ x / 2 stays a normal float
      (|x| >= 2^-1021) and only the last rounding can underflow (at most half a subnormal ulp, for
      |x| < ~2e-154). x (x p) is a product of two factors of the same sign (p > 0.48), hence exactly >= 0.
    * |x| >= 0.1: expm1(x) - x. The subtraction amplifies expm1's relative error (~1 ulp) by
      |expm1(x)| / k3 <= 1 + 2 / |x| (21 at |x| = 0.1, -> 1 as x -> +inf, < 1 for x < -2), so the relative
      error is at most about 22 ulp; the exact value is >= 0 and the result is clamped at 0 so that a
      last-bit rounding cannot make it negative.

    Spec: TR-49.
    """
    lr = np.asarray(log_rho, dtype=np.float64)
    small = np.abs(lr) < _K3_SERIES_MAX
    x = np.where(small, lr, 0.0)
    p = np.full_like(x, _K3_COEFFS[0])
    for c in _K3_COEFFS[1:]:
        p = p * x + c
    series = x * (x * p)
    with np.errstate(invalid="ignore"):
        direct = np.maximum(np.expm1(lr) - lr, 0.0)
    direct = np.where(lr == np.inf, np.inf, direct)  # inf - inf: the limit is +inf (it was NaN)
    return np.asarray(np.where(small, series, direct), dtype=np.float64)


def _simplex(name: str, p: ArrayLike) -> FloatArray:
    x = np.asarray(p, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ShapeError(f"{name} must have a non-empty last axis, got shape {list(x.shape)}")
    if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(np.abs(x.sum(axis=-1) - 1.0) > 1e-9):
        raise ReferenceError_(f"{name} must lie on the simplex; sums {np.atleast_1d(x.sum(axis=-1))[:5]!r}")
    # Rows within the 1e-9 tolerance are renormalised (as reference.mdp.validate_policy does), so that every
    # quantity is computed from a proper distribution: unnormalised rows gave KL < 0 (e.g. -8e-10).
    return np.asarray(x / x.sum(axis=-1, keepdims=True), dtype=np.float64)


def categorical_kl(p: ArrayLike, q: ArrayLike) -> FloatArray:
    """KL(p || q) = sum_x p(x) log(p(x) / q(x)) over the last axis (0 log 0 = 0; inf if q = 0 < p).

    Rows must be finite, >= 0 and sum to 1 within 1e-9 (else :class:`ReferenceError_`); both are
    renormalised to sum 1 first. KL(p || p) is exactly 0 (identical rows give identical logs), and the
    result is clamped at 0 (the exact KL of two distributions is >= 0; rounding must not make it negative).

    Spec: TR-49.
    """
    pp, qq = _simplex("p", p), _simplex("q", q)
    if pp.shape != qq.shape:
        raise ShapeError(f"p and q must have the same shape, got {list(pp.shape)} and {list(qq.shape)}")
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 - log 0 = NaN where p = 0: masked out
        terms = np.where(pp > 0, pp * (np.log(pp) - np.log(qq)), 0.0)
    return np.asarray(np.maximum(terms.sum(axis=-1), 0.0), dtype=np.float64)


def kl_estimator_expectations(p: ArrayLike, p_ref: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Exact E_{x~p}[k1], E[k2], E[k3] for categorical p, p_ref over the last axis (no sampling).

    E[k1] = KL(p || p_ref); E[k3] = KL - p_ref(outside supp p), so k3 is unbiased iff supp p_ref is inside
    supp p (the case with the same support); E[k2] >= 0 is biased. Where p > 0 and p_ref = 0 the KL is +inf and
    the estimators have no finite expectation: ``ReferenceError_``. (Until 2026-12-07 every support difference
    was refused, also supp p strictly inside supp p_ref, the one finite case that shows k3's bias.)
    Shapes: p, p_ref [..., K] -> three arrays [...].

    Spec: TR-49.
    """
    pp, qq = _simplex("p", p), _simplex("p_ref", p_ref)
    if pp.shape != qq.shape:
        raise ShapeError(f"p and p_ref must have the same shape, got {list(pp.shape)} and {list(qq.shape)}")
    if np.any((pp > 0) & (qq == 0)):
        raise ReferenceError_("p puts mass where p_ref is 0: KL(p || p_ref) = +inf, the estimators' expectations "
                              "are not finite")
    live = pp > 0
    with np.errstate(divide="ignore"):
        lr = np.where(live, np.log(np.where(live, qq, 1.0)) - np.log(np.where(live, pp, 1.0)), 0.0)
    e = [np.asarray(np.sum(np.where(live, pp * k(lr), 0.0), axis=-1), dtype=np.float64)
         for k in (kl_k1, kl_k2, kl_k3)]
    return e[0], e[1], e[2]


def grpo_advantages(
    rewards: ArrayLike, *, eps_std: float = GRPO_EPS_STD, scale_by_std: bool = True
) -> FloatArray:
    """GRPO group advantages A^(i) = (r^(i) - mean(r)) / (std(r) + eps_std) over the last axis.

    Spec: TR-49, TR-51 (E-68, E-69; open choices 9, 10). ``std`` is the sample std (ddof = 1, as
    ``torch.std`` in TRL). Groups whose rewards are all equal (max = min) get exactly 0 (no float
    cancellation residue), and so does a group of N = 1. ``scale_by_std=False`` is the Dr. GRPO
    variant r - mean(r) (same exact-zero rules). Shapes: rewards [..., N] -> [..., N].
    """
    r = _real_array(rewards, "rewards")  # strings such as '1' were parsed
    if r.ndim < 1:
        raise ShapeError(f"rewards must have a group axis (last), got shape {list(r.shape)}")
    e = _real(eps_std, "eps_std")  # '0.5' and True were accepted
    if not (e > 0.0 and np.isfinite(e)):
        raise ReferenceError_(f"eps_std must be a positive finite number, got {eps_std!r}")
    if not np.all(np.isfinite(r)):
        raise ReferenceError_("rewards must be finite")
    n = r.shape[-1]
    if n <= 1:
        return np.zeros_like(r)
    # Each group is scaled by a power of two 2^k >= max|r| first (exact), so that the mean and the squares of
    # the std cannot overflow (they did beyond |r| ~ 1.3e154): A = (r' - mean r') / (std r' + eps_std 2^-k).
    # Centring is the corrected two-pass algorithm: the rounded mean's error is removed by subtracting the mean of
    # the deviations, so that nearly equal rewards keep their exact deviations (r = [1, 1 + 2^-52] gave [0, 2.2e-12]
    # for the exact [-1.1e-12, 1.1e-12]: the rounded mean's error divided by eps_std); the std is that of the
    # corrected deviations.
    _, k = np.frexp(np.max(np.abs(r), axis=-1, keepdims=True))
    rs = np.ldexp(r, -k)
    centred = rs - rs.mean(axis=-1, keepdims=True)
    centred = centred - centred.mean(axis=-1, keepdims=True)
    if scale_by_std:
        std = np.sqrt(np.sum(centred * centred, axis=-1, keepdims=True) / (n - 1))
        with np.errstate(over="ignore"):
            eps_scaled = np.ldexp(e, -k)
            # a subnormal group (max |r| < ~6e-313): e 2^-k overflows, and std 2^k << e, so A = (r - mean) / e to
            # within a relative 1e-300; computed as (r' - mean') / e scaled back, one rounding into the result
            tiny = np.ldexp(centred / e, k)
        out = np.where(np.isinf(eps_scaled), tiny, centred / (std + eps_scaled))
    else:
        with np.errstate(over="ignore"):
            out = np.ldexp(centred, k)
        if not np.all(np.isfinite(out)):
            raise ReferenceError_("r - mean(r) overflows float64 (rewards near the largest float)")
    flat = np.max(r, axis=-1, keepdims=True) == np.min(r, axis=-1, keepdims=True)
    return np.asarray(np.where(flat, 0.0, out), dtype=np.float64)
