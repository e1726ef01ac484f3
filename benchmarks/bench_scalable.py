"""PPO throughput, returns and an Atari learning curve: ``scalable`` against Stable-Baselines3, side by side.

Run by hand from the repository root (not a test); needs the ``scalable`` extra plus ``stable-baselines3``
and ``opencv-python-headless`` (SB3's Atari wrappers), and ``envpool`` for the envpool rows::

    python benchmarks/bench_scalable.py throughput [--mujoco-steps 49152] [--atari-steps 8192] [--reps 3]
    python benchmarks/bench_scalable.py returns --steps 1000000 --seeds 1 2 3 \
        --envs HalfCheetah-v5 Hopper-v5 Walker2d-v5 --jobs 2          # the full benchmark: hours
    python benchmarks/bench_scalable.py atari-curve --steps 200000 [--env BreakoutNoFrameskip-v4]
    python benchmarks/bench_scalable.py profile [--steps 20480] [--env HalfCheetah-v5]

Each subcommand rewrites its own section of ``benchmarks/results/scalable.md`` (``--out``), keeps the raw
numbers in ``benchmarks/results/scalable_<subcommand>.json`` and draws PNG curves next to them. Every
training run is a fresh subprocess (clean imports, its own ``torch.set_num_threads``), and the runs of the
two libraries are interleaved so that machine noise hits both alike.

Identical hyperparameters (``ours_*_config`` / ``sb3_*`` below, checked field by field):

* MuJoCo (CleanRL's / Schulman et al.'s): 1 env x 2048 steps, 10 epochs, minibatch 64, Adam lr 3e-4
  (eps 1e-5) annealed linearly to 0, gamma 0.99, lambda 0.95, clip 0.2 (constant), no value clipping,
  per-minibatch advantage normalisation, global grad-norm clip 0.5, entropy 0, 64-64 tanh actor and critic
  (separate), orthogonal init (sqrt 2 / 0.01 / 1), a *state-independent* diagonal Gaussian with log-std
  initialised to 0 (``head="diag_gaussian"`` on our side; our default is the text's tanh-Gaussian), running
  observation and reward normalisation clipped at 10 (SB3 ``VecNormalize``), truncation bootstrapped.
* Atari: 8 envs x 128 steps, 4 epochs, 4 minibatches (256), Adam lr 2.5e-4 annealed, clip 0.1 (constant),
  entropy 0.01, grad clip 0.5, advantage normalisation, Nature CNN (``atari_arch="nature"``), the
  standard wrappers (no-op 30, frame skip 4 with max-pool, episodic life, fire reset, reward clip,
  84x84 gray, 4-frame stack, no sticky actions, 108k-frame limit), ``BreakoutNoFrameskip-v4``.
* Value-loss scale: our ``value_loss`` is ``0.5 (V - R)^2`` and SB3's is ``(V - R)^2``; we run ours with
  ``vf_coef=0.5`` and SB3 with ``vf_coef=0.25``, the same gradient (CleanRL's effective weight).

Differences that remain (not settable): SB3 anneals the learning rate from ``1 - 2048/N`` (it updates its
progress counter after the first rollout) where ours starts at 1; SB3 normalises advantages with the
unbiased std, ours with the biased one; SB3 stores observations as float32, ours keeps Atari frames uint8;
both resize with OpenCV's ``INTER_AREA`` (ours since 2026-12-07; PIL ``BOX`` before, in the gymnasium rows of
the throughput table of 2026-12-05/06), but SB3's ``AtariWrapper`` asks ALE for RGB screens and converts each
to gray (its ``WarpFrame`` needs RGB) where ours asks ALE for grayscale (same emulation, frames equal on 99.7 %
of steps; about 50 us per agent step, 2 - 3 % of SB3's Atari loop); our optimiser is torch's fused Adam
(``fused=True``), SB3's the default for-loop Adam on the CPU (4 - 10 % of SB3's HalfCheetah loop; SB3 would
take ``optimizer_kwargs={"fused": True}``: an implementation choice, not a hyperparameter); envpool steps its
envs on C++ worker threads where SB3's ``DummyVecEnv`` steps them one after another (the ours-gymnasium rows
are the same-runtime comparison). Budgets: both sides train the same whole rollouts (floor(N / batch)), and
SB3's first Atari reset happens before its clock starts, as ours does (since 2026-12-07). The "108k-frame
limit" is 108 000 ALE frames on SB3's side (no-op starts and reset steps included), 27 000 agent steps on ours.
An audit (2026-11-25) replayed one Walker2d rollout through both libraries: normalised observations agree
to 1.6e-6, normalised rewards exactly, advantages to 1.2e-3 (the truncation rows, where the two normalise
the final observation with statistics one sample apart), and four minibatch updates from SB3's initial
weights give parameters equal to 1.7e-7. What still differs between "seed 1" on the two sides is every
random stream (initial weights, action noise, minibatch order), so single runs are independent samples.
``tests/scalable/test_sb3_crosscheck.py`` checks in CI, against SB3's own code: the normalised observations
and rewards of a Walker2d rollout (VecNormalize), the GAE recursion and truncation-bootstrap rule
(RolloutBuffer, fed our V(final obs), itself checked against SB3's raw terminal observation), and
``PPO.train()`` against ``ppo_update`` (6 full-batch epochs, clipping binding, no advantage normalisation).

CleanRL's published MuJoCo figures (``ppo_continuous_action``) come from a third variant: it treats a time
limit as a termination (no bootstrap), clips the value loss, and gymnasium's single-env ``NormalizeReward``
never resets its return accumulator at a truncation (G_t = gamma (1 - term_t) G_{t-1} + r_t). Both sides here
bootstrap truncations and do not clip.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_OUT = RESULTS / "scalable.md"
ATARI_ENV = "BreakoutNoFrameskip-v4"
MUJOCO_ENV = "HalfCheetah-v5"
CLEANRL_1M = {"HalfCheetah-v5": 1443.0, "Hopper-v5": 2383.0, "Walker2d-v5": 2288.0}
"""CleanRL's published PPO figures at 1M steps (the issue's targets): ``ppo_continuous_action``, means of 3 seeds on
the *v4* tasks (CleanRL's ``benchmark/ppo.sh``); v5 changed Walker2d and Hopper (healthy reward paid only while
healthy; Walker2d's foot friction), so they are a guide, not a like-for-like comparison."""
RETURNS_ENVS: tuple[str, ...] = tuple(CLEANRL_1M)
"""The returns benchmark's environments, in the report's order."""

Lib = Literal["ours", "sb3"]
Kind = Literal["mujoco", "atari"]


@dataclass(frozen=True)
class Spec:
    """One training run, executed in its own subprocess by :func:`run_spec`."""

    lib: Lib
    kind: Kind
    env_id: str
    steps: int
    seed: int = 1
    backend: str = "gymnasium"  # ours only: "gymnasium" | "envpool"
    threads: int = 1
    curve: bool = False  # record (step, raw episode return) pairs
    arch: str = "nature"  # Atari only: "nature" (Nature CNN) or "text" (the text's network, our default)
    device: str = "cpu"  # torch device of the network and the update, both libraries ("cuda" on a GPU machine)
    precision: str = "float32"  # ours, Atari only: "bfloat16" = mixed precision of the CNN trunk (no SB3 twin)

    @property
    def label(self) -> str:
        if self.lib == "sb3":
            return "sb3"
        return f"ours-{self.backend}" + ("-bf16" if self.precision == "bfloat16" else "")


def sb3_text_atari_extractor() -> Any:
    """The text's Atari trunk (PG-46, E-49) as an SB3 features extractor: conv 16 8x8/4 -> conv 32 4x4/2 ->
    FC 256, ReLU after each; with ``net_arch=[]`` SB3 then puts its linear policy and value heads on it,
    the architecture of our ``AtariActorCritic(arch="text")``."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class TextAtariExtractor(BaseFeaturesExtractor):
        def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256) -> None:
            super().__init__(observation_space, features_dim)
            c = observation_space.shape[0]
            self.cnn = nn.Sequential(nn.Conv2d(c, 16, 8, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 4, stride=2),
                                     nn.ReLU(), nn.Flatten())
            with torch.no_grad():
                n = int(self.cnn(torch.zeros(1, *observation_space.shape)).shape[1])
            self.linear = nn.Sequential(nn.Linear(n, features_dim), nn.ReLU())

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.linear(self.cnn(observations))
            return out

    return TextAtariExtractor


# ----------------------------------------------------------------------------- the two configurations
def ours_mujoco_config(env_id: str, steps: int, seed: int, backend: str, threads: int) -> Any:
    """Our standard MuJoCo settings (``scalable.agents.ppo.mujoco_config``, the CLI's ``--preset standard``;
    see the module docstring), fixed here field by field so that a change of the preset shows up."""
    from scalable.agents.ppo import mujoco_config

    cfg = mujoco_config(env_id, total_steps=steps, seed=seed, backend=backend, checkpoint_every=0,
                        torch_threads=threads)
    want = dict(num_envs=1, num_steps=2048, gamma=0.99, gae_lambda=0.95, update_epochs=10, minibatch_size=64,
                learning_rate=3e-4, clip_eps=0.2, vf_coef=0.5, ent_coef=0.0, orthogonal_init=True, adam_eps=1e-5,
                anneal_lr=True, norm_adv=True, max_grad_norm=0.5, clip_vloss=False, norm_obs=True,
                norm_reward=True, target_kl=None, head="diag_gaussian", hidden=(64, 64))
    got = {k: getattr(cfg, k) for k in want}
    if got != want:
        raise RuntimeError(f"mujoco_config no longer matches the SB3 settings: {got} != {want}")
    return cfg


def ours_atari_config(env_id: str, steps: int, seed: int, backend: str, threads: int, arch: str = "nature",
                      precision: str = "float32") -> Any:
    """Our PPOConfig with the standard Atari hyperparameters (see the module docstring); ``precision`` is the
    numeric format of the CNN trunk (float32 as SB3, or our bfloat16 mixed precision)."""
    from scalable.agents.ppo import PPOConfig
    from scalable.envs import AtariOptions

    atari = AtariOptions(frame_skip=4, screen_size=84, grayscale=True, frame_stack=4, noop_max=30, fire_reset=True,
                         episodic_life=True, clip_rewards=True, repeat_action_probability=0.0,
                         max_episode_steps=27_000)
    return PPOConfig(
        env_id=env_id, total_steps=steps, seed=seed, backend=backend,  # type: ignore[arg-type]
        num_envs=8, num_steps=128, gamma=0.99, gae_lambda=0.95, update_epochs=4, minibatch_size=256,
        learning_rate=2.5e-4, clip_eps=0.1, vf_coef=0.5, ent_coef=0.01, orthogonal_init=True, adam_eps=1e-5,
        anneal_lr=True, norm_adv=True, max_grad_norm=0.5, clip_vloss=False, norm_obs=False, norm_reward=False,
        target_kl=None, atari_arch=arch, atari=atari, checkpoint_every=0, torch_threads=threads,  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
    )


def _linear(initial: float) -> Callable[[float], float]:
    def schedule(progress_remaining: float) -> float:
        # floored at 0: SB3 trained one rollout past a budget that is not a multiple of the batch, and that last
        # update ran at a negative rate (gradient ascent) until 2026-12-07; sb3_run now asks for whole rollouts
        return max(0.0, initial * progress_remaining)
    return schedule


def sb3_model(spec: Spec) -> Any:
    """SB3 PPO with the same hyperparameters (vf_coef halved: SB3's value loss has no factor 1/2)."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    from torch import nn

    if spec.kind == "mujoco":
        venv: Any = DummyVecEnv([lambda: Monitor(gym.make(spec.env_id))])
        venv = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=0.99,
                            epsilon=1e-8)
        return PPO("MlpPolicy", venv, learning_rate=_linear(3e-4), n_steps=2048, batch_size=64, n_epochs=10,
                   gamma=0.99, gae_lambda=0.95, clip_range=0.2, clip_range_vf=None, normalize_advantage=True,
                   ent_coef=0.0, vf_coef=0.25, max_grad_norm=0.5, target_kl=None, seed=spec.seed, device="cpu",
                   verbose=0, policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": nn.Tanh,
                                             "ortho_init": True, "log_std_init": 0.0})
    import ale_py
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    venv = make_atari_env(spec.env_id, n_envs=8, seed=spec.seed, vec_env_cls=DummyVecEnv,
                          wrapper_kwargs={"noop_max": 30, "frame_skip": 4, "screen_size": 84,
                                          "terminal_on_life_loss": True, "clip_reward": True,
                                          "action_repeat_probability": 0.0})
    venv = VecFrameStack(venv, n_stack=4)
    atari_kwargs: dict[str, Any] = {"ortho_init": True}
    if spec.arch == "text":
        atari_kwargs.update(features_extractor_class=sb3_text_atari_extractor(),
                            features_extractor_kwargs={"features_dim": 256}, net_arch=[])
    return PPO("CnnPolicy", venv, learning_rate=_linear(2.5e-4), n_steps=128, batch_size=256, n_epochs=4,
               gamma=0.99, gae_lambda=0.95, clip_range=0.1, clip_range_vf=None, normalize_advantage=True,
               ent_coef=0.01, vf_coef=0.25, max_grad_norm=0.5, target_kl=None, seed=spec.seed, device=spec.device,
               verbose=0, policy_kwargs=atari_kwargs)


# ----------------------------------------------------------------------------- one run (in a subprocess)
PARTIAL_EVERY = int(os.environ.get("BENCH_PARTIAL_EVERY", "25"))
"""Long runs (``curve=True``) save a partial state every 25 updates (PPO MuJoCo: 51200 steps) under
:func:`partial_dir`; a run killed with its session continues from there when the command is rerun."""


def partial_dir(spec: Spec) -> Path:
    """Where a long run keeps its partial state: ``$BENCH_PARTIAL_DIR`` or ``results/.partial``, one folder
    per run (library, task, steps, seed, backend, network)."""
    root = Path(os.environ.get("BENCH_PARTIAL_DIR", str(RESULTS / ".partial")))
    return root / "_".join(str(x) for x in (spec.lib, spec.kind, spec.env_id.replace("/", "-"), spec.steps,
                                             spec.seed, spec.backend if spec.lib == "ours" else "", spec.arch)
                           + ((spec.precision,) if spec.precision != "float32" else ()))


def _run_ours(spec: Spec) -> dict[str, Any]:
    """Our PPO. With ``curve`` the run folder is :func:`partial_dir` (checkpoints every PARTIAL_EVERY
    updates) and an existing one is resumed exactly (action replay: the same final parameters as an
    uninterrupted run, scalable's exact resume)."""
    import csv
    import dataclasses
    import shutil

    from scalable.agents.ppo import train

    if spec.kind == "mujoco":
        cfg = ours_mujoco_config(spec.env_id, spec.steps, spec.seed, spec.backend, spec.threads)
    else:
        cfg = ours_atari_config(spec.env_id, spec.steps, spec.seed, spec.backend, spec.threads, spec.arch,
                                spec.precision)
        cfg = dataclasses.replace(cfg, device=spec.device)
    curve: list[tuple[int, float]] = []
    run_dir = partial_dir(spec) if spec.curve else None
    resume = run_dir is not None and any((run_dir / "checkpoints").glob("*.pt"))
    if run_dir is not None:
        cfg = dataclasses.replace(cfg, checkpoint_every=PARTIAL_EVERY)
        if not resume and run_dir.exists():
            shutil.rmtree(run_dir)  # a folder without a checkpoint holds nothing to continue from
    t0 = time.perf_counter()
    res = train(cfg, run_dir=run_dir, resume=resume, progress=False)
    wall = time.perf_counter() - t0
    if run_dir is not None:
        with (run_dir / "metrics.csv").open(newline="") as f:
            curve = [(int(r["step"]), float(r["value"])) for r in csv.DictReader(f)
                     if r["tag"] == "charts/episodic_return"]
    out = {"steps": res.global_step, "loop_sps": res.steps_per_second, "wall_s": wall, "curve": curve,
           "returns": [float(r) for r in res.episode_returns], "resumed": bool(resume)}
    if run_dir is not None:
        shutil.rmtree(run_dir)
    return out


def _run_sb3(spec: Spec) -> dict[str, Any]:
    """SB3's PPO. With ``curve`` its policy + optimiser (``model.save``), VecNormalize statistics, step
    count and episode curve are saved atomically at the start of every PARTIAL_EVERY-th rollout; a
    rerun loads them into a freshly built model (``set_parameters``) and learns the remaining steps
    with ``reset_num_timesteps=False`` (same learning-rate schedule). Not bit-identical to an
    uninterrupted run: the environments restart their episodes and the RNG streams differ."""
    import pickle
    import shutil

    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    pdir = partial_dir(spec) if spec.curve else None
    if pdir is not None and not (pdir / "state.json").exists():
        old = pdir.with_name(pdir.name + ".old")
        if (old / "state.json").exists():  # killed between the two renames of the folder swap
            old.rename(pdir)
    curve: list[tuple[int, float]] = []
    model = sb3_model(spec)
    venv = model.get_env()
    resumed = False
    if pdir is not None and (pdir / "state.json").exists():
        state = json.loads((pdir / "state.json").read_text())
        model.set_parameters(str(pdir / "model.zip"), exact_match=True, device="cpu")
        model.num_timesteps = int(state["num_timesteps"])
        curve = [(int(s), float(r)) for s, r in state["curve"]]
        if isinstance(venv, VecNormalize):
            with (pdir / "vecnormalize.pkl").open("rb") as fh:
                saved = pickle.load(fh)  # our own file (VecNormalize.save below), not foreign input
            venv.obs_rms, venv.ret_rms = saved.obs_rms, saved.ret_rms
        resumed = True

    class Episodes(BaseCallback):
        def _on_rollout_start(self) -> None:
            n = int(self.model.num_timesteps)
            rollout = n // (int(getattr(self.model, "n_steps")) * self.model.n_envs)  # noqa: B009
            if pdir is None or n == 0 or n >= spec.steps or rollout % PARTIAL_EVERY:
                return
            tmp = pdir.with_name(pdir.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.model.save(str(tmp / "model.zip"))
            env = self.model.get_env()
            if isinstance(env, VecNormalize):
                env.save(str(tmp / "vecnormalize.pkl"))
            (tmp / "state.json").write_text(json.dumps({"num_timesteps": n, "curve": curve}))
            old = pdir.with_name(pdir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if pdir.exists():
                pdir.rename(old)
            tmp.rename(pdir)  # the folder swap is the commit point
            shutil.rmtree(old, ignore_errors=True)

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                ep = info.get("episode")
                if ep is not None:
                    curve.append((int(self.num_timesteps), float(ep["r"])))
            return True

    # whole rollouts, as ours (SB3 runs ceil(N / batch) rollouts, ours floor(N / batch): SB3 did one more)
    batch = int(getattr(model, "n_steps")) * model.n_envs  # noqa: B009
    target = spec.steps // batch * batch
    if target == 0:  # SB3 would run 0 steps and the ratio divide by zero
        raise SystemExit(f"{spec.steps} steps is less than one rollout ({batch} steps): give at least {batch}")
    if spec.kind == "atari" and not resumed:
        # The first (seeded) reset of the ALE envs takes ~1 s; ours happens in start_run, before our clock
        # starts, and SB3's inside learn's _setup_learn, after this clock starts (until 2026-12-07, which cost
        # SB3 2 - 3 % of the ratio). Done here, learn's own reset is cheap (0.01 s). Not for MuJoCo, where
        # VecNormalize would count the extra reset's observations in its statistics (and a reset costs ~1 ms).
        venv.reset()
    t0 = time.perf_counter()
    model.learn(total_timesteps=target - int(model.num_timesteps), callback=Episodes(), progress_bar=False,
                reset_num_timesteps=not resumed)
    loop = time.perf_counter() - t0
    model.get_env().close()
    steps = int(model.num_timesteps)
    if pdir is not None:
        shutil.rmtree(pdir, ignore_errors=True)
    return {"steps": steps, "loop_sps": steps / loop, "wall_s": loop, "curve": curve if spec.curve else [],
            "returns": [r for _, r in curve], "resumed": resumed}


def run_spec(spec: Spec) -> dict[str, Any]:
    """Execute one run here (the subprocess side); torch threads set before anything is built."""
    import torch

    torch.set_num_threads(spec.threads)
    out = _run_ours(spec) if spec.lib == "ours" else _run_sb3(spec)
    out["torch_threads"] = torch.get_num_threads()
    return out


def spawn(spec: Spec) -> dict[str, Any]:
    """Run ``spec`` in a fresh Python process; return its result dict (with the spec)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
        proc = subprocess.run([sys.executable, __file__, "_run", json.dumps(asdict(spec)), f.name], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"run {spec} failed:\n{proc.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(Path(f.name).read_text())
    result["spec"] = asdict(spec)
    result["machine"] = machine_id()
    print(f"  {spec.label:16s} {spec.env_id:24s} seed {spec.seed}: {result['steps']} steps, "
          f"{result['loop_sps']:.0f} steps/s", flush=True)
    return result


# ----------------------------------------------------------------------------- report helpers
def machine_id() -> str:
    """Date, CPU model, core count and widest vector extension, recorded with every run: long benchmarks
    span sessions and machines, and a report must say which runs came from where."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name":
                model = val.strip()
            elif key.strip() == "flags":
                flags = set(val.split())
    except OSError:
        pass
    simd = "AVX-512" + (" + BF16" if "avx512_bf16" in flags else "") if "avx512f" in flags else (
        "AVX2" if "avx2" in flags else "no AVX2")
    return f"{time.strftime('%Y-%m-%d')}, {model}, {os.cpu_count()} cores, {simd}"


def machine_note(threads: str, device: str = "cpu") -> str:
    import torch

    where = "CPU only (no GPU), shared with other jobs"
    if device != "cpu":
        gpu = torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else "a GPU"
        where = f"network and update on {gpu} ({device}), both sides"
    elif torch.cuda.is_available():
        where = "network and update on the CPU (a GPU was present, unused)"
    return (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {where}; "
            f"torch {torch.__version__}, torch threads {threads} on both sides; "
            f"Python {platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f}; "
            f"{time.strftime('%Y-%m-%d %H:%M')}.")


def write_section(out: Path, name: str, text: str) -> None:
    """Replace (or append) the ``name`` section of the report, delimited by HTML comments."""
    import fcntl

    out.parent.mkdir(parents=True, exist_ok=True)
    with (Path(tempfile.gettempdir()) / (out.name + ".lock")).open("w") as lock:  # two subcommands may finish at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        _write_section(out, name, text)


def _write_section(out: Path, name: str, text: str) -> None:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    body = out.read_text(encoding="utf-8") if out.exists() else (
        "# scalable vs Stable-Baselines3: PPO benchmarks\n\nGenerated by `python benchmarks/bench_scalable.py "
        "<subcommand>`; see benchmarks/README.md and the script's docstring for the hyperparameters.\n")
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in body and end in body:
        pre, rest = body.split(begin, 1)
        body = pre + block + rest.split(end, 1)[1]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    out.write_text(body, encoding="utf-8")


def save_json(name: str, data: object) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scalable_{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _smooth(curve: Sequence[Sequence[float]], window: int) -> tuple[list[float], list[float]]:
    xs = [float(s) for s, _ in curve]
    ys = [float(r) for _, r in curve]
    sm = [statistics.fmean(ys[max(0, i - window + 1):i + 1]) for i in range(len(ys))]
    return xs, sm


def plot_curves(path: Path, title: str, series: dict[str, list[list[Sequence[float]]]], window: int) -> None:
    """One line per (label, seed): raw episode return against env steps, moving average over ``window``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"ours": "tab:blue", "sb3": "tab:orange"}
    for label, curves in series.items():
        for i, c in enumerate(curves):
            if not c:
                continue
            xs, ys = _smooth(c, window)
            ax.plot(xs, ys, color=colours.get(label.split("-")[0], None), alpha=0.9 if i == 0 else 0.5,
                    label=label if i == 0 else None)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"episode return (raw, moving average of {window})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def last_mean(returns: Sequence[float], n: int = 10) -> float:
    tail = list(returns)[-n:]
    return statistics.fmean(tail) if tail else float("nan")


# ----------------------------------------------------------------------------- subcommands
ARCH_NAME = {"nature": "Nature CNN", "text": "the text's network"}


def cmd_throughput(args: argparse.Namespace) -> None:
    from scalable.envs.envpool_backend import envpool_has

    groups: list[tuple[Kind, str, int, int, str]] = []
    if args.mujoco_steps > 0:
        groups.append(("mujoco", MUJOCO_ENV, args.mujoco_steps, args.threads_mujoco, ""))
    if args.atari_steps > 0:
        groups += [("atari", args.atari_env, args.atari_steps, args.threads_atari, arch) for arch in args.atari_archs]
    rows: list[dict[str, Any]] = []
    if args.report_only:
        groups = []  # rebuild the section from the saved rows
    for kind, env_id, steps, threads, arch in groups:
        task = f"PPO {env_id}" + (f" ({ARCH_NAME[arch]})" if arch else "")
        backends = ["gymnasium"]
        ep_id = env_id if kind == "mujoco" else env_id.replace("NoFrameskip-v4", "-v5").removeprefix("ALE/")
        if envpool_has(ep_id):
            backends.append("envpool")
        dev = args.device if kind == "atari" else "cpu"
        specs = [Spec("ours", kind, env_id, steps, backend=b, threads=threads, arch=arch or "nature", device=dev)
                 for b in backends]
        if kind == "atari":  # mixed precision: on the fastest backend only (the float32 rows show the backends)
            specs += [Spec("ours", kind, env_id, steps, backend=backends[-1], threads=threads, arch=arch, device=dev,
                           precision=pr) for pr in args.precisions if pr != "float32"]
        specs.append(Spec("sb3", kind, env_id, steps, threads=threads, arch=arch or "nature", device=dev))
        print(f"{task}: {steps} steps x {args.reps} reps, torch threads {threads}", flush=True)
        results: dict[str, list[float]] = {s.label: [] for s in specs}
        for _rep in range(args.reps):  # interleaved: ours-gym, ours-envpool, sb3, ours-gym, ...
            for s in specs:
                results[s.label].append(spawn(s)["loop_sps"])
        note = machine_note(str(threads), dev)
        command = (f"python benchmarks/bench_scalable.py throughput --mujoco-steps {args.mujoco_steps} "
                   f"--atari-steps {args.atari_steps} --atari-archs {' '.join(args.atari_archs)} --reps {args.reps}"
                   + (f" --precisions {' '.join(args.precisions)}" if args.atari_steps > 0 else "")
                   + (f" --device {args.device}" if args.device != "cpu" else ""))
        for label, sps in results.items():
            rows.append({"kind": kind, "task": task, "env": env_id, "steps": steps, "threads": threads,
                         "label": label, "sps": sps, "note": note, "command": command})
    done = {f"PPO {g[1]}" + (f" ({ARCH_NAME[g[4]]})" if g[4] else "") for g in groups}
    old = RESULTS / "scalable_throughput.json"
    if old.exists():  # keep the rows of a task not re-run now (e.g. --atari-steps 0)
        rows += [r for r in json.loads(old.read_text()) if r.get("task") is not None and r["task"] not in done]
    save_json("throughput", rows)
    lines = ["## Throughput (env steps per second of the whole training loop)", "",
             "Each run is a fresh process; the time is that of the training loop (ours: "
             "`TrainResult.steps_per_second`, from the first rollout to the end; SB3: `model.learn`), environments "
             "and network already built; no logging, no checkpoints. Runs interleaved (ours-gymnasium, "
             "ours-envpool, ours-envpool-bf16, SB3, repeat); best and median of the repetitions; ratio = ours / SB3 "
             "on the best runs, and on the medians (the machine is shared: single runs vary by up to a third). "
             "Same hyperparameters on every row; `-bf16` rows run our CNN trunk in bfloat16 mixed "
             "precision (`precision=\"bfloat16\"`: bfloat16 operands, float32 accumulation, float32 parameters, "
             "gradients, optimiser and losses), a numeric format SB3 does not offer on the CPU; every other row "
             "computes in float32 on both sides."]
    for task in dict.fromkeys(r["task"] for r in rows):
        grp = [r for r in rows if r["task"] == task]
        lines += ["", f"**{task}** - {grp[0]['note']} Command: `{grp[0]['command']}`.", "",
                  "| task | steps | implementation | best steps/s | median steps/s | runs | ratio vs SB3 (best) "
                  "| ratio vs SB3 (median) |",
                  "|---|---:|---|---:|---:|---|---:|---:|"]
        sb3_sps = next(r for r in grp if r["label"] == "sb3")["sps"]
        sb3_best, sb3_med = max(sb3_sps), statistics.median(sb3_sps)
        for r in grp:
            best, med = max(r["sps"]), statistics.median(r["sps"])
            runs = ", ".join(f"{x:.0f}" for x in r["sps"])
            lines.append(f"| {task} | {r['steps']} | {r['label']} | {best:.0f} | {med:.0f} | {runs} | "
                         f"{best / sb3_best:.2f}x | {med / sb3_med:.2f}x |")
    write_section(args.out, "throughput", "\n".join(lines))
    print(f"wrote {args.out}")


def _map(specs: list[Spec], jobs: int) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(spawn, specs))


RETURNS_RUNS = RESULTS / "scalable_returns_runs.jsonl"
"""One JSON line per finished returns run: the benchmark resumes where a killed invocation stopped."""


def _run_key(spec: dict[str, Any]) -> tuple[Any, ...]:
    return (spec["lib"], spec["env_id"], spec["steps"], spec["seed"], spec["backend"] if spec["lib"] == "ours" else "")


def _load_runs() -> dict[tuple[Any, ...], dict[str, Any]]:
    if not RETURNS_RUNS.exists():
        return {}
    runs = [json.loads(line) for line in RETURNS_RUNS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {_run_key(r["spec"]): r for r in runs}


def _spawn_and_record(spec: Spec) -> dict[str, Any]:
    import fcntl

    result = spawn(spec)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with RETURNS_RUNS.open("a", encoding="utf-8") as f:  # one line, appended under a lock: no torn records
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(result) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return result


def cmd_returns(args: argparse.Namespace) -> None:
    specs: list[Spec] = []
    for seed in args.seeds:  # seed-major: every env gets its first comparison before any gets its second
        for env_id in args.envs:
            specs += [Spec("ours", "mujoco", env_id, args.steps, seed, args.backend, args.threads, curve=True),
                      Spec("sb3", "mujoco", env_id, args.steps, seed, threads=args.threads, curve=True)]
    done = _load_runs()
    todo = [s for s in specs if _run_key(asdict(s)) not in done]
    if not args.report_only and todo:
        print(f"returns: {len(todo)} of {len(specs)} runs of {args.steps} steps to do ({len(specs) - len(todo)} "
              f"already in {RETURNS_RUNS.name}), {args.jobs} at a time", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(_spawn_and_record, todo))
        done = _load_runs()
    # the report covers every finished run at these steps (and backend), not only the envs and seeds asked for
    # now: a run of some envs or seeds adds to the section instead of dropping the others from it
    kept = [r["spec"] for r in done.values() if r["spec"]["steps"] == args.steps
            and (r["spec"]["lib"] != "ours" or r["spec"]["backend"] == args.backend)]
    order = [*RETURNS_ENVS, *args.envs]
    envs = sorted({*args.envs, *(s["env_id"] for s in kept)},
                  key=lambda e: (order.index(e) if e in order else len(order), e))
    seeds = sorted({*args.seeds, *(int(s["seed"]) for s in kept if s["env_id"] in envs)})
    if (envs, seeds) != (list(args.envs), sorted(args.seeds)):
        print(f"returns: the report covers every finished run at {args.steps} steps: envs {' '.join(envs)}, "
              f"seeds {' '.join(map(str, seeds))}", flush=True)
    args.envs, args.seeds = envs, seeds
    specs = [Spec(lib, "mujoco", env_id, args.steps, seed, args.backend if lib == "ours" else "gymnasium",
                  args.threads, curve=True)
             for seed in seeds for env_id in envs for lib in ("ours", "sb3")]
    results = [done[k] for k in (_run_key(asdict(s)) for s in specs) if k in done]
    missing = len(specs) - len(results)
    elapsed = sum(r["wall_s"] for r in results) / max(1, args.jobs)
    # per-run summaries: the episode returns and curves live once, in the runs file
    save_json("returns", [{**{k: v for k, v in r.items() if k not in ("curve", "returns")},
                           "episodes": len(r["returns"]), "score_last10": last_mean(r["returns"])} for r in results])
    machines = Counter(r.get("machine", "not recorded") for r in results)
    lines = ["## Returns (PPO, standard MuJoCo hyperparameters)", "",
             machine_note(str(args.threads)) + " Runs by machine (date, CPU, cores, vector extension): "
             + "; ".join(f"{m}: {n} run{'s' * (n > 1)}" for m, n in machines.items()) + ". Each run is an "
             "independent sample of its seed's random streams; its score does not depend on the machine's "
             "speed, but a different CPU may round differently, so a rerun elsewhere is another sample.", "",
             f"Command: `python benchmarks/bench_scalable.py returns --steps {args.steps} --seeds "
             f"{' '.join(map(str, args.seeds))} --envs {' '.join(args.envs)} --backend {args.backend} --jobs "
             f"{args.jobs}` (about {elapsed / 60:.0f} min of wall time at {args.jobs} jobs; finished runs are kept "
             f"in `{RETURNS_RUNS.name}` and a rerun continues with the missing ones"
             + (f"; **{missing} of {len(specs)} runs still missing**" if missing else "")
             + "). Score of a run: mean raw return of its last 10 "
             "episodes (training episodes, stochastic policy); table: mean +- sd over seeds, then the per-seed "
             "scores. CleanRL's published PPO figures are at 1M steps, so they are comparable only for "
             "`--steps 1000000`; they are means of 3 seeds on the v4 tasks (v5 changed Walker2d's and Hopper's "
             "healthy reward and Walker2d's foot friction): a guide, where SB3's column (same v5 tasks, seeds and "
             "protocol) is the like-for-like comparison.", "",
             "| env | steps | seeds done (ours / SB3) | ours | SB3 | CleanRL @1M (v4, 3 seeds) | ours per seed | "
             "SB3 per seed |",
             "|---|---:|---:|---:|---:|---:|---|---|"]

    def fmt(xs: list[float]) -> str:
        if len(xs) == 1:
            return f"{xs[0]:.0f}"
        return f"{statistics.fmean(xs):.0f} +- {statistics.stdev(xs):.0f}" if xs else "-"

    for env_id in args.envs:
        sc = {lib: [last_mean(r["returns"]) for r in results if r["spec"]["env_id"] == env_id
                    and r["spec"]["lib"] == lib] for lib in ("ours", "sb3")}
        per = {lib: ", ".join(f"{x:.0f}" for x in xs) for lib, xs in sc.items()}
        lines.append(f"| {env_id} | {args.steps} | {len(sc['ours'])} / {len(sc['sb3'])} | {fmt(sc['ours'])} | "
                     f"{fmt(sc['sb3'])} | {CLEANRL_1M.get(env_id, float('nan')):.0f} | {per['ours']} | {per['sb3']} |")
        png = RESULTS / f"scalable_returns_{env_id}.png"
        series = {lib: [r["curve"] for r in results if r["spec"]["env_id"] == env_id and r["spec"]["lib"] == lib]
                  for lib in ("ours", "sb3")}
        if any(series.values()):
            plot_curves(png, f"PPO {env_id}: ours ({args.backend}) vs SB3, {args.steps} steps", series, window=10)
    tail = max(1, args.steps // 10)
    lines += ["", f"The last-10-episode score is noisy (Hopper and Walker2d swing by several hundred from one "
              f"batch of episodes to the next). A steadier score of the same runs: the mean raw return of every "
              f"episode that ended in the last {tail} steps (the final 10 % of training):", "",
              "| env | ours | SB3 | ours per seed (episodes) | SB3 per seed (episodes) |", "|---|---:|---:|---|---|"]
    for env_id in args.envs:
        cells: dict[str, list[tuple[float, int]]] = {}
        for lib in ("ours", "sb3"):
            cells[lib] = []
            for r in results:
                if r["spec"]["env_id"] == env_id and r["spec"]["lib"] == lib and r["curve"]:
                    last = [v for st_, v in r["curve"] if st_ > r["steps"] - tail]
                    if last:
                        cells[lib].append((statistics.fmean(last), len(last)))
        means = {lib: [m for m, _ in xs] for lib, xs in cells.items()}
        per2 = {lib: ", ".join(f"{m:.0f} ({k})" for m, k in xs) for lib, xs in cells.items()}
        lines.append(f"| {env_id} | {fmt(means['ours'])} | {fmt(means['sb3'])} | {per2['ours']} | {per2['sb3']} |")
    n_seeds = min((sum(1 for r in results if r["spec"]["env_id"] == e and r["spec"]["lib"] == lib)
                   for e in args.envs for lib in ("ours", "sb3")), default=0)
    k_envs = len(args.envs)
    p_min = 1.0 / math.comb(2 * n_seeds, n_seeds) if n_seeds else float("nan")
    lines += ["", "Is ours worse than SB3? Exact one-sided permutation test of the difference of the mean scores "
              "(SB3 minus ours) over every split of the pooled seeds: p = the share of splits with a difference at "
              f"least the observed one. With {n_seeds} seeds a side the smallest possible p is 1/"
              f"{math.comb(2 * n_seeds, n_seeds) if n_seeds else 0} = {p_min:.3g}. With {k_envs} environments "
              f"tested, judge the smallest p against 0.05 / {k_envs} (Bonferroni): if the two implementations were "
              f"equal, p <= 0.05 on at least one of them would turn up with probability up to "
              f"1 - 0.95^{k_envs} = {1 - 0.95 ** k_envs:.2f}. A large p is no evidence of equality either: it says "
              "the seeds run cannot tell the two apart.", "",
              "| env | score | seeds (ours / SB3) | SB3 - ours | p (SB3 > ours) |", "|---|---|---:|---:|---:|"]
    def score(r: dict[str, Any], name: str) -> float:
        if name == "last 10":
            return float(last_mean(r["returns"]))
        return statistics.fmean([v for st_, v in r["curve"] if st_ > r["steps"] - tail] or [float("nan")])

    for env_id in args.envs:
        for name in ("last 10", "last 10 %"):
            xs = {lib: [score(r, name) for r in results if r["spec"]["env_id"] == env_id and r["spec"]["lib"] == lib]
                  for lib in ("ours", "sb3")}
            if len(xs["ours"]) >= 2 and len(xs["sb3"]) >= 2:
                d, pval = permutation_test(xs["ours"], xs["sb3"])
                lines.append(f"| {env_id} | {name} | {len(xs['ours'])} / {len(xs['sb3'])} | {d:.0f} | {pval:.2f} |")
    old_path = RESULTS / "scalable_returns_runs_v1_ours.jsonl"
    if old_path.exists():  # our runs made before the random-stream fix, kept for the record
        old = [json.loads(x) for x in old_path.read_text(encoding="utf-8").splitlines() if x.strip()]
        lines += ["", f"Our runs made before the random-stream fix of 2026-11-25 (`{old_path.name}`; the action "
                  "generator was seeded with the seed itself, so the first actions' noise repeated the normals "
                  "of the first layer's initialisation). Superseded by the table above, kept for the record. "
                  "Last 10 / last 10 % per seed:", "", "| env | seeds | ours before the fix, per seed |",
                  "|---|---:|---|"]
        for env_id in args.envs:
            rs = sorted((r for r in old if r["spec"]["env_id"] == env_id), key=lambda r: int(r["spec"]["seed"]))
            if rs:
                per_seed = ", ".join(f"s{r['spec']['seed']}: {score(r, 'last 10'):.0f} / {score(r, 'last 10 %'):.0f}"
                                     for r in rs)
                lines.append(f"| {env_id} | {len(rs)} | {per_seed} |")
    drawn = [e for e in args.envs if any(r["spec"]["env_id"] == e for r in results)]
    lines += ["", "Curves: " + (", ".join(f"`scalable_returns_{e}.png`" for e in drawn) or "none yet") + "."]
    write_section(args.out, "returns", "\n".join(lines))
    print(f"wrote {args.out}")


def permutation_test(ours: Sequence[float], sb3: Sequence[float]) -> tuple[float, float]:
    """(mean(sb3) - mean(ours), exact one-sided p-value): the share of all splits of the pooled scores into
    groups of the two sizes whose difference of means is at least the observed one (ties count)."""
    from itertools import combinations

    pooled = [*ours, *sb3]
    n, total = len(ours), sum(pooled)
    observed = statistics.fmean(sb3) - statistics.fmean(ours)
    splits = list(combinations(range(len(pooled)), n))
    eps = 1e-9 * max(1.0, max(abs(x) for x in pooled))  # equal differences up to rounding count as ties
    hits = 0
    for idx in splits:
        a = sum(pooled[i] for i in idx)
        diff = (total - a) / len(sb3) - a / n
        hits += diff >= observed - eps
    return observed, hits / len(splits)


def _same_curve_task(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("env_id", "steps", "seed", "arch", "device"))


def cmd_atari_curve(args: argparse.Namespace) -> None:
    specs = [Spec("ours", "atari", args.env, args.steps, args.seed, args.backend, args.threads, curve=True,
                  arch=args.arch, device=args.device, precision=pr) for pr in args.precisions]
    if not args.skip_sb3:  # first: the slowest run starts at once
        specs.insert(0, Spec("sb3", "atari", args.env, args.steps, args.seed, threads=args.threads, curve=True,
                             arch=args.arch, device=args.device))
    name = "atari_curve" + ("" if args.arch == "text" else f"_{args.arch}")  # one report section per network
    path = RESULTS / f"scalable_{name}.json"
    saved: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    if args.report_only:  # rebuild the section and the plot from the saved JSON
        results = saved
    else:
        print(f"atari-curve: {args.env}, {args.steps} steps each, {args.jobs} at a time", flush=True)
        new = _map(specs, args.jobs)
        for r in new:
            r["note"] = machine_note(str(args.threads), args.device)
        labels = {Spec(**r["spec"]).label for r in new}
        # runs of the same task not re-run now (e.g. SB3's, with --skip-sb3) are kept
        results = [r for r in saved if _same_curve_task(r["spec"], new[0]["spec"])
                   and Spec(**r["spec"]).label not in labels] + new
        results.sort(key=lambda r: (r["spec"]["lib"] == "sb3", r["spec"].get("precision", "float32")))
        save_json(name, results)
    walls = [r["wall_s"] for r in results]  # runs at once: the longest; more runs than jobs: about sum / jobs
    elapsed = max(walls, default=0.0) if len(walls) <= args.jobs else sum(walls) / max(1, args.jobs)
    png = RESULTS / f"scalable_{name}.png"
    plot_curves(png, f"PPO {args.env} ({ARCH_NAME[args.arch]}): ours ({args.backend}) vs SB3",
                {Spec(**r["spec"]).label: [r["curve"]] for r in results}, window=20)
    notes = list(dict.fromkeys(r.get("note", "") for r in results))
    head = " ".join(notes) if all(notes) else machine_note(str(args.threads), args.device)
    lines = [f"## Atari learning curve ({ARCH_NAME[args.arch]})", "", head, "",
             f"Command: `python benchmarks/bench_scalable.py atari-curve --env {args.env} --steps {args.steps} "
             f"--seed {args.seed} --backend {args.backend} --arch {args.arch} --jobs {args.jobs}"
             + (f" --precisions {' '.join(args.precisions)}" if args.precisions != ["float32"] else "") + "` "
             f"(about {elapsed / 60:.1f} min of wall time; with "
             "`--jobs 2` two runs share the cores, so their steps/s here are not throughput figures; each row's "
             "own torch threads and precision are listed below). Raw game score of full games (all lives), "
             "training policy.", "",
             "| implementation | steps | games | mean score, first 20 games | mean score, last 20 games | "
             "steps/s |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        rets = r["returns"]
        first = statistics.fmean(rets[:20]) if rets else float("nan")
        lines.append(f"| {Spec(**r['spec']).label} | {r['steps']} | {len(rets)} | {first:.1f} | "
                     f"{last_mean(rets, 20):.1f} | {r['loop_sps']:.0f} |")
    runs = [f"{Spec(**r['spec']).label}: {Spec(**r['spec']).precision}, torch threads "
            f"{r.get('torch_threads', r['spec']['threads'])}, {r.get('note', '').rsplit('; ', 1)[-1].rstrip('.')}"
            for r in results]
    lines += ["", "Runs: " + "; ".join(runs) + "."]
    checkpoints = [args.steps * k // 4 for k in (1, 2, 3, 4)]
    lines += ["", "Mean score of the games that ended in each quarter of the budget:", "",
              "| implementation | " + " | ".join(f"<= {c}" for c in checkpoints) + " |",
              "|---|" + "---:|" * len(checkpoints)]
    for r in results:
        cells = []
        lo = 0
        for c in checkpoints:
            seg = [v for s, v in r["curve"] if lo < s <= c]
            cells.append(f"{statistics.fmean(seg):.1f} ({len(seg)})" if seg else "-")
            lo = c
        lines.append(f"| {Spec(**r['spec']).label} | " + " | ".join(cells) + " |")
    lines += ["", f"Curve: `{png.name}` (moving average of 20 games)."]
    write_section(args.out, name.replace("_", "-"), "\n".join(lines))
    print(f"wrote {args.out}")


def cmd_profile(args: argparse.Namespace) -> None:
    """cProfile of our training loop (in this process); prints and reports the top functions."""
    import torch

    from scalable.agents.ppo import train

    torch.set_num_threads(args.threads)
    kind: Kind = "atari" if "NoFrameskip" in args.env or args.env.startswith("ALE/") else "mujoco"
    make = ours_mujoco_config if kind == "mujoco" else ours_atari_config
    cfg = make(args.env, args.steps, 1, args.backend, args.threads)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    res = train(cfg, progress=False)
    prof.disable()
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(args.top)
    buf.write("\n")
    stats.sort_stats("cumulative").print_stats(args.top)
    text = buf.getvalue()
    print(text)
    (RESULTS / f"scalable_profile_{kind}_{args.backend}.txt").write_text(text, encoding="utf-8")
    print(f"{res.global_step} steps in {wall:.1f} s under cProfile ({res.global_step / wall:.0f} steps/s)")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput", help="env steps/s of the training loop: ours (gymnasium, envpool) vs SB3")
    t.add_argument("--mujoco-steps", type=int, default=24 * 2048, help="HalfCheetah steps per run (0 skips it)")
    t.add_argument("--atari-steps", type=int, default=8 * 1024, help="PPO Atari steps per run (0 skips Atari)")
    t.add_argument("--atari-env", default=ATARI_ENV)
    t.add_argument("--atari-archs", nargs="+", choices=["nature", "text"], default=["nature", "text"],
                   help="Atari networks, each a separate task (same network on both sides)")
    t.add_argument("--reps", type=int, default=3)
    t.add_argument("--threads-mujoco", type=int, default=1, help="torch threads, both libraries")
    t.add_argument("--threads-atari", type=int, default=2, help="torch threads, both libraries")
    t.add_argument("--device", default="cpu", help="torch device of the Atari runs, both libraries (e.g. cuda)")
    t.add_argument("--report-only", action="store_true", help="rewrite the section from the saved JSON")
    t.add_argument("--precisions", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"],
                   help="Atari: our network's numeric formats (bfloat16 adds an ours-<backend>-bf16 row; SB3: float32)")
    r = sub.add_parser("returns", help="final returns and learning curves on MuJoCo: ours vs SB3")
    r.add_argument("--steps", type=int, default=1_000_000)
    r.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    r.add_argument("--envs", nargs="+", default=list(RETURNS_ENVS))
    r.add_argument("--backend", choices=["gymnasium", "envpool"], default="gymnasium",
                   help="ours only; SB3 always steps gymnasium's simulator, so gymnasium compares like with like")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--jobs", type=int, default=2, help="runs at a time (one per core with --threads 1)")
    r.add_argument("--report-only", action="store_true", help="rewrite the report from the finished runs")
    a = sub.add_parser("atari-curve", help="Atari learning curve: ours vs SB3 on the same budget")
    a.add_argument("--steps", type=int, default=200_000)
    a.add_argument("--env", default=ATARI_ENV)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--backend", choices=["gymnasium", "envpool"], default="envpool")
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--jobs", type=int, default=2)
    a.add_argument("--arch", choices=["nature", "text"], default="nature", help="Atari network, both sides")
    a.add_argument("--device", default="cpu", help="torch device, both libraries (e.g. cuda)")
    a.add_argument("--precisions", nargs="+", choices=["float32", "bfloat16"], default=["float32"],
                   help="our network's numeric formats, one run each (SB3: float32)")
    a.add_argument("--skip-sb3", action="store_true",
                   help="run ours only; saved runs of the same task (SB3's included) stay in the report")
    a.add_argument("--report-only", action="store_true", help="rewrite the report from the saved JSON")
    f = sub.add_parser("profile", help="cProfile our PPO training loop")
    f.add_argument("--env", default=MUJOCO_ENV)
    f.add_argument("--steps", type=int, default=10 * 2048)
    f.add_argument("--backend", choices=["gymnasium", "envpool"], default="gymnasium")
    f.add_argument("--threads", type=int, default=1)
    f.add_argument("--top", type=int, default=30)
    for sp in (t, r, a):
        sp.add_argument("--out", type=Path, default=DEFAULT_OUT)
    w = sub.add_parser("_run")  # internal: one run in this process
    w.add_argument("spec")
    w.add_argument("result")
    args = p.parse_args(argv)
    if args.cmd == "_run":
        spec = Spec(**json.loads(args.spec))
        Path(args.result).write_text(json.dumps(run_spec(spec)), encoding="utf-8")
        return 0
    {"throughput": cmd_throughput, "returns": cmd_returns, "atari-curve": cmd_atari_curve,
     "profile": cmd_profile}[args.cmd](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
