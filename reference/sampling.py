"""Trajectories from (p0, pi, p): seeded sampling and the exact trajectory-distribution oracle.

Spec: MDP-01, MDP-02, MDP-04, MDP-11, PG-03.

Conventions (once for the module):

* A batch of N trajectories is stored padded to a horizon H, time-major per trajectory:
  ``states[i, t] = s_t`` for t = 0..H, ``actions[i, t] = a_t`` and ``rewards[i, t] = r_t`` for
  t = 0..H-1 (acting in s_t yields r_t, the text's convention).
* ``lengths[i] = T`` is the number of steps before ``term``: s_T = term (MDP-02). After termination
  the absorbing convention holds (MDP-11): ``states = term``, ``rewards = 0``, ``actions = 0`` (the
  dummy action of PG-04; it is never used: ``valid[i, t] = t < T``).
* **Termination and truncation are different**: ``terminated[i]`` means s_T = term was reached within
  H steps; ``truncated[i]`` means the horizon H was hit first (then ``lengths[i] = H`` and
  ``states[i, H]`` is a real non-terminal state whose value a bootstrap must use).
* ``weights[i]`` is the probability of trajectory i under the exact oracle (they sum to 1) and
  ``1 / N`` for samples, so ``sum_i weights[i] f(tau_i)`` is the exact mean or the sample mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference.errors import InvalidMDPError, ReferenceError_, ShapeError
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    IntArray,
    validate_gamma,
    validate_indices,
    validate_int,
    validate_policy,
)

__all__ = [
    "Moments",
    "Trajectories",
    "discounted_returns",
    "enumerate_trajectories",
    "exact_moments",
    "inverse_cdf",
    "sample_trajectories",
    "validate_state_table",
]

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Trajectories:
    """A padded batch of trajectories (see the module docstring for the conventions).

    Attributes (N trajectories, horizon H):
        states: int [N, H+1]; actions: int [N, H]; rewards: float [N, H];
        lengths: int [N] (T, or H if truncated); terminated, truncated: bool [N];
        weights: float [N] (exact probabilities, or 1/N for samples);
        term: the index of the MDP's terminal state (|S+| = term + 1), recorded by
        :func:`sample_trajectories` and :func:`enumerate_trajectories`; None for a hand-built batch.
        Arrays over states read along a batch are checked against it (:func:`validate_state_table`).
    """

    states: IntArray
    actions: IntArray
    rewards: FloatArray
    lengths: IntArray
    terminated: BoolArray
    truncated: BoolArray
    weights: FloatArray
    term: int | None = None

    def __post_init__(self) -> None:
        """Padding after T carries reward 0 (the module's convention, MDP-11): the returns of PG-08's estimators
        sum every column, so a hand-built batch with a non-zero (or NaN) padded reward gave wrong gradients (a
        padded 5 after T = 1 turned [-0.5, 0.5] into [-3, 3]). ``ShapeError`` for inconsistent shapes or lengths
        outside 0..H, ``ReferenceError_`` for a non-zero padded reward or a non-finite reward before T."""
        r = np.asarray(self.rewards)
        lengths = np.asarray(self.lengths)
        if r.ndim != 2 or lengths.shape != r.shape[:1]:
            raise ShapeError(f"Trajectories: rewards must be [N, H] and lengths [N], got {list(r.shape)} and "
                             f"{list(lengths.shape)}")
        if lengths.size and (int(lengths.min()) < 0 or int(lengths.max()) > r.shape[1]):
            raise ShapeError(f"Trajectories: lengths must lie in 0..H = {r.shape[1]}")
        valid = np.arange(r.shape[1])[None, :] < lengths[:, None]
        bad = np.argwhere(~valid & (r != 0.0))
        if bad.size:
            i, t = (int(x) for x in bad[0])
            raise ReferenceError_(f"Trajectories: reward[{i}, {t}] = {r[i, t]!r} after the end T = {int(lengths[i])}: "
                                  f"padding must be 0 (MDP-11)")
        bad = np.argwhere(valid & ~np.isfinite(r))
        if bad.size:
            i, t = (int(x) for x in bad[0])
            raise ReferenceError_(f"Trajectories: reward[{i}, {t}] = {r[i, t]!r} is not finite")
        flags = {"terminated": np.asarray(self.terminated), "truncated": np.asarray(self.truncated),
                 "weights": np.asarray(self.weights)}
        for name, arr in flags.items():  # a scalar terminated or a length-3 truncated for N = 1 passed
            if arr.shape != lengths.shape:
                raise ShapeError(f"Trajectories: {name} must have shape [N] = {list(lengths.shape)}, got "
                                 f"{list(arr.shape)}")
        ended = flags["terminated"].astype(bool)
        both = ended & flags["truncated"].astype(bool)
        if both.any():
            raise ReferenceError_(f"Trajectories: trajectory {int(np.flatnonzero(both)[0])} is both terminated and "
                                  f"truncated (a trajectory that reached term is not cut by the horizon)")
        st, ac = np.asarray(self.states), np.asarray(self.actions)
        if st.shape != (r.shape[0], r.shape[1] + 1) or ac.shape != r.shape:  # [N, H] states gave an IndexError
            raise ShapeError(f"Trajectories: states must be [N, H+1] = {[r.shape[0], r.shape[1] + 1]} and actions "
                             f"[N, H] = {list(r.shape)}, got {list(st.shape)} and {list(ac.shape)}")
        # a -1 read V[-1] (term) or Q[s, A - 1]
        if (st.size and int(st.min()) < 0) or (ac.size and int(ac.min()) < 0):
            raise ReferenceError_("Trajectories: state and action indices must be >= 0 (a -1 reads the last "
                                  "entry of a table)")
        if self.term is not None and st.size and int(st.max()) > self.term:
            raise ReferenceError_(f"Trajectories: state {int(st.max())} beyond term = {self.term}")
        if self.term is not None and ended.any():
            s_t = st[np.flatnonzero(ended), lengths[ended]]
            if np.any(s_t != self.term):  # terminated with a real s_T: mc_returns and v_targets disagreed
                raise ReferenceError_(f"Trajectories: a terminated trajectory must end in term = {self.term}, "
                                      f"got s_T = {int(s_t[s_t != self.term][0])}")
        if self.term is not None and lengths.size:
            # the flags must say what the states say (review 2026-12-07: with neither flag set mc_returns took a
            # cut trajectory for a whole episode while v_targets bootstrapped it; truncated at s_T = term made
            # mc_returns claim term was not reached; a term before T summed rewards after the end)
            at_term = st[np.arange(lengths.size), lengths] == self.term
            trunc = flags["truncated"].astype(bool)
            early = valid & (st[:, :-1] == self.term)
            for bad, what in ((at_term & ~ended, "reaches term at T but is not flagged terminated"),
                              (~at_term & ~ended & ~trunc, "ends in a real state at T but is flagged neither "
                                                           "terminated nor truncated"),
                              (trunc & (lengths != r.shape[1]), f"is flagged truncated before the horizon H = "
                                                                f"{r.shape[1]} (T = H when the horizon cuts it)"),
                              (early.any(axis=1), f"visits term = {self.term} before its end T")):
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise ReferenceError_(f"Trajectories: trajectory {i} (T = {int(lengths[i])}) {what}")

    @property
    def n(self) -> int:
        return int(self.lengths.size)

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[1])

    @property
    def valid(self) -> BoolArray:
        """bool [N, H]: step t is before termination (t < T)."""
        return np.arange(self.horizon)[None, :] < self.lengths[:, None]


_SAMPLE_MAX_BYTES = 1 << 34
"""Largest padded batch :func:`sample_trajectories` allocates (16 GiB of states, actions and rewards)."""

_SAMPLE_CHUNK = 1 << 22
"""Entries (rows x longest row) of one block of within-row cdfs in :func:`_sample_outcome`."""


def inverse_cdf(p: ArrayLike, u: ArrayLike) -> IntArray:
    """Inverse-CDF draw of one index per row of ``p`` [M, W] (non-negative weights) from uniforms ``u`` [M] in
    [0, 1): the first index j with cdf(j) > u * cdf(W - 1), the cdf summed *within the row*; shape [M].

    The one sampler of actions and outcomes (:func:`sample_trajectories`, ``pg_algorithms.a2c``). It never
    returns an index of weight 0: such an entry has the cdf of its predecessor, so it is never the first to
    exceed the target, and a target that rounds up to the row total (u = 1 - 2^-53, the largest value of
    ``Generator.random()``, times a total a few ulps below 1) falls back to the last positive entry. (The
    earlier ``min(#{cdf < u}, W - 1)`` picked a zero-probability last action there.) Every row needs a
    positive entry. Each row is first scaled by a power of two that brings its largest entry into [1/2, 1)
    (exact): rows of weights near the largest float overflowed in the cumsum (index 0, of weight 0, for
    [0, 1e308, 1e308]) and subnormal rows lost their proportions; normal probability rows draw bit for bit as
    without the scaling.

    Spec: support for MDP-04, MDP-05 (sampling actions and outcomes).
    """
    pr = np.asarray(p, dtype=np.float64)
    uu = np.asarray(u, dtype=np.float64)
    if pr.ndim != 2 or uu.shape != pr.shape[:1] or pr.shape[1] == 0:
        raise ShapeError(f"inverse_cdf needs p [M, W] (W >= 1) and u [M], got {pr.shape} and {uu.shape}")
    if not (np.all(np.isfinite(pr)) and np.all(pr >= 0.0) and np.all(pr.max(axis=1, initial=0.0) > 0.0)):
        raise ReferenceError_("inverse_cdf needs finite non-negative weights with a positive entry in every row "
                              "(an all-zero row returned an index of weight 0, a NaN row index 0)")
    if not np.all((uu >= 0.0) & (uu < 1.0)):
        raise ReferenceError_(f"inverse_cdf needs uniforms u in [0, 1), got {uu[~((uu >= 0.0) & (uu < 1.0))][0]!r}")
    pos = pr > 0.0
    _, k = np.frexp(pr.max(axis=1))
    pr = np.ldexp(pr, -k[:, None])  # exact: every row's largest entry in [1/2, 1), so the cumsum stays <= W
    cdf = np.cumsum(pr, axis=1)
    first = np.sum(cdf <= (uu * cdf[:, -1])[:, None], axis=1)  # index of the first cdf entry > target
    last_pos = pr.shape[1] - 1 - np.argmax(pos[:, ::-1], axis=1)
    return np.asarray(np.minimum(first, last_pos), dtype=np.int64)


def _sample_outcome(mdp: FiniteMDP, rows: IntArray, u: FloatArray) -> tuple[IntArray, FloatArray]:
    """Inverse-CDF sample of one outcome per kernel row (vectorised, :func:`inverse_cdf` on the rows' outcome
    probabilities, zero-padded to the longest row).

    A single cumsum over the whole outcome table would put each row's cdf at an offset of up to S A, where
    rounding shifts the boundaries by about eps * (row index) and ``offset + u`` can round up to the row's
    end, which selected a zero-probability last outcome; :func:`inverse_cdf` sums within the row.
    """
    lo = mdp.indptr[rows]
    counts = mdp.indptr[rows + 1] - lo
    width = int(counts.max(initial=1))
    e = np.empty(rows.shape[0], dtype=np.int64)
    step = max(1, _SAMPLE_CHUNK // width)
    cols = np.arange(width)
    for start in range(0, rows.shape[0], step):
        sl = slice(start, start + step)
        inside = cols[None, :] < counts[sl, None]
        idx = np.where(inside, lo[sl, None] + cols[None, :], 0)
        p = np.where(inside, mdp.prob[idx], 0.0)
        e[sl] = lo[sl] + inverse_cdf(p, u[sl])
    return mdp.next_state[e], mdp.reward[e]


def validate_state_table(traj: Trajectories, table: ArrayLike, *, name: str, ndim: int = 1,
                         actions: bool = False, finite: bool = False) -> FloatArray:
    """Check an array indexed by state on axis 0 that is read along ``traj`` (a V or a baseline [S+], a Q, a
    policy or theta [S+, A], features [S+, d] or [S+, A, d]); return it as float64.

    It must have ``ndim`` axes and |S+| = ``traj.term + 1`` rows where the batch records term (every sampled
    or enumerated batch does): a V without its term entry used to make the last real state "terminal"
    (bootstrapped with 0), and indices were clamped into a short table (states merged). For a hand-built
    batch (``term`` None) it needs a row for every state index of the batch (term, the last row, included).
    ``actions``: axis 1 is the action axis and needs a column for every stored action. Raises
    :class:`ShapeError` naming ``name`` and the expected length. ``finite``: every row of a state the batch
    visits, term excepted (its entry is never read), must be finite (``ReferenceError_``: a NaN V or Q there
    came back as a NaN target).

    Spec: none (input validation of the tables read along trajectories).
    """
    a = np.asarray(table, dtype=np.float64)
    if a.ndim != ndim:
        raise ShapeError(f"{name} must have {ndim} axes (states first), got shape {a.shape}")
    if traj.term is not None:
        if a.shape[0] != traj.term + 1:
            raise ShapeError(f"{name} must have |S+| = term + 1 = {traj.term + 1} rows (term = {traj.term}, the "
                             f"trajectories' terminal state), got shape {a.shape}")
    else:
        need = int(traj.states.max(initial=0)) + 1
        if a.shape[0] < need:
            raise ShapeError(f"{name} must have a row for every state of the trajectories (at least {need}), "
                             f"got shape {a.shape}")
    if actions:
        need_a = int(traj.actions.max(initial=0)) + 1
        if a.shape[1] < need_a:
            raise ShapeError(f"{name} must have a column for every stored action (at least {need_a}), "
                             f"got shape {a.shape}")
    if finite:
        term = traj.term if traj.term is not None else a.shape[0] - 1
        visited = np.unique(traj.states)
        visited = visited[visited != term]
        rows = a[visited].reshape(visited.size, -1)
        bad = ~np.all(np.isfinite(rows), axis=1)
        if bad.any():
            raise ReferenceError_(f"{name} is not finite at visited state {int(visited[bad][0])}: the targets and "
                                  f"gradients read it")
    return a


def _check_start(mdp: FiniteMDP, s0: int | None, a0: int | None) -> tuple[int | None, int | None]:
    """s0 in S+ and a0 in A, each an integer (an out-of-range a0 would silently read another state's kernel
    row; a float 0.9 was truncated to 0). Integral floats are read as integers, as
    :func:`reference.mdp.validate_actions` does. Returns them as ints (or None)."""
    out: list[int | None] = []
    for name, x, size, what in (("s0", s0, mdp.n_states_plus, "state"), ("a0", a0, mdp.n_actions, "action")):
        if x is None:
            out.append(None)
            continue
        if np.ndim(x) != 0:
            raise ShapeError(f"{name} must be a single {what} index, got shape {np.shape(x)}")
        out.append(int(validate_indices(x, size, name=name, what=what, error=ShapeError)))
    return out[0], out[1]


def sample_trajectories(
    mdp: FiniteMDP,
    pi: FloatArray,
    *,
    rng: np.random.Generator,
    n: int,
    horizon: int,
    s0: int | None = None,
    a0: int | None = None,
) -> Trajectories:
    """Sample n trajectories tau ~ (p0, pi, p), vectorised over the batch, truncated at ``horizon``.

    Spec: MDP-04, PG-03. ``s0`` fixes s_0 (instead of p0) and ``a0`` fixes a_0 (for Q estimates,
    EVAL-21). Same generator state, same trajectories.
    """
    pi = validate_policy(mdp, pi)
    n = validate_int(n, "n", minimum=1, error=ShapeError)
    horizon = validate_int(horizon, "horizon", minimum=1, error=ShapeError)
    s0, a0 = _check_start(mdp, s0, a0)
    need = n * (horizon + 1) * 8 * 3
    if need > _SAMPLE_MAX_BYTES:  # numpy's MemoryError ("7.28 TiB") came back raw for horizon = 10**12
        raise ShapeError(f"sample_trajectories: the padded batch [n, horizon + 1] = [{n}, {horizon + 1}] needs "
                         f"{need / 2**30:.3g} GiB (more than {_SAMPLE_MAX_BYTES / 2**30:.0f} GiB); sample with a "
                         f"smaller horizon or fewer trajectories per call")
    term = mdp.term
    states = np.full((n, horizon + 1), term, dtype=np.int64)
    actions = np.zeros((n, horizon), dtype=np.int64)
    rewards = np.zeros((n, horizon))
    if s0 is None:
        s = rng.choice(mdp.n_states_plus, size=n, p=mdp.p0).astype(np.int64)
    else:
        s = np.full(n, int(s0), dtype=np.int64)
    states[:, 0] = s
    lengths = np.full(n, horizon, dtype=np.int64)
    alive = s != term
    lengths[~alive] = 0
    for t in range(horizon):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        st = s[idx]
        if t == 0 and a0 is not None:
            a = np.full(idx.size, int(a0), dtype=np.int64)
        else:
            a = inverse_cdf(pi[st], rng.random(idx.size))
        nxt, r = _sample_outcome(mdp, st * mdp.n_actions + a, rng.random(idx.size))
        actions[idx, t] = a
        rewards[idx, t] = r
        states[idx, t + 1] = nxt
        s[idx] = nxt
        done = nxt == term
        lengths[idx[done]] = t + 1
        alive[idx[done]] = False
    terminated = states[np.arange(n), lengths] == term
    return Trajectories(states, actions, rewards, lengths, terminated, ~terminated,
                        np.full(n, 1.0 / n), term)


def enumerate_trajectories(
    mdp: FiniteMDP,
    pi: FloatArray,
    *,
    horizon: int | None = None,
    s0: int | None = None,
    a0: int | None = None,
    max_trajectories: int = 2_000_000,
) -> Trajectories:
    """Exact oracle: every trajectory of positive probability, once, with its probability as its weight.

    Spec: PG-03: p(tau) = p0(s_0) prod_{t<T} pi(a_t | s_t) p(r_t, s_{t+1} | s_t, a_t). Distinct outcomes
    (r, s') of the joint kernel are distinct trajectories, so stochastic rewards are exact.

    With ``horizon=None`` every trajectory must terminate; the horizon is found by search and an
    :class:`InvalidMDPError` is raised if some trajectory is longer than ``n_states`` steps (the MDP is
    not acyclic under pi). With a horizon H, trajectories still alive at H are returned truncated.
    ``s0`` / ``a0`` condition on s_0 / a_0. Raises ShapeError beyond ``max_trajectories``.
    """
    pi = validate_policy(mdp, pi)
    term = mdp.term
    if horizon is not None:
        horizon = validate_int(horizon, "horizon", minimum=1, error=ShapeError)
    max_trajectories = validate_int(max_trajectories, "max_trajectories", minimum=1, error=ShapeError)
    limit = mdp.n_states + 1 if horizon is None else int(horizon)
    # each partial trajectory: (states list, actions, rewards, prob)
    s0, a0 = _check_start(mdp, s0, a0)
    if s0 is None:
        starts = np.flatnonzero(mdp.p0 > 0)
        frontier: list[tuple[list[int], list[int], list[float], float]] = [
            ([int(s)], [], [], float(mdp.p0[s])) for s in starts]
    else:
        frontier = [([int(s0)], [], [], 1.0)]
    done: list[tuple[list[int], list[int], list[float], float]] = []
    # does some (s, a) row list the same (r, s') outcome twice? Only then can two histories coincide
    duplicated = any(len(set(zip(mdp.next_state[lo:hi].tolist(), mdp.reward[lo:hi].tolist(), strict=True)))
                     < hi - lo for lo, hi in zip(mdp.indptr[:-1].tolist(), mdp.indptr[1:].tolist(), strict=True))
    t = 0
    while frontier:
        if t == limit:
            if horizon is None:
                raise InvalidMDPError(
                    f"enumerate_trajectories: some trajectory is still running after {limit} steps; the MDP "
                    "is not acyclic under this policy (pass a horizon to truncate)")
            done.extend(frontier)
            break
        nxt_frontier: list[tuple[list[int], list[int], list[float], float]] = []
        for st, ac, rw, p in frontier:
            s = st[-1]
            if s == term:
                done.append((st, ac, rw, p))
                continue
            acts = [a0] if (t == 0 and a0 is not None) else [int(a) for a in np.flatnonzero(pi[s] > 0)]
            for a in acts:
                pa = 1.0 if (t == 0 and a0 is not None) else float(pi[s, a])
                probs, rews, nexts = mdp.outcomes(s, a)
                for q, r, s2 in zip(probs, rews, nexts, strict=True):
                    if q > 0:
                        nxt_frontier.append(([*st, int(s2)], [*ac, a], [*rw, float(r)], p * pa * float(q)))
        # identical histories (an (s, a) row that lists the same (r, s') outcome twice, as FrozenLake's do) are one
        # trajectory: merged, so that each weight is p(tau) (FrozenLake's uniform policy at H = 3 gave 1530 rows
        # for 1078 trajectories, one of them split over 8 rows)
        if duplicated:
            merged: dict[tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]], int] = {}
            frontier = []
            for st, ac, rw, p in nxt_frontier:
                key = (tuple(st), tuple(ac), tuple(rw))
                j = merged.get(key)
                if j is None:
                    merged[key] = len(frontier)
                    frontier.append((st, ac, rw, p))
                else:
                    frontier[j] = (st, ac, rw, frontier[j][3] + p)
        else:  # distinct outcomes in every row: the histories are distinct already (no dictionary: 47 % faster)
            frontier = nxt_frontier
        if len(frontier) + len(done) > max_trajectories:
            raise ShapeError(f"more than {max_trajectories} trajectories; use a smaller MDP or horizon")
        t += 1
    h = max(max((len(d[1]) for d in done), default=0), 1)
    n = len(done)
    states = np.full((n, h + 1), term, dtype=np.int64)
    actions = np.zeros((n, h), dtype=np.int64)
    rewards = np.zeros((n, h))
    lengths = np.zeros(n, dtype=np.int64)
    weights = np.zeros(n)
    for i, (st, ac, rw, p) in enumerate(done):
        states[i, : len(st)] = st
        actions[i, : len(ac)] = ac
        rewards[i, : len(rw)] = rw
        lengths[i] = len(ac)
        weights[i] = p
    terminated = states[np.arange(n), lengths] == term
    return Trajectories(states, actions, rewards, lengths, terminated, ~terminated, weights, term)


def discounted_returns(rewards: FloatArray, gamma: float) -> FloatArray:
    """G_t = sum_{t'=t}^{H-1} gamma^{t'-t} r_{t'} for every t (MDP-18); rewards [N, H] -> [N, H].

    Rewards after termination are 0 (MDP-11), so padding does not change G_t. For a truncated
    trajectory this is the return *observed* up to the horizon (no bootstrap).
    """
    gamma = validate_gamma(gamma)
    r = np.asarray(rewards, dtype=np.float64)
    g = np.zeros_like(r)
    acc = np.zeros(r.shape[:-1])
    for t in range(r.shape[-1] - 1, -1, -1):
        acc = r[..., t] + gamma * acc
        g[..., t] = acc
    return g


@dataclass(frozen=True)
class Moments:
    """Mean, trace of the covariance (open choice 21) and E||g||^2 of an estimator.

    Attributes: mean [...] (the shape of one sample); trace_variance = E||g - E g||^2; second_moment =
    E||g||^2. Exact when the weights are trajectory probabilities from the oracle.
    """

    mean: FloatArray
    trace_variance: float
    second_moment: float


def exact_moments(samples: ArrayLike, weights: ArrayLike) -> Moments:
    """Weighted mean and trace-variance sum_i w_i ||g_i - mean||^2 of samples [N, ...] with weights [N].

    Spec: PG-06, PG-15, EVAL-19; open choice 21 (Var of a vector estimator = trace of its covariance). With the
    oracle's weights (summing to 1) these are the exact moments; with 1/N they are the (biased, ddof=0) sample
    moments.
    """
    x = np.asarray(samples, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] != w.size or w.ndim != 1:
        raise ShapeError(f"samples [N, ...] and weights [N] disagree: {x.shape} vs {w.shape}")
    if not np.all(np.isfinite(w)) or abs(float(w.sum()) - 1.0) > 1e-9 or np.any(w < 0):
        raise ReferenceError_(f"weights must be a probability vector (sum {float(w.sum())!r}, "
                              f"min {float(w.min())!r})")
    flat = x.reshape(x.shape[0], -1)
    mean = w @ flat
    dev = flat - mean
    var = float(w @ np.einsum("nd,nd->n", dev, dev))
    sec = float(w @ np.einsum("nd,nd->n", flat, flat))
    return Moments(np.asarray(mean.reshape(x.shape[1:]), dtype=np.float64), var, sec)
