"""The layer rule and its registry: one object per ``nn.Module`` type says everything wearprune needs.

Who reads a rule:

- the dependency graph (:mod:`wearprune.graph`): ``couple`` maps the layer's input channel ids to its
  output ids and records which parameter dimensions read or make which channels;
- the pruner: ``shapes`` / ``resize`` (rebuild at other sizes), ``sync`` / ``rebuild`` (after its
  parameters were sliced), ``weights`` (weight pruning), ``weighted`` (importance reads its filters),
  ``neurons`` (the neuron method), ``scale`` (Network Slimming and ``bn_scale``);
- the MAC counter and the cost model: ``macs`` and ``lower`` (the TFLite kernels it becomes);
- export: ``fold`` (folded into the conv/linear before it) and ``export`` (an equivalent module that
  litert-torch converts).

Rules are looked up along the module's MRO, so a subclass of a registered type gets its parent's rule
unless it has its own. A module type with a rule is a leaf of every trace (:func:`trace`): the graph,
the cost model and folding see the call, not what its ``forward`` does inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from ..errors import ConfigError

# Kernel kinds of the lowered graph (what the cost model prices).
CONV, DEPTHWISE, DENSE, RECURRENT, ELEMENTWISE, POOL, REDUCE, LAYOUT, PAD, CONCAT = (
    "conv", "depthwise", "dense", "recurrent", "elementwise", "pool", "reduce", "layout", "pad", "concat")
MAC_KINDS = (CONV, DEPTHWISE, DENSE, RECURRENT)


@dataclass
class Call:
    """One call of a module in the traced forward pass, as a rule sees it."""

    name: str  # qualified module name
    module: nn.Module
    node: fx.Node
    x: Any  # the walker's value for the first input: an id tensor (graph) or a tensor id (lowering)
    inp: Any  # the real first input
    out: Any  # the real output
    macs: int = 0  # filled by the lowering from the rule's ``macs``


@dataclass(frozen=True)
class LayerRule:
    """What one layer type means. Every field is optional; a missing one means "not supported" there.

    ``couple(tracer, call) -> id tensor`` uses :class:`wearprune.graph.ChannelTracer`'s public methods;
    ``lower(lowerer, call) -> tensor id`` uses :class:`wearprune.devices.lower.Lowerer`'s.
    """

    couple: Callable[[Any, Call], Any] | None = None
    lower: Callable[[Any, Call], Any] | None = None
    macs: Callable[[nn.Module, Any, Any], int] | None = None  # (module, input, output) -> MACs, batch element 0
    shapes: Callable[[nn.Module], dict] | None = None  # constructor sizes, JSON-safe
    resize: Callable[[nn.Module, dict], nn.Module] | None = None  # a new module at the sizes ``shapes`` gives
    sync: Callable[[nn.Module], None] | None = None  # update size attributes after parameters were sliced
    rebuild: Callable[[nn.Module, dict[str, torch.Tensor]], nn.Module] | None = None  # when slicing in place can't
    fold: Callable[[nn.Module, nn.Module], nn.Module | None] | None = None  # (previous layer, this) -> fused
    export: Callable[[nn.Module], nn.Module] | None = None  # an equivalent module litert-torch can convert
    weights: tuple[str, ...] | Callable[[nn.Module], tuple[str, ...]] = ()  # weight tensors weight pruning ranks
    weighted: bool = False  # its output rows are filters/neurons: magnitude criteria read them
    neurons: bool = False  # pruned by the ``neuron`` method
    scale: str | None = None  # the per-channel scale parameter (``bn_scale``, slimming)
    identity: bool = False  # an identity at inference (dropout): vanishes from the lowered graph

    def weight_names(self, module: nn.Module) -> tuple[str, ...]:
        return tuple(self.weights(module)) if callable(self.weights) else tuple(self.weights)


_RULES: dict[type, LayerRule] = {}


def register_layer(nn_type: type, rule: LayerRule) -> None:
    """Register (or replace) the rule for ``nn_type`` and its subclasses."""
    if not (isinstance(nn_type, type) and issubclass(nn_type, nn.Module)):
        raise ConfigError(f"register_layer needs an nn.Module subclass, got {nn_type!r}")
    if not isinstance(rule, LayerRule):
        raise ConfigError(f"register_layer needs a LayerRule, got {type(rule).__name__}")
    _RULES[nn_type] = rule


def unregister_layer(nn_type: type) -> LayerRule | None:
    """Remove the rule registered for exactly ``nn_type`` (subclasses fall back to their parent's); returns it."""
    return _RULES.pop(nn_type, None)


def rule_for(module: nn.Module | type) -> LayerRule | None:
    """The rule of ``module`` (an instance or a type): the nearest registered type along its MRO."""
    cls = module if isinstance(module, type) else type(module)
    for base in cls.__mro__:
        rule = _RULES.get(base)
        if rule is not None:
            return rule
    return None


def registered_layers() -> dict[type, LayerRule]:
    """Every registered type and its rule (a copy)."""
    return dict(_RULES)


def types_with(predicate: Callable[[LayerRule], bool]) -> tuple[type, ...]:
    """Registered types whose rule satisfies ``predicate`` (e.g. ``lambda r: r.neurons``)."""
    return tuple(t for t, r in _RULES.items() if predicate(r))


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        # a registered layer is one call, whatever its forward does inside (users' own types included)
        return rule_for(m) is not None or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx.symbolic_trace`` with every registered layer type kept as a leaf call."""
    graph = _Tracer().trace(model)
    return fx.GraphModule(model, graph, type(model).__name__)
