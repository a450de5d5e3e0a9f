"""Fold BatchNorm into the convolution or linear layer before it, for conversion.

litert-torch leaves a trained BatchNorm as MUL + ADD with transposes around it (it only drops
BatchNorms that are identities), which costs RAM, time and int8 accuracy on the device. Folding is
exact in eval mode. Which layers fold into which is their layer rule's ``fold``; a rule's
``export`` also swaps in an equal module litert-torch can convert (adaptive max pooling becomes
plain max pooling).
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from wearprune.layers import rule_for, trace


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` ready for conversion: every layer → BatchNorm pair folded into one
    layer, and layers litert-torch cannot convert replaced by their rule's equal module. Models
    torch.fx cannot trace are not folded (a copy, with the replacements)."""
    model = copy.deepcopy(model).eval()
    try:
        gm = trace(model)
    except Exception:  # dynamic control flow: convert as is
        return _for_export(model)
    modules = dict(gm.named_modules())
    changed = False
    for node in list(gm.graph.nodes):
        rule = rule_for(modules.get(node.target)) if node.op == "call_module" else None
        if rule is None or rule.fold is None:
            continue
        prev = node.args[0]
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        fused = rule.fold(modules[prev.target], modules[node.target])
        if fused is None:
            continue
        _set_module(gm, prev.target, fused)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()
        gm.delete_all_unused_submodules()
    return _for_export(gm).eval()


def _for_export(model: nn.Module) -> nn.Module:
    """Replace, in place, every module whose rule has an ``export`` form by that form."""
    for name, m in list(model.named_modules()):
        rule = rule_for(m)
        if name and rule is not None and rule.export is not None:
            _set_module(model, name, rule.export(m))
    return model


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def check_folded(original: nn.Module, folded: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((original.eval()(x) - folded(x)).abs().max())
