"""PyTorch → TFLite flatbuffer through litert-torch (no TensorFlow needed).

fp32: the model as is, BatchNorm folded. int8 (``wearprune.quant``): torchao's pt2e flow with the
quantizer litert-torch ships (per-channel symmetric weights, per-tensor activations calibrated on the
windows given), so the flatbuffer has int8 input and output, int8 weights and int32 biases; where
pt2e fails, ai-edge-quantizer quantises the fp32 flatbuffer instead.
"""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np
import torch
from torch import nn

from wearprune.errors import ConfigError
from wearprune.export.fold import fold_batchnorm
from wearprune.quant.pt2e import Int8Graph, calibration_inputs, ptq
from wearprune.quiet import quiet


def to_tflite(model, example: torch.Tensor | tuple[torch.Tensor, ...], *, int8: bool = False,
              calibration=None, quantizer: str = "auto") -> bytes:
    """The ``.tflite`` bytes of ``model`` for batch-1 inputs shaped like ``example[:1]``.

    ``example`` may be a tuple of tensors for a model with several inputs (a streaming step with its
    states); int8 calibration is then a sequence of input tuples. ``model`` may also be an already
    quantised ``wearprune.quant.Int8Graph`` (from ``ptq`` or ``qat``).
    """
    if int8 or isinstance(model, Int8Graph):
        return to_tflite_int8(model, example, calibration, quantizer=quantizer)[0]
    examples = example if isinstance(example, tuple) else (example,)
    args = tuple(torch.as_tensor(e[:1], dtype=torch.float32) for e in examples)
    return _convert(fold_batchnorm(model), args)


def to_tflite_int8(model, example, calibration=None, *, quantizer: str = "auto") -> tuple[bytes, str, Int8Graph | None]:
    """Full-integer int8 flatbuffer: (bytes, the path that made it, the pt2e graph when pt2e did).

    ``quantizer``: ``pt2e`` (torchao + litert-torch's quantizer), ``ai-edge-quantizer`` (quantise
    the fp32 flatbuffer), or ``auto``: pt2e, falling back to ai-edge-quantizer where pt2e fails.
    """
    if quantizer not in ("auto", "pt2e", "ai-edge-quantizer"):
        raise ConfigError(f"unknown quantizer {quantizer!r}; use auto, pt2e or ai-edge-quantizer")
    if isinstance(model, Int8Graph):
        return _convert(model.module, model.examples, model.quantizer), f"pt2e-{model.method}", model
    if quantizer != "ai-edge-quantizer":
        try:
            with quiet():
                graph = ptq(model, example, calibration)
            return _convert(graph.module, graph.examples, graph.quantizer), "pt2e-ptq", graph
        except ConfigError:
            raise
        except Exception as e:  # pt2e could not annotate or lower this graph
            if quantizer == "pt2e":
                raise ConfigError(f"pt2e int8 quantisation failed: {_one_line(e)}; "
                                  "try quantizer='ai-edge-quantizer'") from None
    if isinstance(example, tuple) and len(example) > 1:
        raise ConfigError("the ai-edge-quantizer fallback calibrates single-input models only")
    from wearprune.quant.aeq import quantize_flatbuffer
    windows = np.concatenate([t[0].numpy() for t in calibration_inputs(calibration, 1)])
    fp32 = to_tflite(model, example)
    return quantize_flatbuffer(fp32, windows), "ai-edge-quantizer", None


_NO_LOWERING = re.compile(r"Lowering not found: (\S+)")
_EXECUTING = re.compile(r"While executing %(\w+)")


def _convert(module: nn.Module, args: tuple[torch.Tensor, ...], quantizer=None) -> bytes:
    """litert-torch conversion; an op it cannot lower is a one-line error naming the op and the layer."""
    try:
        with quiet():  # importing litert-torch / torchao logs warnings too
            import litert_torch
            from litert_torch.quantize.quant_config import QuantConfig

            kwargs = {"quant_config": QuantConfig(pt2e_quantizer=quantizer)} if quantizer is not None else {}
            return _export_bytes(litert_torch.convert(module, args, **kwargs))
    except Exception as e:
        text = str(e)
        op = _NO_LOWERING.search(text)
        if op is None:
            raise
        node = _EXECUTING.search(text)
        layer = _layer_of(module, args, node.group(1) if node else "", op.group(1))
        where = " (in the top-level forward)" if layer == "(top level)" else f" (layer {layer!r})" if layer else ""
        raise ConfigError(f"litert-torch cannot convert op {op.group(1)}{where} to TFLite; replace that layer "
                          "with supported ops or keep this model off the microcontroller") from None


def _layer_of(module: nn.Module, args, node_name: str, op: str) -> str | None:
    """The module path of the node the converter complained about: by name, else the first node
    calling the same op (the converter's decompositions may rename it, e.g. svd -> _linalg_svd)."""
    try:
        graph = module.graph if isinstance(module, torch.fx.GraphModule) else \
            torch.export.export(module, args).graph
    except Exception:
        return None
    base = op.split(".")[1].strip("_") if "." in op else op
    calls = [n for n in graph.nodes if n.op == "call_function"]
    for n in [n for n in calls if n.name == node_name] + [n for n in calls if base in str(n.target)]:
        stack = n.meta.get("nn_module_stack") or {}
        return list(stack.values())[-1][0] if stack else "(top level)"
    return None


def _one_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


def _export_bytes(edge) -> bytes:
    fd, tmp = tempfile.mkstemp(suffix=".tflite")
    os.close(fd)
    try:
        edge.export(tmp)
        with open(tmp, "rb") as f:
            return f.read()
    finally:
        os.unlink(tmp)
