"""Bellman operators B^pi and B^* on V and on Q, and greedy policies (BEL-06, BEL-09, BEL-14, BEL-16, BEL-21).

The operators act on functions over S+ (term last), literally as the text writes them: for term the
kernel is "reward 0, stay in term", so (B V)(term) = gamma V(term); V^pi(term) = 0 is their fixed point.
Time-index convention: see :mod:`reference.mdp`.
"""

from __future__ import annotations

import numpy as np

from reference.errors import NotConvergedError
from reference.mdp import TIE_RTOL, FiniteMDP, FloatArray, IntArray, greedy, validate_policy, validate_values
from reference.tolerance import U64, counted_tolerance

__all__ = [
    "bellman_optimality_q",
    "bellman_optimality_v",
    "bellman_q",
    "bellman_residual",
    "bellman_v",
    "certificate_factor",
    "greedy_from_q",
    "greedy_from_v",
    "kernel_row_sum_bound",
    "residual_rounding_bound",
    "sup_norm",
]


def sup_norm(x: FloatArray) -> float:
    """||x||_inf = max over all entries of |x| (BEL-07; over S+ for V, over S+ x A for Q)."""
    return float(np.max(np.abs(x))) if np.size(x) else 0.0


def bellman_v(mdp: FiniteMDP, pi: FloatArray, v: FloatArray) -> FloatArray:
    """(B^pi V)(s) = E_{a ~ pi(.|s), (r, s') ~ p(., .|s, a)}[r + gamma V(s') | s]; shape [S] -> [S].

    Spec: BEL-06.
    """
    pi = validate_policy(mdp, pi)
    v = validate_values(mdp, v)
    return np.asarray(np.einsum("sa,sa->s", pi, mdp.lookahead(v)), dtype=np.float64)


def bellman_q(mdp: FiniteMDP, pi: FloatArray, q: FloatArray) -> FloatArray:
    """(B^pi Q)(s, a) = E_{(r, s') ~ p(.,.|s, a), a' ~ pi(.|s')}[r + gamma Q(s', a') | s, a]; [S, A] -> [S, A].

    Spec: BEL-09.
    """
    pi = validate_policy(mdp, pi)
    q = validate_values(mdp, q, what="Q")
    return mdp.lookahead(np.einsum("sa,sa->s", pi, q))


def bellman_optimality_v(mdp: FiniteMDP, v: FloatArray) -> FloatArray:
    """(B^* V)(s) = max_a E_{(r, s') ~ p(.,.|s, a)}[r + gamma V(s') | s, a]; shape [S] -> [S].

    Spec: BEL-14.
    """
    v = validate_values(mdp, v)
    return np.asarray(mdp.lookahead(v).max(axis=1), dtype=np.float64)


def bellman_optimality_q(mdp: FiniteMDP, q: FloatArray) -> FloatArray:
    """(B^* Q)(s, a) = E_{(r, s') ~ p(.,.|s, a)}[r + gamma max_{a'} Q(s', a') | s, a]; [S, A] -> [S, A].

    Spec: BEL-21.
    """
    q = validate_values(mdp, q, what="Q")
    return mdp.lookahead(q.max(axis=1))


def bellman_residual(mdp: FiniteMDP, v: FloatArray) -> float:
    """||B^* V - V||_inf (the quantity AncVI's rate bounds, BEL-30, and VI's stopping rule uses)."""
    return sup_norm(bellman_optimality_v(mdp, v) - v)


def residual_rounding_bound(mdp: FiniteMDP, v_max: float, *, stochastic_policy: bool = False) -> float:
    """A rigorous bound on the float64 rounding of one Bellman residual r + gamma P V - V, per entry (sup norm).

    The a-posteriori certificates ``||V - V^*|| <= ||B V - V|| / (1 - gamma)`` (and VI's) hold for the exact
    residual; the computed one can be smaller (it rounded to exactly 0 on values of order 1e10, and a bound of
    0 was returned). Each certificate therefore adds this bound to the computed residual. ``v_max`` bounds
    max|V| of the V being checked. Counting roundings (Higham, Lemma 3.1; :func:`reference.tolerance.
    counted_tolerance`): with m the most outcomes of one (s, a) row, the kernel row P[s, a, .] (outcomes merged
    per next state: up to m - 1 additions) and the dot product with V (up to m - 1 additions, m products),
    gamma times it, plus r, minus V: at most 2 m + 3 roundings of terms bounded by
    R + gamma max|V| + max|V| (row sums are 1 to a few ulps: a relative margin of 1e-9 covers them). A
    stochastic policy's P_pi = D_pi P and r_pi = pi . r (A-term sums) add A + 1 roundings and A times the
    terms per row. The expected reward r(s, a) = sum p r is itself a rounded sum over the row's outcomes (m
    products, m - 1 additions, terms bounded by R); to first order those roundings fit in the same count, whose
    terms are bounded by more than R (the measured worst case on adversarial rows, rewards +-1e6 cancelling, is
    0.3 of this bound: ``tests/reference/test_bellman.py::test_BEL_08_residual_rounding_bound_is_the_documented_
    count_and_bounds_the_true_rounding``). Spec: BEL-08, BEL-25 (the certificates' floor).
    """
    m = mdp.max_outcomes
    a = mdp.n_actions
    terms = m * a if stochastic_policy else m
    roundings = 2 * terms + 3 + (a + 1 if stochastic_policy else 0)
    scale = (mdp.max_abs_reward + (1.0 + mdp.gamma) * float(v_max)) * (1.0 + 1e-9)
    # plus gradual underflow: Higham's relative model fails for subnormal results, where a product carries an
    # absolute error up to 2^-1075 instead (rewards of 1e-320 certified a bound of 0 for a non-zero error)
    return counted_tolerance(scale, roundings=roundings) + roundings * 2.0**-1074


def kernel_row_sum_bound(mdp: FiniteMDP, pi: FloatArray | IntArray | None = None) -> float:
    """rho >= 1: an upper bound on the largest exact row sum of the stored kernel P (``pi`` None) or of P_pi.

    The exact sum of m stored probabilities is within gamma_{m-1} <= 2 (m - 1) u of their float sum (Higham,
    Lemma 3.1; the product by that factor rounds too, which the next float up covers), so rho = max fl(row sum)
    (1 + 2 (m - 1) u), and for a stochastic policy one more such sum over the A actions.
    Spec: support for BEL-08 (see :func:`certificate_factor`). ``pi``: None, int [S+1] or [S+1, A].
    """
    counts = np.diff(mdp.indptr)
    sums = np.add.reduceat(np.asarray(mdp.prob, dtype=np.float64), np.asarray(mdp.indptr[:-1]))
    m = int(counts.max())
    rho_sa = sums * (1.0 + 2.0 * (m - 1) * U64)  # >= the exact sums (m - 1 additions: gamma_{m-1} <= 2 (m-1) u)
    n, na = mdp.n_states_plus, mdp.n_actions
    rho_sa = rho_sa.reshape(n, na)
    if pi is None:
        rho = float(rho_sa.max())
    else:
        p = np.asarray(pi)
        if p.ndim == 1:
            rho = float(rho_sa[np.arange(n), p.astype(np.int64)].max())
        else:
            rows = np.sum(np.asarray(p, dtype=np.float64) * rho_sa, axis=1) * (1.0 + 2.0 * (na + 1) * U64)
            rho = float(rows.max())
    return float(np.nextafter(max(rho, 1.0), np.inf))


def certificate_factor(mdp: FiniteMDP, pi: FloatArray | IntArray | None = None) -> float:
    """1 / (1 - gamma rho): the factor that turns a Bellman residual into a bound on the error of V, rigorous
    for the *stored* kernel.

    The textbook factor 1 / (1 - gamma) holds when every row of P (or P_pi) sums to 1 exactly. The stored rows
    are float64 numbers whose exact sum may exceed 1 by a few ulps ([0.1, 0.9] sums to 1 + 2.8e-17: its float
    sum is 1.0), and then ||(I - gamma P)^{-1}|| is 1 / (1 - gamma rho) with rho the largest exact row sum:
    at gamma = 1 - 2^-40 the certificates were 3e-5 too small (review 2026-12-07). rho is bounded here from the
    float row sums: the exact sum of m numbers is within gamma_m (Higham) of the computed one, so rho <= max
    fl(sum) (1 + gamma_m) (and for a stochastic policy pi, a second such sum over the A actions). Raises
    :class:`NotConvergedError` where gamma rho >= 1 (gamma within the rows' rounding of 1: no certificate).

    Spec: BEL-08 (the contraction factor of the stored operator), support for BEL-25, BEL-27 (certificates).
    ``pi``: None (the optimality operator: the largest row over all (s, a)), int [S+1] or [S+1, A].
    """
    return _factor(float(mdp.gamma), kernel_row_sum_bound(mdp, pi))


def _factor(g: float, rho: float) -> float:
    """An upper bound on 1 / (1 - g rho), or NotConvergedError where g rho >= 1 (see certificate_factor)."""
    prod = g * rho  # rounded: within U64 * prod of the exact product
    # 1 - prod is exact for prod in [1/2, 2] (Sterbenz) and accurate to u otherwise (then it is >= 1/2); the
    # product's rounding is an absolute error, large next to 1 - gamma rho for gamma near 1, so it is subtracted
    lower = (1.0 - prod) - 2.0 * U64 * prod
    if not lower > 0.0:
        raise NotConvergedError(f"gamma = {g!r} is within the rounding of the kernel's row sums of 1 (rho <= "
                                f"{rho!r}): no residual certificate exists in float64")
    return float(np.nextafter((1.0 / lower) * (1.0 + 2.0 * U64), np.inf))


def greedy_from_v(mdp: FiniteMDP, v: FloatArray, *, current: IntArray | None = None) -> IntArray:
    """pi(s) = argmax_a E[r + gamma V(s') | s, a] (BEL-16, BEL-25, BEL-33); [S] -> int [S].

    Tie-break: lowest index within the window of :func:`reference.mdp.greedy`; keeps ``current[s]``
    when it is a maximiser.
    """
    v = validate_values(mdp, v)
    return greedy(mdp.lookahead(v), current=current, scale=mdp.greedy_scales(v), tie_rtol=mdp.tie_rtol)


def greedy_from_q(q: FloatArray, *, current: IntArray | None = None, scale: float | FloatArray = 1.0,
                  tie_rtol: float = TIE_RTOL) -> IntArray:
    """pi(s) = argmax_a Q(s, a) (BEL-21, BEL-26); [S, A] -> int [S]. Tie-break as :func:`greedy_from_v`
    (for Q = r + gamma P V of an MDP pass ``scale=mdp.greedy_scales(V), tie_rtol=mdp.tie_rtol``, the per-entry
    window; see :func:`reference.mdp.greedy`)."""
    return greedy(q, current=current, scale=scale, tie_rtol=tie_rtol)
