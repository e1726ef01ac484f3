"""Hypothesis strategies for [T, B] rollout batches and PPO minibatches (public API).

Spec: TR-29 (open choice 13) for the batch semantics, TR-13/TR-14 for the PPO inputs. The conventions
are those of :mod:`reference.advantages`: time-major ``[T, B]``; row t is step t (acting in s_t gave r_t);
``terminated[t]`` means s_{t+1} = term, ``truncated[t]`` a time-limit cut after step t whose true final
state has value ``v_final[t]``; a row with neither flag at t = T-1 is bootstrapped with ``last_value``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from reference.advantages import BoolArray, next_values_from_rollout
from reference.mdp import FloatArray

__all__ = ["PPOBatch", "RolloutBatch", "ppo_batches", "rollout_batches"]


@dataclass(frozen=True)
class RolloutBatch:
    """A [T, B] rollout: everything a GAE / TD(k) / return computation reads.

    ``v_final`` [T, B] is finite exactly where ``truncated & ~terminated`` (NaN elsewhere, so a reader
    that uses it outside those rows produces NaN); ``last_value`` [B] is V of the state after row T-1.
    """

    rewards: FloatArray
    values: FloatArray
    last_value: FloatArray
    v_final: FloatArray
    terminated: BoolArray
    truncated: BoolArray
    gamma: float
    lam: float

    @property
    def shape(self) -> tuple[int, int]:
        t, b = self.rewards.shape
        return int(t), int(b)

    @property
    def done(self) -> BoolArray:
        """Episode ended after row t (either flag)."""
        return np.asarray(self.terminated | self.truncated)

    @property
    def bootstrap_truncated(self) -> BoolArray:
        """Rows that end by truncation only (termination wins when both flags are set)."""
        return np.asarray(self.truncated & ~self.terminated)

    @property
    def next_values(self) -> FloatArray:
        """V(s_{t+1}) of the true next state (:func:`reference.advantages.next_values_from_rollout`)."""
        return next_values_from_rollout(self.values, self.last_value, self.terminated, self.truncated,
                                        self.v_final)

    @property
    def scale(self) -> float:
        """A bound on |r| + 2 max |V| over the batch (the magnitude of one TD residual)."""
        vf = np.where(self.bootstrap_truncated, self.v_final, 0.0)
        vmax = max(float(np.max(np.abs(self.values))), float(np.max(np.abs(self.last_value))),
                   float(np.max(np.abs(vf))))
        return float(np.max(np.abs(self.rewards))) + 2.0 * vmax


@st.composite
def rollout_batches(
    draw: st.DrawFn,
    *,
    max_steps: int = 12,
    max_envs: int = 4,
    truncation: bool = True,
    gammas: tuple[float, ...] = (0.5, 0.9, 0.99, 1.0),
    lams: tuple[float, ...] = (0.0, 0.3, 0.9, 0.95, 1.0),
    value_scale: float = 10.0,
) -> RolloutBatch:
    """A random rollout batch, T in [1, max_steps], B in {1, 2, max_envs} (B = 1 drawn often).

    Termination and truncation rates are drawn from {0, 0.2, 0.5, 1} each (so "every row ends" and
    "no row ends" both occur); the two flags may coincide (termination wins). ``truncation=False`` draws
    batches without truncation, for conventions that cannot express a truncation bootstrap.
    Rewards in [-1, 1], values in [-value_scale, value_scale]; integers are drawn sometimes, so exact
    ties and exact zeros occur.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    t = draw(st.integers(1, max_steps))
    b = draw(st.sampled_from([1, 1, *sorted({min(2, max_envs), max_envs})]))
    p_term = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    p_trunc = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0])) if truncation else 0.0
    gamma = draw(st.sampled_from(gammas))
    lam = draw(st.sampled_from(lams))
    rng = np.random.default_rng(seed)
    term = rng.random((t, b)) < p_term
    trunc = rng.random((t, b)) < p_trunc
    rewards = rng.uniform(-1.0, 1.0, (t, b))
    values = rng.uniform(-value_scale, value_scale, (t, b))
    if draw(st.booleans()):
        rewards, values = np.round(rewards), np.round(values)
    v_final = np.where(trunc & ~term, rng.uniform(-value_scale, value_scale, (t, b)), np.nan)
    return RolloutBatch(rewards, values, rng.uniform(-value_scale, value_scale, b), v_final, term, trunc,
                        float(gamma), float(lam))


@dataclass(frozen=True)
class PPOBatch:
    """A PPO minibatch: log pi_theta(a|s), log pi_old(a|s), advantages [N], and the clip range ``eps``."""

    log_prob: FloatArray
    old_log_prob: FloatArray
    advantages: FloatArray
    eps: float

    @property
    def ratio(self) -> FloatArray:
        """ell = exp(log pi_theta - log pi_old) (open choice 12)."""
        return np.asarray(np.exp(self.log_prob - self.old_log_prob), dtype=np.float64)


@st.composite
def ppo_batches(draw: st.DrawFn, *, max_size: int = 16, eps_values: tuple[float, ...] = (0.1, 0.2, 0.3)) -> PPOBatch:
    """A random PPO minibatch of size N in {1, 2, max_size // 2, max_size} (N = 1 drawn often).

    Log-ratios ~ N(0, s^2) with s drawn from {0, 0.05, 0.3, 1}: s = 0 is the first epoch (ratio 1);
    large s puts entries on both clipped sides. Advantages ~ N(0, 1), or rounded to integers (exact zeros
    included), or clustered (3 or -2 plus 0.001 N(0, 1): normalising them amplifies rounding 2000-3000-fold).
    Log-probabilities are drawn of two kinds: those of a distribution over a few actions (<= 0), or
    log-*densities* of continuous actions, which are positive wherever the density exceeds 1 (a narrow
    Gaussian): old ~ N(1, 2^2), so both signs occur, and nothing clamps them to <= 0.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.sampled_from([1, 1, *sorted({min(2, max_size), max(1, max_size // 2), max_size})]))
    s = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    eps = draw(st.sampled_from(eps_values))
    continuous = draw(st.booleans())
    rng = np.random.default_rng(seed)
    if continuous:
        old = rng.normal(1.0, 2.0, n)
        new = old + s * rng.normal(size=n)
    else:
        old = -rng.exponential(1.0, n)
        new = np.minimum(old + s * rng.normal(size=n), 0.0)
    kind = draw(st.sampled_from(["normal", "integer", "clustered"]))
    adv = rng.normal(size=n)
    if kind == "integer":
        adv = np.round(adv)
    elif kind == "clustered":  # mean >> std: per-minibatch normalisation amplifies rounding by max|A| / std
        adv = float(rng.choice([3.0, -2.0])) + 1e-3 * adv
    return PPOBatch(new, old, adv, float(eps))
