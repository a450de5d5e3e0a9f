"""ONNX export (TorchScript-based exporter: fast and dependable for these graphs), checked in onnxruntime."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn


def to_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.as_tensor(example[:1], dtype=torch.float32),), buf,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)
    return buf.getvalue()


def run_onnx(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": np.asarray(x, dtype=np.float32)})[0]
