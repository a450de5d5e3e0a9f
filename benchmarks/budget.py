"""Pruning that pays? At one device budget, the fitted model against the dense model, the same budget
trained from scratch, a uniformly narrower zoo model and Torch-Pruning, cross-validated by subject.

    WEARPRUNE_DATA=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/budget.py [--only hmp-resnet1d]
    .venv/bin/python benchmarks/budget.py --render      # docs from docs/budget.json only

Budget: nRF52840, int8, the latency limit = the default-width dense model's estimated latency / 5 (as in
docs/fit.md), RAM and flash of the chip. For every fold × seed of the `wearprune cv` protocol (fold seed 0;
MIT-BIH: DS1->DS2 and DS2->DS1):

- dense: the zoo model at default width, trained with the default recipe, no limit;
- fit: `wearprune fit` from that dense run (what it ships: the pruned winner or a baseline that beat it);
- fit_grow: `wearprune fit --grow 2` from the same run (train x2 wide, prune it, distil from it);
- scratch / uniform_width: fit_grow's own baselines: its winner's architecture from scratch, and the zoo
  model at the width multiplier that meets the same limits, trained with the same recipe;
- torch_pruning: Torch-Pruning 1.6 (MetaPruner, L2 magnitude) on the dense model to the MACs of the fit
  row, fine-tuned like fit's winner (distilled, 10 epochs or 300 steps); "fails" where it raises.

Every variant is scored on the fold's held-out subjects (PyTorch fp32) and, exported to int8, in TensorFlow
Lite Micro (metric and arena, measured). Each finished (fold, seed, variant) is appended to docs/budget.json
at once (re-read before each write), so a killed run resumes; run directories live in --work.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import wearprune as wp
from wearprune.data.folds import cv_protocol
from wearprune.data.prepare import prepare_from_config
from wearprune.devices import estimate_cost
from wearprune.io import atomic_write_json, atomic_write_text
from wearprune.stats import mean_ci, paired_difference

sys.path.insert(0, str(Path(__file__).parent))
from prune_vs_peers import commit_id, torch_pruning_to  # noqa: E402  (a sibling script)

DEVICE = "nrf52840"
SPEEDUP = 5.0  # latency limit = dense latency / SPEEDUP
GROW = 2.0
FIT = {"trials": 16, "trial_epochs": 3, "final_epochs": 10, "workers": 2}
# (row id, dataset, model, folds, seeds, training settings beyond the default recipe; MIT-BIH as docs/baselines.md)
PLAN = [
    ("hmp-resnet1d", "hmp", "resnet1d", 4, [0], {"batch_size": 64}),
    ("mitdb-resnet1d", "mitdb", "resnet1d", 2, [0, 1], {"batch_size": 256, "epochs": 8, "patience": 3}),
    ("troika-resnet1d", "troika", "resnet1d", 4, [0], {"batch_size": 32}),
    ("hmp-cnn_gru", "hmp", "cnn_gru", 4, [0], {"batch_size": 64}),
]
VARIANTS = ("dense", "scratch", "uniform_width", "torch_pruning", "fit", "fit_grow", "fit_uniform")
DOC = Path("docs/budget.json")
STARTED_AT = commit_id()  # the code this process runs (a later commit may land while a long benchmark runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated row ids (default: all)")
    ap.add_argument("--work", default="runs/bench-budget", help="run directories (kept between sessions)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--render", action="store_true", help="only rewrite docs/budget.md from docs/budget.json")
    args = ap.parse_args()
    if args.render:
        return render()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    only = {s for s in args.only.split(",") if s}
    for row_id, name, model, folds, seeds, settings in PLAN:
        if only and row_id not in only:
            continue
        ds = wp.load_dataset(name, args.data_root)
        plan = cv_protocol(ds, folds, 0)
        for fold in plan.folds:
            for seed in seeds:
                run_fold(row_id, name, model, fold, seed, settings, Path(args.work) / row_id, args.data_root)
        render()


def _done(row_id: str, fold: int, seed: int) -> set[str]:
    return {r["variant"] for r in _load()["runs"] if (r["row"], r["fold"], r["seed"]) == (row_id, fold, seed)}


def run_fold(row_id, name, model, fold, seed, settings, work: Path, data_root) -> None:
    done = _done(row_id, fold.index, seed)
    if set(VARIANTS) <= done:
        return
    base = {"row": row_id, "dataset": name, "model": model, "fold": fold.index, "seed": seed,
            "test_subjects": list(fold.test_subjects)}
    key = work / f"fold{fold.index}-seed{seed}"
    t0 = time.perf_counter()
    dense_dir = key / "dense"
    if not (dense_dir / "metrics.json").exists():
        cfg = wp.TrainConfig(**{**settings, "seed": seed})
        wp.train(name, model, dense_dir, config=cfg, data_root=data_root, split=fold.split, overwrite=True,
                 test_subjects=list(fold.test_subjects) or None)
    dense = wp.load_run(dense_dir)
    prepared = prepare_from_config(dense.config, data_root)
    example = torch.from_numpy(prepared.test.X[:1])
    metric = "mae" if prepared.dataset.task == "regression" else "macro_f1"
    limit, rule = latency_limit(dense.model, example)
    base.update(metric=metric, latency_limit_ms=limit, limit_rule=rule)
    if "dense" not in done:
        _append({**base, "variant": "dense", **_scores(dense_dir, prepared, metric, example),
                 "train_seconds": dense.metrics["history"]["seconds"]})
    runs = {}
    # fit_uniform: the same search (its trials are reused) but the uniform cut shipped, no baselines: is the
    # inner-fold ranking of the finalists better than the uniform cut? (paired with fit's pruned winner)
    for variant, options in (("fit", {}), ("fit_grow", {"grow": GROW}),
                             ("fit_uniform", {"select": "uniform", "baselines": False})):
        out = key / variant.replace("_", "-")
        started = time.perf_counter()
        if not (out / "fit.json").exists():
            wp.fit(dense_dir, DEVICE, out, max_latency_ms=limit, data_root=data_root, overwrite=True,
                   log=lambda m: print(f"    {m}", flush=True), **FIT, **options)
        record = json.loads((out / "fit.json").read_text())
        runs[variant] = (out, record)
        if variant not in done:
            _append({**base, "variant": variant, **_scores(out, prepared, metric, example),
                     "shipped": record["shipped"], "winner_macs": record["winner"]["macs"],
                     "contenders": {k: {"val_score": v["val_score"], "test": v["test"].get(metric), "macs": v["macs"]}
                                    for k, v in (record.get("contenders") or {}).items()},
                     "inner_pick_uniform": _picked_uniform(record), "train_seconds": time.perf_counter() - started,
                     "grow": _grown_scores(record)})
    out, record = runs["fit_grow"]
    for variant in ("scratch", "uniform_width"):
        if variant in done:
            continue
        if record.get("contenders") is None or variant not in record["contenders"]:
            _append({**base, "variant": variant, "failed": "fit_grow trained no such baseline (see its fit.json)"})
            continue
        path = out if record["shipped"] == variant else out / "baselines" / variant
        _append({**base, "variant": variant, **_scores(path, prepared, metric, example),
                 "train_seconds": record["contenders"][variant]["seconds"]})
    if "torch_pruning" not in done:
        target = json.loads((runs["fit"][0] / "fit.json").read_text())["contenders"]
        target_macs = (target or {}).get("fit", {}).get("macs") or runs["fit"][1]["winner"]["macs"]
        started = time.perf_counter()
        try:
            pruned = torch_pruning_to(dense.model, example, target_macs)
        except Exception as e:  # a peer that fails is a result: record how
            msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
            _append({**base, "variant": "torch_pruning", "failed": msg})
        else:
            epochs = _epochs(10, len(prepared.train), dense.config["train"]["batch_size"])
            cfg = wp.TrainConfig(**{**dense.config["train"], "epochs": epochs, "lr": 1e-3, "patience": epochs})
            _finetune(pruned, prepared, cfg, dense.model)
            tp_dir = key / "torch-pruning"
            _save_pruned(tp_dir, pruned, dense)
            _append({**base, "variant": "torch_pruning", **_scores(tp_dir, prepared, metric, example),
                     "train_seconds": time.perf_counter() - started})
    print(f"  {row_id} fold {fold.index} seed {seed}: done in {time.perf_counter() - t0:.0f} s", flush=True)


def latency_limit(model, example) -> tuple[float, str]:
    """The dense model's estimated latency / SPEEDUP; where no prune can reach that (a streaming CNN-GRU pays fixed
    per-op costs every frame), docs/fit.md's rule: the latency of the model cut uniformly to 1/SPEEDUP of its MACs."""
    from wearprune.autofit.sensitivity import groups_of
    from wearprune.autofit.study import MAX_RATIO
    from wearprune.prune import prune
    from wearprune.prune.structured import ratio_for_macs

    dense = estimate_cost(model, example, DEVICE, int8=True)
    smallest, _ = prune(model, example, ratio=0.0, ratios={g: MAX_RATIO for g in groups_of(model, example)})
    if estimate_cost(smallest, example, DEVICE, int8=True).latency_ms <= dense.latency_ms / SPEEDUP:
        return dense.latency_ms / SPEEDUP, f"dense latency / {SPEEDUP:g}"
    _, uniform, _ = ratio_for_macs(model, example, int(dense.macs / SPEEDUP))
    return (estimate_cost(uniform, example, DEVICE, int8=True).latency_ms,
            f"latency of the uniform cut to 1/{SPEEDUP:g} of the MACs (dense latency / {SPEEDUP:g} is unreachable)")


def _epochs(epochs: int, n: int, batch: int) -> int:
    from wearprune.train import epochs_for_steps

    return epochs_for_steps(epochs, n, batch, 300)


def _finetune(model, prepared, cfg, teacher) -> None:
    from wearprune.train import fit as fit_model

    fit_model(model, prepared.train, prepared.val, cfg, teacher=teacher, target_scale=prepared.target_scale)


def _save_pruned(path: Path, model, dense) -> None:
    from wearprune.runs import architecture_of, save_run

    arch = dense.architecture
    save_run(path, model=model, config={**dense.config, "pruned_by": "torch-pruning 1.6"},
             architecture=architecture_of(arch["model"], arch["width"], arch["spec"], model,
                                          options=arch.get("options")),
             metrics={}, overwrite=True)


def _grown_scores(record: dict) -> dict | None:
    """Validation score of each width fit --grow trained (None without --grow)."""
    grow = record.get("grow")
    return {k: v.get("val_score") for k, v in grow["trained"].items()} if grow else None


def _picked_uniform(record: dict) -> bool | None:
    finalists = (record.get("ranking") or {}).get("finalists")
    return finalists[0]["uniform"] if finalists else None


def _scores(path: Path, prepared, metric: str, example) -> dict:
    """Test metric in PyTorch fp32, MACs, estimated latency and energy; int8 in TensorFlow Lite Micro (measured)."""
    run = wp.load_run(path)
    fp32 = wp.evaluate(run, write=False)["test"][metric]
    cost = estimate_cost(run.model, example, DEVICE, int8=True)
    checks = (run.metrics.get("tflm") or {}).get("int8")
    failed = None
    if not checks:
        try:
            checks = wp.export_run(path, formats=("tflite",), int8=True, prepared=prepared)["checks"]["int8"]
        except Exception as e:  # an export that fails is a result
            failed, checks = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}", {}
    return {"value": fp32, "int8_value": checks.get(metric), "arena_bytes": checks.get("arena_bytes"),
            "macs": cost.macs, "latency_ms": cost.latency_ms, "energy_uj": cost.energy_uj,
            **({"export_failed": failed} if failed else {})}


# -- the JSON, resumable ---------------------------------------------------------------------------
def _load() -> dict:
    if DOC.exists():
        return json.loads(DOC.read_text())
    return {"runs": [], "rows": []}


def _append(record: dict) -> None:
    doc = _load()  # re-read: another process may have added rows
    record = {**record, "date": time.strftime("%Y-%m-%d"), "commit": STARTED_AT}
    doc["runs"] = [r for r in doc["runs"] if (r["row"], r["fold"], r["seed"], r["variant"]) !=
                   (record["row"], record["fold"], record["seed"], record["variant"])] + [json.loads(
                       json.dumps(record, default=float))]
    doc["machine"] = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.machine(),
                      "threads": torch.get_num_threads()}
    atomic_write_json(DOC, doc)
    shown = record.get("failed") or f"{record['value']:.4f}"
    print(f"  + {record['row']} fold {record['fold']} seed {record['seed']} {record['variant']}: {shown}", flush=True)


# -- aggregation and the Markdown ---------------------------------------------------------------------
def aggregate(runs: list[dict]) -> list[dict]:
    """One row per (dataset, model, variant): mean and 95 % CI of the task metric over fold × seed, the paired
    difference to dense (and, for fit_grow, to scratch and uniform_width) on the same folds."""
    rows = []
    for row_id, name, model, *_ in PLAN:
        mine = [r for r in runs if r["row"] == row_id]
        if not mine:
            continue
        by = {v: {(r["fold"], r["seed"]): r for r in mine if r["variant"] == v} for v in VARIANTS}
        metric = mine[0]["metric"]
        scale = 100.0 if metric == "macro_f1" else 1.0
        for variant in VARIANTS:
            got = {k: r for k, r in by[variant].items() if "value" in r}
            failed = [r["failed"] for r in by[variant].values() if "failed" in r]
            row = {"dataset": name, "model": model, "variant": variant, "metric": metric, "n": len(got),
                   "failed": failed[0] if failed and not got else None}
            if got:
                est = mean_ci([r["value"] for r in got.values()])
                row.update(mean=est.mean, ci95=[est.low, est.high],
                           int8_mean=_mean([r.get("int8_value") for r in got.values()]),
                           macs=_mean([r["macs"] for r in got.values()]),
                           arena_bytes=_mean([r.get("arena_bytes") for r in got.values()]),
                           latency_ms=_mean([r["latency_ms"] for r in got.values()]),
                           energy_uj=_mean([r["energy_uj"] for r in got.values()]),
                           train_seconds=_mean([r.get("train_seconds") for r in got.values()]),
                           latency_limit_ms=_mean([r["latency_limit_ms"] for r in got.values()]))
                for ref in ("dense", "scratch", "uniform_width", "fit"):
                    if ref == variant or (ref != "dense" and variant not in ("fit_grow", "fit")):
                        continue
                    pairs = [k for k in got if k in by[ref] and "value" in by[ref][k]]
                    if len(pairs) >= 2:
                        _, d = paired_difference([got[k]["value"] * scale for k in pairs],
                                                 [by[ref][k]["value"] * scale for k in pairs])
                        row[f"diff_vs_{ref}"] = {"mean": d.mean, "ci95": [d.low, d.high], "p": d.p_value,
                                                 "n": len(pairs), "unit": "points" if scale == 100 else metric}
                if variant in ("fit", "fit_grow"):
                    row["shipped"] = {s: sum(r.get("shipped") == s for r in got.values())
                                      for s in ("fit", "scratch", "uniform_width")}
                if variant == "fit_uniform":  # fit's own pruned winner (ranked on inner folds) vs the uniform cut
                    pairs = [k for k in got if k in by["fit"] and (by["fit"][k].get("contenders") or {}).get("fit")]
                    if len(pairs) >= 2:
                        _, d = paired_difference([by["fit"][k]["contenders"]["fit"]["test"] * scale for k in pairs],
                                                 [got[k]["value"] * scale for k in pairs])
                        row["search_minus_uniform"] = {"mean": d.mean, "ci95": [d.low, d.high], "p": d.p_value,
                                                       "n": len(pairs),
                                                       "picked_uniform": sum(bool(by["fit"][k].get(
                                                           "inner_pick_uniform")) for k in pairs)}
            rows.append(row)
    return rows


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def render() -> None:
    doc = _load()
    doc["rows"] = aggregate(doc["runs"])
    atomic_write_json(DOC, doc)
    atomic_write_text(DOC.with_suffix(".md"), to_markdown(doc))
    print(f"wrote {DOC} and {DOC.with_suffix('.md')}")


def _num(v, metric: str) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if metric == "mae" else f"{v:.3f}"


def _diff(d: dict | None) -> str:
    if not d:
        return "-"
    lo, hi = d["ci95"]
    ci = f" [{lo:+.1f}, {hi:+.1f}]" if lo is not None else ""
    p = f", p={d['p']:.2g}" if d.get("p") is not None else ""
    return f"{d['mean']:+.1f}{ci}{p}"


def to_markdown(doc: dict) -> str:
    rows, runs = doc["rows"], doc["runs"]
    dates = sorted({(r.get("date"), r.get("commit")) for r in runs})
    lines = [
        "# Pruning that pays? Fitted vs dense, from scratch, uniform width and Torch-Pruning at one budget",
        "",
        "Measured by `benchmarks/budget.py` (" + ", ".join(f"{d} at {c}" for d, c in dates) + "; each record in "
        "docs/budget.json names its commit: the checkout's HEAD when it was written, which for the first records "
        "can be a docs-only commit later than the code that ran). Budget: "
        f"{DEVICE}, int8, latency limit = the default-width dense model's estimated latency / {SPEEDUP:g} (HMP "
        "CNN-GRU: no prune reaches that, since a streaming GRU pays fixed per-op costs every frame, so there the "
        f"limit is docs/fit.md's: the latency of the model cut uniformly to 1/{SPEEDUP:g} of its MACs), the "
        "chip's RAM and flash. Subject-wise cross-validation (the `wearprune cv` protocol, fold seed 0; MIT-BIH "
        "inter-patient DS1->DS2 and DS2->DS1); n = folds × seeds per row. Metric: test macro-F1 (MAE in BPM for "
        "TROIKA) of the fp32 model in PyTorch; *int8* is the exported model in TensorFlow Lite Micro (measured), "
        "arena measured there; latency and energy estimated by the cost model. Differences are paired (same fold, "
        "same seed) in macro-F1 points (BPM for TROIKA, where a negative difference is the better), mean [95 % "
        "t-interval], paired t-test p. n = 4 gives a t-interval with 3 degrees of freedom: wide.",
        "",
        f"Fit settings: {FIT['trials']} trials, {FIT['trial_epochs']} trial epochs, {FIT['final_epochs']} final "
        "epochs (at least 300 optimizer steps), learning rates 1e-3 and 3e-3 (best on validation), finalists "
        "ranked on 3 inner folds over the training subjects, baselines on; `fit_grow` adds `--grow 2`. "
        "`fit` and `fit_grow` are what `wearprune fit` ships: the pruned winner, or a baseline that beat it on "
        "validation (the *shipped* column counts which). `scratch` and `uniform_width` are `fit_grow`'s own "
        "baselines. `fit_uniform` reuses `fit`'s search but ships its uniform cut (`--select uniform "
        "--no-baselines`). `torch_pruning` is cut to the MACs of `fit`'s pruned winner.",
        "",
    ]
    for _, name, model, *_ in PLAN:
        mine = [r for r in rows if (r["dataset"], r["model"]) == (name, model)]
        if not mine:
            lines += [f"## {name} {model}", "", "Not run yet.", ""]
            continue
        metric = mine[0]["metric"]
        lines += [f"## {name} {model}", "",
                  "| variant | n | mean [95 % CI] | vs dense | vs scratch | vs uniform width | int8 (TFLM) | MACs | "
                  "arena KiB (TFLM) | est. latency ms | est. energy µJ | train s | shipped |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            if not r["n"]:
                shown = f"fails: {r['failed']}" if r["failed"] else "not run yet"
                lines.append(f"| {r['variant']} | 0 | {shown} | | | | | | | | | | |")
                continue
            lo, hi = r["ci95"]
            ci = f" [{_num(lo, metric)}, {_num(hi, metric)}]" if lo is not None else ""
            shipped = ", ".join(f"{k} {v}" for k, v in (r.get("shipped") or {}).items() if v) or ""
            arena = f"{r['arena_bytes'] / 1024:.1f}" if r.get("arena_bytes") else "-"
            lines.append(f"| {r['variant']} | {r['n']} | {_num(r['mean'], metric)}{ci} | "
                         f"{_diff(r.get('diff_vs_dense'))} | {_diff(r.get('diff_vs_scratch'))} | "
                         f"{_diff(r.get('diff_vs_uniform_width'))} | "
                         f"{_num(r.get('int8_mean'), metric)} | {r['macs']:,.0f} | {arena} | {r['latency_ms']:.2f} "
                         f"(limit {r['latency_limit_ms']:.2f}) | {r['energy_uj']:.1f} | "
                         f"{(r.get('train_seconds') or 0):.0f} | {shipped} |")
        lines.append("")
        su = next((r.get("search_minus_uniform") for r in mine if r.get("search_minus_uniform")), None)
        if su:
            lines += [f"Selection: `fit`'s pruned winner (finalists ranked on inner folds) minus the uniform cut of "
                      f"the same search (`fit_uniform`, same recovery): {_diff(su)} ({su['n']} pairs; the inner folds "
                      f"picked the uniform cut in {su['picked_uniform']}).", ""]
    lines += ["## Targets (computed from the rows above)", ""] + verdict(rows) + [""]
    return "\n".join(lines).rstrip() + "\n"


def verdict(rows: list[dict]) -> list[str]:
    """The issue's targets, row by row: fit_grow at >= 5x fewer MACs within the latency limit, its paired
    difference to dense (>= 0 points; <= +0.5 BPM), and whether it beats scratch and uniform_width by more
    than the interval (the interval of the paired difference excludes 0 in its favour)."""
    out = []
    for _, name, model, *_ in PLAN:
        grow = next((r for r in rows if (r["dataset"], r["model"], r["variant"]) == (name, model, "fit_grow")), None)
        dense = next((r for r in rows if (r["dataset"], r["model"], r["variant"]) == (name, model, "dense")), None)
        if not grow or not grow.get("n") or not dense or not dense.get("n"):
            out.append(f"- {name} {model}: not measured yet.")
            continue
        mae = grow["metric"] == "mae"
        ratio = dense["macs"] / grow["macs"]
        within = grow["latency_ms"] <= grow["latency_limit_ms"] * 1.0001
        d = grow.get("diff_vs_dense")
        if d:
            met = d["mean"] <= 0.5 if mae else d["mean"] >= 0
            unit = "BPM" if mae else "points"
            target = "<= +0.5 BPM" if mae else ">= 0 points"
            vs_dense = f"{d['mean']:+.1f} {unit} vs dense ({'met' if met else 'missed'}: target {target})"
        else:
            vs_dense = "too few pairs for a difference"
        beats = []
        for ref in ("scratch", "uniform_width"):
            dd = grow.get(f"diff_vs_{ref}")
            if not dd or dd["ci95"][0] is None:
                beats.append(f"{ref}: too few pairs")
                continue
            lo, hi = dd["ci95"]
            better = hi < 0 if mae else lo > 0
            worse = lo > 0 if mae else hi < 0
            word = "beats it beyond the interval" if better else ("loses to it beyond the interval" if worse else
                                                                   "no difference the interval can resolve")
            beats.append(f"{ref}: {dd['mean']:+.1f} [{lo:+.1f}, {hi:+.1f}], {word}")
        out.append(f"- {name} {model} (n = {grow['n']}): fit_grow at {ratio:.1f}x fewer MACs than dense "
                   f"({'within' if within else 'over'} the latency limit on average); {vs_dense}; "
                   + "; ".join(beats) + ".")
    return out


if __name__ == "__main__":
    main()
