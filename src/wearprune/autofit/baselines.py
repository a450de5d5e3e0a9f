"""The two models a pruned winner must beat to be worth its search (Liu et al., "Rethinking the value
of network pruning", ICLR 2019):

- ``scratch``: the winner's exact architecture, freshly initialised and trained from scratch with the
  dense run's recipe for as many epochs as the winner saw in total (its teacher's plus its fine-tune);
- ``uniform_width``: the zoo model at the one width multiplier that meets the same limits, trained the
  same way.

Both are trained on the fit's training subjects and scored on its validation subjects, like the winner.
"""

from __future__ import annotations

import copy

from wearprune.errors import ConfigError

WIDTH_STEP = 1 / 64  # width multipliers tried for the uniform-width baseline: 1/64 apart
MIN_WIDTH = 1 / 32


def fresh_copy(model, seed: int):
    """``model``'s architecture with fresh weights: every layer that has an initialiser re-runs it."""
    import torch

    twin = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in twin.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return twin


def uniform_width(arch: dict, example, device, limits, int8: bool) -> float | None:
    """The largest width multiplier (on a 1/64 grid, below the run's own width) whose zoo model meets the
    hardware limits on the cost model; None when not even the narrowest does."""
    from wearprune.devices import estimate_cost
    from wearprune.models import build_model

    def fits(width: float) -> bool:
        model = build_model(arch["model"], arch["spec"], width, **arch.get("options", {}))
        return limits.fits(estimate_cost(model, example, device, int8=int8))

    low, high = MIN_WIDTH, arch["width"]
    if not fits(low):
        return None
    if fits(high):
        return high
    steps = int(round((high - low) / WIDTH_STEP))
    lo, hi = 0, steps  # fits at lo, not at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(low + mid * WIDTH_STEP) else (lo, mid)
    return round(low + lo * WIDTH_STEP, 6)


def train_baseline(model, prepared, train_config: dict, epochs: int, seed: int):
    """Train ``model`` in place like the dense run (its recipe, augmentation and patience), for ``epochs``."""
    from wearprune.train import TrainConfig
    from wearprune.train import fit as fit_model

    cfg = TrainConfig(**{**train_config, "epochs": max(1, int(epochs)), "seed": seed, "device": "auto",
                         "select_from_epoch": 1})
    return fit_model(model, prepared.train, prepared.val, cfg, target_scale=prepared.target_scale)


def build_uniform(arch: dict, width: float, seed: int):
    import torch

    from wearprune.models import build_model

    torch.manual_seed(seed)
    return build_model(arch["model"], arch["spec"], width, **arch.get("options", {}))


def total_epochs(teacher, final_epochs: int) -> int:
    """Epochs the pruned winner saw: its teacher's training (as run, early stopping included) plus its fine-tune."""
    trained = len(teacher.metrics.get("history", {}).get("epochs", []))
    if not trained:
        raise ConfigError(f"{teacher.path} has no training history in metrics.json; the from-scratch baselines need "
                          "its epoch count (fit with --no-baselines, or retrain it with this version)")
    return trained + final_epochs
