"""Your own recordings: CSV, Parquet or NPZ files, cut into windows.

File schema
-----------
CSV / Parquet (``.csv``, ``.parquet``, ``.pq``): one row per sample, in time order.
  * channels: every numeric column except the label, subject and time-like columns (time,
    timestamp, t, ts, time_s, time_ms, seconds, datetime, date, index, Unnamed: N), or the
    columns named in ``channels=[...]``. No NaN or inf allowed in channel columns. A text column
    whose cells are mostly numbers is a channel with a malformed cell (``12..5``): an error names
    the column, the line and the value; a column of mostly text is not a channel.
  * label column (default ``label``): text or integer → classification (class ids follow the
    sorted labels); numbers with a fractional part → regression (window target = mean label over
    the window). Empty labels mark unlabelled stretches: no window crosses them.
  * subject column (default ``subject``), optional: without it every row is subject ``s0`` and the
    split cannot be subject-wise.
  * split column (default ``split``; ``split_column=None`` ignores it), optional: ``train``,
    ``val`` or ``test`` per row, for ``--split predefined``. Split sides break runs like labels do,
    so no window spans two sides.
  * the sampling rate is not in the file: pass ``rate_hz`` (``--rate HZ``). ``rate_hz``,
    ``window_s`` and ``step_s`` must be finite numbers above zero.
  Windows of ``window_s`` seconds (default 2.0), every ``step_s`` (default half a window), are cut
  inside runs of rows with the same subject and label (same subject only, for regression).
NPZ (read with ``allow_pickle=False``: plain numeric or string arrays only, no object arrays):
  * pre-windowed: ``X`` [N, C, T] (or [N, F] feature vectors), ``y`` [N]; optional ``subjects`` [N],
    ``split`` [N] (train/val/test), ``rate_hz`` (scalar), ``channel_names`` [C], ``class_names`` [K]
    (then ``y`` holds ids 0..K-1).
  * continuous: ``signal`` [T, C], ``label`` [T], optional ``subject`` [T], ``split`` [T],
    ``channel_names``, ``rate_hz``; windowed exactly like a CSV table.

A classification file must give windows of at least two classes.

No standard test group comes with a user file (``test_subjects`` is None): the caller splits.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ..dataset import SPLIT_SIDES, WearableDataset
from ..windowing import positive_number, sliding_windows

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
TIME_LIKE = {"time", "timestamp", "t", "ts", "time_s", "time_ms", "seconds", "datetime", "date", "index"}
DEFAULT_WINDOW_S = 2.0
SINGLE_SUBJECT = "s0"
_SPLIT_ALIASES = {"validation": "val", "valid": "val"}


@dataclass
class _Recording:
    """A continuous recording before windowing: samples in rows."""

    signal: np.ndarray  # [T, C] float
    labels: np.ndarray  # [T], raw values (text or numbers)
    missing: np.ndarray  # [T] bool, the label is empty
    subjects: np.ndarray | None  # [T] str, or None when the file names no subject
    channel_names: list[str]
    rate_hz: float | None = None
    splits: np.ndarray | None = None  # [T] "train" / "val" / "test", or None


def load_recording(
    path: str | os.PathLike,
    *,
    rate_hz: float | None = None,
    window_s: float | None = None,
    step_s: float | None = None,
    label_column: str = "label",
    subject_column: str = "subject",
    split_column: str = "split",
    channels: list[str] | None = None,
    task: str | None = None,
    name: str | None = None,
) -> WearableDataset:
    """Load a user recording (see the module docstring for the schema)."""
    path = Path(path).expanduser()
    # Options are checked before the file is read: a bad --rate fails at once, not after a big read.
    rate_hz = None if rate_hz is None else positive_number(rate_hz, "rate_hz (--rate, in Hz)")
    window_s = None if window_s is None else positive_number(window_s, "window_s (--window-s, in seconds)")
    step_s = None if step_s is None else positive_number(step_s, "step_s (--step-s, in seconds)")
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    if task not in (None, "classification", "regression"):
        raise DataError(f"{path}: unknown task {task!r}; use classification or regression")
    suffix = path.suffix.lower()
    name = name or path.stem
    if suffix == ".npz":
        arrays = _read_npz(path)
        if "X" in arrays:
            return _from_windows(path, arrays, rate_hz=rate_hz, channels=channels, task=task, name=name)
        rec = _npz_recording(path, arrays, channels)
    elif suffix in TABLE_SUFFIXES:
        rec = _table_recording(path, _read_table(path), label_column, subject_column, split_column, channels)
    else:
        raise DataError(f"{path}: unknown file type {suffix or '(none)'!r}; use .csv, .parquet or .npz")
    return _windowed(path, rec, rate_hz=rate_hz, window_s=window_s, step_s=step_s, task=task, name=name)


# -- reading --------------------------------------------------------------------------------------
def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file; all mean "unreadable"
        raise DataError(f"{path}: cannot read the file ({type(exc).__name__}: {_first_line(exc)}); "
                        "is it a valid, complete file?") from exc


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # a pickle or a damaged zip surfaces as one of several numpy errors
        raise DataError(_npz_error(path, exc)) from exc
    if not hasattr(loaded, "files"):  # a bare .npy renamed to .npz
        raise DataError(f"{path}: holds one array, not named arrays; save with np.savez(file, X=..., y=...)")
    with loaded:
        try:
            return {key: loaded[key] for key in loaded.files}
        except Exception as exc:
            raise DataError(_npz_error(path, exc)) from exc


def _npz_error(path: Path, exc: Exception) -> str:
    if "allow_pickle" in str(exc):
        return (f"{path}: contains object (pickled) arrays, which are never loaded; save plain arrays "
                "(numbers, or text as e.g. np.array(labels, dtype=str))")
    return f"{path}: cannot read as .npz ({type(exc).__name__}: {_first_line(exc)}); the file may be damaged"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


# -- tables and continuous npz --------------------------------------------------------------------
def _table_recording(
    path: Path, frame: pd.DataFrame, label_column: str, subject_column: str, split_column: str,
    channels: list[str] | None,
) -> _Recording:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if label_column not in columns:
        raise DataError(f"{path}: no label column {label_column!r}; columns are {', '.join(columns)} "
                        "(name yours with --label-column)")
    chosen = _channel_columns(path, frame, channels, exclude={label_column, subject_column, split_column})
    signal = frame[chosen].to_numpy(dtype=np.float64)
    _check_finite(path, signal, chosen)
    labels = frame[label_column]
    missing = labels.isna().to_numpy()
    has_subject = subject_column in columns
    subjects = frame[subject_column].astype(str).to_numpy() if has_subject else None
    splits = None
    if split_column and split_column in columns:
        column = frame[split_column]
        raw = column.astype(object).where(column.notna(), "").astype(str).to_numpy()
        splits = _split_sides(path, raw, ~missing, f"column {split_column!r}", lambda i: _where(path, i))
    return _Recording(signal, _plain_labels(labels), missing, subjects, chosen, splits=splits)


def _channel_columns(path: Path, frame: pd.DataFrame, channels: list[str] | None, exclude: set[str]) -> list[str]:
    numeric = [c for c in frame.columns if _is_numeric(frame[c])]
    if channels:
        unknown = [c for c in channels if c not in frame.columns]
        if unknown:
            raise DataError(f"{path}: no column(s) {', '.join(unknown)}; columns are {', '.join(frame.columns)}")
        for c in channels:  # a named channel with any number in it is a channel with bad cells
            if c not in numeric and c not in exclude and not pd.api.types.is_bool_dtype(frame[c]):
                _check_malformed(path, c, frame[c], mostly=False)
        bad = [c for c in channels if c not in numeric or c in exclude]
        if bad:
            raise DataError(f"{path}: column(s) {', '.join(bad)} are not numeric channels (text, label or subject)")
        return list(channels)
    for c in frame.columns:
        if c not in numeric and c not in exclude and not _time_like(c) and not pd.api.types.is_bool_dtype(frame[c]):
            _check_malformed(path, c, frame[c], mostly=True)
    chosen = [c for c in numeric if c not in exclude and not _time_like(c)]
    if not chosen:
        raise DataError(f"{path}: no numeric channel columns among {', '.join(frame.columns)}; "
                        "a channel column holds one number per row")
    return chosen


def _check_malformed(path: Path, column: str, values: pd.Series, mostly: bool) -> None:
    """Refuse a number column that pandas read as text because some cells are not numbers.

    Without this, one typo (``12..5``) turns a whole channel into text and it is silently dropped.
    ``mostly``: only a column whose non-empty cells are mostly numbers counts as a channel; a
    column of text with the odd number in it (a note, an id) stays out of the channels.
    """
    present = values.notna().to_numpy()
    parsed = pd.to_numeric(values.astype(object).where(values.notna()), errors="coerce").to_numpy(dtype=np.float64)
    bad = present & np.isnan(parsed)
    numbers = int((present & ~np.isnan(parsed)).sum())
    if not bad.any() or numbers == 0 or (mostly and numbers <= int(bad.sum())):
        return
    row = int(np.flatnonzero(bad)[0])
    raise DataError(f"{path}: column {column!r} holds numbers, but {_where(path, row)} has {str(values.iloc[row])!r}, "
                    f"which is not a number ({int(bad.sum())} such cell(s) in the column); fix or remove that "
                    "value (or its row)")


def _where(path: Path, row: int) -> str:
    """Where data row ``row`` (0-based) is in the file: a 1-based line of a CSV, a 1-based row otherwise."""
    if path.suffix.lower() != ".csv":
        return f"row {row + 1} (1-based)"
    return f"line {_csv_line(path, row)}"


def _csv_line(path: Path, row: int) -> int:
    # Only on the error path: reread the file to count the header, blank lines (which pandas skips)
    # and quoted fields spanning lines, so the number is the line an editor shows.
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.reader(f)
            seen = -1  # the header record
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if seen == row:
                    return reader.line_num
                seen += 1
    except (OSError, csv.Error):
        pass
    return row + 2  # header on line 1, no blank lines


def _split_sides(path: Path, raw: np.ndarray, used: np.ndarray, what: str, where) -> np.ndarray:
    """Split sides normalised to train / val / test; every ``used`` row (or window) needs one."""
    sides = np.char.lower(np.char.strip(raw.astype(str)))
    for alias, side in _SPLIT_ALIASES.items():
        sides[sides == alias] = side
    wrong = used & ~np.isin(sides, SPLIT_SIDES)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise DataError(f"{path}: split {what} has {str(raw[i])!r} at {where(i)} ({int(wrong.sum())} such "
                        "value(s)); each split value must be train, val or test (or drop it and use --split "
                        "subject or random)")
    return sides.astype(object).astype(str)


def _is_numeric(series: pd.Series) -> bool:
    # bool columns are flags, not signals.
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _time_like(column: str) -> bool:
    low = column.strip().lower()
    return low in TIME_LIKE or low.startswith("unnamed:")


def _plain_labels(labels: pd.Series) -> np.ndarray:
    # Text labels become a numpy str array (pandas may hand back an Arrow-backed string column).
    if _is_numeric(labels) or pd.api.types.is_bool_dtype(labels):
        return labels.to_numpy()
    return labels.astype(object).where(labels.notna(), "").astype(str).to_numpy()


def _check_finite(path: Path, data: np.ndarray, names: list[str], what: str = "row") -> None:
    """One line naming the first row (or window) and channel holding NaN or inf."""
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    items = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
    first = int(items[0])
    per_channel = bad[first] if bad.ndim == 2 else bad[first].any(axis=-1)
    col = int(np.flatnonzero(per_channel)[0])
    channel = names[col] if col < len(names) else f"#{col}"
    raise DataError(f"{path}: NaN or inf in channel {channel!r} at {what} {first} (0-based; {len(items)} "
                    f"{what}s affected); fill or drop them first")


def _npz_recording(path: Path, arrays: dict[str, np.ndarray], channels: list[str] | None) -> _Recording:
    if "signal" not in arrays or "label" not in arrays:
        raise DataError(f"{path}: an .npz needs X and y (windows) or signal and label (continuous); "
                        f"it has {', '.join(arrays) or 'no arrays'}")
    signal = arrays["signal"]
    signal = signal[:, None] if signal.ndim == 1 else signal
    if signal.ndim != 2 or signal.dtype.kind not in "biuf":
        raise DataError(f"{path}: signal must be a numeric [samples, channels] array, got {signal.dtype} "
                        f"{signal.shape}")
    names = _names(arrays, "channel_names", signal.shape[1], "ch")
    if channels:
        signal, names = _select(path, signal, names, channels, axis=1)
    labels = arrays["label"]
    n = len(signal)
    if labels.shape != (n,):
        raise DataError(f"{path}: label has shape {labels.shape}; expected one label per sample ({n},)")
    subjects = arrays.get("subject")
    if subjects is not None and subjects.shape != (n,):
        raise DataError(f"{path}: subject has shape {subjects.shape}; expected one id per sample ({n},)")
    _check_finite(path, signal.astype(np.float64), names)
    # Empty labels (NaN, or "" in a text array) mark unlabelled samples, as in a table.
    missing = np.isnan(labels) if labels.dtype.kind == "f" else labels.astype(str) == ""
    splits = _npz_split(path, arrays, n, ~missing, "sample")
    return _Recording(signal.astype(np.float64), labels, missing,
                      None if subjects is None else subjects.astype(str), names, _rate(path, arrays), splits)


def _npz_split(path: Path, arrays: dict[str, np.ndarray], n: int, used: np.ndarray, unit: str) -> np.ndarray | None:
    if "split" not in arrays:
        return None
    split = arrays["split"]
    if split.shape != (n,):
        raise DataError(f"{path}: split has shape {split.shape}; expected one of train/val/test per {unit} ({n},)")
    return _split_sides(path, split, used, "array", lambda i: f"{unit} {i} (0-based)")


def _names(arrays: dict[str, np.ndarray], key: str, count: int, prefix: str) -> list[str]:
    if key in arrays and len(arrays[key]) == count:
        return [str(v) for v in arrays[key]]
    return [f"{prefix}{i}" for i in range(count)]


def _select(path: Path, data: np.ndarray, names: list[str], channels: list[str], axis: int):
    unknown = [c for c in channels if c not in names]
    if unknown:
        raise DataError(f"{path}: no channel(s) {', '.join(unknown)}; channels are {', '.join(names)}")
    idx = [names.index(c) for c in channels]
    return np.take(data, idx, axis=axis), list(channels)


def _rate(path: Path, arrays: dict[str, np.ndarray]) -> float | None:
    if "rate_hz" not in arrays:
        return None
    return positive_number(arrays["rate_hz"], f"{path}: rate_hz stored in the file (Hz)", error=DataError)


# -- labels ---------------------------------------------------------------------------------------
def _encode(
    path: Path, labels: np.ndarray, task: str | None, class_names: list[str] | None = None
) -> tuple[str, np.ndarray, list[str]]:
    """(task, targets, class names): class ids for classification, floats for regression."""
    kind = labels.dtype.kind
    text = kind in "USO"
    if task is None:
        fractional = kind == "f" and not np.all(labels == np.round(labels))
        task = "regression" if fractional else "classification"
    if task == "regression":
        if text:
            raise DataError(f"{path}: labels are text, but regression needs numbers; drop --task regression")
        return task, labels.astype(np.float64), []
    if class_names and not text:
        return task, labels.astype(np.int64), list(class_names)  # ids already; range checked later
    values = labels.astype(str) if text else labels
    order = list(class_names) if class_names else sorted(set(values.tolist()))
    unknown = sorted(set(values.tolist()) - set(order))
    if unknown:
        raise DataError(f"{path}: labels {unknown[:5]} are not in class_names")
    ids = {v: i for i, v in enumerate(order)}
    return task, np.array([ids[v] for v in values.tolist()], dtype=np.int64), [_label_text(v) for v in order]


def _label_text(value) -> str:
    # 1.0 reads better as "1" in a table of class names.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- windows --------------------------------------------------------------------------------------
def _windowed(
    path: Path, rec: _Recording, *, rate_hz: float | None, window_s: float | None, step_s: float | None,
    task: str | None, name: str,
) -> WearableDataset:
    rate = rate_hz if rate_hz is not None else rec.rate_hz
    if rate is None:
        raise DataError(f"{path}: the sampling rate is not in the file; pass --rate HZ")
    window_s = DEFAULT_WINDOW_S if window_s is None else window_s
    step_s = window_s / 2 if step_s is None else step_s
    n = len(rec.signal)
    # Sizes in samples are compared as floats before int(): 1e308 s (or Hz) overflows to inf.
    window_f, step_f = window_s * rate, step_s * rate
    if window_f > n:
        raise DataError(f"{path}: a window of {window_s:g} s at {rate:g} Hz ({window_f:.4g} samples) is longer than "
                        f"the whole recording ({n} samples, {n / rate:.4g} s); use a shorter window (--window-s)")
    window, step = int(round(window_f)), int(round(min(step_f, n + 1.0)))  # a longer step: one window per run
    if window < 1 or step < 1:
        raise DataError(f"{path}: window {window_s} s / step {step_s} s is under one sample at {rate} Hz")
    labelled = ~rec.missing
    if not labelled.any():
        raise DataError(f"{path}: every label is empty; there is nothing to learn from")
    task, targets, class_names = _encode(path, rec.labels[labelled], task)
    full = np.full(len(rec.labels), -1 if task == "classification" else np.nan)
    full[labelled] = targets
    subjects = rec.subjects if rec.subjects is not None else np.full(len(full), SINGLE_SUBJECT)
    x, y, s, sides = _cut(path, rec, full, subjects, task, window, step)
    _check_classes(path, task, y, class_names)
    return WearableDataset(
        name=name, X=x, y=y, subjects=s, task=task, layout="window", rate_hz=float(rate),
        channel_names=rec.channel_names, class_names=class_names, test_subjects=None,
        split_name=_split_name(rec.subjects is not None, sides is not None),
        license="user data", source=str(path), split_labels=sides,
    )


def _check_classes(path: Path, task: str, y: np.ndarray, class_names: list[str]) -> None:
    # One class trains a one-output model whose macro-F1 is a meaningless 1.0.
    if task != "classification":
        return
    present = np.unique(y)
    if len(present) < 2:
        only = int(present[0])
        name = class_names[only] if 0 <= only < len(class_names) else str(only)
        raise DataError(f"{path}: classification needs at least two classes; found only {name!r} in the windows; "
                        "add recordings of other classes")


def _segments(keys: list[np.ndarray]) -> list[tuple[int, int]]:
    """[start, end) of each run of rows where every key stays the same."""
    n = len(keys[0])
    change = np.zeros(max(n - 1, 0), dtype=bool)
    for k in keys:
        change |= k[1:] != k[:-1]
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    ends = np.concatenate([starts[1:], [n]])
    return list(zip(starts.tolist(), ends.tolist()))


def _cut(
    path: Path, rec: _Recording, targets: np.ndarray, subjects: np.ndarray, task: str, window: int, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    # Classification runs break at every label change; regression runs only at a new subject or
    # an unlabelled stretch, since the target changes continuously. A new split side breaks a run
    # too, so no window holds rows of two sides.
    labelled = ~np.isnan(targets) if task == "regression" else targets >= 0
    label_key = targets if task == "classification" else labelled
    subject_key = np.unique(subjects, return_inverse=True)[1]
    keys = [subject_key, label_key]
    if rec.splits is not None:
        keys.append(np.unique(rec.splits, return_inverse=True)[1])
    runs = [(a, b) for a, b in _segments(keys) if labelled[a]]
    longest = max((b - a for a, b in runs), default=0)
    xs, ys, ss, sides = [], [], [], []
    for a, b in runs:
        if b - a < window:
            continue  # too short for one window; reported below only if every run is
        xs.append(sliding_windows(rec.signal[a:b].T, window, step, what=str(path)))
        if task == "classification":
            ys.append(np.full(len(xs[-1]), targets[a]))
        else:  # mean target over each window, cut with the same positions
            ys.append(sliding_windows(targets[None, a:b], window, step, what=str(path))[:, 0].mean(axis=1))
        ss.append(np.full(len(xs[-1]), subjects[a]))
        if rec.splits is not None:
            sides.append(np.full(len(xs[-1]), rec.splits[a]))
    if not xs:
        raise DataError(f"{path}: a window of {window} samples is longer than every labelled segment "
                        f"(longest {longest} samples); use a shorter window (--window-s SECONDS)")
    return (np.concatenate(xs), np.concatenate(ys), np.concatenate(ss),
            np.concatenate(sides) if rec.splits is not None else None)


# -- pre-windowed npz -----------------------------------------------------------------------------
def _from_windows(
    path: Path, arrays: dict[str, np.ndarray], *, rate_hz: float | None, channels: list[str] | None,
    task: str | None, name: str,
) -> WearableDataset:
    x = arrays["X"]
    if x.dtype.kind not in "biuf" or x.ndim not in (2, 3):
        raise DataError(f"{path}: X must be numeric [windows, channels, samples] (or [windows, features]), "
                        f"got {x.dtype} {x.shape}")
    if "y" not in arrays:
        raise DataError(f"{path}: has X but no y; save one label per window as y")
    n = len(x)
    y, subjects = arrays["y"], arrays.get("subjects")
    if y.shape != (n,):
        raise DataError(f"{path}: y has shape {y.shape}; expected one label per window ({n},)")
    if subjects is not None and subjects.shape != (n,):
        raise DataError(f"{path}: subjects has shape {subjects.shape}; expected one id per window ({n},)")
    layout = "window" if x.ndim == 3 else "features"
    names = _names(arrays, "channel_names", x.shape[1], "ch" if layout == "window" else "f")
    if channels:
        x, names = _select(path, x, names, channels, axis=1)
    _check_finite(path, x, names, what="window")
    given = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else None
    task, targets, class_names = _encode(path, y, task, given)
    _check_classes(path, task, targets, class_names)
    sides = _npz_split(path, arrays, n, np.ones(n, dtype=bool), "window")
    rate = rate_hz if rate_hz is not None else _rate(path, arrays)
    return WearableDataset(
        name=name, X=x, y=targets, subjects=np.full(n, SINGLE_SUBJECT) if subjects is None else subjects,
        task=task, layout=layout, rate_hz=rate, channel_names=names, class_names=class_names,
        test_subjects=None, split_name=_split_name(subjects is not None, sides is not None), license="user data",
        source=str(path), split_labels=sides,
    )


def _split_name(has_subjects: bool, has_split: bool = False) -> str:
    also = "; the file gives a train/val/test side per window (--split predefined)" if has_split else ""
    if has_subjects:
        return "subject-wise (no predefined test group; the caller splits)" + also
    return (f"single subject {SINGLE_SUBJECT!r} (no subject ids in the file): the split is not subject-wise"
            + also)
