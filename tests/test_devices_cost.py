"""The cost model on models small enough to compute by hand: MACs, params, bytes, peak RAM, latency."""

from dataclasses import replace

import pytest
import torch
from torch import nn

import wearprune as wp
from wearprune.devices import estimate_cost, load_device, lower
from wearprune.devices.cost import arena_estimate, flash_estimate
from wearprune.graph.dependency import UnsupportedOpError


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5)).eval()


def test_mlp_macs_params_and_weight_bytes_are_exact():
    low = lower(mlp(), torch.zeros(1, 10))
    assert low.macs == 10 * 20 + 20 * 5
    assert [k.runtime_op for k in low.kernels] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]  # ReLU fused
    w8, _ = flash_estimate(low, int8=True)
    w32, _ = flash_estimate(low, int8=False)
    assert w32 == 4 * (200 + 100 + 20 + 5)
    assert w8 == (200 + 100) + 4 * (20 + 5) + 12 * (20 + 5)  # int8 weights, int32 bias, per-channel scale/zp


def test_mlp_peak_ram_is_the_largest_live_pair():
    low = lower(mlp(), torch.zeros(1, 10))
    head, _ = arena_estimate(low, int8=False)
    assert head == 48 + 80  # x (10 floats -> 48 B aligned) and h (20 floats) live in the first FC


class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 8, 3, padding=1)
        self.bn = nn.BatchNorm1d(8)
        self.c2 = nn.Conv1d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.bn(self.c1(x))))


def test_conv_chain_lowers_like_litert_and_folds_batchnorm():
    low = lower(Chain().eval(), torch.zeros(1, 2, 16))
    ops = [k.runtime_op for k in low.kernels]
    assert ops == ["RESHAPE", "TRANSPOSE", "CONV_2D", "CONV_2D", "TRANSPOSE", "RESHAPE"]
    assert low.macs == 16 * 8 * 2 * 3 + 16 * 4 * 8 * 3
    head, _ = arena_estimate(low, int8=True)
    # int8: x 32 B, reshape 32, transpose 32, c1 out 128, c2 out 64 ...: peak is conv2's in + out = 128 + 64
    assert head == 128 + 64


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 4, 3, padding=1)
        self.c2 = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):
        return x + self.c2(torch.relu(self.c1(x)))


def test_residual_block_peak_ram_counts_the_skip():
    low = lower(Residual().eval(), torch.zeros(1, 4, 16))
    head, _ = arena_estimate(low, int8=False)
    # every tensor is 4 x 16 floats = 256 B. x is read by the first reshape and by the add, so it lives
    # through all 7 kernels (reshape, transpose, conv, conv, transpose, reshape, add); each kernel also
    # holds its input and output: 3 buffers. Without the skip the chain would need 2.
    assert [k.runtime_op for k in low.kernels][-3:] == ["TRANSPOSE", "RESHAPE", "ADD"]
    assert head == 3 * 256


def test_latency_energy_and_battery_follow_the_profile():
    # the assumption-based costing (profiles without an instruction model; tests/test_instructions.py has the other)
    dev = replace(load_device("nrf52840"), instruction_model="", cycles_per_instruction=0.0)
    c = estimate_cost(mlp(), torch.zeros(1, 10), dev, int8=True, inferences_per_min=60)
    cycles = 300 * dev.cycles_per_mac["int8"] + 2 * dev.op_overhead_cycles + dev.inference_overhead_cycles
    assert c.latency_ms == pytest.approx(cycles / (dev.clock_mhz * 1e3))
    assert c.energy_uj == pytest.approx(c.latency_ms * dev.active_mw)
    avg_mw = (c.energy_uj * 60 + dev.sleep_uw * (60 - c.latency_ms * 60 / 1000)) / 60 / 1000
    assert c.battery_hours == pytest.approx(dev.battery_mah * dev.battery_v / avg_mw)
    assert c.fits and c.params == 20 * 10 + 20 + 5 * 20 + 5


def test_a_model_larger_than_the_chip_does_not_fit_and_names_the_limit():
    big = nn.Sequential(nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 10)).eval()  # 4 MB fp32
    c = estimate_cost(big, torch.zeros(1, 1000), "nrf52840", int8=False)
    assert not c.fits and c.binding == "flash"


def test_pruning_lowers_every_estimated_cost():
    ds_spec = {"layout": "window", "task": "classification", "input_shape": [3, 64], "n_outputs": 4}
    dense = wp.build_model("resnet1d", ds_spec).eval()
    x = torch.zeros(1, 3, 64)
    pruned, _ = wp.prune(dense, x, method="channel", ratio=0.5)
    a, b = estimate_cost(dense, x, "stm32u575"), estimate_cost(pruned, x, "stm32u575")
    for key in ("macs", "weights_bytes", "arena_bytes", "latency_ms", "energy_uj"):
        assert getattr(b, key) < getattr(a, key), key
    assert b.battery_hours > a.battery_hours


def test_unknown_op_is_named():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1)

    with pytest.raises(UnsupportedOpError, match="cumsum"):
        lower(Odd(), torch.zeros(1, 4))


def test_mlperf_reference_models_have_the_published_mac_counts():
    from wearprune.models.reference import mlperf_tiny_models

    macs = {k: lower(m, x).macs for k, (m, x) in mlperf_tiny_models().items()}
    assert macs["kws"] == pytest.approx(2.66e6, rel=0.01)
    assert macs["ic"] == pytest.approx(12.5e6, rel=0.01)
    assert macs["vww"] == pytest.approx(7.49e6, rel=0.01)
    assert macs["ad"] == pytest.approx(0.264e6, rel=0.01)


@pytest.mark.parametrize("name", ["cnn1d", "resnet1d", "tcn", "dscnn", "cnn_gru", "cnn_lstm"])
def test_every_window_zoo_model_is_costed_with_the_exact_mac_count(name):
    spec = {"layout": "window", "task": "classification", "input_shape": [3, 48], "n_outputs": 4}
    model, x = wp.build_model(name, spec).eval(), torch.zeros(1, 3, 48)
    c = estimate_cost(model, x, "nrf52840")
    assert c.macs == wp.count_macs(model, x) and c.arena_bytes > 0
    assert c.recurrent == (name in ("cnn_gru", "cnn_lstm"))


def test_recurrent_model_is_costed_as_front_end_and_streaming_step():
    """The arena of a conv + GRU model is planned on the two graphs export ships; in int8 the step is
    mixed the way litert-torch quantises it, so the GRU's state (read by a float SUB) stays float."""
    from wearprune.devices.lower import streaming_graphs

    spec = {"layout": "window", "task": "classification", "input_shape": [3, 48], "n_outputs": 4}
    torch.manual_seed(0)
    model = wp.build_model("cnn_gru", spec).eval()
    x = torch.zeros(1, 3, 48)
    low = lower(model, x, int8=True)
    front, step = streaming_graphs(low, int8=True)
    assert {k.kind for k in front.kernels}.isdisjoint({"recurrent", "dense"})  # convs, pooling, layout only
    ops = [k.runtime_op for k in step.kernels]
    assert ops.count("FULLY_CONNECTED") == 2 * 6 + 1  # 2 layers x 3 gates x (input, state), + the classifier
    assert "QUANTIZE" in ops and "DEQUANTIZE" in ops
    frame, *states = (step.tensors[t].nbytes for t in step.inputs)
    assert frame == 1 and states == [4, 4]
    head, tail = arena_estimate(low, int8=True)
    assert head >= sum(4 * 32 for _ in states)  # the head holds the float states kept between steps
    # no step form (bidirectional): the old single-kernel costing, still an estimate
    seq = wp.build_model("sleep_seq", {"layout": "sequence", "task": "classification", "input_shape": [21, 5],
                                       "n_outputs": 5}).eval()
    assert streaming_graphs(lower(seq, torch.zeros(1, 21, 5)), int8=False) is None


def test_recurrent_latency_charges_every_step_op_each_frame():
    """Firmware invokes the step once per frame: with only fixed costs left in the profile, latency is
    (front-end ops + frames x step ops) x per-op cost + (1 + frames) invokes x per-invoke cost."""
    from dataclasses import replace

    from wearprune.devices.lower import step_frames, streaming_graphs

    spec = {"layout": "window", "task": "classification", "input_shape": [3, 48], "n_outputs": 4}
    model, x = wp.build_model("cnn_gru", spec).eval(), torch.zeros(1, 3, 48)
    dev = replace(load_device("nrf52840"), instruction_model="", cycles_per_mac={"int8": 0.0, "fp32": 0.0},
                  cycles_per_element={"int8": 0.0, "fp32": 0.0}, op_overhead_cycles=100, inference_overhead_cycles=1000)
    low = lower(model, x, int8=True)
    front, step = streaming_graphs(low, int8=True)
    frames = step_frames(low)
    assert frames == 24  # the convs keep 48 samples, max-pool 2 halves them
    cycles = estimate_cost(model, x, dev).latency_ms * dev.clock_mhz * 1e3
    assert cycles == pytest.approx((len(front.kernels) + frames * len(step.kernels)) * 100 + (1 + frames) * 1000)
