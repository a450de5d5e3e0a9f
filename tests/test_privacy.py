"""Differential privacy (DP-SGD with Opacus): the ε reported is the accountant's, models Opacus cannot
train are refused in one line, data-dependent pruning criteria are refused under DP."""

import pytest
import torch

import wearprune as wp
from tests.test_cli import assert_clean_error, wearprune
from wearprune.data.synthetic import make_synthetic
from wearprune.errors import ConfigError
from wearprune.privacy import epsilon_of


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_subjects=6, per_subject=60, seed=4)


@pytest.fixture(scope="module")
def dp_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp") / "run"
    return wp.train(data, "cnn1d", out, model_options={"norm": "group"},
                    config=wp.TrainConfig(epochs=3, dp_epsilon=4.0, patience=3))


def test_reported_epsilon_is_the_accountants(dp_run):
    dp = dp_run.metrics["dp"]
    assert dp == dp_run.config["dp"] and dp["accountant"] == "prv"
    assert 0 < dp["epsilon"] <= 4.0 * 1.01  # spends at most the target (early stopping may spend less)
    again = epsilon_of(dp["noise_multiplier"], dp["sample_rate"], dp["steps"], dp["delta"])
    assert again == pytest.approx(dp["epsilon"], rel=1e-6)
    assert dp["noise_multiplier"] > 0 and dp["steps"] >= 3
    assert dp["delta"] == pytest.approx(1 / (10 * 240))  # 4 training subjects x 60 windows
    assert not any(hasattr(p, "grad_sample") for p in dp_run.model.parameters())  # Opacus's hooks are gone
    reloaded = wp.load_run(dp_run.path)  # an ordinary run: rebuilds and predicts
    assert reloaded.model(torch.zeros(1, 3, 64)).shape == (1, 3)


def test_pruned_dp_fine_tune_adds_up_epsilon(dp_run, data, tmp_path):
    from wearprune.data.prepare import prepare_from_config

    prepared = prepare_from_config(dp_run.config, data=data)
    pruned = wp.prune_run(dp_run, None, prepared=prepared, ratio=0.5, importance="l2", finetune_epochs=2,
                          dp_epsilon=2.0)
    dp = pruned.metrics["dp"]
    assert dp["epsilon"] <= 2.0 * 1.01 and dp["epsilon_total"] == pytest.approx(dp["epsilon"] + dp["epsilon_dense"])
    with pytest.raises(ConfigError, match="importance 'taylor' reads training windows"):
        wp.PruneSpec(importance="taylor", dp_epsilon=2.0)


def test_models_opacus_cannot_train_are_one_line(data, tmp_path):
    with pytest.raises(ConfigError, match="BatchNorm.*--norm group"):
        wp.train(data, "cnn1d", None, config=wp.TrainConfig(epochs=1, dp_epsilon=3.0))
    with pytest.raises(ConfigError, match="GRU/LSTM"):
        wp.train(data, "cnn_gru", None, model_options={"norm": "group"},
                 config=wp.TrainConfig(epochs=1, dp_epsilon=3.0))


def test_cli_bad_epsilon_is_exit_2(tmp_path):
    res = wearprune("train", "--data", "basicmotions", "--model", "cnn1d", "--norm", "group", "--dp-epsilon", "0",
                    "--out", str(tmp_path / "r"))
    assert_clean_error(res, "--dp-epsilon must be a positive number")
    assert not (tmp_path / "r").exists()
