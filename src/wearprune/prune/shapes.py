"""Layer sizes of a (pruned) model as plain JSON, and rebuilding a model at those sizes.

A pruned model is the original class with some layers narrower. Saving the sizes beside the
safetensors weights lets anyone rebuild it from a fresh instance of the original class — no
pickle, no edits to the user's class definitions.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError

_RNN = (nn.GRU, nn.LSTM, nn.RNN)


def layer_shapes(model: nn.Module) -> dict[str, dict]:
    """Constructor sizes of every resizable layer, by qualified name."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            out[name] = {"type": type(m).__name__, "in_channels": m.in_channels, "out_channels": m.out_channels,
                         "groups": m.groups}
        elif isinstance(m, nn.Linear):
            out[name] = {"type": "Linear", "in_features": m.in_features, "out_features": m.out_features}
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            out[name] = {"type": type(m).__name__, "num_features": m.num_features}
        elif isinstance(m, nn.LayerNorm):
            out[name] = {"type": "LayerNorm", "normalized_shape": list(m.normalized_shape)}
        elif isinstance(m, nn.GroupNorm):
            out[name] = {"type": "GroupNorm", "num_groups": m.num_groups, "num_channels": m.num_channels}
        elif isinstance(m, _RNN):
            out[name] = {"type": type(m).__name__, "input_size": m.input_size, "hidden_size": m.hidden_size}
    return out


def apply_layer_shapes(model: nn.Module, shapes: dict[str, dict]) -> nn.Module:
    """Resize ``model``'s layers in place to ``shapes`` (from :func:`layer_shapes`); returns it."""
    current = layer_shapes(model)
    for name, want in shapes.items():
        have = current.get(name)
        if have is None or have["type"] != want["type"]:
            raise ConfigError(f"layer {name!r} ({want['type']}) is not in this model; rebuild from the same class")
        if have != want:
            _replace(model, name, _resized(model.get_submodule(name), want))
    return model


def _resized(m: nn.Module, want: dict) -> nn.Module:
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return type(m)(want["in_channels"], want["out_channels"], m.kernel_size, stride=m.stride, padding=m.padding,
                       dilation=m.dilation, groups=want["groups"], bias=m.bias is not None,
                       padding_mode=m.padding_mode)
    if isinstance(m, nn.Linear):
        return nn.Linear(want["in_features"], want["out_features"], bias=m.bias is not None)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return type(m)(want["num_features"], eps=m.eps, momentum=m.momentum, affine=m.affine,
                       track_running_stats=m.track_running_stats)
    if isinstance(m, nn.LayerNorm):
        return nn.LayerNorm(want["normalized_shape"], eps=m.eps, elementwise_affine=m.elementwise_affine)
    if isinstance(m, nn.GroupNorm):
        return nn.GroupNorm(want["num_groups"], want["num_channels"], eps=m.eps, affine=m.affine)
    kwargs = dict(input_size=want["input_size"], hidden_size=want["hidden_size"], num_layers=m.num_layers,
                  bias=m.bias, batch_first=m.batch_first, dropout=m.dropout, bidirectional=m.bidirectional)
    if isinstance(m, nn.RNN):
        kwargs["nonlinearity"] = m.nonlinearity
    return type(m)(**kwargs)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
