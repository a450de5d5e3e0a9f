"""Per-part strategies ("model decomposition"): recipe steps restricted by ``where`` to a part of the
model, each with its own method, criterion and ratio; and ``fit`` searching the criterion per part."""

import json

import pytest
import torch
import yaml

import wearprune as wp
from wearprune.autofit.parts import plan_parts
from wearprune.devices import load_device
from wearprune.errors import ConfigError
from wearprune.prune import auto_parts, part_modules, weight_params
from wearprune.prune.recipe import Recipe, apply_recipe
from wearprune.specs import FitSpec, parse_parts
from wearprune.verbs import prune_run

SPEC = {"layout": "window", "input_shape": [6, 64], "n_outputs": 4}
PER_PART = {"steps": [
    {"method": "channel", "ratio": 0.5, "importance": "taylor", "where": "features.*"},
    {"method": "neuron", "ratio": 0.3, "importance": "l2", "where": "rnn", "round_to": 8},
    {"method": "weight", "n_m": [2, 4], "where": "classifier"},
]}


def _widths(model) -> dict:
    return {"conv0": model.features[0][0].out_channels, "conv1": model.features[1][0].out_channels,
            "rnn": model.rnn.hidden_size, "classes": model.classifier.out_features}


def _is_2_4(w: torch.Tensor) -> bool:
    return bool(((w.reshape(w.shape[0], -1, 4) != 0).sum(-1) <= 2).all())


@pytest.fixture
def calib():
    torch.manual_seed(0)
    return torch.randn(16, 6, 64), torch.randint(0, 4, (16,))


def test_each_step_changes_only_its_part(calib):
    model = wp.build_model("cnn_gru", SPEC).eval()
    x = calib[0][:1]
    pruned, summaries = apply_recipe(model, x, Recipe.from_dict(PER_PART), calib=calib)
    before, after = _widths(model), _widths(pruned)
    assert (after["conv0"], after["conv1"]) == (16, 16)  # taylor, 50 % of the conv front end
    assert after["rnn"] == 24 and after["classes"] == before["classes"]  # 30 % of 32 units, rounded to 8
    conv_step, rnn_step, nm_step = summaries
    # the conv step: only the conv groups; the GRU keeps its width (its input weights shrink with the convs)
    assert [w["group"] for w in conv_step["layers"]] == ["features.0.0", "features.1.0"]
    assert conv_step["where"] == ["features.*"] and "rnn" in conv_step["changed"]
    assert [w["group"] for w in rnn_step["layers"]] == ["rnn"]
    assert not any(m.startswith("features") for m in rnn_step["changed"])
    # N:M only in the head: 2 of every 4 classifier weights, no forced zero anywhere else
    assert nm_step["changed"] == ["classifier"] and _is_2_4(pruned.classifier.weight)
    assert (pruned.classifier.weight == 0).float().mean() == 0.5
    for name, p in weight_params(pruned).items():  # conv, GRU and Linear weights (untrained biases are zero)
        if not name.startswith("classifier"):
            assert int((p == 0).sum()) == 0, name
    out = pruned(calib[0])
    assert out.shape == (16, 4) and torch.isfinite(out).all()
    assert wp.estimate_cost(pruned, x, "nrf52840").macs < wp.estimate_cost(model, x, "nrf52840").macs


def test_prune_takes_where_and_reports_groups_straddling_the_part():
    model = wp.build_model("resnet1d", SPEC).eval()
    x = torch.randn(1, 6, 64)
    pruned, summary = wp.prune(model, x, ratio=0.5, where="layer1")
    # layer1.conv2 is added to the stem's output: that group straddles the part's edge and is left alone
    assert [w["group"] for w in summary["layers"]] == ["layer1.conv1"] and summary["skipped"] == ["layer1.conv2+stem.0"]
    assert pruned.layer1.conv1.out_channels == 8 and pruned.layer2.conv1.out_channels == 32
    both, summary = wp.prune(model, (x,), ratio=0.5, where=["layer1", "stem*"])
    assert "layer1.conv2+stem.0" in [w["group"] for w in summary["layers"]] and not summary["skipped"]
    assert both.stem[0].out_channels == 8 and both.layer3.conv1.out_channels == 64
    weights, summary = wp.prune(model, x, method="weight", ratio=0.5, where="layer3.*")
    assert summary["changed"] == ["layer3.conv1", "layer3.conv2", "layer3.shortcut.0"]
    assert int((weights.layer1.conv1.weight == 0).sum()) == 0 and int((weights.classifier.weight == 0).sum()) == 0


def test_layer_step_considers_only_blocks_in_the_part(calib):
    model = wp.build_model("resnet1d", SPEC).eval()
    _, summary = wp.prune(model, calib[0][:1], method="layer", ratio=0.99, where="layer2", calib=calib)
    assert set(summary["candidates"]) == {"layer2"} and summary["removed"] == {"layer2": "shortcut"}
    with pytest.raises(ConfigError, match=r"no removable block in where=\['stem'\]"):
        wp.prune(model, calib[0][:1], method="layer", ratio=0.5, where="stem", calib=calib)


def test_bad_patterns_are_one_clear_error():
    model = wp.build_model("cnn_gru", SPEC)
    x = torch.randn(1, 6, 64)
    with pytest.raises(ConfigError, match=r"where pattern 'feat' matches no module; top-level modules: features, "
                                          r"rnn, dropout, classifier"):
        wp.prune(model, x, where="feat")
    with pytest.raises(ConfigError, match="where pattern 'gru' matches no module"):
        wp.prune(model, x, method="weight", ratio=0.5, where=["features.*", "gru"])
    with pytest.raises(ConfigError, match="where must be a module-name pattern"):
        wp.prune(model, x, where=[])
    # the classifier's outputs are the model's outputs: a channel step there has nothing to prune
    with pytest.raises(ConfigError, match=r"where=\['classifier'\] holds no prunable channel group"):
        wp.prune(model, x, where="classifier")
    with pytest.raises(ConfigError, match="recipe step 2: where must be"):
        Recipe.from_dict({"steps": [{"method": "channel"}, {"method": "weight", "where": 3}]})
    with pytest.raises(ConfigError, match="ratios name group.* outside where"):
        wp.prune(model, x, ratio=0.0, ratios={"rnn": 0.5}, where="features.*")


def test_part_membership_covers_children_and_auto_parts_follow_layer_kinds():
    model = wp.build_model("cnn_gru", SPEC)
    assert {"features.0.0", "features.1.1", "features.2"} <= part_modules(model, "features")
    assert part_modules(model, "rnn") == {"rnn"}
    assert auto_parts(model) == {"front": ["features.0.0", "features.1.0"], "recurrent": ["rnn"],
                                 "head": ["classifier"]}
    plan = plan_parts("auto", model, torch.randn(1, 6, 64))  # the head is the protected classifier: not searched
    assert plan.groups == {"front": ["features.0.0", "features.1.0"], "recurrent": ["rnn"]} and not plan.rest
    assert "'head'" in plan.notes[0]
    resnet = wp.build_model("resnet1d", SPEC)
    plan = plan_parts({"deep": "layer3"}, resnet, torch.randn(1, 6, 64))
    assert plan.groups == {"deep": ["layer3.conv1", "layer3.conv2+layer3.shortcut.0"]} and len(plan.rest) == 4
    with pytest.raises(ConfigError, match="lies in part 'a' and in part 'b'"):
        plan_parts({"a": "layer3", "b": "layer3.*"}, resnet, torch.randn(1, 6, 64))
    with pytest.raises(ConfigError, match="part 'top' .* owns no prunable channel group"):
        plan_parts({"top": "classifier"}, resnet, torch.randn(1, 6, 64))


def test_yaml_recipe_with_where(tmp_path):
    f = tmp_path / "parts.yaml"
    f.write_text(yaml.safe_dump(PER_PART))
    recipe = Recipe.from_yaml(f)
    assert [s.options.get("where") for s in recipe.steps] == ["features.*", "rnn", "classifier"]
    assert recipe.to_dict()["steps"][0]["where"] == "features.*"
    f.write_text("steps:\n  - {method: weight, ratio: 0.5, where: [features.0.0, features.1.0]}\n")
    model = wp.build_model("cnn_gru", SPEC)
    pruned, [summary] = apply_recipe(model, torch.randn(1, 6, 64), Recipe.from_yaml(f))
    assert summary["changed"] == ["features.0.0", "features.1.0"] and int((pruned.rnn.weight_hh_l0 == 0).sum()) == 0


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("parts") / "dense"
    wp.train(wp.load_dataset("basicmotions"), "cnn_gru", path, config=wp.TrainConfig(epochs=2, batch_size=16))
    return path


def test_per_part_run_saves_loads_and_costs(dense_run, tmp_path):
    run = prune_run(dense_run, tmp_path / "parts", recipe=PER_PART, finetune_epochs=1)
    loaded = wp.load_run(tmp_path / "parts")
    dense = wp.load_run(dense_run)
    assert _widths(loaded.model) == {**_widths(dense.model), "conv0": 16, "conv1": 16, "rnn": 24}
    assert _is_2_4(loaded.model.classifier.weight)  # N:M kept through fine-tuning
    assert int((loaded.model.features[0][0].weight == 0).sum()) == 0
    x = torch.randn(2, 6, 100)
    torch.testing.assert_close(loaded.model(x), run.model.eval()(x))
    steps = json.loads((tmp_path / "parts" / "metrics.json").read_text())["prune"]
    assert [s["where"] for s in steps] == [["features.*"], ["rnn"], ["classifier"]]
    cost = wp.estimate_cost(loaded.model, x[:1], "nrf52840")
    assert cost.macs < wp.estimate_cost(dense.model, x[:1], "nrf52840").macs and cost.latency_ms > 0


def test_fit_parts_are_validated():
    assert FitSpec("nrf52840", parts={"front": "features.*"}).parts == {"front": ["features.*"]}
    assert FitSpec("nrf52840", parts="auto").parts == "auto"
    for bad in ({}, {"front": []}, {"front": [""]}, {"a b": "x"}, {"front": 3}, "all", ["features.*"]):
        with pytest.raises(ConfigError, match="part"):
            FitSpec("nrf52840", parts=bad)
    assert parse_parts(["front=features.*", "rnn=rnn,dropout"]) == {"front": ["features.*"], "rnn": ["rnn", "dropout"]}
    assert parse_parts(["auto"]) == "auto" and parse_parts([]) is None
    for bad in (["front"], ["auto", "front=x"], ["front=x", "front=y"], ["front="]):
        with pytest.raises(ConfigError, match="--part|part 'front'"):
            parse_parts(bad)


def test_fit_searches_the_criterion_per_part(dense_run, tmp_path):
    from wearprune.autofit import fit

    r = wp.load_run(dense_run)
    x = torch.zeros(1, *r.architecture["spec"]["input_shape"])
    limit = wp.estimate_cost(r.model, x, "nrf52840").latency_ms / 2
    out = tmp_path / "fitted"
    run_copy = tmp_path / "dense"
    import shutil

    shutil.copytree(dense_run, run_copy)  # the search's storage lives in the run
    result = fit(run_copy, "nrf52840", out, max_latency_ms=limit, trials=4, trial_epochs=1, final_epochs=1, workers=1,
                 parts={"front": "features.*", "recurrent": "rnn"}, log=lambda *_: None)
    w = result.winner
    assert set(w["criteria"]) == {"front", "recurrent"} and all(c in ("l2", "taylor", "fpgm")
                                                                 for c in w["criteria"].values())
    assert [s.get("where") for s in w["recipe"]["steps"]] == [["features.*"], ["rnn"]]
    assert w["feasible"] and w["est_latency_ms"] <= limit
    assert result.measured["int8"]["arena_bytes"] <= load_device("nrf52840").sram_kb * 1024  # measured in TFLM
    assert result.parts["groups"] == {"front": ["features.0.0", "features.1.0"], "recurrent": ["rnn"]}
    stored = json.loads((out / "fit.json").read_text())
    assert stored["winner"]["criteria"] == w["criteria"] and all("criteria" in c for c in stored["candidates"])
    fitted = wp.load_run(out)
    assert fitted.config["fit"]["criteria"] == w["criteria"]
    assert wp.estimate_cost(fitted.model, x, "nrf52840").latency_ms <= limit
    # one trial as the search draws it: a criterion per part, each applied by its own step
    from optuna.trial import FixedTrial

    from wearprune.autofit.study import Job, _Context

    ctx = _Context(Job(run=str(run_copy), data_root=None, device="nrf52840", limits=result.limits, int8=True,
                       storage="", study="", trials=1, trial_epochs=0, seed=0, parts=result.parts["where"]))
    drawn = {"importance": "l2", "importance:front": "taylor", "importance:recurrent": "fpgm",
             **{f"ratio:{g}": 0.25 for g in ctx.groups}}
    trial = FixedTrial(drawn)
    ctx.objective(trial)
    record = trial.user_attrs
    assert record["criteria"] == {"front": "taylor", "recurrent": "fpgm"}
    assert [s["importance"] for s in record["recipe"]["steps"]] == ["taylor", "fpgm"]
    single, _ = wp.prune(r.model, x, ratio=0.0, ratios=record["ratios"])  # the steps' order does not change shapes
    assert record["macs"] == wp.estimate_cost(single, x, "nrf52840").macs
    with pytest.raises(ConfigError, match="where pattern 'conv' matches no module"):
        fit(run_copy, "nrf52840", tmp_path / "never", max_latency_ms=limit, trials=2, trial_epochs=1, final_epochs=1,
            workers=1, parts={"front": "conv"}, log=lambda *_: None)
    assert not (tmp_path / "never").exists()
