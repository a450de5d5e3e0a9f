"""Cutting continuous recordings into fixed-length windows."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def sliding_windows(signal: np.ndarray, window: int, step: int, *, what: str = "recording") -> np.ndarray:
    """Cut a [C, T] signal into [N, C, window] overlapping windows (a view-free copy).

    Raises DataError when the window is longer than the recording, so callers never get an
    empty dataset silently.
    """
    signal = np.asarray(signal)
    if signal.ndim != 2:
        raise DataError(f"{what}: expected a [channels, samples] signal, got shape {signal.shape}")
    if window <= 0 or step <= 0:
        raise DataError(f"{what}: window and step must be positive (got {window} and {step} samples)")
    t = signal.shape[1]
    if window > t:
        raise DataError(
            f"{what}: window of {window} samples is longer than the recording ({t} samples); "
            "use a shorter window"
        )
    starts = np.arange(0, t - window + 1, step)
    idx = starts[:, None] + np.arange(window)[None, :]
    return np.ascontiguousarray(signal[:, idx].transpose(1, 0, 2))


def window_count(n_samples: int, window: int, step: int) -> int:
    return 0 if window > n_samples else (n_samples - window) // step + 1
