"""Zoo models built from the newer layer types (GroupNorm, Mish, Hardswish, SiLU, ELU) go the whole
way as runs: train, prune, cost on nRF52840, fit, export to int8 and run in TensorFlow Lite Micro."""

import pytest
import torch

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.prune.shapes import layer_shapes

SPEC = {"layout": "window", "input_shape": [6, 100], "n_outputs": 4}


@pytest.mark.parametrize("model,norm,act", [("cnn1d", "group", "mish"), ("dscnn", "batch", "hardswish"),
                                            ("cnn_gru", "group", "silu"), ("cnn_lstm", "batch", "elu")])
def test_block_options_prune_and_cost(model, norm, act):
    net = wp.build_model(model, SPEC, norm=norm, act=act).eval()
    kinds = {type(m).__name__ for m in net.modules()}
    assert {"GroupNorm" if norm == "group" else "BatchNorm1d", {"mish": "Mish", "hardswish": "Hardswish",
            "silu": "SiLU", "elu": "ELU"}[act]} <= kinds
    x = torch.randn(2, 6, 100)
    pruned, summary = wp.prune(net, x[:1], ratio=0.5)
    assert summary["macs_after"] < summary["macs_before"]
    assert pruned(x).shape == (2, 4)
    cost = wp.estimate_cost(pruned, x[:1], "nrf52840")
    assert 0 < cost.arena_bytes and 0 < cost.latency_ms


def test_bad_block_options_are_one_line():
    with pytest.raises(ConfigError, match="unknown norm 'instance'"):
        wp.build_model("cnn1d", SPEC, norm="instance")
    with pytest.raises(ConfigError, match="has no option norm"):
        wp.build_model("tcn", SPEC, norm="group")  # GroupNorm over time would break the causal stream
    with pytest.raises(ConfigError, match="has no option act"):
        wp.build_model("resnet1d", SPEC, act="silu")
    grouped = wp.build_model("resnet1d", SPEC, norm="group")
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in grouped.modules())
    with pytest.raises(ConfigError, match="unknown act 'gelu'"):
        wp.build_model("cnn1d", SPEC, act="gelu")


def test_a_group_norm_mish_run_trains_prunes_fits_and_runs_in_tflm(tmp_path):
    ds = wp.load_dataset("basicmotions")
    dense = tmp_path / "dense"
    wp.train(ds, "cnn1d", dense, config=wp.TrainConfig(epochs=2, batch_size=16),
             model_options={"norm": "group", "act": "mish"})
    run = wp.load_run(dense)  # rebuilt from architecture.json with its options
    assert run.architecture["options"] == {"norm": "group", "act": "mish"}
    pruned = wp.prune_run(dense, tmp_path / "p", ratio=0.5, finetune_epochs=1)
    reloaded = wp.load_run(tmp_path / "p")
    assert layer_shapes(reloaded.model) == layer_shapes(pruned.model)
    x = torch.zeros(1, 6, 100)
    limit = wp.estimate_cost(run.model, x, "nrf52840").latency_ms / 2
    result = wp.fit(dense, wp.FitSpec(device="nrf52840", max_latency_ms=limit, trials=2, trial_epochs=1,
                                      final_epochs=1, workers=1), tmp_path / "fit")
    assert result.winner["est_latency_ms"] <= limit
    int8 = result.measured["int8"]  # the winner's int8 .tflite ran in TensorFlow Lite Micro on the test set
    assert int8["arena_bytes"] > 0 and 0 <= int8["macro_f1"] <= 1
    assert (tmp_path / "fit" / "model_int8.tflite").is_file()


def test_a_group_norm_hardswish_cnn_gru_exports_int8_as_a_streaming_step(tmp_path):
    ds = wp.load_dataset("basicmotions")
    dense = tmp_path / "gru"
    wp.train(ds, "cnn_gru", dense, config=wp.TrainConfig(epochs=1, batch_size=16),
             model_options={"norm": "group", "act": "hardswish"})
    result = wp.export_run(dense, wp.ExportSpec(formats=("tflite",), int8=True, int8_tolerance=1.0))
    assert result["checks"]["fp32"]["max_abs_diff"] < 1e-3  # the front end's GroupNorm + Hardswish convert exactly
    assert result["checks"]["int8"]["streaming"] and result["checks"]["int8"]["arena_bytes"] > 0
