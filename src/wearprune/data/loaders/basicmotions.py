"""UEA BasicMotions: smartwatch accelerometer + gyroscope, 4 activities, 10 s at 10 Hz.

The real recordings ship inside the ``sktime`` package (``sktime/datasets/data/BasicMotions``),
so this data set works offline with no data root. The package is located with
``importlib.util.find_spec`` without importing it (importing sktime takes seconds), and the
``.ts`` files are parsed here: header lines start with ``@`` or ``#``; each data line holds six
``:``-separated dimensions (comma lists of 100 values) and then the class label.

Subject ids are not published (4 students, 5 repeats each), so the subject of every window is
its UEA half, "uea-train" or "uea-test", and the predefined test half is the test group (also
given as ``split_labels``, for ``--split predefined``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import WearableDataset

CHANNELS = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"]
LENGTH = 100
RATE_HZ = 10.0
_RELATIVE = Path("datasets") / "data" / "BasicMotions"


def packaged_files() -> tuple[Path, Path]:
    """The (TRAIN, TEST) .ts files inside the installed sktime package."""
    spec = importlib.util.find_spec("sktime")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        folder = Path(root) / _RELATIVE
        train, test = folder / "BasicMotions_TRAIN.ts", folder / "BasicMotions_TEST.ts"
        if train.is_file() and test.is_file():
            return train, test
    where = "sktime is not installed" if not roots else f"looked in {Path(roots[0]) / _RELATIVE}"
    raise DataError(f"basicmotions: BasicMotions_TRAIN/TEST.ts not found ({where}); pip install sktime")


def load_basicmotions() -> WearableDataset:
    """All 80 cases: X [80, 6, 100], the 40 UEA train cases first."""
    train_file, test_file = packaged_files()
    x_tr, lab_tr = _read_ts(train_file)
    x_te, lab_te = _read_ts(test_file)
    class_names = sorted(set(lab_tr) | set(lab_te))
    ids = {name: i for i, name in enumerate(class_names)}
    return WearableDataset(
        name="basicmotions",
        X=np.concatenate([x_tr, x_te]),
        y=np.array([ids[c] for c in lab_tr + lab_te]),
        subjects=np.array(["uea-train"] * len(lab_tr) + ["uea-test"] * len(lab_te)),
        task="classification",
        layout="window",
        rate_hz=RATE_HZ,
        channel_names=list(CHANNELS),
        class_names=class_names,
        test_subjects=["uea-test"],
        split_name="UEA predefined train/test (subject ids not published)",
        license="UEA archive, research use",
        source="sktime package",
        # The same UEA halves as split sides, so --split predefined gives the subject split's result.
        split_labels=np.array(["train"] * len(lab_tr) + ["test"] * len(lab_te)),
    )


def _read_ts(file: Path) -> tuple[np.ndarray, list[str]]:
    """Cases [n, 6, 100] and their class labels from one equal-length multivariate .ts file."""
    cases, labels = [], []
    for lineno, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "@#":
            continue
        *dims, label = line.split(":")
        if len(dims) != len(CHANNELS):
            raise DataError(f"basicmotions: {file} line {lineno} has {len(dims)} dimensions, expected 6")
        try:
            case = np.array([[float(v) for v in d.split(",")] for d in dims], dtype=np.float32)
        except ValueError as exc:  # ragged rows or '?' values: not the shipped file
            raise DataError(f"basicmotions: {file} line {lineno} is not 6x{LENGTH} numbers ({exc})") from exc
        if case.shape != (len(CHANNELS), LENGTH):
            raise DataError(f"basicmotions: {file} line {lineno} has shape {case.shape}, expected 6x{LENGTH}")
        cases.append(case)
        labels.append(label.strip())
    if not cases:
        raise DataError(f"basicmotions: {file} has no data lines; reinstall sktime")
    return np.stack(cases), labels
