"""The instruction model: per-op costs fitted on instruction counts measured on a core (docs/target_cost.md),
read by the cost model of every profile that names it."""

from dataclasses import replace

import numpy as np
import pytest
import torch

import wearprune as wp
from wearprune.devices import estimate_cost, load_device, lower
from wearprune.devices.instructions import (
    ANY,
    CORES,
    TERMS,
    fit_op_costs,
    kernel_instructions,
    load_core,
    op_instructions,
)
from wearprune.devices.profile import load_profile_file
from wearprune.errors import ConfigError

SPEC = {"layout": "window", "task": "classification", "input_shape": [3, 96], "n_outputs": 14}


def test_fit_recovers_known_per_op_costs():
    rng = np.random.default_rng(0)
    truth = {"CONV_2D/INT8": (1.8, 6.0, 40.0, 0.0, 9000.0), "ADD/FLOAT32": (0.0, 0.0, 14.0, 0.0, 370.0)}
    ops = []
    for key, coef in truth.items():
        op, typ = key.split("/")
        for _ in range(30):
            ch = int(rng.integers(4, 64))
            macs = int(rng.integers(1000, 200000)) * ch if op == "CONV_2D" else 0
            feats = {"macs": macs, "out_channels": ch if macs else 0, "out_elems": int(rng.integers(16, 4000)),
                     "in_elems": int(rng.integers(16, 4000))}
            n = op_instructions({key: dict(zip(TERMS, coef))}, op, typ, *feats.values())
            ops.append({"op": op, "type": typ, "instructions": n, **feats})
    table = fit_op_costs(ops)
    for key, coef in truth.items():
        assert [table[key][t] for t in TERMS] == pytest.approx(list(coef), rel=1e-3, abs=1e-3), key
    assert table[ANY]["ops"] == 30  # the ADDs: ops without MACs, the fallback for a type never measured
    assert op_instructions(table, "RESHAPE", "INT8", 0, 0, 100, 100, ) == pytest.approx(
        sum(table[ANY][t] * v for t, v in zip(TERMS, (0, 0, 100, 100, 1))))


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m33"])
def test_shipped_core_tables_cover_the_zoo_ops_and_name_their_source(core):
    table = load_core(core)
    assert "benchmarks/target_cost.py" in table["source"] and table["unit"] == "executed instructions"
    for key in ("CONV_2D/INT8", "DEPTHWISE_CONV_2D/INT8", "FULLY_CONNECTED/INT8", "CONV_2D/FLOAT32",
                "FULLY_CONNECTED/FLOAT32", "MEAN/INT8", "ADD/INT8", "LOGISTIC/FLOAT32", "QUANTIZE/INT8", ANY):
        assert key in table["ops"], key
    assert 0.5 < table["ops"]["CONV_2D/INT8"]["per_mac"] < table["ops"]["CONV_2D/FLOAT32"]["per_mac"]


def test_latency_is_instructions_times_the_boards_cycles_per_instruction():
    dev = load_device("nrf52840")
    assert dev.instruction_model == "cortex-m4" and dev.cycles_per_instruction > 0
    model = wp.build_model("cnn1d", SPEC).eval()
    x = torch.zeros(1, *SPEC["input_shape"])
    low = lower(model, x, int8=True)
    table = load_core("cortex-m4")
    instructions = sum(kernel_instructions(table["ops"], low, k, "int8") for k in low.kernels) + table["per_invoke"]
    cost = estimate_cost(model, x, dev, lowered=low)
    assert cost.latency_ms == pytest.approx(instructions * dev.cycles_per_instruction / (dev.clock_mhz * 1e3))


def test_a_pruned_model_speeds_up_less_than_its_mac_ratio():
    """What the counts on the core showed (docs/target_cost.md): per-op and per-position work shrinks slower
    than the MACs, so the instruction model's ratio is below the MAC ratio; the assumptions were not."""
    model = wp.build_model("resnet1d", SPEC).eval()
    x = torch.zeros(1, *SPEC["input_shape"])
    pruned, _ = wp.prune(model, x, method="channel", ratio=0.5, importance="l2")
    dev = load_device("nrf52840")
    a, b = estimate_cost(model, x, dev), estimate_cost(pruned, x, dev)
    mac_ratio = a.macs / b.macs
    assert 1.5 < a.latency_ms / b.latency_ms < 0.85 * mac_ratio


def test_profile_instruction_fields_are_checked(tmp_path):
    src = load_device("nrf52840").path
    text = open(src).read()
    bad_core = tmp_path / "bad_core.yaml"
    bad_core.write_text(text.replace("instruction_model: cortex-m4", "instruction_model: cortex-m99"))
    with pytest.raises(ConfigError, match="instruction_model.*must name a measured core"):
        load_profile_file(bad_core)
    no_source = tmp_path / "no_source.yaml"
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("cycles_per_instruction:")
             or not ln.startswith("  ")]
    no_source.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="no source for 'cycles_per_instruction'"):
        load_profile_file(no_source)
    assert sorted(p.stem for p in CORES.glob("*.json")) == ["cortex-m33", "cortex-m4"]


def test_a_profile_without_an_instruction_model_keeps_the_assumptions():
    dev = replace(load_device("nrf52840"), instruction_model="", cycles_per_instruction=0.0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5)).eval()
    c = estimate_cost(model, torch.zeros(1, 10), dev)
    cycles = 300 * dev.cycles_per_mac["int8"] + 2 * dev.op_overhead_cycles + dev.inference_overhead_cycles
    assert c.latency_ms == pytest.approx(cycles / (dev.clock_mhz * 1e3))
