"""GRPO's objective, the bias of group advantages and the baseline-variance study (TR-46..TR-52).

Spec: TR-46, TR-47, TR-48, TR-49, TR-50 (errata E-68, E-69; open choices 9, 10, 11).

Conventions (once for the module; the scalable PyTorch package mirrors them):

* A GRPO batch is time-major [T, B] with B = G * N rollouts laid out group-major (rollout b belongs to
  group b // N); all N rollouts of a group share s_0 (E-68: otherwise mean / std is not a baseline).
  ``valid`` [T, B] marks the steps t < T^(i) (from the terminated / truncated flags of
  reference.advantages); ``rewards`` [B] is each rollout's terminal reward r^(i) (undiscounted, no
  gamma-trick, reward only at the end: then Q_hat^{TD(inf)}_t = r^(i) for every t, TR-46).
* ``eps`` is the clip range eps_clip; ``eps_std`` the std stabiliser (E-68). The KL-to-reference penalty
  (``beta`` with the k3 estimator) and the per-rollout 1/|o_i| length normalisation are flags, off by
  default as in the text (open choice 11). ``scale_by_std=False`` is Dr. GRPO (no std, no length norm).
* Exact studies enumerate every trajectory from s_0 (reference.sampling.enumerate_trajectories) and every
  group of N of them (M^N tuples with product weights); Var of a gradient estimator is the trace of its
  covariance (open choice 21).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from reference.errors import ReferenceError_, ShapeError
from reference.exact import v_pi
from reference.generators import random_layered_mdp
from reference.gradients import score_function_estimator, trajectory_score
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    _real,
    _real_array,
    from_outcomes,
    validate_flag,
    validate_flags,
    validate_int,
)
from reference.policies import softmax
from reference.sampling import Moments, Trajectories, enumerate_trajectories, exact_moments
from reference.surrogates import GRPO_EPS_STD, grpo_advantages, kl_k3, ppo_clip_objective

__all__ = [
    "Baseline",
    "GroupAdvantageMeans",
    "group_gradient_moments",
    "grpo_advantage_conditional_means",
    "grpo_objective",
    "terminal_reward_mdp",
]

Baseline = Literal["none", "group_mean", "leave_one_out", "value", "remax"]


def grpo_objective(
    log_prob_new: ArrayLike,
    log_prob_old: ArrayLike,
    rewards: ArrayLike,
    valid: ArrayLike,
    *,
    group_size: int,
    eps: float = 0.2,
    eps_std: float = GRPO_EPS_STD,
    center: bool = True,
    scale_by_std: bool = True,
    beta: float = 0.0,
    log_prob_ref: ArrayLike | None = None,
    length_norm: bool = False,
) -> float:
    """(1/B) sum_i w_i sum_{t<T^(i)} [C_eps(pi_new/pi_old (a_t^(i)|s_t^(i)), A^(i)) - beta k3_t^(i)].

    Spec: TR-49 (A^(i) = (r^(i) - mean r) / (std r + eps_std) within each group, ddof = 1),
    TR-47 (``center=False, scale_by_std=False``: PPO without a baseline, A^(i) = r^(i)), Dr. GRPO
    (``scale_by_std=False``, ``length_norm=False``). w_i = 1/T^(i) with ``length_norm`` (GRPO's
    1/|o_i|), else 1. k3 = rho - 1 - log rho, rho = pi_ref / pi_new per token (Schulman's estimator of
    KL(pi_new || pi_ref), non-negative), only with beta > 0 (then ``log_prob_ref`` is required).
    Shapes: log-probs, valid [T, B]; rewards [B] -> scalar. An empty batch (B = 0) raises
    :class:`ShapeError` (the mean over no rollouts is undefined; NumPy would return NaN). Log-probs and
    rewards must be real numbers (strings and booleans are refused), the switches True or False. The result
    is exact or refused: -inf only where it is the value (beta > 0 and pi_new = 0 on a valid step, an infinite
    k3); an objective that overflows float64 raises ``ReferenceError_`` (it returned NaN or inf with a
    RuntimeWarning).
    """
    ln = _real_array(log_prob_new, "log_prob_new")
    lo = _real_array(log_prob_old, "log_prob_old")
    r = _real_array(rewards, "rewards")  # "1" and True were parsed as rewards
    center = validate_flag(center, "center")
    scale_by_std = validate_flag(scale_by_std, "scale_by_std")  # the string "False" ran as True
    length_norm = validate_flag(length_norm, "length_norm")
    if ln.ndim != 2 or lo.shape != ln.shape or np.shape(valid) != ln.shape or r.shape != ln.shape[1:]:
        raise ShapeError(f"need log_prob_new, log_prob_old, valid [T, B] and rewards [B]; got {list(ln.shape)}, "
                         f"{list(lo.shape)}, {list(np.shape(valid))}, {list(r.shape)}")
    va = validate_flags("valid", valid, ln.shape)  # boolean or exactly 0 / 1: a mask of 0.5 is refused
    b = ln.shape[1]
    if b == 0:
        raise ShapeError("grpo_objective needs at least one rollout: the batch [T, B] has B = 0")
    group_size = validate_int(group_size, "group_size", minimum=1)
    if group_size < 1 or b % group_size:
        raise ReferenceError_(f"group_size {group_size!r} must be >= 1 and divide B = {b}")
    if not (np.isfinite(_real(beta, "beta")) and beta >= 0.0):
        raise ReferenceError_(f"beta must be a finite number >= 0, got {beta!r}")
    groups = r.reshape(b // group_size, group_size)
    if center:
        adv = grpo_advantages(groups, eps_std=eps_std, scale_by_std=scale_by_std).reshape(b)
    elif scale_by_std:
        raise ReferenceError_("scale_by_std=True needs center=True (GRPO); center=False is PPO without baseline")
    else:
        adv = r
    ratio = np.exp(np.where(va, ln - lo, 0.0))
    per_tok = ppo_clip_objective(ratio, adv[None, :], eps=eps)
    if beta > 0.0:
        if log_prob_ref is None:
            raise ReferenceError_("beta > 0 needs log_prob_ref (the reference policy's log-probs)")
        lr = _real_array(log_prob_ref, "log_prob_ref")
        if lr.shape != ln.shape:
            raise ShapeError(f"log_prob_ref must have shape {list(ln.shape)}, got {list(lr.shape)}")
        if not np.all(np.isfinite(np.where(va, lr, 0.0))):  # NaN or -inf made the objective NaN
            raise ReferenceError_("log_prob_ref must be finite on the valid steps")
        per_tok = per_tok - beta * kl_k3(np.where(va, lr - ln, 0.0))
    per_roll = np.sum(np.where(va, per_tok, 0.0), axis=0)
    if length_norm:
        per_roll = per_roll / np.maximum(va.sum(axis=0), 1)
    with np.errstate(over="ignore", invalid="ignore"):
        out = float(np.mean(per_roll))
    if not np.isfinite(out):
        infinite_kl = beta > 0.0 and bool(np.any(va & np.isneginf(ln)))  # k3 = +inf: the value is -inf
        if not (out == -np.inf and infinite_kl):
            raise ReferenceError_(f"the GRPO objective overflows float64 ({out}): rewards or advantages too large "
                                  f"for the sum over tokens and completions")
    return out


def _terminal_returns(traj: Trajectories) -> FloatArray:
    if np.any(traj.truncated):
        raise ReferenceError_("GRPO studies need terminating trajectories (pass an acyclic MDP)")
    return np.asarray(traj.rewards.sum(axis=1), dtype=np.float64)


def _undiscounted(mdp: FiniteMDP) -> None:
    """The GRPO studies use the undiscounted return r of a terminating episode (gamma = 1, the text's LLM
    setting): at gamma < 1 they computed undiscounted quantities that differ from grad J (0.012 at gamma = 0.5)."""
    if mdp.gamma != 1.0:
        raise ReferenceError_(f"the GRPO studies take the undiscounted return (gamma = 1, TR-45..52); this MDP has "
                              f"gamma = {mdp.gamma} (use mdp.with_gamma(1.0) on an acyclic MDP)")


def _group_tuples(m: int, n: int) -> np.ndarray:
    return np.array(list(itertools.product(range(m), repeat=n)), dtype=np.int64).reshape(-1, n)


@dataclass(frozen=True)
class GroupAdvantageMeans:
    """E[A_hat^(1) | tau^(1) takes a in s] ([S+1, A], NaN where never visited) and P(visit) [S+1, A]."""

    mean: FloatArray
    visit_prob: FloatArray


def grpo_advantage_conditional_means(
    mdp: FiniteMDP,
    pi: FloatArray,
    *,
    s0: int,
    n: int,
    scale_by_std: bool = True,
    eps_std: float = GRPO_EPS_STD,
) -> GroupAdvantageMeans:
    """Exact E[A_hat_GRPO^(1) | (s, a) on tau^(1)] for a group of n rollouts from s0 (terminal rewards).

    Spec: TR-50 (not an unbiased estimate of A^pi(s, a)). Each state must be visited at most once per
    trajectory (acyclic MDP), so conditioning on the visit is conditioning on (s_t, a_t). For Dr. GRPO
    (``scale_by_std=False``) the mean is (n - 1)/n (E[r | (s, a) visited] - V^pi(s0)), r the undiscounted
    return: the group mean is a baseline for s0, not s_t, and it shrinks the signal by (n - 1)/n. With the
    reward at the end only (the text's outcome reward) E[r | (s, a) visited] = Q^pi(s, a); in general it is
    E[rewards before s | visit] + Q^pi(s, a) (the earlier docstring stated Q^pi(s, a) for any undiscounted
    return: up to 0.376 off on a layered MDP with rewards on every layer, review 2026-12-07).
    """
    n = validate_int(n, "n", minimum=1, hint=" (the group size)")
    _undiscounted(mdp)
    tr = enumerate_trajectories(mdp, pi, s0=s0)
    ret = _terminal_returns(tr)
    m = tr.n
    tup = _group_tuples(m, n)
    w = np.prod(tr.weights[tup], axis=1)
    adv = grpo_advantages(ret[tup], eps_std=eps_std, scale_by_std=scale_by_std)[:, 0]
    cond = np.bincount(tup[:, 0], weights=w * adv, minlength=m) / np.maximum(
        np.bincount(tup[:, 0], weights=w, minlength=m), np.finfo(np.float64).tiny)  # E[A^(1) | tau^(1) = j]
    num = np.zeros((mdp.n_states_plus, mdp.n_actions))
    den = np.zeros_like(num)
    for j in range(m):
        steps = range(int(tr.lengths[j]))
        visited = {(int(tr.states[j, t]), int(tr.actions[j, t])) for t in steps}
        if len({s for s, _ in visited}) != len(visited):
            raise ReferenceError_("a trajectory visits a state twice; use an acyclic (layered) MDP")
        for s, a in visited:
            num[s, a] += tr.weights[j] * cond[j]
            den[s, a] += tr.weights[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return GroupAdvantageMeans(np.asarray(mean, dtype=np.float64), den)


def group_gradient_moments(
    mdp: FiniteMDP,
    theta: ArrayLike,
    *,
    s0: int,
    n: int,
    baseline: Baseline,
    reward_shift: float = 0.0,
) -> Moments:
    """Exact mean and trace-variance of g = (1/n) sum_i sum_t psi_t^(i) grad log pi_theta(a_t^(i) | s_t^(i)).

    Spec: TR-48 (PPO without a baseline: "the variance will be too large"), compared at equal scale
    (before any std division): ``none`` psi = r^(i); ``group_mean`` psi = r^(i) - mean(r) (Dr. GRPO,
    mean (n-1)/n grad J); ``leave_one_out`` psi = r^(i) - mean_{j != i} r^(j) = n/(n-1) (r^(i) - mean r)
    (unbiased); ``value`` psi_t = r^(i) - V^pi(s_t^(i)) (the critic baseline, unbiased); ``remax``
    psi = r^(i) - r(tau_greedy) (TR-52: ReMax, Li et al. 2024), where tau_greedy is one extra rollout from
    s0 with the greedy policy argmax_a theta(s, a) (ties to the lowest index), drawn independently of the
    group -- a critic-free baseline that is independent of tau^(i), hence unbiased, and shift invariant;
    in a stochastic MDP r(tau_greedy) is random and the moments average over it too. ``reward_shift`` c
    adds c to every terminal reward (and c to V^pi, which at gamma = 1 with one terminal reward per
    episode is the exact shift of V^pi). This is the gradient of the PPO / GRPO objective at
    theta_next = theta_curr, where the ratio is 1 and the clip is inactive. Shapes: theta [S+1, A].
    """
    th = np.asarray(theta, dtype=np.float64)
    pi = softmax(th)
    n = validate_int(n, "n", minimum=1, hint=" (the group size)")
    if baseline == "leave_one_out" and n < 2:
        raise ReferenceError_("leave_one_out needs n >= 2")
    _undiscounted(mdp)
    tr = enumerate_trajectories(mdp, pi, s0=s0)
    ret = _terminal_returns(tr) + float(reward_shift)
    m = tr.n
    tup = _group_tuples(m, n)
    w = np.prod(tr.weights[tup], axis=1)
    score = trajectory_score(th, tr).reshape(m, -1)  # sum_t grad log pi, [M, D]
    r = ret[tup]  # [K, n]
    if baseline == "none":
        psi = r
    elif baseline == "group_mean":
        psi = r - r.mean(axis=1, keepdims=True)
    elif baseline == "leave_one_out":
        psi = (r - r.mean(axis=1, keepdims=True)) * (n / (n - 1.0))
    elif baseline == "value":
        v = v_pi(mdp, pi) + float(reward_shift)
        v[mdp.term] = 0.0
        vt = np.where(tr.states[:, :-1] == mdp.term, 0.0, v[np.minimum(tr.states[:, :-1], mdp.term)])
        per = score_function_estimator(th, tr, ret[:, None] - vt).reshape(m, -1)  # [M, D]
        g = per[tup].mean(axis=1)
        return exact_moments(g.reshape(-1, *th.shape), w / w.sum())
    elif baseline == "remax":
        greedy = np.zeros_like(pi)
        greedy[np.arange(th.shape[0]), np.argmax(th, axis=1)] = 1.0
        tg = enumerate_trajectories(mdp, greedy, s0=s0)
        b = _terminal_returns(tg) + float(reward_shift)  # [Mg] greedy returns, weights tg.weights
        base = np.einsum("kn,knd->kd", r, score[tup]) / n  # [K, D]
        ssum = score[tup].sum(axis=1) / n  # [K, D]
        g = base[:, None, :] - b[None, :, None] * ssum[:, None, :]  # [K, Mg, D]
        wg = (w[:, None] * tg.weights[None, :]).reshape(-1)
        return exact_moments(g.reshape(-1, *th.shape), wg / wg.sum())
    else:
        raise ReferenceError_(
            f"baseline must be one of none, group_mean, leave_one_out, value, remax; got {baseline!r}")
    g = np.einsum("kn,knd->kd", psi, score[tup]) / n
    return exact_moments(g.reshape(-1, *th.shape), w / w.sum())


def terminal_reward_mdp(
    rng: np.random.Generator,
    n_layers: int,
    width: int,
    n_actions: int,
    *,
    rewards: tuple[float, ...] = (0.0, 1.0),
) -> FiniteMDP:
    """Layered MDP at gamma = 1 whose only non-zero rewards are on the last step (the text's LLM setting).

    Built from reference.generators.random_layered_mdp (its transitions and p0); every reward of a
    non-final layer is set to 0 and every final-layer reward is drawn uniformly from ``rewards``.
    Spec: TR-46 (terminal reward r = r_{T-1}). ``rewards``: a non-empty 1-D sequence of finite real numbers
    (booleans, nested or empty sequences and values whose spread overflows are refused).
    """
    values = _real_array(rewards, "rewards")  # (True, False) was read as (1, 0); () and nested raised raw errors
    if values.ndim != 1 or values.size == 0:
        raise ShapeError(f"rewards must be a non-empty 1-D sequence of reward values, got shape {values.shape}")
    if not (np.all(np.isfinite(values)) and np.isfinite(float(np.max(values)) - float(np.min(values)))):
        raise ReferenceError_(f"rewards must be finite with a finite spread (the GRPO advantages centre them), "
                              f"got {rewards!r}")
    base = random_layered_mdp(rng, n_layers, width, n_actions, gamma=1.0)
    rew = np.zeros_like(base.reward)
    rows = np.repeat(np.arange(base.indptr.size - 1), np.diff(base.indptr))
    last = (rows // n_actions) >= (n_layers - 1) * width
    rew[last] = rng.choice(values, size=int(last.sum()))
    return from_outcomes(base.n_states, n_actions, base.indptr[: base.n_states * n_actions + 1],
                         base.next_state[: base.indptr[base.n_states * n_actions]],
                         rew[: base.indptr[base.n_states * n_actions]],
                         base.prob[: base.indptr[base.n_states * n_actions]], base.p0[: base.n_states],
                         gamma=1.0, name=f"terminal_reward(L={n_layers},W={width},A={n_actions})")
