"""Differential privacy (DP-SGD with Opacus): the ε reported is the accountant's, models Opacus cannot
train are refused in one line, data-dependent pruning criteria are refused under DP."""

import pytest
import torch

import wearprune as wp
from tests.test_cli import assert_clean_error, wearprune
from wearprune.data.synthetic import make_synthetic
from wearprune.errors import ConfigError
from wearprune.privacy import compose, epsilon_of


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


def test_pruned_dp_fine_tune_composes_with_the_dense_runs_epsilon(dp_run, data):
    from wearprune.data.prepare import prepare_from_config

    prepared = prepare_from_config(dp_run.config, data=data)
    for cycles in (1, 2):  # two cycles share one budget: together they spend the target, not twice it
        pruned = wp.prune_run(dp_run, None, prepared=prepared, ratio=0.5, importance="l2", finetune_epochs=2,
                              cycles=cycles, dp_epsilon=2.0)
        dp = pruned.metrics["dp"]
        assert dp["trainings"] == cycles and 1.5 < dp["epsilon"] <= 2.0 * 1.01
        assert dp["epsilon"] == pytest.approx(compose(dp["history"], dp["delta"]))
        assert dp["epsilon_parent"] == pytest.approx(dp_run.metrics["dp"]["epsilon"], rel=1e-3)
        # the accountant composes the dense run's steps and the fine-tune's: more than either, at most their sum
        assert max(dp["epsilon"], dp["epsilon_parent"]) < dp["epsilon_total"] <= dp["epsilon"] + dp["epsilon_parent"]
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


@pytest.fixture(scope="module")
def dp_file_run(tmp_path_factory):
    """A DP-trained run on a recording file (fit's workers reload the data from it)."""
    import numpy as np

    folder = tmp_path_factory.mktemp("dpfit")
    ds = make_synthetic(n_subjects=8, per_subject=24, length=64, seed=3)
    np.savez(folder / "rec.npz", X=ds.X, y=ds.y, subjects=ds.subjects, rate_hz=np.array(32.0))
    wp.train(str(folder / "rec.npz"), "cnn1d", folder / "dense", model_options={"norm": "group"},
             config=wp.TrainConfig(epochs=3, batch_size=32, dp_epsilon=4.0, patience=3))
    return folder / "dense"


def test_fit_with_dp_accounts_every_training_and_trains_no_trial(dp_file_run, tmp_path):
    from wearprune.autofit import fit

    r = wp.load_run(dp_file_run)
    limit = wp.estimate_cost(r.model, torch.zeros(1, *r.architecture["spec"]["input_shape"]),
                             "nrf52840").latency_ms / 3
    result = fit(dp_file_run, "nrf52840", tmp_path / "fitted", max_latency_ms=limit, trials=3, trial_epochs=1,
                 final_epochs=1, workers=1, final_lrs=(1e-3, 3e-3), dp_epsilon=2.0, log=lambda *_: None)
    spent = result.privacy["spent"]
    # the fine-tune at both learning rates and the two baselines, each at the planned noise: at most the target
    assert spent["trainings"] == 2 + len(set(result.contenders) - {"fit"}) and spent["epsilon"] <= 2.0 * 1.01
    assert spent["epsilon"] == pytest.approx(compose(spent["history"], spent["delta"]))
    assert all(h[0] == pytest.approx(result.privacy["noise_multiplier"]) for h in spent["history"])
    assert spent["epsilon_total"] > max(spent["epsilon"], spent["epsilon_parent"])
    assert "validation subjects" in spent["not_covered"]
    # the trials read no training windows: data-free criteria, no fine-tune; no inner-fold ranking
    assert result.candidates and all(c["importance"] in ("l2", "fpgm") and not c["tuned"] for c in result.candidates)
    assert result.ranking is None
    shipped = wp.load_run(tmp_path / "fitted")
    assert shipped.metrics["dp"]["epsilon"] == pytest.approx(spent["epsilon"])
    with pytest.raises(ConfigError, match="--grow with --dp-epsilon"):
        wp.FitSpec(device="nrf52840", grow=2, dp_epsilon=2.0)


def test_cli_fit_bad_epsilon_is_exit_2(dp_file_run, tmp_path):
    res = wearprune("fit", str(dp_file_run), "--device", "nrf52840", "--dp-epsilon", "-1",
                    "--out", str(tmp_path / "f"))
    assert_clean_error(res, "--dp-epsilon must be a positive number")
    assert not (tmp_path / "f").exists()
