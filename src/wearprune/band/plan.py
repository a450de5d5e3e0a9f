"""``band plan``: fit every task of a band to one chip together.

Per task (``BAND/tasks/<name>/``): the dense model (trained, or a copy of the given run), its fit to
the band's device (``wearprune fit``: search, baselines, TFLite Micro check), and a ladder of cheaper
prunes of the fitted model (MACs / 2, / 4 by default, each fine-tuned with distillation and checked in
TFLite Micro). Those variants are each task's candidates. The joint plan picks one variant per task,
over every combination, so that the models fit the chip's flash and RAM together, every task meets its
accuracy floor on its validation subjects, and battery life is longest (or, with ``objective:
accuracy``, the accuracy is highest while lasting ``min_days``). The policy adds runtime adaptation:
per battery level, which variant each task runs.

Finished task folders are reused when the task's spec is unchanged, so a killed plan resumes.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from .ledger import Variant, duty, energy_per_day, higher_is_better, meets, memory, policy_days
from .spec import FIT_DEFAULTS, OBJECTIVES, BandSpec, TaskSpec, load_band_spec

# a task's fit limits latency to its dense model's estimate / this, unless its fit: says. 2.5 is about 4x fewer
# MACs on a Cortex-M: per-op costs do not shrink with the channels (docs/target_cost.md)
FIT_SHRINK = 2.5
MAX_RATIO = 0.9  # the deepest uniform cut a ladder rung may take


def plan(spec: BandSpec | str | Path, out: str | Path, *, data_root: str | None = None, overwrite: bool = False,
         objective: str | None = None, min_days: float | None = None, log=print) -> dict:
    """Plan the band: per-task runs under ``out/tasks``, ``out/band.json`` and ``out/report.html``.
    ``objective`` ("battery" | "accuracy") and ``min_days`` override the spec's. Returns band.json's dict."""
    from ..devices import load_device
    from ..io import atomic_write_json
    from .report import write_band_report

    spec = spec if isinstance(spec, BandSpec) else load_band_spec(spec)
    if objective is not None or min_days is not None:
        from dataclasses import replace

        if objective is not None and objective not in OBJECTIVES:
            raise ConfigError(f"--objective must be battery or accuracy, got {objective!r}")
        if min_days is not None and not min_days > 0:
            raise ConfigError(f"--min-days must be positive, got {min_days}")
        spec = replace(spec, objective=objective or spec.objective,
                       min_days=min_days if min_days is not None else spec.min_days)
    dev = load_device(spec.device)
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "tasks").is_dir())):
        raise ConfigError(f"--out {out} exists and is not a band folder; give a new folder (a band folder is "
                          "reused: its finished tasks are kept)")
    out.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, dict] = {}
    for i, task in enumerate(spec.tasks):
        log(f"task {task.name} ({i + 1}/{len(spec.tasks)}): {task.data}, one inference every {task.every_s:g} s "
            f"({task.hours}), floor {task.floor:g}")
        tasks[task.name] = _task_variants(task, spec, dev, out / "tasks" / task.name, data_root, overwrite, log)
    for info in tasks.values():  # run folders relative to the band folder: the folder can move as a whole
        for v in info["variants"]:
            v["run"] = os.path.relpath(v["run"], out)
    doc = choose(spec, dev, tasks)
    doc["seconds"] = round(sum(t["seconds"] for t in tasks.values()), 1)  # building every task's variants
    atomic_write_json(out / "band.json", doc)
    write_band_report(doc, out)
    return doc


# -- one task: dense, fit, ladder ------------------------------------------------------------------
def _task_variants(task: TaskSpec, spec: BandSpec, dev, folder: Path, data_root, overwrite: bool, log) -> dict:
    from ..data.prepare import prepare_from_config
    from ..io import atomic_write_json
    from ..runs import load_run

    stamp = {"task": _runs_depend_on(_task_dict(task)), "device": dev.name}
    mark = folder / "task.json"
    stored = json.loads(mark.read_text()) if mark.exists() else {}
    if stored and _stamp(stored) != stamp:
        if not overwrite:
            raise ConfigError(f"{folder} was planned for another spec of task {task.name} (or another device); "
                              "use --overwrite to redo it, or another --out")
        shutil.rmtree(folder)
        stored = {}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(mark, {**stored, **stamp})
    started = time.time()
    try:
        dense = _dense(task, folder / "dense", data_root, log)
        prepared = prepare_from_config(dense.config, data_root)
        fitted = _fit(task, spec, dev, dense, folder / "fit", prepared, data_root, log)
        runs = [("dense", dense), ("fit", fitted)]
        for factor in task.ladder:
            name = f"fit/{factor:g}"
            runs.append((name, _rung(fitted, factor, folder / f"fit-div{factor:g}", prepared, data_root, log)))
        runs = [(n, load_run(r.path)) for n, r in runs]
        variants = [_variant(task, name, run, prepared, dev) for name, run in runs]
    except ConfigError as e:
        raise ConfigError(f"task {task.name}: {e}") from None
    # seconds spent building the task's variants (by the invocation that finished them)
    seconds = stored["seconds"] if stored.get("done") else time.time() - started
    atomic_write_json(mark, {**stamp, "seconds": round(seconds, 1), "done": True})
    key = _metric(prepared)
    fit_json = folder / "fit" / "fit.json"
    limits = json.loads(fit_json.read_text()).get("limits") if fit_json.exists() else None
    return {"metric": key, "seconds": round(seconds, 1), "higher_is_better": higher_is_better(key),
            "fit_limits": limits, "fit_shipped": _shipped(fit_json),
            "floor": task.floor, "every_s": task.every_s,
            "hours": task.hours, "inferences_per_day": spec.inferences_per_day(task), "data": task.data,
            "split": prepared.split.name, "test_subjects": sorted(set(prepared.test.subjects.tolist())),
            "variants": [v.to_dict() for v in variants]}


def _shipped(fit_json: Path) -> str | None:
    """Which contender the task's fit shipped (the pruned winner, or a baseline that beat it)."""
    if not fit_json.exists():
        return None
    shipped = json.loads(fit_json.read_text()).get("shipped")
    return shipped if isinstance(shipped, str) else None


def _runs_depend_on(task: dict) -> dict:
    """The fields a task's runs depend on: its rate, hours and floor only matter to the joint choice."""
    return {k: v for k, v in task.items() if k not in ("every_s", "hours", "floor")}


def _stamp(stored: dict) -> dict:
    return {"task": _runs_depend_on(stored.get("task", {})), "device": stored.get("device")}


def _task_dict(task: TaskSpec) -> dict:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(task)))


def _metric(prepared) -> str:
    return "macro_f1" if prepared.dataset.task == "classification" else "mae"


def _complete(path: Path) -> bool:
    """A run directory that has been exported and checked in TensorFlow Lite Micro (int8)."""
    try:
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return "int8" in metrics.get("tflm", {})


def _export(path: Path, data_root, prepared=None) -> None:
    from ..verbs import export_run

    if not _complete(path):
        export_run(path, formats=("tflite",), data_root=data_root, prepared=prepared)


def _dense(task: TaskSpec, path: Path, data_root, log):
    from ..runs import load_run
    from ..train import TrainConfig
    from ..verbs import train

    if not (path / "model.safetensors").exists():
        if task.run:
            log(f"  dense: copying {task.run}")
            load_run(task.run)  # a bad run fails here with its own line
            tmp = path.with_name(path.name + ".copy")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(task.run, tmp, ignore=shutil.ignore_patterns("*.tflite", "*.onnx", "*_data.[ch]",
                                                                         "fit.db*", "grow-*"))
            tmp.rename(path)
        else:
            log(f"  dense: training {task.model} (width {task.width:g}) on {task.data}")
            train(task.data, task.model, path, width=task.width, config=TrainConfig(epochs=task.epochs),
                  data_root=data_root, data_options=task.data_options or None)
    _export(path, data_root)
    return load_run(path)


def _fit(task: TaskSpec, spec: BandSpec, dev, dense, path: Path, prepared, data_root, log):
    from ..autofit import fit
    from ..devices import estimate_cost
    from ..runs import load_run
    from ..specs import FitSpec

    if _complete(path):
        return load_run(path)
    fields = {**FIT_DEFAULTS, **task.fit}
    if not any(k in fields for k in ("max_latency_ms", "max_energy_uj")):
        x1 = torch.from_numpy(prepared.test.X[:1])
        dense_ms = estimate_cost(dense.model, x1, dev, int8=True).latency_ms
        fields["max_latency_ms"] = dense_ms / FIT_SHRINK
    log(f"  fit to {dev.name}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in fields.items()))
    result = fit(dense.path, FitSpec(device=spec.device, **fields), path, data_root=data_root, overwrite=True,
                 log=lambda m: log("    " + m))
    return load_run(result.path)


def _rung(fitted, factor: float, path: Path, prepared, data_root, log):
    """The fitted model pruned uniformly (taylor) to its MACs / ``factor``, fine-tuned with distillation
    from the fitted model, exported and checked in TFLite Micro."""
    from ..runs import load_run
    from ..verbs import prune_run

    if not _complete(path):
        ratio, macs = _ratio_for(fitted.model, torch.from_numpy(prepared.train.X[:1]), factor)
        epochs = int((fitted.config.get("prune") or {}).get("finetune_epochs") or FIT_DEFAULTS["final_epochs"])
        log(f"  ladder: fit / {factor:g} (uniform channel cut {ratio:.2f}, {macs:,} MACs, taylor, {epochs} epochs "
            "distilled from the fitted model)")
        prune_run(fitted, path, method="channel", ratio=ratio, importance="taylor", finetune_epochs=epochs,
                  distill=True, prepared=prepared, overwrite=True)
        _export(path, data_root, prepared)
    return load_run(path)


def _ratio_for(model, x1: torch.Tensor, factor: float) -> tuple[float, int]:
    """(uniform channel ratio, MACs) that cuts ``model``'s MACs by ``factor``; the deepest cut (``MAX_RATIO``)
    where frozen or protected layers keep the MACs above the target."""
    from ..profile import count_macs
    from ..prune import prune, ratio_for_macs

    try:
        ratio, _, summary = ratio_for_macs(model, x1, int(count_macs(model, x1) / factor), max_ratio=MAX_RATIO)
        return round(ratio, 4), summary.macs_after
    except ConfigError:
        return MAX_RATIO, count_macs(prune(model, x1, ratio=MAX_RATIO)[0], x1)


def _variant(task: TaskSpec, name: str, run, prepared, dev) -> Variant:
    from ..devices import estimate_cost
    from ..evaluate import headline, predict, task_metrics
    from ..export.tflm import tflite_summary

    key = _metric(prepared)
    tflm = run.metrics["tflm"]["int8"]
    state = int(tflm.get("state_bytes", 0)) if tflm.get("streaming") else 0
    first = "model_frontend_int8.tflite" if (run.path / "model_frontend_int8.tflite").exists() else (
        "model_step_int8.tflite" if tflm.get("streaming") else "model_int8.tflite")
    window = int(tflite_summary((run.path / first).read_bytes())["input_bytes"][0])
    x1 = torch.from_numpy(prepared.test.X[:1])
    cost = estimate_cost(run.model, x1, dev, int8=True)
    model = run.model.eval()

    def score(side) -> float:
        return float(headline(task_metrics(side, predict(model, side.X), prepared.target_scale))[1])

    return Variant(task=task.name, name=name, run=str(run.path), macs=int(cost.macs), params=int(cost.params),
                   model_bytes=int(tflm["tflite_bytes"]), arena_bytes=int(tflm["arena_bytes"]) - state,
                   window_bytes=window, state_bytes=state, latency_ms=float(cost.latency_ms),
                   energy_uj=float(cost.energy_uj), val=score(prepared.val), test=score(prepared.test),
                   test_int8=float(tflm[key]))


# -- the joint choice ------------------------------------------------------------------------------
def _relative(v: dict, dense: dict, higher: bool) -> float:
    """A variant's validation score relative to its task's dense model (1 = as good; higher is better)."""
    if higher:
        return v["val"] / dense["val"] if dense["val"] else 0.0
    return dense["val"] / v["val"] if v["val"] else float("inf")


def choose(spec: BandSpec, dev, tasks: dict[str, dict]) -> dict:
    """The plan, the policy and the comparisons (band.json) from every task's variants."""
    names = [t.name for t in spec.tasks]
    variants = {n: [Variant.from_dict(v) for v in tasks[n]["variants"]] for n in names}
    for i, t in enumerate(spec.tasks):
        info = tasks[t.name]
        ok = [v for v in variants[t.name] if meets(v.val, t.floor, info["metric"])]
        if not ok:
            best = max(variants[t.name], key=lambda v: v.val if info["higher_is_better"] else -v.val)
            word = "at least" if info["higher_is_better"] else "at most"
            raise ConfigError(f"tasks[{i}].floor: no variant of task {t.name} meets {info['metric']} {word} "
                              f"{t.floor:g} on its validation subjects (best: {best.name} {best.val:.3f}); "
                              "lower the floor or give the task a larger model")
    combos = []
    for picked in itertools.product(*(variants[n] for n in names)):
        choice = dict(zip(names, picked))
        combos.append(_combo(spec, dev, tasks, choice))
    fits = [c for c in combos if c["fits"]]
    if not fits:
        raise ConfigError(_memory_binds(spec, dev, variants))
    with_floors = [c for c in fits if c["floors_met"]]
    if not with_floors:
        raise ConfigError("no combination of variants meets every floor within the chip's flash and RAM; "
                          f"{_memory_binds(spec, dev, variants)}")
    longest = max(with_floors, key=lambda c: (c["energy"]["days"], c["accuracy"]))
    best_acc = max(with_floors, key=lambda c: (c["accuracy"], c["energy"]["days"]))
    if spec.objective == "accuracy":
        enough = [c for c in with_floors if spec.min_days is None or c["energy"]["days"] >= spec.min_days]
        if not enough:
            raise ConfigError(f"min_days {spec.min_days:g}: the longest-lasting plan that meets every floor lasts "
                              f"{longest['energy']['days']:.2f} days; {_energy_binds(longest)}")
        chosen = max(enough, key=lambda c: (c["accuracy"], c["energy"]["days"]))
    else:
        chosen = longest
        if spec.min_days is not None and chosen["energy"]["days"] < spec.min_days:
            raise ConfigError(f"min_days {spec.min_days:g}: the longest-lasting plan that meets every floor lasts "
                              f"{chosen['energy']['days']:.2f} days; {_energy_binds(chosen)}")
    cheapest = min(fits, key=lambda c: (c["energy"]["total_j"], -c["accuracy"]))
    levels = [best_acc if spec.objective == "battery" else chosen, longest, cheapest]
    policy = _policy(spec, dev, tasks, levels)
    fixed = {"all dense": _combo(spec, dev, tasks, {n: variants[n][0] for n in names}),
             "all fitted": _combo(spec, dev, tasks, {n: variants[n][1] for n in names})}
    for (level, _), c in zip(spec.levels, levels):
        fixed[f"{level} level only"] = c
    return {
        "format": "wearprune-band", "version": 1, "spec": spec.to_dict(),
        "device": {"name": dev.name, "title": dev.title, "flash_kb": dev.flash_kb, "sram_kb": dev.sram_kb,
                   "runtime_flash_kb": dev.runtime_flash_kb, "sleep_uw": dev.sleep_uw, "active_mw": dev.active_mw,
                   "sources": dev.sources},
        "objective": spec.objective, "min_days": spec.min_days,
        "tasks": tasks, "plan": chosen, "binds": _binds(spec, tasks, chosen, variants),
        "policy": policy, "fixed": fixed,
        "labels": {"sizes": "model flash and TFLite Micro arena measured (int8 .tflite files, arena recorder)",
                   "energy": f"energy per inference and latency estimated by the cost model on {dev.name}; "
                             "baseline currents as the spec sources them",
                   "metrics": "val: validation subjects (PyTorch fp32), test: test subjects (fp32), test_int8: test "
                              "subjects in TensorFlow Lite Micro (int8); each task's own subject-wise split",
                   "choice": "one variant per task over every combination (each task's candidates: dense, its fit, "
                             "and the fit's ladder)"},
    }


def _combo(spec: BandSpec, dev, tasks: dict, choice: dict[str, Variant]) -> dict:
    mem = memory(dev, {n: [v] for n, v in choice.items()})
    energy = energy_per_day(spec, dev, choice)
    duties = duty(spec, choice)
    floors = {t.name: meets(choice[t.name].val, t.floor, tasks[t.name]["metric"]) for t in spec.tasks}
    acc = float(np.mean([_relative(choice[n].to_dict(), tasks[n]["variants"][0], tasks[n]["higher_is_better"])
                         for n in choice]))
    return {"choice": {n: v.name for n, v in choice.items()}, "memory": mem, "energy": energy, "duty": duties,
            "fits": mem["flash_use"] <= 1 and mem["ram_use"] <= 1 and all(d <= 1 for d in duties.values()),
            "floors_met": all(floors.values()), "floors": floors, "accuracy": acc,
            "metrics": {n: {"val": v.val, "test": v.test, "test_int8": v.test_int8} for n, v in choice.items()}}


def _policy(spec: BandSpec, dev, tasks: dict, levels: list[dict]) -> dict:
    """Battery level -> variant per task; every variant it may switch to stays in flash."""
    by_name = {n: {v["name"]: Variant.from_dict(v) for v in t["variants"]} for n, t in tasks.items()}
    present = {n: [by_name[n][name] for name in dict.fromkeys(c["choice"][n] for c in levels)] for n in tasks}
    mem = memory(dev, present)
    days = policy_days(spec, [c["energy"]["total_j"] for c in levels])
    top = levels[0]["metrics"]
    rows = []
    for (name, above), c in zip(spec.levels, levels):
        cost = {n: c["metrics"][n]["test_int8"] - top[n]["test_int8"] for n in tasks}
        rows.append({"level": name, "above_percent": above, "choice": c["choice"], "energy_j_per_day":
                     c["energy"]["total_j"], "days_if_fixed": c["energy"]["days"], "metrics": c["metrics"],
                     "test_int8_change_vs_top": cost, "floors_met": c["floors_met"]})
    return {"levels": rows, "days": days, "memory": mem,
            "fits": mem["flash_use"] <= 1 and mem["ram_use"] <= 1,
            "flash_note": "every variant the policy may switch to is stored whole (no weight sharing between "
                          "rungs); the flash figure is their sum"}


def _memory_binds(spec: BandSpec, dev, variants: dict[str, list[Variant]]) -> str:
    smallest = {n: [min(vs, key=lambda v: v.model_bytes)] for n, vs in variants.items()}
    mem = memory(dev, smallest)
    if mem["flash_use"] > 1:
        big = max(mem["flash_per_task"], key=mem["flash_per_task"].get)
        return (f"flash: even the smallest variants need {mem['flash_bytes'] / 1024:.0f} KiB of {dev.flash_kb:g} KiB "
                f"(largest: task {big}, {mem['flash_per_task'][big] / 1024:.0f} KiB)")
    least_ram = {n: [min(vs, key=lambda v: v.arena_bytes)] for n, vs in variants.items()}
    mem = memory(dev, least_ram)
    if mem["ram_use"] > 1:
        return (f"RAM: even the smallest arenas need {mem['ram_bytes'] / 1024:.0f} KiB of {dev.sram_kb:g} KiB "
                f"(largest arena: task {mem['arena_of']}, {mem['arena_bytes'] / 1024:.0f} KiB)")
    fastest = {t.name: min(variants[t.name], key=lambda v: v.latency_ms) for t in spec.tasks}
    slow = {n: d for n, d in duty(spec, fastest).items() if d > 1}
    if slow:
        n = max(slow, key=slow.get)
        return (f"time: task {n}'s fastest variant takes {fastest[n].latency_ms:.0f} ms (est.), longer than its period "
                f"of {spec.task(n).every_s:g} s")
    return "no single limit binds alone; the combinations that fit miss a floor"


def _energy_binds(combo: dict) -> str:
    e = combo["energy"]
    items = {**{f"task {k}": v for k, v in e["per_task_j"].items()}, "MCU asleep": e["mcu_sleep_j"],
             **{f"baseline {k}": v for k, v in e["baseline_j"].items()}}
    top = max(items, key=items.get)
    return f"the largest energy item is {top} ({items[top] / e['total_j']:.0%} of {e['total_j']:.1f} J a day)"


def _binds(spec: BandSpec, tasks: dict, chosen: dict, variants: dict[str, list[Variant]]) -> list[str]:
    """What stops the plan from lasting longer: floors that rule out a cheaper variant, memory near
    its limit, and the largest energy item."""
    out = []
    for t in spec.tasks:
        v = next(x for x in variants[t.name] if x.name == chosen["choice"][t.name])
        cheaper = [x for x in variants[t.name] if x.energy_uj < v.energy_uj]
        missed = [x for x in cheaper if not meets(x.val, t.floor, tasks[t.name]["metric"])]
        if missed:
            x = min(missed, key=lambda x: x.energy_uj)
            out.append(f"floor of {t.name}: {x.name} would use {x.energy_uj:.1f} uJ instead of {v.energy_uj:.1f} but "
                       f"scores {x.val:.3f} on validation (floor {t.floor:g})")
    mem = chosen["memory"]
    out.append(f"memory: flash {mem['flash_use']:.0%}, RAM {mem['ram_use']:.0%} of the chip")
    out.append(_energy_binds(chosen))
    return out
