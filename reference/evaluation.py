"""Policy evaluation: MC, TD and k-step TD targets and learners for V and Q (EVAL-01..EVAL-30).

Conventions (once for the module; see also :mod:`reference.mdp` and :mod:`reference.sampling`):

* Acting in s_t yields r_t (the text's convention). Trajectories are :class:`~reference.sampling.Trajectories`
  batches: ``lengths[i]`` is T (terminated) or the horizon H (truncated).
* **V(term) = 0 is hard-coded** (EVAL-04, open choice 2): every target reads a value array ``v`` of shape
  [S] (over S+) but never its ``term`` entry; ``Q(term, .) = 0`` likewise. Linear features ``x`` have
  shape [S, d] (Q: [S, A, d]) and their ``term`` row must be zero (:func:`validate_features`), so
  ``V_phi(term) = x(term) . w = 0`` for every ``w`` and the gradient never touches term.
* k-step targets (EVAL-15/18, EVAL-27/30, errata E-19, E-20, E-23 applied): from time t,
  ``n = k ∧ (T - t)`` and ``y_t = sum_{j<n} gamma^j r_{t+j} + gamma^n V(s_{t+n})`` with ``V(term) = 0``.
  ``k=None`` is k = infinity, i.e. Monte Carlo. **Time-limit truncation is not termination** (open
  choice 2): a truncated trajectory bootstraps with ``V(s_H)`` at the horizon.
* Q bootstraps with ``Q(s_{t+n}, a_{t+n})`` where a_{t+n} ~ pi is the stored action; at the horizon of a
  truncated trajectory no action is stored and the expectation ``sum_a pi(a | s_H) Q(s_H, a)`` is used
  (same conditional mean, so every unbiasedness statement is unchanged).
* Gradients are for linear ``V_phi(s) = x(s) . w`` (tabular: :func:`tabular_features`). ``"semi"`` is the
  stop-gradient form ``grad 1/2 (V_phi(s_t) - [[y_t]])^2 = (V_phi(s_t) - y_t) x(s_t)`` (EVAL-11 option 3,
  open choice 17); ``"residual"`` differentiates through the bootstrap as well,
  ``(V_phi(s_t) - y_t)(x(s_t) - gamma^n x(s_{t+n}))`` (EVAL-11 option 2: Baird's residual gradient,
  erratum E-17; it is not GTD).
* Update states (open choice 7): ``states="initial"`` updates at s_0 only (the text's L weights by p0);
  ``states="visited"`` updates at every visited s_t of full trajectories (the weighting that makes linear
  TD stable). Losses of a batch are summed over t and averaged over trajectories (open choice 8).

Shapes use axis letters: N (trajectories), H (horizon), S (states incl. term), A (actions), d (features).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from reference.errors import InvalidPolicyError, ReferenceError_, ShapeError
from reference.exact import q_pi, v_pi
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    IntArray,
    _real_array,
    off_simplex_rows,
    validate_gamma,
    validate_int,
    validate_k,
    validate_policy,
    validate_step_size,
    validate_weights,
)
from reference.sampling import Trajectories, discounted_returns, sample_trajectories, validate_state_table

__all__ = [
    "ExpectedUpdate",
    "Gradient",
    "States",
    "Target",
    "TruncatedReturnError",
    "bootstrap_steps",
    "expected_update_q",
    "expected_update_v",
    "learn_q",
    "learn_v",
    "mc_returns",
    "q_gradients",
    "q_loss",
    "q_loss_gradient",
    "q_targets",
    "tabular_features",
    "tabular_q_features",
    "td_fixed_point",
    "v_gradients",
    "v_loss",
    "v_loss_gradient",
    "v_targets",
    "validate_features",
]

Gradient = Literal["semi", "residual"]
States = Literal["initial", "visited"]
Target = Literal["bootstrap", "oracle"]


class TruncatedReturnError(ReferenceError_):
    """A Monte Carlo return was requested for a trajectory cut by a time limit (it has no full return)."""


# ============================================================================== features, moments
def tabular_features(mdp: FiniteMDP) -> FloatArray:
    """Tabular features: x(s) = e_s for s in S and x(term) = 0; shape [S, |S|] (EVAL-04)."""
    x = np.zeros((mdp.n_states_plus, mdp.n_states))
    x[np.arange(mdp.n_states), np.arange(mdp.n_states)] = 1.0
    return x


def tabular_q_features(mdp: FiniteMDP) -> FloatArray:
    """Tabular Q features: x(s, a) = e_{s A + a} for s in S, x(term, .) = 0; shape [S, A, |S| A].

    Spec: support for EVAL-22..EVAL-27 (the tabular case of the Q-function learners).
    """
    n, a = mdp.n_states, mdp.n_actions
    x = np.zeros((mdp.n_states_plus, a, n * a))
    x[:n].reshape(n * a, n * a)[np.arange(n * a), np.arange(n * a)] = 1.0
    return x


def validate_features(mdp: FiniteMDP, x: FloatArray, *, q: bool = False) -> FloatArray:
    """Check linear features: shape [S, d] (or [S, A, d] with ``q``), finite, and zero on term (EVAL-04).

    Spec: EVAL-04 (V_phi is defined on S only; V_phi(term) = 0 is hard-coded, so x(term) = 0).
    Raises :class:`ShapeError` naming the shape, or the offending term entry.
    """
    f = np.asarray(x, dtype=np.float64)
    lead = (mdp.n_states_plus, mdp.n_actions) if q else (mdp.n_states_plus,)
    if f.ndim != len(lead) + 1 or f.shape[:-1] != lead:
        raise ShapeError(f"features must have shape {(*lead, 'd')}, got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ShapeError("features have non-finite entries")
    bad = np.flatnonzero(f[mdp.term].ravel() != 0.0)
    if bad.size:
        raise ShapeError(f"features of term must be 0 (V(term) = 0 is hard-coded, EVAL-04); "
                         f"entry {int(bad[0])} "
                         f"is {f[mdp.term].ravel()[bad[0]]!r}")
    return f


# ==================================================================================== targets
def mc_returns(traj: Trajectories, *, gamma: float) -> FloatArray:
    """Monte Carlo returns G_t = sum_{u=t}^{T-1} gamma^{u-t} r_u for every t; shape [N, H] (0 for t >= T).

    Spec: EVAL-01, EVAL-21 (G_0 is the MC sample of V^pi(s_0), or of Q^pi(s_0, a_0)). Raises
    :class:`TruncatedReturnError` naming the first truncated trajectory: a time-limited trajectory has no
    full return (use :func:`v_targets` with ``k=None``, which bootstraps at the horizon).
    """
    if np.any(traj.truncated):
        i = int(np.flatnonzero(traj.truncated)[0])
        raise TruncatedReturnError(f"trajectory {i} is truncated at H={traj.horizon} without reaching term; "
                                   "the MC return needs the full episode (bootstrap with v_targets(k=None))")
    return discounted_returns(traj.rewards, gamma) * traj.valid


def bootstrap_steps(traj: Trajectories, *, k: int | None) -> IntArray:
    """n_t = k ∧ (L - t) for valid steps t < L (L = T, or H if truncated), 0 otherwise; shape [N, H].

    Spec: EVAL-15 (k ∧ T; erratum E-20: if s_{t+k} = term then T = t + k, harmless because V(term) = 0).
    ``k=None`` means k = infinity (Monte Carlo).
    """
    k = validate_k(k)  # an integer >= 1 or None (Monte Carlo); never floored
    rem = traj.lengths[:, None] - np.arange(traj.horizon)[None, :]
    n = rem if k is None else np.minimum(rem, k)
    return np.asarray(np.where(traj.valid, n, 0), dtype=np.int64)


def _partial_returns(traj: Trajectories, n: IntArray, gamma: float) -> FloatArray:
    """sum_{j < n_t} gamma^j r_{t+j}, shape [N, H] (direct sum: no cancellation)."""
    h = traj.horizon
    r = np.concatenate([traj.rewards, np.zeros_like(traj.rewards)], axis=1)
    out = np.zeros_like(traj.rewards)
    for j in range(int(n.max(initial=0))):
        out += np.where(j < n, gamma**j * r[:, j: j + h], 0.0)
    return out


def v_targets(traj: Trajectories, v: FloatArray, *, gamma: float, k: int | None) -> FloatArray:
    """k-step TD targets y_t = sum_{j<n} gamma^j r_{t+j} + gamma^n V(s_{t+n}), n = k ∧ (T - t); [N, H].

    Spec: EVAL-06 and EVAL-10 (k=1: y = r_0 + gamma V(s_1), or r_0 if s_1 = term), EVAL-15 and EVAL-18
    (k-step), EVAL-01 (k=None: MC). Errata E-19 (the bracket covers both terms), E-20 applied.
    ``v`` has shape [S] (over S+: |S+| = ``traj.term + 1`` entries, ShapeError otherwise); its term entry is
    ignored (V(term) = 0 hard-coded, EVAL-04). Truncated trajectories bootstrap with V(s_H) at the horizon
    (open choice 2). Invalid steps (t >= L) get 0.
    """
    gamma = validate_gamma(gamma)
    # a V without its term entry must not make s = S-1 terminal
    vv = validate_state_table(traj, v, name="v", finite=True)
    n = bootstrap_steps(traj, k=k)
    end = np.arange(traj.horizon)[None, :] + n
    s_end = np.take_along_axis(traj.states, end, axis=1)
    term = vv.shape[0] - 1  # = traj.term (checked above)
    boot = np.where(s_end == term, 0.0, vv[s_end])
    y = _partial_returns(traj, n, gamma) + np.power(gamma, n) * boot
    return np.asarray(np.where(traj.valid, y, 0.0), dtype=np.float64)


def q_targets(traj: Trajectories, q: FloatArray, *, gamma: float, k: int | None,
              pi: FloatArray | None = None) -> FloatArray:
    """Q targets y_t = sum_{j<n} gamma^j r_{t+j} + gamma^n Q(s_{t+n}, a_{t+n}) (0 if s_{t+n} = term); [N, H].

    Spec: EVAL-24 (k=1), EVAL-26, EVAL-27 and EVAL-29/30 (k-step: "y += gamma^k Q(s_k, a_k) if
    s_{k∧T} != term"), EVAL-21 (k=None: MC). Erratum E-23 applied: the reward sum stops at (k ∧ T) - 1.
    ``q`` has shape [S, A] (over S+: ``traj.term + 1`` rows, ShapeError otherwise); Q(term, .) = 0 is
    hard-coded. a_{t+n} is the stored action; at the horizon of a truncated trajectory (no stored action) the
    bootstrap is sum_a pi(a | s_H) Q(s_H, a), which needs ``pi`` (shape [S, A]).
    """
    gamma = validate_gamma(gamma)
    qq = validate_state_table(traj, q, name="q", ndim=2, actions=True, finite=True)
    term = qq.shape[0] - 1  # = traj.term (checked above)
    n = bootstrap_steps(traj, k=k)
    h = traj.horizon
    end = np.arange(h)[None, :] + n
    s_end = np.take_along_axis(traj.states, end, axis=1)
    # no action is stored at t = H: that column is read only where it is replaced (at_h: the pi-expectation;
    # s_end = term: 0), so the index H - 1 in a_end is a placeholder, not a clamp of a real index
    at_h = (end >= h) & traj.valid & (s_end != term)
    a_end = np.take_along_axis(traj.actions, np.minimum(end, h - 1), axis=1)
    boot = qq[s_end, a_end]
    pv: FloatArray | None = None
    if pi is not None:  # checked whenever given, whether or not this batch reads it
        pv = validate_state_table(traj, pi, name="pi", ndim=2, actions=True)
        if pv.shape != qq.shape:
            raise ShapeError(f"pi must have the shape of q {qq.shape}, got {pv.shape}")
        _check_policy_rows(pv, term)
    if np.any(at_h):
        if pv is None:
            i, t = (int(z[0]) for z in np.nonzero(at_h))
            raise ShapeError(f"trajectory {i} is truncated at H={h}: the bootstrap Q(s_H, a_H) at t={t} "
                             "needs pi "
                             "(no action is stored at the horizon)")
        boot = np.where(at_h, np.einsum("nha,nha->nh", pv[s_end], qq[s_end]), boot)
    boot = np.where(s_end == term, 0.0, boot)
    y = _partial_returns(traj, n, gamma) + np.power(gamma, n) * boot
    return np.asarray(np.where(traj.valid, y, 0.0), dtype=np.float64)


def _check_policy_rows(pv: FloatArray, term: int) -> None:
    """``InvalidPolicyError`` unless every row of ``pv`` but term's is on the simplex (finite, >= 0, sum 1 within
    ``PROB_ATOL``): pi = [2, -1] gave the target 2.8 where the value is 4.15, [5, 5] gave 32.5."""
    bad = off_simplex_rows(np.delete(pv, term, axis=0))
    if np.any(bad):
        s = int(np.flatnonzero(bad)[0])
        s = s if s < term else s + 1
        raise InvalidPolicyError(f"pi(. | s={s}) is not on the simplex: row {pv[s].tolist()}")


def _check_w(w: ArrayLike, d: int, name: str = "w") -> FloatArray:
    """The weight vector of a linear value function: shape [d] for d features, finite (``ShapeError`` /
    ``ReferenceError_``; a wrong length raised numpy's bare ValueError)."""
    wv = _real_array(w, name)
    if wv.shape != (d,):
        raise ShapeError(f"{name} must have shape [{d}] (one weight per feature), got {list(wv.shape)}")
    if not np.all(np.isfinite(wv)):
        raise ReferenceError_(f"{name} must be finite, got {wv.tolist()}")
    return wv


# ================================================================================= gradients
def _check_gradient(gradient: str) -> None:
    if gradient not in ("semi", "residual"):
        raise ValueError(f"gradient must be 'semi' or 'residual', got {gradient!r}")


def v_gradients(traj: Trajectories, x: FloatArray, w: FloatArray, *, gamma: float, k: int | None,
                v_boot: FloatArray | None = None, gradient: Gradient = "semi") -> FloatArray:
    """Per-step stochastic gradients for linear V_phi(s) = x(s) . w; shape [N, H, d] (0 for t >= L).

    Spec: EVAL-03/05 (k=None: g = (V_phi(s_0) - sum_t gamma^t r_t) grad V_phi(s_0)), EVAL-07/08
    (k=1, ``v_boot = V^pi``: g = (V_phi(s_0) - r_0 - gamma V^pi(s_1)) grad V_phi(s_0), unbiased),
    EVAL-09/12 (``v_boot=None``: bootstrap with V_phi, biased), EVAL-16..18 (k-step), EVAL-11
    (``gradient="semi"``: grad 1/2 (V_phi(s_t) - [[y_t]])^2 = delta_t x(s_t); ``"residual"``:
    grad 1/2 (V_phi(s_t) - y_t)^2 = delta_t (x(s_t) - gamma^n x(s_{t+n})), erratum E-17).
    delta_t = V_phi(s_t) - y_t. With ``v_boot`` given the target does not depend on w and both forms agree.
    Shapes: x [S, d], w [d], v_boot [S].
    """
    _check_gradient(gradient)
    xf = validate_state_table(traj, x, name="x", ndim=2, finite=True)  # [S+, d]
    wv = _check_w(w, xf.shape[1])
    v_phi = xf @ wv
    vb = v_phi if v_boot is None else validate_state_table(traj, v_boot, name="v_boot", finite=True)
    y = v_targets(traj, vb, gamma=gamma, k=k)
    s = traj.states[:, :-1]
    delta = np.where(traj.valid, v_phi[s] - y, 0.0)
    grad_v = xf[s]
    if gradient == "residual" and v_boot is None:
        n = bootstrap_steps(traj, k=k)
        s_end = np.take_along_axis(traj.states, np.arange(traj.horizon)[None, :] + n, axis=1)
        x_end = np.where((s_end == xf.shape[0] - 1)[..., None], 0.0, xf[s_end])  # V(term) = 0: a constant
        grad_v = grad_v - np.power(gamma, n)[..., None] * x_end
    return np.asarray(delta[..., None] * grad_v, dtype=np.float64)


def q_gradients(traj: Trajectories, x: FloatArray, w: FloatArray, *, gamma: float, k: int | None,
                q_boot: FloatArray | None = None, pi: FloatArray | None = None,
                gradient: Gradient = "semi") -> FloatArray:
    """Per-step stochastic gradients for linear Q_phi(s, a) = x(s, a) . w; shape [N, H, d].

    Spec: EVAL-22/23 (MC), EVAL-25/26 (1-step; ``q_boot = Q^pi`` is the unbiased, not actionable form),
    EVAL-28..30 (k-step; stop-gradient g = grad 1/2 (Q_phi(s_0, a_0) - [[y]])^2). Errata E-21, E-22
    applied (grad Q_phi(s, a), a_0 ~ pi(. | s_0)). ``gradient="residual"`` also differentiates the
    bootstrap gamma^n Q_phi(s_{t+n}, a_{t+n}) (E-17). Shapes: x [S, A, d], w [d], q_boot and pi [S, A].
    """
    _check_gradient(gradient)
    xf = validate_state_table(traj, x, name="x", ndim=3, actions=True, finite=True)  # [S+, A, d]
    wv = _check_w(w, xf.shape[2])
    q_phi = xf @ wv
    qb = q_phi if q_boot is None else validate_state_table(traj, q_boot, name="q_boot", ndim=2, actions=True,
                                                           finite=True)
    if qb.shape != q_phi.shape:
        raise ShapeError(f"q_boot must have the shape [S+, A] = {q_phi.shape} of the features, got {qb.shape}")
    y = q_targets(traj, qb, gamma=gamma, k=k, pi=pi)
    s, a = traj.states[:, :-1], traj.actions
    delta = np.where(traj.valid, q_phi[s, a] - y, 0.0)
    grad_q = xf[s, a]
    if gradient == "residual" and q_boot is None:
        h = traj.horizon
        n = bootstrap_steps(traj, k=k)
        end = np.arange(h)[None, :] + n
        s_end = np.take_along_axis(traj.states, end, axis=1)
        a_end = np.take_along_axis(traj.actions, np.minimum(end, h - 1), axis=1)  # placeholder at H, as q_targets
        x_end = xf[s_end, a_end]
        term = xf.shape[0] - 1
        at_h = ((end >= h) & traj.valid & (s_end != term))[..., None]  # truncated, not terminated, at H
        if np.any(at_h):
            if pi is None:
                raise ShapeError("residual gradient at a truncated horizon needs pi")
            pv = validate_state_table(traj, pi, name="pi", ndim=2, actions=True)
            x_end = np.where(at_h, np.einsum("nha,nhad->nhd", pv[s_end], xf[s_end]), x_end)
        x_end = np.where((s_end == term)[..., None], 0.0, x_end)  # Q(term) = 0 is a constant: no gradient
        grad_q = grad_q - np.power(gamma, n)[..., None] * x_end
    return np.asarray(delta[..., None] * grad_q, dtype=np.float64)


# ====================================================================== objectives (exact)
def _state_weights(mdp: FiniteMDP, mu: FloatArray | None) -> FloatArray:
    """The state weighting of the exact losses: p0, or ``mu`` of shape [S] (over S+), finite and >= 0.

    A negative weight made the squared loss negative, a length-1 ``mu`` broadcast over every state and a NaN
    gave a NaN loss; each raises naming ``mu`` (ShapeError for the shape, ReferenceError_ for a value).
    """
    if mu is None:
        return mdp.p0
    m = np.asarray(mu, dtype=np.float64)
    if m.shape != (mdp.n_states_plus,):
        raise ShapeError(f"mu must have shape [S+] = [{mdp.n_states_plus}] (a weight per state), got {list(m.shape)}")
    return validate_weights(m, "mu")


def _finite_but_term(mdp: FiniteMDP, a: FloatArray, name: str) -> None:
    """ReferenceError_ unless every entry of ``a`` outside the term row is finite (the losses read them all)."""
    keep = np.ones(a.shape[0], dtype=bool)
    keep[mdp.term] = False
    if not np.all(np.isfinite(a[keep])):
        raise ReferenceError_(f"{name} is not finite at a non-terminal state (the loss would be NaN)")


def v_loss(mdp: FiniteMDP, pi: FloatArray, v: FloatArray, *, mu: FloatArray | None = None) -> float:
    """L(phi) = E_{s ~ p0}[1/2 (V_phi(s) - V^pi(s))^2] (EVAL-02); ``mu`` [S] replaces p0 (open choice 7).

    ``v`` has shape [S]; the term entry is ignored (EVAL-04).
    """
    m = _state_weights(mdp, mu)
    vv = _real_array(v, "v")
    if vv.shape != (mdp.n_states_plus,):
        raise ShapeError(f"v must have shape [S+] = [{mdp.n_states_plus}] (its term entry is ignored), "
                         f"got {list(vv.shape)}")
    _finite_but_term(mdp, vv, "v")
    d = vv - v_pi(mdp, pi)
    d[mdp.term] = 0.0
    return float(0.5 * m @ (d * d))


def v_loss_gradient(mdp: FiniteMDP, pi: FloatArray, x: FloatArray, w: FloatArray, *,
                    mu: FloatArray | None = None) -> FloatArray:
    """grad L(phi) = E_{s ~ p0}[(V_phi(s) - V^pi(s)) grad V_phi(s)] = X^T D (X w - V^pi); [d] (EVAL-02/03)."""
    m = _state_weights(mdp, mu)
    xf = validate_features(mdp, x)
    return np.asarray(xf.T @ (m * (xf @ _check_w(w, xf.shape[1]) - v_pi(mdp, pi))), dtype=np.float64)


def q_loss(mdp: FiniteMDP, pi: FloatArray, q: FloatArray, *, mu: FloatArray | None = None) -> float:
    """L(phi) = E_{s ~ p0, a ~ pi(.|s)}[1/2 (Q_phi(s, a) - Q^pi(s, a))^2] (EVAL-22); ``q`` [S, A]."""
    p = validate_policy(mdp, pi)
    m = _state_weights(mdp, mu)[:, None] * p
    qq = _real_array(q, "q")
    if qq.shape != (mdp.n_states_plus, mdp.n_actions):  # a [A] row or a scalar broadcast over the states
        raise ShapeError(f"q must have shape [S+, A] = [{mdp.n_states_plus}, {mdp.n_actions}] (its term row is "
                         f"ignored), got {list(qq.shape)}")
    _finite_but_term(mdp, qq, "q")
    d = qq - q_pi(mdp, p)
    d[mdp.term] = 0.0
    return float(0.5 * np.sum(m * d * d))


def q_loss_gradient(mdp: FiniteMDP, pi: FloatArray, x: FloatArray, w: FloatArray, *,
                    mu: FloatArray | None = None) -> FloatArray:
    """grad L = E_{s ~ p0, a ~ pi}[(Q_phi(s, a) - Q^pi(s, a)) grad Q_phi(s, a)]; shape [d] (EVAL-22, E-21)."""
    p = validate_policy(mdp, pi)
    xf = validate_features(mdp, x, q=True)
    m = _state_weights(mdp, mu)[:, None] * p
    wv = _check_w(w, xf.shape[2])
    return np.asarray(np.einsum("sa,sad->d", m * (xf @ wv - q_pi(mdp, p)), xf), dtype=np.float64)


# ============================================================ expected updates, TD fixed point
@dataclass(frozen=True)
class ExpectedUpdate:
    """The expected update of linear (semi-gradient) TD is affine: E[g | w] = A w - b.

    A: [d, d] (its Jacobian: not symmetric in general, EVAL-13), b: [d]. For the oracle target
    A = X^T D X and b = X^T D V^pi, so E[g] = grad L_D exactly (EVAL-07, EVAL-16).
    """

    A: FloatArray
    b: FloatArray

    def __call__(self, w: FloatArray) -> FloatArray:
        return np.asarray(self.A @ w - self.b, dtype=np.float64)


def _check_choices(*, states: str, target: str) -> None:
    """``states`` is "initial" or "visited" and ``target`` "bootstrap" or "oracle" (the learners and the expected
    updates share this check: a misspelled "Oracle" used to run the bootstrap learner silently)."""
    if states not in ("initial", "visited"):
        raise ReferenceError_(f"states must be 'initial' or 'visited', got {states!r}")
    if target not in ("bootstrap", "oracle"):
        raise ReferenceError_(f"target must be 'bootstrap' or 'oracle', got {target!r}")


def _expected_update_chain(m: FloatArray, r: FloatArray, start: FloatArray, x: FloatArray, value: FloatArray,
                           *, gamma: float, k: int | None, states: States, horizon: int | None,
                           target: Target) -> ExpectedUpdate:
    """Shared algebra on a Markov reward chain (states of V, or state-action pairs of Q).

    With an absorbing zero-reward term and x(term) = 0, E[y_t | z_t = z] = (r_n + gamma^n M^n X w)(z),
    r_n = sum_{j<n} gamma^j M^j r. Update weights: ``start`` at t = 0, or sum_{t<H} start M^t (visited).
    """
    _check_choices(states=states, target=target)
    k = validate_k(k)
    if horizon is not None:
        horizon = validate_int(horizon, "horizon", minimum=1)  # 2.5 was floored to 2
    if states == "visited" and horizon is None:
        raise ShapeError("states='visited' needs a finite horizon H (the sampling time limit)")
    if k is None and horizon is None and target == "bootstrap":
        target = "oracle"  # infinite-horizon MC: E[G_0 | s] = V^pi(s), no bootstrap
    d = x.shape[1]
    a_mat = np.zeros((d, d))
    b_vec = np.zeros(d)
    times = range(1) if states == "initial" else range(int(horizon))  # type: ignore[arg-type]
    dist = np.asarray(start, dtype=np.float64).copy()
    for t in times:
        remaining = None if horizon is None else int(horizon) - t
        n = k if remaining is None else (remaining if k is None else min(k, remaining))
        xd = x.T * dist
        a_mat += xd @ x
        if target == "oracle":
            b_vec += xd @ value
        else:
            assert n is not None
            rn = np.zeros_like(r)
            mr = r.copy()
            mx = x.copy()
            for j in range(n):
                rn += gamma**j * mr
                mr = m @ mr
                mx = m @ mx
            a_mat -= gamma**n * (xd @ mx)
            b_vec += xd @ rn
        dist = dist @ m
    return ExpectedUpdate(a_mat, b_vec)


def expected_update_v(mdp: FiniteMDP, pi: FloatArray, x: FloatArray, *, k: int | None,
                      states: States = "initial",
                      horizon: int | None = None, target: Target = "bootstrap") -> ExpectedUpdate:
    """Exact E[g | w] = A w - b of the semi-gradient V learner of :func:`learn_v` (per trajectory).

    Spec: EVAL-13 (Jacobian A), EVAL-07/16 (oracle target: E[g] = grad L), EVAL-09/18 (bootstrap).
    ``states="initial"``: D = diag(p0), n = k ∧ H; ``"visited"``: D_t = diag(p0 P_pi^t) summed over t < H
    with n_t = k ∧ (H - t). ``k=None`` is MC (bootstrapping only at the time limit H).
    """
    p = validate_policy(mdp, pi)
    xf = validate_features(mdp, x)
    m = np.asarray(mdp.transition_pi(p).toarray() if mdp.is_sparse else mdp.transition_pi(p))  # type: ignore[union-attr]
    exact = target == "oracle" or (k is None and horizon is None)
    value = v_pi(mdp, p) if exact else np.zeros(mdp.n_states_plus)
    return _expected_update_chain(m, mdp.reward_pi(p), mdp.p0, xf, value, gamma=mdp.gamma, k=k, states=states,
                                  horizon=horizon, target=target)


def expected_update_q(mdp: FiniteMDP, pi: FloatArray, x: FloatArray, *, k: int | None,
                      states: States = "initial",
                      horizon: int | None = None, target: Target = "bootstrap") -> ExpectedUpdate:
    """Exact E[g | w] = A w - b of the semi-gradient Q learner of :func:`learn_q` (per trajectory).

    Spec: EVAL-25, EVAL-28, EVAL-26, EVAL-30. The chain is on pairs (s, a):
    M[(s, a), (s', a')] = P(s' | s, a) pi(a' | s'), start weights p0(s) pi(a | s).
    """
    p = validate_policy(mdp, pi)
    xf = validate_features(mdp, x, q=True)
    n, na = mdp.n_states_plus, mdp.n_actions
    m = np.einsum("sat,tb->satb", mdp.P, p).reshape(n * na, n * na)
    exact = target == "oracle" or (k is None and horizon is None)
    value = (q_pi(mdp, p) if exact else np.zeros((n, na))).ravel()
    start = (mdp.p0[:, None] * p).ravel()
    return _expected_update_chain(m, mdp.r.ravel(), start, xf.reshape(n * na, -1), value, gamma=mdp.gamma,
                                  k=k, states=states, horizon=horizon, target=target)


def td_fixed_point(update: ExpectedUpdate) -> FloatArray:
    """The TD fixed point: the solution of A w = b (EVAL-13; Tsitsiklis & Van Roy 1997); shape [d].

    Raises :class:`ShapeError` if A is singular (some feature direction is never updated).
    """
    cond = np.linalg.cond(update.A)
    if not np.isfinite(cond) or cond > 1e12:
        raise ShapeError(f"A is singular or ill-conditioned (cond = {cond:.3g}): no unique TD fixed point")
    return np.asarray(np.linalg.solve(update.A, update.b), dtype=np.float64)


# ================================================================================== learners
def _sampling_horizon(k: int | None, states: States, horizon: int | None) -> int:
    k = validate_k(k)
    if horizon is not None:
        horizon = validate_int(horizon, "horizon", minimum=1)
    if states == "visited" or k is None:
        if horizon is None:
            raise ShapeError(f"states={states!r} with k={k} needs a finite horizon (sampling time limit)")
        return int(horizon)
    return k if horizon is None else min(k, int(horizon))


def learn_v(mdp: FiniteMDP, pi: FloatArray, x: FloatArray, *, k: int | None, lr: float, n_iters: int,
            rng: np.random.Generator, batch_size: int = 1, target: Target = "bootstrap",
            gradient: Gradient = "semi", states: States = "initial", horizon: int | None = None,
            w0: FloatArray | None = None) -> FloatArray:
    """SGD policy evaluation of V^pi with linear V_phi = X w; returns the iterates, shape [n_iters + 1, d].

    Spec: EVAL-05 (MC + SGD: ``k=None``), EVAL-08 (TD + SGD with V^pi: ``k=1, target="oracle"``, not
    actionable but checkable), EVAL-12 (approximate TD, stop-gradient: ``k=1``), EVAL-17 (k-step TD with
    V^pi), EVAL-18 (k-step approximate TD). ``gradient="residual"``: full gradient (EVAL-11 option 2, E-17).
    Each iteration samples ``batch_size`` fresh trajectories tau ~ (p0, pi, p) up to k ∧ T (or H), forms
    g = (1/B) sum_i sum_t g_{i,t} over the update states, and sets w <- w - lr g. Because the trajectories
    are fresh, E[w_{n+1}] = E[w_n] - lr (A E[w_n] - b) exactly (:func:`expected_update_v`).
    """
    _check_choices(states=states, target=target)
    _check_gradient(gradient)
    p = validate_policy(mdp, pi)
    xf = validate_features(mdp, x)
    h = _sampling_horizon(k, states, horizon)
    n_iters = validate_int(n_iters, "n_iters")
    batch_size = validate_int(batch_size, "batch_size", minimum=1)
    lr = validate_step_size(lr, "lr")
    v_boot = v_pi(mdp, p) if target == "oracle" else None
    w = np.zeros(xf.shape[1]) if w0 is None else _check_w(w0, xf.shape[1], "w0").copy()
    out = np.empty((n_iters + 1, w.size))
    out[0] = w
    for it in range(n_iters):
        traj = sample_trajectories(mdp, p, rng=rng, n=batch_size, horizon=h)
        g = v_gradients(traj, xf, w, gamma=mdp.gamma, k=k, v_boot=v_boot, gradient=gradient)
        g_sum = g[:, 0] if states == "initial" else g.sum(axis=1)
        w = w - lr * g_sum.mean(axis=0)
        out[it + 1] = w
    return out


def learn_q(mdp: FiniteMDP, pi: FloatArray, x: FloatArray, *, k: int | None, lr: float, n_iters: int,
            rng: np.random.Generator, batch_size: int = 1, target: Target = "bootstrap",
            gradient: Gradient = "semi", states: States = "initial", horizon: int | None = None,
            w0: FloatArray | None = None) -> FloatArray:
    """SGD policy evaluation of Q^pi with linear Q_phi = X w; returns the iterates, shape [n_iters + 1, d].

    Spec: EVAL-23 (MC + SGD), EVAL-26 (TD with Q^pi / with Q_phi / stop-gradient), EVAL-29 (k-step with
    Q^pi), EVAL-30 (k-step approximate, g = grad 1/2 (Q_phi(s_0, a_0) - [[y]])^2). s_0 ~ p0, a_0 ~ pi
    (erratum E-22). Same scheme as :func:`learn_v`; the expected update is :func:`expected_update_q`.
    """
    _check_choices(states=states, target=target)
    _check_gradient(gradient)
    p = validate_policy(mdp, pi)
    xf = validate_features(mdp, x, q=True)
    h = _sampling_horizon(k, states, horizon)
    n_iters = validate_int(n_iters, "n_iters")
    batch_size = validate_int(batch_size, "batch_size", minimum=1)
    lr = validate_step_size(lr, "lr")
    q_boot = q_pi(mdp, p) if target == "oracle" else None
    w = np.zeros(xf.shape[-1]) if w0 is None else _check_w(w0, xf.shape[-1], "w0").copy()
    out = np.empty((n_iters + 1, w.size))
    out[0] = w
    for it in range(n_iters):
        traj = sample_trajectories(mdp, p, rng=rng, n=batch_size, horizon=h)
        g = q_gradients(traj, xf, w, gamma=mdp.gamma, k=k, q_boot=q_boot, pi=p, gradient=gradient)
        g_sum = g[:, 0] if states == "initial" else g.sum(axis=1)
        w = w - lr * g_sum.mean(axis=0)
        out[it + 1] = w
    return out
