"""Where PPO Atari time goes: the pieces of one PPO Breakout update, timed one by one.

Run by hand from the repository root on an otherwise idle machine (not a test)::

    python benchmarks/atari_pieces.py [--threads 2] [--steps 30]

Prints, per network (the text's and the Nature CNN) and numeric format (float32 NHWC, float32 NCHW,
bfloat16 mixed precision): the median time of one PPO minibatch step (batch 256: forward, the clipped
surrogate + value + entropy loss, backward, global grad-norm clip, Adam), of one acting forward on 8 frames
(the rollout), and the environment alone (envpool, 8 Breakout envs with the benchmark's wrappers, random
actions, 1 and 2 threads). The throughput benchmark's PPO (8 envs x 128 steps, 4 epochs x 4 minibatches of
256) does 64 minibatch steps and 512 acting forwards per 4096 env steps, so the floor of our loop is
64 x step + 512 x act + 4096 / env rate, before buffers and bookkeeping.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalable.core.losses import entropy_loss, ppo_clip_loss, value_loss
from scalable.nets.atari import AtariActorCritic


def minibatch_step_s(arch: str, *, channels_last: bool, precision: str, steps: int) -> float:
    """Median seconds of one PPO minibatch step at batch 256 (the benchmark's settings)."""
    torch.manual_seed(0)
    net = AtariActorCritic(4, arch=arch, channels_last=channels_last, precision=precision)  # type: ignore[arg-type]
    opt = torch.optim.Adam(net.parameters(), lr=2.5e-4, eps=1e-5, fused=True)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (256, 4, 84, 84), generator=g, dtype=torch.uint8)
    a = torch.randint(0, 4, (256,), generator=g)
    old_logp, adv, ret = torch.full((256,), -1.386), torch.randn(256, generator=g), torch.randn(256, generator=g)
    times = []
    for _ in range(steps + 3):
        t0 = time.perf_counter()
        ev = net.evaluate(x, a)
        loss = (ppo_clip_loss(ev.log_prob, old_logp, adv, eps=0.1) + 0.5 * value_loss(ev.value, ret)
                + 0.01 * entropy_loss(ev.entropy))
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5, foreach=True)
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[3:])


def act_s(arch: str, *, channels_last: bool, precision: str, steps: int) -> float:
    """Median seconds of one acting forward (sample, log-prob, value) on 8 frames."""
    torch.manual_seed(0)
    net = AtariActorCritic(4, arch=arch, channels_last=channels_last, precision=precision)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (8, 4, 84, 84), generator=g, dtype=torch.uint8)
    times = []
    with torch.no_grad():
        for _ in range(10 * steps + 10):
            t0 = time.perf_counter()
            net.act(x, generator=g)
            times.append(time.perf_counter() - t0)
    return statistics.median(times[10:])


def envpool_rate(threads: int, steps: int = 512) -> float:
    """Env steps per second of envpool stepping 8 Breakout envs with random actions."""
    import envpool

    env = envpool.make("Breakout-v5", env_type="gymnasium", num_envs=8, num_threads=threads, episodic_life=True,
                       repeat_action_probability=0.0, noop_max=30, max_episode_steps=27000)
    env.reset()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(0, 4, 8))
    rate = 8 * steps / (time.perf_counter() - t0)
    env.close()
    return rate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30, help="timed minibatch steps per case (acting: 10x)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    bf16_hw = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    print(f"torch {torch.__version__}, threads {args.threads}, oneDNN bfloat16 support: {bf16_hw}")
    try:
        rates = {t: envpool_rate(t) for t in (1, 2)}
        print("envpool, 8 Breakout envs: " + ", ".join(f"{r:.0f} steps/s with {t} thread(s)" for t, r in rates.items()))
        env_s = 4096 / max(rates.values())
    except ImportError:
        print("envpool not installed: environment floor not measured")
        env_s = float("nan")
    print("| network | format | minibatch step (ms) | act on 8 frames (ms) | floor per 4096 env steps (s) |")
    print("|---|---|---:|---:|---:|")
    for arch in ("text", "nature"):
        for name, cl, prec in (("float32 NHWC", True, "float32"), ("float32 NCHW", False, "float32"),
                               ("bfloat16 NHWC", True, "bfloat16")):
            step = minibatch_step_s(arch, channels_last=cl, precision=prec, steps=args.steps)
            act = act_s(arch, channels_last=cl, precision=prec, steps=args.steps)
            floor = 64 * step + 512 * act + env_s
            print(f"| {arch} | {name} | {1e3 * step:.1f} | {1e3 * act:.2f} | {floor:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
