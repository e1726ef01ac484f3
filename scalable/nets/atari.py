"""Atari networks: the text's (Mnih et al.) network by default, the Nature CNN as an option.

Spec: PG-46, PG-47, PG-48, erratum E-49, open choice 16.

* :class:`TextAtariNet` (default): input 4x84x84 -> conv 16 8x8 stride 4 + ReLU (16x20x20) -> conv 32
  4x4 stride 2 + ReLU (32x9x9, E-49: 32 channels, not 23) -> FC 256 + ReLU. No padding. The shapes
  are those of :func:`reference.atari_shapes.atari_a3c_layer_shapes` (tested).
* :class:`NatureCNN` (option): conv 32 8x8/4 -> conv 64 4x4/2 -> conv 64 3x3/1 -> FC 512 (Mnih et al.
  2015; a different network, E-49).
* :class:`AtariActorCritic`: a shared trunk with a linear policy head (|A| logits, softmax, PG-48) and
  a linear value head (A3C, open choice 16).

Observations are pixel values in [0, 255] (uint8 [B, frames, 84, 84], or float) and are scaled by 1/255.

Speed: with ``channels_last=True`` (default) the conv weights and the activations use PyTorch's NHWC
``torch.channels_last`` memory format, where oneDNN's CPU convolutions run about 1.5x faster (forward
+ backward at batch 256, measured in ``benchmarks/results/scalable.md``). The uint8 frames are
reordered before the float conversion (4x fewer bytes moved). The function computed is the same; only
the floating-point summation order inside the convolutions differs. The last conv output is flattened in
NCHW order for the FC layer (so the FC weights mean the same in both layouts); :func:`flatten_nchw` hands
the gradient back NHWC-strided, as the activations are: with the NCHW gradient that ``contiguous()``'s
backward gives, the last conv ReLU's backward ran PyTorch's mixed-layout kernel (text network, batch 256:
1.47 ms against 0.14 ms with both operands NHWC). Same values, bit for bit; a minibatch step about 5 %
faster (text 23.4 -> 22.3 ms, Nature 65.5 -> 62.1 ms, medians of 8 interleaved runs on 2 cores).

Precision: ``precision="bfloat16"`` (opt-in; default ``"float32"``) runs the trunk under
``torch.autocast(dtype=torch.bfloat16)``: its convolutions and FC layer take bfloat16 operands with float32
accumulation (oneDNN on CPUs with AVX512-BF16 / AMX; on a GPU cuBLAS may reduce in lower precision unless
``torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction`` is False); their outputs, the saved
activations and the gradients inside the trunk are bfloat16. The parameters, the dtype of their gradients
(float32 tensors holding bfloat16 values for the trunk) and the optimiser state stay float32 (mixed
precision). The features are cast back to float32 before the linear heads, so logits, log-probabilities,
entropies and values, and every loss built on them, are float32. ``tests/scalable/test_nets.py`` checks each
trunk layer against float64 arithmetic on its bfloat16 operands (unit roundoff 2^-8 on the output) and the
parameter gradients against float64 autograd; on a CPU with AVX512-BF16 a Nature-CNN update step
takes about half the float32 time. Not a hyperparameter: a numeric format, reported next to any speed figure.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from scalable.core.distributions import categorical_entropy, categorical_log_prob, categorical_sample
from scalable.nets.init import HIDDEN_GAIN, POLICY_GAIN, VALUE_GAIN, layer_init

__all__ = ["PRECISIONS", "AtariActorCritic", "NatureCNN", "PolicyEval", "PolicyStep", "Precision", "TextAtariNet"]

Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = ("float32", "bfloat16")
"""The numeric formats of the trunk's compute: float32 (default) or bfloat16 mixed precision."""


class PolicyStep(NamedTuple):
    """One acting step of an actor-critic.

    ``action`` goes to the environment; ``raw_action`` is what to store for :meth:`evaluate` (the
    action index for a categorical policy, the pre-squash z for a tanh-Gaussian, open choice 15).
    Shapes: action / raw_action [B] or [B, n]; log_prob, entropy, value [B].
    """

    action: Tensor
    raw_action: Tensor
    log_prob: Tensor
    entropy: Tensor
    value: Tensor


class PolicyEval(NamedTuple):
    """log pi(a | s), entropy H(pi(. | s)) and V(s) of stored actions; each [B]."""

    log_prob: Tensor
    entropy: Tensor
    value: Tensor


def _convs_channels_last(module: nn.Module) -> None:
    """Store every Conv2d weight of ``module`` NHWC-strided (values unchanged)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)


class _FlattenNCHW(torch.autograd.Function):
    """``x.contiguous().flatten(1)`` whose backward returns the gradient in ``x``'s memory format."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.shape = x.shape  # type: ignore[attr-defined]
        ctx.channels_last = x.is_contiguous(memory_format=torch.channels_last)  # type: ignore[attr-defined]
        return x.contiguous().flatten(1)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        g = grad.reshape(ctx.shape)  # type: ignore[attr-defined]
        return g.contiguous(memory_format=torch.channels_last) if ctx.channels_last else g  # type: ignore[attr-defined]


def flatten_nchw(x: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, C*H*W] in NCHW (C, H, W) order whatever ``x``'s memory format; the gradient
    comes back in ``x``'s format (NHWC-strided for a ``channels_last`` trunk: see the module docstring)."""
    if x.is_contiguous() or not torch.is_grad_enabled() or not x.requires_grad:
        return x.contiguous().flatten(1)
    out: Tensor = _FlattenNCHW.apply(x)  # type: ignore[no-untyped-call]
    return out


def _scale(obs: Tensor, channels_last: bool) -> Tensor:
    """uint8 (-> float32) or float pixels [B, C, H, W] -> x / 255 in [0, 1], NHWC-strided if ``channels_last``."""
    if channels_last:
        obs = obs.contiguous(memory_format=torch.channels_last)
    if obs.is_floating_point():
        return obs / 255.0
    return obs.to(torch.float32).div_(255.0)


class TextAtariNet(nn.Module):
    """The text's Atari trunk (PG-46, E-49): conv16 8x8/4 -> conv32 4x4/2 -> FC 256, ReLU after each.

    Input [B, frames, 84, 84] pixels in [0, 255] -> features [B, hidden]. ``conv2_channels=23``
    reproduces the text's typo (E-49); 32 is Mnih et al.'s.
    """

    def __init__(self, *, frames: int = 4, size: int = 84, conv2_channels: int = 32, hidden: int = 256,
                 orthogonal_init: bool = True, channels_last: bool = True) -> None:
        super().__init__()
        self.channels_last = channels_last
        o = orthogonal_init
        self.conv1 = layer_init(nn.Conv2d(frames, 16, kernel_size=8, stride=4), gain=HIDDEN_GAIN, orthogonal=o)
        self.conv2 = layer_init(nn.Conv2d(16, conv2_channels, kernel_size=4, stride=2), gain=HIDDEN_GAIN,
                                orthogonal=o)
        h1 = (size - 8) // 4 + 1
        h2 = (h1 - 4) // 2 + 1
        self.fc = layer_init(nn.Linear(conv2_channels * h2 * h2, hidden), gain=HIDDEN_GAIN, orthogonal=o)
        self.out_features = hidden
        if channels_last:
            _convs_channels_last(self)

    def forward(self, obs: Tensor) -> Tensor:
        """[B, frames, size, size] pixels -> [B, hidden] features."""
        x = torch.relu(self.conv1(_scale(obs, self.channels_last)))
        x = torch.relu(self.conv2(x))
        return torch.relu(self.fc(flatten_nchw(x)))


class NatureCNN(nn.Module):
    """Nature-DQN trunk (Mnih et al. 2015): conv32 8x8/4 -> conv64 4x4/2 -> conv64 3x3/1 -> FC 512, ReLU.

    Input [B, frames, 84, 84] pixels in [0, 255] -> features [B, hidden].
    """

    def __init__(self, *, frames: int = 4, size: int = 84, hidden: int = 512, orthogonal_init: bool = True,
                 channels_last: bool = True) -> None:
        super().__init__()
        self.channels_last = channels_last
        o = orthogonal_init
        self.conv1 = layer_init(nn.Conv2d(frames, 32, 8, stride=4), gain=HIDDEN_GAIN, orthogonal=o)
        self.conv2 = layer_init(nn.Conv2d(32, 64, 4, stride=2), gain=HIDDEN_GAIN, orthogonal=o)
        self.conv3 = layer_init(nn.Conv2d(64, 64, 3, stride=1), gain=HIDDEN_GAIN, orthogonal=o)
        h = (((size - 8) // 4 + 1 - 4) // 2 + 1 - 3) // 1 + 1
        self.fc = layer_init(nn.Linear(64 * h * h, hidden), gain=HIDDEN_GAIN, orthogonal=o)
        self.out_features = hidden
        if channels_last:
            _convs_channels_last(self)

    def forward(self, obs: Tensor) -> Tensor:
        """[B, frames, size, size] pixels -> [B, hidden] features."""
        x = torch.relu(self.conv1(_scale(obs, self.channels_last)))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return torch.relu(self.fc(flatten_nchw(x)))


class AtariActorCritic(nn.Module):
    """Shared trunk + linear categorical policy head (|A| logits) + linear value head (A3C, open choice 16).

    ``arch="text"`` (default) is :class:`TextAtariNet`, ``"nature"`` :class:`NatureCNN`. Orthogonal init
    (gains sqrt 2 / 0.01 / 1) is the named switch ``orthogonal_init``; ``channels_last`` (NHWC convolutions,
    faster on CPU) changes the memory layout only: the state_dict keys, shapes and the function are the same.
    ``precision="bfloat16"`` runs the trunk in bfloat16 mixed precision (module docstring); the heads and
    everything downstream stay float32, and the state_dict is the same float32 one.
    """

    def __init__(self, n_actions: int, *, arch: Literal["text", "nature"] = "text", frames: int = 4,
                 orthogonal_init: bool = True, channels_last: bool = True, precision: Precision = "float32") -> None:
        super().__init__()
        if n_actions < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision: Precision = precision
        self.trunk: TextAtariNet | NatureCNN
        if arch == "text":
            self.trunk = TextAtariNet(frames=frames, orthogonal_init=orthogonal_init, channels_last=channels_last)
        elif arch == "nature":
            self.trunk = NatureCNN(frames=frames, orthogonal_init=orthogonal_init, channels_last=channels_last)
        else:
            raise ValueError(f"arch must be 'text' or 'nature', got {arch!r}")
        n = self.trunk.out_features
        self.policy = layer_init(nn.Linear(n, n_actions), gain=POLICY_GAIN, orthogonal=orthogonal_init)
        self.value_head = layer_init(nn.Linear(n, 1), gain=VALUE_GAIN, orthogonal=orthogonal_init)
        self.n_actions = n_actions

    @property
    def channels_last(self) -> bool:
        """True if the trunk computes in NHWC (``torch.channels_last``): feed it frames in that layout."""
        return self.trunk.channels_last

    def features(self, obs: Tensor) -> Tensor:
        """The trunk's features [B, hidden], float32 whatever ``precision`` (bfloat16 compute is cast back)."""
        if self.precision == "float32":
            h: Tensor = self.trunk(obs)
            return h
        with torch.autocast(device_type=obs.device.type, dtype=torch.bfloat16):
            h = self.trunk(obs)
        return h.float()

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """obs [B, frames, 84, 84] -> (logits [B, |A|], value [B]), float32."""
        h = self.features(obs)
        return self.policy(h), self.value_head(h).squeeze(-1)

    def value(self, obs: Tensor) -> Tensor:
        """V(s) [B]."""
        v: Tensor = self.value_head(self.features(obs))
        return v.squeeze(-1)

    def act(self, obs: Tensor, *, generator: torch.Generator | None = None, deterministic: bool = False) -> PolicyStep:
        """Sample a ~ softmax(logits) (argmax if ``deterministic``); raw_action = action (int64 [B])."""
        logits, v = self(obs)
        a = logits.argmax(dim=-1) if deterministic else categorical_sample(logits, generator=generator)
        return PolicyStep(a, a, categorical_log_prob(logits, a), categorical_entropy(logits), v)

    def evaluate(self, obs: Tensor, raw_action: Tensor) -> PolicyEval:
        """log pi(a | s) (PG-48), entropy and V(s) of stored actions [B]."""
        logits, v = self(obs)
        return PolicyEval(categorical_log_prob(logits, raw_action), categorical_entropy(logits), v)
