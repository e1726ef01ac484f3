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
    "chain_structure",
    "solve_linear",
    "states_reaching",
]

DIRECT_SOLVE_MAX: int = 20_000
"""Sparse systems up to this size use a sparse LU (SuperLU); larger ones use restarted GMRES."""


def _as_csr(m: FloatArray | sp.csr_array) -> sp.csr_array:
    return m if sp.issparse(m) else sp.csr_array(m)


def states_reaching(m: FloatArray | sp.csr_array, target: int) -> IntArray:
    """All states from which ``target`` is reachable (target included) along positive entries of m.

    Shape: m [S, S]; result sorted int indices.
    """
    g = _as_csr(m).copy()
    g.eliminate_zeros()  # stored zero probabilities are not edges: drop them before the 0/1 pattern
    g = sp.csr_array((np.ones_like(g.data), g.indices, g.indptr), shape=g.shape)
    rev = g.T.tocsr()
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


def chain_structure(m: FloatArray | sp.csr_array, term: int) -> ChainStructure:
    """Closed classes (strongly connected components with no exit) of the chain ``m`` [S, S]."""
    g = _as_csr(m).copy()
    g.eliminate_zeros()  # stored zero probabilities are not edges: drop them before the 0/1 pattern
    g = sp.csr_array((np.ones_like(g.data), g.indices, g.indptr), shape=g.shape)
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


def solve_linear(
    a: FloatArray | sp.csr_array,
    b: FloatArray,
    *,
    rtol: float = 1e-13,
    maxiter: int = 2000,
) -> FloatArray:
    """Solve ``a x = b`` (a [n, n], b [n] or [n, k]) exactly for dense / small sparse, by GMRES otherwise.

    Dense: LAPACK LU (``scipy.linalg.solve``). Sparse with n <= :data:`DIRECT_SOLVE_MAX`: SuperLU.
    Larger sparse: restarted GMRES to relative residual ``rtol``, followed by up to 3 steps of
    iterative refinement; raises :class:`NotConvergedError` if ``||b - a x||_inf > 10 rtol ||b||_inf``
    at the end. The caller turns the residual into a certified error bound (see
    :func:`reference.exact.v_pi_certified`). A singular matrix raises ``numpy.linalg.LinAlgError`` on the
    dense and the direct sparse path alike (SuperLU only warns and returns NaN).
    """
    if not sp.issparse(a):
        return np.asarray(sla.solve(np.asarray(a), b, check_finite=False), dtype=np.float64)
    A = _as_csr(a)
    n = A.shape[0]
    if n <= DIRECT_SOLVE_MAX:
        with warnings.catch_warnings():
            warnings.simplefilter("error", spla.MatrixRankWarning)
            try:
                x = spla.spsolve(A.tocsc(), b)
            except spla.MatrixRankWarning:
                raise np.linalg.LinAlgError(f"solve_linear: the sparse matrix a ({n} x {n}) is singular "
                                            "(as the dense path, scipy.linalg.solve, reports)") from None
        return np.asarray(x, dtype=np.float64).reshape(b.shape)
    if b.ndim == 2:
        return np.stack([solve_linear(A, b[:, j], rtol=rtol, maxiter=maxiter) for j in range(b.shape[1])],
                        axis=1)
    bnorm = float(np.max(np.abs(b))) if b.size else 0.0
    if bnorm == 0.0:
        return np.zeros_like(b)
    x = np.zeros_like(b)
    for _ in range(4):
        res = b - A @ x
        if np.max(np.abs(res)) <= rtol * bnorm:
            break
        # GMRES stops on the 2-norm; aim at a 2-norm that makes the inf-norm target likely, then check.
        dx, _info = spla.gmres(A, res, rtol=0.0, atol=0.5 * rtol * bnorm * np.sqrt(n), restart=60,
                               maxiter=maxiter)
        x = x + np.asarray(dx, dtype=np.float64)
    res_norm = float(np.max(np.abs(b - A @ x)))
    if res_norm > 10 * rtol * bnorm:
        raise NotConvergedError(f"GMRES reached relative residual {res_norm / bnorm:.3e} > {10 * rtol:.1e}")
    return x
