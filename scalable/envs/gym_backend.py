"""The gymnasium backend of :class:`~scalable.envs.vector.VecEnv` (gymnasium 1.x vector envs).

Gymnasium 1.x vector envs default to ``AutoresetMode.NEXT_STEP`` (the step *after* an episode ends is
a reset step whose action is ignored). We build them with ``AutoresetMode.SAME_STEP``: the ending step
resets at once and reports the true last observation in ``info["final_obs"]`` (mask
``info["_final_obs"]``) and the last step's info in ``info["final_info"]``. Each sub-environment carries
``RecordEpisodeStatistics`` *below* any reward clipping / episodic-life wrapper, so
``final_info["episode"]`` holds the raw return and length of a real episode (spec: open choice 13).
Float observations are cast to float32; Box actions are clipped to their bounds.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from numpy.typing import NDArray

from scalable.envs.vector import EpisodeInfo, VecStep, box_action_check, discrete_action_check

__all__ = ["GymVecEnv", "float32_space"]


def float32_space(space: gym.Space[Any]) -> gym.Space[Any]:
    """A float64 Box becomes the same Box in float32 (what the backends return); others unchanged."""
    if isinstance(space, gym.spaces.Box) and space.dtype == np.float64:
        return gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32)
    return space


def _worker_env(fn: Callable[[], gym.Env[Any, Any]], parent_pid: int) -> gym.Env[Any, Any]:
    """Build an env inside an ``AsyncVectorEnv`` worker that ignores SIGINT: a Ctrl-C (sent to the whole
    process group) then reaches only the training loop, which saves its exit checkpoint and closes the
    workers, instead of killing them mid-step with a KeyboardInterrupt traceback each. ``AsyncVectorEnv``
    also calls the first env function in the parent (to read the spaces): there SIGINT is left alone."""
    if os.getpid() != parent_pid:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return fn()


class GymVecEnv:
    """B gymnasium environments with same-step autoreset. ``asynchronous`` uses one process per env."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env[Any, Any]]], *, asynchronous: bool = False) -> None:
        self._env: gym.vector.VectorEnv[Any, Any, Any]
        if asynchronous:
            self._env = AsyncVectorEnv([functools.partial(_worker_env, fn, os.getpid()) for fn in env_fns],
                                       autoreset_mode=AutoresetMode.SAME_STEP)
        else:
            self._env = SyncVectorEnv(list(env_fns), autoreset_mode=AutoresetMode.SAME_STEP)
        self._obs_space = float32_space(self._env.single_observation_space)
        self._act_space = self._env.single_action_space
        # one synchronous env: step it directly with the same same-step autoreset semantics (no
        # vector-env batching overhead); reset / render / close still go through the vector env
        self._single: gym.Env[Any, Any] | None = None
        if not asynchronous and isinstance(self._env, SyncVectorEnv) and len(self._env.envs) == 1:
            self._single = self._env.envs[0]
        self._check_discrete = discrete_action_check(self._act_space, int(self._env.num_envs))
        self._check_box = box_action_check(self._act_space, int(self._env.num_envs))

    @property
    def num_envs(self) -> int:
        return int(self._env.num_envs)

    @property
    def single_observation_space(self) -> gym.Space[NDArray[np.generic]]:
        return self._obs_space

    @property
    def single_action_space(self) -> gym.Space[NDArray[np.generic]]:
        return cast("gym.Space[NDArray[np.generic]]", self._act_space)

    def _obs(self, obs: Any) -> NDArray[np.generic]:
        a = np.asarray(obs)
        return a.astype(np.float32) if a.dtype == np.float64 else a

    def reset(self, seed: int) -> NDArray[np.generic]:
        obs, _ = self._env.reset(seed=int(seed))  # env b gets seed + b
        return self._obs(obs)

    @staticmethod
    def _obs_copy(obs: Any) -> NDArray[np.generic]:
        """One env's observation as a fresh [1, *shape] array (float64 cast to float32)."""
        a = np.asarray(obs)
        return np.array(a, dtype=np.float32 if a.dtype == np.float64 else a.dtype)[None]

    def _step_single(self, env: gym.Env[Any, Any], acts: NDArray[np.generic]) -> VecStep:
        """``step`` for one synchronous env, as SyncVectorEnv with AutoresetMode.SAME_STEP does it."""
        obs_raw, reward, terminated, truncated, info = env.step(acts[0])
        obs = self._obs_copy(obs_raw)
        term = np.array([bool(terminated)], dtype=np.bool_)
        trunc = np.array([bool(truncated)], dtype=np.bool_)
        rew = np.array([reward], dtype=np.float64).astype(np.float32)
        final_obs = obs.copy()
        episodes = EpisodeInfo.empty(1)
        if terminated or truncated:
            new_obs, _ = env.reset()
            obs = self._obs_copy(new_obs)
            if "episode" in info:
                ep = info["episode"]
                episodes = EpisodeInfo(
                    np.ones(1, dtype=np.bool_),
                    np.asarray(ep["r"], dtype=np.float64).reshape(1),
                    np.asarray(ep["l"], dtype=np.int64).reshape(1),
                )
        return VecStep(obs, rew, term, trunc, final_obs, episodes)

    def step(self, actions: NDArray[np.generic]) -> VecStep:
        acts = np.asarray(actions)
        if self._check_box is not None:  # shape, finiteness, then np.clip(acts, low, high)
            acts = self._check_box(acts)
        elif self._check_discrete is not None:
            acts = self._check_discrete(acts)
        if self._single is not None:
            return self._step_single(self._single, acts)
        obs_raw, reward, terminated, truncated, info = self._env.step(acts)
        obs = self._obs(obs_raw)
        term = np.asarray(terminated, dtype=np.bool_)
        trunc = np.asarray(truncated, dtype=np.bool_)
        final_obs = obs.copy()
        episodes = EpisodeInfo.empty(self.num_envs)
        if "_final_obs" in info:
            mask = np.asarray(info["_final_obs"], dtype=np.bool_)
            for b in np.flatnonzero(mask):
                final_obs[b] = self._obs(info["final_obs"][b])
            final_info = info.get("final_info", {})
            if "episode" in final_info:
                m = np.asarray(final_info["_episode"], dtype=np.bool_)
                ep = final_info["episode"]
                episodes = EpisodeInfo(
                    m,
                    np.where(m, np.asarray(ep["r"], dtype=np.float64), 0.0),
                    np.where(m, np.asarray(ep["l"], dtype=np.int64), 0),
                )
        return VecStep(obs, np.asarray(reward, dtype=np.float32), term, trunc, final_obs, episodes)

    def close(self) -> None:
        self._env.close()

    def render(self) -> Any:
        """Frames of the sub-environments (when built with a render_mode)."""
        return self._env.render()
