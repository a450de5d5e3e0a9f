"""Cross-validation: folds partition the subjects, protocols for MIT-BIH and data without subject
ids, paired differences per fold, resuming without recomputing, and the command line."""

import json
import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import wearprune as wp
import wearprune.verbs.cv as cv
from wearprune.data.folds import cv_protocol, subject_folds
from wearprune.data.synthetic import make_synthetic

from .test_cli import assert_clean_error, wearprune

FAST = wp.TrainConfig(epochs=2, batch_size=16)
PRUNE = wp.PruneSpec(method="channel", ratio=0.5, importance="l2", finetune_epochs=1)


# -- folds ----------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=4), min_size=2, max_size=40), st.integers(2, 12),
       st.integers(0, 2**31 - 1))
def test_folds_partition_the_subjects(subjects, k, seed):
    unique = sorted(set(subjects))
    if len(unique) < 2:
        with pytest.raises(wp.DataError, match="subject ids"):
            subject_folds(subjects, k, seed)
        return
    if k > len(unique):
        with pytest.raises(wp.ConfigError, match=f"{k} folds but only {len(unique)} subjects"):
            subject_folds(subjects, k, seed)
        return
    folds = subject_folds(subjects, k, seed)
    flat = [s for f in folds for s in f]
    assert len(folds) == k and all(folds)
    assert len(flat) == len(set(flat)) and sorted(flat) == unique  # no subject twice, none left out
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert subject_folds(list(reversed(subjects)), k, seed) == folds  # the input order does not matter


def test_folds_refuse_bad_arguments():
    with pytest.raises(wp.ConfigError, match="at least 2"):
        subject_folds(["a", "b", "c"], 1)
    with pytest.raises(wp.ConfigError, match="whole number"):
        subject_folds(["a", "b", "c"], 2.5)
    with pytest.raises(wp.DataError, match="predefined"):
        subject_folds(["s0"] * 10, 2)


def test_mitdb_keeps_ds1_ds2_and_adds_the_swap():
    ds = make_synthetic(n_subjects=6, per_subject=4)
    ds = replace(ds, name="mitdb", test_subjects=["s3", "s4", "s5"], split_name="inter-patient DS1/DS2")
    plan = cv_protocol(ds, 4)
    assert plan.kind == "swap" and len(plan.folds) == 2 and "2 folds, not 4" in plan.note
    assert plan.folds[0].test_subjects == ("s3", "s4", "s5")  # the published direction first
    assert plan.folds[1].test_subjects == ("s0", "s1", "s2")
    assert cv_protocol(ds, 3, protocol="kfold").kind == "kfold"


def test_data_without_subject_ids():
    bm = wp.load_dataset("basicmotions")
    plan = cv_protocol(bm, 4)
    assert plan.kind == "predefined" and len(plan.folds) == 1 and "no subject ids" in plan.note
    with pytest.raises(wp.DataError, match="--protocol predefined"):
        cv_protocol(bm, 4, protocol="kfold")
    one = replace(make_synthetic(n_subjects=1, per_subject=10), test_subjects=None)
    with pytest.raises(wp.DataError, match="one subject only"):
        cv_protocol(one, 2)


def test_prune_strings():
    spec = cv.parse_prune("channel:0.25:taylor", finetune_epochs=2)
    assert (spec.method, spec.ratio, spec.importance, spec.finetune_epochs) == ("channel", 0.25, "taylor", 2)
    assert cv.parse_prune("weight:0.5").importance == "l2"
    for bad, msg in (("channel:x", "not a number"), ("channel:0.5:nope", "unknown importance"), ("", "looks like"),
                     ("a:b:c:d", "looks like"), ("channel:1.5", "ratio"), ("layer:0.5:taylor", "loss or similarity")):
        with pytest.raises(wp.ConfigError, match=msg):
            cv.parse_prune(bad)


# -- crossval -------------------------------------------------------------------------------------
def _user_csv(path, n_subjects=6):
    ds = make_synthetic(n_subjects=n_subjects, per_subject=12, length=32)
    frames = []
    for i in range(len(ds)):
        f = pd.DataFrame(ds.X[i].T, columns=["ax", "ay", "az"])
        f["label"] = ds.class_names[ds.y[i]]
        f["subject"] = ds.subjects[i]
        frames.append(f)
    pd.concat(frames).to_csv(path, index=False)
    return path


class _Counting:
    """Wraps a verb; counts its calls and can stop the run at a given call (a kill)."""

    def __init__(self, fn, stop_at=None):
        self.fn, self.calls, self.stop_at = fn, 0, stop_at

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.fn(*args, **kwargs)


def test_user_csv_paired_folds_and_resume(tmp_path, monkeypatch):
    csv_file = _user_csv(tmp_path / "rec.csv")
    out = tmp_path / "cv"
    kw = dict(folds=3, seeds=1, config=FAST, data_options={"rate_hz": 32, "window_s": 1}, prune=PRUNE, log=lambda m: 0)
    killer = _Counting(cv.train_run, stop_at=2)
    monkeypatch.setattr(cv, "train_run", killer)
    with pytest.raises(KeyboardInterrupt):  # killed while training fold 2
        wp.crossval(str(csv_file), "cnn1d", out, **kw)
    first = json.loads((out / "cv.json").read_text())
    assert first["done"] == 1 and not first["complete"] and first["runs"][0]["key"] == "fold1-seed0"
    assert not (out / "fold2-seed0").exists()  # nothing half-written
    stamp = os.stat(out / "fold1-seed0" / "dense" / "model.safetensors").st_mtime_ns

    trains, prunes = _Counting(killer.fn), _Counting(cv.prune_run)
    monkeypatch.setattr(cv, "train_run", trains)
    monkeypatch.setattr(cv, "prune_run", prunes)
    doc = wp.crossval(str(csv_file), "cnn1d", out, **kw)
    assert (trains.calls, prunes.calls) == (2, 2)  # folds 2 and 3 only: fold 1 was done
    assert os.stat(out / "fold1-seed0" / "dense" / "model.safetensors").st_mtime_ns == stamp
    assert doc["complete"] and doc["runs"][0] == first["runs"][0]

    # the folds partition the subjects; validation subjects come from the fold's training side
    tested = [s for r in doc["runs"] for s in r["test_subjects"]]
    assert sorted(tested) == [f"s{i}" for i in range(6)]
    for r in doc["runs"]:
        assert not set(r["val_subjects"]) & set(r["test_subjects"])
        assert sorted(r["dense"]["per_subject"]) == sorted(r["test_subjects"])
        run = wp.load_run(out / r["dense"]["dir"])
        assert sorted(run.config["split"]["test_subjects"]) == sorted(r["test_subjects"])
        pruned = wp.load_run(out / r["variant"]["dir"])
        assert pruned.config["pruned_from"] == str(out / r["dense"]["dir"])  # the variant of this fold's run
        assert r["variant"]["macs"] < r["dense"]["macs"]

    # paired differences: per fold, variant minus dense of the same fold
    m = doc["metric"]
    d, v = [r["dense"][m] for r in doc["runs"]], [r["variant"][m] for r in doc["runs"]]
    diff = doc["summary"]["difference"]
    assert diff["per_run"] == pytest.approx([b - a for a, b in zip(d, v, strict=True)])
    assert [r["difference"] for r in doc["runs"]] == pytest.approx(diff["per_run"])
    assert diff["mean"] == pytest.approx(np.mean(v) - np.mean(d))
    test = sps.ttest_rel(v, d)
    if np.ptp(np.subtract(v, d)) > 0:
        assert diff["p_value"] == pytest.approx(test.pvalue)
        lo, hi = test.confidence_interval(0.95)
        assert diff["ci95"] == pytest.approx([lo, hi])
    dense = doc["summary"]["dense"]
    assert dense["n"] == 3 and dense["mean"] == pytest.approx(np.mean(d))

    # nothing recomputed on a rerun; a different command into the same folder is refused
    monkeypatch.setattr(cv, "train_run", _Counting(None, stop_at=1))
    monkeypatch.setattr(cv, "prune_run", _Counting(None, stop_at=1))
    assert wp.crossval(str(csv_file), "cnn1d", out, **kw)["runs"] == doc["runs"]
    with pytest.raises(wp.ConfigError, match="different cross-validation.*seeds"):
        wp.crossval(str(csv_file), "cnn1d", out, **{**kw, "seeds": 2})
    with pytest.raises(wp.ConfigError, match="different cross-validation.*model"):
        wp.crossval(str(csv_file), "tcn", out, **kw)


def test_basicmotions_uses_its_predefined_split(tmp_path):
    doc = wp.crossval("basicmotions", "cnn1d", tmp_path / "cv", folds=4, seeds=2, config=FAST, log=lambda m: 0)
    assert doc["protocol"]["kind"] == "predefined" and "no subject ids" in doc["protocol"]["note"]
    assert [r["key"] for r in doc["runs"]] == ["fold1-seed0", "fold1-seed1"]
    scores = [r["dense"]["macro_f1"] for r in doc["runs"]]
    assert doc["summary"]["dense"]["n"] == 2
    lo, hi = sps.t.interval(0.95, 1, loc=np.mean(scores), scale=sps.sem(scores)) if np.ptp(scores) else (None, None)
    if lo is not None:
        assert doc["summary"]["dense"]["ci95"] == pytest.approx([lo, hi])
    assert doc["summary"]["dense"]["over_folds"]["ci95"] is None  # one fold: undefined, and said so
    assert "Student-t interval over the fold × seed scores" in doc["interval"]


def test_in_memory_data_from_python(tmp_path):
    ds = make_synthetic(n_subjects=4, per_subject=10, length=32)
    doc = wp.crossval(ds, "mlp", tmp_path / "cv", folds=2, seeds=1, config=FAST, log=lambda m: 0)
    assert doc["complete"] and len(doc["runs"]) == 2
    assert sorted(doc["summary"]["per_subject"]["dense"]) == [f"s{i}" for i in range(4)]
    with pytest.raises(wp.ConfigError, match="in-memory"):
        wp.crossval(ds, "mlp", tmp_path / "cv2", folds=2, seeds=1, config=FAST, fit="nrf52840")


def test_out_that_is_not_a_cv_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(wp.ConfigError, match="not a cross-validation directory"):
        wp.crossval("basicmotions", "cnn1d", tmp_path / "x", folds=2, seeds=1, config=FAST)


# -- the command line -----------------------------------------------------------------------------
def test_cli_cv_on_a_user_csv(tmp_path):
    csv_file = _user_csv(tmp_path / "rec.csv", n_subjects=4)
    out = tmp_path / "cv"
    res = wearprune("cv", "--data", str(csv_file), "--rate", "32", "--window-s", "1", "--model", "cnn1d",
                    "--folds", "2", "--seeds", "1", "--epochs", "1", "--batch-size", "16", "--prune",
                    "channel:0.5:l2", "--finetune", "1", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    text = " ".join(res.stdout.split())
    assert "cross-validation of cnn1d" in text and "difference" in text and "fewer" in text
    doc = json.loads((out / "cv.json").read_text())
    assert doc["complete"] and doc["spec"]["variant"]["spec"]["finetune_epochs"] == 1


@pytest.mark.parametrize("args, fragment", [
    (["--data", "basicmotions", "--folds", "1"], "--folds must be at least 2"),
    (["--data", "nope"], "unknown dataset 'nope'"),
    (["--data", "basicmotions", "--model", "vgg"], "unknown model 'vgg'"),
    (["--data", "basicmotions", "--prune", "channel:lots"], "--prune looks like"),
    (["--data", "basicmotions", "--prune", "chanel:0.5"], "unknown pruning method"),
    (["--data", "basicmotions", "--prune", "channel:0.5", "--fit", "nrf52840"], "not both"),
])
def test_cli_bad_arguments(tmp_path, args, fragment):
    assert_clean_error(wearprune("cv", *args, "--out", str(tmp_path / "cv")), fragment)
    assert not (tmp_path / "cv").exists()


def test_cli_more_folds_than_subjects(tmp_path):
    csv_file = _user_csv(tmp_path / "rec.csv", n_subjects=3)
    res = wearprune("cv", "--data", str(csv_file), "--rate", "32", "--window-s", "1", "--folds", "5",
                    "--out", str(tmp_path / "cv"))
    assert_clean_error(res, "5 folds but only 3 subjects")


@pytest.mark.slow
def test_fit_inside_every_fold(tmp_path):
    fit = wp.FitSpec(device="nrf52840", max_latency_ms=6, trials=1, trial_epochs=0, final_epochs=0, workers=1)
    doc = wp.crossval("basicmotions", "cnn1d", tmp_path / "cv", folds=2, seeds=1, config=FAST, fit=fit,
                      log=lambda m: 0)
    r = doc["runs"][0]
    assert r["variant"]["dir"] == "fold1-seed0/fit" and r["variant"]["macs"] < r["dense"]["macs"]
    assert r["variant"]["deployed"]["dtype"] == "int8"  # measured in TensorFlow Lite Micro
    assert r["deployed_difference"] == pytest.approx(r["variant"]["deployed"]["macro_f1"] - r["dense"]["macro_f1"])
    fitted = json.loads((tmp_path / "cv" / "fold1-seed0" / "fit" / "config.json").read_text())
    assert fitted["fit"]["spec"]["seed"] == 0 and fitted["pruned_from"].endswith("fold1-seed0/dense")


def test_compare_two_recipes_on_the_same_folds(tmp_path):
    ds = make_synthetic(n_subjects=4, per_subject=10, length=32)
    a = wp.crossval(ds, "mlp", tmp_path / "a", folds=2, seeds=2, config=FAST, log=lambda m: 0)
    b = wp.crossval(ds, "mlp", tmp_path / "b", folds=2, seeds=2, config=replace(FAST, label_smoothing=0.1),
                    log=lambda m: 0)
    doc = wp.compare_cv(tmp_path / "a", tmp_path / "b")
    m = doc["metric"]
    assert len(doc["pairs"]) == 4 and doc["unpaired"] == {"a": 0, "b": 0}
    by_key = {(r["fold"], r["seed"]): r["dense"][m] for r in a["runs"]}
    for pair, diff, rb in zip(doc["pairs"], doc["difference"]["per_run"], b["runs"], strict=True):
        assert pair["a"] == by_key[(pair["fold"], pair["seed"])] and pair["b"] == rb["dense"][m]
        assert diff == pytest.approx(pair["b"] - pair["a"])
    diffs = doc["difference"]["per_run"]
    if np.ptp(diffs) > 0:
        assert doc["difference"]["ci95"] == pytest.approx(list(sps.ttest_rel(
            [p["b"] for p in doc["pairs"]], [p["a"] for p in doc["pairs"]]).confidence_interval(0.95)))
    assert doc["difference"]["over_folds"]["n"] == 2

    other = wp.crossval(ds, "mlp", tmp_path / "c", folds=2, seeds=1, fold_seed=5, config=FAST, log=lambda m: 0)
    if {tuple(sorted(r["test_subjects"])) for r in other["runs"]} != {tuple(sorted(r["test_subjects"]))
                                                                       for r in a["runs"]}:
        with pytest.raises(wp.ConfigError, match="share no fold"):
            wp.compare_cv(tmp_path / "a", tmp_path / "c")
    with pytest.raises(wp.ConfigError, match="holds no cv.json"):
        wp.compare_cv(tmp_path / "a", tmp_path)
    with pytest.raises(wp.ConfigError, match="no variant|share no fold"):
        wp.compare_cv(tmp_path / "a", tmp_path / "b", side="variant")

    res = wearprune("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(tmp_path / "ab.json"))
    assert res.returncode == 0, res.stderr
    assert "B - A" in res.stdout and json.loads((tmp_path / "ab.json").read_text())["pairs"] == doc["pairs"]
    assert_clean_error(wearprune("compare", str(tmp_path / "a"), str(tmp_path / "nope")), "holds no cv.json")


# -- the real data sets ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, model", [("hmp", "cnn1d"), ("troika", "cnn1d"), ("mitdb", "dscnn"),
                                         ("sleep-walch", "mlp"), ("wisdm-watch", "mlp")])
def test_cli_cv_on_each_real_data_set(tmp_path, name, model):
    from wearprune.data.registry import is_present

    root = os.environ.get("WEARPRUNE_DATA")
    if not is_present(name, root):
        pytest.skip(f"{name} not found under WEARPRUNE_DATA={root!r} (set it to the data root)")
    out = tmp_path / "cv"
    res = wearprune("cv", "--data", name, "--model", model, "--folds", "3", "--seeds", "1", "--epochs", "1",
                    "--batch-size", "256", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((out / "cv.json").read_text())
    assert doc["complete"] and doc["summary"]["dense"]["n"] == len(doc["runs"])
    ds = wp.load_dataset(name, root)
    tested = [s for r in doc["runs"] for s in r["test_subjects"]]
    assert len(tested) == len(set(tested))  # no subject in two test folds
    if name == "mitdb":  # the published protocol and its swap, whatever --folds says
        assert doc["protocol"]["kind"] == "swap" and len(doc["runs"]) == 2
        assert sorted(doc["runs"][0]["test_subjects"]) == sorted(ds.test_subjects)
    else:
        assert doc["protocol"]["kind"] == "kfold" and len(doc["runs"]) == 3
    assert sorted(tested) == sorted({str(s) for s in ds.subjects})  # every subject tested once
    for r in doc["runs"]:
        assert not set(r["val_subjects"]) & set(r["test_subjects"])
    assert f"cross-validation of {model} on {name}" in " ".join(res.stdout.split())
