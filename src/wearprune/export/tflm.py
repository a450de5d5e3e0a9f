"""Run a ``.tflite`` in the real TensorFlow Lite Micro interpreter (the ``tflite-micro`` package).

The arena TFLite Micro needs is read from its own allocation recorder: ``head`` is the planned
(non-persistent) activation memory, ``tail`` the persistent part (tensor structs, node structs,
kernel op data such as int8 per-channel multipliers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wearprune.errors import ConfigError
from wearprune.quiet import CaptureFd2

_ARENA_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_BIG_ARENA = 8 * 1024 * 1024  # enough for any wearable model; the recorder reports what was used


@dataclass(frozen=True)
class ArenaUse:
    total: int
    head: int
    tail: int


def _interpreter(tflite: bytes, arena_size: int = _BIG_ARENA):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(tflite, arena_size=arena_size)


def load_interpreter(tflite: bytes, print_allocations: bool = False):
    """(interpreter, what TFLite Micro printed); a model it cannot allocate is a one-line ConfigError."""
    with CaptureFd2() as cap:
        try:
            interp = _interpreter(tflite)
            if print_allocations:
                interp.print_allocations()
            failed = None
        except RuntimeError as e:
            failed = e
    if failed is not None:
        message = _first_error(cap.text) or str(failed)
        op = _NO_KERNEL.search(message)
        if op:
            layer = _layer_of_op(tflite, op.group(1))
            raise ConfigError(f"TensorFlow Lite Micro has no kernel for op {op.group(1)}"
                              f"{f' (from layer {layer!r})' if layer else ''}; replace that layer with supported "
                              "ops (conv, dense, pooling, elementwise)")
        raise ConfigError(f"TensorFlow Lite Micro cannot load this model: {message}")
    return interp, cap.text


_NO_KERNEL = re.compile(r"Failed to get registration from op code (\w+)")
_SCOPE = re.compile(r"(?:[\w.]*\.)?_*[A-Za-z0-9]+_(\w+)")  # "pkg.mod.Conv1d_conv2" -> "conv2"


def _layer_of_op(tflite: bytes, op_name: str) -> str | None:
    """The PyTorch module path litert-torch recorded in the output tensor name of the first ``op_name``.

    litert-torch names tensors by module scope, "pkg.Block_layer1/torch...Conv1d_conv2;..."."""
    try:
        from tflite_micro.python.tflite_micro import runtime
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

        code = getattr(schema.BuiltinOperator, op_name)
        model = runtime.convert_bytearray_to_object(bytearray(tflite))
        graph = model.subgraphs[0]
        for op in graph.operators:
            c = model.operatorCodes[op.opcodeIndex]
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code and len(op.outputs):
                scope = graph.tensors[op.outputs[0]].name.decode(errors="replace").split(";")[0]
                parts = [m.group(1) for m in map(_SCOPE.fullmatch, scope.split("/")) if m]
                return ".".join(parts) or None
    except Exception:  # naming the layer is a courtesy; the op name alone is still the error
        return None
    return None


def measure_arena(tflite: bytes) -> ArenaUse:
    """The tensor arena TFLite Micro allocates for this model (bytes, as its recorder reports)."""
    _, text = load_interpreter(tflite, print_allocations=True)
    found = {k: int(v) for k, v in _ARENA_LINE.findall(text)}
    if set(found) != {"total", "head", "tail"}:
        raise RuntimeError(f"unexpected TFLite Micro allocation report: {text[:300]!r}")
    return ArenaUse(**found)


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "failed" in ln.lower() or "not supported" in ln.lower() or "was not true" in ln:
            return ln
    return lines[0] if lines else ""


def run_tflm(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Outputs for each window of ``x`` (one invoke per window), float; int8 in/out is (de)quantised
    with the tensor's own scale and zero point."""
    interp, _ = load_interpreter(tflite)
    inp, out = interp.get_input_details(0), interp.get_output_details(0)
    outs = []
    for window in np.asarray(x, dtype=np.float32):
        interp.set_input(quantize(window[None], inp), 0)
        interp.invoke()
        outs.append(dequantize(interp.get_output(0), out)[0])
    return np.stack(outs)


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float values as the tensor ``detail`` (an interpreter's input/output details) holds them."""
    if detail["dtype"] == np.float32:
        return x.astype(np.float32)
    q = detail["quantization_parameters"]
    scale, zero = float(q["scales"][0]), int(q["zero_points"][0])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    """A tensor's values as floats (its own scale and zero point for int8)."""
    if detail["dtype"] == np.float32:
        return y.astype(np.float32)
    q = detail["quantization_parameters"]
    return (y.astype(np.float32) - int(q["zero_points"][0])) * float(q["scales"][0])


def io_tensors(tflite: bytes) -> tuple[list[dict], list[dict]]:
    """The interpreter's details of every input and every output tensor (shape, dtype, quantisation)."""
    interp, _ = load_interpreter(tflite)
    summary = tflite_summary(tflite)
    return ([interp.get_input_details(i) for i in range(len(summary["inputs"]))],
            [interp.get_output_details(i) for i in range(len(summary["outputs"]))])


def run_tflm_raw(tflite: bytes, calls: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Tensors in, tensors out, no (de)quantisation: each call's input tensors (already in the model's
    types and shapes) through one invoke; every output tensor of each call."""
    interp, _ = load_interpreter(tflite)
    n_out = len(tflite_summary(tflite)["outputs"])
    results = []
    for tensors in calls:
        for i, tensor in enumerate(tensors):
            interp.set_input(tensor, i)
        interp.invoke()
        results.append([interp.get_output(i).copy() for i in range(n_out)])
    return results


def tflite_summary(tflite: bytes) -> dict:
    """Ops and tensors of a flatbuffer: what the converter made of the model (for reports and checks)."""
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = runtime.convert_bytearray_to_object(bytearray(tflite))
    graph = model.subgraphs[0]
    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        ops.append(names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM"))
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    input_bytes = [int(np.prod(graph.tensors[i].shape)) * _TYPE_BYTES.get(types[graph.tensors[i].type], 4)
                   for i in graph.inputs]
    return {"ops": ops, "n_tensors": len(graph.tensors), "bytes": len(tflite), "input_bytes": input_bytes,
            "inputs": list(graph.inputs), "outputs": list(graph.outputs)}


def tflite_ops(tflite: bytes) -> list[dict]:
    """Every operator of the flatbuffer in execution order with what its cost depends on: ``op``, the output's
    type, ``out_elems`` and ``in_elems`` (output and first input elements), ``macs`` (conv, depthwise and
    fully-connected: output elements x the weight elements each one reads) and their ``out_channels``."""
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = runtime.convert_bytearray_to_object(bytearray(tflite))
    graph = model.subgraphs[0]

    def elems(i: int) -> int:
        return int(np.prod(graph.tensors[i].shape)) if i >= 0 and graph.tensors[i].shape is not None else 0

    out = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        o = op.outputs[0] if len(op.outputs) else -1
        n_out = elems(o)
        macs, channels = 0, 0
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(op.inputs) > 1:
            w = [int(d) for d in graph.tensors[op.inputs[1]].shape]  # conv [O,kh,kw,I], dw [1,kh,kw,O], fc [O,I]
            per_output = {"CONV_2D": int(np.prod(w[1:])), "DEPTHWISE_CONV_2D": int(np.prod(w[1:3])),
                          "FULLY_CONNECTED": w[-1]}[name]
            macs, channels = n_out * per_output, int(graph.tensors[o].shape[-1])
        out.append({"op": name, "type": types.get(graph.tensors[o].type, "?") if o >= 0 else "?",
                    "in_elems": elems(op.inputs[0]) if len(op.inputs) else 0, "out_elems": n_out, "macs": macs,
                    "out_channels": channels})
    return out


_TYPE_BYTES = {"FLOAT32": 4, "INT32": 4, "INT16": 2, "INT8": 1, "UINT8": 1}


def run_tflm_streaming(frontend: bytes | None, step: bytes, n_states: int, x: np.ndarray) -> np.ndarray:
    """A model in its streaming form, in TFLite Micro: the front end over each window (``None``: the
    window itself, channel-last, is the frame sequence), then the step once per frame with the states
    fed back (zeros at the start of each window). Returns the step's output after the last frame."""
    x = np.asarray(x, dtype=np.float32)
    if frontend is None:
        return run_tflm_steps(step, n_states, x.transpose(0, 2, 1))
    front, _ = load_interpreter(frontend)
    fin, fout = front.get_input_details(0), front.get_output_details(0)
    frames = []
    for window in x:
        front.set_input(quantize(window[None], fin), 0)
        front.invoke()
        frames.append(dequantize(front.get_output(0), fout)[0])
    return run_tflm_steps(step, n_states, np.stack(frames))


def run_tflm_steps(step: bytes, n_states: int, frames: np.ndarray, record: list | None = None) -> np.ndarray:
    """Run a step graph ``(frame, *states) -> (output, *states)`` over ``frames`` [N, T, F]; the output
    after each sequence's last frame. int8 states are dequantised and requantised between calls, as
    firmware does when a state's output scale differs from its input scale. ``record``: a list that
    receives every call's input tensors as the step saw them (what ``wearprune measure`` replays)."""
    cell, _ = load_interpreter(step)
    ins = [cell.get_input_details(i) for i in range(1 + n_states)]
    outs_d = [cell.get_output_details(i) for i in range(1 + n_states)]
    results = []
    for seq in np.asarray(frames, dtype=np.float32):
        states = [np.zeros(tuple(d["shape"]), np.float32) for d in ins[1:]]
        for frame in seq:
            tensors = [quantize(frame[None], ins[0])] + [quantize(st, ins[i]) for i, st in enumerate(states, 1)]
            for i, tensor in enumerate(tensors):
                cell.set_input(tensor, i)
            if record is not None:
                record.append(tensors)
            cell.invoke()
            states = [dequantize(cell.get_output(i), outs_d[i]) for i in range(1, 1 + n_states)]
        results.append(dequantize(cell.get_output(0), outs_d[0])[0].copy())
    return np.stack(results)


def run_exported(run: Path, X: np.ndarray, dtype: str) -> np.ndarray:
    """A run's exported model of ``dtype`` over windows ``X`` in TensorFlow Lite Micro: the window model,
    or the streaming form (front end, then the step frame by frame with its state fed back)."""
    window = run / f"model_{dtype}.tflite"
    step = run / f"model_step_{dtype}.tflite"
    if window.exists():
        return run_tflm(window.read_bytes(), X)
    if step.exists():
        front = run / f"model_frontend_{dtype}.tflite"
        step_b = step.read_bytes()
        n_states = len(tflite_summary(step_b)["inputs"]) - 1
        return run_tflm_streaming(front.read_bytes() if front.exists() else None, step_b, n_states, X)
    raise ConfigError(f"{run} has no exported {dtype} model; export it first (wearprune export {run})")
