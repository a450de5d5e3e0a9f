"""Structured pruning orchestrator: trace -> groups -> scores -> plan -> physical removal."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..graph.dependency import build_graph
from ..layers import as_inputs, rule_for
from ..profile import count_macs, count_params
from .channel import remove_units
from .groups import Group, build_groups
from .importance import NEEDS_CALIB, ImportanceContext, get_criterion
from .parts import check_where, part_modules, split_by_part
from .weight import default_protected


@dataclass
class LayerWidth:
    group: str
    before: int
    after: int


@dataclass
class PruneSummary:
    method: str
    ratio: float
    importance: str
    scope: str
    layers: list[LayerWidth] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0
    notes: list[str] = field(default_factory=list)
    where: list[str] | None = None  # the part this step was restricted to (module-name patterns)
    skipped: list[str] = field(default_factory=list)  # groups straddling the part's edge, left alone
    changed: list[str] = field(default_factory=list)  # modules whose parameters changed shape

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def mac_ratio(self) -> float:
        return self.macs_before / max(self.macs_after, 1)


def prune_structured(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    method: str = "channel",
    ratio: float = 0.5,
    importance: str = "l2",
    scope: str = "local",
    min_channels: int = 1,
    round_to: int = 1,
    protected: tuple[str, ...] | None = None,
    calib: tuple[torch.Tensor, torch.Tensor] | None = None,
    task: str = "classification",
    seed: int = 0,
    strict: bool = False,
    ratios: dict[str, float] | None = None,
    where: str | Sequence[str] | None = None,
) -> tuple[nn.Module, PruneSummary]:
    """Remove ``ratio`` of the prunable units (channels, neurons, RNN hidden units) physically.

    ``ratios`` ({group name: ratio}, local scope) overrides ``ratio`` per group: what a search over
    per-layer amounts proposes. ``where`` (module-name patterns, :mod:`wearprune.prune.parts`) restricts
    the step to the groups produced inside that part; ``ratio`` and a global ranking then cover those
    groups only. ``example_inputs``: a tensor, or a tuple with one tensor per model input. Returns a new
    model; ``model`` is left untouched.
    """
    example_inputs = as_inputs(example_inputs)
    _check(method, ratio, scope, min_channels, round_to)
    for name, r in (ratios or {}).items():
        if not 0 <= r < 1:
            raise ConfigError(f"ratio for group {name!r} must be in [0, 1), got {r}")
    criterion = get_criterion(importance)
    if importance in NEEDS_CALIB and calib is None:
        raise ConfigError(f"importance {importance!r} needs calibration windows (calib=(X, y))")
    work = copy.deepcopy(model).eval()
    protected = tuple(protected) if protected is not None else default_protected(work)
    graph = build_graph(work, example_inputs, strict=strict)
    groups = build_groups(graph, protected)
    if method == "neuron":
        groups = [g for g in groups if all(getattr(rule_for(work.get_submodule(p)), "neurons", False)
                                           for p in g.producers)]
    unknown = set(ratios or {}) - {g.name for g in groups}
    if unknown:
        raise ConfigError(f"no prunable group named {', '.join(sorted(unknown))}; groups: "
                          f"{', '.join(g.name for g in groups)}")
    patterns, skipped = None, []
    if where is not None:
        patterns = list(check_where(where))
        groups, skipped = _in_part(work, groups, patterns, method)
        outside = sorted(set(ratios or {}) - {g.name for g in groups})
        if outside:  # a ratio that would silently do nothing is a mistake in the recipe
            raise ConfigError(f"ratios name group(s) outside where={patterns}: {', '.join(outside)}")
    ctx = ImportanceContext(work, graph, calib, task, seed)
    scores = {g.name: np.asarray(criterion(g, ctx), dtype=np.float64) for g in groups}
    removed = plan_removal(groups, scores, ratio, scope, min_channels, round_to, ratios)
    summary = PruneSummary(method, ratio, importance, scope,
                           params_before=count_params(model), macs_before=count_macs(model, example_inputs))
    remove_units(work, graph, {r for g in groups for r in removed.get(g.name, ())})
    summary.layers = [LayerWidth(g.name, g.size, g.size - len(removed.get(g.name, ()))) for g in groups]
    summary.params_after = count_params(work)
    summary.macs_after = count_macs(work, example_inputs)
    summary.notes = ctx.notes + [f"frozen: {f}" for f in graph.frozen_by]
    summary.where, summary.skipped, summary.changed = patterns, skipped, _changed(model, work)
    return work, summary


def _in_part(model: nn.Module, groups: list[Group], patterns: list[str], method: str) -> tuple[list[Group], list[str]]:
    """The groups produced inside the part, and those straddling its edge (left alone)."""
    inside, straddling = split_by_part({g.name: g.producers for g in groups}, part_modules(model, patterns))
    if not inside:
        why = f"; groups straddling its edge: {', '.join(straddling)}" if straddling else ""
        raise ConfigError(f"where={patterns} holds no prunable {method} group (protected, frozen or none "
                          f"produced there){why}; groups: {', '.join(g.name for g in groups) or 'none'}")
    return [g for g in groups if g.name in inside], straddling


def _changed(before: nn.Module, after: nn.Module) -> list[str]:
    """Modules of ``after`` whose parameter or buffer shapes differ from ``before``'s."""
    old = {k: tuple(v.shape) for k, v in before.state_dict().items()}
    return sorted({k.rpartition(".")[0] for k, v in after.state_dict().items() if old.get(k) != tuple(v.shape)})


def group_producers(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...], *,
                    protected: tuple[str, ...] | None = None, strict: bool = False) -> dict[str, tuple[str, ...]]:
    """The prunable groups a channel step sees ({group name: its producing layers}), default protection as in
    :func:`prune_structured`: what a search or a part assigns ratios and criteria to."""
    work = copy.deepcopy(model).eval()
    protected = tuple(protected) if protected is not None else default_protected(work)
    graph = build_graph(work, as_inputs(example_inputs), strict=strict)
    return {g.name: g.producers for g in build_groups(graph, protected)}


def plan_removal(groups: list[Group], scores: dict[str, np.ndarray], ratio: float, scope: str,
                 min_channels: int = 1, round_to: int = 1,
                 ratios: dict[str, float] | None = None) -> dict[str, list[int]]:
    """Which unit roots to remove from each group, lowest scores first."""
    if scope == "local" or ratios:
        keep = {g.name: g.size - int(round((ratios or {}).get(g.name, ratio) * g.size)) for g in groups}
    else:
        keep = _global_keep(groups, scores, ratio, min_channels)
    removed = {}
    for g in groups:
        k = _rounded_keep(keep[g.name], g.size, min_channels, round_to)
        order = np.argsort(scores[g.name], kind="stable")  # ascending: least important first
        removed[g.name] = [g.roots[i] for i in order[: g.size - k]]
    return removed


def _global_keep(groups, scores, ratio, min_channels) -> dict[str, int]:
    """Rank all units together; each group's scores are divided by their mean so layers of
    different scale compete fairly."""
    pooled = []
    for g in groups:
        s = scores[g.name]
        norm = s / (s.mean() + 1e-12) if s.size else s
        pooled += [(v, g.name) for v in norm.tolist()]
    pooled.sort(key=lambda t: t[0])
    total = sum(g.size for g in groups)
    target = int(round(ratio * total))
    keep = {g.name: g.size for g in groups}
    floor = {g.name: min(g.size, max(1, min_channels)) for g in groups}
    removed = 0
    for _, name in pooled:
        if removed >= target:
            break
        if keep[name] > floor[name]:
            keep[name] -= 1
            removed += 1
    return keep


def _rounded_keep(keep: int, size: int, min_channels: int, round_to: int) -> int:
    keep = max(keep, min(size, max(1, min_channels)))
    if round_to > 1:
        keep = min(size, int(math.ceil(keep / round_to) * round_to))
    return keep


def _check(method, ratio, scope, min_channels, round_to) -> None:
    if method not in ("channel", "neuron"):
        raise ConfigError(f"unknown structured method {method!r}; use channel or neuron")
    if not 0 <= ratio < 1:
        raise ConfigError(f"ratio must be in [0, 1) (the fraction of units removed), got {ratio}")
    if scope not in ("local", "global"):
        raise ConfigError(f"scope must be local or global, got {scope!r}")
    if min_channels < 1 or round_to < 1:
        raise ConfigError("min_channels and round_to must be at least 1")


def ratio_for_macs(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...], target_macs: int, *,
                   tolerance: float = 0.01, max_ratio: float = 0.98,
                   **options) -> tuple[float, nn.Module, PruneSummary]:
    """The smallest channel ratio whose pruned model has at most ``target_macs`` (bisection).

    Returns (ratio, pruned model, summary); ConfigError when even ``max_ratio`` cannot reach it
    (frozen or protected layers put a floor under the MACs).
    """
    lo, hi = 0.0, max_ratio
    best = prune_structured(model, example_inputs, ratio=hi, **options)
    if best[1].macs_after > target_macs:
        raise ConfigError(f"cannot reach {target_macs:,} MACs: pruning {hi:.0%} of the channels leaves "
                          f"{best[1].macs_after:,} (frozen or protected layers); lower the target")
    best_ratio = hi
    for _ in range(12):
        mid = (lo + hi) / 2
        pruned, summary = prune_structured(model, example_inputs, ratio=mid, **options)
        if summary.macs_after <= target_macs:
            hi, best, best_ratio = mid, (pruned, summary), mid
        else:
            lo = mid
        if hi - lo < tolerance:
            break
    return best_ratio, best[0], best[1]
