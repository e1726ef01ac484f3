"""Command line: ``python -m scalable train|eval|plot|resume``.

Examples::

    python -m scalable train ppo --env HalfCheetah-v5 --steps 1000000 --seed 1
    python -m scalable train ppo --env Hopper-v5 --steps 1000000 --seed 1 --preset standard
    python -m scalable train a2c --env ALE/Breakout-v5 --steps 10000000 --seed 1 --backend envpool
    python -m scalable train ppo --env CartPole-v1 --steps 100000 --seed 1 --set num_envs=4 num_steps=128
    python -m scalable train ppo --env ALE/Breakout-v5 --steps 10000000 --seed 1 --device cuda
    python -m scalable train ppo --env ALE/Breakout-v5 --steps 10000000 --seed 1 --set precision=bfloat16
    python -m scalable eval runs/ppo-HalfCheetah-v5-s1 --episodes 10 [--video out.gif]
    python -m scalable plot runs/ppo-HalfCheetah-v5-s1 [--out curve.png]
    python -m scalable plot runs/ppo-Hopper-v5-s1 runs/ppo-Hopper-v5-s2 --out hopper.png   # several runs
    python -m scalable resume runs/ppo-HalfCheetah-v5-s1 [--steps 2000000] [--device cuda]

``--preset text`` (default) uses the text's choices (PPO on MuJoCo: tanh-Gaussian head, no advantage
normalisation); ``--preset standard`` the settings of public implementations, the ones benchmarked against
Stable-Baselines3 (:func:`scalable.agents.ppo.mujoco_config`; Atari and CartPole presets are the same
in both). ``--set key=value`` overrides any config field (values parsed as Python literals, e.g.
``max_grad_norm=None`` or ``hidden=(256,256)``; ``true`` / ``false`` / ``none`` in any case too; an unknown
field, a field of train's own flags, or a value of the wrong type is an error before anything is built);
``precision=bfloat16`` runs an Atari network's trunk in bfloat16 mixed precision (:mod:`scalable.nets.atari`;
about 2x faster updates on a CPU with AVX512-BF16).
A run folder holds config.json, metrics.csv, tensorboard/ and checkpoints/ (see :mod:`scalable.runs.logging`).
Evaluation reports episode returns on the raw game score with the evaluation environment setting (Atari: full
games, unclipped rewards).
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from scalable.agents import a2c, common, ppo
from scalable.envs import Backend, EpisodeQuota, make_vec_env
from scalable.envs.atari import AtariOptions, is_atari
from scalable.envs.mujoco import is_mujoco
from scalable.runs.checkpoint import CheckpointError
from scalable.runs.logging import RunDir

__all__ = ["evaluate", "main", "plot"]


_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None, "null": None}


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            value = ast.literal_eval(raw)
            out[key.strip()] = tuple(value) if isinstance(value, list) else value  # hidden=[64,64]
        except (ValueError, SyntaxError):  # true / false / none in any case, else the string itself
            out[key.strip()] = _WORDS.get(raw.strip().lower(), raw)
    return out


FLAG_FIELDS = {"env_id": "--env", "total_steps": "--steps", "seed": "--seed"}
"""Config fields that ``train`` always sets from its own flags: ``--set`` refuses them rather than let one of
the two silently win (``backend`` and ``device`` may come from either, not from both)."""


def _check_override_keys(cls: type[Any], overrides: dict[str, Any], *, prefix: str = "") -> None:
    """Raise ``ConfigError`` naming every ``--set`` key that is not a field of ``cls`` (with the closest
    field names), or that one of ``train``'s flags sets (:data:`FLAG_FIELDS`)."""
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, fields, n=3)
            guess = f" (did you mean {', '.join(prefix + c for c in close)}?)" if close else ""
            hints.append(f"'{prefix}{k}'{guess}")
        raise common.ConfigError(f"--set: unknown {cls.__name__} field(s) {', '.join(hints)}; the fields are: "
                                 f"{', '.join(prefix + f for f in fields)}")
    if not prefix:
        flagged = [k for k in overrides if k in FLAG_FIELDS]
        if flagged:
            raise common.ConfigError("--set: " + ", ".join(f"{k} is set with {FLAG_FIELDS[k]}" for k in flagged))


def make_config(algo: str, env_id: str, steps: int, seed: int, overrides: dict[str, Any], *,
                preset: str = "text") -> Any:
    """The default config of ``algo`` for ``env_id`` (PPO: paper Atari settings for Atari ids,
    observation and reward normalisation for MuJoCo; ``preset="standard"``: :func:`ppo.mujoco_config`
    for MuJoCo ids), with ``overrides`` applied."""
    if preset not in ("text", "standard"):
        raise SystemExit(f"unknown preset {preset!r} (text or standard)")
    base: dict[str, Any] = {"env_id": env_id, "total_steps": steps, "seed": seed}
    if algo not in ("ppo", "a2c"):
        raise SystemExit(f"unknown algorithm {algo!r} (a2c or ppo)")
    if preset == "standard" and not (algo == "ppo" and (is_mujoco(env_id) or is_atari(env_id))):
        # it would build the text preset unchanged: a run labelled with settings it does not use (PPO on
        # Atari has one preset, the public Atari setting, under either name)
        raise common.ConfigError(f"--preset standard is the public PPO setting for MuJoCo (and Atari); it does not "
                                 f"apply to {algo} on {env_id} (leave --preset at text)")
    _check_override_keys(ppo.PPOConfig if algo == "ppo" else a2c.A2CConfig, overrides)
    if "atari" in overrides and isinstance(overrides["atari"], dict):
        _check_override_keys(AtariOptions, overrides["atari"], prefix="atari.")
        try:
            overrides = {**overrides, "atari": AtariOptions(**overrides["atari"])}
        except ValueError as exc:  # before any run folder exists (noop_max=-1 crashed envpool with no message)
            raise common.ConfigError(f"--set atari: {exc}") from None
    if algo == "ppo":
        if is_atari(env_id):
            return ppo.atari_config(env_id, total_steps=steps, seed=seed, **overrides)
        if is_mujoco(env_id) and preset == "standard":
            return ppo.mujoco_config(env_id, total_steps=steps, seed=seed, **overrides)
        if is_mujoco(env_id):
            base |= {"norm_obs": True, "norm_reward": True}
        elif env_id.startswith("CartPole"):
            base |= {"num_envs": 4, "num_steps": 128, "update_epochs": 4, "minibatch_size": 128,
                     "learning_rate": 2.5e-3, "norm_adv": True}
        return ppo.PPOConfig(**(base | overrides))
    if is_mujoco(env_id):  # a2c
        base |= {"norm_obs": True, "norm_reward": True}
    elif env_id.startswith("CartPole"):
        base |= {"num_envs": 8}
    if "ent_coef" in overrides and overrides.get("entropy_bonus") is not True:
        raise common.ConfigError("--set ent_coef weights A3C's entropy bonus, which A2C leaves off by default (open "
                                 "choice 14): add entropy_bonus=True")
    return a2c.A2CConfig(**(base | overrides))


class Interrupted(Exception):
    """Ctrl-C during training: the run folder holds the checkpoint of the last completed update."""


class Diverged(Exception):
    """Training produced non-finite parameters: the run folder holds the last finite update (exit code 1)."""


def _train(algo: str, cfg: Any, run_dir: Path, *, resume: bool) -> common.TrainResult:
    fn = ppo.train if algo == "ppo" else a2c.train
    try:
        result: common.TrainResult = fn(cfg, run_dir=run_dir, resume=resume)
    except KeyboardInterrupt:
        latest = RunDir(run_dir).latest_checkpoint()
        if latest is None:
            raise Interrupted("interrupted before the first update completed; nothing was saved") from None
        raise Interrupted(f"interrupted; last complete update saved in {latest}; continue with: "
                          f"python -m scalable resume {run_dir}") from None
    except common.TrainingDiverged as exc:
        latest = RunDir(run_dir).latest_checkpoint()
        where = (f"last finite update saved in {latest}" if latest is not None
                 else "no update completed, nothing was saved")
        raise Diverged(f"{exc}; {where}") from None
    tail = result.episode_returns[-cfg.return_window:]
    score = (f"mean return of the last {len(tail)} episodes {float(np.mean(tail)):.2f}" if tail
             else "no episode finished yet")
    print(f"{algo}: {result.global_step} steps, {result.updates} updates, {score}, "
          f"{result.steps_per_second:.0f} steps/s; run folder {result.run_dir}")
    return result


def _note_whole_rollouts(cfg: Any) -> None:
    """Say so on stderr when the budget is not a whole number of rollouts (training stops at the last one)."""
    batch = cfg.num_envs * cfg.num_steps
    if cfg.total_steps % batch and cfg.total_steps >= batch:
        print(f"note: {cfg.total_steps} steps is not a multiple of one rollout of num_envs x num_steps = {batch}; "
              f"training stops after {cfg.total_steps // batch * batch} steps", file=sys.stderr)


def _load(path: Path) -> tuple[str, Any, dict[str, Any]]:
    state = common.load_run_checkpoint(path)
    algo = str(state["agent"])
    cls = ppo.PPOConfig if algo == "ppo" else a2c.A2CConfig
    return algo, common.config_from_dict(cls, state["config"]), state


RESUME_FLAGS = ("total_steps", "device")
"""Config fields ``resume`` may change (``--steps``, ``--device``); config.json is rewritten with them."""


def _check_config_json(run_dir: Path, state: dict[str, Any]) -> dict[str, Any]:
    """``resume`` continues the run its checkpoint holds: a config.json edited by hand (other than the
    fields of :data:`RESUME_FLAGS`) would be ignored, so it is an error naming the fields. Returns the
    config.json's values of :data:`RESUME_FLAGS` (empty without a config.json): an earlier ``resume --steps``
    recorded its budget there before its first new checkpoint, and a plain ``resume`` keeps that budget."""
    run = RunDir(run_dir)
    if not run.config_path.is_file():
        return {}
    try:
        saved = run.read_config()
    except (OSError, ValueError) as exc:  # unreadable, not JSON, or not a JSON object
        raise CheckpointError(f"{str(run.config_path)!r} is not a readable config ({exc}); restore it") from exc
    stored = json.loads(json.dumps(state["config"], default=str))  # the checkpoint's, in JSON's types
    diff = sorted(k for k in set(saved) | set(stored) if k not in RESUME_FLAGS and saved.get(k) != stored.get(k))
    if diff:
        shown = ", ".join(f"{k} ({saved.get(k)!r} in config.json, {stored.get(k)!r} in the checkpoint)" for k in diff)
        raise common.ConfigError(f"config.json differs from the checkpoint's config: {shown}. resume continues the "
                                 f"checkpoint's run and takes only --steps and --device; restore config.json, or "
                                 f"start a new run with train --set")
    return {k: saved[k] for k in RESUME_FLAGS if k in saved}


VIDEO_MAX_FRAMES = 3000
"""Frames kept for ``eval --video`` (100 s at 30 frames/s): a greedy Atari policy that never presses FIRE
after a lost life plays until the 27000-step limit, and 27000 RGB frames would hold about 2.7 GB."""


def evaluate(path: str | Path, *, episodes: int = 10, deterministic: bool = True, backend: Backend | None = None,
             video: str | Path | None = None, seed: int = 12345,
             video_max_frames: int = VIDEO_MAX_FRAMES, epsilon: float = 0.0) -> list[float]:
    """Raw episode returns of ``episodes`` episodes of the checkpointed policy (greedy if ``deterministic``).

    Atari runs use ``AtariOptions.for_eval()`` (full games, raw rewards). Up to 8 envs run in lockstep and
    env b contributes exactly its first ``(episodes + b) // B`` episodes (:class:`EpisodeQuota`), not the
    first ``episodes`` to finish, which would favour short episodes. ``epsilon`` (discrete actions only):
    with probability ``epsilon`` per step the action is replaced by a uniformly random one (the Atari
    evaluation protocols' epsilon-greedy, e.g. 0.05 in Mnih et al. 2015, 0.001 in later work; a greedy
    policy that never presses FIRE after a lost life otherwise plays out the 27000-step limit). ``video``:
    write the first ``video_max_frames`` frames of the first episode as a GIF (single env). MuJoCo renders
    off-screen; on a machine without a display and without ``MUJOCO_GL`` set, EGL is selected
    (``MUJOCO_GL=egl``, set in this process), since MuJoCo's default GLFW needs a display.

    Raises ``ConfigError`` for ``episodes < 1``, ``epsilon`` outside [0, 1], or ``epsilon > 0`` on a
    continuous action space.
    """
    if episodes < 1:
        raise common.ConfigError(f"episodes={episodes}: evaluate at least 1 episode")
    if not 0.0 <= epsilon <= 1.0:
        raise common.ConfigError(f"epsilon={epsilon}: a probability, in [0, 1]")
    if not 0 <= seed <= 2**31 - 9:
        raise common.ConfigError(f"seed={seed}: must lie in [0, 2^31 - 9] (env b is seeded with seed + b, b < 8; "
                                 f"envpool's seeds are int32)")
    _, cfg, state = _load(Path(path))
    threads = torch.get_num_threads()
    if cfg.torch_threads is not None:  # as in training (small nets on a shared CPU: one thread); put back after
        torch.set_num_threads(cfg.torch_threads)
    try:
        return _evaluate(cfg, state, episodes=episodes, deterministic=deterministic, backend=backend, video=video,
                         seed=seed, video_max_frames=video_max_frames, epsilon=epsilon)
    finally:
        torch.set_num_threads(threads)


def _evaluate(cfg: Any, state: dict[str, Any], *, episodes: int, deterministic: bool, backend: Backend | None,
              video: str | Path | None, seed: int, video_max_frames: int, epsilon: float) -> list[float]:
    if video is not None and is_mujoco(cfg.env_id) and "MUJOCO_GL" not in os.environ \
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"  # read by gymnasium when it builds the renderer
    n_envs = 1 if video is not None else min(episodes, 8)
    envs = make_vec_env(cfg.env_id, n_envs, backend=backend or cfg.backend, atari=cfg.atari.for_eval(),
                        max_episode_steps=cfg.max_episode_steps,
                        render_mode="rgb_array" if video is not None else None)
    try:
        space = envs.single_action_space
        if epsilon > 0 and not isinstance(space, gym.spaces.Discrete):
            raise common.ConfigError(f"epsilon={epsilon}: epsilon-greedy needs discrete actions, "
                                     f"{cfg.env_id} has {space}")
        model = common.build_actor_critic(cfg.env_id, envs.single_observation_space, space,
                                          head=cfg.head, hidden=tuple(cfg.hidden),
                                          orthogonal_init=cfg.orthogonal_init, atari_arch=cfg.atari_arch,
                                          precision=cfg.precision)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:  # shapes or keys that do not fit the stored config's network
            raise CheckpointError(f"the checkpoint's weights do not fit its config's network: {exc}") from exc
        obs_norm, _ = common.make_normalisers(dataclasses.replace(cfg, norm_reward=False, num_envs=n_envs), envs)
        if obs_norm is not None:
            obs_norm.load_state_dict(state["obs_norm"])
        scale = common.squash_scale(model, space)
        gen = torch.Generator().manual_seed(seed)
        explore = np.random.default_rng(seed)  # epsilon-greedy draws, apart from the policy's own
        obs = envs.reset(seed=seed)
        frames: list[Any] = []
        quota = EpisodeQuota(episodes, n_envs)
        with torch.no_grad():
            while not quota.done:
                if video is not None and not quota.returns and len(frames) < video_max_frames:
                    frames.append(np.asarray(envs.render()[0]))  # type: ignore[attr-defined]
                x = torch.as_tensor(obs) if obs_norm is None else obs_norm(torch.as_tensor(obs).float(),
                                                                             update=False)
                step = model.act(x, generator=gen, deterministic=deterministic)
                action = common.env_action(space, step.action, scale)
                if epsilon > 0:
                    assert isinstance(space, gym.spaces.Discrete)
                    rand = explore.random(n_envs) < epsilon
                    action[rand] = space.start + explore.integers(int(space.n), size=int(rand.sum()))
                out = envs.step(action)
                quota.add(out.info)
                obs = out.obs
    finally:
        envs.close()
    if video is not None and frames:
        import imageio.v2 as imageio

        imageio.mimsave(str(video), frames, duration=1000 / 30, loop=0)  # ms per frame (imageio's pillow plugin)
    return quota.returns


def _curve(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    steps: list[int] = []
    values: list[float] = []
    csv_path = run / "metrics.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{run} is not a run folder (no metrics.csv)")
    with csv_path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["tag"] == tag:
                steps.append(int(row["step"]))
                values.append(float(row["value"]))
    if not steps:
        raise SystemExit(f"no {tag!r} rows in {csv_path}")
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(values)[order]


def _env_of(run: Path) -> str | None:
    """The env_id in a run folder's config.json (None if it cannot be read)."""
    try:
        env = RunDir(run).read_config().get("env_id")
    except (OSError, ValueError):
        return None
    return str(env) if env is not None else None


def plot(run_dir: str | Path | Sequence[str | Path], out: str | Path | None = None, *,
         tag: str = "charts/episodic_return") -> Path:
    """Learning curves (episode return vs environment steps, with a moving average) as a PNG.

    One run: its episodes as dots and their moving mean, written to ``<run>/learning_curve.png`` by
    default. Several runs (e.g. seeds or presets): one moving mean per run, labelled by folder name, and
    their pointwise mean over runs where every run has data; default ``learning_curves.png`` here. Runs of
    different environments get no mean (returns of different games do not average; it was drawn until
    2026-12-07) and their labels name the environment; a note on stderr says so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [Path(run_dir)] if isinstance(run_dir, str | Path) else [Path(r) for r in run_dir]
    if not runs:
        raise SystemExit("plot needs at least one run folder")
    curves = [_curve(r, tag) for r in runs]
    envs = [_env_of(r) for r in runs]
    mixed = len(set(envs)) > 1
    if mixed:
        print(f"note: the runs are of different environments ({', '.join(sorted(set(map(str, envs))))}): "
              f"no mean over runs is drawn", file=sys.stderr)
    fig, ax = plt.subplots(figsize=(7, 4))
    w = max(1, min(20, min(len(v) for _, v in curves) // 5))
    for run, env, (s, v) in zip(runs, envs, curves, strict=True):
        smooth = np.convolve(v, np.ones(w) / w, mode="valid")
        if len(runs) == 1:
            ax.plot(s, v, ".", alpha=0.3, label="episode return")
            ax.plot(s[w - 1:], smooth, "-", label=f"moving mean ({w})")
        else:
            ax.plot(s[w - 1:], smooth, "-", alpha=0.7, label=f"{run.name} ({env})" if mixed else run.name)
    if len(runs) > 1 and not mixed:  # mean over runs of the moving means, on a common grid within every run's range
        lo = max(float(s[w - 1]) for s, _ in curves)
        hi = min(float(s[-1]) for s, _ in curves)
        if hi > lo:
            grid = np.linspace(lo, hi, 200)
            interp = [np.interp(grid, s[w - 1:], np.convolve(v, np.ones(w) / w, mode="valid")) for s, v in curves]
            ax.plot(grid, np.mean(interp, axis=0), "k-", lw=2, label=f"mean of {len(runs)} runs")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"episode return (raw score, moving mean of {w})" if len(runs) > 1 else "episode return (raw score)")
    ax.set_title(runs[0].name if len(runs) == 1 else f"{len(runs)} runs")
    ax.legend(fontsize=8)
    target = Path(out) if out is not None else (runs[0] / "learning_curve.png" if len(runs) == 1
                                                 else Path("learning_curves.png"))
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scalable``."""
    p = argparse.ArgumentParser(prog="python -m scalable", description="Train, evaluate and plot A2C / PPO.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train an agent")
    t.add_argument("algo", choices=["ppo", "a2c"])
    t.add_argument("--env", required=True)
    t.add_argument("--steps", type=int, default=1_000_000)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--backend", choices=["auto", "gymnasium", "envpool"], default=None,
                   help="auto (the default): envpool for Atari, and for other envs from 8 envs up; gymnasium "
                        "otherwise (the run's config records the choice)")
    t.add_argument("--run-dir", type=Path, default=None, help="default runs/<algo>-<env>-s<seed>")
    t.add_argument("--preset", choices=["text", "standard"], default="text",
                   help="text: the text's choices; standard: public implementations' MuJoCo settings (benchmarked)")
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields")
    t.add_argument("--device", default=None,
                   help="cpu (the default; bit-identical resume) or cuda[:i]: network and update; envs stay on the CPU")
    r = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    r.add_argument("run_dir", type=Path)
    r.add_argument("--steps", type=int, default=None,
                   help="new total step budget (an annealed learning rate is rescheduled for it, so it jumps "
                        "to the new schedule's value)")
    r.add_argument("--device", default=None, help="train on this device from now on (default: the run's own)")
    e = sub.add_parser("eval", help="returns over N episodes of a checkpointed policy")
    e.add_argument("path", type=Path, help="run folder (latest checkpoint) or checkpoint file")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the greedy policy")
    e.add_argument("--epsilon", type=float, default=0.0,
                   help="discrete actions: a uniformly random action with this probability per step "
                        "(Atari protocols use 0.05 or 0.001; a greedy policy can stall without it)")
    e.add_argument("--backend", choices=["auto", "gymnasium", "envpool"], default=None)
    e.add_argument("--video", type=Path, default=None, help="write the first episode as a GIF")
    e.add_argument("--seed", type=int, default=12345)
    pl = sub.add_parser("plot", help="learning curves PNG from the metrics.csv of one or more runs")
    pl.add_argument("run_dir", type=Path, nargs="+")
    pl.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        if args.cmd == "train":
            overrides = _overrides(args.set)
            for key in ("backend", "device"):
                if key in overrides and getattr(args, key) is not None:
                    raise common.ConfigError(f"--set {key}={overrides[key]!r} and --{key} {getattr(args, key)}: "
                                             f"give one")
            cfg = make_config(args.algo, args.env, args.steps, args.seed, overrides, preset=args.preset)
            for key in ("backend", "device"):  # else --set's, or the config's default ("auto", "cpu")
                if getattr(args, key) is not None:
                    cfg = dataclasses.replace(cfg, **{key: getattr(args, key)})
            run_dir = args.run_dir or Path("runs") / f"{args.algo}-{args.env.replace('/', '_')}-s{args.seed}"
            common.check_hyperparameters(cfg)  # before the note (num_envs=0 divided by zero there)
            _note_whole_rollouts(cfg)
            _train(args.algo, cfg, run_dir, resume=False)
        elif args.cmd == "resume":
            algo, cfg, state = _load(args.run_dir)
            recorded = _check_config_json(args.run_dir, state)  # a budget / device an earlier resume was given
            steps = args.steps if args.steps is not None else recorded.get("total_steps")
            device = args.device if args.device is not None else recorded.get("device")
            if steps is not None:
                cfg = dataclasses.replace(cfg, total_steps=steps)
            if device is not None:
                cfg = dataclasses.replace(cfg, device=device)
            common.check_field_types(cfg)  # a config.json value of the wrong type
            common.check_hyperparameters(cfg)
            _note_whole_rollouts(cfg)
            _train(algo, cfg, args.run_dir, resume=True)
        elif args.cmd == "eval":
            rets = evaluate(args.path, episodes=args.episodes, deterministic=not args.stochastic,
                            backend=args.backend, video=args.video, seed=args.seed, epsilon=args.epsilon)
            unit = "episode" if len(rets) == 1 else "episodes"
            print(f"returns over {len(rets)} {unit}: mean {np.mean(rets):.2f} std {np.std(rets):.2f} "
                  f"min {np.min(rets):.2f} max {np.max(rets):.2f}")
        elif args.cmd == "plot":
            print(plot(args.run_dir, args.out))
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        return 130  # the shell's code for SIGINT
    except Diverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (CheckpointError, common.ConfigError, FileExistsError, FileNotFoundError,
            gym.error.Error) as exc:  # gymnasium's: an unknown environment id, a missing dependency, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
