"""Shape arithmetic of the Atari policy network of Mnih et al. (PG-42, PG-43, PG-46 with erratum E-49).

Spec: PG-42 (18 = 9 joystick positions x 2 button states, E-48), PG-43 (60 fps, action repeat 4 gives
15 actions/s), PG-46 (4x84x84 -> conv 16 8x8 s4 -> 16x20x20 -> conv 32 4x4 s2 -> 32x9x9 -> FC 256 ->
FC |A| softmax), erratum E-49 (the second conv layer has 32 channels, not 23), open choice 16 (no
padding; A3C adds a linear value head on the shared FC 256). Pure integer arithmetic, no deep-learning
library: ``scalable.nets`` checks its torch module against :func:`atari_a3c_layer_shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from reference.errors import ShapeError
from reference.mdp import validate_int

__all__ = [
    "ATARI_FPS",
    "ATARI_FRAME_SKIP",
    "ATARI_JOYSTICK_POSITIONS",
    "ATARI_N_ACTIONS",
    "LayerShape",
    "actions_per_second",
    "atari_a3c_layer_shapes",
    "atari_a3c_parameter_count",
    "conv_output_size",
]

ATARI_JOYSTICK_POSITIONS: int = 9
"""8 directions and neutral (E-48)."""
ATARI_N_ACTIONS: int = ATARI_JOYSTICK_POSITIONS * 2
"""PG-42: 9 joystick positions x {no press, button press} = 18."""
ATARI_FPS: int = 60
ATARI_FRAME_SKIP: int = 4


def actions_per_second(*, fps: int = ATARI_FPS, frame_skip: int = ATARI_FRAME_SKIP) -> float:
    """PG-43: with each action repeated for ``frame_skip`` frames, fps / frame_skip actions per second."""
    fps = validate_int(fps, "fps", minimum=1, error=ShapeError)
    frame_skip = validate_int(frame_skip, "frame_skip", minimum=1, error=ShapeError)
    return fps / frame_skip


def conv_output_size(size: int, *, kernel: int, stride: int, padding: int = 0) -> int:
    """Output length of a convolution along one axis: floor((size + 2 padding - kernel) / stride) + 1.

    Spec: PG-46 (20 = (84 - 8) / 4 + 1, 9 = (20 - 4) / 2 + 1). Raises ShapeError if the kernel does not fit.
    """
    size = validate_int(size, "size", minimum=1, error=ShapeError)
    kernel = validate_int(kernel, "kernel", minimum=1, error=ShapeError)
    stride = validate_int(stride, "stride", minimum=1, error=ShapeError)
    padding = validate_int(padding, "padding", minimum=0, error=ShapeError)
    span = size + 2 * padding - kernel
    if span < 0:
        raise ShapeError(f"kernel {kernel} does not fit an input of size {size} with padding {padding}")
    return span // stride + 1


@dataclass(frozen=True)
class LayerShape:
    """One layer of the network: its name, output shape and number of parameters (weights + biases)."""

    name: str
    shape: tuple[int, ...]
    n_params: int


def atari_a3c_layer_shapes(
    n_actions: int, *, frames: int = 4, size: int = 84, conv2_channels: int = 32, hidden: int = 256,
    value_head: bool = True,
) -> list[LayerShape]:
    """Output shapes of Mnih et al.'s Atari network (the A3C / 2013 DQN trunk), with E-49 applied.

    Spec: PG-46, E-49, open choice 16. Layers: input [frames, size, size]; conv 16 8x8 stride 4 + ReLU;
    conv ``conv2_channels`` (32 by E-49; the text's 23 reproduces the typo) 4x4 stride 2 + ReLU; FC
    ``hidden`` + ReLU; FC |A| + softmax (policy); FC 1 (value, A3C) if ``value_head``. ``n_actions``
    between 4 and 18 for the games (PG-46); any value >= 1 is accepted. Every count must be an integer >= 1
    (a float, a bool or a non-positive count raises :class:`ShapeError`).
    """
    n_actions = validate_int(n_actions, "n_actions", minimum=1, error=ShapeError)
    frames = validate_int(frames, "frames", minimum=1, error=ShapeError)
    size = validate_int(size, "size", minimum=1, error=ShapeError)
    conv2_channels = validate_int(conv2_channels, "conv2_channels", minimum=1, error=ShapeError)
    hidden = validate_int(hidden, "hidden", minimum=1, error=ShapeError)
    c1, k1, s1 = 16, 8, 4
    k2, s2 = 4, 2
    h1 = conv_output_size(size, kernel=k1, stride=s1)
    h2 = conv_output_size(h1, kernel=k2, stride=s2)
    flat = conv2_channels * h2 * h2
    layers = [
        LayerShape("input", (frames, size, size), 0),
        LayerShape("conv1", (c1, h1, h1), c1 * frames * k1 * k1 + c1),
        LayerShape("conv2", (conv2_channels, h2, h2), conv2_channels * c1 * k2 * k2 + conv2_channels),
        LayerShape("fc", (hidden,), hidden * flat + hidden),
        LayerShape("policy", (n_actions,), n_actions * hidden + n_actions),
    ]
    if value_head:
        layers.append(LayerShape("value", (1,), hidden + 1))
    return layers


def atari_a3c_parameter_count(n_actions: int, *, conv2_channels: int = 32, value_head: bool = True) -> int:
    """Total number of parameters of :func:`atari_a3c_layer_shapes` (weights and biases).

    Spec: PG-46.
    """
    layers = atari_a3c_layer_shapes(n_actions, conv2_channels=conv2_channels, value_head=value_head)
    return sum(layer.n_params for layer in layers)
