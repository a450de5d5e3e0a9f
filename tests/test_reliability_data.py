"""Bad user input gives one clear error line (never a traceback), and nothing is left half-written.

User recordings: non-finite or non-positive options, a malformed cell in a numeric column, a single
class; the atomic directory replace through a symlink; the per-window split column.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from wearprune.data.loaders.user import load_recording
from wearprune.errors import ConfigError, DataError, WearpruneError
from wearprune.io import atomic_directory


def _frame(n_walk: int = 30, n_sit: int = 20, with_subject: bool = True) -> pd.DataFrame:
    labels = ["walk"] * n_walk + ["sit"] * n_sit
    n = len(labels)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"time": np.arange(n) / 10, "ax": rng.normal(size=n), "ay": rng.normal(size=n),
                          "label": labels})
    if with_subject:
        frame["subject"] = ["a"] * (n // 2) + ["b"] * (n - n // 2)
    return frame


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "rec.csv"
    _frame().to_csv(path, index=False)
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


# -- 1: every float option finite and positive ----------------------------------------------------
BAD_OPTIONS = [
    ({"rate_hz": math.inf}, "rate_hz"),
    ({"rate_hz": math.nan}, "rate_hz"),
    ({"rate_hz": 0.0}, "rate_hz"),
    ({"rate_hz": -10.0}, "rate_hz"),
    ({"rate_hz": 10, "window_s": 1e308}, "window"),
    ({"rate_hz": 10, "window_s": math.nan}, "window_s"),
    ({"rate_hz": 10, "window_s": math.inf}, "window_s"),
    ({"rate_hz": 10, "window_s": 0.0}, "window_s"),
    ({"rate_hz": 10, "window_s": -1.0}, "window_s"),
    ({"rate_hz": 10, "step_s": math.inf}, "step_s"),
    ({"rate_hz": 10, "step_s": math.nan}, "step_s"),
    ({"rate_hz": 10, "step_s": 0.0}, "step_s"),
    ({"rate_hz": 10, "step_s": -0.5}, "step_s"),
    ({"rate_hz": 1e308, "window_s": 1.0}, "window"),
    ({"rate_hz": 1e-300}, "one sample"),
    ({"rate_hz": "fast"}, "rate_hz"),
    ({"rate_hz": True}, "rate_hz"),
]


@pytest.mark.parametrize("options, word", BAD_OPTIONS)
def test_bad_float_options_are_one_clear_error(csv, options, word):
    with pytest.raises((ConfigError, DataError)) as exc:
        load_recording(csv, **options)
    assert word in _one_line(exc)


@pytest.mark.parametrize("rate", [math.inf, math.nan, -1.0])
def test_bad_float_options_on_prewindowed_npz(tmp_path, rate):
    path = tmp_path / "w.npz"
    np.savez(path, X=np.zeros((4, 2, 8)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match="rate_hz") as exc:
        load_recording(path, rate_hz=rate)
    _one_line(exc)


@pytest.mark.parametrize("stored", [np.array(np.inf), np.array(0.0), np.array([10.0, 20.0]), np.array("fast")])
def test_bad_rate_stored_in_npz(tmp_path, stored):
    path = tmp_path / "c.npz"
    np.savez(path, signal=np.zeros((100, 2)), label=np.repeat([0, 1], 50), rate_hz=stored)
    with pytest.raises(DataError, match="rate_hz") as exc:
        load_recording(path)
    _one_line(exc)


def test_huge_step_gives_one_window_per_run(csv):
    ds = load_recording(csv, rate_hz=10, window_s=1.0, step_s=1e300)
    assert len(ds) == 2  # one window in each run of at least a window: (a, walk) and (b, sit)


# -- 2: a malformed cell in a numeric column ------------------------------------------------------
def test_malformed_cell_names_column_line_and_value(tmp_path, csv):
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[7].split(",")  # line 8 of the file
    row[header.index("ay")] = "12..5"
    lines[7] = ",".join(row)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as exc:
        load_recording(csv, rate_hz=10, window_s=1.0)
    text = _one_line(exc)
    assert "'ay'" in text and "line 8" in text and "'12..5'" in text and "fix or remove" in text


def test_malformed_cell_line_counts_blank_lines(tmp_path, csv):
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("ax")] = "n/a?"
    lines[3] = ",".join(row)
    lines.insert(2, "")  # a blank line (skipped by the reader) moves the bad row to line 5
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"'ax'.* line 5 .*'n/a\?'"):
        load_recording(csv, rate_hz=10, window_s=1.0)


def test_malformed_cell_in_named_channel(tmp_path, csv):
    frame = _frame()
    frame["ay"] = frame["ay"].astype(object)
    frame.loc[3, "ay"] = "oops"
    frame.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"'ay'.*line 5.*'oops'"):
        load_recording(csv, rate_hz=10, window_s=1.0, channels=["ax", "ay"])


def test_malformed_cell_in_parquet_names_the_row(tmp_path):
    frame = _frame()
    frame["ax"] = frame["ax"].astype(str)
    frame.loc[9, "ax"] = "1,5"
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=r"'ax'.*row 10 .*'1,5'"):
        load_recording(path, rate_hz=10, window_s=1.0)


def test_text_columns_are_still_not_channels(tmp_path):
    frame = _frame()
    frame["note"] = ["ok", "moved", "x"] * (len(frame) // 3) + ["y"] * (len(frame) % 3)
    frame["mixed_text"] = "id-7"
    frame.loc[0, "mixed_text"] = "7"  # one number among text: a text column, not a broken channel
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    ds = load_recording(path, rate_hz=10, window_s=1.0)
    assert ds.channel_names == ["ax", "ay"]


# -- 3: one class is not a classification task ----------------------------------------------------
def test_single_class_csv(tmp_path):
    frame = _frame()
    frame["label"] = "walk"
    path = tmp_path / "one.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="needs at least two classes; found only 'walk'") as exc:
        load_recording(path, rate_hz=10, window_s=1.0)
    _one_line(exc)


def test_single_class_in_windows(tmp_path):
    # Two labels in the file, but the "sit" run is shorter than a window: the windows hold one class.
    path = tmp_path / "short.csv"
    _frame(n_walk=40, n_sit=3, with_subject=False).to_csv(path, index=False)
    with pytest.raises(DataError, match="found only 'walk'"):
        load_recording(path, rate_hz=10, window_s=1.0)


def test_single_class_npz(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, X=np.zeros((4, 2, 8)), y=np.array(["walk"] * 4))
    with pytest.raises(DataError, match="found only 'walk'"):
        load_recording(path, rate_hz=10)
    np.savez(path, X=np.zeros((4, 2, 8)), y=np.zeros(4, dtype=int), class_names=np.array(["rest", "run"]))
    with pytest.raises(DataError, match="found only 'rest'"):
        load_recording(path, rate_hz=10)


def test_regression_with_constant_target_is_allowed(tmp_path):
    path = tmp_path / "hr.npz"
    np.savez(path, X=np.zeros((4, 2, 8)), y=np.full(4, 72.5))
    assert load_recording(path, rate_hz=10).task == "regression"


def test_training_side_with_one_class_is_refused():
    from wearprune.data.prepare import prepare_data
    from wearprune.data.synthetic import make_synthetic

    ds = make_synthetic(n_subjects=6)
    ds.y[ds.subjects != "s5"] = 1  # every training window is class1
    with pytest.raises(DataError, match="at least two classes; found only 'class1'"):
        prepare_data(ds)


# -- 5: replacing a run directory through a symlink -------------------------------------------------
def test_atomic_directory_replaces_symlink_target(tmp_path):
    real = tmp_path / "disk" / "run"
    real.mkdir(parents=True)
    (real / "old.txt").write_text("old")
    link = tmp_path / "runs" / "latest"
    link.parent.mkdir()
    link.symlink_to(real, target_is_directory=True)
    with atomic_directory(link, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert sorted(p.name for p in real.iterdir()) == ["new.txt"]
    # Nothing left behind next to the link or the target.
    assert sorted(p.name for p in link.parent.iterdir()) == ["latest"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["run"]


def test_atomic_directory_through_dangling_symlink(tmp_path):
    link = tmp_path / "latest"
    link.symlink_to(tmp_path / "gone", target_is_directory=True)
    with atomic_directory(link, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("a")
    assert link.is_symlink() and (tmp_path / "gone" / "a.txt").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gone", "latest"]


def test_atomic_directory_plain_replace_leaves_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "old.txt").write_text("old")
    with atomic_directory(run, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in run.iterdir()) == ["new.txt"]
    with pytest.raises(RuntimeError), atomic_directory(run, overwrite=True) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in run.iterdir()) == ["new.txt"]


# -- 8: a per-window split column / array -----------------------------------------------------------
def _split_frame() -> pd.DataFrame:
    # No subject column: 3 runs of each class, one run per split side.
    parts = []
    for side in ("train", "val", "test"):
        for label in ("walk", "sit"):
            parts.append(pd.DataFrame({"ax": np.random.default_rng(len(parts)).normal(size=30),
                                       "label": label, "split": side}))
    return pd.concat(parts, ignore_index=True)


def test_csv_split_column_is_carried_per_window(tmp_path):
    path = tmp_path / "s.csv"
    _split_frame().to_csv(path, index=False)
    ds = load_recording(path, rate_hz=10, window_s=1.0)
    assert ds.channel_names == ["ax"]  # split is not a channel
    assert ds.split_labels is not None and set(ds.split_labels.tolist()) == {"train", "val", "test"}
    assert len(ds.split_labels) == len(ds)
    sub = ds.subset(np.flatnonzero(ds.split_labels == "test"))
    assert set(sub.split_labels.tolist()) == {"test"} and len(sub.split_labels) == len(sub)


def test_windows_never_span_two_split_sides(tmp_path):
    frame = _split_frame()
    frame["label"] = np.where(np.arange(len(frame)) < 90, "walk", "sit")  # labels ignore the split sides
    frame["ax"] = np.arange(len(frame), dtype=float)
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    ds = load_recording(path, rate_hz=10, window_s=1.0, step_s=0.5)
    side_of_row = frame["split"].to_numpy()
    for x, side in zip(ds.X[:, 0, :], ds.split_labels):
        rows = x.astype(int)
        assert set(side_of_row[rows].tolist()) == {side}


def test_bad_split_values(tmp_path):
    frame = _split_frame()
    frame.loc[40, "split"] = "holdout"
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="split.*'holdout'.*train, val or test") as exc:
        load_recording(path, rate_hz=10, window_s=1.0)
    _one_line(exc)


def test_npz_split_arrays(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, X=np.zeros((6, 2, 8)), y=np.array([0, 1] * 3),
             split=np.array(["train", "train", "val", "val", "test", "test"]))
    ds = load_recording(path, rate_hz=10)
    assert ds.split_labels.tolist() == ["train", "train", "val", "val", "test", "test"]
    np.savez(path, X=np.zeros((6, 2, 8)), y=np.array([0, 1] * 3), split=np.array(["train", "test"]))
    with pytest.raises(DataError, match="split has shape"):
        load_recording(path, rate_hz=10)
    cont = tmp_path / "c.npz"
    np.savez(cont, signal=np.zeros((120, 1)), label=np.tile(np.repeat([0, 1], 20), 3),
             split=np.repeat(["train", "val", "test"], 40), rate_hz=np.array(10.0))
    ds = load_recording(cont, window_s=1.0, step_s=1.0)
    assert ds.split_labels.tolist() == ["train"] * 4 + ["val"] * 4 + ["test"] * 4


def test_every_error_is_a_wearprune_error(tmp_path):
    # A guard for the CLI: every failure above is a WearpruneError, which it prints as one line.
    assert issubclass(DataError, WearpruneError) and issubclass(ConfigError, WearpruneError)


# -- the named loaders' numeric options, checked before any file is read -------------------------
@pytest.mark.parametrize("loader, options, word", [
    ("hmp", {"window_s": math.inf}, "window_s"),
    ("hmp", {"window_s": 1e308}, "longer than every trial"),
    ("hmp", {"step_s": math.nan}, "step_s"),
    ("hmp", {"window_s": -3.0}, "window_s"),
    ("troika", {"rate_hz": math.inf}, "rate_hz"),
    ("troika", {"rate_hz": 1e308}, "rate_hz must be between"),
    ("troika", {"rate_hz": 1e-300}, "rate_hz must be between"),
    ("mitdb", {"rate_hz": math.nan}, "rate_hz"),
    ("mitdb", {"rate_hz": 1e308}, "rate_hz must be between"),
    ("mitdb", {"window": math.inf}, "window"),
])
def test_named_loader_options_are_one_clear_error(tmp_path, loader, options, word):
    from wearprune.data.loaders.hmp import load_hmp
    from wearprune.data.loaders.mitdb import load_mitdb
    from wearprune.data.loaders.troika import load_troika

    fn = {"hmp": load_hmp, "troika": load_troika, "mitdb": load_mitdb}[loader]
    with pytest.raises(ConfigError) as exc:
        fn(tmp_path, **options)
    assert word in _one_line(exc)


def test_split_column_can_be_ignored(tmp_path):
    frame = _split_frame()
    frame["split"] = "holdout"  # a column of that name meaning something else
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    ds = load_recording(path, rate_hz=10, window_s=1.0, split_column=None)
    assert ds.split_labels is None and ds.channel_names == ["ax"]
