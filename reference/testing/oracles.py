"""Independent slow oracles and the value tolerance used by the property tests (public API).

The fast code in :mod:`reference` works with matrices (P as a CSR/dense matrix, einsum). The oracles
here recompute the same expectations by explicit loops over the outcome table p(r, s' | s, a), so a
test comparing the two checks the matrix plumbing against the text's definitions.
"""

from __future__ import annotations

import numpy as np

from reference.mdp import FiniteMDP, FloatArray
from reference.tolerance import discount_condition, tolerance, value_scale

__all__ = ["expectation_by_outcomes", "optimal_values_by_enumeration", "value_tolerance"]

MAX_ENUMERATED_POLICIES = 100_000
"""Largest A^|S| that :func:`optimal_values_by_enumeration` accepts."""


def value_tolerance(mdp: FiniteMDP, *, horizon: float | None = None, extra_scale: float = 0.0) -> float:
    """Tolerance for comparing two computations of a value function of ``mdp``.

    ``tolerance(scale, terms=|S+|, condition=kappa)`` with scale = R / (1 - gamma) + extra_scale (the
    MDP-19 bound on |V|, plus the magnitude of any other operand) and kappa the condition bound of
    ``I - gamma P`` (:func:`reference.tolerance.discount_condition`). At gamma = 1 pass ``horizon``, a
    bound on the expected time to termination.
    """
    r = max(mdp.max_abs_reward, 1e-300)
    scale = value_scale(r, mdp.gamma, horizon) + extra_scale
    return tolerance(scale, terms=mdp.n_states_plus, condition=discount_condition(mdp.gamma, horizon))


def expectation_by_outcomes(mdp: FiniteMDP, v: FloatArray) -> FloatArray:
    """E_{(r, s') ~ p(., . | s, a)}[r + gamma V(s') | s, a] by an explicit loop over outcomes; [S] -> [S, A]."""
    out = np.zeros((mdp.n_states_plus, mdp.n_actions))
    for s in range(mdp.n_states_plus):
        for a in range(mdp.n_actions):
            probs, rewards, nexts = mdp.outcomes(s, a)
            out[s, a] = sum(float(p) * (float(r) + mdp.gamma * float(v[int(s2)]))
                            for p, r, s2 in zip(probs, rewards, nexts, strict=True))
    return out


def optimal_values_by_enumeration(mdp: FiniteMDP) -> FloatArray:
    """V* as the elementwise max of V^pi over every deterministic policy (BEL-10: an optimal deterministic
    policy attains it at every state); [S+1]. Shares no code with policy or value iteration: one exact linear
    solve per policy. ``mdp.gamma < 1``; ValueError if A^|S| exceeds ``MAX_ENUMERATED_POLICIES``.
    """
    from reference.exact import v_pi
    from reference.mdp import deterministic_policy

    n, a = mdp.n_states, mdp.n_actions
    if a**n > MAX_ENUMERATED_POLICIES:
        raise ValueError(f"{a}^{n} deterministic policies: too many to enumerate (max {MAX_ENUMERATED_POLICIES})")
    best = np.full(mdp.n_states_plus, -np.inf)
    for code in range(a**n):
        acts = np.array([(code // a**i) % a for i in range(n)] + [0])
        best = np.maximum(best, v_pi(mdp, deterministic_policy(acts, a)))
    return best
