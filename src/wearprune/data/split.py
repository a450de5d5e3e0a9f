"""Subject-wise splits: no person's windows are ever on both sides of a split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .dataset import WearableDataset


@dataclass
class Split:
    train: np.ndarray  # indices into the dataset
    val: np.ndarray
    test: np.ndarray
    name: str  # says which split, for every table
    test_subjects: list[str]
    val_subjects: list[str]

    def to_dict(self) -> dict:
        return {"name": self.name, "test_subjects": self.test_subjects, "val_subjects": self.val_subjects,
                "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)}}


def subject_split(
    ds: WearableDataset,
    *,
    test_subjects: list[str] | None = None,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    seed: int = 0,
) -> Split:
    """Split into train / validation / test by subject.

    The test group is the dataset's standard one unless given; otherwise a seeded draw of
    ``test_fraction`` of the subjects. Validation subjects are drawn from the training subjects.
    A dataset with a single training subject (BasicMotions publishes no subject ids) falls back to
    a stratified window split for validation, and the split name says so.
    """
    subjects = np.unique(ds.subjects)
    rng = np.random.default_rng(seed)
    name = ds.split_name
    if test_subjects is None:
        test_subjects = ds.test_subjects
    if test_subjects is None:
        if len(subjects) < 2:
            raise DataError(f"{ds.name}: only one subject; a subject-wise test split needs at least two")
        k = max(1, round(test_fraction * len(subjects)))
        test_subjects = sorted(rng.choice(subjects, size=k, replace=False).tolist())
        name = f"subject-wise, seed {seed}: {k} of {len(subjects)} subjects held out"
    test_subjects = [str(s) for s in test_subjects]
    unknown = sorted(set(test_subjects) - set(subjects))
    if unknown:
        raise DataError(f"{ds.name}: test subjects {unknown} are not in the data; known: {subjects.tolist()}")
    is_test = np.isin(ds.subjects, test_subjects)
    train_pool = np.flatnonzero(~is_test)
    if len(train_pool) == 0:
        raise DataError(f"{ds.name}: every subject is in the test group; leave some for training")
    pool_subjects = np.unique(ds.subjects[train_pool])
    if len(pool_subjects) >= 3:
        k = max(1, round(val_fraction * len(pool_subjects)))
        val_subjects = sorted(rng.choice(pool_subjects, size=k, replace=False).tolist())
        is_val = np.isin(ds.subjects[train_pool], val_subjects)
        val, train = train_pool[is_val], train_pool[~is_val]
    else:
        val_subjects = []
        val, train = _stratified_holdout(ds, train_pool, val_fraction, rng)
        name += "; validation: windows of the training subjects"
    return Split(train=train, val=val, test=np.flatnonzero(is_test), name=name,
                 test_subjects=test_subjects, val_subjects=val_subjects)


def _stratified_holdout(ds, pool, fraction, rng) -> tuple[np.ndarray, np.ndarray]:
    if ds.task != "classification":
        perm = rng.permutation(pool)
        k = max(1, round(fraction * len(pool)))
        return np.sort(perm[:k]), np.sort(perm[k:])
    val = []
    for c in np.unique(ds.y[pool]):
        members = rng.permutation(pool[ds.y[pool] == c])
        val.extend(members[: max(1, round(fraction * len(members)))] if len(members) > 1 else [])
    val = np.sort(np.asarray(val, dtype=np.int64))
    return val, np.setdiff1d(pool, val)
