"""Real litert-torch conversion and the real TensorFlow Lite Micro interpreter: outputs match PyTorch,
and the cost model's arena estimate is within 10 % of the arena TFLite Micro allocates."""

import numpy as np
import pytest
import torch

import wearprune as wp
from wearprune.devices import lower
from wearprune.devices.cost import arena_estimate
from wearprune.errors import ConfigError
from wearprune.export import measure_arena, run_tflm, tflite_summary, to_tflite

SPEC = {"layout": "window", "task": "classification", "input_shape": [3, 48], "n_outputs": 4}


@pytest.fixture(scope="module")
def windows():
    rng = np.random.default_rng(0)
    return rng.standard_normal((24, 3, 48)).astype(np.float32)


@pytest.mark.parametrize("name", ["cnn1d", "resnet1d", "dscnn"])
def test_fp32_tflite_runs_in_tflm_like_pytorch_and_arena_is_estimated(name, windows):
    torch.manual_seed(0)
    model = wp.build_model(name, SPEC).eval()
    tfl = to_tflite(model, torch.from_numpy(windows[:1]))
    got = run_tflm(tfl, windows[:4])
    want = model(torch.from_numpy(windows[:4])).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    measured = measure_arena(tfl)
    head, tail = arena_estimate(lower(model, torch.from_numpy(windows[:1])), int8=False)
    assert measured.head == head  # the planned part is reproduced exactly for these graphs
    assert abs(head + tail - measured.total) / measured.total < 0.10
    assert "CONV_2D" in tflite_summary(tfl)["ops"]


def test_int8_pruned_model_runs_in_tflm_close_to_pytorch(windows):
    torch.manual_seed(0)
    dense = wp.build_model("resnet1d", SPEC).eval()
    x = torch.from_numpy(windows[:1])
    pruned, _ = wp.prune(dense, x, method="channel", ratio=0.5)
    tfl = to_tflite(pruned.eval(), x, int8=True, calibration=windows)
    got = run_tflm(tfl, windows[:8])
    want = pruned(torch.from_numpy(windows[:8])).detach().numpy()
    spread = want.max() - want.min()
    assert np.abs(got - want).max() < 0.1 * spread  # int8: a few quantisation steps
    measured = measure_arena(tfl)
    head, tail = arena_estimate(lower(pruned, x, int8=True), int8=True)
    assert abs(head + tail - measured.total) / measured.total < 0.10
    assert measured.total < measure_arena(to_tflite(pruned.eval(), x)).total  # int8 arena is smaller


def test_int8_without_calibration_is_a_clear_error(windows):
    model = wp.build_model("cnn1d", SPEC).eval()
    with pytest.raises(ConfigError, match="calibration windows"):
        to_tflite(model, torch.from_numpy(windows[:1]), int8=True)


def test_trained_batchnorm_is_folded_before_conversion(windows):
    from wearprune.export.fold import fold_batchnorm

    torch.manual_seed(0)
    model = wp.build_model("resnet1d", SPEC).eval()
    for m in model.modules():  # statistics like a trained model's (fresh ones are identities)
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.from_numpy(windows[:4])
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in folded.modules())
    assert torch.allclose(folded(x), model(x), atol=1e-5)
    tfl = to_tflite(model, x[:1])
    assert "MUL" not in tflite_summary(tfl)["ops"]  # no BatchNorm left as MUL + ADD
    head, _ = arena_estimate(lower(model, x[:1]), int8=False)
    assert measure_arena(tfl).head == head


def _device_outputs(model, windows, int8):
    """The model in the form that runs on the device, run in TFLite Micro: the window graph, or the
    streaming step (after a conv front end) for recurrent models."""
    from wearprune.export.streaming import step_calibration, streaming_parts
    from wearprune.export.tflm import run_tflm_streaming

    x = torch.from_numpy(windows)
    if not any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        return run_tflm(to_tflite(model, x[:1], int8=int8, calibration=windows), windows)
    frontend, step, shapes = streaming_parts(model)
    with torch.no_grad():
        frame = frontend(x[:1])[:, 0]
    states = tuple(torch.zeros(s) for s in shapes)
    front = to_tflite(frontend, x[:1], int8=int8, calibration=windows)
    calib = step_calibration(frontend, step, shapes, x) if int8 else None
    return run_tflm_streaming(front, to_tflite(step, (frame, *states), int8=int8, calibration=calib), len(shapes),
                              windows)


@pytest.mark.parametrize("name", [m for m in wp.MODELS if "window" in wp.MODELS[m].layouts])
def test_every_window_zoo_model_runs_in_tflm_dense_and_pruned_fp32_and_int8(name, windows):
    torch.manual_seed(0)
    dense = wp.build_model(name, SPEC).eval()
    x = torch.from_numpy(windows)
    pruned, _ = wp.prune(dense, x[:2], method="channel", ratio=0.5)
    for model in (dense, pruned.eval()):
        want = model(x).detach().numpy()
        np.testing.assert_allclose(_device_outputs(model, windows, int8=False), want, atol=1e-4)
        got = _device_outputs(model, windows, int8=True)
        assert np.abs(got - want).max() < 0.15 * np.abs(want).max() + 1e-3, name  # int8 error, tolerance stated


def test_bidirectional_sequence_model_runs_in_tflm_unrolled_per_gate():
    """litert-torch's own GRU conversion concatenates every step and trips TFLite Micro's input limit;
    the per-gate unrolled form (each direction only up to the centre epoch) runs, dense and pruned."""
    from wearprune.export.streaming import device_form

    spec = {"layout": "sequence", "task": "classification", "input_shape": [21, 5], "n_outputs": 5}
    seqs = np.random.default_rng(1).standard_normal((16, 21, 5)).astype(np.float32)
    torch.manual_seed(0)
    dense = wp.build_model("sleep_seq", spec).eval()
    pruned, _ = wp.prune(dense, torch.from_numpy(seqs[:2]), method="channel", ratio=0.5)
    for model in (dense, pruned.eval()):
        form = device_form(model)
        assert form is not model
        want = model(torch.from_numpy(seqs)).detach().numpy()
        np.testing.assert_allclose(run_tflm(to_tflite(form, torch.from_numpy(seqs[:1])), seqs), want, atol=1e-4)
        int8 = to_tflite(form, torch.from_numpy(seqs[:1]), int8=True, calibration=seqs)
        assert np.abs(run_tflm(int8, seqs) - want).max() < 0.15 * np.abs(want).max() + 1e-3


@pytest.mark.parametrize("name", ["cnn_gru", "cnn_lstm"])
def test_recurrent_arena_is_estimated_on_the_streaming_graphs_export_makes(name, windows):
    """A recurrent model ships as a front end and a streaming step; the cost model plans those two
    graphs (int8: the mixed int8/float step litert-torch makes, op for op) and lands within 10 % of
    the arena TFLite Micro allocates for them (larger graph + the state kept between steps)."""
    from collections import Counter

    from wearprune.devices.lower import streaming_graphs
    from wearprune.export.check import streaming_tflite

    torch.manual_seed(0)
    dense = wp.build_model(name, SPEC).eval()
    x = torch.from_numpy(windows[:1])
    pruned, _ = wp.prune(dense, torch.from_numpy(windows[:2]), method="channel", ratio=0.5)
    for model, dtype in ((dense, "fp32"), (dense, "int8"), (pruned.eval(), "int8")):
        int8 = dtype == "int8"
        _, record, made, _ = streaming_tflite(model, x, windows[:1], dtype, torch.from_numpy(windows))
        low = lower(model, x, int8=int8)
        _, step = streaming_graphs(low, int8)
        made_ops = Counter(tflite_summary(made[f"model_step_{dtype}.tflite"])["ops"])
        assert Counter(k.runtime_op for k in step.kernels) == made_ops, (name, dtype)
        estimate = sum(arena_estimate(low, int8))
        assert abs(estimate - record["arena_bytes"]) / record["arena_bytes"] < 0.10, (name, dtype, estimate)
