"""When to prune: during training (gradual magnitude pruning on a schedule; Network Slimming's L1
penalty on BatchNorm scales). Before training (SNIP at initialisation) and after training
(one-shot or iterative prune -> fine-tune cycles) are driven from ``wearprune.pipeline``."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import rule_for
from .schedule import CubicSchedule
from .weight import apply_masks, weight_masks


class GradualWeightPruning:
    """Call after every optimiser step: at the schedule's update steps the masks are recomputed at
    the scheduled sparsity (Zhu & Gupta 2017); between updates they are re-applied."""

    def __init__(self, model: nn.Module, schedule: CubicSchedule, scope: str = "global"):
        self.model, self.schedule, self.scope = model, schedule, scope
        self.step_count = 0
        self.masks: dict[str, torch.Tensor] | None = None

    def __call__(self) -> None:
        t = self.step_count
        self.step_count += 1
        if self.schedule.should_update(t):
            target = self.schedule.sparsity_at(t)
            if target > 0:
                self.masks = weight_masks(self.model, target, scope=self.scope)
        if self.masks is not None:
            apply_masks(self.model, self.masks)

    @property
    def sparsity(self) -> float:
        return self.schedule.sparsity_at(max(self.step_count - 1, 0))


def bn_l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |gamma| over the normalisation layers (those whose rule names a ``scale``: BatchNorm,
    LayerNorm, GroupNorm): Network Slimming's sparsity push on the channel scales ``bn_scale`` ranks."""
    terms = []
    for m in model.modules():
        rule = rule_for(m)
        scale = getattr(m, rule.scale, None) if rule is not None and rule.scale else None
        if scale is not None:
            terms.append(scale.abs().sum())
    return torch.stack(terms).sum() if terms else torch.zeros(())
