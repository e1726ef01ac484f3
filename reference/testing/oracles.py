"""Independent slow oracles and the value tolerance used by the property tests (public API).

The fast code in :mod:`reference` works with matrices (P as a CSR/dense matrix, einsum). The oracles
here recompute the same expectations by explicit loops over the outcome table p(r, s' | s, a), so a
test comparing the two checks the matrix plumbing against the text's definitions.
"""

from __future__ import annotations

import numpy as np

from reference.mdp import FiniteMDP, FloatArray
from reference.tolerance import discount_condition, tolerance, value_scale

__all__ = ["expectation_by_outcomes", "optimal_values_by_enumeration", "q_values_by_solve", "value_tolerance"]

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


def q_values_by_solve(mdp: FiniteMDP, pi: FloatArray) -> FloatArray:
    """Q^pi as the solution of its own linear system over state-action pairs, [S+1, A] (MDP-21, MDP-25).

    Q(s, a) = r(s, a) + gamma sum_{s'} P(s' | s, a) sum_{a'} pi(a' | s') Q(s', a') with Q(term, .) = 0: one
    ``numpy.linalg.solve`` of the |S||A| system, P and r rebuilt from the outcome table by explicit loops.
    Independent of :mod:`reference.exact`, which computes Q^pi from V^pi (``q_from_v(v_pi)``); so a test of
    V^pi = E_{a ~ pi}[Q^pi] (MDP-22) against this oracle can fail. ``pi`` [S+1, A]. gamma < 1, or gamma = 1 with
    a proper ``pi`` (else the system is singular: numpy's LinAlgError, or a solution with huge entries).
    """
    n, a = mdp.n_states, mdp.n_actions
    gamma = float(mdp.gamma)
    P = np.zeros((n * a, n))
    r = np.zeros(n * a)
    for s in range(n):
        for b in range(a):
            probs, rewards, nexts = mdp.outcomes(s, b)
            for p, rw, s2 in zip(probs, rewards, nexts, strict=True):
                r[s * a + b] += float(p) * float(rw)
                if int(s2) < n:  # term has Q = 0: its column is dropped
                    P[s * a + b, int(s2)] += float(p)
    spread = np.zeros((n, n * a))  # V(s') = sum_a' pi(a' | s') Q(s', a')
    for s in range(n):
        spread[s, s * a:(s + 1) * a] = np.asarray(pi, dtype=np.float64)[s]
    q = np.linalg.solve(np.eye(n * a) - gamma * P @ spread, r)
    out = np.zeros((mdp.n_states_plus, a))
    out[:n] = q.reshape(n, a)
    return out


def optimal_values_by_enumeration(mdp: FiniteMDP) -> FloatArray:
    """V* as the elementwise max of V^pi over every deterministic policy (BEL-10: an optimal deterministic
    policy attains it at every state); [S+1].

    Independent of :mod:`reference.exact` and :mod:`reference.dp`: P and r are rebuilt from the outcome table
    by explicit loops (``mdp.outcomes``), and each policy's V^pi is one ``numpy.linalg.solve`` of
    (I - gamma P_pi) V = r_pi over S. (Until 2026-12-07 it called ``exact.v_pi``, the evaluation policy
    iteration uses: a bug there was shared by PI and this oracle, and three tests could not see it.)

    gamma < 1, or gamma = 1 with every deterministic policy proper (it reaches term from every state; checked
    by a reachability search, else ValueError: V* at gamma = 1 with improper policies is
    :func:`reference.dp.v_star`'s business, not an enumeration's). ValueError if A^|S| exceeds
    ``MAX_ENUMERATED_POLICIES``.
    """
    n, a = mdp.n_states, mdp.n_actions
    if a**n > MAX_ENUMERATED_POLICIES:
        raise ValueError(f"{a}^{n} deterministic policies: too many to enumerate (max {MAX_ENUMERATED_POLICIES})")
    gamma = float(mdp.gamma)
    P = np.zeros((n, a, n))
    r = np.zeros((n, a))
    ends = np.zeros((n, a), dtype=bool)  # (s, a) moves to term with positive probability
    for s in range(n):
        for b in range(a):
            probs, rewards, nexts = mdp.outcomes(s, b)
            for p, rw, s2 in zip(probs, rewards, nexts, strict=True):
                r[s, b] += float(p) * float(rw)
                if int(s2) < n:  # term (index n) has V = 0: its column is dropped
                    P[s, b, int(s2)] += float(p)
                elif p > 0:
                    ends[s, b] = True
    rows = np.arange(n)
    best = np.full(mdp.n_states_plus, -np.inf)
    best[n] = 0.0
    for code in range(a**n):
        acts = np.array([(code // a**i) % a for i in range(n)], dtype=np.int64)
        p_pi = P[rows, acts]
        if gamma >= 1.0:
            reach = np.zeros(n, dtype=bool)  # states that reach term under the policy
            frontier = ends[rows, acts]
            while frontier.any() and not reach.all():
                reach |= frontier
                frontier = ~reach & (p_pi[:, reach].sum(axis=1) > 0.0)
            if not reach.all():
                raise ValueError(f"optimal_values_by_enumeration: at gamma = 1 the policy {acts.tolist()} is "
                                 f"improper (states {np.flatnonzero(~reach).tolist()} never reach term)")
        v = np.linalg.solve(np.eye(n) - gamma * p_pi, r[rows, acts])
        best[:n] = np.maximum(best[:n], v)
    return best
