"""PPO-clip with GAE (TR-15..TR-18, TR-31, TR-37) and the well-known implementation details as switches.

Spec: TR-14/TR-16 (clipped objective C_eps(ell, A), ratio exp(log pi_new - log pi_old) with stored
old log-probs, open choice 12), TR-15 (plus value regression), TR-17 (eps = 0.2), TR-18 (about 10
epochs over the N T samples), TR-31 / TR-32 (GAE by the backward recursion, open choice 13), TR-37
(gamma / lambda), E-57 (value targets per episode: R_t = A_t + V(s_t), bootstrapped at truncation from
the true final observation, 0 at termination).

Defaults are Schulman et al. (2017)'s MuJoCo settings (1 actor x 2048 steps, 10 epochs, minibatch 64,
Adam 3e-4, gamma 0.99, lambda 0.95, eps 0.2); :func:`atari_config` gives their Atari settings.
Implementation details (Engstrom et al. 2020; Huang et al. 2022), each a named switch of :class:`PPOConfig`:
``orthogonal_init``, ``adam_eps`` (1e-5), ``anneal_lr`` (linear: lr (1 - (u - 1) / N) at update u of N, CleanRL's
schedule, so lr / N at the last update), ``norm_adv`` (per-minibatch advantage normalisation; off by default as the
text does not normalise, open choice 12; a last minibatch of one sample, when minibatch_size does not divide
the batch, gets advantage (A - A) / (0 + 1e-8) = 0: we use the biased std (``unbiased=False``), 0 for one sample,
where CleanRL's formula with torch's default unbiased std would give NaN; SB3 skips normalising a minibatch of
one, and CleanRL requires the sizes to divide), ``max_grad_norm`` (global clip), ``clip_vloss``
(value clipping), ``norm_obs`` / ``norm_reward`` (running normalisers for MuJoCo), ``target_kl`` (early
stopping, TR-16).

Shared machinery (rollouts, checkpoints, exact resume by action replay) is in :mod:`scalable.agents.a2c`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from scalable.agents.common import (
    Head,
    Net,
    RunState,
    Session,
    TrainResult,
    UpdateGuard,
    build_actor_critic,
    check_finite_parameters,
    check_run_config,
    checkpoint_state,
    collect_rollout,
    gather_rows,
    make_envs,
    make_normalisers,
    start_run,
    with_resolved_backend,
)
from scalable.core.advantages import gae, value_targets
from scalable.core.losses import entropy_loss, ppo_clip_loss, value_loss
from scalable.envs import AtariOptions, Backend
from scalable.nets.atari import Precision
from scalable.runs.checkpoint import seed_everything
from scalable.runs.logging import ProgressBar

__all__ = ["PPOConfig", "atari_config", "mujoco_config", "ppo_update", "train"]


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (Schulman et al. 2017, MuJoCo) and run settings; every detail a named switch."""

    env_id: str = "HalfCheetah-v5"
    total_steps: int = 1_000_000
    seed: int = 1
    backend: Backend = "auto"
    num_envs: int = 1  # N actors
    num_steps: int = 2048  # T, the horizon per actor
    gamma: float = 0.99
    gae_lambda: float = 0.95
    update_epochs: int = 10  # TR-18
    minibatch_size: int = 64
    learning_rate: float = 3e-4
    clip_eps: float = 0.2  # TR-17
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    # implementation details
    orthogonal_init: bool = True
    adam_eps: float = 1e-5
    anneal_lr: bool = True
    norm_adv: bool = False  # open choice 12: the text does not normalise
    max_grad_norm: float | None = 0.5
    clip_vloss: bool = False
    norm_obs: bool = False
    norm_reward: bool = False
    target_kl: float | None = None
    head: Head = "auto"
    hidden: tuple[int, ...] = (64, 64)
    atari_arch: Literal["text", "nature"] = "text"
    precision: Precision = "float32"  # Atari trunk: "bfloat16" = mixed precision (scalable.nets.atari), opt-in
    atari: AtariOptions = field(default_factory=AtariOptions)
    max_episode_steps: int | None = None
    # run settings
    checkpoint_every: int = 50  # updates; a checkpoint is also written on exit
    exact_env_resume: bool = True
    target_return: float | None = None
    return_window: int = 10
    torch_threads: int | None = 1  # small nets on a shared CPU: 1 thread avoids oversubscription; None = torch default
    device: str = "cpu"  # "cpu" or "cuda[:i]": network and update; envs, buffers and the RNG stay on the CPU
    async_envs: bool = False  # gymnasium backend: one worker process per env (many cores, no envpool)


def atari_config(env_id: str, **overrides: object) -> PPOConfig:
    """Atari settings after Schulman et al. (2017, Table 5): 8 actors x 128 steps, 3 epochs (4 minibatches of
    256), lr 2.5e-4 annealed, c2 = 0.01, the text's network. Two differences from the paper, both as in
    CleanRL's and SB3's Atari PPO: the clip range eps = 0.1 is constant (the paper anneals it with the
    learning rate, 0.1 alpha); and ``vf_coef = 1.0`` weights our value loss 1/2 (V - R)^2, so in the paper's
    convention c1 (V - R)^2 it is c1 = 0.5 (SB3's Atari setting: vf_coef 0.5 on the mean squared error), not
    the paper's c1 = 1 (``--set vf_coef=2.0`` for that)."""
    cfg = PPOConfig(env_id=env_id, total_steps=10_000_000, num_envs=8, num_steps=128, update_epochs=3,
                    minibatch_size=256, learning_rate=2.5e-4, clip_eps=0.1, vf_coef=1.0, ent_coef=0.01,
                    norm_adv=True)
    return dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]


def mujoco_config(env_id: str, **overrides: object) -> PPOConfig:
    """The standard MuJoCo settings of public PPO implementations: Schulman et al.'s defaults plus the
    state-independent diagonal Gaussian (``head="diag_gaussian"``, log-std initialised to 0), per-minibatch
    advantage normalisation and running observation / reward normalisation clipped at 10. The configuration
    of the returns benchmark (``benchmarks/bench_scalable.py``), where it matches Stable-Baselines3's PPO
    with ``VecNormalize`` step for step (truncation bootstrapped from V of the true final observation, no
    value clipping, the discounted-return accumulator of the reward normaliser reset at every episode end).
    CleanRL's ``ppo_continuous_action`` differs from both on exactly those three points: it treats a time
    limit as a termination, clips the value loss, and never resets the accumulator at a truncation
    (gymnasium's single-env ``NormalizeReward``: G_t = gamma (1 - term_t) G_{t-1} + r_t, so a termination drops
    the history at its own step and the next episode starts from gamma r_T). The text's own choices
    (tanh-Gaussian, no advantage normalisation) are :class:`PPOConfig`'s defaults."""
    cfg = PPOConfig(env_id=env_id, head="diag_gaussian", norm_adv=True, norm_obs=True, norm_reward=True)
    return dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]


def ppo_update(model: Net, opt: torch.optim.Optimizer, cfg: PPOConfig, generator: torch.Generator, *,
               obs: Tensor, raw_actions: Tensor, log_probs: Tensor, advantages: Tensor, targets: Tensor,
               values: Tensor) -> dict[str, float]:
    """One PPO update (TR-14..TR-18): ``cfg.update_epochs`` passes over random minibatches of a flat batch.

    TR-15's objective sum_{i,t} gamma^t C_eps(...) is used without its gamma^t weight (every sample counts
    alike: the gamma-trick of open choice 6, the convention of CleanRL and SB3; the exact, discounted version is
    reference.trust_region.ppo_clip_exact). Per minibatch: minimise ppo_clip_loss(log pi(a|s), log pi_old, A)
    + vf_coef * value_loss(V(s), R)
    (- ent_coef * H), then one optimiser step after the global grad-norm clip. ``obs`` [B, *obs_shape],
    ``raw_actions`` [B, *act_shape] (the stored pre-squash / unclipped actions), ``log_probs``,
    ``advantages``, ``targets`` (the value targets R_t = A_t + V(s_t)) and ``values`` (the rollout's V,
    for value clipping) [B]. Permutations are drawn from ``generator`` (one per epoch). Advantages are
    normalised per minibatch if ``cfg.norm_adv`` (biased std + 1e-8). The batch may live on the CPU; it is
    moved to the network's device. Stops early after an epoch whose last
    minibatch's approx-KL (k3 estimator) exceeds ``cfg.target_kl``. Returns the last minibatch's losses.
    """
    batch = obs.shape[0]
    params = [p for p in model.parameters() if p.requires_grad]
    dev = params[0].device  # the batch moves to the network's device once per update (no-op on the CPU)
    b_obs, b_act, b_logp, b_adv, b_ret, b_val = (x.to(dev) for x in (obs, raw_actions, log_probs, advantages,
                                                                     targets, values))
    if b_obs.dim() == 4 and getattr(model, "channels_last", False):
        # frames reordered to the network's NHWC layout once per update, not once per minibatch
        b_obs = b_obs.contiguous(memory_format=torch.channels_last)
    approx_kl = torch.zeros(())
    stats: dict[str, float] = {}
    mbs = cfg.minibatch_size
    starts = range(0, batch, mbs)
    last_start = starts[-1]
    adv_rows = cfg.norm_adv and batch % mbs == 0
    for _epoch in range(cfg.update_epochs):
        perm = torch.randperm(batch, generator=generator).to(dev)
        # gather once per epoch; minibatches are then contiguous slices (same samples, same order)
        e_obs, e_act, e_logp, e_adv = (gather_rows(x, perm) for x in (b_obs, b_act, b_logp, b_adv))
        e_ret, e_val = gather_rows(b_ret, perm), gather_rows(b_val, perm)
        if adv_rows:  # per-minibatch advantage normalisation, all minibatches of the epoch at once
            a2 = e_adv.view(-1, mbs)
            e_adv = ((a2 - a2.mean(dim=1, keepdim=True))
                     / (a2.std(dim=1, unbiased=False, keepdim=True) + 1e-8)).view(-1)
        for start in starts:
            sl = slice(start, start + mbs)
            ev = model.evaluate(e_obs[sl], e_act[sl])
            mb_adv = e_adv[sl]
            if cfg.norm_adv and not adv_rows:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std(unbiased=False) + 1e-8)
            mb_logp = e_logp[sl]
            pg_loss = ppo_clip_loss(ev.log_prob, mb_logp, mb_adv, eps=cfg.clip_eps)
            v_loss = value_loss(ev.value, e_ret[sl], old_values=e_val[sl] if cfg.clip_vloss else None,
                                clip_eps=cfg.clip_eps if cfg.clip_vloss else None)
            loss = pg_loss + cfg.vf_coef * v_loss
            if cfg.ent_coef != 0.0:
                loss = loss + cfg.ent_coef * entropy_loss(ev.entropy)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            if cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm, foreach=True)
            opt.step()
            if start == last_start:  # only the epoch's last minibatch is reported / checked
                with torch.no_grad():
                    log_ratio = ev.log_prob - mb_logp
                    approx_kl = ((log_ratio.exp() - 1) - log_ratio).mean()
                stats = {"losses/policy": pg_loss.item(), "losses/value": v_loss.item(),
                         "losses/entropy": ev.entropy.mean().item(), "losses/approx_kl": float(approx_kl)}
        if cfg.target_kl is not None and float(approx_kl) > cfg.target_kl:
            break
    return stats


def train(
    cfg: PPOConfig,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    max_updates: int | None = None,
    progress: bool | None = None,
    on_update: Callable[[int, nn.Module], None] | None = None,
) -> TrainResult:
    """Train PPO-clip. Arguments as :func:`scalable.agents.a2c.train`.

    Per update: collect T steps of N envs; GAE advantages and lambda-return targets (core); then
    ``update_epochs`` passes over random minibatches of the N T samples minimising
    ppo_clip_loss + vf_coef * value_loss (- ent_coef * H).
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
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
    obs_norm, reward_norm = make_normalisers(cfg, envs)
    st = RunState(cfg.seed, cfg.return_window)
    session = Session("ppo", cfg, run_dir, resume=resume, progress=progress)
    obs = start_run(cfg, session, st, model, opt, obs_norm, reward_norm, envs, resume=resume)
    batch = cfg.num_envs * cfg.num_steps
    num_updates = cfg.total_steps // batch
    bar = ProgressBar(num_updates * batch, initial=st.global_step, desc="ppo", disable=session.progress_disable,
                      window=cfg.return_window, returns=st.returns)
    t0, steps0 = time.perf_counter(), st.global_step
    guard = UpdateGuard("ppo", cfg, st, model, opt, obs_norm, reward_norm, enabled=session.run is not None)
    try:
        while st.update < num_updates and not st.solved(cfg.target_return):
            if max_updates is not None and st.update >= max_updates:
                break
            guard.begin()
            st.update += 1
            if cfg.anneal_lr:
                opt.param_groups[0]["lr"] = cfg.learning_rate * (1.0 - (st.update - 1) / num_updates)

            # 1. rollout: T steps of N envs with the current policy (old log-probs stored, open choice 12)
            ro, obs = collect_rollout(envs, model, obs, cfg.num_steps, generator=st.generator,
                                      obs_norm=obs_norm, reward_norm=reward_norm)
            st.global_step += batch
            st.record(ro)

            # 2. GAE advantages and lambda-return value targets (TR-31, E-57; truncation bootstrapped)
            adv = gae(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated,
                      gamma=cfg.gamma, lam=cfg.gae_lambda)
            targets = value_targets(adv, ro.values)

            # 3. update_epochs passes of minibatch SGD on the clipped surrogate + value loss
            try:
                stats = ppo_update(model, opt, cfg, st.generator, obs=ro.obs.flatten(0, 1),
                                   raw_actions=ro.raw_actions.flatten(0, 1), log_probs=ro.log_probs.flatten(),
                                   advantages=adv.flatten(), targets=targets.flatten(), values=ro.values.flatten())
            except ValueError as exc:  # a NaN parameter fails the next minibatch's checks: say what happened
                check_finite_parameters(model, st.update, exc)
            check_finite_parameters(model, st.update)  # before any log or checkpoint of this update

            bar.update(batch, [r for r, _ in ro.episodes])
            # each episode at the env step it ended (the rollout began at global_step - batch)
            for (ret, length), step in zip(ro.episodes, ro.episode_steps(st.global_step - batch), strict=True):
                session.log(step, {"charts/episodic_return": ret, "charts/episodic_length": length})
            session.log(st.global_step, {**stats, "charts/learning_rate": float(opt.param_groups[0]["lr"])})
            if on_update is not None:
                on_update(st.update, model)
            if cfg.checkpoint_every > 0 and st.update % cfg.checkpoint_every == 0:
                session.save(checkpoint_state("ppo", cfg, st, model, opt, obs_norm, reward_norm), st.global_step)
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
