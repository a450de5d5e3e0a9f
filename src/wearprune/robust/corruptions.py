"""Wearable signal corruptions: pure functions on raw [N, C, T] windows (before normalisation), each
graded by one physical parameter over five severities; severity 0 is the identity.

| name | parameter (severity 1..5) | what it models |
|---|---|---|
| noise | SNR 30, 20, 10, 5, 0 dB (Gaussian, per channel) | sensor and ADC noise, sweat |
| wander | 0.25, 0.5, 1, 2, 4 x the channel's std, 0.05-0.5 Hz | baseline wander, motion artefacts (PPG, ECG) |
| gain | drift to 1.05, 1.1, 1.2, 1.35, 1.5 x over the window | sensor gain drift, strap pressure |
| offset | drift to 0.25, 0.5, 1, 2, 3 x std over the window | offset (bias) drift, temperature |
| rotation | 5, 15, 30, 60, 90 degrees about a random axis | strap placement (every x/y/z triple) |
| dead | one random channel flat for the last 20, 40, 60, 80, 100 % | a dead or disconnected channel |
| resample | clock off by 1, 2, 5, 10, 20 % | sampling-rate jitter / resampling |
| clip | at mean +- 3, 2, 1.5, 1, 0.5 x std | ADC saturation |
| gaps | 5, 10, 20, 30, 50 % lost in 0.25 s packets (held) | radio packet loss |

``wander`` applies to physiological channels (PPG, ECG, EEG by name) and ``rotation`` to x/y/z
triples; on data without them they are not applicable (:func:`applicable`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

SEVERITIES = 5
_PHYSIO = re.compile(r"ppg|ecg|eeg|mlii|^v\d|lead|bvp", re.IGNORECASE)


@dataclass(frozen=True)
class Corruption:
    name: str
    parameter: str  # what the levels measure
    levels: tuple[float, ...]  # the parameter at severity 1..5 (severity 0: the identity)
    fn: Callable[..., np.ndarray]  # (X, value, rng, channels, rate_hz) -> X'
    applies_to: str = "all"  # all | physio | triples


def _channel_std(x: np.ndarray) -> np.ndarray:
    return x.std(axis=2, keepdims=True) + 1e-8


def _noise(x, snr_db, rng, channels, rate):
    power = x.var(axis=2, keepdims=True)
    sigma = np.sqrt(power / 10 ** (snr_db / 10))
    out = x.copy()
    out[:, channels] += (sigma * rng.standard_normal(x.shape))[:, channels]
    return out


def _wander(x, amplitude, rng, channels, rate):
    n, _, t = x.shape
    time = np.arange(t) / rate
    freq = rng.uniform(0.05, 0.5, size=(n, 1, 1))
    phase = rng.uniform(0, 2 * math.pi, size=(n, 1, 1))
    drift = np.sin(2 * math.pi * freq * time[None, None, :] + phase)
    out = x.copy()
    out[:, channels] += (amplitude * _channel_std(x) * drift)[:, channels]
    return out


def _gain(x, factor, rng, channels, rate):
    ramp = np.linspace(1.0, factor, x.shape[2])
    out = x.copy()
    out[:, channels] = x[:, channels] * ramp
    return out


def _offset(x, amount, rng, channels, rate):
    ramp = np.linspace(0.0, 1.0, x.shape[2])
    out = x.copy()
    out[:, channels] = x[:, channels] + (amount * _channel_std(x))[:, channels] * ramp
    return out


def _rotation(x, degrees, rng, channels, rate):
    import torch

    from ..data.augment import rotation_matrices

    out = x.copy()
    for start in channels:
        axis = torch.from_numpy(rng.standard_normal((len(x), 3)))
        rot = rotation_matrices(axis, torch.full((len(x),), math.radians(degrees), dtype=torch.float64)).numpy()
        out[:, start:start + 3] = np.einsum("nij,njt->nit", rot, x[:, start:start + 3].astype(np.float64))
    return out


def _dead(x, share, rng, channels, rate):
    n, _, t = x.shape
    out = x.copy()
    start = t - int(round(share * t))
    pick = rng.choice(channels, size=n)
    for i, c in enumerate(pick):
        out[i, c, start:] = 0.0  # a disconnected sensor reads zero
    return out


def _resample(x, error, rng, channels, rate):
    # the device's clock runs (1 + error) fast: the window holds a stretched copy of the signal
    _, _, t = x.shape
    source = np.arange(t) / (1.0 + error)
    out = x.copy()
    for c in channels:
        out[:, c] = np.stack([np.interp(source, np.arange(t), row) for row in x[:, c]])
    return out


def _clip(x, k, rng, channels, rate):
    mean, std = x.mean(axis=2, keepdims=True), _channel_std(x)
    out = x.copy()
    out[:, channels] = np.clip(x, mean - k * std, mean + k * std)[:, channels]
    return out


def _gaps(x, share, rng, channels, rate):
    n, _, t = x.shape
    packet = max(1, int(round(0.25 * rate)))
    n_packets = math.ceil(t / packet)
    lost_n = int(round(share * n_packets))
    out = x.copy()
    for i in range(n):
        lost = np.sort(rng.permutation(n_packets)[:lost_n])  # a larger share loses the same packets and more
        for p in lost:
            a, b = p * packet, min(t, (p + 1) * packet)
            hold = out[i, channels, a - 1] if a > 0 else np.zeros(len(channels), x.dtype)
            out[i, channels, a:b] = hold[:, None]  # firmware holds the last sample it received
    return out


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in [
    Corruption("noise", "SNR (dB)", (30, 20, 10, 5, 0), _noise),
    Corruption("wander", "amplitude (x channel std)", (0.25, 0.5, 1, 2, 4), _wander, "physio"),
    Corruption("gain", "gain at the window's end", (1.05, 1.1, 1.2, 1.35, 1.5), _gain),
    Corruption("offset", "offset at the window's end (x std)", (0.25, 0.5, 1, 2, 3), _offset),
    Corruption("rotation", "angle (degrees)", (5, 15, 30, 60, 90), _rotation, "triples"),
    Corruption("dead", "share of the window one channel is flat", (0.2, 0.4, 0.6, 0.8, 1.0), _dead),
    Corruption("resample", "clock error", (0.01, 0.02, 0.05, 0.1, 0.2), _resample),
    Corruption("clip", "clip at mean +- k std", (3, 2, 1.5, 1, 0.5), _clip),
    Corruption("gaps", "share of 0.25 s packets lost", (0.05, 0.1, 0.2, 0.3, 0.5), _gaps),
]}


def target_channels(corruption: Corruption, channel_names: list[str], n_channels: int) -> list[int]:
    """The channels a corruption touches (for rotation: each x/y/z triple's first channel)."""
    if corruption.applies_to == "triples":
        from ..data.augment import axis_triples

        return axis_triples(channel_names)
    if corruption.applies_to == "physio":
        return [i for i, n in enumerate(channel_names) if _PHYSIO.search(str(n))]
    return list(range(n_channels))


def applicable(name: str, channel_names: list[str], n_channels: int) -> bool:
    return bool(target_channels(get(name), channel_names, n_channels))


def get(name: str) -> Corruption:
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def corrupt(x: np.ndarray, name: str, severity: int, *, rate_hz: float, channel_names: list[str] | None = None,
            seed: int = 0) -> np.ndarray:
    """``x`` [N, C, T] (raw units) corrupted by ``name`` at ``severity`` 0..5 (0: returned unchanged)."""
    c = get(name)
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 0 <= severity <= SEVERITIES:
        raise ConfigError(f"severity must be a whole number 0..{SEVERITIES}, got {severity!r}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise ConfigError(f"corruptions take raw signal windows [N, C, T]; got an array of shape {x.shape}")
    if severity == 0:
        return x.copy()
    return apply(x, c, c.levels[severity - 1], rate_hz=rate_hz, channel_names=channel_names, seed=seed)


def apply(x: np.ndarray, c: Corruption, value: float, *, rate_hz: float, channel_names: list[str] | None = None,
          seed: int = 0) -> np.ndarray:
    """``x`` corrupted by ``c`` at parameter ``value`` (any value, for curves finer than the five levels)."""
    names = list(channel_names or [f"ch{i}" for i in range(x.shape[1])])
    channels = target_channels(c, names, x.shape[1])
    if not channels:
        return x.copy()
    rng = np.random.default_rng(seed)
    return c.fn(np.asarray(x, dtype=np.float32), value, rng, channels, float(rate_hz)).astype(np.float32)
