"""Environments: one vector-env interface (same-step autoreset, true final observations), two backends.

Spec: PG-38 (vectorised environments), PG-42..PG-46 (Atari), PG-49 / PG-52 / E-53 (MuJoCo), open choice 13
(truncation is bootstrapped from the true final observation, termination is not).
"""

from scalable.envs.atari import AtariOptions
from scalable.envs.make import ENVPOOL_MIN_ENVS, Backend, envpool_has_env, make_vec_env, resolve_backend
from scalable.envs.mujoco import MujocoOptions
from scalable.envs.vector import EpisodeInfo, EpisodeQuota, VecEnv, VecStep, completed_episodes

__all__ = [
    "ENVPOOL_MIN_ENVS",
    "AtariOptions",
    "Backend",
    "EpisodeInfo",
    "EpisodeQuota",
    "MujocoOptions",
    "VecEnv",
    "VecStep",
    "completed_episodes",
    "envpool_has_env",
    "make_vec_env",
    "resolve_backend",
]
