"""MuJoCo continuous-control environments (gymnasium v5 on mujoco 4.0, or envpool's v5 twins).

Spec: PG-49 (state = generalised coordinates and velocities; actions are bounded forces), PG-52 / E-53
(observation sizes 4..376 - InvertedPendulum to Humanoid -, action sizes 1..17).

Options (:class:`MujocoOptions`): ``max_episode_steps`` (the time limit, a *truncation*; None keeps the
environment's own, 1000 for the locomotion tasks). Observations are cast to float32 [obs_dim] by the
backends; actions are clipped to the action bounds by the backends. Observation and reward
normalisation are *agent* switches (they carry state that is checkpointed with the agent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["MUJOCO_TASKS", "MujocoOptions", "envpool_kwargs", "is_mujoco", "make_gym_mujoco"]

MUJOCO_TASKS = (
    "Ant",
    "HalfCheetah",
    "Hopper",
    "Humanoid",
    "HumanoidStandup",
    "InvertedDoublePendulum",
    "InvertedPendulum",
    "Pusher",
    "Reacher",
    "Swimmer",
    "Walker2d",
)


@dataclass(frozen=True)
class MujocoOptions:
    """MuJoCo environment switches."""

    max_episode_steps: int | None = None

    def __post_init__(self) -> None:
        v = self.max_episode_steps
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ValueError(f"MujocoOptions.max_episode_steps must be None or a whole number >= 1, got {v!r}")


def is_mujoco(env_id: str) -> bool:
    """True for ``<Task>-v4`` / ``-v5`` ids of the gymnasium MuJoCo suite."""
    name, _, _ = env_id.partition("-v")
    return name in MUJOCO_TASKS


def envpool_kwargs(opts: MujocoOptions) -> dict[str, Any]:
    """The same options in envpool's vocabulary."""
    return {} if opts.max_episode_steps is None else {"max_episode_steps": opts.max_episode_steps}


def make_gym_mujoco(env_id: str, opts: MujocoOptions, *, render_mode: str | None = None) -> gym.Env[Any, Any]:
    """One gymnasium MuJoCo environment with raw episode statistics recorded."""
    kwargs: dict[str, Any] = {"render_mode": render_mode}
    if opts.max_episode_steps is not None:
        kwargs["max_episode_steps"] = opts.max_episode_steps
    env: gym.Env[Any, Any] = gym.make(env_id, **kwargs)
    return gym.wrappers.RecordEpisodeStatistics(env)
