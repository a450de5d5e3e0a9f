"""Loaders for sleep-walch, wisdm-watch, basicmotions and user files.

Real-data checks run when $WEARPRUNE_DATA points at the shared data folder (they skip, with the
path, otherwise); basicmotions is shipped in sktime and always runs. Everything else is tested on
small files written here in the original formats.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wearprune.data.loaders import basicmotions
from wearprune.data.loaders.basicmotions import load_basicmotions, packaged_files
from wearprune.data.loaders.sleep_walch import load_sleep_walch
from wearprune.data.loaders.user import load_recording
from wearprune.data.loaders.wisdm import load_wisdm_watch
from wearprune.errors import DataError


# -- real data ------------------------------------------------------------------------------------
def _real(folder: str) -> Path:
    root = os.environ.get("WEARPRUNE_DATA")
    path = Path(root) / folder if root else Path("$WEARPRUNE_DATA") / folder
    if not root or not path.is_dir():
        pytest.skip(f"{folder} not found at {path} (set WEARPRUNE_DATA)")
    return path


def _check_split(ds) -> None:
    test = set(ds.test_subjects)
    train = set(ds.subjects.tolist()) - test
    assert test and train
    assert test <= set(ds.subjects.tolist())
    assert not (train & test)


def test_real_sleep_walch():
    ds = load_sleep_walch(_real("sleep_accel_walch"))
    assert ds.layout == "sequence" and ds.input_shape == (21, 5)
    assert len(np.unique(ds.subjects)) == 31
    assert ds.class_names == ["wake", "N1", "N2", "N3", "REM"]
    assert set(np.unique(ds.y)) == set(range(5))
    assert len(ds.test_subjects) == 8 and "8 of 31" in ds.split_name
    _check_split(ds)


def test_real_wisdm_watch():
    ds = load_wisdm_watch(_real("wisdm2019_watch"))
    assert ds.layout == "features" and ds.rate_hz is None
    assert len(np.unique(ds.subjects)) == 50
    assert ds.n_classes == 18 and ds.class_names[0] == "walking" and ds.class_names[-1] == "folding"
    assert 17_000 < len(ds) < 19_000
    assert 85 <= ds.input_shape[0] <= 95
    assert len(ds.test_subjects) == 12
    _check_split(ds)


def test_basicmotions_packaged():
    ds = load_basicmotions()
    assert ds.X.shape == (80, 6, 100) and ds.rate_hz == 10.0
    assert ds.class_names == sorted(ds.class_names) and ds.n_classes == 4
    assert np.bincount(ds.y).tolist() == [20, 20, 20, 20]
    assert (ds.subjects == "uea-train").sum() == 40 and ds.test_subjects == ["uea-test"]
    assert ds.channel_names[0] == "accel_x" and ds.channel_names[-1] == "gyro_z"
    _check_split(ds)


def test_basicmotions_missing_sktime(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install sktime"):
        packaged_files()


def test_basicmotions_bad_ts(tmp_path):
    bad = tmp_path / "bad.ts"
    bad.write_text("@data\n" + ":".join(["1,2,3"] * 5) + ":Walking\n")
    with pytest.raises(DataError, match="5 dimensions"):
        basicmotions._read_ts(bad)
    bad.write_text("@data\n" + ":".join(["1,2,3"] * 6) + ":Walking\n")
    with pytest.raises(DataError, match="shape"):
        basicmotions._read_ts(bad)


# -- sleep-walch fixtures -------------------------------------------------------------------------
FEATS = ("count", "hr", "cosine", "circadian", "time")


def _write_night(folder: Path, sid: str, labels: list[int]) -> None:
    n = len(labels)
    for j, feat in enumerate(FEATS):
        values = np.arange(n) + 1000 * j  # epoch index in every feature: easy to check positions
        np.savetxt(folder / f"{sid}_{feat}_feature.out", values, fmt="%f")
    np.savetxt(folder / f"{sid}_psg_labels.out", np.array(labels, dtype=float), fmt="%f")


@pytest.fixture
def sleep_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sleep_accel_walch" / "features"
    folder.mkdir(parents=True)
    _write_night(folder, "11", [0, 1, 2, 3, 4, 5, -1, 2])
    _write_night(folder, "22", [2, 2, 5, 0])
    _write_night(folder, "3", [1, 0, 0])
    return folder.parent


def test_sleep_fixture_sequences(sleep_dir):
    ds = load_sleep_walch(sleep_dir, context=2)
    assert ds.X.shape == (8 - 1 + 4 + 3, 5, 5)  # the -1 epoch is dropped as a target
    assert ds.channel_names == list(FEATS) and ds.rate_hz == pytest.approx(1 / 30)
    # Subjects in numeric id order; N4 (4) merged into N3; REM (5) is class 4.
    assert ds.subjects[:3].tolist() == ["3", "3", "3"]
    night = ds.subjects == "11"
    assert ds.y[night].tolist() == [0, 1, 2, 3, 3, 4, 2]
    first = ds.X[night][0, :, 0]  # centred on epoch 0, padded with epoch 0
    assert first.tolist() == [0, 0, 0, 1, 2]
    last = ds.X[night][-1, :, 0]  # epoch 7 (the last); the unscored epoch 6 stays as context
    assert last.tolist() == [5, 6, 7, 7, 7]
    assert ds.X[night][0, 2, 1] == 1000  # second feature file is the second column
    assert ds.test_subjects == ["11"] and "every 4th" in ds.split_name


def test_sleep_fixture_context_zero(sleep_dir):
    ds = load_sleep_walch(sleep_dir / "features", context=0)
    assert ds.input_shape == (1, 5)


def test_sleep_bad_inputs(tmp_path, sleep_dir):
    with pytest.raises(DataError, match="no folder"):
        load_sleep_walch(tmp_path / "nope")
    with pytest.raises(DataError, match="psg_labels"):
        load_sleep_walch(tmp_path)
    with pytest.raises(DataError, match="context"):
        load_sleep_walch(sleep_dir, context=-1)
    feats = sleep_dir / "features"
    np.savetxt(feats / "22_hr_feature.out", np.zeros(9), fmt="%f")
    with pytest.raises(DataError, match="disagree"):
        load_sleep_walch(sleep_dir)
    (feats / "22_hr_feature.out").unlink()
    with pytest.raises(DataError, match="missing .*22_hr_feature.out"):
        load_sleep_walch(sleep_dir)
    (feats / "22_hr_feature.out").write_text("0.1\nabc\n0.3\n0.4\n")
    with pytest.raises(DataError, match="cannot read"):
        load_sleep_walch(sleep_dir)


# -- wisdm fixtures -------------------------------------------------------------------------------
ACTIVITY_KEY = "walking = A\njogging = B\nsitting = D\ncatch = O\nfolding = S\n"


def _arff(subject: str, rows: list[tuple[str, list[str]]], n_feat: int = 4) -> str:
    head = ["@relation person_activities_labeled", "", '@attribute "ACTIVITY" { A, B, D, O, S }']
    head += [f'@attribute "F{i}" numeric' for i in range(n_feat)]
    head += [f'@attribute "class" {{ {subject} }}', "", "@data"]
    body = [",".join([act, *vals, subject]) for act, vals in rows]
    return "\n".join(head + body) + "\n"


@pytest.fixture
def wisdm_dir(tmp_path: Path) -> Path:
    root = tmp_path / "wisdm2019_watch"
    accel = root / "arff_files" / "watch" / "accel"
    accel.mkdir(parents=True)
    (root / "activity_key.txt").write_text(ACTIVITY_KEY)
    for k, subject in enumerate(["1600", "1601", "1602", "1603", "1604"]):
        rows = [(act, [str(k), str(i * 0.5), "-1.5", "2e-3"]) for i, act in enumerate("ABDOS")]
        (accel / f"data_{subject}_accel_watch.arff").write_text(_arff(subject, rows))
    return root


def test_wisdm_fixture(wisdm_dir):
    ds = load_wisdm_watch(wisdm_dir)
    assert ds.X.shape == (25, 4) and ds.channel_names == ["F0", "F1", "F2", "F3"]
    assert ds.class_names == ["walking", "jogging", "sitting", "catch", "folding"]
    assert ds.y[:5].tolist() == [0, 1, 2, 3, 4]
    assert ds.subjects[5] == "1601" and ds.X[5, 0] == 1.0
    assert ds.test_subjects == ["1603"] and "1603" in ds.split_name


def test_wisdm_missing_values_dropped(wisdm_dir):
    file = wisdm_dir / "arff_files/watch/accel/data_1600_accel_watch.arff"
    file.write_text(_arff("1600", [("A", ["1", "?", "3", "4"]), ("B", ["1", "2", "3", "4"])]))
    with pytest.warns(UserWarning, match="dropped 1 rows"):
        ds = load_wisdm_watch(wisdm_dir)
    assert len(ds) == 21


def test_wisdm_bad_inputs(wisdm_dir):
    with pytest.raises(DataError, match="unknown sensor"):
        load_wisdm_watch(wisdm_dir, sensor="magnet")
    with pytest.raises(DataError, match="no data_\\*_gyro_watch.arff"):
        load_wisdm_watch(wisdm_dir, sensor="gyro")
    file = wisdm_dir / "arff_files/watch/accel/data_1600_accel_watch.arff"
    file.write_text(_arff("1600", [("Z", ["1", "2", "3", "4"])]))
    with pytest.raises(DataError, match="'Z'.*activity_key"):
        load_wisdm_watch(wisdm_dir)
    file.write_text(_arff("1600", [("A", ["1", "2", "3"])]))
    with pytest.raises(DataError, match="5 values but 6 attributes"):
        load_wisdm_watch(wisdm_dir)
    file.write_text(_arff("1600", [("A", ["1", "x", "3", "4"])]))
    with pytest.raises(DataError, match="non-numeric"):
        load_wisdm_watch(wisdm_dir)
    (wisdm_dir / "activity_key.txt").unlink()
    with pytest.raises(DataError, match="activity_key.txt"):
        load_wisdm_watch(wisdm_dir)


# -- user files -----------------------------------------------------------------------------------
def _table(with_subject: bool = True) -> pd.DataFrame:
    # Two subjects; runs of 30 "walk", 20 "sit" (subject a) and 25 "walk" (subject b) at 10 Hz.
    labels = ["walk"] * 30 + ["sit"] * 20 + ["walk"] * 25
    n = len(labels)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "timestamp": np.arange(n) / 10,
        "ax": rng.normal(size=n), "ay": rng.normal(size=n), "az": np.arange(n, dtype=float),
        "label": labels,
    })
    if with_subject:
        frame["subject"] = ["a"] * 50 + ["b"] * 25
    return frame


def _counts(lengths: list[int], window: int, step: int) -> int:
    return sum((n - window) // step + 1 for n in lengths if n >= window)


def test_user_csv(tmp_path):
    path = tmp_path / "rec.csv"
    _table().to_csv(path, index=False)
    ds = load_recording(path, rate_hz=10, window_s=1.0)
    assert ds.channel_names == ["ax", "ay", "az"]  # timestamp is time-like, not a channel
    assert ds.X.shape == (_counts([30, 20, 25], 10, 5), 3, 10)
    assert ds.class_names == ["sit", "walk"] and ds.task == "classification" and ds.layout == "window"
    assert ds.name == "rec" and ds.test_subjects is None and ds.rate_hz == 10.0
    assert sorted(set(ds.subjects.tolist())) == ["a", "b"]
    # Windows never cross a label change: each holds one run of consecutive sample indices.
    az = ds.X[:, 2, :]
    assert np.all(np.diff(az, axis=1) == 1)
    assert np.bincount(ds.y).tolist() == [_counts([20], 10, 5), _counts([30, 25], 10, 5)]


def test_user_parquet_matches_csv(tmp_path):
    _table().to_csv(tmp_path / "r.csv", index=False)
    _table().to_parquet(tmp_path / "r.parquet")
    a = load_recording(tmp_path / "r.csv", rate_hz=10)
    b = load_recording(tmp_path / "r.parquet", rate_hz=10)
    np.testing.assert_allclose(a.X, b.X, rtol=1e-6)
    assert a.y.tolist() == b.y.tolist() and a.subjects.tolist() == b.subjects.tolist()
    assert a.input_shape == (3, 20)  # default 2 s window at 10 Hz, step 1 s


def test_user_no_subject_column(tmp_path):
    path = tmp_path / "one.csv"
    _table(with_subject=False).to_csv(path, index=False)
    ds = load_recording(path, rate_hz=10, window_s=1.0, step_s=1.0, channels=["ax", "az"], name="mine")
    assert set(ds.subjects.tolist()) == {"s0"} and "not subject-wise" in ds.split_name
    # Without subjects the two "walk" runs are still split by the "sit" run between them.
    assert len(ds) == _counts([30, 20, 25], 10, 10) and ds.channel_names == ["ax", "az"] and ds.name == "mine"


def test_user_unlabelled_gap_breaks_windows(tmp_path):
    frame = _table(with_subject=False)
    frame.loc[40:44, "label"] = None  # 5 unlabelled samples inside the "sit" run
    path = tmp_path / "gap.csv"
    frame.to_csv(path, index=False)
    ds = load_recording(path, rate_hz=10, window_s=1.0)
    assert len(ds) == _counts([30, 10, 5, 25], 10, 5)


def test_user_regression(tmp_path):
    n = 60
    frame = pd.DataFrame({"ppg": np.sin(np.arange(n)), "hr": 60 + np.arange(n) * 0.5})
    frame["subject"] = ["p1"] * 30 + ["p2"] * 30
    path = tmp_path / "hr.csv"
    frame.to_csv(path, index=False)
    ds = load_recording(path, rate_hz=5, window_s=2.0, step_s=2.0, label_column="hr")
    assert ds.task == "regression" and ds.class_names == [] and ds.channel_names == ["ppg"]
    assert len(ds) == 2 * 3
    assert ds.y[0] == pytest.approx(np.mean(60 + np.arange(10) * 0.5))
    assert ds.y[3] == pytest.approx(np.mean(60 + np.arange(30, 40) * 0.5))


def test_user_integer_labels_are_classes(tmp_path):
    frame = pd.DataFrame({"x": np.arange(40.0), "label": [3] * 20 + [7] * 20})
    frame.to_csv(tmp_path / "i.csv", index=False)
    ds = load_recording(tmp_path / "i.csv", rate_hz=10, window_s=1.0, step_s=1.0)
    assert ds.class_names == ["3", "7"] and ds.y.tolist() == [0, 0, 1, 1]


def test_user_npz_windows(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "win.npz"
    y = np.array(["run", "rest", "walk", "rest"] * 3)
    np.savez(path, X=rng.normal(size=(12, 3, 50)), y=y, subjects=np.repeat(["u1", "u2", "u3"], 4),
             rate_hz=np.array(25.0), channel_names=np.array(["x", "y", "z"]))
    ds = load_recording(path)
    assert ds.X.shape == (12, 3, 50) and ds.rate_hz == 25.0 and ds.channel_names == ["x", "y", "z"]
    assert ds.class_names == ["rest", "run", "walk"] and ds.y[:4].tolist() == [1, 0, 2, 0]
    assert len(set(ds.subjects.tolist())) == 3 and ds.test_subjects is None


def test_user_npz_windows_with_class_names(tmp_path):
    path = tmp_path / "ids.npz"
    np.savez(path, X=np.zeros((4, 2, 8)), y=np.array([0, 1, 2, 1]), class_names=np.array(["c", "b", "a"]))
    ds = load_recording(path, rate_hz=8)
    assert ds.class_names == ["c", "b", "a"] and ds.y.tolist() == [0, 1, 2, 1]
    assert "not subject-wise" in ds.split_name


def test_user_npz_continuous(tmp_path):
    path = tmp_path / "cont.npz"
    signal = np.stack([np.arange(100.0), np.ones(100)], axis=1)
    np.savez(path, signal=signal, label=np.repeat([0, 1], 50), subject=np.repeat(["p", "q"], 50),
             rate_hz=np.array(20.0))
    ds = load_recording(path, window_s=0.5, step_s=0.25)
    assert ds.X.shape == (2 * _counts([50], 10, 5), 2, 10) and ds.channel_names == ["ch0", "ch1"]
    assert ds.y.tolist() == [0] * 9 + [1] * 9 and ds.subjects[-1] == "q"


# -- user files: bad inputs -----------------------------------------------------------------------
def test_user_errors_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_recording(tmp_path / "missing.csv", rate_hz=10)
    (tmp_path / "rec.txt").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="unknown file type '.txt'"):
        load_recording(tmp_path / "rec.txt", rate_hz=10)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: cannot read"):
        load_recording(tmp_path / "empty.csv", rate_hz=10)
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match="junk.parquet: cannot read"):
        load_recording(tmp_path / "junk.parquet", rate_hz=10)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(DataError, match="junk.npz: cannot read"):
        load_recording(tmp_path / "junk.npz")


def test_user_errors_npz_content(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.zeros((2, 1, 4)), y=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="object \\(pickled\\) arrays"):
        load_recording(path)
    np.savez(path, values=np.zeros(3))
    with pytest.raises(DataError, match="needs X and y .* or signal and label"):
        load_recording(path)
    np.savez(path, X=np.full((3, 1, 4), np.nan), y=np.zeros(3, dtype=int))
    with pytest.raises(DataError, match="NaN or inf in channel 'ch0' at window 0"):
        load_recording(path)


def test_user_errors_columns(tmp_path):
    path = tmp_path / "r.csv"
    _table().rename(columns={"label": "activity"}).to_csv(path, index=False)
    with pytest.raises(DataError, match="no label column 'label'; columns are timestamp, ax, .*activity"):
        load_recording(path, rate_hz=10)
    pd.DataFrame({"time": [0.0, 0.1], "name": ["x", "y"], "label": ["a", "b"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="no numeric channel columns"):
        load_recording(path, rate_hz=10)
    _table().to_csv(path, index=False)
    with pytest.raises(DataError, match="no column\\(s\\) gyro"):
        load_recording(path, rate_hz=10, channels=["ax", "gyro"])


def test_user_errors_values(tmp_path):
    path = tmp_path / "r.csv"
    frame = _table()
    frame.loc[7, "ay"] = np.inf
    frame.loc[9, "ax"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="'ay' at row 7 .*2 rows"):
        load_recording(path, rate_hz=10)
    _table().to_csv(path, index=False)
    with pytest.raises(DataError, match="pass --rate HZ"):
        load_recording(path)
    with pytest.raises(DataError, match="longer than every labelled segment \\(longest 30 samples\\)"):
        load_recording(path, rate_hz=10, window_s=5.0)
    with pytest.raises(DataError, match="text, but regression"):
        load_recording(path, rate_hz=10, task="regression")
