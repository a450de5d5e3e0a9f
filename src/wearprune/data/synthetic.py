"""Synthetic wearable-like data for tests of mechanics only, never for accuracy claims."""

from __future__ import annotations

import numpy as np

from .dataset import WearableDataset


def make_synthetic(
    *,
    layout: str = "window",
    task: str = "classification",
    n_subjects: int = 6,
    per_subject: int = 20,
    n_classes: int = 3,
    channels: int = 3,
    length: int = 64,
    seed: int = 0,
) -> WearableDataset:
    """Each class is a sine of its own frequency plus noise, so a model can learn it quickly."""
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    y = rng.integers(0, n_classes, size=n)
    subjects = np.repeat([f"s{i}" for i in range(n_subjects)], per_subject)
    t = np.arange(length) / length
    freq = 1.0 + 2.0 * y[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n, channels, 1))
    X = np.sin(2 * np.pi * freq * t[None, None, :] + phase) + 0.3 * rng.standard_normal((n, channels, length))
    if layout == "features":
        X = np.concatenate([X.mean(-1), X.std(-1), np.abs(np.diff(X, axis=-1)).mean(-1)], axis=1)
    elif layout == "sequence":
        X = X.transpose(0, 2, 1)[:, :9, :]  # [N, S=9, F=channels]
    target = y.astype(np.float32) * 10 + 60 if task == "regression" else y
    return WearableDataset(
        name="synthetic", X=X.astype(np.float32), y=target, subjects=subjects, task=task, layout=layout,
        rate_hz=float(length) if layout == "window" else None,
        channel_names=[f"ch{i}" for i in range(X.shape[1 if layout != "sequence" else 2])],
        class_names=[f"class{i}" for i in range(n_classes)] if task == "classification" else [],
        test_subjects=[f"s{n_subjects - 1}"], split_name="synthetic (tests only)",
    )
