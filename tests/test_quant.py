"""int8 quantisation fused with pruning: post-training and quantisation-aware training through pt2e,
the ai-edge-quantizer fallback, the per-layer error that names where int8 loses precision, and the
errors for what litert-torch or TensorFlow Lite Micro cannot run."""

import numpy as np
import pytest
import torch
from torch import nn

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.export import run_tflm, to_tflite
from wearprune.export.tflite import to_tflite_int8
from wearprune.export.tflm import load_interpreter as _load
from wearprune.quant import layer_errors, ptq, qat, weight_sparsity, worst_layer
from wearprune.quant.pt2e import fp32_graph


@pytest.fixture(scope="module")
def data():
    ds = wp.load_dataset("basicmotions")
    split = wp.subject_split(ds, seed=0)
    return ds, split


def _model(ds, name="cnn1d"):
    torch.manual_seed(0)
    return wp.build_model(name, ds.spec()).eval()


def _outlier_model(ds):
    """cnn1d whose first block's channel 0 is 1000x larger and the next conv reads it 1000x smaller:
    the same function in fp32, but one per-tensor int8 scale crushes the other 15 channels."""
    model = _model(ds)
    with torch.no_grad():
        for m in model.features[0]:
            if isinstance(m, nn.BatchNorm1d):
                m.weight[0] *= 1000  # ReLU(1000 a) = 1000 ReLU(a): the function is unchanged
                m.bias[0] *= 1000
        model.features[2][0].weight[:, 0] /= 1000
    return model


def test_qat_keeps_pruned_shapes_and_sparsity(data):
    ds, split = data
    train, val = ds.subset(split.train), ds.subset(split.val)
    x = torch.from_numpy(train.X[:2])
    channel, _ = wp.prune(_model(ds), x, method="channel", ratio=0.5)
    pruned, _ = wp.prune(channel, x, method="weight", ratio=0.6)
    before = weight_sparsity(pruned)
    assert before > 0.5
    graph = qat(pruned, train, val, epochs=1, batch_size=16)
    assert weight_sparsity(graph.module) == pytest.approx(before)  # zeros re-applied after every step
    convs = [p.shape for n, p in graph.module.named_parameters() if p.dim() == 3]
    assert convs == [m.weight.shape for m in pruned.modules() if isinstance(m, nn.Conv1d)]
    tfl, method, _ = to_tflite_int8(graph, x[:1])
    assert method == "pt2e-qat"
    got = run_tflm(tfl, train.X[:8])
    want = graph(torch.from_numpy(train.X[:8])).detach().numpy()
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()  # TFLM int8 ≈ the simulated int8 graph


def test_ptq_and_the_ai_edge_quantizer_fallback_both_run_in_tflm(data):
    ds, _ = data
    model = _model(ds)
    x = torch.from_numpy(ds.X[:64])
    ref = model(x).detach().numpy()
    for quantizer in ("pt2e", "ai-edge-quantizer"):
        tfl, method, _ = to_tflite_int8(model, x[:1], ds.X[:64], quantizer=quantizer)
        assert method == ("pt2e-ptq" if quantizer == "pt2e" else "ai-edge-quantizer")
        got = run_tflm(tfl, ds.X[:64])
        assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max(), quantizer
        assert len(tfl) < len(to_tflite(model, x[:1])) / 2


@pytest.mark.parametrize("calibration", [None, np.zeros((0, 6, 100), np.float32), np.zeros((3, 6, 100), np.float32)])
def test_missing_or_too_little_calibration_is_a_clear_error(data, calibration):
    ds, _ = data
    with pytest.raises(ConfigError, match="calibration"):
        to_tflite(_model(ds), torch.from_numpy(ds.X[:1]), int8=True, calibration=calibration)


def test_layer_errors_name_the_layer_where_int8_loses_precision(data):
    ds, _ = data
    model = _outlier_model(ds)
    normal = _model(ds)
    x = torch.from_numpy(ds.X[:32])
    assert torch.allclose(model(x), normal(x), rtol=1e-3, atol=1e-4)  # the same function in fp32
    graph = ptq(model, x[:1], ds.X[:64])
    errors = layer_errors(fp32_graph(graph), graph.module, x)
    worst = worst_layer(errors)
    assert worst.layer.startswith("features.0") and worst.relative_error > 0.5
    calm = ptq(normal, x[:1], ds.X[:64])
    assert worst_layer(layer_errors(fp32_graph(calm), calm.module, x)).relative_error < 0.3


class _SVD(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 4, 3)

    def forward(self, x):
        return torch.linalg.svd(self.conv(x))[1]


class _Spectrum(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 4, 3)

    def forward(self, x):
        return torch.fft.rfft(self.conv(x)).abs().flatten(1)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.spectrum = _Spectrum()

    def forward(self, x):
        return self.spectrum(x)


def test_ops_litert_or_tflite_micro_cannot_run_are_named_with_their_layer():
    x = torch.randn(1, 6, 16)
    with pytest.raises(ConfigError, match=r"cannot convert op aten\._linalg_svd"):
        to_tflite(_SVD(), x)
    with pytest.raises(ConfigError, match=r"no kernel for op RFFT2D \(from layer 'spectrum'\)"):
        _load(to_tflite(_Net(), x))
