"""A2C (PG-38, PG-39): k-step segments over B vectorised environments, one update per segment.

Spec: PG-38 (k-step segments; backward recursion Q <- r_i + gamma Q from a V_phi bootstrap, or 0 at
termination; accumulates 1..k-step targets), PG-39 (k ~ 5; the synchronous form of A3C), PG-48
(categorical policy, backprop log pi(a_t | s_t)), PG-50 / PG-51 (tanh-Gaussian for continuous actions),
E-46 / open choice 17 (stop-gradient on Q_hat and on Q_hat - V_phi), E-54 (one update per segment,
about ceil(T / k) per episode), open choice 14 (k = 5; entropy bonus beta = 0.01 behind a flag, off).

Actor and critic: for vector observations two separate MLPs (no shared trunk); for Atari the text's
network with a shared trunk and two linear heads (A3C). Truncation (a time limit) bootstraps from the
true final observation (open choice 13) via :func:`scalable.core.advantages.next_values_from_rollout`.

What both agents share (the actor-critic builder, :func:`~scalable.agents.common.collect_rollout` and
the checkpoint / resume machinery, with its exact-resume design) is in :mod:`scalable.agents.common`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from scalable.agents.common import (
    Head,
    RunState,
    Session,
    TrainResult,
    UpdateGuard,
    build_actor_critic,
    check_finite_parameters,
    check_run_config,
    checkpoint_state,
    collect_rollout,
    make_envs,
    make_normalisers,
    module_device,
    start_run,
    with_resolved_backend,
)
from scalable.core.advantages import td_k_advantages, value_targets
from scalable.core.losses import a2c_policy_loss, entropy_loss, value_loss
from scalable.envs import AtariOptions, Backend
from scalable.nets.atari import Precision
from scalable.runs.checkpoint import seed_everything
from scalable.runs.logging import ProgressBar

__all__ = ["A2CConfig", "train"]


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
    vf_coef: float = 0.5  # on 1/2 (V - R)^2: 0.25 on (V - R)^2, half of Baselines' / SB3's 0.5 on their MSE
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
    precision: Precision = "float32"  # Atari trunk: "bfloat16" = mixed precision (scalable.nets.atari), opt-in
    atari: AtariOptions = field(default_factory=AtariOptions)
    max_episode_steps: int | None = None
    # run settings
    checkpoint_every: int = 500  # updates; a checkpoint is also written on exit
    exact_env_resume: bool = True
    target_return: float | None = None  # stop once the mean of the last ``return_window`` returns reaches it
    return_window: int = 10
    torch_threads: int | None = 1  # small nets on a shared CPU: 1 thread avoids oversubscription; None = torch default
    device: str = "cpu"  # "cpu" or "cuda[:i]": network and update; envs, buffers and the RNG stay on the CPU
    async_envs: bool = False  # gymnasium backend: one worker process per env (many cores, no envpool)


# ----------------------------------------------------------------------------- actor-critics


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
    device = check_run_config(cfg)  # a bad value, device or precision fails before any environment starts
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    cfg = with_resolved_backend(cfg, run_dir, resume=resume)  # the run's saved config names the simulator
    seed_everything(cfg.seed, deterministic=False)  # torch (the weights), python random, numpy's global
    envs = make_envs(cfg)
    model = build_actor_critic(cfg.env_id, envs.single_observation_space, envs.single_action_space,
                               head=cfg.head, hidden=cfg.hidden, orthogonal_init=cfg.orthogonal_init,
                               atari_arch=cfg.atari_arch, precision=cfg.precision)
    model.to(device)  # before the optimiser and the checkpoint restore
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
    bar = ProgressBar(num_updates * batch, initial=st.global_step, desc="a2c", disable=session.progress_disable,
                      window=cfg.return_window, returns=st.returns)
    t0, steps0 = time.perf_counter(), st.global_step
    guard = UpdateGuard("a2c", cfg, st, model, opt, obs_norm, reward_norm, enabled=session.run is not None)
    try:
        while st.update < num_updates and not st.solved(cfg.target_return):
            if max_updates is not None and st.update >= max_updates:
                break
            guard.begin()
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
            dev = module_device(model)
            ev = model.evaluate(ro.obs.flatten(0, 1).to(dev), ro.raw_actions.flatten(0, 1).to(dev))
            pg_loss = a2c_policy_loss(ev.log_prob, adv.flatten().to(dev))
            v_loss = value_loss(ev.value, targets.flatten().to(dev))
            loss = pg_loss + cfg.vf_coef * v_loss
            if cfg.entropy_bonus:
                loss = loss + cfg.ent_coef * entropy_loss(ev.entropy)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            if cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            check_finite_parameters(model, st.update)  # before any log or checkpoint of this update

            bar.update(batch, [r for r, _ in ro.episodes])
            # each episode at the env step it ended (the rollout began at global_step - batch)
            for (ret, length), step in zip(ro.episodes, ro.episode_steps(st.global_step - batch), strict=True):
                session.log(step, {"charts/episodic_return": ret, "charts/episodic_length": length})
            if st.update % 10 == 0:
                session.log(st.global_step, {"losses/policy": pg_loss.item(), "losses/value": v_loss.item(),
                                             "losses/entropy": ev.entropy.mean().item(),
                                             "charts/learning_rate": float(opt.param_groups[0]["lr"])})
            if on_update is not None:
                on_update(st.update, model)
            if cfg.checkpoint_every > 0 and st.update % cfg.checkpoint_every == 0:
                session.save(checkpoint_state("a2c", cfg, st, model, opt, obs_norm, reward_norm), st.global_step)
            guard.end()
    finally:
        final = guard.exit_state()  # never a half-finished update (UpdateGuard)
        if final is not None:
            session.save(final, int(final["global_step"]))
        bar.close()
        session.close()
        envs.close()
    sps = (st.global_step - steps0) / max(time.perf_counter() - t0, 1e-9)
    return TrainResult(model, st.global_step, st.update, st.all_returns, st.solved(cfg.target_return),
                       session.run.path if session.run is not None else None, sps)
