"""Weight initialisation as a named switch: orthogonal (with gains) or PyTorch's default.

Orthogonal init (Saxe et al. 2014) with gain sqrt(2) for hidden ReLU / tanh layers, 0.01 for the policy
output and 1 for the value output, biases 0, is the common choice of A2C / PPO implementations
(baselines, CleanRL; Engstrom et al. 2020). ``orthogonal=False`` keeps PyTorch's default
(Kaiming-uniform) initialisation, so the switch can be ablated.
"""

from __future__ import annotations

import math
from typing import TypeVar

from torch import nn

__all__ = ["HIDDEN_GAIN", "POLICY_GAIN", "VALUE_GAIN", "layer_init"]

HIDDEN_GAIN: float = math.sqrt(2.0)
"""Gain of hidden layers."""
POLICY_GAIN: float = 0.01
"""Gain of the policy output layer (near-uniform / near-zero-mean initial policy)."""
VALUE_GAIN: float = 1.0
"""Gain of the value output layer."""

LayerT = TypeVar("LayerT", nn.Linear, nn.Conv2d)


def layer_init(layer: LayerT, *, gain: float = HIDDEN_GAIN, bias: float = 0.0, orthogonal: bool = True) -> LayerT:
    """Orthogonal weights scaled by ``gain`` and constant ``bias`` when ``orthogonal``; else unchanged.

    Returns the layer (for use inside ``nn.Sequential(...)``). Shapes: any ``nn.Linear`` / ``nn.Conv2d``.
    """
    if orthogonal:
        nn.init.orthogonal_(layer.weight, gain=gain)
        if layer.bias is not None:
            nn.init.constant_(layer.bias, bias)
    return layer
