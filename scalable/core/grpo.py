"""GRPO for token sequences in PyTorch: group advantages, the k3 KL estimator and the GRPO objective.

Spec: TR-47, TR-49, TR-51 (errata E-68, E-69; open choices 9, 10, 11). Torch twins of
``reference.surrogates.grpo_advantages``, ``reference.surrogates.kl_k3`` and
``reference.grpo.grpo_objective``, property-tested equal to them in float64
(``tests/scalable/test_grpo.py``), for the language-model training loops.

Conventions (those of :mod:`reference.grpo`):

* A batch is time-major [T, B] (T tokens of B sampled completions), B = G * N laid out group-major:
  completion b belongs to group b // N, and all N completions of a group answer the same prompt (E-68).
  ``valid`` [T, B] marks the generated tokens t < T^(i); ``rewards`` [B] is each completion's terminal
  (verifiable) reward.
* A^(i) = (r^(i) - mean r) / (std r + eps_std) within each group, sample std (ddof = 1); groups with
  equal rewards, and groups of one, get exactly 0 (TR-51). ``scale_by_std=False`` is Dr. GRPO;
  ``center=False, scale_by_std=False`` is PPO without a baseline, A^(i) = r^(i) (TR-47).
* The objective is maximised; :func:`grpo_loss` is its negative, for an optimiser. The advantages are
  computed from the rewards inside and carry no gradient (they are data); ``log_prob_old`` and
  ``log_prob_ref`` are detached (stop-gradient), so only ``log_prob_new`` is differentiated.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from reference.mdp import _real, validate_flag, validate_int
from reference.surrogates import (  # kl_k3's series: one definition, the reference's
    _K3_COEFFS,
    _K3_SERIES_MAX,
    GRPO_EPS_STD,  # the std stabiliser of TRL's GRPOTrainer (E-69): one constant
)
from scalable.core.advantages import _flags
from scalable.core.losses import ppo_clip_objective

__all__ = ["GRPO_EPS_STD", "grpo_advantages", "grpo_loss", "grpo_objective", "kl_k3"]


def grpo_advantages(rewards: Tensor, *, eps_std: float = GRPO_EPS_STD, scale_by_std: bool = True) -> Tensor:
    """A^(i) = (r^(i) - mean r) / (std r + eps_std) over the last axis (the group), ddof = 1.

    Spec: TR-49, TR-51. Equal-reward groups and groups of one give exact zeros. Shapes: [..., N] -> [..., N].
    """
    if rewards.dim() < 1:
        raise ValueError(f"rewards must have a group axis (last), got shape {list(rewards.shape)}")
    if rewards.dtype == torch.bool or rewards.is_complex():  # as the reference: booleans are not rewards
        raise ValueError(f"rewards must be real numbers, got dtype {rewards.dtype}")
    if not rewards.is_floating_point():  # integer rewards (0/1 verifiers) as the reference reads them: float64
        rewards = rewards.to(torch.float64)
    e = _real(eps_std, "eps_std")  # "0.5" and True were read through float()
    if not (e > 0.0 and e < float("inf")):
        raise ValueError(f"eps_std must be a positive finite number, got {eps_std!r}")
    r = rewards.detach()
    if not bool(torch.isfinite(r).all()):
        raise ValueError("rewards must be finite")
    if r.shape[-1] <= 1:
        return torch.zeros_like(r)
    # scaled per group by a power of two 2^k >= max|r| (exact), as the reference does, so that the std's squares
    # cannot overflow (float64 beyond |r| ~ 1.3e154, float32 beyond ~ 1.8e19): A = (r' - mean) / (std r' + e 2^-k)
    _, k = torch.frexp(r.abs().amax(dim=-1, keepdim=True))
    rs = torch.ldexp(r, -k)
    # corrected two-pass centring, as the reference: the rounded mean's error is removed by subtracting the mean
    # of the deviations ([1, 1 + 2^-52] gave [0, 2.2e-12] for the exact [-1.1e-12, 1.1e-12]; in float32,
    # [1, 1 + 2^-23] gave [0, 1.2e-3] for [-6e-4, 6e-4]); the std is that of the corrected deviations
    centred = rs - rs.mean(dim=-1, keepdim=True)
    centred = centred - centred.mean(dim=-1, keepdim=True)
    if scale_by_std:
        std = torch.sqrt((centred * centred).sum(dim=-1, keepdim=True) / (r.shape[-1] - 1))
        eps_scaled = torch.ldexp(torch.full_like(rs[..., :1], e), -k)
        # a subnormal group: e 2^-k overflows and std 2^k << e, so A = (r - mean) / e, scaled back (as the reference)
        out = torch.where(torch.isinf(eps_scaled), torch.ldexp(centred / e, k), centred / (std + eps_scaled))
    else:
        out = torch.ldexp(centred, k)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"r - mean(r) overflows {r.dtype} (rewards near the largest float)")
    flat = r.amax(dim=-1, keepdim=True) == r.amin(dim=-1, keepdim=True)
    return torch.where(flat, torch.zeros_like(out), out)


def kl_k3(log_rho: Tensor) -> Tensor:
    """k3 = rho - 1 - log rho (Schulman's KL estimator), computed as the reference does (no cancellation).

    With log rho = log pi_ref - log pi_new per token it is non-negative and unbiased for
    KL(pi_new || pi_ref). Elementwise; differentiable in ``log_rho``. For |x| < 0.1 (x = log rho, the usual
    size of a token's log-ratio) the Taylor series to x^10 by Horner, x (x p(x)), whose value and autograd
    derivative carry no cancellation; above, expm1(x) - x clamped at 0. expm1(x) - x alone lost about
    log2(2 / x^2) bits near 0 (in float32 a relative error of 1e-4 at x = 1e-3), and so did its gradient
    e^x - 1. The series branch reads x only where |x| < 0.1 (0 elsewhere), so that it cannot overflow and
    its gradient is 0 where it is not used.
    """
    small = log_rho.abs() < _K3_SERIES_MAX
    xs = torch.where(small, log_rho, torch.zeros_like(log_rho))
    p = torch.full_like(xs, _K3_COEFFS[0])
    for c in _K3_COEFFS[1:]:
        p = p * xs + c
    direct = torch.clamp(torch.expm1(log_rho) - log_rho, min=0.0)
    direct = torch.where(log_rho == math.inf, log_rho, direct)  # inf - inf: the limit is +inf, as the reference
    return torch.where(small, xs * (xs * p), direct)


def grpo_objective(
    log_prob_new: Tensor,
    log_prob_old: Tensor,
    rewards: Tensor,
    valid: Tensor,
    *,
    group_size: int,
    eps: float = 0.2,
    eps_std: float = GRPO_EPS_STD,
    center: bool = True,
    scale_by_std: bool = True,
    beta: float = 0.0,
    log_prob_ref: Tensor | None = None,
    length_norm: bool = False,
) -> Tensor:
    """(1/B) sum_i w_i sum_{t<T^(i)} [C_eps(pi_new/pi_old (token t of i), A^(i)) - beta k3_t^(i)].

    Spec: TR-47, TR-49 (w_i = 1/T^(i) with ``length_norm``, else 1; k3 only with beta > 0, then
    ``log_prob_ref`` is required). Twin of ``reference.grpo.grpo_objective``. Shapes: log-probs and
    valid [T, B], rewards [B] -> scalar (differentiable in ``log_prob_new``).
    """
    if log_prob_new.dim() != 2 or log_prob_old.shape != log_prob_new.shape or valid.shape != log_prob_new.shape \
            or rewards.shape != log_prob_new.shape[1:]:
        raise ValueError(f"need log_prob_new, log_prob_old, valid [T, B] and rewards [B]; got "
                         f"{list(log_prob_new.shape)}, {list(log_prob_old.shape)}, {list(valid.shape)}, "
                         f"{list(rewards.shape)}")
    b = log_prob_new.shape[1]
    if b == 0:
        raise ValueError("the batch is empty (B = 0): the mean over completions is undefined")
    group_size = validate_int(group_size, "group_size", minimum=1)  # True ran as groups of one
    if b % group_size:
        raise ValueError(f"group_size {group_size!r} must be >= 1 and divide B = {b}")
    beta = _real(beta, "beta")
    if not (math.isfinite(beta) and beta >= 0.0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    center = validate_flag(center, "center")  # the string "no" ran as True
    scale_by_std = validate_flag(scale_by_std, "scale_by_std")
    length_norm = validate_flag(length_norm, "length_norm")
    if rewards.dtype == torch.bool or rewards.is_complex():  # as the reference: booleans are not rewards
        raise ValueError(f"rewards must be real numbers, got dtype {rewards.dtype}")
    va = _flags("valid", valid, valid.shape)  # as the reference: .to(bool) read a mask of 0.5 as a real token
    # the advantages in float64 whatever the log-probs' precision (they are B numbers): computed in bfloat16 or
    # float32, close rewards rounded together before centring ([1, 1.001] in bfloat16 gave A = 0, no update)
    r = rewards.detach().to(torch.float64)
    if center:
        adv = grpo_advantages(r.reshape(b // group_size, group_size), eps_std=eps_std,
                              scale_by_std=scale_by_std).reshape(b)
    elif scale_by_std:
        raise ValueError("scale_by_std=True needs center=True (GRPO); center=False is PPO without baseline")
    else:
        adv = r
        if not bool(torch.isfinite(adv).all()):
            raise ValueError("advantages must be finite (rewards with center=False)")
    adv = adv.to(log_prob_new.dtype)
    zero = torch.zeros((), dtype=log_prob_new.dtype)
    ratio = torch.exp(torch.where(va, log_prob_new - log_prob_old.detach(), zero))
    per_tok = ppo_clip_objective(ratio, adv[None, :], eps=eps)
    if beta > 0.0:
        if log_prob_ref is None:
            raise ValueError("beta > 0 needs log_prob_ref (the reference policy's log-probs)")
        if log_prob_ref.shape != log_prob_new.shape:
            raise ValueError(f"log_prob_ref must have shape {list(log_prob_new.shape)}, "
                             f"got {list(log_prob_ref.shape)}")
        per_tok = per_tok - beta * kl_k3(torch.where(va, log_prob_ref.detach() - log_prob_new, zero))
    per_roll = torch.where(va, per_tok, zero).sum(dim=0)
    if length_norm:
        per_roll = per_roll / va.sum(dim=0).clamp(min=1).to(per_roll.dtype)
    out = per_roll.mean()
    # one synchronisation; the reasons are looked for only on the failing path. An infinite ratio is refused even
    # where the clip makes the objective finite (A > 0), as the reference refuses it
    if not bool(torch.isfinite(out) & torch.isfinite(ratio).all()):
        _refuse_non_finite(out, log_prob_new, log_prob_old, log_prob_ref, va, beta)
    return out


def _refuse_non_finite(out: Tensor, ln: Tensor, lo: Tensor, lr: Tensor | None, va: Tensor, beta: float) -> None:
    """Raise the reference's error for a non-finite objective, or return where -inf is the value (beta > 0 and
    pi_new = 0 on a valid step: k3 = +inf), as ``reference.grpo.grpo_objective`` does."""
    lnv, lov = ln.detach()[va], lo.detach()[va]
    if bool(torch.isnan(lnv).any() | torch.isnan(lov).any()):
        raise ValueError("log_prob_new and log_prob_old must not be NaN on the valid steps")
    if not bool(torch.isfinite(torch.exp(lnv - lov)).all()):
        raise ValueError("ratio must be finite (a probability ratio; exp of the log-ratio overflows "
                         f"{ln.dtype})")
    if beta > 0.0 and lr is not None and not bool(torch.isfinite(lr.detach()[va]).all()):
        raise ValueError("log_prob_ref must be finite on the valid steps")
    if bool(out == -math.inf) and beta > 0.0 and bool(torch.isneginf(lnv).any()):
        return
    raise ValueError(f"the GRPO objective overflows {ln.dtype} ({float(out)}): rewards or advantages too large "
                     f"for the sum over tokens and completions")


def grpo_loss(log_prob_new: Tensor, log_prob_old: Tensor, rewards: Tensor, valid: Tensor, *, group_size: int,
              **kwargs: object) -> Tensor:
    """-:func:`grpo_objective` (minimised by the optimiser); same arguments."""
    return -grpo_objective(log_prob_new, log_prob_old, rewards, valid, group_size=group_size,
                           **kwargs)  # type: ignore[arg-type]
