"""Ranking the search's finalists on inner folds over the training subjects, not on the 1–3 validation
subjects one split holds (docs/fit.md measured how often those picked a worse model).

The training and validation subjects of the fit (never its test subjects) are dealt into ``k`` folds;
each finalist is fine-tuned briefly (distilled from the teacher) on the other folds and scored on the
held-out one; its rank is the mean over the folds. Every finalist starts from the same teacher, which
saw all these subjects in training: that favours none of them over another, but the inner scores are
optimistic as absolute numbers and are only used to rank.
"""

from __future__ import annotations

import numpy as np

from wearprune.data.folds import subject_folds
from wearprune.errors import DataError


def inner_folds(prepared, k: int, seed: int = 0) -> list[tuple[object, object, list[str]]]:
    """(training side, held-out side, held-out subjects) for ``k`` folds over the training and validation
    subjects; the test subjects are in none of them. Raises DataError when there are fewer than ``k`` subjects."""
    pool = _concat(prepared.train, prepared.val)
    subjects = sorted({str(s) for s in pool.subjects})
    if len(subjects) < k:
        raise DataError(f"{len(subjects)} training subjects cannot make {k} inner folds")
    folds = []
    for held in subject_folds(subjects, k, seed):
        out = np.isin(pool.subjects.astype(str), held)
        folds.append((pool.subset(np.flatnonzero(~out)), pool.subset(np.flatnonzero(out)), held))
    return folds


def _concat(a, b):
    from dataclasses import replace

    keep = {"X": np.concatenate([a.X, b.X]), "y": np.concatenate([a.y, b.y]),
            "subjects": np.concatenate([np.asarray(a.subjects), np.asarray(b.subjects)]),
            "split_labels": None if a.split_labels is None or b.split_labels is None else np.concatenate(
                [a.split_labels, b.split_labels])}
    return replace(a, **keep)


def inner_score(model, teacher, folds, train_config: dict, epochs: int, target_scale, seed: int) -> dict:
    """Fine-tune a copy of ``model`` on each fold's training side (distilled from ``teacher``) and score it on the
    held-out side: {"mean", "scores"}; higher is better (MAE negated)."""
    import copy

    from wearprune.autofit.sensitivity import score
    from wearprune.autofit.study import TRIAL_MIN_STEPS
    from wearprune.train import TrainConfig, epochs_for_steps
    from wearprune.train import fit as fit_model

    scores = []
    for k, (train, held, _) in enumerate(folds):
        twin = copy.deepcopy(model)
        if epochs > 0:
            epochs = epochs_for_steps(epochs, len(train), train_config["batch_size"], TRIAL_MIN_STEPS)
            cfg = TrainConfig(**{**train_config, "epochs": epochs, "lr": 1e-3, "patience": epochs, "seed": seed + k,
                                 "device": "auto", "select_from_epoch": epochs})  # the last epoch: held-out unseen
            fit_model(twin, train, held, cfg, teacher=teacher, target_scale=target_scale)
        scores.append(score(twin, held, target_scale))
    return {"mean": float(np.mean(scores)), "scores": [float(s) for s in scores]}


def check_no_test_subjects(folds, test_subjects) -> None:
    """Guard: an inner fold holding a test subject would leak the test side into selection."""
    test = {str(s) for s in test_subjects}
    for train, held, _ in folds:
        leaked = test & ({str(s) for s in train.subjects} | {str(s) for s in held.subjects})
        if leaked:
            raise DataError(f"inner folds hold test subject(s) {sorted(leaked)}")
