"""MIT-BIH Arrhythmia Database, read from the original WFDB files (.hea, .dat, .atr) with ``wfdb``.

Each labelled beat becomes one window centred on its annotation: both leads (MLII first),
high-passed to remove baseline wander and resampled, plus optional RR-interval channels. Beats
are grouped into the AAMI classes N/S/V/F/Q and split inter-patient by de Chazal's DS1/DS2.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import butter, resample_poly, sosfiltfilt

from ...errors import ConfigError, DataError
from ..dataset import WearableDataset
from ..windowing import resample_ratio

FS = 360.0  # every MIT-BIH record is sampled at 360 Hz
LICENSE = "ODC-By 1.0 (PhysioNet)"
SOURCE = "https://physionet.org/content/mitdb/1.0.0/"

CLASSES = ["N", "S", "V", "F", "Q"]
AAMI = {
    **dict.fromkeys("NLRej", 0),
    **dict.fromkeys("AaJS", 1),
    **dict.fromkeys("VE", 2),
    "F": 3,
    **dict.fromkeys("/fQ", 4),
}

# de Chazal, O'Dwyer & Reilly 2004; the paced records 102, 104, 107 and 217 are in neither set.
DS1 = ["101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201", "203",
       "205", "207", "208", "209", "215", "220", "223", "230"]
DS2 = ["100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212", "213", "214",
       "219", "221", "222", "228", "231", "232", "233", "234"]
SPLIT_NAME = "inter-patient DS1/DS2 (de Chazal 2004)"

RR_CHANNELS = ["pre_rr", "post_rr", "rr_ratio"]
RR_CLIP = np.array([3.0, 3.0, 4.0], dtype=np.float32)  # seconds, seconds, ratio
LOCAL_BEATS = 10  # RR intervals averaged for the patient-normalised rhythm feature


def load_mitdb(
    path: Path,
    *,
    rate_hz: float = 180.0,
    window: int = 128,
    rr_channels: bool = True,
    highpass_hz: float = 0.5,
) -> WearableDataset:
    """Beat-centred windows [N, 2(+3), window] from the 44 DS1/DS2 records, AAMI labels."""
    path = Path(path)
    up, down = _resample_ratio(rate_hz)
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 2:
        raise ConfigError(f"mitdb: window must be a whole number of at least 2 samples (got {window!r})")
    if highpass_hz and not 0 < highpass_hz < FS / 2:
        raise ConfigError(f"mitdb: highpass_hz must be between 0 and {FS / 2} Hz (got {highpass_hz})")
    records = _records(path)
    parts = [_record_beats(path, rec, up, down, window, rr_channels, highpass_hz) for rec in records]
    parts = [p for p in parts if p is not None]
    if not parts:
        raise DataError(
            f"mitdb: no beat annotation in {path} leaves room for a {window}-sample window; "
            "use a shorter window"
        )
    X, y, subjects = (np.concatenate(a) for a in zip(*parts))
    return WearableDataset(
        name="mitdb",
        X=X,
        y=y,
        subjects=subjects,
        task="classification",
        layout="window",
        rate_hz=float(rate_hz),
        channel_names=["MLII", "V1/other"] + (RR_CHANNELS if rr_channels else []),
        class_names=list(CLASSES),
        test_subjects=list(DS2),
        split_name=SPLIT_NAME,
        license=LICENSE,
        source=SOURCE,
    )


def _resample_ratio(rate_hz: float) -> tuple[int, int]:
    return resample_ratio(rate_hz, FS, "mitdb")


def _records(path: Path) -> list[str]:
    """The DS1/DS2 records to read; a record that is only partly on disk is an error, not a skip."""
    if not path.is_dir():
        raise DataError(f"mitdb: no folder {path}; get the MIT-BIH records from {SOURCE} and put them there")
    listed = path / "RECORDS"
    if listed.is_file():  # the full release lists its records: every DS1/DS2 one must then be there
        names = set(listed.read_text(errors="replace").split())
        wanted = [r for r in DS1 + DS2 if r in names]
    else:
        wanted = [r for r in DS1 + DS2 if any((path / f"{r}{ext}").exists() for ext in (".hea", ".dat", ".atr"))]
    if not wanted:
        raise DataError(
            f"mitdb: no DS1/DS2 records (e.g. 100.hea/.dat/.atr) in {path}; "
            f"get the MIT-BIH records from {SOURCE} and put them there"
        )
    for rec in wanted:
        missing = [f"{rec}{ext}" for ext in (".hea", ".dat", ".atr") if not (path / f"{rec}{ext}").is_file()]
        if missing:
            raise DataError(f"mitdb: record {rec} is incomplete in {path}: missing {', '.join(missing)}")
    return wanted


def _read(path: Path, rec: str) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """Signal [T, leads] in mV, lead names, beat sample indices and symbols."""
    try:
        record = wfdb.rdrecord(str(path / rec))
        ann = wfdb.rdann(str(path / rec), "atr")
    except Exception as exc:  # wfdb raises ValueError, IndexError, its own syntax errors...: all mean "damaged"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"mitdb: record {rec} in {path} is unreadable ({msg}); re-download it") from None
    signal = record.p_signal
    if signal is None or signal.ndim != 2 or signal.shape[1] < 2:
        raise DataError(f"mitdb: record {rec} in {path} does not hold two leads")
    if record.fs != FS:
        raise DataError(f"mitdb: record {rec} is sampled at {record.fs} Hz; MIT-BIH records are 360 Hz")
    if not np.isfinite(signal).all():
        raise DataError(f"mitdb: record {rec} in {path} contains NaN or inf samples")
    return signal, list(record.sig_name), np.asarray(ann.sample), list(ann.symbol)


def _lead_order(names: list[str], rec: str) -> list[int]:
    """MLII first, then the other lead (record 114 stores them the other way round)."""
    if "MLII" not in names:
        raise DataError(f"mitdb: record {rec} has no MLII lead (leads: {', '.join(names)})")
    first = names.index("MLII")
    return [first] + [i for i in range(len(names)) if i != first][:1]


def _record_beats(
    path: Path, rec: str, up: int, down: int, window: int, rr_channels: bool, highpass_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    signal, names, samples, symbols = _read(path, rec)
    signal = signal[:, _lead_order(names, rec)]
    if highpass_hz:
        # zero-phase, so the beat stays centred; second-order sections stay stable at 0.5 / 360 Hz
        sos = butter(2, highpass_hz, btype="highpass", fs=FS, output="sos")
        signal = sosfiltfilt(sos, signal, axis=0)
    if (up, down) != (1, 1):
        signal = resample_poly(signal, up, down, axis=0)
    signal = signal.astype(np.float32)

    is_beat = np.array([s in AAMI for s in symbols], dtype=bool)
    beats, labels = samples[is_beat], np.array([AAMI[s] for s, b in zip(symbols, is_beat) if b])
    if len(beats) < 3:
        return None
    # RR features need both neighbours, so the first and last beat are dropped with or without them
    # (keeping the beat set identical between runs that do and do not use RR channels).
    keep = np.arange(1, len(beats) - 1)
    centre = np.round(beats[keep] * up / down).astype(np.int64)
    start = centre - window // 2
    fits = (start >= 0) & (start + window <= len(signal))
    keep, start = keep[fits], start[fits]
    if not len(keep):
        return None
    X = signal[start[:, None] + np.arange(window)[None, :]].transpose(0, 2, 1)  # [n, leads, window]
    if rr_channels:
        # Clip: a pause of minutes (record 207's flutter episode, ~100 s) would dominate the normaliser.
        rr = np.minimum(rr_features(beats)[keep - 1], RR_CLIP)  # rr_features rows start at beat 1
        X = np.concatenate([X, np.repeat(rr[:, :, None], window, axis=2)], axis=1)
    return np.ascontiguousarray(X, dtype=np.float32), labels[keep], np.full(len(keep), rec)


def rr_features(beats: np.ndarray, fs: float = FS) -> np.ndarray:
    """[pre-RR s, post-RR s, pre-RR / mean of the preceding RRs] for beats 1..n-2 (float32).

    The ratio divides by the mean of up to LOCAL_BEATS intervals *before* the pre-RR, so a
    premature beat stands out against that patient's own recent rhythm (1.0 where none precede).
    """
    rr = np.diff(np.asarray(beats, dtype=np.float64)) / fs  # rr[k]: beat k -> beat k+1
    i = np.arange(1, len(beats) - 1)
    pre, post = rr[i - 1], rr[i]
    cum = np.concatenate([[0.0], np.cumsum(rr)])
    lo, hi = np.maximum(0, i - 1 - LOCAL_BEATS), i - 1
    count = hi - lo
    local = np.where(count > 0, (cum[hi] - cum[lo]) / np.maximum(count, 1), pre)
    ratio = pre / np.maximum(local, 1e-6)
    return np.stack([pre, post, ratio], axis=1).astype(np.float32)
