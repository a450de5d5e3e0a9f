"""``evaluate``: a model on its run's test subjects — task metrics, size, MACs, host latency."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.dataset import WearableDataset
from ..data.prepare import PreparedData, prepare_from_config
from ..evaluate import confusion_png, predict, task_metrics
from ..io import atomic_write_bytes, atomic_write_json
from ..profile import profile_model
from ..progress import progress_bar
from ..runs import Run, load_run


def evaluate_run(run: str | Path | Run, *, data_root: str | None = None, data: WearableDataset | None = None,
                 write: bool = True, progress: bool = False) -> dict:
    """Evaluate a run on its test subjects; write evaluation.json (+ confusion.png) into the run."""
    run = run if isinstance(run, Run) else load_run(run)
    with progress_bar(progress, f"evaluate {run.path}", 1) as bar:
        prepared = prepare_from_config(run.config, data_root, data)
        metrics, extra = measure(run.model, prepared)
        bar.epoch({})
    if write:
        atomic_write_json(run.path / "evaluation.json", metrics)
        for name, blob in extra.items():
            atomic_write_bytes(run.path / name, blob)
    return metrics


def measure(model: torch.nn.Module, prepared: PreparedData) -> tuple[dict, dict[str, bytes]]:
    """(metrics on the test side with the model's cost, extra files such as the confusion PNG)."""
    test = prepared.test
    outputs = predict(model, test.X)
    metrics = task_metrics(test, outputs, prepared.target_scale)
    example = torch.from_numpy(test.X[:1])
    result = {
        "dataset": prepared.dataset.name,
        "split": prepared.split.name,
        "test_subjects": prepared.split.test_subjects,
        "test": metrics,
        "cost": profile_model(model, example),
    }
    extra = {}
    if test.task == "classification":
        names = test.class_names or [str(i) for i in range(outputs.shape[1])]
        title = f"{prepared.dataset.name} test ({prepared.split.name})"[:90]
        extra["confusion.png"] = confusion_png(metrics["confusion_matrix"], names, title)
    return result, extra
