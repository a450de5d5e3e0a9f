"""``export``: a run converted for the device and checked by running it (TensorFlow Lite Micro on
the whole test set, ONNX in onnxruntime), with the C array firmware links. All or nothing: every
file and the updated ``metrics.json`` are staged in a copy of the run that replaces it at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from ..data.prepare import PreparedData, calibration_sample, prepare_from_config
from ..errors import ConfigError
from ..evaluate import headline, predict, task_metrics
from ..export.c_array import to_c_source
from ..export.check import FP32_TOLERANCE, check_int8, io_details, streaming_tflite, window_tflite
from ..export.onnx import run_onnx, to_onnx
from ..io import atomic_directory, atomic_write_bytes, atomic_write_json
from ..progress import progress_bar
from ..quant.pt2e import MIN_CALIBRATION
from ..runs import Run, load_run
from ..specs import ExportSpec


def export_run(run: str | Path | Run, spec: ExportSpec | tuple[str, ...] | None = None, *,
               data_root: str | None = None, prepared: PreparedData | None = None, progress: bool = False,
               **fields_: object) -> dict:
    """Export a run for the device and check it by running it.

    ``spec`` (or its fields as keywords: ``formats``, ``int8``, ``calib_windows``, ``qat_epochs``,
    ``quantizer``, ``int8_tolerance``; a tuple of formats also works). Every ``.tflite`` runs in
    TensorFlow Lite Micro on the whole test set: its metrics (beside PyTorch's), its largest output
    difference and the arena TFLite Micro allocates are stored in the run's metrics under ``tflm``.
    int8 is post-training (calibrated on training windows) or, with ``qat_epochs``,
    quantisation-aware fine-tuning; an int8 model more than ``int8_tolerance`` worse than fp32 is
    refused, naming the layer where precision is lost. Nothing is written unless every check passes
    and every file can be written. ``prepared``: the run's data when the caller has it already.
    """
    if isinstance(spec, (tuple, list, str)):  # export_run(run, ("tflite", "c")): the formats
        fields_ = {**fields_, "formats": tuple(spec) if not isinstance(spec, str) else spec}
        spec = None
    spec = ExportSpec.resolve(spec, fields_)
    run = run if isinstance(run, Run) else load_run(run)
    if not (Path(run.path) / "config.json").is_file():
        raise ConfigError("export writes into a run directory on disk; save the run first (wearprune train --out)")
    prepared = prepared or prepare_from_config(run.config, data_root)
    test, model = prepared.test, run.model.eval()
    if spec.int8 and len(prepared.train) < MIN_CALIBRATION:
        raise ConfigError(f"int8 calibration needs training windows; {run.config.get('data')} has only "
                          f"{len(prepared.train)} in its training split")
    x1 = torch.from_numpy(test.X[:1])
    reference = predict(model, test.X)
    files: dict[str, bytes] = {}
    checks: dict[str, dict] = {}
    from ..export.streaming import device_form

    form = device_form(model)  # a bidirectional sequence model is unrolled per gate instead of streamed
    recurrent = form is model and any(isinstance(m, torch.nn.RNNBase) for m in model.modules())
    if recurrent and spec.qat_epochs:
        raise ConfigError("quantisation-aware training of a streaming step is not built; export recurrent "
                          "models with post-training int8 (drop --qat-epochs)")
    if recurrent and spec.quantizer == "ai-edge-quantizer":
        raise ConfigError("the ai-edge-quantizer path calibrates single-input graphs; a streaming step has its "
                          "states as inputs too: use --quantizer pt2e")
    # what to try when int8 is refused, for this kind of model
    advice = "more --calib-windows, or --fp32-only" if recurrent else "--qat-epochs 3, more --calib-windows, or " \
        "--fp32-only"
    dtypes = ["fp32"] + (["int8"] if spec.int8 else [])
    calib = calibration_sample(prepared, 0, spec.calib_windows)[0] if spec.int8 else None
    with progress_bar(progress, f"export {run.path}", len(dtypes) + 1) as bar:
        for dtype in dtypes:
            if recurrent:
                outputs, check, made, graph = streaming_tflite(model, x1, test.X, dtype, calib, spec.quantizer)
            else:
                outputs, check, made, graph = window_tflite(form, x1, test.X, dtype, calib, prepared,
                                                             spec.qat_epochs, spec.quantizer)
            diff = float(np.abs(outputs - reference).max())
            if dtype == "fp32" and diff > FP32_TOLERANCE:
                raise ConfigError(f"the fp32 TFLite model differs from PyTorch by {diff:.2g} (tolerance "
                                  f"{FP32_TOLERANCE}); the conversion is wrong, report it with the model")
            metrics = task_metrics(test, outputs, prepared.target_scale)
            key, value = headline(metrics)
            checks[dtype] = {**check, "max_abs_diff": diff, key: value, "test_windows": len(test.X),
                             **({"accuracy": metrics["accuracy"]} if "accuracy" in metrics else {})}
            if dtype == "int8":
                check_int8(checks["fp32"], checks["int8"], key, spec.int8_tolerance, graph, calib, advice)
            files.update(made)
            bar.epoch({})
        if "onnx" in spec.formats:
            onnx_bytes = to_onnx(model, x1)
            diff = float(np.abs(run_onnx(onnx_bytes, test.X[:64]) - reference[:64]).max())
            if diff > FP32_TOLERANCE:
                raise ConfigError(f"the ONNX model differs from PyTorch by {diff:.2g} in onnxruntime")
            files["model.onnx"] = onnx_bytes
            checks["onnx"] = {"max_abs_diff": diff, "bytes": len(onnx_bytes)}
        if "c" in spec.formats:
            dtype = dtypes[-1]
            for part in ["frontend", "step"] if recurrent else [None]:
                name = f"model_{part}" if part else "model"
                tfl = files[f"{name}_{dtype}.tflite"]
                arena = checks[dtype][f"{part}_arena_bytes"] if part else checks[dtype]["arena_bytes"]
                header, source = to_c_source(tfl, name, arena_bytes=arena, io=io_details(tfl),
                                             normalizer=run.config.get("normalizer") if part != "step" else None)
                files[f"{name}_data.h"], files[f"{name}_data.c"] = header.encode(), source.encode()
        bar.epoch({})
    if "tflite" not in spec.formats and "c" not in spec.formats:
        files = {k: v for k, v in files.items() if not k.endswith(".tflite")}
    with atomic_directory(run.path, overwrite=True) as stage:
        shutil.copytree(run.path, stage, symlinks=True, dirs_exist_ok=True)
        for name, blob in files.items():
            atomic_write_bytes(stage / name, blob)
        # counts from `wearprune measure` belong to the files this export replaces
        kept = {k: v for k, v in run.metrics.items() if k != "on_target"}
        metrics = {**kept, "tflm": {**checks, "measured": "TensorFlow Lite Micro interpreter (tflite-micro "
                                                                 "package) on this host, whole test set",
                                           "spec": spec.to_dict()}}
        atomic_write_json(stage / "metrics.json", metrics)
    run.metrics = metrics
    return {"files": sorted(files), "checks": checks, "split": prepared.split.name,
            "pytorch": headline(task_metrics(test, reference, prepared.target_scale))}
