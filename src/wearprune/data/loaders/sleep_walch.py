"""Sleep staging from Apple Watch features (Walch et al. 2019, PhysioNet "sleep-accel").

The folder holds, per subject ``<id>``, one text file per feature (``<id>_count_feature.out``,
``_hr_``, ``_cosine_``, ``_circadian_``, ``_time_``) and ``<id>_psg_labels.out``: one row per
30 s epoch, whitespace-separated columns, the same number of rows in every file of a subject.

Each example is a sequence of ``2*context+1`` epochs centred on the scored epoch (layout
"sequence", X [N, S, F]); y is that epoch's stage. N3 and N4 are merged (AASM scoring), so the
classes are wake, N1, N2, N3, REM. Epochs with any other label (e.g. -1, unscored) are not used
as targets but still serve as context for their neighbours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import WearableDataset

FEATURES = ("count", "hr", "cosine", "circadian", "time")
CLASS_NAMES = ["wake", "N1", "N2", "N3", "REM"]
# PSG stage (R&K) -> class id; N4 joins N3 as in current AASM scoring.
STAGE_TO_CLASS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4}

# Fixed held-out group: every 4th subject by numeric id, starting with the 2nd (8 of 31). Fixed
# here, not drawn, so every run and every table uses the same people.
TEST_SUBJECTS = ["759667", "1360686", "2598705", "4018081", "5383425", "7749105", "8530312", "9618981"]
SPLIT_NAME = "sleep-walch fixed subject split: 8 of 31 subjects held out (every 4th by id)"


def load_sleep_walch(path: Path, *, context: int = 10) -> WearableDataset:
    """Read the per-epoch feature files under ``path`` (or ``path/features``) into epoch sequences."""
    if not isinstance(context, int) or context < 0:
        raise DataError(f"sleep-walch: context must be a whole number of epochs >= 0 (got {context!r})")
    folder = _feature_folder(Path(path))
    subjects = sorted((f.name.split("_")[0] for f in folder.glob("*_psg_labels.out")), key=_id_order)
    if not subjects:
        raise DataError(f"sleep-walch: no <id>_psg_labels.out files in {folder}; is this the features folder?")
    xs, ys, subs = [], [], []
    channel_names: list[str] = []
    for sid in subjects:
        feats, names, stages = _read_subject(folder, sid)
        x, y = _sequences(feats, stages, context)
        xs.append(x)
        ys.append(y)
        subs.append(np.full(len(y), sid))
        channel_names = names
    test, split = _test_group(subjects)
    return WearableDataset(
        name="sleep-walch",
        X=np.concatenate(xs),
        y=np.concatenate(ys),
        subjects=np.concatenate(subs),
        task="classification",
        layout="sequence",
        rate_hz=1 / 30,
        channel_names=channel_names,
        class_names=list(CLASS_NAMES),
        test_subjects=test,
        split_name=split,
        license="ODC-By 1.0 (derived features)",
        source="https://physionet.org/content/sleep-accel/1.0.0/",
    )


def _feature_folder(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"sleep-walch: no folder {path}; point it at sleep_accel_walch/ or its features/")
    return path / "features" if (path / "features").is_dir() else path


def _id_order(sid: str) -> tuple[int, str]:
    # Numeric ids sort as numbers (46343 before 759667); any other id sorts after them by name.
    return (int(sid), "") if sid.isdigit() else (1 << 62, sid)


def _read_table(file: Path) -> np.ndarray:
    if not file.is_file():
        raise DataError(f"sleep-walch: missing {file}; every subject needs all five feature files and labels")
    try:
        table = np.loadtxt(file, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"sleep-walch: cannot read {file} as numbers ({exc}); the file may be damaged") from exc
    if not np.isfinite(table).all():
        row = int(np.flatnonzero(~np.isfinite(table).all(axis=1))[0])
        raise DataError(f"sleep-walch: {file} has NaN or inf (first at row {row}); the file may be damaged")
    return table


def _read_subject(folder: Path, sid: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """All features of one night as [epochs, F], their names, and the PSG stage per epoch."""
    tables, names = [], []
    for feat in FEATURES:
        t = _read_table(folder / f"{sid}_{feat}_feature.out")
        tables.append(t)
        # A multi-column feature file gets one name per column.
        names += [feat] if t.shape[1] == 1 else [f"{feat}_{i}" for i in range(t.shape[1])]
    labels = _read_table(folder / f"{sid}_psg_labels.out")
    rows = {f: len(t) for f, t in zip(FEATURES + ("psg_labels",), tables + [labels])}
    if len(set(rows.values())) != 1:
        raise DataError(f"sleep-walch: subject {sid} files disagree on the number of epochs: {rows}")
    if labels.shape[1] != 1:
        raise DataError(f"sleep-walch: {sid}_psg_labels.out has {labels.shape[1]} columns; expected one stage")
    return np.concatenate(tables, axis=1), names, labels[:, 0]


def _sequences(feats: np.ndarray, stages: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """[n, 2*context+1, F] windows centred on each scored epoch; the night's edges repeat."""
    n = len(feats)
    offsets = np.arange(-context, context + 1)
    idx = np.clip(np.arange(n)[:, None] + offsets[None, :], 0, n - 1)
    classes = np.array([STAGE_TO_CLASS.get(int(round(s)), -1) for s in stages], dtype=np.int64)
    keep = classes >= 0
    return feats[idx[keep]].astype(np.float32), classes[keep]


def _test_group(subjects: list[str]) -> tuple[list[str] | None, str]:
    present = [s for s in TEST_SUBJECTS if s in subjects]
    if present and len(present) < len(subjects):
        return present, SPLIT_NAME
    if len(subjects) < 2:
        return None, "sleep-walch: one subject only, no subject-wise test group"
    # Not the published subject set (e.g. a subset or other ids): same rule on what is there.
    chosen = subjects[1::4]
    return chosen, f"sleep-walch: every 4th subject by id held out ({len(chosen)} of {len(subjects)})"
