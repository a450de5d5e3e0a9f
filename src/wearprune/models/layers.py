"""Small building blocks shared by the zoo."""

from __future__ import annotations

from torch import nn


def scaled(base: int, width: float, minimum: int = 4) -> int:
    """Channel count for a width multiplier, never below ``minimum``."""
    return max(minimum, int(round(base * width)))


def conv_bn_relu(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=False),
    )
