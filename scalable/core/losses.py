"""Losses of the training loops: PPO clip, value regression, entropy, A2C policy loss, stop-gradient TD.

Spec: PG-28, PG-38, PG-48, TR-13, TR-14, TR-15, TR-16, EVAL-11 (errata E-46, E-57; open choices 8, 12,
14, 17).

Conventions:

* Losses are *minimised*; ``[[x]]`` (stop-gradient) is ``x.detach()`` (open choice 17). Every target
  (``y``, ``R``) and every advantage that multiplies ``log pi`` is detached inside the loss, so callers
  cannot forget it (E-46).
* ``reduction`` is ``"mean"`` (default: the mean over all elements), ``"sum"`` or ``"none"``
  (elementwise). For the policy losses the mean is open choice 8's mean over all N T samples. For
  :func:`value_loss` it departs from open choice 8, which keeps the text's per-trajectory 1/T^(i) (TR-15):
  the loops regress on fixed-length segments cut across episodes, where an unfinished episode has no T^(i),
  and weight every sample equally as the public implementations do (CleanRL, SB3);
  ``reference.advantages.value_regression_loss`` is the text's per-trajectory weighting. The per-sample
  inputs of a loss must all have the *same* shape, typically [T, B] or a flat minibatch [M]: a value
  head's [M, 1] against targets [M] would broadcast to [M, M] and give a wrong loss, so mismatched shapes
  raise :class:`reference.errors.ShapeError`.
* :func:`ppo_clip_objective` is the twin of ``reference.surrogates.ppo_clip_objective`` (elementwise,
  no detaching, no reduction), property-tested equal in float64.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from reference.errors import ShapeError
from reference.mdp import validate_gamma
from reference.surrogates import validate_clip_eps
from scalable.core.advantages import _flags

__all__ = [
    "Reduction",
    "a2c_policy_loss",
    "entropy_loss",
    "ppo_clip_loss",
    "ppo_clip_objective",
    "td_loss",
    "td_target",
    "value_loss",
]

Reduction = Literal["mean", "sum", "none"]


def _reduce(x: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(**tensors: Tensor | None) -> None:
    """ShapeError unless the given tensors (None skipped) share one shape (no broadcasting between samples)."""
    given = {k: v for k, v in tensors.items() if v is not None}
    shapes = {k: tuple(v.shape) for k, v in given.items()}
    if len(set(shapes.values())) > 1:
        shown = ", ".join(f"{k} {list(s)}" for k, s in shapes.items())
        raise ShapeError(f"per-sample inputs must have the same shape (they would broadcast into a wrong loss): "
                         f"{shown}")


def ppo_clip_objective(ratio: Tensor, adv: Tensor, *, eps: float) -> Tensor:
    """PPO's clipped objective C_eps(ell, A) = min(ell A, clip(ell, 1 - eps, 1 + eps) A), elementwise.

    Spec: TR-14, TR-16. Twin of ``reference.surrogates.ppo_clip_objective`` on finite input (equal there); no
    detach, no reduction, and no input check (per minibatch on the training path): a ratio of inf or NaN gives
    NaN or -inf here (inf * 0 = NaN at A = 0) where the reference raises; the agents check the parameters after
    each update (``TrainingDiverged``) and the advantages of each rollout. Shapes: ratio, adv broadcastable ->
    broadcast shape.
    """
    e = validate_clip_eps(eps)
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1.0 - e, 1.0 + e) * adv)


def ppo_clip_loss(
    logp_new: Tensor, logp_old: Tensor, adv: Tensor, *, eps: float, reduction: Reduction = "mean"
) -> Tensor:
    """PPO policy loss -C_eps(ell, [[A]]), ell = exp(log pi_new - [[log pi_old]]) (open choice 12).

    Spec: TR-15, TR-16. The loss is the mean of -C_eps over the samples (open choice 8); advantages are
    used as given (normalise them before the call if wanted). Shapes: logp_new, logp_old, adv [...] -> scalar
    (or [...] with reduction="none").
    """
    _same_shape(logp_new=logp_new, logp_old=logp_old, adv=adv)
    ratio = torch.exp(logp_new - logp_old.detach())
    return _reduce(-ppo_clip_objective(ratio, adv.detach(), eps=eps), reduction)


def value_loss(
    values: Tensor,
    targets: Tensor,
    *,
    old_values: Tensor | None = None,
    clip_eps: float | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Value regression (1/2) (V_phi(s_t) - [[R_t]])^2, optionally clipped as in PPO implementations.

    Spec: TR-15 with erratum E-57 (R_t = the per-episode return-to-go, e.g. ``value_targets``). Clipped
    (``clip_eps`` and ``old_values`` given): (1/2) max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)
    with ``[[V_old]]``. Shapes: values, targets (, old_values) [...] -> scalar (or [...]).
    """
    _same_shape(values=values, targets=targets, old_values=old_values)
    r = targets.detach()
    sq = (values - r) ** 2
    if clip_eps is not None:
        if old_values is None:
            raise ValueError("value_loss: clip_eps needs old_values")
        if not clip_eps > 0:
            raise ValueError(f"value_loss: clip_eps must be > 0, got {clip_eps!r}")
        vo = old_values.detach()
        clipped = vo + torch.clamp(values - vo, -clip_eps, clip_eps)
        sq = torch.maximum(sq, (clipped - r) ** 2)
    elif old_values is not None:
        raise ValueError("value_loss: old_values given without clip_eps")
    return _reduce(0.5 * sq, reduction)


def entropy_loss(entropy: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """-H: add ``beta * entropy_loss(H)`` to a minimised loss for A3C's entropy bonus (open choice 14).

    Shapes: entropy [...] -> scalar (or [...]).
    """
    return _reduce(-entropy, reduction)


def a2c_policy_loss(log_prob: Tensor, advantages: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """A2C / REINFORCE-with-baseline policy loss -log pi_theta(a_t | s_t) [[A_t]].

    Spec: PG-28 (its gradient is -[[A_t]] grad log pi(a_t | s_t), the policy-gradient term), PG-38, E-46
    (the advantage (Q_hat - V_phi(s_t)) is stop-gradiented). Shapes: log_prob, advantages [...] -> scalar.
    """
    _same_shape(log_prob=log_prob, advantages=advantages)
    return _reduce(-log_prob * advantages.detach(), reduction)


def td_target(rewards: Tensor, next_values: Tensor, terminated: Tensor, *, gamma: float) -> Tensor:
    """Stop-gradient TD target y_t = [[r_t + gamma V(s_{t+1}) (1 - terminated_t)]] (V(term) = 0, MDP-11).

    Spec: EVAL-11 (option 3), open choices 2 and 17. Shapes: rewards, next_values, terminated [...] -> [...].
    """
    g = validate_gamma(gamma)
    _same_shape(rewards=rewards, next_values=next_values, terminated=terminated)
    term = _flags("terminated", terminated, terminated.shape)  # 0/1 or bool: 0.5 is refused, not read as True
    nv = next_values.detach()
    boot = torch.where(term, torch.zeros_like(nv), nv)
    return (rewards + g * boot).detach()


def td_loss(
    values: Tensor,
    rewards: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    *,
    gamma: float,
    reduction: Reduction = "mean",
) -> Tensor:
    """Semi-gradient TD loss (1/2) (V(s_t) - [[r_t + gamma V(s_{t+1})]])^2 with V(term) = 0.

    Spec: EVAL-11 option 3: its gradient is the semi-gradient (V(s_t) - y_t) grad V(s_t), not the full
    residual gradient delta (grad V(s_t) - gamma grad V(s_{t+1})). Shapes: values, rewards, next_values,
    terminated [...] -> scalar (or [...]).
    """
    y = td_target(rewards, next_values, terminated, gamma=gamma)
    _same_shape(values=values, targets=y)
    return _reduce(0.5 * (values - y) ** 2, reduction)
