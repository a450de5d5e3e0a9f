"""Pruning a trained run: save/load without pickle, recipes, fine-tuning that keeps sparsity, the CLI."""

import json

import pytest
import torch
import yaml

import wearprune as wp
from wearprune.data.synthetic import make_synthetic
from wearprune.errors import ConfigError
from wearprune.prune import sparsity
from wearprune.prune.recipe import Recipe, apply_recipe
from wearprune.prune.shapes import apply_layer_shapes, layer_shapes
from wearprune.verbs import prune_run

from .test_cli import assert_clean_error, wearprune


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "dense"
    ds = wp.load_dataset("basicmotions")
    wp.train(ds, "cnn_gru", path, config=wp.TrainConfig(epochs=4, batch_size=16))
    return path


def test_layer_shapes_rebuild_a_pruned_model_from_the_original_class():
    model = wp.build_model("resnet1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    pruned, _ = wp.prune(model, torch.randn(1, 3, 64), ratio=0.5)
    fresh = wp.build_model("resnet1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    apply_layer_shapes(fresh, json.loads(json.dumps(layer_shapes(pruned))))
    fresh.load_state_dict(pruned.state_dict(), strict=True)
    x = torch.randn(2, 3, 64)
    torch.testing.assert_close(fresh.eval()(x), pruned.eval()(x))


def test_pruned_run_saves_and_loads_without_pickle(dense_run, tmp_path):
    run = prune_run(dense_run, tmp_path / "pruned", ratio=0.5, finetune_epochs=1)
    loaded = wp.load_run(tmp_path / "pruned")
    assert loaded.model.rnn.hidden_size == run.model.rnn.hidden_size == 16
    x = torch.randn(2, 6, 100)
    torch.testing.assert_close(loaded.model(x), run.model.eval()(x))
    assert run.metrics["cost"]["macs"] < run.metrics["dense"]["cost"]["macs"]
    assert run.config["pruned_from"] == str(dense_run)
    assert wp.evaluate(tmp_path / "pruned")["test"]["n"] == 40  # same test subjects as the dense run


def test_recipe_hybrid_keeps_weight_sparsity_through_fine_tuning(dense_run, tmp_path):
    recipe = {"steps": [{"method": "channel", "ratio": 0.25, "importance": "taylor", "scope": "global"},
                        {"method": "weight", "ratio": 0.5}]}
    run = prune_run(dense_run, tmp_path / "hybrid", recipe=recipe, finetune_epochs=2)
    assert len(run.metrics["prune"]) == 2
    s = sparsity(wp.load_run(tmp_path / "hybrid").model)
    # 50 % of the prunable weights (classifier kept dense) are still zero after fine-tuning.
    assert s["overall"] >= 0.45


def test_recipe_validation():
    with pytest.raises(ConfigError, match="non-empty 'steps'"):
        Recipe.from_dict({"steps": []})
    with pytest.raises(ConfigError, match="unknown keys"):
        Recipe.from_dict({"steps": [{"method": "channel", "amount": 0.5}]})
    with pytest.raises(ConfigError, match="ratio must be"):
        Recipe.from_dict({"steps": [{"method": "channel", "ratio": 2}]})


def test_recipe_from_yaml_applies_steps_in_order(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump({"steps": [{"method": "neuron", "ratio": 0.5}, {"method": "channel", "ratio": 0.5}]}))
    model = wp.build_model("cnn_gru", {"layout": "window", "input_shape": [6, 64], "n_outputs": 4})
    pruned, summaries = apply_recipe(model, torch.randn(1, 6, 64), Recipe.from_yaml(f))
    assert [s["step"]["method"] for s in summaries] == ["neuron", "channel"]
    assert pruned.rnn.hidden_size == 8  # halved twice
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [method: channel\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        Recipe.from_yaml(bad)


def test_prune_cli(dense_run, tmp_path):
    out = tmp_path / "p"
    res = wearprune("prune", str(dense_run), "--out", str(out), "--ratio", "0.5", "--importance", "fpgm",
                    "--finetune", "1", "--round-to", "4")
    assert res.returncode == 0, res.stderr
    assert "MACs / inference" in res.stdout and "layer widths" in res.stdout
    assert (out / "model.safetensors").exists()
    assert_clean_error(wearprune("prune", str(dense_run), "--out", str(tmp_path / "q"), "--importance", "nope"),
                       "unknown importance 'nope'")
    assert not (tmp_path / "q").exists()
    assert_clean_error(wearprune("prune", str(tmp_path / "missing"), "--out", str(tmp_path / "q")),
                       "not a run directory")


def test_synthetic_prune_keeps_metrics_structure(tmp_path):
    ds = make_synthetic()
    wp.train(ds, "cnn1d", tmp_path / "d", config=wp.TrainConfig(epochs=1))
    with pytest.raises(ConfigError, match="in-memory"):
        prune_run(tmp_path / "d", tmp_path / "p")
