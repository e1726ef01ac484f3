"""Vector envs: same-step autoreset, true final observations, truncation vs termination, Atari preprocessing.

Spec: open choice 13 (bootstrap truncation from the true final state, V(term) = 0), TR-29, PG-43, PG-44,
PG-46. The value pipeline is the agents' own (``scalable.agents.a2c.collect_rollout`` ->
``scalable.core.advantages``), driven by a stub critic V(s) = 100 + s[0] whose value at the final state
differs from its value at the reset state.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("gymnasium")

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from reference.tolerance import U32, counted_tolerance
from scalable.agents.common import Rollout, collect_rollout
from scalable.core.advantages import gae, value_targets
from scalable.envs import AtariOptions, EpisodeInfo, EpisodeQuota, VecEnv, completed_episodes, make_vec_env
from scalable.envs.envpool_backend import default_num_threads, envpool_has
from scalable.nets.atari import PolicyStep

H = 4  # time limit of the constant-reward env
K = 3  # termination step of its terminating variant
GAMMA = 0.9


class ConstantRewardEnv(gym.Env[NDArray[np.float32], np.int64]):
    """Reward 1 every step; obs = [steps taken in this episode]; terminates after ``term_at`` steps if set."""

    def __init__(self, term_at: int | None = None) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1e6, (1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.term_at = term_at
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action: np.int64) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        self.t += 1
        terminated = self.term_at is not None and self.t >= self.term_at
        return np.array([float(self.t)], np.float32), 1.0, terminated, False, {}


def _make_constant(**kwargs: Any) -> gym.Env[Any, Any]:
    return ConstantRewardEnv(**kwargs)


gym.register("ScalableTestConstant-v0", entry_point=_make_constant, max_episode_steps=H)
gym.register("ScalableTestConstantTerm-v0", entry_point=_make_constant, max_episode_steps=H,
             kwargs={"term_at": K})


class StubPolicy:
    """Always action 0; V(s) = 100 + s[0] (so V(final state) != V(reset state))."""

    def act(self, obs: Tensor, *, generator: torch.Generator | None = None, deterministic: bool = False
            ) -> PolicyStep:
        n = obs.shape[0]
        a = torch.zeros(n, dtype=torch.int64)
        return PolicyStep(a, a, torch.zeros(n), torch.zeros(n), self.value(obs))

    def value(self, obs: Tensor) -> Tensor:
        return 100.0 + obs[:, 0].to(torch.float32)


def _rollout(envs: VecEnv, num_steps: int, seed: int = 0) -> tuple[Rollout, Tensor]:
    obs = envs.reset(seed=seed)
    ro, _ = collect_rollout(envs, StubPolicy(), obs, num_steps, generator=torch.Generator().manual_seed(0))
    return ro, torch.as_tensor(obs)


def _expected_targets(ro: Rollout, policy: StubPolicy) -> Tensor:
    """Lambda = 1 targets by hand: MC return, bootstrapped with V(true final obs) at truncation, 0 at termination."""
    t_len, b_len = ro.rewards.shape
    out = torch.zeros(t_len, b_len, dtype=torch.float64)
    for b in range(b_len):
        g = 0.0
        for t in range(t_len - 1, -1, -1):
            if bool(ro.terminated[t, b]):
                g = float(ro.rewards[t, b])
            elif bool(ro.truncated[t, b]):
                g = float(ro.rewards[t, b]) + GAMMA * float(policy.value(ro.final_obs[t, b][None])[0])
            elif t == t_len - 1:
                g = float(ro.rewards[t, b]) + GAMMA * float(ro.last_value[b])
            else:
                g = float(ro.rewards[t, b]) + GAMMA * g
            out[t, b] = g
    return out


def _targets_error_bound(ro: Rollout) -> Tensor:
    """Bound on |targets - _expected_targets| for the float32 pipeline gae(lam = 1) -> value_targets, by
    running error analysis (Higham 2002, sec. 3.3) on the float32 inputs r, V, V' (exact in float64):
    delta = r + gamma boot - V rounds gamma to float32 and then 3 times (u times |gamma boot|, |gamma boot|,
    |r + gamma boot|, |delta|); A_t = delta_t + gamma A_{t+1} rounds gamma, the product and the sum (u times
    gamma |A_{t+1}| twice and |A_t|) and carries A_{t+1}'s error with factor gamma (reset where done);
    target = A + V adds u |target|. The float64 reference g_t = r_t + gamma g_{t+1} is within
    gamma_{2T+2}(u_64) (T max|r| + max|V'|) (added)."""
    r, v, nv = ro.rewards.double(), ro.values.double(), ro.next_values.double()
    term, done = ro.terminated, ro.terminated | ro.truncated
    t_len = r.shape[0]
    boot = torch.where(term, torch.zeros_like(nv), nv)
    g_boot = GAMMA * boot
    delta = r + g_boot - v
    local_delta = U32 * (2 * g_boot.abs() + (r + g_boot).abs() + delta.abs())
    acc = torch.zeros_like(r[0])
    err = torch.zeros_like(r[0])
    bound = torch.zeros_like(r)
    for t in range(t_len - 1, -1, -1):
        prev = torch.where(done[t], torch.zeros_like(acc), acc)
        prev_err = torch.where(done[t], torch.zeros_like(err), err)
        acc = delta[t] + GAMMA * prev
        err = local_delta[t] + U32 * (2 * GAMMA * prev.abs() + acc.abs()) + GAMMA * prev_err
        bound[t] = err + U32 * (acc + v[t]).abs()
    ref = counted_tolerance(t_len * float(r.abs().max()) + float(nv.abs().max()), roundings=2 * t_len + 2)
    return bound + ref


def _assert_targets_match(targets: Tensor, ro: Rollout) -> None:
    err = (targets.double() - _expected_targets(ro, StubPolicy())).abs()
    bound = _targets_error_bound(ro)
    assert bool((err <= bound).all()), float((err / bound).max())


def test_truncation_bootstraps_true_final_obs_gymnasium() -> None:
    envs = make_vec_env("ScalableTestConstant-v0", 2, backend="gymnasium")
    ro, _ = _rollout(envs, 2 * H + 1)
    trunc = ro.truncated
    assert trunc.sum() == 4 and not ro.terminated.any()
    assert torch.equal(trunc[:, 0], torch.tensor([False, False, False, True] * 2 + [False]))
    # the env reset after the time limit: obs of the next row is 0, the final obs is H
    assert torch.all(ro.final_obs[trunc][:, 0] == H)
    assert torch.all(ro.obs[1:][trunc[:-1]][:, 0] == 0)
    nv = ro.next_values
    assert torch.all(nv[trunc] == 100.0 + H)  # V(true final obs), not V(reset obs) = 100
    adv = gae(ro.rewards, ro.values, nv, ro.terminated, ro.truncated, gamma=GAMMA, lam=1.0)
    targets = value_targets(adv, ro.values)
    _assert_targets_match(targets, ro)
    envs.close()


def test_termination_bootstraps_zero_gymnasium() -> None:
    envs = make_vec_env("ScalableTestConstantTerm-v0", 3, backend="gymnasium")
    ro, _ = _rollout(envs, 2 * K)
    assert ro.terminated.sum() == 6 and not ro.truncated.any()
    assert torch.all(ro.next_values[ro.terminated] == 0.0)
    adv = gae(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated, gamma=GAMMA, lam=1.0)
    targets = value_targets(adv, ro.values)
    # the targets are the discounted number of remaining steps: 1 + g + g^2, 1 + g, 1
    want = torch.tensor([1 + GAMMA + GAMMA**2, 1 + GAMMA, 1.0] * 2, dtype=torch.float64)
    assert bool(((targets[:, 0].double() - want).abs() <= _targets_error_bound(ro)[:, 0]).all())
    _assert_targets_match(targets, ro)
    envs.close()


def test_raw_episode_stats_gymnasium() -> None:
    envs = make_vec_env("ScalableTestConstant-v0", 2, backend="gymnasium")
    envs.reset(seed=0)
    done: list[tuple[float, int]] = []
    for _ in range(H):
        done += completed_episodes(envs.step(np.zeros(2, dtype=np.int64)).info)
    assert done == [(float(H), H)] * 2


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_cartpole_final_obs_is_the_true_last_state(backend: str) -> None:
    """With the same seed and actions, an env with time limit 5 truncates at the state a limit-6 env reaches."""
    if backend == "envpool" and not envpool_has("CartPole-v1"):
        pytest.skip("envpool lacks CartPole-v1")
    short = make_vec_env("CartPole-v1", 2, backend=backend, max_episode_steps=5)  # type: ignore[arg-type]
    long = make_vec_env("CartPole-v1", 2, backend=backend, max_episode_steps=6)  # type: ignore[arg-type]
    short.reset(seed=7)
    long.reset(seed=7)
    act = np.array([0, 1], dtype=np.int64)
    for t in range(5):
        s, lg = short.step(act), long.step(act)
        if t < 4:
            np.testing.assert_array_equal(s.obs, lg.obs)
            assert not (s.truncated.any() or s.terminated.any())
    assert s.truncated.all() and not s.terminated.any()
    np.testing.assert_array_equal(s.final_obs, lg.obs)  # the true last state
    assert not np.array_equal(s.obs, lg.obs)  # obs is the next episode's reset state
    assert [r for r, _ in completed_episodes(s.info)] == [5.0, 5.0]
    short.close()
    long.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_termination_on_the_time_limit_step_sets_both_flags(backend: str) -> None:
    """An episode that terminates exactly on its limit step is terminated (and truncated): termination wins,
    so it bootstraps 0. envpool itself reports terminated = done & ~truncated there, which the envpool
    backend used to pass on (the pole fell, yet V(final_obs) was bootstrapped). The second reset(seed=11)
    of the same pool restarts the same episode (envpool seeds at construction; it is rebuilt)."""
    if backend == "envpool" and not envpool_has("CartPole-v1"):
        pytest.skip("envpool lacks CartPole-v1")
    act = np.zeros(1, dtype=np.int64)  # always push left: the pole falls after a few dozen steps
    free = make_vec_env("CartPole-v1", 1, backend=backend)  # type: ignore[arg-type]
    free.reset(seed=11)
    n = 0
    while True:
        n += 1
        out = free.step(act)
        if out.terminated[0] or out.truncated[0]:
            break
    free.close()
    assert out.terminated[0] and not out.truncated[0] and n < 500
    capped = make_vec_env("CartPole-v1", 1, backend=backend, max_episode_steps=n)  # type: ignore[arg-type]
    capped.reset(seed=11)
    for _ in range(n):
        out = capped.step(act)
    assert out.terminated[0] and out.truncated[0]
    assert [length for _, length in completed_episodes(out.info)] == [n]
    ro, _ = _rollout(capped, n + 3, seed=11)  # through the rollout pipeline: V(term) = 0 at row n - 1
    assert ro.terminated[n - 1, 0] and ro.truncated[n - 1, 0] and ro.next_values[n - 1, 0] == 0.0
    capped.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_cartpole_pipeline_truncation_vs_termination(backend: str) -> None:
    """CartPole is a constant-reward env (r = 1): through the rollout pipeline, termination -> 0."""
    if backend == "envpool" and not envpool_has("CartPole-v1"):
        pytest.skip("envpool lacks CartPole-v1")
    envs = make_vec_env("CartPole-v1", 4, backend=backend, max_episode_steps=9)  # type: ignore[arg-type]
    ro, _ = _rollout(envs, 40, seed=3)  # action 0 always: the pole falls after 8..11 steps or the limit (9) cuts
    assert ro.terminated.any() and ro.truncated.any()
    assert torch.all(ro.next_values[ro.terminated] == 0.0)
    th = ro.final_obs[..., 2].abs()
    assert torch.all(th[ro.terminated] > 0.2094)  # the terminal state really is past the angle limit
    trunc = ro.truncated & ~ro.terminated
    torch.testing.assert_close(ro.next_values[trunc], 100.0 + ro.final_obs[trunc][:, 0])
    adv = gae(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated, gamma=GAMMA, lam=1.0)
    targets = value_targets(adv, ro.values)
    _assert_targets_match(targets, ro)
    envs.close()


# ----------------------------------------------------------------------------------------- Atari
ATARI_GAME = "ALE/SpaceInvaders-v5"  # rewards 5..30 per alien: clipping visibly changes the return


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_atari_shapes_and_dtypes(backend: str) -> None:
    """PG-46 input: uint8 [B, 4, 84, 84] (grayscale, 84x84, 4 stacked frames) on both backends."""
    if backend == "envpool" and not envpool_has("SpaceInvaders-v5"):
        pytest.skip("envpool lacks SpaceInvaders-v5")
    envs = make_vec_env(ATARI_GAME, 2, backend=backend)  # type: ignore[arg-type]
    obs = envs.reset(seed=1)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert envs.single_observation_space.shape == (4, 84, 84)
    s = envs.step(np.zeros(2, dtype=np.int64))
    assert s.obs.shape == s.final_obs.shape == (2, 4, 84, 84)
    assert s.reward.dtype == np.float32 and s.terminated.dtype == np.bool_
    envs.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_atari_raw_returns_vs_clipped_training_rewards(backend: str) -> None:
    """Training rewards are sign(r); reported episode returns are the raw game score on both backends."""
    if backend == "envpool" and not envpool_has("SpaceInvaders-v5"):
        pytest.skip("envpool lacks SpaceInvaders-v5")
    base = AtariOptions(episodic_life=False, repeat_action_probability=0.0)
    clipped = make_vec_env(ATARI_GAME, 2, backend=backend, atari=base)  # type: ignore[arg-type]
    raw = make_vec_env(ATARI_GAME, 2, backend=backend, atari=base.for_eval())  # type: ignore[arg-type]
    clipped.reset(seed=5)
    raw.reset(seed=5)
    rng = np.random.default_rng(0)
    sums = np.zeros(2)
    clipped_sums = np.zeros(2)
    finished: list[tuple[float, float, float]] = []
    for _ in range(3000):
        a = rng.integers(0, 6, 2)
        c, r = clipped.step(a), raw.step(a)
        np.testing.assert_array_equal(c.reward, np.sign(r.reward))
        sums += r.reward
        clipped_sums += c.reward
        np.testing.assert_array_equal(c.info.done_mask, r.info.done_mask)
        for b in np.flatnonzero(r.info.done_mask):
            finished.append((float(c.info.returns[b]), float(r.info.returns[b]), float(sums[b])))
            assert c.info.returns[b] > clipped_sums[b]  # the raw score, not the clipped sum
            sums[b] = clipped_sums[b] = 0.0
        if len(finished) >= 2:
            break
    assert len(finished) >= 2
    for ret_c, ret_r, total in finished:
        assert ret_c == ret_r == total  # integer scores: sums exact in float64
    clipped.close()
    raw.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_atari_episodic_life_is_training_only(backend: str) -> None:
    """A lost life terminates the training episode, but the reported episode is the whole game."""
    if backend == "envpool" and not envpool_has("SpaceInvaders-v5"):
        pytest.skip("envpool lacks SpaceInvaders-v5")
    envs = make_vec_env(ATARI_GAME, 1, backend=backend,  # type: ignore[arg-type]
                        atari=AtariOptions(repeat_action_probability=0.0))
    envs.reset(seed=2)
    rng = np.random.default_rng(1)
    lives_lost = 0
    for _ in range(3000):
        s = envs.step(rng.integers(0, 6, 1))
        if s.info.done_mask[0]:
            break
        lives_lost += int(s.terminated[0])
    assert s.info.done_mask[0]
    assert lives_lost >= 1  # terminations before the game over (SpaceInvaders has 3 lives)
    envs.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_atari_episodic_life_reports_the_whole_games_return_and_length(backend: str) -> None:
    """Under episodic_life the reported episode is the whole game, not its last life: with clip_rewards off the
    training reward is the raw score, so the oracle is the sum of every reward and the count of every agent step
    since the game's reset, across all its lives (a backend that restarted its tally at each lost life reported
    the last life's score only and passed every earlier test: review 2026-12-07). A lost life sets terminated
    and never done_mask; the game over sets both."""
    if backend == "envpool" and not envpool_has("SpaceInvaders-v5"):
        pytest.skip("envpool lacks SpaceInvaders-v5")
    envs = make_vec_env(ATARI_GAME, 1, backend=backend,  # type: ignore[arg-type]
                        atari=AtariOptions(repeat_action_probability=0.0, clip_rewards=False))
    envs.reset(seed=2)
    rng = np.random.default_rng(1)
    total, steps, lives_lost = 0.0, 0, 0
    for _ in range(5000):
        s = envs.step(rng.integers(0, 6, 1))
        total += float(s.reward[0])
        steps += 1
        if s.info.done_mask[0]:
            break
        lives_lost += int(s.terminated[0])
    assert s.info.done_mask[0] and s.terminated[0]
    assert lives_lost == 2  # SpaceInvaders: 3 lives, so two lost lives before the game over
    assert float(s.info.returns[0]) == total and total > 0.0
    assert int(s.info.lengths[0]) == steps
    envs.close()


def test_for_eval_turns_off_the_training_only_options() -> None:
    """AtariOptions.for_eval (what the eval command builds its environments with): full games and raw rewards
    (episodic_life and clip_rewards off), every other option kept. Keeping episodic_life on there passed every
    earlier test (review 2026-12-07)."""
    opts = AtariOptions(frame_skip=3, noop_max=7, repeat_action_probability=0.1)
    ev = opts.for_eval()
    assert ev.episodic_life is False and ev.clip_rewards is False
    assert dataclasses.replace(ev, episodic_life=True, clip_rewards=True) == opts


@pytest.mark.parametrize("field,value", [("noop_max", -1), ("frame_stack", 0), ("frame_skip", 0), ("screen_size", 0),
                                         ("max_episode_steps", 0), ("repeat_action_probability", 1.5),
                                         ("repeat_action_probability", -0.1),
                                         ("repeat_action_probability", float("nan"))])
def test_atari_options_refuse_values_no_backend_runs(field: str, value: object) -> None:
    """envpool segfaulted on noop_max = -1 and frame_stack = 0 (the training process died with no message,
    leaving a half-made run folder) and froze the game on frame_skip = 0; gymnasium ran noop_max = -1 as 0 and
    truncated every step at max_episode_steps = 0; sticky probabilities outside [0, 1] were accepted."""
    with pytest.raises(ValueError, match=field):
        AtariOptions(**{field: value})  # type: ignore[arg-type]
    AtariOptions(noop_max=0, repeat_action_probability=1.0, frame_skip=1, frame_stack=1)  # the edges are valid


def test_cli_refuses_bad_atari_options_before_making_a_run_folder(tmp_path: Path) -> None:
    from scalable.cli import main

    run = tmp_path / "run"
    rc = main(["train", "ppo", "--env", ATARI_GAME, "--steps", "256", "--seed", "1", "--run-dir", str(run),
               "--set", "atari={'noop_max': -1}"])
    assert rc == 2 and not run.exists()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_out_of_range_discrete_actions_raise_on_both_backends(backend: str) -> None:
    """envpool played -1, 4 and 100 in Breakout as NOOP and gymnasium played -1 as the last action (Python
    indexing): the backends disagreed silently. Both now refuse actions outside 0..n-1, fractional ones and a
    batch of the wrong shape; whole-number floats and valid integers step."""
    envs = make_vec_env("CartPole-v1", 2, backend=backend)  # type: ignore[arg-type]
    envs.reset(seed=0)
    for bad in (np.array([0, 2]), np.array([-1, 0]), np.array([0.5, 1.0]), np.array([0, 1, 1]),
                np.array([[0], [1]]), np.array([np.nan, 0.0])):
        with pytest.raises(ValueError, match="action"):
            envs.step(bad)
    envs.step(np.array([0, 1]))
    envs.step(np.array([1.0, 0.0]))
    envs.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_continuous_actions_of_the_wrong_shape_or_not_finite_raise_on_both_backends(backend: str) -> None:
    """Accepted before 2026-12-07: a NaN action (NaN reward, MuJoCo reset its physics mid-episode, NaN episode
    return), shape (B, 1) broadcast to every action dimension, extra rows dropped, and too few rows aborted the
    process on envpool (SIGABRT, no exception). Valid batches (float32 or float64, out-of-bounds clipped) step,
    and clipping keeps the actions' float32 dtype on gymnasium (the env computes its control cost from it)."""
    envs = make_vec_env("Pendulum-v1" if backend == "gymnasium" else "HalfCheetah-v5", 2,
                        backend=backend)  # type: ignore[arg-type]
    envs.reset(seed=0)
    shape = envs.single_action_space.shape
    assert shape is not None
    n = int(np.prod(shape))
    for bad in (np.zeros((2, 1)) if n > 1 else np.zeros((2, 2)), np.zeros((1, n)), np.zeros((3, n)), np.zeros(2 * n),
                np.array([[np.nan] * n, [0.0] * n]), np.array([[np.inf] * n, [0.0] * n]),
                np.array([["a"] * n, ["b"] * n])):
        with pytest.raises(ValueError, match="action"):
            envs.step(bad)
    envs.step(np.zeros((2, n), dtype=np.float32))
    envs.step(np.full((2, n), 5.0))
    envs.close()


def test_box_action_check_clips_in_the_space_dtype() -> None:
    import gymnasium as gym

    from scalable.envs.vector import box_action_check

    check = box_action_check(gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32), 2)
    assert check is not None
    out = check(np.array([[2.0, -3.0, 0.5], [0.25, 1.0, -1.0]], dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.0, -1.0, 0.5], [0.25, 1.0, -1.0]])
    assert box_action_check(gym.spaces.Discrete(3), 2) is None


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_reset_with_a_seed_twice_restarts_the_same_episodes(backend: str) -> None:
    """reset(seed) restarts the same episodes however often it is called: envpool seeds at construction, and
    a second reset(7) without a step in between reused the pool and drew the next start states."""
    envs = make_vec_env("CartPole-v1", 3, backend=backend)  # type: ignore[arg-type]
    first = envs.reset(seed=7).copy()
    second = envs.reset(seed=7).copy()
    np.testing.assert_array_equal(first, second)
    fresh = make_vec_env("CartPole-v1", 3, backend=backend)  # type: ignore[arg-type]
    np.testing.assert_array_equal(fresh.reset(seed=7), first)
    acts = np.array([0, 1, 0])
    np.testing.assert_array_equal(envs.step(acts).obs, fresh.step(acts).obs)
    envs.close()
    fresh.close()


def test_mujoco_time_limit_given_twice_is_refused() -> None:
    """make_vec_env(max_episode_steps=10, mujoco=MujocoOptions()) ran with MuJoCo's 1000-step limit: the keyword
    was dropped silently when options were passed too (Atari already refused the same conflict)."""
    from scalable.envs import MujocoOptions

    with pytest.raises(ValueError, match="once"):
        make_vec_env("Hopper-v5", 1, backend="gymnasium", mujoco=MujocoOptions(), max_episode_steps=10)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="max_episode_steps"):
            make_vec_env("CartPole-v1", 1, backend="gymnasium", max_episode_steps=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_episode_steps"):
            MujocoOptions(max_episode_steps=bad)  # type: ignore[arg-type]


def _area_average(img: NDArray[np.uint8], size: int) -> NDArray[np.float64]:
    """Exact area average (each output cell the mean of the source area it covers, partial pixels weighted by
    their overlap): W_h @ img @ W_w^T with overlap-weight matrices, in float64."""
    def weights(n_in: int, n_out: int) -> NDArray[np.float64]:
        s = n_in / n_out
        m = np.zeros((n_out, n_in))
        for o in range(n_out):
            lo, hi = o * s, (o + 1) * s
            for i in range(int(np.floor(lo)), int(np.ceil(hi))):
                m[o, i] = max(0.0, min(hi, i + 1) - max(lo, i)) / s
        return m
    return weights(img.shape[0], size) @ img.astype(np.float64) @ weights(img.shape[1], size).T


def test_atari_resize_is_the_area_average() -> None:
    """PG-44's downscale to 84x84 is an area average: every pixel within 0.5 gray level (the rounding to uint8)
    of the exact one, plus OpenCV's float32 sum at these non-integer scales: an output cell covers at most 4 x 3
    source pixels (210 / 84 = 2.5, 160 / 84 = 1.9), so 12 products and 12 additions of terms <= 255, each off
    by at most u = 2^-24 relative: 2 * 12 * 255 u (measured: 0.5 + 3e-12 over 600 frames and 200 noise frames).
    PIL's BOX filter, used until 2026-12-07, was 42 levels off on this frame (whole source pixels in or out)."""
    import ale_py

    from scalable.envs.atari import AtariPreprocess

    gym.register_envs(ale_py)
    raw = gym.make("ALE/Breakout-v5", frameskip=1, obs_type="grayscale", repeat_action_probability=0.0)
    frame, _ = raw.reset(seed=7)
    for _ in range(40):
        frame, *_ = raw.step(1)
    env = AtariPreprocess(raw, noop_max=0, frame_skip=4, screen_size=84)
    ours = env._resize(frame)
    exact = _area_average(frame, 84)
    assert ours.dtype == np.uint8 and ours.shape == (84, 84)
    assert np.max(np.abs(ours - exact)) <= 0.5 + 2 * 12 * 255 * 2.0**-24
    raw.close()


def test_atari_frames_equal_across_backends() -> None:
    """Same game, same start (one no-op frame, no FIRE, no sticky actions), same actions: the gymnasium
    stack's frames equal envpool's bit for bit (both the max over two frames and INTER_AREA). Before
    2026-12-07 11 % of the pixels differed, by up to 51 gray levels."""
    if not envpool_has("Breakout-v5"):
        pytest.skip("envpool lacks Breakout-v5")
    opts = AtariOptions(noop_max=1, fire_reset=False, episodic_life=False, clip_rewards=False,
                        repeat_action_probability=0.0)
    ep = make_vec_env("ALE/Breakout-v5", 1, backend="envpool", atari=opts)
    gy = make_vec_env("ALE/Breakout-v5", 1, backend="gymnasium", atari=opts)
    try:
        assert np.array_equal(ep.reset(seed=1), gy.reset(seed=1))
        rng = np.random.default_rng(0)
        for _ in range(200):
            a = rng.integers(0, 4, 1)
            se, sg = ep.step(a), gy.step(a)
            assert np.array_equal(se.obs, sg.obs)
            assert np.array_equal(se.reward, sg.reward)
            if se.terminated[0] or se.truncated[0]:
                break
    finally:
        ep.close()
        gy.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_atari_frame_stack_shifts_and_restarts_at_every_episode_end(backend: str) -> None:
    """The frame stack's invariants over lost lives (episodic life), game overs and time-limit truncations of 3
    envs (several ending on the same step): on a step that does not end the episode, the new stack is the old one
    shifted by one frame; on an ending step, ``final_obs`` is that shifted stack (the true last observation).
    After a game over or a truncation the new stack restarts from one frame repeated 4 times on both backends
    (no frame of the previous game leaks in); after a lost life it does so on gymnasium, while envpool keeps the
    lost life's last three frames (the documented difference, docs/scalable.md). A mutant keeping the previous
    episode's frames after a gymnasium autoreset passed every Atari test before 2026-12-07."""
    if backend == "envpool" and not envpool_has("Breakout-v5"):
        pytest.skip("envpool lacks Breakout-v5")
    ends = {"life": 0, "game over": 0, "truncated": 0}
    for limit, steps in ((120, 250), (27000, 520)):  # truncations on both backends; then game overs
        opts = AtariOptions(noop_max=1, fire_reset=True, episodic_life=True, repeat_action_probability=0.0,
                            max_episode_steps=limit)
        envs = make_vec_env("ALE/Breakout-v5", 3, backend=backend, atari=opts)  # type: ignore[arg-type]
        rng = np.random.default_rng(0)
        obs = envs.reset(seed=3)
        try:
            for _ in range(steps):
                s = envs.step(rng.integers(0, 4, 3))
                for b in range(3):
                    done = bool(s.terminated[b] or s.truncated[b])
                    last = s.final_obs[b] if done else s.obs[b]
                    np.testing.assert_array_equal(last[:3], obs[b][1:])
                    if not done:
                        continue
                    assert not np.array_equal(s.obs[b], s.final_obs[b])
                    kind = "truncated" if s.truncated[b] else "game over" if s.info.done_mask[b] else "life"
                    ends[kind] += 1
                    if kind == "life" and backend == "envpool":
                        np.testing.assert_array_equal(s.obs[b][:3], s.final_obs[b][1:])
                    else:
                        assert all(np.array_equal(s.obs[b][i], s.obs[b][0]) for i in range(1, 4)), (kind, b)
                obs = s.obs.copy()
        finally:
            envs.close()
    assert ends["life"] >= 3 and ends["game over"] >= 1 and ends["truncated"] >= 1, ends


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
@pytest.mark.parametrize("fire_reset", [False, True])
def test_atari_time_limit_counts_agent_steps(backend: str, fire_reset: bool) -> None:
    """max_episode_steps = L truncates the game at exactly L agent steps on both backends, with episodic
    life and fire reset (whose own steps are not agent steps), across lost lives. Until 2026-12-07 the
    gymnasium backend used ALE's frame limit, L * frame_skip frames, which also counted the no-op starts and
    the wrappers' steps: Breakout with L = 50 was cut at 42 - 49."""
    if backend == "envpool" and not envpool_has("Breakout-v5"):
        pytest.skip("envpool lacks Breakout-v5")
    limit = 50
    opts = AtariOptions(max_episode_steps=limit, fire_reset=fire_reset, repeat_action_probability=0.0)
    envs = make_vec_env("ALE/Breakout-v5", 2, backend=backend, atari=opts)  # type: ignore[arg-type]
    try:
        envs.reset(seed=3)
        rng = np.random.default_rng(4)
        steps = np.zeros(2, dtype=np.int64)
        ends: list[int] = []
        while len(ends) < 4:
            s = envs.step(rng.integers(0, 4, 2))
            steps += 1
            for b in np.flatnonzero(s.info.done_mask):
                assert s.truncated[b]  # a random policy does not lose 5 lives in 50 steps
                ends.append(int(steps[b]))
                steps[b] = 0
        assert ends == [limit] * 4
    finally:
        envs.close()


def test_noop_max_zero_runs_on_gymnasium_not_envpool() -> None:
    """noop_max = 0 crashes envpool 1.2's reset (segfault, the process dies): "auto" resolves to gymnasium,
    an explicit envpool is refused before envpool is called."""
    from scalable.envs import resolve_backend
    from scalable.envs.atari import envpool_kwargs, resolved_options

    opts = AtariOptions(noop_max=0)
    assert resolve_backend("ALE/Breakout-v5", "auto", 8, atari=opts) == "gymnasium"
    with pytest.raises(ValueError, match="noop_max=0"):
        resolve_backend("ALE/Breakout-v5", "envpool", 8, atari=opts)
    with pytest.raises(ValueError, match="noop_max=0"):
        envpool_kwargs(resolved_options(opts, "ALE/Breakout-v5"))
    from scalable.agents import common, ppo

    cfg = ppo.atari_config("ALE/Breakout-v5", backend="envpool", atari=opts)
    with pytest.raises(common.ConfigError, match="noop_max=0"):
        common.check_run_config(cfg)  # before a run folder exists
    envs = make_vec_env("ALE/Breakout-v5", 2, atari=dataclasses.replace(opts, repeat_action_probability=0.0,
                                                                        fire_reset=False))
    try:
        o = envs.reset(seed=0)
        assert np.array_equal(o[0], o[1])  # no random no-ops: both games start alike
    finally:
        envs.close()


def test_backend_auto_and_errors() -> None:
    from scalable.envs import resolve_backend

    assert resolve_backend("ScalableTestConstant-v0") == "gymnasium"
    with pytest.raises(ValueError, match="envpool"):
        resolve_backend("ScalableTestConstant-v0", "envpool")
    # auto: envpool for Atari at any count, for MuJoCo only from ENVPOOL_MIN_ENVS envs (its per-call
    # overhead makes one cheap simulator slower than gymnasium in-process; numbers in make.py)
    from scalable.envs import ENVPOOL_MIN_ENVS

    if envpool_has("HalfCheetah-v5"):
        assert resolve_backend("HalfCheetah-v5") == "gymnasium"
        assert resolve_backend("HalfCheetah-v5", "auto", ENVPOOL_MIN_ENVS - 1) == "gymnasium"
        assert resolve_backend("HalfCheetah-v5", "auto", ENVPOOL_MIN_ENVS) == "envpool"
        assert resolve_backend("HalfCheetah-v5", "envpool", 1) == "envpool"
    if envpool_has("Breakout-v5"):
        assert resolve_backend("ALE/Breakout-v5") == "envpool"
        assert resolve_backend("ALE/Breakout-v5", "auto", 1) == "envpool"
    assert resolve_backend("ALE/Breakout-v5", "gymnasium", 16) == "gymnasium"
    with pytest.raises(ValueError, match="backend must be"):
        resolve_backend("CartPole-v1", "pool")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_mujoco_step_and_time_limit(backend: str) -> None:
    if backend == "envpool" and not envpool_has("HalfCheetah-v5"):
        pytest.skip("envpool lacks HalfCheetah-v5")
    envs = make_vec_env("HalfCheetah-v5", 2, backend=backend, max_episode_steps=10)  # type: ignore[arg-type]
    obs = envs.reset(seed=0)
    assert obs.shape == (2, 17) and obs.dtype == np.float32
    steps = [envs.step(np.full((2, 6), 2.0, np.float32)) for _ in range(10)]  # clipped to the bounds [-1, 1]
    s = steps[-1]
    assert not any(x.truncated.any() for x in steps[:-1])
    assert s.truncated.all() and not s.terminated.any()
    assert not np.array_equal(s.final_obs, s.obs)
    assert [n for _, n in completed_episodes(s.info)] == [10, 10]
    envs.close()


def test_single_gym_env_fast_path_equals_sync_vector_env() -> None:
    """One synchronous gymnasium env is stepped directly; obs, rewards, flags, final obs and episode
    statistics equal those of the SyncVectorEnv path (same-step autoreset) across truncations."""
    from scalable.envs.gym_backend import GymVecEnv

    def make() -> gym.Env[Any, Any]:
        return gym.wrappers.RecordEpisodeStatistics(gym.make("Pendulum-v1", max_episode_steps=7))

    fast, slow = GymVecEnv([make]), GymVecEnv([make])
    slow._single = None  # force the vector-env path
    assert fast._single is not None
    o1, o2 = fast.reset(seed=5), slow.reset(seed=5)
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(30):
        a = rng.uniform(-3, 3, size=(1, 1)).astype(np.float32)
        s1, s2 = fast.step(a), slow.step(a)
        for x, y in zip(s1[:5], s2[:5], strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        assert completed_episodes(s1.info) == completed_episodes(s2.info)
        ends += int(s1.truncated[0])
    assert ends == 4
    fast.close()
    slow.close()


def test_envpool_default_threads_one_per_core_at_most_one_per_env() -> None:
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    assert default_num_threads(1) == 1
    assert default_num_threads(64) == min(64, cores)
    assert all(1 <= default_num_threads(n) <= n for n in (1, 2, 3, 8))
    if envpool_has("CartPole-v1"):
        envs = make_vec_env("CartPole-v1", 3, backend="envpool")
        try:
            assert envs._kwargs["num_threads"] == min(3, cores)  # type: ignore[attr-defined]
            explicit = make_vec_env("CartPole-v1", 3, backend="envpool", num_threads=1)
            assert explicit._kwargs["num_threads"] == 1  # type: ignore[attr-defined]
            explicit.close()
        finally:
            envs.close()


def test_async_envs_equal_sync_and_survive_a_sigint_to_their_workers() -> None:
    """``asynchronous=True`` (one worker process per env, ``async_envs`` in the configs) steps the same
    trajectories as the synchronous vector env; its workers ignore SIGINT, so a Ctrl-C sent to the process
    group reaches only the training loop (which checkpoints and closes them), not the workers mid-step."""
    import os
    import signal
    import time

    before = signal.getsignal(signal.SIGINT)
    sync = make_vec_env("CartPole-v1", 2, backend="gymnasium")
    asyn = make_vec_env("CartPole-v1", 2, backend="gymnasium", asynchronous=True)
    try:
        assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C still reaches this (the training) process
        o_s, o_a = sync.reset(seed=3), asyn.reset(seed=3)
        assert np.array_equal(o_s, o_a)
        for proc in asyn._env.processes:  # type: ignore[attr-defined]
            os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.5)  # let the signal land before the next command
        rng = np.random.default_rng(0)
        ends = 0
        for _ in range(60):
            a = rng.integers(0, 2, size=2)
            s, r = sync.step(a), asyn.step(a)
            assert np.array_equal(s[0], r[0]) and np.array_equal(s[1], r[1])
            assert np.array_equal(s[2], r[2]) and np.array_equal(s[3], r[3]) and np.array_equal(s[4], r[4])
            ends += int(np.sum(s[2] | s[3]))
        assert ends > 0  # the comparison crossed episode ends (same-step autoreset on both)
        assert all(p.is_alive() for p in asyn._env.processes)  # type: ignore[attr-defined]
    finally:
        sync.close()
        asyn.close()


def _info(done: list[bool], returns: list[float]) -> EpisodeInfo:
    return EpisodeInfo(np.array(done), np.array(returns, np.float64), np.ones(len(done), np.int64))


def test_episode_quota_has_no_completion_order_bias() -> None:
    """Env 0 ends an episode (return 0) every step, env 1 one (return 10) every 5th step. The first 4 to
    finish would be four 0s (mean 0); the quota keeps two of each env (mean 5, the policy's mean over the
    two start states), ignores env 0's surplus episodes, and is done only when env 1 has its two."""
    quota = EpisodeQuota(4, 2)
    assert quota.targets == [2, 2]
    finished_first: list[float] = []
    for t in range(1, 11):
        info = _info([True, t % 5 == 0], [0.0, 10.0])
        finished_first += [r for r, _ in completed_episodes(info)]
        assert not quota.done
        quota.add(info)
    assert quota.done
    assert finished_first[:4] == [0.0, 0.0, 0.0, 0.0]
    assert quota.returns == [0.0, 0.0, 10.0, 10.0] and quota.lengths == [1, 1, 1, 1]


@given(st.integers(1, 60), st.integers(1, 8))
def test_episode_quota_targets_split_the_episodes_evenly(episodes: int, num_envs: int) -> None:
    targets = EpisodeQuota(episodes, num_envs).targets
    assert len(targets) == num_envs and sum(targets) == episodes
    assert max(targets) - min(targets) <= 1 and targets == sorted(targets)


def test_episode_quota_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EpisodeQuota(0, 2)
    with pytest.raises(ValueError, match="num_envs"):
        EpisodeQuota(3, 0)
    with pytest.raises(ValueError, match="3 envs"):
        EpisodeQuota(4, 2).add(_info([True, False, True], [1.0, 2.0, 3.0]))
