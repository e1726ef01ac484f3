"""Exact policy gradients and the text's estimators #0..#4, with exact moments from the trajectory oracle.

Spec: PG-01..PG-37 (errata E-25, E-26, E-30, E-31, E-37, E-38, E-40, E-43), open choices 6, 21, 22.

Conventions (once for the module):

* Tabular softmax policies pi_theta with ``theta`` of shape [S, A] over S+ (see :mod:`reference.policies`);
  gradients have the same shape [S, A] (parameter dimension D = S * A).
* Time index as in :mod:`reference.mdp`: acting in s_t yields r_t. A batch of trajectories is a
  :class:`reference.sampling.Trajectories` (N trajectories padded to horizon H); per-step arrays are
  [N, H] and only steps t < T (``traj.valid``) contribute.
* Every estimator is a *score-function* estimator g(tau) = sum_{t<T} psi_t grad log pi_theta(a_t | s_t)
  with a per-step weight psi [N, H]; :func:`score_function_estimator` turns any psi into g [N, S, A].
  The weights are array functions (no MDP) so that the GAE / PPO code of the next part reuses them.
* ``gamma_t`` (open choice 6): the text's estimators #1..#4 carry the factor gamma^t, and only with it is
  the mean the exact gradient of the discounted J. ``gamma_t=False`` drops it (Alg. #2, A2C, gamma-trick).
* Exact moments: with ``enumerate_trajectories`` the weights are the trajectory probabilities, so
  :func:`exact_moments` gives the exact mean and the exact variance, defined for vectors as the trace of
  the covariance, E||g - E g||^2 (open choice 21). With sampled batches the same call gives sample moments.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from reference.errors import InvalidPolicyError, ReferenceError_, ShapeError
from reference.exact import a_pi, discounted_occupancy, j_pi, q_pi
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    IntArray,
    off_simplex_rows,
    validate_flag,
    validate_gamma,
    validate_indices,
    validate_int,
    validate_k,
    validate_weights,
)
from reference.policies import score_norm_sq, softmax, softmax_score
from reference.sampling import Moments, Trajectories, discounted_returns, exact_moments, validate_state_table

__all__ = [
    "Moments",
    "SelectionRule",
    "bootstrap_values",
    "conditional_expectation",
    "discount_powers",
    "exact_moments",
    "expand_random_time_step",
    "g_baseline_term",
    "g_k_step",
    "g_past_rewards",
    "g_q_estimate",
    "g_reward_to_go",
    "g_state_baseline",
    "g_total_return",
    "gamma_trick_gradient",
    "grad_j_exact",
    "j_theta",
    "k_step_q_estimates",
    "log_prob_trajectories",
    "optimal_baseline",
    "past_discounted_rewards",
    "per_step_terms",
    "prefix_groups",
    "rao_blackwellize",
    "score_function_estimator",
    "selection_probabilities",
    "trajectory_score",
    "weighted_min_variance_baseline",
    "weighted_squared_error",
]

SelectionRule = Literal["uniform", "cyclic"]


# =============================================================================== exact J and grad J
def _theta(mdp: FiniteMDP, theta: ArrayLike) -> FloatArray:
    th = np.asarray(theta, dtype=np.float64)
    if th.shape != (mdp.n_states_plus, mdp.n_actions):
        raise ShapeError(f"theta must have shape (S+, A) = {(mdp.n_states_plus, mdp.n_actions)}, "
                         f"got {th.shape}")
    return th


def j_theta(mdp: FiniteMDP, theta: ArrayLike) -> float:
    """J(theta) = E_{s_0 ~ p0}[V^{pi_theta}(s_0)] for the tabular softmax policy (exact linear solve).

    Spec: PG-01, PG-02. Shapes: theta [S, A].
    """
    return j_pi(mdp, softmax(_theta(mdp, theta)))


def grad_j_exact(mdp: FiniteMDP, theta: ArrayLike) -> FloatArray:
    """Exact grad J(theta) by the policy-gradient theorem with the discounted occupancy.

    Spec: PG-12 (the mean of every unbiased estimator): grad J = sum_s d^pi(s) sum_a pi(a | s) A^pi(s, a)
    grad log pi(a | s) with d^pi(s) = sum_t gamma^t P(s_t = s) (expected visits at gamma = 1, proper
    policies). For the tabular softmax this is dJ/dtheta[s, a] = d^pi(s) pi(a | s) A^pi(s, a).
    Shapes: theta [S, A] -> [S, A]; the row of term is 0.
    """
    pi = softmax(_theta(mdp, theta))
    d = discounted_occupancy(mdp, pi)
    g = d[:, None] * pi * a_pi(mdp, pi)
    g[mdp.term] = 0.0
    return np.asarray(g, dtype=np.float64)


def gamma_trick_gradient(mdp: FiniteMDP, theta: ArrayLike, *, gamma_tilde: float) -> FloatArray:
    """Exact mean of the gamma-trick estimator sum_t grad log pi(a_t | s_t) (Q^{pi, gamma~}_t - b(s_t)).

    Spec: PG-29, PG-30 with erratum E-38 (Q^{pi, gamma~} discounts by gamma~^{t'-t}). The trajectories
    are those of ``mdp`` (whose own gamma is the objective's, typically 1) and there is no gamma^t factor:
    the mean is sum_s d_1(s) sum_a pi(a | s) A^{pi, gamma~}(s, a) grad log pi(a | s), with d_1 the
    undiscounted expected number of visits (b drops out). At gamma~ = 1 = mdp.gamma it is grad J.
    Needs termination a.s. under pi (proper policy). Shapes: theta [S, A] -> [S, A].
    """
    gt = validate_gamma(gamma_tilde)
    pi = softmax(_theta(mdp, theta))
    d1 = discounted_occupancy(mdp.with_gamma(1.0), pi)
    g = d1[:, None] * pi * a_pi(mdp.with_gamma(gt), pi)
    g[mdp.term] = 0.0
    return np.asarray(g, dtype=np.float64)


# =============================================================================== trajectories
def log_prob_trajectories(mdp: FiniteMDP, theta: ArrayLike, traj: Trajectories) -> FloatArray:
    """log p_theta(tau) = log p0(s_0) + sum_{t<T} [log pi_theta(a_t | s_t) + log p(r_t, s_{t+1} | s_t, a_t)].

    Spec: PG-03 (and PG-04: steps after term carry the dummy action with probability 1, i.e. add 0).
    p(r, s' | s, a) sums the outcomes of the joint kernel with that (r, s'). Shapes: [N]. For truncated
    trajectories this is the log-probability of the observed prefix.
    """
    pi = softmax(_theta(mdp, theta))
    out = np.log(mdp.p0[traj.states[:, 0]])
    for i in range(traj.n):
        for t in range(int(traj.lengths[i])):
            s, a = int(traj.states[i, t]), int(traj.actions[i, t])
            prob, rew, nxt = mdp.outcomes(s, a)
            q = float(prob[(nxt == traj.states[i, t + 1]) & (rew == traj.rewards[i, t])].sum())
            out[i] += np.log(pi[s, a]) + np.log(q)
    return np.asarray(out, dtype=np.float64)


def per_step_terms(theta: ArrayLike, traj: Trajectories, psi: ArrayLike) -> FloatArray:
    """Per-step terms psi_t grad log pi_theta(a_t | s_t), zero for t >= T; shape [N, H, S, A].

    Spec: PG-07, PG-12 (the summands), PG-16 (Rao-Blackwellised one at a time), PG-35 (g_t).
    """
    th = validate_state_table(traj, theta, name="theta", ndim=2, actions=True)  # [S+, A]: no clamped rows
    w = np.asarray(psi, dtype=np.float64)
    n, h = traj.actions.shape
    if w.shape != (n, h):
        raise ShapeError(f"psi must have shape [N, H] = {(n, h)}, got {w.shape}")
    w = np.where(traj.valid, w, 0.0)
    s = traj.states[:, :h]
    row = softmax_score(th, s, traj.actions) * w[..., None]  # [N, H, A]
    out = np.zeros((n, h, *th.shape))
    ii, tt = np.meshgrid(np.arange(n), np.arange(h), indexing="ij")
    out[ii, tt, s] = row
    return out


def score_function_estimator(theta: ArrayLike, traj: Trajectories, psi: ArrayLike) -> FloatArray:
    """g(tau) = sum_{t<T} psi_t grad_theta log pi_theta(a_t | s_t) for every trajectory; shape [N, S, A].

    Spec: PG-05, PG-08, PG-10, PG-12, PG-25 (all estimators are this with a particular psi [N, H]).
    """
    th = validate_state_table(traj, theta, name="theta", ndim=2, actions=True)  # [S+, A]: no clamped rows
    w = np.asarray(psi, dtype=np.float64)
    n, h = traj.actions.shape
    if w.shape != (n, h):
        raise ShapeError(f"psi must have shape [N, H] = {(n, h)}, got {w.shape}")
    w = np.where(traj.valid, w, 0.0)
    s = traj.states[:, :h]  # padding steps hold term, a row of theta [S+, A]; their weight is 0
    row = softmax_score(th, s, traj.actions) * w[..., None]
    out = np.zeros((n, *th.shape))
    np.add.at(out, (np.repeat(np.arange(n), h), s.ravel()), row.reshape(n * h, -1))
    return out


def trajectory_score(theta: ArrayLike, traj: Trajectories) -> FloatArray:
    """grad_theta log p_theta(tau) = sum_{t<T} grad_theta log pi_theta(a_t | s_t); shape [N, S, A].

    Spec: PG-07 (p0 and p do not depend on theta).
    """
    return score_function_estimator(theta, traj, np.ones(traj.actions.shape))


# =============================================================================== per-step weights psi
def discount_powers(horizon: int, *, gamma: float) -> FloatArray:
    """gamma^t for t = 0..H-1; shape [H]. ``horizon`` is an integer >= 0 (2.5 is refused, not floored).

    Spec: support for PG-08, PG-29 (the gamma^t factors of the estimators).
    """
    g = validate_gamma(gamma)
    h = validate_int(horizon, "horizon")
    return np.asarray(g ** np.arange(h, dtype=np.float64), dtype=np.float64)


def past_discounted_rewards(rewards: ArrayLike, *, gamma: float) -> FloatArray:
    """sum_{t'=0}^{t-1} gamma^{t'} r_{t'} for every t (E-26: the past starts at r_0); [N, H] -> [N, H].

    Spec: PG-09 (the past-reward terms; erratum E-26).
    """
    g = validate_gamma(gamma)
    r = np.asarray(rewards, dtype=np.float64)
    disc = r * discount_powers(r.shape[-1], gamma=g)
    # the running sum shifted by one step (cumsum minus the current term cancelled: rewards [1, 1e20, 0] gave
    # the past sum 0 at t = 1, not 1)
    out = np.zeros_like(disc)
    out[..., 1:] = np.cumsum(disc[..., :-1], axis=-1)
    return np.asarray(out, dtype=np.float64)


def bootstrap_values(values: ArrayLike, states: ArrayLike, *, term: int) -> FloatArray:
    """V(s_t) along trajectories with V(term) hard-coded to 0 (open choice 2); values [S], states [N, H+1].

    ``states`` are indices in 0..term (a float 0.9 raises ShapeError, never truncated to 0; 2.0 is read as 2).
    ``values`` must have |S+| = term + 1 entries (ShapeError otherwise: a short V was read with clamped indices,
    so states past its end took the value of its last entry).

    Spec: PG-25.
    """
    term = validate_int(term, "term", error=ShapeError)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (term + 1,):
        raise ShapeError(f"values must have shape [term + 1] = [{term + 1}] (over S+, term = {term}), "
                         f"got {list(v.shape)}")
    st = validate_indices(states, term + 1, name="states", what="state", error=ShapeError)
    return np.asarray(np.where(st == term, 0.0, v[st]), dtype=np.float64)


def k_step_q_estimates(
    rewards: ArrayLike, boot: ArrayLike, lengths: ArrayLike, *, gamma: float, k: int | None
) -> FloatArray:
    """k-step Q estimates Q_t = sum_{t'<k∧(T-t)} gamma^{t'} r_{t+t'} + gamma^{k∧(T-t)} V(s_{(t+k)∧T}).

    Spec: PG-25 (Enhancement #4), PG-27, PG-38. ``boot`` [N, H+1] is V(s_t) along the trajectory with 0 at
    term (see :func:`bootstrap_values`); with V = V^pi the estimate is unbiased for Q^pi(s_t, a_t), with
    V_phi it is biased. ``k=None`` means k = inf (the Monte Carlo return G_t plus, for a trajectory
    truncated at H, the bootstrap gamma^{H-t} V(s_H)). Shapes: rewards [N, H], lengths [N] -> [N, H]
    (0 for t >= T).
    """
    r = np.asarray(rewards, dtype=np.float64)
    bv = np.asarray(boot, dtype=np.float64)
    n, h = r.shape
    ln = validate_indices(lengths, h + 1, name="lengths", what="length", error=ShapeError)  # 2.5 refused
    if bv.shape != (n, h + 1) or ln.shape != (n,):
        raise ShapeError(f"need rewards [N, H], boot [N, H+1], lengths [N]; got {r.shape}, {bv.shape}, "
                         f"{ln.shape}")
    k = validate_k(k)
    gamma = validate_gamma(gamma)
    kk = h if k is None else min(k, h)
    t = np.arange(h)[None, :]
    m = np.minimum(kk, ln[:, None] - t)  # k ∧ (T - t), [N, H]
    valid = m > 0
    m = np.maximum(m, 0)
    # discounted partial sums sum_{j<m} gamma^j r_{t+j}, summed directly: a difference of prefix sums of
    # gamma^t r_t divided by gamma^t loses every digit once gamma^t is small (and is 0/0 when it underflows)
    end = np.minimum(t + m, h)
    rp = np.concatenate([r, np.zeros_like(r)], axis=1)
    partial = np.zeros((n, h))
    for j in range(int(m.max(initial=0))):
        partial += np.where(j < m, float(gamma) ** j * rp[:, j:j + h], 0.0)
    gm = float(gamma) ** m
    q = partial + gm * np.take_along_axis(bv, end, axis=1)
    bad = valid & ~np.isfinite(q)
    if np.any(bad):  # a NaN / inf reward or bootstrap value that a valid step reads
        i, tt = (int(z[0]) for z in np.nonzero(bad))
        raise ReferenceError_(f"the k-step Q estimate at (trajectory {i}, t = {tt}) is {q[i, tt]}: the rewards and "
                              f"bootstrap values it reads must be finite")
    return np.asarray(np.where(valid, q, 0.0), dtype=np.float64)


def _time_factor(traj: Trajectories, gamma: float, gamma_t: bool) -> FloatArray:
    g = validate_gamma(gamma)  # also with gamma_t=False: gamma is read by the returns / Q estimates
    gamma_t = validate_flag(gamma_t, "gamma_t")  # "no" was read as True (the gamma^t factor kept)
    h = traj.horizon
    return discount_powers(h, gamma=g)[None, :] if gamma_t else np.ones((1, h))


def _along(traj: Trajectories, table: ArrayLike, name: str) -> FloatArray:
    """b(s_t) for t < H along every trajectory, [N, H]; ``table`` [S+] is checked against the batch
    (:func:`reference.sampling.validate_state_table`): a short baseline raises, never read at clamped indices."""
    b = validate_state_table(traj, table, name=name)
    out = np.asarray(b[traj.states[:, : traj.horizon]], dtype=np.float64)
    _finite_on_steps(traj, out, name)
    return out


def _finite_on_steps(traj: Trajectories, values: FloatArray, name: str) -> None:
    """ReferenceError_ if a value read at a step t < T is not finite (a NaN in a baseline or Q at a reachable
    state made the estimator NaN with no error; the entries read at padding steps are multiplied by 0)."""
    bad = np.argwhere(traj.valid & ~np.isfinite(values))
    if bad.size:
        i, t = (int(x) for x in bad[0])
        raise ReferenceError_(f"{name} is not finite at state {int(traj.states[i, t])} (trajectory {i}, step {t})")


# =============================================================================== the text's estimators
def g_total_return(theta: ArrayLike, traj: Trajectories, *, gamma: float) -> FloatArray:
    """Estimator #0: g(tau) = G_0(tau) grad_theta log p_theta(tau); shape [N, S, A].

    Spec: PG-05 (unbiased: grad J = E[G_0 grad log p_theta(tau)]), PG-06 (large variance), PG-07.
    """
    g0 = discounted_returns(traj.rewards, gamma)[:, :1]
    return score_function_estimator(theta, traj, np.broadcast_to(g0, traj.rewards.shape))


def g_reward_to_go(theta: ArrayLike, traj: Trajectories, *, gamma: float, gamma_t: bool = True) -> FloatArray:
    """Estimator #1 (reward-to-go): g(tau) = sum_{t<T} grad log pi_theta(a_t | s_t) gamma^t G_t; [N, S, A].

    Spec: PG-08 (with erratum E-26); ``gamma_t=False`` drops gamma^t (open choice 6).
    """
    psi = _time_factor(traj, gamma, gamma_t) * discounted_returns(traj.rewards, gamma)
    return score_function_estimator(theta, traj, psi)


def g_state_baseline(
    theta: ArrayLike, traj: Trajectories, baseline: ArrayLike, *, gamma: float, gamma_t: bool = True
) -> FloatArray:
    """Estimator #2: g(tau) = sum_{t<T} grad log pi_theta(a_t | s_t) gamma^t (G_t - b(s_t)); [N, S, A].

    Spec: PG-10 (unbiased for every deterministic b : S -> R). ``baseline`` [S] (b(term) unused).
    """
    bt = _along(traj, baseline, "baseline")
    psi = _time_factor(traj, gamma, gamma_t) * (discounted_returns(traj.rewards, gamma) - bt)
    return score_function_estimator(theta, traj, psi)


def g_q_estimate(
    theta: ArrayLike, traj: Trajectories, q: ArrayLike, baseline: ArrayLike, *, gamma: float,
    gamma_t: bool = True,
) -> FloatArray:
    """Estimator #3: g(tau) = sum_{t<T} grad log pi_theta(a_t | s_t) gamma^t (Q(s_t, a_t) - b(s_t)).

    Shapes: [N, S, A].

    Spec: PG-12, PG-14 (with Q = Q^{pi_theta} exact and b = V_phi arbitrary: unbiased), PG-24 (with
    Q = Q_phi: biased). ``q`` [S, A], ``baseline`` [S].
    """
    qa = validate_state_table(traj, q, name="q", ndim=2, actions=True)
    s = traj.states[:, : traj.horizon]
    q_read = qa[s, traj.actions]
    _finite_on_steps(traj, q_read, "q")
    psi = _time_factor(traj, gamma, gamma_t) * (q_read - _along(traj, baseline, "baseline"))
    return score_function_estimator(theta, traj, psi)


def g_k_step(
    theta: ArrayLike, traj: Trajectories, v_boot: ArrayLike, baseline: ArrayLike, *, gamma: float,
    k: int | None, term: int, gamma_t: bool = True,
) -> FloatArray:
    """Estimator #4 (k-step TD): sum_{t<T} grad log pi_theta(a_t | s_t) gamma^t (Q_t^{(k)} - b(s_t)).

    Q_t^{(k)} = sum_{t'<k∧(T-t)} gamma^{t'} r_{t+t'} + gamma^{k∧(T-t)} V(s_{(t+k)∧T}).

    Spec: PG-25: with ``v_boot`` = V^{pi_theta} the estimate is unbiased (not implementable); with
    ``v_boot`` = V_phi it is biased. ``baseline`` [S] is b = V_phi in the text. V(term) = 0 is hard-coded.
    Shapes: v_boot, baseline [S] -> [N, S, A].
    """
    if traj.term is not None and term != traj.term:
        raise ShapeError(f"term = {term!r} disagrees with the trajectories' terminal state {traj.term}")
    boot = bootstrap_values(v_boot, traj.states, term=term)
    qhat = k_step_q_estimates(traj.rewards, boot, traj.lengths, gamma=gamma, k=k)
    bt = _along(traj, baseline, "baseline")
    psi = _time_factor(traj, gamma, gamma_t) * (qhat - bt)
    return score_function_estimator(theta, traj, psi)


def g_past_rewards(theta: ArrayLike, traj: Trajectories, *, gamma: float) -> FloatArray:
    """sum_t Y_t with Y_t = grad log pi_theta(a_t | s_t) sum_{t'<t} gamma^{t'} r_{t'}: zero mean; [N, S, A].

    Spec: PG-09 (E[Y_t | tau^(t)] = 0, hence E sum_t Y_t = 0), erratum E-26.
    """
    return score_function_estimator(theta, traj, past_discounted_rewards(traj.rewards, gamma=validate_gamma(gamma)))


def g_baseline_term(
    theta: ArrayLike, traj: Trajectories, baseline: ArrayLike, *, gamma: float, gamma_t: bool = True
) -> FloatArray:
    """sum_t grad log pi_theta(a_t | s_t) gamma^t b(s_t): zero mean for every deterministic b; [N, S, A].

    Spec: PG-11.
    """
    bt = _along(traj, baseline, "baseline")
    return score_function_estimator(theta, traj, _time_factor(traj, gamma, gamma_t) * bt)


# =============================================================================== exact moments
def prefix_groups(
    traj: Trajectories, t: int, *, include_action: bool, include_reward: bool = False
) -> IntArray:
    """Group ids of the prefix tau^(t) = (s_0, a_0, r_0, ..., s_t), optionally with a_t (and r_t); [N].

    Spec: PG-09, PG-11 (conditioning on tau^(t)), PG-16/PG-17 with erratum E-30: Y = (tau^(t), a_t)
    excludes r_t. ``include_reward=True`` (needs ``include_action``) adds r_t, the text's uncorrected Y,
    to exhibit the difference. Trajectories that ended before t keep their whole (padded) prefix.
    """
    if include_reward and not include_action:
        raise ReferenceError_("include_reward needs include_action (r_t follows a_t)")
    t = validate_int(t, "t")  # 1.5 raised a TypeError, True was read as 1
    h = traj.horizon
    if not 0 <= t < h:
        raise ShapeError(f"t must lie in 0..{h - 1}, got {t}")
    cols = [traj.states[:, : t + 1].astype(np.float64), traj.actions[:, :t].astype(np.float64),
            traj.rewards[:, :t]]
    if include_action:
        cols.append(traj.actions[:, t : t + 1].astype(np.float64))
    if include_reward:
        cols.append(traj.rewards[:, t : t + 1])
    key = np.concatenate(cols, axis=1)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    return np.asarray(inv.ravel(), dtype=np.int64)


def conditional_expectation(values: ArrayLike, weights: ArrayLike, groups: ArrayLike) -> FloatArray:
    """E[X | group] evaluated at every sample: sum_{j in g(i)} w_j X_j / sum_{j in g(i)} w_j; [N, ...].

    Spec: PG-09, PG-11, PG-16 (exact conditional expectations over the oracle's trajectories).
    """
    x = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    gid = validate_indices(groups, None, name="groups", what="group", error=ShapeError)  # 0.5 is not group 0
    if x.shape[0] != w.size or gid.shape != w.shape:
        raise ShapeError(f"values [N, ...], weights [N], groups [N] disagree: {x.shape}, {w.shape}, "
                         f"{gid.shape}")
    w = validate_weights(w, "weights")  # finite and >= 0 (a negative weight is not a probability)
    flat = x.reshape(x.shape[0], -1)
    ng = int(gid.max()) + 1 if gid.size else 0
    num = np.zeros((ng, flat.shape[1]))
    np.add.at(num, gid, w[:, None] * flat)
    den = np.bincount(gid, weights=w, minlength=ng)
    empty = np.flatnonzero(np.bincount(gid, minlength=ng)[:ng] > 0)
    zero = empty[den[empty] <= 0.0]
    if zero.size:  # E[X | Y] is undefined where Y has probability 0 (it gave NaN with a RuntimeWarning)
        raise ReferenceError_(f"group {int(zero[0])} has total weight 0: its conditional expectation is undefined")
    out = num[gid] / den[gid][:, None]
    return np.asarray(out.reshape(x.shape), dtype=np.float64)


def rao_blackwellize(values: ArrayLike, weights: ArrayLike, groups: ArrayLike) -> FloatArray:
    """Rao-Blackwellised estimator I_2(Y) = E_{X|Y}[I_1(X, Y) | Y], Y given by ``groups``; [N, ...].

    Spec: PG-16 (I_2 unbiased and Var(I_2) <= Var(I_1)), PG-17 with erratum E-30.
    """
    return conditional_expectation(values, weights, groups)


# =============================================================================== optimal baselines
def weighted_min_variance_baseline(p: ArrayLike, w2: ArrayLike, q: ArrayLike) -> FloatArray:
    """b*(s) = E_{a|s}[w^2(s, a) Q(s, a) | s] / E_{a|s}[w^2(s, a) | s] (the minimiser of E[w^2 (Q - b(s))^2]).

    Spec: PG-18. Shapes: p (conditional law of a given s), w2, q [S, A] -> [S]. States with
    E[w^2 | s] = 0 (any b is optimal there) get b*(s) = E_{a|s}[Q | s].
    """
    pa, wa, qa = (np.asarray(x, dtype=np.float64) for x in (p, w2, q))
    if pa.ndim != 2 or wa.shape != pa.shape or qa.shape != pa.shape:  # a w2 of shape [A] was broadcast
        raise ShapeError(f"p, w2, q must share one [S, A] shape, got {pa.shape}, {wa.shape}, {qa.shape}")
    for name, arr in (("p", pa), ("w2", wa), ("q", qa)):
        if not np.all(np.isfinite(arr)):
            raise ReferenceError_(f"{name} must be finite")
    if np.any(off_simplex_rows(pa)):
        raise InvalidPolicyError(f"p must hold a distribution over actions in each row, got row sums "
                                 f"{pa.sum(axis=1).tolist()}")
    if np.any(wa < 0):  # a weight w^2 is a square
        raise ReferenceError_(f"w2 must be >= 0 (it is a squared weight), got min {float(wa.min())}")
    num = (pa * wa * qa).sum(axis=1)
    den = (pa * wa).sum(axis=1)
    fallback = (pa * qa).sum(axis=1)
    safe = den > 0
    return np.asarray(np.where(safe, num / np.where(safe, den, 1.0), fallback), dtype=np.float64)


def weighted_squared_error(rho: ArrayLike, p: ArrayLike, w2: ArrayLike, q: ArrayLike, b: ArrayLike) -> float:
    """E_{s ~ rho, a ~ p(.|s)}[w^2(s, a) (Q(s, a) - b(s))^2], the objective of PG-18.

    Shapes: rho [S]; p, w2, q [S, A]; b [S]. Checked as :func:`weighted_min_variance_baseline` checks its
    inputs (a w2 of shape [A] was broadcast and a p that is not a distribution accepted), plus rho (weights >= 0)
    and b (finite, [S]).
    """
    pa, wa, qa = (np.asarray(x, dtype=np.float64) for x in (p, w2, q))
    weighted_min_variance_baseline(pa, wa, qa)  # the same checks of p, w2, q
    r = validate_weights(rho, "rho")
    bb = np.asarray(b, dtype=np.float64)
    if r.shape != pa.shape[:1] or bb.shape != pa.shape[:1]:
        raise ShapeError(f"rho and b must have shape [{pa.shape[0]}], got {list(r.shape)} and {list(bb.shape)}")
    if not np.all(np.isfinite(bb)):
        raise ReferenceError_("b must be finite")
    return float(r @ (pa * wa * (qa - bb[:, None]) ** 2).sum(axis=1))


def optimal_baseline(mdp: FiniteMDP, theta: ArrayLike) -> FloatArray:
    """Per-step minimum-variance baseline b*(s) = E_a[||grad log pi(a|s)||^2 Q^pi(s, a)] / E_a[||grad log pi||^2].

    Spec: PG-19 with erratum E-31 (w^2 = ||grad_theta log pi_theta(a | s)||^2, the trace-of-covariance
    criterion of open choice 21). It minimises PG-18's per-step objective E[w^2 (Q - b(s))^2], which is the
    variance of the whole-trajectory estimator only when no state is visited twice in an episode (e.g. layered
    MDPs): with revisits the cross terms between visits also depend on b, and on a cyclic example the exact
    minimiser of the estimator's variance differs (0.6785 against b* = 0.4745, review of 2026-12-07).
    Replacing w^2 by 1 gives V^pi(s), the text's surrogate. Shapes:
    theta [S, A] -> [S] (b*(term) = 0).
    """
    th = _theta(mdp, theta)
    pi = softmax(th)
    b = weighted_min_variance_baseline(pi, score_norm_sq(th), q_pi(mdp, pi))
    b[mdp.term] = 0.0
    return b


# =============================================================================== SGD selection rules
def selection_probabilities(rule: SelectionRule, k: int, n: int) -> FloatArray:
    """Law of the index i(k) in {0..N-1} picked at SGD step k: uniform (PG-33) or cyclic mod(k, N) (PG-34).

    Spec: PG-33 (with erratum E-40: E g_{i(k)} = (1/N) sum_i g_i = grad F exactly), PG-34. Shape [N].
    """
    n = validate_int(n, "n", minimum=1)
    k = validate_int(k, "k")
    if rule == "uniform":
        return np.full(n, 1.0 / n)
    if rule == "cyclic":
        out = np.zeros(n)
        out[k % n] = 1.0
        return out
    raise ReferenceError_(f"rule must be 'uniform' or 'cyclic', got {rule!r}")


def expand_random_time_step(
    per_step: ArrayLike, lengths: ArrayLike, weights: ArrayLike, *, scale_by_length: bool = True
) -> tuple[FloatArray, FloatArray]:
    """The exact law of the step T g_{t(k)} with t(k) ~ Unif{0..T-1}, as (samples [M, ...], weights [M]).

    Spec: PG-35 (E[T g_{t(k)} | tau] = sum_t g_t, unbiased), PG-37 (``scale_by_length=False``: the
    per-transition step g_t, biased), erratum E-43. Every (trajectory i, step t < T_i) pair becomes one
    sample with weight w_i / T_i; a trajectory with T = 0 contributes the zero step with weight w_i.
    Shapes: per_step [N, H, ...], lengths [N], weights [N].
    """
    g = np.asarray(per_step, dtype=np.float64)
    n, h = g.shape[:2]
    w = validate_weights(np.asarray(weights, dtype=np.float64), "weights")  # finite and >= 0
    ln = validate_indices(lengths, h + 1, name="lengths", what="length", error=ShapeError)  # 2.5 refused
    if ln.shape != (n,) or w.shape != (n,):  # a short weights vector raised a bare IndexError
        raise ShapeError(f"lengths and weights must have shape ({n},), got {ln.shape}, {w.shape}")
    samples: list[FloatArray] = []
    ws: list[float] = []
    for i in range(n):
        ti = int(ln[i])
        if ti == 0:
            samples.append(np.zeros(g.shape[2:]))
            ws.append(float(w[i]))
            continue
        for t in range(min(ti, h)):
            samples.append(g[i, t] * (ti if scale_by_length else 1.0))
            ws.append(float(w[i]) / ti)
    return np.asarray(np.stack(samples), dtype=np.float64), np.asarray(ws, dtype=np.float64)

