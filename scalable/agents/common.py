"""What A2C and PPO share: the actor-critic builder, one [T, B] rollout, checkpoints and exact resume.

Spec: PG-38 (rollouts of k steps over B environments), TR-15 (PPO collects N T samples the same way).

**Resume design** (exact on CPU): checkpoints are written at update (rollout) boundaries and hold the
parameters, the optimiser, the normalisers, every RNG (torch, numpy, python and the action-sampling
generator), counters, the recent-return window, and the *action log* of every environment step since
the start (a compact tensor). Resume re-creates the environments with the same seed and replays the
logged actions (environment steps only, no network), which puts every environment - gymnasium or
envpool, including its internal RNG and episode position - in exactly the state it had. The replay costs
O(steps so far) environment steps; ``exact_env_resume=False`` skips it and restarts the environments with
a fresh derived seed (fast, not bit-identical).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import time
import types
import typing
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from scalable.core.advantages import next_values_from_rollout
from scalable.core.distributions import categorical_entropy, categorical_log_prob, categorical_sample
from scalable.core.normalize import ObservationNormalizer, RewardNormalizer
from scalable.envs import (
    AtariOptions,
    Backend,
    VecEnv,
    completed_episodes,
    envpool_has_env,
    make_vec_env,
    resolve_backend,
)
from scalable.envs.atari import check_envpool_options, is_atari, resolved_options
from scalable.nets.atari import PRECISIONS, AtariActorCritic, PolicyEval, PolicyStep, Precision
from scalable.nets.init import VALUE_GAIN
from scalable.nets.mlp import MLPActorCritic, NumpyPolicy, TanhGaussianHead, mlp
from scalable.runs.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    stream_seed,
)
from scalable.runs.logging import Logger, RunDir, RunLock

__all__ = [
    "ActorCritic",
    "CategoricalMLPActorCritic",
    "ConfigError",
    "DeviceError",
    "Head",
    "Net",
    "Rollout",
    "RunState",
    "Session",
    "TrainResult",
    "TrainingDiverged",
    "build_actor_critic",
    "check_finite_parameters",
    "check_hyperparameters",
    "check_precision",
    "check_run_config",
    "checkpoint_state",
    "collect_rollout",
    "config_from_dict",
    "env_action",
    "gather_rows",
    "load_run_checkpoint",
    "make_envs",
    "make_normalisers",
    "module_device",
    "resolve_device",
    "restore",
    "start_run",
    "with_resolved_backend",
]

Head = Literal["auto", "tanh_gaussian", "diag_gaussian"]


class ConfigError(ValueError):
    """A config value that cannot run: checked before any environment or run folder exists."""


class DeviceError(ConfigError):
    """A device that is malformed, of an unsupported type, or not present on this machine."""


class TrainingDiverged(RuntimeError):
    """An update produced non-finite parameters (a NaN or inf loss or gradient). Raised inside the update, so
    the exit checkpoint is the last finite one (:class:`UpdateGuard`), never the diverged parameters."""


def check_finite_parameters(model: nn.Module, update: int, cause: BaseException | None = None) -> None:
    """Raise :class:`TrainingDiverged` naming the first non-finite parameters of ``model`` after update
    ``update`` (one pass over the parameters per update, no per-minibatch synchronisation). ``cause``: the
    error a NaN parameter raised inside the update (e.g. the logits check of the next minibatch), kept as
    ``__cause__``; re-raised as is when every parameter is finite."""
    params = list(model.named_parameters())
    finite = torch.stack([torch.isfinite(p).all() for _, p in params]).all() if params else torch.tensor(True)
    if not bool(finite):  # one device synchronisation per update; the names only on failure
        bad = [n for n, p in params if not bool(torch.isfinite(p).all())]
        raise TrainingDiverged(
            f"training diverged in update {update}: parameter(s) {', '.join(bad[:3])} are not finite after an "
            f"optimiser step (a NaN or inf loss or gradient); the update is dropped and the run folder keeps the "
            f"last finite one. Lower the learning rate, set max_grad_norm, or check the rewards") from cause
    if cause is not None:
        raise cause


def resolve_device(device: str) -> torch.device:
    """The torch device a run trains on: ``"cpu"`` (the default; exact resume is bit-identical there) or
    ``"cuda"`` / ``"cuda:<i>"``. The network and the update live there; environments, rollout buffers, the
    normalisers and the run's random generator stay on the CPU (one random stream whatever the device).
    Raises :class:`DeviceError` (a ValueError) naming the device if it is malformed, of another type, or not
    present here."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from exc
    if d.type == "cpu":
        return d
    if d.type != "cuda":
        raise DeviceError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested, but this torch build sees no CUDA device "
                         f"(torch {torch.__version__}, torch.cuda.is_available() is False)")
    if d.index is not None and d.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} requested, but only {torch.cuda.device_count()} CUDA device(s) exist")
    return d


def module_device(policy: object) -> torch.device:
    """The device of a network's parameters (CPU for anything without parameters)."""
    if isinstance(policy, nn.Module):
        for p in policy.parameters():
            return p.device
    return torch.device("cpu")


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` along dim 0 (bitwise the same values), by ``torch.index_select``, which copies whole rows.

    A 4-D ``torch.channels_last`` tensor (NHWC frames) stays channels_last: it is gathered as the contiguous
    [N, H, W, C] tensor it is in memory. ``x`` [N, *shape], ``index`` int64 [M] -> [M, *shape].
    """
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.index_select(x.permute(0, 2, 3, 1), 0, index).permute(0, 3, 1, 2)
    return torch.index_select(x, 0, index)


class ActorCritic(Protocol):
    """What the loops need from a network (see :class:`scalable.nets.atari.PolicyStep`)."""

    def act(self, obs: Tensor, *, generator: torch.Generator | None = None,
            deterministic: bool = False) -> PolicyStep: ...

    def value(self, obs: Tensor) -> Tensor: ...


class CategoricalMLPActorCritic(nn.Module):
    """Separate actor / critic MLPs with a softmax policy over |A| actions (PG-48) for vector observations."""

    def __init__(self, obs_dim: int, n_actions: int, *, hidden: tuple[int, ...] = (64, 64),
                 orthogonal_init: bool = True) -> None:
        super().__init__()
        self.actor = mlp(obs_dim, n_actions, hidden=hidden, orthogonal_init=orthogonal_init, out_gain=0.01)
        self.critic = mlp(obs_dim, 1, hidden=hidden, orthogonal_init=orthogonal_init, out_gain=VALUE_GAIN)

    def value(self, obs: Tensor) -> Tensor:
        """V(s) [B]."""
        v: Tensor = self.critic(obs)
        return v.squeeze(-1)

    def act(self, obs: Tensor, *, generator: torch.Generator | None = None, deterministic: bool = False) -> PolicyStep:
        """a ~ softmax(logits) (argmax if deterministic); int64 [B]."""
        logits: Tensor = self.actor(obs)
        a = logits.argmax(dim=-1) if deterministic else categorical_sample(logits, generator=generator)
        return PolicyStep(a, a, categorical_log_prob(logits, a), categorical_entropy(logits), self.value(obs))

    def evaluate(self, obs: Tensor, raw_action: Tensor) -> PolicyEval:
        """log pi(a | s), entropy, V(s) of stored actions; each [B]."""
        logits: Tensor = self.actor(obs)
        return PolicyEval(categorical_log_prob(logits, raw_action), categorical_entropy(logits), self.value(obs))


Net = CategoricalMLPActorCritic | MLPActorCritic | AtariActorCritic


def check_precision(precision: str, env_id: str) -> None:
    """:class:`ConfigError` (a ValueError) unless ``precision`` is a known format and, if not float32,
    ``env_id`` is an Atari game (the small MLPs of the other tasks run in float32: bfloat16 would save
    nothing there and cost accuracy). The training loops call it before any environment starts."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "float32" and not is_atari(env_id):
        raise ConfigError(f"precision={precision!r} applies to the Atari CNN only; {env_id!r} gets an MLP, "
                          "which runs in float32 (set precision='float32')")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is not None:  # tuple[int, ...], float | None, ...
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", None) or str(tp)


def _matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` has the declared field type ``tp`` (the subset config dataclasses use: bool, int,
    float (an int is accepted), str, None, Literal, unions, ``tuple[X, ...]`` and nested dataclasses)."""
    origin = typing.get_origin(tp)
    if tp is type(None):
        return value is None
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # a type this checker does not know: left to the field's own checks


def check_field_types(cfg: Any) -> None:
    """:class:`ConfigError` naming every field of a config dataclass (and of its nested dataclasses, e.g.
    ``atari``) whose value does not have the declared type: ``norm_adv="false"`` is a non-empty string, so
    truthy, and would silently switch advantage normalisation *on*."""
    wrong: list[str] = []

    def visit(obj: Any, prefix: str) -> None:
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            v, tp = getattr(obj, f.name), hints[f.name]
            if not _matches(v, tp):
                wrong.append(f"{prefix}{f.name}={v!r} must be {_type_name(tp)}")
            elif dataclasses.is_dataclass(v) and not isinstance(v, type):
                visit(v, f"{prefix}{f.name}.")

    visit(cfg, "")
    if wrong:
        raise ConfigError("; ".join(wrong))


def check_hyperparameters(cfg: Any) -> None:
    """:class:`ConfigError` naming the first field of an A2C / PPO config that cannot train as asked: a
    budget below one rollout (nothing would be trained), an empty rollout, gamma outside (0, 1] (MDP-18),
    lambda outside [0, 1] (TR-31), a clip range outside [0, 1), zero epochs, a minibatch larger than the
    batch, a non-positive learning rate or optimiser epsilon, a negative loss coefficient, ... Fields a
    config does not have are skipped."""
    if dataclasses.is_dataclass(cfg):
        check_field_types(cfg)

    def has(name: str) -> bool:
        return hasattr(cfg, name)

    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"{name}={getattr(cfg, name)!r} {why}")

    def number(name: str) -> float:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise bad(name, "must be a finite number")
        return float(v)

    def integer(name: str, low: int) -> int:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise bad(name, f"must be an integer >= {low}")
        return int(v)

    batch = integer("num_envs", 1) * integer("num_steps", 1)
    if has("seed") and not 0 <= integer("seed", 0) <= 2**31 - 1 - cfg.num_envs:
        raise bad("seed", f"must lie in [0, 2^31 - 1 - num_envs] = [0, {2**31 - 1 - cfg.num_envs}] (env b is seeded "
                          f"with seed + b, and envpool's seeds are int32)")
    if has("max_episode_steps") and cfg.max_episode_steps is not None and is_atari(cfg.env_id):
        raise bad("max_episode_steps", "is not read for Atari: set atari.max_episode_steps "
                                       "(--set \"atari={'max_episode_steps': N}\")")
    if has("max_episode_steps") and cfg.max_episode_steps is not None:  # 0 reached make_vec_env's bare ValueError
        integer("max_episode_steps", 1)
    if integer("total_steps", 1) < batch:
        raise bad("total_steps", f"is less than one rollout of num_envs x num_steps = {batch} steps: nothing "
                                 f"would be trained (raise --steps to at least {batch})")
    if not 0.0 < number("gamma") <= 1.0:
        raise bad("gamma", "must lie in (0, 1] (MDP-18)")
    if has("gae_lambda") and not 0.0 <= number("gae_lambda") <= 1.0:
        raise bad("gae_lambda", "must lie in [0, 1] (TR-31)")
    if has("clip_eps") and not 0.0 <= number("clip_eps") < 1.0:
        raise bad("clip_eps", "must lie in [0, 1) (TR-16)")
    if getattr(cfg, "clip_vloss", False) and number("clip_eps") == 0.0:
        raise bad("clip_eps", "must be > 0 with clip_vloss=True (the value clip range; it would freeze V)")
    if has("update_epochs"):
        integer("update_epochs", 1)
    if has("minibatch_size") and integer("minibatch_size", 1) > batch:
        raise bad("minibatch_size", f"exceeds the batch of num_envs x num_steps = {batch} samples")
    if number("learning_rate") <= 0.0:
        raise bad("learning_rate", "must be positive")
    for name in ("adam_eps", "optim_eps"):
        if has(name) and number(name) <= 0.0:
            raise bad(name, "must be positive")
    if has("rmsprop_alpha") and not 0.0 <= number("rmsprop_alpha") < 1.0:
        raise bad("rmsprop_alpha", "must lie in [0, 1)")
    for name in ("vf_coef", "ent_coef"):
        if has(name) and number(name) < 0.0:
            raise bad(name, "must be >= 0")
    for name in ("max_grad_norm", "target_kl"):
        if has(name) and getattr(cfg, name) is not None and number(name) <= 0.0:
            raise bad(name, "must be positive, or None to switch it off")
    if has("checkpoint_every"):
        integer("checkpoint_every", 0)
    if has("return_window"):
        integer("return_window", 1)
    if has("torch_threads") and cfg.torch_threads is not None:
        integer("torch_threads", 1)


def check_run_config(cfg: Any) -> torch.device:
    """Validate a config before any environment or run folder exists, and return the torch device to train
    on: :func:`check_hyperparameters`, :func:`resolve_device` of ``cfg.device`` and :func:`check_precision`
    of ``cfg.precision`` for ``cfg.env_id``. Raises :class:`ConfigError` (a ValueError) naming the bad value."""
    check_hyperparameters(cfg)
    if is_atari(cfg.env_id) and getattr(cfg, "norm_obs", False):
        # the CNN divides its uint8 frames by 255; normalised frames would reach it as +-0.004
        raise ConfigError("norm_obs=True does not apply to Atari: the network scales its uint8 frames by 1/255")
    if is_atari(cfg.env_id) and cfg.backend == "envpool":
        try:  # before a run folder exists (envpool would crash in its reset)
            check_envpool_options(cfg.atari)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, cfg.env_id)
    return device


def build_actor_critic(env_id: str, obs_space: gym.Space[Any], act_space: gym.Space[Any], *, head: Head,
                       hidden: tuple[int, ...], orthogonal_init: bool,
                       atari_arch: Literal["text", "nature"] = "text", precision: Precision = "float32") -> Net:
    """The network for an environment: Atari CNN (shared trunk), categorical MLP, or Gaussian MLP.

    ``precision="bfloat16"`` (mixed precision of the CNN trunk) applies to Atari networks only
    (:func:`check_precision`)."""
    check_precision(precision, env_id)
    if not isinstance(obs_space, gym.spaces.Box):
        raise ConfigError(f"{env_id}: observation space {obs_space} is not supported (Box observations only: "
                          f"vectors or image frames; wrap the env, e.g. one-hot encode a Discrete state)")
    if not isinstance(act_space, gym.spaces.Discrete | gym.spaces.Box):
        raise ConfigError(f"{env_id}: action space {act_space} is not supported (Discrete or Box)")
    atari_net = isinstance(act_space, gym.spaces.Discrete) and is_atari(env_id)
    if isinstance(act_space, gym.spaces.Discrete):
        n = int(act_space.n)
        if atari_net:
            return AtariActorCritic(n, arch=atari_arch, frames=int(obs_space.shape[0]),
                                    orthogonal_init=orthogonal_init, precision=precision)
        return CategoricalMLPActorCritic(int(np.prod(obs_space.shape)), n, hidden=hidden,
                                         orthogonal_init=orthogonal_init)
    if isinstance(act_space, gym.spaces.Box):
        h: Literal["tanh_gaussian", "diag_gaussian"] = "tanh_gaussian" if head == "auto" else head
        return MLPActorCritic(int(np.prod(obs_space.shape)), int(np.prod(act_space.shape)),
                              hidden=hidden, head=h, orthogonal_init=orthogonal_init)
    raise ConfigError(f"unsupported action space {act_space!r}")


def squash_scale(policy: object, act_space: gym.Space[Any]) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """(center, half-width), float32 [n], of the affine map ``a_env = center + half * a`` from a tanh-Gaussian's
    actions a in (-1, 1)^n (PG-50, E-51) onto a Box's bounds [low, high]; ``None`` (no map) for other heads,
    for bounds that are exactly [-1, 1] (the identity: runs on those tasks are unchanged) and for Boxes with no
    dimension bounded on both sides. A dimension with an infinite bound keeps the identity (center 0, half-width
    1: the tanh action in (-1, 1), as for an unbounded Box) while the bounded ones are mapped (until 2026-12-07 one
    infinite bound left every dimension unmapped). The map is a constant shift and scale of the action, so
    log-probability ratios, and with them the PPO / A2C losses, are unchanged; only the env sees the rescaled
    action."""
    head = getattr(policy, "head", None)  # a module (MLPActorCritic) or its name (the numpy snapshot)
    if not isinstance(act_space, gym.spaces.Box) or not (isinstance(head, TanhGaussianHead) or head == "tanh_gaussian"):
        return None
    low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
    bounded = np.isfinite(low) & np.isfinite(high)
    if not np.any(bounded) or (np.all(low == -1.0) and np.all(high == 1.0)):
        return None
    lo, hi = np.where(bounded, low, -1.0), np.where(bounded, high, 1.0)  # no inf - inf where unbounded
    center, half = (hi + lo) / 2, (hi - lo) / 2
    return center.astype(np.float32), half.astype(np.float32)


def to_bounds(a: NDArray[np.float32], scale: tuple[NDArray[np.float32], NDArray[np.float32]] | None
              ) -> NDArray[np.float32]:
    """``center + half * a`` for a :func:`squash_scale` map, ``a`` itself for ``None``; float32 [B, n]."""
    return a if scale is None else scale[0] + scale[1] * a


def env_action(act_space: gym.Space[Any], action: Tensor,
               scale: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None) -> NDArray[np.generic]:
    """Network action -> what the env receives: int64 actions [B] (``space.start`` + the index), or float32 Box
    actions [B, n], mapped onto
    the bounds by ``scale`` (:func:`squash_scale`, tanh-Gaussian heads) and otherwise clipped by the backends."""
    a = action.detach().cpu().numpy()
    if isinstance(act_space, gym.spaces.Discrete):  # the network's index 0..n-1 is action start + index
        return a.astype(np.int64) + int(act_space.start)
    return to_bounds(a.astype(np.float32), scale)


# ----------------------------------------------------------------------------- rollouts
@dataclass
class Rollout:
    """One rollout of T steps of B envs (time-major [T, B], the reference convention).

    ``obs`` [T, B, *obs] as the network saw it (normalised if on); ``raw_actions`` [T, B(, n)] stored for
    re-evaluation (z for a tanh-Gaussian, open choice 15); ``env_actions`` [T, B(, n)] numpy, what the
    envs received (the replay log); ``log_probs``, ``values``, ``rewards`` (training scale),
    ``terminated``, ``truncated`` [T, B]; ``final_obs`` [T, B, *obs] the true last observation where an
    episode ended; ``v_final`` [T, B] V(final_obs) (read only where truncated); ``last_value`` [B];
    ``next_values`` [T, B] V(s_{t+1}) of the true next state (0 at termination). ``episodes``: raw
    (return, length) of real episodes that ended; ``episode_ends``: for each, the number of rollout steps
    taken when it ended (t + 1, so it ended at env step ``start + (t + 1) * B`` of the run).
    """

    obs: Tensor
    raw_actions: Tensor
    env_actions: NDArray[np.generic]
    log_probs: Tensor
    values: Tensor
    rewards: Tensor
    terminated: Tensor
    truncated: Tensor
    final_obs: Tensor
    v_final: Tensor
    last_value: Tensor
    next_values: Tensor
    episodes: list[tuple[float, int]]
    episode_ends: list[int]

    def episode_steps(self, start: int) -> list[int]:
        """The run's env step at which each episode ended, for a rollout that began at env step ``start``."""
        b = int(self.terminated.shape[1])
        return [start + t * b for t in self.episode_ends]


def _prep(obs: NDArray[np.generic], obs_norm: ObservationNormalizer | None, *, update: bool) -> Tensor:
    t = torch.as_tensor(obs)
    if obs_norm is not None:
        return obs_norm(t.float(), update=update)
    return t


def _collect_numpy(
    envs: VecEnv,
    snap: NumpyPolicy,
    obs: NDArray[np.generic],
    num_steps: int,
    generator: torch.Generator,
    obs_norm: ObservationNormalizer | None,
    reward_norm: RewardNormalizer | None,
) -> tuple[Rollout, NDArray[np.generic]]:
    """:func:`collect_rollout` for Gaussian MLP policies: numpy forward passes and preallocated numpy
    buffers, converted to tensors once per rollout. The Gaussian noise of the whole rollout is drawn
    up front with one ``torch.randn`` from ``generator`` (deterministic, checkpointed with the run)."""
    T, B, n = num_steps, envs.num_envs, snap.act_dim
    obs_shape = tuple(np.asarray(obs).shape[1:])
    eps_all = torch.randn((T, B, n), generator=generator, dtype=torch.float32).numpy()
    obs_buf = np.empty((T, B, *obs_shape), dtype=np.float32)
    fo_buf = np.empty((T, B, *obs_shape), dtype=np.float32)
    raw_buf = np.empty((T, B, n), dtype=np.float32)
    act_buf = np.empty((T, B, n), dtype=np.float32)
    logp_buf = np.empty((T, B), dtype=np.float32)
    v_buf = np.empty((T, B), dtype=np.float32)
    vf_buf = np.zeros((T, B), dtype=np.float32)
    r_buf = np.empty((T, B), dtype=np.float32)
    te_buf = np.empty((T, B), dtype=np.bool_)
    tr_buf = np.empty((T, B), dtype=np.bool_)
    episodes: list[tuple[float, int]] = []
    ends: list[int] = []
    norm = obs_norm.normalize_np if obs_norm is not None else None
    rnorm = reward_norm.step_np if reward_norm is not None else None
    act, value, step_env = snap.act, snap.value, envs.step
    scale = squash_scale(snap, envs.single_action_space)
    for t in range(T):
        x = norm(obs, update=True) if norm is not None else np.asarray(obs, dtype=np.float32)
        a, raw, lp, v = act(x, eps_all[t])
        obs_buf[t] = x
        raw_buf[t] = raw
        logp_buf[t] = lp
        v_buf[t] = v
        a_env = act_buf[t]
        a_env[...] = to_bounds(a, scale)
        obs, reward, terminated, truncated, final_obs, info = step_env(a_env.copy())
        fo = norm(final_obs) if norm is not None else np.asarray(final_obs, dtype=np.float32)
        fo_buf[t] = fo
        if (truncated & ~terminated).any():
            vf_buf[t] = value(fo)
        r_buf[t] = rnorm(reward, terminated | truncated) if rnorm is not None else reward
        te_buf[t] = terminated
        tr_buf[t] = truncated
        if info.done_mask.any():
            done = completed_episodes(info)
            episodes += done
            ends += [t + 1] * len(done)
    xl = norm(obs) if norm is not None else np.asarray(obs, dtype=np.float32)
    last_value = torch.from_numpy(value(xl))
    values = torch.from_numpy(v_buf)
    term, trunc, v_final = torch.from_numpy(te_buf), torch.from_numpy(tr_buf), torch.from_numpy(vf_buf)
    rollout = Rollout(
        obs=torch.from_numpy(obs_buf), raw_actions=torch.from_numpy(raw_buf), env_actions=act_buf,
        log_probs=torch.from_numpy(logp_buf), values=values, rewards=torch.from_numpy(r_buf),
        terminated=term, truncated=trunc, final_obs=torch.from_numpy(fo_buf), v_final=v_final,
        last_value=last_value, next_values=next_values_from_rollout(values, last_value, term, trunc, v_final),
        episodes=episodes, episode_ends=ends,
    )
    return rollout, obs


@torch.no_grad()
def collect_rollout(
    envs: VecEnv,
    policy: ActorCritic,
    obs: NDArray[np.generic],
    num_steps: int,
    *,
    generator: torch.Generator,
    obs_norm: ObservationNormalizer | None = None,
    reward_norm: RewardNormalizer | None = None,
) -> tuple[Rollout, NDArray[np.generic]]:
    """Step ``envs`` ``num_steps`` times from ``obs`` with ``policy`` (no gradients); return the rollout
    and the observation to continue from. Bootstrapping follows open choice 13: V(final obs) at
    truncation, 0 at termination (``next_values_from_rollout``).

    A Gaussian :class:`MLPActorCritic` is run by a numpy snapshot of its weights (:func:`_collect_numpy`).
    """
    act_space = envs.single_action_space
    if isinstance(policy, MLPActorCritic) and isinstance(act_space, gym.spaces.Box):
        snap = policy.numpy_policy()
        if snap is not None:
            return _collect_numpy(envs, snap, obs, num_steps, generator, obs_norm, reward_norm)
    T, B = num_steps, envs.num_envs
    scale = squash_scale(policy, act_space)
    episodes: list[tuple[float, int]] = []
    ends: list[int] = []
    env_acts: list[NDArray[np.generic]] = []
    dev = module_device(policy)
    on_cpu = dev.type == "cpu"
    # buffers [T, B, ...], preallocated at the first step (their dtypes are those of the first step's values)
    obs_buf = fo_buf = raw_buf = logp_buf = v_buf = torch.empty(0)
    vf_buf = torch.zeros((T, B))
    r_buf = torch.empty((T, B))
    te_buf = torch.empty((T, B), dtype=torch.bool)
    tr_buf = torch.empty((T, B), dtype=torch.bool)
    for t in range(T):
        x = _prep(obs, obs_norm, update=True)
        step = policy.act(x if on_cpu else x.to(dev), generator=generator)
        if not on_cpu:  # buffers stay on the CPU (uint8 frames): bring back what is stored (entropy is not)
            step = PolicyStep(step.action.cpu(), step.raw_action.cpu(), step.log_prob.cpu(), step.entropy,
                              step.value.cpu())
        a_env = env_action(act_space, step.action, scale)
        obs, reward, terminated, truncated, final_obs, info = envs.step(a_env)
        fo = _prep(final_obs, obs_norm, update=False)
        if t == 0:
            obs_buf = torch.empty((T, *x.shape), dtype=x.dtype)
            fo_buf = torch.empty((T, *fo.shape), dtype=fo.dtype)
            raw_buf = torch.empty((T, *step.raw_action.shape), dtype=step.raw_action.dtype)
            logp_buf = torch.empty((T, B), dtype=step.log_prob.dtype)
            v_buf = torch.empty((T, B), dtype=step.value.dtype)
        obs_buf[t] = x
        raw_buf[t] = step.raw_action
        logp_buf[t] = step.log_prob
        v_buf[t] = step.value
        fo_buf[t] = fo
        if np.any(truncated & ~terminated):
            vf_buf[t] = policy.value(fo.to(dev)).cpu()
        r = torch.from_numpy(np.asarray(reward))
        if reward_norm is not None:
            r = reward_norm(r, torch.from_numpy(np.asarray(terminated | truncated)))
        r_buf[t] = r
        te_buf[t] = torch.from_numpy(np.asarray(terminated))
        tr_buf[t] = torch.from_numpy(np.asarray(truncated))
        env_acts.append(a_env)
        if info.done_mask.any():
            done = completed_episodes(info)
            episodes += done
            ends += [t + 1] * len(done)
    last_value = policy.value(_prep(obs, obs_norm, update=False).to(dev)).cpu()
    rollout = Rollout(
        obs=obs_buf, raw_actions=raw_buf, env_actions=np.stack(env_acts), log_probs=logp_buf,
        values=v_buf, rewards=r_buf, terminated=te_buf, truncated=tr_buf, final_obs=fo_buf, v_final=vf_buf,
        last_value=last_value, next_values=next_values_from_rollout(v_buf, last_value, te_buf, tr_buf, vf_buf),
        episodes=episodes, episode_ends=ends,
    )
    return rollout, obs


# ----------------------------------------------------------------------------- run state / resume
@dataclass
class TrainResult:
    """What a training run returns: the network, counters and the raw episode returns seen."""

    model: nn.Module
    global_step: int
    updates: int
    episode_returns: list[float]
    solved: bool
    run_dir: Path | None
    steps_per_second: float


class RunState:
    """Everything a checkpoint holds beyond the model/optimiser: counters, action log, returns, RNG."""

    def __init__(self, seed: int, window: int) -> None:
        self.seed = seed
        self.update = 0
        self.global_step = 0
        self.actions: list[NDArray[np.generic]] = []
        self.returns: deque[float] = deque(maxlen=window)
        self.all_returns: list[float] = []
        # the action / minibatch stream; independent of torch.manual_seed(seed), which initialises the weights
        self.generator = torch.Generator().manual_seed(stream_seed(seed, "actions"))

    def record(self, rollout: Rollout) -> None:
        self.actions.append(rollout.env_actions)
        for ret, _ in rollout.episodes:
            self.returns.append(ret)
            self.all_returns.append(ret)

    def solved(self, target: float | None) -> bool:
        return (target is not None and len(self.returns) == self.returns.maxlen
                and float(np.mean(self.returns)) >= target)

    def action_log(self, chunks: int | None = None) -> Tensor:
        """The actions sent so far (the first ``chunks`` rollouts if given), uint8 when they fit."""
        acts = self.actions if chunks is None else self.actions[:chunks]
        if not acts:
            return torch.zeros(0)
        a = np.concatenate(acts)
        if a.dtype == np.int64 and a.size and a.min() >= 0 and a.max() < 256:
            return torch.from_numpy(a.astype(np.uint8))
        return torch.from_numpy(np.ascontiguousarray(a))


def checkpoint_state(kind: str, cfg: Any, st: RunState, model: nn.Module, opt: torch.optim.Optimizer,
                      obs_norm: ObservationNormalizer | None, reward_norm: RewardNormalizer | None, *,
                      with_actions: bool = True) -> dict[str, Any]:
    """Everything a checkpoint holds (live references, not copies); ``with_actions=False`` leaves out
    the action log (O(steps) to build), for :class:`UpdateGuard`'s per-update copy."""
    return {
        "agent": kind,
        "config": _plain(dataclasses.asdict(cfg)),
        "update": st.update,
        "global_step": st.global_step,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "obs_norm": obs_norm.state_dict() if obs_norm is not None else None,
        "reward_norm": reward_norm.state_dict() if reward_norm is not None else None,
        "rng": rng_state(),
        "action_rng": st.generator.get_state(),
        "env": {"seed": st.seed, "actions": st.action_log() if with_actions else None},
        "returns": list(st.returns),
        "all_returns": list(st.all_returns),
    }


class UpdateGuard:
    """What the exit checkpoint of a training loop may hold: never a half-finished update.

    An update mutates the run in place (environments, normalisers, the action RNG, the action log,
    the parameters). If the loop is left by an exception or a Ctrl-C inside an update, the live state
    is inconsistent, so the exit checkpoint is the copy taken at the end of the last completed update
    (``boundary``, deep-copied; the action log is kept as a chunk count, since ``st.actions`` only
    grows). Usage: ``begin()`` before an update's first mutation, ``end()`` after its last (after the
    periodic checkpoint), ``exit_state()`` in ``finally``. Copies are taken only when the run has a
    folder to save to.
    """

    def __init__(self, kind: str, cfg: Any, st: RunState, model: nn.Module, opt: torch.optim.Optimizer,
                 obs_norm: ObservationNormalizer | None, reward_norm: RewardNormalizer | None, *,
                 enabled: bool) -> None:
        self._args = (kind, cfg, st, model, opt, obs_norm, reward_norm)
        self.st = st
        self.enabled = enabled
        self.in_update = False
        self.boundary: dict[str, Any] | None = None
        self._chunks = 0
        self._snapshot()

    def _snapshot(self) -> None:
        if not self.enabled or self.st.update == 0:
            self.boundary = None
            return
        self.boundary = copy.deepcopy(checkpoint_state(*self._args, with_actions=False))
        self._chunks = len(self.st.actions)

    def begin(self) -> None:
        self.in_update = True

    def end(self) -> None:
        self.in_update = False
        self._snapshot()

    def exit_state(self) -> dict[str, Any] | None:
        """The state to save on leaving the loop: the live one at an update boundary, else the boundary
        copy (None if no update was completed)."""
        kind, cfg, st, model, opt, obs_norm, reward_norm = self._args
        if not self.in_update:
            return checkpoint_state(kind, cfg, st, model, opt, obs_norm, reward_norm) if st.update > 0 else None
        if self.boundary is None:
            return None
        return {**self.boundary, "env": {"seed": st.seed, "actions": st.action_log(self._chunks)}}


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def restore(state: dict[str, Any], st: RunState, model: nn.Module, opt: torch.optim.Optimizer,
            obs_norm: ObservationNormalizer | None, reward_norm: RewardNormalizer | None,
            envs: VecEnv, *, exact_env_resume: bool) -> NDArray[np.generic]:
    """Load a checkpoint's state into the run and bring the environments back; return the current obs."""
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if obs_norm is not None:
            obs_norm.load_state_dict(state["obs_norm"])
        if reward_norm is not None:
            reward_norm.load_state_dict(state["reward_norm"])
        st.update, st.global_step = int(state["update"]), int(state["global_step"])
        st.returns.extend(float(r) for r in state["returns"])
        st.all_returns = [float(r) for r in state["all_returns"]]
        st.generator.set_state(state["action_rng"])
        actions: Tensor = state["env"]["actions"]
        seed = int(state["env"]["seed"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint does not match this run ({type(exc).__name__}: {exc})") from exc
    if exact_env_resume:
        st.seed = seed  # the log replays from it: later checkpoints must record it (it differs from cfg.seed
        # after a resume with exact_env_resume=False; a third resume then replayed from the wrong seed)
        obs = envs.reset(seed=seed)
        acts = actions.numpy()
        if isinstance(envs.single_action_space, gym.spaces.Discrete):
            acts = acts.astype(np.int64)
        if acts.shape[0]:
            if acts.shape[1] != envs.num_envs:
                raise CheckpointError(f"checkpoint action log has {acts.shape[1]} envs, the run has {envs.num_envs}")
            for a in acts:
                obs = envs.step(a).obs
        st.actions = [acts] if acts.shape[0] else []
    else:  # a new, seeded start of every env: later checkpoints replay from this seed
        # kept within envpool's int32 seeds (env b gets seed + b): seed 2^31 - 1009 with 8 envs, or seed 1 after
        # about 271 000 updates, overflowed it and the resume failed
        st.seed = (seed + 7919 * st.update) % (2**31 - envs.num_envs)
        obs = envs.reset(seed=st.seed)
        st.actions = []
        if reward_norm is not None:  # every episode restarts: so does each env's discounted return
            reward_norm.returns = torch.zeros(envs.num_envs, dtype=torch.float64)
    set_rng_state(state["rng"])
    return obs


def load_run_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file, or the latest checkpoint of a run folder. CheckpointError if unusable."""
    p = Path(path)
    if p.is_dir():
        latest = RunDir(p).latest_checkpoint()
        if latest is None:
            raise CheckpointError(f"run folder {str(p)!r} has no checkpoints")
        p = latest
    state = load_checkpoint(p)
    for key in ("agent", "config", "model", "optimizer", "env", "rng", "update"):
        if key not in state:
            raise CheckpointError(f"checkpoint {str(p)!r} lacks {key!r}: not a scalable agent checkpoint")
    if state["agent"] not in ("ppo", "a2c"):
        raise CheckpointError(f"checkpoint {str(p)!r} is of agent {state['agent']!r}, not 'ppo' or 'a2c'")
    if not isinstance(state["config"], dict):
        raise CheckpointError(f"checkpoint {str(p)!r}: its config is a {type(state['config']).__name__}, not a dict")
    return state


def config_from_dict(cls: type[Any], d: dict[str, Any]) -> Any:
    """Rebuild a frozen config dataclass from its checkpoint / config.json dict (tuples, AtariOptions).
    CheckpointError if the dict does not make a config of ``cls`` with values of the declared types."""
    kw: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in d if k not in names)
    if unknown:  # dropping them would run the checkpoint under settings it was not trained with
        raise CheckpointError(f"the stored config has fields {cls.__name__} does not know: {', '.join(unknown)} "
                              f"(a checkpoint from other code, or edited)")
    try:
        for k, v in d.items():
            if k == "atari" and isinstance(v, dict):
                v = AtariOptions(**v)
            elif k == "hidden" and isinstance(v, list | tuple):
                v = tuple(v)
            kw[k] = v
        cfg = cls(**kw)
        check_field_types(cfg)
    except (AttributeError, TypeError, ValueError) as exc:  # ConfigError and AtariOptions' checks are ValueErrors
        raise CheckpointError(f"the stored config is not a valid {cls.__name__}: {exc}") from exc
    return cfg


class Session:
    """Logging, progress, periodic checkpoints of one training run (shared by A2C and PPO)."""

    def __init__(self, kind: str, cfg: Any, run_dir: str | Path | None, *, resume: bool, progress: bool | None) -> None:
        self.kind, self.cfg = kind, cfg
        self.run: RunDir | None = None
        self.logger: Logger | None = None
        self.lock: RunLock | None = None
        if run_dir is not None:
            p = Path(run_dir)
            if resume and not (p / "config.json").is_file():
                raise FileNotFoundError(f"{str(p)!r} is not a run folder (no config.json)")
            self.lock = RunLock(p)  # before anything reads or writes the folder: one training process per run
            try:
                self._open(p, cfg, resume=resume)
            except BaseException:
                self.lock.release()
                raise
        # tqdm's disable: True hides the bar, False forces it, None hides it when stderr is not a terminal
        self.progress_disable: bool | None = None if progress is None else not progress
        self.start = time.perf_counter()

    def _open(self, p: Path, cfg: Any, *, resume: bool) -> None:
        """The run folder checks and opening (under the lock)."""
        if not resume and RunDir(p).latest_checkpoint() is not None:
            raise FileExistsError(f"run folder {str(p)!r} already has checkpoints; resume it or pick another")
        if not resume and RunDir(p).has_logs():  # e.g. killed before its first checkpoint: nothing to resume
            raise FileExistsError(f"run folder {str(p)!r} holds the logs of an earlier run (metrics.csv or "
                                  f"tensorboard/) but no checkpoint; delete it or pick another folder (a new "
                                  f"run would append to those logs)")
        self.run = RunDir.open(p) if resume else RunDir.create(p.parent, p.name, config=cfg, exist_ok=True)
        if not resume:
            self.logger = Logger(self.run)

    def open_log_after_resume(self, step: int) -> None:
        """Drop metrics.csv rows logged after the checkpoint's ``step`` (they will be logged again by the
        resumed run), then open the logger. TensorBoard event files keep both copies."""
        if self.run is None:
            return
        path = self.run.metrics_path
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            keep = [r for r in rows[1:] if r and int(r[0]) <= step]
            tmp = path.with_suffix(".csv.tmp")
            with tmp.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([rows[0], *keep] if rows else [])
            tmp.replace(path)
        self.logger = Logger(self.run)

    def save(self, state: dict[str, Any], step: int) -> None:
        """Write the checkpoint of ``step``, after the log rows up to ``step`` are on disk: a resume keeps
        the rows up to its checkpoint's step and logs the rest again, so rows still in the write buffer when
        the process died would be lost for good (SIGKILL lost up to 58 rows before this flush)."""
        if self.run is not None:
            if self.logger is not None:
                self.logger.flush(sync=True)
            save_checkpoint(self.run.checkpoint_path(step), state)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.logger is not None:
            self.logger.log(step, {k: v for k, v in metrics.items() if math.isfinite(v)})

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        if self.lock is not None:
            self.lock.release()


def start_run(cfg: Any, session: Session, st: RunState, model: nn.Module, opt: torch.optim.Optimizer,
          obs_norm: ObservationNormalizer | None, reward_norm: RewardNormalizer | None, envs: VecEnv, *,
          resume: bool) -> NDArray[np.generic]:
    """First observation of a run: ``envs.reset(seed)``, or the state of the run folder's latest checkpoint
    (``resume``). On failure the session and the envs are closed before the error propagates."""
    try:
        if not resume:
            return envs.reset(seed=cfg.seed)
        if session.run is None:
            raise ValueError("resume=True needs run_dir")
        state = load_run_checkpoint(session.run.path)
        done = int(state.get("global_step", 0))
        if cfg.total_steps < done:
            raise ConfigError(f"total_steps={cfg.total_steps} is below the {done} steps the run has already "
                              f"taken: nothing to train (give a larger budget)")
        obs = restore(state, st, model, opt, obs_norm, reward_norm, envs, exact_env_resume=cfg.exact_env_resume)
        session.run.write_config(cfg)  # the config the run goes on with (a new total_steps or device included)
        session.open_log_after_resume(st.global_step)
        return obs
    except BaseException:
        session.close()
        envs.close()
        raise


def with_resolved_backend(cfg: Any, run_dir: str | Path | None = None, *, resume: bool = False) -> Any:
    """``cfg`` with ``backend="auto"`` replaced by a concrete backend, so that the run folder's config names
    the simulator its action log must be replayed through on resume.

    A new run: :func:`resolve_backend` (envpool for Atari, and for other envs from ``ENVPOOL_MIN_ENVS``
    envs). A resume (``resume=True``) with ``"auto"``: the backend in ``run_dir``'s config.json; if that says
    ``"auto"`` too (a run saved before 2026-12-05), auto's meaning of then: envpool wherever envpool has the
    environment, so that the replay stays exact. An explicit backend is kept as given.
    """
    if is_atari(cfg.env_id) and cfg.atari.repeat_action_probability is None:  # the id's protocol, recorded
        cfg = dataclasses.replace(cfg, atari=resolved_options(cfg.atari, cfg.env_id))
    if cfg.backend != "auto":
        return cfg
    if resume and run_dir is not None and (Path(run_dir) / "config.json").is_file():
        saved = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8")).get("backend", "auto")
        if saved in ("gymnasium", "envpool"):
            return dataclasses.replace(cfg, backend=saved)
        legacy: Backend = "envpool" if envpool_has_env(cfg.env_id) else "gymnasium"
        return dataclasses.replace(cfg, backend=legacy)
    atari = cfg.atari if is_atari(cfg.env_id) else None
    return dataclasses.replace(cfg, backend=resolve_backend(cfg.env_id, "auto", cfg.num_envs, atari=atari))


def make_envs(cfg: Any) -> VecEnv:
    return make_vec_env(cfg.env_id, cfg.num_envs, backend=cfg.backend, atari=cfg.atari,
                        max_episode_steps=cfg.max_episode_steps, asynchronous=cfg.async_envs)


def make_normalisers(cfg: Any, envs: VecEnv) -> tuple[ObservationNormalizer | None, RewardNormalizer | None]:
    shape = envs.single_observation_space.shape
    assert shape is not None
    obs_norm = ObservationNormalizer(shape) if cfg.norm_obs else None
    reward_norm = RewardNormalizer(cfg.num_envs, gamma=cfg.gamma) if cfg.norm_reward else None
    return obs_norm, reward_norm
