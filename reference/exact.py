"""Exact policy evaluation by linear solves: V^pi, Q^pi, A^pi, J, occupancy, V*, Q* (MDP-20..25, BEL-04..24).

Time-index convention: see :mod:`reference.mdp` (acting in s_t yields r_t). Arrays are over S+ with
``term`` last; V(term) = 0 and Q(term, .) = 0 (MDP-20, MDP-21).

* gamma < 1: ``V^pi = (I - gamma P_pi)^{-1} r_pi`` on S+ (BEL-04). The matrix is non-singular and
  ``||(I - gamma P_pi)^{-1}||_inf = 1 / (1 - gamma)``, which turns a residual into an error bound.
* gamma = 1: the expected total reward is finite for every start iff every closed class of P_pi other
  than {term} is reward-free. A policy is *proper* when term is reachable from every state (BEL-35,
  erratum E-12); then ``V = (I - P_TT)^{-1} r_T`` on the non-terminal states T. For an improper policy
  the default is to raise :class:`ImproperPolicyError` naming the states from which term is
  unreachable; the error is :class:`DivergentReturnError` when a trapped class has non-zero mean
  reward (V = +inf for a positive-reward cycle, BEL-36) and :class:`NonSummableReturnError` when it
  has zero mean but non-zero rewards (BEL-38). The mean of a class whose rewards have both signs comes from
  its stationary law (Grassmann-Taksar-Heyman, entrywise accurate, up to :data:`DENSE_CLASS_MAX` states) or,
  for larger classes, from sparse renewal-cycle solves with a rigorous error window; it is called zero when
  its computed value is within that window. With ``improper="finite"`` a policy whose trapped classes
  are reward-free is evaluated exactly (their states have value 0). The same solve gives the expected
  number of steps E[T] before absorption; ``I - P_TT`` has condition number up to about 2 max E[T], so
  when ``2 max E[T] eps`` exceeds :data:`GAMMA1_MAX_REL_ERROR` the values cannot be trusted to float64
  accuracy and :class:`NotConvergedError` is raised instead of a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from reference.chains import ChainStructure, chain_structure, reachable_from, solve_linear
from reference.errors import (
    DivergentReturnError,
    ImproperPolicyError,
    NonSummableReturnError,
    NotConvergedError,
    ReferenceError_,
)
from reference.mdp import FiniteMDP, FloatArray, validate_policy
from reference.tolerance import tolerance

__all__ = [
    "GAMMA1_MAX_REL_ERROR",
    "Certified",
    "a_pi",
    "average_reward",
    "bias_value",
    "discounted_occupancy",
    "j_pi",
    "q_from_v",
    "q_pi",
    "stationary_distribution",
    "v_pi",
    "v_pi_certified",
]

Improper = Literal["raise", "finite"]


GAMMA1_MAX_REL_ERROR: float = 1e-6
"""gamma = 1: the largest relative error of V (estimated as 2 max E[T] eps, the condition number of I - P_TT
times the unit roundoff) that :func:`v_pi` returns a value with; beyond it, :class:`NotConvergedError`.
A birth-death chain with E[T] = 5e12 steps came back 1.3e-4 off, with no warning, before this check."""


def _identity(n: int, sparse: bool) -> FloatArray | sp.csr_array:
    return sp.identity(n, format="csr") if sparse else np.eye(n)


def _block(m: FloatArray | sp.csr_array, k: int) -> FloatArray | sp.csr_array:
    """The leading k x k block of m (the non-terminal states)."""
    if sp.issparse(m):
        return cast(Any, m)[:k, :k].tocsr()
    return np.asarray(m)[:k, :k]


def _dense(m: FloatArray | sp.csr_array) -> FloatArray:
    """m as a dense float64 array."""
    return np.asarray(cast(Any, m).toarray() if sp.issparse(m) else m, dtype=np.float64)


def _classify_traps(mdp: FiniteMDP, pi: FloatArray, cs: ChainStructure,
                    within: np.ndarray | None = None) -> ImproperPolicyError | None:
    """Return the error to raise at gamma = 1 for the closed classes other than {term}, or None; with
    ``within`` (bool [S+1], closed under the chain), only the classes inside it count."""
    inside = np.ones(cs.reaches_term.shape, dtype=bool) if within is None else within
    trapped = tuple(int(s) for s in np.flatnonzero(~cs.reaches_term & inside))
    if not trapped:
        return None
    nonzero = (mdp.reward_support_nonzero & (pi > 0)).any(axis=1)
    r_pi = mdp.reward_pi(pi)
    m = mdp.transition_pi(pi)
    divergent: list[tuple[list[int], float]] = []
    zero_mean: list[list[int]] = []
    for cls in cs.closed_classes:
        if mdp.term in cls or not inside[cls[0]]:  # a closed class lies wholly inside a closed set or outside it
            continue
        if not np.any(np.asarray(nonzero)[cls]):
            continue
        rc = r_pi[cls]
        sign = _class_sign(rc)
        if sign == 0:  # every expected reward is exactly 0 (stochastic rewards of mean 0): the mean is 0
            zero_mean.append([int(s) for s in cls])
            continue
        if sign is not None:
            # every expected reward has one sign and one is not 0: the stationary law is positive on the whole
            # class, so the mean has that sign, however small (a mean of 1e-15 fell inside the rounding window
            # and was reported as zero-mean); no stationary solve needed (a 30 000-state cycle ran out of memory)
            gain = float(_class_stationary(m, cls) @ rc) if cls.size <= DENSE_CLASS_MAX else float(sign) * np.nan
            divergent.append(([int(s) for s in cls], gain if np.isfinite(gain) and gain * sign > 0 else sign * 0.0))
            continue
        if cls.size > DENSE_CLASS_MAX:
            gain, window = _class_gain_sparse(m, cls, rc)
            if abs(gain) > window:
                divergent.append(([int(s) for s in cls], gain))
            else:
                zero_mean.append([int(s) for s in cls])
            continue
        mu = _class_stationary(m, cls)
        gain = float(mu @ rc)
        # mu from GTH has a small relative error in every entry (about k^2 eps at worst, k = |cls|), so the
        # computed mean mu r is within `window` of the exact one, with sum_i mu_i |r_i| <= max |r| as the scale.
        # (Until 2026-12-06 the window was 1e-12 scale, so a mean of 1e-13 per step, V = +inf, was reported as
        # zero-mean; until 2026-12-07 it carried the condition number of a LAPACK solve, and a 2000-state walk
        # with mean 0.01 fell inside a window of 0.019.)
        scale = float(mu @ np.abs(rc))
        window = tolerance(scale, terms=int(cls.size) ** 2 + int(cls.size))
        if abs(gain) > window:
            divergent.append(([int(s) for s in cls], gain))
        else:
            zero_mean.append([int(s) for s in cls])
    if divergent:  # every such class is named (only the first by index was, whatever the others' signs)
        signs = {1 if np.copysign(1.0, g) > 0 else -1 for _, g in divergent}
        sign = signs.pop() if len(signs) == 1 else 0
        def mean(g: float) -> str:
            side = ">" if np.copysign(1.0, g) > 0 else "<"
            return f"{g:+.6g}" if g != 0.0 else f"{side} 0 (every reward of the class has that sign)"

        parts = "; ".join(f"states {c[:20]}{' ...' if len(c) > 20 else ''} never reach term with mean reward "
                          f"{mean(g)} per step, so V = {'+' if np.copysign(1.0, g) > 0 else '-'}inf there"
                          for c, g in divergent)
        mixed = (" (classes of both signs: a transient state feeding both has no value at all; the error's "
                 "sign is 0)") if sign == 0 else ""
        return DivergentReturnError(f"gamma = 1: {parts} (BEL-36){mixed}; term is unreachable from states "
                                    f"{list(trapped)}", trapped, sign)
    if zero_mean:
        states = tuple(zero_mean[0])
        return NonSummableReturnError(
            f"gamma = 1: states {list(states)} form a closed class that never reaches term with zero mean "
            f"but non-zero rewards, so the total return has no sum (BEL-38; see reference.exact.bias_value "
            f"for the Cesaro/Abel value); term is unreachable from states {list(trapped)}", trapped)
    return ImproperPolicyError(
        f"gamma = 1 and the policy is improper: term is unreachable from states {list(trapped)} (the "
        f"closed classes they end in are reward-free, so V is finite there: pass improper='finite' to evaluate; "
        f"see BEL-35, erratum E-12)",
        trapped)


DENSE_CLASS_MAX: int = 2000
"""gamma = 1: closed classes up to this size get a dense stationary solve (GTH, O(k^3): 0.5 s at k = 1000, 7 s at
2000 here) when their mean reward's sign is not evident from the rewards themselves; larger ones get the sparse
renewal-cycle solve of :func:`_class_gain_sparse` (until 2026-12-07 they raised NotConvergedError)."""


def _class_gain_sparse(m: FloatArray | sp.csr_array, cls: np.ndarray, rc: FloatArray) -> tuple[float, float]:
    """Mean reward per step g = mu r of the irreducible closed class ``cls`` of the chain m, by renewal cycles
    through its first state j, and a rigorous bound on its error: returns (g, window) with |g - g_exact| <= window.

    Renewal-reward theorem: g = C / L, C = r_j + p h and L = 1 + p t, where p = P(j, rest), Q = P(rest, rest),
    h = (I - Q)^{-1} r_rest (expected reward until the walk hits j) and t = (I - Q)^{-1} 1 (expected hitting time
    of j). I - Q is a non-singular M-matrix (the class is irreducible), solved sparsely (:func:`chains.solve_linear`).
    The bound is a posteriori and needs no condition estimate: (I - Q)^{-1} >= 0 entrywise, so the exact errors
    are h - h_c = (I - Q)^{-1} res_h, |h - h_c| <= ||res_h||_inf t, with res the true residual (the computed one
    plus gamma_w (|b| + |I - Q| |x|), w the widest row), and t <= t_c / (1 - ||res_t||_inf). The window on C adds
    the rounding of p h_c; the one on g = C / L also the error of L. NotConvergedError when the window exceeds
    GAMMA1_MAX_REL_ERROR times the class's mean absolute reward per cycle (the sign could not be decided).
    """
    from reference.chains import solve_linear
    from reference.tolerance import counted_tolerance

    ms = sp.csr_array(m)
    j, rest = int(cls[0]), np.asarray(cls[1:], dtype=np.int64)
    q = cast(Any, ms)[rest][:, rest].tocsr()
    a = (sp.identity(rest.size, format="csr") - q).tocsr()
    p = np.asarray(cast(Any, ms)[[j]][:, rest].toarray(), dtype=np.float64).ravel()
    b = np.column_stack([rc[1:], np.abs(rc[1:]), np.ones(rest.size)])
    x = solve_linear(a, b)
    width = int(np.diff(a.indptr).max()) + 1
    res = np.abs(b - a @ x) + np.column_stack([counted_tolerance(1.0, roundings=width + 1)
                                                * (np.abs(b[:, i]) + abs(a) @ np.abs(x[:, i])) for i in range(3)])
    res_max = res.max(axis=0)
    if not (np.all(np.isfinite(x)) and res_max[2] < 0.5):
        raise NotConvergedError(f"gamma = 1: the hitting-time solve of a closed class of {cls.size} states did not "
                                f"converge (residual {res_max[2]:.3g}); its mean reward's sign is undecided")
    t_hi = x[:, 2] / (1.0 - res_max[2])  # >= the exact hitting times (entrywise)
    pt = float(p @ t_hi)
    h_c = x[:, 0]
    nd = int(np.count_nonzero(p)) + 2
    c = float(rc[0] + p @ h_c)
    c_err = res_max[0] * pt + counted_tolerance(abs(float(rc[0])) + float(p @ np.abs(h_c)), roundings=nd)
    l_c = 1.0 + float(p @ x[:, 2])
    l_err = (1.0 + pt) - l_c + counted_tolerance(1.0 + pt, roundings=nd)  # L_exact in [L_c - l_err, L_c + l_err]
    l_lo = l_c - abs(l_err)
    scale = abs(float(rc[0])) + float(p @ np.abs(x[:, 1]))  # E[sum of |r| over a cycle] (approximately)
    if not (l_lo > 0.0 and c_err <= GAMMA1_MAX_REL_ERROR * scale):
        raise NotConvergedError(
            f"gamma = 1: a closed class of {cls.size} states with rewards of both signs never reaches term, and its "
            f"mean reward per cycle {c:.3g} is certain only to within {c_err:.3g} (> GAMMA1_MAX_REL_ERROR = "
            f"{GAMMA1_MAX_REL_ERROR:.0e} of the cycle's absolute reward {scale:.3g}): expected cycle length "
            f"{l_c:.3g}; whether V is infinite or has no sum is undecided")
    g = c / l_c
    # |C/L - C_c/L_c| <= (c_err + |C_c| |L - L_c| / L_lo) / L_lo, plus the rounding of the division
    window = (c_err + abs(c) * abs(l_err) / l_lo) / l_lo + counted_tolerance(abs(g), roundings=1)
    return g, window


def _class_sign(r: FloatArray) -> int | None:
    """+1 / -1 if every entry of ``r`` is >= 0 / <= 0 and one is not 0; 0 if all are 0; None for both signs."""
    if np.all(r == 0.0):
        return 0
    if np.all(r >= 0.0):
        return 1
    if np.all(r <= 0.0):
        return -1
    return None


def _class_stationary(m: FloatArray | sp.csr_array, cls: np.ndarray) -> FloatArray:
    """Stationary distribution of the irreducible closed class ``cls`` of the chain m, by the
    Grassmann-Taksar-Heyman algorithm: Gaussian elimination that only adds and multiplies non-negative numbers
    (the pivot is the sum of the remaining off-diagonal entries of its row, never 1 - p_ii), so every entry of mu
    has a small relative error whatever the conditioning of I - P (Grassmann, Taksar and Heyman 1985; O'Cinneide
    1993). The earlier LAPACK solve of mu (I - P) = 0 carried an error of cond(I - P) eps, 8e6 eps for two blocks
    coupled with probability 2^-20, which forced a window so wide that a mean of 0.01 was called 0."""
    sub = m[np.ix_(cls, cls)] if not sp.issparse(m) else m[cls][:, cls]
    a = np.array(sub.toarray() if sp.issparse(sub) else sub, dtype=np.float64)
    k = cls.size
    for n in range(k - 1, 0, -1):
        s = float(a[n, :n].sum())  # > 0: the class is irreducible, so state n reaches the states before it
        a[:n, n] /= s
        a[:n, :n] += np.outer(a[:n, n], a[n, :n])
    mu = np.zeros(k)
    mu[0] = 1.0
    for j in range(1, k):
        mu[j] = float(mu[:j] @ a[:j, j])
    return np.asarray(mu / mu.sum(), dtype=np.float64)


def v_pi(mdp: FiniteMDP, pi: FloatArray, *, improper: Improper = "raise") -> FloatArray:
    """Exact V^pi(s) = E^pi[G_0 | s_0 = s] by a linear solve; shape [S] with V(term) = 0.

    Spec: MDP-20, BEL-04 (V^pi is the unique solution of V = B^pi V for gamma < 1), BEL-35 (gamma = 1).

    gamma < 1: solves ``(I - gamma P_pi) V = r_pi`` on S+. gamma = 1: see the module docstring.
    """
    return _v_pi(mdp, pi, improper, from_p0=False)


def _v_pi(mdp: FiniteMDP, pi: FloatArray, improper: Improper, *, from_p0: bool) -> FloatArray:
    """:func:`v_pi`; with ``from_p0`` at gamma = 1, only on the states p0 can reach (0 elsewhere: for J)."""
    if improper not in ("raise", "finite"):  # "Raise", None or True ran as "finite"
        raise ReferenceError_(f"improper must be 'raise' or 'finite', got {improper!r}")
    pi = validate_policy(mdp, pi)
    r_pi = mdp.reward_pi(pi)
    m = mdp.transition_pi(pi)
    n = mdp.n_states_plus
    within = reachable_from(m, np.asarray(mdp.p0) > 0.0) if from_p0 and mdp.gamma == 1.0 else None
    v = _v_pi_solve(mdp, pi, r_pi, m, n, improper, within)
    if not np.all(np.isfinite(v)):  # +inf means divergence (BEL-36); a finite value beyond float64 is not that
        raise NotConvergedError(f"V^pi overflows float64 (max |r| = {mdp.max_abs_reward:.3g}): the values are finite "
                                f"but beyond the largest float; rescale the rewards")
    return v


def _v_pi_solve(mdp: FiniteMDP, pi: FloatArray, r_pi: FloatArray, m: FloatArray | sp.csr_array, n: int,
                improper: Improper, within: np.ndarray | None = None) -> FloatArray:
    """The solves of :func:`v_pi` (see there)."""
    if mdp.gamma < 1.0:
        # V(term) = 0 is known (MDP-20); solving on S only also keeps the system well conditioned when
        # gamma is within rounding of 1 (the term row of I - gamma P_pi would be (1 - gamma) V(term) = 0).
        ns = mdp.n_states
        a = _identity(ns, sp.issparse(m)) - mdp.gamma * _block(m, ns)
        v = np.zeros(n)
        v[:ns] = solve_linear(a, r_pi[:ns])
        return v
    cs = chain_structure(m, mdp.term)
    err = _classify_traps(mdp, pi, cs, within)
    if err is not None and (improper == "raise" or type(err) is not ImproperPolicyError):
        raise err
    # closed classes (term and, for improper="finite", reward-free traps) have value 0; every other
    # state is transient, so I - P restricted to them is non-singular (within a closed set: its rows only
    # reach states inside it)
    solve_on = np.flatnonzero(cs.transient if within is None else cs.transient & within)
    v = np.zeros(n)
    if solve_on.size:
        if sp.issparse(m):
            sub = m[solve_on][:, solve_on]
            a = sp.identity(solve_on.size, format="csr") - sub
        else:
            a = np.eye(solve_on.size) - np.asarray(m)[np.ix_(solve_on, solve_on)]
        # one solve for V and for E[T] (the expected steps before absorption): E[T] bounds the conditioning
        rhs = np.stack([r_pi[solve_on], np.ones(solve_on.size)], axis=1)
        try:
            x = solve_linear(a, rhs)
        except (np.linalg.LinAlgError, sla.LinAlgError) as exc:
            raise NotConvergedError(f"gamma = 1: I - P_pi on the transient states is numerically singular "
                                    f"(expected episode lengths beyond float64 resolution): {exc}") from None
        _check_gamma1_conditioning(x[:, 1], "V")
        v[solve_on] = x[:, 0]
    return v


def _check_gamma1_conditioning(steps: FloatArray, what: str) -> None:
    """NotConvergedError when the expected episode lengths ``steps`` (E[T] from each transient state) make
    I - P_pi too ill-conditioned for ``what`` to be trusted to GAMMA1_MAX_REL_ERROR (condition ~ 2 max E[T])."""
    longest = float(np.max(steps)) if steps.size and np.all(np.isfinite(steps)) else (0.0 if not steps.size
                                                                                         else float("inf"))
    if steps.size and not float(np.min(steps)) >= 0.5:  # E[T] >= 1 from every transient state: a computed E[T]
        # below that is the solve's own garbage (a birth-death chain with E[T] = 1.8e21 gave -3.6e16 and V < 0)
        longest = float("inf")
    rel = 2.0 * longest * float(np.finfo(np.float64).eps)
    if not rel <= GAMMA1_MAX_REL_ERROR:
        raise NotConvergedError(
            f"gamma = 1: the policy's expected episode length reaches {longest:.3g} steps, so I - P_pi has "
            f"condition number about {2 * longest:.3g} and {what} could be off by a relative {rel:.1e} "
            f"(> GAMMA1_MAX_REL_ERROR = {GAMMA1_MAX_REL_ERROR:.0e}); no float64 value is returned")


def q_from_v(mdp: FiniteMDP, v: FloatArray) -> FloatArray:
    """Q(s, a) = E[r + gamma V(s') | s, a] = r(s, a) + gamma (P V)(s, a); shape [S, A].

    Spec: BEL-20 (with V = V^pi this is Q^pi; with V = V* it is Q*). Q(term, .) = gamma V(term) = 0.
    """
    q = mdp.lookahead(v)
    q[mdp.term] = 0.0
    return q


def q_pi(mdp: FiniteMDP, pi: FloatArray, *, improper: Improper = "raise") -> FloatArray:
    """Exact Q^pi(s, a) = E^pi[G_0 | s_0 = s, a_0 = a] = r(s, a) + gamma E[V^pi(s') | s, a]; shape [S, A].

    Spec: MDP-21, MDP-25, BEL-09.
    """
    return q_from_v(mdp, v_pi(mdp, pi, improper=improper))


def a_pi(mdp: FiniteMDP, pi: FloatArray, *, improper: Improper = "raise") -> FloatArray:
    """Advantage A^pi(s, a) = Q^pi(s, a) - V^pi(s) (PG-20, used by PI in BEL-33); shape [S, A].

    Computed as sum_b pi(b | s) (Q^pi(s, a) - Q^pi(s, b)), which equals Q - V, with the differences taken first:
    where pi(. | s) is nearly deterministic, Q - V kept an absolute error of about eps |V| on an advantage of
    size pi_rare |dQ| (a logit gap of 33: 1e-3 relative in grad J, and the rows of d pi A no longer summed to 0).
    """
    v = v_pi(mdp, pi, improper=improper)
    p = validate_policy(mdp, pi)
    q = q_from_v(mdp, v)
    out = np.zeros_like(q)
    for b in range(mdp.n_actions):
        out += p[:, b:b + 1] * (q - q[:, b:b + 1])
    return out


def j_pi(mdp: FiniteMDP, pi: FloatArray, *, improper: Improper = "raise") -> float:
    """J(pi) = E_{s_0 ~ p0}[V^pi(s_0)] (MDP-17, PG-01).

    At gamma = 1 only the states p0 can reach under pi matter: a trap no start state reaches does not make J
    undefined (it raised DivergentReturnError for a J of 1; review 2026-12-07), one that p0 reaches raises as in
    :func:`v_pi`.
    """
    return float(mdp.p0 @ _v_pi(mdp, pi, improper, from_p0=True))


def discounted_occupancy(mdp: FiniteMDP, pi: FloatArray, *, normalized: bool = False) -> FloatArray:
    """Discounted state occupancy d^pi(s) = sum_t gamma^t P^pi(s_t = s), s_0 ~ p0; shape [S].

    Solves ``d^T (I - gamma P_pi) = p0^T``. ``sum_s d(s) = 1 / (1 - gamma)`` (term included); with
    ``normalized=True`` returns ``(1 - gamma) d``, a distribution. At gamma = 1 (the policy proper on the states
    p0 can reach; a trap p0 never reaches has d = 0 and is allowed) d is the expected number of visits of each
    non-terminal state before T; d(term) is then set to 0 and ``normalized`` divides by E[T].

    Spec: MDP-20, TR-02 (the discounted state occupancy of the performance-difference lemma).
    """
    pi = validate_policy(mdp, pi)
    m = mdp.transition_pi(pi)
    n = mdp.n_states_plus
    if mdp.gamma < 1.0:
        ns = mdp.n_states
        a = _identity(ns, sp.issparse(m)) - mdp.gamma * _block(m, ns)
        at = cast(Any, a).T.tocsr() if sp.issparse(a) else np.asarray(a).T
        d = np.zeros(n)
        d[:ns] = solve_linear(at, np.asarray(mdp.p0)[:ns])
        # term: d(term) = (p0(term) + gamma sum_s d(s) P_pi(s, term)) / (1 - gamma)
        col = _dense(cast(Any, m)[:, [mdp.term]]).ravel() if sp.issparse(m) else np.asarray(m)[:, mdp.term]
        d[mdp.term] = (mdp.p0[mdp.term] + mdp.gamma * float(d[:ns] @ col[:ns])) / (1.0 - mdp.gamma)
        return (1.0 - mdp.gamma) * d if normalized else d
    cs = chain_structure(m, mdp.term)
    reach = reachable_from(m, np.asarray(mdp.p0) > 0.0)  # d = 0 off the states p0 can reach
    trapped = tuple(int(s) for s in np.flatnonzero(~cs.reaches_term & reach))
    if trapped:  # the visit counts are infinite there whatever the rewards (the value's errors spoke of V and of
        # improper='finite', which this function does not take)
        raise ImproperPolicyError(f"gamma = 1 and the policy is improper: term is unreachable from states "
                                  f"{list(trapped)}, which p0 reaches, so the expected number of visits d(s) is "
                                  f"infinite there (BEL-35); no occupancy measure exists", trapped)
    keep = np.flatnonzero(reach[:mdp.n_states])
    if sp.issparse(m):
        block = sp.identity(keep.size, format="csr") - m[keep][:, keep]
        a = block.T.tocsr()
    else:
        block = np.eye(keep.size) - np.asarray(m)[np.ix_(keep, keep)]
        a = block.T
    d = np.zeros(n)
    # the same guard as v_pi: E[T] bounds the conditioning of I - P_TT (at gamma = 1 with E[T] = 1e13 the
    # occupancy came back 1e-3 off, with no error; a numerically singular system raised numpy's LinAlgError)
    try:
        _check_gamma1_conditioning(np.asarray(solve_linear(block, np.ones(keep.size))), "the occupancy")
        d[keep] = solve_linear(a, np.asarray(mdp.p0)[keep])
    except (np.linalg.LinAlgError, sla.LinAlgError) as exc:
        raise NotConvergedError(f"gamma = 1: I - P_pi on the non-terminal states is numerically singular "
                                f"(expected episode lengths beyond float64 resolution): {exc}") from None
    if normalized:
        total = d.sum()
        return d / total if total > 0 else d
    return d


@dataclass(frozen=True)
class Certified:
    """A value with a certified bound: ``||value - exact||_inf <= bound``."""

    value: FloatArray
    bound: float
    residual: float


def v_pi_certified(mdp: FiniteMDP, pi: FloatArray) -> Certified:
    """V^pi with a residual certificate (gamma < 1): ``||V - V^pi||_inf <= ||B^pi V - V||_inf / (1 - gamma)``.

    Spec: BEL-04, BEL-08. The bound follows from ``V - V^pi = (I - gamma P_pi)^{-1} (V - B^pi V)`` and
    ``||(I - gamma P_pi)^{-1}||_inf = 1 / (1 - gamma)``. The residual is evaluated in float64 and its own
    rounding (:func:`reference.bellman.residual_rounding_bound`) is added before dividing: the computed
    residual alone could round to 0 where the exact one is not (a bound of 0 was returned for an error of
    2.4e-3 on values of order 1e10).
    """
    from reference.bellman import certificate_factor, residual_rounding_bound

    if mdp.gamma >= 1.0:
        raise ValueError("v_pi_certified needs gamma < 1")
    pi = validate_policy(mdp, pi)
    v = v_pi(mdp, pi)
    resid = float(np.max(np.abs(mdp.reward_pi(pi) + mdp.gamma * (mdp.transition_pi(pi) @ v) - v)))
    delta = residual_rounding_bound(mdp, float(np.max(np.abs(v))), stochastic_policy=True)
    return Certified(v, (resid + delta) * certificate_factor(mdp, pi), resid)  # 1 / (1 - gamma rho)


def stationary_distribution(mdp: FiniteMDP, pi: FloatArray) -> FloatArray:
    """Cesaro-limit matrix P*_pi = lim (1/M) sum_{t<M} P_pi^t, dense shape [S, S] (small MDPs).

    Row s is the long-run state distribution from s: sum over closed classes C of the absorption
    probability into C times C's stationary distribution.

    Spec: BEL-37.
    """
    pi = validate_policy(mdp, pi)
    m = mdp.transition_pi(pi)
    md = _dense(m)
    cs = chain_structure(md, mdp.term)
    n = mdp.n_states_plus
    out = np.zeros((n, n))
    trans = np.flatnonzero(cs.transient)
    if trans.size:
        try:
            nt = np.linalg.inv(np.eye(trans.size) - md[np.ix_(trans, trans)])
        except np.linalg.LinAlgError as exc:
            raise NotConvergedError(f"the transient part of P_pi is numerically singular (expected times to "
                                    f"absorption beyond float64 resolution): {exc}") from None
        # rows of N = (I - P_TT)^-1 sum to the expected time before absorption (N >= 0): it bounds the
        # conditioning, as E[T] does for v_pi (a walk with expected absorption time ~1e19 gave absorption
        # probabilities summing to 0.003 with no error)
        _check_gamma1_conditioning(nt.sum(axis=1), "P*")
    for cls in cs.closed_classes:
        mu = _class_stationary(md, cls)
        out[np.ix_(cls, cls)] = mu[None, :]
        if trans.size:
            absorb = nt @ md[np.ix_(trans, cls)].sum(axis=1)
            out[np.ix_(trans, cls)] = absorb[:, None] * mu[None, :]
    return np.maximum(out, 0.0)  # probabilities: >= 0 exactly; rounding gave -3.3e-18


def average_reward(mdp: FiniteMDP, pi: FloatArray) -> FloatArray:
    """Average reward R^pi(s) = liminf_M (1/M) E^pi[sum_{t<(M ∧ T)} r_t | s_0 = s] = (P*_pi r_pi)(s); [S].

    Spec: BEL-37 (erratum E-13: the sum runs to (M ∧ T) - 1). For a finite chain the liminf is a limit
    and equals the Cesaro limit P*_pi r_pi; term contributes 0.
    """
    pi = validate_policy(mdp, pi)
    return stationary_distribution(mdp, pi) @ mdp.reward_pi(pi)


def bias_value(mdp: FiniteMDP, pi: FloatArray) -> FloatArray:
    """Cesaro and Abel value of a zero-gain chain at gamma = 1: h = D r_pi, D = (I - P + P*)^{-1} - P*.

    Spec: BEL-38 (erratum E-14: Cesaro and Abel are different methods; for a finite chain with zero
    average reward both give h). Cesaro: the partial sums S_M = sum_{t<M} P^t r satisfy
    S_M = h - P^M h, whose Cesaro mean tends to h - P* h = h. Abel: (I - gamma P)^{-1} r = h + O(1 - gamma)
    as gamma -> 1 (Laurent expansion).

    Raises :class:`DivergentReturnError` (a ValueError) if some closed class has a non-zero average reward,
    decided as :func:`v_pi` decides it (a class whose rewards have one sign; otherwise the GTH stationary law's
    rounding window; a mixed-sign class whose gain lay below the earlier fixed window 1e-12 max |r| was taken
    for zero-gain). Raises :class:`NotConvergedError` when I - P + P* is too ill-conditioned for h to be
    trusted to :data:`GAMMA1_MAX_REL_ERROR` (2 n eps cond_inf > 1e-6: a nearly decomposable class, where a
    transition of probability 2^-52 gave h off by a factor 2, and one of 2^-45 an absolute error of 2e-3 on
    values of order 1).
    """
    pi = validate_policy(mdp, pi)
    m = mdp.transition_pi(pi)
    md = _dense(m)
    r = mdp.reward_pi(pi)
    cs = chain_structure(md, mdp.term)
    err = _classify_traps(mdp, pi, cs)
    if isinstance(err, DivergentReturnError):
        raise DivergentReturnError(f"bias_value needs zero average reward (gain 0) in every closed class: {err}",
                                   err.states, err.sign)
    pstar = stationary_distribution(mdp, pi)
    n = mdp.n_states_plus
    a = np.eye(n) - md + pstar
    inv = np.linalg.inv(a)
    cond = float(np.linalg.norm(a, np.inf) * np.linalg.norm(inv, np.inf))
    rel = 2.0 * n * float(np.finfo(np.float64).eps) * cond
    if not rel <= GAMMA1_MAX_REL_ERROR:
        raise NotConvergedError(f"gamma = 1: I - P + P* has condition number {cond:.3g} (a nearly decomposable "
                                f"class), so h could be off by a relative {rel:.1e} (> GAMMA1_MAX_REL_ERROR = "
                                f"{GAMMA1_MAX_REL_ERROR:.0e}); no float64 value is returned")
    return np.asarray((inv - pstar) @ r, dtype=np.float64)
