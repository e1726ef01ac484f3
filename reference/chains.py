"""Structure of the Markov chain P_pi on S+: reachability of term, closed classes, linear solves.

Used by :mod:`reference.exact` for gamma = 1 (proper / improper policies, BEL-35..BEL-38) and by the
average-reward criterion (BEL-37). Matrices are [S, S] over S+ (term is the last index), dense arrays
or scipy.sparse CSR matrices.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from reference.errors import NotConvergedError
from reference.mdp import FloatArray, IntArray

__all__ = [
    "ChainStructure",
    "banded_ordering",
    "chain_structure",
    "solve_linear",
    "states_reaching",
]

DIRECT_SOLVE_MAX: int = 20_000
"""Sparse systems up to this size use a sparse LU (SuperLU) with SuperLU's own (COLAMD) ordering."""

FILL_CHECK_MIN: int = 2_000
"""Sparse systems above this size (and up to :data:`DIRECT_SOLVE_MAX`) whose band estimate of the fill exceeds
:data:`BANDED_FILL_MAX` try GMRES before SuperLU (a random 3-successor MDP: SuperLU 3.4 s at 5 000 states, 39 s at
10 000, GMRES milliseconds at gamma = 0.99); below it SuperLU takes under a second whatever the pattern."""

BANDED_FILL_MAX: int = 50_000_000
"""Larger sparse systems still use SuperLU when they are banded: after a reverse Cuthill-McKee ordering with
lower / upper bandwidths p / q, LU with partial pivoting keeps L within p and U within p + q sub/super-diagonals,
at most ``n (2 p + q + 1)`` entries (400 MB of values at this cap) and about ``n p (p + q)`` flops (a 200 x 200
grid: p = q = 200, 0.7 s; the cap allows up to about 3e10 flops, some 10 s).
A chain, a grid or a corridor MDP is banded; a random MDP with a few successors per state is not (its RCM
bandwidth is a sizeable fraction of n and the LU would fill in), and those go to restarted GMRES."""


def _as_csr(m: FloatArray | sp.csr_array) -> sp.csr_array:
    return m if sp.issparse(m) else sp.csr_array(m)


def _edge_pattern(m: FloatArray | sp.csr_array) -> sp.csr_array:
    """The 0/1 pattern of the positive entries of m: stored zero probabilities are not edges."""
    g = _as_csr(m).copy()
    g.eliminate_zeros()
    return sp.csr_array((np.ones_like(g.data), g.indices, g.indptr), shape=g.shape)


def states_reaching(m: FloatArray | sp.csr_array, target: int) -> IntArray:
    """All states from which ``target`` is reachable (target included) along positive entries of m.

    Shape: m [S, S]; result sorted int indices.

    Spec: support for BEL-35 (term reachable from every state: a proper policy).
    """
    rev = _edge_pattern(m).T.tocsr()
    order = csgraph.breadth_first_order(rev, target, directed=True, return_predecessors=False)
    return np.sort(np.asarray(order, dtype=np.int64))


@dataclass(frozen=True)
class ChainStructure:
    """Closed (recurrent) classes of a finite Markov chain and the states that reach term.

    Attributes:
        closed_classes: the closed communicating classes, term's class ``[term]`` first.
        reaches_term: bool [S]: term is reachable from s.
        transient: bool [S]: s belongs to no closed class.
    """

    closed_classes: tuple[IntArray, ...]
    reaches_term: np.ndarray
    transient: np.ndarray


def reachable_from(m: FloatArray | sp.csr_array, sources: np.ndarray) -> np.ndarray:
    """bool [S]: the states the chain ``m`` [S, S] can reach (in zero or more steps) from the states where
    ``sources`` (bool [S]) is True: one breadth-first search from a virtual source joined to every source.

    Spec: support for MDP-17 / BEL-35 (J(pi) and the occupancy at gamma = 1 depend only on the states p0 can
    reach: a trap p0 never reaches does not make them undefined).
    """
    g = _edge_pattern(m)
    n = g.shape[0]
    coo = g.tocoo()
    src = np.flatnonzero(np.asarray(sources, dtype=bool))
    rows = np.concatenate([np.asarray(coo.row), np.full(src.size, n)])
    cols = np.concatenate([np.asarray(coo.col), src])
    big = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n + 1, n + 1))
    order = csgraph.breadth_first_order(big, n, directed=True, return_predecessors=False)
    out = np.zeros(n + 1, dtype=bool)
    out[np.asarray(order)] = True
    return out[:n]


def chain_structure(m: FloatArray | sp.csr_array, term: int) -> ChainStructure:
    """Closed classes (strongly connected components with no exit) of the chain ``m`` [S, S].

    Spec: MDP-03 (absorption in term), support for BEL-35..BEL-38 (closed classes at gamma = 1).
    """
    g = _edge_pattern(m)
    n = g.shape[0]
    n_comp, labels = csgraph.connected_components(g, directed=True, connection="strong")
    # a component is closed iff no edge leaves it
    coo = g.tocoo()
    leaving = labels[coo.row] != labels[coo.col]
    open_comp = np.zeros(n_comp, dtype=bool)
    open_comp[labels[coo.row[leaving]]] = True
    classes = [np.flatnonzero(labels == c).astype(np.int64) for c in range(n_comp) if not open_comp[c]]
    classes.sort(key=lambda c: (0 if term in c else 1, int(c[0])))
    reach = np.zeros(n, dtype=bool)
    reach[states_reaching(g, term)] = True
    transient = np.ones(n, dtype=bool)
    for c in classes:
        transient[c] = False
    return ChainStructure(tuple(classes), reach, transient)


_GMRES_CHUNK: int = 20
"""Restart cycles of one GMRES call on the GMRES path of :func:`solve_linear` before the true residual is checked."""


def banded_ordering(a: FloatArray | sp.csr_array) -> tuple[IntArray, int, int]:
    """Reverse Cuthill-McKee ordering of ``a`` [n, n] (on the pattern of a + a^T) and its bandwidths.

    Returns ``(perm, p, q)``: ``a[perm][:, perm]`` has lower bandwidth p and upper bandwidth q (entries
    (i, j) with j < i - p or j > i + q are zero). The estimate of the LU fill that :func:`solve_linear`
    compares with :data:`BANDED_FILL_MAX` is ``n (2 p + q + 1)``.

    Spec: support for MDP-20, BEL-04 and BEL-35 (the path choice of the linear solves of exact V^pi).
    """
    A = _as_csr(a)
    n = A.shape[0]
    pat = sp.csr_array((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape)
    sym = sp.csr_array(pat + pat.T)
    perm = np.asarray(csgraph.reverse_cuthill_mckee(sym, symmetric_mode=True), dtype=np.int64)
    if n == 0 or A.nnz == 0:
        return perm, 0, 0
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n, dtype=np.int64)
    coo = A.tocoo()
    d = inv[coo.row] - inv[coo.col]  # > 0 below the diagonal of the permuted matrix
    return perm, int(max(0, int(d.max()))), int(max(0, int(-d.min())))


def solve_linear(
    a: FloatArray | sp.csr_array,
    b: FloatArray,
    *,
    rtol: float = 1e-13,
    maxiter: int = 2000,
) -> FloatArray:
    """Solve ``a x = b`` (a [n, n], b [n] or [n, k]) by a direct LU where it fits, by GMRES otherwise.

    Dense: LAPACK LU (``scipy.linalg.solve``). Sparse with n <= :data:`DIRECT_SOLVE_MAX`: SuperLU, except
    that above :data:`FILL_CHECK_MIN` states a system whose band estimate of the fill exceeds
    :data:`BANDED_FILL_MAX` tries GMRES first (as below) and falls back to SuperLU if GMRES does not converge. Larger
    sparse: if the band estimate of the fill is at most :data:`BANDED_FILL_MAX` (see :func:`banded_ordering`),
    SuperLU on the reverse Cuthill-McKee ordering, then up to 3 steps of iterative refinement until the
    normwise backward error ``||b - a x||_inf / (||a||_inf ||x||_inf + ||b||_inf)`` is at most ``rtol``
    (:class:`NotConvergedError` if it exceeds ``10 rtol``, per column); the direct paths are backward stable,
    and the forward error is the caller's to bound with the condition number (as :func:`reference.exact.v_pi`
    does at gamma = 1). Otherwise restarted GMRES (b scaled by a power of two; calls of min(20, ``maxiter``)
    restart cycles, each on the true residual, up to 4 ``maxiter`` cycles in all, stopping when the residual
    target is met or a call of 20 cycles does not halve it);
    :class:`NotConvergedError` unless ``||b - a x||_inf <= 10 rtol ||b||_inf`` or, where the residual stagnated
    at rounding level, the normwise backward error is at most ``10 rtol`` (as on the direct paths). The
    caller turns the residual into a certified error bound (see :func:`reference.exact.v_pi_certified`). A matrix
    that LAPACK or SuperLU find singular (a zero pivot) raises ``numpy.linalg.LinAlgError`` on every direct path
    (SuperLU only warns and returns NaN, or stops with a RuntimeError, without the check); a matrix singular in
    exact arithmetic whose rounded pivots are not 0 gives a large x instead, so the callers bound the
    conditioning themselves (:func:`reference.exact.v_pi` by E[T]).

    Spec: support for MDP-20, BEL-04 and BEL-35 (the linear solves of exact V^pi, E[T] and occupancies).
    """
    if not sp.issparse(a):
        return np.asarray(sla.solve(np.asarray(a), b, check_finite=False), dtype=np.float64)
    A = _as_csr(a)
    n = A.shape[0]
    if n <= min(FILL_CHECK_MIN, DIRECT_SOLVE_MAX):
        return _solve_superlu(A, b)
    perm, lower, upper = banded_ordering(A)
    banded = n * (2 * lower + upper + 1) <= BANDED_FILL_MAX
    if n <= DIRECT_SOLVE_MAX:
        if banded:
            return _solve_superlu(A, b)
        # no narrow band (a random MDP with a few successors per state): SuperLU's LU fills in (10 000 states:
        # 39 s, 20 000: minutes and 2.3 GB), GMRES usually takes milliseconds; SuperLU stays the fallback
        try:
            return _solve_gmres(A, b, rtol, maxiter)
        except NotConvergedError:
            return _solve_superlu(A, b)
    if banded:
        return _solve_banded(A, b, perm, rtol)
    return _solve_gmres(A, b, rtol, maxiter)


def _solve_superlu(A: sp.csr_array, b: FloatArray) -> FloatArray:
    """The sparse direct path of :func:`solve_linear`: SuperLU with its own (COLAMD) ordering."""
    n = A.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", spla.MatrixRankWarning)
        try:
            x = spla.spsolve(A.tocsc(), b)
        except spla.MatrixRankWarning:
            raise np.linalg.LinAlgError(f"solve_linear: the sparse matrix a ({n} x {n}) is singular "
                                        "(as the dense path, scipy.linalg.solve, reports)") from None
    return np.asarray(x, dtype=np.float64).reshape(b.shape)


def _solve_gmres(A: sp.csr_array, b: FloatArray, rtol: float, maxiter: int) -> FloatArray:
    """The GMRES path of :func:`solve_linear` (see there)."""
    n = A.shape[0]
    if b.ndim == 2:
        return np.stack([_solve_gmres(A, b[:, j], rtol, maxiter) for j in range(b.shape[1])], axis=1)
    bnorm0 = float(np.max(np.abs(b))) if b.size else 0.0
    if bnorm0 == 0.0:
        return np.zeros_like(b)
    # b scaled by a power of two (exact) to max |b| in [1/2, 1): GMRES's 2-norms overflowed or underflowed for
    # rewards of 1e160 or 1e-170 and a solvable system raised NotConvergedError
    e = int(np.frexp(bnorm0)[1])
    bs = np.ldexp(np.asarray(b, dtype=np.float64), -e)
    bnorm = float(np.max(np.abs(bs)))
    anorm = float(np.max(np.abs(A) @ np.ones(n)))
    x = np.zeros_like(bs)
    budget = 4 * maxiter  # as before: up to four GMRES calls of ``maxiter`` cycles (refinement steps)
    used, best, last, stagnated = 0, float("inf"), 0, False
    # GMRES in chunks of CHUNK restart cycles, each on the true residual (iterative refinement), until the
    # inf-norm target is met: one call with the whole budget ran every cycle when its 2-norm target sat at
    # rounding level (111 432 products where 1 200 had met the target)
    while used < budget:
        res = bs - A @ x
        rn = float(np.max(np.abs(res)))
        if rn <= rtol * bnorm:
            break
        if last >= _GMRES_CHUNK and rn > 0.5 * best:  # not even halved by a whole chunk: stagnated (rounding)
            stagnated = True
            break
        best = min(best, rn)
        last = min(_GMRES_CHUNK, maxiter, budget - used)
        dx, _info = spla.gmres(A, res, rtol=0.0, atol=0.5 * rtol * bnorm, restart=60, maxiter=last)
        used += last
        x = x + np.asarray(dx, dtype=np.float64)
    res_norm = float(np.max(np.abs(bs - A @ x)))
    backward = res_norm / (anorm * float(np.max(np.abs(x))) + bnorm)
    # the documented residual target, or (GMRES stagnated at rounding level) the normwise backward error the
    # direct paths meet: at gamma = 1 - 1e-6 the residual target relative to |b| is out of reach of float64,
    # while x had a backward error of 1.5e-16
    if res_norm > 10 * rtol * bnorm and not (stagnated and backward <= 10 * rtol):
        raise NotConvergedError(f"GMRES reached relative residual {res_norm / bnorm:.3e} > {10 * rtol:.1e} "
                                f"(normwise backward error {backward:.1e})")
    return np.ldexp(x, e)


def _solve_banded(A: sp.csr_array, b: FloatArray, perm: IntArray, rtol: float) -> FloatArray:
    """The banded direct path of :func:`solve_linear`: SuperLU on ``A[perm][:, perm]`` in that order."""
    n = A.shape[0]
    B = sp.csc_array(A[perm][:, perm])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", spla.MatrixRankWarning)
            lu = spla.splu(B, permc_spec="NATURAL")
    except (RuntimeError, spla.MatrixRankWarning) as exc:  # SuperLU: "Factor is exactly singular"
        raise np.linalg.LinAlgError(f"solve_linear: the sparse matrix a ({n} x {n}) is singular "
                                    f"(SuperLU: {exc})") from None
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n, dtype=np.int64)

    def solve(r: FloatArray) -> FloatArray:  # a^-1 r through the permuted factors
        return np.asarray(lu.solve(np.ascontiguousarray(r[perm])), dtype=np.float64)[inv]

    anorm = float(np.max(np.abs(A) @ np.ones(n)))  # ||a||_inf

    def backward_error(bj: FloatArray, x: FloatArray) -> float:
        scale = anorm * float(np.max(np.abs(x))) + float(np.max(np.abs(bj)))
        return float(np.max(np.abs(bj - A @ x))) / scale if scale > 0.0 else 0.0

    cols = b.reshape(n, -1)
    out = np.empty_like(cols, dtype=np.float64)
    for j in range(cols.shape[1]):
        bj = np.asarray(cols[:, j], dtype=np.float64)
        x = solve(bj)
        if not np.all(np.isfinite(x)):
            raise np.linalg.LinAlgError(f"solve_linear: the sparse matrix a ({n} x {n}) is numerically singular "
                                        "(the banded LU solve overflowed)")
        for _ in range(3):  # iterative refinement in float64
            if backward_error(bj, x) <= rtol:
                break
            x = x + solve(bj - A @ x)
        err = backward_error(bj, x)
        if not err <= 10 * rtol:
            raise NotConvergedError(f"banded LU + refinement reached normwise backward error {err:.3e} "
                                    f"> {10 * rtol:.1e}")
        out[:, j] = x
    return out.reshape(b.shape)
