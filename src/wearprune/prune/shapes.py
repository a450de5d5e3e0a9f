"""Layer sizes of a (pruned) model as plain JSON, and rebuilding a model at those sizes.

A pruned model is the original class with some layers narrower. Saving the sizes beside the
safetensors weights lets anyone rebuild it from a fresh instance of the original class — no
pickle, no edits to the user's class definitions. Which layers have sizes, and how to rebuild one,
is their layer rule's ``shapes`` / ``resize`` (:mod:`wearprune.layers`).
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ..layers import rule_for


def layer_shapes(model: nn.Module) -> dict[str, dict]:
    """Constructor sizes of every resizable layer, by qualified name."""
    out = {}
    for name, m in model.named_modules():
        rule = rule_for(m)
        if rule is not None and rule.shapes is not None:
            out[name] = {"type": type(m).__name__, **rule.shapes(m)}
    return out


def apply_layer_shapes(model: nn.Module, shapes: dict[str, dict]) -> nn.Module:
    """Resize ``model``'s layers in place to ``shapes`` (from :func:`layer_shapes`); returns it."""
    current = layer_shapes(model)
    for name, want in shapes.items():
        have = current.get(name)
        if have is None or have["type"] != want["type"]:
            raise ConfigError(f"layer {name!r} ({want['type']}) is not in this model; rebuild from the same class")
        if have != want:
            replace_module(model, name, resized(model.get_submodule(name), want))
    return model


def resized(m: nn.Module, want: dict) -> nn.Module:
    """A new ``m`` at the sizes ``want`` (as :func:`layer_shapes` gives them), from its layer rule."""
    rule = rule_for(m)
    if rule is None or rule.resize is None:
        raise ConfigError(f"layer type {type(m).__name__} cannot be resized; give its rule a resize "
                          "(wearprune.layers.register_layer)")
    return rule.resize(m, want)


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule ``name`` is."""
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


_resized, _replace = resized, replace_module  # the old private names
