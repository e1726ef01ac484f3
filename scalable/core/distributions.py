"""Torch twins of the policy heads' densities in :mod:`reference.policies` (categorical, tanh-Gaussian).

Spec: PG-48, PG-50, PG-51 (errata E-50, E-51), open choice 15.

* Categorical (PG-48): pi(a | s) = softmax(logits)[a]; log-probs by ``log_softmax`` (finite for all
  finite logits).
* tanh-Gaussian (PG-50): a = tanh(z), z ~ N(mu, e^{2 log_std}); the log-density is evaluated from the
  stored pre-squash z (open choice 15), never from atanh(a) (infinite at a = +-1):
  log pi(a) = -log_std - (z - mu)^2 / (2 e^{2 log_std}) - (1/2) log 2 pi - log(1 - tanh(z)^2), with the
  Jacobian term in the stable form log(1 - tanh(z)^2) = 2 (log 2 - z - softplus(-2 z)) (E-51).
* Diagonal Gaussian (the common state-independent log-std head of PPO for MuJoCo): a = x ~ N(mu, sigma^2).

Per-dimension functions are elementwise (broadcasting); the ``*_sum`` helpers sum over the last
(action) axis, as an n-dimensional action needs (E-51). Samplers take an optional
``torch.Generator`` and are reparameterised (gradients flow to mu and log_std); store ``z.detach()``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "categorical_entropy",
    "categorical_log_prob",
    "categorical_sample",
    "clamp_log_std",
    "gaussian_entropy",
    "gaussian_log_prob",
    "gaussian_sample",
    "log1m_tanh2",
    "tanh_gaussian_log_prob",
    "tanh_gaussian_log_prob_sum",
    "tanh_gaussian_sample",
]

LOG_STD_MIN: float = -5.0
"""Lower clamp of the log-std tau_theta (open choice 15; = reference.policies.LOG_STD_MIN)."""
LOG_STD_MAX: float = 2.0
"""Upper clamp of the log-std tau_theta (open choice 15; = reference.policies.LOG_STD_MAX)."""

_HALF_LOG_2PI: float = 0.5 * math.log(2.0 * math.pi)
_LOG2: float = math.log(2.0)


# ============================================================================ categorical
def categorical_log_prob(logits: Tensor, actions: Tensor) -> Tensor:
    """log pi(a | s) = log_softmax(logits)[a] ("backprop on log (f_theta(s_t))_{a_t}").

    Spec: PG-48. Shapes: logits [..., A] float, actions [...] integer -> [...] (dtype of logits).
    Raises ValueError for an action outside 0..A-1, a non-integer action dtype, or mismatched shapes.
    """
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits need a non-empty last (action) axis, got shape {list(logits.shape)}")
    if actions.shape != logits.shape[:-1]:
        raise ValueError(f"actions must have shape {list(logits.shape[:-1])}, got {list(actions.shape)}")
    if actions.dtype.is_floating_point or actions.dtype.is_complex or actions.dtype == torch.bool:
        # .long() truncated 0.9 to action 0 and 1.7 to action 1 (the reference refuses them)
        raise ValueError(f"actions must be an integer tensor, got dtype {actions.dtype}")
    act = actions.long()
    n = logits.shape[-1]
    if act.numel() and (bool((act < 0).any()) or bool((act >= n).any())):
        bad = act[(act < 0) | (act >= n)].flatten()[0]
        raise ValueError(f"action {int(bad)} outside 0..{n - 1}")
    lp = F.log_softmax(logits, dim=-1)
    return lp.gather(-1, act.unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """H(pi(. | s)) = -sum_a pi(a | s) log pi(a | s) (A3C entropy bonus, open choice 14).

    Shapes: logits [..., A] -> [...]. Zero-probability actions contribute 0 (p log p -> 0), masked logits of
    -inf included: log p is replaced by 0 there before the product, so that the backward pass never forms
    0 * (-inf) (the gradient was NaN in every entry when the product was masked after it). A NaN or +inf
    logit, or a row of -inf only, raises ValueError.
    """
    _check_logits(logits)
    lp = F.log_softmax(logits, dim=-1)
    p = lp.exp()
    return -(p * torch.where(p > 0, lp, torch.zeros_like(lp))).sum(dim=-1)


def _check_logits(logits: Tensor) -> None:
    """ValueError for a NaN or +inf logit, or a row of -inf only: softmax is undefined there and the entropy
    came back NaN in silence (``reference.policies`` raises InvalidPolicyError for the same rows)."""
    if logits.numel() == 0:
        return
    bad = torch.isnan(logits) | torch.isposinf(logits)
    if bool(bad.any()):
        first = float(logits.detach()[bad].flatten()[0])
        raise ValueError(f"logits must be finite or -inf (a masked action), got {first}")
    if bool(torch.isneginf(logits).all(dim=-1).any()):
        raise ValueError("a row of logits is -inf everywhere: no action has positive probability")


def categorical_sample(logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Sample a ~ softmax(logits) per row; PG-48. Shapes: logits [..., A] -> int64 [...] on logits' device.
    Drawn on ``generator``'s device (moving the probabilities there) when the two differ."""
    probs = F.softmax(logits.detach(), dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    if generator is not None and generator.device != flat.device:  # e.g. a CPU run generator, CUDA logits
        a = torch.multinomial(flat.to(generator.device), 1, generator=generator).squeeze(-1).to(flat.device)
    else:
        a = torch.multinomial(flat, 1, generator=generator).squeeze(-1)
    return a.reshape(probs.shape[:-1])


# ============================================================================ tanh-Gaussian
def log1m_tanh2(z: Tensor) -> Tensor:
    """Numerically stable log(1 - tanh(z)^2) = 2 (log 2 - z - softplus(-2 z)); elementwise.

    Spec: PG-51, erratum E-51, open choice 15. Finite for every finite z (~ -2|z| + 2 log 2 for large |z|).
    softplus is evaluated as logaddexp(0, x): ``F.softplus`` switches to the identity above its default
    threshold 20 and would be off by log1p(e^-x) (2.8e-10 at z = -11), far above float64 rounding.
    """
    return 2.0 * (_LOG2 - z - torch.logaddexp(torch.zeros_like(z), -2.0 * z))


def clamp_log_std(log_std: Tensor, *, low: float = LOG_STD_MIN, high: float = LOG_STD_MAX) -> Tensor:
    """Clamp the log-std tau_theta(s) to [low, high] (open choice 15: [-5, 2]); elementwise."""
    if not low < high:
        raise ValueError(f"clamp_log_std needs low < high, got {low!r}, {high!r}")
    return torch.clamp(log_std, low, high)


def _over_sigma(y: Tensor, log_std: Tensor) -> Tensor:
    """y / sigma = y exp(-log_std) without an overflow of exp(-log_std) itself (twin of the reference's).

    For |log_std| up to 700 (float64; 80 in narrower formats) the plain product; beyond, (y h) h with
    h = exp(-log_std / 2). In float32 exp(90) overflows, and x = mu with log_std = -90 gave NaN (0 * inf) for
    an exact 89.08. Each branch only sees the log_stds it is used for, so the unused one cannot put a NaN into
    the gradient."""
    limit = 700.0 if log_std.dtype == torch.float64 else 80.0
    small = log_std.abs() <= limit
    plain = y * torch.exp(-torch.where(small, log_std, torch.zeros_like(log_std)))
    # y = 0 is exactly 0 whatever sigma (as the reference): beyond the split's range h itself overflows
    # (float64 log_std < -1419, float32 < -177) and 0 * inf was NaN at x = mu; the split branch reads log_std only
    # where y != 0, so that its gradient stays finite there too (0, the derivative at x = mu)
    split = ~small & (y != 0.0)
    h = torch.exp(-0.5 * torch.where(split, log_std, torch.zeros_like(log_std)))
    out = torch.where(small, plain, (y * h) * h)
    return torch.where(y == 0.0, torch.zeros_like(out), out)


def gaussian_log_prob(x: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
    """log N(x; mu, e^{2 log_std}) = -log_std - (x - mu)^2 / (2 e^{2 log_std}) - (1/2) log 2 pi; elementwise."""
    u = _over_sigma(x - mu, log_std)
    return -log_std - 0.5 * u * u - _HALF_LOG_2PI


def gaussian_entropy(log_std: Tensor) -> Tensor:
    """Entropy of N(mu, e^{2 log_std}): log_std + (1/2) log(2 pi e); elementwise (sum over the action axis)."""
    return log_std + (_HALF_LOG_2PI + 0.5)


def gaussian_sample(
    mu: Tensor, log_std: Tensor, *, generator: torch.Generator | None = None
) -> Tensor:
    """Reparameterised x = mu + e^{log_std} eps, eps ~ N(0, 1). Shapes: mu, log_std broadcast -> [...].
    eps is drawn on ``generator``'s device (a run's CPU generator stays the one random stream whatever
    device the network is on) and moved to mu's."""
    shape = (mu + log_std).shape  # the broadcast shape
    dev = generator.device if generator is not None else mu.device
    eps = torch.randn(shape, generator=generator, dtype=mu.dtype, device=dev).to(mu.device)
    return mu + torch.exp(log_std) * eps


def tanh_gaussian_sample(
    mu: Tensor, log_std: Tensor, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Sample a = tanh(z), z ~ N(mu, e^{2 log_std}); return (a, z) (store z, open choice 15).

    Spec: PG-50. Reparameterised. Shapes: mu, log_std broadcast to [...]; a, z [...].
    """
    z = gaussian_sample(mu, log_std, generator=generator)
    return torch.tanh(z), z


def tanh_gaussian_log_prob(z: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
    """True log-density of a = tanh(z) at the stored pre-squash z, per action dimension; elementwise.

    Spec: PG-51 with erratum E-51: log pi(a | s) = -tau - (z - mu)^2 / (2 e^{2 tau}) - (1/2) log 2 pi
    - log(1 - a^2), with log(1 - a^2) = :func:`log1m_tanh2` (z). Twin of
    ``reference.policies.tanh_gaussian_log_prob``. Shapes: z, mu, log_std broadcast -> [...]. At
    |z| >= ~9e307 (float64) both terms are -inf and the limit -inf is returned (it was NaN), as the reference.
    """
    normal = gaussian_log_prob(z, mu, log_std)
    out = normal - log1m_tanh2(z)
    return torch.where(torch.isneginf(normal), normal, out)


def tanh_gaussian_log_prob_sum(z: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
    """log pi(a | s) of an n-dimensional action: :func:`tanh_gaussian_log_prob` summed over the last axis.

    Spec: PG-51, PG-52 (E-51: sum over coordinates). Shapes: [..., n] -> [...].
    """
    return tanh_gaussian_log_prob(z, mu, log_std).sum(dim=-1)
