"""Cross-validation folds: which subjects each fold holds out.

* ``kfold``: the subjects partitioned into K folds of near-equal subject counts (a seeded shuffle,
  then consecutive slices), so no subject is ever in two test folds;
* ``swap`` (MIT-BIH): the published inter-patient protocol DS1→DS2 kept as fold 1, and the swapped
  DS2→DS1 added as fold 2;
* ``predefined``: the data's own split as the single fold (BasicMotions publishes no subject ids,
  so K-fold by subject is impossible there and the protocol says so).

Each fold's validation subjects (early stopping) are then drawn from its training subjects by
:func:`~wearprune.data.split.subject_split`, never from its test fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import WearableDataset

PROTOCOLS = ("auto", "kfold", "predefined")
# Datasets whose published protocol is two fixed halves: CV keeps it and adds the swapped direction.
SWAP_PROTOCOL = {"mitdb": "MIT-BIH inter-patient DS1→DS2 (de Chazal 2004) and the swapped DS2→DS1"}
# Datasets whose "subjects" are not people (BasicMotions: the UEA train/test halves).
NO_SUBJECT_IDS = {"basicmotions": "BasicMotions publishes no subject ids"}


@dataclass(frozen=True)
class Fold:
    index: int  # 1-based, as tables show it
    test_subjects: tuple[str, ...]  # empty for a predefined fold (the data's own test side)
    split: str  # the split mode its runs use: "subject" or "predefined"
    name: str  # the split name its runs record

    def to_dict(self) -> dict:
        return {"fold": self.index, "test_subjects": list(self.test_subjects), "split": self.split,
                "name": self.name}


@dataclass(frozen=True)
class Protocol:
    kind: str  # "kfold", "swap" or "predefined"
    folds: tuple[Fold, ...]
    name: str
    note: str | None = None  # what the user must know (a predefined fallback, an ignored --folds)
    seed: int = 0  # the fold shuffle's seed (kfold)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "note": self.note, "fold_seed": self.seed,
                "folds": [f.to_dict() for f in self.folds]}


def check_folds(k) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ConfigError(f"--folds must be a whole number, got {k!r}")
    if k < 2:
        raise ConfigError(f"--folds must be at least 2, got {k}: cross-validation holds out each fold in turn, "
                          "so it needs two folds or more")


def subject_folds(subjects, k: int, seed: int = 0) -> list[list[str]]:
    """Partition the unique ``subjects`` into ``k`` folds whose sizes differ by at most one.

    The same subjects, ``k`` and ``seed`` give the same folds whatever the order of ``subjects``.
    """
    check_folds(k)
    # not np.asarray: a numpy string array drops trailing NULs, so two ids could merge into one
    flat = subjects.ravel().tolist() if isinstance(subjects, np.ndarray) else list(subjects)
    unique = sorted({str(s) for s in flat})
    if len(unique) < 2:
        raise DataError(f"the data name {len(unique)} subject(s) ({', '.join(unique) or 'none'}): folds by subject "
                        "need subject ids; add a subject column, or evaluate on the data's predefined split "
                        "(--protocol predefined / wearprune train --split predefined)")
    if k > len(unique):
        raise ConfigError(f"{k} folds but only {len(unique)} subjects; use --folds {len(unique)} or fewer")
    order = np.random.default_rng(seed).permutation(len(unique))
    return [sorted(unique[i] for i in part) for part in np.array_split(order, k)]


def cv_protocol(ds: WearableDataset, k: int, seed: int = 0, protocol: str = "auto") -> Protocol:
    """The folds for ``ds``: ``protocol`` "auto" (MIT-BIH: DS1→DS2 plus DS2→DS1; a dataset without
    subject ids: its predefined split; otherwise subject K-fold), "kfold" or "predefined"."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; use {', '.join(PROTOCOLS)}")
    check_folds(k)
    subjects = np.unique(ds.subjects)
    no_ids = NO_SUBJECT_IDS.get(ds.name) or (f"{ds.name} names one subject only ({subjects[0]})"
                                              if len(subjects) < 2 else None)
    if protocol == "predefined" or (protocol == "auto" and no_ids):
        if no_ids and ds.split_labels is None and ds.test_subjects is None:
            raise DataError(f"{no_ids} and gives no train/test split: subject-wise cross-validation needs a subject "
                            "column (or a 'split' column for a single predefined fold)")
        why = f"{no_ids}: " if no_ids else ""
        note = (f"{why}subject-wise folds are impossible, so its predefined split is the single fold; the interval "
                "over seeds measures training noise only, not subject variation") if no_ids else \
            "the data's predefined split is the single fold: the interval over seeds measures training noise only"
        fold = Fold(1, (), "predefined", f"predefined split of {ds.name} (single cross-validation fold)")
        return Protocol("predefined", (fold,), f"{ds.name} predefined split (1 fold)", note, seed)
    if no_ids:
        raise DataError(f"{no_ids}: folds by subject are impossible; use --protocol predefined for its "
                        "predefined split as the single fold")
    if protocol == "auto" and ds.name in SWAP_PROTOCOL:
        return _swap(ds, k, seed)
    parts = subject_folds(subjects, k, seed)
    n = len(subjects)
    folds = tuple(Fold(i, tuple(p), "subject", f"cross-validation fold {i}/{k} (subject-wise, fold seed {seed}): "
                                                f"{len(p)} of {n} subjects held out")
                  for i, p in enumerate(parts, 1))
    return Protocol("kfold", folds, f"subject-wise {k}-fold cross-validation of {n} subjects (fold seed {seed})",
                    None, seed)


def _swap(ds: WearableDataset, k: int, seed: int) -> Protocol:
    subjects = set(np.unique(ds.subjects).tolist())
    first = sorted(set(ds.test_subjects or []) & subjects)  # DS2: the standard test half
    second = sorted(subjects - set(first))  # DS1
    if not first or not second:
        raise DataError(f"{ds.name}: the records of one half of the inter-patient protocol are missing "
                        f"({len(first)} test-half and {len(second)} training-half records present)")
    what = SWAP_PROTOCOL[ds.name]
    folds = (Fold(1, tuple(first), "subject", f"{ds.split_name} (cross-validation fold 1/2: the published direction)"),
             Fold(2, tuple(second), "subject", f"{ds.split_name}, swapped (cross-validation fold 2/2)"))
    note = None if k == 2 else (f"{ds.name} keeps its published protocol ({what}): 2 folds, not {k}; "
                                "--protocol kfold for subject K-fold instead")
    return Protocol("swap", folds, what, note, seed)
