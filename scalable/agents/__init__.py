"""Agents: A2C (PG-38) and PPO-clip with GAE (TR-15, TR-31), each one CleanRL-style training loop.

:mod:`~scalable.agents.a2c` also holds what both share (rollout collection, checkpoints, exact resume).
"""

from scalable.agents.a2c import A2CConfig
from scalable.agents.common import TrainResult
from scalable.agents.ppo import PPOConfig, atari_config

__all__ = ["A2CConfig", "PPOConfig", "TrainResult", "atari_config"]
