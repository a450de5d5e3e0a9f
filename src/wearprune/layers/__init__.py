"""One rule per layer type, and the one place example inputs are normalised.

A :class:`LayerRule` says what an ``nn.Module`` type means to every part of wearprune: how channels
flow through it (the pruning graph), how to resize it, its MACs, the TFLite kernels it becomes (the
cost model), whether it folds into the layer before it, and which weights are prunable. The graph,
the pruner, the MAC counter, the cost model and export all read the registry; register your own
layer types with :func:`register_layer`::

    from wearprune.layers import LayerRule, channelwise, elementwise, register_layer

    class Scale(nn.Module):                      # y = x * w[c]: a learned per-channel gain
        def __init__(self, c):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(c))

        def forward(self, x):
            return x * self.weight[:, None]

    register_layer(Scale, LayerRule(couple=channelwise("weight"), lower=elementwise("MUL"),
                                    shapes=lambda m: {"channels": m.weight.numel()},
                                    resize=lambda m, s: Scale(s["channels"])))
"""

from . import builtin as _builtin  # noqa: F401  (registers the torch.nn rules)
from .builtin import AdaptiveMaxAsPool, channelwise, conv_macs, elementwise, linear_macs, passthrough, rnn_macs
from .inputs import as_inputs, first_window
from .rule import (
    CONCAT,
    CONV,
    DENSE,
    DEPTHWISE,
    ELEMENTWISE,
    LAYOUT,
    MAC_KINDS,
    PAD,
    POOL,
    RECURRENT,
    REDUCE,
    Call,
    LayerRule,
    register_layer,
    registered_layers,
    rule_for,
    trace,
    types_with,
    unregister_layer,
)

__all__ = [
    "CONCAT", "CONV", "DENSE", "DEPTHWISE", "ELEMENTWISE", "LAYOUT", "MAC_KINDS", "PAD", "POOL", "RECURRENT", "REDUCE",
    "AdaptiveMaxAsPool", "Call", "LayerRule", "as_inputs", "channelwise", "conv_macs", "elementwise", "first_window",
    "linear_macs", "passthrough", "register_layer", "registered_layers", "rnn_macs", "rule_for", "trace",
    "types_with", "unregister_layer",
]
