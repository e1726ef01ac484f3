"""Dynamic programming: V-VI, Q-VI, anchored VI, policy iteration, certified solvers (BEL-25..BEL-34).

Every algorithm returns its iterates so that rates can be checked. Conventions as in
:mod:`reference.mdp` (term last; acting in s_t yields r_t). Iterates are stacked along a leading axis K.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
from numpy.typing import NDArray

from reference.bellman import (
    _factor,
    bellman_optimality_q,
    bellman_optimality_v,
    certificate_factor,
    kernel_row_sum_bound,
    residual_rounding_bound,
    sup_norm,
)
from reference.errors import ImproperPolicyError, InvalidDiscountError, NotConvergedError, ShapeError
from reference.exact import q_from_v, v_pi
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    IntArray,
    deterministic_policy,
    from_outcomes,
    greedy,
    validate_actions,
    validate_flags,
    validate_gamma,
    validate_int,
    validate_values,
)

__all__ = [
    "EPS_RTOL",
    "STAY",
    "AncVIResult",
    "CertifiedSolution",
    "PIResult",
    "VIResult",
    "anchored_value_iteration",
    "ancvi_beta",
    "ancvi_bound",
    "ancvi_default_u0",
    "ancvi_general_bounds",
    "certificate_eps",
    "certificate_floor",
    "end_components",
    "policy_iteration",
    "proper_policy",
    "q_star",
    "q_value_iteration",
    "solve_optimal",
    "solve_value_iteration",
    "v_star",
    "value_iteration",
    "value_iteration_iterates",
    "vi_error_bound",
]


@dataclass(frozen=True)
class VIResult:
    """Iterates of (Q-)value iteration.

    Attributes:
        values: [K+1, S] (V-VI) or [K+1, S, A] (Q-VI): V^0, ..., V^K.
        policies: [K+1, S] int. V-VI: policies[k] = pi^k = argmax_a E[r + gamma V^{k-1}(s')] for k >= 1
            (BEL-25; policies[0] is greedy w.r.t. V^0). Q-VI: policies[k] = argmax_a Q^k(s, a) (BEL-26).
    """

    values: FloatArray
    policies: IntArray


def value_iteration_iterates(mdp: FiniteMDP, v0: FloatArray) -> Iterator[tuple[FloatArray, IntArray]]:
    """Infinite generator of (V^{k+1}, pi^{k+1}) with V^{k+1} = B^* V^k (BEL-25), starting from V^0 = v0."""
    v = validate_values(mdp, v0).copy()
    while True:
        look = mdp.lookahead(v)
        scales = mdp.greedy_scales(v)
        v = look.max(axis=1)
        yield v, greedy(look, scale=scales, tie_rtol=mdp.tie_rtol)


def value_iteration(mdp: FiniteMDP, v0: FloatArray, *, num_iters: int) -> VIResult:
    """V-value iteration V^{k+1} = B^* V^k, pi^{k+1}(s) = argmax_a E[r + gamma V^k(s') | s, a].

    Spec: BEL-25 (rate BEL-27: ||V^k - V*||_inf <= gamma^k ||V^0 - V*||_inf for gamma < 1).
    Shapes: v0 [S]; result values [K+1, S], policies [K+1, S].
    """
    num_iters = validate_int(num_iters, "num_iters")
    v0 = validate_values(mdp, v0)
    if v0.ndim != 1:
        raise ShapeError(f"value_iteration needs V of shape ({mdp.n_states_plus},), got {v0.shape}")
    vals = [v0.copy()]
    pols = [greedy(mdp.lookahead(v0), scale=mdp.greedy_scales(v0), tie_rtol=mdp.tie_rtol)]
    it = value_iteration_iterates(mdp, v0)
    for _ in range(num_iters):
        v, p = next(it)
        vals.append(v)
        pols.append(p)
    return VIResult(np.stack(vals), np.stack(pols))


def q_value_iteration(mdp: FiniteMDP, q0: FloatArray, *, num_iters: int) -> VIResult:
    """Q-value iteration Q^{k+1} = B^* Q^k, pi^k(s) = argmax_a Q^k(s, a).

    Spec: BEL-26 (rate BEL-27). Shapes: q0 [S, A]; result values [K+1, S, A], policies [K+1, S].
    """
    num_iters = validate_int(num_iters, "num_iters")
    q = validate_values(mdp, q0, what="Q")
    if q.ndim != 2:
        raise ShapeError(f"q_value_iteration needs Q of shape ({mdp.n_states_plus}, {mdp.n_actions})")
    vals = [q.copy()]
    for _ in range(num_iters):
        q = bellman_optimality_q(mdp, q)
        vals.append(q)
    stacked = np.stack(vals)
    # window per entry: Q^0 is given (its own magnitude); Q^{k+1} = r + gamma P max_a Q^k (its lookahead's)
    scales = [np.abs(stacked[0])] + [mdp.greedy_scales(x.max(axis=1)) for x in stacked[:-1]]
    pols = [greedy(x, scale=sc, tie_rtol=mdp.tie_rtol) for x, sc in zip(stacked, scales, strict=True)]
    return VIResult(stacked, np.stack(pols))


def vi_error_bound(gamma: float, step: float) -> float:
    """A-posteriori VI bound: ||V^{k+1} - V*||_inf <= gamma / (1 - gamma) ||V^{k+1} - V^k||_inf.

    From ||V^{k+1} - V*|| <= gamma ||V^k - V*|| <= gamma (||V^k - V^{k+1}|| + ||V^{k+1} - V*||).

    Spec: BEL-25.
    """
    if not 0 < gamma < 1:
        raise InvalidDiscountError(f"the VI error bound needs gamma in (0, 1), got {gamma}")
    return gamma / (1.0 - gamma) * step


@dataclass(frozen=True)
class CertifiedSolution:
    """V* (or V^pi) with a certificate ``||value - V*||_inf <= bound`` and a greedy policy."""

    value: FloatArray
    policy: IntArray
    bound: float
    iterations: int


def solve_value_iteration(mdp: FiniteMDP, *, eps: float, v0: FloatArray | None = None,
                          max_iters: int = 1_000_000) -> CertifiedSolution:
    """VI with a stopping rule that *guarantees* ||V - V*||_inf <= eps (gamma < 1).

    Spec: BEL-25, BEL-27. Stops at the first k with gamma / (1 - gamma) ||V^{k+1} - V^k||_inf <= eps
    (:func:`vi_error_bound`) and returns V^{k+1}. Unlike pymdptoolbox's span rule, which only guarantees
    an eps-optimal *policy*, this bounds the value error itself. The sweep that computed V^{k+1} rounds:
    V^{k+1} = B^* V^k + e with ||e|| <= delta (:func:`reference.bellman.residual_rounding_bound`), so
    (1 - gamma) ||V^{k+1} - V^*|| <= gamma ||V^{k+1} - V^k|| + delta, and the returned bound is
    (gamma ||V^{k+1} - V^k|| (1 + eps_mach) + delta) / (1 - gamma). ``eps`` below delta / (1 - gamma) cannot
    be certified: :class:`NotConvergedError` at once.
    """
    eps = certificate_eps(mdp, eps, EPS_RTOL)
    max_iters = validate_int(max_iters, "max_iters", minimum=1)
    v = np.zeros(mdp.n_states_plus) if v0 is None else validate_values(mdp, v0).copy()
    u = float(np.finfo(np.float64).eps)
    # the stored operator contracts by gamma rho, rho the largest exact row sum (1 + a few ulps: rows are not
    # renormalised to exact sums of 1), so the bound divides by 1 - gamma rho (certificate_factor), not by 1 - gamma
    rho = kernel_row_sum_bound(mdp)
    factor = _factor(mdp.gamma, rho)  # certificate_factor(mdp), without a second pass over the kernel
    for k in range(max_iters):
        look = mdp.lookahead(v)
        v_new = look.max(axis=1)
        delta = residual_rounding_bound(mdp, max(sup_norm(v), sup_norm(v_new)))
        if delta * factor > eps:
            raise NotConvergedError(f"VI cannot certify eps={eps:.3e}: the rounding of one sweep alone allows "
                                    f"{delta * factor:.3e} (max|V| = {sup_norm(v_new):.3e})")
        bound = (mdp.gamma * rho * sup_norm(v_new - v) * (1.0 + 2 * u) + delta) * factor
        v = v_new
        if bound <= eps:
            # the policy is greedy in the V returned (one more lookahead), not in the previous iterate
            pol = greedy(mdp.lookahead(v), scale=mdp.greedy_scales(v), tie_rtol=mdp.tie_rtol)
            return CertifiedSolution(v, pol, bound, k + 1)
    raise NotConvergedError(f"VI did not certify eps={eps} within {max_iters} sweeps")


# ================================================================================ anchored VI
def ancvi_beta(gamma: float, k: int) -> float:
    """beta_k = 1 / sum_{i=0}^k gamma^{-2i} = gamma^{2k} (1 - gamma^2) / (1 - gamma^{2(k+1)}) (BEL-29).

    The second form never overflows; it is evaluated with expm1 (1 - gamma^m = -expm1(m log gamma)) so
    that gamma near 1 loses no accuracy. At gamma = 1, beta_k = 1 / (k + 1). beta_0 = 1 (erratum E-09).
    ``k`` is an iteration index, an integer >= 0 (:func:`reference.mdp.validate_int`: 1.5 is refused).
    """
    gamma = validate_gamma(gamma)
    k = validate_int(k, "k")  # a fractional k (1.5) is refused, not evaluated off the sequence
    if gamma == 1.0:
        return 1.0 / (k + 1)
    lg = np.log(gamma)
    # 1 - gamma^m = -expm1(m log gamma): no cancellation for gamma near 1
    return float(gamma ** (2 * k) * np.expm1(2 * lg) / np.expm1(2 * (k + 1) * lg))


def _ancvi_beta_drop(gamma: float, k: int) -> float:
    """beta_{k-1} - beta_k = beta_{k-1} beta_k gamma^{-2k} (from 1/beta_k - 1/beta_{k-1} = gamma^{-2k}), for k >= 1,
    evaluated as beta_{k-1} (1 - gamma^2) / (1 - gamma^{2(k+1)}) (1 / (k + 1) at gamma = 1): no cancellation."""
    if gamma == 1.0:
        return ancvi_beta(gamma, k - 1) / (k + 1)
    lg = np.log(gamma)
    return float(ancvi_beta(gamma, k - 1) * np.expm1(2 * lg) / np.expm1(2 * (k + 1) * lg))


def ancvi_general_bounds(gamma: float, num_iters: int) -> FloatArray:
    """Proven constants c_0..c_K with ||T U^k - U^k|| <= c_k ||U^0 - U^*|| for anchored VI from ANY U^0; [K+1].

    Spec: BEL-30 (the general-U^0 case, which the text does not state; erratum E-10). Valid for every
    gamma-contraction T in any norm with fixed point U^* (so for B^* on V and on Q in the sup norm, and at
    gamma = 1 for a nonexpansive T and any of its fixed points). With d_0 = ||U^0 - U^*|| and the iteration
    U^k = beta_k U^0 + (1 - beta_k) T U^{k-1} (BEL-29), the triangle inequality and ||T x - T y|| <= gamma ||x - y||
    give, for k >= 1 (all three are recursions in non-negative terms):

        e_k = ||U^k - U^*||       <= d_k d_0,  d_0 = 1,  d_k = beta_k + (1 - beta_k) gamma d_{k-1}
        U^k - U^{k-1} = (beta_k - beta_{k-1})(U^0 - T U^{k-2}) + (1 - beta_k)(T U^{k-1} - T U^{k-2})   (k >= 2)
                                  so ||U^k - U^{k-1}|| <= D_k d_0,  D_1 = (1 - beta_1)(1 + gamma),
                                  D_k = (beta_{k-1} - beta_k)(1 + gamma d_{k-2}) + (1 - beta_k) gamma D_{k-1}
        U^k - T U^k = beta_k (U^0 - T U^{k-1}) + (T U^{k-1} - T U^k)
                                  so c_0 = 1 + gamma,  c_k = beta_k (1 + gamma d_{k-1}) + gamma D_k,

    using ||U^0 - T U^j|| <= ||U^0 - U^*|| + ||T U^j - T U^*|| <= (1 + gamma d_j) d_0. At gamma = 1,
    d_k = 1 and c_k = 2 (1 + H_k) / (k + 1) with H_k the k-th harmonic number: O(log k / k), not the
    O(1 / k) of :func:`ancvi_bound` under U^0 <= B^* U^0. The constant (1 + 2 gamma - gamma^{k+1}) in place of
    (1 + gamma - gamma^{k+1}), which the inventory's E-10 attributes to Lee & Ryu (2023) for general U^0, is
    exceeded on a reproduced example (6.4 % at gamma = 0.99, k = 6; docs/corrections.md), so it is not offered.
    The values are rounded up by 16 (k + 1) eps relative (the recursions add and multiply non-negative terms,
    each step with a few roundings), so that each is an upper bound of the exact constant.
    """
    gamma = validate_gamma(gamma)
    num_iters = validate_int(num_iters, "num_iters")
    d = np.empty(num_iters + 1)
    c = np.empty(num_iters + 1)
    d[0], c[0] = 1.0, 1.0 + gamma
    drift = 0.0
    for k in range(1, num_iters + 1):
        b = ancvi_beta(gamma, k)
        if k == 1:
            drift = (1.0 - b) * (1.0 + gamma)
        else:
            drift = _ancvi_beta_drop(gamma, k) * (1.0 + gamma * d[k - 2]) + (1.0 - b) * gamma * drift
        c[k] = b * (1.0 + gamma * d[k - 1]) + gamma * drift
        d[k] = b + (1.0 - b) * gamma * d[k - 1]
    eps = float(np.finfo(np.float64).eps)
    return np.asarray(c * (1.0 + 16.0 * (np.arange(num_iters + 1) + 1.0) * eps), dtype=np.float64)


def ancvi_bound(gamma: float, k: int, *, assume_u0_le_bu0: bool = True) -> float:
    """AncVI rate constant: ||B^* U^k - U^k||_inf <= c_k ||U^0 - U^*||_inf (BEL-30).

    Under U^0 <= B^* U^0 (the text's theorem; erratum E-10: the assumption is needed):
    c_k = (gamma^{-1} - gamma)(1 + gamma - gamma^{k+1}) / (gamma^{-(k+1)} - gamma^{k+1})
        = (1 - gamma^2) gamma^k (1 + gamma - gamma^{k+1}) / (1 - gamma^{2(k+1)})   (stable form),
    at gamma = 1 its limit (1 + gamma - gamma^{k+1}) / (k + 1) = 1 / (k + 1).
    ``assume_u0_le_bu0=False``: the proven bound for any U^0, :func:`ancvi_general_bounds` (weaker: O(log k / k)
    at gamma = 1). Until 2026-12-06 this returned the constant with (1 + 2 gamma - gamma^{k+1}), which a
    reproduced example exceeds (docs/corrections.md). ``k``: an integer >= 0, as in :func:`ancvi_beta`.
    """
    gamma = validate_gamma(gamma)
    k = validate_int(k, "k")
    if not assume_u0_le_bu0:
        return float(ancvi_general_bounds(gamma, k)[k])
    lead = 1 + gamma - gamma ** (k + 1)
    if gamma == 1.0:
        return lead / (k + 1)
    lg = np.log(gamma)
    return float(np.expm1(2 * lg) * gamma**k * lead / np.expm1(2 * (k + 1) * lg))


def ancvi_default_u0(mdp: FiniteMDP, *, q: bool = False) -> FloatArray:
    """U^0 = r_min / (1 - gamma) everywhere (inventory open choice 4), so that U^0 <= B^* U^0 holds.

    r_min is the minimum of r(s, a) over S+ x A, term included (its reward 0), so r_min <= 0 and the
    term entry also satisfies U^0(term) <= gamma U^0(term).

    Spec: BEL-30.
    """
    if mdp.gamma >= 1.0:
        raise InvalidDiscountError("ancvi_default_u0 needs gamma < 1")
    r_min = float(min(0.0, mdp.r.min()))
    shape = (mdp.n_states_plus, mdp.n_actions) if q else (mdp.n_states_plus,)
    return np.full(shape, r_min / (1.0 - mdp.gamma))


@dataclass(frozen=True)
class AncVIResult:
    """Iterates U^0..U^K of anchored VI ([K+1, S] or [K+1, S, A]) and the betas beta_0..beta_K."""

    values: FloatArray
    betas: FloatArray


def anchored_value_iteration(mdp: FiniteMDP, u0: FloatArray, *, num_iters: int) -> AncVIResult:
    """Anchored VI: U^k = beta_k U^0 + (1 - beta_k) B^* U^{k-1} for k = 1, 2, ... (erratum E-09).

    Spec: BEL-29 (rate BEL-30 via :func:`ancvi_bound`). U may be a V ([S]) or a Q ([S, A]).
    """
    num_iters = validate_int(num_iters, "num_iters")
    u0 = validate_values(mdp, u0, what="U0")
    op = bellman_optimality_v if u0.ndim == 1 else bellman_optimality_q
    vals = [u0.copy()]
    betas = [1.0]
    u = u0.copy()
    for k in range(1, num_iters + 1):
        b = ancvi_beta(mdp.gamma, k)
        u = b * u0 + (1.0 - b) * op(mdp, u)
        vals.append(u)
        betas.append(b)
    return AncVIResult(np.stack(vals), np.asarray(betas))


# ============================================================================ policy iteration
STAY: int = -2
"""Sentinel in :attr:`PIResult.policies` (gamma = 1 only): "stay forever, reward-free, in this state's
reward-free end component" (value 0). Erratum E-12: policy iteration over the MDP's own actions can stop
below V* when a reward-free loop beats every proper policy; PI runs on the MDP extended with this option."""


@dataclass(frozen=True)
class PIResult:
    """Iterates of policy iteration: policies pi_0..pi_K (int [K+1, S]) and values V^{pi_k} ([K+1, S]).

    The last policy equals the one before it (PI stopped because the policy did not change). At gamma = 1,
    entries may be :data:`STAY` (see :func:`policy_iteration`); :attr:`policy` is then an optimal policy
    in the MDP's own actions (improper: it loops forever, reward-free, where staying is optimal).
    """

    policies: IntArray
    values: FloatArray
    optimal_actions: IntArray | None = None

    @property
    def policy(self) -> IntArray:
        if self.optimal_actions is not None:
            return np.asarray(self.optimal_actions, dtype=np.int64)
        return np.asarray(self.policies[-1], dtype=np.int64)

    @property
    def value(self) -> FloatArray:
        return np.asarray(self.values[-1], dtype=np.float64)


def proper_policy(mdp: FiniteMDP) -> IntArray:
    """A deterministic policy that reaches term with probability 1 from every state, if one exists.

    Backward breadth-first search from term: a state gets the lowest-index action that moves it, with
    positive probability, to a state labelled earlier (closer to term), so every state has a positive
    probability path to term and the policy is proper. Raises :class:`ImproperPolicyError` naming the
    states from which no policy reaches term. Shape: int [S].

    Spec: BEL-35.
    """
    n, na = mdp.n_states_plus, mdp.n_actions
    reach = mdp.transition_csr > 0  # [S*A, S]
    labelled = np.zeros(n, dtype=bool)
    labelled[mdp.term] = True
    pol = np.zeros(n, dtype=np.int64)
    while True:
        hits = np.asarray((reach @ labelled.astype(np.float64)) > 0).reshape(n, na)
        new = hits.any(axis=1) & ~labelled
        if not new.any():
            break
        pol[new] = np.argmax(hits[new], axis=1)
        labelled |= new
    if not labelled.all():
        bad = tuple(int(s) for s in np.flatnonzero(~labelled))
        raise ImproperPolicyError(f"no policy reaches term from states {list(bad)}", bad)
    return pol


def end_components(mdp: FiniteMDP, allowed: NDArray[np.bool_] | None = None) -> tuple[IntArray, NDArray[np.bool_]]:
    """Maximal end components of the non-terminal states, using only the ``allowed`` actions.

    An end component is a set C of states and, for each s in C, a non-empty set of actions whose every
    successor lies in C, such that C is strongly connected under them: a policy can stay in C forever.
    Computed by the standard refinement: take the strongly connected components of the graph of the
    allowed actions, drop every action with a successor outside its state's component (or in term), and
    repeat until nothing changes (Courcoubetis & Yannakakis 1995; de Alfaro 1997).

    Shapes: allowed bool [S, A] (default: every action; the term row is ignored). Returns
    ``(labels, actions)``: labels int [S], the end component of each state (0, 1, ...) or -1 for states in
    none (term included); actions bool [S, A], the actions that keep each state inside its component.

    Spec: BEL-35 (the reward-free loops that may beat every proper policy).
    """
    n, na = mdp.n_states_plus, mdp.n_actions
    keep = np.ones((n, na), dtype=bool) if allowed is None else validate_flags("allowed", allowed, (n, na)).copy()
    keep[mdp.term] = False
    m = mdp.transition_csr.copy()
    m.eliminate_zeros()
    row_state = np.repeat(np.arange(n), na)
    succ_row = np.repeat(np.arange(n * na), np.diff(m.indptr))  # the (s, a) row of every stored successor
    succ = np.asarray(m.indices, dtype=np.int64)
    while True:
        flat = keep.reshape(-1)
        live_edge = flat[succ_row]
        graph = sp.csr_array((np.ones(int(live_edge.sum())), (row_state[succ_row[live_edge]], succ[live_edge])),
                             shape=(n, n))
        _, comp = csgraph.connected_components(graph, directed=True, connection="strong")
        alive: NDArray[np.bool_] = np.asarray(keep.any(axis=1), dtype=bool)
        bad_edge = live_edge & ((comp[succ] != comp[row_state[succ_row]]) | ~alive[succ])
        if not bad_edge.any():
            break
        flat = flat.copy()
        flat[succ_row[bad_edge]] = False
        keep = flat.reshape(n, na)
    labels = np.full(n, -1, dtype=np.int64)
    if alive.any():
        _, dense = np.unique(comp[alive], return_inverse=True)
        labels[alive] = dense
    return labels, keep


def _with_stay(mdp: FiniteMDP, stay: NDArray[np.bool_]) -> FiniteMDP:
    """The MDP with one more action, index A: "stop, reward 0" (to term) at states where ``stay`` holds,
    and a copy of action 0 elsewhere (a duplicate never changes V*; ties never pick it over action 0)."""
    ns, na = mdp.n_states, mdp.n_actions
    counts = np.diff(mdp.indptr)[: ns * na].reshape(ns, na)
    idx, nxt, rew, prb = [], [], [], []
    for s in range(ns):
        lo, hi = int(mdp.indptr[s * na]), int(mdp.indptr[(s + 1) * na])
        nxt.append(mdp.next_state[lo:hi])
        rew.append(mdp.reward[lo:hi])
        prb.append(mdp.prob[lo:hi])
        if stay[s]:
            nxt.append(np.array([mdp.term]))
            rew.append(np.zeros(1))
            prb.append(np.ones(1))
            extra = 1
        else:
            extra = int(counts[s, 0])
            nxt.append(mdp.next_state[lo:lo + extra])
            rew.append(mdp.reward[lo:lo + extra])
            prb.append(mdp.prob[lo:lo + extra])
        idx.append(np.append(counts[s], extra))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(idx))])
    return from_outcomes(ns, na + 1, indptr, np.concatenate(nxt), np.concatenate(rew), np.concatenate(prb),
                         mdp.p0, gamma=mdp.gamma, backend=mdp.backend, name=f"{mdp.name} + stay")


def evaluation_slack(mdp: FiniteMDP, pi: FloatArray, v: FloatArray, best: IntArray) -> FloatArray:
    """gamma sum_{s'} |P(s' | s, a) - P(s' | s, b)| e(s'), [S+, A] with b = ``best[s]``, and e >= |v - V^pi|
    componentwise: a bound on the error of the computed difference Q(s, a) - Q(s, b) of two lookaheads of the
    computed ``v`` [S+] of the (proper, if gamma = 1) policy ``pi`` [S+, A] that comes from the error of v.

    V^pi - v = (I - gamma P_pi)^{-1} res on the non-terminal states, with res the true residual
    r_pi + gamma P_pi v - v, and (I - gamma P_pi)^{-1} >= 0 entrywise, so e = (I - gamma P_pi)^{-1} (|res_c| + rho)
    bounds it, rho = gamma_{w+3} (|r_pi| + gamma P_pi |v| + |v|) the rounding of the computed residual res_c
    (w the most successors of a row). e is computed by one more solve with the same matrix and doubled (its own
    error is relative, cond eps). The error of v enters the two lookaheads through the same e, so only where
    their outcome laws differ (two actions with the same successors differ by their rewards alone, exactly).
    Policy iteration adds this to its greedy tie window: an LU solve leaves errors of about eps max|V| at
    states of exact value 0, above a window relative to those states' own lookahead terms, and PI switched on
    that noise (into a reward-free loop, so gamma = 1 raised ImproperPolicyError for a finite V*; or back and
    forth between two tied policies at gamma = 0.9999 until max_iters).

    Spec: support for BEL-33 (the improvement step compares Q^{pi_k}, known only to the solve's accuracy).
    """
    from reference.chains import solve_linear
    from reference.tolerance import counted_tolerance

    ns, g, na = mdp.n_states, mdp.gamma, mdp.n_actions
    r_pi = mdp.reward_pi(pi)
    m = mdp.transition_pi(pi)
    mv = np.asarray(m @ v, dtype=np.float64)
    mabs = np.asarray(abs(m) @ np.abs(v), dtype=np.float64)
    width = (int(np.diff(sp.csr_array(m).indptr).max()) if sp.issparse(m)
             else int(np.count_nonzero(np.asarray(m), axis=1).max()))
    res = np.abs(r_pi + g * mv - v) + counted_tolerance(1.0, roundings=width + 3) * (np.abs(r_pi) + g * mabs
                                                                                       + np.abs(v))
    e = np.zeros(mdp.n_states_plus)
    if ns:
        if sp.issparse(m):
            a = sp.identity(ns, format="csr") - g * sp.csr_array(m)[:ns, :ns]
        else:
            a = np.eye(ns) - g * np.asarray(m)[:ns, :ns]
        e[:ns] = 2.0 * np.maximum(solve_linear(a, res[:ns]), 0.0)
    if not np.all(np.isfinite(e)):
        raise NotConvergedError("policy iteration: the error bound of the policy evaluation is not finite")
    rows_b = np.repeat(np.arange(mdp.n_states_plus) * na + np.asarray(best, dtype=np.int64), na)
    if mdp.is_sparse:
        pm = mdp.transition_csr  # [S+ A, S+], row s A + a
        diff_e = np.asarray(abs(sp.csr_array(pm - pm[rows_b])) @ e, dtype=np.float64)
    else:
        pd = mdp.transition_dense
        diff_e = np.abs(pd - pd[rows_b]) @ e
    out: FloatArray = g * diff_e.reshape(mdp.n_states_plus, na)
    out[mdp.term] = 0.0
    return out


def greedy_slack(mdp: FiniteMDP, pi: FloatArray, v: FloatArray, q: FloatArray,
                 scales: FloatArray | None = None) -> FloatArray:
    """The slack policy iteration adds to its greedy window: :func:`evaluation_slack` capped at
    ``tie_rtol * max(tie_scale, max|V|) / 2`` per entry; [S+, A] (max|V| <= tie_scale at gamma < 1; at gamma = 1,
    where tie_scale is R, max|V| ~ R E[T] keeps the cap in step with the value tolerance of long episodes).

    The cap keeps the loss bound of open choice 1: a gap held inside the window costs at most window / (1 - gamma)
    of value, the tie window spends half of ``value_tolerance`` and the capped slack at most a quarter more.
    Uncapped, the a priori rounding term of the slack is divided by (1 - gamma) once more, and PI stopped on a
    self-loop 3e-9 worse than the alternative at gamma = 0.999 (V* 1.5e-6 low, 141 value tolerances; 1.5e-3 at
    gamma = 0.9999) although V was computed exactly (review of 2026-12-07). The noise the slack exists for
    (about eps max|V| at states of exact value 0) is far below the cap.

    Spec: support for BEL-33 (the greedy step of policy iteration, open choice 1).
    """
    cap = 0.5 * mdp.tie_rtol * max(mdp.tie_scale, float(np.max(np.abs(v), initial=0.0)))
    # greedy's window is at most tie_rtol max(scale, |max q|) per state; a pair further below the best than that
    # plus the cap cannot become a tie whatever its slack, so the extra solve is skipped when no pair is that
    # close (policy iteration's usual case: the slack changed its cost 2x, 0.43 s against 0.19 s at 1000 states)
    top = q.max(axis=1, keepdims=True)
    sc = mdp.greedy_scales(v) if scales is None else scales  # the greedy step's own (computed once there)
    reach = mdp.tie_rtol * np.maximum(sc.max(axis=1, keepdims=True), np.abs(top)) + cap
    near = q >= top - reach
    near[np.arange(q.shape[0]), np.argmax(q, axis=1)] = False
    near[mdp.term] = False  # Q(term, .) = 0: all tied, and PI keeps term's action anyway
    if not near.any():
        return np.zeros_like(q)
    return np.minimum(evaluation_slack(mdp, pi, v, np.argmax(q, axis=1)), cap)


def _pi_loop(mdp: FiniteMDP, pol: IntArray, max_iters: int) -> tuple[list[IntArray], list[FloatArray]]:
    pols = [pol]
    vals = []
    for _ in range(max_iters):
        pi = deterministic_policy(pol, mdp.n_actions)
        v = v_pi(mdp, pi)
        vals.append(v)
        q = q_from_v(mdp, v)
        scales = mdp.greedy_scales(v)
        new = greedy(q, current=pol, scale=scales, tie_rtol=mdp.tie_rtol,
                     slack=greedy_slack(mdp, pi, v, q, scales))
        new[mdp.term] = pol[mdp.term]
        pols.append(new)
        if np.array_equal(new, pol):
            vals.append(v)
            return pols, vals
        pol = new
    raise NotConvergedError(f"policy iteration did not stabilise in {max_iters} iterations")


def policy_iteration(mdp: FiniteMDP, pi0: IntArray | None = None, *, max_iters: int = 10_000) -> PIResult:
    """Policy iteration: evaluate V^{pi_k} exactly, then pi_{k+1}(s) = argmax_a Q^{pi_k}(s, a).

    Spec: BEL-33 (improvement theorem BEL-34: V^{pi_{k+1}} >= V^{pi_k}, optimal after finitely many
    steps), BEL-35 with erratum E-12. Ties keep the current action (inventory open choice 1), so PI stops
    at pi_{k+1} = pi_k. Shapes: pi0 int [S] (default: all zeros for gamma < 1).

    gamma = 1 (total reward, BEL-35): pi0 must be proper (else the evaluation raises
    :class:`ImproperPolicyError`); the default is :func:`proper_policy`. From a proper policy, PI stays
    proper and stops at the best proper policy unless some end component has positive mean reward
    (then an improvement enters it and :class:`DivergentReturnError` is raised: V* = +inf, BEL-36).
    The best proper policy is not optimal when a reward-free loop beats it (stay-or-go with a go
    reward of -1: staying forever is worth 0, going -1, and the tie 0 + V(0) = -1 + 0 keeps "go"). So
    when the MDP has reward-free end components (:func:`end_components` of the actions whose rewards
    are all 0), PI runs on the MDP extended by the option :data:`STAY` ("stop, reward 0") at their
    states (the stochastic-shortest-path augmentation; Bertsekas & Yu 2016). ``policies`` may then hold
    :data:`STAY`, ``values`` are the values with that option, and :attr:`PIResult.policy` is an optimal
    policy in the MDP's own actions: it loops, reward-free, in the components where staying is optimal.
    Its value (:func:`reference.exact.v_pi` with ``improper="finite"``) equals :attr:`PIResult.value`.
    """
    n = mdp.n_states_plus
    max_iters = validate_int(max_iters, "max_iters", minimum=1)
    pol: IntArray | None = None
    if pi0 is not None:
        pol = validate_actions(pi0, mdp.n_actions, name="pi0").copy()
        if pol.shape != (n,):
            raise ShapeError(f"pi0 must have shape ({n},), got {pol.shape}")
    if mdp.gamma < 1.0:
        pols, vals = _pi_loop(mdp, np.zeros(n, dtype=np.int64) if pol is None else pol, max_iters)
        return PIResult(np.stack(pols), np.stack(vals))
    labels, loops = end_components(mdp, ~mdp.reward_support_nonzero)
    if not (labels >= 0).any():
        pols, vals = _pi_loop(mdp, proper_policy(mdp) if pol is None else pol, max_iters)
        return PIResult(np.stack(pols), np.stack(vals))
    aug = _with_stay(mdp, labels >= 0)
    # the default start is proper in the extended MDP: a state whose only way out is a reward-free loop
    # has none in the MDP itself, but staying there is a policy with a value (0)
    pols, vals = _pi_loop(aug, proper_policy(aug) if pol is None else pol, max_iters)
    stay_id = mdp.n_actions
    final = pols[-1].copy()
    stays = bool(np.any(final == stay_id))
    if stays:
        # Components where staying is optimal: V* = 0 at every state of such a component that the stay
        # option reaches, and the component's reward-free actions keep inside {V* = 0} (E[V*(s')] <= V*(s)
        # = 0 <= V*(s') for each successor), so looping there is optimal and its closed classes reward-free.
        v = vals[-1]
        window = aug.tie_rtol * np.maximum(aug.greedy_scales(v).max(axis=1), np.finfo(np.float64).tiny)  # per state
        comps = np.unique(labels[final == stay_id])
        at = np.isin(labels, comps) & (np.abs(v) <= window)
        final[at] = np.argmax(loops[at], axis=1)
    out = [np.where(p == stay_id, STAY, p) for p in pols]
    return PIResult(np.stack(out), np.stack(vals), final if stays else None)


EPS_RTOL: float = 1e-12
"""Default certificate of :func:`solve_optimal`, relative to the value scale R / (1 - gamma) (the bound on |V|,
MDP-19): ``eps = EPS_RTOL * R / (1 - gamma)``. An absolute default certified a non-optimal policy on tiny rewards."""


def certificate_floor(mdp: FiniteMDP, v_max: float, *, stochastic_policy: bool = True) -> float:
    """The smallest width a residual certificate can prove for a V with max|V| <= ``v_max`` (gamma < 1):
    :func:`reference.bellman.residual_rounding_bound` times :func:`reference.bellman.certificate_factor`
    (1 / (1 - gamma rho), rho >= 1 the stored rows' largest exact sum), the bound when the computed residual is 0.
    For a stochastic policy rho is that of the worst row over all (s, a), enlarged by the rounding of the policy's
    A-term row sums, which bounds every policy's factor. inf where gamma rho >= 1 (no certificate exists).

    Spec: support for BEL-25 (the smallest certifiable width of a stopping rule).
    """
    rho = kernel_row_sum_bound(mdp)
    if stochastic_policy:  # a policy's row sums add A products and A - 1 sums of its own rounded weights
        rho *= 1.0 + 4.0 * (mdp.n_actions + 2) * float(np.finfo(np.float64).eps)
    try:
        factor = _factor(mdp.gamma, rho)
    except NotConvergedError:  # gamma rho >= 1: gamma within the rows' rounding of 1, no width can be certified
        return float("inf")
    return residual_rounding_bound(mdp, v_max, stochastic_policy=stochastic_policy) * factor


def certificate_eps(mdp: FiniteMDP, eps: float | None, rtol: float) -> float:
    """The absolute certificate width: ``eps`` if given (a finite number > 0), else the larger of
    ``rtol * R / (1 - gamma)`` (R = :attr:`FiniteMDP.max_abs_reward`; the smallest positive float when R = 0,
    where V = 0 exactly) and twice :func:`certificate_floor` at max|V| = R / (1 - gamma) (MDP-19), so that the
    default can always be certified (near gamma = 1 the rounding of the residual alone exceeds rtol R / (1 - gamma)).
    ``NotConvergedError`` when that floor reaches R / (1 - gamma) itself (gamma within about |S| eps of 1): no
    certificate could say more than MDP-19's bound."""
    if eps is None:
        floor = 2.0 * certificate_floor(mdp, mdp.tie_scale) if mdp.gamma < 1.0 else 0.0
        if (mdp.tie_scale > 0.0 and floor >= mdp.tie_scale) or not np.isfinite(floor):
            # the certificate would say no more than MDP-19's |V| <= R / (1 - gamma): at gamma = 1 - 1e-15 the
            # solvers stopped at V = 0 with a bound of 1e15 (honest, and useless)
            raise NotConvergedError(f"gamma = {mdp.gamma!r} is too close to 1 for a float64 certificate: the "
                                    f"residual's rounding alone allows {floor:.3g}, at least the value scale "
                                    f"R / (1 - gamma) = {mdp.tie_scale:.3g}; pass eps explicitly, or use "
                                    f"exact.v_pi / v_star (a direct solve)")
        return max(rtol * max(mdp.tie_scale, np.finfo(np.float64).tiny), floor)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise TypeError(f"eps must be a number, got {type(eps).__name__}")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps}")
    return float(eps)


def solve_optimal(mdp: FiniteMDP, *, eps: float | None = None, pi0: IntArray | None = None) -> CertifiedSolution:
    """V* with the certificate ||V - V*||_inf <= ||B^* V - V||_inf / (1 - gamma) <= eps (gamma < 1).

    Spec: BEL-12, BEL-34. Runs policy iteration with exact (direct or Krylov) evaluation, then
    certifies: ``||V - V*|| <= ||V - B^*V|| + ||B^*V - B^*V*|| <= res + gamma ||V - V*||``.
    ``eps`` is absolute; the default is :data:`EPS_RTOL` times the value scale R / (1 - gamma).
    Raises :class:`NotConvergedError` if the certificate exceeds ``eps`` (e.g. eps below float resolution).
    """
    if mdp.gamma >= 1.0:
        raise InvalidDiscountError("solve_optimal certifies with 1 / (1 - gamma): needs gamma < 1")
    eps = certificate_eps(mdp, eps, EPS_RTOL)
    res = policy_iteration(mdp, pi0)
    v = res.value
    # the computed residual plus its own rounding (it can round to 0 where the exact residual is not)
    bound = (sup_norm(bellman_optimality_v(mdp, v) - v)
             + residual_rounding_bound(mdp, sup_norm(v))) * certificate_factor(mdp)  # 1 / (1 - gamma rho)
    if bound > eps:
        raise NotConvergedError(f"certificate {bound:.3e} exceeds eps={eps:.1e}")
    return CertifiedSolution(v, res.policy, bound, len(res.policies) - 1)


def v_star(mdp: FiniteMDP) -> FloatArray:
    """Exact V* (BEL-10, BEL-12) by policy iteration with exact evaluation; shape [S].

    At gamma = 1 (BEL-35, erratum E-12): the supremum over every policy whose value exists, reward-free
    loops included (see :func:`policy_iteration`); raises :class:`DivergentReturnError` when policy iteration
    enters an end component of positive mean reward (V* = +inf). When some state has no policy reaching term
    and no reward-free end component to stay in, the default start (:func:`proper_policy`) does not exist and
    :class:`ImproperPolicyError` is raised instead, even where V* = +inf there (a reward-1 self-loop as the only
    action): the base class of both errors, so ``except ImproperPolicyError`` catches either.
    """
    return policy_iteration(mdp).value


def q_star(mdp: FiniteMDP) -> FloatArray:
    """Exact Q*(s, a) = E[r + gamma V*(s') | s, a] (BEL-20, BEL-21, BEL-24); shape [S, A]."""
    return q_from_v(mdp, v_star(mdp))
