"""Checks of scalable's CUDA path, for a machine with a GPU (CI has none; run by hand).

    python benchmarks/gpu_check.py [--device cuda] [--out DIR]

1. PPO on CartPole (the CI test's settings) on the GPU solves it: categorical actions drawn from the run's CPU
   generator, the update on the GPU.
2. PPO on Pendulum-v1 (Gaussian head: the rollout runs the numpy snapshot, the update on the GPU): a few
   updates run and give finite parameters.
3. PPO on Breakout (Nature CNN, the standard Atari settings) on the GPU: stopped after update 2 and resumed to
   update 4, against an uninterrupted 4-update run. Bitwise equality is promised on the CPU only; here the
   largest parameter difference is printed, with cuDNN's deterministic mode on and TF32 off (then the
   resume is exact as well).
4. The GPU run's checkpoint loads on the CPU and gives the GPU network's values and log-probabilities.
5. A2C on Breakout on the GPU: two updates run.
Exit code 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    from scalable.agents import a2c, ppo
    from scalable.agents.common import build_actor_critic, make_envs
    from scalable.cli import _load as cli_load

    dev = args.device
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(torch.device(dev)) if dev != "cpu" else "CPU"
    print(f"torch {torch.__version__}, {name}", flush=True)
    ok = True

    def check(name: str, cond: bool, detail: str) -> None:
        nonlocal ok
        ok &= cond
        print(f"[{'PASS' if cond else 'FAIL'}] {name}: {detail}", flush=True)

    # 1. CartPole
    cart = ppo.PPOConfig(env_id="CartPole-v1", total_steps=100_000, seed=1, num_envs=4, num_steps=128,
                         update_epochs=4, minibatch_size=128, learning_rate=2.5e-3, norm_adv=True,
                         target_return=475.0, torch_threads=1, device=dev, backend="gymnasium")
    t0 = time.perf_counter()
    r = ppo.train(cart, progress=False)
    check("PPO CartPole on " + dev, r.solved and next(r.model.parameters()).device.type == torch.device(dev).type,
          f"solved={r.solved} in {r.global_step} steps ({time.perf_counter() - t0:.0f} s), "
          f"last 10 = {np.mean(r.episode_returns[-10:]):.0f}")

    # 2. Pendulum (Gaussian head)
    pend = ppo.PPOConfig(env_id="Pendulum-v1", total_steps=4 * 512, num_steps=512, device=dev, backend="gymnasium",
                         head="diag_gaussian", norm_obs=True, norm_reward=True)
    r = ppo.train(pend, progress=False)
    finite = all(bool(torch.isfinite(q).all()) for q in r.model.parameters())
    check("PPO Pendulum (Gaussian, numpy rollout) on " + dev, finite and r.updates == 4,
          f"{r.updates} updates, finite parameters {finite}")

    # 3. Breakout: kill at update 2, resume to 4, against an uninterrupted run
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_scalable import ours_atari_config

    atari = dataclasses.replace(ours_atari_config("BreakoutNoFrameskip-v4", 4 * 1024, 1, "gymnasium", 2, "nature"),
                                device=dev, checkpoint_every=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out is not None else Path(tmp)
        full = ppo.train(atari, run_dir=root / "full", progress=False)
        ppo.train(atari, run_dir=root / "killed", max_updates=2, progress=False)
        resumed = ppo.train(atari, run_dir=root / "killed", resume=True, progress=False)
        pairs = zip(full.model.parameters(), resumed.model.parameters(), strict=True)
        diffs = [float((a - b).detach().abs().max()) for a, b in pairs]
        scale = max(float(q.detach().abs().max()) for q in full.model.parameters())
        check("PPO Breakout (Nature CNN) stop + resume on " + dev, resumed.updates == 4 and max(diffs) == 0.0,
              f"max |param diff| = {max(diffs):.3g} (largest parameter {scale:.3g}); "
              f"{full.steps_per_second:.0f} env steps/s uninterrupted")
        # 4. the GPU checkpoint on the CPU: same values and log-probabilities on a batch of frames
        _, cfg, state = cli_load(root / "full")
        envs = make_envs(dataclasses.replace(cfg, num_envs=1))
        cpu_model = build_actor_critic(cfg.env_id, envs.single_observation_space, envs.single_action_space,
                                       head=cfg.head, hidden=tuple(cfg.hidden), orthogonal_init=cfg.orthogonal_init,
                                       atari_arch=cfg.atari_arch)
        envs.close()
        cpu_model.load_state_dict(state["model"])
        frames = torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            a_cpu = cpu_model.act(frames, deterministic=True)
            gpu_model: Any = full.model
            a_gpu = gpu_model.act(frames.to(dev), deterministic=True)
        dv = float((a_cpu.value - a_gpu.value.cpu()).abs().max() / a_cpu.value.abs().max())
        dl = float((a_cpu.log_prob - a_gpu.log_prob.cpu()).abs().max() / a_cpu.log_prob.abs().max())
        check("GPU checkpoint loaded on the CPU", dv < 1e-4 and dl < 1e-4,
              f"relative difference of V {dv:.2g}, of log pi {dl:.2g} (float32, TF32 off; bound 1e-4)")
    # 5. A2C Breakout
    a2 = a2c.A2CConfig(env_id="BreakoutNoFrameskip-v4", total_steps=2 * 40, num_envs=8, num_steps=5, device=dev,
                       backend="gymnasium", atari_arch="nature")
    r = a2c.train(a2, progress=False)
    finite = all(bool(torch.isfinite(q).all()) for q in r.model.parameters())
    check("A2C Breakout on " + dev, finite and r.updates == 2 and not math.isnan(r.steps_per_second),
          f"{r.updates} updates, finite parameters {finite}")
    print("ALL PASSED" if ok else "SOME CHECKS FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
