"""The data a verb works on: loaded, split, normalised on the training side only; and the seeded
calibration sample that data-driven pruning criteria, layer ranking and int8 calibration read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .dataset import WearableDataset
from .normalize import Normalizer
from .registry import load_dataset
from .split import Split, make_split, split_from_dict


@dataclass
class PreparedData:
    dataset: WearableDataset  # raw, as loaded
    split: Split
    normalizer: Normalizer  # fitted on the training side only
    train: WearableDataset
    val: WearableDataset
    test: WearableDataset
    target_scale: dict | None  # regression: training-target mean/std for the loss


def prepare_data(data: str | WearableDataset, *, data_root=None, data_options: dict | None = None,
                 test_subjects: list[str] | None = None, seed: int = 0, split: str = "subject") -> PreparedData:
    """Load ``data`` (a dataset name, a user file, or a dataset object), split it (``split``:
    subject, predefined or random; see :func:`make_split`) and fit the normaliser on the training side."""
    ds = data if isinstance(data, WearableDataset) else load_dataset(data, data_root, **(data_options or {}))
    chosen = make_split(ds, split, test_subjects=test_subjects, seed=seed)
    _check_training_classes(ds, chosen)
    return _prepared(ds, chosen, Normalizer.fit(ds.X[chosen.train], ds.layout))


def _check_training_classes(ds: WearableDataset, split: Split) -> None:
    # A one-class training side trains a model that can only ever answer that class.
    if ds.task != "classification":
        return
    present = np.unique(ds.y[split.train])
    if len(present) < 2:
        only = int(present[0]) if len(present) else -1
        label = ds.class_names[only] if 0 <= only < len(ds.class_names) else str(only)
        raise DataError(f"{ds.name}: training needs at least two classes; found only {label!r} in the training "
                        f"windows ({split.name}); label more classes or choose other test subjects")


def prepare_from_config(config: dict, data_root=None, data: WearableDataset | None = None) -> PreparedData:
    """Rebuild exactly the data a run was trained on (same split, same normaliser)."""
    d = config["data"]
    if data is not None:
        ds = data
    elif d.get("in_memory"):
        raise ConfigError(f"this run was trained on in-memory data ({d['name']}); pass the dataset as data=")
    else:
        root = data_root if data_root is not None else d.get("root")
        ds = load_dataset(d["name"], root, **d.get("options", {}))
    split = split_from_dict(ds, config["split"], seed=config["train"]["seed"])
    prepared = _prepared(ds, split, Normalizer.from_dict(config["normalizer"]))
    prepared.target_scale = config.get("target_scale")
    return prepared


def _prepared(ds: WearableDataset, split: Split, norm: Normalizer) -> PreparedData:
    parts = [norm.apply(ds.subset(idx)) for idx in (split.train, split.val, split.test)]
    scale = None
    if ds.task == "regression":
        yt = ds.y[split.train]
        scale = {"mean": float(yt.mean()), "std": float(yt.std() or 1.0)}
    return PreparedData(ds, split, norm, *parts, scale)


def calibration_sample(prepared: PreparedData, seed: int = 0, windows: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded sample of (normalised) training windows and their labels, at most ``windows`` long."""
    pick = np.random.default_rng(seed).permutation(len(prepared.train))[:windows]
    return torch.from_numpy(prepared.train.X[pick]), torch.from_numpy(prepared.train.y[pick])


def data_record(ds: WearableDataset) -> dict:
    """How a run finds its data again (``config.json``'s ``data``)."""
    if ds.origin:
        return dict(ds.origin)
    return {"name": ds.name, "root": None, "options": {}, "in_memory": True}
