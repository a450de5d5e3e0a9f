"""Fallback int8 path: quantise an fp32 flatbuffer with ``ai-edge-quantizer`` (static int8 weights
and activations, calibrated in its TFLite interpreter). Used for models torchao's pt2e flow cannot
annotate; the result keeps float input/output with QUANTIZE/DEQUANTIZE at the edges."""

from __future__ import annotations

import numpy as np

from wearprune.errors import ConfigError
from wearprune.quiet import quiet


def quantize_flatbuffer(fp32_tflite: bytes, calibration: np.ndarray) -> bytes:
    from ai_edge_litert import interpreter as litert
    from ai_edge_quantizer import calibrator, quantizer, recipe
    from ai_edge_quantizer.utils import qsv_utils

    with quiet():
        signatures = litert.Interpreter(model_content=fp32_tflite).get_signature_list()
        if len(signatures) != 1:
            raise ConfigError(f"ai-edge-quantizer fallback expects one signature, the model has {len(signatures)}")
        (key, sig), = signatures.items()
        if len(sig["inputs"]) != 1:
            raise ConfigError("the ai-edge-quantizer fallback calibrates single-input models only")
        q = quantizer.Quantizer(bytearray(fp32_tflite), recipe.static_wi8_ai8())
        windows = np.asarray(calibration, dtype=np.float32)
        samples = [{sig["inputs"][0]: windows[i : i + 1]} for i in range(len(windows))]
        # Its default moving-average min/max under-covers the extremes (outputs clipped by 50 % on
        # BasicMotions); the full min/max over all windows is what pt2e's observers use too.
        cal = calibrator.Calibrator(bytearray(fp32_tflite), num_threads=1, qsv_update_func=qsv_utils.min_max_update)
        cal.calibrate({key: samples}, q._recipe_manager)
        result = q.quantize(cal.get_model_qsvs(), enable_progress_report=False)
    return bytes(result.quantized_model)
