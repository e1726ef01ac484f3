"""Seeded random MDP families and the text's gamma = 1 pathologies as constructible examples.

Every generator takes an explicit ``numpy.random.Generator`` (same seed, same MDP). Families:

* :func:`random_mdp`: ``branching`` successors per (s, a) (``branching=None``: all states, dense),
  optional probability ``terminal_prob`` of a transition to term, rewards uniform in [-1, 1], and
  ``reward_outcomes`` > 1 for stochastic rewards with finite support (several rewards per successor).
* :func:`random_layered_mdp`: acyclic; layer l moves only to layer l+1, the last layer to term, so
  every trajectory has length at most ``n_layers``, exactly ``n_layers`` when ``early_stop_prob`` = 0
  (enumerable).

Pathologies (BEL-28, BEL-35 with E-12, BEL-36, BEL-38): :func:`vi_oscillation_mdp`,
:func:`stay_or_go_mdp`, :func:`positive_cycle_mdp`, :func:`alternating_reward_mdp`.
"""

from __future__ import annotations

import numpy as np

from reference.errors import ReferenceError_
from reference.mdp import Backend, FiniteMDP, _real, from_arrays, from_outcomes, validate_gamma, validate_int

__all__ = [
    "alternating_reward_mdp",
    "positive_cycle_mdp",
    "random_layered_mdp",
    "random_mdp",
    "stay_or_go_mdp",
    "vi_oscillation_mdp",
]


def _in_range(x: object, name: str, lo: float, hi: float) -> float:
    """A real number (:func:`reference.mdp._real`: bools, strings refused) in [lo, hi] (NaN refused)."""
    v = _real(x, name)
    if not (lo <= v <= hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {x!r}")
    return v


def random_mdp(
    rng: np.random.Generator,
    n_states: int,
    n_actions: int,
    *,
    gamma: float,
    branching: int | None = None,
    terminal_prob: float = 0.0,
    reward_outcomes: int = 1,
    reward_scale: float = 1.0,
    backend: Backend = "auto",
) -> FiniteMDP:
    """Random MDP: each (s, a) has ``branching`` uniformly chosen successors with Dirichlet(1) weights.

    Args:
        branching: successors per (s, a), drawn with replacement; None = all |S| states. A successor drawn
            twice keeps two outcomes, each with its own reward, so r given (s, a, s') may be random even
            with ``reward_outcomes=1``.
        terminal_prob: each row sends probability mass ~U(0, 2 terminal_prob) (capped at 1) to term.
            0 gives a continual task (MDP-03: then T = inf a.s.).
        reward_outcomes: number of equally likely rewards per successor (> 1: stochastic rewards).
        reward_scale: rewards are uniform in [-reward_scale, reward_scale].
    p0 is Dirichlet(1) over S.
    """
    validate_gamma(gamma)
    n_states = validate_int(n_states, "n_states", minimum=1)  # 0 raised a raw ZeroDivisionError
    n_actions = validate_int(n_actions, "n_actions", minimum=1)
    terminal_prob = _in_range(terminal_prob, "terminal_prob", 0.0, 1.0)  # True was read as 1.0
    reward_scale = _in_range(reward_scale, "reward_scale", 0.0, 1e300)  # 1e308 overflowed
    reward_outcomes = validate_int(reward_outcomes, "reward_outcomes", minimum=1)
    n_rows = n_states * n_actions
    k = n_states if branching is None else validate_int(branching, "branching", minimum=1)
    if branching is None:
        succ = np.broadcast_to(np.arange(n_states), (n_rows, n_states))
    else:
        succ = rng.integers(0, n_states, size=(n_rows, k))
    w = rng.exponential(size=(n_rows, k))
    w /= w.sum(axis=1, keepdims=True)
    if terminal_prob > 0:
        t = np.minimum(rng.uniform(0.0, 2.0 * terminal_prob, size=(n_rows, 1)), 1.0)
        w = np.concatenate([w * (1.0 - t), t], axis=1)
        succ = np.concatenate([succ, np.full((n_rows, 1), n_states)], axis=1)
        k += 1
    m = int(reward_outcomes)
    if m < 1:
        raise ValueError(f"reward_outcomes must be >= 1, got {m}")
    prob = np.repeat(w / m, m, axis=1)
    nxt = np.repeat(succ, m, axis=1)
    rew = rng.uniform(-reward_scale, reward_scale, size=(n_rows, k * m))
    indptr = np.arange(0, n_rows * k * m + 1, k * m, dtype=np.int64)
    p0 = rng.exponential(size=n_states)
    p0 /= p0.sum()
    return from_outcomes(n_states, n_actions, indptr, nxt.ravel(), rew.ravel(), prob.ravel(), p0,
                         gamma=gamma, backend=backend, name=f"random(S={n_states},A={n_actions},b={branching})")


def random_layered_mdp(
    rng: np.random.Generator,
    n_layers: int,
    width: int,
    n_actions: int,
    *,
    gamma: float,
    branching: int | None = None,
    reward_outcomes: int = 1,
    early_stop_prob: float = 0.0,
) -> FiniteMDP:
    """Acyclic (layered) random MDP: state ``l * width + j`` is in layer l; layer l moves to layer l+1.

    The last layer moves to term, so T <= n_layers; with ``early_stop_prob`` > 0 a row may also move to
    term early (random T). s_0 is drawn from layer 0. Rewards uniform in [-1, 1]. ``branching`` (None: all
    ``width`` states of the next layer) successors per (s, a), drawn without replacement, so at most ``width``
    (a larger value is capped at ``width``).

    Spec: MDP-09.
    """
    validate_gamma(gamma)
    n_layers = validate_int(n_layers, "n_layers", minimum=1)  # 0, 2.5: raw numpy / Python errors before
    width = validate_int(width, "width", minimum=1)
    n_actions = validate_int(n_actions, "n_actions", minimum=1)
    early_stop_prob = _in_range(early_stop_prob, "early_stop_prob", 0.0, 1.0)
    reward_outcomes = validate_int(reward_outcomes, "reward_outcomes", minimum=1)
    n_states = n_layers * width
    b = width if branching is None else min(validate_int(branching, "branching", minimum=1), width)
    rows = []
    indptr = [0]
    nxt: list[np.ndarray] = []
    prob: list[np.ndarray] = []
    rew: list[np.ndarray] = []
    for s in range(n_states):
        layer = s // width
        for _a in range(n_actions):
            if layer == n_layers - 1:
                succ = np.array([n_states])
                w = np.array([1.0])
            else:
                succ = (layer + 1) * width + rng.choice(width, size=b, replace=False)
                w = rng.exponential(size=b)
                w /= w.sum()
                if early_stop_prob > 0:
                    t = min(rng.uniform(0.0, 2.0 * early_stop_prob), 1.0)  # capped like random_mdp's term mass
                    succ = np.append(succ, n_states)
                    w = np.append(w * (1 - t), t)
            m = reward_outcomes
            nxt.append(np.repeat(succ, m))
            prob.append(np.repeat(w / m, m))
            rew.append(rng.uniform(-1.0, 1.0, size=succ.size * m))
            indptr.append(indptr[-1] + succ.size * m)
            rows.append(s)
    p0 = np.zeros(n_states)
    p0[:width] = rng.exponential(size=width)
    p0 /= p0.sum()
    return from_outcomes(n_states, n_actions, indptr, np.concatenate(nxt), np.concatenate(rew),
                         np.concatenate(prob), p0, gamma=gamma,
                         name=f"layered(L={n_layers},W={width},A={n_actions})")


def stay_or_go_mdp(*, gamma: float = 1.0) -> FiniteMDP:
    """Erratum E-12 counterexample to BEL-35: one state, "stay" (a=0: r=0, self-loop), "go" (a=1: r=1, term).

    Every policy has a finite value (V^stay = 0, V^go = 1) and V* = 1 = B^* V*, but at gamma = 1 every V
    with V(0) >= 1 and V(term) = 0 solves V = B^* V (no uniqueness), so VI from V^0(0) = 5 never moves;
    and at V* both actions attain the max (1 = 0 + V*(0) = 1 + 0), so a greedy policy may pick "stay",
    whose value is 0: greedy policies w.r.t. V* need not be optimal at gamma = 1.
    """
    P = np.zeros((1, 2, 2))
    P[0, 0, 0] = 1.0
    P[0, 1, 1] = 1.0
    R = np.array([[0.0, 1.0]])
    return from_arrays(P, R, [1.0], gamma=gamma, name="stay-or-go (E-12)")


def positive_cycle_mdp(*, gamma: float = 1.0, reward: float = 1.0) -> FiniteMDP:
    """BEL-36: two states cycling 0 -> 1 -> 0 with reward ``reward`` under a=0; a=1 terminates (r=0).

    ``reward`` is any finite real number (not a bool): > 0 gives BEL-36's positive cycle (at gamma = 1 the
    cycling policy has V = +inf), < 0 a negative one (V = -inf, also used by the tests), 0 a reward-free loop
    (an improper policy of value 0, BEL-35). For gamma < 1 the cycling policy's value is reward / (1 - gamma).
    """
    reward = _real(reward, "reward")  # True was read as 1.0
    if not np.isfinite(reward):
        raise ReferenceError_(f"reward must be finite, got {reward!r}")
    P = np.zeros((2, 2, 3))
    P[0, 0, 1] = 1.0
    P[1, 0, 0] = 1.0
    P[:, 1, 2] = 1.0
    R = np.array([[reward, 0.0], [reward, 0.0]])
    return from_arrays(P, R, [1.0, 0.0], gamma=gamma, name="positive cycle (BEL-36)")


def alternating_reward_mdp(*, gamma: float = 1.0) -> FiniteMDP:
    """BEL-38: a single action cycling 0 -> 1 -> 0 with rewards +1, -1, +1, ... from state 0.

    At gamma = 1 the return has no sum; the Cesaro and the Abel value from state 0 are both 1/2
    (erratum E-14), from state 1 both -1/2. For gamma < 1, V(0) = 1 / (1 + gamma).
    """
    P = np.zeros((2, 1, 3))
    P[0, 0, 1] = 1.0
    P[1, 0, 0] = 1.0
    R = np.array([[1.0], [-1.0]])
    return from_arrays(P, R, [1.0, 0.0], gamma=gamma, name="alternating rewards (BEL-38)")


def vi_oscillation_mdp() -> FiniteMDP:
    """BEL-28: at gamma = 1 value iteration need not converge.

    The alternating-reward chain of :func:`alternating_reward_mdp` at gamma = 1: B^* V = r + P V, so
    V^k(0) is the partial sum 1, 0, 1, 0, ... from V^0 = 0 and never converges.
    """
    return alternating_reward_mdp(gamma=1.0)
