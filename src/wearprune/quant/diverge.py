"""Where an int8 model parts from its fp32 original: the layer to name when int8 outputs diverge.

The converted pt2e graph keeps the fp32 graph's node names and adds a quantise/dequantise pair
after every activation that becomes int8. Running both graphs on the same windows gives, at each of
those points, the relative error int8 has accumulated so far; the layer where it grows most is
where precision is lost (a wide activation range, an outlier channel). The error is taken per
channel (dim 1) and averaged, so channels crushed by one outlier channel's range are seen even
though the outlier itself dominates the tensor's norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx


@dataclass(frozen=True)
class LayerError:
    layer: str  # module path in the PyTorch model ("" when the op sits at the top level)
    node: str
    relative_error: float  # mean over channels of ||int8 - fp32|| / ||fp32|| of this activation
    added: float  # relative_error minus the error at the previous int8 activation


def _outputs(gm: fx.GraphModule, args) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                seen[n.name] = out.detach()
            return out

    with torch.no_grad():
        _Recorder(gm).run(*args)
    return seen


def _module_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def layer_errors(fp32_graph: fx.GraphModule, int8_graph: fx.GraphModule, inputs) -> list[LayerError]:
    """Relative error at every int8 activation, in graph order, over ``inputs``: batch-1 input tuples,
    or a tensor of windows for a single-input graph."""
    if isinstance(inputs, torch.Tensor):
        inputs = [(inputs[i : i + 1],) for i in range(len(inputs))]
    points = []  # (fp32 node name, dequantised node name) for each quantise → dequantise pair
    for n in int8_graph.graph.nodes:
        if n.op == "call_function" and "quantize_per_tensor" in str(n.target) and "dequantize" not in str(n.target):
            source = n.args[0]
            dq = [u for u in n.users if "dequantize" in str(u.target)]
            if isinstance(source, fx.Node) and dq and source.op != "placeholder":
                points.append((source, dq[0].name))
    diff: dict[str, torch.Tensor] = {}
    norm: dict[str, torch.Tensor] = {}
    for args in inputs:
        ref = _outputs(fp32_graph, args)
        got = _outputs(int8_graph, args)
        for source, dq in points:
            r = ref.get(source.name)
            if r is not None and dq in got and r.shape == got[dq].shape and r.dim() >= 2:
                dims = [d for d in range(r.dim()) if d != 1]
                diff[source.name] = diff.get(source.name, 0) + (got[dq] - r).pow(2).sum(dims)
                norm[source.name] = norm.get(source.name, 0) + r.pow(2).sum(dims)
    errors, previous = [], 0.0
    for source, _ in points:
        live = norm[source.name] > 0 if source.name in norm else None
        if live is None or not bool(live.any()):
            continue
        rel = float((diff[source.name][live] / norm[source.name][live]).sqrt().mean())
        errors.append(LayerError(_module_path(source), source.name, rel, rel - previous))
        previous = rel
    return errors


LOST = 0.5  # mean per-channel relative error at which an activation has lost its information


def worst_layer(errors: list[LayerError]) -> LayerError | None:
    """Where int8 loses precision: the first activation past ``LOST`` (later layers only inherit
    its error), else the one that adds the most error."""
    lost = [e for e in errors if e.relative_error > LOST]
    return lost[0] if lost else max(errors, key=lambda e: e.added, default=None)
