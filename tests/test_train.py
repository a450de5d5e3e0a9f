import json

import numpy as np
import pytest
import torch

from wearprune.data.synthetic import make_synthetic
from wearprune.errors import ConfigError
from wearprune.runs import load_run
from wearprune.train import DEFAULT_EPOCHS, TrainConfig, fit
from wearprune.verbs import evaluate_run, train


def test_loss_decreases_and_model_learns():
    ds = make_synthetic(n_subjects=6, per_subject=30)
    run = train(ds, "cnn1d", None, config=TrainConfig(epochs=8, patience=50))
    losses = [e["train_loss"] for e in run.metrics["history"]["epochs"]]
    assert losses[-1] < 0.5 * losses[0]
    assert run.metrics["test"]["accuracy"] > 0.8  # sines of distinct frequencies are easy


def test_regression_trains_on_scaled_targets():
    ds = make_synthetic(task="regression", n_subjects=6, per_subject=30)
    run = train(ds, "cnn1d", None, config=TrainConfig(epochs=10, patience=50))
    # Targets are 60/70/80: predicting the mean would give an MAE near 6.7.
    assert run.metrics["test"]["mae"] < 4.0


def test_early_stopping_restores_best_weights():
    ds = make_synthetic()
    from wearprune.data.prepare import prepare_data

    p = prepare_data(ds)
    from wearprune.models import build_model

    model = build_model("mlp", p.dataset.spec())
    h = fit(model, p.train, p.val, TrainConfig(epochs=30, patience=2, lr=0.5))
    assert h.best_epoch <= len(h.epochs)
    assert h.stopped_early or len(h.epochs) == 30


def test_distillation_runs_with_a_teacher(tmp_path):
    ds = make_synthetic()
    teacher = train(ds, "cnn1d", tmp_path / "teacher", config=TrainConfig(epochs=3))
    student = train(ds, "cnn1d", tmp_path / "student", width=0.5, config=TrainConfig(epochs=3),
                    teacher=teacher.path)
    assert student.config["teacher"] == str(tmp_path / "teacher")


def test_run_directory_round_trip(tmp_path):
    ds = make_synthetic()
    run = train(ds, "resnet1d", tmp_path / "run", config=TrainConfig(epochs=2))
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["architecture.json", "config.json", "confusion.png", "metrics.json", "model.safetensors"]
    loaded = load_run(tmp_path / "run")
    x = torch.from_numpy(ds.X[:4])
    with torch.no_grad():
        assert torch.equal(loaded.model(x), run.model.eval()(x))
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers
    json.loads((tmp_path / "run" / "config.json").read_text())


def test_existing_out_is_not_overwritten(tmp_path):
    ds = make_synthetic()
    train(ds, "mlp", tmp_path / "run", config=TrainConfig(epochs=1))
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        train(ds, "mlp", tmp_path / "run", config=TrainConfig(epochs=1))
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


def test_failed_training_leaves_nothing(tmp_path, monkeypatch):
    import wearprune.runs as runs

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(runs, "save_file", boom)
    with pytest.raises(OSError):
        train(make_synthetic(), "mlp", tmp_path / "run", config=TrainConfig(epochs=1))
    assert list(tmp_path.iterdir()) == []


def test_damaged_weights_give_a_clear_error(tmp_path):
    train(make_synthetic(), "mlp", tmp_path / "run", config=TrainConfig(epochs=1))
    w = tmp_path / "run" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(ConfigError, match="cannot be read"):
        load_run(tmp_path / "run")


def test_bad_config_values():
    with pytest.raises(ConfigError, match="unknown augmentation"):
        TrainConfig(augment=["flip"]).validate()
    with pytest.raises(ConfigError):
        TrainConfig(epochs=0).validate()


def test_evaluate_in_memory_run_needs_data(tmp_path):
    ds = make_synthetic()
    run = train(ds, "mlp", tmp_path / "run", config=TrainConfig(epochs=1))
    m = evaluate_run(run.path, data=ds)
    assert m["test"]["n"] == int(np.isin(ds.subjects, ["s5"]).sum())
    with pytest.raises(ConfigError, match="in-memory"):
        evaluate_run(run.path)


# -- a damaged or foreign run directory is one clear line -------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "run"
    train(make_synthetic(), "mlp", path, config=TrainConfig(epochs=1), prune_at_init={"ratio": 0.5})
    return path


def _damaged_copy(src, tmp_path, name, edit):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    file = dst / name
    data = json.loads(file.read_text())
    result = edit(data)
    file.write_text(result if isinstance(result, str) else json.dumps(data))
    return dst


def _drop_layer_type(a):
    next(iter(a["layers"].values())).pop("type")


def _bad_layer_size(a):
    next(iter(a["layers"].values()))["out_features"] = "wide"


def _no_layers_mapping(a):
    a["layers"] = [1, 2]


DAMAGE = [
    ("architecture.json", _drop_layer_type, "'type'"),
    ("architecture.json", _bad_layer_size, "out_features"),
    ("architecture.json", _no_layers_mapping, "'layers'"),
    ("architecture.json", lambda a: a.pop("spec"), "'spec'"),
    ("architecture.json", lambda a: a["spec"].pop("input_shape"), "'input_shape'"),
    ("architecture.json", lambda a: a["spec"].update(n_outputs="three"), "'n_outputs'"),
    ("architecture.json", lambda a: a.pop("model") and None, "'model'"),
    ("architecture.json", lambda a: a.update(width=None), "'width'"),
    ("architecture.json", lambda a: a.update(removed_blocks=["x"]), "'removed_blocks'"),
    ("architecture.json", lambda a: "[1, 2]", "a JSON object"),
    ("config.json", lambda c: "{}", "'data'"),
    ("config.json", lambda c: c.pop("split"), "'split'"),
    ("config.json", lambda c: c["train"].pop("seed"), "'seed'"),
    ("config.json", lambda c: c.update(normalizer="z-score"), "'normalizer'"),
    ("config.json", lambda c: c["data"].update(name=3), "'name'"),
    ("config.json", lambda c: '{"data": ', "invalid JSON"),
    ("metrics.json", lambda m: "[]", "a JSON object"),
]


@pytest.mark.parametrize("name, edit, key", DAMAGE, ids=[f"{n}-{k}" for n, _, k in DAMAGE])
def test_damaged_run_files_are_one_clear_line(trained_run, tmp_path, name, edit, key):
    path = _damaged_copy(trained_run, tmp_path, name, edit)
    with pytest.raises(ConfigError) as exc:
        load_run(path)
    text = str(exc.value)
    assert "\n" not in text and name in text and key in text, text
    assert "damaged or from another version" in text and "retrain" in text


def test_undamaged_copy_still_loads(trained_run, tmp_path):
    path = _damaged_copy(trained_run, tmp_path, "config.json", lambda c: None)
    assert load_run(path).architecture["layers"]


def test_run_directory_that_is_a_file(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(ConfigError, match="not a run directory"):
        load_run(tmp_path / "run")


# -- --overwrite through a symlinked run directory --------------------------------------------------
def test_overwrite_through_a_symlink_leaves_nothing_behind(tmp_path):
    ds = make_synthetic()
    real = tmp_path / "disk" / "run"
    train(ds, "mlp", real, config=TrainConfig(epochs=1))
    link = tmp_path / "RUN"
    link.symlink_to(real, target_is_directory=True)
    before = (real / "model.safetensors").read_bytes()
    run = train(ds, "mlp", link, width=0.5, config=TrainConfig(epochs=1), overwrite=True)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert (real / "model.safetensors").read_bytes() != before
    assert load_run(link).architecture["width"] == 0.5 and run.path == link
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RUN", "disk"]
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["run"]


# -- --device cuda without CUDA ---------------------------------------------------------------------
def test_cuda_without_cuda_is_refused_before_loading_data(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--device cuda asked but no CUDA device is available; "
                                          "use --device cpu or auto"):
        TrainConfig(device="cuda").validate()
    import wearprune.data.prepare as prepare

    def no_loading(*a, **k):
        raise AssertionError("data were loaded before the device was checked")

    monkeypatch.setattr(prepare, "load_dataset", no_loading)
    with pytest.raises(ConfigError, match="no CUDA device"):
        train("hmp", "mlp", tmp_path / "run", config=TrainConfig(device="cuda:0"))
    assert not (tmp_path / "run").exists()


def test_unknown_device_name_is_refused():
    with pytest.raises(ConfigError, match="unknown device 'gpu'.*auto, cpu or cuda"):
        TrainConfig(device="gpu").validate()
    TrainConfig(device="cpu").validate()
    TrainConfig(device="auto").validate()


def test_fit_refuses_a_single_class_training_set():
    from wearprune.data.prepare import prepare_data
    from wearprune.errors import DataError
    from wearprune.models import build_model

    p = prepare_data(make_synthetic())
    p.train.y[:] = 0
    with pytest.raises(DataError, match="at least two classes; found only 'class0'"):
        fit(build_model("mlp", p.dataset.spec()), p.train, p.val, TrainConfig(epochs=1))


# -- small data sets: a minimum of optimizer steps; a warning when validation never improved ------
def test_small_set_with_default_epochs_gets_the_minimum_steps():
    from wearprune.data.prepare import prepare_data
    from wearprune.models import build_model

    p = prepare_data(make_synthetic(n_subjects=6, per_subject=8, length=32))
    n = len(p.train)
    cfg = TrainConfig(batch_size=16, patience=1, min_steps=300)  # epochs left to the default
    per_epoch = cfg.steps_per_epoch(n)
    assert cfg.planned_epochs(n) == max(DEFAULT_EPOCHS, -(-300 // per_epoch)) > DEFAULT_EPOCHS  # few batches/epoch
    h = fit(build_model("mlp", p.dataset.spec()), p.train, p.val, cfg)
    # patience 1 would stop after two epochs; the default epochs wait for the minimum steps first
    assert h.steps >= 300 and h.steps == len(h.epochs) * per_epoch
    given = fit(build_model("mlp", p.dataset.spec()), p.train, p.val, TrainConfig(epochs=2, batch_size=16))
    assert len(given.epochs) == 2 and given.steps == 2 * per_epoch  # a number of epochs is taken as given
    assert TrainConfig(batch_size=64).planned_epochs(100_000) == DEFAULT_EPOCHS  # a large set: the default


def test_validation_that_never_improves_warns(tmp_path):
    from wearprune.train import History, TrainingWarning, never_improved

    ds = make_synthetic(n_subjects=4, per_subject=10, length=32)
    cfg = TrainConfig(epochs=4, lr=1e-12, patience=50)  # the weights cannot move: validation stays flat
    with pytest.warns(TrainingWarning, match=r"never improved after epoch 1 .* 4 epochs \(\d+ optimizer steps\)"):
        run = train(ds, "mlp", tmp_path / "r", config=cfg)
    assert "never improved" in run.metrics["history"]["warning"]
    assert load_run(tmp_path / "r").metrics["history"]["warning"] == run.metrics["history"]["warning"]
    epochs = [{"epoch": e} for e in range(1, 5)]
    improved = History(epochs=epochs, best_epoch=2, best_score=0.5, score_name="val_macro_f1")
    assert never_improved(improved, TrainConfig()) == ""
    short = History(epochs=epochs[:3], best_epoch=1, best_score=0.5, score_name="val_macro_f1")
    assert never_improved(short, TrainConfig()) == ""  # too few epochs to tell
    late = History(epochs=[{"epoch": e} for e in range(1, 8)], best_epoch=3, score_name="val_mae")
    assert never_improved(late, TrainConfig(select_from_epoch=3)) != ""  # first eligible epoch, then nothing


def test_label_smoothing_is_validated_and_recorded():
    with pytest.raises(ConfigError, match="label smoothing"):
        TrainConfig(label_smoothing=1.0).validate()
    with pytest.raises(ConfigError, match="epochs and batch size"):
        TrainConfig(epochs=0).validate()
    ds = make_synthetic(n_subjects=4, per_subject=10, length=32)
    run = train(ds, "mlp", None, config=TrainConfig(epochs=2, label_smoothing=0.1))
    assert run.config["train"]["label_smoothing"] == 0.1
