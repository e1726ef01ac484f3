"""Surrogate K, exact KL and Fisher of tabular policies, CG, line search, TRPO and PPO (TR-03..TR-19).

Spec: TR-04..TR-12, TR-15, TR-16, TR-19 (errata E-55, E-56, E-67; open choice 12).

Conventions (once for the module; the scalable PyTorch package mirrors them):

* Tabular softmax policies pi_theta = softmax(theta) with ``theta`` [S+1, A] (reference.policies);
  gradients, natural gradients and Fisher-vector products have the same shape. Flattened matrices
  (Fisher, Hessians) are [D, D] with D = (S+1) A in row-major (s, a) order; the ``term`` row is inert.
* Exact quantities use the discounted occupancy d^{pi}(s) = sum_t gamma^t P(s_t = s) (the text keeps
  the gamma^t factor) and the state weights rho(s) = d(s) / sum_{s' != term} d(s') on the non-terminal
  states (``state_weights``: term removed and the rest renormalised; E-56).
* Sampled quantities take time-major batches [T, B]: ``log_prob_new`` / ``log_prob_old`` of the taken
  actions, ``advantages`` and a ``valid`` mask (t < T^(i); built from the separate terminated / truncated
  flags of reference.advantages); the ratio is exp(log_prob_new - log_prob_old) (open choice 12).
* KL direction (E-56): ``direction="old_new"`` is KL(pi_old(.|s) || pi_new(.|s)) (Schulman et al.,
  practical TRPO and PPO-penalty), ``"new_old"`` the text's L1744 direction; ``reduce="mean"`` averages
  over s ~ rho^{pi_old} (practical), ``"max"`` is the text's max over non-terminal states.
* Hyperparameters are keyword-only and named as in the text / papers: gamma, delta, eps, beta, lr.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from reference.errors import NotConvergedError, ReferenceError_, ShapeError
from reference.exact import a_pi, discounted_occupancy, j_pi
from reference.gradients import grad_j_exact, j_theta
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    _real,
    validate_flag,
    validate_flags,
    validate_gamma,
    validate_int,
    validate_step_size,
    validate_weights,
)
from reference.policies import softmax
from reference.policy_advantage import policy_advantage
from reference.surrogates import categorical_kl, ppo_clip_objective, ppo_clip_ratio_gradient

__all__ = [
    "Direction",
    "LineSearchResult",
    "PolicyOptResult",
    "Reduce",
    "backtracking_line_search",
    "conjugate_gradient",
    "fisher_matrix",
    "fisher_vector_product",
    "grad_surrogate_k",
    "hessian_j_fd",
    "hessian_surrogate_k",
    "is_surrogate_estimate",
    "is_surrogate_terms",
    "natural_gradient",
    "policy_kl",
    "ppo_clip_exact",
    "ppo_clip_surrogate_exact",
    "ppo_penalty_exact",
    "state_kl",
    "state_weights",
    "surrogate_k",
    "trpo_exact",
]

Direction = Literal["old_new", "new_old"]
Reduce = Literal["mean", "max"]


def _theta(mdp: FiniteMDP, theta: ArrayLike, name: str = "theta") -> FloatArray:
    th = np.asarray(theta, dtype=np.float64)
    if th.shape != (mdp.n_states_plus, mdp.n_actions):
        raise ShapeError(f"{name} must have shape (S+, A) = {(mdp.n_states_plus, mdp.n_actions)}, got {th.shape}")
    return th


def state_weights(mdp: FiniteMDP, pi: FloatArray) -> FloatArray:
    """rho^{pi}(s): the normalised discounted occupancy with term removed and renormalised; shape [S+1].

    Spec: TR-09, TR-10 (E-56): the state distribution of TRPO's average KL and of the Fisher matrix.
    Sums to 1. Shapes: pi [S+1, A] -> [S+1].
    """
    d = discounted_occupancy(mdp, pi)
    d[mdp.term] = 0.0
    total = float(d.sum())
    if total <= 0.0:
        raise ReferenceError_("the occupancy of the non-terminal states is 0 (p0 puts all mass on term)")
    return np.asarray(d / total, dtype=np.float64)


# =============================================================================== surrogate K (TR-04..TR-07)
def surrogate_k(mdp: FiniteMDP, theta: ArrayLike, theta0: ArrayLike) -> float:
    """K(theta; theta0) = E_{tau ~ pi_theta0}[sum_t gamma^t pi_theta/pi_theta0 (a_t|s_t) A^{pi_theta0}(s_t, a_t)] + C.

    Spec: TR-05 with C = J(theta0), so K(theta0; theta0) = J(theta0) and K - C = I(pi_theta; pi_theta0)
    (TR-38). Exact: sum_s d^{pi0}(s) sum_a pi_theta(a|s) A^{pi0}(s, a) + J(theta0). Shapes: theta, theta0 [S+1, A].
    """
    pi = softmax(_theta(mdp, theta))
    pi0 = softmax(_theta(mdp, theta0, "theta0"))
    return j_pi(mdp, pi0) + policy_advantage(mdp, pi, pi0)


def grad_surrogate_k(mdp: FiniteMDP, theta: ArrayLike, theta0: ArrayLike) -> FloatArray:
    """dK/dtheta[s, a] = d^{pi0}(s) pi_theta(a|s) (A^{pi0}(s, a) - sum_b pi_theta(b|s) A^{pi0}(s, b)).

    Spec: TR-06: at theta = theta0 this is grad J(theta0) (sum_b pi0 A^{pi0} = 0). Shapes: [S+1, A].
    """
    pi = softmax(_theta(mdp, theta))
    pi0 = softmax(_theta(mdp, theta0, "theta0"))
    d = discounted_occupancy(mdp, pi0)
    adv = a_pi(mdp, pi0)
    g = d[:, None] * pi * (adv - np.sum(pi * adv, axis=1, keepdims=True))
    g[mdp.term] = 0.0
    return np.asarray(g, dtype=np.float64)


def hessian_surrogate_k(mdp: FiniteMDP, theta: ArrayLike, theta0: ArrayLike) -> FloatArray:
    """Exact Hessian of K(.; theta0) at theta; block diagonal over states, shape [D, D].

    Block s: H_ab = d^{pi0}(s) [pi_a delta_ab (u_a - m) - pi_a pi_b (u_a - m) - pi_a pi_b (u_b - m)] with
    pi = pi_theta(.|s), u = A^{pi0}(s, .), m = pi . u. Spec: TR-06 (compared with the Hessian of J, which
    differs in general). Shapes: theta, theta0 [S+1, A] -> [D, D].
    """
    pi = softmax(_theta(mdp, theta))
    pi0 = softmax(_theta(mdp, theta0, "theta0"))
    d = discounted_occupancy(mdp, pi0)
    adv = a_pi(mdp, pi0)
    n, na = mdp.n_states_plus, mdp.n_actions
    h = np.zeros((n * na, n * na))
    for s in range(n):
        if s == mdp.term:
            continue
        p, c = pi[s], adv[s] - float(pi[s] @ adv[s])
        blk = np.diag(p * c) - np.outer(p * c, p) - np.outer(p, p * c)
        h[s * na:(s + 1) * na, s * na:(s + 1) * na] = d[s] * blk
    return h


def hessian_j_fd(mdp: FiniteMDP, theta: ArrayLike, *, h: float = 1e-5) -> FloatArray:
    """Hessian of J at theta by central differences of the exact gradient; shape [D, D], symmetrised.

    Spec: TR-06. Truncation error O(h^2) times the third derivative; rounding ~ eps |grad J| / h. ``h`` is a
    finite step > 0 (``ReferenceError_``; h = 0 gave NaN).
    """
    hh = _real(h, "h")
    if not (math.isfinite(hh) and hh > 0.0):
        raise ReferenceError_(f"h must be a finite number > 0 (the central-difference step), got {h!r}")
    th = _theta(mdp, theta)
    n = th.size
    out = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        gp = grad_j_exact(mdp, th + e.reshape(th.shape)).ravel()
        gm = grad_j_exact(mdp, th - e.reshape(th.shape)).ravel()
        out[:, i] = (gp - gm) / (2.0 * h)
    return np.asarray(0.5 * (out + out.T), dtype=np.float64)


def _batch_check(log_prob_new: ArrayLike, log_prob_old: ArrayLike, advantages: ArrayLike,
                 valid: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray, np.ndarray]:
    ln = np.asarray(log_prob_new, dtype=np.float64)
    lo = np.asarray(log_prob_old, dtype=np.float64)
    ad = np.asarray(advantages, dtype=np.float64)
    if ln.ndim != 2 or lo.shape != ln.shape or ad.shape != ln.shape or np.shape(valid) != ln.shape:
        raise ShapeError(f"log_prob_new, log_prob_old, advantages, valid must share a [T, B] shape, got "
                         f"{list(ln.shape)}, {list(lo.shape)}, {list(ad.shape)}, {list(np.shape(valid))}")
    va = validate_flags("valid", valid, ln.shape)  # boolean or exactly 0 / 1: a mask of 0.5 is refused
    return ln, lo, ad, va


def is_surrogate_terms(
    log_prob_new: ArrayLike,
    log_prob_old: ArrayLike,
    advantages: ArrayLike,
    valid: ArrayLike,
    *,
    gamma: float,
    gamma_t: bool = True,
) -> FloatArray:
    """Per-trajectory IS terms sum_{t<T^(i)} gamma^t pi_theta(a_t|s_t)/pi_theta0(a_t|s_t) A_hat_t^(i); shape [B].

    Spec: TR-07 (E-55: pi_theta(a_t | s_t)), TR-42/TR-43 (the same sum with pi, pi_k is I_hat's term).
    ``gamma_t=False`` drops gamma^t (the gamma-trick). Shapes: [T, B] each -> [B].

    On the valid steps the log-probabilities and advantages must be finite (NaN or inf raises
    :class:`ReferenceError_` naming the argument and the entry, as :func:`ppo_clip_objective` refuses
    a non-finite ratio or advantage), except log_prob_new = -inf (pi_theta(a_t|s_t) = 0: the ratio is
    exactly 0); entries outside ``valid`` (padding) are ignored. A zero advantage contributes exactly 0
    whatever the ratio (0 * inf would be NaN). Where the advantage is non-zero and gamma^t ratio A_hat
    overflows float64 (e.g. a log-ratio above ~709.78 with |A_hat| >= 1), or a per-trajectory sum
    does, the true value is not representable and :class:`ReferenceError_` is raised (never inf / NaN).
    """
    g = validate_gamma(gamma)
    ln, lo, ad, va = _batch_check(log_prob_new, log_prob_old, advantages, valid)
    for name, x, ok, what in (("log_prob_new", ln, np.isfinite(ln) | (ln == -np.inf), "finite or -inf"),
                              ("log_prob_old", lo, np.isfinite(lo), "finite"),
                              ("advantages", ad, np.isfinite(ad), "finite")):
        bad = va & ~ok
        if np.any(bad):
            t, b = (int(i[0]) for i in np.nonzero(bad))
            raise ReferenceError_(f"{name} must be {what} on the valid steps, got {name}[{t}, {b}] = "
                                  f"{x[t, b].item()!r}")
    gamma_t = validate_flag(gamma_t, "gamma_t")  # "no" was read as True (the gamma^t factor kept)
    disc = g ** np.arange(ln.shape[0], dtype=np.float64)[:, None] if gamma_t else np.ones((ln.shape[0], 1))
    live = va & (ad != 0.0)  # a zero advantage is an exact 0 term, whatever the ratio
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_ratio = np.where(live, ln - lo, 0.0)
        terms = np.where(live, disc * np.exp(log_ratio) * ad, 0.0)
        # where exp(log-ratio) overflows, or gamma^t underflows to 0, while the term itself is representable
        # (a log-ratio of 710 with A = 1e-3: 2.2e305, refused as an overflow), the term is formed in logs
        log_disc = (np.arange(ln.shape[0], dtype=np.float64)[:, None] * math.log(g) if gamma_t
                    else np.zeros((ln.shape[0], 1)))
        redo = live & (~np.isfinite(terms) | ((disc == 0.0) & (ln > -np.inf)))
        if np.any(redo):
            via_logs = np.sign(ad) * np.exp(log_ratio + log_disc + np.log(np.abs(np.where(live, ad, 1.0))))
            terms = np.where(redo, via_logs, terms)
    over = ~np.isfinite(terms)
    if np.any(over):
        t, b = (int(i[0]) for i in np.nonzero(over))
        raise ReferenceError_(
            f"the IS term gamma^t * exp(log_prob_new - log_prob_old) * advantages at [{t}, {b}] overflows "
            f"float64 (log-ratio {float(log_ratio[t, b])!r}, advantage {float(ad[t, b])!r}): the importance "
            f"ratio or the term is not representable")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.sum(terms, axis=0)
    if not np.all(np.isfinite(out)):
        b = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ReferenceError_(f"the sum of the IS terms of trajectory {b} overflows float64 (not representable)")
    return np.asarray(out, dtype=np.float64)


def is_surrogate_estimate(
    log_prob_new: ArrayLike,
    log_prob_old: ArrayLike,
    advantages: ArrayLike,
    valid: ArrayLike,
    *,
    gamma: float,
    gamma_t: bool = True,
) -> float:
    """(1/N) sum_i sum_t gamma^t ratio_t^(i) A_hat_t^(i), the MC/IS estimate of K(theta; theta0) - C.

    Spec: TR-07, TR-43. Unbiased for K - C = I(pi_theta; pi_theta0) when E[A_hat | s_t, a_t] = A^{pi0}.
    Shapes: [T, B] each -> scalar. An empty batch (B = 0) raises :class:`ShapeError` (the mean over no
    trajectories is undefined; NumPy would return NaN); inputs are refused as :func:`is_surrogate_terms` does.
    """
    terms = is_surrogate_terms(log_prob_new, log_prob_old, advantages, valid, gamma=gamma, gamma_t=gamma_t)
    if terms.size == 0:
        raise ShapeError("is_surrogate_estimate needs at least one trajectory: the batch [T, B] has B = 0")
    with np.errstate(over="ignore", invalid="ignore"):
        est = float(np.mean(terms))
        if not math.isfinite(est):  # the sum overflowed: average the terms pre-divided by B instead
            est = float(np.sum(terms / terms.size))
    if not math.isfinite(est):
        raise ReferenceError_("the mean of the IS terms overflows float64 (not representable)")
    return est


# =============================================================================== KL and Fisher (TR-09, TR-10)
def state_kl(pi_old: FloatArray, pi_new: FloatArray, *, direction: Direction = "old_new") -> FloatArray:
    """Per-state KL between tabular policies, [S+1, A] x 2 -> [S+1] (exact; inf where supports differ).

    Spec: TR-10. ``old_new``: KL(pi_old(.|s) || pi_new(.|s)) (E-56, Schulman et al.); ``new_old``: the
    text's L1744 direction.
    """
    if direction == "old_new":
        return categorical_kl(pi_old, pi_new)
    if direction == "new_old":
        return categorical_kl(pi_new, pi_old)
    raise ReferenceError_(f"direction must be 'old_new' or 'new_old', got {direction!r}")


def policy_kl(
    mdp: FiniteMDP,
    pi_old: FloatArray,
    pi_new: FloatArray,
    *,
    direction: Direction = "old_new",
    reduce: Reduce = "mean",
) -> float:
    """TRPO's trust-region measure: E_{s ~ rho^{pi_old}}[KL] (``mean``) or max_{s in S} KL (``max``).

    Spec: TR-10 with erratum E-56 (the practical constraint is the rho^{pi_old}-average of
    KL(old || new); the text writes max_s KL(new || old)). term is excluded from both reductions.
    """
    kl = state_kl(pi_old, pi_new, direction=direction)
    live = np.arange(mdp.n_states_plus) != mdp.term
    if reduce == "max":
        return float(np.max(kl[live]))
    if reduce == "mean":
        # states of weight 0 do not enter the expectation (0 * inf would be NaN where KL is infinite there)
        rho = state_weights(mdp, pi_old)
        used = live & (rho > 0.0)
        return float(np.sum(rho[used] * kl[used]))
    raise ReferenceError_(f"reduce must be 'mean' or 'max', got {reduce!r}")


def _check_weights(w: FloatArray) -> None:
    """State weights of a Fisher matrix (a distribution rho, or any non-negative measure): finite and >= 0."""
    validate_weights(w, "weights")


def fisher_vector_product(theta: ArrayLike, v: ArrayLike, weights: ArrayLike) -> FloatArray:
    """F v with F = sum_s rho(s) E_{a ~ pi(.|s)}[score score^T]: row s is rho(s) pi_s * (v_s - pi_s . v_s).

    Spec: TR-09 (the matrix CG inverts). Shapes: theta, v [S+1, A], weights [S+1] -> [S+1, A].
    """
    th = np.asarray(theta, dtype=np.float64)
    vv = np.asarray(v, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if th.ndim != 2 or vv.shape != th.shape or w.shape != th.shape[:1]:
        raise ShapeError(f"theta {list(th.shape)}, v {list(vv.shape)}, weights {list(w.shape)} disagree")
    _check_weights(w)
    pi = softmax(th)
    return np.asarray(w[:, None] * pi * (vv - np.sum(pi * vv, axis=1, keepdims=True)), dtype=np.float64)


def fisher_matrix(theta: ArrayLike, weights: ArrayLike) -> FloatArray:
    """Fisher matrix of the tabular softmax, block diagonal: block s = rho(s) (diag(pi_s) - pi_s pi_s^T).

    Spec: TR-09. Equal to E_{s~rho, a~pi}[vec(score) vec(score)^T] and to the Hessian of
    E_{s~rho}[KL(pi_theta0 || pi_theta)] at theta = theta0. Singular (each block annihilates 1).
    Shapes: theta [S+1, A], weights [S+1] -> [D, D].
    """
    th = np.asarray(theta, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if th.ndim != 2 or w.shape != th.shape[:1]:
        raise ShapeError(f"theta [S+1, A] and weights [S+1] disagree: {list(th.shape)}, {list(w.shape)}")
    _check_weights(w)
    pi = softmax(th)
    n, na = th.shape
    f = np.zeros((n * na, n * na))
    for s in range(n):
        f[s * na:(s + 1) * na, s * na:(s + 1) * na] = w[s] * (np.diag(pi[s]) - np.outer(pi[s], pi[s]))
    return f


def natural_gradient(theta: ArrayLike, grad: ArrayLike, weights: ArrayLike, *, damping: float = 0.0) -> FloatArray:
    """(F + damping I)^{-1} grad; damping = 0 gives the minimum-norm least-squares solution F^+ grad.

    Spec: TR-09 (natural gradient; for the tabular softmax with weights d^pi and grad = grad J,
    F^+ grad J = A^pi(s, .) - mean_a A^pi(s, .), Kakade 2001). Shapes: [S+1, A] -> [S+1, A].

    damping = 0 is solved block by block in closed form, not by a generic pseudo-inverse (whose cut-off
    dropped the genuine small eigenvalues of a near-deterministic state, rho(s) pi_min, and returned 0 there).
    Block s is F_s = w_s (diag(p) - p p^T) with p = pi(.|s). Let N be the actions with p_a > 0. F_s has range
    {y : y_a = 0 off N, sum_N y = 0} and null space spanned by 1_N and the e_a off N. So, for w_s > 0,
    x_a = u_a - mean_N(u), with u_a = (y_a - c) / (w_s p_a) and c = mean_N(y) (the projection of y onto the
    range), solves F_s x = y - c 1_N with x orthogonal to the null space; x is 0 off N and where w_s = 0.
    Actions whose probability underflows to 0 (logit gaps beyond about 745) get 0.
    """
    th = np.asarray(theta, dtype=np.float64)
    g = np.asarray(grad, dtype=np.float64)
    if g.shape != th.shape:
        raise ShapeError(f"grad must have shape {list(th.shape)}, got {list(g.shape)}")
    if not np.all(np.isfinite(g)):
        raise ReferenceError_("grad must be finite")
    damping = _real(damping, "damping")  # True ran as damping 1.0 (bool is an int); 0-d arrays were refused
    if not (np.isfinite(damping) and damping >= 0.0):
        raise ReferenceError_(f"damping must be a finite number >= 0, got {damping!r}")
    if damping > 0.0:
        f = fisher_matrix(th, weights)
        x = np.linalg.solve(f + float(damping) * np.eye(f.shape[0]), g.ravel())
        return np.asarray(x.reshape(th.shape), dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if th.ndim != 2 or w.shape != th.shape[:1]:
        raise ShapeError(f"theta [S+1, A] and weights [S+1] disagree: {list(th.shape)}, {list(w.shape)}")
    _check_weights(w)
    pi = softmax(th)
    out = np.zeros_like(g)
    for s in range(th.shape[0]):
        support = pi[s] > 0.0
        if w[s] == 0.0:
            continue
        y = g[s, support]
        c = math.fsum(y.tolist()) / y.size
        # in two divisions: w_s p_a underflowed to 0 for a positive weight and probability (7.8e-11 * 1.4e-315),
        # and 0 / 0 gave NaN where the exact x is 0 (a zero gradient row) or finite
        dev = y - c
        with np.errstate(over="ignore"):
            u = np.where(dev == 0.0, 0.0, (dev / w[s]) / pi[s, support])
        out[s, support] = u - math.fsum(u.tolist()) / u.size
    if not np.all(np.isfinite(out)):
        s_bad = int(np.argwhere(~np.isfinite(out))[0][0])
        raise ReferenceError_(f"the natural gradient overflows float64 at state {s_bad} (a near-deterministic "
                              f"policy with a tiny weight): pass damping > 0")
    return out


def conjugate_gradient(
    matvec: Callable[[FloatArray], FloatArray],
    b: ArrayLike,
    *,
    iters: int = 10,
    rtol: float = 0.0,
) -> FloatArray:
    """Conjugate gradient for A x = b with A symmetric positive definite, given x -> A x; x0 = 0.

    Spec: TR-09 ("H^{-1} g solved via CG"; open choice 12: 10 iterations). Stops early when
    ||r|| <= rtol ||b||, and when CG has converged as far as rounding allows: the residual is below
    n eps ||b|| (n = b.size), or the curvature p^T A p of the next direction is within 8 n eps of the largest
    curvature seen (relative to |p|^2). Without these stops the iterations after convergence ran into rounding:
    on an undamped Fisher matrix (singular, TR-09's F) p^T A p came out -8e-20 and a valid ``trpo_exact(damping=0)``
    raised; on a damped one the residual underflowed to 1e-320 and p^T A p to 0. Exact after dim(b) iterations in
    exact arithmetic. The curvature stop cannot tell a singular direction from a genuine eigenvalue below
    8 n eps of the largest curvature seen (condition number beyond about 1 / (8 n eps)): on A = diag(1, 1e-15),
    b = (1, 1) it returns (2, 2), solved in the well-conditioned directions only, residual (-1, 1), with no error,
    as it returns after ``iters`` iterations whether or not ``rtol`` was met (open choice 12). Check the residual
    where it matters; a plain CG on such a system in float64 is no better once n or the condition grows.
    Shapes: b [...] -> [...]. ``rtol`` must be a finite real number >= 0 and ``b`` finite
    (:class:`ReferenceError_` naming them: a negative rtol made the solver stop before its first iteration and
    return 0). ``matvec`` must return the shape of its argument (``ShapeError``) and a finite curvature p^T A p,
    > 0 on the first direction and not below minus the rounding level after it (``ReferenceError_``: A is not
    positive (semi)definite; a NaN or inf from the matvec made x NaN).
    """
    bb = np.asarray(b, dtype=np.float64)
    iters = validate_int(iters, "iters", minimum=1)
    tol = _real(rtol, "rtol")
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ReferenceError_(f"rtol must be a finite number >= 0, got {rtol!r}")
    if not np.all(np.isfinite(bb)):
        i = int(np.flatnonzero(~np.isfinite(bb.ravel()))[0])
        raise ReferenceError_(f"b must be finite, got b.ravel()[{i}] = {bb.ravel()[i].item()!r}")
    x = np.zeros_like(bb)
    r = bb.copy()
    p = r.copy()
    rr = float(np.sum(r * r))
    bnorm = float(np.sqrt(np.sum(bb * bb)))
    level = 8.0 * bb.size * float(np.finfo(np.float64).eps)  # rounding level of a sum of b.size products
    stop = max((tol * bnorm) ** 2, (level * bnorm) ** 2)
    max_curv = 0.0  # the largest Rayleigh quotient p^T A p / |p|^2 seen: an estimate of ||A||
    for _ in range(iters):
        if rr <= stop or rr == 0.0:
            break
        ap = np.asarray(matvec(p), dtype=np.float64)
        if ap.shape != p.shape:  # a matvec of another shape broadcast into a wrong x
            raise ShapeError(f"conjugate_gradient: matvec returned shape {ap.shape} for a vector of shape {p.shape}")
        pap = float(np.sum(p * ap))
        pp = float(np.sum(p * p))
        noise = level * max_curv * pp  # 0 on the first direction
        if not (math.isfinite(pap) and (pap > 0.0 if max_curv == 0.0 else pap >= -noise)):
            # NaN fails this too (it passed "pap <= 0" and x came back NaN)
            raise ReferenceError_(f"conjugate_gradient: p^T A p = {pap!r} is not finite and > 0; A is not positive "
                                  f"definite (or the matvec returned NaN / inf)")
        if pap <= noise:  # curvature at rounding level: converged as far as float64 allows (a singular A)
            break
        max_curv = max(max_curv, pap / pp)
        alpha = rr / pap
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = float(np.sum(r * r))
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


@dataclass(frozen=True)
class LineSearchResult:
    """theta after the search, whether a step was accepted, and the number of halvings used."""

    theta: FloatArray
    accepted: bool
    backtracks: int


def backtracking_line_search(
    theta: ArrayLike,
    full_step: ArrayLike,
    *,
    objective: Callable[[FloatArray], float],
    constraint: Callable[[FloatArray], float],
    delta: float,
    shrink: float = 0.5,
    max_backtracks: int = 15,
) -> LineSearchResult:
    """Try theta + shrink^j full_step, j = 0, 1, ...; accept the first with constraint <= delta and improvement.

    Spec: TR-10 (TRPO's line search: KL <= delta and objective(theta_new) > objective(theta)). If no
    candidate qualifies, theta is returned unchanged with ``accepted=False``.
    """
    th = np.asarray(theta, dtype=np.float64)
    step = np.asarray(full_step, dtype=np.float64)
    max_backtracks = validate_int(max_backtracks, "max_backtracks")
    if not (0.0 < _real(delta, "delta") < np.inf and 0.0 < _real(shrink, "shrink") < 1.0):  # inf accepted any step
        raise ReferenceError_(f"need a finite delta > 0 and 0 < shrink < 1; got {delta!r}, {shrink!r}")
    f0 = objective(th)
    for j in range(max_backtracks + 1):
        cand = th + shrink**j * step
        if constraint(cand) <= delta and objective(cand) > f0:
            return LineSearchResult(cand, True, j)
    return LineSearchResult(th, False, max_backtracks + 1)


# =============================================================================== exact TRPO / PPO loops
@dataclass(frozen=True)
class PolicyOptResult:
    """Iterates of an exact policy-optimisation loop: theta [K+1, S+1, A], J [K+1], KL(old||new) mean [K]."""

    thetas: FloatArray
    j: FloatArray
    kl: FloatArray

    @property
    def theta(self) -> FloatArray:
        return np.asarray(self.thetas[-1], dtype=np.float64)


def trpo_exact(
    mdp: FiniteMDP,
    theta0: ArrayLike,
    *,
    delta: float = 0.01,
    iters: int,
    cg_iters: int = 10,
    damping: float = 0.1,
    improvement: Literal["j", "surrogate"] = "j",
    max_backtracks: int = 15,
) -> PolicyOptResult:
    """TRPO with exact advantages: x = CG(F_rho + damping I, grad K), full step sqrt(2 delta / x^T (F + damping I) x) x.

    Spec: TR-09, TR-10 (E-56: constraint E_{s ~ rho^{pi_old}} KL(old || new) <= delta; open choice 12:
    delta = 0.01, 10 CG iterations, damping 0.1). grad K(theta; theta_k) at theta_k is grad J (TR-06).
    A backtracking line search then requires mean KL <= delta and improvement of the exact J (``"j"``, so
    J never decreases) or of the exact surrogate K(.; theta_k) (``"surrogate"``, the practical rule); a
    rejected step leaves theta unchanged for that iteration. ``delta`` must be a finite number > 0 and ``damping``
    a finite number >= 0 (``ReferenceError_``; a NaN damping failed later as "logits must be finite").
    Shapes: theta0 [S+1, A].
    """
    if improvement not in ("j", "surrogate"):
        raise ReferenceError_(f"improvement must be 'j' or 'surrogate', got {improvement!r}")
    damping = _real(damping, "damping")
    if not (math.isfinite(damping) and damping >= 0.0):
        raise ReferenceError_(f"damping must be a finite number >= 0, got {damping!r}")
    delta = _real(delta, "delta")
    if not (math.isfinite(delta) and delta > 0.0):
        raise ReferenceError_(f"delta (the KL radius) must be a finite number > 0, got {delta!r}")
    iters = validate_int(iters, "iters")
    cg_iters = validate_int(cg_iters, "cg_iters", minimum=1)
    max_backtracks = validate_int(max_backtracks, "max_backtracks")
    th = _theta(mdp, theta0, "theta0").copy()
    thetas, js, kls = [th.copy()], [j_theta(mdp, th)], []
    for _ in range(iters):
        pi_old = softmax(th)
        w = state_weights(mdp, pi_old)
        g = grad_j_exact(mdp, th)
        base = th.copy()

        def fvp(v: FloatArray, base: FloatArray = base, w: FloatArray = w) -> FloatArray:
            return fisher_vector_product(base, v, w) + damping * v

        x = conjugate_gradient(fvp, g, iters=cg_iters)
        xfx = float(np.sum(x * fvp(x)))
        if xfx <= 0.0 or not np.any(g):
            thetas.append(th.copy())
            js.append(js[-1])
            kls.append(0.0)
            continue
        step = np.sqrt(2.0 * delta / xfx) * x

        def objective(t: FloatArray, base: FloatArray = base) -> float:
            return j_theta(mdp, t) if improvement == "j" else surrogate_k(mdp, t, base)

        def constraint(t: FloatArray, pi_old: FloatArray = pi_old) -> float:
            return policy_kl(mdp, pi_old, softmax(t), direction="old_new", reduce="mean")

        res = backtracking_line_search(th, step, objective=objective, constraint=constraint, delta=delta,
                                       max_backtracks=max_backtracks)
        th = res.theta.copy()
        thetas.append(th.copy())
        js.append(j_theta(mdp, th))
        kls.append(constraint(th))
    return PolicyOptResult(np.stack(thetas), np.asarray(js), np.asarray(kls))


def ppo_clip_surrogate_exact(
    mdp: FiniteMDP, theta: ArrayLike, theta_k: ArrayLike, *, eps: float
) -> tuple[float, FloatArray]:
    """Exact E_{tau ~ pi_k}[sum_t gamma^t C_eps(pi_theta/pi_k (a_t|s_t), A^{pi_k}(s_t, a_t))] and its gradient.

    Spec: TR-15, TR-16 (the expectation of PPO's objective with exact advantages):
    L = sum_s d^{pi_k}(s) sum_a pi_k(a|s) C_eps(ell_sa, A^{pi_k}(s, a)), ell = pi_theta / pi_k;
    dL/dtheta[s, b] = d(s) pi_theta(b|s) (c_b - sum_a pi_theta(a|s) c_a), c = dC/d ell (TR-13).
    Shapes: theta, theta_k [S+1, A] -> (scalar, [S+1, A]).

    Where pi_k(a|s) underflows to 0 (a logit gap of -800) or ell overflows (pi_k subnormal), ell is not a finite
    number but the term is: pi_k C(pi / pi_k, A) = min(pi A, clip(pi, (1 - eps) pi_k, (1 + eps) pi_k) A), and
    dC/d ell is that of ell -> +inf (0 for A > 0, A for A < 0). These entries are computed so (they raised
    "ratio must be finite" before 2026-12-07); every other entry as the formula above.
    """
    pi = softmax(_theta(mdp, theta))
    pk = softmax(_theta(mdp, theta_k, "theta_k"))
    d = discounted_occupancy(mdp, pk)
    d[mdp.term] = 0.0
    adv = a_pi(mdp, pk)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = pi / pk
    ok = np.isfinite(ratio)
    ell = np.where(ok, ratio, 1.0)  # placeholder 1 where pi_k = 0 or the ratio overflowed (handled below)
    e = float(eps)
    term = np.where(ok, pk * ppo_clip_objective(ell, adv, eps=eps),
                    np.minimum(pi * adv, np.clip(pi, (1.0 - e) * pk, (1.0 + e) * pk) * adv))
    val = float(np.sum(d[:, None] * term))
    c = np.where(ok, ppo_clip_ratio_gradient(ell, adv, eps=eps), np.where(adv < 0, adv, 0.0))
    grad = d[:, None] * pi * (c - np.sum(pi * c, axis=1, keepdims=True))
    return val, np.asarray(grad, dtype=np.float64)


def ppo_clip_exact(
    mdp: FiniteMDP,
    theta0: ArrayLike,
    *,
    eps: float = 0.2,
    lr: float,
    epochs: int = 10,
    iters: int,
) -> PolicyOptResult:
    """PPO-Clip with exact advantages: per iteration, ``epochs`` full-batch gradient-ascent steps on L(.; theta_k).

    Spec: TR-15, TR-16 (first-order solve of the clipped subproblem; open choice 12: ~10 epochs).
    """
    iters = validate_int(iters, "iters")
    epochs = validate_int(epochs, "epochs", minimum=1)
    lr = validate_step_size(lr, "lr")  # a string '0.1' raised a raw TypeError
    th = _theta(mdp, theta0, "theta0").copy()
    thetas, js, kls = [th.copy()], [j_theta(mdp, th)], []
    for _ in range(iters):
        base = th.copy()
        for _e in range(epochs):
            _, g = ppo_clip_surrogate_exact(mdp, th, base, eps=eps)
            th = th + lr * g
        thetas.append(th.copy())
        js.append(j_theta(mdp, th))
        kls.append(policy_kl(mdp, softmax(base), softmax(th)))
    return PolicyOptResult(np.stack(thetas), np.asarray(js), np.asarray(kls))


def ppo_penalty_exact(
    mdp: FiniteMDP,
    theta0: ArrayLike,
    *,
    beta: float = 1.0,
    d_targ: float | None = 0.01,
    lr: float,
    epochs: int = 10,
    iters: int,
) -> PolicyOptResult:
    """PPO-Penalty with exact advantages: ascend (K(theta; theta_k) - C) - beta E_{s~rho_k} KL(pi_k || pi_theta).

    Spec: TR-12 (the penalty version). Gradient of the penalty: beta rho(s) (pi_theta(.|s) - pi_k(.|s)).
    With ``d_targ`` the adaptive rule of Schulman et al. (2017): after each iteration beta /= 2 if
    KL < d_targ / 1.5, beta *= 2 if KL > 1.5 d_targ; ``d_targ=None`` keeps beta fixed.
    """
    iters = validate_int(iters, "iters")
    epochs = validate_int(epochs, "epochs", minimum=1)
    lr = validate_step_size(lr, "lr")
    if not (math.isfinite(_real(beta, "beta")) and float(beta) > 0.0):
        raise ReferenceError_(f"need a finite beta > 0; got {beta!r}")
    if d_targ is not None and not (math.isfinite(_real(d_targ, "d_targ")) and float(d_targ) > 0.0):
        raise ReferenceError_(f"d_targ must be None or a finite KL target > 0, got {d_targ!r} (NaN never adapted "
                              f"beta)")
    th = _theta(mdp, theta0, "theta0").copy()
    thetas, js, kls = [th.copy()], [j_theta(mdp, th)], []
    b = float(beta)
    for _ in range(iters):
        base = th.copy()
        pk = softmax(base)
        w = state_weights(mdp, pk)
        for _e in range(epochs):
            g = grad_surrogate_k(mdp, th, base) - b * w[:, None] * (softmax(th) - pk)
            g[mdp.term] = 0.0
            th = th + lr * g
        kl = policy_kl(mdp, pk, softmax(th))
        if d_targ is not None:
            if kl < d_targ / 1.5:
                b /= 2.0
            elif kl > 1.5 * d_targ:
                b *= 2.0
        thetas.append(th.copy())
        js.append(j_theta(mdp, th))
        kls.append(kl)
    if not np.all(np.isfinite(js)):
        raise NotConvergedError("ppo_penalty_exact produced a non-finite J")
    return PolicyOptResult(np.stack(thetas), np.asarray(js), np.asarray(kls))
