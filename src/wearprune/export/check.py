"""Export checks: convert a model, run it in TensorFlow Lite Micro on real windows, and say whether
the result may ship (fp32 equal to PyTorch, int8 within tolerance of fp32, named layer where not).

A whole-window model is one ``.tflite``; a GRU/LSTM model after a conv front end, or a causal TCN,
is also (or only) a streaming step run frame by frame. Used by ``wearprune export`` and ``fit``."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..evaluate import predict
from ..models.conv import TCN
from .streaming import step_calibration, streaming_parts
from .streaming_tcn import tcn_streaming_parts
from .tflite import to_tflite, to_tflite_int8
from .tflm import load_interpreter, measure_arena, run_tflm, run_tflm_streaming, tflite_summary

FP32_TOLERANCE = 1e-3  # max |TFLite Micro - PyTorch| on fp32 outputs (logits or scaled targets)
INT8_TOLERANCE = 0.05  # int8 may be at most 5 % worse than fp32 in TFLite Micro (relative, F1 or MAE)


def window_tflite(model, x1, windows, dtype, calib, prepared, qat_epochs, quantizer):
    """A whole-window model: (TFLite Micro outputs, check record, files, the pt2e int8 graph or None)."""
    from ..quant import qat, weight_sparsity

    graph, record = None, {}
    if dtype == "int8":
        source = model
        if qat_epochs:
            source = qat(model, prepared.train, prepared.val, epochs=qat_epochs, target_scale=prepared.target_scale)
            record = {"qat_epochs": qat_epochs, "weight_sparsity_before": weight_sparsity(model),
                      "weight_sparsity_after": weight_sparsity(source.module)}
        tfl, method, graph = to_tflite_int8(source, x1, calib, quantizer=quantizer)
        record["quantizer"] = method
    else:
        tfl = to_tflite(model, x1)
    arena = measure_arena(tfl)
    check = {"arena_bytes": arena.total, "arena_head_bytes": arena.head, "arena_tail_bytes": arena.tail,
             "tflite_bytes": len(tfl), **record}
    made = {f"model_{dtype}.tflite": tfl}
    if isinstance(model, TCN):  # causal: also exported as a per-sample streaming step (post-training int8)
        some = windows[:32]
        step_out, step_check, step_files, _ = streaming_tflite(model, x1, some, dtype, calib, "pt2e")
        step_diff = float(np.abs(step_out - predict(model, some)).max())
        if dtype == "fp32" and step_diff > FP32_TOLERANCE:
            raise ConfigError(f"the streaming step differs from the window model by {step_diff:.2g} in TFLite Micro")
        kept = {k: v for k, v in step_check.items() if k.startswith("step") or k in ("state_bytes", "quantizer")}
        check["streaming_step"] = {**kept, "max_abs_diff": step_diff, "windows": len(some)}
        made.update(step_files)
    return run_tflm(tfl, windows), check, made, graph


def streaming_tflite(model, x1: torch.Tensor, windows: np.ndarray, dtype: str, calib, quantizer: str = "pt2e"):
    """A model as a streaming step (GRU/LSTM after a conv front end, or a causal TCN sample by
    sample), run in TFLite Micro frame by frame: litert-torch's unrolled recurrent graph exceeds
    TFLite Micro's limits, and firmware wants one call per new sample anyway."""
    try:
        if isinstance(model, TCN):
            frontend, (step, shapes) = None, tcn_streaming_parts(model)
        else:
            frontend, step, shapes = streaming_parts(model)
    except ValueError as e:
        raise ConfigError(f"cannot export this model as a streaming step: {e}") from None
    with torch.no_grad():
        frame = frontend(x1)[:, 0] if frontend is not None else x1[:, :, 0]
    states = tuple(torch.zeros(s) for s in shapes)
    graph, record, made, front_b = None, {}, {}, None
    if dtype == "int8":
        if frontend is not None:
            front_b, method, _ = to_tflite_int8(frontend, x1, calib.numpy(), quantizer=quantizer)
            record["frontend_quantizer"] = method
        # the step's inputs include its states: calibrate on the (frame, states) that streaming meets
        step_calib = step_calibration(frontend, step, shapes, calib)
        step_b, method, graph = to_tflite_int8(step, (frame, *states), step_calib, quantizer="pt2e")
        record["quantizer"] = method
    else:
        front_b = to_tflite(frontend, x1) if frontend is not None else None
        step_b = to_tflite(step, (frame, *states))
    step_a = measure_arena(step_b)
    outputs = run_tflm_streaming(front_b, step_b, len(shapes), windows)
    summary = tflite_summary(step_b)
    # kept between steps, at the step's input types (int8 graphs keep a state float where float ops read it)
    state_bytes = sum(summary["input_bytes"][1:])
    record.update({"streaming": True, "step_arena_bytes": step_a.total, "state_bytes": state_bytes,
                   "step_ops": len(summary["ops"]), "step_tflite_bytes": len(step_b),
                   "tflite_bytes": len(step_b)})
    made[f"model_step_{dtype}.tflite"] = step_b
    if frontend is not None:
        front_a = measure_arena(front_b)
        # both arenas are measured; firmware runs one graph at a time and keeps the state between calls
        record.update({"frontend_arena_bytes": front_a.total, "arena_bytes": max(front_a.total, step_a.total)
                       + state_bytes, "arena_is": "larger measured arena (front end, step) + state",
                       "tflite_bytes": len(front_b) + len(step_b)})
        made[f"model_frontend_{dtype}.tflite"] = front_b
    return outputs, record, made, graph


def check_int8(fp32: dict, int8: dict, key: str, tolerance: float, graph, calib, advice: str) -> None:
    """Refuse an int8 model that lost more than ``tolerance`` (relative) of the fp32 metric in
    TFLite Micro, naming the layer where the int8 activations part from fp32."""
    before, after = fp32[key], int8[key]
    worse = (after - before) / max(abs(before), 1e-9) if key == "mae" else (before - after) / max(abs(before), 1e-9)
    int8["loss_vs_fp32"] = worse
    if worse <= tolerance:
        return
    where = ""
    if graph is not None:
        from ..quant import layer_errors, worst_layer
        from ..quant.pt2e import fp32_graph

        inputs = graph.calibration[:32] or calib[:32]
        worst = worst_layer(layer_errors(fp32_graph(graph), graph.module, inputs))
        if worst is not None:
            where = (f"; precision is lost at layer {worst.layer or worst.node!r} (its int8 output is off by "
                     f"{worst.relative_error:.0%}, {worst.added:+.0%} over the layer before)")
    raise ConfigError(f"the int8 model's {key} is {after:.3f} in TFLite Micro against {before:.3f} in fp32 "
                      f"({worse:.0%} worse; tolerance {tolerance:.0%}){where}; try {advice}")


def io_details(tflite: bytes) -> dict:
    interp, _ = load_interpreter(tflite)

    def describe(detail: dict) -> dict:
        q = detail["quantization_parameters"]
        quantised = len(q["scales"]) > 0
        return {"dtype": np.dtype(detail["dtype"]).name, "shape": list(detail["shape"]),
                "scale": float(q["scales"][0]) if quantised else None,
                "zero_point": int(q["zero_points"][0]) if quantised else None}

    out = {"inputs": [], "outputs": []}
    summary = tflite_summary(tflite)
    for side, get in (("inputs", interp.get_input_details), ("outputs", interp.get_output_details)):
        for i in range(len(summary[side])):
            out[side].append(describe(get(i)))
    out["input"], out["output"] = out["inputs"][0], out["outputs"][0]  # a streaming step: the frame, the output
    return out
