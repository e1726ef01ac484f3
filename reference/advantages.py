"""TD residuals, TD(k) advantages, GAE and value targets on [T, B] rollout batches (TR-20..TR-34).

Spec: TR-02, TR-20, TR-29, TR-30, TR-31, TR-32, TR-33, TR-34 (errata E-59, E-62; open choice 13).

Conventions (once for the module; the scalable PyTorch package mirrors them):

* A batch is **time-major** ``[T, B]``: B parallel environments stepped T times. Row t holds step t:
  acting with ``a_t`` in ``s_t`` gave ``r_t`` and the next state ``s_{t+1}`` (the text's convention).
* ``values[t, b] = V(s_t)``. ``next_values[t, b] = V(s_{t+1})`` of the **true** next state: for a
  time-limit truncation this is the value of the last observed (final) state, never the reset state of
  the next episode. Build it with :func:`next_values_from_rollout` from ``values``, ``last_value`` [B]
  (V of the state after the last row) and ``v_final`` [T, B] (V of the final state where truncated).
* ``terminated[t, b]``: ``s_{t+1} = term``, so ``V(s_{t+1}) = V(term) = 0`` (MDP-11) whatever
  ``next_values`` says. ``truncated[t, b]``: the episode was cut after step t by a time limit;
  ``s_{t+1}`` is real and is bootstrapped with ``next_values[t, b]``. If both are set, termination
  wins. Either flag ends the episode: row t+1 starts a new one, so no sum or recursion crosses it.
* The last row t = T-1 with neither flag is the end of the *rollout*, not of the episode: it is
  bootstrapped with ``next_values[T-1]`` (i.e. ``last_value``) exactly like a truncation.
* Hyperparameters are keyword-only: ``gamma`` in (0, 1], ``lam`` in [0, 1], ``k >= 1`` (None = inf).
  Bad shapes raise :class:`~reference.errors.ShapeError`, bad values a
  :class:`~reference.errors.ReferenceError_` naming them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.errors import ReferenceError_, ShapeError
from reference.exact import a_pi, discounted_occupancy, v_pi
from reference.gradients import bootstrap_values
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    _real,
    validate_flags,
    validate_gamma,
    validate_k,
    validate_policy,
    validate_values,
)
from reference.sampling import Trajectories

__all__ = [
    "BoolArray",
    "Rollout",
    "gae",
    "gae_bias",
    "gae_oracle",
    "next_values_from_rollout",
    "performance_difference",
    "reward_to_go_targets",
    "rollout_from_trajectories",
    "td_k_advantages",
    "td_k_bias",
    "td_residuals",
    "validate_lam",
    "value_regression_loss",
    "value_targets",
]

BoolArray = NDArray[np.bool_]


def validate_lam(lam: float) -> float:
    """GAE's lam as a float in [0, 1] (TR-31); ``ReferenceError_`` otherwise. "0.5" and True are refused, not
    parsed as 0.5 and 1.0. Shared with the torch twins (``scalable.core.advantages``)."""
    x = _real(lam, "lam")
    if not (0.0 <= x <= 1.0):
        raise ReferenceError_(f"lam must lie in [0, 1] (TR-31), got {lam!r}")
    return x


_validate_lam = validate_lam  # the short name this module's code uses


def _batch(name: str, x: ArrayLike, shape: tuple[int, ...] | None = None, *, finite: bool = True) -> FloatArray:
    """[T, B] float64 array; ``finite`` (rewards, values): NaN / inf are a ReferenceError_. ``next_values``
    and ``v_final`` pass ``finite=False``: NaN is allowed where a flag masks the entry (documented)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or (shape is not None and a.shape != shape):
        want = "[T, B]" if shape is None else f"{list(shape)}"
        raise ShapeError(f"{name} must have shape {want}, got {list(a.shape)}")
    if finite and not np.all(np.isfinite(a)):
        raise ReferenceError_(f"{name} must be finite; got {int(np.sum(~np.isfinite(a)))} NaN / inf entries")
    return a


def _used_finite(name: str, x: FloatArray, used: BoolArray) -> None:
    """Refuse a NaN / inf entry of ``x`` on a row that enters the result (``used``): a bootstrap that is read
    must be finite, or the advantage is silently NaN / inf. Masked entries (terminated rows, ...) may hold
    anything (TR-29: they are never read)."""
    bad = used & ~np.isfinite(x)
    if np.any(bad):
        t, b = (int(i) for i in np.argwhere(bad)[0])
        raise ReferenceError_(f"{name} must be finite on the rows it bootstraps; {name}[{t}, {b}] = {float(x[t, b])!r} "
                              f"({int(bad.sum())} such entries)")


_flags = validate_flags  # the short name this module's code uses


def _finite_result(name: str, out: FloatArray) -> FloatArray:
    """Every input entry a result reads has been checked finite, so an inf / NaN in ``out`` is an overflow (e.g.
    values near 1e308): raise ReferenceError_ naming the first row instead of returning it (as the torch twins
    in ``scalable.core.advantages`` do)."""
    bad = ~np.isfinite(out)
    if np.any(bad):
        t, b = (int(i) for i in np.argwhere(bad)[0])
        raise ReferenceError_(f"{name} overflows at row (t, b) = ({t}, {b}) ({int(bad.sum())} entries): the rewards "
                              "and values are finite but the result is beyond the float64 range")
    return np.asarray(out, dtype=np.float64)


def next_values_from_rollout(
    values: ArrayLike,
    last_value: ArrayLike,
    terminated: ArrayLike,
    truncated: ArrayLike,
    v_final: ArrayLike | None = None,
) -> FloatArray:
    """V(s_{t+1}) of the true next state for every row of a rollout; shape [T, B].

    ``next[t] = values[t+1]`` inside an episode, ``last_value`` at t = T-1, ``v_final[t]`` where
    ``truncated[t]`` (the final observed state, not the reset state in ``values[t+1]``) and 0 where
    ``terminated[t]`` (V(term) = 0). ``v_final`` [T, B] is read only where truncated (other entries
    may be NaN); it is required when any row is truncated and not terminated. Spec: TR-29 (open choice 13).
    Shapes: values [T, B], last_value [B], terminated / truncated [T, B] -> [T, B].
    """
    v = _batch("values", values)
    shape = v.shape
    lv = np.asarray(last_value, dtype=np.float64)
    if lv.shape != shape[1:]:
        raise ShapeError(f"last_value must have shape [{shape[1]}], got {list(lv.shape)}")
    term = _flags("terminated", terminated, shape)
    trunc = _flags("truncated", truncated, shape) & ~term
    if shape[0] == 0:  # an empty rollout: nothing to bootstrap (last_value is never read)
        return np.zeros(shape)
    nxt = np.concatenate([v[1:], lv[None, :]], axis=0)
    read_last = ~term[-1] & ~trunc[-1]  # last_value is the bootstrap of row T-1 unless that row ended
    if np.any(read_last & ~np.isfinite(lv)):
        b = int(np.flatnonzero(read_last & ~np.isfinite(lv))[0])
        raise ReferenceError_(f"last_value must be finite where row T-1 bootstraps with it; last_value[{b}] = "
                              f"{float(lv[b])!r}")
    if np.any(trunc):
        if v_final is None:
            rows = [tuple(int(i) for i in ix) for ix in np.argwhere(trunc)[:5]]
            raise ReferenceError_(f"truncated rows (t, b) = {rows} need v_final to bootstrap")
        vf = _batch("v_final", v_final, shape, finite=False)
        _used_finite("v_final", vf, trunc)
        nxt = np.where(trunc, vf, nxt)
    return np.asarray(np.where(term, 0.0, nxt), dtype=np.float64)


def td_residuals(
    rewards: ArrayLike,
    values: ArrayLike,
    next_values: ArrayLike,
    terminated: ArrayLike,
    *,
    gamma: float,
) -> FloatArray:
    """TD residual delta_t = r_t + gamma V(s_{t+1}) (1 - terminated_t) - V(s_t); shape [T, B].

    Spec: TR-29. With V = V^pi, E[delta_t | s_t, a_t] = A^pi(s_t, a_t) (TR-33).
    Shapes: rewards, values, next_values, terminated [T, B] -> [T, B].
    """
    g = validate_gamma(gamma)
    r = _batch("rewards", rewards)
    v = _batch("values", values, r.shape)
    nv = _batch("next_values", next_values, r.shape, finite=False)
    term = _flags("terminated", terminated, r.shape)
    _used_finite("next_values", nv, ~term)  # every row that did not terminate bootstraps with its next value
    # r - v first: exact for r = v (then r = v = gamma V' = 1e308 gives 1e308, where r + gamma V' overflowed)
    with np.errstate(over="ignore", invalid="ignore"):
        delta = (r - v) + g * np.where(term, 0.0, nv)
    return _finite_result("the TD residual delta", delta)


def td_k_advantages(
    rewards: ArrayLike,
    values: ArrayLike,
    next_values: ArrayLike,
    terminated: ArrayLike,
    truncated: ArrayLike,
    *,
    gamma: float,
    k: int | None,
) -> FloatArray:
    """TD(k) advantage sum_{l<m} gamma^l r_{t+l} + gamma^m V(s_{t+m}) - V(s_t), m = k ∧ (steps left).

    Spec: TR-20 (E-59). ``m`` is k capped by the number of rows up to and including the end of the
    episode (or of the rollout); ``V(s_{t+m})`` is ``next_values[t+m-1]``, 0 if that row terminated.
    ``k=None`` is TD(inf): the Monte Carlo return minus V(s_t), bootstrapped at truncation / rollout end.
    Computed from the rewards directly (not from residuals), so TR-30's telescoping identity
    ``A^{TD(k)}_t = sum_{l<m} gamma^l delta_{t+l}`` is a check, not a tautology. O(T k B).
    Shapes: rewards, values, next_values, terminated, truncated [T, B] -> [T, B].
    """
    g = validate_gamma(gamma)
    r = _batch("rewards", rewards)
    shape = r.shape
    v = _batch("values", values, shape)
    nv = _batch("next_values", next_values, shape, finite=False)
    term = _flags("terminated", terminated, shape)
    done = term | _flags("truncated", truncated, shape)
    k = validate_k(k)
    n_t = shape[0]
    kk = n_t if k is None else min(k, n_t)
    boot_row = np.where(term, 0.0, nv)  # V(s_{t+1}) with V(term) = 0
    out = np.zeros(shape)
    alive = np.ones(shape, dtype=bool)  # the episode of row t is still running at row t + l
    read = np.zeros(shape, dtype=bool)  # rows whose bootstrap next_values[t] enters some advantage
    for l in range(kk):
        rows = n_t - l  # rows t with t + l < T
        if rows <= 0:
            break
        a = alive[:rows]
        out[:rows] += np.where(a, g**l * r[l:], 0.0)
        # bootstrap where the sum stops at row t + l: end of episode, end of rollout or l = k - 1
        stop = done[l:].copy()
        stop[-1] = True  # row T-1 ends the rollout
        if l == kk - 1:
            stop[:] = True
        out[:rows] += np.where(a & stop, g ** (l + 1) * boot_row[l:], 0.0)
        read[l:] |= a & stop
        alive[:rows] &= ~stop
        alive[rows:] = False
    _used_finite("next_values", boot_row, read)  # boot_row is 0 on terminated rows
    with np.errstate(over="ignore", invalid="ignore"):
        adv = out - v
    return _finite_result("the TD(k) advantage", adv)


def gae(
    rewards: ArrayLike,
    values: ArrayLike,
    next_values: ArrayLike,
    terminated: ArrayLike,
    truncated: ArrayLike,
    *,
    gamma: float,
    lam: float,
) -> FloatArray:
    """GAE by the O(T) backward recursion A_t = delta_t + gamma lam (1 - done_t) A_{t+1}, A_T = 0.

    Spec: TR-31, TR-32, TR-34 (E-62: lam = 1 is defined by sum_l gamma^l delta_{t+l}; open choice 13).
    ``done_t = terminated_t or truncated_t`` resets the recursion, so nothing leaks across episodes;
    truncation enters only through delta_t's bootstrap ``next_values[t]``. Equals
    sum_{l<m} (gamma lam)^l delta_{t+l} (m = rows left in the episode; :func:`gae_oracle`).
    Shapes: rewards, values, next_values, terminated, truncated [T, B] -> [T, B].
    """
    lm = _validate_lam(lam)
    delta = td_residuals(rewards, values, next_values, terminated, gamma=gamma)
    shape = delta.shape
    done = _flags("terminated", terminated, shape) | _flags("truncated", truncated, shape)
    c = float(gamma) * lm
    out = np.zeros(shape)
    acc = np.zeros(shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(shape[0] - 1, -1, -1):
            acc = delta[t] + c * np.where(done[t], 0.0, acc)
            out[t] = acc
    return _finite_result("the GAE advantage", out)


def gae_oracle(
    rewards: ArrayLike,
    values: ArrayLike,
    next_values: ArrayLike,
    terminated: ArrayLike,
    truncated: ArrayLike,
    *,
    gamma: float,
    lam: float,
) -> FloatArray:
    """Definitional O(T^2) GAE, sum_{l=0}^{m-1} (gamma lam)^l delta_{t+l} within the episode (tests only).

    Spec: TR-31. ``m`` counts rows from t to the end of t's episode (or rollout) inclusive.
    Shapes as :func:`gae`.
    """
    lm = _validate_lam(lam)
    delta = td_residuals(rewards, values, next_values, terminated, gamma=gamma)
    shape = delta.shape
    done = _flags("terminated", terminated, shape) | _flags("truncated", truncated, shape)
    c = float(gamma) * lm
    out = np.zeros(shape)
    for b in range(shape[1]):
        for t in range(shape[0]):
            s = 0.0
            for l in range(shape[0] - t):
                s += c**l * float(delta[t + l, b])
                if done[t + l, b]:
                    break
            out[t, b] = s
    return out


def value_targets(advantages: ArrayLike, values: ArrayLike) -> FloatArray:
    """Value-regression targets (the lam-return) R_t = A_t + V(s_t); shape [T, B].

    With GAE at lam = 1 this is the Monte Carlo return bootstrapped at truncation / rollout end
    (TR-11's targets with E-57's per-episode limits). Shapes: advantages, values [T, B] -> [T, B].
    """
    a = _batch("advantages", advantages)
    v = _batch("values", values, a.shape)
    with np.errstate(over="ignore"):
        return _finite_result("the value target A + V", a + v)


def performance_difference(mdp: FiniteMDP, pi_new: FloatArray, pi_old: FloatArray) -> float:
    """J(pi') - J(pi) = sum_s d^{pi'}(s) sum_a pi'(a | s) A^pi(s, a), d^{pi'} the discounted occupancy.

    Spec: TR-02 (performance-difference identity). For gamma < 1 this is
    (1 / (1 - gamma)) E_{s ~ d^{pi'}_norm, a ~ pi'}[A^pi(s, a)]; at gamma = 1 (proper pi') d^{pi'} counts
    expected visits before T. Exact (linear solves, no sampling). Shapes: pi_new, pi_old [S+1, A].
    """
    pn = validate_policy(mdp, pi_new)
    d = discounted_occupancy(mdp, pn)
    adv = a_pi(mdp, pi_old)
    return float(np.sum(d[:, None] * pn * adv))


# =============================================================================== rollouts from trajectories
@dataclass(frozen=True)
class Rollout:
    """A [T, B] batch built from trajectories: rewards, V(s_t), V(s_{t+1}), flags and the valid mask (t < T^(i))."""

    rewards: FloatArray
    values: FloatArray
    next_values: FloatArray
    terminated: BoolArray
    truncated: BoolArray
    valid: BoolArray


def rollout_from_trajectories(mdp: FiniteMDP, traj: Trajectories, values: ArrayLike) -> Rollout:
    """Transpose a padded trajectory batch [N, H] into the time-major [H, N] arrays of this module.

    ``values`` [S+1] is the V used for bootstrapping (V(term) is forced to 0). Padding rows after
    termination are term -> term rows with reward 0 and V = 0 (so their residuals are exactly 0);
    a trajectory cut at the horizon is ``truncated`` at its last row and bootstrapped with V(s_H).

    Spec: TR-22 (the rollout arrays the advantage estimators read).
    """
    if traj.term is not None and traj.term != mdp.term:  # term of a smaller MDP was read as a real state
        raise ShapeError(f"rollout_from_trajectories: the trajectories' term = {traj.term} is not the MDP's "
                         f"term = {mdp.term} (trajectories of another MDP)")
    v = validate_values(mdp, values)
    boot = bootstrap_values(v, traj.states, term=mdp.term)
    valid = traj.valid
    term = traj.states[:, 1:] == mdp.term
    trunc = np.zeros_like(term)
    n = traj.n
    cut = np.flatnonzero(traj.truncated & (traj.lengths > 0))
    trunc[cut, traj.lengths[cut] - 1] = True
    return Rollout(np.asarray(traj.rewards.T, dtype=np.float64), np.asarray(boot[:, :-1].T, dtype=np.float64),
                   np.asarray(boot[:, 1:].T, dtype=np.float64), np.asarray(term.T), np.asarray(trunc.T),
                   np.asarray(valid.T.reshape(traj.horizon, n)))


# =============================================================================== value regression (E-57)
def reward_to_go_targets(
    rewards: ArrayLike, terminated: ArrayLike, truncated: ArrayLike, *, gamma: float
) -> FloatArray:
    """The text's value targets R_t = sum_{t'=t}^{T^(i)-1} gamma^{t'-t} r_{t'} within each episode; [T, B].

    Spec: TR-11 with erratum E-57 (upper limit T^(i), not T; targets for t = 0..T^(i)-1, matching the
    loss, not from t = 1). No bootstrap: a truncated episode's target is its observed return (use
    :func:`value_targets` with GAE for bootstrapped lam-returns). Shapes: [T, B] -> [T, B].
    """
    g = validate_gamma(gamma)
    r = _batch("rewards", rewards)
    done = _flags("terminated", terminated, r.shape) | _flags("truncated", truncated, r.shape)
    out = np.zeros(r.shape)
    acc = np.zeros(r.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(r.shape[0] - 1, -1, -1):
            acc = r[t] + g * np.where(done[t], 0.0, acc)
            out[t] = acc
    return _finite_result("the reward-to-go target", out)


def value_regression_loss(
    values: ArrayLike, targets: ArrayLike, terminated: ArrayLike, truncated: ArrayLike,
    valid: ArrayLike | None = None,
) -> float:
    """(1/N) sum_i (1/T^(i)) sum_{t<T^(i)} (1/2) (V_phi(s_t^(i)) - R_t^(i))^2 over the episodes of a batch.

    Spec: TR-11 (open choice 7: all visited states, per-episode 1/T^(i)). Episodes are the maximal runs
    of rows of a column ended by a terminated / truncated flag or by the last row; N counts them.
    ``valid`` [T, B] (optional) marks the real rows: rows with ``valid`` False are left out, and a run
    with no valid row is not an episode. Pass it for padded batches, e.g. ``Rollout.valid`` of
    :func:`rollout_from_trajectories`, whose padding rows after a termination are one-row term -> term
    runs: without the mask each would count as an episode with loss 0 and shrink the mean (flags alone
    cannot tell them from real one-step episodes).
    Shapes: values, targets, terminated, truncated, valid [T, B] -> scalar.
    """
    v = _batch("values", values)
    y = _batch("targets", targets, v.shape)
    if v.size == 0:
        raise ShapeError(f"value_regression_loss needs T >= 1 and B >= 1, got shape {list(v.shape)}")
    done = _flags("terminated", terminated, v.shape) | _flags("truncated", truncated, v.shape)
    keep = np.ones(v.shape, dtype=np.bool_) if valid is None else _flags("valid", valid, v.shape)
    total, n_ep = 0.0, 0
    for b in range(v.shape[1]):
        start = 0
        for t in range(v.shape[0]):
            if done[t, b] or t == v.shape[0] - 1:
                rows = keep[start:t + 1, b]
                if rows.any():
                    seg = 0.5 * (v[start:t + 1, b][rows] - y[start:t + 1, b][rows]) ** 2
                    total += float(seg.mean())
                    n_ep += 1
                start = t + 1
    if n_ep == 0:
        raise ShapeError("value_regression_loss: no valid row in the batch")
    return total / n_ep


# =============================================================================== TD(k) / GAE bias with V_phi
def _first_step(mdp: FiniteMDP, e: ArrayLike) -> FloatArray:
    """E[e(s_1) | s_0 = s, a_0 = a] for every (s, a); [S+1, A]."""
    return np.asarray(mdp.expected_next(np.asarray(e, dtype=np.float64)), dtype=np.float64)


def _value_error(mdp: FiniteMDP, pi: FloatArray, v_phi: ArrayLike) -> FloatArray:
    e = validate_values(mdp, v_phi, what="v_phi") - v_pi(mdp, pi)
    e[mdp.term] = 0.0
    return np.asarray(e, dtype=np.float64)


def td_k_bias(mdp: FiniteMDP, pi: FloatArray, v_phi: ArrayLike, *, k: int | None) -> FloatArray:
    """gamma^k E[V_phi(s_{t+k}) - V^pi(s_{t+k}) | s_t = s, a_t = a] (V(term) = 0); shape [S+1, A].

    Spec: TR-23 with erratum E-60: E[A_hat^{TD(k)} | s, a] = Q^pi(s, a) - V_phi(s) + this term, so the bias
    is measured against Q^pi - V_phi(s), not A^pi; |bias_k| <= gamma^k ||V_phi - V^pi||_inf, a bound that
    need not shrink with k in the actual value. ``k=None`` (TD(inf)): 0. Exact (matrix powers).
    """
    pi = validate_policy(mdp, pi)
    k = validate_k(k)
    if k is None:
        return np.zeros((mdp.n_states_plus, mdp.n_actions))
    e = _value_error(mdp, pi, v_phi)
    m = mdp.transition_pi(pi)
    x = e
    for _ in range(int(k) - 1):
        x = np.asarray(m @ x, dtype=np.float64)
    out = float(mdp.gamma) ** int(k) * _first_step(mdp, x)
    out[mdp.term] = 0.0
    return np.asarray(out, dtype=np.float64)


def gae_bias(mdp: FiniteMDP, pi: FloatArray, v_phi: ArrayLike, *, lam: float) -> FloatArray:
    """E[A_hat^{GAE(gamma, lam)} | s, a] - (Q^pi(s, a) - V_phi(s)) = (1 - lam) sum_{k>=1} lam^{k-1} bias_k.

    Spec: TR-35. Closed form gamma (1 - lam) E_{s_1 | s, a}[((I - gamma lam P_pi)^{-1} e)(s_1)],
    e = V_phi - V^pi; 0 at lam = 1 (telescoping); |.| <= gamma (1 - lam) / (1 - gamma lam) ||e||_inf,
    a bound decreasing in lam. Needs gamma lam < 1 or lam = 1. Shape [S+1, A].
    """
    pi = validate_policy(mdp, pi)
    lm = _validate_lam(lam)
    if lm == 1.0:
        return np.zeros((mdp.n_states_plus, mdp.n_actions))
    e = _value_error(mdp, pi, v_phi)
    m = mdp.transition_pi(pi)
    dense = np.asarray(m.toarray() if hasattr(m, "toarray") else m, dtype=np.float64)
    c = float(mdp.gamma) * lm
    x = np.asarray(np.linalg.solve(np.eye(dense.shape[0]) - c * dense, e), dtype=np.float64)
    out = float(mdp.gamma) * (1.0 - lm) * _first_step(mdp, x)
    out[mdp.term] = 0.0
    return np.asarray(out, dtype=np.float64)
