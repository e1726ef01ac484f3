"""Policy Gradient Algorithm #1, #2 and A2C on finite MDPs, with a tabular softmax actor and a linear critic.

Spec: PG-27, PG-28, PG-32, PG-38, PG-39 (errata E-36, E-37, E-45, E-46; open choices 2, 6, 8, 14, 17).

Conventions (once for the module):

* Actor: tabular softmax pi_theta, theta [S, A] (see :mod:`reference.policies`). Critic: linear
  V_phi(s) = x(s) . phi with features ``features`` [S, F]; the default is one-hot over the non-terminal
  states (the tabular critic). V_phi(term) is never evaluated: it is hard-coded to 0 (open choice 2).
* Both gradients are *descent* directions, as in the text's pseudocode: g_theta = -sum psi_t grad log pi
  (erratum E-37: the stop-gradient form is g_theta <- g_theta - grad_theta(gamma^t [[Q - V_phi]] log pi)),
  g_phi = sum grad_phi (1/2)([[Q]] - V_phi(s_t))^2 = -sum ([[Q]] - V_phi(s_t)) x(s_t) (E-36: [[.]] is a
  stop-gradient, not an expectation). The optimizer is plain SGD: theta <- theta - lr_theta g_theta,
  phi <- phi - lr_phi g_phi. Losses are sums over the steps of one trajectory or segment, as written
  (open choice 8 concerns the batched TRPO/PPO losses of the next part).
* gamma^t factor (open choice 6): Alg. #1 has it (the exact discounted gradient), Alg. #2 and A2C do not
  (gamma is then the artificial discount of the gamma-trick, PG-30).
* Randomness: one explicit ``numpy.random.Generator``; same seed, same run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from reference.errors import ReferenceError_, ShapeError
from reference.evaluation import tabular_features
from reference.exact import j_pi
from reference.gradients import (
    bootstrap_values,
    discount_powers,
    k_step_q_estimates,
    score_function_estimator,
)
from reference.mdp import FiniteMDP, FloatArray, _real, validate_int, validate_k
from reference.policies import softmax, softmax_score
from reference.sampling import inverse_cdf, sample_trajectories

__all__ = [
    "PGResult",
    "a2c",
    "critic_values",
    "is_acyclic",
    "policy_gradient_algorithm_1",
    "policy_gradient_algorithm_2",
    "tabular_features",
]


@dataclass(frozen=True)
class PGResult:
    """Outcome of a policy-gradient run.

    Attributes: theta [S, A] (final actor); phi [F] (final critic); j_history [M] (exact J(theta) every
    ``eval_every`` updates, first entry at theta0, computed by :func:`reference.exact.j_pi`);
    num_updates (optimizer steps taken); num_env_steps (transitions sampled).
    """

    theta: FloatArray
    phi: FloatArray
    j_history: FloatArray
    num_updates: int
    num_env_steps: int


def critic_values(features: ArrayLike, phi: ArrayLike, *, term: int) -> FloatArray:
    """V_phi(s) = x(s) . phi for every s, with V_phi(term) = 0 hard-coded; features [S, F], phi [F] -> [S].

    Spec: PG-23.
    """
    v = np.asarray(features, dtype=np.float64) @ np.asarray(phi, dtype=np.float64)
    v[term] = 0.0
    return np.asarray(v, dtype=np.float64)


def _setup(
    mdp: FiniteMDP, theta0: ArrayLike | None, features: ArrayLike | None
) -> tuple[FloatArray, FloatArray]:
    shape = (mdp.n_states_plus, mdp.n_actions)
    th = np.zeros(shape) if theta0 is None else np.array(theta0, dtype=np.float64)
    if th.shape != (mdp.n_states_plus, mdp.n_actions):
        raise ShapeError(f"theta0 must have shape {(mdp.n_states_plus, mdp.n_actions)}, got {th.shape}")
    x = tabular_features(mdp) if features is None else np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != mdp.n_states_plus:
        raise ShapeError(f"features must have shape (S+, F) with S+ = {mdp.n_states_plus}, got {x.shape}")
    return th, x


def _check_lr(lr_theta: float, lr_phi: float) -> None:
    """Finite real step sizes, lr_theta > 0 and lr_phi >= 0 (True ran as 1.0, "1" raised a bare TypeError and
    inf failed later as 'logits must be finite')."""
    t, p = _real(lr_theta, "lr_theta"), _real(lr_phi, "lr_phi")
    if not (math.isfinite(t) and math.isfinite(p) and t > 0 and p >= 0):
        raise ValueError(f"need finite lr_theta > 0 and lr_phi >= 0, got {lr_theta!r}, {lr_phi!r}")


def is_acyclic(mdp: FiniteMDP) -> bool:
    """Whether no state of S can reach itself (under any actions with positive probability): then every episode
    ends within |S| steps and a horizon of |S| + 1 never truncates. Kahn's algorithm on the successor graph of S.
    Spec: PG-27 (the default horizon of Algorithms #1 and #2)."""
    n = mdp.n_states
    succ: list[set[int]] = [set() for _ in range(n)]
    for s in range(n):
        for a in range(mdp.n_actions):
            probs, _, nexts = mdp.outcomes(s, a)
            succ[s].update(int(t) for p, t in zip(probs, nexts, strict=True) if p > 0 and int(t) < n)
    indeg = [0] * n
    for s in range(n):
        for t in succ[s]:
            indeg[t] += 1
    ready = [s for s in range(n) if indeg[s] == 0]
    seen = 0
    while ready:
        s = ready.pop()
        seen += 1
        for t in succ[s]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    return seen == n


def _run_trajectory_pg(
    mdp: FiniteMDP, *, rng: np.random.Generator, num_iters: int, k: int | None, lr_theta: float,
    lr_phi: float, gamma_t: bool, features: ArrayLike | None, theta0: ArrayLike | None, horizon: int | None,
    eval_every: int,
) -> PGResult:
    _check_lr(lr_theta, lr_phi)
    num_iters = validate_int(num_iters, "num_iters")
    eval_every = validate_int(eval_every, "eval_every", minimum=1)
    th, x = _setup(mdp, theta0, features)
    phi = np.zeros(x.shape[1])
    if horizon is None:
        if not is_acyclic(mdp):  # |S| + 1 would cut episodes silently: the mean step is then not -grad J
            raise ReferenceError_("the MDP has a cycle, so episodes can be longer than any default horizon: pass "
                                  "horizon= (a trajectory cut at H bootstraps V_phi(s_H), and with k=None the mean "
                                  "step is then the gradient of the cut objective, not -grad J)")
        h = mdp.n_states + 1  # every episode of an acyclic MDP ends within |S| steps: never truncated
    else:
        h = validate_int(horizon, "horizon", minimum=1)  # 2.5 was floored
    hist = [j_pi(mdp, softmax(th))]
    steps = 0
    for it in range(1, num_iters + 1):
        traj = sample_trajectories(mdp, softmax(th), rng=rng, n=1, horizon=h)
        v = critic_values(x, phi, term=mdp.term)
        boot = bootstrap_values(v, traj.states, term=mdp.term)
        qhat = k_step_q_estimates(traj.rewards, boot, traj.lengths, gamma=mdp.gamma, k=k)  # [[Q]]: a constant
        adv = np.where(traj.valid, qhat - boot[:, :-1], 0.0)  # [[Q - V_phi(s_t)]]
        factor = discount_powers(traj.horizon, gamma=mdp.gamma)[None, :] if gamma_t else 1.0
        g_theta = -score_function_estimator(th, traj, factor * adv)[0]
        t_len = int(traj.lengths[0])
        g_phi = -(adv[0, :t_len] @ x[traj.states[0, :t_len]])
        th -= lr_theta * g_theta
        phi -= lr_phi * g_phi
        steps += t_len
        if it % eval_every == 0:
            hist.append(j_pi(mdp, softmax(th)))
    return PGResult(th, phi, np.asarray(hist), num_iters, steps)


def policy_gradient_algorithm_1(
    mdp: FiniteMDP, *, rng: np.random.Generator, num_iters: int, lr_theta: float, lr_phi: float,
    k: int | None = None, features: ArrayLike | None = None, theta0: ArrayLike | None = None,
    horizon: int | None = None, eval_every: int = 100,
) -> PGResult:
    """Policy Gradient Algorithm #1: one trajectory per update, k-step Q estimate, gamma^t factor.

    Spec: PG-27 (with E-36, E-37), PG-28. As written::

        while not converged:
            g_theta = 0, g_phi = 0; sample tau ~ (p0, pi_theta, p)
            for t = 0..T-1:
                Q = sum_{t'<k∧(T-t)} gamma^{t'} r_{t'+t} + gamma^{k∧(T-t)} V_phi(s_{(t+k)∧T})  # V(term)=0
                g_theta += -(grad_theta log pi_theta(a_t | s_t)) gamma^t [[Q - V_phi(s_t)]]
                g_phi   += grad_phi (1/2) ([[Q]] - V_phi(s_t))^2
            theta -= lr_theta g_theta; phi -= lr_phi g_phi

    ``k=None`` is k = inf (Monte Carlo G_t: then the expected step is exactly -grad J, PG-14). ``horizon``
    truncates (a truncated trajectory bootstraps V_phi(s_H), and the step is no longer exactly -grad J). The
    default |S| + 1 never truncates an acyclic MDP; on an MDP with a cycle (:func:`is_acyclic` False) a
    horizon must be given (``ReferenceError_``: the default cut a one-state loop at gamma = 0.9 to H = 2 and
    the mean step was 22 % short of -grad J, silently).
    Shapes: features [S, F] (default :func:`tabular_features`), theta0 [S, A] (default 0: uniform policy).
    """
    return _run_trajectory_pg(mdp, rng=rng, num_iters=num_iters, k=k, lr_theta=lr_theta, lr_phi=lr_phi,
                              gamma_t=True, features=features, theta0=theta0, horizon=horizon,
                              eval_every=eval_every)


def policy_gradient_algorithm_2(
    mdp: FiniteMDP, *, rng: np.random.Generator, num_iters: int, lr_theta: float, lr_phi: float,
    k: int | None = None, features: ArrayLike | None = None, theta0: ArrayLike | None = None,
    horizon: int | None = None, eval_every: int = 100,
) -> PGResult:
    """Policy Gradient Algorithm #2: Algorithm #1 with no gamma^t factor (gamma is the artificial discount).

    Spec: PG-32 (and PG-30: the expected step is the gamma-trick gradient, biased for the discounted J
    unless gamma = 1). g_theta += -(grad log pi_theta(a_t | s_t)) [[Q - V_phi(s_t)]]. Arguments as in
    :func:`policy_gradient_algorithm_1`.
    """
    return _run_trajectory_pg(mdp, rng=rng, num_iters=num_iters, k=k, lr_theta=lr_theta, lr_phi=lr_phi,
                              gamma_t=False, features=features, theta0=theta0, horizon=horizon,
                              eval_every=eval_every)


def _entropy_grad(pi_row: FloatArray) -> FloatArray:
    """grad_{theta[s, .]} H(pi(. | s)) = -pi (log pi + H) for the softmax row."""
    lp = np.log(np.maximum(pi_row, np.finfo(np.float64).tiny))
    ent = -float(pi_row @ lp)
    return np.asarray(-pi_row * (lp + ent), dtype=np.float64)


def a2c(
    mdp: FiniteMDP, *, rng: np.random.Generator, num_updates: int, lr_theta: float, lr_phi: float, k: int = 5,
    features: ArrayLike | None = None, theta0: ArrayLike | None = None, entropy_beta: float = 0.0,
    max_episode_length: int | None = None, eval_every: int = 100,
) -> PGResult:
    """Advantage actor-critic (A2C) as written, with errata E-44, E-45, E-46 applied; one update per segment.

    Spec: PG-38, PG-39 (k = 5 by default), open choice 14. As written (E-45: one loop; s_t starts at
    term so the first pass resets)::

        while not converged:
            g_theta = 0, g_phi = 0
            if s_t == term: t = 0, s_0 ~ p0
            t_start = t, T = inf
            for _ = 1..k:  a_t ~ pi_theta(. | s_t); (r_t, s_{t+1}) ~ p(., . | s_t, a_t); t += 1
                           if s_t == term: T = t; break
            Q = V_phi(s_t) if s_t != term else 0
            for i = (t_start + k) ∧ T - 1, ..., t_start:
                Q = r_i + gamma Q
                g_theta += -(grad_theta log pi_theta(a_i | s_i)) [[Q - V_phi(s_i)]]     # E-46
                g_phi   += grad_phi (1/2) ([[Q]] - V_phi(s_i))^2                       # E-46
            theta -= lr_theta g_theta; phi -= lr_phi g_phi

    No gamma^t factor (open choice 6). ``entropy_beta`` > 0 adds A3C's entropy bonus
    g_theta += -beta grad H(pi_theta(. | s_i)) (off by default, open choice 14). ``max_episode_length``
    truncates an episode (not terminal: the segment bootstraps V_phi and the next pass resets).
    Actor and critic share no parameters (tabular actor, linear critic).
    """
    _check_lr(lr_theta, lr_phi)
    if validate_k(k) is None:  # an integer >= 1; k = 1.7 is an error, not k = 1
        raise ValueError("k must be an integer >= 1 (A2C's segments are finite), got None")
    beta = _real(entropy_beta, "entropy_beta")  # "0.1" raised a bare TypeError
    if not (math.isfinite(beta) and beta >= 0.0):  # NaN silently dropped the bonus (NaN > 0 is False)
        raise ReferenceError_(f"entropy_beta must be a finite number >= 0, got {entropy_beta!r}")
    entropy_beta = beta
    num_updates = validate_int(num_updates, "num_updates")
    eval_every = validate_int(eval_every, "eval_every", minimum=1)
    if max_episode_length is not None:
        max_episode_length = validate_int(max_episode_length, "max_episode_length", minimum=1)
    th, x = _setup(mdp, theta0, features)
    phi = np.zeros(x.shape[1])
    term = mdp.term
    if mdp.p0[term] >= 1.0:
        raise ReferenceError_("p0 puts all mass on term: every episode is empty, A2C has nothing to learn from")
    hist = [j_pi(mdp, softmax(th))]
    s, t = term, 0  # E-45 / open choice 14: start at term so that the first pass resets
    steps = 0
    for upd in range(1, num_updates + 1):
        if s == term or (max_episode_length is not None and t >= max_episode_length):
            t = 0
            s = int(rng.choice(mdp.n_states_plus, p=mdp.p0))
            while s == term:  # T = 0: an empty episode, nothing to learn from; every update learns
                s = int(rng.choice(mdp.n_states_plus, p=mdp.p0))
        pi = softmax(th)
        seg_s: list[int] = []
        seg_a: list[int] = []
        seg_r: list[float] = []
        for _ in range(k):
            # one inverse-CDF sampler (cdf summed within the row): never an action or outcome of probability 0
            a = int(inverse_cdf(pi[s][None, :], np.array([rng.random()]))[0])
            row = s * mdp.n_actions + a
            lo, hi = int(mdp.indptr[row]), int(mdp.indptr[row + 1])
            e = lo + int(inverse_cdf(mdp.prob[None, lo:hi], np.array([rng.random()]))[0])
            seg_s.append(s)
            seg_a.append(a)
            seg_r.append(float(mdp.reward[e]))
            s = int(mdp.next_state[e])
            t += 1
            steps += 1
            if s == term or (max_episode_length is not None and t >= max_episode_length):
                break
        v = critic_values(x, phi, term=term)
        q = 0.0 if s == term else float(v[s])
        g_theta = np.zeros_like(th)
        g_phi = np.zeros_like(phi)
        for i in range(len(seg_s) - 1, -1, -1):
            si, ai = seg_s[i], seg_a[i]
            q = seg_r[i] + mdp.gamma * q
            adv = q - float(v[si])  # [[Q - V_phi(s_i)]]
            g_theta[si] -= softmax_score(th, np.array(si), np.array(ai)) * adv
            if entropy_beta > 0:
                g_theta[si] -= entropy_beta * _entropy_grad(pi[si])
            g_phi -= adv * x[si]
        th -= lr_theta * g_theta
        phi -= lr_phi * g_phi
        if upd % eval_every == 0:
            hist.append(j_pi(mdp, softmax(th)))
    return PGResult(th, phi, np.asarray(hist), num_updates, steps)
