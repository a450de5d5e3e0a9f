"""Example inputs: one tensor, or a tuple/list with one tensor per model input — normalised here only."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError


def as_inputs(example: Any) -> tuple[torch.Tensor, ...]:
    """``example`` as a tuple of tensors, one per ``forward`` argument.

    Accepts a tensor (a single-input model) or a non-empty tuple/list of tensors (Torch-Pruning's
    ``(x,)`` habit, or a model with several inputs); anything else is a one-line ConfigError.
    """
    if isinstance(example, torch.Tensor):
        return (example,)
    if isinstance(example, (tuple, list)):
        if not example:
            raise ConfigError("example inputs are empty; pass a tensor, or a tuple with one tensor per model input")
        bad = [f"{i}: {type(e).__name__}" for i, e in enumerate(example) if not isinstance(e, torch.Tensor)]
        if bad:
            raise ConfigError(f"example inputs must all be tensors, but item {bad[0]}; convert with torch.as_tensor")
        return tuple(example)
    raise ConfigError(f"example inputs must be a tensor or a tuple of tensors, got {type(example).__name__}; "
                      "convert with torch.as_tensor")


def first_window(example: Any) -> tuple[torch.Tensor, ...]:
    """The first batch element of every input (batch dimension kept): what one inference sees."""
    inputs = as_inputs(example)
    for i, t in enumerate(inputs):
        if t.dim() == 0 or t.shape[0] == 0:
            raise ConfigError(f"example input {i} has shape {tuple(t.shape)}; it needs a batch dimension with at "
                              "least one window, e.g. x[:1]")
    return tuple(t[:1] for t in inputs)
