"""The causal TCN as a streaming step (one call per frame, histories as states): frame by frame from
zero states it reproduces the whole window, in PyTorch and in the real TensorFlow Lite Micro
interpreter, dense and channel-pruned."""

import numpy as np
import pytest
import torch
from torch import nn

import wearprune as wp
from wearprune.export import measure_arena, tflite_summary, to_tflite
from wearprune.export.streaming_tcn import run_tcn_streaming, tcn_streaming_parts
from wearprune.export.tflm import run_tflm_streaming

SPEC = {"layout": "window", "task": "classification", "input_shape": [3, 64], "n_outputs": 5}
# What litert-torch makes of the step; all TFLite Micro builtins. A new op here is a regression to check.
STEP_OPS = {"FULLY_CONNECTED", "ADD", "RESHAPE", "CONCATENATION", "SLICE", "STRIDED_SLICE"}


def _trained_looking(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


def _model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    model = wp.build_model("tcn", SPEC).eval()
    if kind != "dense":
        x = torch.randn(4, *SPEC["input_shape"])
        scope = "global" if kind == "pruned_global" else "local"  # global: uneven widths per conv
        model, _ = wp.prune(model, x, method="channel", ratio=0.5, scope=scope)
    return _trained_looking(model, seed=1)


@pytest.fixture(scope="module")
def windows():
    return torch.from_numpy(np.random.default_rng(0).standard_normal((3, *SPEC["input_shape"])).astype(np.float32))


@pytest.mark.parametrize("kind", ["dense", "pruned", "pruned_global"])
def test_streaming_over_a_window_equals_the_model_in_pytorch(kind, windows):
    model = _model(kind)
    step, shapes = tcn_streaming_parts(model)
    convs = [c for b in model.blocks for c in (b.conv1, b.conv2)]
    assert shapes == [torch.Size([1, 2 * c.dilation[0], c.in_channels]) for c in convs]  # read from the modules
    with torch.no_grad():
        want = model(windows)
    got = run_tcn_streaming(step, shapes, windows)
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-5


def test_the_states_carry_exactly_the_receptive_field(windows):
    model = _model("dense")
    step, shapes = tcn_streaming_parts(model)
    noise = torch.randn(3, 3, 30)
    short = windows[:, :, -40:]  # shorter than the receptive field, 1 + 2*2*(1+2+4+8) = 61 frames
    with torch.no_grad():
        earlier = run_tcn_streaming(step, shapes, torch.cat([noise, short], dim=2))
        assert (earlier - model(short)).abs().max() > 1e-3  # the earlier frames reach the output
        assert (earlier - model(torch.cat([noise, short], dim=2))).abs().max() < 1e-5
        earlier = run_tcn_streaming(step, shapes, torch.cat([noise, windows], dim=2))
        assert (earlier - model(windows)).abs().max() < 1e-5  # 64 frames: nothing before them matters


@pytest.mark.parametrize("kind", ["dense", "pruned_global"])
def test_step_runs_in_tflm_like_the_model(kind, windows):
    model = _model(kind)
    step, shapes = tcn_streaming_parts(model)
    frame = torch.zeros(1, SPEC["input_shape"][0])
    tfl = to_tflite(step, (frame, *[torch.zeros(s) for s in shapes]))
    ops = tflite_summary(tfl)["ops"]
    assert set(ops) <= STEP_OPS, sorted(set(ops) - STEP_OPS)
    assert len(ops) < 60  # one Linear per conv over the gathered taps, not an unrolled window
    got = run_tflm_streaming(None, tfl, len(shapes), windows.numpy())
    with torch.no_grad():
        want = model(windows).numpy()
    assert np.abs(got - want).max() < 1e-3
    arena = measure_arena(tfl).total
    print(f"{kind}: {len(ops)} ops, arena {arena} bytes")
    assert arena < 32 * 1024  # independent of the window length: the states hold 61 frames at most


def test_models_that_are_not_the_causal_tcn_are_refused():
    with pytest.raises(ValueError, match="causal TCN"):
        tcn_streaming_parts(wp.build_model("cnn1d", SPEC))
    tcn = wp.build_model("tcn", SPEC).eval()
    tcn.blocks[2] = nn.Identity()
    with pytest.raises(ValueError, match="CausalBlock"):
        tcn_streaming_parts(tcn)
    tcn = wp.build_model("tcn", SPEC).eval()
    tcn.blocks[1].pad2 = nn.ConstantPad1d((2, 2), 0.0)  # centred, not causal
    with pytest.raises(ValueError, match="not causal"):
        tcn_streaming_parts(tcn)
