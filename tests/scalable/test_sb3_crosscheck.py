"""Cross-check of the ``standard`` PPO preset against Stable-Baselines3's own code (code nobody here wrote).

The returns benchmark (``benchmarks/bench_scalable.py returns``) compares our PPO with SB3's PPO +
``VecNormalize`` "at identical hyperparameters". These tests prove that the two compute the same thing,
piece by piece, so that a gap in the benchmark can only be a gap in the random streams:

1. environment + running normalisers: our rollout's normalised observations and rewards equal those SB3's
   ``VecNormalize`` returns when the same actions are replayed through ``DummyVecEnv(Monitor(...))``;
2. truncation bootstrap + GAE: SB3's ``RolloutBuffer.compute_returns_and_advantage`` (with SB3's rule of
   adding gamma V(terminal obs) to the reward at a time-limit truncation) equals our ``gae`` /
   ``value_targets`` on that rollout;
3. the update: SB3's ``PPO.train()`` from the same weights on the same batch equals :func:`ppo_update`.

Known, documented differences kept out of the comparison (``benchmarks/bench_scalable.py`` docstring):
SB3 normalises the final observation of a truncated episode (and the rollout's last observation) with
statistics one sample later than ours; we feed our V(final obs) and V(last obs) to SB3's buffer so that
test 2 compares the recursion and the bootstrap rule themselves. SB3 normalises advantages with the
unbiased std, ours with the biased one; test 3 runs both without advantage normalisation.

Tolerances. Observations: both normalisers compute in float64 and round once to float32, but ours is fed
observations already rounded to float32 (SB3 casts after normalising), so an entry may differ by the
rounding of the raw entry and of the running mean it was built from, carried through the division, plus
the final rounding: 4 u32 (|o| + |mu|) / sigma + 4 u32 |x| per entry. Rewards: the same float64
accumulator on both sides, then one float32 rounding each: 2 u32 |r|. V(final obs): our rollout's numpy
forward pass against the float64 critic, twice the Higham forward bound of a Linear/Tanh stack (numpy's
and torch's float32 each within it). GAE: episodes here last at most L = 20 steps (the time limit), the
recursion restarts at every episode end, and each step adds at most 4 roundings of terms bounded by
M = max(|r| + 2 |V|) / (1 - gamma lambda): |error| <= 4 L u32 M. Update: not derived but measured: the
float64 run of our update is the oracle, and SB3's float32 result must lie within 4 x our own float32
run's distance from it (floored at u32 |theta|). The update moves the parameters by about 10^4 times that,
and the clipping binds on a large share of the samples; a clip range of 0.22 instead of 0.2, an entropy
bonus of 1e-3 or a grad-norm clip of 0.6 each fail the test.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from numpy.typing import NDArray

sb3 = pytest.importorskip("stable_baselines3")

from stable_baselines3.common.buffers import RolloutBuffer  # noqa: E402
from stable_baselines3.common.logger import configure  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper, VecNormalize  # noqa: E402
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn  # noqa: E402

from scalable.agents.common import Rollout, build_actor_critic, collect_rollout, make_envs, make_normalisers  # noqa: E402
from scalable.agents.ppo import mujoco_config, ppo_update  # noqa: E402
from scalable.core.advantages import gae, value_targets  # noqa: E402
from scalable.nets.mlp import MLPActorCritic  # noqa: E402

U32 = float(np.finfo(np.float32).eps)
ENV, LIMIT, T, GAMMA, LAM = "Walker2d-v5", 20, 256, 0.99, 0.95
UPD_LR, UPD_EPOCHS = 3e-3, 6  # large enough steps that the clipping binds on many samples in later epochs


@pytest.fixture(autouse=True, scope="module")
def _restore_global_state() -> Iterator[None]:
    """These tests set torch's thread count and seed the global torch / numpy generators (SB3 does):
    put them back for the rest of the session."""
    threads, np_state, torch_state = torch.get_num_threads(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002
    yield
    torch.set_num_threads(threads)
    np.random.set_state(np_state)  # noqa: NPY002
    torch.set_rng_state(torch_state)


def _sb3_params_into_ours(pol: Any, ours: MLPActorCritic) -> None:
    """Copy SB3's MlpPolicy weights (separate 64-64 actor / critic) into our diagonal-Gaussian MLP."""
    m = pol.mlp_extractor
    head: Any = ours.head
    pairs: list[tuple[Any, Any]] = [
        (ours.actor_trunk[0], m.policy_net[0]), (ours.actor_trunk[2], m.policy_net[2]), (head.mean, pol.action_net),
        (ours.critic[0], m.value_net[0]), (ours.critic[2], m.value_net[2]), (ours.critic[4], pol.value_net)]
    with torch.no_grad():
        for a, b in pairs:
            assert a.weight.shape == b.weight.shape
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
        head.log_std.copy_(pol.log_std)


class _KeepRawTerminal(VecEnvWrapper):
    """Copies SB3's raw ``terminal_observation`` aside before ``VecNormalize`` normalises it in place."""

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["raw_terminal_observation"] = np.array(info["terminal_observation"], copy=True)
        return obs, rewards, dones, infos


def _critic_error_bound(critic: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Forward rounding-error bound of a float32 Linear/Tanh stack at inputs ``x`` [B, d] -> [B]: each
    Linear layer of fan-in n adds gamma_n (|W| |h| + |b|) (Higham, Thm 3.5; h the float64 activations) to
    the propagated error |W| e; tanh is 1-Lipschitz and adds u32 |tanh(h)|."""
    h = x.double()
    e = torch.zeros_like(h)
    for layer in critic:
        if isinstance(layer, torch.nn.Linear):
            n = layer.in_features
            gam = n * U32 / (1 - n * U32)
            w, b = layer.weight.detach().double(), layer.bias.detach().double()
            e = e @ w.abs().T + gam * (h.abs() @ w.abs().T + b.abs())
            h = h @ w.T + b
        else:
            h = torch.tanh(h)
            e = e + U32 * h.abs()
    return e.squeeze(-1)


def _flat(module: torch.nn.Module) -> NDArray[np.float64]:
    return torch.cat([p.detach().double().flatten() for p in module.parameters()]).numpy()


@dataclass
class Pair:
    """Our second rollout, its network, and per step what SB3's VecNormalize returned for the same actions."""

    ro: Rollout
    model: MLPActorCritic
    sb_obs: NDArray[np.float64]  # [T, obs] normalised observation fed to the policy
    sb_raw_obs: NDArray[np.float64]  # [T, obs] the same, raw
    sb_mean: NDArray[np.float64]  # [T, obs] the statistics it was normalised with
    sb_var: NDArray[np.float64]
    sb_rew: NDArray[np.float64]  # [T] normalised reward
    sb_done: NDArray[np.bool_]  # [T]
    sb_trunc: NDArray[np.bool_]  # [T] time-limit truncation (SB3's TimeLimit.truncated)
    sb_final: list[Any]  # [T] the raw terminal observation where an episode ended, else None
    sb_raw_max: NDArray[np.float64]  # [T, obs] max |raw observation| over every step up to and including t


@pytest.fixture(scope="module")
def rollout_pair() -> Pair:
    """Two rollouts of T steps of our standard preset on Walker2d (time limit 20, so truncations and
    terminations both occur), and the same actions replayed through SB3's VecNormalize."""
    torch.set_num_threads(1)
    cfg = mujoco_config(ENV, backend="gymnasium", max_episode_steps=LIMIT, num_steps=T)
    envs = make_envs(cfg)
    torch.manual_seed(0)
    model = build_actor_critic(cfg.env_id, envs.single_observation_space, envs.single_action_space,
                               head=cfg.head, hidden=cfg.hidden, orthogonal_init=True)
    assert isinstance(model, MLPActorCritic)
    with torch.no_grad():  # larger output weights than at init: non-trivial values and actions
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs_norm, rew_norm = make_normalisers(cfg, envs)
    obs = envs.reset(seed=1)
    g = torch.Generator().manual_seed(1)
    ro1, obs = collect_rollout(envs, model, obs, T, generator=g, obs_norm=obs_norm, reward_norm=rew_norm)
    ro2, obs = collect_rollout(envs, model, obs, T, generator=g, obs_norm=obs_norm, reward_norm=rew_norm)
    envs.close()

    venv: Any = VecNormalize(_KeepRawTerminal(DummyVecEnv([lambda: Monitor(gym.make(ENV, max_episode_steps=LIMIT))])),
                        norm_obs=True, norm_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=GAMMA,
                        epsilon=1e-8)
    venv.seed(1)
    o = venv.reset()
    low, high = venv.action_space.low, venv.action_space.high
    sb_obs, sb_raw_obs, sb_mean, sb_var, sb_rew, sb_done, sb_trunc, sb_final = [], [], [], [], [], [], [], []
    for a in np.concatenate([ro1.env_actions, ro2.env_actions]):
        sb_obs.append(o[0].copy())
        sb_raw_obs.append(venv.get_original_obs()[0].copy())
        sb_mean.append(venv.obs_rms.mean.copy())  # the statistics o was normalised with
        sb_var.append(venv.obs_rms.var.copy())
        o, r, d, info = venv.step(np.clip(a, low, high))  # SB3 clips in collect_rollouts
        sb_rew.append(float(r[0]))
        sb_done.append(bool(d[0]))
        sb_trunc.append(bool(d[0]) and bool(info[0].get("TimeLimit.truncated", False)))
        sb_final.append(info[0].get("raw_terminal_observation"))
    venv.close()
    f64 = np.float64
    raw_max = np.maximum.accumulate(np.abs(np.array(sb_raw_obs, dtype=f64)), axis=0)
    return Pair(ro2, model, np.array(sb_obs[T:], dtype=f64), np.array(sb_raw_obs[T:], dtype=f64),
                np.array(sb_mean[T:], dtype=f64), np.array(sb_var[T:], dtype=f64), np.array(sb_rew[T:], dtype=f64),
                np.array(sb_done[T:]), np.array(sb_trunc[T:]), sb_final[T:], raw_max[T:])


def test_normalised_observations_and_rewards_equal_sb3_vecnormalize(rollout_pair: Pair) -> None:
    ro = rollout_pair.ro
    x_ours = ro.obs[:, 0].double().numpy()
    x_sb3 = rollout_pair.sb_obs
    raw = rollout_pair.sb_raw_obs
    # both libraries saw the same episodes: same episode ends, same kind of end
    term = ro.terminated[:, 0].numpy()
    trunc = ro.truncated[:, 0].numpy()
    assert np.array_equal(term | trunc, rollout_pair.sb_done)
    assert np.array_equal(trunc & ~term, rollout_pair.sb_trunc)
    assert int(term.sum()) > 0 and int((trunc & ~term).sum()) > 0, "need both kinds of episode end"
    sigma = np.sqrt(rollout_pair.sb_var + 1e-8)
    # Our statistics are float64 sums of the float32-rounded observations, SB3's of the float64 ones: each
    # sample differs by <= u32 |o| <= u32 M (M = max |o| seen so far), so the means by <= u32 M (not u32 |mean|:
    # the roundings of samples around 0 need not cancel) and the variances by <= 2 sigma u32 M + (u32 M)^2, a
    # relative error <= u32 M / sigma (+ second order) of sigma, which moves x by <= |x| u32 M / sigma (factor 2
    # for the second-order terms). Then the rounding of o itself, of the difference and the quotient and the
    # final float32 casts: 4 u32 ((|o| + M) / sigma + |x|). (Found on a 2-core AMD EPYC on 2026-12-06: the old
    # bound, with u32 |mean| for the mean's error, was exceeded by 6.5e-10.)
    big_m = rollout_pair.sb_raw_max
    tol = 4 * U32 * ((np.abs(raw) + big_m) / sigma + np.abs(x_sb3)) + 2 * U32 * np.abs(x_sb3) * big_m / sigma
    assert np.all(np.abs(x_ours - x_sb3) <= tol), float(np.max(np.abs(x_ours - x_sb3) - tol))
    # the true final observation of a truncated episode, normalised with the statistics of its step
    # (SB3 normalises it one sample later, after adding the reset observation; see the module docstring),
    # and the bootstrap value read from it: V(final obs) of the rollout's critic
    boot = np.flatnonzero(trunc & ~term)
    raw_final = np.stack([np.asarray(rollout_pair.sb_final[t], dtype=np.float64) for t in boot])
    mean = rollout_pair.sb_mean[boot]
    sig = sigma[boot]
    want = np.clip((raw_final - mean) / sig, -10.0, 10.0)
    got = ro.final_obs[boot, 0].double().numpy()
    assert np.all(np.abs(got - want) <= 4 * U32 * (np.abs(raw_final) / sig + np.abs(want)))
    model = rollout_pair.model
    critic = model.critic
    with torch.no_grad():
        v64 = copy.deepcopy(critic).double()(ro.final_obs[boot, 0].double()).squeeze(-1)
        bound = _critic_error_bound(critic, ro.final_obs[boot, 0])
    v_final = ro.v_final[boot, 0].double()
    assert torch.all((v_final - v64).abs() <= 2 * bound), float(((v_final - v64).abs() - 2 * bound).max())
    assert float(v64.abs().min()) > 10 * float(bound.max())  # a zero or a wrong V would not fit in the bound
    r_ours = ro.rewards[:, 0].double().numpy()
    r_sb3 = rollout_pair.sb_rew
    assert np.all(np.abs(r_ours - r_sb3) <= 2 * U32 * np.abs(r_sb3))


def test_truncation_bootstrap_and_gae_equal_sb3_rollout_buffer(rollout_pair: Pair) -> None:
    ro = rollout_pair.ro
    env = gym.make(ENV)
    buf = RolloutBuffer(T, env.observation_space, env.action_space, device="cpu", gae_lambda=LAM, gamma=GAMMA,
                        n_envs=1)
    env.close()
    term = ro.terminated[:, 0].numpy()
    trunc = ro.truncated[:, 0].numpy()
    done = term | trunc
    rewards = ro.rewards[:, 0].numpy().copy()
    # SB3's collect_rollouts: at a time-limit truncation, reward += gamma * V(terminal observation)
    boot = trunc & ~term
    rewards[boot] += GAMMA * ro.v_final[:, 0].numpy()[boot]
    episode_start = False  # SB3's recursion never reads episode_starts[0]
    for t in range(T):
        buf.add(ro.obs[t].numpy(), ro.raw_actions[t].numpy(), rewards[t:t + 1],
                np.array([episode_start]), ro.values[t], ro.log_probs[t])
        episode_start = bool(done[t])
    buf.compute_returns_and_advantage(last_values=ro.last_value, dones=np.array([done[-1]]))
    adv = gae(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated,
              gamma=GAMMA, lam=LAM)
    tgt = value_targets(adv, ro.values)
    r_abs = np.abs(rewards).max() + 2 * np.abs(ro.values.numpy()).max()
    tol = 4 * LIMIT * U32 * r_abs / (1 - GAMMA * LAM)
    d_adv = np.abs(adv[:, 0].double().numpy() - buf.advantages[:, 0])
    d_ret = np.abs(tgt[:, 0].double().numpy() - buf.returns[:, 0])
    assert d_adv.max() <= tol and d_ret.max() <= tol, (d_adv.max(), d_ret.max(), tol)
    assert np.abs(buf.advantages).max() > 1e3 * tol  # the comparison is not between zeros


def test_ppo_update_equals_sb3_train(rollout_pair: Pair) -> None:
    """SB3's ``PPO.train()`` and our :func:`ppo_update`, same weights, same batch: 6 epochs of one full-batch
    minibatch (so SB3's numpy permutation and ours only reorder the terms of the same sums), lr 3e-3 so
    that the clipping binds (SB3's logged clip fraction, a mean over the epochs, is asserted > 0.1),
    grad-norm clip 0.5, Adam eps 1e-5, constant lr, no advantage normalisation. SB3's value loss is
    (V - R)^2 with vf_coef 0.25, ours 0.5 (V - R)^2 with 0.5."""
    ro = rollout_pair.ro
    torch.set_num_threads(1)
    venv = DummyVecEnv([lambda: gym.make(ENV)])
    sb = sb3.PPO("MlpPolicy", venv, learning_rate=UPD_LR, n_steps=T, batch_size=T, n_epochs=UPD_EPOCHS, gamma=GAMMA,
                 gae_lambda=LAM, clip_range=0.2, normalize_advantage=False, ent_coef=0.0, vf_coef=0.25,
                 max_grad_norm=0.5, seed=3, device="cpu",
                 policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh,
                                "ortho_init": True, "log_std_init": 0.0})
    sb.set_logger(configure(None, []))
    cfg = mujoco_config(ENV, backend="gymnasium", update_epochs=UPD_EPOCHS, minibatch_size=T, norm_adv=False)
    ours = build_actor_critic(ENV, venv.observation_space, venv.action_space, head=cfg.head, hidden=cfg.hidden,
                              orthogonal_init=True)
    assert isinstance(ours, MLPActorCritic)
    _sb3_params_into_ours(sb.policy, ours)
    theta0 = _flat(ours)
    obs = ro.obs.flatten(0, 1)
    act = ro.raw_actions.flatten(0, 1)
    with torch.no_grad():  # old log-probs and values of the policy being updated: ratio 1 at the start
        ev = ours.evaluate(obs, act)
    adv = gae(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated,
              gamma=GAMMA, lam=LAM).flatten()
    ret = adv + ev.value  # any batch will do: targets that the new critic must move towards

    buf = sb.rollout_buffer
    buf.observations[:, 0] = obs.numpy()
    buf.actions[:, 0] = act.numpy()
    buf.log_probs[:, 0] = ev.log_prob.numpy()
    buf.values[:, 0] = ev.value.numpy()
    buf.advantages[:, 0] = adv.numpy()
    buf.returns[:, 0] = ret.numpy()
    buf.full, buf.generator_ready, buf.pos = True, False, T
    np.random.seed(0)  # noqa: NPY002 - SB3's RolloutBuffer.get draws from numpy's global generator
    sb.train()
    clip_fraction = float(sb.logger.name_to_value["train/clip_fraction"])  # mean over the epochs
    venv.close()

    def run_ours(dtype: torch.dtype) -> np.ndarray:
        net = copy.deepcopy(ours).to(dtype)
        opt = torch.optim.Adam(net.parameters(), lr=UPD_LR, eps=1e-5)
        ppo_update(net, opt, cfg, torch.Generator().manual_seed(0), obs=obs.to(dtype), raw_actions=act.to(dtype),
                   log_probs=ev.log_prob.to(dtype), advantages=adv.to(dtype), targets=ret.to(dtype),
                   values=ev.value.to(dtype))
        return _flat(net)

    theta32, theta64 = run_ours(torch.float32), run_ours(torch.float64)
    sb_net = copy.deepcopy(ours)
    _sb3_params_into_ours(sb.policy, sb_net)
    theta_sb3 = _flat(sb_net)
    scale = np.abs(theta64).max()
    tol = 4 * max(float(np.abs(theta32 - theta64).max()), U32 * scale)
    moved = float(np.abs(theta64 - theta0).max())
    assert moved > 100 * tol, (moved, tol)
    assert clip_fraction > 0.1, clip_fraction  # the clipped branch of the objective is exercised
    assert float(np.abs(theta_sb3 - theta64).max()) <= tol, (float(np.abs(theta_sb3 - theta64).max()), tol)
