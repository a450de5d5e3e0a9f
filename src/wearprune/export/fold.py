"""Fold BatchNorm into the convolution or linear layer before it, for conversion.

litert-torch leaves a trained BatchNorm as MUL + ADD with transposes around it (it only drops
BatchNorms that are identities), which costs RAM, time and int8 accuracy on the device. Folding is
exact in eval mode.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every conv/linear → BatchNorm pair folded into one layer.
    Models torch.fx cannot trace come back unchanged (a copy)."""
    model = copy.deepcopy(model).eval()
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # dynamic control flow: convert as is
        return model
    modules = dict(gm.named_modules())
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BN):
            continue
        prev = node.args[0]
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        layer, bn = modules[prev.target], modules[node.target]
        if not bn.track_running_stats or bn.running_mean is None:
            continue
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            fused = fuse_conv_bn_eval(layer, bn)
        elif isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
            fused = fuse_linear_bn_eval(layer, bn)
        else:
            continue
        _set_module(gm, prev.target, fused)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()
        gm.delete_all_unused_submodules()
    return gm.eval()


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def check_folded(original: nn.Module, folded: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((original.eval()(x) - folded(x)).abs().max())
