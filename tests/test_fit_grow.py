"""Pruning that pays (docs/budget.md): ``fit --grow`` trains the zoo model wider and prunes that, the winner
is weighed against the same budget trained from scratch, the finalists are ranked on inner folds over the
training subjects, and the winner can be cut iteratively."""

import json
import shutil

import numpy as np
import pytest
import torch

import wearprune as wp
from wearprune.autofit import fit
from wearprune.autofit.grow import grown_run
from wearprune.autofit.inner import inner_folds
from wearprune.autofit.sensitivity import groups_of
from wearprune.data.prepare import prepare_from_config
from wearprune.data.synthetic import make_synthetic
from wearprune.errors import ConfigError, DataError
from wearprune.profile import count_macs
from wearprune.prune import prune
from wearprune.prune.schedule import cycle_ratios

from .test_cli import assert_clean_error, wearprune

QUICK = {"trials": 4, "trial_epochs": 1, "final_epochs": 1, "workers": 1, "final_lrs": (1e-3,)}


def _synthetic():
    return make_synthetic(n_subjects=8, per_subject=24, length=64, seed=3)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """A run on a recording file (fit's workers reload the data from it) with 8 subjects: inner folds are possible."""
    folder = tmp_path_factory.mktemp("grow")
    ds = _synthetic()
    np.savez(folder / "rec.npz", X=ds.X, y=ds.y, subjects=ds.subjects, rate_hz=np.array(32.0))
    wp.train(str(folder / "rec.npz"), "cnn1d", folder / "dense", config=wp.TrainConfig(epochs=3, batch_size=32))
    return folder / "dense"


@pytest.fixture
def run(dense, tmp_path):
    copy = tmp_path / "dense"
    shutil.copytree(dense, copy)
    return copy


def _latency(path) -> float:
    r = wp.load_run(path)
    return wp.estimate_cost(r.model, torch.zeros(1, *r.architecture["spec"]["input_shape"]), "nrf52840").latency_ms


def test_fit_grow_prunes_a_wider_teacher_and_reports_the_baselines(run, tmp_path):
    limit = _latency(run) / 3
    out = tmp_path / "fitted"
    result = fit(run, "nrf52840", out, max_latency_ms=limit, grow=2, cycles=2, **QUICK, log=lambda *_: None)
    dense_model, grown = wp.load_run(run).model, wp.load_run(run / "grow-x2")
    # the teacher has twice the channels of every conv layer of the dense model
    pairs = [(m.out_channels, g.out_channels) for m, g in zip(dense_model.modules(), grown.model.modules(),
                                                              strict=True) if isinstance(m, torch.nn.Conv1d)]
    assert pairs and all(g == 2 * d for d, g in pairs)
    assert result.grow["teacher"]["factor"] == 2 and result.grow["start"]["width"] == 2
    # every contender meets the latency limit on the cost model; the shipped one is the best on validation
    assert set(result.contenders) == {"fit", "scratch", "uniform_width"}
    assert all(c["est_latency_ms"] <= limit for c in result.contenders.values())
    best = max(result.contenders.items(), key=lambda kv: (kv[1]["val_score"], -kv[1]["val_loss"]))[0]
    assert result.shipped == best
    assert 0 < result.contenders["uniform_width"]["width"] < 2
    # the contenders not shipped are run directories of their own; the report shows all of them
    not_shipped = set(result.contenders) - {result.shipped}
    assert {p.name for p in (out / "baselines").iterdir()} == not_shipped
    for name in not_shipped:
        assert wp.load_run(out / "baselines" / name).model is not None
    report = json.loads((out / "report" / "report.json").read_text())
    assert len(report["runs"]) == 2 + len(not_shipped) + 1  # dense, shipped, the others, the teacher
    stored = json.loads((out / "fit.json").read_text())
    assert stored["shipped"] == result.shipped and stored["recovery"]["cycles"] == 2
    # the inner folds hold the training and validation subjects, never a test subject
    test = set(wp.load_run(run).config["split"]["test_subjects"])
    seen = {s for fold in stored["ranking"]["folds"] for s in fold}
    assert len(seen) == 8 - len(test) and not seen & test and stored["ranking"]["finalists"]
    # a second fit reuses the grown teacher (cached in the dense run), not trains it again
    before = (run / "grow-x2" / "model.safetensors").stat().st_mtime_ns
    fit(run, "nrf52840", tmp_path / "again", max_latency_ms=limit, grow=2, baselines=False, **QUICK,
        log=lambda *_: None)
    assert (run / "grow-x2" / "model.safetensors").stat().st_mtime_ns == before


def test_a_baseline_that_beats_the_pruned_winner_is_shipped(run, tmp_path, monkeypatch):
    import wearprune.autofit.run as fit_module

    real = fit_module._recover

    def broken(*args, **kwargs):  # a fine-tune gone wrong: the winner answers one class whatever the input
        final, recovery = real(*args, **kwargs)
        head = [m for m in final.model.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.copy_(torch.arange(head.bias.numel(), dtype=torch.float32))
        return final, recovery

    monkeypatch.setattr(fit_module, "_recover", broken)
    lines = []
    out = tmp_path / "fitted"
    result = fit(run, "nrf52840", out, max_latency_ms=_latency(run) / 3, **QUICK, log=lines.append)
    assert result.shipped in ("scratch", "uniform_width")
    assert result.contenders[result.shipped]["val_score"] > result.contenders["fit"]["val_score"]
    assert any("beats the pruned winner on validation" in line and "shipping it" in line for line in lines)
    shipped = wp.load_run(out)
    assert shipped.config["fit"]["shipped"] == result.shipped and (out / "model_int8.tflite").exists()
    assert (out / "baselines" / "fit").is_dir()  # the pruned winner is kept beside it


@pytest.mark.parametrize("model", ["resnet1d", "cnn_gru"])
def test_iterative_cuts_reach_the_one_shot_widths_and_macs(model):
    ds = _synthetic()
    net = wp.build_model(model, ds.spec())
    example = torch.from_numpy(ds.X[:1])
    sizes = groups_of(net, example)
    ratios = {g: r for g, r in zip(sizes, np.linspace(0.3, 0.8, len(sizes)), strict=True)}
    one_shot, _ = prune(net, example, ratio=0.0, ratios=ratios)
    current = net
    for step in cycle_ratios(sizes, ratios, 3):
        current, _ = prune(current, example, ratio=0.0, ratios=step)
    assert count_macs(current, example) == count_macs(one_shot, example)
    assert groups_of(current, example) == groups_of(one_shot, example)


def test_inner_folds_cover_the_training_subjects_and_never_a_test_subject(run):
    prepared = prepare_from_config(wp.load_run(run).config)
    folds = inner_folds(prepared, 3, seed=0)
    test = set(prepared.split.test_subjects)
    held_all = []
    for train, held, subjects in folds:
        assert not set(train.subjects) & set(held.subjects)
        assert not (set(train.subjects) | set(held.subjects)) & test
        held_all += subjects
    everyone = {str(s) for s in prepared.dataset.subjects}
    assert sorted(held_all) == sorted(everyone - test)
    with pytest.raises(DataError, match="inner folds"):
        inner_folds(prepared, 50)


def test_grow_is_refused_for_a_pruned_run_and_bad_values(run, tmp_path):
    pruned = tmp_path / "pruned"
    wp.prune_run(run, pruned, ratio=0.5, finetune_epochs=0)
    with pytest.raises(ConfigError, match="not a plain zoo model"):
        grown_run(wp.load_run(pruned), 2.0, None)
    for bad in ("wide", 0.5, -1):
        with pytest.raises(ConfigError, match="grow"):
            wp.FitSpec(device="nrf52840", grow=bad)
    with pytest.raises(ConfigError, match="rank-folds"):
        wp.FitSpec(device="nrf52840", rank_folds=1)
    assert wp.FitSpec(device="nrf52840", grow="2").grow == 2.0
    res = wearprune("fit", str(pruned), "--device", "nrf52840", "--grow", "2", "--out", str(tmp_path / "f"))
    assert_clean_error(res, "not a plain zoo model")


def test_uniform_width_is_the_widest_zoo_model_within_the_limits(run):
    from wearprune.autofit.baselines import WIDTH_STEP, build_uniform, fresh_copy, uniform_width
    from wearprune.devices import load_device
    from wearprune.devices.budget import Budget

    dense = wp.load_run(run)
    example = torch.zeros(1, *dense.architecture["spec"]["input_shape"])
    dev = load_device("nrf52840")
    limits = Budget.for_device(dev, max_latency_ms=_latency(run) / 4)
    width = uniform_width(dense.architecture, example, dev, limits, True)
    assert 0 < width < 1

    def fits(w):
        return limits.fits(wp.estimate_cost(build_uniform(dense.architecture, w, 0), example, dev, int8=True))

    assert fits(width) and not fits(width + WIDTH_STEP)
    # the from-scratch twin: the same shapes, other weights
    twin = fresh_copy(dense.model, seed=5)
    shapes = {k: v.shape for k, v in dense.model.state_dict().items()}
    assert {k: v.shape for k, v in twin.state_dict().items()} == shapes
    conv = next(k for k in shapes if k.endswith("weight") and len(shapes[k]) == 3)
    assert not torch.equal(twin.state_dict()[conv], dense.model.state_dict()[conv])
