"""Small building blocks shared by the zoo."""

from __future__ import annotations

from torch import nn


def scaled(base: int, width: float, minimum: int = 4) -> int:
    """Channel count for a width multiplier, never below ``minimum``."""
    return max(minimum, int(round(base * width)))


# The conv blocks' normalisation and activation (``build_model(..., norm=, act=)``). GroupNorm has one
# group: it normalises each window over channels and time, needs no batch statistics and stays
# prunable (any channel may go). GELU is left out: TensorFlow Lite Micro has no kernel for it.
NORMS = {"batch": nn.BatchNorm1d, "group": lambda c: nn.GroupNorm(1, c)}
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "silu": nn.SiLU, "mish": nn.Mish,
               "elu": nn.ELU}


def conv_bn_relu(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, *, norm: str = "batch",
                 act: str = "relu") -> nn.Sequential:
    """Conv1d, then the normalisation, then the activation (BatchNorm and ReLU unless told)."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        NORMS[norm](c_out),
        ACTIVATIONS[act](),
    )
