"""Torch twins of :mod:`reference.advantages`: TD residuals, TD(k) advantages, GAE, value targets.

Spec: TR-20, TR-29, TR-30, TR-31, TR-32, TR-33, TR-34 (errata E-57, E-59, E-62; open choice 13).

Same names, argument order and keyword-only hyperparameters as :mod:`reference.advantages`, on torch
tensors instead of numpy arrays; ``tests/scalable/test_core.py`` proves each equal to the reference in
float64 on random batches. The conventions are the reference's, repeated briefly:

* Batches are time-major ``[T, B]`` (B environments stepped T times). Row t: acting with ``a_t`` in
  ``s_t`` gave ``r_t`` and ``s_{t+1}``. ``values[t] = V(s_t)``, ``next_values[t] = V(s_{t+1})`` of the
  *true* next state (the final observation on truncation, never the reset state).
* ``terminated[t]``: ``s_{t+1} = term`` so ``V(s_{t+1}) = 0``. ``truncated[t]``: cut by a time limit,
  ``s_{t+1}`` is real and is bootstrapped. Both set: termination wins. Either flag ends the episode.
  The last row without a flag is the end of the rollout and is bootstrapped like a truncation.
* Flags are bool tensors (or 0/1 of any dtype). Float results have the device of ``rewards`` and torch's
  promoted dtype of the float inputs (the agents pass one dtype; float32 rewards with float64 values give
  float64). Nothing here detaches, and nothing writes in place into a tensor autograd has saved, so every
  result can be differentiated with respect to rewards and values; call under ``torch.no_grad()`` (as the
  agents do) when the results are targets. Empty batches (T = 0) give empty results.
* Bad shapes raise :class:`reference.errors.ShapeError`, bad hyperparameters
  :class:`reference.errors.ReferenceError_` (both subclass ``ValueError``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from reference.advantages import validate_lam
from reference.errors import ReferenceError_, ShapeError
from reference.mdp import validate_gamma, validate_k

__all__ = ["gae", "next_values_from_rollout", "td_k_advantages", "td_residuals", "value_targets"]


def _batch(name: str, x: Tensor, shape: torch.Size | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or (shape is not None and x.shape != shape):
        want = "[T, B]" if shape is None else f"{list(shape)}"
        raise ShapeError(f"{name} must have shape {want}, got {list(x.shape)}")
    if not x.is_floating_point():
        raise ReferenceError_(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def _flags(name: str, x: Tensor, shape: torch.Size) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.shape != shape:
        raise ShapeError(f"{name} must have shape {list(shape)}, got {list(x.shape)}")
    if x.dtype == torch.bool:
        return x
    if not bool(torch.all((x == 0) | (x == 1))):
        raise ReferenceError_(f"{name} must be boolean (0/1), got values {torch.unique(x)[:5].tolist()!r}")
    return x != 0


def _finite(name: str, out: Tensor) -> Tensor:
    """Refuse a NaN / inf in a result, checked on the result itself (every read is through torch.where, so an
    unread NaN cannot reach it): one reduction per call, raised as ReferenceError_ instead of training on NaN.
    The reference refuses the same NaNs that enter a result; for ``next_values_from_rollout`` it is stricter and
    also refuses a non-finite ``values`` entry that is never read (values[0], or a row after a termination),
    which the twin lets through (the result is the same; gae and td_residuals then refuse the NaN where values
    are read)."""
    if not bool(torch.isfinite(out).all()):
        rows = [tuple(int(i) for i in ix) for ix in torch.nonzero(~torch.isfinite(out))[:5].tolist()]
        raise ReferenceError_(f"{name} is not finite at rows (t, b) = {rows}: a NaN or inf in the rewards, values or "
                              f"next values that these rows read (or an overflow)")
    return out


def next_values_from_rollout(
    values: Tensor,
    last_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    v_final: Tensor | None = None,
) -> Tensor:
    """V(s_{t+1}) of the true next state for every row of a rollout; shape [T, B].

    ``next[t] = values[t+1]`` inside an episode, ``last_value`` at t = T-1, ``v_final[t]`` where
    ``truncated[t]`` (the final observed state) and 0 where ``terminated[t]`` (V(term) = 0, MDP-11).
    ``v_final`` is read only where truncated and not terminated (other entries may be NaN); it is
    required when any such row exists. Spec: TR-29, open choice 13.
    Shapes: values [T, B] float, last_value [B], terminated / truncated [T, B] bool, v_final [T, B] -> [T, B].
    """
    v = _batch("values", values)
    shape = v.shape
    if not isinstance(last_value, Tensor) or last_value.shape != shape[1:]:
        got = list(last_value.shape) if isinstance(last_value, Tensor) else type(last_value).__name__
        raise ShapeError(f"last_value must have shape [{shape[1]}], got {got}")
    term = _flags("terminated", terminated, shape)
    trunc = _flags("truncated", truncated, shape) & ~term
    if shape[0] == 0:  # an empty rollout: nothing to bootstrap
        return torch.zeros_like(v)
    # torch's promoted dtype of the inputs (float32 values with a float64 last_value or v_final gave float32)
    dt = torch.promote_types(v.dtype, last_value.dtype)
    if v_final is not None and isinstance(v_final, Tensor):
        dt = torch.promote_types(dt, v_final.dtype)
    nxt = torch.cat([v[1:].to(dt), last_value.to(dt)[None, :]], dim=0)
    if bool(trunc.any()):
        if v_final is None:
            rows = [tuple(int(i) for i in ix) for ix in torch.nonzero(trunc)[:5].tolist()]
            raise ReferenceError_(f"truncated rows (t, b) = {rows} need v_final to bootstrap")
        vf = _batch("v_final", v_final, shape)
        nxt = torch.where(trunc, vf.to(dt), nxt)
    return _finite("next_values", torch.where(term, torch.zeros_like(nxt), nxt))


def td_residuals(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    *,
    gamma: float,
) -> Tensor:
    """TD residual delta_t = r_t + gamma V(s_{t+1}) (1 - terminated_t) - V(s_t); shape [T, B].

    Spec: TR-29 (with V = V^pi, E[delta_t | s_t, a_t] = A^pi(s_t, a_t), TR-33).
    Shapes: rewards, values, next_values [T, B] float, terminated [T, B] bool -> [T, B] float.
    """
    g = validate_gamma(gamma)
    r = _batch("rewards", rewards)
    v = _batch("values", values, r.shape)
    nv = _batch("next_values", next_values, r.shape)
    term = _flags("terminated", terminated, r.shape)
    boot = torch.where(term, torch.zeros_like(nv), nv)
    # r - v first, as the reference does (exact for r = v; r + gamma V' alone can overflow)
    return _finite("the TD residual", (r - v) + g * boot)


def td_k_advantages(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    *,
    gamma: float,
    k: int | None,
) -> Tensor:
    """TD(k) advantage sum_{l<m} gamma^l r_{t+l} + gamma^m V(s_{t+m}) - V(s_t), m = k ∧ (rows left); [T, B].

    Spec: TR-20 (E-59), open choice 13. ``m`` is k capped by the rows up to and including the end of
    the episode (or rollout); ``V(s_{t+m}) = next_values[t+m-1]``, 0 if that row terminated. ``k=None``
    is TD(inf) (Monte Carlo return minus V(s_t), bootstrapped at truncation / rollout end). Computed
    from the rewards (not the residuals), vectorised over t and B, O(T k B).
    Shapes: rewards, values, next_values [T, B] float, terminated, truncated [T, B] bool -> [T, B].
    """
    g = validate_gamma(gamma)
    r = _batch("rewards", rewards)
    shape = r.shape
    v = _batch("values", values, shape)
    nv = _batch("next_values", next_values, shape)
    term = _flags("terminated", terminated, shape)
    done = term | _flags("truncated", truncated, shape)
    k = validate_k(k)  # an integer >= 1 or None: k = 1.7 is an error, not k = 1
    n_t = shape[0]
    kk = n_t if k is None else min(k, n_t)
    # accumulate in torch's promoted dtype (float32 rewards with float64 values: the sum was rounded to float32)
    dt = torch.promote_types(r.dtype, torch.promote_types(v.dtype, nv.dtype))
    r = r.to(dt)
    zero = torch.zeros_like(r)
    boot_row = torch.where(term, zero, nv.to(dt))
    out = zero.clone()
    alive = torch.ones(shape, dtype=torch.bool, device=r.device)
    for l in range(kk):
        rows = n_t - l
        a = alive[:rows]
        out[:rows] += torch.where(a, g**l * r[l:], zero[:rows])
        stop = done[l:].clone()
        stop[-1] = True  # row T-1 ends the rollout
        if l == kk - 1:
            stop[:] = True
        out[:rows] += torch.where(a & stop, g ** (l + 1) * boot_row[l:], zero[:rows])
        # a new mask, not an in-place update: torch.where saved ``a`` (a view of the old mask) for the
        # backward pass, and writing into it made rewards.grad fail ("modified by an inplace operation")
        alive = torch.cat([a & ~stop, torch.zeros_like(alive[rows:])], dim=0)
    return _finite("the TD(k) advantage", out - v)


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    *,
    gamma: float,
    lam: float,
) -> Tensor:
    """GAE by the O(T) backward recursion A_t = delta_t + gamma lam (1 - done_t) A_{t+1}, A_T = 0; [T, B].

    Spec: TR-31, TR-32, TR-34 (E-62: lam = 1 is sum_l gamma^l delta_{t+l}; open choice 13).
    ``done_t = terminated_t or truncated_t`` resets the recursion (nothing leaks across episodes);
    truncation enters only through delta_t's bootstrap ``next_values[t]``. Vectorised over B; the loop
    over t builds a list (no in-place writes), so it is autograd-safe.
    Shapes: rewards, values, next_values [T, B] float, terminated, truncated [T, B] bool -> [T, B].
    """
    lm = validate_lam(lam)
    delta = td_residuals(rewards, values, next_values, terminated, gamma=gamma)
    shape = delta.shape
    done = _flags("terminated", terminated, shape) | _flags("truncated", truncated, shape)
    if shape[0] == 0:
        return torch.zeros_like(delta)
    c = float(gamma) * lm
    acc = torch.zeros_like(delta[0])
    rows: list[Tensor] = []
    for t in range(shape[0] - 1, -1, -1):
        acc = delta[t] + c * torch.where(done[t], torch.zeros_like(acc), acc)
        rows.append(acc)
    rows.reverse()
    return _finite("the GAE advantage", torch.stack(rows, dim=0))


def value_targets(advantages: Tensor, values: Tensor) -> Tensor:
    """Value-regression targets (the lam-return) R_t = A_t + V(s_t); shape [T, B].

    Spec: TR-11 targets with erratum E-57 (per-episode limits): with GAE at lam = 1 this is the Monte
    Carlo return of the rest of the episode, bootstrapped at truncation / rollout end.
    Shapes: advantages, values [T, B] float -> [T, B].
    """
    a = _batch("advantages", advantages)
    v = _batch("values", values, a.shape)
    return _finite("the value target A + V", a + v)
