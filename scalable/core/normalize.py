"""Running observation and reward normalisers (PPO implementation details; Engstrom et al. 2020).

Not part of the text: standard PPO-for-MuJoCo details, each a named switch in the agents' configs.

* :class:`RunningMeanStd` keeps mean, variance and count with the parallel (Chan et al.) update, in
  float64, on CPU.
* :class:`ObservationNormalizer`: o -> clip((o - mean) / sqrt(var + eps), -clip, clip), statistics
  updated with every observed batch (as gymnasium's ``NormalizeObservation`` / baselines' ``VecNormalize``).
* :class:`RewardNormalizer`: r -> clip(r / sqrt(Var[R] + eps), -clip, clip) where R is the running
  discounted return per environment, R <- gamma R + r, reset to 0 after a step that ended the episode
  (terminated or truncated), as baselines' ``VecNormalize`` (the reward is scaled, not centred).

``state_dict()`` returns plain tensors and numbers (checkpointable with ``weights_only=True``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["ObservationNormalizer", "RewardNormalizer", "RunningMeanStd"]

_STATE = float | int | Tensor


class RunningMeanStd:
    """Running mean / variance over the leading (batch) axis of inputs [N, *shape]; float64 on CPU.

    ``count`` starts at ``epsilon`` (1e-4, as baselines) so that the first update is well defined.
    """

    def __init__(self, shape: Sequence[int] = (), *, epsilon: float = 1e-4) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.mean = torch.zeros(self.shape, dtype=torch.float64)
        self.var = torch.ones(self.shape, dtype=torch.float64)
        self.count = float(epsilon)

    def update(self, x: Tensor) -> None:
        """Merge a batch x [N, *shape] (N >= 1) into the statistics (Chan et al. parallel update)."""
        xb = x.detach().to(device="cpu", dtype=torch.float64)
        if tuple(xb.shape[1:]) != self.shape or xb.shape[0] < 1:
            raise ValueError(f"RunningMeanStd.update needs [N >= 1, *{list(self.shape)}], got {list(xb.shape)}")
        n = float(xb.shape[0])
        b_mean = xb.mean(dim=0)
        b_var = xb.var(dim=0, unbiased=False)
        delta = b_mean - self.mean
        tot = self.count + n
        self.mean = self.mean + delta * (n / tot)
        m2 = self.var * self.count + b_var * n + delta**2 * (self.count * n / tot)
        self.var = m2 / tot
        self.count = tot

    def state_dict(self) -> dict[str, _STATE]:
        """Plain-data state: {"mean": Tensor, "var": Tensor, "count": float}."""
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore from :meth:`state_dict` (shapes must match)."""
        mean, var, count = state["mean"], state["var"], state["count"]
        if not isinstance(mean, Tensor) or not isinstance(var, Tensor) or not isinstance(count, (int, float)):
            raise ValueError("RunningMeanStd state needs tensors 'mean', 'var' and a number 'count'")
        if tuple(mean.shape) != self.shape or tuple(var.shape) != self.shape:
            raise ValueError(f"RunningMeanStd state has shape {list(mean.shape)}, expected {list(self.shape)}")
        self.mean = mean.to(torch.float64).clone()
        self.var = var.to(torch.float64).clone()
        self.count = float(count)


class ObservationNormalizer:
    """o -> clip((o - mean) / sqrt(var + eps), -clip, clip) with running statistics of the observations.

    Shapes: ``obs`` [N, *shape] -> [N, *shape] in obs's dtype and device.
    """

    def __init__(self, shape: Sequence[int], *, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd(shape)
        self.clip = float(clip)
        self.epsilon = float(epsilon)

    def __call__(self, obs: Tensor, *, update: bool = True) -> Tensor:
        """Normalise a batch, first merging it into the statistics when ``update`` (training)."""
        if update:
            self.rms.update(obs)
        return self.normalize(obs)

    def normalize(self, obs: Tensor) -> Tensor:
        """Normalise with the current statistics, without updating them."""
        mean = self.rms.mean.to(obs.device)
        std = torch.sqrt(self.rms.var.to(obs.device) + self.epsilon)
        out = torch.clamp((obs.to(torch.float64) - mean) / std, -self.clip, self.clip)
        return out.to(obs.dtype if obs.is_floating_point() else torch.float32)

    def state_dict(self) -> dict[str, _STATE]:
        """Plain-data state (the running statistics)."""
        return self.rms.state_dict()

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore from :meth:`state_dict`."""
        self.rms.load_state_dict(state)


class RewardNormalizer:
    """r -> clip(r / sqrt(Var[R] + eps), -clip, clip), R the running discounted return per environment.

    Per step: R <- gamma R + r; Var[R] updated with R; then R <- 0 where the step ended the episode
    (terminated or truncated). Shapes: rewards, dones [num_envs] -> [num_envs] in rewards' dtype.
    """

    def __init__(self, num_envs: int, *, gamma: float, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"RewardNormalizer: gamma must lie in (0, 1], got {gamma!r}")
        self.rms = RunningMeanStd(())
        self.returns = torch.zeros(num_envs, dtype=torch.float64)
        self.gamma = float(gamma)
        self.clip = float(clip)
        self.epsilon = float(epsilon)

    def __call__(self, rewards: Tensor, dones: Tensor, *, update: bool = True) -> Tensor:
        """Scale one vector step of rewards; ``dones`` = terminated | truncated of that step."""
        r = rewards.detach().to(device="cpu", dtype=torch.float64)
        if r.shape != self.returns.shape or dones.shape != self.returns.shape:
            raise ValueError(f"RewardNormalizer needs rewards and dones of shape {list(self.returns.shape)}, "
                             f"got {list(r.shape)} and {list(dones.shape)}")
        if update:
            self.returns = self.returns * self.gamma + r
            self.rms.update(self.returns)
            self.returns = torch.where(dones.to("cpu").bool(), torch.zeros_like(self.returns), self.returns)
        return self.normalize(rewards)

    def normalize(self, rewards: Tensor) -> Tensor:
        """Scale with the current statistics, without updating them."""
        std = float(torch.sqrt(self.rms.var + self.epsilon))
        return torch.clamp(rewards / std, -self.clip, self.clip)

    def state_dict(self) -> dict[str, _STATE]:
        """Plain-data state: running return statistics and the per-environment returns R."""
        return {**self.rms.state_dict(), "returns": self.returns.clone()}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore from :meth:`state_dict`."""
        self.rms.load_state_dict(state)
        ret = state["returns"]
        if not isinstance(ret, Tensor) or ret.shape != self.returns.shape:
            raise ValueError(f"RewardNormalizer state needs 'returns' of shape {list(self.returns.shape)}")
        self.returns = ret.to(torch.float64).clone()
