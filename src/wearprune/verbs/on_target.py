"""``measure``: a run's exported models on an emulated Cortex-M (TFLite Micro + CMSIS-NN in QEMU).

Each exported ``.tflite`` runs in the runner firmware (:mod:`wearprune.firmware`) over real test windows of
the run's own split; its outputs are compared with TFLite Micro on the host for the same input tensors, and
the executed instructions per inference and per op go into ``metrics.json`` under ``on_target``, beside the
cost model's estimate. A streaming model (front end + step) is measured per part: the step over the frames of
one window with its state fed back as on the device, so the counts are per frame and per window.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..data.prepare import PreparedData, prepare_from_config
from ..errors import ConfigError
from ..export.tflm import io_tensors, quantize, run_tflm, run_tflm_raw, run_tflm_steps, tflite_ops
from ..firmware import COUNTER, TARGETS, TargetRun, build, check_target, require_tools, run_on_target
from ..io import atomic_write_json
from ..profile import count_macs
from ..runs import Run, load_run

DTYPES = ("int8", "fp32")
KERNELS = {"int8": "CMSIS-NN", "fp32": "TFLite Micro reference (CMSIS-NN has no float kernels)"}


def measure_on_target(run: str | Path | Run, targets: str | tuple[str, ...] = ("cortex-m4",), *,
                      dtypes: tuple[str, ...] | None = None, windows: int = 8, data_root: str | None = None,
                      prepared: PreparedData | None = None, announce=None) -> dict:
    """Run the exported models of ``run`` on each emulated core in ``targets``; returns (and stores in the
    run's ``metrics.json`` under ``on_target``) per core and dtype: instructions per inference (per frame and
    per window for a streaming model), per op, the arena the firmware used and whether its outputs equal
    host TFLite Micro's. ``windows``: test windows run (and compared); ``dtypes``: default every one
    exported. The first call per core builds TFLite Micro (minutes); ``announce(line)`` hears about it."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    for target in targets:
        check_target(target)
    require_tools()  # before loading anything: a machine without the toolchain hears so at once
    if windows < 1:
        raise ConfigError("--windows must be at least 1")
    run = run if isinstance(run, Run) else load_run(run)
    path = Path(run.path)
    dtypes = tuple(dtypes) if dtypes else tuple(d for d in DTYPES if _exported(path, d))
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; use int8 or fp32")
        if not _exported(path, dtype):
            raise ConfigError(f"{path} has no exported {dtype} model; export it first (wearprune export {path})")
    if not dtypes:
        raise ConfigError(f"{path} has no exported model; export it first (wearprune export {path})")
    prepared = prepared or prepare_from_config(run.config, data_root)
    X = np.asarray(prepared.test.X[:windows], dtype=np.float32)
    macs = count_macs(run.model.eval(), torch.from_numpy(X[:1]))
    results = {}
    for target in targets:
        firmware = build(target, announce=announce)
        results[target] = {}
        for dtype in dtypes:
            if announce:
                announce(f"measure: {dtype} on the emulated {target} ({TARGETS[target]})")
            entry = _measure_exported(firmware, path, dtype, X)
            per_inference = entry.get("instructions_per_inference") or entry["instructions_per_window"]
            results[target][dtype] = {
                "board": TARGETS[target], "tflm_commit": firmware.tflm_commit, "kernels": KERNELS[dtype],
                "counter": COUNTER, "test_windows": len(X), "split": prepared.split.name, "macs": macs,
                "instructions_per_mac": per_inference / max(macs, 1), **entry}
    metrics = dict(run.metrics)
    on_target = {t: dict(v) for t, v in (metrics.get("on_target") or {}).items()}
    for target, per_dtype in results.items():
        on_target[target] = {**on_target.get(target, {}), **per_dtype}
    metrics["on_target"] = on_target
    atomic_write_json(path / "metrics.json", metrics)
    run.metrics = metrics
    return results


def _exported(path: Path, dtype: str) -> bool:
    return (path / f"model_{dtype}.tflite").is_file() or (path / f"model_step_{dtype}.tflite").is_file()


def _measure_exported(firmware, path: Path, dtype: str, X: np.ndarray) -> dict:
    window, step = path / f"model_{dtype}.tflite", path / f"model_step_{dtype}.tflite"
    front = path / f"model_frontend_{dtype}.tflite"
    streaming = measure_streaming(firmware, front.read_bytes() if front.is_file() else None, step.read_bytes(),
                                  X) if step.is_file() else None
    if not window.is_file():
        return streaming
    # a causal TCN ships both: the window graph, and a step that takes one sample per call
    return {**measure_window(firmware, window.read_bytes(), X), **({"streaming": streaming} if streaming else {})}


def measure_window(firmware, tflite: bytes, X: np.ndarray) -> dict:
    """A window model over windows ``X`` (float, as the model takes them) on the core and on the host."""
    ins, _ = io_tensors(tflite)
    part = measure_graph(firmware, tflite, [[quantize(x[None], ins[0])] for x in X])
    return {"form": "window", "instructions_per_inference": part["instructions"], **part}


def measure_streaming(firmware, front: bytes | None, step: bytes, X: np.ndarray) -> dict:
    """A streaming model: the front end over ``X`` (``None``: the window itself is the frame sequence), the
    step over every frame of the first window with its state fed back, as on the device."""
    front_part, per_window = None, 0
    if front is not None:
        fin, _ = io_tensors(front)
        front_part = measure_graph(firmware, front, [[quantize(x[None], fin[0])] for x in X])
        per_window = front_part["instructions"]
        frames = run_tflm(front, X[:1])  # [1, T', F]: the frames the step sees in the first window
    else:
        frames = X[:1].transpose(0, 2, 1)  # the window itself, channel-last, is the frame sequence
    n_states = len(io_tensors(step)[0]) - 1
    calls: list[list[np.ndarray]] = []
    run_tflm_steps(step, n_states, frames, record=calls)  # the step's real inputs, state fed back
    step_part = measure_graph(firmware, step, calls)
    n_frames = int(frames.shape[1])
    return {"form": "streaming", "frames_per_window": n_frames, "instructions_per_frame": step_part["instructions"],
            "instructions_per_window": per_window + n_frames * step_part["instructions"],
            **_worst_of([step_part] + ([front_part] if front_part else [])),
            "arena_used_bytes": max(step_part["arena_used_bytes"], (front_part or {}).get("arena_used_bytes", 0)),
            "step": step_part, **({"frontend": front_part} if front_part else {})}


def _worst_of(parts: list[dict]) -> dict:
    diffs = [p["max_abs_diff_host"] for p in parts]
    return {"outputs_equal_host": all(p["outputs_equal_host"] for p in parts),
            "max_abs_diff_host": None if None in diffs else max(diffs)}


def measure_graph(firmware, tflite: bytes, calls: list[list[np.ndarray]]) -> dict:
    """One graph over ``calls`` (each: its input tensors) on the core and on the host, compared."""
    raw = b"".join(np.ascontiguousarray(t).tobytes() for call in calls for t in call)
    measured = run_on_target(firmware, tflite, raw)
    host = run_tflm_raw(tflite, calls)
    per_invoke = measured.per_invoke()
    shapes = tflite_ops(tflite)
    ops = [{**op, **shapes[op["index"]]} for op in measured.per_op()]  # what each op's count depends on
    by_type = Counter()
    for op in ops:
        by_type[op["op"]] += op["instructions"]
    return {"instructions": int(round(float(np.mean(per_invoke)))), "instructions_min": min(per_invoke),
            "instructions_max": max(per_invoke), "invokes": len(measured.invokes), "calls": len(calls),
            "arena_used_bytes": int(measured.summary["arena_used_bytes"]),
            "model_bytes": int(measured.model["model_bytes"]), **_compare(measured, host),
            "per_op": ops, "per_op_type": dict(by_type.most_common())}


def _compare(measured: TargetRun, host: list[list[np.ndarray]]) -> dict:
    """The firmware's output bytes against the host's: equal or not, and the largest difference in the
    tensors' own units (quantisation steps for int8)."""
    expected = b"".join(np.ascontiguousarray(o).tobytes() for outs in host for o in outs)
    if measured.outputs == expected:
        return {"outputs_equal_host": True, "max_abs_diff_host": 0.0}
    if len(measured.outputs) != len(expected):
        return {"outputs_equal_host": False, "max_abs_diff_host": None,
                "host_mismatch": f"{len(measured.outputs)} output bytes from the firmware, {len(expected)} expected"}
    worst, offset = 0.0, 0
    for outs in host:
        for o in outs:
            got = np.frombuffer(measured.outputs, dtype=o.dtype, count=o.size, offset=offset)
            worst = max(worst, float(np.abs(got.astype(np.float64) - o.ravel().astype(np.float64)).max()))
            offset += o.nbytes
    return {"outputs_equal_host": False, "max_abs_diff_host": worst}
