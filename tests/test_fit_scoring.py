"""fit --robust-search: trials and contenders are scored on the mean of the clean validation metric and the
metric under every applicable corruption at severity 3."""

import numpy as np
import pytest
import torch

import wearprune as wp
from wearprune.autofit import fit
from wearprune.autofit.scoring import SEVERITY, ValScore
from wearprune.autofit.sensitivity import score
from wearprune.data.prepare import prepare_from_config
from wearprune.data.synthetic import make_synthetic
from wearprune.robust.corruptions import CORRUPTIONS, applicable, corrupt


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    folder = tmp_path_factory.mktemp("robustfit")
    ds = make_synthetic(n_subjects=6, per_subject=24, length=64, seed=5)
    np.savez(folder / "rec.npz", X=ds.X, y=ds.y, subjects=ds.subjects, rate_hz=np.array(32.0))
    wp.train(str(folder / "rec.npz"), "cnn1d", folder / "dense", config=wp.TrainConfig(epochs=3, batch_size=32))
    return folder / "dense"


def test_robust_score_is_the_mean_of_clean_and_corrupted_validation(dense):
    run = wp.load_run(dense)
    prepared = prepare_from_config(run.config)
    clean = score(run.model, prepared.val, prepared.target_scale)
    assert ValScore(prepared)(run.model) == clean
    ds = prepared.dataset
    names = [n for n in CORRUPTIONS if applicable(n, ds.channel_names, ds.X.shape[1])]
    by_hand = []
    for n in names:  # corrupt the raw validation windows, then normalise them as the model's inputs
        x = prepared.normalizer.transform(corrupt(ds.X[prepared.split.val], n, SEVERITY, rate_hz=ds.rate_hz,
                                                  channel_names=ds.channel_names, seed=0))
        val = prepared.val.subset(np.arange(len(prepared.val)))
        val.X = x
        by_hand.append(score(run.model, val, prepared.target_scale))
    robust = ValScore(prepared, robust=True)
    assert set(robust.copies) == set(names) and len(names) >= 5
    assert robust(run.model) == pytest.approx(0.5 * (clean + np.mean(by_hand)))
    assert "severity 3" in robust.describe()


def test_fit_robust_search_scores_on_corrupted_validation(dense, tmp_path):
    run = wp.load_run(dense)
    limit = wp.estimate_cost(run.model, torch.zeros(1, *run.architecture["spec"]["input_shape"]),
                             "nrf52840").latency_ms / 3
    result = fit(dense, "nrf52840", tmp_path / "fitted", max_latency_ms=limit, trials=3, trial_epochs=1,
                 final_epochs=1, workers=1, final_lrs=(1e-3,), baselines=False, robust_search=True,
                 log=lambda *_: None)
    prepared = prepare_from_config(run.config)
    assert result.dense["val_score"] == pytest.approx(ValScore(prepared, robust=True)(run.model))
    assert "corruptions" in result.scoring
    shipped = wp.load_run(tmp_path / "fitted")
    assert result.winner["final_val_score"] == pytest.approx(ValScore(prepared, robust=True)(shipped.model))
