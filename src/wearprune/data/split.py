"""Train / validation / test splits.

Three modes (``make_split(ds, how)``):
  * ``subject`` (default): by subject, so no person's windows are ever on both sides of a split;
  * ``predefined``: the sides the data carry per window (``ds.split_labels``: a CSV/Parquet
    ``split`` column or an NPZ ``split`` array), or else the dataset's standard test group;
  * ``random``: windows drawn at random, stratified by class; the same person (and overlapping
    windows) can then be on both sides, so the test score is optimistic and the Split says so.

A split is rebuilt from its ``to_dict()`` (a run's ``config.json``) with :func:`split_from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import WearableDataset

SPLIT_MODES = ("subject", "predefined", "random")
TEST_FRACTION = 0.25
VAL_FRACTION = 0.15
RANDOM_WARNING = ("random split: windows of the same person (and overlapping windows) can be on both sides of "
                  "the split, so the test score is optimistic; use --split subject when the data name subjects")


@dataclass
class Split:
    train: np.ndarray  # indices into the dataset
    val: np.ndarray
    test: np.ndarray
    name: str  # says which split, for every table
    test_subjects: list[str]  # subject mode: the held-out group; other modes: the subjects in test
    val_subjects: list[str]  # subjects held out for validation (subject mode only; else empty)
    mode: str = "subject"  # one of SPLIT_MODES
    warning: str | None = None  # a caveat the user must see (random split, shared subjects)
    test_fraction: float = TEST_FRACTION
    val_fraction: float = VAL_FRACTION

    def to_dict(self) -> dict:
        d = {"mode": self.mode, "name": self.name, "test_subjects": self.test_subjects,
             "val_subjects": self.val_subjects,
             "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)}}
        if self.mode == "random":
            d.update(test_fraction=self.test_fraction, val_fraction=self.val_fraction)
        if self.warning:
            d["warning"] = self.warning
        return d


def make_split(
    ds: WearableDataset,
    how: str = "subject",
    *,
    test_subjects: list[str] | None = None,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
) -> Split:
    """Split ``ds`` by subject, by its predefined sides, or at random (see the module docstring)."""
    if how not in SPLIT_MODES:
        raise ConfigError(f"unknown split {how!r}; use subject, predefined or random (--split)")
    _check_fractions(test_fraction, val_fraction)
    if how != "subject" and test_subjects is not None:
        raise ConfigError(f"test subjects only apply to --split subject, not --split {how}")
    if how == "subject":
        return subject_split(ds, test_subjects=test_subjects, test_fraction=test_fraction,
                             val_fraction=val_fraction, seed=seed)
    if how == "predefined":
        return predefined_split(ds, val_fraction=val_fraction, seed=seed)
    return random_split(ds, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)


def _check_fractions(test_fraction, val_fraction) -> None:
    for what, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ConfigError(f"{what} must be a number between 0 and 1, got {value!r}")


def split_from_dict(ds: WearableDataset, d: dict, seed: int) -> Split:
    """Rebuild the split a run stored (``Split.to_dict()``); a dict without ``mode`` is an older,
    subject-wise run."""
    if not isinstance(d, dict):
        raise ConfigError(f"the stored split is {type(d).__name__}, not a mapping; retrain the run")
    mode = d.get("mode", "subject")
    if mode not in SPLIT_MODES:
        raise ConfigError(f"unknown split {mode!r} in the run's config.json; use subject, predefined or random "
                          "(the run may come from a newer version)")
    if mode == "subject":
        split = subject_split(ds, test_subjects=d.get("test_subjects"), val_subjects=d.get("val_subjects") or None,
                              seed=seed)
    elif mode == "predefined":
        split = predefined_split(ds, seed=seed)
    else:
        split = random_split(ds, test_fraction=d.get("test_fraction", TEST_FRACTION),
                             val_fraction=d.get("val_fraction", VAL_FRACTION), seed=seed)
    if isinstance(d.get("name"), str):
        split.name = d["name"]  # how the split was made (a drawn test group reads as given on a rebuild)
    return split


def subject_split(
    ds: WearableDataset,
    *,
    test_subjects: list[str] | None = None,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    seed: int = 0,
    val_subjects: list[str] | None = None,
) -> Split:
    """Split into train / validation / test by subject.

    The test group is the dataset's standard one unless given; otherwise a seeded draw of
    ``test_fraction`` of the subjects. Validation subjects are drawn from the training subjects
    (or given, when a stored split is rebuilt). A dataset with a single training subject
    (BasicMotions publishes no subject ids) falls back to a stratified window split for
    validation, and the split name says so.
    """
    subjects = np.unique(ds.subjects)
    rng = np.random.default_rng(seed)
    # Validation draws from a generator of its own: rebuilding a run's split passes the test
    # subjects it drew, and the validation side must not depend on whether that draw happened.
    val_rng = np.random.default_rng(seed)
    name = ds.split_name
    if test_subjects is None:
        test_subjects = ds.test_subjects
    if test_subjects is None:
        if len(subjects) < 2:
            raise DataError(f"{ds.name}: only one subject; a subject-wise test split needs at least two (add a "
                            "subject column, or use --split predefined with a split column, or --split random)")
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
    if val_subjects:
        val_subjects = [str(s) for s in val_subjects]
        outside = sorted(set(val_subjects) - set(pool_subjects.tolist()))
        if outside:
            raise DataError(f"{ds.name}: validation subjects {outside} are not among the training subjects of the "
                            "data; the data differ from those the run was trained on")
        is_val = np.isin(ds.subjects[train_pool], val_subjects)
        val, train = train_pool[is_val], train_pool[~is_val]
    elif len(pool_subjects) >= 3:
        k = max(1, round(val_fraction * len(pool_subjects)))
        val_subjects = sorted(val_rng.choice(pool_subjects, size=k, replace=False).tolist())
        is_val = np.isin(ds.subjects[train_pool], val_subjects)
        val, train = train_pool[is_val], train_pool[~is_val]
    else:
        val_subjects = []
        val, train = _stratified_holdout(ds, train_pool, val_fraction, val_rng)
        name += "; validation: windows of the training subjects"
    return Split(train=train, val=val, test=np.flatnonzero(is_test), name=name,
                 test_subjects=test_subjects, val_subjects=val_subjects)


def predefined_split(ds: WearableDataset, *, val_fraction: float = VAL_FRACTION, seed: int = 0) -> Split:
    """The sides the data carry (``ds.split_labels``), or else the dataset's standard test group.

    Without "val" windows, validation is a stratified share of the training windows (as the
    subject split does when one training subject is all there is), and the name says so.
    """
    if ds.split_labels is None:
        if ds.test_subjects is not None:  # a named dataset's own test group (MIT-BIH DS2, UEA test half)
            split = subject_split(ds, val_fraction=val_fraction, seed=seed)
            split.mode = "predefined"
            return split
        raise DataError(f"{ds.name}: no split labels for --split predefined; add a 'split' column (CSV/Parquet) "
                        "or 'split' array (NPZ) of train/val/test, or use --split subject or random")
    sides = np.asarray(ds.split_labels).astype(str)
    if sides.shape != (len(ds),):
        raise DataError(f"{ds.name}: {len(ds)} windows but split labels of shape {sides.shape}")
    rng = np.random.default_rng(seed)
    train, val, test = (np.flatnonzero(sides == side) for side in ("train", "val", "test"))
    for side, idx in (("test", test), ("train", train)):
        if len(idx) == 0:
            raise DataError(f"{ds.name}: the predefined split has no {side} windows; mark some rows (or windows) "
                            f"{side!r} in the split column, or use --split subject or random")
    name = "predefined train/val/test from the data"
    if len(val) == 0:
        val, train = _stratified_holdout(ds, train, val_fraction, rng)
        name += "; validation: windows of the training side"
    warning = None
    shared = sorted(set(ds.subjects[train]) & set(ds.subjects[test]))
    if shared and len(np.unique(ds.subjects)) > 1:
        warning = (f"predefined split: subject(s) {', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''} "
                   "on both sides of the split, so the test score may be optimistic")
    return Split(train=train, val=val, test=test, name=name, test_subjects=sorted(set(ds.subjects[test])),
                 val_subjects=[], mode="predefined", warning=warning)


def random_split(ds: WearableDataset, *, test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION,
                 seed: int = 0) -> Split:
    """Windows at random, stratified by class (regression: a plain shuffle); carries a warning."""
    _check_fractions(test_fraction, val_fraction)
    rng = np.random.default_rng(seed)
    everything = np.arange(len(ds))
    test, rest = _stratified_holdout(ds, everything, test_fraction, rng)
    val, train = _stratified_holdout(ds, rest, val_fraction, rng)
    if len(train) == 0 or len(test) == 0:
        raise DataError(f"{ds.name}: {len(ds)} windows are too few for a random train/val/test split; "
                        "record more or use shorter windows")
    name = f"random (stratified by class), seed {seed}: {test_fraction:g} of the windows held out; not subject-wise"
    return Split(train=train, val=val, test=test, name=name, test_subjects=sorted(set(ds.subjects[test])),
                 val_subjects=[], mode="random", warning=RANDOM_WARNING,
                 test_fraction=test_fraction, val_fraction=val_fraction)


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
