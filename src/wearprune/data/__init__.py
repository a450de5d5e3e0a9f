"""Wearable datasets: one object for every task, loaders for the original formats, splits."""

from .dataset import WearableDataset
from .registry import DATASETS, data_root, is_present, load_dataset

__all__ = ["WearableDataset", "DATASETS", "data_root", "is_present", "load_dataset"]
