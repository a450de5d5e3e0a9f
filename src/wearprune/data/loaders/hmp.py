"""HMP "ADL Recognition with Wrist-worn Accelerometer" (Bruno et al.), read from the original text files.

Layout: one folder per activity, each holding ``Accelerometer-<time>-<activity>-<subject>.txt`` trials
whose lines are ``x y z`` 6-bit codes (0..63) sampled at 32 Hz. Every trial is cut into sliding
windows; a window inherits its trial's activity and subject.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from ..dataset import WearableDataset
from ..windowing import positive_number, sliding_windows, window_count

log = logging.getLogger(__name__)

RATE_HZ = 32.0
MAX_WINDOW_S = 86_400.0  # a day: far beyond any HMP trial
CHANNELS = ["acc_x", "acc_y", "acc_z"]
LICENSE = "CC BY 4.0 per UCI (bundled README asks research use; see SOURCE.txt)"
SOURCE = "https://archive.ics.uci.edu/dataset/283 (HMP ADL wrist accelerometer, Bruno et al. 2013)"

# Chosen once by exhaustive search over all 4-of-16 subject groups: first most activities present
# in both train and test (12; eat_meat and eat_soup only have f1), then the test share of windows
# closest to 25% (here 25.0% of 3 s windows). m1 alone brings 12 activities into test; f1 (41% of
# trials, the only subject of eat_meat and eat_soup) stays in train.
TEST_SUBJECTS = ["f2", "f4", "m1", "m6"]

_SUBJECT = re.compile(r"^([fm])0*(\d+)")


def load_hmp(path: Path, *, window_s: float = 3.0, step_s: float = 1.0) -> WearableDataset:
    """Sliding windows [N, 3, T] of wrist acceleration in g, labelled with the 14 HMP activities."""
    path = Path(path)
    window, step = _window_samples(window_s, step_s)
    classes = _activity_folders(path)
    xs, ys, subjects = [], [], []
    skipped = 0
    for label, folder in enumerate(classes):
        for trial in _trial_files(path / folder):
            signal = read_trial(trial)
            if window_count(signal.shape[1], window, step) == 0:
                skipped += 1  # a 1 s gesture cannot fill a 3 s window; counted, not fatal
                continue
            w = sliding_windows(signal, window, step, what=str(trial))
            xs.append(w)
            ys.append(np.full(len(w), label))
            subjects.append(np.full(len(w), subject_id(trial)))
    if not xs:
        raise DataError(
            f"hmp: every trial in {path} is shorter than one window of {window} samples "
            f"({window_s} s at 32 Hz); use a shorter window_s"
        )
    if skipped:
        log.info("hmp: skipped %d trials shorter than %d samples", skipped, window)
    return WearableDataset(
        name="hmp",
        X=np.concatenate(xs),
        y=np.concatenate(ys),
        subjects=np.concatenate(subjects),
        task="classification",
        layout="window",
        rate_hz=RATE_HZ,
        channel_names=list(CHANNELS),
        class_names=classes,
        test_subjects=list(TEST_SUBJECTS),
        split_name=f"subject-wise (HMP test subjects: {', '.join(TEST_SUBJECTS)})",
        license=LICENSE,
        source=SOURCE,
    )


def _window_samples(window_s: float, step_s: float) -> tuple[int, int]:
    window_s = positive_number(window_s, "hmp: window_s")
    step_s = positive_number(step_s, "hmp: step_s")
    if window_s > MAX_WINDOW_S:  # no trial is that long; also keeps int(round(...)) off inf
        raise ConfigError(f"hmp: a window of {window_s:g} s is longer than every trial; use a few seconds")
    step_s = min(step_s, MAX_WINDOW_S)  # a step beyond a trial's length gives one window per trial
    window, step = int(round(window_s * RATE_HZ)), int(round(step_s * RATE_HZ))
    if window <= 0 or step <= 0:
        raise ConfigError(f"hmp: window_s and step_s must be at least 1/32 s (got {window_s} and {step_s})")
    return window, step


def _activity_folders(path: Path) -> list[str]:
    """The activity folders, sorted; *_MODEL folders of the original release hold no trials."""
    where = f"get the data from {SOURCE} and put the activity folders there"
    if not path.is_dir():
        raise DataError(f"hmp: no folder {path}; {where}")
    folders = sorted(
        p.name for p in path.iterdir() if p.is_dir() and not p.name.endswith("_MODEL") and _trial_files(p)
    )
    if not folders:
        raise DataError(f"hmp: no activity folders with Accelerometer-*.txt files in {path}; {where}")
    return folders


def _trial_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("Accelerometer-*.txt") if p.is_file())


def subject_id(trial: Path) -> str:
    """The volunteer id after the last '-' of the file name, normalised (e.g. 'F1_1' -> 'f1')."""
    raw = trial.stem.rsplit("-", 1)[-1].strip().lower()
    m = _SUBJECT.match(raw)
    return f"{m.group(1)}{m.group(2)}" if m else raw


def read_trial(trial: Path) -> np.ndarray:
    """One trial as a [3, T] float32 array in g (6-bit code 0..63 spans -1.5..+1.5 g)."""
    try:
        text = trial.read_text(encoding="ascii")
        codes = np.array(text.split(), dtype=np.int16)
    except (UnicodeDecodeError, ValueError, OverflowError):
        raise DataError(f"hmp: {trial}: {_first_bad_line(trial)}; expected 'x y z' integer codes") from None
    except OSError as exc:
        raise DataError(f"hmp: cannot read {trial}: {exc.strerror or exc}") from None
    n_lines = sum(1 for line in text.splitlines() if line.strip())
    if codes.size == 0 or codes.size != 3 * n_lines:
        raise DataError(f"hmp: {trial}: {_first_bad_line(trial)}; expected 'x y z' integer codes")
    if codes.min() < 0 or codes.max() > 63:
        raise DataError(f"hmp: {trial}: codes outside 0..63 (min {codes.min()}, max {codes.max()})")
    return (-1.5 + 3.0 * codes.reshape(-1, 3).T.astype(np.float32) / 63.0).astype(np.float32)


def _first_bad_line(trial: Path) -> str:
    """Slow path, only after a parse failure: find the line to name in the error."""
    lines = trial.read_bytes().decode("ascii", errors="replace").splitlines()
    for i, line in enumerate(lines, 1):
        parts = line.split()
        if parts and (len(parts) != 3 or not all(p.isdigit() for p in parts)):
            return f"line {i} is {line.strip()[:40]!r}"
    return "the file is empty" if not any(s.strip() for s in lines) else "unreadable contents"
