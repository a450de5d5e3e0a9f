"""TROIKA / IEEE SP Cup 2015 wrist PPG heart-rate data, read from the original .mat files.

``DATA_xx_TYPEyy.mat`` holds ``sig`` (6 x N at 125 Hz: ECG, PPG1, PPG2, acc x/y/z) and
``REF_xx_TYPEyy.mat`` holds ``BPM0``, the ECG-derived heart rate of each 8 s window taken every
2 s. Each window of the wrist channels (not the chest ECG) is one regression example.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io
from scipy.signal import resample_poly

from ...errors import ConfigError, DataError
from ..dataset import WearableDataset
from ..windowing import positive_number, resample_ratio

FS = 125.0
WINDOW_S, STEP_S = 8.0, 2.0  # fixed by the reference BPM0 traces
CHANNELS = ["ppg1", "ppg2", "acc_x", "acc_y", "acc_z"]
ROWS = [1, 2, 3, 4, 5]  # row 0 is the chest ECG the reference was derived from: not a wrist signal
LICENSE = "research use only, with citation (IEEE SP Cup 2015; Zhang et al. 2015)"
SOURCE = "https://sites.google.com/site/researchbyzhang/ieeespcup2015 (TROIKA, IEEE SP Cup 2015)"
FOLDERS = ("training_data", "test_data")

# Leave-subjects-out: 09 is the recording the staged release puts in test_data/; of all pairs to add,
# 05 and 06 bring the test mean BPM closest to the train mean (133.1 vs 133.4), 24% of windows.
TEST_SUBJECTS = ["05", "06", "09"]
SPLIT_NAME = f"leave-subjects-out (TROIKA test subjects: {', '.join(TEST_SUBJECTS)})"

_NAME = re.compile(r"^DATA_(\d+)_(TYPE\d+)$")


def load_troika(path: Path, *, rate_hz: float | None = 25.0) -> WearableDataset:
    """8 s windows [N, 5, 8*rate_hz] every 2 s, with the reference heart rate (BPM) as target."""
    path = Path(path)
    rate = FS if rate_hz is None else positive_number(rate_hz, "troika: rate_hz (None for the native 125 Hz)")
    up, down = _resample_ratio(rate)
    window, step = _samples(WINDOW_S, rate), _samples(STEP_S, rate)
    xs, ys, subjects = [], [], []
    for data_file in _data_files(path):
        signal = _signal(data_file)
        if (up, down) != (1, 1):
            signal = resample_poly(signal, up, down, axis=1)
        bpm = _reference(data_file)
        n = min(len(bpm), _fits(signal.shape[1], window, step))
        if n == 0:
            continue
        starts = np.arange(n) * step
        xs.append(signal[:, starts[:, None] + np.arange(window)[None, :]].transpose(1, 0, 2))
        ys.append(bpm[:n])
        subjects.append(np.full(n, _NAME.match(data_file.stem).group(1)))
    if not xs:
        raise DataError(f"troika: no recording in {path} is long enough for one 8 s window")
    return WearableDataset(
        name="troika",
        X=np.concatenate(xs),
        y=np.concatenate(ys),
        subjects=np.concatenate(subjects),
        task="regression",
        layout="window",
        rate_hz=rate,
        channel_names=list(CHANNELS),
        test_subjects=list(TEST_SUBJECTS),
        split_name=SPLIT_NAME,
        license=LICENSE,
        source=SOURCE,
    )


def _resample_ratio(rate: float) -> tuple[int, int]:
    return resample_ratio(rate, FS, "troika (None for the native 125 Hz)")


def _samples(seconds: float, rate: float) -> int:
    n = seconds * rate
    if abs(n - round(n)) > 1e-6:
        # windows must line up with the 2 s reference grid exactly, or labels drift off their windows
        raise ConfigError(f"troika: rate_hz={rate} gives {n} samples per {seconds} s; use a rate with 2*rate whole")
    return int(round(n))


def _fits(n_samples: int, window: int, step: int) -> int:
    return 0 if window > n_samples else (n_samples - window) // step + 1


def _data_files(path: Path) -> list[Path]:
    where = f"get the data from {SOURCE} and put training_data/ and test_data/ there"
    if not path.is_dir():
        raise DataError(f"troika: no folder {path}; {where}")
    found = [f for sub in FOLDERS if (path / sub).is_dir() for f in (path / sub).glob("DATA_*.mat")]
    files = sorted((f for f in found if _NAME.match(f.stem)), key=lambda f: f.name)  # by subject, then type
    if not files:
        raise DataError(f"troika: no DATA_xx_TYPEyy.mat files under {path}/training_data or test_data; {where}")
    return files


def _load(file: Path, key: str) -> np.ndarray:
    try:
        content = scipy.io.loadmat(file, variable_names=[key])
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, struct errors...: all mean "damaged"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"troika: cannot read {file} ({msg}); the file is damaged or not a MATLAB file") from None
    if key not in content:
        raise DataError(f"troika: {file} has no variable {key!r}")
    value = np.asarray(content[key])
    if not np.issubdtype(value.dtype, np.number):
        raise DataError(f"troika: {file}: {key!r} is not numeric ({value.dtype})")
    return value.astype(np.float64)


def _signal(file: Path) -> np.ndarray:
    """The five wrist channels [5, N] of one recording."""
    sig = _load(file, "sig")
    if sig.ndim != 2 or sig.shape[0] != 6:
        raise DataError(f"troika: {file}: 'sig' has shape {sig.shape}; expected 6 x samples (ECG, 2 PPG, 3 acc)")
    sig = sig[ROWS]
    if not np.isfinite(sig).all():
        raise DataError(f"troika: {file}: 'sig' contains NaN or inf samples")
    return sig


def _reference(data_file: Path) -> np.ndarray:
    """BPM0 of the matching REF_xx_TYPEyy.mat, as a 1-D array."""
    ref = data_file.with_name("REF_" + data_file.name[len("DATA_"):])
    if not ref.is_file():
        raise DataError(f"troika: {data_file} has no reference file {ref.name} next to it")
    bpm = _load(ref, "BPM0")
    if bpm.ndim > 2 or (bpm.ndim == 2 and min(bpm.shape) != 1) or bpm.size == 0:
        raise DataError(f"troika: {ref}: 'BPM0' has shape {bpm.shape}; expected one BPM per window")
    bpm = bpm.reshape(-1)
    if not np.isfinite(bpm).all():
        raise DataError(f"troika: {ref}: 'BPM0' contains NaN or inf")
    return bpm
