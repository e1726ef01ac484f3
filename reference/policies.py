"""Policy heads for policy gradients: tabular / categorical softmax and the tanh-Gaussian.

Spec: PG-03, PG-07, PG-09, PG-11, PG-48, PG-50, PG-51 (erratum E-51), open choice 15.

Conventions (once for the module):

* Tabular softmax: the parameter ``theta`` has the shape of a policy, [S, A] over S+ (``term`` is the
  last row, see :mod:`reference.mdp`); pi_theta(a | s) = exp(theta[s, a]) / sum_b exp(theta[s, b]).
  The row of ``term`` is a parameter that no gradient ever touches (the dummy action of PG-04 is never
  scored: steps t >= T are masked). The parameter dimension is D = S * A; gradients keep the shape [S, A].
* The score (grad log pi) of the tabular softmax is closed form,
  d log pi(a | s) / d theta[s', b] = 1[s' = s] (1[b = a] - pi(b | s)).
* The tanh-Gaussian head (PG-50): a = tanh(z), z ~ N(mu, sigma^2) with sigma = exp(log_std) (the text's
  tau_theta, renamed because tau is the trajectory, E-51). Its log-density is evaluated from the stored
  pre-squash z (open choice 15), never from atanh(a), which is infinite at a = +-1:
  log pi(a) = log N(z; mu, sigma^2) - log(1 - tanh(z)^2), with the Jacobian term in the stable form
  log(1 - tanh(z)^2) = 2 (log 2 - z - softplus(-2 z)). All functions here are pure and elementwise on
  arrays (no MDP), so the torch twins in ``scalable`` can be property-tested against them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from reference.errors import InvalidPolicyError, ShapeError
from reference.mdp import FloatArray, validate_indices

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "categorical_entropy",
    "categorical_log_prob",
    "clamp_log_std",
    "expected_score",
    "log1m_tanh2",
    "log_softmax",
    "score_norm_sq",
    "softmax",
    "softmax_score",
    "softmax_score_full",
    "tanh_gaussian_grad_log_prob",
    "tanh_gaussian_log_prob",
    "tanh_gaussian_log_prob_of_action",
    "tanh_gaussian_log_prob_text",
    "tanh_gaussian_sample",
]

LOG_STD_MIN: float = -5.0
"""Lower clamp of the log-std tau_theta (open choice 15)."""
LOG_STD_MAX: float = 2.0
"""Upper clamp of the log-std tau_theta (open choice 15)."""

_HALF_LOG_2PI: float = 0.5 * math.log(2.0 * math.pi)
_LOG2: float = math.log(2.0)


# ============================================================================ categorical / softmax
def log_softmax(logits: ArrayLike) -> FloatArray:
    """log softmax over the last axis, computed with the max subtracted (finite for all finite logits).

    Spec: PG-48. Shapes: [..., A] -> [..., A].
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ShapeError(f"logits need a non-empty last (action) axis, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidPolicyError("logits must be finite; got a NaN or inf entry")
    m = x.max(axis=-1, keepdims=True)
    with np.errstate(over="ignore"):
        z = x - m  # a gap beyond the float range is -inf: log pi = -inf, pi = 0 (the limit, not an error)
    # log sum exp z = log(1 + s), s the sum over every entry but one maximal one: log1p keeps the relative
    # accuracy of log pi(dominant) = -log1p(s) ~ -s (log(1 + s) gave 0 for [0, -38], exact -3.1e-17, and a 2.6 %
    # error in the entropy)
    e = np.exp(z)
    np.put_along_axis(e, np.argmax(x, axis=-1)[..., None], 0.0, axis=-1)
    return np.asarray(z - np.log1p(e.sum(axis=-1, keepdims=True)), dtype=np.float64)


def softmax(logits: ArrayLike) -> FloatArray:
    """Softmax over the last axis: pi(a | s) = exp(theta[s, a]) / sum_b exp(theta[s, b]).

    Spec: PG-48 (the head f_theta(s) in the simplex Delta_{|A|}, E-50). Shapes: [..., A] -> [..., A].
    """
    return np.asarray(np.exp(log_softmax(logits)), dtype=np.float64)


def categorical_log_prob(logits: ArrayLike, actions: ArrayLike) -> FloatArray:
    """log (f_theta(s))_a = log softmax(logits)[a] for a batch ("backprop on log (f_theta(s_t))_{a_t}").

    Spec: PG-48. Shapes: logits [..., A], actions int [...] -> [...]. Raises InvalidPolicyError naming
    an action outside 0..A-1 or not an integer (0.9 is refused, never truncated to 0; integral floats such
    as 2.0 are read as 2, as :func:`reference.mdp.validate_actions` does).
    """
    lp = log_softmax(logits)
    n_actions = lp.shape[-1]
    if np.shape(actions) != lp.shape[:-1]:
        raise ShapeError(f"actions must have shape {lp.shape[:-1]}, got {np.shape(actions)}")
    act = validate_indices(actions, n_actions, name="actions", what="action", error=InvalidPolicyError)
    return np.asarray(np.take_along_axis(lp, act[..., None], axis=-1)[..., 0], dtype=np.float64)


def categorical_entropy(logits: ArrayLike) -> FloatArray:
    """Entropy H(pi(. | s)) = -sum_a pi(a | s) log pi(a | s) (the A3C entropy bonus of open choice 14).

    Shapes: [..., A] -> [...]. Zero-probability actions contribute 0 (the limit p log p -> 0).

    Spec: PG-48.
    """
    lp = log_softmax(logits)  # -inf where a logit gap overflows (e.g. [1e308, -1e308])
    p = np.exp(lp)
    plogp = np.multiply(p, lp, out=np.zeros_like(p), where=p > 0.0)  # 0 log 0 = 0 (was 0 * -inf = NaN)
    return np.asarray(0.0 - plogp.sum(axis=-1), dtype=np.float64)


def softmax_score(theta: ArrayLike, states: ArrayLike, actions: ArrayLike) -> FloatArray:
    """The non-zero row of the tabular softmax score: grad_{theta[s, .]} log pi(a | s) = e_a - pi(. | s).

    Spec: PG-07, PG-48. d log pi(a | s) / d theta[s', b] = 1[s' = s] (1[b = a] - pi(b | s)).
    Shapes: theta [S, A]; states, actions int [...] -> [..., A] (the row s of the gradient; every other
    row is 0). A state outside 0..S-1 or not an integer raises ShapeError, such an action InvalidPolicyError
    (0.9 is refused, never truncated to 0; -1 is refused, never wrapped to the last row or action).
    """
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim != 2:
        raise ShapeError(f"theta must have shape (S, A), got {th.shape}")
    st = validate_indices(states, th.shape[0], name="states", what="state", error=ShapeError)
    act = validate_indices(actions, th.shape[1], name="actions", what="action", error=InvalidPolicyError)
    if st.shape != act.shape:
        raise ShapeError(f"states and actions must have the same shape, got {st.shape} and {act.shape}")
    pi = softmax(th)
    out = -pi[st]
    np.put_along_axis(out, act[..., None], np.take_along_axis(out, act[..., None], axis=-1) + 1.0, axis=-1)
    return np.asarray(out, dtype=np.float64)


def softmax_score_full(theta: ArrayLike, s: int, a: int) -> FloatArray:
    """The full score grad_theta log pi_theta(a | s) of the tabular softmax, shape [S, A].

    Spec: PG-07. Row s is e_a - pi(. | s); every other row is 0.
    """
    th = np.asarray(theta, dtype=np.float64)
    out = np.zeros_like(th)
    row = softmax_score(th, np.array(s), np.array(a))  # validates s and a (2.0 is 2; 0.9 is refused)
    out[int(s)] = row
    return out


def expected_score(theta: ArrayLike) -> FloatArray:
    """E_{a ~ pi(. | s)}[grad_{theta[s, .]} log pi(a | s)] = sum_a grad pi(a | s) = grad 1 = 0, per state.

    Spec: PG-09, PG-11 (the step "sum_a grad pi = grad 1 = 0"). Shapes: theta [S, A] -> [S, A]; row s is
    sum_a pi(a | s) (e_a - pi(. | s)), zero up to rounding.
    """
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim != 2:  # a 1-D theta raised a raw IndexError
        raise ShapeError(f"theta must have shape (S, A), got {th.shape}")
    pi = softmax(th)
    n_actions = th.shape[1]
    eye = np.eye(n_actions)
    return np.asarray(np.einsum("sa,sab->sb", pi, eye[None, :, :] - pi[:, None, :]), dtype=np.float64)


def score_norm_sq(theta: ArrayLike) -> FloatArray:
    """||grad_theta log pi(a | s)||^2 = ||e_a - pi(. | s)||^2 = (1 - pi(a | s))^2 + sum_{b != a} pi(b | s)^2.

    Spec: PG-19 with erratum E-31 (the squared norm is the trace-of-covariance weight w^2). Shapes:
    theta [S, A] -> [S, A]. Computed as (sum_{b != a} pi_b)^2 + sum_{b != a} pi_b^2, sums of positive terms
    only, so it keeps full relative precision for near-deterministic rows; the expanded form
    1 - 2 pi_a + ||pi||^2 cancels to 0 there (logits [0, -20]: 0 for 8.5e-18).
    """
    pi = softmax(theta)
    off = 1.0 - np.eye(pi.shape[-1])  # off[b, a] = 1[b != a]
    rest = pi @ off  # 1 - pi_a, without cancellation
    return np.asarray(rest * rest + (pi * pi) @ off, dtype=np.float64)


# ============================================================================ tanh-Gaussian
def log1m_tanh2(z: ArrayLike) -> FloatArray:
    """Numerically stable log(1 - tanh(z)^2) = 2 (log 2 - z - softplus(-2 z)).

    Spec: PG-51, erratum E-51 (the Jacobian term of a = tanh z), open choice 15. Derivation:
    1 - tanh^2 z = sech^2 z = 4 / (e^z + e^-z)^2 = 4 e^{-2z} / (1 + e^{-2z})^2. Finite for every finite z
    (about -2|z| + 2 log 2 for large |z|), where the naive form underflows to log 0 = -inf at |z| > ~19.
    Shapes: elementwise.
    """
    x = np.asarray(z, dtype=np.float64)
    return np.asarray(2.0 * (_LOG2 - x - np.logaddexp(0.0, -2.0 * x)), dtype=np.float64)


def clamp_log_std(log_std: ArrayLike, *, low: float = LOG_STD_MIN, high: float = LOG_STD_MAX) -> FloatArray:
    """Clamp the log-std tau_theta(s) to [low, high] (open choice 15: [-5, 2]).

    Spec: PG-50.
    """
    if not low < high:
        raise ValueError(f"clamp_log_std needs low < high, got {low!r}, {high!r}")
    return np.asarray(np.clip(np.asarray(log_std, dtype=np.float64), low, high), dtype=np.float64)


def tanh_gaussian_sample(
    rng: np.random.Generator, mu: ArrayLike, log_std: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Sample a = tanh(z), z ~ N(mu, variance = exp(2 log_std)); return (a, z) (store z, open choice 15).

    Spec: PG-50. Shapes: mu, log_std broadcast to [...]; a, z [...].
    """
    m = np.asarray(mu, dtype=np.float64)
    ls = np.asarray(log_std, dtype=np.float64)
    shape = np.broadcast_shapes(m.shape, ls.shape)
    z = m + np.exp(ls) * rng.standard_normal(shape)
    return np.asarray(np.tanh(z), dtype=np.float64), np.asarray(z, dtype=np.float64)


_PLAIN_LOG_STD: float = 700.0
"""Below this |log_std|, exp(-log_std) is a normal float (exp(709.78) overflows, exp(-708.4) is subnormal)."""


def _over_sigma(y: FloatArray, log_std: FloatArray) -> FloatArray:
    """y / sigma = y exp(-log_std), elementwise, without an overflow or underflow of exp(-log_std) itself.

    For |log_std| <= 700 the plain product; beyond, (y h) h with h = exp(-log_std / 2), a normal float up to
    |log_std| ~ 1416 (exp(-log_std) overflows below log_std = -709.78, which gave NaN = 0 * inf for y = 0 and
    inf for y = 1e-300, whose ratio is 2.2e8). y = 0 gives exactly 0 for every log_std. The result overflows
    only where y / sigma itself is beyond the float range.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        plain = y * np.exp(-log_std)
        h = np.exp(-0.5 * log_std)
        split = (y * h) * h
    out = np.where(np.abs(log_std) <= _PLAIN_LOG_STD, plain, split)
    return np.asarray(np.where(y == 0.0, 0.0, out), dtype=np.float64)


def tanh_gaussian_log_prob(z: ArrayLike, mu: ArrayLike, log_std: ArrayLike) -> FloatArray:
    """True log-density of a = tanh(z) at the stored pre-squash z, per action dimension.

    Spec: PG-51 with erratum E-51:
    log pi_theta(a | s) = -tau_theta(s) - (z - mu_theta(s))^2 / (2 e^{2 tau_theta(s)}) - (1/2) log 2 pi
    - log(1 - a^2),   with z = tanh^{-1}(a) and log(1 - a^2) = log1m_tanh2(z) (stable).
    Shapes: elementwise (broadcast); for an n-dimensional action (PG-52) sum over the last axis.
    """
    x = np.asarray(z, dtype=np.float64)
    m = np.asarray(mu, dtype=np.float64)
    ls = np.asarray(log_std, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to -inf is the limit, not an error
        normal = -ls - 0.5 * _over_sigma(x - m, ls) ** 2 - _HALF_LOG_2PI
        out = normal - log1m_tanh2(x)
    # |z| >= ~9e307: both terms are -inf (2 z overflows in the tanh term); the Gaussian's -z^2 / 2 dominates the
    # tanh term's -2 |z|, so the limit is -inf (inf - inf gave NaN)
    return np.asarray(np.where(np.isneginf(normal), -np.inf, out), dtype=np.float64)


def _squashed_action(a: ArrayLike) -> FloatArray:
    """``a`` as float64 if every entry lies in (-1, 1); else InvalidPolicyError naming the first bad entry
    (atanh is infinite at |a| = 1 and NaN beyond)."""
    av = np.asarray(a, dtype=np.float64)
    if np.any(np.abs(av) >= 1.0) or not np.all(np.isfinite(av)):
        bad = av[(np.abs(av) >= 1.0) | ~np.isfinite(av)].ravel()[0]
        raise InvalidPolicyError(f"tanh-Gaussian action a must lie in (-1, 1), got {float(bad)!r}; "
                                 "evaluate from the stored pre-squash z instead")
    return av


def tanh_gaussian_log_prob_of_action(a: ArrayLike, mu: ArrayLike, log_std: ArrayLike) -> FloatArray:
    """The same log-density as a function of the action a in (-1, 1) (z = atanh a); for quadrature only.

    Spec: PG-51. Raises InvalidPolicyError for |a| >= 1, where atanh is infinite (use the stored z).
    """
    return tanh_gaussian_log_prob(np.arctanh(_squashed_action(a)), mu, log_std)


def tanh_gaussian_log_prob_text(a: ArrayLike, mu: ArrayLike, log_std: ArrayLike) -> FloatArray:
    """The text's log-density without its "C": -tau - (tanh^{-1}(a) - mu)^2 / (2 e^{2 tau}).

    Spec: PG-51 as written (L1647). By erratum E-51 it differs from the true log-density by
    C(a) = -log(1 - a^2) - (1/2) log 2 pi, which depends on a but not on theta, so its theta-gradient is the
    true score. Shapes: elementwise; |a| < 1 (InvalidPolicyError otherwise, as
    :func:`tanh_gaussian_log_prob_of_action`).
    """
    av = _squashed_action(a)
    m = np.asarray(mu, dtype=np.float64)
    ls = np.asarray(log_std, dtype=np.float64)
    return np.asarray(-ls - 0.5 * _over_sigma(np.arctanh(av) - m, ls) ** 2, dtype=np.float64)


def tanh_gaussian_grad_log_prob(
    z: ArrayLike, mu: ArrayLike, log_std: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Closed-form (d/d mu, d/d log_std) of log pi_theta(a | s) at fixed z (the Jacobian term drops out).

    Spec: PG-50, PG-51: d/d mu = (z - mu) / sigma^2, d/d tau = -1 + (z - mu)^2 / sigma^2, sigma = e^tau.
    The chain rule through mu_theta(s), tau_theta(s) gives grad_theta. Shapes: elementwise.
    """
    x = np.asarray(z, dtype=np.float64)
    m = np.asarray(mu, dtype=np.float64)
    ls = np.asarray(log_std, dtype=np.float64)
    u = _over_sigma(x - m, ls)  # (z - mu) / sigma, finite for log_std < -709.8 too
    return (np.asarray(_over_sigma(u, ls), dtype=np.float64), np.asarray(-1.0 + u * u, dtype=np.float64))
