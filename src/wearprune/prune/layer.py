"""Layer / block pruning: remove whole blocks whose removal hurts least.

Candidates are blocks (modules with children and weights) whose output has the shape of their
input — they become an identity — or that hold a shortcut child producing the block's output
shape (a projection shortcut) — they become that shortcut. Blocks are ranked by the loss increase
on calibration windows when each is removed alone ("loss"), or by how similar the block's output
is to its input ("similarity": a block that barely changes its input is redundant).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers import as_inputs, first_window, rule_for
from ..profile import count_macs, count_params
from .parts import check_where, part_modules
from .shapes import replace_module

_SHORTCUT_NAMES = ("shortcut", "downsample", "skip", "proj")


@dataclass
class BlockCandidate:
    name: str
    replacement: str  # "identity" or the name of the shortcut child


def block_candidates(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...],
                     protected: tuple[str, ...] = ()) -> list[BlockCandidate]:
    """Blocks that can be replaced by an identity or their shortcut (``example``: a tensor or a tuple of them)."""
    shapes = _io_shapes(model, example)
    found = []
    for name, m in model.named_modules():
        if not name or name not in shapes or not list(m.children()) or _covers(name, protected):
            continue
        if not any(getattr(rule_for(c), "weighted", False) for c in m.modules()):
            continue
        shape_in, shape_out = shapes[name]
        if shape_in == shape_out:
            found.append(BlockCandidate(name, "identity"))
            continue
        for child in _SHORTCUT_NAMES:
            key = f"{name}.{child}"
            if key in shapes and shapes[key] == (shape_in, shape_out):
                found.append(BlockCandidate(name, child))
                break
    # A block inside another candidate block is still a candidate; overlaps are resolved when removing.
    return found


def remove_blocks(model: nn.Module, removals: dict[str, str]) -> nn.Module:
    """Replace each named block in place by an identity or by its shortcut child."""
    for name in sorted(removals, key=lambda n: n.count(".")):  # outer blocks first
        try:
            block = model.get_submodule(name)
        except AttributeError:
            continue  # inside a block removed already
        how = removals[name]
        replace_module(model, name, nn.Identity() if how == "identity" else block.get_submodule(how))
    return model


def prune_layers(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], *, ratio: float = 0.25,
                 importance: str = "loss", calib: tuple[torch.Tensor, torch.Tensor] | None = None,
                 task: str = "classification", protected: tuple[str, ...] = (),
                 where: str | Sequence[str] | None = None) -> tuple[nn.Module, dict]:
    """Remove ``ratio`` of the candidate blocks, least harmful first; returns (new model, summary).

    ``where`` (module-name patterns, :mod:`wearprune.prune.parts`): only blocks in that part are candidates.

    A model without any candidate block is a ConfigError: "removing" nothing would report a model
    1.00x smaller as if it had worked."""
    example = as_inputs(example)
    if not 0 <= ratio < 1:
        raise ConfigError(f"ratio must be in [0, 1) (the fraction of blocks removed), got {ratio}")
    if importance not in ("loss", "similarity"):
        raise ConfigError(f"layer pruning ranks blocks by loss or similarity, not {importance!r}")
    if calib is None:
        raise ConfigError("layer pruning measures each block on calibration windows; pass calib=(X, y)")
    work = copy.deepcopy(model).eval()
    candidates = block_candidates(work, example, protected)
    if where is not None:
        part = part_modules(work, where)
        candidates = [c for c in candidates if c.name in part]
    if not candidates:
        scope = f" in where={list(check_where(where))}" if where is not None else ""
        scope += " outside the protected modules" if protected else ""
        raise ConfigError(f"this model has no removable block{scope} (residual/TCN/separable); use method channel "
                          "or weight")
    scores = _loss_increase(work, candidates, calib, task) if importance == "loss" else \
        _similarity_cost(work, candidates, calib[0])
    order = sorted(range(len(candidates)), key=lambda i: scores[i])
    target = int(round(ratio * len(candidates)))
    chosen: dict[str, str] = {}
    for i in order:
        if len(chosen) >= target:
            break
        c = candidates[i]
        if any(_nested(c.name, other) for other in chosen):
            continue  # a block inside (or around) one already removed
        chosen[c.name] = c.replacement
    remove_blocks(work, chosen)
    summary = {
        "method": "layer", "ratio": ratio, "importance": importance,
        "candidates": {c.name: float(s) for c, s in zip(candidates, scores)},
        "removed": chosen,
        "where": list(check_where(where)) if where is not None else None,
        "params_before": count_params(model), "params_after": count_params(work),
        "macs_before": count_macs(model, example), "macs_after": count_macs(work, example),
    }
    return work, summary


def _io_shapes(model: nn.Module, example) -> dict[str, tuple]:
    shapes, handles = {}, []
    for name, m in model.named_modules():
        def hook(mod, args, out, name=name):
            if args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
                shapes[name] = (tuple(args[0].shape[1:]), tuple(out.shape[1:]))
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(*first_window(example))
    finally:
        for h in handles:
            h.remove()
    return shapes


def _loss(model, calib, task) -> float:
    x, y = calib
    with torch.no_grad():
        out = model(*as_inputs(x))
        if task == "classification":
            return float(F.cross_entropy(out, y.long()))
        return float(F.mse_loss(out[:, 0], y.float()))


def _loss_increase(model, candidates, calib, task) -> list[float]:
    base = _loss(model, calib, task)
    scores = []
    for c in candidates:
        trial = remove_blocks(copy.deepcopy(model), {c.name: c.replacement})
        scores.append(_loss(trial, calib, task) - base)
    return scores


def _similarity_cost(model, candidates, x) -> list[float]:
    """1 - cosine similarity of a block's input and output (only for identity-shaped blocks)."""
    io: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for c in candidates:
        def hook(mod, args, out, name=c.name):
            io[name] = (args[0].detach().flatten(1), out.detach().flatten(1))
        handles.append(model.get_submodule(c.name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*as_inputs(x))
    finally:
        for h in handles:
            h.remove()
    scores = []
    for c in candidates:
        a, b = io[c.name]
        if a.shape != b.shape:
            scores.append(float("inf"))  # projection blocks: similarity is undefined, keep them
        else:
            scores.append(float(1 - F.cosine_similarity(a, b, dim=1).mean()))
    return scores


def _covers(name: str, protected: tuple[str, ...]) -> bool:
    return any(p == name or p.startswith(name + ".") or name.startswith(p + ".") for p in protected)


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")
