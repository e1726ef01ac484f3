"""Sequential two-player zero-sum games: a typed game interface, exact negamax, and MCTS.

Text: Ryu, Chapter 1, L2222-L2442 (chess and go, minimax tree search, MCTS).

Conventions (inventory open choices 1, 3, 18; errata E-86, E-88, E-92)
-----------------------------------------------------------------------
* Players are 0 (moves first) and 1. ``returns(s)`` of a terminal state is the payoff to each player and
  must sum to 0 (zero-sum).
* Values are from the perspective of the **side to move** (L2326). Rewards come only on the final move:
  ``r(s, a)`` is the mover's payoff when ``f(s, a)`` is terminal and 0 otherwise, and ``V(term) = 0``
  (absorbing convention, gamma = 1). The negamax identity is then (E-86)

      Q*(s, a) = r(s, a) - V*(f(s, a)),

  which is the text's ``Q*(s, a) = -V*(f(s, a))`` for non-terminal moves, and also for every move if terminal
  positions are valued for the side to move (:func:`negamax_side_to_move`). Games where a player moves
  twice in a row use ``+V*`` for that move (the sign flips only when the turn passes).
* ``f : S x A -> S+`` (E-86): a move may end the game.
* Ties in argmax go to the lowest action index (open choice 1).
* MCTS is a tree of parallel NumPy arrays indexed by node id, with named sentinels ``UNVISITED`` (child
  slot not expanded) and ``NO_PARENT`` / ``NO_ACTION`` (the root). Terminal nodes are never expanded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from reference.errors import InvalidGameError, InvalidPolicyError, ReferenceError_, ShapeError
from reference.mdp import _real, validate_int

__all__ = [
    "NO_ACTION",
    "NO_CHILD",
    "NO_PARENT",
    "UNVISITED",
    "Game",
    "GameGraph",
    "IndexedGame",
    "MNKGame",
    "NegamaxSolution",
    "NimGame",
    "RandomTreeGame",
    "SearchTree",
    "checked_player",
    "checked_returns",
    "enumerate_game",
    "mcts",
    "minimax_value",
    "negamax",
    "negamax_side_to_move",
    "optimal_policy",
    "play_game",
    "rollout_value",
    "tic_tac_toe",
    "uniform_prior",
    "visit_distribution",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
S = TypeVar("S", bound=Hashable)

NO_CHILD: int = -1
"""GameGraph.child entry of an illegal action."""
UNVISITED: int = -1
"""SearchTree.children entry of an edge whose child node has not been created yet."""
NO_PARENT: int = -1
"""SearchTree.parent of the root."""
NO_ACTION: int = -1
"""SearchTree.parent_action of the root."""


class Game(Protocol[S]):
    """A deterministic, perfect-information, two-player zero-sum game (GAME-01, GAME-18).

    States must be hashable (memoisation). ``f(s, a) = apply(s, a)`` is the deterministic transition of L2322.
    """

    @property
    def num_actions(self) -> int:
        """Size of the action space ``|A|`` (legal actions are a subset of ``range(num_actions)``)."""
        ...

    def initial_state(self) -> S:
        """The start position."""
        ...

    def player_to_move(self, state: S) -> int:
        """0 or 1."""
        ...

    def legal_actions(self, state: S) -> tuple[int, ...]:
        """Legal actions in increasing order; empty iff the state is terminal."""
        ...

    def apply(self, state: S, action: int) -> S:
        """``f(s, a)``; raises ``InvalidGameError`` on an illegal action."""
        ...

    def is_terminal(self, state: S) -> bool:
        """Whether the game is over."""
        ...

    def returns(self, state: S) -> tuple[float, float]:
        """Payoffs ``(to player 0, to player 1)`` of a terminal state, summing to 0."""
        ...


# ---------------------------------------------------------------------------------------------------------
# Built-in games
# ---------------------------------------------------------------------------------------------------------

Board = tuple[int, ...]


@dataclass(frozen=True)
class MNKGame:
    """The m,n,k-game: an ``m x n`` board, first to get ``k`` in a row wins; ``(3, 3, 3)`` is tic-tac-toe.

    A state is a tuple of ``m*n`` cells (0 empty, 1 player 0's stone, 2 player 1's stone), row-major; the
    action is the cell index. Returns are ``(+1, -1)``, ``(-1, +1)`` or ``(0, 0)`` (draw).
    Spec: GAME-18, GAME-26, GAME-29.
    """

    m: int = 3
    n: int = 3
    k: int = 3
    _lines: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    _winner: dict[Board, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("m", "n", "k"):  # integers >= 1 (2.0 or 2.5 is refused, not used as a board size)
            object.__setattr__(self, name, validate_int(getattr(self, name), name, minimum=1, error=InvalidGameError))
        if self.k > max(self.m, self.n):
            raise InvalidGameError(f"MNKGame needs m, n >= 1 and 1 <= k <= max(m, n); got {self.m, self.n, self.k}")
        lines: list[tuple[int, ...]] = []
        for r, c in product(range(self.m), range(self.n)):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + i * dr, c + i * dc) for i in range(self.k)]
                if all(0 <= rr < self.m and 0 <= cc < self.n for rr, cc in cells):
                    lines.append(tuple(rr * self.n + cc for rr, cc in cells))
        object.__setattr__(self, "_lines", tuple(lines))
        object.__setattr__(self, "_winner", {})

    @property
    def num_actions(self) -> int:
        return self.m * self.n

    def initial_state(self) -> Board:
        return (0,) * (self.m * self.n)

    def player_to_move(self, state: Board) -> int:
        return sum(1 for v in state if v != 0) % 2

    def winner(self, state: Board) -> int:
        """0 or 1 if that player has ``k`` in a row, else -1."""
        w = self._winner.get(state)
        if w is None:
            w = -1
            for line in self._lines:
                v = state[line[0]]
                if v != 0 and all(state[i] == v for i in line):
                    w = v - 1
                    break
            self._winner[state] = w
        return w

    def is_terminal(self, state: Board) -> bool:
        return self.winner(state) >= 0 or all(v != 0 for v in state)

    def legal_actions(self, state: Board) -> tuple[int, ...]:
        if self.is_terminal(state):
            return ()
        return tuple(i for i, v in enumerate(state) if v == 0)

    def apply(self, state: Board, action: int) -> Board:
        if not (0 <= action < len(state)) or state[action] != 0 or self.is_terminal(state):
            raise InvalidGameError(f"illegal action {action} in state {state}")
        cells = list(state)
        cells[action] = self.player_to_move(state) + 1
        return tuple(cells)

    def returns(self, state: Board) -> tuple[float, float]:
        if not self.is_terminal(state):
            raise InvalidGameError(f"returns() of a non-terminal state {state}")
        w = self.winner(state)
        return (0.0, 0.0) if w < 0 else ((1.0, -1.0) if w == 0 else (-1.0, 1.0))


def tic_tac_toe() -> MNKGame:
    """Tic-tac-toe, the (3, 3, 3)-game: 5478 reachable states, value 0 (draw). Spec: GAME-26, GAME-29."""
    return MNKGame(3, 3, 3)


NimState = tuple[int, ...]


@dataclass(frozen=True)
class NimGame:
    """Nim, normal play: take 1..``max_take`` objects from one pile; whoever takes the last object wins.

    A state is ``(player_to_move, pile_0, ..., pile_{P-1})``; action ``i * max_take + (j - 1)`` takes ``j``
    from pile ``i``. Spec: GAME-26 (the E-86 check), GAME-23 (exact enumeration).
    """

    piles: tuple[int, ...] = (1, 2, 3)
    max_take: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "piles", tuple(validate_int(p, f"piles[{i}]", error=InvalidGameError)
                                                for i, p in enumerate(self.piles)))
        object.__setattr__(self, "max_take", validate_int(self.max_take, "max_take", minimum=1, error=InvalidGameError))
        if not self.piles:
            raise InvalidGameError("NimGame needs at least one pile")

    @property
    def num_actions(self) -> int:
        return len(self.piles) * self.max_take

    def initial_state(self) -> NimState:
        return (0, *self.piles)

    def player_to_move(self, state: NimState) -> int:
        return state[0]

    def is_terminal(self, state: NimState) -> bool:
        return all(p == 0 for p in state[1:])

    def legal_actions(self, state: NimState) -> tuple[int, ...]:
        return tuple(i * self.max_take + (j - 1) for i, p in enumerate(state[1:])
                     for j in range(1, min(p, self.max_take) + 1))

    def apply(self, state: NimState, action: int) -> NimState:
        i, j = divmod(action, self.max_take)
        j += 1
        if not (0 <= i < len(self.piles)) or state[1 + i] < j:
            raise InvalidGameError(f"illegal action {action} (take {j} from pile {i}) in state {state}")
        piles = list(state[1:])
        piles[i] -= j
        return (1 - state[0], *piles)

    def returns(self, state: NimState) -> tuple[float, float]:
        if not self.is_terminal(state):
            raise InvalidGameError(f"returns() of a non-terminal state {state}")
        last_mover = 1 - state[0]
        return (1.0, -1.0) if last_mover == 0 else (-1.0, 1.0)


Path = tuple[int, ...]


@dataclass(frozen=True)
class RandomTreeGame:
    """A uniform game tree of given depth and branching with i.i.d. uniform(-1, 1) payoffs to player 0 at the
    leaves; players alternate. A state is the tuple of actions played so far. Spec: GAME-29, GAME-31..34.
    """

    depth: int
    branching: int
    leaf_values: FloatArray

    def __post_init__(self) -> None:
        for name in ("depth", "branching"):
            object.__setattr__(self, name, validate_int(getattr(self, name), name, minimum=1, error=InvalidGameError))
        lv = np.asarray(self.leaf_values, dtype=np.float64)
        if lv.shape != (self.branching**self.depth,):
            raise ShapeError(f"leaf_values must have shape ({self.branching ** self.depth},), got {lv.shape}")
        if not np.all(np.isfinite(lv)):
            bad = int(np.flatnonzero(~np.isfinite(lv))[0])
            raise InvalidGameError(f"leaf_values[{bad}] = {lv[bad]} is not finite: payoffs must be finite")
        lv = lv.copy()
        lv.setflags(write=False)
        object.__setattr__(self, "leaf_values", lv)

    @staticmethod
    def sample(rng: np.random.Generator, *, depth: int, branching: int) -> RandomTreeGame:
        """A random tree with uniform(-1, 1) leaf payoffs drawn from ``rng``."""
        depth = validate_int(depth, "depth", minimum=1, error=InvalidGameError)
        branching = validate_int(branching, "branching", minimum=1, error=InvalidGameError)
        return RandomTreeGame(depth, branching, rng.uniform(-1.0, 1.0, size=branching**depth))

    @property
    def num_actions(self) -> int:
        return self.branching

    def initial_state(self) -> Path:
        return ()

    def player_to_move(self, state: Path) -> int:
        return len(state) % 2

    def is_terminal(self, state: Path) -> bool:
        return len(state) == self.depth

    def legal_actions(self, state: Path) -> tuple[int, ...]:
        return () if len(state) == self.depth else tuple(range(self.branching))

    def apply(self, state: Path, action: int) -> Path:
        if len(state) >= self.depth or not 0 <= action < self.branching:
            raise InvalidGameError(f"illegal action {action} in state {state}")
        return (*state, action)

    def returns(self, state: Path) -> tuple[float, float]:
        if len(state) != self.depth:
            raise InvalidGameError(f"returns() of a non-terminal state {state}")
        idx = 0
        for a in state:
            idx = idx * self.branching + a
        v = float(self.leaf_values[idx])
        return (v, -v)


# ---------------------------------------------------------------------------------------------------------
# Exact solution by enumeration (GAME-26, GAME-29)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GameGraph(Generic[S]):
    """Every reachable state of a game, indexed ``0..n-1`` in a topological order (parents first).

    ``player [n]``, ``terminal [n]``, ``legal [n, A]``, ``child [n, A]`` (``NO_CHILD`` if illegal),
    ``reward [n, A]`` = ``r(s, a)`` for the mover (non-zero only for moves that end the game),
    ``returns [n, 2]`` (zero rows for non-terminal states). ``index`` maps a state to its row.
    Spec: GAME-26, GAME-29 (``f : S x A -> S+`` as the ``child`` table).
    """

    states: tuple[S, ...]
    index: Mapping[S, int]
    player: IntArray
    terminal: BoolArray
    legal: BoolArray
    child: IntArray
    reward: FloatArray
    returns: FloatArray

    @property
    def num_states(self) -> int:
        return len(self.states)

    @property
    def num_actions(self) -> int:
        return int(self.legal.shape[1])


def _ro(x: NDArray[np.generic]) -> NDArray[np.generic]:
    x.setflags(write=False)
    return x


def checked_returns(game: Game[S], state: S) -> tuple[float, float]:
    """``game.returns(state)`` as two floats, checked: finite and zero-sum (r0 + r1 = 0 exactly), else
    ``InvalidGameError``. Every function here reads terminal payoffs through it: a NaN payoff would
    otherwise win or lose every argmax of a search silently, and a non-zero-sum one breaks negamax.
    Spec: GAME-01 (zero-sum payoffs), GAME-18 (the game interface)."""
    r0, r1 = (float(x) for x in game.returns(state))
    if not (math.isfinite(r0) and math.isfinite(r1)) or r0 + r1 != 0.0:
        raise InvalidGameError(f"terminal state {state} has returns ({r0}, {r1}): payoffs must be finite and "
                               f"zero-sum")
    return r0, r1


def checked_player(game: Game[S], state: S) -> int:
    """``game.player_to_move(state)`` checked to be 0 or 1 (``InvalidGameError`` otherwise). Spec: GAME-18."""
    p = game.player_to_move(state)
    if p not in (0, 1):
        raise InvalidGameError(f"player_to_move({state}) = {p!r}: a two-player game has players 0 and 1")
    return int(p)


def checked_legal(game: Game[S], state: S) -> list[int]:
    """``game.legal_actions(state)`` checked to be distinct integers in ``range(num_actions)``, at least one
    (``InvalidGameError`` otherwise: a -1 was wrapped by numpy indexing to action A - 1, which the game never
    offered). Spec: GAME-18."""
    A = game.num_actions
    acts = list(game.legal_actions(state))
    bad = [a for a in acts if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < A]
    if bad or not acts or len(set(acts)) != len(acts):
        raise InvalidGameError(f"legal_actions({state}) = {acts!r}: need distinct integers in range({A}), at least "
                               f"one at a non-terminal state")
    return [int(a) for a in acts]


def enumerate_game(game: Game[S], root: S | None = None) -> GameGraph[S]:
    """Enumerate every state reachable from ``root`` (default: the initial state), memoised by state.

    Spec: GAME-29 (the full game tree collapsed to its DAG of positions). Raises ``InvalidGameError`` for a
    non-zero-sum terminal, a cycle (the game must be finite), or an action outside ``range(num_actions)``.
    """
    A = game.num_actions
    start = game.initial_state() if root is None else root
    # Iterative DFS post-order gives a reverse topological order and detects cycles.
    colour: dict[S, int] = {start: 1}  # 1 = on stack, 2 = done
    post: list[S] = []
    acts_of: dict[S, list[int]] = {}  # each non-terminal state's legal actions, checked once

    def moves(st: S) -> list[S]:  # the positions after each legal action; none after a terminal
        if game.is_terminal(st):
            return []
        acts_of[st] = checked_legal(game, st)
        return [game.apply(st, a) for a in acts_of[st]]

    stack: list[tuple[S, list[S]]] = [(start, moves(start))]
    while stack:
        s, kids = stack[-1]
        if kids:
            c = kids.pop()
            state = colour.get(c, 0)
            if state == 1:
                raise InvalidGameError(
                    f"the game has a cycle through state {c} (if the game is finite - every OpenSpiel game is - its "
                    f"state keys merge positions that differ in a move counter or repetition history: key the "
                    f"states by history, e.g. load_openspiel_game(name, key=history_key))")
            if state == 0:
                colour[c] = 1
                stack.append((c, moves(c)))
        else:
            colour[s] = 2
            post.append(s)
            stack.pop()
    states = tuple(reversed(post))
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    player = np.empty(n, dtype=np.int64)
    terminal = np.zeros(n, dtype=np.bool_)
    legal = np.zeros((n, A), dtype=np.bool_)
    child = np.full((n, A), NO_CHILD, dtype=np.int64)
    reward = np.zeros((n, A))
    rets = np.zeros((n, 2))
    for i, s in enumerate(states):
        player[i] = checked_player(game, s)
        if game.is_terminal(s):
            terminal[i] = True
            rets[i] = checked_returns(game, s)
    for i, s in enumerate(states):
        if terminal[i]:
            continue
        for a in acts_of[s]:  # checked in the DFS (a bool, read as a mask, or a float passed unchecked before)
            j = index[game.apply(s, a)]
            legal[i, a] = True
            child[i, a] = j
            if terminal[j]:
                reward[i, a] = rets[j, player[i]]
        if not legal[i].any():
            raise InvalidGameError(f"non-terminal state {s} has no legal action")
    return GameGraph(states=states, index=index, player=_ro(player), terminal=_ro(terminal),  # type: ignore[arg-type]
                     legal=_ro(legal), child=_ro(child), reward=_ro(reward), returns=_ro(rets))  # type: ignore[arg-type]


@dataclass(frozen=True)
class IndexedGame:
    """A :class:`GameGraph` seen as a :class:`Game` whose states are the row indices ``0..n-1``.

    Transitions, legality and returns are table look-ups, so search over it is cheap and tabular models
    index their tables by the state itself. Spec: GAME-18 (the game interface), GAME-39.
    """

    graph: GameGraph[Any]
    _legal: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        acts = tuple(tuple(int(a) for a in np.flatnonzero(row)) for row in self.graph.legal)
        object.__setattr__(self, "_legal", acts)

    @property
    def num_actions(self) -> int:
        return self.graph.num_actions

    def initial_state(self) -> int:
        return 0

    def player_to_move(self, state: int) -> int:
        return int(self.graph.player[state])

    def legal_actions(self, state: int) -> tuple[int, ...]:
        return self._legal[state]

    def apply(self, state: int, action: int) -> int:
        j = int(self.graph.child[state, action]) if 0 <= action < self.graph.num_actions else NO_CHILD
        if j == NO_CHILD:
            raise InvalidGameError(f"illegal action {action} in state {state}")
        return j

    def is_terminal(self, state: int) -> bool:
        return bool(self.graph.terminal[state])

    def returns(self, state: int) -> tuple[float, float]:
        if not self.graph.terminal[state]:
            raise InvalidGameError(f"returns() of a non-terminal state {state}")
        return (float(self.graph.returns[state, 0]), float(self.graph.returns[state, 1]))


@dataclass(frozen=True)
class NegamaxSolution:
    """Exact ``V* [n]`` and ``Q* [n, A]`` (NaN for illegal actions and terminal rows), side-to-move values."""

    V: FloatArray
    Q: FloatArray


def _sign(graph: GameGraph[S]) -> FloatArray:
    """+1 where the child's mover equals the parent's mover, -1 where the turn passes (0 if illegal)."""
    kid_player = graph.player[np.where(graph.legal, graph.child, 0)]
    out: FloatArray = np.where(graph.legal, np.where(kid_player == graph.player[:, None], 1.0, -1.0), 0.0)
    return out


def negamax(graph: GameGraph[S]) -> NegamaxSolution:
    """Exact negamax by backward induction over the enumerated positions (memoised dynamic programming).

    V*(s) = max_a Q*(s, a),   Q*(s, a) = r(s, a) - V*(f(s, a)),   V*(term) = 0   (E-86; L2322-L2326, L2360)

    Spec: GAME-26, GAME-29. ``graph``: n states, A actions -> ``V [n]``, ``Q [n, A]`` (NaN where illegal).
    Erratum E-86: the text's ``-V*(f(s, a))`` is this identity for non-terminal moves.
    """
    n, A = graph.num_states, graph.num_actions
    V = np.zeros(n)
    Q = np.full((n, A), np.nan)
    sign = _sign(graph)
    for i in range(n - 1, -1, -1):  # children have larger indices
        if graph.terminal[i]:
            continue
        acts = np.flatnonzero(graph.legal[i])
        kids = graph.child[i, acts]
        q = graph.reward[i, acts] + sign[i, acts] * np.where(graph.terminal[kids], 0.0, V[kids])
        Q[i, acts] = q
        V[i] = q.max()
    return NegamaxSolution(V=_ro(V), Q=_ro(Q))  # type: ignore[arg-type]


def negamax_side_to_move(graph: GameGraph[S]) -> FloatArray:
    """Negamax with terminal positions valued for the side to move (``V = -1`` after a loss).

    V(term) = returns(term)[player to move at term],  V(s) = max_a -V(f(s, a))   (L2324, text's identity)

    Spec: GAME-26 (E-86: equals :func:`negamax` on non-terminal states of alternating games). Needs strict
    alternation (raises ``InvalidGameError`` otherwise). Returns ``V [n]`` including terminal rows.
    """
    if np.any(_sign(graph) > 0.0):
        raise InvalidGameError("negamax_side_to_move needs strictly alternating moves")
    n = graph.num_states
    V = np.zeros(n)
    for i in range(n - 1, -1, -1):
        if graph.terminal[i]:
            V[i] = graph.returns[i, graph.player[i]]
        else:
            V[i] = float(np.max(-V[graph.child[i, graph.legal[i]]]))
    return _ro(V)  # type: ignore[return-value]


def minimax_value(game: Game[S], state: S, memo: dict[S, float] | None = None) -> float:
    """Plain minimax from player 0's perspective (player 0 maximises, player 1 minimises), memoised.

    Spec: GAME-29 (backward induction from terminal outcomes, L2358-L2362); an independent oracle for
    :func:`negamax`: ``V*(s) = minimax(s)`` if player 0 moves at ``s``, ``-minimax(s)`` otherwise.
    """
    memo = {} if memo is None else memo
    if state in memo:
        return memo[state]
    if game.is_terminal(state):
        v = checked_returns(game, state)[0]
    else:
        vals = [minimax_value(game, game.apply(state, a), memo) for a in checked_legal(game, state)]
        v = max(vals) if checked_player(game, state) == 0 else min(vals)
    memo[state] = v
    return v


def optimal_policy(graph: GameGraph[S], solution: NegamaxSolution, *, atol: float = 0.0) -> FloatArray:
    """The exact expert: uniform over the optimal actions ``argmax_a Q*(s, a) = argmin_a V*(f(s, a))``.

    Spec: GAME-29 (L2360), GAME-21 (the expert of step 1). Returns ``[n, A]``; terminal rows are zero.
    Ties: actions within ``atol`` of the maximum (exact ties for win/draw/loss games); ``atol`` is a finite
    number >= 0 (``ReferenceError_``: a negative or NaN one left no action optimal, an all-zero row).
    """
    tol = _real(atol, "atol")
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ReferenceError_(f"atol must be a finite number >= 0 (the tie window of Q*), got {atol!r}")
    Q = np.where(graph.legal, solution.Q, -np.inf)
    best = Q.max(axis=1, keepdims=True)
    opt = graph.legal & (Q >= best - atol)
    counts = opt.sum(axis=1, keepdims=True)
    out: FloatArray = np.where(counts > 0, opt / np.maximum(counts, 1), 0.0)
    return out


# ---------------------------------------------------------------------------------------------------------
# Playing and rollouts
# ---------------------------------------------------------------------------------------------------------

PolicyFn = Callable[[S], FloatArray]
"""A policy: state -> probabilities ``[A]`` (zero on illegal actions)."""


def uniform_prior(game: Game[S]) -> Callable[[S], FloatArray]:
    """The uniform policy over legal actions (the deliberately weak prior of GAME-42..45)."""
    A = game.num_actions

    def prior(state: S) -> FloatArray:
        p = np.zeros(A)
        acts = checked_legal(game, state)
        p[acts] = 1.0 / len(acts)
        return p

    return prior


def _sample(probs: FloatArray, legal: Iterable[int], rng: np.random.Generator, where: object,
            num_actions: int | None = None) -> int:
    acts = list(legal)
    probs = np.asarray(probs, dtype=np.float64)
    if num_actions is not None and probs.shape != (num_actions,):  # a length-12 policy for 9 actions was read
        raise ShapeError(f"policy at {where} has shape {probs.shape}, expected ({num_actions},)")
    p = probs[acts]
    total = float(p.sum())
    if not (total > 0.0 and math.isfinite(total) and np.all(p >= 0.0)):
        raise InvalidPolicyError(f"policy at {where} gives legal actions {acts} probabilities {p.tolist()}")
    return acts[int(rng.choice(len(acts), p=p / total))]


def rollout_value(game: Game[S], state: S, policy: Callable[[S], FloatArray], rng: np.random.Generator,
                  *, num_rollouts: int = 1) -> float:
    """Mean outcome of ``N`` rollouts with ``policy`` for both sides, for the player to move at ``state``.

    V*(s_L) ~ E_{pi_fast vs pi_fast}[z] ~ (1/N) sum_i z_i   (L2410)

    Spec: GAME-33 (z from the side to move at the leaf, E-85). Returns a scalar in [min payoff, max payoff].
    """
    num_rollouts = validate_int(num_rollouts, "num_rollouts", minimum=1)  # 1.5 is refused, not floored
    if game.is_terminal(state):
        return 0.0  # absorbing convention: no reward after the game is over
    me = checked_player(game, state)
    total = 0.0
    for _ in range(num_rollouts):
        s = state
        while not game.is_terminal(s):
            s = game.apply(s, _sample(policy(s), checked_legal(game, s), rng, s, game.num_actions))
        total += checked_returns(game, s)[me]
    return total / num_rollouts


def play_game(game: Game[S], players: tuple[Callable[[S], int], Callable[[S], int]],
              start: S | None = None) -> tuple[float, float]:
    """Play one game with ``players[i]`` choosing for player ``i``; returns the terminal payoffs.

    Spec: GAME-22, GAME-42 (evaluation matches).
    """
    s = game.initial_state() if start is None else start
    while not game.is_terminal(s):
        s = game.apply(s, players[checked_player(game, s)](s))
    return checked_returns(game, s)


# ---------------------------------------------------------------------------------------------------------
# MCTS as parallel arrays (GAME-31..GAME-34)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchTree(Generic[S]):
    """An MCTS tree of ``n`` nodes over ``A`` actions, stored as parallel arrays (node 0 is the root).

    ``parent [n]`` (``NO_PARENT`` at the root), ``parent_action [n]`` (``NO_ACTION`` at the root),
    ``children [n, A]`` (``UNVISITED`` until created), ``N [n, A]`` edge visit counts, ``W [n, A]`` total
    backed-up value of the edge for the mover at the node, ``P [n, A]`` priors, ``reward [n, A]`` ``r(s, a)``,
    ``player [n]``, ``terminal [n]``, ``leaf_value [n]`` (evaluation at creation; 0 for terminals).
    Spec: GAME-31..GAME-34.
    """

    states: tuple[S, ...]
    parent: IntArray
    parent_action: IntArray
    children: IntArray
    N: IntArray
    W: FloatArray
    P: FloatArray
    reward: FloatArray
    player: IntArray
    terminal: BoolArray
    leaf_value: FloatArray
    legal: BoolArray

    @property
    def num_nodes(self) -> int:
        return len(self.states)

    def q(self, node: int = 0, *, fpu: float = 0.0) -> FloatArray:
        """``Q(s, a) = W(s, a) / N(s, a)``; ``fpu`` (first-play value) where ``N = 0``; NaN if illegal."""
        n = self.N[node]
        out: FloatArray = np.where(self.legal[node], np.where(n > 0, self.W[node] / np.maximum(n, 1), fpu), np.nan)
        return out

    @property
    def root_value(self) -> float:
        """Visit-weighted mean of the root's backed-up values, ``sum_a W(root, a) / sum_a N(root, a)``."""
        total = int(self.N[0].sum())
        return float(self.W[0].sum() / total) if total > 0 else float(self.leaf_value[0])

    def best_action(self) -> int:
        """The most-visited root action (E-92), ties to the lowest index. ``InvalidPolicyError`` when no root
        edge has a visit (``num_simulations = 0`` or a terminal root): the lowest legal index would be a move
        no search chose (as in :func:`visit_distribution`)."""
        if int(self.N[0].sum()) == 0:
            raise InvalidPolicyError("best_action of a tree with no root visits (num_simulations = 0 or a "
                                     "terminal root): no move was searched")
        counts = np.where(self.legal[0], self.N[0], -1)
        return int(np.argmax(counts))


def visit_distribution(tree: SearchTree[S], *, temperature: float = 1.0) -> FloatArray:
    """The root visit distribution ``pi(a | s) ∝ N(s, a)^(1/tau)``; ``tau = 0`` is the most-visited move.

    Spec: GAME-34, GAME-39 (E-96: AlphaGo Zero's policy target). Returns ``[A]``.
    """
    n = tree.N[0].astype(np.float64)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise ValueError(f"temperature must be a real number, got {temperature!r}")  # True ran as tau = 1
    if not (temperature >= 0.0 and math.isfinite(temperature)):
        # tau = inf would give N^0 = 1 on every action, unvisited and illegal ones included
        raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
    if n.sum() == 0:  # at every temperature: a one-hot on action 0 at tau = 0 would be a made-up move
        raise InvalidPolicyError("visit_distribution of a tree with no root visits")
    if temperature == 0.0:
        onehot: FloatArray = np.zeros(n.shape[0])
        onehot[tree.best_action()] = 1.0
        return onehot
    w = (n / n.max()) ** (1.0 / temperature)
    out: FloatArray = w / w.sum()
    return out


Rule = Literal["puct", "text"]
ParentCount = Literal["edges", "node"]


def mcts(game: Game[S], root: S, *, num_simulations: int, rng: np.random.Generator,
         prior: Callable[[S], FloatArray] | None = None, value: Callable[[S], float] | None = None,
         rollout_policy: Callable[[S], FloatArray] | None = None, rule: Rule = "puct", c_puct: float = 5.0,
         rho: float = 5.0, lam: float = 0.5, num_rollouts: int = 1, fpu: float = 0.0,
         dirichlet_alpha: float | None = None, dirichlet_epsilon: float = 0.25,
         parent_count: ParentCount = "edges") -> SearchTree[S]:
    """Monte Carlo tree search from ``root`` with ``num_simulations`` simulations.

    selection ("text"):  a_t = argmax_a { Q(s_t, a) + rho pi(a|s_t) / (1 + N(s_t, a)) }          (L2394)
    selection ("puct"):  a_t = argmax_a { Q(s_t, a) + c_puct P(s_t, a) sqrt(sum_b N(s_t, b)) / (1 + N(s_t, a)) }
    leaf value:          (1 - lam) V_phi(s_L) + lam (1/N) sum_i z_i   (lam = 0.5: the 50/50 mix, L2412)
    backup (negamax):    g <- r(s, a) - g along the path; W(s, a) += g, N(s, a) += 1   (E-86)

    Spec: GAME-31 (one node per simulation until the budget is spent), GAME-32 (selection; E-88: PUCT
    needs the parent-count factor, the default here with ``c_puct = 5``, open choice 18), GAME-33 (leaf
    evaluation by ``value``, by ``rollout_policy`` rollouts, or their ``lam`` mix; with neither, non-terminal
    leaves are worth ``fpu``-like 0 and only terminal outcomes inform the search), GAME-34 (backup).
    ``Q(s, a) = W/N`` is the mean backed-up value (E-88), ``fpu`` for unvisited edges (open choice 18).
    Terminal nodes are never expanded. Ties in argmax go to the lowest index. PUCT follows E-88's formula
    literally by default (``parent_count="edges"``): sum_b N(s, b) is 0 at a node's first selection, so
    the prior does not steer that first choice (the lowest-index action with the best Q / fpu wins).
    ``parent_count="node"`` counts the expansion as a visit of the node, sqrt(1 + sum_b N(s, b)), at every
    node (N(s) of a node that has been expanded and backed up once is 1), so the prior steers from the first
    selection on, as mctx does (its root starts with one visit). AlphaZero's published pseudocode uses the
    "node" count at inner nodes and the "edges" count at the root (it evaluates the root without backing
    that evaluation up, so the root's visit count is the number of simulations); neither option is that mix.
    The text's rule (``rule="text"``) uses the prior from
    the start. Root Dirichlet noise ``(1 - eps) P + eps Dir(alpha)`` if ``dirichlet_alpha`` is given: a finite
    number > 0 (``ReferenceError_``: NaN or inf made the root prior NaN, 0 made the noise all zeros), with
    ``dirichlet_epsilon`` in [0, 1].
    Returns the tree (``num_simulations + 1`` nodes at most). A prior (shape [A]) whose entries on the legal
    actions are negative or non-finite, or all zero, raises ``InvalidPolicyError``; its entries on illegal
    actions are masked out and never read (the same for ``rollout_policy``); legal actions outside
    ``range(num_actions)`` or repeated raise ``InvalidGameError``; a non-finite leaf value raises ``InvalidGameError``
    (a NaN would otherwise win every argmax and silently absorb the search).
    """
    num_simulations = validate_int(num_simulations, "num_simulations")  # a ReferenceError_ (ValueError)
    num_rollouts = validate_int(num_rollouts, "num_rollouts", minimum=1)
    if rule not in ("puct", "text"):
        raise ValueError(f"rule must be 'puct' or 'text', got {rule!r}")
    if parent_count not in ("edges", "node"):
        raise ValueError(f"parent_count must be 'edges' or 'node', got {parent_count!r}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    if not (math.isfinite(c_puct) and c_puct >= 0.0):
        raise ValueError(f"c_puct must be a finite number >= 0, got {c_puct!r}")
    if not (math.isfinite(rho) and rho > 0.0):
        raise ValueError(f"rho must be a finite number > 0 (the text's rule), got {rho!r}")
    if not 0.0 <= _real(dirichlet_epsilon, "dirichlet_epsilon") <= 1.0:
        raise ValueError(f"dirichlet_epsilon must lie in [0, 1], got {dirichlet_epsilon!r}")
    if dirichlet_alpha is not None:
        alpha_d = _real(dirichlet_alpha, "dirichlet_alpha")
        if not (math.isfinite(alpha_d) and alpha_d > 0.0):
            raise ReferenceError_(f"dirichlet_alpha must be a finite number > 0 (or None for no root noise), "
                                  f"got {dirichlet_alpha!r}")
    if not math.isfinite(fpu):
        raise ValueError(f"fpu must be finite (an unvisited edge's Q), got {fpu!r}")
    if game.is_terminal(root):
        raise InvalidGameError(f"mcts from a terminal state {root}")
    A = game.num_actions
    cap = num_simulations + 1
    parent = np.full(cap, NO_PARENT, dtype=np.int64)
    parent_action = np.full(cap, NO_ACTION, dtype=np.int64)
    children = np.full((cap, A), UNVISITED, dtype=np.int64)
    N = np.zeros((cap, A), dtype=np.int64)
    W = np.zeros((cap, A))
    P = np.zeros((cap, A))
    R = np.zeros((cap, A))
    player = np.zeros(cap, dtype=np.int64)
    terminal = np.zeros(cap, dtype=np.bool_)
    leaf_value = np.zeros(cap)
    legal = np.zeros((cap, A), dtype=np.bool_)
    Qsel = np.full((cap, A), -np.inf)
    visits = np.zeros(cap, dtype=np.int64)
    states: list[S] = []
    coef = c_puct if rule == "puct" else rho
    use_sqrt = rule == "puct"
    extra = 1 if parent_count == "node" else 0  # the expansion as a visit of the node (mctx)

    def evaluate(s: S) -> float:
        parts: list[tuple[float, float]] = []
        if value is not None:
            parts.append((1.0 - lam if rollout_policy is not None else 1.0, float(value(s))))
        if rollout_policy is not None:
            z = rollout_value(game, s, rollout_policy, rng, num_rollouts=num_rollouts)
            parts.append((lam if value is not None else 1.0, z))
        return sum(w * v for w, v in parts)

    def new_node(s: S, par: int, act: int) -> int:
        i = len(states)
        states.append(s)
        parent[i], parent_action[i] = par, act
        player[i] = checked_player(game, s)
        if game.is_terminal(s):
            terminal[i] = True
            return i
        acts = checked_legal(game, s)
        legal[i, acts] = True
        Qsel[i, acts] = fpu
        p = np.full(A, 1.0 / len(acts)) if prior is None else np.asarray(prior(s), dtype=np.float64)
        if p.shape != (A,):
            raise ShapeError(f"prior at {s} has shape {p.shape}, expected ({A},)")
        pl = np.where(legal[i], p, 0.0)
        tot = float(pl.sum())
        if not (tot > 0.0 and math.isfinite(tot) and np.all(pl >= 0.0)):
            raise InvalidPolicyError(f"prior at {s} is not a distribution over legal actions {acts}: {p.tolist()}")
        P[i] = pl / tot
        v = evaluate(s)
        if not math.isfinite(v):
            raise InvalidGameError(f"leaf evaluation at {s} is {v}: value and rollout estimates must be finite")
        leaf_value[i] = v
        return i

    new_node(root, NO_PARENT, NO_ACTION)
    if dirichlet_alpha is not None:
        acts = np.flatnonzero(legal[0])
        noise = rng.dirichlet(np.full(len(acts), dirichlet_alpha))
        P[0, acts] = (1.0 - dirichlet_epsilon) * P[0, acts] + dirichlet_epsilon * noise
    path_nodes: list[int] = []
    path_acts: list[int] = []
    for _ in range(num_simulations):
        node = 0
        path_nodes.clear()
        path_acts.clear()
        while True:
            if terminal[node]:
                g = 0.0
                break
            # Qsel holds W/N for visited edges, fpu for unvisited legal edges and -inf for illegal ones.
            bonus = P[node] / (1.0 + N[node])
            scale = coef * math.sqrt(visits[node] + extra) if use_sqrt else coef
            # the exploration term only where the prior is positive: a huge c_puct made scale inf, and inf * 0 is
            # NaN, which np.argmax picks first (an occupied cell was chosen)
            explore = np.zeros_like(bonus)
            pos = bonus > 0.0
            explore[pos] = scale * bonus[pos]
            a = int(np.argmax(Qsel[node] + explore))
            path_nodes.append(node)
            path_acts.append(a)
            kid = int(children[node, a])
            if kid == UNVISITED:
                s2 = game.apply(states[node], a)
                kid = new_node(s2, node, a)
                children[node, a] = kid
                if terminal[kid]:
                    R[node, a] = checked_returns(game, s2)[player[node]]
                g = float(leaf_value[kid])
                node = kid
                break
            node = kid
        # negamax backup: g is the value for the mover at `node`
        for par, a in zip(reversed(path_nodes), reversed(path_acts), strict=True):
            g = R[par, a] + (g if player[children[par, a]] == player[par] else -g)
            W[par, a] += g
            N[par, a] += 1
            visits[par] += 1
            Qsel[par, a] = W[par, a] / N[par, a]
            node = par
    n = len(states)
    return SearchTree(states=tuple(states), parent=_ro(parent[:n].copy()),  # type: ignore[arg-type]
                      parent_action=_ro(parent_action[:n].copy()), children=_ro(children[:n].copy()),  # type: ignore[arg-type]
                      N=_ro(N[:n].copy()), W=_ro(W[:n].copy()), P=_ro(P[:n].copy()),  # type: ignore[arg-type]
                      reward=_ro(R[:n].copy()), player=_ro(player[:n].copy()),  # type: ignore[arg-type]
                      terminal=_ro(terminal[:n].copy()), leaf_value=_ro(leaf_value[:n].copy()),  # type: ignore[arg-type]
                      legal=_ro(legal[:n].copy()))  # type: ignore[arg-type]
