"""The data a verb works on: loaded, split, normalised on the training side only; and the seeded
calibration sample that data-driven pruning criteria, layer ranking and int8 calibration read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .dataset import WearableDataset
from .normalize import Normalizer
from .registry import load_dataset
from .split import Split, subject_split


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
                 test_subjects: list[str] | None = None, seed: int = 0) -> PreparedData:
    """Load ``data`` (a dataset name, a user file, or a dataset object), split it by subject and
    fit the normaliser on the training subjects."""
    ds = data if isinstance(data, WearableDataset) else load_dataset(data, data_root, **(data_options or {}))
    split = subject_split(ds, test_subjects=test_subjects, seed=seed)
    return _prepared(ds, split, Normalizer.fit(ds.X[split.train], ds.layout))


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
    split = subject_split(ds, test_subjects=config["split"]["test_subjects"], seed=config["train"]["seed"])
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
