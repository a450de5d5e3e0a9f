"""Pruning engine: importance criteria, granularities (channel, neuron, weight), schedules, masks."""

from .api import METHODS, prune
from .importance import CRITERIA
from .parts import auto_parts, check_where, part_modules, split_by_part
from .schedule import SCHEDULES, CubicSchedule, IterativeSchedule, OneShot, Schedule, schedule_from_dict
from .structured import PruneSummary, group_producers, plan_removal, prune_structured, ratio_for_macs
from .weight import (
    WEIGHT_LAYERS,
    MaskKeeper,
    apply_masks,
    default_protected,
    prune_weights,
    sparsity,
    weight_masks,
    weight_params,
    zero_masks,
)

__all__ = [
    "CRITERIA", "METHODS", "PruneSummary", "plan_removal", "prune", "prune_structured", "ratio_for_macs",
    "auto_parts", "check_where", "group_producers", "part_modules", "split_by_part",
    "SCHEDULES", "WEIGHT_LAYERS", "CubicSchedule", "IterativeSchedule", "MaskKeeper", "OneShot", "Schedule",
    "apply_masks", "default_protected", "prune_weights", "schedule_from_dict", "sparsity", "weight_masks",
    "weight_params", "zero_masks",
]
