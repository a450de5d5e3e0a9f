"""Physical channel / neuron removal: slice every parameter along the recorded dimensions and
update the layers' sizes, so the pruned model is really smaller and faster."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..graph.dependency import DependencyGraph
from .shapes import _replace, _resized


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
        if isinstance(m, (nn.GRU, nn.LSTM, nn.RNN)):
            _replace(model, module, _rebuilt_rnn(m, sliced))
        else:
            for p, t in sliced.items():
                old = getattr(m, p)
                if isinstance(old, nn.Parameter):
                    setattr(m, p, nn.Parameter(t, requires_grad=old.requires_grad))
                else:
                    m.register_buffer(p, t)
            _update_sizes(m)
    return model


def _slice(t: torch.Tensor, dims: dict[int, np.ndarray]) -> torch.Tensor:
    out = t.detach()
    for dim, keep in dims.items():
        if not keep.all():
            out = out.index_select(dim, torch.from_numpy(np.flatnonzero(keep)).to(out.device))
    return out.clone()


def _update_sizes(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        depthwise = m.groups == m.in_channels and m.groups > 1
        multiplier = m.out_channels // m.in_channels  # outputs per input channel (depthwise)
        m.out_channels = m.weight.shape[0]
        if depthwise:
            m.in_channels = m.groups = m.out_channels // multiplier
        else:
            m.in_channels = m.weight.shape[1] * m.groups
    elif isinstance(m, nn.Linear):
        m.out_features, m.in_features = m.weight.shape
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        m.num_features = m.running_mean.shape[0] if m.running_mean is not None else m.weight.shape[0]
    elif isinstance(m, nn.LayerNorm):
        m.normalized_shape = (m.weight.shape[0],) if m.weight is not None else m.normalized_shape
    elif isinstance(m, nn.GroupNorm):
        n = m.weight.shape[0]
        m.num_groups = n if m.num_groups == m.num_channels else m.num_groups
        m.num_channels = n


def _rebuilt_rnn(m: nn.RNNBase, params: dict[str, torch.Tensor]) -> nn.RNNBase:
    # nn.GRU/LSTM keep their sizes in flattened weight buffers: build a new module, copy the slices.
    gates = {nn.GRU: 3, nn.LSTM: 4}.get(type(m), 1)
    sizes = {"input_size": params["weight_ih_l0"].shape[1], "hidden_size": params["weight_hh_l0"].shape[0] // gates}
    new = _resized(m, sizes).to(params["weight_hh_l0"].device)
    with torch.no_grad():
        for name, t in params.items():
            getattr(new, name).copy_(t)
    new.train(m.training)
    return new
