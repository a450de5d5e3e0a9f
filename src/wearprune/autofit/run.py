"""``fit``: the most accurate pruned (and, if asked, int8) model that meets a device's limits.

1. Budget: the device's SRAM and flash, plus the user's latency, energy and accuracy-drop limits.
2. Layer-wise sensitivity of the trained run (cached in it) seeds the search.
3. The Optuna search over per-group ratios and criteria (``study``), resumable from its storage.
4. The winner is pruned again, fine-tuned longer with distillation, exported and run in TensorFlow
   Lite Micro; its measured arena must respect the RAM limit.
5. The output run holds the model, ``fit.json`` (limits, every candidate, the Pareto front) and the
   before/after report. It appears only when all of this succeeded.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from wearprune.autofit.sensitivity import groups_of, guided_ratios, layer_sensitivity
from wearprune.autofit.study import (
    MAX_RATIO,
    Job,
    completed,
    cpu_workers,
    default_storage,
    engine_url,
    open_study,
    run_pool,
    shown,
    study_name,
)
from wearprune.devices.budget import LIMIT_WORDS, Budget, binding
from wearprune.errors import ConfigError
from wearprune.io import atomic_directory, atomic_write_json
from wearprune.report.render import pareto_front
from wearprune.specs import ExportSpec, FitSpec

MIN_RANKING_SUBJECTS = 3


@dataclass
class FitResult:
    path: Path
    winner: dict
    dense: dict
    candidates: list[dict]
    pareto: dict[str, list[int]]  # trial numbers on the front: validation score vs est. energy, vs est. latency
    measured: dict  # TensorFlow Lite Micro checks of the exported winner
    search_seconds: float  # wall time of this call's sensitivity pass and search (a resumed search: new trials only)
    trial_seconds: float  # the completed trials' own run time summed, across every session that ran them
    limits: dict
    parts: dict | None = None  # the per-part search's parts: patterns, owned groups, notes (docs/parts.md)

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def fit(run, device: str | FitSpec, out=None, *, data_root: str | None = None, overwrite: bool = False,
        progress: bool = False, log=print, **fields_) -> FitResult:
    """Fit the trained ``run`` to a device within every limit; write the winning run to ``out``
    (default: ``<run>-fit-<device>`` beside it).

    ``device`` is a :class:`~wearprune.specs.FitSpec`, or a device name / YAML path with the spec's
    other fields as keywords (``max_latency_ms``, ``max_energy_uj``, ``max_ram_kb``,
    ``max_flash_kb``, ``max_drop``, ``int8``, ``trials``, ``trial_epochs``, ``final_epochs``,
    ``select``, ``workers``, ``storage``, ``ray``, ``seed``, ``parts``).

    ``parts`` ({name: patterns} or "auto"): each trial samples the importance criterion per part as well
    as the per-group ratios; the winner's ``criteria`` and ``recipe`` record what each part got.

    ``select``: which feasible candidate wins. "search": the best on validation; "uniform": the
    uniform cut (every group alike) scaled to the budget; "auto" (default): "uniform" when validation
    holds fewer than 3 subjects (ranking on 1-2 subjects picked worse models on held-out subjects in
    docs/fit.md), else "search".
    """
    from wearprune.autofit.sensitivity import score
    from wearprune.data.prepare import calibration_sample, prepare_from_config
    from wearprune.devices import estimate_cost, load_device
    from wearprune.prune import prune
    from wearprune.runs import load_run
    from wearprune.verbs.outdir import check_out

    spec = device if isinstance(device, FitSpec) else FitSpec.resolve(None, {"device": device, **fields_})
    if isinstance(device, FitSpec) and fields_:
        raise ConfigError(f"pass either a FitSpec or its fields, not both (got {sorted(fields_)})")
    dev = load_device(spec.device)  # a bad device name or file fails before any work
    if spec.storage:
        engine_url(spec.storage)  # so does a storage URL whose database driver is missing
    out = Path(out) if out is not None else Path(run).resolve().with_name(f"{Path(run).resolve().name}-fit-"
                                                                            f"{Path(spec.device).stem}")
    check_out(out, overwrite)
    int8, trials, select, seed = spec.int8, spec.trials, spec.select, spec.seed
    dense_run = load_run(run)
    limits = spec.budget(dev)
    prepared = prepare_from_config(dense_run.config, data_root)
    calib = calibration_sample(prepared, seed, 256)
    example = calib[0][:1]
    dense_cost = estimate_cost(dense_run.model, example, dev, int8=int8)
    dense_score = score(dense_run.model, prepared.val, prepared.target_scale)
    dense = {"val_score": dense_score, "macs": dense_cost.macs, "est_arena_bytes": dense_cost.arena_bytes,
             "est_flash_bytes": dense_cost.flash_bytes, "est_latency_ms": dense_cost.latency_ms,
             "est_energy_uj": dense_cost.energy_uj, "excess": limits.excess(dense_cost)}
    # The smallest model the search can reach: if even it breaks a hardware limit, no search helps.
    smallest, _ = prune(dense_run.model, example, ratio=0.0,
                        ratios={g: MAX_RATIO for g in groups_of(dense_run.model, example)})
    plan = None
    if spec.parts is not None:  # a bad pattern or an empty part fails here, before any search
        from wearprune.autofit.parts import plan_parts

        plan = plan_parts(spec.parts, dense_run.model, example)
        for note in plan.notes:
            log(f"note: {note}")
    smallest_cost = estimate_cost(smallest, example, dev, int8=int8)
    smallest_excess = limits.excess(smallest_cost)
    if not limits.fits(smallest_cost):
        worst = binding(smallest_excess)
        raise ConfigError(f"no pruned model can meet the limits on {dev.name}: {LIMIT_WORDS[worst]} binds even at "
                          f"{MAX_RATIO:.0%} of every layer pruned ({limits.describe(worst, smallest_excess)}); "
                          "relax that limit or pick a larger device")

    if limits.fits(dense_cost):
        # every trial would keep the dense model (the search only cuts as deep as the limits need)
        log(f"the dense model already meets every limit on {dev.name}: nothing to prune; one trial checks it")
        trials = 1
    val_subjects = list(prepared.split.val_subjects)
    few = 0 < len(val_subjects) < MIN_RANKING_SUBJECTS
    if select == "auto":
        select = "uniform" if few else "search"
    if few:
        chosen = ("the uniform cut scaled to the budget" if select == "uniform"
                  else "the best on them anyway (--select search)")
        log(f"note: validation holds {len(val_subjects)} subject(s) ({', '.join(val_subjects)}), too few to rank "
            f"candidates (docs/fit.md): the winner is {chosen}")
    started = time.perf_counter()
    sens = layer_sensitivity(dense_run.model, example, prepared.val, prepared.target_scale, importance="l2",
                             cache=Path(dense_run.path) / "sensitivity.json", task=prepared.dataset.task)
    job = Job(run=str(dense_run.path), data_root=data_root, device=str(spec.device), profile=dev,
              limits=limits.to_dict(),
              int8=int8, storage=spec.storage or default_storage(Path(dense_run.path)),
              study=study_name(Path(dense_run.path), str(spec.device), limits.to_dict(), int8, spec.trial_epochs,
                               seed, plan.where if plan else None),
              trials=trials, trial_epochs=spec.trial_epochs, seed=seed, parts=plan.where if plan else None)
    study = open_study(job)
    done = len(completed(study))
    if not study.get_trials(deepcopy=False):
        # Seeds: the least-pruned uniform model within the hardware limits (what a fixed ratio would
        # pick), then cuts guided by each layer's sensitivity.
        uniform = _uniform_within(dense_run.model, example, dev, limits, int8)
        seeds = [{g: uniform for g in sens["groups"]}] + guided_ratios(sens)
        for importance, ratios in [("taylor", seeds[0])] + [("l2", r) for r in seeds]:
            same = {f"importance:{p}": importance for p in plan.groups} if plan else {}  # seeds: one criterion
            study.enqueue_trial({"importance": importance, **same, **{f"ratio:{g}": r for g, r in ratios.items()}})
    elif done:
        log(f"resuming the search in {shown(job.storage)}: {done} of {trials} trials already done")
    if done < trials:
        poll = (lambda: log(f"  search: {len(completed(study))}/{trials} trials")) if progress else None
        run_pool(job, spec.workers or cpu_workers(), spec.ray, poll)
    search_seconds = time.perf_counter() - started
    trial_seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in completed(study))
    candidates = [{"number": t.number, **t.user_attrs} for t in completed(study)]
    if not candidates:
        raise ConfigError(f"the search finished no trial (see {shown(job.storage)}); run the command again to "
                          "resume it")
    key = "mae" if prepared.dataset.task == "regression" else "macro_f1"
    feasible = sorted((c for c in candidates if c.get("feasible")),
                      key=lambda c: (-c["val_score"], c["est_energy_uj"]))
    if select == "uniform":  # uniform cuts first (the better criterion on validation first), the rest as fallbacks
        feasible.sort(key=lambda c: not is_uniform(c))
    if not feasible:
        closest = min(candidates, key=lambda c: max(c["excess"].values()))
        worst = binding(closest["excess"])
        raise ConfigError(f"no candidate met every limit in {len(candidates)} trials: {LIMIT_WORDS[worst]} binds; "
                          f"closest: {_summary(closest, key)} ({limits.describe(worst, closest['excess'])}); "
                          "relax it, or run more --trials")
    search = _Search(dense_run=dense_run, prepared=prepared, dense=dense, candidates=candidates, sens=sens, key=key,
                     select=select, seconds=(search_seconds, trial_seconds), parts=plan.to_dict() if plan else None)
    return _finish(search, feasible, spec, limits, dev, out, data_root=data_root, overwrite=overwrite,
                   progress=progress, log=log)


TRY_FINALISTS = 3  # a finalist can still fail its measured checks; the next ones are tried before giving up


@dataclass
class _Search:
    """What the search leaves for the finish: the dense run and its data, every candidate, timings."""

    dense_run: object
    prepared: object
    dense: dict
    candidates: list[dict]
    sens: dict
    key: str  # the task metric: macro_f1 or mae
    select: str
    seconds: tuple[float, float]  # this call's search wall time, the completed trials' own time
    parts: dict | None = None  # PartPlan.to_dict() of a per-part search


def _finish(search: _Search, feasible, spec: FitSpec, limits: Budget, dev, out, *, data_root, overwrite, progress,
            log) -> FitResult:
    """Fine-tune the best candidate for longer, export it and check what was measured: TensorFlow Lite
    Micro's own arena (plus the C header's headroom) and flash against the limits, and the fine-tuned
    model's validation drop against --max-drop. A finalist that fails is dropped for the next one."""
    from wearprune.autofit.sensitivity import score
    from wearprune.export.c_array import ARENA_HEADROOM
    from wearprune.report import build_report, write_report
    from wearprune.runs import Run, save_run
    from wearprune.verbs.export import export_run
    from wearprune.verbs.prune import prune_run

    dense_run, prepared, dense, candidates, key = (search.dense_run, search.prepared, search.dense,
                                                   search.candidates, search.key)
    int8, final_epochs, select = spec.int8, spec.final_epochs, search.select
    rejected = []
    for winner in feasible[:TRY_FINALISTS]:
        log(f"fine-tuning the winner (trial {winner['number']}: {_summary(winner, key)}) for {final_epochs} epochs")
        # a per-part candidate carries its recipe (one step per part); otherwise one step for the whole model
        recipe = winner.get("recipe") or {"steps": [{"method": "channel", "ratio": 0.0,
                                                     "importance": winner["importance"], "ratios": winner["ratios"]}]}
        final = prune_run(dense_run, None, recipe=recipe, finetune_epochs=final_epochs, prepared=prepared,
                          progress=progress)
        final_score = score(final.model, prepared.val, prepared.target_scale)
        drop = (dense["val_score"] - final_score) * (100.0 if key == "macro_f1" else 1.0)
        if limits.max_drop is not None and drop > limits.max_drop:
            rejected.append(f"trial {winner['number']}: validation drop {drop:.2f} > {limits.max_drop:g}")
            log(f"  {rejected[-1]} after fine-tuning; trying the next candidate")
            continue
        final.config["fit"] = {"device": dev.name, "limits": limits.to_dict(), "trial": winner["number"],
                               "int8": int8, "spec": spec.to_dict(),
                               **({"criteria": winner["criteria"], "parts": search.parts} if search.parts else {})}
        try:
            with atomic_directory(out, overwrite=overwrite) as stage:
                save_run(stage, model=final.model, config=final.config, architecture=final.architecture,
                         metrics=final.metrics, overwrite=True)
                result = export_run(stage, ExportSpec(formats=("tflite", "c"), int8=int8), prepared=prepared,
                                    progress=progress)
                measured = result["checks"]["int8" if int8 else "fp32"]
                arena = measured["arena_bytes"] + ARENA_HEADROOM  # what the C header reserves
                flash = measured["tflite_bytes"] + dev.runtime_flash_kb * 1024
                if arena > limits.max_ram_kb * 1024 or flash > limits.max_flash_kb * 1024:
                    rejected.append(f"trial {winner['number']}: measured arena {arena / 1024:.1f} KB / flash "
                                    f"{flash / 1024:.0f} KB over {limits.max_ram_kb:g} / {limits.max_flash_kb:g} KB")
                    log(f"  {rejected[-1]}; trying the next candidate")
                    raise _Rejected
                winner = {**winner, "final_val_score": final_score, "final_drop": drop, "selected_by": select}
                pareto = {cost: [candidates[i]["number"] for i in
                                 pareto_front([(c[cost], c["val_score"]) for c in candidates], higher_is_better=True)]
                          for cost in ("est_energy_uj", "est_latency_ms")}
                fit_record = FitResult(path=out, winner=winner, dense=dense, candidates=candidates, pareto=pareto,
                                       measured=result["checks"], search_seconds=search.seconds[0],
                                       trial_seconds=search.seconds[1],
                                       limits=limits.to_dict(), parts=search.parts)
                atomic_write_json(stage / "fit.json", {**fit_record.to_dict(), "sensitivity": search.sens,
                                                       "validation_subjects": list(prepared.split.val_subjects)})
                staged = Run(path=stage, config=final.config, architecture=final.architecture, model=final.model,
                             metrics={**final.metrics, "tflm": result["checks"]})
                report = build_report([dense_run, staged], dev, baseline=dense_run, int8=int8)
                report["runs"][-1].update(name=out.name, path=str(out))  # where it will be, not the staging dir
                report["search"] = {
                    "candidates": [{k: c[k] for k in ("number", "val_score", "est_energy_uj", "est_latency_ms",
                                                      "feasible")} for c in candidates],
                    "pareto": pareto, "winner": winner["number"],
                    "limit": {"est_energy_uj": limits.max_energy_uj, "est_latency_ms": limits.max_latency_ms},
                    "score_label": "validation MAE (negated)" if key == "mae" else "validation macro-F1"}
                write_report(report, stage / "report")
        except _Rejected:
            continue  # nothing was written: the staged directory is removed
        except ConfigError as e:  # export refused it (e.g. int8 diverged): the next finalist may pass
            rejected.append(f"trial {winner['number']}: {e}")
            log(f"  {rejected[-1]}; trying the next candidate")
            continue
        return fit_record
    raise ConfigError(f"the best {len(rejected)} candidates failed their measured checks ({'; '.join(rejected)}); "
                      "tighten the limits slightly so the estimates leave room, or run more --trials")


def is_uniform(candidate: dict) -> bool:
    """Every group cut by the same share (what a fixed-ratio prune does)."""
    return len(set(candidate["ratios"].values())) == 1


def _uniform_within(model, example, dev, limits: Budget, int8: bool) -> float:
    """The smallest uniform ratio on the search grid whose model meets the hardware limits."""
    from wearprune.autofit.study import STEP
    from wearprune.devices import estimate_cost
    from wearprune.prune import prune

    ratio = 0.0
    while ratio < MAX_RATIO:
        pruned, _ = prune(model, example, ratio=ratio)
        if limits.fits(estimate_cost(pruned, example, dev, int8=int8)):
            return ratio
        ratio += STEP
    return MAX_RATIO


class _Rejected(Exception):
    pass


def _summary(c: dict, key: str) -> str:
    val = f"val MAE {-c['val_score']:.3f}" if key == "mae" else f"val macro-F1 {c['val_score']:.3f}"
    crit = c["importance"] + "".join(f", {p}: {v}" for p, v in (c.get("criteria") or {}).items())
    return (f"{crit}, {c['macs']:,} MACs, est. arena {c['est_arena_bytes'] / 1024:.1f} KB, "
            f"{c['est_latency_ms']:.2f} ms, {c['est_energy_uj']:.1f} uJ, {val}")
