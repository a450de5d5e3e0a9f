"""WISDM 2019 smartwatch activity features (ARFF, one file per subject and sensor).

Files: ``arff_files/watch/{accel,gyro}/data_<subject>_<sensor>_watch.arff``. Each row is one 10 s
window summarised by 91 numeric features, then ``ACTIVITY`` (a letter, see ``activity_key.txt``)
and ``class`` (the subject id). The ARFF is parsed here (dense data only): the nominal value list
of ``ACTIVITY`` differs between files, so letters are mapped through ``activity_key.txt`` rather
than by their position in each header.

Rows with a missing value ("?") in a feature are dropped with a warning (the published files have
none). All 91 features are kept, constant ones included: they are numeric and harmless.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import WearableDataset

SENSORS = ("accel", "gyro")
LABEL_ATTR = "ACTIVITY"
SUBJECT_ATTR = "class"

# Fixed held-out group: ids 1603, 1607, ..., 1647 (every 4th id; 12 of the 50 subjects).
TEST_SUBJECTS = [str(s) for s in range(1603, 1651, 4)]
SPLIT_NAME = "wisdm-watch fixed subject split: 12 of 50 subjects held out (ids 1603, 1607, ..., 1647)"

_FILE_RE = re.compile(r"data_(?P<subject>[^_]+)_(?P<sensor>[a-z]+)_watch\.arff$")


def load_wisdm_watch(path: Path, *, sensor: str = "accel") -> WearableDataset:
    """Read every subject's ARFF file for one watch sensor ("accel" or "gyro")."""
    if sensor not in SENSORS:
        raise DataError(f"wisdm-watch: unknown sensor {sensor!r}; use one of {', '.join(SENSORS)}")
    path = Path(path)
    letters, class_names = _activity_key(path)
    files = _arff_files(path, sensor)
    feature_names: list[str] | None = None
    xs, ys, subs = [], [], []
    for file in files:
        names, rows = _read_arff(file)
        feats, labels, subject = _split_columns(file, names, rows)
        if feature_names is None:
            feature_names = [n for n in names if n not in (LABEL_ATTR, SUBJECT_ATTR)]
        elif len(feats[0]) != len(feature_names):
            raise DataError(f"wisdm-watch: {file} has {len(feats[0])} features, other files {len(feature_names)}")
        xs.append(feats)
        ys.append(_label_ids(file, labels, letters))
        subs.append(subject)
    subjects = np.concatenate(subs)
    test, split = _test_group(sorted(set(subjects.tolist())))
    return WearableDataset(
        name="wisdm-watch",
        X=np.concatenate(xs),
        y=np.concatenate(ys),
        subjects=subjects,
        task="classification",
        layout="features",
        rate_hz=None,
        channel_names=feature_names or [],
        class_names=class_names,
        test_subjects=test,
        split_name=split,
        license="CC BY 4.0",
        source="https://archive.ics.uci.edu/dataset/507",
    )


# -- files ----------------------------------------------------------------------------------------
def _activity_key(path: Path) -> tuple[dict[str, int], list[str]]:
    """Letter -> class id and the class names, in letter order (A walking, B jogging, ...)."""
    key = path / "activity_key.txt"
    if not key.is_file():
        raise DataError(f"wisdm-watch: no {key}; it ships with the dataset (UCI id 507) next to arff_files/")
    pairs = []
    for line in key.read_text(encoding="utf-8", errors="replace").splitlines():
        if "=" in line:
            name, letter = (part.strip() for part in line.split("=", 1))
            pairs.append((letter, name))
    if not pairs:
        raise DataError(f"wisdm-watch: {key} has no 'name = LETTER' lines")
    pairs.sort()
    return {letter: i for i, (letter, _) in enumerate(pairs)}, [name for _, name in pairs]


def _arff_files(path: Path, sensor: str) -> list[Path]:
    # Accept the dataset folder or the sensor folder itself.
    for folder in (path / "arff_files" / "watch" / sensor, path / sensor, path):
        files = sorted(folder.glob(f"data_*_{sensor}_watch.arff"))
        if files:
            return files
    raise DataError(
        f"wisdm-watch: no data_*_{sensor}_watch.arff files under {path}/arff_files/watch/{sensor}; "
        "get the dataset from https://archive.ics.uci.edu/dataset/507"
    )


# -- ARFF -----------------------------------------------------------------------------------------
def _attribute_name(line: str, file: Path) -> str:
    rest = line.split(None, 1)[1].strip() if len(line.split(None, 1)) == 2 else ""
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        if end > 0:
            return rest[1:end]
    elif rest:
        return rest.split()[0]
    raise DataError(f"wisdm-watch: {file}: bad attribute line {line.strip()!r}")


def _read_arff(file: Path) -> tuple[list[str], list[list[str]]]:
    """Attribute names and the raw data rows (strings) of a dense ARFF file."""
    names: list[str] = []
    rows: list[list[str]] = []
    in_data = False
    text = file.read_text(encoding="utf-8", errors="replace")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@attribute"):
                names.append(_attribute_name(line, file))
            elif low.startswith("@data"):
                in_data = True
            continue
        if line.startswith("{"):
            raise DataError(f"wisdm-watch: {file} line {lineno} is sparse ARFF, which is not supported")
        values = [v.strip().strip("'\"") for v in line.split(",")]
        if len(values) != len(names):
            raise DataError(
                f"wisdm-watch: {file} line {lineno} has {len(values)} values but {len(names)} attributes; "
                "the file may be truncated"
            )
        rows.append(values)
    if not in_data or not rows:
        raise DataError(f"wisdm-watch: {file} has no @data rows; the file may be truncated")
    return names, rows


def _split_columns(file: Path, names: list[str], rows: list[list[str]]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Features [n, F] (rows with '?' dropped), activity letters and subject ids of one file."""
    if LABEL_ATTR not in names:
        raise DataError(f"wisdm-watch: {file} has no {LABEL_ATTR} attribute")
    li = names.index(LABEL_ATTR)
    si = names.index(SUBJECT_ATTR) if SUBJECT_ATTR in names else None
    fcols = [i for i, n in enumerate(names) if i not in (li, si)]
    kept = [r for r in rows if all(r[i] != "?" for i in fcols)]
    if len(kept) < len(rows):
        warnings.warn(f"wisdm-watch: {file.name}: dropped {len(rows) - len(kept)} rows with missing values",
                      stacklevel=3)
    if not kept:
        raise DataError(f"wisdm-watch: {file} has no complete rows")
    try:
        feats = np.array([[float(r[i]) for i in fcols] for r in kept], dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"wisdm-watch: {file} has a non-numeric feature value ({exc})") from exc
    if si is not None:
        subject = np.array([r[si] for r in kept])
    else:  # no class column: the id in the file name
        match = _FILE_RE.search(file.name)
        subject = np.full(len(kept), match.group("subject") if match else file.stem)
    return feats, [r[li] for r in kept], subject


def _label_ids(file: Path, labels: list[str], letters: dict[str, int]) -> np.ndarray:
    unknown = sorted(set(labels) - set(letters))
    if unknown:
        raise DataError(f"wisdm-watch: {file} has activity codes {unknown} not in activity_key.txt")
    return np.array([letters[a] for a in labels], dtype=np.int64)


def _test_group(subjects: list[str]) -> tuple[list[str] | None, str]:
    present = [s for s in TEST_SUBJECTS if s in subjects]
    if present and len(present) < len(subjects):
        return present, SPLIT_NAME
    if len(subjects) < 2:
        return None, "wisdm-watch: one subject only, no subject-wise test group"
    # Not the published subject set: the same every-4th rule on the subjects that are there.
    chosen = subjects[3::4] or subjects[-1:]
    return chosen, f"wisdm-watch: every 4th subject by id held out ({len(chosen)} of {len(subjects)})"
