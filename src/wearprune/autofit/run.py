"""``fit``: the most accurate pruned (and, if asked, int8) model that meets a device's limits.

1. Budget: the device's SRAM and flash, plus the user's latency, energy and accuracy-drop limits.
2. Layer-wise sensitivity of the trained run (cached in it) seeds the search.
3. The Optuna search over per-group ratios and criteria (``study``), resumable from its storage.
4. The winner is pruned again, fine-tuned longer with distillation, exported and run in TensorFlow
   Lite Micro; its measured arena must respect the RAM limit.
5. The output run holds the model, ``fit.json`` (limits, every candidate, the Pareto front) and the
   before/after report. It appears only when all of this succeeded.

With ``grow`` the search starts from the zoo model trained wider (``grow``) and distils from the widest;
the finalists are ranked on inner folds over the training subjects (``inner``); the winner is cut in
``cycles`` steps and fine-tuned at the best of ``final_lrs``; and it must beat two models trained from
scratch at the same budget (``baselines``), or the better of those is shipped instead.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from wearprune.autofit.baselines import build_uniform, fresh_copy, total_epochs, train_baseline, uniform_width
from wearprune.autofit.grow import check_growable, describe, grow_widths, grown_run
from wearprune.autofit.inner import check_no_test_subjects, inner_folds, inner_score
from wearprune.autofit.sensitivity import groups_of, guided_ratios, layer_sensitivity
from wearprune.autofit.study import (
    FINAL_MIN_STEPS,
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
    shipped: str = "fit"  # which contender the output holds: fit (the pruned winner), scratch or uniform_width
    contenders: dict | None = None  # {fit, scratch, uniform_width}: each one's validation and test scores, costs
    grow: dict | None = None  # the widths trained, the one the search started from, the teacher
    ranking: dict | None = None  # how the finalists were ranked (inner folds: subjects, scores)
    recovery: dict | None = None  # the winner's final fine-tune: cycles, learning rates tried, the one kept
    scoring: str = ""  # what the search and the contenders were scored on (scoring.ValScore.describe)
    privacy: dict | None = None  # --dp-epsilon: the noise planned, the ε every training of the fit spent together

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def fit(run, device: str | FitSpec, out=None, *, data_root: str | None = None, overwrite: bool = False,
        progress: bool = False, log=print, **fields_) -> FitResult:
    """Fit the trained ``run`` to a device within every limit; write the winning run to ``out``
    (default: ``<run>-fit-<device>`` beside it).

    ``device`` is a :class:`~wearprune.specs.FitSpec`, or a device name / YAML path with the spec's
    other fields as keywords (``max_latency_ms``, ``max_energy_uj``, ``max_ram_kb``,
    ``max_flash_kb``, ``max_drop``, ``int8``, ``trials``, ``trial_epochs``, ``final_epochs``,
    ``select``, ``workers``, ``storage``, ``ray``, ``seed``, ``parts``, ``grow``, ``baselines``,
    ``rank_folds``, ``cycles``, ``final_lrs``).

    ``grow`` (a factor W ≥ 1, or "auto": ×1, ×2, ×4): train the zoo model at W × its width on the run's
    split and recipe, and search from it, distilling from the widest model trained; with "auto" the
    width whose uniform cut to the budget ranks best on the inner folds starts the search. Only a plain
    zoo run can grow (a pruned one has no width to scale).

    ``parts`` ({name: patterns} or "auto"): each trial samples the importance criterion per part as well
    as the per-group ratios; the winner's ``criteria`` and ``recipe`` record what each part got.

    ``select``: which feasible candidate wins. "search": the best of the finalists (the best few on
    validation plus the best uniform cut), ranked on ``rank_folds`` inner folds over the training
    subjects; "uniform": the uniform cut (every group alike) scaled to the budget; "auto" (default):
    "search" when the inner folds can be made, else "uniform" when validation holds fewer than 3
    subjects. With ``baselines`` the winner must then beat the same architecture trained from scratch
    and the zoo model at the width that meets the limits, on validation; the best of the three is shipped.

    ``robust_search``: trials, the final learning rate and the contenders are scored on the mean of the clean
    validation metric and the metric under every corruption at severity 3 (``scoring``).

    ``dp_epsilon`` (with ``dp_delta``, ``dp_max_grad_norm``): every training the fit runs is DP-SGD at one noise
    level, planned so that all of them together (the final fine-tune at each learning rate, the baselines)
    spend at most ``dp_epsilon``; the trials train nothing (they score data-free cuts on validation) and the
    finalists are ranked on validation. The spent ε, composed with the run's own training, is in ``fit.json``
    and the shipped run's ``metrics.json``.
    """
    from wearprune.autofit.scoring import ValScore
    from wearprune.data.prepare import calibration_sample, prepare_from_config
    from wearprune.devices import estimate_cost, load_device
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
    if spec.grow is not None:
        check_growable(dense_run)
    if spec.dp_epsilon is not None:
        from wearprune.privacy import check_model

        check_model(dense_run.model)  # one line before any work when Opacus cannot train it
    limits = spec.budget(dev)
    prepared = prepare_from_config(dense_run.config, data_root)
    calib = calibration_sample(prepared, seed, 256)
    example = calib[0][:1]
    scorer = ValScore(prepared, spec.robust_search, seed)
    dense_cost = estimate_cost(dense_run.model, example, dev, int8=int8)
    dense_score = scorer(dense_run.model)
    dense = {"val_score": dense_score, "macs": dense_cost.macs, "est_arena_bytes": dense_cost.arena_bytes,
             "est_flash_bytes": dense_cost.flash_bytes, "est_latency_ms": dense_cost.latency_ms,
             "est_energy_uj": dense_cost.energy_uj, "excess": limits.excess(dense_cost)}
    _check_reachable(dense_run.model, example, dev, limits, int8)  # before any teacher is trained
    key = "mae" if prepared.dataset.task == "regression" else "macro_f1"
    dp = _dp_plan(spec, dense_run, prepared, log) if spec.dp_epsilon is not None else None
    trial_epochs = 0 if dp else spec.trial_epochs

    # Train large: the wider teachers (cached in the dense run), the widest one distils every fine-tune.
    widths = [w for w in grow_widths(spec.grow) if w == 1 or _reachable(dense_run, w, example, dev, limits, int8, log)]
    if not widths:
        raise ConfigError(f"no grown model can be pruned to the limits on {dev.name}; use a smaller --grow")
    grown = {w: grown_run(dense_run, w, prepared, progress=progress, log=log) for w in widths}
    teacher = grown[max(widths)]
    folds, ranking = _ranking_folds(spec, prepared, log) if not dp else (None, None)
    if select == "auto":
        select = "search" if folds else ("uniform" if _few(prepared) else "search")
    if select != "search":
        ranking = None  # the inner folds rank no finalists (--grow auto may still use them to pick a width)
    if not folds and _few(prepared):
        chosen = ("the uniform cut scaled to the budget" if select == "uniform"
                  else "the best on them anyway (--select search)")
        log(f"note: validation holds {len(prepared.split.val_subjects)} subject(s) "
            f"({', '.join(prepared.split.val_subjects)}), too few to rank candidates (docs/fit.md): the winner is "
            f"{chosen}")
    start_width, probes = widths[0], None
    if len(widths) > 1:
        start_width, probes = _pick_width(grown, teacher, example, dev, limits, spec, prepared, folds, key, log)
    start = grown[start_width]
    grow_record = None
    if spec.grow is not None:
        grow_record = {"asked": spec.grow, "start": describe(start_width, start), "teacher": describe(max(widths),
                                                                                                    teacher),
                       "trained": {f"x{w:g}": {**describe(w, r), "val_score": scorer(r.model)}
                                   for w, r in grown.items()},
                       "probes": probes}

    start_cost = estimate_cost(start.model, example, dev, int8=int8)
    if limits.fits(start_cost):
        # every trial would keep the model (the search only cuts as deep as the limits need)
        log(f"the {'dense' if start is dense_run else 'grown'} model already meets every limit on {dev.name}: "
            "nothing to prune; one trial checks it")
        trials = 1
    started = time.perf_counter()
    sens = layer_sensitivity(start.model, example, prepared.val, prepared.target_scale, importance="l2",
                             cache=Path(start.path) / "sensitivity.json", task=prepared.dataset.task)
    plan = None
    if spec.parts is not None:  # a bad pattern or an empty part fails here, before any search
        from wearprune.autofit.parts import plan_parts

        plan = plan_parts(spec.parts, start.model, example)
        for note in plan.notes:
            log(f"note: {note}")
    importances = DATA_FREE_SEARCH if dp else None
    scoring = {k: v for k, v in (("robust", spec.robust_search), ("importances", importances)) if v}
    job = Job(run=str(start.path), data_root=data_root, device=str(spec.device), profile=dev,
              limits=limits.to_dict(),
              int8=int8, storage=spec.storage or default_storage(Path(start.path)),
              study=study_name(Path(start.path), str(spec.device), limits.to_dict(), int8, trial_epochs,
                               seed, plan.where if plan else None,
                               str(teacher.path) if teacher is not start else None, scoring),
              trials=trials, trial_epochs=trial_epochs, seed=seed, parts=plan.where if plan else None,
              teacher=str(teacher.path) if teacher is not start else None,
              reference=dense_score if start is not dense_run else None, robust=spec.robust_search,
              importances=importances)
    study = open_study(job)
    done = len(completed(study))
    if not study.get_trials(deepcopy=False):
        # Seeds: the least-pruned uniform model within the hardware limits (what a fixed ratio would
        # pick), then cuts guided by each layer's sensitivity.
        uniform = _uniform_within(start.model, example, dev, limits, int8)
        seeds = [{g: uniform for g in sens["groups"]}] + guided_ratios(sens)
        first = "taylor" if importances is None else importances[0]  # DP: data-free criteria only
        for importance, ratios in [(first, seeds[0])] + [("l2", r) for r in seeds]:
            same = {f"importance:{p}": importance for p in plan.groups} if plan else {}  # seeds: one criterion
            study.enqueue_trial({"importance": importance, **same, **{f"ratio:{g}": r for g, r in ratios.items()}})
    elif done:
        log(f"resuming the search in {shown(job.storage)}: {done} of {trials} trials already done")
    if done < trials:
        poll = (lambda: log(f"  search: {len(completed(study))}/{trials} trials")) if progress else None
        run_pool(job, spec.workers or cpu_workers(), spec.ray, poll)
    candidates = [{"number": t.number, **t.user_attrs} for t in completed(study)]
    if not candidates:
        raise ConfigError(f"the search finished no trial (see {shown(job.storage)}); run the command again to "
                          "resume it")
    feasible = sorted((c for c in candidates if c.get("feasible")),
                      key=lambda c: (-c["val_score"], c["est_energy_uj"]))
    if not feasible:
        closest = min(candidates, key=lambda c: max(c["excess"].values()))
        worst = binding(closest["excess"])
        raise ConfigError(f"no candidate met every limit in {len(candidates)} trials: {LIMIT_WORDS[worst]} binds; "
                          f"closest: {_summary(closest, key)} ({limits.describe(worst, closest['excess'])}); "
                          "relax it, or run more --trials")
    if select == "uniform":  # uniform cuts first (the better criterion on validation first), the rest as fallbacks
        feasible.sort(key=lambda c: not is_uniform(c))
    elif folds and len(feasible) > 1:
        feasible = _rank_finalists(feasible, start, teacher, example, prepared, spec, folds, ranking, log)
    search_seconds = time.perf_counter() - started
    trial_seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in completed(study))
    search = _Search(dense_run=dense_run, prepared=prepared, dense=dense, candidates=candidates, sens=sens, key=key,
                     select=select, seconds=(search_seconds, trial_seconds), parts=plan.to_dict() if plan else None,
                     start=start, teacher=teacher, example=example, grow=grow_record, ranking=ranking,
                     scorer=scorer, dp=dp)
    return _finish(search, feasible, spec, limits, dev, out, data_root=data_root, overwrite=overwrite,
                   progress=progress, log=log)


TRY_FINALISTS = 3  # a finalist can still fail its measured checks; the next ones are tried before giving up
FINALISTS = 4  # the best on validation ranked again on inner folds (with the best uniform cut, if not among them)


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
    start: object = None  # the run the search pruned (the dense run, or a grown one)
    teacher: object = None  # the run every fine-tune distils from (the widest trained)
    example: object = None
    grow: dict | None = None
    ranking: dict | None = None
    scorer: object = None  # scoring.ValScore: how every model is scored on validation
    dp: dict | None = None  # _dp_plan: the noise every DP training of the fit uses


DATA_FREE_SEARCH = ("l2", "fpgm")  # the search's criteria that read no training windows (privacy.DATA_FREE)


def _dp_plan(spec: FitSpec, dense_run, prepared, log) -> dict:
    """One noise multiplier for every training the fit will run (the final fine-tune at each learning rate and
    in each cycle, and the two from-scratch baselines), so that all of them together spend ``spec.dp_epsilon``.
    Early stopping only spends less."""
    from wearprune.privacy import default_delta, planned_noise
    from wearprune.train import epochs_for_steps

    n, batch = len(prepared.train), dense_run.config["train"]["batch_size"]
    final = epochs_for_steps(spec.final_epochs, n, batch, FINAL_MIN_STEPS)
    planned = {"final fine-tunes": len(spec.final_lrs) * spec.cycles * final}
    if spec.baselines:
        planned["baselines"] = 2 * total_epochs(dense_run, spec.cycles * final)
    delta = spec.dp_delta or default_delta(n)
    noise = planned_noise(spec.dp_epsilon, delta, n, batch, sum(planned.values()))
    parent = (dense_run.metrics or {}).get("dp")
    if not parent:
        log(f"note: {dense_run.path} was trained without DP: the fit's ε covers its own trainings, not the weights "
            "it starts from (train the run with --dp-epsilon for a guarantee on the whole model)")
    log(f"DP-SGD: {sum(planned.values())} epochs planned ({', '.join(f'{k} {v}' for k, v in planned.items())}) at "
        f"noise multiplier {noise:.3f} spend at most eps {spec.dp_epsilon:g} at delta {delta:.2g}; the trials train "
        "nothing and score data-free cuts (l2, fpgm) on validation")
    return {"noise_multiplier": noise, "delta": delta, "epochs_planned": planned, "parent": parent}


def _check_reachable(model, example, dev, limits: Budget, int8: bool) -> None:
    """The smallest model the search can reach: if even it breaks a hardware limit, no search helps."""
    from wearprune.devices import estimate_cost
    from wearprune.prune import prune

    smallest, _ = prune(model, example, ratio=0.0, ratios={g: MAX_RATIO for g in groups_of(model, example)})
    cost = estimate_cost(smallest, example, dev, int8=int8)
    if not limits.fits(cost):
        excess = limits.excess(cost)
        worst = binding(excess)
        raise ConfigError(f"no pruned model can meet the limits on {dev.name}: {LIMIT_WORDS[worst]} binds even at "
                          f"{MAX_RATIO:.0%} of every layer pruned ({limits.describe(worst, excess)}); "
                          "relax that limit or pick a larger device")


def _reachable(dense_run, factor: float, example, dev, limits, int8, log) -> bool:
    """Whether the zoo model at ``factor`` × width can still be pruned to the limits (checked before training it)."""
    from wearprune.models import build_model

    arch = dense_run.architecture
    model = build_model(arch["model"], arch["spec"], arch["width"] * factor, **arch.get("options", {}))
    try:
        _check_reachable(model, example, dev, limits, int8)
    except ConfigError:
        log(f"note: x{factor:g} is too wide to prune to the limits (even {MAX_RATIO:.0%} of every layer cut "
            "breaks one): not grown")
        return False
    return True


def _few(prepared) -> bool:
    return 0 < len(prepared.split.val_subjects) < MIN_RANKING_SUBJECTS


def _ranking_folds(spec: FitSpec, prepared, log):
    """Inner folds over the training + validation subjects for ranking finalists, or (None, None) when
    ``rank_folds`` is 0 or the data hold too few subjects (then validation alone ranks, as before)."""
    from wearprune.errors import DataError

    if spec.rank_folds < 2:
        return None, None
    try:
        folds = inner_folds(prepared, spec.rank_folds, spec.seed)
    except DataError as e:
        log(f"note: {e}: finalists are ranked on the validation subjects")
        return None, None
    check_no_test_subjects(folds, prepared.split.test_subjects)
    return folds, {"method": f"{spec.rank_folds} inner folds over the training and validation subjects (never the "
                             "test subjects); each finalist fine-tuned on the other folds, scored on the held-out one",
                   "folds": [held for _, _, held in folds], "epochs": spec.trial_epochs}


def _pruned_candidate(c: dict, start, example, prepared, calib):
    """The candidate's model pruned from the start run again (a per-part candidate by its recipe)."""
    from wearprune.prune.recipe import Recipe, apply_recipe

    pruned, _ = apply_recipe(start.model, example, Recipe.from_dict(_recipe_of(c)), calib=calib,
                             task=prepared.dataset.task)
    return pruned


def _recipe_of(c: dict) -> dict:
    return c.get("recipe") or {"steps": [{"method": "channel", "ratio": 0.0, "importance": c["importance"],
                                          "ratios": c["ratios"]}]}


def _rank_finalists(feasible, start, teacher, example, prepared, spec, folds, ranking, log) -> list[dict]:
    """The best ``FINALISTS`` on validation plus the best uniform cut, ranked by their mean inner-fold score;
    the other feasible candidates follow as fallbacks, in validation order."""
    finalists = feasible[:FINALISTS]
    uniform = next((c for c in feasible if is_uniform(c)), None)
    if uniform is not None and uniform not in finalists:
        finalists.append(uniform)
    from wearprune.data.prepare import calibration_sample

    log(f"ranking {len(finalists)} finalists on {len(folds)} inner folds over the training subjects")
    calib = calibration_sample(prepared, start.config["train"]["seed"], 512)  # once for every finalist
    for c in finalists:
        model = _pruned_candidate(c, start, example, prepared, calib)
        c["inner"] = inner_score(model, teacher.model, folds, start.config["train"], spec.trial_epochs,
                                 prepared.target_scale, spec.seed)
    ranked = sorted(finalists, key=lambda c: (-c["inner"]["mean"], -c["val_score"]))
    ranking["finalists"] = [{"number": c["number"], "uniform": is_uniform(c), "val_score": c["val_score"],
                             "inner_mean": c["inner"]["mean"], "inner_scores": c["inner"]["scores"]} for c in ranked]
    return ranked + [c for c in feasible if c not in finalists]


def _pick_width(grown, teacher, example, dev, limits, spec, prepared, folds, key, log):
    """``--grow auto``: each trained width cut uniformly to the budget and fine-tuned (distilled from the
    teacher); the best on the inner folds (or on validation, without them) starts the search."""
    from wearprune.autofit.sensitivity import score
    from wearprune.prune import prune
    from wearprune.train import TrainConfig, epochs_for_steps
    from wearprune.train import fit as fit_model

    probes = {}
    for w, r in grown.items():
        ratio = _uniform_within(r.model, example, dev, limits, spec.int8)
        pruned, summary = prune(r.model, example, ratio=ratio)
        if folds:
            got = inner_score(pruned, teacher.model, folds, r.config["train"], spec.final_epochs,
                              prepared.target_scale, spec.seed)["mean"]
        else:
            epochs = epochs_for_steps(spec.final_epochs, len(prepared.train), r.config["train"]["batch_size"],
                                      FINAL_MIN_STEPS)
            cfg = TrainConfig(**{**r.config["train"], "epochs": epochs, "lr": 1e-3, "seed": spec.seed,
                                 "patience": epochs, "device": "auto"})
            fit_model(pruned, prepared.train, prepared.val, cfg, teacher=teacher.model,
                      target_scale=prepared.target_scale)
            got = score(pruned, prepared.val, prepared.target_scale)
        probes[f"x{w:g}"] = {"uniform_ratio": ratio, "macs": summary["macs_after"], "score": got}
        log(f"  grow x{w:g}: uniform cut {ratio:.0%} to the budget, {'inner-fold' if folds else 'validation'} "
            f"{key} {abs(got):.3f}")
    best = max(grown, key=lambda w: probes[f"x{w:g}"]["score"])
    log(f"the search starts from x{best:g}")
    return best, probes


def _finish(search: _Search, feasible, spec: FitSpec, limits: Budget, dev, out, *, data_root, overwrite, progress,
            log) -> FitResult:
    """Fine-tune the best candidate for longer, weigh it against the from-scratch baselines, export the best
    and check what was measured: TensorFlow Lite Micro's own arena (plus the C header's headroom) and flash
    against the limits, and the validation drop against --max-drop. A contender that fails is dropped for the
    next one; a finalist whose contenders all fail, for the next finalist."""
    dense, key = search.dense, search.key
    rejected, uniform_cache = [], {}
    # under DP the noise was planned for one round of trainings: another finalist's would spend more than ε
    for winner in feasible[:1 if search.dp else TRY_FINALISTS]:
        log(f"fine-tuning the winner (trial {winner['number']}: {_summary(winner, key)})"
            + (f" in {spec.cycles} cuts" if spec.cycles > 1 and not winner.get("recipe") else ""))
        final, recovery = _recover(search, winner, spec, progress, log)
        final_score = search.scorer(final.model)
        drop = (dense["val_score"] - final_score) * (100.0 if key == "macro_f1" else 1.0)
        if limits.max_drop is not None and drop > limits.max_drop:
            rejected.append(f"trial {winner['number']}: validation drop {drop:.2f} > {limits.max_drop:g}")
            log(f"  {rejected[-1]} after fine-tuning; trying the next candidate")
            continue
        winner = {**winner, "final_val_score": final_score, "final_drop": drop, "selected_by": search.select}
        contenders = [_contender("fit", final, search, recovery["seconds"])]
        if spec.baselines and any(r > 0 for r in winner["ratios"].values()):
            contenders += _baselines(search, final, spec, dev, limits, uniform_cache, recovery, log)
        if search.dp:
            _account(search, spec, recovery, contenders, log)
        contenders.sort(key=lambda c: (-c.val_score, c.val_loss))
        if contenders[0].name != "fit":
            best = contenders[0]
            log(f"the {best.name.replace('_', ' ')} baseline beats the pruned winner on validation "
                f"({best.val_score:.3f} vs {final_score:.3f}): shipping it (docs/budget.md)")
        for contender in contenders:
            try:
                return _ship(search, contender, contenders, winner, recovery, spec, limits, dev, out,
                             overwrite=overwrite, progress=progress)
            except _Rejected as e:
                rejected.append(f"trial {winner['number']} ({contender.name}): {e}")
            except ConfigError as e:  # export refused it (e.g. int8 diverged): the next one may pass
                rejected.append(f"trial {winner['number']} ({contender.name}): {e}")
            log(f"  {rejected[-1]}; trying the next candidate")
    raise ConfigError(f"the best {len(rejected)} candidates failed their measured checks ({'; '.join(rejected)}); "
                      "tighten the limits slightly so the estimates leave room, or run more --trials")


@dataclass
class _Contender:
    name: str  # fit, scratch or uniform_width
    run: object  # a Run in memory
    val_score: float
    val_loss: float  # classification: validation cross-entropy, which breaks ties of the metric (0 for regression)
    seconds: float  # its own training or fine-tuning time


def _contender(name: str, run, search: _Search, seconds: float) -> _Contender:
    return _Contender(name, run, search.scorer(run.model), _val_loss(run.model, search.prepared.val), seconds)


def _account(search: _Search, spec: FitSpec, recovery: dict, contenders: list[_Contender], log) -> None:
    """The ε of the whole fit: every DP training it ran (each learning rate's fine-tune, the baselines), composed
    with the run's own; the shipped model's release depends on all of them (validation picked among them)."""
    from wearprune.privacy import combined

    records = recovery.pop("dp_records") + [c.run.metrics["dp"] for c in contenders if c.name != "fit"]
    total = combined(records, delta=search.dp["delta"], epsilon_target=spec.dp_epsilon,
                     max_grad_norm=spec.dp_max_grad_norm, parent=search.dp["parent"],
                     what="every training of the fit: the final fine-tune at each learning rate (and cycle), the "
                          "from-scratch baselines; the trials trained nothing")
    total["not_covered"] = (f"{total.get('not_covered') or ''}; the validation subjects' windows (they rank the "
                            "trials and pick the shipped model and its epoch, without noise)").lstrip("; ")
    for c in contenders:
        c.run.metrics["dp"] = total
    search.dp["spent"] = total
    shown = f"{total['epsilon_total']:.2f} with the run's own training" if total["epsilon_total"] is not None else \
        "no guarantee for the whole model (its start was trained without DP)"
    log(f"DP: the fit's trainings spent eps {total['epsilon']:.2f} of {spec.dp_epsilon:g} (delta "
        f"{total['delta']:.2g}, {total['accountant']} accountant); {shown}")


def _val_loss(model, val) -> float:
    """Mean cross-entropy on validation (0 for regression): a few validation windows often tie on macro-F1."""
    import numpy as np
    import torch

    from wearprune.evaluate import predict

    if val.task != "classification":
        return 0.0
    logits = torch.from_numpy(predict(model, val.X))
    return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(np.asarray(val.y))))


def _recover(search: _Search, winner: dict, spec: FitSpec, progress: bool, log):
    """The winner pruned from the start run (in ``spec.cycles`` cuts unless it is a per-part recipe), each cut
    fine-tuned with distillation from the teacher; one such fine-tune per learning rate, the best on
    validation kept (its epoch chosen by early stopping on validation)."""
    from wearprune.prune.schedule import cycle_ratios
    from wearprune.train import epochs_for_steps
    from wearprune.verbs.prune import prune_run

    recipe, cycles = _recipe_of(winner), 1
    if spec.cycles > 1 and not winner.get("recipe"):
        sizes = groups_of(search.start.model, search.example)
        steps = cycle_ratios(sizes, winner["ratios"], spec.cycles)
        recipe = {"steps": [{"method": "channel", "ratio": 0.0, "importance": winner["importance"], "ratios": r}
                            for r in steps]}
        cycles = spec.cycles
    elif spec.cycles > 1:
        log("  note: a per-part winner is cut in one step (--cycles applies to single-criterion candidates)")
    epochs = epochs_for_steps(spec.final_epochs, len(search.prepared.train), search.start.config["train"]["batch_size"],
                              FINAL_MIN_STEPS)
    best, tried, started, dp_records = None, [], time.perf_counter(), []
    dp = ({"dp_epsilon": spec.dp_epsilon, "dp_delta": search.dp["delta"], "dp_max_grad_norm": spec.dp_max_grad_norm,
           "dp_noise": search.dp["noise_multiplier"]} if search.dp else {})
    for lr in spec.final_lrs:
        final = prune_run(search.start, None, recipe=recipe, cycles=cycles, finetune_epochs=epochs, lr=lr,
                          prepared=search.prepared, teacher=search.teacher.model, progress=progress,
                          harden=spec.harden, harden_eps=spec.harden_eps, **dp)
        if search.dp:
            dp_records.append(final.metrics["dp"])
        got = search.scorer(final.model)
        tried.append({"lr": lr, "val_score": got, "best_epoch": final.metrics.get("history", {}).get("best_epoch")})
        if len(spec.final_lrs) > 1:
            log(f"  final fine-tune at lr {lr:g}: validation {search.key} {abs(got):.3f}")
        if best is None or got > best[1]:
            best = (final, got, lr)
    return best[0], {"cycles": cycles, "epochs_per_cycle": epochs, "tried": tried, "lr": best[2],
                     "seconds": time.perf_counter() - started, **({"dp_records": dp_records} if search.dp else {})}



def _baselines(search: _Search, final, spec: FitSpec, dev, limits: Budget, uniform_cache: dict, recovery: dict,
               log) -> list[_Contender]:
    """The winner's architecture from scratch, and the zoo model at the width that meets the limits, both trained
    with the dense run's recipe for the epochs the winner saw in total."""
    from wearprune.runs import Run, architecture_of
    from wearprune.verbs.evaluate import measure

    prepared, start = search.prepared, search.start
    epochs = total_epochs(start, recovery["cycles"] * recovery["epochs_per_cycle"])
    seed = start.config["train"]["seed"]
    # hardened (and private) like the winner's fine-tune, so that the comparison stays fair
    train_cfg = {**start.config["train"], "harden": spec.harden, "harden_eps": spec.harden_eps}
    if search.dp:
        train_cfg.update(dp_epsilon=spec.dp_epsilon, dp_delta=search.dp["delta"],
                         dp_max_grad_norm=spec.dp_max_grad_norm, dp_noise_multiplier=search.dp["noise_multiplier"])
    out = []
    started = time.perf_counter()
    log(f"baselines: the winner's architecture from scratch, and the zoo model at one width within the limits "
        f"({epochs} epochs each)")
    model = fresh_copy(final.model, seed)
    history = train_baseline(model, prepared, train_cfg, epochs, seed)
    metrics, _ = measure(model, prepared)
    metrics["history"] = history.to_dict()
    if history.dp:
        metrics["dp"] = history.dp
    config = {**start.config, "train": {**train_cfg, "epochs": epochs}, "baseline": "scratch"}
    out.append(_contender("scratch", Run(path=Path("scratch"), config=config, architecture=final.architecture,
                                         model=model, metrics=metrics), search, time.perf_counter() - started))
    if "width" not in uniform_cache:
        uniform_cache["width"] = uniform_width(start.architecture, search.example, dev, limits, spec.int8)
    width = uniform_cache["width"]
    if width is None:
        log("  no width multiplier of the zoo model meets the limits: no uniform-width baseline")
        return out
    started = time.perf_counter()
    arch = start.architecture
    model = build_uniform(arch, width, seed)
    history = train_baseline(model, prepared, train_cfg, epochs, seed)
    metrics, _ = measure(model, prepared)
    metrics["history"] = history.to_dict()
    if history.dp:
        metrics["dp"] = history.dp
    config = {**start.config, "model": {**start.config["model"], "width": width},
              "train": {**train_cfg, "epochs": epochs}, "baseline": "uniform_width"}
    uniform_arch = architecture_of(arch["model"], width, arch["spec"], options=arch.get("options"))
    out.append(_contender("uniform_width", Run(path=Path("uniform_width"), config=config, architecture=uniform_arch,
                                               model=model, metrics=metrics), search, time.perf_counter() - started))
    for c in out:
        log(f"  {c.name}: validation {search.key} {abs(c.val_score):.3f} ({c.seconds:.0f} s)")
    return out


def _label(c: _Contender) -> str:
    """How the report names a contender."""
    if c.name == "uniform_width":
        return f"uniform width x{c.run.architecture.get('width', 0):.3g}"
    return {"fit": "pruned winner", "scratch": "from scratch"}.get(c.name, c.name)


def _record(c: _Contender, search: _Search, dev, int8: bool) -> dict:
    """What fit.json keeps of a contender: its scores (validation; test, measured in PyTorch) and costs."""
    from wearprune.devices import estimate_cost

    cost = estimate_cost(c.run.model, search.example, dev, int8=int8)
    test = c.run.metrics.get("test", {})
    return {"val_score": c.val_score, "val_loss": c.val_loss,
            "test": {k: test[k] for k in ("macro_f1", "accuracy", "mae") if k in test},
            "macs": cost.macs, "params": cost.params, "est_arena_bytes": cost.arena_bytes,
            "est_flash_bytes": cost.flash_bytes, "est_latency_ms": cost.latency_ms, "est_energy_uj": cost.energy_uj,
            "width": c.run.architecture.get("width"), "seconds": c.seconds,
            "epochs": len(c.run.metrics.get("history", {}).get("epochs", []))}


def _ship(search: _Search, chosen: _Contender, contenders: list[_Contender], winner: dict, recovery: dict,
          spec: FitSpec, limits: Budget, dev, out, *, overwrite: bool, progress: bool) -> FitResult:
    """Write ``chosen`` as the output run, export it and check it in TensorFlow Lite Micro; the other contenders
    go under ``baselines/`` as runs of their own. Raises _Rejected (nothing written) when a measured figure
    breaks a limit."""
    from wearprune.export.c_array import ARENA_HEADROOM
    from wearprune.report import build_report, write_report
    from wearprune.runs import Run, save_run
    from wearprune.verbs.export import export_run

    int8, candidates = spec.int8, search.candidates
    fit_config = {"device": dev.name, "limits": limits.to_dict(), "trial": winner["number"], "int8": int8,
                  "spec": spec.to_dict(), "shipped": chosen.name,
                  **({"criteria": winner["criteria"], "parts": search.parts} if search.parts else {})}
    final = chosen.run
    config = {**final.config, "fit": fit_config}
    records = {c.name: _record(c, search, dev, int8) for c in contenders}
    with atomic_directory(out, overwrite=overwrite) as stage:
        save_run(stage, model=final.model, config=config, architecture=final.architecture, metrics=final.metrics,
                 overwrite=True)
        result = export_run(stage, ExportSpec(formats=("tflite", "c"), int8=int8), prepared=search.prepared,
                            progress=progress)
        measured = result["checks"]["int8" if int8 else "fp32"]
        arena = measured["arena_bytes"] + ARENA_HEADROOM  # what the C header reserves
        flash = measured["tflite_bytes"] + dev.runtime_flash_kb * 1024
        if arena > limits.max_ram_kb * 1024 or flash > limits.max_flash_kb * 1024:
            raise _Rejected(f"measured arena {arena / 1024:.1f} KB / flash {flash / 1024:.0f} KB over "
                            f"{limits.max_ram_kb:g} / {limits.max_flash_kb:g} KB")
        others = []
        for c in contenders:
            if c is chosen:
                continue
            path = stage / "baselines" / c.name
            save_run(path, model=c.run.model, config={**c.run.config, "fit": {**fit_config, "shipped": c.name}},
                     architecture=c.run.architecture, metrics=c.run.metrics, overwrite=True)
            others.append(Run(path=Path(_label(c)), config=c.run.config, architecture=c.run.architecture,
                              model=c.run.model, metrics=c.run.metrics))
        pareto = {cost: [candidates[i]["number"] for i in
                         pareto_front([(c[cost], c["val_score"]) for c in candidates], higher_is_better=True)]
                  for cost in ("est_energy_uj", "est_latency_ms")}
        fit_record = FitResult(path=out, winner=winner, dense=search.dense, candidates=candidates, pareto=pareto,
                               measured=result["checks"], search_seconds=search.seconds[0],
                               trial_seconds=search.seconds[1], limits=limits.to_dict(), parts=search.parts,
                               shipped=chosen.name, contenders=records if len(contenders) > 1 else None,
                               grow=search.grow, ranking=search.ranking, recovery=recovery,
                               scoring=search.scorer.describe(),
                               privacy={k: v for k, v in search.dp.items() if k != "parent"} if search.dp else None)
        atomic_write_json(stage / "fit.json", {**fit_record.to_dict(), "sensitivity": search.sens,
                                               "validation_subjects": list(search.prepared.split.val_subjects)})
        staged = Run(path=stage, config=config, architecture=final.architecture, model=final.model,
                     metrics={**final.metrics, "tflm": result["checks"]})
        extra = others + ([Run(path=Path(f"teacher x{search.grow['teacher']['factor']:g}"),
                               config=search.teacher.config, architecture=search.teacher.architecture,
                               model=search.teacher.model, metrics=search.teacher.metrics)]
                          if search.grow and search.teacher is not search.dense_run else [])
        report = build_report([search.dense_run, staged, *extra], dev, baseline=search.dense_run, int8=int8)
        report["runs"][1].update(name=f"{out.name} ({_label(chosen)})", path=str(out))  # not the staging dir
        report["shipped"] = chosen.name
        report["search"] = {
            "candidates": [{k: c[k] for k in ("number", "val_score", "est_energy_uj", "est_latency_ms",
                                              "feasible")} for c in candidates],
            "pareto": pareto, "winner": winner["number"],
            "limit": {"est_energy_uj": limits.max_energy_uj, "est_latency_ms": limits.max_latency_ms},
            "score_label": "validation MAE (negated)" if search.key == "mae" else "validation macro-F1"}
        write_report(report, stage / "report")
    return fit_record


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
