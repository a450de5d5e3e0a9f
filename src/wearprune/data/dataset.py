"""The one dataset object every task uses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from ..errors import DataError

Task = Literal["classification", "regression"]
Layout = Literal["window", "features", "sequence"]

# X shape by layout: window [N, C, T]; features [N, F]; sequence of epochs [N, S, F].
_NDIM = {"window": 3, "features": 2, "sequence": 3}
SPLIT_SIDES = ("train", "val", "test")


@dataclass
class WearableDataset:
    """Windows (or feature vectors, or epoch sequences) with labels and the subject each came from.

    ``test_subjects`` is the dataset's standard held-out group (e.g. MIT-BIH DS2); ``split_name``
    says what it is, so every table can name its split. ``split_labels`` ([N] of "train", "val",
    "test", or None) is a split side per window given with the data, for ``--split predefined``.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    task: Task
    layout: Layout
    rate_hz: float | None = None
    channel_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    test_subjects: list[str] | None = None
    split_name: str = "subject-wise"
    license: str = ""
    source: str = ""
    # How to load it again ({"name", "root", "options"}), set by load_dataset; lets a run trained on
    # an object reload the same data for evaluation.
    origin: dict | None = None
    split_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        self.subjects = np.asarray(self.subjects).astype(str)
        if self.split_labels is not None:
            self.split_labels = np.asarray(self.split_labels).astype(str)
        if self.task == "classification":
            self.y = np.asarray(self.y).astype(np.int64)
        else:
            self.y = np.asarray(self.y).astype(np.float32)
        self.validate()

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        if self.layout not in _NDIM:
            raise DataError(f"{self.name}: unknown layout {self.layout!r}; use window, features or sequence")
        if self.task not in ("classification", "regression"):
            raise DataError(f"{self.name}: unknown task {self.task!r}; use classification or regression")
        if self.X.ndim != _NDIM[self.layout]:
            raise DataError(
                f"{self.name}: X has shape {self.X.shape} but layout {self.layout!r} needs "
                f"{_NDIM[self.layout]} dimensions"
            )
        n = len(self.X)
        if n == 0:
            raise DataError(f"{self.name}: no windows were produced; check the recording length and window size")
        if self.y.shape != (n,) or self.subjects.shape != (n,):
            raise DataError(
                f"{self.name}: {n} windows but {self.y.shape[0] if self.y.ndim else 0} labels and "
                f"{self.subjects.shape[0]} subject ids; each window needs one label and one subject"
            )
        if not np.isfinite(self.X).all():
            bad = int((~np.isfinite(self.X)).any(axis=tuple(range(1, self.X.ndim))).sum())
            raise DataError(f"{self.name}: {bad} windows contain NaN or inf; clean or drop them first")
        if self.task == "classification":
            k = len(self.class_names)
            if k and (self.y.min() < 0 or self.y.max() >= k):
                raise DataError(f"{self.name}: labels must be class ids 0..{k - 1}")
        elif not np.isfinite(self.y).all():
            raise DataError(f"{self.name}: regression targets contain NaN or inf")
        if self.split_labels is not None:
            if self.split_labels.shape != (n,):
                raise DataError(f"{self.name}: {n} windows but split labels of shape {self.split_labels.shape}; "
                                "give one of train/val/test per window")
            wrong = sorted(set(np.unique(self.split_labels).tolist()) - set(SPLIT_SIDES))
            if wrong:
                raise DataError(f"{self.name}: split labels {wrong[:5]} are not train, val or test")

    # -- shape facts used by the model zoo ------------------------------------------------------
    @property
    def n_classes(self) -> int:
        if self.task != "classification":
            return 0
        return len(self.class_names) or int(self.y.max()) + 1

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, without the batch dimension."""
        return tuple(int(s) for s in self.X.shape[1:])

    def spec(self) -> dict:
        """What a model needs to know to be built for this data (plain JSON)."""
        return {
            "layout": self.layout,
            "task": self.task,
            "input_shape": list(self.input_shape),
            "n_outputs": self.n_outputs,
            "rate_hz": self.rate_hz,
            "channel_names": list(self.channel_names),
            "class_names": list(self.class_names),
        }

    def subset(self, index: np.ndarray) -> WearableDataset:
        index = np.asarray(index)
        sides = None if self.split_labels is None else self.split_labels[index]
        return replace(self, X=self.X[index], y=self.y[index], subjects=self.subjects[index], split_labels=sides)

    def __len__(self) -> int:
        return len(self.X)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "layout": self.layout,
            "windows": len(self),
            "shape": list(self.input_shape),
            "subjects": int(len(np.unique(self.subjects))),
            "classes": self.n_classes,
            "rate_hz": self.rate_hz,
            "split": self.split_name,
        }
