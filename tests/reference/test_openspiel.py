"""The OpenSpiel adapter (GAME-18, GAME-29): negamax through the adapter equals negamax on the built-in game.

Skipped unless ``pyspiel`` (package ``open-spiel``) is installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from reference.errors import InvalidGameError
from reference.openspiel_adapter import load_openspiel_game  # imports pyspiel lazily
from reference.search import enumerate_game, negamax, tic_tac_toe

pytest.importorskip("pyspiel")


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
    perm = np.array([theirs.index[_board_key(s)] for s in ours.states])  # every position, matched by board
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
