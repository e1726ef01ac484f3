"""The documented properties of reference.generators' random families, checked on their outcome tables.

Almost every property test draws its MDPs from ``random_mdp`` and ``random_layered_mdp`` (through the public
strategies), so a generator that silently lost a property (random T, stochastic rewards, branching, a random p0)
would weaken all of them; 12 such weakening changes passed every test before this file (review 2026-12-07).
Each assertion below is a sentence of the generators' docstrings. Exact checks on the tables (no tolerance),
except the spread of the drawn quantities, whose thresholds are far inside what the stated laws give for these
seeds (a degenerate law gives a spread of exactly 0).
"""

from __future__ import annotations

import numpy as np
import pytest

from reference.generators import random_layered_mdp, random_mdp
from reference.mdp import FiniteMDP


def _rows(m: FiniteMDP) -> np.ndarray:
    """The (s, a) row of every outcome of the table."""
    return np.repeat(np.arange(m.indptr.size - 1), np.diff(m.indptr))


@pytest.mark.parametrize("seed", range(5))
def test_MDP_09_random_layered_mdp_has_its_documented_structure(seed: int) -> None:
    """Layer l moves to layer l + 1 only, the last layer to term, early stops happen with early_stop_prob > 0
    (random T) and never without; ``branching`` distinct successors, each with ``reward_outcomes`` outcomes of
    distinct rewards in [-1, 1] of both signs; s_0 drawn from layer 0 with a non-degenerate p0."""
    n_layers, width, n_act = 4, 3, 2
    m = random_layered_mdp(np.random.default_rng(seed), n_layers, width, n_act, gamma=1.0, branching=2,
                           reward_outcomes=2, early_stop_prob=0.3)
    rows = _rows(m)
    s = rows // n_act
    live = s < m.n_states
    layer, nxt = s // width, m.next_state
    to_term = nxt == m.n_states
    assert np.all(to_term[live & (layer == n_layers - 1)])
    assert np.all(nxt[live & ~to_term] // width == layer[live & ~to_term] + 1)
    assert np.any(live & (layer < n_layers - 1) & to_term & (m.prob > 0))
    for r in range(m.n_states * n_act):
        sel = (rows == r) & ~to_term
        if r // n_act // width < n_layers - 1:
            succ = np.unique(nxt[sel])
            assert succ.size == 2
            assert np.all(np.bincount(nxt[sel])[succ] == 2)
    assert np.unique(m.reward[live]).size == int(live.sum())
    assert m.reward[live].min() < -0.5 and m.reward[live].max() > 0.5 and np.all(np.abs(m.reward) <= 1)
    assert np.all(m.p0[width:] == 0) and np.all(m.p0[:width] > 0) and float(np.std(m.p0[:width])) > 1e-3
    plain = random_layered_mdp(np.random.default_rng(seed), n_layers, width, n_act, gamma=1.0)
    early = (plain.next_state == plain.n_states) & ((_rows(plain) // n_act) // width < n_layers - 1)
    assert not np.any(early & (plain.prob > 0))


@pytest.mark.parametrize("seed", range(5))
def test_MDP_04_random_mdp_has_its_documented_structure(seed: int) -> None:
    """``branching`` successors each with ``reward_outcomes`` outcomes plus a term outcome per row, term mass
    ~U(0, 2 terminal_prob) (spread, within (0, 0.6) for 0.3), distinct rewards of both signs within
    reward_scale and using it, random successors, a Dirichlet p0 over S, and determinism for a seed."""
    n_s, n_act = 6, 3
    kw = {"gamma": 0.9, "branching": 2, "terminal_prob": 0.3, "reward_outcomes": 2, "reward_scale": 3.0}
    m = random_mdp(np.random.default_rng(seed), n_s, n_act, **kw)  # type: ignore[arg-type]
    rows = _rows(m)
    live = rows // n_act < n_s
    assert np.all(np.diff(m.indptr)[: n_s * n_act] == (2 + 1) * 2)
    into_term = live & (m.next_state == n_s)
    t = np.bincount(rows[into_term], weights=m.prob[into_term], minlength=n_s * n_act)
    assert 0 < t.min() and t.max() < 0.6 and float(np.std(t)) > 0.05
    assert np.unique(m.reward[live]).size == int(live.sum())
    assert np.all(np.abs(m.reward) <= 3.0) and float(np.abs(m.reward).max()) > 1.0
    assert m.reward[live].min() < 0 < m.reward[live].max()
    assert np.unique(m.next_state[live & (m.next_state < n_s)]).size > 2
    assert np.all(m.p0[:n_s] > 0) and float(np.std(m.p0[:n_s])) > 1e-3
    again = random_mdp(np.random.default_rng(seed), n_s, n_act, **kw)  # type: ignore[arg-type]
    for a, b in ((m.next_state, again.next_state), (m.reward, again.reward), (m.prob, again.prob),
                 (m.p0, again.p0)):
        np.testing.assert_array_equal(a, b)


def test_pathology_and_terminal_reward_generators_refuse_what_they_cannot_mean() -> None:
    """positive_cycle_mdp(reward=True) was read as 1.0; terminal_reward_mdp read rewards (True, False) as (1, 0),
    raised raw numpy errors for () and nested tuples, and accepted (1e308, -1e308), whose spread overflows
    (review 2026-12-07). Refused now with typed errors; a negative or zero cycle reward stays valid (BEL-36's
    negative cycle, BEL-35's reward-free loop)."""
    from reference.errors import ReferenceError_
    from reference.generators import positive_cycle_mdp
    from reference.grpo import terminal_reward_mdp

    with pytest.raises(ReferenceError_, match="reward"):
        positive_cycle_mdp(reward=True)
    with pytest.raises(ReferenceError_, match="reward"):
        positive_cycle_mdp(reward=float("inf"))
    for ok in (-2.0, 0.0, 3.0):
        assert positive_cycle_mdp(reward=ok, gamma=0.5).outcomes(0, 0)[1][0] == ok
    for bad in ((True, False), (), ((0, 1), (2, 3)), (1e308, -1e308)):
        with pytest.raises(ReferenceError_, match="rewards"):
            terminal_reward_mdp(np.random.default_rng(0), 2, 2, 2, rewards=bad)  # type: ignore[arg-type]
