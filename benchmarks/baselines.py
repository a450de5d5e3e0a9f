"""Baselines: train each suitable zoo model on each real dataset with its subject-wise split.

Writes docs/baselines.md and docs/baselines.json (metric, params, MACs, training time), with
published results beside ours where a comparable one exists. Run:

    WEARPRUNE_DATA=../shared/data .venv/bin/python benchmarks/baselines.py [--quick] [--only hmp,mitdb]

Numbers are from one seed on this machine's CPU; the split of every row is named in the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from wearprune.data.registry import is_present
from wearprune.train import TrainConfig
from wearprune.verbs import train

# (dataset, models, training settings). Larger sets get fewer epochs so the whole table fits ~1 h on 2 cores.
PLAN = [
    ("basicmotions", ["cnn1d", "resnet1d", "tcn", "dscnn", "cnn_gru", "cnn_lstm"],
     dict(epochs=60, batch_size=16, patience=20)),
    ("hmp", ["cnn1d", "resnet1d", "tcn", "dscnn", "cnn_gru", "cnn_lstm"],
     dict(epochs=40, batch_size=64, patience=10, augment=["scaling", "rotation"])),
    ("mitdb", ["cnn1d", "resnet1d", "dscnn", "cnn_gru"], dict(epochs=8, batch_size=256, patience=3)),
    ("troika", ["cnn1d", "resnet1d", "tcn", "cnn_gru"], dict(epochs=60, batch_size=32, patience=15)),
    ("sleep-walch", ["sleep_seq", "mlp"], dict(epochs=30, batch_size=128, patience=8)),
    ("wisdm-watch", ["mlp"], dict(epochs=60, batch_size=128, patience=12)),
]

# Published results on the same data, with sources. Protocols differ in ways the notes say.
PUBLISHED = {
    "mitdb": [
        ("de Chazal et al. 2004 (linear discriminants on RR + morphology features), DS1->DS2",
         "VEB Se 77.7 % / +P 81.9 %; SVEB Se 75.9 % / +P 38.5 %",
         "IEEE TBME 51(7):1196-1206, doi:10.1109/TBME.2004.827359"),
    ],
    "troika": [
        ("TROIKA (signal decomposition + spectral tracking, no learning), 12 training recordings",
         "MAE 2.34 BPM", "Zhang et al., IEEE TBME 62(2):522-531, 2015"),
        ("Deep PPG (CNN), leave-one-session-out on the 12 IEEE SPC training recordings",
         "MAE 4.00 BPM", "Reiss et al., Sensors 19(14):3079, 2019"),
    ],
    "sleep-walch": [
        ("Walch et al. 2019: motion + HR + clock features, neural net, wake/NREM/REM (they do not report 5 stages)",
         "accuracy ~72 %", "Sleep 42(12):zsz180, 2019 (abstract)"),
        ("Walch et al. 2019: same features, sleep/wake",
         "accuracy 90 %; wake specificity 59.6 %; sleep sensitivity 93 %", "Sleep 42(12):zsz180, 2019 (abstract)"),
    ],
}


def run_one(name: str, model: str, settings: dict, quick: bool, out_dir: Path) -> dict:
    cfg = TrainConfig(**settings)
    if quick:
        cfg.epochs, cfg.patience = 2, 2
    t0 = time.perf_counter()
    run = train(name, model, out_dir / f"{name}-{model}", config=cfg, overwrite=True)
    wall = time.perf_counter() - t0
    m, cost, hist = run.metrics["test"], run.metrics["cost"], run.metrics["history"]
    row = {
        "dataset": name, "model": model, "split": run.metrics["split"],
        "test_windows": m["n"], "params": cost["params"], "macs": cost["macs"],
        "train_seconds": round(hist["seconds"], 1), "wall_seconds": round(wall, 1),
        "epochs_run": len(hist["epochs"]), "best_epoch": hist["best_epoch"],
        "host_latency_ms": cost["host_latency_ms"],
    }
    if "macro_f1" in m:
        row.update(accuracy=m["accuracy"], macro_f1=m["macro_f1"], kappa=m["kappa"],
                   per_class={r["class"]: {"recall": r["recall"], "precision": r["precision"],
                                           "support": r["support"]} for r in m["per_class"]},
                   confusion_matrix=m["confusion_matrix"], class_names=[r["class"] for r in m["per_class"]])
    else:
        row.update(mae=m["mae"], rmse=m["rmse"])
    return row


def to_markdown(rows: list[dict], quick: bool) -> str:
    lines = [
        "# Baselines on real wearable data",
        "",
        "Measured by `benchmarks/baselines.py` (one seed, seed 0) on "
        f"{platform.processor() or platform.machine()} with {torch.get_num_threads()} CPU threads, "
        f"torch {torch.__version__}. Every split is by subject (or patient); the split column names it. "
        "Validation subjects for early stopping are drawn from the training subjects. "
        "MACs: weight multiply-accumulates per inference, GRU/LSTM counted at every time step. "
        "Host latency: median batch-1 forward pass on this CPU (not a microcontroller). "
        "Training seconds are wall time on 2 shared cores (other jobs ran at the same time): rough, not a benchmark."
        + ("\n\n**QUICK RUN (2 epochs) - numbers are not baselines.**" if quick else ""),
        "",
        "| dataset | split | model | metric | accuracy | kappa | params | MACs | train s | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "macro_f1" in r:
            metric, acc, kappa = f"macro-F1 {r['macro_f1']:.3f}", f"{r['accuracy']:.3f}", f"{r['kappa']:.3f}"
        else:
            metric, acc, kappa = f"MAE {r['mae']:.2f} BPM (RMSE {r['rmse']:.2f})", "-", "-"
        lines.append(f"| {r['dataset']} | {r['split']} | {r['model']} | {metric} | {acc} | {kappa} | "
                     f"{r['params']:,} | {r['macs']:,} | {r['train_seconds']:.0f} | {r['epochs_run']} |")
    ecg = [r for r in rows if r["dataset"] == "mitdb"]
    if ecg:
        lines += ["", "## MIT-BIH per class (DS2 test patients)", "",
                  "Macro-F1 above averages all five AAMI classes, Q included (7 test beats, 8 training beats), "
                  "so it is capped well below 1; the per-class sensitivities (Se) and positive predictivities (+P) "
                  "below are what the ECG literature reports.", "",
                  "| model | N Se | S Se | S +P | V Se | V +P | F Se |", "|---|---|---|---|---|---|---|"]
        for r in ecg:
            pc = r["per_class"]
            lines.append(f"| {r['model']} | {pc['N']['recall']:.3f} | {pc['S']['recall']:.3f} | "
                         f"{pc['S']['precision']:.3f} | {pc['V']['recall']:.3f} | {pc['V']['precision']:.3f} | "
                         f"{pc['F']['recall']:.3f} |")
    sleep = [r for r in rows if r["dataset"] == "sleep-walch" and "confusion_matrix" in r]
    if sleep:
        lines += ["", "## Sleep: our 5-stage models scored as Walch et al. score theirs", "",
                  "Predictions and labels merged after the fact (N1+N2+N3 -> NREM; everything but wake -> sleep), "
                  "same held-out subjects.", "",
                  "| model | 5-stage accuracy | wake/NREM/REM accuracy | sleep/wake accuracy | wake specificity | "
                  "sleep sensitivity |", "|---|---|---|---|---|---|"]
        for r in sleep:
            m = merged_sleep_scores(r["confusion_matrix"], r["class_names"])
            lines.append(f"| {r['model']} | {r['accuracy']:.3f} | {m['three_class']:.3f} | {m['sleep_wake']:.3f} | "
                         f"{m['wake_specificity']:.3f} | {m['sleep_sensitivity']:.3f} |")
    lines += ["", "## Published results beside ours", "",
              "| dataset | method and protocol | result | source |", "|---|---|---|---|"]
    for ds, entries in PUBLISHED.items():
        for method, result, source in entries:
            lines.append(f"| {ds} | {method} | {result} | {source} |")
    lines += ["", "Protocols are not identical: the published TROIKA numbers use all 12 training recordings "
              "(TROIKA: no training at all; Deep PPG: leave-one-session-out), ours holds out whole subjects "
              "once. Our MIT-BIH models see 3 RR-interval channels beside the two leads, as de Chazal's features do.",
              ""]
    return "\n".join(lines)


def merged_sleep_scores(cm: list[list[int]], names: list[str]) -> dict:
    """Collapse a 5-stage confusion matrix into Walch et al.'s 3-class and sleep/wake scores."""
    import numpy as np

    cm = np.asarray(cm)
    group3 = np.array([0 if n == "wake" else 2 if n == "REM" else 1 for n in names])
    m3 = np.zeros((3, 3), int)
    np.add.at(m3, (group3[:, None].repeat(len(names), 1), group3[None, :].repeat(len(names), 0)), cm)
    wake = m3[0]
    sleep = m3[1:]
    return {
        "three_class": np.trace(m3) / m3.sum(),
        "sleep_wake": (m3[0, 0] + sleep[:, 1:].sum()) / m3.sum(),
        "wake_specificity": wake[0] / max(wake.sum(), 1),
        "sleep_sensitivity": sleep[:, 1:].sum() / max(sleep.sum(), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 epochs each: checks the script, not a baseline")
    ap.add_argument("--only", default="", help="comma list of datasets")
    ap.add_argument("--models", default="", help="comma list of models (default: the plan's)")
    ap.add_argument("--out", default="docs", help="folder for baselines.md / baselines.json")
    ap.add_argument("--render", action="store_true", help="only rewrite baselines.md from baselines.json")
    args = ap.parse_args()
    if args.render:
        rows = json.loads((Path(args.out) / "baselines.json").read_text())["rows"]
        _write(Path(args.out), rows, False)
        return
    only = set(filter(None, args.only.split(",")))
    models_only = set(filter(None, args.models.split(",")))
    out = Path(args.out)
    json_path = out / "baselines.json"
    # Rows from earlier runs are kept, so datasets can be (re)measured one at a time.
    rows = json.loads(json_path.read_text())["rows"] if json_path.exists() and not args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        for name, models, settings in PLAN:
            if only and name not in only:
                continue
            if not is_present(name):
                print(f"skip {name}: files not found (set WEARPRUNE_DATA)")
                continue
            for model in models:
                if models_only and model not in models_only:
                    continue
                row = run_one(name, model, settings, args.quick, Path(tmp))
                rows = [r for r in rows if (r["dataset"], r["model"]) != (name, model)] + [row]
                key = f"macro_f1={row['macro_f1']:.3f}" if "macro_f1" in row else f"mae={row['mae']:.2f}"
                print(f"{name:13s} {model:10s} {key} params={row['params']:,} macs={row['macs']:,} "
                      f"train={row['train_seconds']:.0f}s", flush=True)
                order = {n: i for i, (n, *_rest) in enumerate(PLAN)}
                rows.sort(key=lambda r: (order[r["dataset"]], r["model"]))
                if not args.quick:  # write after each model: a long run keeps what it measured
                    _write(out, rows, args.quick)
    if args.quick:
        _write(Path(tempfile.mkdtemp()), rows, True)
    print(to_markdown(rows, args.quick))


def _write(out: Path, rows: list[dict], quick: bool) -> None:
    from wearprune.io import atomic_write_json, atomic_write_text

    atomic_write_json(out / "baselines.json", {"rows": rows})
    atomic_write_text(out / "baselines.md", to_markdown(rows, quick))


if __name__ == "__main__":
    main()
