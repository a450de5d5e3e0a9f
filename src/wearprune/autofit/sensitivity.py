"""Layer-wise sensitivity: the validation metric when one prunable group alone loses a share of its
units (no fine-tuning), and the MACs that saves. Cached in the run, keyed by what produced it."""

from __future__ import annotations

import json
from pathlib import Path

from wearprune.evaluate import headline, predict, task_metrics
from wearprune.io import atomic_write_json
from wearprune.profile import count_macs
from wearprune.prune import prune

RATIOS = (0.25, 0.5, 0.75)


def score(model, ds, target_scale) -> float:
    """The validation headline as a number to maximise (MAE negated)."""
    key, value = headline(task_metrics(ds, predict(model, ds.X), target_scale))
    return -value if key == "mae" else value


def groups_of(model, example) -> dict[str, int]:
    """Prunable groups and their sizes (what a per-layer search chooses ratios for)."""
    _, summary = prune(model, example, ratio=0.0)
    return {layer["group"]: layer["before"] for layer in summary["layers"]}


def layer_sensitivity(model, example, val, target_scale, *, importance: str = "l2", calib=None,
                      ratios=RATIOS, cache: Path | None = None, task: str = "classification") -> dict:
    """{"dense": score, "groups": {group: {ratio: {"score", "macs"}}}}, read from ``cache`` when it
    was computed for the same model weights, data and criterion."""
    key = {"importance": importance, "ratios": list(ratios), "val_windows": len(val),
           "weights": float(sum(p.detach().double().abs().sum() for p in model.parameters()))}
    if cache is not None and cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return stored
    options = {"calib": calib, "task": task} if calib is not None else {}
    result = {"key": key, "dense": score(model, val, target_scale), "dense_macs": count_macs(model, example),
              "groups": {}}
    for group in groups_of(model, example):
        rows = {}
        for r in ratios:
            pruned, summary = prune(model, example, ratio=0.0, ratios={group: r}, importance=importance, **options)
            rows[str(r)] = {"score": score(pruned, val, target_scale), "macs": summary["macs_after"]}
        result["groups"][group] = rows
    if cache is not None:
        atomic_write_json(cache, result)
    return result


def guided_ratios(sens: dict, levels=(0.01, 0.03, 0.06, 0.1)) -> list[dict[str, float]]:
    """Starting points for the search: for each tolerated drop, every group pruned as far as its
    own sensitivity allows (NetAdapt's idea: cut where it hurts least)."""
    proposals = []
    for level in levels:
        ratios = {}
        for group, rows in sens["groups"].items():
            ok = [float(r) for r, row in rows.items() if sens["dense"] - row["score"] <= level * max(abs(sens["dense"]),
                                                                                                      1e-9)]
            ratios[group] = max(ok, default=0.0)
        if ratios not in proposals:
            proposals.append(ratios)
    return proposals

