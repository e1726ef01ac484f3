"""The one vector-environment interface of ``scalable`` (autoreset semantics made explicit).

Spec: PG-38 (A2C steps B environments in lockstep), TR-20/TR-29 (bootstrapping), open choice 13.

Every backend (gymnasium, envpool) presents **same-step autoreset**: ``step(actions)`` advances all B
environments once; an environment whose episode ended at this step (terminated or truncated) is reset
at once, so ``obs[b]`` is already the first observation of its next episode, while ``final_obs[b]`` holds
the **true last observation** of the episode that just ended. Rows of ``final_obs`` where the episode
did not end equal ``obs`` (so a value network can be applied to the whole batch; only rows with
``truncated & ~terminated`` are ever read, by :func:`scalable.core.advantages.next_values_from_rollout`).

Shapes (B = ``num_envs``): ``obs``/``final_obs`` [B, *obs_shape]; ``reward`` [B] float32 (the
*training* reward: clipped when reward clipping is on); ``terminated``/``truncated`` [B] bool. The
``info`` field reports finished **real** episodes (a game over, not a lost life) on the **raw** reward
scale: ``info.done_mask`` [B] bool, ``info.returns``/``info.lengths`` [B] (meaningful where the mask is
set; lengths in agent steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EpisodeInfo",
    "EpisodeQuota",
    "VecEnv",
    "VecStep",
    "box_action_check",
    "completed_episodes",
    "discrete_action_check",
]


@dataclass(frozen=True)
class EpisodeInfo:
    """Real episodes that finished at this step, on the raw reward scale. Shapes: all [B]."""

    done_mask: NDArray[np.bool_]
    returns: NDArray[np.float64]
    lengths: NDArray[np.int64]

    @staticmethod
    def empty(num_envs: int) -> EpisodeInfo:
        """No episode finished at this step."""
        return EpisodeInfo(
            np.zeros(num_envs, dtype=np.bool_), np.zeros(num_envs, np.float64), np.zeros(num_envs, np.int64)
        )


class VecStep(NamedTuple):
    """Result of :meth:`VecEnv.step`; unpacks as ``obs, reward, terminated, truncated, final_obs, info``."""

    obs: NDArray[np.generic]
    reward: NDArray[np.float32]
    terminated: NDArray[np.bool_]
    truncated: NDArray[np.bool_]
    final_obs: NDArray[np.generic]
    info: EpisodeInfo


@runtime_checkable
class VecEnv(Protocol):
    """B environments stepped in lockstep with same-step autoreset (see the module docstring)."""

    @property
    def num_envs(self) -> int:
        """B, the number of environments."""
        ...

    @property
    def single_observation_space(self) -> gym.Space[NDArray[np.generic]]:
        """Observation space of one environment."""
        ...

    @property
    def single_action_space(self) -> gym.Space[NDArray[np.generic]]:
        """Action space of one environment (Discrete or Box)."""
        ...

    def reset(self, seed: int) -> NDArray[np.generic]:
        """Reset all environments; environment b is seeded with ``seed + b``. Returns obs [B, *obs_shape]."""
        ...

    def step(self, actions: NDArray[np.generic]) -> VecStep:
        """Advance every environment once. actions: [B] (Discrete) or [B, *action_shape] (Box)."""
        ...

    def close(self) -> None:
        """Release the environments."""
        ...


def discrete_action_check(space: gym.Space[Any], num_envs: int) -> Callable[[NDArray[Any]], NDArray[Any]] | None:
    """For a Discrete action space, a check of a batch of B actions: ValueError unless it has shape [B] and every
    action is a whole number in ``start .. start + n - 1``, and returns the actions as integers (int64 where
    they were floats, as a torch sampler may give them); None for other spaces. Out-of-range actions are not
    errors to either simulator: envpool plays -1, 4 or 100 in Breakout as NOOP and gymnasium plays -1 as the last
    action (Python indexing), so the two backends would silently disagree."""
    if not isinstance(space, gym.spaces.Discrete):
        return None
    lo, n = int(space.start), int(space.n)

    def check(acts: NDArray[Any]) -> NDArray[Any]:
        if acts.shape != (num_envs,):
            raise ValueError(f"expected {num_envs} discrete actions (shape ({num_envs},)), got shape {acts.shape}")
        if acts.dtype.kind not in "iu":
            if acts.dtype.kind != "f" or not bool(np.all(np.isfinite(acts))) or bool(np.any(acts != np.round(acts))):
                raise ValueError(f"discrete actions must be whole numbers, got {acts.dtype} values {acts.tolist()}")
        if acts.size and (bool(np.any(acts < lo)) or bool(np.any(acts >= lo + n))):
            bad = acts[(acts < lo) | (acts >= lo + n)]
            raise ValueError(f"discrete action(s) {bad.tolist()} outside the action space {lo}..{lo + n - 1}")
        return acts if acts.dtype.kind in "iu" else acts.astype(np.int64)

    return check


def box_action_check(space: gym.Space[Any], num_envs: int) -> Callable[[NDArray[Any]], NDArray[Any]] | None:
    """For a Box action space, a check of a batch of B actions: ValueError unless it has shape [B, *shape] and
    every entry is finite; returns the actions clipped to [low, high] (as ``np.clip``; the dtype numpy promotes
    the actions and the bounds to, float32 for float32 actions of a float32 space). None for other spaces.
    Neither simulator refuses these: a NaN action made a NaN reward, MuJoCo reset its physics mid-episode
    (a warning on stderr) and the episode's return came out NaN; shape (B, 1) was broadcast to every action
    dimension, extra rows were dropped, and envpool aborted the process on too few rows (2026-12-07 review)."""
    if not isinstance(space, gym.spaces.Box):
        return None
    low, high = np.asarray(space.low), np.asarray(space.high)
    shape = (num_envs, *space.shape)

    def check(acts: NDArray[Any]) -> NDArray[Any]:
        if acts.shape != shape:
            raise ValueError(f"expected continuous actions of shape {shape}, got shape {acts.shape}")
        if acts.dtype.kind not in "fiu":
            raise ValueError(f"continuous actions must be real numbers, got dtype {acts.dtype}")
        if not bool(np.all(np.isfinite(acts))):
            bad = np.argwhere(~np.isfinite(acts))[0].tolist()
            raise ValueError(f"continuous action at index {bad} is not finite ({acts[tuple(bad)]!r})")
        out: NDArray[Any] = np.minimum(np.maximum(acts, low), high)  # = np.clip(acts, low, high)
        return out

    return check


def completed_episodes(info: EpisodeInfo) -> list[tuple[float, int]]:
    """``(raw return, length)`` of each real episode that finished at this step, in env order."""
    idx = np.flatnonzero(info.done_mask)
    return [(float(info.returns[i]), int(info.lengths[i])) for i in idx]


class EpisodeQuota:
    """Exactly ``episodes`` evaluation episodes from B parallel envs, free of completion-order bias.

    Keeping the first ``episodes`` episodes to *finish* across B lockstepped envs favours short episodes:
    by any given step an env has finished more short episodes than long ones, so a policy whose bad
    episodes are short (a Hopper that falls, an Atari game lost early) is scored too low, and one whose
    good episodes are short (CartPole with a cost, a race) too high. Here env b contributes exactly its
    own first ``targets[b] = (episodes + b) // B`` episodes (the same split as Stable-Baselines3's
    ``evaluate_policy``): which episodes count is fixed before any outcome is seen, so each kept return
    is an unbiased sample of the policy's return from that env's start-state distribution.

    ``add(info)`` after every step; ``done`` once every env met its target; ``returns`` / ``lengths`` in
    env-major order (env 0's episodes in the order played, then env 1's, ...).
    """

    def __init__(self, episodes: int, num_envs: int) -> None:
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {episodes}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.targets = [(episodes + b) // num_envs for b in range(num_envs)]
        self._per_env: list[list[tuple[float, int]]] = [[] for _ in range(num_envs)]

    def add(self, info: EpisodeInfo) -> None:
        """Record the episodes that finished at this step, up to each env's target."""
        if info.done_mask.shape != (len(self.targets),):
            raise ValueError(f"info is for {info.done_mask.shape[0]} envs, the quota for {len(self.targets)}")
        for b in np.flatnonzero(info.done_mask):
            if len(self._per_env[b]) < self.targets[b]:
                self._per_env[b].append((float(info.returns[b]), int(info.lengths[b])))

    @property
    def done(self) -> bool:
        """Every env has finished its quota."""
        return all(len(eps) >= t for eps, t in zip(self._per_env, self.targets, strict=True))

    @property
    def returns(self) -> list[float]:
        """Raw returns of the kept episodes, env-major."""
        return [r for eps in self._per_env for r, _ in eps]

    @property
    def lengths(self) -> list[int]:
        """Lengths (agent steps) of the kept episodes, env-major."""
        return [n for eps in self._per_env for _, n in eps]
