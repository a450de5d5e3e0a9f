import torch

import wearprune as wp
from wearprune.data.synthetic import make_synthetic


def test_public_api_end_to_end(tmp_path):
    ds = make_synthetic()
    run = wp.train(ds, "cnn1d", tmp_path / "run", config=wp.TrainConfig(epochs=2))
    metrics = wp.evaluate(tmp_path / "run", data=ds)
    assert metrics["test"]["n"] == run.metrics["test"]["n"]
    model = wp.load_run(tmp_path / "run").model
    assert isinstance(model, torch.nn.Module)  # plain nn.Module out
    assert wp.count_macs(model, torch.randn(1, *ds.input_shape)) == run.metrics["cost"]["macs"]


def test_submodules_stay_importable_beside_the_verbs():
    from wearprune.evaluate import classification_metrics
    from wearprune.train import TrainConfig

    assert TrainConfig is wp.TrainConfig and callable(classification_metrics)


def test_a_run_trained_on_a_loaded_dataset_object_evaluates_from_its_directory(tmp_path):
    ds = wp.load_dataset("basicmotions")
    wp.train(ds, "dscnn", tmp_path / "run", config=wp.TrainConfig(epochs=1))
    assert wp.evaluate(tmp_path / "run")["test"]["n"] == 40
