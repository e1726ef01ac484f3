"""The envpool backend of :class:`~scalable.envs.vector.VecEnv` (C++ batched environments).

envpool autoresets on the *next* step (``NEXT_STEP``): after an episode ends, the following ``step`` of
that environment ignores its action, resets it and returns reward 0. We make that explicit and present
same-step semantics: after every ``step``, the environments that just ended are stepped once more *on
their own* (``step(actions, env_id)``, a reset step), so ``obs`` is the first observation of the next
episode and ``final_obs`` keeps the true last one. A subset ``reset`` would not do: with
``episodic_life`` it restarts the whole game instead of continuing after a lost life. After a lost
life envpool's own reset continues the game with 0..``noop_max``-1 single no-op frames and then one FIRE frame
(1..``noop_max`` no-op frames without the fire reset; the same at the start of a game);
the gymnasium backend (:class:`~scalable.envs.atari.EpisodicLife`, as SB3) takes one no-op agent step
instead: the two backends draw each life's start state differently (documented in docs/scalable.md).

The time limit is applied here, not by envpool: envpool's gymnasium layer reports
``terminated = done & ~truncated``, so an episode that terminates on the limit step (the pole falls, Hopper
falls, the game ends or a life is lost at step L) came back as truncated only, and training bootstrapped
from V(final_obs) where termination must bootstrap 0 (open choice 13; the gymnasium backend sets both
flags). The pool is built with a limit of L + 1, which it never reaches; this backend counts agent steps
per real episode and sets ``truncated`` at L itself, leaving envpool's ``terminated`` intact. A truncated
env is reset with a subset ``reset`` (a new game, as a time limit ends the game); an env that only
terminated gets envpool's reset step below.

Raw episode statistics are accumulated here: the raw reward is ``info["reward"]`` for Atari (the
reward before clipping) and the reward itself otherwise; a real episode ends at a game over
(``info["terminated"]`` for Atari, so a lost life under ``episodic_life`` does not count) or a
truncation. envpool fixes seeds at construction (env b gets ``seed + b``), so the pool is (re)built by
:meth:`EnvpoolVecEnv.reset` whenever it has been reset or stepped or the seed changes: ``reset(seed)`` always
restarts the same episodes, as on the gymnasium backend (also twice in a row). Float observations are cast
to float32; Box actions are clipped; discrete actions outside the space raise ValueError.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from scalable.envs.gym_backend import float32_space
from scalable.envs.vector import EpisodeInfo, VecStep, box_action_check, discrete_action_check

__all__ = ["EnvpoolVecEnv", "default_num_threads", "envpool_has"]


@contextmanager
def _quiet_spaces() -> Iterator[None]:
    """envpool declares float64 bounds for its float32 Box spaces, and gymnasium warns each time it builds
    them ("Box low's precision lowered by casting to float32"); harmless (the bounds take the space's own
    dtype, the one the environment returns), so that one warning is silenced where envpool builds spaces."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Box (low|high)'s precision lowered", category=UserWarning)
        yield


def envpool_has(task_id: str) -> bool:
    """Whether envpool is installed and knows ``task_id`` (envpool's name, e.g. ``Breakout-v5``)."""
    try:
        import envpool
    except ImportError:
        return False
    return task_id in envpool.list_all_envs()


def default_num_threads(num_envs: int) -> int:
    """envpool worker threads for ``num_envs`` envs: one per usable core, at most one per env.

    envpool's own ``num_threads=0`` starts one thread per env; on a 2-core machine 8 Atari envs then
    step at 1537 env steps/s against 1820 with 2 threads (measured, `benchmarks/results/scalable.md`).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(int(num_envs), cores))


class EnvpoolVecEnv:
    """B envpool environments with same-step autoreset. ``kwargs`` go to ``envpool.make``;
    ``num_threads=0`` means :func:`default_num_threads`."""

    def __init__(self, task_id: str, num_envs: int, *, atari: bool = False, num_threads: int = 0,
                 **kwargs: Any) -> None:
        self._task_id = task_id
        self._num_envs = int(num_envs)
        self._atari = atari
        self._kwargs = dict(kwargs, num_threads=num_threads if num_threads > 0 else default_num_threads(num_envs))
        limit = self._kwargs.get("max_episode_steps")
        if limit is None:
            import envpool

            limit = envpool.make_spec(task_id).config.max_episode_steps
        self._limit = int(limit)
        if self._limit < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self._limit}")
        # never reached: the limit is applied in step() (envpool's limit is an int32; at its maximum, the
        # default of tasks without a limit, the two coincide 2^31 - 1 steps out)
        self._kwargs["max_episode_steps"] = min(self._limit + 1, 2**31 - 1)
        self._pool: Any = None
        self._seed: int | None = None
        self._pool = self._make(0)
        with _quiet_spaces():
            self._obs_space = float32_space(self._pool.observation_space)
            self._act_space = self._pool.action_space
        self._ret = np.zeros(self._num_envs, np.float64)
        self._len = np.zeros(self._num_envs, np.int64)
        self._arange = np.arange(self._num_envs)
        self._check_discrete = discrete_action_check(self._act_space, self._num_envs)
        self._check_box = box_action_check(self._act_space, self._num_envs)

    def _make(self, seed: int) -> Any:
        import envpool

        self._seed = seed
        self._used = False  # reset or stepped since it was built
        return envpool.make(self._task_id, env_type="gymnasium", num_envs=self._num_envs, seed=seed,
                            **self._kwargs)

    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def single_observation_space(self) -> gym.Space[NDArray[np.generic]]:
        return cast("gym.Space[NDArray[np.generic]]", self._obs_space)

    @property
    def single_action_space(self) -> gym.Space[NDArray[np.generic]]:
        return cast("gym.Space[NDArray[np.generic]]", self._act_space)

    @staticmethod
    def _obs(obs: Any) -> NDArray[np.generic]:
        a = np.asarray(obs)
        return a.astype(np.float32) if a.dtype == np.float64 else a

    def _order(self, info: dict[str, Any], n: int) -> NDArray[np.intp] | None:
        ids = np.asarray(info["env_id"])
        ref = self._arange if n == len(self._arange) else np.arange(n)
        if len(ids) == n and bool((ids == ref).all()):
            return None
        return np.argsort(ids)

    def reset(self, seed: int) -> NDArray[np.generic]:
        if self._seed != int(seed) or self._used:  # envpool seeds at construction: a fresh pool per reset
            self._pool.close()
            self._pool = self._make(int(seed))
        with _quiet_spaces():
            obs, info = self._pool.reset()
        self._used = True  # a second reset(seed) must rebuild too, or it draws the next no-op starts
        order = self._order(info, self._num_envs)
        obs = obs if order is None else obs[order]
        self._ret[:] = 0.0
        self._len[:] = 0
        return self._obs(obs)

    def step(self, actions: NDArray[np.generic]) -> VecStep:
        acts = np.asarray(actions)
        if self._check_box is not None:  # shape, finiteness, then np.clip(acts, low, high)
            acts = self._check_box(acts).astype(np.float64)
        elif self._check_discrete is not None:
            acts = self._check_discrete(acts)
        obs, reward, terminated, truncated, info = self._pool.step(acts)
        self._used = True
        order = self._order(info, self._num_envs)
        if order is not None:
            obs, reward, terminated, truncated = obs[order], reward[order], terminated[order], truncated[order]
            info = {k: np.asarray(v)[order] for k, v in info.items() if k in ("reward", "terminated")}
        term = np.asarray(terminated, dtype=np.bool_)
        raw = np.asarray(info["reward"] if self._atari and "reward" in info else reward, dtype=np.float64)
        self._ret += raw
        self._len += 1
        # the time limit, counted per real episode (envpool's own, at L + 1, is never reached)
        trunc = np.asarray(truncated, dtype=np.bool_) | (self._len >= self._limit)
        real_end = trunc | (np.asarray(info["terminated"], dtype=np.bool_) if self._atari else term)
        episodes = EpisodeInfo(real_end.copy(), np.where(real_end, self._ret, 0.0), np.where(real_end, self._len, 0))
        self._ret[real_end] = 0.0
        self._len[real_end] = 0
        obs = self._obs(obs)
        final_obs = obs.copy()
        if trunc.any():  # a time limit ends the game: a new one (a subset reset restarts the whole game)
            ids = np.flatnonzero(trunc).astype(np.int32)
            with _quiet_spaces():
                new_obs, new_info = self._pool.reset(ids)
            obs[np.asarray(new_info["env_id"])] = self._obs(new_obs)
        ended = term & ~trunc
        if ended.any():  # envpool's own reset step: the next game, or the next life under episodic_life
            ids = np.flatnonzero(ended).astype(np.int32)
            new_obs, _, _, _, new_info = self._pool.step(np.zeros_like(acts[ids]), ids)
            obs[np.asarray(new_info["env_id"])] = self._obs(new_obs)
        return VecStep(obs, np.asarray(reward, dtype=np.float32), term, trunc, final_obs, episodes)

    def close(self) -> None:
        self._pool.close()
