"""``prune``: a trained run pruned physically, fine-tuned (distilled from the dense model), and
compared with it on the same test subjects; written as a new run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.prepare import PreparedData, calibration_sample, prepare_from_config
from ..errors import ConfigError
from ..progress import progress_bar
from ..runs import Run, architecture_of, load_run, save_run
from ..specs import PruneSpec
from ..train import TrainConfig
from ..train import fit as fit_model
from .evaluate import measure
from .outdir import check_out


def prune_run(run: str | Path | Run, out: str | Path | None = None, spec: PruneSpec | None = None, *,
              data_root: str | None = None, prepared: PreparedData | None = None, overwrite: bool = False,
              progress: bool = False, teacher: torch.nn.Module | None = None, dp_noise: float | None = None,
              **fields_: object) -> Run:
    """Prune a trained run as ``spec`` says (or the same fields as keywords: ``method``, ``ratio``,
    ``importance``, ``recipe``, ``finetune_epochs``, ``cycles``, ``distill``, ``lr``, ``options``,
    ``calib_windows``), fine-tune it, evaluate both on the same test subjects, and write ``out``
    (``None``: keep it in memory). ``prepared``: the run's data when the caller has it already.

    ``cycles`` > 1 with a ``recipe``: each of its steps is one cut, fine-tuned before the next (the recipe
    holds ``cycles`` steps). ``teacher``: distil from this model instead of the dense run's (fit --grow).
    ``dp_noise``: with ``dp_epsilon``, the DP noise multiplier a caller planned for this and its other
    trainings (fit); None: one noise level for every cycle, so that all of them together spend ``dp_epsilon``."""
    from ..prune import MaskKeeper, zero_masks
    from ..prune.recipe import PruneStep, Recipe, apply_recipe
    from ..prune.schedule import IterativeSchedule

    spec = PruneSpec.resolve(spec, fields_)
    check_out(out, overwrite)
    dense = run if isinstance(run, Run) else load_run(run)
    if spec.dp_epsilon is not None and spec.finetune_epochs > 0:
        from ..privacy import check_model

        check_model(dense.model)  # before any work
    prepared = prepared or prepare_from_config(dense.config, data_root)
    if spec.recipe:
        steps = Recipe.from_dict(spec.recipe)
        if spec.cycles > 1 and len(steps.steps) != spec.cycles:
            raise ConfigError(f"an iterative recipe holds one step per cycle: {spec.cycles} cycles, "
                              f"{len(steps.steps)} steps")
    else:
        # Iterative pruning: each cycle removes the same share of what remains, then fine-tunes.
        share = IterativeSchedule(spec.ratio, spec.cycles).fraction_per_cycle if spec.cycles > 1 else spec.ratio
        steps = Recipe([PruneStep(spec.method, share, spec.importance, dict(spec.options))
                        for _ in range(spec.cycles)])
    seed = dense.config["train"]["seed"]
    calib = calibration_sample(prepared, seed, spec.calib_windows)
    example = calib[0][:1]
    model, summaries, history = dense.model, [], None
    rounds = [[s] for s in steps.steps] if spec.cycles > 1 else [steps.steps]
    teacher = teacher if teacher is not None else dense.model
    dp_records, delta = [], None
    if spec.dp_epsilon is not None and spec.finetune_epochs > 0:
        from ..privacy import default_delta, planned_noise

        delta = spec.dp_delta or default_delta(len(prepared.train))
        if dp_noise is None:  # every cycle at one noise level: the cycles together spend dp_epsilon
            dp_noise = planned_noise(spec.dp_epsilon, delta, len(prepared.train), dense.config["train"]["batch_size"],
                                     spec.finetune_epochs * len(rounds))
    for k, round_steps in enumerate(rounds, 1):
        model, done = apply_recipe(model, example, Recipe(round_steps), calib=calib, task=prepared.dataset.task,
                                   seed=seed)
        summaries += done
        if spec.finetune_epochs > 0:
            # device "auto": the run may have been trained on a machine with CUDA, this one may have none
            cfg = TrainConfig(**{**dense.config["train"], "epochs": spec.finetune_epochs, "lr": spec.lr, "bn_l1": 0.0,
                                 "harden": spec.harden, "harden_eps": spec.harden_eps,
                                 "dp_epsilon": spec.dp_epsilon, "dp_delta": delta,
                                 "dp_max_grad_norm": spec.dp_max_grad_norm,
                                 "dp_noise_multiplier": dp_noise if spec.dp_epsilon is not None else None,
                                 "patience": max(3, spec.finetune_epochs), "select_from_epoch": 1, "device": "auto"})
            sparse = any(s.method == "weight" for s in steps.steps)
            # Unstructured zeros must survive fine-tuning: re-apply the masks after every step.
            keeper = MaskKeeper(model, zero_masks(model)) if sparse else None
            title = f"fine-tune pruned {dense.architecture['model']}" + (f" (cycle {k}/{len(rounds)})"
                                                                          if len(rounds) > 1 else "")
            with progress_bar(progress, title, cfg.epochs) as bar:
                history = fit_model(model, prepared.train, prepared.val, cfg,
                                    teacher=teacher if spec.distill else None,
                                    target_scale=prepared.target_scale, on_epoch=bar.epoch, on_batch=bar.batch,
                                    after_step=keeper.step if keeper else None)
            if history.dp:
                dp_records.append(history.dp)
    metrics, extra = measure(model, prepared)
    before, _ = measure(dense.model, prepared)
    metrics["dense"] = {"test": {k: v for k, v in before["test"].items() if not isinstance(v, list)},
                        "cost": before["cost"]}
    metrics["prune"] = summaries
    if history is not None:
        metrics["history"] = history.to_dict()
    if dp_records:
        from ..privacy import combined

        metrics["dp"] = combined(dp_records, delta=delta, epsilon_target=spec.dp_epsilon,
                                 max_grad_norm=spec.dp_max_grad_norm, parent=(dense.metrics or {}).get("dp"),
                                 what=f"the fine-tune ({len(dp_records)} cycle(s))")
    config = dict(dense.config, pruned_from=str(dense.path),
                  prune={"recipe": steps.to_dict(), "cycles": spec.cycles, "finetune_epochs": spec.finetune_epochs,
                         "distill": spec.distill, "lr": spec.lr, "spec": spec.to_dict()})
    removed_blocks = dict(dense.architecture.get("removed_blocks", {}))
    for summary in summaries:
        removed_blocks.update(summary.get("removed", {}))
    arch = architecture_of(dense.architecture["model"], dense.architecture["width"], dense.architecture["spec"],
                           model, removed_blocks, dense.architecture.get("options"))
    if out is None:
        return Run(path=Path(), config=config, architecture=arch, model=model, metrics=metrics)
    path = save_run(out, model=model, config=config, architecture=arch, metrics=metrics, extra=extra,
                    overwrite=overwrite)
    return Run(path=path, config=config, architecture=arch, model=model, metrics=metrics)
