"""Cutting continuous recordings into fixed-length windows."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from ..errors import ConfigError, DataError


def positive_number(value, what: str, *, error: type[Exception] = ConfigError) -> float:
    """``value`` as a float, or one error line when it is not a finite number above zero.

    inf, nan, 1e308-sized products and text all reach ``int(round(...))`` sooner or later, where
    they turn into an OverflowError or ValueError traceback instead of a message.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{what} must be a number above 0, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise error(f"{what} must be a finite number above 0, got {number!r}")
    return number


def resample_ratio(rate_hz, native_hz: float, what: str) -> tuple[int, int]:
    """(up, down) to resample ``native_hz`` to ``rate_hz``: a finite rate between 1/1000 of the native
    rate and 10x it (beyond that polyphase resampling needs absurd filters, or rounds to nothing)."""
    rate = positive_number(rate_hz, f"{what}: rate_hz")
    if not native_hz / 1000 <= rate <= 10 * native_hz:
        raise ConfigError(f"{what}: rate_hz must be between {native_hz / 1000:g} and {10 * native_hz:g} Hz "
                          f"(the recordings are at {native_hz:g} Hz), got {rate:g}")
    ratio = Fraction(rate / native_hz).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


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
