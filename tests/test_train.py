import json

import numpy as np
import pytest
import torch

from wearprune.data.synthetic import make_synthetic
from wearprune.errors import ConfigError
from wearprune.pipeline import evaluate_run, train
from wearprune.runs import load_run
from wearprune.train import TrainConfig, fit


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
    from wearprune.pipeline import prepare_data

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
