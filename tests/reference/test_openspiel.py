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


def _key_violations(name: str, key: object, limit: int = 400_000) -> tuple[int, int]:
    """Walk every history of OpenSpiel game ``name`` and count keys that do not determine the position: two
    histories with one key but a different mover, terminality, legal actions / returns, or a child key under
    some action. Returns (violations, histories walked). The property the adapter needs: then merging
    histories by key is exact (a key-bisimulation)."""
    from reference.openspiel_adapter import _signature

    game = pyspiel.load_game(name)
    seen: dict[str, tuple[object, dict[int, str]]] = {}
    bad = walked = 0
    stack = [game.new_initial_state()]
    while stack:
        s = stack.pop()
        walked += 1
        assert walked <= limit, f"{name}: more than {limit} histories"
        children: dict[int, str] = {}
        if not s.is_terminal():
            for a in s.legal_actions():
                c = s.clone()
                c.apply_action(a)
                children[int(a)] = key(c)  # type: ignore[operator]
                stack.append(c)
        entry = (_signature(s), children)
        k = key(s)  # type: ignore[operator]
        if seen.setdefault(k, entry) != entry:
            bad += 1
    return bad, walked


@pytest.mark.parametrize("name", [
    "start_at(game=tic_tac_toe(),history=4;0)", "mnk(m=3,n=2,k=2)",
    "connect_four(rows=3,columns=3,x_in_row=3)", "breakthrough(rows=4,columns=2)", "hex(board_size=2)",
    "clobber(rows=2,columns=3)", "nim(pile_sizes=1;2;3)", "misere(game=nim(pile_sizes=1;2;2))",
    "dots_and_boxes(num_rows=1,num_cols=2)", "dots_and_boxes(num_rows=1,num_cols=2,utility_margin=true)",
])
def test_GAME_29_str_keyed_games_are_markov_in_mover_and_str(name: str) -> None:
    """Every game of STR_KEYED_GAMES (default key position_key) on a small instance: no two histories with
    one key differ in what the search sees, now or after any action (every history walked)."""
    from reference.openspiel_adapter import STR_KEYED_GAMES, _base_name, default_key

    game = pyspiel.load_game(name)
    assert _base_name(game) in STR_KEYED_GAMES
    assert default_key(game) is position_key
    bad, walked = _key_violations(name, position_key)
    assert walked > 20
    assert bad == 0


def test_GAME_29_go_is_keyed_by_history_because_str_is_not_the_position() -> None:
    """Go's ``str`` does not show a pass just played (nor a move counter or ko history): keyed by mover and
    ``str``, the 2x2 game with max_game_length 5 merged histories whose children differ, silently, and negamax
    gave +1 at the root for the exact -1 (OpenSpiel's alpha-beta; the default key before 2026-12-07). The
    default key for Go is now the history (``serialize()``): the root value is OpenSpiel's."""
    from open_spiel.python.algorithms import minimax

    from reference.openspiel_adapter import default_key, history_key

    name = "go(board_size=2,max_game_length=5,komi=0.5)"
    assert default_key(pyspiel.load_game(name)) is history_key
    exact = minimax.alpha_beta_search(pyspiel.load_game(name), maximizing_player_id=0)[0]
    assert exact == -1.0
    assert negamax(enumerate_game(load_openspiel_game(name))).V[0] == exact
    # the negative control: the walk above finds position_key unsound on Go, history_key sound
    assert _key_violations(name, position_key)[0] > 0
    assert _key_violations(name, history_key)[0] == 0
    # and with position_key forced, the old wrong value comes back (the adapter's clash check cannot see it)
    assert negamax(enumerate_game(load_openspiel_game(name, key=position_key))).V[0] == 1.0


@pytest.mark.parametrize(("name", "why"), [("dark_hex(board_size=2)", "perfect information"),
                                           ("phantom_ttt", "perfect information"),
                                           ("matrix_rps", "sequential dynamics"),
                                           ("oshi_zumo", "sequential dynamics")])
def test_GAME_18_openspiel_adapter_refuses_imperfect_information_and_simultaneous_games(name: str, why: str) -> None:
    """Games without chance whose refusal rests on the information and dynamics checks alone."""
    g = pyspiel.load_game(name)
    assert g.get_type().chance_mode == pyspiel.GameType.ChanceMode.DETERMINISTIC
    with pytest.raises(InvalidGameError, match=why):
        load_openspiel_game(name)
