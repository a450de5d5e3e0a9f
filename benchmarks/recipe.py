"""Training recipe study: each candidate change to the default training recipe, cross-validated by
subject on the same folds and seeds as the default, and compared pairwise (candidate - default).

    WEARPRUNE_DATA=../shared/data .venv/bin/python benchmarks/recipe.py [--cases hmp/cnn1d,...] [--work DIR]

Every (case, recipe) is one `wp.crossval` folder in --work (default runs/bench-recipe, kept between
sessions: a rerun resumes the cross-validation where it stopped). A row is written to
docs/recipe.json as soon as its cross-validation is complete, and docs/recipe.md is rewritten from
the rows. `--render` only rewrites the markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

import wearprune as wp
from wearprune.data.registry import is_present
from wearprune.io import atomic_write_json, atomic_write_text

# The candidates, as changes to TrainConfig's defaults; "augment" is chosen per modality (IMU: gain
# and a random rotation of the 3 axes; PPG + IMU: gain only, since time warping would change the
# heart rate the window is labelled with).
RECIPES = {
    "default": {},
    "long": {"epochs": 60, "patience": 15},
    "smooth": {"label_smoothing": 0.1},
    "augment": None,  # per case, below
}
AUGMENT = {"hmp": ["scaling", "rotation"], "troika": ["scaling"]}
# (dataset, model, folds, seeds, the case's base settings, recipes tried)
CASES = [
    ("wisdm-watch", "mlp", 4, 3, {"batch_size": 128}, ["default", "long", "smooth"]),
    ("sleep-walch", "mlp", 4, 3, {"batch_size": 128}, ["default", "long", "smooth"]),
    ("hmp", "cnn1d", 4, 3, {"batch_size": 64}, ["default", "long", "smooth", "augment"]),
    ("troika", "cnn1d", 4, 3, {"batch_size": 32}, ["default", "long", "augment"]),
]


def recipe_config(dataset: str, recipe: str, base: dict) -> wp.TrainConfig:
    change = {"augment": AUGMENT[dataset]} if recipe == "augment" else RECIPES[recipe]
    return replace(wp.TrainConfig(**base), **change)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="comma list of dataset/model (default: all)")
    ap.add_argument("--work", default="runs/bench-recipe")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--render", action="store_true", help="only rewrite docs/recipe.md from docs/recipe.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    out, work = Path(args.out), Path(args.work)
    path = out / "recipe.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    if args.render:
        return atomic_write_text(out / "recipe.md", to_markdown(rows))
    only = set(filter(None, args.cases.split(",")))
    for dataset, model, folds, seeds, base, recipes in CASES:
        if only and f"{dataset}/{model}" not in only:
            continue
        if not is_present(dataset):
            print(f"skip {dataset}: files not found (set WEARPRUNE_DATA)")
            continue
        for recipe in recipes:
            key = {"dataset": dataset, "model": model, "recipe": recipe}
            if any(all(r[k] == v for k, v in key.items()) for r in rows):
                continue  # finished in an earlier call
            cv_dir = work / f"{dataset}-{model}-{recipe}"
            started = time.perf_counter()
            doc = wp.crossval(dataset, model, cv_dir, folds=folds, seeds=seeds,
                              config=recipe_config(dataset, recipe, base), log=lambda m: None)
            row = {**key, "folds": len(doc["protocol"]["folds"]), "seeds": len(doc["protocol"]["seeds"]),
                   "protocol": doc["protocol"]["name"], "metric": doc["metric"],
                   "train": doc["spec"]["train"], "dense": _brief(doc["summary"]["dense"]),
                   "train_seconds": round(doc["seconds"]["training"], 1),
                   "wall_seconds_this_call": round(time.perf_counter() - started, 1),
                   "when": time.strftime("%Y-%m-%d")}
            if recipe != "default":
                cmp = wp.compare_cv(work / f"{dataset}-{model}-default", cv_dir)
                row["vs_default"] = _brief(cmp["difference"])
                row["vs_default"]["over_folds"] = _brief(cmp["difference"]["over_folds"])
            rows.append(row)
            atomic_write_json(path, {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                                                f"torch {torch.__version__}", "rows": rows})
            atomic_write_text(out / "recipe.md", to_markdown(rows))
            print(_line(row), flush=True)


def _brief(est: dict) -> dict:
    return {k: est.get(k) for k in ("n", "mean", "sd", "ci95", "p_value") if k in est}


def _fmt(v: float, metric: str, signed: bool = False) -> str:
    return f"{v:+.2f}" if metric == "mae" and signed else f"{v:.2f}" if metric == "mae" else (
        f"{v:+.3f}" if signed else f"{v:.3f}")


def _ci(est: dict, metric: str, signed: bool = False) -> str:
    ci = est.get("ci95")
    text = _fmt(est["mean"], metric, signed)
    return text + (f" [{_fmt(ci[0], metric, signed)}, {_fmt(ci[1], metric, signed)}]" if ci else " (no CI)")


def _line(row: dict) -> str:
    text = (f"{row['dataset']:12s} {row['model']:8s} {row['recipe']:8s} {row['metric']} "
            f"{_ci(row['dense'], row['metric'])}")
    if "vs_default" in row:
        text += f"  vs default {_ci(row['vs_default'], row['metric'], True)} p={row['vs_default']['p_value']:.3g}"
    return text + f"  ({row['train_seconds']:.0f} s training)"


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "# Training recipe: candidate changes to the default, paired cross-validation",
        "",
        "Measured by `benchmarks/recipe.py`. Each row is a subject-wise cross-validation (folds × seeds as "
        "listed; every fold's validation subjects for early stopping come from its training subjects); "
        "a candidate and the default share folds and seeds, so their difference is paired per fold × seed "
        "(`wearprune compare`): mean with a 95 % t-interval over the fold × seed differences and the paired "
        "t-test p-value, and in brackets after it the conservative interval over fold means. "
        "macro-F1: higher is better; MAE (BPM): lower is better. Recipes: default = `TrainConfig()` (AdamW "
        "lr 3e-3, weight decay 1e-2, cosine schedule, square-root class weights, 30 epochs with early stopping "
        "after 8 epochs without improvement, at least 600 optimizer steps); long = 60 epochs, patience 15; "
        "smooth = label smoothing 0.1; augment = per modality (HMP: per-channel gain and a random 3-D rotation "
        "of the accelerometer; TROIKA: per-channel gain only).",
        "",
        "| dataset | model | folds × seeds | recipe | metric | mean [95 % CI] | recipe - default [95 % CI] | p | "
        "over fold means | training s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["metric"]
        diff = r.get("vs_default")
        cells = ["-", "-", "-"] if not diff else [
            _ci(diff, m, True), f"{diff['p_value']:.3g}" if diff.get("p_value") is not None else "-",
            _ci(diff["over_folds"], m, True)]
        lines.append(f"| {r['dataset']} | {r['model']} | {r['folds']} × {r['seeds']} | {r['recipe']} | "
                     f"{'MAE' if m == 'mae' else 'macro-F1'} | {_ci(r['dense'], m)} | {' | '.join(cells)} | "
                     f"{r['train_seconds']:.0f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
