"""Robustness and privacy of pruned wearable models -> docs/robustness_privacy.md + .json.

    WEARPRUNE_DATA=../shared/data python benchmarks/robustness_privacy.py [--only ROW] [--render]

Per data set (ResNet1D on each data set's named subject-wise split: a single split, flagged in the
doc), the variants: dense; pruned 4x (channel, taylor, fine-tuned with distillation); the same pruned
4x and hardened (--harden corruptions while fine-tuning); int8 (the dense model exported, in TensorFlow
Lite Micro); and, for DP-SGD, which cannot train BatchNorm, the same ResNet1D with GroupNorm: without DP
(its baseline) and with DP at eps = 8 and eps = 3; then the dense model trained hardened from the start
(`dense_hardened`) and that model pruned 4x with a hardened fine-tune (`hardened_pruned4x`: secure
pruning); DP at eps 8 with a large-batch recipe (`dp8_large_batch`). Columns: clean test metric, mean corruption metric,
worst corruption, PGD at two budgets (fp32 models), membership-inference AUC (loss threshold and
class-calibrated). Each finished (row, variant) record is written to docs/robustness_privacy.json at
once with the commit it ran from; a rerun skips them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from prune_vs_peers import commit_id  # noqa: E402  (a sibling script)

import wearprune as wp  # noqa: E402
from wearprune.io import atomic_write_json, atomic_write_text  # noqa: E402

WORK = ROOT / "runs" / "bench-robust"
JSON = ROOT / "docs" / "robustness_privacy.json"
MD = ROOT / "docs" / "robustness_privacy.md"
PLAN = {
    "hmp-resnet1d": {"data": "hmp", "train": {}},
    "troika-resnet1d": {"data": "troika", "train": {}},
    "mitdb-resnet1d": {"data": "mitdb", "train": {"epochs": 8, "patience": 3, "batch_size": 256}},
}
VARIANTS = ("dense", "pruned4x", "pruned4x_hardened", "int8", "dense_gn", "dp8", "dp3", "dense_hardened",
            "hardened_pruned4x", "dp8_large_batch")
# DP-SGD's recipe picked on HMP's *validation* subjects among batch 64 / lr 3e-3 (the default, = dp8) and SWEEP
# (dp_sweep, docs/robustness_privacy_dp_sweep.json); that choice read the validation windows without noise
DP_LARGE_BATCH = {"batch_size": 512, "lr": 1e-2, "epochs": 60, "patience": 60}
PGD_EPS = (0.05, 0.2)
PRUNE_RATIO = 0.5  # a uniform channel cut of a half: about 4x fewer MACs in these convolutional models


def _run_dir(row: str, variant: str, fold=None) -> Path:
    return WORK / row / variant if fold is None else WORK / "cv" / row / f"fold{fold.index}" / variant


_DATA: dict[str, object] = {}


def folds_of(row: str, k: int):
    """The `wearprune cv` protocol's folds for the row's data (fold seed 0; MIT-BIH: DS1->DS2 and DS2->DS1)."""
    from wearprune.data.folds import cv_protocol

    if row not in _DATA:
        _DATA[row] = wp.load_dataset(PLAN[row]["data"])
    return cv_protocol(_DATA[row], k, 0, "auto").folds


def _train(row: str, out: Path, fold, config, model_options=None) -> None:
    """The zoo ResNet1D on the row's named split, or on one cross-validation fold (as `wearprune cv` trains it)."""
    from dataclasses import replace

    if fold is None:
        wp.train(PLAN[row]["data"], "resnet1d", out, model_options=model_options, config=config)
        return
    ds = _DATA[row]
    fold_ds = replace(ds, test_subjects=list(fold.test_subjects) or ds.test_subjects, split_name=fold.name)
    wp.train(fold_ds, "resnet1d", out, model_options=model_options, config=config,
             test_subjects=list(fold.test_subjects) or None, split=fold.split)


def _build(row: str, variant: str, fold=None) -> Path:
    spec = PLAN[row]
    out = _run_dir(row, variant, fold)
    if (out / "model.safetensors").exists() and variant != "int8":
        return out
    cfg = dict(spec["train"])
    if variant == "dense":
        _train(row, out, fold, wp.TrainConfig(**cfg))
    elif variant in ("pruned4x", "pruned4x_hardened"):
        dense = _build(row, "dense", fold)
        wp.prune_run(dense, out, method="channel", ratio=PRUNE_RATIO, importance="taylor", finetune_epochs=10,
                     harden="corruptions" if variant.endswith("hardened") else None)
    elif variant == "dense_hardened":  # trained with corruption augmentation from the start
        _train(row, out, fold, wp.TrainConfig(**cfg, harden="corruptions"))
    elif variant == "hardened_pruned4x":  # secure pruning: prune the hardened dense model, fine-tune hardened
        dense = _build(row, "dense_hardened", fold)
        wp.prune_run(dense, out, method="channel", ratio=PRUNE_RATIO, importance="taylor", finetune_epochs=10,
                     harden="corruptions")
    elif variant == "int8":
        dense = _build(row, "dense", fold)
        if "int8" not in json.loads((dense / "metrics.json").read_text()).get("tflm", {}):
            wp.export_run(dense, ("tflite",))
        return dense
    elif variant == "dense_gn":
        _train(row, out, fold, wp.TrainConfig(**cfg), {"norm": "group"})
    elif variant == "dp8_large_batch":
        _train(row, out, fold, wp.TrainConfig(**{**cfg, **DP_LARGE_BATCH}, dp_epsilon=8.0), {"norm": "group"})
    else:  # dp8, dp3
        _train(row, out, fold, wp.TrainConfig(**cfg, dp_epsilon=float(variant[2:])), {"norm": "group"})
    return out


def record(row: str, variant: str, fold=None) -> dict:
    started = time.time()
    path = _build(row, variant, fold)
    tflm = variant == "int8"
    rob = wp.robustness([path], tflm=tflm, attack_eps=() if tflm else PGD_EPS, log=print)["runs"][0]
    aud = wp.audit([path], tflm=tflm, log=print)["runs"][0]
    metrics = json.loads((path / "metrics.json").read_text())
    return {"row": row, "variant": variant, "run": str(path.relative_to(ROOT)), "commit": commit_id(),
            "metric": rob["metric"], "clean": rob["clean"], "mean_corruption": rob["mean_corruption"],
            "worst": rob["worst"], "worst_mean": rob["per_corruption_mean"][rob["worst"]],
            "per_corruption": rob["per_corruption_mean"], "pgd": (rob.get("attacks") or {}).get("pgd"),
            "fgsm": (rob.get("attacks") or {}).get("fgsm"), "mia_auc": aud["loss_threshold"]["auc"],
            "mia_auc_calibrated": aud["class_calibrated"]["auc"],
            "mia_tpr_1pct": aud["loss_threshold"]["tpr_at_1pct_fpr"], "dp": metrics.get("dp"),
            "split": json.loads((path / "config.json").read_text())["split"]["name"],
            **({"fold": fold.index, "test_subjects": list(fold.test_subjects)} if fold is not None else {}),
            "seconds": round(time.time() - started, 1)}


def render(records: dict) -> str:
    lines = ["# Robustness and privacy of pruned wearable models", "",
             "Made by `benchmarks/robustness_privacy.py`. **Single split** (each data set's named subject-wise "
             "split): differences smaller than a few points are within what one split moves; the cross-validated "
             "rows are in docs/robustness_privacy_cv.md (`--folds 4`: 4 subject folds; MIT-BIH has 2, DS1->DS2 "
             "and DS2->DS1). Corruptions: "
             "`wearprune robustness` (nine wearable corruptions x five severities on the test "
             "subjects; mean corruption metric = mean over all of them). PGD: 10 steps, L-inf budget in channel "
             "standard deviations, fp32 models. MIA AUC: `wearprune audit` (members: training subjects' windows; "
             "non-members: test subjects'), loss threshold / class-calibrated. DP rows use GroupNorm (DP-SGD "
             "cannot train BatchNorm): compare them with `dense_gn`; ε is record-level (one window).", ""]
    for row in PLAN:
        rows = [records[k] for k in sorted(records) if records[k]["row"] == row]
        if not rows:
            continue
        rows.sort(key=lambda r: VARIANTS.index(r["variant"]))
        m = rows[0]["metric"]
        lines += [f"## {row} ({rows[0]['split']})", "",
                  f"| variant | clean {m} | mean corruption | worst corruption | PGD eps {PGD_EPS[0]} | PGD eps "
                  f"{PGD_EPS[1]} | MIA AUC (loss / calibrated) | ε spent | commit |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            pgd = r["pgd"] or {}
            eps = f"{r['dp']['epsilon']:.2f}" if r.get("dp") else "-"
            low, high = (_f(pgd.get(f"{e:g}")) for e in PGD_EPS)
            lines.append(f"| {r['variant']} | {r['clean']:.3f} | {r['mean_corruption']:.3f} | {r['worst']} "
                         f"({r['worst_mean']:.3f}) | {low} | {high} "
                         f"| {r['mia_auc']:.3f} / {r['mia_auc_calibrated']:.3f} | {eps} | {r['commit']} |")
        lines.append("")
    lines += _targets(records)
    if SWEEP_JSON.exists():
        lines += ["## DP recipe (`dp8_large_batch`)", "",
                  "Picked on HMP's validation subjects at eps 8 (`--dp-sweep`; 60 epochs, no early stopping; the "
                  "choice itself read the validation windows without noise, which the ε does not account for):", "",
                  "| batch | lr | best validation macro-F1 | epoch | ε spent | noise multiplier | commit |",
                  "|---|---|---|---|---|---|---|"]
        for r in json.loads(SWEEP_JSON.read_text()):
            lines.append(f"| {r['batch_size']} | {r['lr']:g} | {r['best_val_macro_f1']:.3f} | {r['best_epoch']} | "
                         f"{r['epsilon']:.2f} | {r['noise_multiplier']:.3f} | {r['commit']} |")
        lines += ["", "The default recipe (batch 64, lr 3e-3, early stopping) is the `dp8` row.", ""]
    return "\n".join(lines + _per_class_lines())


def _targets(records: dict) -> list[str]:
    """The issue's two targets, measured either way, from the records present."""
    lines = ["## Targets (measured, stated either way)", ""]
    for row in PLAN:
        dense = records.get(f"{row}/dense")
        for variant, words in (("pruned4x_hardened", "pruned 4x, fine-tuned hardened"),
                               ("hardened_pruned4x", "the hardened dense model pruned 4x, fine-tuned hardened")):
            hard = records.get(f"{row}/{variant}")
            if not (dense and hard):
                continue
            better = (hard["mean_corruption"] <= dense["mean_corruption"]) if dense["metric"] == "mae" else \
                (hard["mean_corruption"] >= dense["mean_corruption"])
            lines.append(f"- {row}: {words} (`{variant}`): mean corruption {hard['metric']} "
                         f"{hard['mean_corruption']:.4f} vs dense {dense['mean_corruption']:.4f}: target (no "
                         f"robustness lost to pruning) {'met' if better else 'missed'}.")
    for row, variant in ((r, v) for r in PLAN for v in ("dp8", "dp8_large_batch")):
        base, dp = records.get(f"{row}/dense_gn"), records.get(f"{row}/{variant}")
        if not (base and dp):
            continue
        if base["metric"] == "mae":
            gap = f"MAE {dp['clean'] - base['clean']:+.2f} vs the same model without DP"
        else:
            points = 100 * (base["clean"] - dp["clean"])
            gap = (f"{abs(points):.1f} macro-F1 points {'below' if points >= 0 else 'above'} the same model without DP"
                   + (f" (target <= 5: {'met' if points <= 5 else 'missed'})" if row.startswith("hmp") else ""))
        lines.append(f"- {row}: DP at eps 8, `{variant}` (spent {dp['dp']['epsilon']:.2f}): {gap}; membership AUC "
                     f"{dp['mia_auc']:.3f} loss / {dp['mia_auc_calibrated']:.3f} calibrated (target <= 0.55: "
                     f"{'met' if max(dp['mia_auc'], dp['mia_auc_calibrated']) <= 0.55 else 'missed'}; without DP "
                     f"{base['mia_auc']:.3f} / {base['mia_auc_calibrated']:.3f}).")
    return lines + ["", "Reading the membership AUC: members are the training subjects' windows and non-members the "
                    "test subjects', so the attack also sees the *subject* shift (other people are harder for any "
                    "model), which record-level DP does not bound: DP limits what one window changes, not how well the "
                    "model fits the training population. A DP model's AUC above 0.5 is therefore not by itself a "
                    "leak of windows; the class-calibrated attack removes part of the shift (it calibrates on "
                    "the validation subjects).", ""]


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


CV_JSON = ROOT / "docs" / "robustness_privacy_cv.json"
CV_MD = ROOT / "docs" / "robustness_privacy_cv.md"
# what each variant is compared with, pair by pair on the same fold: the model it was made from or its
# non-DP twin (DP-SGD needs GroupNorm, so DP rows are compared with the GroupNorm model)
REFERENCE = {"pruned4x": "dense", "pruned4x_hardened": "dense", "int8": "dense", "dense_hardened": "dense",
             "hardened_pruned4x": "dense", "dense_gn": "dense", "dp8": "dense_gn", "dp3": "dense_gn",
             "dp8_large_batch": "dense_gn"}


def _est(values, scale: float) -> str:
    from wearprune.stats import mean_ci

    e = mean_ci([v * scale for v in values])
    return f"{e.mean:.3f}" if e.ci is None else f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _fold_pairs(by: dict, variant: str, reference: str, key: str, scale: float = 1.0) -> tuple[list, list]:
    """``key`` of ``variant`` and of ``reference`` on the folds both have (same order), times ``scale``;
    ``by``: {variant: {fold: record}}."""
    folds = [f for f in sorted(by.get(variant, {})) if f in by.get(reference, {})]
    return [by[variant][f][key] * scale for f in folds], [by[reference][f][key] * scale for f in folds]


def _diff(variant: list[float], reference: list[float], scale: float) -> str:
    from wearprune.stats import paired_difference

    _, e = paired_difference([v * scale for v in variant], [r * scale for r in reference])
    if e.ci is None:
        return f"{e.mean:+.2f} (n = {e.n})"
    return f"{e.mean:+.2f} [{e.low:+.2f}, {e.high:+.2f}]" + (f", p={e.p_value:.2g}" if e.p_value is not None else "")


def render_cv(records: dict) -> str:
    lines = ["# Robustness and privacy, cross-validated", "",
             "Made by `benchmarks/robustness_privacy.py --folds K`: the variants of docs/robustness_privacy.md on "
             "every fold of the `wearprune cv` protocol (subject K-fold, fold seed 0; MIT-BIH: DS1->DS2 and "
             "DS2->DS1), one training seed per fold. Mean [95 % t-interval] over the folds; *vs reference*: the "
             "paired difference (same fold) to the model it was made from (`dense`), or for DP rows to the same "
             "GroupNorm model without DP (`dense_gn`); macro-F1 in points, MAE in BPM. Each record names its "
             "commit in docs/robustness_privacy_cv.json. With 2 folds (MIT-BIH) a t-interval has one degree of "
             "freedom (t = 12.7): wide by construction, and only a difference of the same sign in both directions "
             "is worth reading.", ""]
    for row in PLAN:
        recs = [r for r in records.values() if r["row"] == row]
        if not recs:
            continue
        metric = recs[0]["metric"]
        scale = 100.0 if metric == "macro_f1" else 1.0
        unit = "points" if metric == "macro_f1" else "BPM"
        lines += [f"## {row} ({len({r['fold'] for r in recs})} folds)", "",
                  f"| variant | folds | clean {metric} | mean corruption | clean vs reference ({unit}) | mean "
                  f"corruption vs reference ({unit}) | MIA AUC loss / calibrated | ε spent |",
                  "|---|---|---|---|---|---|---|---|"]
        by = {v: {r["fold"]: r for r in recs if r["variant"] == v} for v in VARIANTS}
        for v in VARIANTS:
            mine = by[v]
            if not mine:
                continue
            folds = sorted(mine)
            pairs = [_fold_pairs(by, v, REFERENCE.get(v, ""), k) for k in ("clean", "mean_corruption")]
            vs = [_diff(*pair, scale) if pair[0] else "-" for pair in pairs]
            eps = [mine[f]["dp"]["epsilon"] for f in folds if mine[f].get("dp")]
            eps_text = f"{sum(eps) / len(eps):.2f}" if eps else "-"
            lines.append(f"| {v} | {len(folds)} | {_est([mine[f]['clean'] for f in folds], 1)} | "
                         f"{_est([mine[f]['mean_corruption'] for f in folds], 1)} | {vs[0]} | {vs[1]} | "
                         f"{_est([mine[f]['mia_auc'] for f in folds], 1)} / "
                         f"{_est([mine[f]['mia_auc_calibrated'] for f in folds], 1)} | {eps_text} |")
        copied = sorted({(r["fold"], r["variant"]) for r in recs if r.get("copied_from")})
        if copied:
            lines += ["", f"Fold {copied[0][0]} is the named split of docs/robustness_privacy.md (the same training "
                      "and test subjects, seed and recipe); its records for " + ", ".join(v for _, v in copied)
                      + " are that document's records, copied (" + ", ".join(RECOMPUTED_ON_NAMED_FOLD[:-1])
                      + f" and, as a check, {RECOMPUTED_ON_NAMED_FOLD[-1]} were computed again on this fold: identical "
                      "to the named split's in every measured value)."]
        lines.append("")
    return "\n".join(lines + _cv_targets(records))


def _cv_targets(records: dict) -> list[str]:
    """The issue's two targets on the cross-validated records: the mean paired difference decides met or missed,
    the interval says whether the folds resolve it."""
    from wearprune.stats import paired_difference

    lines = ["## Targets, cross-validated (measured, stated either way)", ""]
    for row in PLAN:
        by = {v: {r["fold"]: r for r in records.values() if r["row"] == row and r["variant"] == v} for v in VARIANTS}
        if not by["dense"]:
            continue
        metric = next(iter(by["dense"].values()))["metric"]
        sign, scale = (-1, 1.0) if metric == "mae" else (1, 100.0)
        unit = "BPM" if metric == "mae" else "points"
        for variant in ("pruned4x_hardened", "hardened_pruned4x"):
            mine, dense = _fold_pairs(by, variant, "dense", "mean_corruption", scale)
            if len(mine) < 2:
                continue
            _, e = paired_difference(mine, dense)
            verdict = "met" if sign * e.mean >= 0 else "missed"
            resolved = "the interval includes 0" if e.low <= 0 <= e.high else "the interval excludes 0"
            lines.append(f"- {row}, `{variant}`: mean corruption {metric} vs dense {e.mean:+.2f} {unit} "
                         f"[{e.low:+.2f}, {e.high:+.2f}] over {len(mine)} folds: target (no robustness lost to "
                         f"pruning) {verdict}; {resolved}.")
        for variant in ("dp8", "dp8_large_batch"):
            mine, twin = _fold_pairs(by, variant, "dense_gn", "clean", scale)
            if len(mine) < 2:
                continue
            _, e = paired_difference(mine, twin)
            aucs = [_fold_pairs(by, variant, "dense_gn", k)[0] for k in ("mia_auc", "mia_auc_calibrated")]
            auc = max(sum(a) / len(a) for a in aucs)
            gap = (f"clean {metric} vs the same model without DP {e.mean:+.2f} {unit} [{e.low:+.2f}, {e.high:+.2f}]"
                   + (f" (target >= -5: {'met' if e.mean >= -5 else 'missed'})" if row.startswith("hmp") else ""))
            lines.append(f"- {row}, `{variant}` (eps 8): {gap}; membership AUC, the stronger attack's mean "
                         f"{auc:.4f} (target <= 0.55: {'met' if auc <= 0.55 else 'missed'}).")
    return lines + [""]


# recomputed on MIT-BIH's fold 1 (= its named split): identical to the named split's records in every measured
# value (dp8 as a check that DP-SGD's seeded noise repeats too)
RECOMPUTED_ON_NAMED_FOLD = ("dense", "pruned4x", "pruned4x_hardened", "dp8")


def _named_split_twin(row: str, variant: str, fold) -> dict | None:
    """The named-split record of the same variant when this fold *is* the named split (MIT-BIH's fold 1:
    DS1->DS2, the same training and test subjects, seed and recipe), else None (see RECOMPUTED_ON_NAMED_FOLD)."""
    if set(fold.test_subjects) != set(_DATA[row].test_subjects or ()):
        return None
    named = json.loads(JSON.read_text()) if JSON.exists() else {}
    return named.get(f"{row}/{variant}")


def run_cv(rows, k: int, variants=VARIANTS, only_fold=None, reuse=True) -> None:
    """Every variant on every fold, one record per (row, variant, fold), written as it finishes; resumable.
    `variants`/`only_fold` split the work between processes (records are merged into the file as it is now)."""
    for row in rows:
        for fold in folds_of(row, k):
            if only_fold is not None and fold.index != only_fold:
                continue
            for variant in variants:
                key = f"{row}/{variant}/fold{fold.index}"
                if key in (json.loads(CV_JSON.read_text()) if CV_JSON.exists() else {}):
                    continue
                twin = _named_split_twin(row, variant, fold) if reuse else None
                if twin is not None:
                    print(f"== {key}: the named split's record (this fold is the named split)", flush=True)
                    done = {**twin, "split": fold.name, "fold": fold.index, "test_subjects": list(fold.test_subjects),
                            "copied_from": f"docs/robustness_privacy.json {row}/{variant}"}
                else:
                    print(f"== {key}", flush=True)
                    done = record(row, variant, fold)
                records = {**(json.loads(CV_JSON.read_text()) if CV_JSON.exists() else {}), key: done}
                atomic_write_json(CV_JSON, records)
                atomic_write_text(CV_MD, render_cv(records))


PER_CLASS_JSON = ROOT / "docs" / "robustness_privacy_per_class.json"
PER_CLASS_VARIANTS = ("dense", "pruned4x", "pruned4x_hardened", "dense_hardened", "hardened_pruned4x")


def per_class(row: str, fold=None) -> None:
    """Each class's recall clean and under the corruptions, for the row's runs that are built on the named split
    (or on one cross-validation fold): PyTorch fp32, one `wearprune robustness` call so every run sees the same
    corrupted windows."""
    variants = [v for v in PER_CLASS_VARIANTS if (_run_dir(row, v, fold) / "model.safetensors").exists()]
    if "dense" not in variants:
        raise SystemExit(f"{row}: build its runs first (no dense run in {_run_dir(row, 'dense', fold)})")
    doc = wp.robustness([_run_dir(row, v, fold) for v in variants], log=print)
    done = json.loads(PER_CLASS_JSON.read_text()) if PER_CLASS_JSON.exists() else {}
    key = row if fold is None else f"{row}/fold{fold.index}"
    done[key] = {"split": doc["split"], "engine": doc["engine"], "commit": commit_id(),
                 "variants": {v: r["per_class_recall"] for v, r in zip(variants, doc["runs"], strict=True)}}
    atomic_write_json(PER_CLASS_JSON, done)


def _per_class_lines() -> list[str]:
    if not PER_CLASS_JSON.exists():
        return []
    lines = ["## Recall per class under corruption", "",
             "Each class's recall (sensitivity) on the test subjects of the split in each heading, clean -> mean "
             "over every corruption and severity 1-5 (`wearprune robustness`, which stores it as "
             "`per_class_recall`): macro-F1 can hold while a rare class stops being caught. Made by "
             "`--per-class ROW` (the named split) and `--per-class ROW --folds K --fold I` (one cross-validation "
             "fold).", ""]
    for row, rec in json.loads(PER_CLASS_JSON.read_text()).items():
        first = next(iter(rec["variants"].values()))
        lines += [f"### {row} ({rec['split']}; {rec['engine']}; commit {rec['commit']})", "",
                  "| variant | " + " | ".join(f"{c} (n={n})" for c, n in zip(first["classes"], first["support"],
                                                                             strict=True)) + " |",
                  "|---" * (1 + len(first["classes"])) + "|"]
        for v, pc in rec["variants"].items():
            lines.append(f"| {v} | " + " | ".join(f"{c:.2f} -> {m:.2f}" if n else "-" for c, m, n in zip(
                pc["clean"], pc["mean_corruption"], pc["support"], strict=True)) + " |")
        lines.append("")
    return lines


SWEEP_JSON = ROOT / "docs" / "robustness_privacy_dp_sweep.json"
SWEEP = ((256, 5e-3), (512, 1e-2), (512, 3e-3))  # batch, learning rate; (64, 3e-3) is the dp8 row's own run


def dp_sweep() -> None:
    """DP-SGD at eps 8 on HMP for each (batch, lr) in SWEEP, 60 epochs without early stopping; the best
    *validation* macro-F1 of each (the test subjects are not looked at). One record per config, resumable."""
    done = json.loads(SWEEP_JSON.read_text()) if SWEEP_JSON.exists() else []
    for batch, lr in SWEEP:
        if any(r["batch_size"] == batch and r["lr"] == lr for r in done):
            continue
        run = wp.train("hmp", "resnet1d", WORK / "dp-sweep" / f"b{batch}-lr{lr:g}", model_options={"norm": "group"},
                       config=wp.TrainConfig(batch_size=batch, lr=lr, epochs=60, patience=60, dp_epsilon=8.0))
        h, dp = run.metrics["history"], run.metrics["dp"]
        done.append({"batch_size": batch, "lr": lr, "best_val_macro_f1": h["best_score"], "best_epoch": h["best_epoch"],
                     "epsilon": dp["epsilon"], "noise_multiplier": dp["noise_multiplier"], "seconds": h["seconds"],
                     "commit": commit_id()})
        atomic_write_json(SWEEP_JSON, done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=list(PLAN))
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--dp-sweep", action="store_true", help="the DP recipe search on HMP's validation subjects")
    parser.add_argument("--folds", type=int, help="cross-validate: every variant on each of K subject folds")
    parser.add_argument("--fold", type=int, help="with --folds: only this fold (to share the work between processes)")
    parser.add_argument("--variants", help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument("--per-class", choices=list(PLAN), help="each class's recall under corruption for this "
                        "row's named-split runs (classification rows)")
    parser.add_argument("--recompute", action="store_true",
                        help="with --folds: run a fold that is the named split again instead of copying its record")
    args = parser.parse_args()
    if args.dp_sweep:
        dp_sweep()
        return
    if args.per_class:
        fold = None
        if args.fold:
            if not args.folds or not 1 <= args.fold <= args.folds:
                parser.error(f"--per-class with --fold {args.fold} needs --folds K with K >= {args.fold}")
            fold = folds_of(args.per_class, args.folds)[args.fold - 1]
        per_class(args.per_class, fold)
    elif args.folds:
        if not args.render:
            variants = tuple(args.variants.split(",")) if args.variants else VARIANTS
            unknown = set(variants) - set(VARIANTS)
            if unknown:
                parser.error(f"unknown variants {sorted(unknown)}; choose from {','.join(VARIANTS)}")
            run_cv([args.only] if args.only else list(PLAN), args.folds, variants, args.fold, not args.recompute)
        records = json.loads(CV_JSON.read_text()) if CV_JSON.exists() else {}
        atomic_write_text(CV_MD, render_cv(records))
        print(CV_MD.read_text())
        return
    records = json.loads(JSON.read_text()) if JSON.exists() else {}
    if not (args.render or args.per_class):
        for row in [args.only] if args.only else PLAN:
            for variant in VARIANTS:
                key = f"{row}/{variant}"
                if key in records:
                    continue
                print(f"== {key}", flush=True)
                done = record(row, variant)
                # merged into the file as it is now: another row may be running in a second process
                records = {**(json.loads(JSON.read_text()) if JSON.exists() else {}), key: done}
                atomic_write_json(JSON, records)
                atomic_write_text(MD, render(records))
    atomic_write_text(MD, render(records))
    print(MD.read_text())


if __name__ == "__main__":
    main()
