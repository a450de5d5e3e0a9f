"""Wearable datasets: one object for every task, loaders for the original formats, splits."""

from .dataset import WearableDataset
from .registry import DATASETS, data_root, is_present, load_dataset
from .split import SPLIT_MODES, Split, make_split, split_from_dict, subject_split

__all__ = ["WearableDataset", "DATASETS", "SPLIT_MODES", "Split", "data_root", "is_present", "load_dataset",
           "make_split", "split_from_dict", "subject_split"]
