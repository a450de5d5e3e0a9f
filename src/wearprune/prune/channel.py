"""Physical channel / neuron removal: slice every parameter along the recorded dimensions and
update the layers' sizes, so the pruned model is really smaller and faster."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..graph.dependency import DependencyGraph
from ..layers import rule_for
from .shapes import replace_module


def keep_masks(graph: DependencyGraph, removed: set[int]) -> dict[tuple[str, str], dict[int, np.ndarray]]:
    """For each (module, param): dim -> boolean keep mask, from the removed unit roots."""
    masks: dict[tuple[str, str], dict[int, np.ndarray]] = {}
    for pd in graph.param_dims:
        roots = graph.uf.roots(pd.ids)
        keep = ~np.isin(roots, list(removed)) if removed else np.ones(len(roots), bool)
        entry = masks.setdefault((pd.module, pd.param), {})
        entry[pd.dim] = entry[pd.dim] & keep if pd.dim in entry else keep
    return masks


def remove_units(model: nn.Module, graph: DependencyGraph, removed: set[int]) -> nn.Module:
    """Remove the units (union-find roots) in ``removed`` from ``model`` in place; returns it."""
    masks = keep_masks(graph, removed)
    by_module: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    for (module, param), dims in masks.items():
        by_module.setdefault(module, {})[param] = dims
    for module, params in by_module.items():
        m = model.get_submodule(module)
        sliced = {p: _slice(getattr(m, p), dims) for p, dims in params.items()}
        rule = rule_for(m)
        if rule is not None and rule.rebuild is not None:  # sizes live where slicing cannot reach (RNN)
            replace_module(model, module, rule.rebuild(m, sliced))
            continue
        for p, t in sliced.items():
            old = getattr(m, p)
            if isinstance(old, nn.Parameter):
                setattr(m, p, nn.Parameter(t, requires_grad=old.requires_grad))
            else:
                m.register_buffer(p, t)
        if rule is not None and rule.sync is not None:
            rule.sync(m)
    return model


def _slice(t: torch.Tensor, dims: dict[int, np.ndarray]) -> torch.Tensor:
    out = t.detach()
    for dim, keep in dims.items():
        if not keep.all():
            out = out.index_select(dim, torch.from_numpy(np.flatnonzero(keep)).to(out.device))
    return out.clone()
