"""Hypothesis strategies for policy-evaluation and imitation tests (public API).

Like :mod:`reference.testing.strategies`, each strategy draws a seed and sizes and builds the object
with the project's seeded generators, so failures shrink on the seed and reproduce from it.

* :func:`acyclic_mdps`: layered MDPs (every trajectory terminates; enumerable by
  :func:`reference.sampling.enumerate_trajectories`), optionally with early termination and stochastic
  rewards;
* :func:`full_support_policies`: softmax policies with every action probability > 0;
* :func:`linear_features`: features for V ([S, d]) or Q ([S, A, d]) with the term row 0 (EVAL-04);
* :func:`parameters`: weight vectors w;
* :func:`bootstrap_horizons`: k in {None (MC), 1, ..., max_k}.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from reference.generators import random_layered_mdp
from reference.mdp import FiniteMDP, FloatArray, softmax_policy
from reference.testing.strategies import sizes

__all__ = ["acyclic_mdps", "bootstrap_horizons", "full_support_policies", "linear_features", "parameters"]


@st.composite
def acyclic_mdps(draw: st.DrawFn, *, max_layers: int = 3, max_width: int = 3, max_actions: int = 3,
                 gamma: float | None = None, early_stop: bool | None = None,
                 stochastic_rewards: bool | None = None) -> FiniteMDP:
    """A seeded layered (acyclic) MDP: 1..max_layers layers of 1..max_width states, 1..max_actions actions.

    ``gamma`` None draws it from {0.5, 0.9, 1.0} (gamma = 1 is allowed: every trajectory terminates).
    ``early_stop`` None draws whether rows may jump to term early (random T); ``stochastic_rewards`` None
    draws 1 or 2 reward outcomes per successor.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    layers = draw(sizes(1, max_layers))  # the minimum no more often than the other sizes
    width = draw(sizes(1, max_width))
    actions = draw(sizes(1, max_actions))
    g = gamma if gamma is not None else draw(st.sampled_from([0.5, 0.9, 1.0]))
    stop = draw(st.booleans()) if early_stop is None else early_stop
    outcomes = (draw(st.integers(1, 2)) if stochastic_rewards is None else (2 if stochastic_rewards else 1))
    return random_layered_mdp(np.random.default_rng(seed), layers, width, actions, gamma=g,
                              reward_outcomes=outcomes, early_stop_prob=0.2 if stop else 0.0)


@st.composite
def full_support_policies(draw: st.DrawFn, mdp: FiniteMDP, *, scale: float = 1.0) -> FloatArray:
    """A softmax policy [S+, A] (term row included) with logits ~ N(0, scale^2): every action has positive
    probability."""
    seed = draw(st.integers(0, 2**32 - 1))
    logits = scale * np.random.default_rng(seed).normal(size=(mdp.n_states_plus, mdp.n_actions))
    return softmax_policy(logits)


@st.composite
def linear_features(draw: st.DrawFn, mdp: FiniteMDP, *, q: bool = False, max_dim: int = 4) -> FloatArray:
    """Gaussian linear features of dimension 1..max_dim: [S, d] (or [S, A, d] with ``q``), zero on term."""
    seed = draw(st.integers(0, 2**32 - 1))
    d = draw(st.integers(1, max_dim))
    lead = (mdp.n_states_plus, mdp.n_actions) if q else (mdp.n_states_plus,)
    x = np.random.default_rng(seed).normal(size=(*lead, d))
    x[mdp.term] = 0.0
    return x


@st.composite
def parameters(draw: st.DrawFn, dim: int, *, scale: float = 1.0) -> FloatArray:
    """A weight vector w ~ N(0, scale^2 I) of length ``dim``."""
    seed = draw(st.integers(0, 2**32 - 1))
    return scale * np.random.default_rng(seed).normal(size=dim)


@st.composite
def bootstrap_horizons(draw: st.DrawFn, *, max_k: int = 5) -> int | None:
    """k for k-step TD: None (Monte Carlo, k = infinity) in about a quarter of the draws, else 1..max_k with 1 and
    2 drawn most (a k-step target bootstraps only when k < T: on the 1..3-layer MDPs of :func:`acyclic_mdps`
    only 9 - 26 % of the examples bootstrapped until 2026-12-07)."""
    if draw(st.sampled_from([False, True, True, True])):
        return int(draw(st.sampled_from([k for k in (1, 2, 1, 2, *range(3, max_k + 1)) if k <= max_k])))
    return None
