"""Atari preprocessing as the text describes (PG-42..PG-46) plus the standard choices, each an option.

Spec: PG-43 (repeat each action for 4 frames), PG-44 (de-flicker by a max over the last two frames,
grayscale, downscale to 84x84, stack 4 frames), PG-46 (the network sees 4x84x84). The standard extras
(Mnih et al. 2015; Machado et al. 2018) are named switches of :class:`AtariOptions`:

* ``noop_max`` - up to this many no-op actions after a reset (0 disables; gymnasium backend only: envpool
  1.2 crashes in its reset with 0, so ``backend="auto"`` picks gymnasium then and ``"envpool"`` is refused);
* ``fire_reset`` - press FIRE after a reset in games that need it to start;
* ``episodic_life`` - a lost life ends the *training* episode (``terminated``) without resetting the
  game; **training only** (:meth:`AtariOptions.for_eval` turns it off);
* ``clip_rewards`` - training reward ``sign(r)``; **training only**. Episode returns are always reported on
  the raw game score (the vector env records them below these wrappers);
* ``repeat_action_probability`` - sticky actions; ``None`` (default) is the id's own protocol: 0.25 for
  ``ALE/<Game>-v5`` (Machado et al. 2018), 0 for ``<Game>NoFrameskip-v4`` (the DQN / A3C one);
* ``max_episode_steps`` - time limit in agent steps of a whole game (27000 = 108000 frames = 30 min at 60
  fps), a *truncation*. Counted as envpool counts it on both backends: the agent's own steps since the game's
  reset; the no-op starts, the FIRE of the fire reset and the no-op after a lost life are not agent steps.

The gymnasium backend builds the stack below; envpool has the same options built in and
:func:`envpool_kwargs` maps the names. Observations: uint8 [4, 84, 84] on both backends.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, SupportsFloat, cast

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AgentStepCount",
    "AgentStepLimit",
    "AtariOptions",
    "AtariPreprocess",
    "ClipReward",
    "EpisodicLife",
    "FireReset",
    "GameStatistics",
    "check_envpool_options",
    "envpool_atari_id",
    "envpool_kwargs",
    "is_atari",
    "make_gym_atari",
    "resolved_options",
    "sticky_probability",
]

Obs = NDArray[np.uint8]


@dataclass(frozen=True)
class AtariOptions:
    """Atari preprocessing switches; defaults are the usual training setting (see module docstring)."""

    frame_skip: int = 4  # PG-43: repeat each action for 4 frames, max over the last two (PG-44)
    screen_size: int = 84  # PG-44 / PG-46
    grayscale: bool = True  # PG-44
    frame_stack: int = 4  # PG-44
    noop_max: int = 30
    fire_reset: bool = True
    episodic_life: bool = True  # training only
    clip_rewards: bool = True  # training only
    repeat_action_probability: float | None = None  # None: the id's protocol (sticky_probability)
    max_episode_steps: int = 27_000

    def __post_init__(self) -> None:
        """ValueError for values no backend runs correctly: envpool segfaults on ``noop_max=-1`` or
        ``frame_stack=0`` and freezes the game on ``frame_skip=0``; gymnasium ran ``noop_max=-1`` as 0 and truncated
        every step with ``max_episode_steps=0``. (Types are checked with the run's config,
        :func:`scalable.agents.common.check_field_types`: a ConfigError naming ``atari.<field>``.)"""
        for name, low in (("frame_skip", 1), ("screen_size", 1), ("frame_stack", 1), ("noop_max", 0),
                          ("max_episode_steps", 1)):
            v = getattr(self, name)
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v < low:
                raise ValueError(f"AtariOptions.{name} must be >= {low}, got {v!r}")
        p = self.repeat_action_probability
        if isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool) and not 0.0 <= p <= 1.0:
            raise ValueError(f"AtariOptions.repeat_action_probability must be None or a probability in [0, 1], "
                             f"got {p!r}")

    def for_eval(self) -> AtariOptions:
        """The evaluation setting: full games, raw rewards."""
        return dataclasses.replace(self, episodic_life=False, clip_rewards=False)


def sticky_probability(opts: AtariOptions, env_id: str) -> float:
    """``opts.repeat_action_probability``, or where it is ``None`` the protocol the id names: 0 for a
    ``NoFrameskip-v4`` id (no sticky actions, as gymnasium / ale-py register it), 0.25 otherwise (v5)."""
    if opts.repeat_action_probability is not None:
        return float(opts.repeat_action_probability)
    return 0.0 if env_id.endswith("NoFrameskip-v4") else 0.25


def resolved_options(opts: AtariOptions, env_id: str) -> AtariOptions:
    """``opts`` with ``repeat_action_probability`` made explicit for ``env_id`` (what a run records)."""
    return dataclasses.replace(opts, repeat_action_probability=sticky_probability(opts, env_id))


def is_atari(env_id: str) -> bool:
    """True for ``ALE/<Game>-v5`` ids (and bare ``<Game>NoFrameskip-v4`` style ids)."""
    return env_id.startswith("ALE/") or "NoFrameskip" in env_id


def envpool_atari_id(env_id: str) -> str:
    """``ALE/Breakout-v5`` -> ``Breakout-v5`` (envpool's name for the same game)."""
    name = env_id.removeprefix("ALE/")
    name = name.replace("NoFrameskip-v4", "-v5")
    return name


def check_envpool_options(opts: AtariOptions) -> None:
    """ValueError for options envpool cannot run: ``noop_max=0`` (envpool 1.2's reset segfaults with it; the
    process dies with no error)."""
    if opts.noop_max == 0:
        raise ValueError("noop_max=0 is not supported by envpool (its reset crashes); use backend='gymnasium'")


def envpool_kwargs(opts: AtariOptions) -> dict[str, Any]:
    """The same named options in envpool's vocabulary (envpool implements them in C++). ``opts`` must be
    resolved for its id (:func:`resolved_options`): the sticky-action default depends on the id."""
    if opts.repeat_action_probability is None:
        raise ValueError("envpool_kwargs needs resolved options: call resolved_options(opts, env_id) first")
    check_envpool_options(opts)
    return {
        "frame_skip": opts.frame_skip,
        "img_height": opts.screen_size,
        "img_width": opts.screen_size,
        "gray_scale": opts.grayscale,
        "stack_num": opts.frame_stack,
        "noop_max": opts.noop_max,
        "use_fire_reset": opts.fire_reset,
        "episodic_life": opts.episodic_life,
        "reward_clip": opts.clip_rewards,
        "repeat_action_probability": opts.repeat_action_probability,
        "max_episode_steps": opts.max_episode_steps,
    }


class EpisodicLife(gym.Wrapper[Obs, int, Obs, int]):
    """A lost life sets ``terminated``; reset() then only takes a no-op step unless the game is over.

    Training only (Mnih et al. 2015). The underlying game, and its raw episode statistics, run on.
    """

    def __init__(self, env: gym.Env[Obs, int]) -> None:
        super().__init__(env)
        self._lives = 0
        self._game_over = True

    def _ale_lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())  # type: ignore[attr-defined]

    def step(self, action: int) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = terminated or truncated
        lives = self._ale_lives()
        if 0 < lives < self._lives:
            terminated = True
        self._lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        if self._game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:  # the no-op itself ended the game
                obs, info = self.env.reset(options=options)
        self._game_over = False
        self._lives = self._ale_lives()
        return obs, info


class FireReset(gym.Wrapper[Obs, int, Obs, int]):
    """Press FIRE (then action 2) after every reset, for games that wait for it (Mnih et al. 2015)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        for action in (1, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return obs, info


class ClipReward(gym.RewardWrapper[Obs, int]):
    """Training reward sign(r) in {-1, 0, 1}; training only."""

    def reward(self, reward: SupportsFloat) -> float:
        return float(np.sign(float(reward)))


class _AgentClock:
    """The agent steps of the current game, shared by :class:`AgentStepCount` and :class:`AgentStepLimit`."""

    def __init__(self) -> None:
        self.steps = 0


class AgentStepCount(gym.Wrapper[Obs, int, Obs, int]):
    """Counts the agent's steps: the outermost wrapper below the frame stack, so that the steps the reset
    wrappers take themselves (FIRE, the no-op after a lost life) are not counted."""

    def __init__(self, env: gym.Env[Obs, int], clock: _AgentClock) -> None:
        super().__init__(env)
        self._clock = clock

    def step(self, action: int) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        self._clock.steps += 1
        return self.env.step(action)


class AgentStepLimit(gym.Wrapper[Obs, int, Obs, int]):
    """Truncates the game at ``limit`` agent steps (counted by :class:`AgentStepCount`); restarts the count
    when the game itself is reset. Sits right above the emulator, below the episode statistics and the
    episodic-life wrapper, so that both see the truncation as the end of the game (envpool's rule)."""

    def __init__(self, env: gym.Env[Obs, int], clock: _AgentClock, limit: int) -> None:
        super().__init__(env)
        self._clock = clock
        self._limit = int(limit)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        self._clock.steps = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: int) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated or self._clock.steps >= self._limit, info


class GameStatistics(gym.Wrapper[Obs, int, Obs, int]):
    """Reports each finished game as gymnasium's RecordEpisodeStatistics does (``info["episode"]`` with ``r``,
    ``l``, ``t``), with ``r`` the raw score of every step of the game (the reset wrappers' FIRE and no-op steps
    included: they are part of the game) and ``l`` the game's length in **agent** steps (the clock of
    :class:`AgentStepCount`), the unit envpool reports. Sits where RecordEpisodeStatistics sat: above the time
    limit, below the episodic-life wrapper, so a game ends at a game over or a truncation only. (Until
    2026-12-07 RecordEpisodeStatistics itself, which also counted the wrapper steps: a Space Invaders game of
    333 agent steps was reported as 341.)"""

    def __init__(self, env: gym.Env[Obs, int], clock: _AgentClock) -> None:
        super().__init__(env)
        self._clock = clock
        self._return = 0.0
        self._start = time.perf_counter()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        self._return = 0.0
        self._start = time.perf_counter()
        return self.env.reset(seed=seed, options=options)

    def step(self, action: int) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        if terminated or truncated:
            info = {**info, "episode": {"r": self._return, "l": self._clock.steps,
                                        "t": round(time.perf_counter() - self._start, 6)}}
        return obs, reward, terminated, truncated, info


class AtariPreprocess(gym.Wrapper[Obs, int, Obs, int]):
    """No-op starts, action repeat with a max over the last two frames, grayscale, resize (PG-43, PG-44).

    Expects an ALE env with ``frameskip=1`` and ``obs_type="grayscale"`` ([210, 160] uint8). The resize
    is OpenCV's area average (``INTER_AREA``), the one envpool uses, so both backends see the same frames
    bit for bit. (Until 2026-12-07 it was PIL's ``BOX`` filter, which is not an area average at these
    non-integer scale factors: up to 42 gray levels off, 11 % of the pixels different from envpool's.)
    Observation: uint8 [screen_size, screen_size].
    """

    def __init__(self, env: gym.Env[Obs, int], *, noop_max: int, frame_skip: int, screen_size: int) -> None:
        super().__init__(env)
        self._noop_max = int(noop_max)
        self._skip = int(frame_skip)
        self._size = int(screen_size)
        self.observation_space = gym.spaces.Box(0, 255, (self._size, self._size), dtype=np.uint8)

    def _resize(self, frame: Obs) -> Obs:
        import cv2

        out = cv2.resize(np.asarray(frame, dtype=np.uint8), (self._size, self._size), interpolation=cv2.INTER_AREA)
        return np.asarray(out, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        noops = int(self.np_random.integers(1, self._noop_max + 1)) if self._noop_max > 0 else 0
        for _ in range(noops):
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return self._resize(obs), info

    def step(self, action: int) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        total = 0.0
        frames: list[Obs] = []
        terminated = truncated = False
        info: dict[str, Any] = {}
        for _ in range(self._skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            frames = [*frames[-1:], obs]
            if terminated or truncated:
                break
        frame = frames[-1] if len(frames) == 1 else np.maximum(frames[-2], frames[-1])  # de-flicker
        return self._resize(frame), total, terminated, truncated, info


def make_gym_atari(env_id: str, opts: AtariOptions, *, render_mode: str | None = None) -> gym.Env[Any, Any]:
    """One preprocessed gymnasium Atari environment (ale-py), raw episode statistics recorded first.

    Stack: ALE (frameskip 1, grayscale, sticky p, no frame limit) -> AtariPreprocess (noop, skip+max,
    resize) -> AgentStepLimit -> GameStatistics (raw score, full games) -> [EpisodicLife] ->
    [FireReset] -> [ClipReward] -> AgentStepCount -> FrameStackObservation. Observation: uint8
    [frame_stack, screen, screen].

    The time limit counts agent steps of the game, as envpool does (until 2026-12-07 it was ALE's frame
    limit, max_episode_steps * frame_skip frames, which also counted the no-op starts and the wrappers'
    own steps: a game was cut up to about 25 agent steps early). Reported lengths are agent steps too (the
    FIRE / action-2 steps of FireReset and the no-op of EpisodicLife are not counted; their rewards are).
    Known difference from the envpool backend: after a lost life this stack continues
    with one no-op step and the fire reset, and the frame stack restarts from the new frame;
    envpool plays 0..``noop_max``-1 single no-op frames and one FIRE frame and keeps the last three frames of
    the lost life in its stack, so the two backends draw each life's start state differently. With the fire
    reset they also start every game differently (envpool: one FIRE frame; here a FIRE agent step and an
    action-2 agent step): see docs/scalable.md.
    """
    import ale_py

    if not opts.grayscale:
        raise ValueError("the gymnasium Atari backend supports grayscale=True only (PG-44)")
    gym.register_envs(ale_py)
    env: gym.Env[Any, Any] = gym.make(
        env_id,
        frameskip=1,
        obs_type="grayscale",
        repeat_action_probability=sticky_probability(opts, env_id),
        max_num_frames_per_episode=0,  # no frame limit: the agent-step limit below is the time limit
        render_mode=render_mode,
    )
    clock = _AgentClock()
    env = AtariPreprocess(env, noop_max=opts.noop_max, frame_skip=opts.frame_skip, screen_size=opts.screen_size)
    env = AgentStepLimit(env, clock, opts.max_episode_steps)
    env = GameStatistics(env, clock)
    if opts.episodic_life:
        env = EpisodicLife(env)
    meanings = cast(Any, env.unwrapped).get_action_meanings()  # ale-py AtariEnv, untyped attribute
    if opts.fire_reset and len(meanings) >= 3 and meanings[1] == "FIRE":
        env = FireReset(env)
    if opts.clip_rewards:
        env = ClipReward(env)
    env = AgentStepCount(env, clock)
    env = gym.wrappers.FrameStackObservation(env, opts.frame_stack)
    return env
