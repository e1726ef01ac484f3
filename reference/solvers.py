"""Fast certified solvers for large MDPs: Bellman sweeps, Krylov policy evaluation, Newton-Krylov PI.

Every answer carries an a-posteriori certificate computed in float64 from one Bellman application
(gamma < 1, ``||(I - gamma P_pi)^{-1}||_inf = 1 / (1 - gamma)``):

* policy evaluation (BEL-04, BEL-08): ``||V - V^pi||_inf <= ||B^pi V - V||_inf / (1 - gamma)``;
* control (BEL-12, BEL-14): ``||V - V*||_inf <= ||B^* V - V||_inf / (1 - gamma)``, since
  ``||V - V*|| <= ||V - B^*V|| + ||B^*V - B^*V*|| <= res + gamma ||V - V*||``.

The iterative parts (GMRES, inexact policy evaluation) only have to make the residual small; they
are never trusted for the bound. Conventions as in :mod:`reference.mdp` (term is the last index,
acting in s_t yields r_t). Shapes: S means |S+| (term included), A the number of actions.

Speed comes from: a :class:`BellmanKernel` that keeps the flat ``[S*A, S]`` transition matrix and
reusable output buffers (a dense sweep is a single BLAS matrix-vector product, a sparse one a CSR
product split over threads), the rows of P_pi gathered once per policy instead of a dense LU or a
sparse matrix-matrix product, restarted GMRES with classical Gram-Schmidt (BLAS-2) orthogonalisation,
and inexact (Newton-Krylov) policy iteration whose evaluations are only as accurate as the current
Bellman residual needs. Dense deterministic P_pi is also kept as a float32 copy (cast block by block
during the gather): GMRES's Arnoldi products read half the bytes, while every GMRES cycle's residual
is recomputed with the float64 P_pi (mixed-precision iterative refinement), so stopping tests and
certificates stay float64.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

try:  # scipy's CSR kernel (y += A x into a caller's buffer, GIL released); public fallback below
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - other scipy layouts
    _csr_matvec = None

from reference.bellman import certificate_factor, residual_rounding_bound
from reference.dp import CertifiedSolution, certificate_eps
from reference.errors import InvalidDiscountError, NotConvergedError, ShapeError
from reference.exact import Certified
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    IntArray,
    greedy,
    validate_actions,
    validate_int,
    validate_policy,
    validate_values,
)

__all__ = [
    "EVAL_EPS_RTOL",
    "OPT_EPS_RTOL",
    "BellmanKernel",
    "GMRESResult",
    "evaluate_policy",
    "gmres",
    "solve_optimal",
    "value_iteration_sweeps",
]

Matvec = Callable[[FloatArray], FloatArray]
Float32Array = NDArray[np.float32]

EVAL_EPS_RTOL: float = 1e-12
"""Default certificate of :func:`evaluate_policy` relative to the value scale R / (1 - gamma)."""

OPT_EPS_RTOL: float = 1e-10
"""Default certificate of :func:`solve_optimal` relative to the value scale R / (1 - gamma)."""

_GATHER_ROWS: int = 64
"""Rows of P_pi gathered per block when a float32 copy is kept too (the block is cast while it is
still in cache, so the copy costs no second pass over the float64 rows)."""

_SPLIT_MIN_NNZ: int = 2_000_000
"""Sparse products with at least this many stored entries are split into row blocks over threads
(scipy's CSR product releases the GIL)."""


def _default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class _BlockCSR:
    """A CSR matrix cut into row blocks (views, no copy) whose products run on a thread pool."""

    def __init__(self, m: sp.csr_array, threads: int) -> None:
        self.shape: tuple[int, int] = (int(m.shape[0]), int(m.shape[1]))
        n_rows = self.shape[0]
        k = threads if (threads > 1 and m.nnz >= _SPLIT_MIN_NNZ) else 1
        cuts = np.searchsorted(m.indptr, np.linspace(0, m.nnz, k + 1)).clip(0, n_rows)
        cuts[0], cuts[-1] = 0, n_rows
        self.cuts: list[tuple[int, int]] = [(int(a), int(b)) for a, b in itertools.pairwise(cuts) if b > a]
        self.blocks: list[sp.csr_array] = []
        for a, b in self.cuts:
            lo, hi = int(m.indptr[a]), int(m.indptr[b])
            self.blocks.append(sp.csr_array((m.data[lo:hi], m.indices[lo:hi], m.indptr[a:b + 1] - lo),
                                            shape=(b - a, self.shape[1]), copy=False))
        self.pool: ThreadPoolExecutor | None = ThreadPoolExecutor(len(self.blocks)) if len(self.blocks) > 1 else None

    def _block(self, i: int, x: FloatArray, out: FloatArray) -> None:
        a, b = self.cuts[i]
        blk = self.blocks[i]
        if _csr_matvec is None:
            out[a:b] = blk @ x
            return
        y = out[a:b]
        y.fill(0.0)
        _csr_matvec(b - a, self.shape[1], blk.indptr, blk.indices, blk.data, x, y)

    def matvec(self, x: FloatArray, out: FloatArray) -> FloatArray:
        """out = M x (out has shape [rows]; no temporaries)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if self.pool is None:
            self._block(0, x, out)
            return out

        def job(i: int) -> None:
            self._block(i, x, out)

        list(self.pool.map(job, range(len(self.blocks))))
        return out


class BellmanKernel:
    """Reusable fast Bellman operators of one MDP (dense BLAS or threaded sparse products).

    Spec: BEL-06, BEL-14, BEL-16. Holds the flat transition matrix P [S*A, S] (row ``s*A + a``),
    r [S, A] and output buffers. :meth:`lookahead` returns ``q = r + gamma P V`` [S, A];
    :meth:`optimality` returns ``(B^* V, q)``; :meth:`policy_operator` gives ``x -> P_pi x`` and r_pi.
    Buffers returned by :meth:`lookahead` are overwritten by the next call.
    """

    def __init__(self, mdp: FiniteMDP, *, threads: int | None = None) -> None:
        self.mdp = mdp
        self.n = mdp.n_states_plus
        self.n_actions = mdp.n_actions
        self.gamma = mdp.gamma
        self.threads = _default_threads() if threads is None else max(1, int(threads))
        self.r = np.ascontiguousarray(mdp.r, dtype=np.float64)
        self._buf = np.empty(self.n * self.n_actions)
        self._work: FloatArray | None = None
        self._ppi: FloatArray | None = None
        self._ppi_pol: IntArray | None = None
        self._ppi32: Float32Array | None = None
        self._ppi32_pol: IntArray | None = None
        self._dense: FloatArray | None = None
        self._sparse: _BlockCSR | None = None
        self._csr: sp.csr_array | None = None
        if mdp.is_sparse:
            self._csr = mdp.transition_csr
            self._sparse = _BlockCSR(self._csr, self.threads)
        else:
            self._dense = mdp.transition_dense

    @property
    def bytes_per_sweep(self) -> int:
        """Bytes of P (values, and indices for sparse) read by one sweep."""
        if self._dense is not None:
            return int(self._dense.nbytes)
        assert self._csr is not None
        return int(self._csr.data.nbytes + self._csr.indices.nbytes + self._csr.indptr.nbytes)

    def _dense_rows(self, pol: IntArray, rows: IntArray, *, float32: bool = False) -> FloatArray:
        """The kernel's [S, S] buffer holding P_pi for the deterministic policy ``pol`` (rows ``rows``).

        Only the rows of states whose action changed since the previous call are rewritten. With
        ``float32`` the kernel's float32 copy of P_pi (:meth:`policy_operator_float32`) is kept in step
        in the same pass: each block of gathered rows is cast while it is still in cache."""
        assert self._dense is not None
        n = self.n
        prev = self._ppi_pol
        stale32 = float32 and (self._ppi32 is None or self._ppi32_pol is None or prev is None
                               or not np.array_equal(self._ppi32_pol, prev))
        if self._ppi is None:
            self._ppi = np.empty((n, n))
        if float32 and self._ppi32 is None:
            self._ppi32 = np.empty((n, n), dtype=np.float32)
        ppi, f32 = self._ppi, (self._ppi32 if float32 else None)
        if prev is None or stale32:
            for a in range(0, n, _GATHER_ROWS):
                b = min(n, a + _GATHER_ROWS)
                np.take(self._dense, rows[a:b], axis=0, out=ppi[a:b])
                if f32 is not None:
                    f32[a:b] = ppi[a:b]
        else:
            changed = np.flatnonzero(pol != prev)
            if changed.size:
                ppi[changed] = self._dense[rows[changed]]
                if f32 is not None:
                    f32[changed] = ppi[changed]
        self._ppi_pol = pol.copy()
        if float32:
            self._ppi32_pol = self._ppi_pol
        return ppi

    def workspace(self, rows: int) -> FloatArray:
        """A reusable [rows, S] scratch array (the GMRES Krylov basis); grown on demand."""
        if self._work is None or self._work.shape[0] < rows:
            self._work = np.empty((rows, self.n))
        return self._work

    def expected_next(self, v: FloatArray) -> FloatArray:
        """(P V)(s, a) = sum_{s'} P[s, a, s'] V(s'), flat shape [S*A] (an internal buffer)."""
        if self._dense is not None:
            np.matmul(self._dense, v, out=self._buf)
        else:
            assert self._sparse is not None
            self._sparse.matvec(v, self._buf)
        return self._buf

    def lookahead(self, v: FloatArray) -> FloatArray:
        """q(s, a) = r(s, a) + gamma (P V)(s, a), shape [S, A] (an internal buffer). BEL-14, BEL-16."""
        q = self.expected_next(v).reshape(self.n, self.n_actions)
        q *= self.gamma
        q += self.r
        return q

    def optimality(self, v: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(B^* V)(s) = max_a [r(s, a) + gamma (P V)(s, a)] (BEL-14); returns (B^* V [S], q [S, A])."""
        q = self.lookahead(v)
        return np.asarray(q.max(axis=1), dtype=np.float64), q

    def _deterministic(self, pi: ArrayLike) -> IntArray:
        """A deterministic policy int [S]: integer actions in 0..A-1 (validate_actions), shape [S]."""
        pol = validate_actions(pi, self.n_actions, name="pi")
        if np.shape(pi) != (self.n,):
            raise ShapeError(f"a deterministic policy must have shape ({self.n},), got {np.shape(pi)}")
        return pol

    def policy_operator(self, pi: FloatArray | IntArray, *, float32: bool = False) -> tuple[Matvec, FloatArray]:
        """``(x -> P_pi x, r_pi)`` for a deterministic int policy [S] or a stochastic one [S, A].

        P_pi[s, s'] = sum_a pi(a | s) P[s, a, s'] (MDP-06). Deterministic: the rows ``s*A + pi(s)`` are
        gathered once (CSR rows, or a dense [S, S] buffer owned by the kernel in which only the rows of
        states whose action changed since the previous call are rewritten: a dense deterministic
        operator is valid until the next call). Stochastic dense: P_pi is formed once by one pass over
        P; stochastic sparse: ``P_pi x = D_pi (P x)`` without forming P_pi. ``float32`` (dense
        deterministic only, ignored otherwise): keep a float32 copy of P_pi in step, for
        :meth:`policy_operator_float32`. A deterministic ``pi`` is checked by
        :func:`reference.mdp.validate_actions` (a float action 0.9 raises InvalidPolicyError, never truncated
        to 0; 2.0 is read as 2) and must have shape [S].
        """
        n, na = self.n, self.n_actions
        out = np.empty(n)
        if np.ndim(pi) == 1:
            pol = self._deterministic(pi)
            rows = np.arange(n, dtype=np.int64) * na + pol
            r_pi = np.asarray(self.r.ravel()[rows], dtype=np.float64)
            if self._dense is not None:
                ppi = self._dense_rows(pol, rows, float32=float32)
                return (lambda x: np.matmul(ppi, x, out=out)), r_pi
            assert self._csr is not None
            blk = _BlockCSR(self._csr[rows], self.threads)
            return (lambda x: blk.matvec(x, out)), r_pi
        w = np.asarray(pi, dtype=np.float64)
        r_pi = np.einsum("sa,sa->s", w, self.r)
        if self._dense is not None:
            ppi_s = np.einsum("sa,sat->st", w, self._dense.reshape(n, na, n))
            return (lambda x: np.matmul(ppi_s, x, out=out)), r_pi

        def op(x: FloatArray) -> FloatArray:
            return np.einsum("sa,sa->s", w, self.expected_next(x).reshape(n, na), out=out)

        return op, r_pi

    def policy_operator_float32(self, pi: FloatArray | IntArray) -> Matvec | None:
        """``x -> P_pi x`` with the float32 copy of P_pi (half the bytes of the float64 operator).

        Valid after ``policy_operator(pi, float32=True)`` for the same deterministic ``pi`` on a dense
        MDP (until the next call); None otherwise. Input and output are float64 [S]; the product is
        rounded to float32 (relative error ~1e-7): only for inner solves whose residuals are recomputed
        in float64 (see :func:`gmres`, ``inner``).
        """
        if self._ppi32 is None or self._ppi32_pol is None or np.ndim(pi) != 1:
            return None
        if not np.array_equal(self._deterministic(pi), self._ppi32_pol):  # 0.9 is no policy's action 0
            return None
        p32 = self._ppi32
        x32 = np.empty(self.n, dtype=np.float32)
        y32 = np.empty(self.n, dtype=np.float32)

        def op(x: FloatArray) -> FloatArray:
            np.copyto(x32, x, casting="same_kind")
            np.matmul(p32, x32, out=y32)
            return y32.astype(np.float64)

        return op


# ====================================================================================== GMRES
@dataclass(frozen=True)
class GMRESResult:
    """Approximate solution x of ``a x = b`` with its final residual 2-norm and the work done."""

    x: FloatArray
    residual_norm: float
    matvecs: int
    converged: bool


def gmres(
    matvec: Matvec,
    b: FloatArray,
    *,
    tol: float,
    x0: FloatArray | None = None,
    restart: int = 30,
    max_matvecs: int = 2000,
    workspace: FloatArray | None = None,
    tol_min: float | None = None,
    fast_ratio: float = 0.0,
    inner: Matvec | None = None,
    inner_rtol: float = 1e-6,
) -> GMRESResult:
    """Restarted GMRES(m) for ``a x = b``: stops when ``||b - a x||_2 <= tol`` (true residual).

    Minimises ``||b - a x||_2`` over ``x0 + K_m(a, r0)`` per cycle (Saad & Schultz 1986), Arnoldi with
    classical Gram-Schmidt and one conditional re-orthogonalisation ("twice is enough"), Givens
    rotations for the small least-squares problem. Shapes: b, x0, x [n]; ``workspace`` (optional,
    reused for the Krylov basis) [m + 1, n] or larger. The residual of every cycle is recomputed as
    ``b - a x`` (not the recursive estimate). Cheap extra accuracy: once ``tol`` is met, the current
    cycle goes on down to ``tol_min`` while each step still shrinks the residual estimate by a factor
    ``<= fast_ratio`` (a fast-converging solve costs little more made accurate).

    Mixed precision (``inner``, e.g. a float32 product): the Arnoldi steps use ``inner``, an
    approximation of ``matvec``, and each cycle ends once its residual estimate has dropped by
    ``inner_rtol`` (about what the approximate products can resolve); the cycle's true residual is then
    recomputed with ``matvec`` (float64), so the restarts are iterative refinement and the stopping test
    stays exact. If a cycle fails to halve the true residual, ``inner`` is dropped for the remaining
    cycles (e.g. when the approximation is too coarse for the conditioning). ``matvecs`` counts both.
    A right-hand side outside [2^-400, 2^400] in magnitude is scaled by a power of two first (exact), so that
    the 2-norms neither overflow nor underflow.
    ``restart`` (m >= 1) and ``max_matvecs`` (>= 0) are integers (a float such as 1.5 raises ReferenceError_,
    :func:`reference.mdp.validate_int`).

    Spec: support for BEL-04, BEL-33 (the iterative policy evaluation of the certified solvers).
    """
    restart = validate_int(restart, "restart", minimum=1)
    max_matvecs = validate_int(max_matvecs, "max_matvecs")
    # The 2-norms below square the entries: beyond about 1e154 they overflow and below about 1e-162 they vanish
    # (a valid MDP with rewards of 1e-160 raised NotConvergedError; b = 1e-170 "converged" at x = 0). The system
    # is linear, so it is solved for b 2^-e (x0 2^-e, tol 2^-e) and x scaled back by 2^e: exact, powers of two.
    big = max(float(np.max(np.abs(b), initial=0.0)), 0.0 if x0 is None else float(np.max(np.abs(x0), initial=0.0)))
    if 0.0 < big < math.inf and not 2.0**-400 <= big <= 2.0**400:
        e = math.frexp(big)[1]
        res = gmres(matvec, np.ldexp(b, -e), tol=math.ldexp(tol, -e),
                    x0=None if x0 is None else np.ldexp(np.asarray(x0, dtype=np.float64), -e), restart=restart,
                    max_matvecs=max_matvecs, workspace=workspace,
                    tol_min=None if tol_min is None else math.ldexp(tol_min, -e), fast_ratio=fast_ratio,
                    inner=inner, inner_rtol=inner_rtol)
        return GMRESResult(np.ldexp(res.x, e), math.ldexp(res.residual_norm, e), res.matvecs, res.converged)
    n = b.size
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64)
    r = b.copy() if x0 is None else b - matvec(x)
    used = 0 if x0 is None else 1
    beta = float(np.linalg.norm(r))
    m = max(1, min(restart, n))
    if workspace is not None and workspace.shape[0] >= m + 1 and workspace.shape[1] == n:
        basis = workspace
    else:
        basis = np.empty((m + 1, n))
    arnoldi = matvec if inner is None else inner
    fast_pending = False  # the last cycle stopped at its floor while still converging fast
    while used < max_matvecs and (beta > tol or (fast_pending and tol_min is not None and beta > tol_min)):
        beta_cycle = beta
        fast_pending = False
        floor = 0.0 if arnoldi is matvec else inner_rtol * beta
        np.multiply(r, 1.0 / beta, out=basis[0])
        h = np.zeros((m + 1, m))
        g = np.zeros(m + 1)
        g[0] = beta
        cs = np.zeros(m)
        sn = np.zeros(m)
        k = 0
        for j in range(m):
            w = np.array(arnoldi(basis[j]), dtype=np.float64)
            used += 1
            wnorm0 = float(np.linalg.norm(w))
            hj = basis[: j + 1] @ w
            w -= hj @ basis[: j + 1]
            wn = float(np.linalg.norm(w))
            if wn < 0.7 * wnorm0:
                h2 = basis[: j + 1] @ w
                w -= h2 @ basis[: j + 1]
                hj += h2
                wn = float(np.linalg.norm(w))
            h[: j + 1, j] = hj
            h[j + 1, j] = wn
            for i in range(j):
                t = cs[i] * h[i, j] + sn[i] * h[i + 1, j]
                h[i + 1, j] = -sn[i] * h[i, j] + cs[i] * h[i + 1, j]
                h[i, j] = t
            d = math.hypot(h[j, j], h[j + 1, j])
            if d == 0.0:
                break
            cs[j], sn[j] = h[j, j] / d, h[j + 1, j] / d
            h[j, j], h[j + 1, j] = d, 0.0
            prev = abs(g[j])
            g[j + 1] = -sn[j] * g[j]
            g[j] = cs[j] * g[j]
            k = j + 1
            est = abs(g[j + 1])
            fast = tol_min is not None and est > tol_min and est <= fast_ratio * prev
            if est <= floor:
                fast_pending = fast
                break
            if (est <= tol and not fast) or wn == 0.0 or used >= max_matvecs:
                break
            np.multiply(w, 1.0 / wn, out=basis[j + 1])
        if k == 0:
            break
        y = sla.solve_triangular(h[:k, :k], g[:k], check_finite=False)
        x += y @ basis[:k]
        r = b - matvec(x)
        used += 1
        beta = float(np.linalg.norm(r))
        if arnoldi is not matvec and beta > 0.5 * beta_cycle:
            arnoldi = matvec
    return GMRESResult(x, beta, used, beta <= tol)


def _gmres_tol(tol_inf: float, n: int) -> float:
    """2-norm GMRES target for an inf-norm target: ``||r||_2 <= tol_inf`` guarantees it; for a residual
    spread over many states ``||r||_inf ~ ||r||_2 sqrt(2 ln n / n)``, so aim between (the caller
    re-measures the true inf-norm residual and iterates)."""
    if n <= 2:
        return tol_inf
    return tol_inf * max(1.0, 0.25 * math.sqrt(n / (2.0 * math.log(n))))


def _shift_operator(pmatvec: Matvec, gamma: float) -> Matvec:
    """x -> (I - gamma P_pi) x."""
    def op(x: FloatArray) -> FloatArray:
        return np.asarray(x - gamma * pmatvec(x), dtype=np.float64)
    return op


# ========================================================================== policy evaluation
def _kernel_for(mdp: FiniteMDP, kernel: BellmanKernel | None) -> BellmanKernel:
    """``kernel`` if it was built for ``mdp`` (the same object), else a new one. A kernel of another MDP (or of
    the same one with another gamma, ``with_gamma``) gave that MDP's values under this one's certificate."""
    if kernel is None:
        return BellmanKernel(mdp)
    if kernel.mdp is not mdp:
        raise ValueError("kernel was built for another FiniteMDP (pass BellmanKernel(mdp) for this one; a kernel "
                         "carries its MDP's P, r and gamma)")
    return kernel


def evaluate_policy(
    mdp: FiniteMDP,
    pi: ArrayLike,
    *,
    eps: float | None = None,
    v0: FloatArray | None = None,
    kernel: BellmanKernel | None = None,
    restart: int = 30,
    max_matvecs: int = 5000,
    float32_inner: bool = True,
) -> Certified:
    """V^pi by Krylov solves of ``(I - gamma P_pi) V = r_pi``, certified ``||V - V^pi||_inf <= eps``.

    Spec: BEL-04, BEL-08. Certificate ``bound = ||B^pi V - V||_inf / (1 - gamma)`` with
    ``B^pi V = r_pi + gamma P_pi V`` evaluated in float64; iterative refinement (GMRES on the residual
    equation ``(I - gamma P_pi) d = B^pi V - V``) until it holds. ``pi``: int [S] (deterministic) or
    [S, A] (stochastic; one-hot rows use the deterministic path). ``float32_inner`` (dense MDP,
    deterministic policy): GMRES's Arnoldi products use a float32 copy of P_pi, its cycle residuals
    and the certificate the float64 one (see :func:`gmres`, ``inner``). Returns ``Certified(value [S], bound,
    residual)`` with V(term) = 0. ``eps`` is absolute; the default is :data:`EVAL_EPS_RTOL` times the value
    scale R / (1 - gamma) (an absolute default certified V = 0 on rewards far below it).
    Raises :class:`NotConvergedError` if ``max_matvecs`` is exhausted (an integer >= 1: the certificate
    takes one product; ``restart`` an integer >= 1).
    """
    gamma = mdp.gamma
    if gamma >= 1.0:
        raise InvalidDiscountError("evaluate_policy certifies with 1 / (1 - gamma): needs gamma < 1")
    eps = certificate_eps(mdp, eps, EVAL_EPS_RTOL)
    restart = validate_int(restart, "restart", minimum=1)
    max_matvecs = validate_int(max_matvecs, "max_matvecs", minimum=1)
    kern = _kernel_for(mdp, kernel)
    pol = _as_policy(mdp, pi)
    pmv, r_pi = kern.policy_operator(pol, float32=float32_inner)
    pmv32 = kern.policy_operator_float32(pol) if float32_inner else None
    a_op32 = None if pmv32 is None else _shift_operator(pmv32, gamma)
    r_pi[mdp.term] = 0.0
    factor = certificate_factor(mdp, pol)  # 1 / (1 - gamma rho): the stored rows may sum to 1 + a few ulps
    target = eps / factor
    v = np.zeros(mdp.n_states_plus) if v0 is None else validate_values(mdp, v0).copy()
    v[mdp.term] = 0.0
    stochastic = not (isinstance(pol, np.ndarray) and pol.ndim == 1)
    used = 0
    a_op = _shift_operator(pmv, gamma)
    while True:
        res = r_pi + gamma * pmv(v) - v
        used += 1
        rn = float(np.max(np.abs(res)))
        # the computed residual's own rounding is added: alone it can round to 0 where the exact one is not
        delta = residual_rounding_bound(mdp, float(np.max(np.abs(v))), stochastic_policy=stochastic)
        if delta > target:
            raise NotConvergedError(f"evaluate_policy cannot certify eps={eps:.3e}: the rounding of the residual "
                                    f"alone allows {delta * factor:.3e} (max|V| = {np.max(np.abs(v)):.3e})")
        if rn + delta <= target:
            return Certified(v, (rn + delta) * factor, rn)
        if used >= max_matvecs:
            raise NotConvergedError(f"evaluate_policy: residual {rn:.3e} > {target:.3e} after {used} products")
        out = gmres(a_op, res, tol=_gmres_tol(0.5 * (target - delta), res.size), restart=restart,
                    max_matvecs=max_matvecs - used, workspace=kern.workspace(restart + 1), inner=a_op32)
        used += out.matvecs
        v = v + out.x
        v[mdp.term] = 0.0


def _as_policy(mdp: FiniteMDP, pi: ArrayLike) -> FloatArray | IntArray:
    """Deterministic int [S] policy if ``pi`` is one (or one-hot), else a validated stochastic [S, A]."""
    arr = np.asarray(pi)
    n = mdp.n_states_plus
    if arr.ndim == 1:
        if arr.shape not in ((n,), (mdp.n_states,)):
            raise ShapeError(f"a deterministic policy must have shape ({n},), got {arr.shape}")
        act = np.zeros(n, dtype=np.int64)
        act[: arr.size] = validate_actions(arr, mdp.n_actions)  # 0.9 is refused, not truncated to 0
        act[mdp.term] = 0
        return act
    p = validate_policy(mdp, arr)
    body = p[: mdp.n_states]
    if np.all((body == 0.0) | (body == 1.0)):
        act = np.zeros(n, dtype=np.int64)
        act[: mdp.n_states] = np.argmax(body, axis=1)
        return act
    return p


# ==================================================================================== control
def solve_optimal(
    mdp: FiniteMDP,
    *,
    eps: float | None = None,
    pi0: IntArray | None = None,
    v0: FloatArray | None = None,
    forcing: float = 1e-2,
    fast_ratio: float = 0.1,
    kernel: BellmanKernel | None = None,
    restart: int = 30,
    max_iters: int = 500,
    float32_inner: bool = True,
) -> CertifiedSolution:
    """V* by inexact (Newton-Krylov) policy iteration, certified ``||V - V*||_inf <= eps`` (gamma < 1).

    Spec: BEL-12, BEL-14, BEL-33, BEL-34. Iteration k: ``q = r + gamma P V_k``, pi_{k+1} = greedy(q)
    (ties keep the current action), residual ``res = ||max_a q - V_k||_inf``; stop when
    ``res / (1 - gamma) <= eps`` (the certificate ``||V - V*|| <= ||B^*V - V|| / (1 - gamma)``).
    Otherwise V_{k+1} = V_k + d with ``(I - gamma P_{pi_{k+1}}) d = B^{pi_{k+1}} V_k - V_k`` solved by
    GMRES to relative accuracy ``forcing`` (exact d gives V_{k+1} = V^{pi_{k+1}}: this is PI, BEL-33,
    written as Newton's method on ``B^* V - V = 0``; the inexact solve keeps the rate while the policy
    settles and then shrinks the residual by about ``forcing`` per step), and further, down to the
    final target, while GMRES still gains a factor ``fast_ratio`` per product; not in the first step
    when it starts from V = 0 (its policy, greedy in r alone, is a guess that the next step will
    change, so its evaluation only needs the forcing accuracy). P_pi is rebuilt only when the policy
    changes (dense: only the changed rows). ``float32_inner`` (dense MDPs): the GMRES Arnoldi products
    use a float32 copy of P_pi (half the bytes), with every GMRES cycle's residual recomputed with the
    float64 P_pi (iterative refinement, see :func:`gmres`); the certificate is float64 either way.
    Shapes: pi0 int [S], v0 [S]; result value [S] (V(term) = 0), policy int [S]. ``eps`` is absolute; the
    default is :data:`OPT_EPS_RTOL` times the value scale R / (1 - gamma) (an absolute default of 1e-8
    certified the greedy-in-r policy at step 0 on rewards of order 1e-12, optimal or not).
    Raises :class:`NotConvergedError` after ``max_iters`` outer steps (e.g. eps below float resolution).
    """
    gamma = mdp.gamma
    if gamma >= 1.0:
        raise InvalidDiscountError("solve_optimal certifies with 1 / (1 - gamma): needs gamma < 1")
    eps = certificate_eps(mdp, eps, OPT_EPS_RTOL)
    max_iters = validate_int(max_iters, "max_iters", minimum=1)
    restart = validate_int(restart, "restart", minimum=1)
    kern = _kernel_for(mdp, kernel)
    n, term = mdp.n_states_plus, mdp.term
    v = np.zeros(n) if v0 is None else validate_values(mdp, v0).copy()
    v[term] = 0.0
    pol: IntArray | None = None
    if pi0 is not None:
        pol = validate_actions(pi0, mdp.n_actions, name="pi0").copy()
        if pol.shape != (n,):
            raise ShapeError(f"pi0 must have shape ({n},), got {np.shape(pi0)}")
    factor = certificate_factor(mdp)  # 1 / (1 - gamma rho), rho the largest row sum of the stored kernel
    target = eps / factor
    op_pol: IntArray | None = None
    a_op: Matvec | None = None
    a_op32: Matvec | None = None
    idx = np.arange(n)
    for k in range(max_iters):
        # r + gamma P 0 = r exactly: the first greedy step from V = 0 needs no sweep
        q = kern.r.copy() if not v.any() else kern.lookahead(v)
        pol = greedy(q, current=pol, scale=mdp.greedy_scales(v), tie_rtol=mdp.tie_rtol)
        pol[term] = 0
        bmax = q.max(axis=1)
        res = float(np.max(np.abs(bmax - v)))
        # plus the computed residual's own rounding (alone it can round to 0 where the exact one is not)
        delta = residual_rounding_bound(mdp, float(np.max(np.abs(v))))
        if delta > target:
            raise NotConvergedError(f"solve_optimal cannot certify eps={eps:.3e}: the rounding of the residual "
                                    f"alone allows {delta * factor:.3e} (max|V| = {np.max(np.abs(v)):.3e})")
        if res + delta <= target:
            return CertifiedSolution(v, pol, (res + delta) * factor, k)
        rhs = q[idx, pol] - v
        if op_pol is None or a_op is None or not np.array_equal(pol, op_pol):
            pmv, _r = kern.policy_operator(pol, float32=float32_inner)
            a_op = _shift_operator(pmv, gamma)
            pmv32 = kern.policy_operator_float32(pol) if float32_inner else None
            a_op32 = None if pmv32 is None else _shift_operator(pmv32, gamma)
            op_pol = pol.copy()
        tol_inf = max(forcing * res, 0.5 * (target - delta))
        guess = k == 0 and v0 is None
        out = gmres(a_op, rhs, tol=_gmres_tol(tol_inf, n), restart=restart,
                    workspace=kern.workspace(restart + 1), tol_min=_gmres_tol(0.5 * (target - delta), n),
                    fast_ratio=0.0 if guess else fast_ratio, inner=a_op32)
        v = v + out.x
        v[term] = 0.0
    raise NotConvergedError(f"solve_optimal: certificate above eps={eps:.1e} after {max_iters} steps")


def value_iteration_sweeps(
    mdp: FiniteMDP, v0: FloatArray, *, num_sweeps: int, kernel: BellmanKernel | None = None
) -> FloatArray:
    """``num_sweeps`` value-iteration sweeps V <- B^* V (BEL-25) from v0; returns the last iterate [S].

    The same operator as :func:`reference.dp.value_iteration` (one matrix-vector product with the flat
    P [S*A, S] per sweep), without storing the iterates: the unit of the sweep benchmark.
    """
    num_sweeps = validate_int(num_sweeps, "num_sweeps")
    kern = _kernel_for(mdp, kernel)
    v = validate_values(mdp, v0).copy()
    for _ in range(num_sweeps):
        v, _q = kern.optimality(v)
    return v
