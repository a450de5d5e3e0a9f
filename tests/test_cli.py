"""The command line: exit codes, one-line errors without tracebacks, and the main commands."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wearprune.data.synthetic import make_synthetic


def wearprune(*args, env=None, cwd=None):
    e = dict(os.environ, COLUMNS="220")  # rich wraps tables at 80 columns without a terminal
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "wearprune.cli", *args], capture_output=True, text=True,
                          env=e, cwd=cwd, timeout=600)


def assert_clean_error(res, *fragments):
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    text = " ".join(res.stderr.split())
    for f in fragments:
        assert f in text, text


def test_help_lists_commands():
    res = wearprune("--help")
    assert res.returncode == 0
    for cmd in ("datasets", "models", "train", "evaluate", "demo"):
        assert cmd in res.stdout


def test_datasets_lists_every_dataset_with_where_it_looked(tmp_path):
    res = wearprune("datasets", "--data-root", str(tmp_path))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    for name in ("basicmotions", "hmp", "mitdb", "troika", "sleep-walch", "wisdm-watch"):
        assert name in out
    assert "missing" in out and "present" in out  # basicmotions ships in a package


def test_missing_data_root_names_dataset_path_and_source(tmp_path):
    res = wearprune("train", "--data", "hmp", "--out", str(tmp_path / "r"), "--data-root", str(tmp_path))
    assert_clean_error(res, "hmp", str(tmp_path / "hmp_adl_wrist"), "archive.ics.uci.edu")
    assert not (tmp_path / "r").exists()


def test_unknown_dataset_and_model(tmp_path):
    assert_clean_error(wearprune("train", "--data", "nope", "--out", str(tmp_path / "r")), "unknown dataset 'nope'")
    assert_clean_error(wearprune("train", "--data", "basicmotions", "--model", "vgg", "--out", str(tmp_path / "r")),
                       "unknown model 'vgg'")


def test_evaluate_a_missing_run(tmp_path):
    assert_clean_error(wearprune("evaluate", str(tmp_path / "none")), "not a run directory")


def test_csv_with_nan_is_rejected_and_nothing_written(tmp_path):
    ds = make_synthetic()
    rows = ds.X[:10].transpose(0, 2, 1).reshape(-1, 3)
    import pandas as pd

    df = pd.DataFrame(rows, columns=["ax", "ay", "az"])
    df["label"] = "walk"
    df["subject"] = "a"
    df.loc[5, "ay"] = np.nan
    f = tmp_path / "rec.csv"
    df.to_csv(f, index=False)
    res = wearprune("train", "--data", str(f), "--rate", "32", "--out", str(tmp_path / "r"))
    assert_clean_error(res, "NaN")
    assert not (tmp_path / "r").exists()


def test_train_and_evaluate_a_user_csv(tmp_path):
    import pandas as pd

    ds = make_synthetic(n_subjects=4, per_subject=12, length=32)
    frames = []
    for i in range(len(ds)):
        f = pd.DataFrame(ds.X[i].T, columns=["ax", "ay", "az"])
        f["label"] = ds.class_names[ds.y[i]]
        f["subject"] = ds.subjects[i]
        frames.append(f)
    path = tmp_path / "rec.csv"
    pd.concat(frames).to_csv(path, index=False)
    run = tmp_path / "run"
    res = wearprune("train", "--data", str(path), "--rate", "32", "--window-s", "1", "--model", "cnn1d",
                    "--epochs", "2", "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert (run / "model.safetensors").exists()
    res = wearprune("evaluate", str(run))
    assert res.returncode == 0, res.stderr
    assert (run / "evaluation.json").exists() and (run / "confusion.png").exists()
    assert "macro_f1" in res.stdout


@pytest.mark.slow
def test_demo_runs_on_embedded_data(tmp_path):
    """Without HMP under the data root, the demo runs the whole job on the BasicMotions recordings."""
    (tmp_path / "no-data").mkdir()
    res = wearprune("demo", "--out", str(tmp_path / "demo"), "--epochs", "3", "--trials", "4", "--data-root",
                    str(tmp_path / "no-data"))
    assert res.returncode == 0, res.stderr[-3000:]
    out = " ".join(res.stdout.split())
    assert "BasicMotions" in out and "fitted to Nordic nRF52840" in out and "battery life" in out
    fitted = tmp_path / "demo" / "fitted"
    for name in ("model_int8.tflite", "model_data.h", "fit.json", "report/report.html"):
        assert (fitted / name).exists(), name


def test_demo_fits_hmp_when_the_data_root_has_it(tmp_path):
    root = os.environ.get("WEARPRUNE_DATA")
    if not root or not (Path(root) / "hmp_adl_wrist").is_dir():
        pytest.skip(f"HMP not found under WEARPRUNE_DATA={root!r} (set it to the data root)")
    res = wearprune("demo", "--out", str(tmp_path / "demo"), "--epochs", "4", "--trials", "4")
    assert res.returncode == 0, res.stderr[-3000:]
    out = " ".join(res.stdout.split())
    assert "HMP" in out and "within the 8 ms limit" in out  # the latency budget was met
    fit = json.loads((tmp_path / "demo" / "fitted" / "fit.json").read_text())
    assert fit["winner"]["est_latency_ms"] <= 8 and fit["measured"]["int8"]["test_windows"] > 1000
    # HMP's validation split has 2 subjects: the finalists are ranked on inner folds over the training subjects
    assert len(fit["validation_subjects"]) == 2 and fit["winner"]["selected_by"] == "search"
    test = set(fit["measured"]["int8"].get("test_subjects") or json.loads(
        (tmp_path / "demo" / "dense" / "config.json").read_text())["split"]["test_subjects"])
    assert len(fit["ranking"]["folds"]) == 3 and not test & {s for f in fit["ranking"]["folds"] for s in f}
    # it weighed the winner against the same budget from scratch and at uniform width; a verdict line says how it did
    assert set(fit["contenders"]) == {"fit", "scratch", "uniform_width"} and fit["shipped"] in fit["contenders"]
    assert "verdict: the fitted model is" in out


def test_real_hmp_train_and_evaluate_from_cli(tmp_path):
    root = os.environ.get("WEARPRUNE_DATA")
    if not root or not (Path(root) / "hmp_adl_wrist").is_dir():
        pytest.skip(f"HMP not found under WEARPRUNE_DATA={root!r} (set it to the data root)")
    run = tmp_path / "run"
    res = wearprune("train", "--data", "hmp", "--model", "resnet1d", "--epochs", "2", "--out", str(run))
    assert res.returncode == 0, res.stderr
    res = wearprune("evaluate", str(run))
    assert res.returncode == 0, res.stderr
    assert "HMP test subjects" in " ".join(res.stdout.split()) or "subject-wise" in res.stdout


def test_user_file_options_on_a_named_dataset_are_refused(tmp_path):
    res = wearprune("train", "--data", "basicmotions", "--rate", "50", "--out", str(tmp_path / "r"))
    assert_clean_error(res, "dataset basicmotions does not take rate_hz")


def test_training_that_never_improves_says_so_in_one_line(tmp_path):
    ds = make_synthetic(n_subjects=4, per_subject=10, length=32)
    np.savez(tmp_path / "rec.npz", X=ds.X, y=ds.y, subjects=ds.subjects)
    res = wearprune("train", "--data", str(tmp_path / "rec.npz"), "--model", "mlp", "--epochs", "5", "--lr", "1e-12",
                    "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if "never improved" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: validation macro_f1 never improved"), res.stderr
    assert "TrainingWarning" not in res.stderr and "warnings.warn" not in res.stderr
