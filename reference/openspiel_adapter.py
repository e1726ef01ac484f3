"""An OpenSpiel game seen through this project's :class:`reference.search.Game` protocol.

``pyspiel`` is imported lazily (only when an adapter is built), so the project neither needs nor imports
OpenSpiel otherwise. Spec: GAME-18 (the game interface), GAME-29 (exact negamax on any such game).

A state of the adapter is a *key*, a string that must determine the position: two histories with the same
key must have the same mover, terminality, legal actions or returns, and - after every action - children
with the same key again. The default key depends on the game (:func:`default_key`):

* :func:`position_key`, the player to move and ``str(state)`` (``"0|..x\n.o.\n..."``), for the games of
  :data:`STR_KEYED_GAMES` (and their ``misere`` / ``start_at`` wrappers), whose ``str`` is the whole position:
  transpositions (different move orders reaching the same position) are one state, as in the built-in games.
  The mover is part of the key because breakthrough's ``str`` does not say whose turn it is (keyed by ``str``
  alone, 497 of the 4027 non-terminal values of 4x3 breakthrough came out wrong; fixed 2026-12-05).
* :func:`history_key`, OpenSpiel's ``serialize()`` (the history), for every other game: always correct, but no
  transpositions are merged. ``str`` is not the position in general: in Go it does not show a pass just
  played, nor a move counter or ko history, and keyed by ``position_key`` the 2x2 game with
  ``max_game_length=5, komi=0.5`` merged positions whose children differ and came out +1 at the root for the
  exact -1 (13 of 230 histories wrong, no error; the default for every game before 2026-12-07).

Pass ``key=`` to choose another (e.g. ``position_key`` for a game you know to be Markov in ``str``). Two states
given the same key are checked to agree on what the search sees (mover, terminality, legal actions, returns);
a clash raises ``InvalidGameError`` instead of merging them. That check sees only the two states, not their
futures: a key that merges positions whose *children* differ is not detected (why the default is
per game). The adapter keeps the OpenSpiel state of every key it has produced; keys it did not produce are
rejected.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from reference.errors import InvalidGameError

__all__ = ["STR_KEYED_GAMES", "OpenSpielGame", "default_key", "history_key", "load_openspiel_game", "position_key"]

STR_KEYED_GAMES = frozenset({"breakthrough", "clobber", "connect_four", "dots_and_boxes", "hex", "mnk", "nim",
                             "tic_tac_toe"})
"""OpenSpiel games whose ``str(state)`` with the player to move is the whole position (board, pieces, piles,
owned boxes; no move counter, repetition rule or pass state): keyed by :func:`position_key` by default. Each
is checked in ``tests/reference/test_openspiel.py`` by walking every history of a small instance: histories
with one key have the same mover, terminality, legal actions or returns, and children with one key."""

_TRANSPARENT_WRAPPERS = frozenset({"misere", "start_at"})


def _mover(s: Any) -> int:
    """The player to move; at a terminal state (OpenSpiel has none) the parity of the history, the
    convention of the built-in games."""
    return len(s.history()) % 2 if s.is_terminal() else int(s.current_player())


def position_key(state: Any) -> str:
    """The default key: ``f"{mover}|{str(state)}"`` (the player to move, then OpenSpiel's ``str``).

    Spec: support for GAME-18, GAME-29 (one key per position, mover included).
    """
    return f"{_mover(state)}|{state}"


def history_key(state: Any) -> str:
    """The key of every game not in :data:`STR_KEYED_GAMES`: ``state.serialize()``, OpenSpiel's history of the
    state (always determines the position; no transpositions merged).

    Spec: support for GAME-18, GAME-29.
    """
    return str(state.serialize())


def _base_name(game: Any) -> str:
    """The short name of ``game``, looking through the ``misere`` and ``start_at`` wrappers (which change the
    returns or the root, not what ``str`` shows)."""
    name = str(game.get_type().short_name)
    params = game.get_parameters()
    while name in _TRANSPARENT_WRAPPERS and isinstance(params.get("game"), dict):
        params = params["game"]
        name = str(params.get("name", name))
    return name


def default_key(game: Any) -> Callable[[Any], str]:
    """:func:`position_key` for the games of :data:`STR_KEYED_GAMES` (through ``misere`` / ``start_at``),
    :func:`history_key` for every other game.

    Spec: support for GAME-18, GAME-29.
    """
    return position_key if _base_name(game) in STR_KEYED_GAMES else history_key


def _signature(s: Any) -> tuple[Any, ...]:
    """What a search reads of a state: mover, terminality, and the legal actions or the returns."""
    if s.is_terminal():
        return (_mover(s), True, tuple(float(v) for v in s.returns()))
    return (_mover(s), False, tuple(sorted(int(a) for a in s.legal_actions())))


class OpenSpielGame:
    """A deterministic, perfect-information, two-player zero-sum OpenSpiel game as a ``Game[str]``.

    Spec: GAME-18. Actions are OpenSpiel's distinct action ids ``0..num_distinct_actions-1``; players are
    OpenSpiel's players 0 and 1; ``returns`` are OpenSpiel's terminal returns (checked to sum to zero).
    """

    def __init__(self, game: Any, *, key: Callable[[Any], str] | None = None) -> None:
        pyspiel = importlib.import_module("pyspiel")
        gt = game.get_type()
        if game.num_players() != 2:
            raise InvalidGameError(f"{gt.short_name}: needs 2 players, has {game.num_players()}")
        if gt.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
            raise InvalidGameError(f"{gt.short_name}: needs sequential dynamics, has {gt.dynamics}")
        if gt.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC:
            raise InvalidGameError(f"{gt.short_name}: needs a deterministic game, has {gt.chance_mode}")
        if gt.information != pyspiel.GameType.Information.PERFECT_INFORMATION:
            raise InvalidGameError(f"{gt.short_name}: needs perfect information, has {gt.information}")
        if gt.utility != pyspiel.GameType.Utility.ZERO_SUM:
            raise InvalidGameError(f"{gt.short_name}: needs a zero-sum game, has {gt.utility}")
        self._game = game
        self._key = default_key(game) if key is None else key
        root = game.new_initial_state()
        self._root = self._key(root)
        self._states: dict[str, Any] = {self._root: root}

    def _get(self, state: str) -> Any:
        try:
            return self._states[state]
        except KeyError:
            raise InvalidGameError(f"unknown state key {state!r} (not produced by this adapter)") from None

    @property
    def num_actions(self) -> int:
        return int(self._game.num_distinct_actions())

    def initial_state(self) -> str:
        return self._root

    def player_to_move(self, state: str) -> int:
        s = self._get(state)
        return _mover(s)

    def legal_actions(self, state: str) -> tuple[int, ...]:
        s = self._get(state)
        return () if s.is_terminal() else tuple(sorted(int(a) for a in s.legal_actions()))

    def apply(self, state: str, action: int) -> str:
        s = self._get(state)
        if s.is_terminal() or action not in self.legal_actions(state):
            raise InvalidGameError(f"illegal action {action} in state {state!r}")
        t = s.clone()
        t.apply_action(int(action))
        k = self._key(t)
        seen = self._states.setdefault(k, t)
        if seen is not t and _signature(seen) != _signature(t):
            raise InvalidGameError(
                f"key {k!r} names two different positions (mover, terminal, legal actions / returns: "
                f"{_signature(seen)} and {_signature(t)}): the key must determine the position; pass key= "
                f"(e.g. key=lambda s: s.serialize())")
        return k

    def is_terminal(self, state: str) -> bool:
        return bool(self._get(state).is_terminal())

    def returns(self, state: str) -> tuple[float, float]:
        s = self._get(state)
        if not s.is_terminal():
            raise InvalidGameError(f"returns() of a non-terminal state {state!r}")
        r0, r1 = (float(v) for v in s.returns())
        if abs(r0 + r1) > 1e-12 * max(1.0, abs(r0), abs(r1)):
            raise InvalidGameError(f"returns {r0!r}, {r1!r} of {state!r} do not sum to zero")
        return (r0, r1)


def load_openspiel_game(name: str, *, key: Callable[[Any], str] | None = None) -> OpenSpielGame:
    """``pyspiel.load_game(name)`` wrapped as an :class:`OpenSpielGame` (imports ``pyspiel`` lazily); ``key``
    None: :func:`default_key` of the game.

    Spec: GAME-18 (an OpenSpiel game behind the search interface).
    """
    pyspiel = importlib.import_module("pyspiel")
    return OpenSpielGame(pyspiel.load_game(name), key=key)
