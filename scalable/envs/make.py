"""``make_vec_env``: one entry point over both backends (``"auto"``: envpool where it is the faster one).

Spec: PG-38 (B environments stepped in lockstep). Environment families:

* Atari (``ALE/<Game>-v5``): :class:`~scalable.envs.atari.AtariOptions` (training defaults; pass
  ``atari.for_eval()`` for evaluation);
* MuJoCo (``<Task>-v5``): :class:`~scalable.envs.mujoco.MujocoOptions`;
* anything else registered with gymnasium (``CartPole-v1``, test environments): ``max_episode_steps``.

``backend="auto"`` picks envpool for Atari whenever it is installed and has the game, and for the other
families (MuJoCo, classic control) from :data:`ENVPOOL_MIN_ENVS` environments up, gymnasium otherwise
(:func:`resolve_backend`). A training run records the backend it resolved to in its config, so that a
resume replays its actions through the same simulator.
Seeding is done by ``VecEnv.reset(seed)`` (env b gets ``seed + b`` on both backends).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from scalable.envs.atari import (
    AtariOptions,
    check_envpool_options,
    envpool_atari_id,
    is_atari,
    make_gym_atari,
    resolved_options,
)
from scalable.envs.atari import envpool_kwargs as atari_envpool_kwargs
from scalable.envs.envpool_backend import EnvpoolVecEnv, envpool_has
from scalable.envs.gym_backend import GymVecEnv
from scalable.envs.mujoco import MujocoOptions, is_mujoco, make_gym_mujoco
from scalable.envs.mujoco import envpool_kwargs as mujoco_envpool_kwargs
from scalable.envs.vector import VecEnv

__all__ = ["ENVPOOL_MIN_ENVS", "Backend", "envpool_has_env", "make_vec_env", "resolve_backend"]

Backend = Literal["auto", "gymnasium", "envpool"]

ENVPOOL_MIN_ENVS = 8
"""Below this many environments ``backend="auto"`` runs non-Atari environments in-process with gymnasium.

envpool's per-call overhead (a round trip through its worker threads, about 0.16 ms) dominates a cheap
simulator: on the 2-core machine of 2026-12-05, random actions through ``make_vec_env``, HalfCheetah-v5 steps
at 21881 env steps/s in gymnasium against 6089 in envpool with 1 env, 21053 against 17186 with 4 and 24392
against 30268 with 8; Hopper-v5 10423 against 5142 with 1, 10301 against 14686 with 8. Atari frames cost
far more per step (emulation and preprocessing), and envpool's C++ preprocessing wins at every count."""


def _envpool_id(env_id: str) -> str:
    return envpool_atari_id(env_id) if is_atari(env_id) else env_id


def envpool_has_env(env_id: str) -> bool:
    """Whether envpool is installed and has ``env_id`` (a gymnasium id; ``ALE/<Game>-v5`` maps to envpool's)."""
    return envpool_has(_envpool_id(env_id))


def resolve_backend(env_id: str, backend: Backend = "auto", num_envs: int = 1, *,
                    atari: AtariOptions | None = None) -> Literal["gymnasium", "envpool"]:
    """The backend ``make_vec_env`` will use for ``num_envs`` envs; raises ValueError if envpool is asked for
    but lacks the env. ``"auto"``: envpool if it has the env and the env is Atari or ``num_envs >=``
    :data:`ENVPOOL_MIN_ENVS`, else gymnasium. Atari with ``atari.noop_max == 0``: gymnasium (envpool's reset
    crashes the process with it; an explicit ``"envpool"`` raises ValueError)."""
    if backend == "gymnasium":
        return "gymnasium"
    has = envpool_has_env(env_id)
    atari_opts = atari if is_atari(env_id) else None
    if backend == "envpool":
        if atari_opts is not None:
            check_envpool_options(atari_opts)
        if not has:
            raise ValueError(f"envpool is not installed or has no environment {_envpool_id(env_id)!r} "
                             f"(from {env_id!r}); use backend='gymnasium'")
        return "envpool"
    if backend != "auto":
        raise ValueError(f"backend must be 'auto', 'gymnasium' or 'envpool', got {backend!r}")
    if atari_opts is not None:
        try:
            check_envpool_options(atari_opts)
        except ValueError:
            return "gymnasium"
    return "envpool" if has and (is_atari(env_id) or num_envs >= ENVPOOL_MIN_ENVS) else "gymnasium"


def make_vec_env(
    env_id: str,
    num_envs: int,
    *,
    backend: Backend = "auto",
    atari: AtariOptions | None = None,
    mujoco: MujocoOptions | None = None,
    max_episode_steps: int | None = None,
    asynchronous: bool = False,
    render_mode: str | None = None,
    num_threads: int = 0,
) -> VecEnv:
    """B = ``num_envs`` environments of ``env_id`` behind :class:`~scalable.envs.vector.VecEnv`.

    ``asynchronous`` (gymnasium only): one worker process per env. ``num_threads`` (envpool only): 0 = auto.
    ``render_mode`` forces the gymnasium backend (envpool does not render video frames for us).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if max_episode_steps is not None and (isinstance(max_episode_steps, bool) or
                                          not isinstance(max_episode_steps, (int, np.integer)) or
                                          max_episode_steps < 1):
        raise ValueError(f"max_episode_steps must be None or a whole number >= 1, got {max_episode_steps!r}")
    if render_mode == "rgb_array" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # Off-screen frames need no window: without this, SDL (pygame, the classic-control renderer) probes
        # for a display and prints "XDG_RUNTIME_DIR is invalid or not set" on headless machines.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    which = resolve_backend(env_id, "gymnasium" if render_mode is not None else backend, num_envs, atari=atari)
    if is_atari(env_id):
        if max_episode_steps is not None:
            raise ValueError(f"max_episode_steps={max_episode_steps}: an Atari time limit is "
                             f"AtariOptions.max_episode_steps (--set \"atari={{'max_episode_steps': N}}\")")
        a = resolved_options(atari if atari is not None else AtariOptions(), env_id)
        if which == "envpool":
            return EnvpoolVecEnv(envpool_atari_id(env_id), num_envs, atari=True, num_threads=num_threads,
                                 **atari_envpool_kwargs(a))
        return GymVecEnv([lambda: make_gym_atari(env_id, a, render_mode=render_mode)] * num_envs,
                         asynchronous=asynchronous)
    if is_mujoco(env_id):
        if mujoco is not None and max_episode_steps is not None:
            raise ValueError(f"max_episode_steps={max_episode_steps} and mujoco={mujoco}: give the MuJoCo time limit "
                             "once, as MujocoOptions.max_episode_steps")
        m = mujoco if mujoco is not None else MujocoOptions(max_episode_steps=max_episode_steps)
        if which == "envpool":
            return EnvpoolVecEnv(env_id, num_envs, num_threads=num_threads, **mujoco_envpool_kwargs(m))
        return GymVecEnv([lambda: make_gym_mujoco(env_id, m, render_mode=render_mode)] * num_envs,
                         asynchronous=asynchronous)
    if which == "envpool":
        kw: dict[str, Any] = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
        return EnvpoolVecEnv(env_id, num_envs, num_threads=num_threads, **kw)

    def make_one() -> gym.Env[Any, Any]:
        kwargs: dict[str, Any] = {} if render_mode is None else {"render_mode": render_mode}
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        return gym.wrappers.RecordEpisodeStatistics(gym.make(env_id, **kwargs))

    return GymVecEnv([make_one] * num_envs, asynchronous=asynchronous)
