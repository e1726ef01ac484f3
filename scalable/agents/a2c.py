"""A2C (PG-38, PG-39): k-step segments over B vectorised environments, one update per segment.

Spec: PG-38 (k-step segments; backward recursion Q <- r_i + gamma Q from a V_phi bootstrap, or 0 at
termination; accumulates 1..k-step targets), PG-39 (k ~ 5; the synchronous form of A3C), PG-48
(categorical policy, backprop log pi(a_t | s_t)), PG-50 / PG-51 (tanh-Gaussian for continuous actions),
E-46 / open choice 17 (stop-gradient on Q_hat and on Q_hat - V_phi), E-54 (one update per segment,
about ceil(T / k) per episode), open choice 14 (k = 5; entropy bonus beta = 0.01 behind a flag, off).

Actor and critic: for vector observations two separate MLPs (no shared trunk); for Atari the text's
network with a shared trunk and two linear heads (A3C). Truncation (a time limit) bootstraps from the
true final observation (open choice 13) via :func:`scalable.core.advantages.next_values_from_rollout`.

This module also holds what both agents share (used by :mod:`scalable.agents.ppo`): the actor-critic
builder, :func:`collect_rollout` (one [T, B] rollout), and the checkpoint / resume machinery.

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

import csv
import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from scalable.core.advantages import next_values_from_rollout, td_k_advantages, value_targets
from scalable.core.distributions import categorical_entropy, categorical_log_prob, categorical_sample
from scalable.core.losses import a2c_policy_loss, entropy_loss, value_loss
from scalable.core.normalize import ObservationNormalizer, RewardNormalizer
from scalable.envs import AtariOptions, Backend, VecEnv, completed_episodes, make_vec_env
from scalable.envs.atari import is_atari
from scalable.nets.atari import AtariActorCritic, PolicyEval, PolicyStep
from scalable.nets.init import VALUE_GAIN
from scalable.nets.mlp import MLPActorCritic, mlp
from scalable.runs.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from scalable.runs.logging import Logger, ProgressBar, RunDir

__all__ = [
    "A2CConfig",
    "ActorCritic",
    "CategoricalMLPActorCritic",
    "Rollout",
    "TrainResult",
    "build_actor_critic",
    "collect_rollout",
    "train",
]

Head = Literal["auto", "tanh_gaussian", "diag_gaussian"]


@dataclass(frozen=True)
class A2CConfig:
    """A2C hyperparameters (PG-38/39; Mnih et al. 2016) and run settings; every detail a named switch."""

    env_id: str = "CartPole-v1"
    total_steps: int = 1_000_000
    seed: int = 1
    backend: Backend = "auto"
    num_envs: int = 16  # B parallel environments (synchronous A3C)
    num_steps: int = 5  # k, the segment length (PG-39, open choice 14)
    gamma: float = 0.99
    learning_rate: float = 7e-4
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"  # A3C / A2C use RMSProp
    rmsprop_alpha: float = 0.99
    optim_eps: float = 1e-5
    vf_coef: float = 0.5
    entropy_bonus: bool = False  # A3C's bonus (open choice 14), off by default
    ent_coef: float = 0.01
    max_grad_norm: float | None = 0.5  # global gradient-norm clip
    anneal_lr: bool = False
    orthogonal_init: bool = True
    norm_obs: bool = False
    norm_reward: bool = False
    head: Head = "auto"  # continuous actions: tanh_gaussian (PG-50, default) or diag_gaussian
    hidden: tuple[int, ...] = (64, 64)
    atari_arch: Literal["text", "nature"] = "text"
    atari: AtariOptions = field(default_factory=AtariOptions)
    max_episode_steps: int | None = None
    # run settings
    checkpoint_every: int = 500  # updates; a checkpoint is also written on exit
    exact_env_resume: bool = True
    target_return: float | None = None  # stop once the mean of the last ``return_window`` returns reaches it
    return_window: int = 10
    torch_threads: int | None = 1  # small nets on a shared CPU: 1 thread avoids oversubscription; None = torch default


# ----------------------------------------------------------------------------- actor-critics
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


def build_actor_critic(env_id: str, obs_space: gym.Space[Any], act_space: gym.Space[Any], *, head: Head,
                       hidden: tuple[int, ...], orthogonal_init: bool,
                       atari_arch: Literal["text", "nature"] = "text") -> Net:
    """The network for an environment: Atari CNN (shared trunk), categorical MLP, or Gaussian MLP."""
    if isinstance(act_space, gym.spaces.Discrete):
        n = int(act_space.n)
        if is_atari(env_id):
            return AtariActorCritic(n, arch=atari_arch, frames=int(obs_space.shape[0]),  # type: ignore[index]
                                    orthogonal_init=orthogonal_init)
        return CategoricalMLPActorCritic(int(np.prod(obs_space.shape)), n, hidden=hidden,  # type: ignore[arg-type]
                                         orthogonal_init=orthogonal_init)
    if isinstance(act_space, gym.spaces.Box):
        h: Literal["tanh_gaussian", "diag_gaussian"] = "tanh_gaussian" if head == "auto" else head
        return MLPActorCritic(int(np.prod(obs_space.shape)), int(np.prod(act_space.shape)),  # type: ignore[arg-type]
                              hidden=hidden, head=h, orthogonal_init=orthogonal_init)
    raise ValueError(f"unsupported action space {act_space!r}")


def env_action(act_space: gym.Space[Any], action: Tensor) -> NDArray[np.generic]:
    """Network action -> what the env receives: int64 indices [B], or float32 Box actions [B, n] (the
    backends clip them to the bounds; a tanh-Gaussian's (-1, 1) matches the MuJoCo bounds of most tasks)."""
    a = action.detach().cpu().numpy()
    if isinstance(act_space, gym.spaces.Discrete):
        return a.astype(np.int64)
    return a.astype(np.float32)


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
    (return, length) of real episodes that ended.
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


def _prep(obs: NDArray[np.generic], obs_norm: ObservationNormalizer | None, *, update: bool) -> Tensor:
    t = torch.as_tensor(obs)
    if obs_norm is not None:
        return obs_norm(t.float(), update=update)
    return t


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
    truncation, 0 at termination (``next_values_from_rollout``)."""
    act_space = envs.single_action_space
    cols: dict[str, list[Any]] = {k: [] for k in ("obs", "raw", "env", "logp", "v", "r", "te", "tr", "fo", "vf")}
    episodes: list[tuple[float, int]] = []
    for _ in range(num_steps):
        x = _prep(obs, obs_norm, update=True)
        step = policy.act(x, generator=generator)
        a_env = env_action(act_space, step.action)
        obs, reward, terminated, truncated, final_obs, info = envs.step(a_env)
        fo = _prep(final_obs, obs_norm, update=False)
        vf = policy.value(fo) if np.any(truncated & ~terminated) else torch.zeros(len(reward))
        r = torch.as_tensor(reward)
        if reward_norm is not None:
            r = reward_norm(r, torch.as_tensor(terminated | truncated)).float()
        for k, v in zip(cols, (x, step.raw_action, a_env, step.log_prob, step.value, r,
                               torch.as_tensor(terminated), torch.as_tensor(truncated), fo, vf), strict=True):
            cols[k].append(v)
        episodes += completed_episodes(info)
    last_value = policy.value(_prep(obs, obs_norm, update=False))
    values = torch.stack(cols["v"])
    term, trunc, v_final = torch.stack(cols["te"]), torch.stack(cols["tr"]), torch.stack(cols["vf"])
    rollout = Rollout(
        obs=torch.stack(cols["obs"]), raw_actions=torch.stack(cols["raw"]), env_actions=np.stack(cols["env"]),
        log_probs=torch.stack(cols["logp"]), values=values, rewards=torch.stack(cols["r"]).float(),
        terminated=term, truncated=trunc, final_obs=torch.stack(cols["fo"]), v_final=v_final,
        last_value=last_value, next_values=next_values_from_rollout(values, last_value, term, trunc, v_final),
        episodes=episodes,
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
        self.generator = torch.Generator().manual_seed(seed)

    def record(self, rollout: Rollout) -> None:
        self.actions.append(rollout.env_actions)
        for ret, _ in rollout.episodes:
            self.returns.append(ret)
            self.all_returns.append(ret)

    def solved(self, target: float | None) -> bool:
        return (target is not None and len(self.returns) == self.returns.maxlen
                and float(np.mean(self.returns)) >= target)

    def action_log(self) -> Tensor:
        if not self.actions:
            return torch.zeros(0)
        a = np.concatenate(self.actions)
        if a.dtype == np.int64 and a.size and a.min() >= 0 and a.max() < 256:
            return torch.from_numpy(a.astype(np.uint8))
        return torch.from_numpy(np.ascontiguousarray(a))


def checkpoint_state(kind: str, cfg: Any, st: RunState, model: nn.Module, opt: torch.optim.Optimizer,
                      obs_norm: ObservationNormalizer | None, reward_norm: RewardNormalizer | None) -> dict[str, Any]:
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
        "env": {"seed": st.seed, "actions": st.action_log()},
        "returns": list(st.returns),
        "all_returns": list(st.all_returns),
    }


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
    else:
        obs = envs.reset(seed=seed + 7919 * st.update)
        st.actions = []
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
    return state


def config_from_dict(cls: type[Any], d: dict[str, Any]) -> Any:
    """Rebuild a frozen config dataclass from its checkpoint / config.json dict (tuples, AtariOptions)."""
    kw: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for k, v in d.items():
        if k not in names:
            continue
        if k == "atari" and isinstance(v, dict):
            v = AtariOptions(**v)
        elif k == "hidden":
            v = tuple(v)
        kw[k] = v
    return cls(**kw)


class Session:
    """Logging, progress, periodic checkpoints of one training run (shared by A2C and PPO)."""

    def __init__(self, kind: str, cfg: Any, run_dir: str | Path | None, *, resume: bool, progress: bool | None) -> None:
        self.kind, self.cfg = kind, cfg
        self.run: RunDir | None = None
        self.logger: Logger | None = None
        if run_dir is not None:
            p = Path(run_dir)
            if not resume and RunDir(p).latest_checkpoint() is not None:
                raise FileExistsError(f"run folder {str(p)!r} already has checkpoints; resume it or pick another")
            self.run = RunDir.open(p) if resume else RunDir.create(p.parent, p.name, config=cfg, exist_ok=True)
            if not resume:
                self.logger = Logger(self.run)
        self.progress_disable = progress is False
        self.start = time.perf_counter()

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
        if self.run is not None:
            save_checkpoint(self.run.checkpoint_path(step), state)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.logger is not None:
            self.logger.log(step, {k: v for k, v in metrics.items() if math.isfinite(v)})

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()


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
        obs = restore(state, st, model, opt, obs_norm, reward_norm, envs, exact_env_resume=cfg.exact_env_resume)
        session.open_log_after_resume(st.global_step)
        return obs
    except BaseException:
        session.close()
        envs.close()
        raise


def make_envs(cfg: Any) -> VecEnv:
    return make_vec_env(cfg.env_id, cfg.num_envs, backend=cfg.backend, atari=cfg.atari,
                        max_episode_steps=cfg.max_episode_steps)


def make_normalisers(cfg: Any, envs: VecEnv) -> tuple[ObservationNormalizer | None, RewardNormalizer | None]:
    shape = envs.single_observation_space.shape
    assert shape is not None
    obs_norm = ObservationNormalizer(shape) if cfg.norm_obs else None
    reward_norm = RewardNormalizer(cfg.num_envs, gamma=cfg.gamma) if cfg.norm_reward else None
    return obs_norm, reward_norm


# ----------------------------------------------------------------------------- the A2C loop
def train(
    cfg: A2CConfig,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    max_updates: int | None = None,
    progress: bool | None = None,
    on_update: Callable[[int, nn.Module], None] | None = None,
) -> TrainResult:
    """Train A2C (PG-38). ``run_dir``: log + checkpoint there (``resume=True``: continue from its latest
    checkpoint). ``max_updates``: stop after this update index (a clean "kill", used by tests).
    Per update: collect a k-step segment of B envs, k-step targets by the backward recursion
    (``td_k_advantages`` with k = inf inside the segment = PG-38's accumulation of 1..k-step targets),
    then one gradient step on  a2c_policy_loss + vf_coef * value_loss (- ent_coef * H if enabled).
    """
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    envs = make_envs(cfg)
    model = build_actor_critic(cfg.env_id, envs.single_observation_space, envs.single_action_space,
                               head=cfg.head, hidden=cfg.hidden, orthogonal_init=cfg.orthogonal_init,
                               atari_arch=cfg.atari_arch)
    opt: torch.optim.Optimizer
    if cfg.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(model.parameters(), lr=cfg.learning_rate, alpha=cfg.rmsprop_alpha, eps=cfg.optim_eps)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, eps=cfg.optim_eps)
    obs_norm, reward_norm = make_normalisers(cfg, envs)
    st = RunState(cfg.seed, cfg.return_window)
    session = Session("a2c", cfg, run_dir, resume=resume, progress=progress)
    obs = start_run(cfg, session, st, model, opt, obs_norm, reward_norm, envs, resume=resume)
    batch = cfg.num_envs * cfg.num_steps
    num_updates = cfg.total_steps // batch
    bar = ProgressBar(num_updates * batch, initial=st.global_step, desc="a2c", disable=session.progress_disable or None)
    t0, steps0 = time.perf_counter(), st.global_step
    try:
        while st.update < num_updates and not st.solved(cfg.target_return):
            if max_updates is not None and st.update >= max_updates:
                break
            st.update += 1
            if cfg.anneal_lr:
                opt.param_groups[0]["lr"] = cfg.learning_rate * (1.0 - (st.update - 1) / num_updates)

            # 1. a k-step segment of B environments (no gradients)
            ro, obs = collect_rollout(envs, model, obs, cfg.num_steps, generator=st.generator,
                                      obs_norm=obs_norm, reward_norm=reward_norm)
            st.global_step += batch
            st.record(ro)

            # 2. k-step targets Q_hat by the backward recursion from V(s_{t+k}) (0 at termination)
            adv = td_k_advantages(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated,
                                  gamma=cfg.gamma, k=None)
            targets = value_targets(adv, ro.values)

            # 3. one gradient step (PG-38): re-evaluate the segment with gradients
            #    the advantage Q_hat - V_phi(s_t) is stop-gradiented inside the loss (E-46)
            ev = model.evaluate(ro.obs.flatten(0, 1), ro.raw_actions.flatten(0, 1))
            pg_loss = a2c_policy_loss(ev.log_prob, adv.flatten())
            v_loss = value_loss(ev.value, targets.flatten())
            loss = pg_loss + cfg.vf_coef * v_loss
            if cfg.entropy_bonus:
                loss = loss + cfg.ent_coef * entropy_loss(ev.entropy)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            if cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()

            bar.update(batch, [r for r, _ in ro.episodes])
            for ret, length in ro.episodes:
                session.log(st.global_step, {"charts/episodic_return": ret, "charts/episodic_length": length})
            if st.update % 10 == 0:
                session.log(st.global_step, {"losses/policy": pg_loss.item(), "losses/value": v_loss.item(),
                                             "losses/entropy": ev.entropy.mean().item(),
                                             "charts/learning_rate": float(opt.param_groups[0]["lr"])})
            if on_update is not None:
                on_update(st.update, model)
            if cfg.checkpoint_every > 0 and st.update % cfg.checkpoint_every == 0:
                session.save(checkpoint_state("a2c", cfg, st, model, opt, obs_norm, reward_norm), st.global_step)
    finally:
        if st.update > 0:
            session.save(checkpoint_state("a2c", cfg, st, model, opt, obs_norm, reward_norm), st.global_step)
        bar.close()
        session.close()
        envs.close()
    sps = (st.global_step - steps0) / max(time.perf_counter() - t0, 1e-9)
    return TrainResult(model, st.global_step, st.update, st.all_returns, st.solved(cfg.target_return),
                       session.run.path if session.run is not None else None, sps)
