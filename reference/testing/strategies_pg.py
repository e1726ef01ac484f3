"""Hypothesis strategies for the policy-gradient part: tiny acyclic MDPs, softmax parameters, baselines.

The layered MDPs are small enough for the exact trajectory oracle
(:func:`reference.sampling.enumerate_trajectories`): at most ``max_layers`` steps, ``max_width`` states
per layer and ``max_actions`` actions, with optional stochastic rewards and early termination.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from reference.generators import random_layered_mdp
from reference.mdp import FiniteMDP, FloatArray
from reference.testing.strategies import sizes

__all__ = ["baselines", "layered_mdps", "softmax_parameters"]


@st.composite
def layered_mdps(
    draw: st.DrawFn,
    *,
    max_layers: int = 3,
    max_width: int = 2,
    max_actions: int = 2,
    gamma: float | None = None,
    stochastic_rewards: bool | None = None,
) -> FiniteMDP:
    """An acyclic layered MDP (T <= n_layers) from :func:`reference.generators.random_layered_mdp`, with
    2..max(2, max_actions) actions (at least 2 whatever ``max_actions``: a policy gradient needs a choice).

    ``gamma=None`` draws gamma from {1.0} ∪ [0.5, 0.99]; ``stochastic_rewards=None`` draws whether each
    successor has 2 equally likely rewards. Early termination probability is drawn from {0, 0.2}.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    n_layers = draw(sizes(1, max_layers))  # one layer no more often than two or three (it was 40 - 65 %)
    width = draw(sizes(1, max_width))
    n_actions = draw(st.integers(2, max(2, max_actions)))
    g = gamma if gamma is not None else draw(st.one_of(st.just(1.0), st.floats(0.5, 0.99)))
    stoch = stochastic_rewards if stochastic_rewards is not None else draw(st.booleans())
    early = draw(st.sampled_from([0.0, 0.2]))
    return random_layered_mdp(np.random.default_rng(seed), n_layers, width, n_actions, gamma=g,
                              reward_outcomes=2 if stoch else 1, early_stop_prob=early)


@st.composite
def softmax_parameters(draw: st.DrawFn, mdp: FiniteMDP, *, scale: float = 2.0) -> FloatArray:
    """Tabular softmax logits theta of shape [S+, A] with entries in [-scale, scale]."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return np.asarray(rng.uniform(-scale, scale, size=(mdp.n_states_plus, mdp.n_actions)), dtype=np.float64)


@st.composite
def baselines(draw: st.DrawFn, mdp: FiniteMDP, *, scale: float = 3.0) -> FloatArray:
    """An arbitrary deterministic state baseline b : S+ -> R (shape [S+]) with entries in [-scale, scale]."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return np.asarray(rng.uniform(-scale, scale, size=mdp.n_states_plus), dtype=np.float64)
