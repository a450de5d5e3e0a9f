"""Full-integer int8 through torchao's pt2e flow with the quantizer litert-torch ships.

Post-training (``ptq``): export → insert observers → run calibration windows → convert.
Quantisation-aware training (``qat``): export → insert fake-quant → train with the task loss (and
the fp32 model as teacher) → convert. Both start from the model with BatchNorm folded, so pruned
shapes are what gets quantised, and QAT re-applies the zeros of weight-pruned tensors after every
step: the sparsity does not drift.

The result is an ``Int8Graph``: the converted graph (quantise/dequantise pairs around float ops, so
it runs in PyTorch and simulates the int8 model) plus the quantizer litert-torch needs to lower it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from wearprune.errors import ConfigError

MIN_CALIBRATION = 16  # fewer windows give activation ranges that depend on which windows were drawn


@dataclass
class Int8Graph:
    module: torch.fx.GraphModule
    quantizer: object
    examples: tuple[torch.Tensor, ...]
    method: str  # "ptq" or "qat"
    source: nn.Module  # the fp32 model (BatchNorm folded) it was quantised from
    calibration: list = field(default_factory=list)  # batch-1 input tuples it was calibrated on (PTQ)

    def __call__(self, *args):
        return self.module(*args)


def _quantizer(qat: bool):
    from litert_torch.quantize import pt2e_quantizer as pq

    class _FoldedQuantizer(pq.PT2EQuantizer):
        # BatchNorm is folded before quantisation, so the conv+BN patterns QAT annotates cannot
        # occur; litert-torch 0.10 builds them with an API torch 2.13 rejects, so skip them.
        STATIC_QAT_ONLY_OPS = ()

    return _FoldedQuantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True, is_qat=qat))


def _as_examples(example) -> tuple[torch.Tensor, ...]:
    examples = example if isinstance(example, tuple) else (example,)
    return tuple(torch.as_tensor(e[:1], dtype=torch.float32) for e in examples)


def calibration_inputs(calibration, n_inputs: int) -> list[tuple[torch.Tensor, ...]]:
    """Batch-1 input tuples: ``calibration`` is an array of windows (one input) or a sequence of tuples."""
    if calibration is None or len(calibration) == 0:
        raise ConfigError("int8 conversion needs calibration windows (a few hundred training windows); none given")
    if len(calibration) < MIN_CALIBRATION:
        raise ConfigError(f"int8 calibration got {len(calibration)} windows; give at least {MIN_CALIBRATION} "
                          "(a few hundred training windows is typical)")
    if n_inputs == 1 and not isinstance(calibration[0], tuple):
        calib = torch.as_tensor(np.asarray(calibration), dtype=torch.float32)
        return [(calib[i : i + 1],) for i in range(len(calib))]
    return [tuple(torch.as_tensor(t, dtype=torch.float32) for t in item) for item in calibration]


def ptq(model: nn.Module, example, calibration: np.ndarray | Sequence[tuple]) -> Int8Graph:
    """Post-training int8: per-channel symmetric weights, per-tensor activations from ``calibration``."""
    from torchao.quantization.pt2e import quantize_pt2e

    from wearprune.export.fold import fold_batchnorm

    examples = _as_examples(example)
    inputs = calibration_inputs(calibration, len(examples))
    quantizer = _quantizer(qat=False)
    folded = fold_batchnorm(model).eval()
    prepared = quantize_pt2e.prepare_pt2e(torch.export.export(folded, examples).module(), quantizer)
    with torch.no_grad():
        for args in inputs:  # batch 1: the exported graph is specialised to it
            prepared(*args)
    return Int8Graph(quantize_pt2e.convert_pt2e(prepared, fold_quantize=False), quantizer, examples, "ptq", folded,
                     inputs)


def qat(model: nn.Module, train, val, *, epochs: int = 3, lr: float = 1e-4, batch_size: int = 64,
        target_scale: dict | None = None, seed: int = 0, progress=None) -> Int8Graph:
    """Quantisation-aware fine-tuning on ``train`` (a WearableDataset), distilled from ``model`` itself.

    Pruned shapes stay as they are (the graph is exported from the pruned model) and zeros of
    weight-pruned tensors are re-applied after every step. The best validation epoch is kept.
    """
    from torchao.quantization.pt2e import allow_exported_model_train_eval, quantize_pt2e

    from wearprune.export.fold import fold_batchnorm
    from wearprune.train import TrainConfig, fit

    if len(train) < 2:
        raise ConfigError("quantisation-aware training needs training windows; the run's data has none")
    x = torch.from_numpy(train.X[:2])
    folded = fold_batchnorm(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    exported = torch.export.export(folded, (x,), dynamic_shapes=({0: batch},)).module()
    quantizer = _quantizer(qat=True)
    prepared = quantize_pt2e.prepare_qat_pt2e(exported, quantizer)
    allow_exported_model_train_eval(prepared)  # so fit() can switch dropout and fake-quant modes
    masks = _zero_masks(prepared)
    # no augmentation: the fake-quant ranges should see the data the model will see
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, patience=epochs, augment=[])
    fit(prepared, train, val, config, teacher=folded, target_scale=target_scale, after_step=lambda: _apply(masks),
        on_epoch=progress)
    prepared.eval()
    _apply(masks)
    converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    return Int8Graph(converted, quantizer, (x[:1],), "qat", folded)


def fp32_graph(graph: Int8Graph) -> torch.fx.GraphModule:
    """The fp32 graph ``graph`` was quantised from (same node names), for ``layer_errors``."""
    return torch.export.export(graph.source, graph.examples).module()


def _zero_masks(module: nn.Module) -> dict[str, tuple[nn.Parameter, torch.Tensor]]:
    """Where each weight matrix / kernel is exactly zero (weight pruning); biases are free to move."""
    return {name: (p, p.detach() != 0) for name, p in module.named_parameters()
            if p.dim() >= 2 and bool((p == 0).any())}


def _apply(masks) -> None:
    with torch.no_grad():
        for p, keep in masks.values():
            p.mul_(keep)


def weight_sparsity(module: nn.Module) -> float:
    """Share of exact zeros over all weight matrices / kernels (dim ≥ 2) of ``module``."""
    total = zeros = 0
    for p in module.parameters():
        if p.dim() >= 2:
            total += p.numel()
            zeros += int((p == 0).sum())
    return zeros / max(total, 1)
