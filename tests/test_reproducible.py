"""The same training with the same seed gives the same weights; the run records how (seed, threads,
deterministic kernels). On CPU: deterministic kernels are enforced there only (see train.reproducible)."""

import json

import pytest
import torch
from safetensors.torch import load_file

import wearprune as wp

from .test_cli import wearprune

AUGMENT = ["jitter", "scaling", "rotation", "time_warp"]  # every augmentation draws random numbers


def _weights(ds, model, seed):
    run = wp.train(ds, model, None, config=wp.TrainConfig(epochs=2, batch_size=16, seed=seed, augment=AUGMENT,
                                                          device="cpu"))
    return run.model.state_dict(), run.metrics["history"]["reproducibility"]


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model", ["cnn1d", "cnn_gru"])
def test_same_seed_same_weights_other_seed_other_weights(model):
    ds = wp.load_dataset("basicmotions")
    first, record = _weights(ds, model, 0)
    again, _ = _weights(ds, model, 0)
    other, _ = _weights(ds, model, 1)
    assert _same(first, again)
    assert not _same(first, other)
    assert record["seed"] == 0 and record["torch_threads"] == torch.get_num_threads()
    assert record["deterministic"] is True and record["nondeterministic_ops"] == []


def test_training_leaves_torch_settings_as_it_found_them():
    before = torch.are_deterministic_algorithms_enabled()
    _weights(wp.load_dataset("basicmotions"), "mlp", 0)
    assert torch.are_deterministic_algorithms_enabled() == before


def test_the_same_command_twice_gives_the_same_run(tmp_path):
    runs = []
    for name in ("a", "b"):
        res = wearprune("train", "--data", "basicmotions", "--model", "cnn1d", "--epochs", "2", "--batch-size", "16",
                        "--augment", "jitter,rotation", "--seed", "3", "--device", "cpu", "--out", str(tmp_path / name))
        assert res.returncode == 0, res.stderr[-2000:]
        runs.append(tmp_path / name)
    a, b = (load_file(str(r / "model.safetensors")) for r in runs)
    assert _same(a, b)
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert metrics[0]["test"]["macro_f1"] == metrics[1]["test"]["macro_f1"]
    record = metrics[0]["history"]["reproducibility"]
    assert record["seed"] == 3 and record["deterministic"] and record["torch_threads"] >= 1
