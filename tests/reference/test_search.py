"""Tests of reference.search and reference.alphago (GAME-18..GAME-45): exact on games small enough to solve.

Statistical checks use fixed seeds and the acceptance rule |mu_hat - mu| <= 4 sigma_hat / sqrt(n) (open
choice 22) or a Hoeffding bound with a union bound, stated at each use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from reference.alphago import (
    behaviour_cloning,
    board_symmetries,
    compute_multiplier_for_elo,
    cross_entropy,
    elo_difference,
    elo_gain_for_multiplier,
    elo_per_doubling,
    expected_g_by_enumeration,
    expert_dataset,
    expert_iteration,
    fast_policy_probs,
    fit_fast_policy,
    greedy_actions,
    guaranteed_value,
    masked_softmax,
    monte_carlo_value_fit,
    policy_values,
    reinforce_gradient_exact,
    reinforce_gradient_sample,
    reinforce_self_play,
    square_board_symmetries,
    win_minus_loss,
)
from reference.errors import InvalidGameError, InvalidPolicyError, ReferenceError_, ShapeError
from reference.search import (
    NO_ACTION,
    NO_CHILD,
    NO_PARENT,
    UNVISITED,
    Game,
    GameGraph,
    IndexedGame,
    MNKGame,
    NegamaxSolution,
    NimGame,
    RandomTreeGame,
    enumerate_game,
    mcts,
    minimax_value,
    negamax,
    negamax_side_to_move,
    optimal_policy,
    play_game,
    rollout_value,
    tic_tac_toe,
    uniform_prior,
    visit_distribution,
)
from reference.tolerance import EPS, central_difference, counted_tolerance, tolerance

Graph = GameGraph[tuple[int, ...]]


@cache
def _ttt() -> tuple[Graph, NegamaxSolution]:
    graph = enumerate_game(tic_tac_toe())
    return graph, negamax(graph)


@cache
def _nim(piles: tuple[int, ...] = (1, 2, 2), max_take: int = 2) -> tuple[Graph, NegamaxSolution]:
    graph = enumerate_game(NimGame(piles, max_take))
    return graph, negamax(graph)


# --- GAME-18: the game interface ------------------------------------------------------------------------


def test_GAME_18_builtin_games_follow_the_interface_and_reject_illegal_moves() -> None:
    games: list[Game[tuple[int, ...]]] = [tic_tac_toe(), NimGame((1, 2), 2),
                                          RandomTreeGame.sample(np.random.default_rng(0), depth=2, branching=2)]
    for game in games:
        s = game.initial_state()
        assert game.player_to_move(s) == 0 and not game.is_terminal(s)
        a = game.legal_actions(s)[0]
        assert game.player_to_move(game.apply(s, a)) == 1
        with pytest.raises(InvalidGameError):
            game.returns(s)
    with pytest.raises(InvalidGameError, match="illegal action 4"):
        tic_tac_toe().apply(tic_tac_toe().apply((0,) * 9, 4), 4)
    graph, _ = _ttt()
    ig = IndexedGame(graph)
    assert ig.legal_actions(0) == tuple(range(9)) and ig.apply(0, 4) == graph.child[0, 4]
    with pytest.raises(InvalidGameError):
        ig.apply(graph.child[0, 4], 4)


def test_GAME_18_one_policy_plays_both_sides_of_a_zero_sum_game() -> None:
    graph, _ = _ttt()
    assert np.all(graph.returns.sum(axis=1) == 0.0)
    uniform = masked_softmax(graph, np.zeros(graph.legal.shape))
    # a policy against itself with random colours scores exactly 0 (antisymmetry, L2224-L2228)
    assert win_minus_loss(graph, uniform, uniform) == 0.0


# --- GAME-26, GAME-29: exact negamax ---------------------------------------------------------------------


def test_GAME_26_tic_tac_toe_has_5478_states_and_value_zero() -> None:
    graph, sol = _ttt()
    assert graph.num_states == 5478
    assert sol.V[0] == 0.0  # a draw
    assert int(graph.terminal.sum()) == 958


def test_GAME_26_E86_negamax_identity_on_every_reachable_state() -> None:
    graph, sol = _ttt()
    nt = np.flatnonzero(~graph.terminal)
    for i in nt:
        acts = np.flatnonzero(graph.legal[i])
        kids = graph.child[i, acts]
        # Q*(s, a) = r(s, a) - V*(f(s, a)), V*(term) = 0
        np.testing.assert_array_equal(sol.Q[i, acts], graph.reward[i, acts] - np.where(graph.terminal[kids], 0.0,
                                                                                      sol.V[kids]))
        # ... which is -V*(f(s, a)) for non-terminal moves (the text's form, L2324)
        live = ~graph.terminal[kids]
        np.testing.assert_array_equal(sol.Q[i, acts[live]], -sol.V[kids[live]])
        assert sol.V[i] == sol.Q[i, acts].max()
    # E-86: terminal positions valued for the side to move give the same values on non-terminal states
    stm = negamax_side_to_move(graph)
    np.testing.assert_array_equal(stm[nt], sol.V[nt])
    # and the text's Q = -V(f) then holds for every move, terminal ones included
    for i in nt[:200]:
        acts = np.flatnonzero(graph.legal[i])
        np.testing.assert_array_equal(sol.Q[i, acts], -stm[graph.child[i, acts]])


def test_GAME_26_E86_on_nim_and_the_sprague_grundy_oracle() -> None:
    game = NimGame((1, 2, 3), 3)
    graph = enumerate_game(game)
    sol = negamax(graph)
    stm = negamax_side_to_move(graph)
    nt = ~graph.terminal
    np.testing.assert_array_equal(stm[nt], sol.V[nt])
    for i, s in enumerate(graph.states):
        if nt[i]:
            grundy = 0
            for p in s[1:]:
                grundy ^= p % (game.max_take + 1)
            assert sol.V[i] == (1.0 if grundy != 0 else -1.0)


def _assert_negamax_is_plain_minimax(game: Any, graph: Any, v: NDArray[np.float64]) -> None:
    """V*(s) = minimax(s) where player 0 moves, -minimax(s) where player 1 does, at every non-terminal s."""
    memo: dict[Any, float] = {}
    for i, s in enumerate(graph.states):
        if not graph.terminal[i]:
            mm = minimax_value(game, s, memo)
            assert v[i] == (mm if graph.player[i] == 0 else -mm)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), depth=st.integers(1, 4), branching=st.integers(1, 3))
def test_GAME_29_negamax_equals_plain_minimax_on_random_trees(seed: int, depth: int, branching: int) -> None:
    game = RandomTreeGame.sample(np.random.default_rng(seed), depth=depth, branching=branching)
    graph = enumerate_game(game)
    sol = negamax(graph)
    _assert_negamax_is_plain_minimax(game, graph, sol.V)
    # argmax_a Q*(s, a) = argmin_a V*(f(s, a)) for non-terminal moves (L2356)
    for j in np.flatnonzero(~graph.terminal):
        kids = graph.child[j, graph.legal[j]]
        if not graph.terminal[kids].any():
            assert np.argmax(sol.Q[j, graph.legal[j]]) == np.argmin(sol.V[kids])


class _TwoMovesEachGame:
    """Depth-4 tree, 3 actions, where each player moves twice in a row (0, 0, 1, 1): negamax must keep the sign
    across a same-mover edge (V(s) = Q(s, a) = V(child), not -V(child)). Terminal returns are fixed
    pseudo-random numbers of the move sequence; a line ends early after two 0-moves in a row."""

    num_actions = 3

    def initial_state(self) -> tuple[int, ...]:
        return ()

    def player_to_move(self, s: tuple[int, ...]) -> int:
        return (len(s) // 2) % 2

    def is_terminal(self, s: tuple[int, ...]) -> bool:
        return len(s) == 4 or s[-2:] == (0, 0)

    def legal_actions(self, s: tuple[int, ...]) -> tuple[int, ...]:
        return () if self.is_terminal(s) else (0, 1, 2)

    def apply(self, s: tuple[int, ...], a: int) -> tuple[int, ...]:
        if self.is_terminal(s) or a not in (0, 1, 2):
            raise InvalidGameError(f"illegal action {a} in {s}")
        return (*s, a)

    def returns(self, s: tuple[int, ...]) -> tuple[float, float]:
        v = math.sin(1.0 + sum((a + 1) * 7.0**i for i, a in enumerate(s)))
        return (v, -v)


def test_GAME_29_negamax_keeps_the_sign_when_the_same_player_moves_again() -> None:
    """Every game above alternates strictly, so a negamax that always negated the child's value passed them
    all (the audit's surviving mutant); on this game it disagrees with plain minimax."""
    game = _TwoMovesEachGame()
    graph = enumerate_game(game)
    same_mover = (graph.player[graph.child] == graph.player[:, None]) & graph.legal
    assert same_mover.sum() > 10
    _assert_negamax_is_plain_minimax(game, graph, negamax(graph).V)


def test_GAME_29_tic_tac_toe_minimax_agrees_and_optimal_policy_is_unexploitable() -> None:
    graph, sol = _ttt()
    game = tic_tac_toe()
    assert minimax_value(game, game.initial_state()) == 0.0
    expert = optimal_policy(graph, sol)
    for agent in (0, 1):
        # any deterministic selection of optimal moves secures V* everywhere
        G = guaranteed_value(graph, greedy_actions(graph, expert), agent)
        mine = ~graph.terminal & (graph.player == agent)
        np.testing.assert_array_equal(G[mine], sol.V[mine])


def test_GAME_29_cyclic_games_are_rejected() -> None:
    class Loop:
        num_actions = 1

        def initial_state(self) -> int:
            return 0

        def player_to_move(self, state: int) -> int:
            return state % 2

        def legal_actions(self, state: int) -> tuple[int, ...]:
            return (0,)

        def apply(self, state: int, action: int) -> int:
            return 1 - state

        def is_terminal(self, state: int) -> bool:
            return False

        def returns(self, state: int) -> tuple[float, float]:
            return (0.0, 0.0)

    with pytest.raises(InvalidGameError, match="cycle"):
        enumerate_game(Loop())


# --- GAME-21..GAME-27: the AlphaGo pipeline -------------------------------------------------------------


def test_GAME_21_behaviour_cloning_imitates_the_exact_expert() -> None:
    graph, sol = _ttt()
    expert = optimal_policy(graph, sol)
    rng = np.random.default_rng(0)
    states, actions = expert_dataset(graph, expert, rng, num_games=300, explore=0.3)
    onehot = np.eye(graph.num_actions)[actions]
    logits = behaviour_cloning(graph, states, onehot, lr=50.0, num_steps=200)
    assert cross_entropy(graph, logits, states, onehot) < cross_entropy(graph, np.zeros(graph.legal.shape),
                                                                        states, onehot)
    # on every state of D the cloned policy's favourite move is one the expert plays (an optimal move)
    greedy = greedy_actions(graph, masked_softmax(graph, logits))
    seen = np.unique(states)
    assert np.all(expert[seen, greedy[seen]] > 0.0)


def test_GAME_22_win_minus_loss_is_p_win_minus_p_loss() -> None:
    graph, sol = _nim()
    expert = optimal_policy(graph, sol)
    uniform = masked_softmax(graph, np.zeros(graph.legal.shape))
    # the expert wins as the player with V* = +1 and draws are impossible in Nim: R in [0, 1]
    r = win_minus_loss(graph, expert, uniform)
    assert 0.0 < r <= 1.0
    assert win_minus_loss(graph, uniform, expert) == pytest.approx(-r, abs=tolerance(1.0, terms=graph.num_states))
    # the value itself, against a recursion over the game (not the graph's arrays): P(agent wins) and
    # P(agent loses) summed separately over every play, the first player uniform; Nim has no draws
    game = NimGame((1, 2, 2), 2)

    def outcome_probs(state: tuple[int, ...], agent: int, pol: np.ndarray, opp: np.ndarray) -> tuple[float, float]:
        if game.is_terminal(state):
            z = game.returns(state)[agent]
            return (1.0, 0.0) if z > 0 else (0.0, 1.0) if z < 0 else (0.0, 0.0)
        row = (pol if game.player_to_move(state) == agent else opp)[graph.index[state]]
        win = loss = 0.0
        for a in game.legal_actions(state):
            w, lo = outcome_probs(game.apply(state, a), agent, pol, opp)
            win += float(row[a]) * w
            loss += float(row[a]) * lo
        return win, loss

    for pol, opp in ((expert, uniform), (uniform, expert), (uniform, uniform)):
        wl = [outcome_probs(game.initial_state(), c, pol, opp) for c in (0, 1)]
        p_win, p_loss = 0.5 * (wl[0][0] + wl[1][0]), 0.5 * (wl[0][1] + wl[1][1])
        assert p_win + p_loss == pytest.approx(1.0, abs=tolerance(1.0, terms=graph.num_states))
        assert abs(win_minus_loss(graph, pol, opp) - (p_win - p_loss)) <= tolerance(1.0, terms=2 * graph.num_states)


def test_GAME_23_reinforce_estimator_is_unbiased_by_enumeration() -> None:
    graph, _ = _nim()
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(graph.legal.shape)
    frozen = masked_softmax(graph, rng.standard_normal(graph.legal.shape))
    exact = reinforce_gradient_exact(graph, logits, frozen)
    enum = expected_g_by_enumeration(graph, logits, frozen)
    np.testing.assert_allclose(enum, exact, rtol=0, atol=tolerance(1.0, terms=4 * graph.num_states))
    # central differences of the exact R along logits[i, a], within the computed bound of
    # reference.tolerance.central_difference (Richardson truncation + rounding); one evaluation of R rounds
    # within tolerance(1, terms = |states| + A + 2) (the backward induction plus the softmax), the analytic
    # gradient within the enumeration's tolerance above; h = 1e-4 keeps the rounding term f_error / h at
    # ~1e-9 with the truncation term (~1e-11 here) below it
    i, a = np.argwhere(graph.legal & ~graph.terminal[:, None])[3]
    at = np.zeros(graph.legal.shape, dtype=bool)
    at[i, a] = True

    def r_of(t: NDArray[np.float64]) -> float:
        return win_minus_loss(graph, masked_softmax(graph, np.where(at, t[0], logits)), frozen)

    f_error = tolerance(1.0, terms=graph.num_states + graph.legal.shape[1] + 2)
    fd, bound = central_difference(r_of, np.array([logits[i, a]]), h=1e-4, f_error=f_error)
    assert abs(fd[0] - exact[i, a]) <= bound[0] + tolerance(1.0, terms=4 * graph.num_states)
    # pitfall (L2288): also summing the opponent's moves is biased; with theta- = theta its mean is the
    # total derivative of R(theta, theta) = 0
    same = masked_softmax(graph, logits)
    biased = expected_g_by_enumeration(graph, logits, same, own_moves_only=False)
    np.testing.assert_allclose(biased, 0.0, atol=tolerance(1.0, terms=4 * graph.num_states))
    assert float(np.abs(reinforce_gradient_exact(graph, logits, same)).max()) > 1e-3


def test_GAME_23_reinforce_sample_mean_within_4_sigma() -> None:
    graph, _ = _nim()
    rng = np.random.default_rng(4)
    logits = rng.standard_normal(graph.legal.shape)
    frozen = masked_softmax(graph, rng.standard_normal(graph.legal.shape))
    exact = reinforce_gradient_exact(graph, logits, frozen)
    n = 4000
    samples = np.stack([reinforce_gradient_sample(graph, logits, frozen, rng) for _ in range(n)])
    mean, sd = samples.mean(axis=0), samples.std(axis=0, ddof=1)
    # open choice 22 per coordinate: |mu_hat - mu| <= 4 sigma_hat / sqrt(n) (+ float slack where sd = 0)
    assert np.all(np.abs(mean - exact) <= 4.0 * sd / math.sqrt(n) + 1e-12)


def test_GAME_24_self_play_reinforce_beats_its_initialisation() -> None:
    graph, _ = _nim((1, 2, 3), 2)
    rng = np.random.default_rng(5)
    init = 0.3 * rng.standard_normal(graph.legal.shape)  # stands in for pi^IL; E-82: pi^RL := pi^IL
    trained = reinforce_self_play(graph, init, rng, alpha=2.0, num_iterations=60, batch_size=16, pool_every=10)
    r = win_minus_loss(graph, masked_softmax(graph, trained), masked_softmax(graph, init))
    assert r > 0.2  # the analogue of "pi^RL beats pi^IL 80% of the time"


def test_GAME_25_monte_carlo_value_fit_within_hoeffding_bound() -> None:
    graph, _ = _nim((1, 2, 3), 2)
    rng = np.random.default_rng(6)
    probs = masked_softmax(graph, rng.standard_normal(graph.legal.shape))
    V, counts = monte_carlo_value_fit(graph, probs, rng, num_games=3000)
    exact = policy_values(graph, probs)
    # Hoeffding, z in [-1, 1]: P(|mean - mu| >= t) <= 2 exp(-n t^2 / 2); union over K states, delta = 1e-6
    K = int((counts > 0).sum())
    seen = counts > 0
    t = np.sqrt(2.0 * math.log(2.0 * K / 1e-6) / counts[seen])
    assert np.all(np.abs(V[seen] - exact[seen]) <= t)
    assert counts[0] == 3000 and abs(V[0] - exact[0]) <= t[0]


def test_GAME_25_monte_carlo_value_fit_is_the_running_mean_of_the_outcomes() -> None:
    """Step 1/count makes each entry the mean of its z's exactly (found by the mutation audit of 2026-12-06: a
    1/(count + 1) step stays inside the Hoeffding bound above). The games are replayed on the same random stream;
    the running mean of n values in [-1, 1] is within counted_tolerance(1, roundings=3 n) of their mean."""
    graph, _ = _nim((1, 2, 3), 2)
    probs = masked_softmax(graph, np.random.default_rng(6).standard_normal(graph.legal.shape))
    V, counts = monte_carlo_value_fit(graph, probs, np.random.default_rng(7), num_games=200)
    rng = np.random.default_rng(7)
    zs: dict[int, list[float]] = {}
    for _ in range(200):
        i, path = 0, []
        while not graph.terminal[i]:
            path.append(i)
            i = int(graph.child[i, int(rng.choice(graph.num_actions, p=probs[i]))])
        for s_ in path:
            zs.setdefault(s_, []).append(float(graph.returns[i, graph.player[s_]]))
    for s_, z in zs.items():
        assert counts[s_] == len(z)
        assert abs(V[s_] - float(np.mean(z))) <= counted_tolerance(1.0, roundings=3 * len(z))
    assert all(counts[s_] == 0 for s_ in range(graph.num_states) if s_ not in zs)


def test_GAME_26_policy_values_reduce_to_negamax_for_the_expert() -> None:
    graph, sol = _ttt()
    V = policy_values(graph, optimal_policy(graph, sol))
    # V^{pi* vs pi*} = V*: each state averages <= 9 equal values (weights 1/k), error compounds over <= 9 plies
    np.testing.assert_allclose(V, sol.V, rtol=0, atol=tolerance(1.0, terms=9 * 9))


def test_GAME_27_fast_rollout_policy_and_the_speed_arithmetic() -> None:
    graph, sol = _ttt()
    expert = optimal_policy(graph, sol)
    states, actions = expert_dataset(graph, expert, np.random.default_rng(7), num_games=200, explore=0.3)
    psi = fit_fast_policy(graph, states, actions, lr=1.0, num_steps=300)
    onehot = np.eye(graph.num_actions)[actions]
    fast = fast_policy_probs(graph, psi)
    ce = -np.log(fast[states, actions]).mean()
    assert ce < cross_entropy(graph, np.zeros(graph.legal.shape), states, onehot)
    assert int(np.argmax(psi)) == 4  # it "understands the most basic principles": the centre first
    # (E-87's speed arithmetic, ~3 ms / ~2 us = 1500x, is checked in proofs_checks/check_games.py)


# --- GAME-31..GAME-35: MCTS ----------------------------------------------------------------------------


def _check_tree_invariants(tree_game: Game[tuple[int, ...]], num_simulations: int, seed: int) -> None:
    tree = mcts(tree_game, tree_game.initial_state(), num_simulations=num_simulations,
                rng=np.random.default_rng(seed), c_puct=1.0)
    n = tree.num_nodes
    assert tree.parent[0] == NO_PARENT and tree.parent_action[0] == NO_ACTION
    assert n <= num_simulations + 1  # GAME-31: at most one node per simulation
    assert int(tree.N[0].sum()) == num_simulations
    for i in range(1, n):
        p, a = int(tree.parent[i]), int(tree.parent_action[i])
        assert tree.children[p, a] == i
        inflow = int(tree.N[p, a])
        if tree.terminal[i]:
            # terminal nodes are never expanded
            assert np.all(tree.children[i] == UNVISITED) and int(tree.N[i].sum()) == 0
            np.testing.assert_allclose(tree.W[p, a], inflow * tree.reward[p, a], atol=tolerance(1.0, terms=inflow))
        else:
            assert int(tree.N[i].sum()) == inflow - 1  # the first visit created it
            # negamax backup: W(p, a) = N(p, a) r(p, a) - (leaf value + sum_b W(i, b))
            sign = 1.0 if tree.player[i] == tree.player[p] else -1.0
            rhs = inflow * tree.reward[p, a] + sign * (tree.leaf_value[i] + tree.W[i].sum())
            assert abs(tree.W[p, a] - rhs) <= tolerance(1.0, terms=2 * num_simulations)
    unexpanded = tree.children == UNVISITED
    assert np.all(tree.N[unexpanded] == 0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), depth=st.integers(1, 4), branching=st.integers(1, 3),
       sims=st.integers(1, 120))
def test_GAME_31_34_tree_invariants_on_random_game_trees(seed: int, depth: int, branching: int, sims: int) -> None:
    game = RandomTreeGame.sample(np.random.default_rng(seed), depth=depth, branching=branching)
    _check_tree_invariants(game, sims, seed)


def test_GAME_31_34_tree_invariants_on_tic_tac_toe() -> None:
    _check_tree_invariants(tic_tac_toe(), 600, 0)


def _random_trees(count: int) -> list[tuple[RandomTreeGame, NegamaxSolution]]:
    rng = np.random.default_rng(2024)
    out = []
    for _ in range(count):
        g = RandomTreeGame.sample(rng, depth=4, branching=3)
        out.append((g, negamax(enumerate_game(g))))
    return out


@pytest.mark.parametrize("parent_count", ["edges", "node"])
def test_GAME_32_E88_puct_root_value_converges_to_negamax_on_random_trees(parent_count: str) -> None:
    trees = _random_trees(10)
    rng = np.random.default_rng(0)
    errs: dict[int, float] = {}
    for sims in (64, 2048):
        e = []
        for game, sol in trees:
            tree = mcts(game, (), num_simulations=sims, rng=rng, rule="puct", c_puct=1.0,
                        parent_count=parent_count)  # type: ignore[arg-type]
            e.append(abs(tree.root_value - sol.V[0]))
            if sims == 2048:
                assert sol.Q[0, tree.best_action()] == sol.V[0]  # the chosen move is optimal
        errs[sims] = float(np.mean(e))
    # the error falls at least as fast as n^(-1/2) (each suboptimal edge gets O(sqrt n) visits under PUCT)
    assert errs[2048] <= errs[64] * math.sqrt(64 / 2048)


def test_GAME_33_dirichlet_noise_only_at_the_root_and_the_leaf_mix() -> None:
    """Root noise changes the root prior only: every other node's prior is prior(s) restricted to the legal
    moves and renormalised, bit for bit. The leaf value with both a value function and rollouts is
    ``(1 - lam) V + lam z`` (AlphaGo's mix), checked at lam = 0.2 with a deterministic rollout policy (the
    lowest legal cell) whose outcome z is computed here by playing it out; the same two products and one sum,
    so equal bit for bit."""
    game = tic_tac_toe()
    s0 = game.initial_state()

    def prior(s: tuple[int, ...]) -> NDArray[np.float64]:
        p = np.zeros(9)
        acts = list(game.legal_actions(s))
        p[acts] = np.arange(1, len(acts) + 1)
        out: NDArray[np.float64] = p / p.sum()
        return out

    t = mcts(game, s0, num_simulations=200, rng=np.random.default_rng(0), prior=prior, dirichlet_alpha=0.3)
    for i in range(1, t.num_nodes):
        if not t.terminal[i]:
            p = np.where(t.legal[i], prior(t.states[i]), 0.0)
            np.testing.assert_array_equal(t.P[i], p / p.sum())
    assert not np.array_equal(t.P[0], prior(s0))

    def first(s: tuple[int, ...]) -> NDArray[np.float64]:
        p = np.zeros(9)
        p[game.legal_actions(s)[0]] = 1.0
        return p

    def z_first(s: tuple[int, ...]) -> float:
        me = game.player_to_move(s)
        while not game.is_terminal(s):
            s = game.apply(s, game.legal_actions(s)[0])
        return game.returns(s)[me]

    def val(s: tuple[int, ...]) -> float:
        return 0.1 * (sum(s) % 7) - 0.3

    t = mcts(game, s0, num_simulations=100, rng=np.random.default_rng(0), value=val, rollout_policy=first,
             lam=0.2)
    for i in range(t.num_nodes):
        if not t.terminal[i]:
            assert t.leaf_value[i] == 0.8 * val(t.states[i]) + 0.2 * z_first(t.states[i])


def test_GAME_33_num_rollouts_each_leaf_is_the_mean_of_that_many_rollouts() -> None:
    """Without root noise the search draws from ``rng`` only in its rollouts, one leaf at a time in the order
    the nodes are created, so replaying :func:`rollout_value` with ``num_rollouts`` on a copy of the generator
    reproduces every leaf value exactly."""
    game = tic_tac_toe()
    pol = uniform_prior(game)
    for k in (1, 3):
        t = mcts(game, game.initial_state(), num_simulations=60, rng=np.random.default_rng(5), rollout_policy=pol,
                 num_rollouts=k)
        rng = np.random.default_rng(5)
        want = [0.0 if t.terminal[i] else rollout_value(game, t.states[i], pol, rng, num_rollouts=k)
                for i in range(t.num_nodes)]
        np.testing.assert_array_equal(t.leaf_value, want)


def test_GAME_32_fpu_is_the_value_of_unvisited_edges() -> None:
    """Greedy selection (c_puct = 0) on a depth-2 tree with V = 0 everywhere: the first simulation takes
    action 0 (all edges tie at fpu) and backs up 0. With fpu = +1 the unvisited edges then look better, so
    the three simulations take actions 0, 1, 2; with fpu = -1 they look worse and all three take action 0."""
    game = RandomTreeGame.sample(np.random.default_rng(0), depth=2, branching=3)
    for fpu, want in ((1.0, [1, 1, 1]), (-1.0, [3, 0, 0])):
        t = mcts(game, game.initial_state(), num_simulations=3, rng=np.random.default_rng(0),
                 value=lambda s: 0.0, c_puct=0.0, fpu=fpu)
        assert t.N[0].tolist() == want, fpu
        q = t.q(0, fpu=fpu)
        assert np.all(q[t.N[0] == 0] == fpu)


def test_GAME_32_E88_puct_first_selection_prior_only_when_the_expansion_counts() -> None:
    """E-88's PUCT taken literally has sqrt(sum_b N(s, b)) = 0 at a node's first selection, so the prior
    cannot steer it: all edges tie at fpu and the lowest index wins. Counting the expansion as a visit of
    the node (``parent_count="node"``, as mctx at every node and AlphaZero's pseudocode at inner nodes) gives
    sqrt(1) and the prior decides.
    The text's rule uses the prior from the start. One simulation from the empty tic-tac-toe board, prior
    on the centre."""
    game = MNKGame()
    root = game.initial_state()

    def centre(_s: object) -> NDArray[np.float64]:
        p = np.full(9, 0.02)
        p[4] = 1.0 - 8 * 0.02
        return p

    def first(**kw: object) -> int:
        tree = mcts(game, root, num_simulations=1, rng=np.random.default_rng(0), prior=centre, **kw)  # type: ignore[arg-type]
        assert int(tree.N[0].sum()) == 1
        return int(np.argmax(tree.N[0]))

    assert first(rule="puct") == 0
    assert first(rule="puct", parent_count="node") == 4
    assert first(rule="text") == 4
    # from the second selection on, sum_b N(s, b) > 0 and the prior steers the literal rule too
    two = mcts(game, root, num_simulations=2, rng=np.random.default_rng(0), prior=centre)
    assert int(two.N[0, 4]) == 1


@pytest.mark.parametrize(("rule", "parent_count"), [("puct", "edges"), ("puct", "node"), ("text", "edges")])
def test_GAME_32_each_root_selection_is_the_argmax_of_the_stated_rule(rule: str, parent_count: str) -> None:
    """Oracle for the selection formula (found by the mutation audit of 2026-12-06: the convergence tests pass
    with P / N in place of P / (1 + N)). Deterministic search (no noise, a fixed prior and value), so the tree of
    k + 1 simulations is the tree of k plus one: the root edge it adds a visit to must be
    argmax_a Q(a) + c P(a) sqrt(sum_b N(b) [+ 1]) / (1 + N(a))  (PUCT)  or  Q(a) + rho P(a) / (1 + N(a))  (text),
    computed from the k-simulation tree's own arrays. Prior and value vary with the state so that no two
    scores tie."""
    game = tic_tac_toe()
    s0 = game.initial_state()

    def prior(st: tuple[int, ...]) -> np.ndarray:
        p = np.zeros(game.num_actions)
        acts = list(game.legal_actions(st))
        p[acts] = 1.0 + 0.37 * np.arange(1, len(acts) + 1) + 0.01 * sum(st)
        out: np.ndarray = p / p.sum()
        return out

    def value(st: tuple[int, ...]) -> float:
        return float(np.tanh(0.3 * sum((i + 1) * c for i, c in enumerate(st)) - 0.2))

    c = 1.3
    kw = {"rule": rule, "parent_count": parent_count, "c_puct": c, "rho": c, "prior": prior, "value": value}
    checked = 0
    for k in range(1, 40):
        t0 = mcts(game, s0, num_simulations=k, rng=np.random.default_rng(0), **kw)  # type: ignore[arg-type]
        t1 = mcts(game, s0, num_simulations=k + 1, rng=np.random.default_rng(0), **kw)  # type: ignore[arg-type]
        grown = np.flatnonzero(t1.N[0] != t0.N[0])
        assert grown.size == 1
        n = t0.N[0].astype(np.float64)
        q = np.where(t0.legal[0], np.where(n > 0, t0.W[0] / np.maximum(n, 1.0), 0.0), -np.inf)
        if rule == "puct":
            u = c * np.sqrt(n.sum() + (1.0 if parent_count == "node" else 0.0)) * t0.P[0] / (1.0 + n)
        else:
            u = c * t0.P[0] / (1.0 + n)
        score = q + u
        best = int(np.argmax(score))
        runner_up = np.partition(score[np.isfinite(score)], -2)[-2]
        assert score[best] - runner_up > tolerance(float(np.max(np.abs(score[np.isfinite(score)]))), terms=4)
        assert grown[0] == best, (k, grown, best, score)
        checked += 1
    assert checked == 39


def test_GAME_32_E88_text_rule_without_parent_count_stops_converging() -> None:
    # Without sqrt(sum_b N) the exploration bonus does not grow with the parent count: a move that looks bad
    # early is rarely revisited, so the error stalls instead of falling like n^(-1/2) (compare the PUCT test).
    trees = _random_trees(10)
    errs: dict[int, float] = {}
    stuck = 0
    for sims in (1024, 4096):
        e = []
        for game, sol in trees:
            tree = mcts(game, (), num_simulations=sims, rng=np.random.default_rng(0), rule="text", rho=1.0)
            e.append(abs(tree.root_value - sol.V[0]))
            if sims == 4096 and sol.Q[0, tree.best_action()] < sol.V[0]:
                stuck += 1
        errs[sims] = float(np.mean(e))
    assert stuck >= 1  # a suboptimal move is still chosen after 4096 simulations
    assert errs[4096] > errs[1024] * math.sqrt(1024 / 4096)  # slower than the n^(-1/2) rate PUCT achieves


def test_GAME_32_33_exact_value_leaves_give_exact_first_visit_q() -> None:
    graph, sol = _ttt()
    game = IndexedGame(graph)
    s = int(graph.child[graph.child[0, 0], 4])
    tree = mcts(game, s, num_simulations=50, rng=np.random.default_rng(0),
                value=lambda i: float(sol.V[i]))
    kids = tree.children[0]
    for a in np.flatnonzero(graph.legal[s]):
        k = int(kids[a])
        assert k != UNVISITED
        # leaf value from the side to move at the leaf, so the first backup is r - V*(f(s, a)) = Q*(s, a)
        assert tree.reward[0, a] - (0.0 if tree.terminal[k] else tree.leaf_value[k]) == sol.Q[s, a]
    assert sol.Q[s, tree.best_action()] == sol.V[s]


def test_GAME_33_leaf_value_is_the_50_50_mix_of_value_and_rollouts() -> None:
    game = tic_tac_toe()
    prior = uniform_prior(game)
    tree = mcts(game, game.initial_state(), num_simulations=200, rng=np.random.default_rng(1),
                value=lambda s: 0.25, rollout_policy=prior, lam=0.5)
    lv = tree.leaf_value[~tree.terminal]
    # 0.5 * 0.25 + 0.5 * z with z in {-1, 0, 1}
    assert set(np.round(lv, 12).tolist()) <= {0.125 - 0.5, 0.125, 0.125 + 0.5}
    assert len(set(np.round(lv, 12).tolist())) == 3
    assert np.all(tree.leaf_value[tree.terminal] == 0.0)


def test_GAME_33_rollout_mean_within_4_sigma_of_the_exact_value() -> None:
    graph, _ = _ttt()
    game = IndexedGame(graph)
    uniform = masked_softmax(graph, np.zeros(graph.legal.shape))
    exact = policy_values(graph, uniform)
    rng = np.random.default_rng(8)
    s = int(graph.child[0, 0])
    n = 3000
    zs = np.array([rollout_value(game, s, lambda i: uniform[i], rng) for _ in range(n)])
    assert abs(zs.mean() - exact[s]) <= 4.0 * zs.std(ddof=1) / math.sqrt(n)
    assert rollout_value(game, s, lambda i: uniform[i], np.random.default_rng(9), num_rollouts=n) == pytest.approx(
        exact[s], abs=4.0 * zs.std(ddof=1) / math.sqrt(n))


def test_GAME_34_root_dirichlet_noise_and_temperature() -> None:
    game = tic_tac_toe()
    s0 = game.initial_state()
    plain = mcts(game, s0, num_simulations=50, rng=np.random.default_rng(0))
    noisy = mcts(game, s0, num_simulations=50, rng=np.random.default_rng(0), dirichlet_alpha=0.3)
    assert noisy.P[0].sum() == pytest.approx(1.0, abs=tolerance(1.0, terms=9))
    assert not np.array_equal(noisy.P[0], plain.P[0])
    same = mcts(game, s0, num_simulations=50, rng=np.random.default_rng(0), dirichlet_alpha=0.3, dirichlet_epsilon=0.0)
    np.testing.assert_array_equal(same.P[0], plain.P[0])
    pi1 = visit_distribution(plain, temperature=1.0)
    np.testing.assert_allclose(pi1, plain.N[0] / plain.N[0].sum(), atol=tolerance(1.0, terms=9))
    pi0 = visit_distribution(plain, temperature=0.0)
    assert pi0[plain.best_action()] == 1.0 and pi0.sum() == 1.0
    # tau != 1 (found by the mutation audit of 2026-12-06: only tau = 1 and 0 were checked): pi ∝ N^(1/tau);
    # the ratio, the power (pow within 1 ulp) and a 9-term normalisation, relative to values <= 1
    n = plain.N[0].astype(np.float64)
    for tau in (0.5, 2.0):
        want = n ** (1.0 / tau) / np.sum(n ** (1.0 / tau))
        np.testing.assert_allclose(visit_distribution(plain, temperature=tau), want, rtol=0,
                                   atol=tolerance(1.0, terms=9 + 4))
    # E-92: commit to the most-visited root action
    assert plain.N[0, plain.best_action()] == plain.N[0].max()
    # tau = inf is refused: N^(1/inf) = N^0 = 1 would put mass on unvisited and illegal actions alike
    for bad in (math.inf, -1.0, math.nan):
        with pytest.raises(ValueError, match="temperature"):
            visit_distribution(plain, temperature=bad)


def test_GAME_33_mcts_rejects_non_finite_priors_and_leaf_values() -> None:
    """A NaN leaf value or an infinite prior entry would win every argmax and absorb the whole search with
    no error (NaN compares false, inf / inf is NaN); both are refused, as is a non-finite fpu."""
    game = tic_tac_toe()
    s0 = game.initial_state()

    def inf_prior(s: object) -> NDArray[np.float64]:
        p = np.full(9, 1.0 / 9)
        p[1] = math.inf
        return p

    with pytest.raises(InvalidPolicyError, match="not a distribution"):
        mcts(game, s0, num_simulations=5, rng=np.random.default_rng(0), prior=inf_prior)
    with pytest.raises(InvalidGameError, match="must be finite"):
        mcts(game, s0, num_simulations=5, rng=np.random.default_rng(0), value=lambda s: math.nan)
    with pytest.raises(ValueError, match="fpu"):
        mcts(game, s0, num_simulations=5, rng=np.random.default_rng(0), fpu=-math.inf)


def test_GAME_32_mcts_converges_on_tic_tac_toe_positions() -> None:
    graph, sol = _ttt()
    game = IndexedGame(graph)
    rng = np.random.default_rng(1)
    positions = [0, *rng.choice(np.flatnonzero(~graph.terminal & (graph.legal.sum(1) == 6)), 4, replace=False)]
    for i in positions:
        small = mcts(game, int(i), num_simulations=64, rng=rng, c_puct=1.0)
        big = mcts(game, int(i), num_simulations=3000, rng=rng, c_puct=1.0)
        assert sol.Q[i, big.best_action()] == sol.V[i]
        assert abs(big.root_value - sol.V[i]) <= max(abs(small.root_value - sol.V[i]), 0.1)


# --- GAME-37..GAME-40: expert iteration ----------------------------------------------------------------


def _mcts_actions(graph: Graph, logits: NDArray[np.float64], V: NDArray[np.float64], sims: int) -> NDArray[np.int64]:
    game = IndexedGame(graph)
    probs = masked_softmax(graph, logits)
    acts = np.full(graph.num_states, -1, dtype=np.int64)
    for i in np.flatnonzero(~graph.terminal):
        tree = mcts(game, int(i), num_simulations=sims, rng=np.random.default_rng(0), prior=lambda s: probs[s],
                    value=lambda s: float(V[s]), c_puct=1.5)
        acts[i] = tree.best_action()
    return acts


def test_GAME_39_40_expert_iteration_learns_perfect_tic_tac_toe() -> None:
    # Expert iteration with exploring starts from every reachable non-terminal position, deterministic
    # self-play (most-visited move, no noise), visit-distribution targets (E-96), symmetry augmentation and
    # value step lr_value = 1. Everything is deterministic (no rollouts, no noise), so the assertions below are
    # exact statements about this run, with no tolerance.
    graph, sol = _ttt()
    syms = board_symmetries(graph, square_board_symmetries(3))
    assert len(syms) == 8
    res = expert_iteration(graph, np.random.default_rng(0), num_iterations=6, games_per_iteration=0,
                           num_simulations=32, c_puct=1.5, lr_value=1.0, sweep=True, symmetries=syms)
    nt = ~graph.terminal
    # Value table: with lr_value = 1, V(s) is the outcome z(s) in {-1, 0, 1} of the last iteration's game
    # from s, so it either equals V*(s) exactly or is off by >= 1: the derived margin is 0.
    np.testing.assert_array_equal(res.V[nt], sol.V[nt])
    # The raw policy's favourite move is optimal at every reachable position.
    greedy = greedy_actions(graph, masked_softmax(graph, res.logits))
    np.testing.assert_array_equal(sol.Q[np.flatnonzero(nt), greedy[nt]], sol.V[nt])
    # The trained agent, MCTS(pi, V) with 16 simulations and the most-visited move, secures V* from every
    # reachable position where it is to move, as either side, against every opponent (the exact solver
    # included): it never loses where V* >= 0 and always wins where V* = +1.
    trained = _mcts_actions(graph, res.logits, res.V, 16)
    for agent in (0, 1):
        mine = nt & (graph.player == agent)
        np.testing.assert_array_equal(guaranteed_value(graph, trained, agent)[mine], sol.V[mine])
    # ... and concretely: played out against the exact solver (argmax Q*) from every position, never worse.
    solver = greedy_actions(graph, optimal_policy(graph, sol))
    for i in np.flatnonzero(nt):
        me, j = int(graph.player[i]), int(i)
        while not graph.terminal[j]:
            j = int(graph.child[j, trained[j] if graph.player[j] == me else solver[j]])
        assert graph.returns[j, me] == sol.V[i]
    # The same search with untrained (zero) tables does not: training is what makes it perfect.
    untrained = _mcts_actions(graph, np.zeros(graph.legal.shape), np.zeros(graph.num_states), 16)
    assert any(np.any(guaranteed_value(graph, untrained, ag)[nt & (graph.player == ag)]
                      < sol.V[nt & (graph.player == ag)]) for ag in (0, 1))


def test_GAME_39_board_symmetries_are_game_symmetries() -> None:
    graph, sol = _ttt()
    syms = board_symmetries(graph, square_board_symmetries(3))
    for sig, perm in syms:
        np.testing.assert_array_equal(sol.V[sig], sol.V)  # V* is invariant
        assert sorted(perm.tolist()) == list(range(9))
    # the 765 orbits of tic-tac-toe positions
    assert len(np.unique(np.stack([sig for sig, _ in syms]).min(axis=0))) == 765
    with pytest.raises(InvalidGameError):
        board_symmetries(graph, [np.array([1, 0, 2, 3, 4, 5, 6, 7, 8])])  # swapping two cells is not one


def test_GAME_39_sampled_self_play_variant_produces_valid_trained_tables() -> None:
    # The sampled-game variant (exploring starts with probability 1, Dirichlet noise): a smoke test only; its
    # strength is not asserted (no threshold fitted to a run), only that the tables are valid and were trained.
    graph, _ = _ttt()
    res = expert_iteration(graph, np.random.default_rng(0), num_iterations=2, games_per_iteration=20,
                           num_simulations=8, exploring_starts=1.0)
    probs = masked_softmax(graph, res.logits)
    assert np.all(np.isfinite(res.logits))
    np.testing.assert_allclose(probs[~graph.terminal].sum(axis=1), 1.0, rtol=0,
                               atol=tolerance(1.0, terms=graph.num_actions))
    assert np.all(np.abs(res.V) <= 1.0) and np.any(res.counts > 0)


def test_GAME_39_value_targets_are_the_outcome_for_the_player_to_move() -> None:
    """z is the outcome for the player to move at s (E-85), not for player 0 (found by the mutation audit of
    2026-12-06). Nim with one heap of 2, take 1: player 0 moves, then player 1 takes the last object and wins, in
    every game; with step 1/count the value table is the running mean of a constant: V = (-1, +1) exactly."""
    graph, _ = _nim((2,), 1)
    assert graph.player.tolist()[:2] == [0, 1] and graph.terminal.tolist() == [False, False, True]
    res = expert_iteration(graph, np.random.default_rng(0), num_iterations=2, games_per_iteration=3,
                           num_simulations=4, lr_value=None)
    assert res.counts[0] > 0 and res.counts[1] > 0
    np.testing.assert_array_equal(res.V[:2], [-1.0, 1.0])


def test_GAME_39_E96_policy_target_is_the_visit_distribution_or_the_played_move() -> None:
    """Exact targets of one sweep iteration: with ``policy_steps = 1`` and ``lr_policy = 1`` from zero logits
    the logits become ``t - p0`` (p0 uniform over the legal moves), so ``logits + p0`` recovers the target t.
    "visits": t is the root visit distribution of a search with the frozen tables (uniform prior, V = 0),
    repeated here independently; "action": t is one-hot on that search's most-visited move (E-96's variant).
    Tolerance: two roundings of numbers in [0, 1], 2 * 2^-53 each, so 4 eps."""
    graph, _ = _nim((1, 2, 2), 2)
    game = IndexedGame(graph)
    p0 = masked_softmax(graph, np.zeros(graph.legal.shape))
    nonterminal = np.flatnonzero(~graph.terminal)
    kw: dict[str, Any] = dict(num_iterations=1, games_per_iteration=0, num_simulations=7, sweep=True,
                              policy_steps=1, lr_policy=1.0, c_puct=1.5)
    eps = float(np.finfo(np.float64).eps)
    for target in ("visits", "action"):
        res = expert_iteration(graph, np.random.default_rng(0), policy_target=target, **kw)
        got = (res.logits + p0)[nonterminal]
        want = np.zeros_like(got)
        for row, i in enumerate(nonterminal):
            tree = mcts(game, int(i), num_simulations=7, rng=np.random.default_rng(1),
                        prior=lambda s: p0[s], value=lambda s: 0.0, c_puct=1.5)
            onehot = np.eye(graph.num_actions)[tree.best_action()]
            want[row] = visit_distribution(tree) if target == "visits" else onehot
        np.testing.assert_allclose(got, want, rtol=0, atol=4 * eps)
    # the two targets differ somewhere (a position where the search's visits are spread)
    v = expert_iteration(graph, np.random.default_rng(0), policy_target="visits", **kw).logits
    a = expert_iteration(graph, np.random.default_rng(0), policy_target="action", **kw).logits
    assert float(np.max(np.abs(v - a))) > 0.1


def test_GAME_39_sampled_self_play_options_change_the_games() -> None:
    """With no exploring starts, no temperature moves and no Dirichlet noise, a search with frozen tables is
    deterministic, so every game of an iteration is the same game and each visit count is a multiple of
    ``games_per_iteration`` (exact). Each of the three options on its own makes the games of an iteration
    differ (fixed seeds; the outcome is deterministic), so an option that was silently ignored would fail."""
    graph, _ = _nim((1, 2, 3), 2)
    g = 6
    base: dict[str, Any] = dict(num_iterations=2, games_per_iteration=g, num_simulations=8,
                                exploring_starts=0.0, temperature_moves=0, dirichlet_alpha=None)
    res = expert_iteration(graph, np.random.default_rng(0), **base)
    assert np.all(res.counts % g == 0) and res.counts[0] == 2 * g
    for option in ({"exploring_starts": 1.0}, {"temperature_moves": 3}, {"dirichlet_alpha": 0.3}):
        res = expert_iteration(graph, np.random.default_rng(0), **{**base, **option})
        assert np.any(res.counts % g != 0), option


def test_GAME_39_E96_single_action_target_variant_runs() -> None:
    graph, _ = _nim((1, 2, 3), 2)
    res = expert_iteration(graph, np.random.default_rng(1), num_iterations=3, games_per_iteration=20,
                           num_simulations=8, policy_target="action")
    probs = masked_softmax(graph, res.logits)
    assert np.all(np.isfinite(res.logits))
    np.testing.assert_allclose(probs[~graph.terminal].sum(axis=1), 1.0, rtol=0,
                               atol=tolerance(1.0, terms=graph.num_actions))
    assert np.any(res.counts > 0)


# --- GAME-42..GAME-45: test-time compute ----------------------------------------------------------------


def _match(graph: Graph, sims_a: int, sims_b: int, num_games: int, seed: int) -> NDArray[np.float64]:
    """Scores (1 win, 1/2 draw, 0 loss) of MCTS(sims_a) against MCTS(sims_b), colours alternating; uniform
    (weak) prior and one uniform rollout per leaf."""
    game = IndexedGame(graph)
    uniform = masked_softmax(graph, np.zeros(graph.legal.shape))
    rng = np.random.default_rng(seed)

    def agent(sims: int) -> object:
        def act(s: int) -> int:
            return mcts(game, s, num_simulations=sims, rng=rng, rollout_policy=lambda i: uniform[i],
                        c_puct=1.0).best_action()
        return act

    a, b = agent(sims_a), agent(sims_b)
    scores = []
    for k in range(num_games):
        players = (a, b) if k % 2 == 0 else (b, a)
        ret = play_game(game, players)  # type: ignore[arg-type]
        mine = ret[k % 2]
        scores.append((mine + 1.0) / 2.0)
    return np.array(scores)


def test_GAME_42_45_more_search_wins_more_against_a_fixed_opponent() -> None:
    graph, _ = _ttt()
    weak = _match(graph, 2, 4, 150, 0)
    strong = _match(graph, 64, 4, 150, 1)
    se = math.sqrt(weak.var(ddof=1) / len(weak) + strong.var(ddof=1) / len(strong))
    assert strong.mean() - weak.mean() > 4.0 * se
    assert elo_difference(strong.mean()) > elo_difference(weak.mean())


def test_GAME_44_E100_elo_arithmetic() -> None:
    # 3000 -> 5200 Elo at 120 Elo per doubling: 2^(2200/120) ~ 3.3e5, not ~1e5 (E-100)
    assert compute_multiplier_for_elo(2200.0) == 2.0 ** (2200 / 120)  # the same two roundings
    assert 3.2e5 < compute_multiplier_for_elo(2200.0) < 3.4e5
    # E-100 and L2536 print the Elo gains as integers (~1993, ~1196): read to half a unit, abs = 0.5; and against
    # the independent closed form 120 ln(m) / ln 2 within rounding: log2 and log (2 ulp each: 4 + 4), the
    # constant ln 2 (1), the product and the quotient on each side (2 + 2): 13 roundings of the value
    for mult, printed in ((1e5, 1993.0), (1000.0, 1196.0)):  # 1000x: the ~1000x of L2536
        gain = elo_gain_for_multiplier(mult)
        assert gain == pytest.approx(printed, abs=0.5)
        closed = 120.0 * math.log(mult) / math.log(2.0)
        assert abs(gain - closed) <= counted_tolerance(closed, roundings=13)
    assert elo_difference(0.5) == 0.0
    # 400 log10(p / (1 - p)) at p = fl(10/11): p, 1 - p, the quotient, log10 and the product round (about 8 unit
    # roundoffs relative to 400 in all, log10's derivative 1/ln 10 < 1 included)
    assert abs(elo_difference(10.0 / 11.0) - 400.0) <= counted_tolerance(400.0, roundings=8)
    # a least-squares slope through exact points: the solve's rounding, condition number of the design [log2 b, 1]
    design = np.stack([np.log2([1.0, 2.0, 4.0, 8.0]), np.ones(4)], axis=1)
    slope = elo_per_doubling(np.array([1.0, 2.0, 4.0, 8.0]), np.array([0.0, 120.0, 240.0, 360.0]))
    assert abs(slope - 120.0) <= tolerance(360.0, terms=4, condition=float(np.linalg.cond(design)))


def test_GAME_45_search_solves_only_the_reachable_subgame() -> None:
    # the number of positions a search from s can touch is the reachable subgame, much smaller than the game
    graph, sol = _ttt()
    game = tic_tac_toe()
    s = graph.states[int(graph.child[graph.child[graph.child[0, 0], 4], 8])]
    sub = enumerate_game(game, root=s)
    assert sub.num_states < graph.num_states / 10
    assert negamax(sub).V[0] == sol.V[graph.index[s]]


def test_GAME_38_one_table_model_and_no_child_sentinel(monkeypatch: pytest.MonkeyPatch) -> None:
    """One model (pi(s), V(s)) = f(s): a logit table and a value table indexed by the same state, and no
    rollouts (GAME-38): expert iteration runs with rollouts made to fail, and every leaf of its searches is
    evaluated by the value table alone."""
    graph, _ = _ttt()
    assert np.all((graph.child == NO_CHILD) == ~graph.legal)
    import reference.search as search_mod

    def no_rollouts(*args: object, **kwargs: object) -> float:
        raise AssertionError("expert iteration must not run rollouts (GAME-38)")

    monkeypatch.setattr(search_mod, "rollout_value", no_rollouts)
    small, _ = _nim((1, 2), 2)
    res = expert_iteration(small, np.random.default_rng(0), num_iterations=2, games_per_iteration=4,
                           num_simulations=6)
    assert res.logits.shape == small.legal.shape and res.V.shape == (small.num_states,)
    assert res.counts.shape == (small.num_states,)


def test_GAME_39_symmetry_augmented_targets_make_the_learned_tables_equivariant() -> None:
    """With symmetry augmentation the policy and value tables commute with every board symmetry:
    pi(sigma(s), sigma(a)) = pi(s, a), V(sigma(s)) = V(s). At a position a symmetry maps to itself the one
    search breaks ties by index, so its visit target was not symmetric (equivariance error 0.2); the target is
    now averaged over the position's stabiliser. Tolerance: the symmetric copies differ only in the order of
    the |stabiliser| <= 8 additions of the averaged target, then follow the same softmax steps."""
    graph, _ = _ttt()
    syms = board_symmetries(graph, square_board_symmetries(3))
    iters = 2
    res = expert_iteration(graph, np.random.default_rng(0), num_iterations=iters, games_per_iteration=0,
                           num_simulations=20, sweep=True, symmetries=syms, lr_value=1.0)
    pi = masked_softmax(graph, res.logits)
    tol = tolerance(1.0, terms=8 * iters)
    for sig, act in syms:
        assert float(np.max(np.abs(pi[sig][:, act] - pi))) <= tol
        np.testing.assert_array_equal(res.V[sig], res.V)


# --- input validation (black-box review): bad input raises a typed error naming the argument --------------
# Each case below used to return a number or a distorted search: NaN / inf / 0 Dirichlet concentration, a
# non-finite logit, NaN step sizes, target rows that are not distributions, wrapped or float state / action
# indices, an agent that is not a player, a negative or NaN tie window, an exploration rate outside [0, 1],
# ignored or non-group symmetries, and non-finite or non-positive Elo arguments.


@cache
def _g22() -> Graph:
    """The 2 x 2 board, 2 in a row (29 positions)."""
    return enumerate_game(MNKGame(2, 2, 2))


@pytest.mark.parametrize(("kw", "err", "match"), [
    ({"dirichlet_alpha": math.nan}, ReferenceError_, "dirichlet_alpha must be a finite number > 0"),  # a NaN prior
    ({"dirichlet_alpha": math.inf}, ReferenceError_, "dirichlet_alpha must be a finite number > 0"),
    ({"dirichlet_alpha": 0.0}, ReferenceError_, "dirichlet_alpha must be a finite number > 0"),  # prior sum 0.75
    ({"dirichlet_alpha": -0.3}, ReferenceError_, "dirichlet_alpha must be a finite number > 0"),
    ({"dirichlet_alpha": "0.3"}, ReferenceError_, "dirichlet_alpha must be a real number"),
    ({"dirichlet_alpha": 0.3, "dirichlet_epsilon": math.nan}, ValueError, "dirichlet_epsilon"),
    ({"dirichlet_alpha": 0.3, "dirichlet_epsilon": -0.1}, ValueError, "dirichlet_epsilon"),
])
def test_GAME_34_mcts_refuses_a_dirichlet_alpha_that_is_not_finite_and_positive(kw: dict[str, Any],
                                                                                  err: type[Exception],
                                                                                  match: str) -> None:
    game = tic_tac_toe()
    with pytest.raises(err, match=match):
        mcts(game, game.initial_state(), num_simulations=4, rng=np.random.default_rng(0), **kw)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_GAME_21_masked_softmax_refuses_non_finite_logits_on_legal_actions(bad: float) -> None:
    graph, _ = _ttt()
    logits = np.zeros(graph.legal.shape)
    logits[0, 4] = bad
    with pytest.raises(InvalidPolicyError, match=r"logits\[0, 4\]"):
        masked_softmax(graph, logits)
    # an entry on an illegal action is not read: a terminal row, and an occupied cell of state child[0, 4]
    logits = np.zeros(graph.legal.shape)
    logits[int(np.flatnonzero(graph.terminal)[0]), 0] = bad
    logits[int(graph.child[0, 4]), 4] = bad
    probs = masked_softmax(graph, logits)
    assert np.all(np.isfinite(probs)) and np.all(probs[~graph.legal] == 0.0)


def _lr_calls() -> dict[str, Callable[[float], object]]:
    graph = _g22()
    one = np.eye(4)[:1]

    def ex_it(**kw: float) -> object:
        return expert_iteration(graph, np.random.default_rng(0), num_iterations=1, games_per_iteration=1,
                                num_simulations=2, **kw)  # type: ignore[arg-type]

    return {
        "lr": lambda v: behaviour_cloning(graph, np.array([0]), one, lr=v, num_steps=1),
        "lr_policy": lambda v: ex_it(lr_policy=v),
        "lr_value": lambda v: ex_it(lr_value=v),
        "lr ": lambda v: fit_fast_policy(graph, np.array([0]), np.array([0]), lr=v, num_steps=1),
    }


@pytest.mark.parametrize("value", [math.nan, math.inf, 0.0, -0.5])
@pytest.mark.parametrize("name", ["lr", "lr_policy", "lr_value", "lr "])
def test_GAME_21_39_learning_rates_must_be_finite_and_positive(name: str, value: float) -> None:
    """behaviour_cloning (lr), expert_iteration (lr_policy, lr_value) and fit_fast_policy (lr, key "lr ")
    returned NaN tables for a NaN step size."""
    with pytest.raises(ReferenceError_, match=rf"{name.strip()} must be a finite number > 0"):
        _lr_calls()[name](value)


def _row(entries: dict[int, float]) -> NDArray[np.float64]:
    t = np.zeros((1, 9))
    for a, v in entries.items():
        t[0, a] = v
    return t


@pytest.mark.parametrize("fn", ["cross_entropy", "behaviour_cloning"])
@pytest.mark.parametrize(("state", "target", "match"), [
    (0, _row({0: 0.5}), "sums to 0.5"),
    (0, _row({0: 2.0}), "sums to 2.0"),  # a doubled one-hot doubled the loss
    (0, _row({0: 1.0 + 1e-12}), "not 1"),  # beyond rounding: the tolerance is a few ulps per entry
    (0, _row({0: 1.5, 1: -0.5}), r"targets\[0, 1\] = -0.5"),
    (0, _row({0: math.nan}), r"targets\[0, 0\] = nan"),
    (1, _row({0: 1.0}), r"targets\[0, 0\] = 1.0 \(state 1\)"),  # cell 0 is taken in state 1 = child[0, 0]
])
def test_GAME_21_targets_must_be_distributions_over_the_legal_actions(fn: str, state: int,
                                                                     target: NDArray[np.float64],
                                                                     match: str) -> None:
    graph, _ = _ttt()
    assert int(graph.child[0, 0]) == 1 and not graph.legal[1, 0]
    with pytest.raises(InvalidPolicyError, match=match):
        if fn == "cross_entropy":
            cross_entropy(graph, np.zeros(graph.legal.shape), np.array([state]), target)
        else:
            behaviour_cloning(graph, np.array([state]), target, lr=0.1, num_steps=1)


def test_GAME_21_rounded_distributions_are_accepted_as_targets() -> None:
    """Rows normalised in floating point (w / sum w, off 1 by a few ulps) pass the target check."""
    graph, _ = _ttt()
    rng = np.random.default_rng(0)
    w = rng.random((200, 9)) ** 4
    targets = w / w.sum(axis=1, keepdims=True)
    states = np.zeros(200, dtype=np.int64)
    loss = cross_entropy(graph, np.zeros(graph.legal.shape), states, targets)
    assert loss == pytest.approx(math.log(9.0), rel=tolerance(1.0, terms=9 * 200))
    assert np.all(np.isfinite(behaviour_cloning(graph, states, targets, lr=0.1, num_steps=1)))


@pytest.mark.parametrize(("states", "err", "match"), [
    (np.array([-6]), ShapeError, "state -6"),  # was read as state 5472
    (np.array([0.5]), ShapeError, r"states\[0\] = 0.5"),  # was a raw IndexError
    (np.array([5478]), ShapeError, "state 5478"),
    (np.array([[0]]), ShapeError, "vector"),
    ("terminal", InvalidPolicyError, "terminal"),  # was inf
])
def test_GAME_21_cross_entropy_validates_state_indices(states: Any, err: type[Exception], match: str) -> None:
    graph, _ = _ttt()
    if isinstance(states, str):
        states = np.array([int(np.flatnonzero(graph.terminal)[0])])
    with pytest.raises(err, match=match):
        cross_entropy(graph, np.zeros(graph.legal.shape), states, _row({0: 1.0}))


@pytest.mark.parametrize(("change", "agent", "err", "match"), [
    (None, 2, InvalidGameError, "agent"),  # every state was treated as an opponent's
    (None, 7, InvalidGameError, "agent"),
    (None, -1, InvalidGameError, "agent"),
    (None, 0.5, InvalidGameError, "agent"),
    ((0, -1), 0, InvalidPolicyError, r"action -1 at actions\[0\]"),  # wrapped to the last action
    ((0, 0.5), 0, InvalidPolicyError, r"actions\[0\] = 0.5"),  # was a raw IndexError
    ((1, 0), 0, InvalidPolicyError, r"actions\[1\] = 0 is illegal in state 1"),  # an opponent state: never read
    ((1, 0), 1, InvalidPolicyError, r"actions\[1\] = 0 is illegal in state 1"),
    ("short", 0, ShapeError, r"actions must have shape \(5478,\)"),
])
def test_GAME_29_guaranteed_value_validates_agent_and_actions(change: Any, agent: Any, err: type[Exception],
                                                              match: str) -> None:
    graph, sol = _ttt()
    actions: Any = greedy_actions(graph, optimal_policy(graph, sol))  # -1 at terminal states: not read
    if change == "short":
        actions = actions[:10]
    elif change is not None:
        actions = actions.astype(type(change[1]))  # int64 stays int64; a float 0.5 needs a float array
        actions[change[0]] = change[1]
    with pytest.raises(err, match=match):
        guaranteed_value(graph, actions, agent)


def test_GAME_29_guaranteed_value_of_the_expert_is_v_star_despite_terminal_sentinels() -> None:
    graph, sol = _ttt()
    actions = greedy_actions(graph, optimal_policy(graph, sol))
    assert np.all(actions[graph.terminal] == -1)
    for agent in (0, 1, np.int64(1)):
        mine = ~graph.terminal & (graph.player == agent)
        np.testing.assert_array_equal(guaranteed_value(graph, actions, agent)[mine], sol.V[mine])  # type: ignore[arg-type]


@pytest.mark.parametrize(("states", "actions", "err", "match"), [
    ([0], [-1], InvalidPolicyError, r"action -1 at actions\[0\]"),  # wrapped to the last action
    ([0], [0.5], InvalidPolicyError, r"actions\[0\] = 0.5"),
    ([1], [0], InvalidPolicyError, r"actions\[0\] = 0 is illegal in state 1"),  # its logit grew without bound
    ([-1], [0], ShapeError, "state -1"),
    ([0, 0], [0], ShapeError, "actions must have shape"),
])
def test_GAME_27_fit_fast_policy_validates_states_and_actions(states: list[float], actions: list[float],
                                                              err: type[Exception], match: str) -> None:
    graph, _ = _ttt()
    with pytest.raises(err, match=match):
        fit_fast_policy(graph, np.array(states), np.array(actions), lr=0.1, num_steps=3)


@pytest.mark.parametrize("atol", [-1.0, -1e-300, math.nan, math.inf, "0"])
def test_GAME_29_optimal_policy_refuses_a_tie_window_that_is_not_finite_and_non_negative(atol: Any) -> None:
    graph, sol = _ttt()
    with pytest.raises(ReferenceError_, match="atol"):
        optimal_policy(graph, sol, atol=atol)  # a negative or NaN one gave all-zero rows
    probs = optimal_policy(graph, sol, atol=0.5)  # win / draw / loss: 0.5 changes nothing
    np.testing.assert_array_equal(probs, optimal_policy(graph, sol))


@pytest.mark.parametrize("explore", [2.0, 1.0 + 1e-12, -0.5, math.nan, "0.5"])
def test_GAME_21_expert_dataset_explore_is_a_probability(explore: Any) -> None:
    graph, sol = _ttt()
    expert = optimal_policy(graph, sol)
    with pytest.raises(ReferenceError_, match="explore"):
        expert_dataset(graph, expert, np.random.default_rng(0), num_games=3, explore=explore)
    states, _ = expert_dataset(graph, expert, np.random.default_rng(0), num_games=3, explore=1.0)
    assert states.size == 0  # every move random and unrecorded


@pytest.mark.parametrize(("sweep", "cells", "err", "match"), [
    (False, None, ReferenceError_, "sweep=True"),  # were silently ignored
    (True, [2], InvalidGameError, "not a group"),  # the 90-degree rotation alone: a raw IndexError in the sweep
    (True, [1, 2], InvalidGameError, "not a group"),
    (True, "dup", InvalidGameError, "not a permutation"),
    (True, "short", InvalidGameError, r"must have shape \(4,\)"),
])
def test_GAME_39_expert_iteration_symmetries_must_be_a_group_and_need_sweep(sweep: bool, cells: Any,
                                                                            err: type[Exception], match: str) -> None:
    graph = _g22()
    perms = square_board_symmetries(2)  # 0: identity, 1: a reflection, 2: the 90-degree rotation
    syms = board_symmetries(graph, perms)
    if cells is None:
        chosen = syms
    elif cells == "dup":
        chosen = [(syms[1][0], np.array([0, 0, 1, 2]))]
    elif cells == "short":
        chosen = [(syms[1][0], syms[1][1][:3])]
    else:
        chosen = [syms[k] for k in cells]
    with pytest.raises(err, match=match):
        expert_iteration(graph, np.random.default_rng(0), num_iterations=1, games_per_iteration=1,
                         num_simulations=2, sweep=sweep, symmetries=chosen)


def test_GAME_39_symmetry_groups_are_accepted_with_or_without_the_identity() -> None:
    graph = _g22()
    syms = board_symmetries(graph, square_board_symmetries(2))
    kw: dict[str, Any] = {"num_iterations": 1, "games_per_iteration": 0, "num_simulations": 4, "sweep": True}
    full = expert_iteration(graph, np.random.default_rng(0), symmetries=syms, **kw)
    no_id = expert_iteration(graph, np.random.default_rng(0), symmetries=syms[1:], **kw)
    half_turn = expert_iteration(graph, np.random.default_rng(0), symmetries=[syms[4]], **kw)  # {id, 180 deg}
    np.testing.assert_array_equal(full.logits, no_id.logits)
    assert np.all(np.isfinite(half_turn.logits))


def test_GAME_39_a_symmetry_listed_twice_is_refused() -> None:
    """A duplicate would be counted twice in the stabiliser average and break equivariance (error 0.025)."""
    graph = _g22()
    syms = board_symmetries(graph, square_board_symmetries(2))
    kw: dict[str, Any] = {"num_iterations": 1, "games_per_iteration": 0, "num_simulations": 4, "sweep": True}
    with pytest.raises(InvalidGameError, match="listed twice"):
        expert_iteration(graph, np.random.default_rng(0), symmetries=[*syms, syms[1]], **kw)


def test_GAME_22_23_policies_and_step_sizes_are_checked() -> None:
    """NaN probabilities, an opponent policy that is not a distribution and a step size that is NaN or
    negative are refused by every function that takes them (each gave NaN or a changed gradient)."""
    graph, _ = _nim((1, 2), 2)
    uni = masked_softmax(graph, np.zeros(graph.legal.shape))
    nan = uni.copy()
    nan[0, int(np.flatnonzero(graph.legal[0])[0])] = math.nan
    with pytest.raises(InvalidPolicyError, match="not finite"):
        win_minus_loss(graph, nan, uni)
    with pytest.raises(InvalidPolicyError, match="not finite"):
        policy_values(graph, nan)
    for bad in (2.0 * uni, nan):
        with pytest.raises(InvalidPolicyError, match="probs_minus"):
            reinforce_gradient_exact(graph, np.zeros(graph.legal.shape), bad)
        with pytest.raises(InvalidPolicyError, match="probs_minus"):
            expected_g_by_enumeration(graph, np.zeros(graph.legal.shape), bad)
        with pytest.raises(InvalidPolicyError, match="probs_minus"):
            reinforce_gradient_sample(graph, np.zeros(graph.legal.shape), bad, np.random.default_rng(0))
    for alpha in (math.nan, -3.0, 0.0):
        with pytest.raises(ReferenceError_, match="alpha"):
            reinforce_self_play(graph, np.zeros(graph.legal.shape), np.random.default_rng(0), alpha=alpha,
                                num_iterations=1, batch_size=1, pool_every=1)


@pytest.mark.parametrize(("kw", "match"), [
    ({"policy_target": "visit"}, "policy_target"),  # ran the "action" variant
    ({"policy_target": "VISITS"}, "policy_target"),
    ({"exploring_starts": math.nan}, "exploring_starts"),  # meant "never"
    ({"exploring_starts": -1.0}, "exploring_starts"),
    ({"exploring_starts": 2.0}, "exploring_starts"),  # meant "always"
    ({"exploring_starts": "0.5"}, "exploring_starts"),
])
def test_GAME_39_expert_iteration_refuses_unknown_targets_and_non_probabilities(kw: dict[str, Any],
                                                                                 match: str) -> None:
    graph, _ = _nim((1, 2), 2)
    with pytest.raises(ReferenceError_, match=match):
        expert_iteration(graph, np.random.default_rng(0), num_iterations=1, games_per_iteration=1,
                         num_simulations=2, **kw)


def test_GAME_18_29_games_with_bad_payoffs_or_players_are_refused() -> None:
    """Non-finite or non-zero-sum payoffs and a player other than 0 or 1 raise InvalidGameError in every
    function that reads them (mcts returned root_value NaN or inf, or a raw IndexError)."""
    with pytest.raises(InvalidGameError, match="not finite"):
        RandomTreeGame(2, 2, np.array([0.5, math.nan, -0.2, 0.1]))

    class Bad:
        """One move from state 0 to the terminal state 1, with the given payoffs and mover."""

        num_actions = 1

        def __init__(self, payoff: tuple[float, float], mover: int) -> None:
            self.payoff, self.mover = payoff, mover

        def initial_state(self) -> int:
            return 0

        def player_to_move(self, state: int) -> int:
            return self.mover

        def is_terminal(self, state: int) -> bool:
            return state == 1

        def legal_actions(self, state: int) -> tuple[int, ...]:
            return () if state == 1 else (0,)

        def apply(self, state: int, action: int) -> int:
            return 1

        def returns(self, state: int) -> tuple[float, float]:
            return self.payoff

    for payoff, mover, match in (((math.nan, math.nan), 0, "finite and zero-sum"),
                                 ((math.inf, -math.inf), 0, "finite and zero-sum"),
                                 ((1.0, 1.0), 0, "zero-sum"), ((1.0, -1.0), 2, "players 0 and 1")):
        game = Bad(payoff, mover)
        s0 = game.initial_state()
        with pytest.raises(InvalidGameError, match=match):
            mcts(game, s0, num_simulations=3, rng=np.random.default_rng(0))
        with pytest.raises(InvalidGameError, match=match):
            enumerate_game(game)
        with pytest.raises(InvalidGameError, match=match):
            minimax_value(game, s0)
        with pytest.raises(InvalidGameError, match=match):
            play_game(game, (lambda s: 0, lambda s: 0))


def test_GAME_34_visit_distribution_of_an_unvisited_root_is_refused_at_every_temperature() -> None:
    game = tic_tac_toe()
    t = mcts(game, game.initial_state(), num_simulations=0, rng=np.random.default_rng(0))
    for tau in (0.0, 1.0):
        with pytest.raises(InvalidPolicyError, match="no root visits"):
            visit_distribution(t, temperature=tau)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: elo_per_doubling(np.array([1.0, 2.0]), np.array([0.0, math.nan])), r"elos\[1\]"),
    (lambda: elo_per_doubling(np.array([1.0, 2.0, 4.0]), np.array([math.inf, 0.0, 1.0])), r"elos\[0\]"),
    (lambda: compute_multiplier_for_elo(2200.0, elo_per_2x=-120.0), "elo_per_2x"),  # was 3e-6
    (lambda: compute_multiplier_for_elo(2200.0, elo_per_2x=0.0), "elo_per_2x"),  # was ZeroDivisionError
    (lambda: compute_multiplier_for_elo(2200.0, elo_per_2x=math.nan), "elo_per_2x"),
    (lambda: compute_multiplier_for_elo(2200.0, elo_per_2x=math.inf), "elo_per_2x"),
    (lambda: compute_multiplier_for_elo(math.nan), "elo_gain"),
    (lambda: compute_multiplier_for_elo(math.inf), "elo_gain"),
    (lambda: compute_multiplier_for_elo(2e5), "float64 range"),  # was a raw OverflowError
    (lambda: elo_per_doubling(np.array([2.0, 2.0]), np.array([0.0, 100.0])), "undefined"),  # was 25.0
    (lambda: elo_per_doubling(np.array([4.0, 4.0, 4.0]), np.array([0.0, 50.0, 100.0])), "undefined"),
    (lambda: elo_gain_for_multiplier(1e5, elo_per_2x=-120.0), "elo_per_2x"),
    (lambda: elo_gain_for_multiplier(1e5, elo_per_2x=math.nan), "elo_per_2x"),
    (lambda: elo_gain_for_multiplier(math.inf), "multiplier"),
])
def test_GAME_44_elo_helpers_refuse_non_finite_input_and_non_positive_elo_per_doubling(
        call: Callable[[], float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("policy_target", ["visits", "action"])
@pytest.mark.parametrize("games", [1, 8])
def test_GAME_39_sampled_expert_iteration_replays_the_text_loop(policy_target: str, games: int) -> None:
    """The sampled path (sweep=False, the default) against a replay of the loop written from the text
    (GAME-39, E-96): on the same random stream, games from exploring starts, searches with root Dirichlet noise,
    moves drawn from the visit distribution for the first temperature_moves plies and the most-visited one
    after, then two policy steps theta <- theta - lr (softmax - mean target) on the states seen (the others
    unchanged) and the value table as the running mean of z from the mover's side. V and the logits must be
    equal to rounding (bound: 4 eps, two steps of a softmax difference of size <= 1). Until 2026-12-07 no test
    read the sampled path's logits: the target could be one-hot, summed instead of averaged, or pull unseen
    states towards 0, unnoticed."""
    gr = enumerate_game(NimGame((1, 2, 3), 2))
    A, n = gr.num_actions, gr.num_states
    kw: dict[str, Any] = dict(num_simulations=6, c_puct=1.5, dirichlet_alpha=0.5, exploring_starts=0.5,
                              temperature_moves=2, lr_value=None, policy_steps=2, lr_policy=0.7)
    res = expert_iteration(gr, np.random.default_rng(11), num_iterations=1, games_per_iteration=games,
                           policy_target=policy_target, **kw)  # type: ignore[arg-type]
    rng = np.random.default_rng(11)
    gm = IndexedGame(gr)
    uni = masked_softmax(gr, np.zeros((n, A)))
    nonterminal = np.flatnonzero(~gr.terminal)
    zs: dict[int, list[float]] = {}
    targets: dict[int, list[np.ndarray]] = {}
    for _ in range(games):
        i = int(rng.choice(nonterminal)) if rng.random() < 0.5 else 0
        path: list[int] = []
        while not gr.terminal[i]:
            t = mcts(gm, i, num_simulations=6, rng=rng, prior=lambda s: uni[s], value=lambda s: 0.0, c_puct=1.5,
                     dirichlet_alpha=0.5)
            pi = t.N[0] / t.N[0].sum()
            a = int(rng.choice(A, p=pi)) if len(path) < 2 else int(np.argmax(t.N[0]))
            targets.setdefault(i, []).append(pi if policy_target == "visits" else np.eye(A)[a])
            path.append(i)
            i = int(gr.child[i, a])
        for s in path:
            zs.setdefault(s, []).append(float(gr.returns[i, gr.player[s]]))
    v = np.zeros(n)
    for s, z in zs.items():
        v[s] = np.mean(z)
    logits = np.zeros((n, A))
    for _ in range(2):
        p = masked_softmax(gr, logits)
        for s, ts in targets.items():
            logits[s] -= 0.7 * (p[s] - np.mean(ts, axis=0))
    if games > 1:  # the per-state mean target matters only where a state was searched more than once
        assert max(len(ts) for ts in targets.values()) >= 2
    assert np.max(np.abs(res.V - v)) <= 4 * EPS
    assert np.max(np.abs(np.where(gr.legal, res.logits - logits, 0.0))) <= 4 * EPS
    unseen = np.setdiff1d(np.arange(n), list(targets))
    assert np.all(res.logits[unseen] == 0.0)


def test_GAME_33_dirichlet_noise_goes_on_the_legal_root_actions_only() -> None:
    """Root noise (1 - eps) P + eps Dir(alpha) over the *legal* actions: on a position with two cells taken,
    the illegal entries stay 0, the legal ones sum to 1 and equal the mix replayed on the same stream. (Every
    earlier noise test started from the empty board, where all 9 actions are legal.)"""
    g = tic_tac_toe()
    s = g.apply(g.apply(g.initial_state(), 4), 0)
    t = mcts(g, s, num_simulations=0, rng=np.random.default_rng(5), prior=lambda st: np.arange(1, 10, dtype=float),
             dirichlet_alpha=0.3, dirichlet_epsilon=0.25)
    legal = [a for a in range(9) if s[a] == 0]
    base = np.zeros(9)
    base[legal] = np.arange(1, 10, dtype=float)[legal]
    base /= base.sum()
    want = base.copy()
    want[legal] = 0.75 * base[legal] + 0.25 * np.random.default_rng(5).dirichlet(np.full(len(legal), 0.3))
    assert t.P[0][0] == 0.0 and t.P[0][4] == 0.0
    assert abs(float(t.P[0].sum()) - 1.0) <= 16 * EPS
    assert np.max(np.abs(t.P[0] - want)) <= 4 * EPS


class _NegativeActionGame:
    """Offers action -1, which numpy indexing would wrap to action num_actions - 1."""

    num_actions = 3

    def initial_state(self) -> int:
        return 0

    def player_to_move(self, s: int) -> int:
        return s % 2

    def legal_actions(self, s: int) -> tuple[int, ...]:
        return () if s >= 2 else (-1, 0)

    def apply(self, s: int, a: int) -> int:
        return s + 1

    def is_terminal(self, s: int) -> bool:
        return s >= 2

    def returns(self, s: int) -> tuple[float, float]:
        return (1.0, -1.0)


def test_GAME_31_mcts_refuses_actions_the_game_cannot_offer_and_unsearched_best_moves() -> None:
    """mcts took a legal action -1 as action A - 1 (numpy wrap; visits [3, 0, 2] on an action never offered),
    best_action() of a tree with no root visits returned the lowest legal index (a move no search chose), a
    rollout policy of the wrong length was read, and temperature=True ran as tau = 1: all raise now."""
    with pytest.raises(InvalidGameError, match="range"):
        mcts(_NegativeActionGame(), 0, num_simulations=5, rng=np.random.default_rng(0))
    with pytest.raises(InvalidGameError, match="range"):
        rollout_value(_NegativeActionGame(), 0, lambda s: np.ones(3) / 3, np.random.default_rng(0))
    g = tic_tac_toe()
    t0 = mcts(g, g.initial_state(), num_simulations=0, rng=np.random.default_rng(0))
    with pytest.raises(InvalidPolicyError, match="no root visits"):
        t0.best_action()
    with pytest.raises(ShapeError):
        rollout_value(g, g.initial_state(), lambda s: np.ones(12) / 12, np.random.default_rng(0))
    t = mcts(g, g.initial_state(), num_simulations=4, rng=np.random.default_rng(0))
    assert t.best_action() == int(np.argmax(t.N[0]))
    with pytest.raises(ValueError, match="real number"):
        visit_distribution(t, temperature=True)


class _OneMoveGame:
    """A one-move game whose legal_actions is given (num_actions = 3)."""

    num_actions = 3

    def __init__(self, legal: tuple[Any, ...]) -> None:
        self.legal = legal

    def initial_state(self) -> tuple[int, ...]:
        return ()

    def player_to_move(self, s: tuple[int, ...]) -> int:
        return len(s) % 2

    def is_terminal(self, s: tuple[int, ...]) -> bool:
        return len(s) == 1

    def legal_actions(self, s: tuple[int, ...]) -> tuple[Any, ...]:
        return () if len(s) == 1 else self.legal

    def apply(self, s: tuple[int, ...], a: int) -> tuple[int, ...]:
        return (*s, a)

    def returns(self, s: tuple[int, ...]) -> tuple[float, float]:
        v = {0: 1.0, 1: -1.0, 2: 0.0}.get(int(s[0]), 0.5)
        return (v, -v)


@pytest.mark.parametrize("legal", [(True,), (1.0,), (-1,), (0, 0, 2), ()])
def test_GAME_18_every_reader_of_legal_actions_checks_them(legal: tuple[Any, ...]) -> None:
    """enumerate_game, minimax_value, uniform_prior (hence rollouts) and mcts read legal_actions through
    checked_legal: a bool action (numpy read True as a mask: every action legal, all with the same child), a
    float (a raw IndexError), -1, a repeat, or none at a non-terminal state raise InvalidGameError (review of
    2026-12-07: only mcts checked them). numpy integers are accepted."""
    g = _OneMoveGame(legal)
    for call in (lambda: enumerate_game(g), lambda: minimax_value(g, g.initial_state()),
                 lambda: uniform_prior(g)(g.initial_state()),
                 lambda: mcts(g, g.initial_state(), num_simulations=3, rng=np.random.default_rng(0))):
        with pytest.raises(InvalidGameError):
            call()
    ok = _OneMoveGame((np.int64(2),))
    assert enumerate_game(ok).legal[0].tolist() == [False, False, True]


def test_GAME_39_expert_iteration_refuses_permutations_that_are_not_symmetries_of_the_game() -> None:
    """Only the group property of `symmetries` was checked: swapping X-in-a-corner with X-on-an-edge (a group of
    two, no symmetry of tic-tac-toe) ran, copied the corner's searched move onto an occupied cell, and read the
    child index -1 as the last state (V = 0.0 where the sweep without symmetries gives 0.5; review 2026-12-07).
    The game's own consistency (players, returns, legal moves, children) is now required."""
    graph = enumerate_game(tic_tac_toe())
    n, n_act = graph.legal.shape
    s0, s1 = int(graph.child[0, 0]), int(graph.child[0, 1])
    sig = np.arange(n)
    sig[[s0, s1]] = [s1, s0]
    with pytest.raises(InvalidGameError, match="not a symmetry of the game"):
        expert_iteration(graph, np.random.default_rng(0), num_iterations=1, games_per_iteration=0,
                         num_simulations=8, sweep=True, symmetries=[(sig, np.arange(n_act))])


def test_GAME_35_a_huge_c_puct_still_selects_legal_positive_prior_actions() -> None:
    """c_puct sqrt(N) overflowing to inf made inf * P / (1 + N) NaN where P = 0, and np.argmax picks the first NaN:
    c_puct = 1e308 chose an occupied tic-tac-toe cell (InvalidGameError from the search itself), and on a random
    tree with prior (1/2, 1/2, 0) the zero-prior action got 26 of 30 visits (review 2026-12-07)."""
    game = tic_tac_toe()
    state = game.apply(game.initial_state(), 4)
    tree = mcts(game, state, num_simulations=10, rng=np.random.default_rng(0), c_puct=1e308)
    assert tree.N[0, 4] == 0  # the occupied cell is never visited
    tree_game = RandomTreeGame.sample(np.random.default_rng(1), depth=3, branching=3)
    tree = mcts(tree_game, tree_game.initial_state(), num_simulations=30, rng=np.random.default_rng(0),
                prior=lambda s: np.array([0.5, 0.5, 0.0]), c_puct=1e300)
    assert tree.N[0, 2] == 0 and tree.N[0, :2].sum() == 30


def test_GAME_26_35_21_33_small_refusals_and_conventions_pinned() -> None:
    """Four behaviours no test reached (mutants survived, review 2026-12-07): negamax_side_to_move refuses a game in
    which a player moves twice (E-86's identity needs alternation); mcts refuses lam outside [0, 1]; masked_softmax
    subtracts the row maximum (logits [1000, 0] give [1, 0], not NaN); rollout_value of a terminal state is 0
    (the absorbing convention: no reward after the game is over)."""
    graph = enumerate_game(_TwoMovesEachGame())
    with pytest.raises(InvalidGameError):
        negamax_side_to_move(graph)
    game = tic_tac_toe()
    with pytest.raises(ValueError, match="lam"):
        mcts(game, game.initial_state(), num_simulations=2, rng=np.random.default_rng(0), lam=1.5)
    ttt = enumerate_game(game)
    logits = np.zeros(ttt.legal.shape)
    logits[0, 0] = 1000.0
    pol = masked_softmax(ttt, logits)
    assert pol[0, 0] == 1.0 and np.all(pol[0, 1:] == 0.0)
    done = next(s for s in ttt.states if game.is_terminal(s))
    assert rollout_value(game, done, lambda s: np.full(9, 1 / 9), np.random.default_rng(0)) == 0.0
