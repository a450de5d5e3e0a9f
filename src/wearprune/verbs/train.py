"""``train``: a zoo model on a dataset with a subject-wise split, written as a run directory."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .. import __version__
from ..data.dataset import WearableDataset
from ..data.prepare import calibration_sample, data_record, prepare_data
from ..models import build_model
from ..progress import progress_bar
from ..runs import Run, architecture_of, load_run, save_run
from ..train import TrainConfig, TrainingWarning, never_improved
from ..train import fit as fit_model
from .evaluate import measure
from .outdir import check_out


def train(
    data: str | WearableDataset,
    model: str = "cnn1d",
    out: str | Path | None = None,
    *,
    width: float = 1.0,
    config: TrainConfig | None = None,
    data_root: str | None = None,
    data_options: dict | None = None,
    test_subjects: list[str] | None = None,
    split: str = "subject",
    model_options: dict | None = None,
    teacher: str | Path | None = None,
    prune_at_init: dict | None = None,
    gradual: dict | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Run:
    """Train zoo ``model`` on ``data``; write a run directory to ``out``.

    ``model_options``: the zoo model's block options, e.g. ``{"norm": "group", "act": "hardswish"}``.
    ``split``: "subject" (default: no subject on two sides), "predefined" (the data's own
    ``split`` column/array of train/val/test) or "random" (stratified windows, for data without
    subject ids; its test score is optimistic and the run's split record says so).

    Pruning around training: ``prune_at_init={"ratio": 0.5, "importance": "snip"}`` removes
    channels at initialisation, then trains the smaller model; ``gradual={"target": 0.8}`` prunes
    weights during training on Zhu & Gupta's cubic schedule (ending at 3/4 of the epochs);
    ``config.bn_l1`` adds Network Slimming's penalty (prune afterwards with importance bn_scale).
    """
    from ..prune.schedule import CubicSchedule
    from ..prune.structured import prune_structured
    from ..prune.timing import GradualWeightPruning

    config = config or TrainConfig()
    config.validate()
    check_out(out, overwrite)
    prepared = prepare_data(data, data_root=data_root, data_options=data_options,
                            test_subjects=test_subjects, seed=config.seed, split=split)
    torch.manual_seed(config.seed)
    net = build_model(model, prepared.dataset.spec(), width, **(model_options or {}))
    init_summary = None
    if config.dp_epsilon is not None:
        from ..privacy import check_importance, check_model

        check_model(net)  # before any work: BatchNorm or a GRU cannot take per-sample gradients
        if prune_at_init:
            check_importance(prune_at_init.get("importance", "snip"))
    if prune_at_init:
        opts = dict(prune_at_init)
        calib = calibration_sample(prepared, config.seed, opts.pop("windows", 512))
        net, init_summary = prune_structured(net, calib[0][:1], calib=calib, task=prepared.dataset.task,
                                             **{"importance": "snip", **opts})
        net.train()
    after_step, steps_per_epoch = None, config.steps_per_epoch(len(prepared.train))
    epochs = config.planned_epochs(len(prepared.train))
    if gradual:
        end = max(1, int(0.75 * epochs * steps_per_epoch))
        schedule = CubicSchedule(float(gradual["target"]), 0, end, frequency=max(1, steps_per_epoch // 4))
        after_step = GradualWeightPruning(net, schedule, gradual.get("scope", "global"))
        # Keep the final weights from after the schedule ends: earlier ones are less sparse.
        config = TrainConfig(**{**config.to_dict(), "epochs": epochs,
                                "select_from_epoch": -(-end // steps_per_epoch) + 1,
                                "patience": max(config.patience, epochs)})
    teacher_model = load_run(teacher).model if teacher else None
    with progress_bar(progress, f"train {model} on {prepared.dataset.name}", epochs) as bar:
        history = fit_model(net, prepared.train, prepared.val, config, teacher=teacher_model,
                      target_scale=prepared.target_scale, on_epoch=bar.epoch, on_batch=bar.batch,
                      after_step=after_step)
    history.warning = never_improved(history, config)
    if history.warning:
        warnings.warn(history.warning, TrainingWarning, stacklevel=2)
    run_config = {
        "wearprune_version": __version__,
        "data": data_record(prepared.dataset),
        "split": prepared.split.to_dict(),
        "normalizer": prepared.normalizer.to_dict(),
        "target_scale": prepared.target_scale,
        "model": {"name": model, "width": width, **({"options": dict(model_options)} if model_options else {})},
        "train": config.to_dict(),
        "teacher": str(teacher) if teacher else None,
        "prune_at_init": prune_at_init,
        "gradual": gradual,
        **({"dp": history.dp} if history.dp else {}),
    }
    arch = architecture_of(model, width, prepared.dataset.spec(), net if prune_at_init else None,
                           options=model_options)
    metrics, extra = measure(net, prepared)
    metrics["history"] = history.to_dict()
    if history.dp:
        metrics["dp"] = history.dp
    if init_summary is not None:
        metrics["prune_at_init"] = init_summary.to_dict()
    if gradual:
        from ..prune.weight import sparsity

        metrics["sparsity"] = sparsity(net)["overall"]
    if out is None:
        return Run(path=Path(), config=run_config, architecture=arch, model=net, metrics=metrics)
    path = save_run(out, model=net, config=run_config, architecture=arch, metrics=metrics,
                    extra=extra, overwrite=overwrite)
    return Run(path=path, config=run_config, architecture=arch, model=net, metrics=metrics)
