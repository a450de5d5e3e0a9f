"""PyTorch → TFLite flatbuffer through litert-torch (no TensorFlow needed).

fp32: the model as is. int8: torchao's pt2e flow with the quantizer litert-torch ships
(per-channel symmetric weights, per-tensor activations calibrated on the windows given), so the
flatbuffer has int8 input and output, int8 weights and int32 biases.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

from wearprune.errors import ConfigError
from wearprune.export.fold import fold_batchnorm


@contextlib.contextmanager
def _quiet():
    """litert-torch prints progress lines and warnings on every call; keep the CLI output ours."""
    from wearprune.export.tflm import _CaptureFd2  # the converter also logs from C++ to fd 2

    logging.getLogger("absl").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
        io.StringIO()
    ), _CaptureFd2():
        warnings.simplefilter("ignore")
        yield


def to_tflite(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], *, int8: bool = False,
              calibration: np.ndarray | torch.Tensor | None = None) -> bytes:
    """The ``.tflite`` bytes of ``model`` for batch-1 inputs shaped like ``example[:1]``.

    ``example`` may be a tuple of batch-1 tensors for a model with several inputs (a streaming step
    with its states); int8 takes a single input.
    """
    import litert_torch

    if isinstance(example, tuple):
        if int8:
            raise ConfigError("int8 conversion of a multi-input graph (a streaming step) is not supported yet")
        args = tuple(torch.as_tensor(e, dtype=torch.float32) for e in example)
        with _quiet():
            return _export_bytes(litert_torch.convert(fold_batchnorm(model), args))
    x = torch.as_tensor(example[:1], dtype=torch.float32)
    model = fold_batchnorm(model)
    with _quiet():
        if int8:
            if calibration is None or len(calibration) == 0:
                raise ConfigError("int8 conversion needs calibration windows (a few hundred training windows)")
            from litert_torch.quantize import pt2e_quantizer as pq
            from litert_torch.quantize.quant_config import QuantConfig
            from torchao.quantization.pt2e import quantize_pt2e

            quantizer = pq.PT2EQuantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))
            prepared = quantize_pt2e.prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
            calib = torch.as_tensor(np.asarray(calibration), dtype=torch.float32)
            with torch.no_grad():
                for i in range(len(calib)):  # batch 1: the exported graph is specialised to it
                    prepared(calib[i : i + 1])
            converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
            edge = litert_torch.convert(converted, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
        else:
            edge = litert_torch.convert(model, (x,))
        return _export_bytes(edge)


def _export_bytes(edge) -> bytes:
    fd, tmp = tempfile.mkstemp(suffix=".tflite")
    os.close(fd)
    try:
        edge.export(tmp)
        with open(tmp, "rb") as f:
            return f.read()
    finally:
        os.unlink(tmp)
