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

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

__all__ = ["ObservationNormalizer", "RewardNormalizer", "RunningMeanStd"]

_STATE = float | int | Tensor
_F64 = NDArray[np.float64]


def _as_f64(x: Tensor | NDArray[np.generic]) -> _F64:
    if isinstance(x, Tensor):
        return np.asarray(x.detach().to(device="cpu", dtype=torch.float64).numpy(), dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def _check_positive(value: float, name: str, owner: str) -> float:
    v = float(value)
    if not (np.isfinite(v) and v > 0.0):  # clip -1 mapped everything to -1, NaN gave NaN, eps < 0 NaN / var < 0
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return v


def _flags_np(dones: NDArray[np.generic], owner: str) -> NDArray[np.bool_]:
    """``dones`` as bools, refusing values other than 0 / 1 (0.5 was read as done)."""
    d = np.asarray(dones).ravel()
    if d.dtype != np.bool_ and not np.all((d == 0) | (d == 1)):
        bad = d[~((d == 0) | (d == 1))][0]
        raise ValueError(f"{owner}: dones must be 0 / 1 (or bool), got {bad!r}")
    return np.asarray(dones, dtype=np.bool_)


class RunningMeanStd:
    """Running mean / variance over the leading (batch) axis of inputs [N, *shape]; float64 on CPU.

    ``count`` starts at ``epsilon`` (1e-4, as baselines) so that the first update is well defined.
    The statistics live in float64 numpy arrays (no per-step torch overhead); ``mean`` / ``var`` read
    as float64 tensors sharing that memory.
    """

    def __init__(self, shape: Sequence[int] = (), *, epsilon: float = 1e-4) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.mean_np: _F64 = np.zeros(self.shape, dtype=np.float64)
        self.var_np: _F64 = np.ones(self.shape, dtype=np.float64)
        self.count = _check_positive(epsilon, "epsilon (the prior count)", "RunningMeanStd")

    @property
    def mean(self) -> Tensor:
        """Running mean, float64 [*shape]."""
        return torch.from_numpy(self.mean_np)

    @mean.setter
    def mean(self, value: Tensor) -> None:
        self.mean_np = _as_f64(value).reshape(self.shape).copy()

    @property
    def var(self) -> Tensor:
        """Running (biased) variance, float64 [*shape]."""
        return torch.from_numpy(self.var_np)

    @var.setter
    def var(self, value: Tensor) -> None:
        self.var_np = _as_f64(value).reshape(self.shape).copy()

    def update(self, x: Tensor | NDArray[np.generic]) -> None:
        """Merge a batch x [N, *shape] (N >= 1) into the statistics (Chan et al. parallel update)."""
        xb = _as_f64(x)
        if tuple(xb.shape[1:]) != self.shape or xb.shape[0] < 1:
            raise ValueError(f"RunningMeanStd.update needs [N >= 1, *{list(self.shape)}], got {list(xb.shape)}")
        if not np.all(np.isfinite(xb)):  # one NaN / inf would poison the statistics for the rest of the run
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(xb))[0])
            raise ValueError(f"RunningMeanStd.update: non-finite input {xb[bad]!r} at {bad} (an observation or "
                             f"return of the environment); the running statistics would be NaN from here on")
        n = float(xb.shape[0])
        if xb.shape[0] == 1:
            b_mean = xb[0]
            b_var: _F64 | float = 0.0
        else:
            b_mean = xb.mean(axis=0)
            b_var = xb.var(axis=0)
        count = self.count
        delta = b_mean - self.mean_np
        tot = count + n
        self.mean_np = np.asarray(self.mean_np + delta * (n / tot), dtype=np.float64)
        m2 = self.var_np * count + b_var * n + delta**2 * (count * n / tot)
        self.var_np = np.asarray(m2 / tot, dtype=np.float64)
        self.count = tot

    def state_dict(self) -> dict[str, _STATE]:
        """Plain-data state: {"mean": Tensor, "var": Tensor, "count": float}."""
        return {"mean": torch.from_numpy(self.mean_np.copy()), "var": torch.from_numpy(self.var_np.copy()),
                "count": self.count}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore from :meth:`state_dict` (shapes must match)."""
        mean, var, count = state["mean"], state["var"], state["count"]
        if not isinstance(mean, Tensor) or not isinstance(var, Tensor) or not isinstance(count, (int, float)):
            raise ValueError("RunningMeanStd state needs tensors 'mean', 'var' and a number 'count'")
        if tuple(mean.shape) != self.shape or tuple(var.shape) != self.shape:
            raise ValueError(f"RunningMeanStd state has shape {list(mean.shape)}, expected {list(self.shape)}")
        self.mean_np = _as_f64(mean).copy()
        self.var_np = _as_f64(var).copy()
        self.count = float(count)


class ObservationNormalizer:
    """o -> clip((o - mean) / sqrt(var + eps), -clip, clip) with running statistics of the observations.

    Shapes: ``obs`` [N, *shape] -> [N, *shape] in obs's dtype and device. :meth:`normalize_np` is the
    numpy twin (float32 out) used by the rollout loop.
    """

    def __init__(self, shape: Sequence[int], *, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd(shape)
        self.clip = _check_positive(clip, "clip", "ObservationNormalizer")
        self.epsilon = _check_positive(epsilon, "epsilon", "ObservationNormalizer")

    def __call__(self, obs: Tensor, *, update: bool = True) -> Tensor:
        """Normalise a batch, first merging it into the statistics when ``update`` (training)."""
        if update:
            self.rms.update(obs)
        return self.normalize(obs)

    def normalize(self, obs: Tensor) -> Tensor:
        """Normalise with the current statistics, without updating them."""
        out = torch.from_numpy(self._normalize64(_as_f64(obs)))
        return out.to(device=obs.device, dtype=obs.dtype if obs.is_floating_point() else torch.float32)

    def _normalize64(self, x: _F64) -> _F64:
        rms = self.rms
        if tuple(x.shape[1:]) != rms.shape or x.ndim != len(rms.shape) + 1:  # [5, 1] broadcast to [5, 3]
            raise ValueError(f"ObservationNormalizer needs observations [N, *{list(rms.shape)}], got {list(x.shape)}")
        out = (x - rms.mean_np) / np.sqrt(rms.var_np + self.epsilon)
        return np.minimum(np.maximum(out, -self.clip), self.clip)  # = np.clip, without its wrapper

    def normalize_np(self, obs: NDArray[np.generic], *, update: bool = False) -> NDArray[np.float32]:
        """numpy twin of ``__call__`` / :meth:`normalize`: [N, *shape] -> float32 [N, *shape]."""
        x = np.asarray(obs, dtype=np.float64)
        if update:
            self.rms.update(x)
        return self._normalize64(x).astype(np.float32)

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
    :meth:`step_np` is the numpy twin (float64 out) used by the rollout loop.
    """

    def __init__(self, num_envs: int, *, gamma: float, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"RewardNormalizer: gamma must lie in (0, 1], got {gamma!r}")
        self.rms = RunningMeanStd(())
        self.returns_np: _F64 = np.zeros(num_envs, dtype=np.float64)
        self.gamma = float(gamma)
        self.clip = _check_positive(clip, "clip", "RewardNormalizer")
        self.epsilon = _check_positive(epsilon, "epsilon", "RewardNormalizer")

    @property
    def returns(self) -> Tensor:
        """The running discounted returns R, float64 [num_envs]."""
        return torch.from_numpy(self.returns_np)

    @returns.setter
    def returns(self, value: Tensor) -> None:
        self.returns_np = _as_f64(value).copy()

    def __call__(self, rewards: Tensor, dones: Tensor, *, update: bool = True) -> Tensor:
        """Scale one vector step of rewards; ``dones`` = terminated | truncated of that step."""
        r = rewards.detach().to(device="cpu", dtype=torch.float64)
        if r.shape != self.returns_np.shape or dones.shape != self.returns_np.shape:
            raise ValueError(f"RewardNormalizer needs rewards and dones of shape {list(self.returns_np.shape)}, "
                             f"got {list(r.shape)} and {list(dones.shape)}")
        if update:
            self._update(r.numpy(), _flags_np(dones.detach().to("cpu").numpy(), "RewardNormalizer"))
        return self.normalize(rewards)

    def _update(self, r: _F64, dones: NDArray[np.bool_]) -> None:
        ret = self.returns_np * self.gamma + r
        self.rms.update(ret[None] if ret.ndim == 0 else ret)
        self.returns_np = np.where(dones, 0.0, ret)

    def step_np(self, rewards: NDArray[np.generic], dones: NDArray[np.bool_], *, update: bool = True) -> _F64:
        """numpy twin of ``__call__``: rewards, dones [num_envs] -> scaled rewards float64 [num_envs]."""
        r = np.asarray(rewards, dtype=np.float64)
        if r.shape != self.returns_np.shape or dones.shape != self.returns_np.shape:
            raise ValueError(f"RewardNormalizer needs rewards and dones of shape {list(self.returns_np.shape)}, "
                             f"got {list(r.shape)} and {list(dones.shape)}")
        if update:
            self._update(r, _flags_np(dones, "RewardNormalizer"))
        std = float(np.sqrt(self.rms.var_np + self.epsilon))
        return np.minimum(np.maximum(r / std, -self.clip), self.clip)

    def normalize(self, rewards: Tensor) -> Tensor:
        """Scale with the current statistics, without updating them."""
        std = float(np.sqrt(self.rms.var_np + self.epsilon))
        return torch.clamp(rewards / std, -self.clip, self.clip)

    def state_dict(self) -> dict[str, _STATE]:
        """Plain-data state: running return statistics and the per-environment returns R."""
        return {**self.rms.state_dict(), "returns": torch.from_numpy(self.returns_np.copy())}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore from :meth:`state_dict` (all or nothing: the shape is checked before anything is loaded)."""
        ret = state["returns"]
        if not isinstance(ret, Tensor) or tuple(ret.shape) != self.returns_np.shape:
            raise ValueError(f"RewardNormalizer state needs 'returns' of shape {list(self.returns_np.shape)} "
                             f"(one per environment), got {list(ret.shape) if isinstance(ret, Tensor) else ret!r}")
        self.rms.load_state_dict(state)
        self.returns_np = _as_f64(ret).copy()
