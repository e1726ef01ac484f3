"""Hypothesis strategies for finite MDPs, policies and value functions (public API).

Every strategy is an ``@st.composite`` with keyword-only parameters and draws a *seed* from Hypothesis
and builds the object with the project's seeded generators, so that shrinking works on the seed and
on the sizes, and a failing example is reproducible from its printed arguments. Families:

* ``"dense"``: every state is a successor (:func:`reference.generators.random_mdp`, branching=None);
* ``"sparse"``: a few successors per (s, a);
* ``"terminating"``: sparse with transitions to term;
* ``"layered"``: acyclic, every trajectory terminates (enumerable);
* ``"mixed"``: 1..2 successors per (s, a), about half of the rows can terminate (probability 0.3) and about a
  third of the rewards are exactly 0. At gamma = 1 one MDP has both proper and improper policies and
  reward-free loops (the BEL-35..BEL-38 cases); at every gamma the zero rewards give exact ties between
  actions and all-zero value functions (tolerances must not scale with the rewards alone).

Rewards are uniform in [-1, 1]; ``reward_outcomes`` > 1 gives stochastic rewards with finite support.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from hypothesis import strategies as st

from reference.generators import random_layered_mdp, random_mdp
from reference.mdp import FiniteMDP, FloatArray, from_arrays, softmax_policy

__all__ = [
    "PINNED_DISCOUNTS",
    "Family",
    "deterministic_policies",
    "discounts",
    "finite_mdps",
    "policies",
    "sizes",
    "value_functions",
]

Family = Literal["dense", "sparse", "terminating", "layered", "mixed"]
FAMILIES: tuple[Family, ...] = ("dense", "sparse", "terminating", "layered", "mixed")
"""The default families: all five. With ``"mixed"`` at gamma = 1 some policies are improper, so a test that
evaluates arbitrary policies at gamma = 1 must expect ImproperPolicyError there (or pass ``families``
without it). ``"mixed"`` was opt-in until 2026-12-07; in the default it found two test tolerances that
scaled with the rewards only (BEL-02, BEL-04 iteration tests with all rewards 0)."""


PINNED_DISCOUNTS: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999, 0.9999, 1.0)
"""Discounts :func:`discounts` draws as often as the continuous range (those within its bounds): Hypothesis's
float draws favour the low end (until 2026-12-07 a quarter to a half of some tests' examples sat at exactly
min_gamma = 0.05, and several theorem tests never saw gamma >= 0.95, nor gamma = 1 where it was allowed)."""


def sizes(lo: int, hi: int) -> st.SearchStrategy[int]:
    """An integer in [lo, hi] with the smallest value drawn no more often than the others (``st.integers`` favours
    it: 1-state or 1-action MDPs were 20 - 58 % of the examples, where optimality has no choice to make)."""
    if hi < lo:
        raise ValueError(f"sizes: hi = {hi} < lo = {lo}")
    if hi == lo:
        return st.just(lo)
    return st.sampled_from([*range(lo + 1, hi + 1), lo])


@st.composite
def discounts(draw: st.DrawFn, *, min_gamma: float = 0.05, max_gamma: float = 0.99) -> float:
    """A discount gamma in [min_gamma, max_gamma] (default stays below 1: the gamma < 1 theorems): half the
    draws from :data:`PINNED_DISCOUNTS` within the bounds (max_gamma included), half from the continuous range."""
    if not min_gamma <= max_gamma:
        raise ValueError(f"discounts: min_gamma = {min_gamma} > max_gamma = {max_gamma}")
    pinned = sorted({g for g in PINNED_DISCOUNTS if min_gamma <= g <= max_gamma} | {max_gamma})
    if draw(st.booleans()):
        return float(draw(st.sampled_from(pinned[::-1])))
    return draw(st.floats(min_value=min_gamma, max_value=max_gamma, allow_nan=False))


@st.composite
def finite_mdps(
    draw: st.DrawFn,
    *,
    families: tuple[Family, ...] = FAMILIES,
    max_states: int = 8,
    max_actions: int = 4,
    gamma: float | None = None,
    min_gamma: float = 0.05,
    max_gamma: float = 0.99,
    stochastic_rewards: bool | None = None,
    backend: Literal["dense", "sparse"] | None = None,
    p0_on_term: bool | None = None,
) -> FiniteMDP:
    """A seeded random FiniteMDP of one of ``families``, with 1..max_states states and 1..max_actions actions
    (:func:`sizes`: the minimum no more often than any other size).

    ``gamma`` fixes the discount; otherwise it is drawn by :func:`discounts` from [min_gamma, max_gamma].
    ``stochastic_rewards`` None draws whether rewards have several outcomes per successor; True leaves out the
    "mixed" family, whose rewards are deterministic (``ValueError`` if no other family is listed). False gives
    one reward per listed successor; a successor listed twice (``branching``) may still carry two rewards.
    ``backend`` None draws the storage of the transition matrix (sparse in about a quarter of the draws; the
    numbers are the same, the code paths are not); ``p0_on_term`` None puts mass 0.25 of p0 on term in about an
    eighth of the draws (T = 0 for those episodes; False never, True always).
    """
    if stochastic_rewards:  # "mixed" has deterministic rewards only: it was drawn anyway
        families = tuple(f for f in families if f != "mixed")
        if not families:
            raise ValueError("finite_mdps: stochastic_rewards=True needs a family other than 'mixed'")
    family = draw(st.sampled_from(families))
    n_actions = draw(sizes(1, max_actions))
    seed = draw(st.integers(0, 2**32 - 1))
    g = gamma if gamma is not None else draw(discounts(min_gamma=min_gamma, max_gamma=max_gamma))
    outcomes = (draw(st.integers(1, 3)) if stochastic_rewards is None
                else (2 if stochastic_rewards else 1))
    stores: list[Literal["dense", "sparse"]] = ["dense", "dense", "dense", "sparse"]
    store = backend if backend is not None else draw(st.sampled_from(stores))
    on_term = p0_on_term if p0_on_term is not None else draw(st.sampled_from([False] * 7 + [True]))
    mdp = _finite_mdp(draw, family, n_actions, g, outcomes, np.random.default_rng(seed), max_states)
    if on_term:
        mdp = mdp.with_p0(np.append(0.75 * np.asarray(mdp.p0)[:-1], 0.25))
    return mdp if store == mdp.backend else mdp.with_backend(store)


def _finite_mdp(draw: st.DrawFn, family: Family, n_actions: int, g: float, outcomes: int,
                rng: np.random.Generator, max_states: int) -> FiniteMDP:
    if family == "layered":
        n_layers = draw(sizes(1, max(1, min(4, max_states))))
        width = draw(sizes(1, max(1, max_states // n_layers)))
        return random_layered_mdp(rng, n_layers, width, n_actions, gamma=g, reward_outcomes=outcomes,
                                  early_stop_prob=draw(st.sampled_from([0.0, 0.2])))
    n_states = draw(sizes(1, max_states))
    if family == "mixed":
        P = np.zeros((n_states, n_actions, n_states + 1))
        for s_ in range(n_states):
            for a_ in range(n_actions):
                succ = rng.integers(0, n_states, size=int(rng.integers(1, 3)))
                np.add.at(P[s_, a_], succ, rng.dirichlet(np.ones(succ.size)))  # duplicates merge
                if rng.random() < 0.5:  # this row can terminate
                    P[s_, a_] *= 0.7
                    P[s_, a_, n_states] = 0.3
        R = rng.uniform(-1.0, 1.0, size=(n_states, n_actions))
        R[rng.random((n_states, n_actions)) < 1 / 3] = 0.0
        return from_arrays(P, R, rng.dirichlet(np.ones(n_states)), gamma=g, name="mixed")
    if family == "dense":
        return random_mdp(rng, n_states, n_actions, gamma=g, reward_outcomes=outcomes)
    branching = draw(st.integers(1, 3))
    term = 0.3 if family == "terminating" else 0.0
    return random_mdp(rng, n_states, n_actions, gamma=g, branching=branching, terminal_prob=term,
                      reward_outcomes=outcomes)


@st.composite
def policies(draw: st.DrawFn, mdp: FiniteMDP, *, deterministic_mass: bool = True) -> FloatArray:
    """A stochastic policy [S+, A]: softmax of random logits (every entry > 0), except that with
    ``deterministic_mass`` (the default) about half the draws make some rows one-hot (the simplex's vertices);
    rows supported on more than one action but not all of them are not drawn.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    pi = softmax_policy(scale * rng.normal(size=(mdp.n_states_plus, mdp.n_actions)))
    if deterministic_mass and draw(st.booleans()):
        rows = rng.random(mdp.n_states_plus) < 0.5
        onehot = np.zeros_like(pi)
        onehot[np.arange(mdp.n_states_plus), rng.integers(0, mdp.n_actions, mdp.n_states_plus)] = 1.0
        pi = np.where(rows[:, None], onehot, pi)
    return pi


@st.composite
def deterministic_policies(draw: st.DrawFn, mdp: FiniteMDP) -> np.ndarray:
    """A deterministic policy as int actions [S+]."""
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(0, mdp.n_actions, mdp.n_states_plus).astype(np.int64)


@st.composite
def value_functions(draw: st.DrawFn, mdp: FiniteMDP, *, q: bool = False, scale: float | None = None,
                    term_zero: bool = False) -> FloatArray:
    """A value function V [S+] (or Q [S+, A]) with entries of magnitude up to ``scale``.

    Default scale: max(R, 1) / (1 - gamma) (the MDP-19 bound when R >= 1), or max(R, 1) * (S + 1) at gamma = 1.
    Half the draws are rounded to integers (exact ties among the entries of V or Q; with continuous rewards the
    lookaheads r + gamma P V built from them rarely tie). ``term_zero`` sets
    V(term) = 0 (the functions of MDP-20), otherwise the term entry is arbitrary, like the operators'
    domain (functions on S+).
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if scale is None:
        r = max(mdp.max_abs_reward, 1.0)
        scale = r / (1.0 - mdp.gamma) if mdp.gamma < 1 else r * mdp.n_states_plus
    shape = (mdp.n_states_plus, mdp.n_actions) if q else (mdp.n_states_plus,)
    v = scale * rng.uniform(-1.0, 1.0, size=shape)
    if draw(st.booleans()):
        v = np.round(v)  # integer values: exact ties among entries (greedy on a Q drawn with q=True)
    if term_zero:
        v[mdp.term] = 0.0
    return v
