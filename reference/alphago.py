"""The AlphaGo pipeline, expert iteration and test-time compute, at a scale where everything is exact.

Text: Ryu, Chapter 1, L2252-L2557. Models are *tabular* over the enumerated positions of a small game
(:class:`reference.search.GameGraph`): a policy is a logit table ``theta [n, A]`` (illegal actions masked),
a value function a table ``V [n]``. Values and ``z`` are from the side to move (E-85, open choice 3).

* Step 1 (GAME-21): behaviour cloning of the exact expert by cross-entropy.
* Step 2 (GAME-22, 23): self-play REINFORCE ``g = sum_t grad log pi(a_t|s_t) z`` over the agent's own moves
  against a frozen pool, first player uniform (open choice 19); exact ``R`` and ``grad R`` by dynamic
  programming, and ``E[g]`` by enumerating every trajectory.
* Step 3 (GAME-25): Monte Carlo value regression ``g = grad 1/2 (V(s) - z)^2``.
* Step 4 (GAME-27): a fast rollout policy (state-independent logits), fitted by imitation.
* Expert iteration (GAME-37..40): self-play with MCTS(pi, V), targets the visit distribution (E-96).
* Test-time compute (GAME-42..45): Elo from match scores, Elo per doubling of search, GAME-44 arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from reference.errors import InvalidGameError, InvalidPolicyError, ReferenceError_, ShapeError
from reference.mdp import _real, validate_indices, validate_int, validate_step_size
from reference.search import GameGraph, IndexedGame, mcts, visit_distribution
from reference.tolerance import EPS

__all__ = [
    "ExpertIterationResult",
    "behaviour_cloning",
    "board_symmetries",
    "compute_multiplier_for_elo",
    "cross_entropy",
    "elo_difference",
    "elo_gain_for_multiplier",
    "elo_per_doubling",
    "expected_g_by_enumeration",
    "expert_dataset",
    "expert_iteration",
    "fast_policy_probs",
    "fit_fast_policy",
    "greedy_actions",
    "guaranteed_value",
    "masked_softmax",
    "monte_carlo_value_fit",
    "policy_values",
    "reinforce_gradient_exact",
    "reinforce_gradient_sample",
    "reinforce_self_play",
    "square_board_symmetries",
    "win_minus_loss",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
S = TypeVar("S", bound=Hashable)


# ---------------------------------------------------------------------------------------------------------
# Tabular policies
# ---------------------------------------------------------------------------------------------------------


def masked_softmax(graph: GameGraph[S], logits: FloatArray) -> FloatArray:
    """Tabular softmax policy ``pi_theta(a | s) ∝ exp(theta[s, a])`` over the legal actions.

    Spec: GAME-21. ``logits``: ``[n, A]`` -> ``[n, A]``; terminal rows are all zero. A non-finite logit on a
    legal action raises ``InvalidPolicyError`` (NaN would poison its row, +inf give inf / inf = NaN, -inf at
    every legal action an all-zero row at a non-terminal state); entries on illegal actions are not read.
    """
    if logits.shape != graph.legal.shape:
        raise ShapeError(f"logits must have shape {graph.legal.shape}, got {logits.shape}")
    bad = np.argwhere(graph.legal & ~np.isfinite(logits))
    if bad.size:
        i, a = (int(v) for v in bad[0])
        raise InvalidPolicyError(f"logits[{i}, {a}] = {logits[i, a]} is not finite (a legal action's logit)")
    z = np.where(graph.legal, logits, -np.inf)
    m = np.max(z, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.where(graph.legal, np.exp(z - m), 0.0)
    tot = e.sum(axis=1, keepdims=True)
    out: FloatArray = np.where(tot > 0, e / np.where(tot > 0, tot, 1.0), 0.0)
    return out


def greedy_actions(graph: GameGraph[S], probs: FloatArray) -> IntArray:
    """``argmax_a pi(a | s)`` per state (lowest index on ties); -1 at terminal states. ``[n, A]`` -> ``[n]``.

    Spec: GAME-28.
    """
    out: IntArray = np.where(graph.terminal, -1, np.argmax(np.where(graph.legal, probs, -1.0), axis=1))
    return out


def _check_probs(graph: GameGraph[S], probs: FloatArray, name: str) -> None:
    if probs.shape != graph.legal.shape:
        raise ShapeError(f"{name} must have shape {graph.legal.shape}, got {probs.shape}")
    bad = np.argwhere(~np.isfinite(probs) | (probs < 0) | (~graph.legal & (probs != 0)))
    if bad.size:
        i, a = (int(v) for v in bad[0])
        raise InvalidPolicyError(f"{name}[{i}, {a}] = {probs[i, a]} (not finite, negative or on an illegal action)")
    sums = probs.sum(axis=1)
    rows = np.flatnonzero(~graph.terminal & ~(np.abs(sums - 1.0) <= 1e-9))
    if rows.size:
        raise InvalidPolicyError(f"{name} row {int(rows[0])} sums to {sums[rows[0]]}, not 1")


_check_rate = validate_step_size  # the short name this module uses


def _check_probability(value: object, name: str) -> float:
    """A probability: a real number in [0, 1] (NaN or -1 silently meant "never", 2 "always")."""
    x = _real(value, name)
    if not 0.0 <= x <= 1.0:
        raise ReferenceError_(f"{name} must be a probability in [0, 1], got {value!r}")
    return x


def _check_states(graph: GameGraph[S], states: IntArray, name: str = "states") -> IntArray:
    """Dataset states ``[D]``: integer indices of non-terminal positions (a float 0.9 is refused, never
    truncated; -1 is refused, never wrapped to the last state; a terminal state has no action to imitate)."""
    if np.ndim(states) != 1:
        raise ShapeError(f"{name} must be a vector of state indices [D], got shape {np.shape(states)}")
    st = validate_indices(states, graph.num_states, name=name, what="state", error=ShapeError)
    term = np.flatnonzero(graph.terminal[st])
    if term.size:
        k = int(term[0])
        raise InvalidPolicyError(f"{name}[{k}] = {int(st[k])} is a terminal state: it has no legal action")
    return st


def _refuse_illegal(graph: GameGraph[S], states: IntArray, actions: IntArray, labels: IntArray) -> None:
    """``InvalidPolicyError`` naming the first ``actions[labels[k]]`` not legal at ``states[k]`` (an illegal
    action's logit would grow without bound, and its value is undefined)."""
    illegal = np.flatnonzero(~graph.legal[states, actions])
    if illegal.size:
        k = int(illegal[0])
        raise InvalidPolicyError(f"actions[{int(labels[k])}] = {int(actions[k])} is illegal in state "
                                 f"{int(states[k])}")


def _check_targets(graph: GameGraph[S], states: IntArray, targets: FloatArray) -> FloatArray:
    """Targets ``[D, A]`` for validated ``states [D]``: each row a distribution over the legal actions of its
    state (finite, >= 0, zero on illegal actions, summing to 1). Raises ``InvalidPolicyError`` naming the row."""
    t = np.asarray(targets, dtype=np.float64)
    A = graph.num_actions
    if t.shape != (len(states), A):
        raise ShapeError(f"targets must have shape ({len(states)}, {A}), got {t.shape}")
    bad = np.argwhere(~np.isfinite(t) | (t < 0) | (~graph.legal[states] & (t != 0)))
    if bad.size:
        k, a = (int(v) for v in bad[0])
        raise InvalidPolicyError(f"targets[{k}, {a}] = {t[k, a]} (state {int(states[k])}): not finite, negative "
                                 f"or on an illegal action")
    # A row built as w / sum(w) is off 1 by at most (A - 1) u (the normaliser's sum) + u per quotient, and this
    # check's own sum adds (A - 1) u: < 3 A u = 1.5 A eps. 4 A eps (4 ulps of 1 per entry) leaves a margin of
    # 2.7; a row off by more (a half or a doubled one-hot is off by 0.5 or 1) is not a distribution.
    sums = t.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 4.0 * A * EPS)
    if off.size:
        k = int(off[0])
        raise InvalidPolicyError(f"targets[{k}] (state {int(states[k])}) sums to {float(sums[k])!r}, not 1: a "
                                 f"target row must be a distribution over the legal actions")
    return t


def cross_entropy(graph: GameGraph[S], logits: FloatArray, states: IntArray, targets: FloatArray) -> float:
    """Mean cross-entropy ``(1/|D|) sum_{(s, t) in D} -sum_a t_a log pi_theta(a | s)``.

    L(theta) = sum_{(s,a) in D} l_CE(pi_theta(.|s), a)   (L2265; the mean, open choice 8)

    Spec: GAME-21, GAME-39. ``states [D]``, ``targets [D, A]`` (one-hot rows for single actions). States are
    integer indices of non-terminal positions (-1 is refused, never wrapped; a float 0.9 is refused, never
    truncated): ``ShapeError``, or ``InvalidPolicyError`` for a terminal state. Each target row must be a
    distribution over its state's legal actions (``InvalidPolicyError``).
    """
    states = _check_states(graph, states)
    targets = _check_targets(graph, states, targets)
    probs = masked_softmax(graph, logits)
    p = probs[states]
    with np.errstate(divide="ignore"):
        logp = np.where(targets > 0, np.log(np.where(targets > 0, p, 1.0)), 0.0)
    return float(-(targets * logp).sum() / max(len(states), 1))


# ---------------------------------------------------------------------------------------------------------
# Step 1: behaviour cloning of the exact expert (GAME-21)
# ---------------------------------------------------------------------------------------------------------


def expert_dataset(graph: GameGraph[S], expert: FloatArray, rng: np.random.Generator, *, num_games: int,
                   explore: float = 0.0) -> tuple[IntArray, IntArray]:
    """``D = {(s, a)}`` from expert self-play games (expert moves only are recorded).

    With ``explore > 0`` a move is uniformly random (and not recorded) with that probability, widening the
    states seen; ``explore`` is a probability in [0, 1] (``ReferenceError_`` otherwise, NaN included).
    Spec: GAME-21. Returns ``(states [D], actions [D])``.
    """
    _check_probs(graph, expert, "expert")
    num_games = validate_int(num_games, "num_games")
    ex = _real(explore, "explore")
    if not 0.0 <= ex <= 1.0:
        raise ReferenceError_(f"explore must be a probability in [0, 1] (of a random, unrecorded move), "
                              f"got {explore!r}")
    ss: list[int] = []
    aa: list[int] = []
    for _ in range(num_games):
        i = 0
        while not graph.terminal[i]:
            legal = np.flatnonzero(graph.legal[i])
            if explore > 0.0 and rng.random() < explore:
                a = int(rng.choice(legal))
            else:
                a = int(rng.choice(graph.num_actions, p=expert[i]))
                ss.append(i)
                aa.append(a)
            i = int(graph.child[i, a])
    return np.array(ss, dtype=np.int64), np.array(aa, dtype=np.int64)


def behaviour_cloning(graph: GameGraph[S], states: IntArray, targets: FloatArray, *, lr: float,
                      num_steps: int, logits0: FloatArray | None = None) -> FloatArray:
    """Full-batch gradient descent on the mean cross-entropy of a tabular softmax policy.

    grad_theta[s] = (1/|D|) sum_{(s_i, t_i): s_i = s} (pi_theta(.|s) - t_i)

    Spec: GAME-21 (step 1; imitation of the expert), GAME-39 (imitation of MCTS targets). ``targets [D, A]``
    (one-hot rows for the text's single actions; visit distributions for E-96). Returns logits ``[n, A]``.
    ``states`` and ``targets`` as in :func:`cross_entropy`; ``lr`` a finite number > 0 (``ReferenceError_``).
    """
    states = _check_states(graph, states)
    targets = _check_targets(graph, states, targets)
    lr = _check_rate(lr, "lr")
    num_steps = validate_int(num_steps, "num_steps")
    n, A = graph.legal.shape
    counts = np.bincount(states, minlength=n).astype(np.float64)
    tsum = np.zeros((n, A))
    np.add.at(tsum, states, targets)
    logits = np.zeros((n, A)) if logits0 is None else np.array(logits0, dtype=np.float64)
    D = max(len(states), 1)
    for _ in range(num_steps):
        probs = masked_softmax(graph, logits)
        logits -= lr * (counts[:, None] * probs - tsum) / D
    return logits


# ---------------------------------------------------------------------------------------------------------
# Exact evaluation of policy pairs
# ---------------------------------------------------------------------------------------------------------


def _reach_and_value(graph: GameGraph[S], probs: FloatArray, probs_minus: FloatArray,
                     colour: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Reach probabilities d [n], agent-outcome values U [n] and action values Qz [n, A] (expected z)."""
    n = graph.num_states
    pol = np.where((graph.player == colour)[:, None], probs, probs_minus)
    U = np.zeros(n)
    Qz = np.zeros(graph.legal.shape)
    for i in range(n - 1, -1, -1):
        if graph.terminal[i]:
            U[i] = graph.returns[i, colour]
        else:
            acts = np.flatnonzero(graph.legal[i])
            Qz[i, acts] = U[graph.child[i, acts]]
            U[i] = float(pol[i, acts] @ Qz[i, acts])
    d = np.zeros(n)
    d[0] = 1.0
    for i in range(n):
        if not graph.terminal[i]:
            acts = np.flatnonzero(graph.legal[i])
            np.add.at(d, graph.child[i, acts], d[i] * pol[i, acts])
    return d, U, Qz


def win_minus_loss(graph: GameGraph[S], probs: FloatArray, probs_minus: FloatArray) -> float:
    """Exact ``R(pi, pi^-) = E[z] = P(pi wins) - P(pi^- wins)`` with the first player uniform.

    R(pi_theta^RL, pi_theta-^RL) = E[z] = P[pi_theta^RL wins] - P[pi_theta-^RL wins]   (L2281-L2283)

    Spec: GAME-22. ``probs``, ``probs_minus``: ``[n, A]``. z is the agent's terminal return, so in general
    R = E[z]; it equals P(pi wins) - P(pi^- wins) when the returns are +-1 and 0 for a draw (a margin game such as
    OpenSpiel's dots_and_boxes with ``utility_margin`` gives the expected margin).
    """
    _check_probs(graph, probs, "probs")
    _check_probs(graph, probs_minus, "probs_minus")
    return 0.5 * sum(float(_reach_and_value(graph, probs, probs_minus, c)[1][0]) for c in (0, 1))


def reinforce_gradient_exact(graph: GameGraph[S], logits: FloatArray, probs_minus: FloatArray) -> FloatArray:
    """Exact ``grad_theta R(pi_theta, pi_theta-)`` for the tabular softmax policy (theta^- frozen).

    grad R = (1/2) sum_colour sum_{s: agent moves} d(s) pi(.|s) * (Q_z(s, .) - V_z(s))

    Spec: GAME-23 (the quantity that ``g`` estimates). Returns ``[n, A]``.
    """
    _check_probs(graph, probs_minus, "probs_minus")
    probs = masked_softmax(graph, logits)
    out = np.zeros(graph.legal.shape)
    for c in (0, 1):
        d, U, Qz = _reach_and_value(graph, probs, probs_minus, c)
        mine = (graph.player == c) & ~graph.terminal
        out += 0.5 * np.where(mine[:, None], d[:, None] * probs * (Qz - U[:, None]), 0.0)
    return np.where(graph.legal, out, 0.0)


def reinforce_gradient_sample(graph: GameGraph[S], logits: FloatArray, probs_minus: FloatArray,
                              rng: np.random.Generator, *, own_moves_only: bool = True) -> FloatArray:
    """One sample of ``g = sum_t grad log pi_theta(a_t | s_t) z`` from one game with a random first player.

    g = sum_{t=0}^{T-1} grad_theta log pi_theta(a_t | s_t) z   (L2285; E-84: over the agent's own moves)

    Spec: GAME-23. ``own_moves_only=False`` also sums the opponent's moves as if they were the agent's
    (a biased estimator; the pitfall of L2287). Returns ``[n, A]``.
    """
    _check_probs(graph, probs_minus, "probs_minus")
    probs = masked_softmax(graph, logits)
    colour = int(rng.integers(2))
    g = np.zeros(graph.legal.shape)
    visited: list[tuple[int, int, bool]] = []
    i = 0
    while not graph.terminal[i]:
        mine = int(graph.player[i]) == colour
        pol = probs if mine else probs_minus
        a = int(rng.choice(graph.num_actions, p=pol[i]))
        visited.append((i, a, mine))
        i = int(graph.child[i, a])
    z = float(graph.returns[i, colour])
    for s, a, mine in visited:
        if mine or not own_moves_only:
            g[s] -= probs[s] * z
            g[s, a] += z
    return g


def expected_g_by_enumeration(graph: GameGraph[S], logits: FloatArray, probs_minus: FloatArray, *,
                              own_moves_only: bool = True) -> FloatArray:
    """``E[g]`` computed exactly by enumerating every trajectory (both colours) with its probability.

    Spec: GAME-23 (unbiasedness: equals :func:`reinforce_gradient_exact` when ``own_moves_only``).
    Exponential in the game length: for small games only. Returns ``[n, A]``.
    """
    _check_probs(graph, probs_minus, "probs_minus")
    probs = masked_softmax(graph, logits)
    out = np.zeros(graph.legal.shape)
    for colour in (0, 1):
        stack: list[tuple[int, float, tuple[tuple[int, int, bool], ...]]] = [(0, 0.5, ())]
        while stack:
            i, pr, hist = stack.pop()
            if graph.terminal[i]:
                z = float(graph.returns[i, colour])
                for s, a, mine in hist:
                    if mine or not own_moves_only:
                        out[s] -= pr * z * probs[s]
                        out[s, a] += pr * z
                continue
            mine = int(graph.player[i]) == colour
            pol = probs if mine else probs_minus
            for a in (int(b) for b in np.flatnonzero(graph.legal[i])):
                if pol[i, a] > 0.0:
                    stack.append((int(graph.child[i, a]), pr * float(pol[i, a]), (*hist, (i, int(a), mine))))
    return out


def reinforce_self_play(graph: GameGraph[S], logits0: FloatArray, rng: np.random.Generator, *, alpha: float,
                        num_iterations: int, batch_size: int, pool_every: int) -> FloatArray:
    """Step 2: self-play policy gradient of ``pi^RL`` against opponents drawn uniformly from a frozen pool.

    (i) initialise pi^RL := pi^IL (E-82); (ii) play pi_theta vs pi_theta- with theta- from the pool;
    (iii) theta <- theta + alpha * mean of g over the batch (no baseline, gamma = 1)   (L2273-L2288)

    Spec: GAME-22, GAME-23, GAME-24. A snapshot joins the pool every ``pool_every`` iterations. ``alpha`` is
    a finite step size > 0 (``ReferenceError_``: NaN filled the logits with NaN, a negative one descended R).
    Returns the final logits ``[n, A]``.
    """
    alpha = _check_rate(alpha, "alpha")
    num_iterations = validate_int(num_iterations, "num_iterations")
    batch_size = validate_int(batch_size, "batch_size", minimum=1)  # g is the batch mean
    pool_every = validate_int(pool_every, "pool_every", minimum=1)
    logits = np.array(logits0, dtype=np.float64)
    pool = [masked_softmax(graph, logits)]
    for k in range(num_iterations):
        g = np.zeros_like(logits)
        for _ in range(batch_size):
            opp = pool[int(rng.integers(len(pool)))]
            g += reinforce_gradient_sample(graph, logits, opp, rng)
        logits += alpha * g / batch_size
        if (k + 1) % pool_every == 0:
            pool.append(masked_softmax(graph, logits))
    return logits


# ---------------------------------------------------------------------------------------------------------
# Step 3: value fitting; exact policy values (GAME-25, GAME-26)
# ---------------------------------------------------------------------------------------------------------


def policy_values(graph: GameGraph[S], probs: FloatArray) -> FloatArray:
    """Exact ``V^{pi vs pi}(s)`` for the side to move, both sides playing ``probs``.

    V(s) = sum_a pi(a|s) (r(s, a) - V(f(s, a))),  V(term) = 0   (E-86 form of the negamax identity)

    Spec: GAME-25 (the target of the value network), GAME-26. Returns ``[n]``.
    """
    _check_probs(graph, probs, "probs")
    V = np.zeros(graph.num_states)
    for i in range(graph.num_states - 1, -1, -1):
        if not graph.terminal[i]:
            acts = np.flatnonzero(graph.legal[i])
            kids = graph.child[i, acts]
            sign = np.where(graph.player[kids] == graph.player[i], 1.0, -1.0)
            cont = np.where(graph.terminal[kids], 0.0, V[kids])
            V[i] = float(probs[i, acts] @ (graph.reward[i, acts] + sign * cont))
    return V


def monte_carlo_value_fit(graph: GameGraph[S], probs: FloatArray, rng: np.random.Generator, *, num_games: int,
                          start: int = 0) -> tuple[FloatArray, IntArray]:
    """Step 3: fit ``V_phi`` by SGD on ``1/2 (V_phi(s) - z)^2`` over self-play games of ``probs``.

    g = grad_phi 1/2 (V_phi(s) - z)^2   (L2313), z = the outcome for the player to move at s (E-85)

    Spec: GAME-25. Tabular ``V_phi`` with step ``1 / (number of visits)``: each entry is the running mean of
    its z's, so ``V_phi -> V^{pi vs pi}``. Returns ``(V [n], visit counts [n])``. ``start``: a state index
    (a float 0.9 is refused, never truncated to 0; -1 is refused, never wrapped to the last state).
    """
    _check_probs(graph, probs, "probs")
    num_games = validate_int(num_games, "num_games")
    if np.ndim(start) != 0:
        raise ShapeError(f"start must be a single state index, got shape {np.shape(start)}")
    start = int(validate_indices(start, graph.num_states, name="start", what="state", error=ShapeError))
    V = np.zeros(graph.num_states)
    counts = np.zeros(graph.num_states, dtype=np.int64)
    for _ in range(num_games):
        i = start
        path: list[int] = []
        while not graph.terminal[i]:
            path.append(i)
            i = int(graph.child[i, int(rng.choice(graph.num_actions, p=probs[i]))])
        for s in path:
            z = float(graph.returns[i, graph.player[s]])
            counts[s] += 1
            V[s] -= (V[s] - z) / counts[s]  # SGD step on 1/2 (V - z)^2 with step size 1/count
    return V, counts


# ---------------------------------------------------------------------------------------------------------
# Step 4: a fast rollout policy (GAME-27)
# ---------------------------------------------------------------------------------------------------------


def fast_policy_probs(graph: GameGraph[S], psi: FloatArray) -> FloatArray:
    """The lightweight rollout policy ``pi_psi^fast(a | s) ∝ exp(psi_a)`` over legal actions (no state input).

    Spec: GAME-27. ``psi [A]`` -> ``[n, A]``.
    """
    if psi.shape != (graph.num_actions,):
        raise ShapeError(f"psi must have shape ({graph.num_actions},), got {psi.shape}")
    return masked_softmax(graph, np.broadcast_to(psi, graph.legal.shape).copy())


def fit_fast_policy(graph: GameGraph[S], states: IntArray, actions: IntArray, *, lr: float,
                    num_steps: int) -> FloatArray:
    """Step 4: fit ``psi`` by gradient descent on the mean cross-entropy of ``D = {(s, a)}``.

    Spec: GAME-27. Returns ``psi [A]``. ``states [D]`` as in :func:`cross_entropy`; ``actions [D]`` integer
    indices legal at their states (``InvalidPolicyError``: -1 is refused, never wrapped to the last action; an
    illegal action's logit would grow without bound); ``lr`` a finite number > 0.
    """
    states = _check_states(graph, states)
    if np.shape(actions) != states.shape:
        raise ShapeError(f"actions must have shape {states.shape} (one per state), got {np.shape(actions)}")
    actions = validate_indices(actions, graph.num_actions, name="actions", what="action", error=InvalidPolicyError)
    _refuse_illegal(graph, states, actions, np.arange(states.size))
    lr = _check_rate(lr, "lr")
    num_steps = validate_int(num_steps, "num_steps")
    psi = np.zeros(graph.num_actions)
    onehot = np.zeros((len(states), graph.num_actions))
    onehot[np.arange(len(states)), actions] = 1.0
    for _ in range(num_steps):
        p = fast_policy_probs(graph, psi)[states]
        psi -= lr * (p - onehot).mean(axis=0)
    return psi


# ---------------------------------------------------------------------------------------------------------
# Perfect play (GAME-29, GAME-40)
# ---------------------------------------------------------------------------------------------------------


def guaranteed_value(graph: GameGraph[S], actions: IntArray, agent: int) -> FloatArray:
    """Worst-case value for ``agent`` (side-to-move convention at its own states) when it plays ``actions``
    and the opponent plays anything: the value it secures against the exact solver.

    G(s) = r(s, a(s)) +- G(f(s, a(s))) at agent states; G(s) = min_a [...] at opponent states (agent's view)

    Spec: GAME-29, GAME-40 (perfect play = ``G(s) = V*(s)`` at every agent state). ``actions [n]``
    -> ``[n]`` (values for ``agent``; at terminal states 0). ``agent`` is a player, 0 or 1 (``InvalidGameError``).
    ``actions[s]`` must be an integer action legal at every non-terminal ``s`` (``InvalidPolicyError``: -1 is
    refused, never wrapped to the last action; 0.9 is refused, never truncated); at terminal states it is not
    read (:func:`greedy_actions` puts -1 there).
    """
    n = graph.num_states
    if np.ndim(agent) != 0:
        raise InvalidGameError(f"agent must be a single player, 0 or 1, got shape {np.shape(agent)}")
    agent = int(validate_indices(agent, 2, name="agent", what="player", error=InvalidGameError))
    if np.shape(actions) != (n,):
        raise ShapeError(f"actions must have shape ({n},) (one per state), got {np.shape(actions)}")
    nt = np.flatnonzero(~graph.terminal)
    act_nt = validate_indices(np.asarray(actions)[nt], graph.num_actions, name="actions", what="action",
                              error=InvalidPolicyError, where=lambda k: f"actions[{int(nt[k])}]")
    _refuse_illegal(graph, nt, act_nt, nt)
    actions = np.zeros(n, dtype=np.int64)
    actions[nt] = act_nt
    G = np.zeros(n)  # value for `agent` from s onward (rewards still to come)
    for i in range(n - 1, -1, -1):
        if graph.terminal[i]:
            continue
        me = int(graph.player[i]) == agent
        acts = np.array([actions[i]]) if me else np.flatnonzero(graph.legal[i])
        kids = graph.child[i, acts]
        rew = graph.reward[i, acts] * (1.0 if me else -1.0)  # reward in the agent's view
        vals = rew + np.where(graph.terminal[kids], 0.0, G[kids])
        G[i] = float(vals.min())
    return G


# ---------------------------------------------------------------------------------------------------------
# Expert iteration (GAME-37..GAME-40)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpertIterationResult:
    """Trained tables ``logits [n, A]`` and ``V [n]``, and the number of visits of each state ``counts [n]``."""

    logits: FloatArray
    V: FloatArray
    counts: IntArray


def expert_iteration(graph: GameGraph[S], rng: np.random.Generator, *, num_iterations: int,
                     games_per_iteration: int, num_simulations: int, c_puct: float = 1.5,
                     policy_target: Literal["visits", "action"] = "visits", lr_policy: float = 1.0,
                     policy_steps: int = 4, temperature_moves: int = 2, dirichlet_alpha: float | None = 0.5,
                     dirichlet_epsilon: float = 0.25, exploring_starts: float = 0.5,
                     lr_value: float | None = 0.5, sweep: bool = False,
                     symmetries: Sequence[tuple[IntArray, IntArray]] = ()) -> ExpertIterationResult:
    """Expert iteration (AlphaGo Zero) with a tabular policy-value model ``(pi_theta(s), V_theta(s)) = f_theta(s)``.

    1. Self-play with MCTS(pi^EI_theta, V_theta): D_a = {(s_t, a_t)}, D_w = {(s_t, z)}.
    2. Train pi^EI_theta to mimic D_a and V_theta to fit D_w.   (L2483-L2491)

    Spec: GAME-37, GAME-38 (one shared table model, no rollouts), GAME-39, GAME-40. Erratum E-96: the policy
    target is the MCTS visit distribution (``policy_target="visits"``); ``"action"`` is the text's single
    played action. Moves are sampled from the visits for the first ``temperature_moves`` plies of a game,
    then the most-visited move is played. With probability ``exploring_starts`` a game starts from a uniformly
    random reachable non-terminal position instead of the initial one (coverage for a tabular model).
    ``V_theta`` takes SGD steps on ``1/2 (V_theta(s) - z)^2`` with step ``lr_value`` (``None``: 1/count, the
    running mean), z from the side to move (E-85). Returns the final tables.

    ``sweep=True`` replaces the sampled games by exploring starts from *every* reachable non-terminal
    position, played deterministically (no Dirichlet noise, no temperature: the most-visited move is played
    and ``games_per_iteration``, ``exploring_starts``, ``temperature_moves`` and ``dirichlet_alpha`` are
    unused). A deterministic search from a given position with frozen tables always returns the same tree, so
    each position is searched once per iteration and each game follows those searches; the game from ``s``
    then has the same outcome ``z(s)`` whichever game passes through ``s``, so every pair ``(s, z)`` of the
    iteration is ``(s, z(s))`` and the per-state mean target is ``z(s)`` itself. With ``lr_value = 1`` the
    value table after an iteration is exactly the outcome of that iteration's game from each position.
    ``symmetries`` (sweep only; a group of ``(state permutation [n], action permutation [A])`` pairs, e.g.
    :func:`board_symmetries`): only one position per orbit is searched and its visit distribution and move are
    mapped to the others (symmetry augmentation, as in AlphaGo Zero). The policy target of a position that a
    symmetry maps to itself is averaged over those symmetries, so the targets, and the learned tables, are
    equivariant; ties inside a search still go to the lowest index, so the move played (which decides z) can
    differ from the move a search at the image would pick.

    The counts are integers (:func:`reference.mdp.validate_int`): ``num_iterations``, ``policy_steps``,
    ``temperature_moves`` >= 0, ``num_simulations`` >= 1 (the targets are root visits), ``games_per_iteration``
    >= 1 (>= 0 with ``sweep``, which does not use it). ``lr_policy`` and ``lr_value`` (unless None) are finite
    numbers > 0, ``exploring_starts`` a probability in [0, 1] and ``policy_target`` one of the two names
    (``ReferenceError_``). ``symmetries`` with ``sweep=False`` raises ``ReferenceError_`` (they would
    be ignored); with ``sweep=True`` each must be a pair of permutations, listed once (the identity is implied;
    it may be listed), and they must be closed under composition, i.e. a group (``InvalidGameError``).
    """
    num_iterations = validate_int(num_iterations, "num_iterations")
    games_per_iteration = validate_int(games_per_iteration, "games_per_iteration", minimum=0 if sweep else 1)
    num_simulations = validate_int(num_simulations, "num_simulations", minimum=1)
    policy_steps = validate_int(policy_steps, "policy_steps")
    temperature_moves = validate_int(temperature_moves, "temperature_moves")
    lr_policy = _check_rate(lr_policy, "lr_policy")
    lr_value = None if lr_value is None else _check_rate(lr_value, "lr_value")
    if policy_target not in ("visits", "action"):  # a misspelling ran the "action" variant
        raise ReferenceError_(f"policy_target must be 'visits' or 'action', got {policy_target!r}")
    exploring_starts = _check_probability(exploring_starts, "exploring_starts")
    if not sweep and len(symmetries) > 0:
        raise ReferenceError_(f"symmetries ({len(symmetries)} given) are used only with sweep=True (symmetry "
                              f"augmentation of the sweep's targets); with sweep=False they would be ignored")
    if sweep:
        _check_symmetry_group(graph, symmetries)
    n, A = graph.legal.shape
    game = IndexedGame(graph)
    logits = np.zeros((n, A))
    V = np.zeros(n)
    counts = np.zeros(n, dtype=np.int64)
    nonterminal = np.flatnonzero(~graph.terminal)
    for _ in range(num_iterations):
        probs = masked_softmax(graph, logits)
        Vfrozen = V.copy()

        def prior(s: int, probs: FloatArray = probs) -> FloatArray:
            row: FloatArray = probs[s]
            return row

        def value(s: int, Vfrozen: FloatArray = Vfrozen) -> float:
            return float(Vfrozen[s])

        if sweep:
            _sweep_iteration(graph, game, logits, V, counts, rng, num_simulations=num_simulations, c_puct=c_puct,
                             prior=prior, value=value, policy_target=policy_target, lr_policy=lr_policy,
                             policy_steps=policy_steps, lr_value=lr_value, symmetries=symmetries)
            continue
        data_s: list[int] = []
        data_t: list[FloatArray] = []
        data_z: list[tuple[int, float]] = []
        for _g in range(games_per_iteration):
            i = int(rng.choice(nonterminal)) if rng.random() < exploring_starts else 0
            path: list[int] = []
            ply = 0
            while not graph.terminal[i]:
                tree = mcts(game, i, num_simulations=num_simulations, rng=rng, prior=prior,
                            value=value, c_puct=c_puct, dirichlet_alpha=dirichlet_alpha,
                            dirichlet_epsilon=dirichlet_epsilon)
                pi_mcts = visit_distribution(tree, temperature=1.0)
                if ply < temperature_moves:
                    a = int(rng.choice(A, p=pi_mcts))
                else:
                    a = tree.best_action()
                target = pi_mcts if policy_target == "visits" else np.eye(A)[a]
                data_s.append(i)
                data_t.append(target)
                path.append(i)
                i = int(graph.child[i, a])
                ply += 1
            for s in path:
                data_z.append((s, float(graph.returns[i, graph.player[s]])))
        states = np.array(data_s, dtype=np.int64)
        targets = np.array(data_t)
        # Policy: gradient steps on the per-state mean cross-entropy (tabular: each state's own batch).
        cnt = np.bincount(states, minlength=n).astype(np.float64)
        tsum = np.zeros((n, A))
        np.add.at(tsum, states, targets)
        seen = cnt > 0
        tmean = np.where(seen[:, None], tsum / np.maximum(cnt, 1.0)[:, None], 0.0)
        for _step in range(policy_steps):
            p = masked_softmax(graph, logits)
            logits -= lr_policy * np.where(seen[:, None], p - tmean, 0.0)
        # Value: SGD on 1/2 (V - z)^2 with step 1/count.
        for s, z in data_z:
            counts[s] += 1
            V[s] -= (V[s] - z) * (1.0 / counts[s] if lr_value is None else lr_value)
    return ExpertIterationResult(logits=logits, V=V, counts=counts)


def _check_symmetry_group(graph: GameGraph[S], symmetries: Sequence[tuple[IntArray, IntArray]]) -> None:
    """Raise ``InvalidGameError`` unless each entry is a pair (state permutation [n], action permutation [A])
    and the pairs, with the identity, are closed under composition (a finite set of permutations closed under
    composition is a group: the orbit representatives and the maps between them of :func:`_sweep_iteration`
    exist). A lone 90-degree rotation is not closed (its square is missing)."""
    n, A = graph.legal.shape
    elems: list[tuple[IntArray, IntArray]] = [(np.arange(n, dtype=np.int64), np.arange(A, dtype=np.int64))]
    for k, pair in enumerate(symmetries):
        if len(pair) != 2:
            raise InvalidGameError(f"symmetries[{k}] must be a pair (state permutation, action permutation)")
        perms: list[IntArray] = []
        for part, size, what in ((0, n, "state"), (1, A, "action")):
            x = pair[part]
            if np.shape(x) != (size,):
                raise InvalidGameError(f"symmetries[{k}][{part}] must have shape ({size},), got {np.shape(x)}")
            p = validate_indices(x, size, name=f"symmetries[{k}][{part}]", what=what, error=InvalidGameError)
            if np.unique(p).size != size:
                raise InvalidGameError(f"symmetries[{k}][{part}] is not a permutation of the {size} {what}s")
            perms.append(p)
        sig, p = perms
        legal = graph.legal
        # a symmetry of the game, not only a pair of permutations: a state swap of X-in-a-corner with X-on-an-edge
        # (a group of two) copied a move onto an occupied cell, whose child index -1 then read the last state
        if not (np.array_equal(graph.player[sig], graph.player) and np.array_equal(graph.returns[sig], graph.returns)
                and np.array_equal(legal[sig][:, p], legal)
                and np.array_equal(np.where(legal, graph.child[sig][:, p], -1), np.where(legal, sig[graph.child], -1))):
            raise InvalidGameError(f"symmetries[{k}] is not a symmetry of the game (players, returns, legal moves and "
                                   f"children must map onto each other)")
        key = (perms[0].tobytes(), perms[1].tobytes())
        if any(key == (sg.tobytes(), ag.tobytes()) for sg, ag in elems[1:]):
            # the stabiliser average of _sweep_iteration would count it twice and lose equivariance
            raise InvalidGameError(f"symmetries[{k}] is listed twice: list each group element once")
        elems.append((perms[0], perms[1]))
    keys = {(sig.tobytes(), act.tobytes()) for sig, act in elems}
    for i, (sg, ag) in enumerate(elems):
        for j, (sh, ah) in enumerate(elems):
            if (sg[sh].tobytes(), ag[ah].tobytes()) not in keys:  # g after h: i -> g[h[i]]
                names = ["the identity" if m == 0 else f"symmetries[{m - 1}]" for m in (i, j)]
                raise InvalidGameError(f"symmetries are not a group: {names[0]} after {names[1]} is not in the set "
                                       f"(list every composition, e.g. all 8 of board_symmetries)")


def _sweep_iteration(graph: GameGraph[S], game: IndexedGame, logits: FloatArray, V: FloatArray, counts: IntArray,
                     rng: np.random.Generator, *, num_simulations: int, c_puct: float,
                     prior: Callable[[int], FloatArray], value: Callable[[int], float],
                     policy_target: Literal["visits", "action"], lr_policy: float, policy_steps: int,
                     lr_value: float | None, symmetries: Sequence[tuple[IntArray, IntArray]]) -> None:
    """One expert-iteration step with a deterministic game from every non-terminal position (in place)."""
    n, A = graph.legal.shape
    nonterminal = np.flatnonzero(~graph.terminal)
    best = np.full(n, -1, dtype=np.int64)
    tmean = np.zeros((n, A))
    images = np.stack([np.arange(n), *(sig for sig, _ in symmetries)])  # [k, n]
    rep = images.min(axis=0)
    # the group as a set: the identity once (``symmetries`` may list it, as board_symmetries does)
    ident = np.arange(n)
    group = [(ident, np.arange(A))] + [(sig, act) for sig, act in symmetries
                                       if not (np.array_equal(sig, ident) and np.array_equal(act, np.arange(A)))]
    for i in nonterminal[rep[nonterminal] == nonterminal]:
        tree = mcts(game, int(i), num_simulations=num_simulations, rng=rng, prior=prior, value=value,
                    c_puct=c_puct)
        best[i] = tree.best_action()
        t = visit_distribution(tree, temperature=1.0) if policy_target == "visits" else np.eye(A)[best[i]]
        # average over the symmetries that fix the position (its stabiliser, identity included): the
        # search breaks ties by index, so at a self-symmetric position its target need not be symmetric
        stab = [act for sig, act in group if sig[i] == i]
        for act in stab:
            tmean[i, act] += t / len(stab)
    for j in nonterminal[rep[nonterminal] != nonterminal]:
        r = int(rep[j])
        k = int(np.flatnonzero(images[:, r] == j)[0])  # a symmetry mapping the representative r to j
        act = np.arange(A) if k == 0 else symmetries[k - 1][1]
        best[j] = act[best[r]]
        tmean[j, act] = tmean[r]
    # z(s): outcome for the mover at s of the game that follows the searches' moves from s (children first).
    z = np.zeros(n)
    for i in nonterminal[::-1]:
        a = int(best[i])
        j = int(graph.child[i, a])
        cont = 0.0 if graph.terminal[j] else float(z[j])
        z[i] = graph.reward[i, a] + (cont if graph.player[j] == graph.player[i] else -cont)
    seen = ~graph.terminal
    for _step in range(policy_steps):
        p = masked_softmax(graph, logits)
        logits -= lr_policy * np.where(seen[:, None], p - tmean, 0.0)
    counts[nonterminal] += 1
    step = 1.0 / counts[nonterminal] if lr_value is None else lr_value
    V[nonterminal] -= (V[nonterminal] - z[nonterminal]) * step


def square_board_symmetries(size: int) -> list[IntArray]:
    """The 8 symmetries of a ``size x size`` board (rotations and reflections) as cell permutations ``[size^2]``.

    ``perm[c]`` is where cell ``c`` (row-major) goes. Spec: GAME-39 (symmetry augmentation of the targets).
    """
    size = validate_int(size, "size", minimum=1)
    idx = np.arange(size * size).reshape(size, size)
    out: list[IntArray] = []
    for k in range(4):
        for flip in (False, True):
            img = np.rot90(idx, k)
            img = np.fliplr(img) if flip else img
            perm = np.empty(size * size, dtype=np.int64)
            perm[img.ravel()] = np.arange(size * size)
            out.append(perm)
    return out


def board_symmetries(graph: GameGraph[tuple[int, ...]],
                     cell_perms: Sequence[IntArray]) -> list[tuple[IntArray, IntArray]]:
    """State and action permutations of a board game (state = tuple of cells, action = cell) from cell
    permutations: the image of ``s`` has ``s'[perm[c]] = s[c]`` and action ``a`` maps to ``perm[a]``.

    Spec: GAME-39. Raises ``InvalidGameError`` unless each pair is a symmetry of the game graph:
    ``child[sigma(i), perm[a]] = sigma(child[i, a])`` and players and returns are preserved. Each permutation
    holds integer cells (a float 0.9 is refused, never truncated to 0; 2.0 is read as 2), one per cell.
    """
    out: list[tuple[IntArray, IntArray]] = []
    cells = len(graph.states[0])
    for k, perm in enumerate(cell_perms):
        if np.shape(perm) != (cells,):
            raise InvalidGameError(f"cell_perms[{k}] must have shape ({cells},), got {np.shape(perm)}")
        p = validate_indices(perm, cells, name=f"cell_perms[{k}]", what="cell", error=InvalidGameError)
        sig = np.empty(graph.num_states, dtype=np.int64)
        for i, st in enumerate(graph.states):
            img = [0] * len(st)
            for c, v in enumerate(st):
                img[int(p[c])] = v
            j = graph.index.get(tuple(img))
            if j is None:
                raise InvalidGameError(f"cell permutation {p.tolist()} maps state {st} outside the game")
            sig[i] = j
        legal = graph.legal
        ok = (np.array_equal(graph.player[sig], graph.player) and np.array_equal(graph.returns[sig], graph.returns)
              and np.array_equal(legal[sig][:, p], legal)
              and np.array_equal(np.where(legal, graph.child[sig][:, p], -1), np.where(legal, sig[graph.child], -1)))
        if not ok:
            raise InvalidGameError(f"cell permutation {p.tolist()} is not a symmetry of the game")
        out.append((sig, p))
    return out


# ---------------------------------------------------------------------------------------------------------
# Test-time compute (GAME-42..GAME-45)
# ---------------------------------------------------------------------------------------------------------


def elo_difference(score: float) -> float:
    """Elo difference implied by an expected score ``s`` (win = 1, draw = 1/2): ``400 log10(s / (1 - s))``.

    Spec: GAME-44. ``score`` in (0, 1).
    """
    if not 0.0 < score < 1.0:
        raise ValueError(f"score must lie in (0, 1), got {score}")
    return 400.0 * math.log10(score / (1.0 - score))


def elo_per_doubling(budgets: FloatArray, elos: FloatArray) -> float:
    """Least-squares slope of Elo against ``log2(budget)``: Elo gained per doubling of compute.

    Spec: GAME-44 (text: +120 Elo per 2x test-time search). ``budgets [K] > 0``, ``elos [K]`` finite
    (``ReferenceError_``: a NaN or inf Elo would make the slope NaN), at least two different budgets.
    """
    b = np.asarray(budgets, dtype=np.float64)
    if not np.all(np.isfinite(b) & (b > 0)):
        raise ValueError(f"budgets must be finite and > 0 (log2 is taken), got {b!r}")
    x = np.log2(b)
    y = np.asarray(elos, dtype=np.float64)
    if x.shape != y.shape or x.shape[0] < 2:
        raise ShapeError(f"need two equal-length arrays of length >= 2, got {x.shape}, {y.shape}")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ReferenceError_(f"elos[{int(bad[0])}] = {y[bad[0]]} is not finite")
    if np.all(x == x[0]):  # polyfit only warns (RankWarning) and returns a made-up slope
        raise ReferenceError_(f"budgets are all equal ({b[0]}): the slope per doubling is undefined; "
                              f"give at least two different budgets")
    slope = float(np.polyfit(x, y, 1)[0])
    return slope


def compute_multiplier_for_elo(elo_gain: float, *, elo_per_2x: float = 120.0) -> float:
    """Compute multiplier needed for an Elo gain at a constant gain per doubling: ``2^(gain / per_2x)``.

    Spec: GAME-43, GAME-44 (E-100: 3000 -> 5200 Elo needs 2^(2200/120) ~ 3.3e5, not ~1e5). ``elo_gain``
    finite, ``elo_per_2x`` finite and > 0 (``ReferenceError_``).
    """
    elo_gain = _real(elo_gain, "elo_gain")
    if not math.isfinite(elo_gain):
        raise ReferenceError_(f"elo_gain must be finite, got {elo_gain!r}")
    elo_per_2x = _check_elo_per_2x(elo_per_2x)
    exponent = elo_gain / elo_per_2x
    try:
        return float(2.0 ** exponent)
    except OverflowError:  # 2^1024 and above
        raise ReferenceError_(f"elo_gain / elo_per_2x = {exponent} doublings: the multiplier 2^{exponent} "
                              f"exceeds the float64 range") from None


def _check_elo_per_2x(value: object) -> float:
    per = _real(value, "elo_per_2x")
    if not (math.isfinite(per) and per > 0.0):
        raise ReferenceError_(f"elo_per_2x must be a finite number > 0 (Elo gained per doubling), got {value!r}")
    return per


def elo_gain_for_multiplier(multiplier: float, *, elo_per_2x: float = 120.0) -> float:
    """Elo bought by a compute multiplier: ``elo_per_2x * log2(multiplier)`` (1e5x buys ~1993 Elo, E-100).

    Spec: GAME-43, GAME-44. ``multiplier`` finite and > 0, ``elo_per_2x`` finite and > 0.
    """
    if not (multiplier > 0.0 and math.isfinite(multiplier)):
        raise ValueError(f"multiplier must be positive and finite, got {multiplier}")
    elo_per_2x = _check_elo_per_2x(elo_per_2x)
    return elo_per_2x * math.log2(multiplier)
