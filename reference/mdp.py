"""Finite MDPs with an explicit absorbing terminal state (MDP-01..MDP-11, MDP-17).

Conventions (stated once for the whole package):

* States are ``0, ..., S-1`` and the terminal state ``term`` is the **last index** ``S``; arrays over
  S+ = S ∪ {term} have length ``S + 1``. Actions are ``0, ..., A-1`` and every action is available in
  every state (state-dependent action sets, MDP-09, are modelled by an action that behaves like another).
* Time index: acting with ``a_t`` in ``s_t`` yields ``(r_t, s_{t+1}) ~ p(., . | s_t, a_t)`` (the
  text's convention: the reward of step t is ``r_t``, not ``r_{t+1}``).
* MDP-11: from ``term`` every action gives reward 0 and leads back to ``term`` with probability 1;
  ``pi(. | term)`` is irrelevant. The constructors add these rows; user data never describes them.
* The joint kernel ``p(r, s' | s, a)`` has finite reward support. It is stored as a list of
  *outcomes* per row ``(s, a)`` (CSR layout, row index ``s * A + a``): outcome ``e`` has probability
  ``prob[e]``, reward ``reward[e]`` and next state ``next_state[e]``. Stochastic rewards are therefore
  exact, not only their means. From it we derive ``P[s, a, s']`` and ``r(s, a)`` (MDP-05).
* Dense and sparse MDPs share one interface: the kernel is always the same outcome table; the
  transition matrix is held as a dense ``((S+1) A, S+1)`` array for small MDPs and as a
  ``scipy.sparse.csr_array`` for large ones (``backend="auto"`` picks by size).
* A policy is a float64 array ``pi`` of shape ``(S+1, A)`` whose rows lie on the simplex (MDP-07);
  a deterministic policy is an int array of shape ``(S+1,)`` and is turned into a one-hot array by
  :func:`deterministic_policy`.

Shapes in docstrings use axis letters: S (states incl. term, i.e. S+1), A (actions), E (outcomes).
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from reference.errors import (
    InvalidDiscountError,
    InvalidMDPError,
    InvalidPolicyError,
    ReferenceError_,
    ShapeError,
)
from reference.tolerance import EPS as _EPS
from reference.tolerance import SAFETY as _SAFETY

__all__ = [
    "DENSE_MAX_BYTES",
    "PROB_ATOL",
    "Backend",
    "FiniteMDP",
    "FloatArray",
    "IntArray",
    "deterministic_policy",
    "from_arrays",
    "from_gymnasium",
    "from_outcomes",
    "from_toy_text_P",
    "greedy",
    "off_simplex_rows",
    "softmax_policy",
    "toy_text_tables",
    "uniform_policy",
    "validate_actions",
    "validate_flags",
    "validate_gamma",
    "validate_indices",
    "validate_int",
    "validate_k",
    "validate_policy",
    "validate_step_size",
    "validate_values",
    "validate_weights",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Backend = Literal["auto", "dense", "sparse"]

PROB_ATOL: float = 1e-9
"""Probabilities of one row must sum to 1 within this absolute tolerance (user data is often rounded
to ~1e-12; anything further off is a modelling error, not rounding). Rows are renormalised after
validation (each entry divided by the row's float sum), so that every derived quantity is computed from a
distribution up to rounding: a stored row's exact sum can still differ from 1 by a few ulps ([0.1, 0.9] sums to
1 + 2.8e-17), which the certificates account for (:func:`reference.bellman.certificate_factor`)."""

DENSE_MAX_BYTES: int = 256 * 2**20
"""``backend="auto"`` stores the transition matrix densely when it takes at most this many bytes."""


def _readonly(x: NDArray[Any]) -> NDArray[Any]:
    x.flags.writeable = False
    return x


def _real(value: object, name: str, error: type[ReferenceError_] = ReferenceError_) -> float:
    """``value`` as a float if it is a real number: a Python or NumPy int or float, or a 0-d integer / float
    array. A bool, a string (``float("0.9")`` would parse it) or anything else raises ``error`` naming it."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if isinstance(value, np.ndarray):
        ok = value.ndim == 0 and value.dtype.kind in "iuf"
    if not ok:
        raise error(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    return float(value)  # type: ignore[arg-type]


def validate_gamma(gamma: float) -> float:
    """Check the discount factor of MDP-18: ``gamma in (0, 1]``; return it as a float.

    Raises :class:`InvalidDiscountError` naming the value otherwise (NaN included), and for a value that is
    not a real number (``"0.9"`` and ``True`` used to pass as 0.9 and 1.0).
    """
    g = _real(gamma, "gamma", InvalidDiscountError)
    if not (0.0 < g <= 1.0):
        raise InvalidDiscountError(f"gamma must lie in (0, 1] (MDP-18), got {gamma!r}")
    return g


def validate_flag(value: object, name: str) -> bool:
    """Check a boolean switch (``gamma_t``, ...): a Python or NumPy bool; ``ReferenceError_`` otherwise (the
    string "no" was read as True). Spec: none (input validation shared by the package)."""
    if not isinstance(value, bool | np.bool_):
        raise ReferenceError_(f"{name} must be True or False, got {value!r}")
    return bool(value)


def validate_int(value: object, name: str, *, minimum: int = 0, error: type[ReferenceError_] = ReferenceError_,
                 hint: str = "") -> int:
    """Check an integer argument (a count such as ``num_iters``, ``n``, ``horizon``, ``iters``,
    ``max_backtracks``, or a step index k): a Python or NumPy integer (or a 0-d integer array) >= ``minimum``;
    return it as an int.

    A float (even 2.0), a bool, a string, inf or NaN raises ``error`` (a :class:`ReferenceError_`, i.e. a
    ValueError) naming the argument and the value: a count is never floored (``int(1.7)`` would silently
    run 1 step, ``range(1.7)`` raised a bare TypeError), and a negative count is never read as 0 steps.
    ``hint`` is appended to the requirement in the message.

    Spec: none (input validation shared by the package).
    """
    msg = f"{name} must be an integer >= {minimum}{hint}, got {value!r}"
    if isinstance(value, bool | np.bool_):
        raise error(msg)
    try:
        i = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise error(msg) from None
    if i < minimum:
        raise error(msg)
    return int(i)


def validate_k(k: int | None) -> int | None:
    """Check a step count k of the k-step estimators (PG-25, TR-20): an integer k >= 1, or None for infinity.

    A float (even 2.0), a bool, inf or NaN raises :class:`ReferenceError_` naming the value: k is never
    floored (k = 1.7 must not silently run as k = 1). Returns ``int(k)`` or None. (:func:`validate_int`.)
    """
    if k is None:
        return None
    return validate_int(k, "k", minimum=1, hint=" (or None for infinity)")


@dataclass(frozen=True, eq=False)
class FiniteMDP:
    """A finite MDP on S+ = S ∪ {term} with joint kernel p(r, s' | s, a) (MDP-01, MDP-04, MDP-11).

    Spec: MDP-01, MDP-02, MDP-04, MDP-05, MDP-06, MDP-11, MDP-17.

    Build one with :func:`from_arrays`, :func:`from_outcomes`, :func:`from_toy_text_P`,
    :func:`from_gymnasium` or the seeded generators in :mod:`reference.generators`: these builders
    validate everything (gamma, row sums, probabilities, finiteness) and add the absorbing rows of
    ``term``. Calling ``FiniteMDP(...)`` directly skips the validation; use a builder.

    Attributes:
        n_states: |S|, the number of non-terminal states; ``term == n_states``.
        n_actions: |A|.
        p0: shape [S]: the initial distribution over S+ (mass on ``term`` allowed: T = 0).
        gamma: discount factor in (0, 1].
        indptr: shape [S*A + 1]: CSR row pointers of the outcome table, row ``s * A + a``.
        next_state, reward, prob: shape [E]: the outcomes.
        backend: ``"dense"`` or ``"sparse"`` storage of the derived transition matrix.
    """

    n_states: int
    n_actions: int
    p0: FloatArray
    gamma: float
    indptr: IntArray
    next_state: IntArray
    reward: FloatArray
    prob: FloatArray
    backend: Literal["dense", "sparse"] = "dense"
    name: str = field(default="mdp")

    # ----------------------------------------------------------------------------------- basics
    @property
    def term(self) -> int:
        """Index of the absorbing terminal state (the last index)."""
        return self.n_states

    @property
    def n_states_plus(self) -> int:
        """|S+| = |S| + 1."""
        return self.n_states + 1

    @property
    def is_sparse(self) -> bool:
        return self.backend == "sparse"

    def __repr__(self) -> str:
        return (f"FiniteMDP(name={self.name!r}, S={self.n_states}, A={self.n_actions}, gamma={self.gamma}, "
                f"outcomes={self.prob.size}, backend={self.backend!r})")

    # ------------------------------------------------------------------------- derived arrays
    @functools.cached_property
    def transition_csr(self) -> sp.csr_array:
        """P as a CSR matrix of shape [S*A, S]: row ``s*A + a``, column ``s'`` (duplicates summed)."""
        n = self.n_states_plus
        # 32-bit indices when they fit: a quarter less memory traffic per product, same values.
        idx = np.int32 if max(n * self.n_actions, self.prob.size) < np.iinfo(np.int32).max else np.int64
        m = sp.csr_array((self.prob.copy(), self.next_state.astype(idx), self.indptr.astype(idx)),
                         shape=(n * self.n_actions, n))
        m.sum_duplicates()
        return m

    @functools.cached_property
    def transition_dense(self) -> FloatArray:
        """P as a dense C-contiguous array of shape [S*A, S] (row ``s*A + a``)."""
        n = self.n_states_plus
        out = np.zeros((n * self.n_actions, n))
        rows = np.repeat(np.arange(n * self.n_actions), np.diff(self.indptr))
        np.add.at(out, (rows, self.next_state), self.prob)
        return _readonly(out)

    @property
    def P(self) -> FloatArray:
        """Dense P[s, a, s'] of shape [S, A, S] (MDP-04). Builds a dense copy for sparse MDPs."""
        n = self.n_states_plus
        return self.transition_dense.reshape(n, self.n_actions, n)

    @functools.cached_property
    def max_outcomes(self) -> int:
        """The most outcomes of one (s, a) row of the outcome table (the length of the longest sum a lookahead
        forms; :func:`reference.bellman.residual_rounding_bound` counts its roundings)."""
        return int(np.max(np.diff(self.indptr), initial=1))

    @functools.cached_property
    def r(self) -> FloatArray:
        """Expected reward r(s, a) = sum_{r, s'} r p(r, s' | s, a), shape [S, A] (MDP-05)."""
        rows = np.repeat(np.arange(self.indptr.size - 1), np.diff(self.indptr))
        sums = np.bincount(rows, weights=self.prob * self.reward, minlength=self.indptr.size - 1)
        return _readonly(sums.reshape(self.n_states_plus, self.n_actions))

    @functools.cached_property
    def tie_scale(self) -> float:
        """The value scale the greedy tie window is relative to: R / (1 - gamma) (gamma < 1; the bound on
        |V|, BEL-04) or R (gamma = 1), with R = :attr:`max_abs_reward` (open choice 1)."""
        r = self.max_abs_reward
        return r / (1.0 - self.gamma) if self.gamma < 1.0 else r

    def greedy_scale(self, values: FloatArray) -> float:
        """One global magnitude for a greedy tie window: ``max(R, max |values|)`` (open choice 1). The solvers of
        this package use the per-state :meth:`greedy_scales` instead (since 2026-12-07); this global form is kept
        for callers that hold a bare Q.

        At most :attr:`tie_scale` when ``values`` is a value function (|V| <= R / (1 - gamma), MDP-19), so the
        window's loss bound of :attr:`tie_rtol` still holds; unlike that bound it does not grow without limit as
        gamma -> 1 when the values stay small. (Until 2026-12-06 the window was ``tie_rtol * R / (1 - gamma)``:
        at gamma = 1 - 1e-16 it was 32 R wide and V* of a one-step task came out 1 instead of 1.5.)
        """
        v = np.asarray(values, dtype=np.float64)
        return max(self.max_abs_reward, float(np.max(np.abs(v), initial=0.0)))

    @functools.cached_property
    def abs_r(self) -> FloatArray:
        """E[|r| | s, a] = sum_{r, s'} |r| p(r, s' | s, a), shape [S, A]: the magnitude of the terms of r(s, a)."""
        rows = np.repeat(np.arange(self.indptr.size - 1), np.diff(self.indptr))
        sums = np.bincount(rows, weights=self.prob * np.abs(self.reward), minlength=self.indptr.size - 1)
        return _readonly(sums.reshape(self.n_states_plus, self.n_actions))

    def greedy_scales(self, v: FloatArray) -> FloatArray:
        """Magnitude of each lookahead entry ``r + gamma P V`` at (s, a): E|r|(s, a) + gamma (P |V|)(s, a), shape
        [S+, A] from V [S+] (open choice 1). :func:`greedy` compares action a with the best action b at s within a
        window relative to the larger of the two entries' scales, so it covers the rounding of the two terms it
        compares and no more.

        Each entry is at most :meth:`greedy_scale` times (1 + gamma), hence the loss bound of :attr:`tie_rtol`
        holds as before. (Until 2026-12-07 the window was global, ``max(R, max |V|)``: with a reward of 1e10 at
        one state, an action better by 1e-6 at another counted as a tie there and V* came out 0 for 1e-6; later
        that day it was per state, max_a of these entries: an action worth -1e10 at s made actions worth 1 and
        1 + 1e-5 there a tie, and V* came out 1.)
        """
        va = np.abs(np.asarray(v, dtype=np.float64))
        return np.asarray(self.abs_r + self.gamma * self.expected_next(va), dtype=np.float64)

    @functools.cached_property
    def tie_rtol(self) -> float:
        """The relative width of the greedy tie window of every solver in this package (open choice 1):
        ``min(TIE_RTOL, SAFETY * |S+| * (1 + gamma) * eps / 2)``.

        Derived so that a policy greedy within the window loses at most window / (1 - gamma) =
        ``SAFETY |S+| (1 + gamma) eps R / (2 (1 - gamma)^2)`` of value (performance difference): half of
        :func:`reference.testing.oracles.value_tolerance`, the accuracy every exact value here is held to,
        the other half left for the rounding of the evaluations that compare it. A window of
        1e-12 * R / (1 - gamma) alone (the rule before 2026-12-05) let policy iteration stop at a policy up
        to 1e-12 R / (1 - gamma)^2 below V*, above that tolerance for |S+| < ~280. The window still covers
        the rounding of one lookahead r + gamma P V (at most |S+| terms per entry).
        """
        return min(TIE_RTOL, 0.5 * _SAFETY * self.n_states_plus * (1.0 + self.gamma) * _EPS)

    @functools.cached_property
    def max_abs_reward(self) -> float:
        """R = max |r| over the reward support of outcomes with positive probability (MDP-19)."""
        live = self.prob > 0
        return float(np.max(np.abs(self.reward[live]), initial=0.0))

    @functools.cached_property
    def reward_support_nonzero(self) -> NDArray[np.bool_]:
        """shape [S, A]: whether (s, a) has an outcome of positive probability with non-zero reward."""
        rows = np.repeat(np.arange(self.indptr.size - 1), np.diff(self.indptr))
        flag = np.zeros(self.indptr.size - 1, dtype=bool)
        hit = (self.prob > 0) & (self.reward != 0)
        flag[rows[hit]] = True
        return _readonly(flag.reshape(self.n_states_plus, self.n_actions))

    # ---------------------------------------------------------------------- linear maps
    def expected_next(self, v: FloatArray) -> FloatArray:
        """E[V(s') | s, a] = sum_{s'} P[s, a, s'] V(s') for V of shape [S] (or [S, K]); result [S, A(, K)]."""
        v = np.asarray(v, dtype=np.float64)
        m = self.transition_csr if self.is_sparse else self.transition_dense
        out = np.asarray(m @ v, dtype=np.float64)
        return out.reshape((self.n_states_plus, self.n_actions, *v.shape[1:]))

    def lookahead(self, v: FloatArray) -> FloatArray:
        """One-step lookahead E[r + gamma V(s') | s, a] = r(s, a) + gamma (P V)(s, a), shape [S, A].

        The quantity inside B^* (BEL-14) and the greedy step (BEL-16, BEL-25, BEL-33).
        """
        return self.r + self.gamma * self.expected_next(v)

    def policy_matrix(self, pi: FloatArray) -> sp.csr_array:
        """The sparse [S, S*A] matrix D_pi with D_pi[s, s*A + a] = pi(a | s), so that P_pi = D_pi P."""
        n, a = self.n_states_plus, self.n_actions
        rows = np.repeat(np.arange(n), a)
        cols = np.arange(n * a)
        return sp.csr_array((np.asarray(pi, dtype=np.float64).ravel(), (rows, cols)), shape=(n, n * a))

    def transition_pi(self, pi: FloatArray) -> FloatArray | sp.csr_array:
        """P_pi[s, s'] = sum_a pi(a | s) P[s, a, s'], shape [S, S]: dense array or CSR matrix."""
        if self.is_sparse:
            return self.policy_matrix(pi) @ self.transition_csr
        n = self.n_states_plus
        return np.einsum("sa,sat->st", pi, self.transition_dense.reshape(n, self.n_actions, n))

    def reward_pi(self, pi: FloatArray) -> FloatArray:
        """r_pi(s) = sum_a pi(a | s) r(s, a), shape [S]."""
        return np.asarray(np.einsum("sa,sa->s", pi, self.r), dtype=np.float64)

    # ---------------------------------------------------------------------- outcomes
    def outcomes(self, s: int, a: int) -> tuple[FloatArray, FloatArray, IntArray]:
        """The outcomes of (s, a): ``(prob, reward, next_state)``, each of shape [E_sa]."""
        row = s * self.n_actions + a
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        return self.prob[lo:hi], self.reward[lo:hi], self.next_state[lo:hi]

    def with_gamma(self, gamma: float) -> FiniteMDP:
        """The same MDP with another discount factor."""
        return FiniteMDP(self.n_states, self.n_actions, self.p0, validate_gamma(gamma), self.indptr,
                         self.next_state, self.reward, self.prob, self.backend, self.name)

    def with_backend(self, backend: Backend) -> FiniteMDP:
        """The same MDP with its transition matrix stored ``"dense"`` or ``"sparse"`` (or ``"auto"``: by size);
        every number it defines is unchanged (MDP-04)."""
        return FiniteMDP(self.n_states, self.n_actions, self.p0, self.gamma, self.indptr, self.next_state,
                         self.reward, self.prob, _choose_backend(backend, self.n_states_plus, self.n_actions),
                         self.name)

    def with_p0(self, p0: ArrayLike) -> FiniteMDP:
        """The same MDP with another initial distribution, [S] or [S+1] (mass on ``term`` allowed: T = 0),
        validated as by the builders (ShapeError, InvalidMDPError)."""
        return FiniteMDP(self.n_states, self.n_actions, _readonly(_validated_p0(p0, self.n_states)), self.gamma,
                         self.indptr, self.next_state, self.reward, self.prob, self.backend, self.name)


# =============================================================================== constructors
def _validated_p0(p0: ArrayLike, n_states: int) -> FloatArray:
    """p0 [S] or [S+1] as a probability vector over S+ ([S+1], renormalised): ShapeError, InvalidMDPError."""
    q0 = _real_array(p0, "p0")  # "1" and True were parsed
    if q0.ndim != 1:  # a [2, 2] p0 for |S| = 3 was flattened and accepted
        raise ShapeError(f"p0 must be a vector of |S| = {n_states} or |S|+1 entries, got shape {q0.shape}")
    if q0.size == n_states:
        q0 = np.append(q0, 0.0)
    if q0.size != n_states + 1:
        raise ShapeError(f"p0 must have |S| = {n_states} or |S|+1 entries, got {q0.size}")
    if not np.all(np.isfinite(q0)) or np.any(q0 < 0) or abs(q0.sum() - 1.0) > PROB_ATOL:
        raise InvalidMDPError(f"p0 must be a probability vector; min {float(q0.min())!r}, sum {float(q0.sum())!r}")
    return np.asarray(q0 / q0.sum(), dtype=np.float64)


def _choose_backend(backend: Backend, n_plus: int, n_actions: int) -> Literal["dense", "sparse"]:
    if backend == "auto":
        return "dense" if n_plus * n_plus * n_actions * 8 <= DENSE_MAX_BYTES else "sparse"
    if backend not in ("dense", "sparse"):
        raise ValueError(f"backend must be 'auto', 'dense' or 'sparse', got {backend!r}")
    return backend


def from_outcomes(
    n_states: int,
    n_actions: int,
    indptr: ArrayLike,
    next_state: ArrayLike,
    reward: ArrayLike,
    prob: ArrayLike,
    p0: ArrayLike,
    *,
    gamma: float,
    backend: Backend = "auto",
    name: str = "mdp",
) -> FiniteMDP:
    """Build a FiniteMDP from the outcome table of the non-terminal rows (MDP-04).

    Spec: MDP-04, MDP-11.

    Args:
        n_states, n_actions: |S| >= 1 and |A| >= 1.
        indptr: shape [|S| |A| + 1], CSR pointers; row ``s * A + a`` owns outcomes
            ``indptr[row]:indptr[row + 1]`` (every row needs at least one outcome).
        next_state: shape [E], values in 0..|S| (|S| = term).
        reward, prob: shape [E].
        p0: shape [|S|] or [|S| + 1], the initial distribution.
        gamma: discount in (0, 1].

    The rows of ``term`` (reward 0, back to term w.p. 1, MDP-11) are appended. Probabilities of each
    row must be >= 0 and sum to 1 within :data:`PROB_ATOL`; they are then renormalised (to 1 up to a few ulps:
    see :data:`PROB_ATOL`).
    Raises :class:`InvalidMDPError` / :class:`ShapeError` / :class:`InvalidDiscountError` naming the
    offending (s, a) and value.
    """
    gamma = validate_gamma(gamma)
    n_states = validate_int(n_states, "n_states", minimum=1, error=ShapeError, hint=" (|S|, MDP-01)")
    n_actions = validate_int(n_actions, "n_actions", minimum=1, error=ShapeError, hint=" (|A|, MDP-01)")
    ip = validate_indices(indptr, None, name="indptr", what="pointer", error=ShapeError).ravel()  # 1.5 refused
    ns = np.asarray(next_state).ravel()  # validated below, where the (s, a) of each outcome is known
    rw = _real_array(reward, "reward").ravel()  # strings and booleans were parsed; complex raised a TypeError
    pr = _real_array(prob, "prob").ravel()
    n_rows = n_states * n_actions
    if ip.size != n_rows + 1:
        raise ShapeError(f"indptr must have |S||A|+1 = {n_rows + 1} entries, got {ip.size}")
    if ip[0] != 0 or np.any(np.diff(ip) < 0) or ip[-1] != ns.size:
        raise ShapeError("indptr must start at 0, be non-decreasing and end at the number of outcomes")
    if not (ns.size == rw.size == pr.size):
        raise ShapeError(f"next_state, reward, prob must have equal length, got {ns.size}, {rw.size}, {pr.size}")
    empty = np.flatnonzero(np.diff(ip) == 0)
    if empty.size:
        s, a = divmod(int(empty[0]), n_actions)
        raise InvalidMDPError(f"(s={s}, a={a}) has no outcome: p(., . | s, a) must be a distribution")
    rows = np.repeat(np.arange(n_rows), np.diff(ip))

    def outcome(e: int) -> str:
        s, a = divmod(int(rows[e]), n_actions)
        return f"next_state[{e}] of (s={s}, a={a})"

    # in 0..n_states (term = n_states); a float 0.9 is refused, never truncated to 0; 2.0 is read as 2
    ns = validate_indices(ns, n_states + 1, name="next_state", what="next state", error=InvalidMDPError,
                          where=outcome)
    bad = ~np.isfinite(pr) | (pr < 0)
    if np.any(bad):
        e = int(np.flatnonzero(bad)[0])
        s, a = divmod(int(rows[e]), n_actions)
        raise InvalidMDPError(f"(s={s}, a={a}) has a negative or non-finite probability {float(pr[e])!r}")
    if not np.all(np.isfinite(rw)):
        e = int(np.flatnonzero(~np.isfinite(rw))[0])
        s, a = divmod(int(rows[e]), n_actions)
        raise InvalidMDPError(f"(s={s}, a={a}) has a non-finite reward {float(rw[e])!r}")
    sums = np.bincount(rows, weights=pr, minlength=n_rows)
    off = np.abs(sums - 1.0) > PROB_ATOL
    if np.any(off):
        row = int(np.flatnonzero(off)[0])
        s, a = divmod(row, n_actions)
        raise InvalidMDPError(
            f"p(., . | s={s}, a={a}) sums to {float(sums[row]):.12g}, not 1 (tolerance {PROB_ATOL}); "
            f"{int(off.sum())} row(s) are off")
    pr = pr / sums[rows]
    q0 = _validated_p0(p0, n_states)
    # append term rows: A outcomes (r=0, term, 1)
    term = n_states
    ip_full = np.concatenate([ip, ip[-1] + np.arange(1, n_actions + 1, dtype=np.int64)])
    ns_full = np.concatenate([ns, np.full(n_actions, term, dtype=np.int64)])
    rw_full = np.concatenate([rw, np.zeros(n_actions)])
    pr_full = np.concatenate([pr, np.ones(n_actions)])
    return FiniteMDP(
        n_states=n_states,
        n_actions=n_actions,
        p0=_readonly(q0),
        gamma=gamma,
        indptr=_readonly(ip_full),
        next_state=_readonly(ns_full),
        reward=_readonly(rw_full),
        prob=_readonly(pr_full),
        backend=_choose_backend(backend, n_states + 1, n_actions),
        name=name,
    )


def from_arrays(
    P: ArrayLike,
    R: ArrayLike,
    p0: ArrayLike | None = None,
    *,
    gamma: float,
    backend: Backend = "auto",
    name: str = "mdp",
) -> FiniteMDP:
    """Build a FiniteMDP from dense arrays (MDP-04, MDP-05).

    Spec: MDP-04, MDP-05.

    Args:
        P: shape [|S|, A, |S|+1]: P[s, a, s'] with the last column the probability of moving to term.
            (Shape [|S|+1, A, |S|+1] is accepted too; the term rows must then already be absorbing.)
        R: shape [|S|, A] (deterministic r(s, a)) or [|S|, A, |S|+1] (reward depending on s': the
            joint kernel puts reward R[s, a, s'] on outcome s').
        p0: shape [|S|] or [|S|+1]; default: uniform over S.
        gamma: discount in (0, 1].
    """
    Pa = _real_array(P, "P")
    if Pa.ndim != 3 or Pa.shape[2] < 2:
        raise ShapeError(f"P must have shape (|S|, A, |S|+1), got {Pa.shape}")
    n_states = Pa.shape[2] - 1
    if Pa.shape[0] == n_states + 1:
        term_rows = Pa[n_states]
        absorbing = np.zeros_like(term_rows)
        absorbing[:, n_states] = 1.0
        # the whole row must be e_term (only its last entry was checked: [0.7, 1.0], NaN or -0.5 elsewhere passed)
        if not (np.all(np.isfinite(term_rows)) and np.all(np.abs(term_rows - absorbing) <= PROB_ATOL)):
            raise InvalidMDPError("P[term, a, :] must put probability 1 on term and 0 elsewhere for every a "
                                  f"(MDP-11), got {term_rows.tolist()!r}")
        Pa = Pa[:n_states]
    if Pa.shape[0] != n_states:
        raise ShapeError(f"P must have shape (|S|, A, |S|+1), got {Pa.shape}")
    n_actions = Pa.shape[1]
    Ra = _real_array(R, "R")
    if Ra.shape == (n_states + 1, n_actions) or Ra.shape == (n_states + 1, n_actions, n_states + 1):
        if np.any(Ra[n_states] != 0):
            raise InvalidMDPError("R[term] must be 0 (MDP-11)")
        Ra = Ra[:n_states]
    if Ra.shape == (n_states, n_actions):
        Ra = np.broadcast_to(Ra[:, :, None], Pa.shape)
    if Ra.shape != Pa.shape:
        raise ShapeError(f"R must have shape {(n_states, n_actions)} or {Pa.shape}, got {Ra.shape}")
    # Every entry with P != 0 becomes an outcome; negative entries are kept so that validation names them.
    mask = Pa != 0
    flat = mask.reshape(n_states * n_actions, n_states + 1)
    counts = flat.sum(axis=1)
    # rows with no non-zero entry: keep one zero-probability outcome so the sum check reports them
    zero_rows = counts == 0
    if np.any(zero_rows):
        row = int(np.flatnonzero(zero_rows)[0])
        s, a = divmod(row, n_actions)
        raise InvalidMDPError(f"p(., . | s={s}, a={a}) sums to 0.0, not 1")
    indptr = np.concatenate([[0], np.cumsum(counts)])
    idx = np.nonzero(flat)
    next_state = idx[1]
    prob = Pa.reshape(n_states * n_actions, -1)[idx]
    reward = np.asarray(Ra).reshape(n_states * n_actions, -1)[idx]
    if p0 is None:
        p0 = np.full(n_states, 1.0 / n_states)
    return from_outcomes(n_states, n_actions, indptr, next_state, reward, prob, p0, gamma=gamma,
                         backend=backend, name=name)


def from_toy_text_P(
    P: Mapping[int, Mapping[int, Sequence[tuple[float, int, float, bool]]]],
    p0: ArrayLike,
    *,
    gamma: float,
    name: str = "toy-text",
    backend: Backend = "auto",
) -> FiniteMDP:
    """Build a FiniteMDP from a gymnasium toy-text transition dict ``P[s][a] = [(prob, s', r, done), ...]``.

    Spec: MDP-02, MDP-11.

    Mapping onto the absorbing-terminal convention: a transition with ``done=True`` goes to ``term``
    (keeping its reward), whatever ``s'`` gymnasium records. A gymnasium state that the agent can only
    ever *enter* through ``done=True`` transitions and that has no initial mass (FrozenLake's holes and
    goal, CliffWalking's goal) is never occupied in an episode; its row is made absorbing into ``term``
    with reward 0, so its value is 0, as the episode has ended. States that do not qualify keep gymnasium's
    rows (and their values, as gymnasium's table gives them): Taxi's "passenger delivered" states, which
    gymnasium links to each other by ``done=False`` moves, and states no transition enters at all
    (CliffWalking's cliff cells, where stepping into the cliff returns to the start); no episode from p0
    reaches them, so J and every value at a reachable state are unaffected. State indices are gymnasium's;
    ``term`` is the extra last index.
    """
    n_states = len(P)
    n_actions = len(P[0])
    q0 = np.asarray(p0, dtype=np.float64).ravel()
    live: list[int] = []  # s' of the transitions that enter a state without ending the episode
    live_sa: list[tuple[int, int]] = []
    ending: list[int] = []  # s' recorded by the transitions that end the episode
    for s in range(n_states):
        for a in range(n_actions):
            for pr, s2, _r, done in P[s][a]:
                if pr > 0 and not done:
                    live.append(s2)
                    live_sa.append((s, a))
                elif pr > 0 and 0 <= int(s2) < n_states:
                    ending.append(int(s2))
    entered_live = np.zeros(n_states, dtype=bool)
    entered_live[validate_indices(np.array(live, dtype=None if live else np.int64), n_states, name="s'",
                                  what="state", error=InvalidMDPError,
                                  where=lambda i: f"s' of P[{live_sa[i][0]}][{live_sa[i][1]}]")] = True
    entered_ending = np.zeros(n_states, dtype=bool)
    entered_ending[np.array(ending, dtype=np.int64)] = True
    # entered by episode-ending transitions only (a hole, a goal), never by one that goes on, and no initial mass;
    # a state no transition enters at all (CliffWalking's cliff cells) keeps gymnasium's rows, as Taxi's
    # unreachable states do (until 2026-12-07 it was made absorbing too: V* 0 there for gymnasium's -9.19)
    dead = entered_ending & ~entered_live & (q0[:n_states] == 0)
    indptr = [0]
    next_state: list[int] = []
    reward: list[float] = []
    prob: list[float] = []
    for s in range(n_states):
        if len(P[s]) != n_actions:
            raise ShapeError(f"state {s} has {len(P[s])} actions, state 0 has {n_actions}")
        for a in range(n_actions):
            if dead[s]:
                next_state.append(n_states)
                reward.append(0.0)
                prob.append(1.0)
            else:
                for pr, s2, r, done in P[s][a]:
                    next_state.append(n_states if done else s2)  # checked by from_outcomes (0.9 refused)
                    reward.append(float(r))
                    prob.append(float(pr))
            indptr.append(len(prob))
    return from_outcomes(n_states, n_actions, indptr, next_state, reward, prob, q0, gamma=gamma,
                         backend=backend, name=name)


def from_gymnasium(env_id: str, *, gamma: float, **make_kwargs: Any) -> FiniteMDP:
    """Build the FiniteMDP of a gymnasium toy-text environment (FrozenLake, Taxi, CliffWalking).

    Spec: MDP-04. Requires the optional dependency ``gymnasium``; reads ``env.unwrapped.P`` and
    ``env.unwrapped.initial_state_distrib`` (see :func:`from_toy_text_P` for the terminal mapping). The MDP is
    the environment's dynamics without its registered time limit (a truncation is not part of an MDP: FrozenLake
    at gamma = 1 solves to success probability 0.82, which ``gym.make``'s 100-step limit cuts to about 0.74).
    Options whose dynamics ``P`` does not describe are refused (ValueError): Taxi's ``fickle_passenger=True``
    changes the destination inside ``step`` after sampling from ``P``, depending on a hidden per-episode flag (the
    MDP returned until 2026-12-07 was the plain Taxi's: J = -1.26 where the environment gives -0.82).
    """
    if make_kwargs.get("fickle_passenger"):
        raise ValueError(f"{env_id}: fickle_passenger=True is not described by the environment's P (the "
                         f"destination changes inside step, on a hidden per-episode flag): no FiniteMDP of it")
    P, p0 = toy_text_tables(env_id, **make_kwargs)
    return from_toy_text_P(P, p0, gamma=gamma, name=env_id)


def toy_text_tables(env_id: str, **make_kwargs: Any) -> tuple[Any, FloatArray]:
    """gymnasium's own tables of a toy-text environment: ``env.unwrapped.P`` (``P[s][a]`` = list of
    (prob, next_state, reward, done)) and ``initial_state_distrib`` as float64 [n]; the environment is closed.

    Spec: support for MDP-04 (the raw tables :func:`from_gymnasium` builds from and the report's independent
    value iteration reads). Requires gymnasium.
    """
    try:
        import gymnasium
    except ImportError as exc:  # pragma: no cover - exercised only without gymnasium
        raise ImportError(f"{env_id}: the toy-text tables need gymnasium: pip install 'rl-groundtruth[toytext]'") \
            from exc

    env = gymnasium.make(env_id, **make_kwargs)
    try:
        u: Any = env.unwrapped
        return u.P, np.asarray(u.initial_state_distrib, dtype=np.float64)
    finally:
        env.close()


# ================================================================================== policies
def _real_array(x: ArrayLike, name: str) -> FloatArray:
    """``x`` as a float64 array if its entries are real numbers (integer or floating dtype); strings (which
    ``np.asarray(..., float64)`` would parse), complex numbers (whose imaginary part it would drop with a
    warning), booleans and objects raise :class:`ReferenceError_` naming ``name``."""
    a = np.asarray(x)
    if a.dtype.kind not in "iuf":
        raise ReferenceError_(f"{name} must hold real numbers, got an array of dtype {a.dtype}")
    return np.asarray(a, dtype=np.float64)


def validate_weights(w: ArrayLike, name: str) -> FloatArray:
    """Non-negative weights (a state distribution or any measure, e.g. rho or mu of a loss): real, finite and
    >= 0, returned as float64; else :class:`ReferenceError_` naming ``name`` and the first bad entry (a negative
    weight made a squared loss negative, a NaN gave NaN). Shapes are the caller's to check.

    Spec: none (input validation shared by the package).
    """
    a = _real_array(w, name)
    bad = ~np.isfinite(a) | (a < 0)
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ReferenceError_(f"{name} must be finite and >= 0; {name}[{', '.join(map(str, i))}] = {float(a[i])!r}")
    return a


def validate_step_size(value: object, name: str) -> float:
    """A step size (learning rate): a finite real number > 0, returned as a float; ``ReferenceError_`` naming
    ``name`` otherwise (a negative step ascends the loss, NaN or inf fills the iterates with NaN).

    Spec: none (input validation shared by the package).
    """
    x = _real(value, name)
    if not (math.isfinite(x) and x > 0.0):
        raise ReferenceError_(f"{name} must be a finite number > 0 (a step size), got {value!r}")
    return x


def off_simplex_rows(p: FloatArray) -> NDArray[np.bool_]:
    """Rows of ``p`` [N, A] that are not distributions: a non-finite or negative entry, or a sum more than
    :data:`PROB_ATOL` from 1 (the one test of "a row of probabilities" used by every validator here). Spec: MDP-07."""
    return np.asarray(~np.all(np.isfinite(p), axis=1) | np.any(p < 0, axis=1)
                      | ~(np.abs(p.sum(axis=1) - 1.0) <= PROB_ATOL), dtype=np.bool_)


def validate_policy(mdp: FiniteMDP, pi: ArrayLike) -> FloatArray:
    """Check that ``pi`` of shape [S, A] has every row of S on the simplex; return it as float64.

    Spec: MDP-07. The row of ``term`` is irrelevant (MDP-11) and is replaced by the uniform row.
    Raises :class:`InvalidPolicyError` naming the first bad state and its row sum / minimum.
    """
    p = _real_array(pi, "policy").copy()
    shape = (mdp.n_states_plus, mdp.n_actions)
    if p.shape == (mdp.n_states, mdp.n_actions):
        p = np.vstack([p, np.full((1, mdp.n_actions), 1.0 / mdp.n_actions)])
    if p.shape != shape:
        raise ShapeError(f"policy must have shape {shape} (S+, A) or {(mdp.n_states, mdp.n_actions)}, "
                         f"got {p.shape}")
    body = p[: mdp.n_states]
    bad = off_simplex_rows(body)
    if np.any(bad):
        s = int(np.flatnonzero(bad)[0])
        raise InvalidPolicyError(
            f"pi(. | s={s}) is not on the simplex: row {body[s].tolist()} (sum {float(body[s].sum()):.12g})")
    p[: mdp.n_states] /= body.sum(axis=1, keepdims=True)
    p[mdp.term] = 1.0 / mdp.n_actions
    return p


def _position(name: str, shape: tuple[int, ...], flat_index: int) -> str:
    """``name`` for a scalar, ``name[i]`` or ``name[i, j, ...]`` for the entry at ``flat_index``."""
    if not shape:
        return name
    return f"{name}[{', '.join(str(int(i)) for i in np.unravel_index(flat_index, shape))}]"


def validate_indices(indices: ArrayLike, size: int | None, *, name: str, what: str = "index",
                     error: type[ReferenceError_] = ReferenceError_,
                     where: Callable[[int], str] | None = None) -> IntArray:
    """Check integer indices into an axis of length ``size`` (actions, states): an integer dtype, or floats
    with integral values (2.0 is 2), each in 0..size-1; return them as int64, same shape (a scalar gives a
    0-d array). ``size=None``: no upper bound (labels such as group ids, pointers, or actions whose count the
    caller does not know), only >= 0.

    Raises ``error`` naming the argument, the position and the value: a float index such as 0.9 is refused,
    never truncated to 0 (``astype(int)`` would); a negative index is refused, never wrapped to the last
    entry; bool and non-numeric dtypes are refused. ``what`` names the kind of index in the messages,
    ``where`` (optional) the entry at a flat position (default ``name[i, j]``; e.g. the (s, a) it belongs to).

    Spec: none (input validation shared by the package).
    """
    a = np.asarray(indices)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise error(f"{name} must be integer {what} indices, got dtype {a.dtype}")
    flat = a.ravel()

    def at(i: int) -> str:
        return _position(name, a.shape, i) if where is None else where(i)

    if np.issubdtype(a.dtype, np.floating):
        bad_f = ~np.isfinite(flat) | (flat != np.floor(flat))
        if np.any(bad_f):
            i = int(np.flatnonzero(bad_f)[0])
            raise error(f"{at(i)} = {flat[i].item()!r} is not an integer {what} index")
    hi = 2.0**63 if size is None else size
    bad = (flat < 0) | (flat >= hi)  # on the given values: a huge float must not wrap in the int64 cast
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        allowed = "outside 0..2**63-1 (must be >= 0)" if size is None else f"outside 0..{size - 1}"
        raise error(f"{what} {flat[i].item()!r} at {at(i)} {allowed}")
    return np.asarray(a.astype(np.int64), dtype=np.int64)


def validate_actions(actions: ArrayLike, n_actions: int, *, name: str = "actions") -> IntArray:
    """Check a deterministic policy given as action indices: integers (an integer dtype, or floats with
    integral values) in 0..n_actions-1; return them as int64, flattened. Shapes: [S] -> [S].

    Raises :class:`InvalidPolicyError` naming the first bad state (:func:`validate_indices`): a float action
    such as 0.9 is refused, never truncated to 0; a negative index is refused, never wrapped to the last action.

    Spec: none (input validation shared by the package).
    """
    return validate_indices(actions, n_actions, name=name, what="action", error=InvalidPolicyError).ravel()


def validate_flags(name: str, x: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """Check a flag or mask array of the given shape (``terminated``, ``truncated``, a ``valid`` mask, allowed
    actions): boolean, or numbers that are exactly 0 or 1; return it as bool.

    A mask entry of 0.5 (or NaN) raises :class:`ReferenceError_` naming the array: it is never read as True,
    as ``astype(bool)`` would. A wrong shape raises :class:`ShapeError`.

    Spec: none (input validation shared by the package).
    """
    a = np.asarray(x)
    if a.shape != shape:
        raise ShapeError(f"{name} must have shape {list(shape)}, got {list(a.shape)}")
    if a.dtype != np.bool_:
        if not np.all((a == 0) | (a == 1)):
            raise ReferenceError_(f"{name} must be boolean (0/1), got values {np.unique(a)[:5]!r}")
        a = a.astype(bool)
    return np.asarray(a, dtype=np.bool_)


def deterministic_policy(actions: ArrayLike, n_actions: int) -> FloatArray:
    """One-hot policy pi(a | s) = 1[a = actions[s]] of shape [len(actions), A] (MDP-07). ``actions`` as
    :func:`validate_actions`."""
    act = validate_actions(actions, n_actions)
    out = np.zeros((act.size, n_actions))
    out[np.arange(act.size), act] = 1.0
    return out


def uniform_policy(mdp: FiniteMDP) -> FloatArray:
    """pi(a | s) = 1/|A| for all s, shape [S, A].

    Spec: MDP-07.
    """
    return np.full((mdp.n_states_plus, mdp.n_actions), 1.0 / mdp.n_actions)


def softmax_policy(logits: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """Tabular softmax policy pi(a | s) = exp(theta[s, a] / T) / sum_b exp(theta[s, b] / T), shape [S, A].

    Computed with the max subtracted (no overflow for any finite logits).

    Spec: MDP-07.
    """
    th = np.asarray(logits, dtype=np.float64)
    if th.ndim != 2:
        raise ShapeError(f"logits must have shape (S, A), got {th.shape}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    z = th / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


TIE_RTOL: float = 1e-12
"""Default tie-break window of :func:`greedy` (inventory open choice 1): actions within
``TIE_RTOL * max(scale, |max_a q|)`` of the maximum count as maximisers (``scale`` = 1 for a bare ``q``).
The solvers of this package pass ``scale=mdp.greedy_scales(V), tie_rtol=mdp.tie_rtol`` for a lookahead of V,
a per-entry window derived from the MDP (:attr:`FiniteMDP.tie_rtol`, never wider than this)."""


def greedy(q: ArrayLike, *, current: ArrayLike | None = None, tie_rtol: float = TIE_RTOL,
           scale: float | ArrayLike = 1.0, slack: ArrayLike | None = None) -> IntArray:
    """Greedy actions argmax_a q[s, a] with a documented deterministic tie-break (BEL-16, BEL-26, BEL-33).

    Spec: BEL-16. Shapes: q [S, A] -> [S] int; ``scale`` a number, [S] or [S, A].

    Tie-break (inventory open choice 1): action a at s counts as a maximiser when q(s, a) is within
    ``tie_rtol * max(scale(s, a), scale(s, b), |max_a q(s, .)|)`` of the maximum q(s, b) (b the first exact
    maximiser), and the lowest such index is taken. ``scale`` is the magnitude of the terms of q - per entry,
    :meth:`FiniteMDP.greedy_scales` [S, A] when q is a lookahead of an MDP, so the window covers the rounding of
    the two entries compared and a huge entry of a third action does not widen it; a number or [S] is the same
    scale for every action; the default 1 is an absolute floor of 1e-12, too coarse for rewards of order 1e-12 and
    below. If ``current`` (shape [S]) is given and ``current[s]`` is
    among the maximisers, keep it (policy iteration: this ends PI with pi_{k+1} = pi_k and never cycles
    among equal-value policies). ``slack`` [S, A] (>= 0) is added to the window of the pair (a, b): a bound on
    the error of the computed q(s, a) - q(s, b) beyond the rounding of the lookahead itself, with b =
    ``argmax(q[s])`` the first exact maximiser (policy iteration passes gamma |P(s, a) - P(s, b)| e, e a
    componentwise bound on the error of the evaluated V: :func:`reference.dp.evaluation_slack`).
    """
    qa = _real_array(q, "q")
    if qa.ndim != 2:
        raise ShapeError(f"q must have shape (S, A), got {qa.shape}")
    if not np.all(np.isfinite(qa)):  # a NaN row silently got action 0
        raise ReferenceError_(f"q has a non-finite entry at index {np.argwhere(~np.isfinite(qa))[0].tolist()}")
    sc = _real_array(scale, "scale")
    if sc.ndim > 2 or (sc.ndim == 1 and sc.shape != (qa.shape[0],)) or (sc.ndim == 2 and sc.shape != qa.shape):
        raise ShapeError(f"scale must be a number or have shape ({qa.shape[0]},) or {qa.shape}, got {sc.shape}")
    if not np.all(np.isfinite(sc) & (sc >= 0.0)):
        raise ReferenceError_(f"scale must be finite and >= 0, got {scale!r}")
    rt = _real(tie_rtol, "tie_rtol")
    if not (0.0 <= rt < 1.0):
        raise ReferenceError_(f"tie_rtol must lie in [0, 1), got {tie_rtol!r}")
    m = qa.max(axis=1, keepdims=True)
    sc2 = np.broadcast_to(sc.reshape(-1, 1) if sc.ndim == 1 else sc, qa.shape)
    best = np.argmax(qa, axis=1)  # the first exact maximiser: each action is compared with it
    pair = np.maximum(sc2, sc2[np.arange(qa.shape[0]), best][:, None])
    window = rt * np.maximum(np.maximum(pair, np.finfo(np.float64).tiny), np.abs(m))
    if slack is not None:
        sl = _real_array(slack, "slack")
        if sl.shape != qa.shape or not np.all(np.isfinite(sl) & (sl >= 0.0)):
            raise ReferenceError_(f"slack must be finite, >= 0 and of shape {qa.shape}, got shape {sl.shape}")
        window = window + sl
    is_max = qa >= m - window
    act = np.argmax(is_max, axis=1).astype(np.int64)
    if current is not None:
        cur = validate_actions(current, qa.shape[1], name="current")
        if cur.shape != (qa.shape[0],):
            raise ShapeError(f"current must have shape ({qa.shape[0]},), got {np.shape(current)}")
        keep = is_max[np.arange(qa.shape[0]), cur]
        act = np.where(keep, cur, act)
    return np.asarray(act, dtype=np.int64)


def validate_values(mdp: FiniteMDP, v: ArrayLike, *, what: str = "V") -> FloatArray:
    """Check a value function, finite; return float64. Shape [S] (over S+) for a V (any ``what`` but "Q" and
    "U0"), [S, A] for ``what="Q"``, either for ``what="U0"`` (anchored VI runs on V or Q). A Q handed to a
    V-function used to pass when it had the other accepted shape (e.g. ``bellman_residual(mdp, Q)``), and
    gave a plausible wrong number.

    Spec: none (input validation shared by the package).
    """
    a = _real_array(v, what)
    n, k = mdp.n_states_plus, mdp.n_actions
    shapes = {"Q": ((n, k),), "U0": ((n,), (n, k))}.get(what, ((n,),))
    if a.shape not in shapes:
        raise ShapeError(f"{what} must have shape {' or '.join(str(sh) for sh in shapes)}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0].tolist()
        raise ReferenceError_(f"{what} has a non-finite entry at index {bad}")
    return a
