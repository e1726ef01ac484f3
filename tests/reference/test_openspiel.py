"""The OpenSpiel adapter (GAME-18, GAME-29): negamax through the adapter equals negamax on the built-in game.

Skipped unless ``pyspiel`` (package ``open-spiel``) is installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from reference.errors import InvalidGameError
from reference.openspiel_adapter import load_openspiel_game, position_key  # imports pyspiel lazily
from reference.search import enumerate_game, negamax, tic_tac_toe

pyspiel = pytest.importorskip("pyspiel")


def _board_key(board: tuple[int, ...]) -> str:
    """OpenSpiel's ``str`` of a tic-tac-toe position: rows of ``.``/``x``/``o`` joined by newlines."""
    cells = "".join(".xo"[v] for v in board)
    return "\n".join(cells[r * 3:(r + 1) * 3] for r in range(3))


def test_GAME_29_negamax_on_openspiel_tic_tac_toe_equals_the_builtin_game() -> None:
    ours = enumerate_game(tic_tac_toe())
    theirs = enumerate_game(load_openspiel_game("tic_tac_toe"))
    assert ours.num_states == theirs.num_states == 5478
    v_ours, v_theirs = negamax(ours), negamax(theirs)
    assert v_theirs.V[0] == v_ours.V[0] == 0.0
    # every position, matched by mover and board (the adapter's default key, position_key)
    perm = np.array([theirs.index[f"{p}|{_board_key(s)}"] for s, p in zip(ours.states, ours.player, strict=True)])
    np.testing.assert_array_equal(theirs.player[perm], ours.player)
    np.testing.assert_array_equal(theirs.terminal[perm], ours.terminal)
    np.testing.assert_array_equal(theirs.legal[perm], ours.legal)
    np.testing.assert_array_equal(theirs.returns[perm], ours.returns)
    np.testing.assert_array_equal(v_theirs.V[perm], v_ours.V)
    np.testing.assert_array_equal(v_theirs.Q[perm], v_ours.Q)  # NaN where illegal, in the same places


def test_GAME_18_openspiel_adapter_rejects_illegal_moves_and_unsupported_games() -> None:
    game = load_openspiel_game("tic_tac_toe")
    s0 = game.initial_state()
    s1 = game.apply(s0, 4)
    with pytest.raises(InvalidGameError):
        game.apply(s1, 4)
    with pytest.raises(InvalidGameError):
        game.returns(s1)
    with pytest.raises(InvalidGameError):
        game.legal_actions("not a state of this adapter")
    with pytest.raises(InvalidGameError):
        load_openspiel_game("kuhn_poker")  # chance moves and imperfect information


def _negamax_by_recursion(state: object) -> float:
    """V* of the player to move, by plain recursion on OpenSpiel clones (no keys, no transpositions)."""
    best = -np.inf
    me = state.current_player()  # type: ignore[attr-defined]
    for a in state.legal_actions():  # type: ignore[attr-defined]
        child = state.clone()  # type: ignore[attr-defined]
        child.apply_action(a)
        if child.is_terminal():
            q = float(child.returns()[me])
        else:
            v = _negamax_by_recursion(child)
            q = v if child.current_player() == me else -v
        best = max(best, q)
    return float(best)


def test_GAME_29_openspiel_positions_that_differ_only_in_the_mover_are_not_merged() -> None:
    """In breakthrough ``str(state)`` omits whose turn it is: keyed by ``str`` alone two positions with the
    same board and different movers became one state and negamax values came out wrong (the audit found
    497 of 4027 on the 4x3 board). The default key includes the mover: every value equals plain recursion
    on OpenSpiel's own states; a key that merges different positions raises instead of answering."""
    name = "breakthrough(rows=4,columns=2)"
    game = load_openspiel_game(name)
    tree = enumerate_game(game)
    sol = negamax(tree)
    checked = 0
    for i, k in enumerate(tree.states):
        st = game._states[k]
        assert k == position_key(st)
        if not st.is_terminal():
            assert sol.V[i] == _negamax_by_recursion(st), k
            checked += 1
    assert checked == int((~tree.terminal).sum()) > 100
    with pytest.raises(InvalidGameError, match="two different positions"):
        enumerate_game(load_openspiel_game(name, key=str))
