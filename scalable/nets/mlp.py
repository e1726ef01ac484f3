"""MuJoCo actor-critic MLPs and Gaussian policy heads.

Spec: PG-49, PG-50, PG-51, PG-52 (errata E-51, E-53), open choice 15.

* :func:`mlp`: 64-64 tanh MLP by default (the PPO MuJoCo network; the text's "ReLU MLP with ~4 layers"
  of PG-52 is ``hidden=(256, 256, 256), activation=nn.ReLU``).
* :class:`TanhGaussianHead` (default, the text's PG-50): a = tanh(z), z ~ N(mu(s), e^{2 tau(s)}) with a
  **state-dependent** log-std tau(s) (one linear layer outputs mu and tau), tau clamped to [-5, 2]; the
  log-prob is evaluated from the stored pre-squash z (open choice 15), summed over action dimensions.
* :class:`DiagGaussianHead` (option): a ~ N(mu(s), e^{2 log_std}) with a **state-independent** learned
  log-std vector (the common PPO head); the environment clips the action.
* :class:`MLPActorCritic`: separate actor and critic MLPs (no shared trunk), orthogonal init as a switch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn

from scalable.core.distributions import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    clamp_log_std,
    gaussian_entropy,
    gaussian_log_prob,
    gaussian_sample,
    tanh_gaussian_log_prob_sum,
    tanh_gaussian_sample,
)
from scalable.nets.atari import PolicyEval, PolicyStep
from scalable.nets.init import HIDDEN_GAIN, POLICY_GAIN, VALUE_GAIN, layer_init

__all__ = ["DiagGaussianHead", "MLPActorCritic", "NumpyPolicy", "TanhGaussianHead", "mlp"]


def mlp(in_dim: int, out_dim: int | None, *, hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.Tanh, orthogonal_init: bool = True, out_gain: float = 1.0) -> nn.Sequential:
    """Linear-activation stack in_dim -> hidden... (-> out_dim, linear, gain ``out_gain``).

    ``out_dim=None`` ends with the last hidden activation (a trunk with ``hidden[-1]`` features).
    Hidden layers use gain sqrt(2). Shapes: [B, in_dim] -> [B, out_dim or hidden[-1]].
    """
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [layer_init(nn.Linear(d, h), gain=HIDDEN_GAIN, orthogonal=orthogonal_init), activation()]
        d = h
    if out_dim is not None:
        layers.append(layer_init(nn.Linear(d, out_dim), gain=out_gain, orthogonal=orthogonal_init))
    return nn.Sequential(*layers)


class TanhGaussianHead(nn.Module):
    """features [B, in] -> (mu [B, n], tau [B, n]) with tau = clamp_log_std(linear(features)) (PG-50).

    Actions a = tanh(z) lie in (-1, 1)^n (E-51); :func:`scalable.agents.common.squash_scale` maps them onto
    the env's bounds outside the network.
    """

    def __init__(self, in_dim: int, act_dim: int, *, orthogonal_init: bool = True) -> None:
        super().__init__()
        self.linear = layer_init(nn.Linear(in_dim, 2 * act_dim), gain=POLICY_GAIN, orthogonal=orthogonal_init)
        self.act_dim = act_dim

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, clamped log-std), each [B, n]."""
        out: Tensor = self.linear(features)
        mu, log_std = out[..., : self.act_dim], out[..., self.act_dim :]
        return mu, clamp_log_std(log_std)

    @staticmethod
    def sample(mu: Tensor, log_std: Tensor, *, generator: torch.Generator | None = None,
               deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """(a, z): a = tanh(z), z ~ N(mu, e^{2 tau}) (z = mu if ``deterministic``). Shapes [B, n]."""
        if deterministic:
            return torch.tanh(mu), mu
        return tanh_gaussian_sample(mu, log_std, generator=generator)

    @staticmethod
    def log_prob(z: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
        """log pi(tanh z | s) summed over action dimensions (PG-51 with E-51). [B, n] -> [B]."""
        return tanh_gaussian_log_prob_sum(z, mu, log_std)

    @staticmethod
    def entropy(mu: Tensor, log_std: Tensor) -> Tensor:
        """Entropy of the pre-squash Gaussian N(mu, e^{2 tau}), summed over dimensions; [B, n] -> [B].

        The tanh-Gaussian itself has no closed-form entropy; this is the usual bonus (an upper bound:
        H(tanh z) = H(z) + E[log(1 - tanh(z)^2)] <= H(z)).
        """
        return gaussian_entropy(log_std).sum(dim=-1)


class DiagGaussianHead(nn.Module):
    """features [B, in] -> (mu [B, n], log_std [B, n]) with a state-independent learned log-std vector."""

    def __init__(self, in_dim: int, act_dim: int, *, orthogonal_init: bool = True, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.mean = layer_init(nn.Linear(in_dim, act_dim), gain=POLICY_GAIN, orthogonal=orthogonal_init)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.act_dim = act_dim

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, log_std broadcast to mu's shape), each [B, n]."""
        mu: Tensor = self.mean(features)
        return mu, self.log_std.expand_as(mu)

    @staticmethod
    def sample(mu: Tensor, log_std: Tensor, *, generator: torch.Generator | None = None,
               deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """(a, a): a ~ N(mu, e^{2 log_std}) (mu if ``deterministic``); the raw action is a itself. [B, n]."""
        a = mu if deterministic else gaussian_sample(mu, log_std, generator=generator)
        return a, a

    @staticmethod
    def log_prob(x: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
        """log N(x; mu, e^{2 log_std}) summed over action dimensions; [B, n] -> [B]."""
        return gaussian_log_prob(x, mu, log_std).sum(dim=-1)

    @staticmethod
    def entropy(mu: Tensor, log_std: Tensor) -> Tensor:
        """Gaussian entropy summed over dimensions; [B, n] -> [B]."""
        return gaussian_entropy(log_std).sum(dim=-1)


class MLPActorCritic(nn.Module):
    """Separate actor and critic MLPs (64-64 tanh by default) for continuous control.

    ``head="tanh_gaussian"`` (default, PG-50: state-dependent log-std, actions in (-1, 1)) or
    ``"diag_gaussian"`` (state-independent log-std, unbounded actions). Orthogonal init as a switch
    (hidden sqrt 2, policy 0.01, value 1). Shapes: obs [B, obs_dim] float.
    """

    def __init__(self, obs_dim: int, act_dim: int, *, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh,
                 head: Literal["tanh_gaussian", "diag_gaussian"] = "tanh_gaussian",
                 orthogonal_init: bool = True, log_std_init: float = 0.0) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("MLPActorCritic needs at least one hidden layer")
        o = orthogonal_init
        self.actor_trunk = mlp(obs_dim, None, hidden=hidden, activation=activation, orthogonal_init=o)
        self.head: TanhGaussianHead | DiagGaussianHead
        if head == "tanh_gaussian":
            self.head = TanhGaussianHead(hidden[-1], act_dim, orthogonal_init=o)
        elif head == "diag_gaussian":
            self.head = DiagGaussianHead(hidden[-1], act_dim, orthogonal_init=o, log_std_init=log_std_init)
        else:
            raise ValueError(f"head must be 'tanh_gaussian' or 'diag_gaussian', got {head!r}")
        self.critic = mlp(obs_dim, 1, hidden=hidden, activation=activation, orthogonal_init=o, out_gain=VALUE_GAIN)
        self.obs_dim, self.act_dim = obs_dim, act_dim

    @staticmethod
    def _run(seq: nn.Sequential, x: Tensor) -> Tensor:
        """``seq(x)`` without per-module call overhead for Linear / Tanh / ReLU (same ops, same result)."""
        for layer in seq:
            kind = type(layer)
            if kind is nn.Linear and isinstance(layer, nn.Linear):
                x = F.linear(x, layer.weight, layer.bias)
            elif kind is nn.Tanh:
                x = torch.tanh(x)
            elif kind is nn.ReLU:
                x = torch.relu(x)
            else:
                x = layer(x)
        return x

    def dist_params(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, log_std) of the policy, each [B, n]."""
        mu, log_std = self.head.forward(self._run(self.actor_trunk, obs))
        return mu, log_std

    def value(self, obs: Tensor) -> Tensor:
        """V(s) [B]."""
        return self._run(self.critic, obs).squeeze(-1)

    def act(self, obs: Tensor, *, generator: torch.Generator | None = None, deterministic: bool = False) -> PolicyStep:
        """Sample an action; raw_action is the pre-squash z (tanh head) or the action (diag head). [B, n]."""
        mu, log_std = self.dist_params(obs)
        a, raw = self.head.sample(mu, log_std, generator=generator, deterministic=deterministic)
        return PolicyStep(a, raw, self.head.log_prob(raw, mu, log_std), self.head.entropy(mu, log_std),
                          self.value(obs))

    def evaluate(self, obs: Tensor, raw_action: Tensor) -> PolicyEval:
        """log pi(a | s) from the stored raw action, entropy and V(s); each [B]."""
        mu, log_std = self.dist_params(obs)
        return PolicyEval(self.head.log_prob(raw_action, mu, log_std), self.head.entropy(mu, log_std),
                          self.value(obs))

    def numpy_policy(self) -> NumpyPolicy | None:
        """A float32 numpy snapshot of the current weights for small-batch rollouts (no torch per-op
        overhead), or None when the network is not a plain Linear / (Tanh | ReLU) stack."""
        return NumpyPolicy.from_model(self)


_Arr = NDArray[np.float32]
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG2 = math.log(2.0)


class NumpyPolicy:
    """Frozen numpy twin of :meth:`MLPActorCritic.act` (actor and critic fused into one wider MLP).

    Layer 1 concatenates the actor's and critic's first layers, deeper layers are block-diagonal, the
    output layer yields [head outputs | value]. Sampling takes the standard-normal noise ``eps`` from the
    caller (drawn with the run's torch generator), so the rollout stays deterministic and resumable.
    """

    def __init__(self, layers: list[tuple[_Arr, _Arr]], relu: bool, head: Literal["tanh_gaussian", "diag_gaussian"],
                 act_dim: int, log_std: _Arr | None) -> None:
        self.layers = layers
        self.relu = relu
        self.head = head
        self.act_dim = act_dim
        self.log_std = log_std

    @staticmethod
    def from_model(model: MLPActorCritic) -> NumpyPolicy | None:
        actor, critic = list(model.actor_trunk), list(model.critic)
        acts = {type(m) for m in actor + critic if not isinstance(m, nn.Linear)}
        if len(acts) != 1 or not acts <= {nn.Tanh, nn.ReLU}:
            return None
        a_lin = [m for m in actor if isinstance(m, nn.Linear)]
        c_lin = [m for m in critic if isinstance(m, nn.Linear)]
        if len(c_lin) != len(a_lin) + 1 or len(actor) != 2 * len(a_lin) or len(critic) != 2 * len(a_lin) + 1:
            return None
        head_lin = model.head.linear if isinstance(model.head, TanhGaussianHead) else model.head.mean
        a_lin.append(head_lin)

        def wb(m: nn.Linear) -> tuple[_Arr, _Arr]:
            return (m.weight.detach().to(device="cpu", dtype=torch.float32).numpy().T.astype(np.float32),
                    m.bias.detach().to(device="cpu", dtype=torch.float32).numpy().astype(np.float32))

        layers: list[tuple[_Arr, _Arr]] = []
        for i, (la, lc) in enumerate(zip(a_lin, c_lin, strict=True)):
            (wa, ba), (wc, bc) = wb(la), wb(lc)
            if i == 0:
                w = np.concatenate([wa, wc], axis=1)
            else:
                w = np.zeros((wa.shape[0] + wc.shape[0], wa.shape[1] + wc.shape[1]), dtype=np.float32)
                w[: wa.shape[0], : wa.shape[1]] = wa
                w[wa.shape[0]:, wa.shape[1]:] = wc
            layers.append((np.ascontiguousarray(w), np.concatenate([ba, bc])))
        if isinstance(model.head, TanhGaussianHead):
            return NumpyPolicy(layers, nn.ReLU in acts, "tanh_gaussian", model.act_dim, None)
        log_std = model.head.log_std.detach().to(device="cpu", dtype=torch.float32).numpy().astype(np.float32)
        return NumpyPolicy(layers, nn.ReLU in acts, "diag_gaussian", model.act_dim, log_std)

    def _forward(self, obs: _Arr) -> _Arr:
        h = obs
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            h = h @ w
            h += b
            if i < last:
                h = np.maximum(h, 0.0) if self.relu else np.tanh(h, out=h)
        return h

    def value(self, obs: _Arr) -> _Arr:
        """V(s) [B] of float32 observations [B, obs_dim]."""
        return self._forward(obs)[:, -1].copy()

    def act(self, obs: _Arr, eps: _Arr) -> tuple[_Arr, _Arr, _Arr, _Arr]:
        """(action, raw action, log pi(a | s), V(s)) for observations [B, obs_dim] and noise eps [B, n]."""
        out = self._forward(obs)
        n = self.act_dim
        mu = out[:, :n]
        value = out[:, -1].copy()
        if self.log_std is None:  # tanh-Gaussian: state-dependent, clamped log-std; log-prob of z
            log_std = np.minimum(np.maximum(out[:, n: 2 * n], LOG_STD_MIN), LOG_STD_MAX)
            z = mu + np.exp(log_std) * eps
            u = (z - mu) * np.exp(-log_std)
            log1m = 2.0 * (_LOG2 - z - np.logaddexp(np.float32(0.0), -2.0 * z))
            lp = (-log_std - 0.5 * u * u - _HALF_LOG_2PI - log1m).sum(axis=-1)
            zf = np.asarray(z, dtype=np.float32)
            return np.tanh(zf), zf, np.asarray(lp, dtype=np.float32), value
        ls = self.log_std
        a = mu + np.exp(ls) * eps
        u = (a - mu) * np.exp(-ls)
        lp = (-ls - 0.5 * u * u - _HALF_LOG_2PI).sum(axis=-1)
        af = np.asarray(a, dtype=np.float32)
        return af, af, np.asarray(lp, dtype=np.float32), value
