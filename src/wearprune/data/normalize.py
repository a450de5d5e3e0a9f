"""Normalisation fitted on training windows only, stored as plain numbers in the run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import WearableDataset


@dataclass
class Normalizer:
    """Per-channel (windows) or per-feature (features, sequences) standardisation."""

    mean: np.ndarray
    std: np.ndarray
    layout: str

    @classmethod
    def fit(cls, X: np.ndarray, layout: str) -> Normalizer:
        axes = _reduce_axes(layout)
        mean = X.mean(axis=axes, dtype=np.float64)
        std = X.std(axis=axes, dtype=np.float64)
        # Constant channels (e.g. a stuck sensor) would divide by zero; leave them unscaled.
        std = np.where(std < 1e-8, 1.0, std)
        return cls(mean.astype(np.float32), std.astype(np.float32), layout)

    def transform(self, X: np.ndarray) -> np.ndarray:
        shape = _broadcast_shape(self.layout, len(self.mean))
        return ((X - self.mean.reshape(shape)) / self.std.reshape(shape)).astype(np.float32)

    def apply(self, ds: WearableDataset) -> WearableDataset:
        out = ds.subset(np.arange(len(ds)))
        out.X = self.transform(ds.X)
        return out

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "layout": self.layout}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32), d["layout"])


def _reduce_axes(layout: str) -> tuple[int, ...]:
    # window [N, C, T]: per channel; features [N, F]: per feature; sequence [N, S, F]: per feature.
    return {"window": (0, 2), "features": (0,), "sequence": (0, 1)}[layout]


def _broadcast_shape(layout: str, n: int) -> tuple[int, ...]:
    return {"window": (1, n, 1), "features": (1, n), "sequence": (1, 1, n)}[layout]
