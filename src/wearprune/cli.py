"""The ``wearprune`` command line: a thin layer over the public API, no logic of its own."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import WearpruneError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Prune, quantize and fit deep-learning models onto wearables.")
# markup off: paths, dataset names and error messages may hold [brackets]; styles are explicit Text
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

DATA_HELP = "dataset name (see `wearprune datasets`) or a .csv/.npz/.parquet recording"
ROOT_HELP = "folder holding the datasets (default: $WEARPRUNE_DATA)"
DP_HELP = ("train with differential privacy (DP-SGD, Opacus) spending at most this ε per training window; needs a "
           "model without BatchNorm (--norm group); see the README for what it covers")
HARDEN_HELP = ("harden while training: corruptions (half of each batch through a random wearable corruption) or "
               "adversarial (each batch plus its PGD counterpart at --harden-eps); see `wearprune robustness`")
AUGMENT_HELP = ("comma list of jitter, scaling, rotation, time_warp; auto (per modality: x/y/z motion channels get "
                "a gain and a random rotation, other data none); none (default: the training recipe's, docs/recipe.md)")


def _train_config(augment: str | None, **options):
    """A TrainConfig from the training options of `train` and `cv`; an option left unset (None)
    keeps the recipe's default. ``augment``: the --augment text ("none" for no augmentation)."""
    from .train import TrainConfig

    given = {k: v for k, v in options.items() if v is not None}
    if augment is not None:
        names = [a.strip() for a in augment.split(",") if a.strip()]
        given["augment"] = [] if names == ["none"] else names
    return TrainConfig(**given)


@app.command()
def datasets(data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
             count: bool = typer.Option(True, help="load present datasets to count windows and subjects")):
    """List the datasets: task, windows, subjects, classes, license, and whether the files are present."""
    from .data.registry import DATASETS, dataset_path, is_present, load_dataset
    from .data.registry import data_root as resolve_root

    root = resolve_root(data_root)
    table = Table(title=f"datasets (data root: {root if root else 'not set; use --data-root'})")
    for col in ("name", "task", "windows", "subjects", "classes"):  # short words: never broken mid-word
        table.add_column(col, no_wrap=True)
    for col in ("license", "files"):
        table.add_column(col, overflow="fold")
    for name, info in DATASETS.items():
        present = is_present(name, data_root)
        where = dataset_path(name, data_root)
        files = ("present" if present else "missing") + (f" ({where})" if where else " (packaged)")
        windows = subjects = classes = "-"
        if present and count:
            try:
                with console.status(f"reading {name}"):
                    ds = load_dataset(name, data_root)
                windows, subjects = str(len(ds)), str(ds.summary()["subjects"])
                classes = str(ds.n_classes) if ds.task == "classification" else "BPM"
            except WearpruneError as e:
                files = Text.assemble(("unreadable", "red"), f": {e}")
        table.add_row(name, info.task, windows, subjects, classes, info.license, files)
    console.print(table)


@app.command()
def models():
    """List the model zoo and which data layouts each model takes."""
    from .models import MODELS

    table = Table(title="model zoo")
    for col in ("name", "data", "options", "description"):
        table.add_column(col)
    for m in MODELS.values():
        table.add_row(m.name, ", ".join(m.layouts), " ".join(f"--{o}" for o in m.options) or "-", m.description)
    console.print(table)


@app.command()
def train(
    data: str = typer.Option(..., "--data", help=DATA_HELP),
    model: str = typer.Option("cnn1d", "--model", help="zoo model (see `wearprune models`)"),
    out: Path = typer.Option(..., "--out", help="run directory to write"),
    width: float = typer.Option(1.0, help="width multiplier for the model's channels"),
    norm: str = typer.Option(None, help="conv blocks' normalisation: batch (default) or group (models that take it)"),
    act: str = typer.Option(None, help="conv blocks' activation: relu (default), relu6, hardswish, silu, mish, elu"),
    epochs: int = typer.Option(None, help="maximum epochs (default: 60, more on a small set so that it gets 600 "
                               "optimizer steps; early stopping on validation subjects)"),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(3e-3, help="AdamW learning rate (cosine schedule)"),
    patience: int = typer.Option(None, help="epochs without validation improvement before stopping (default 15)"),
    augment: str = typer.Option(None, help=AUGMENT_HELP),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="classification: cross-entropy label "
                                          "smoothing (0 to <1)"),
    teacher: Path = typer.Option(None, help="run directory of a teacher to distil from"),
    harden: str = typer.Option(None, "--harden", help=HARDEN_HELP),
    harden_eps: float = typer.Option(None, "--harden-eps", help="adversarial hardening budget (channel std; "
                                     "default 0.1)"),
    dp_epsilon: float = typer.Option(None, "--dp-epsilon", help=DP_HELP),
    dp_delta: float = typer.Option(None, "--dp-delta", help="DP δ (default 1 / (10 x training windows))"),
    dp_max_grad_norm: float = typer.Option(None, "--dp-max-grad-norm", help="per-window gradient clip (default 1)"),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
    rate: float = typer.Option(None, help="sampling rate in Hz (user recordings)"),
    window_s: float = typer.Option(None, help="window length in seconds (user recordings)"),
    step_s: float = typer.Option(None, help="window step in seconds (user recordings; default half a window)"),
    label_column: str = typer.Option(None, help="label column of a user recording (default: label)"),
    subject_column: str = typer.Option(None, help="subject column of a user recording (default: subject)"),
    task: str = typer.Option(None, help="classification or regression (user recordings; default: inferred)"),
    split: str = typer.Option("subject", help="subject (no person on two sides), predefined (the data's own "
                              "'split' column/array: train/val/test) or random (stratified windows; optimistic)"),
    slimming: float = typer.Option(0.0, help="Network Slimming L1 penalty on BN scales (then prune bn_scale)"),
    prune_at_init: float = typer.Option(None, help="remove this fraction of channels at initialisation (SNIP)"),
    gradual_sparsity: float = typer.Option(None, help="prune weights to this sparsity during training (cubic)"),
    overwrite: bool = typer.Option(False, help="replace --out if it exists"),
):
    """Train a zoo model (subject-wise split unless --split says otherwise) and write a run directory."""
    from .verbs import train as train_run

    cfg = _train_config(augment, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
                        device=device, bn_l1=slimming, label_smoothing=label_smoothing, harden=harden,
                        harden_eps=harden_eps, dp_epsilon=dp_epsilon, dp_delta=dp_delta,
                        dp_max_grad_norm=dp_max_grad_norm)
    given = {"rate_hz": rate, "window_s": window_s, "step_s": step_s, "label_column": label_column,
             "subject_column": subject_column, "task": task}
    options = {k: v for k, v in given.items() if v is not None}
    run = train_run(data, model, out, width=width, config=cfg, data_root=data_root, data_options=options,
                    teacher=teacher, overwrite=overwrite, progress=True, split=split,
                    model_options={k: v for k, v in (("norm", norm), ("act", act)) if v is not None},
                    prune_at_init={"ratio": prune_at_init} if prune_at_init else None,
                    gradual={"target": gradual_sparsity} if gradual_sparsity else None)
    _print_metrics(run.metrics, f"{model} on {run.metrics['dataset']} -> {out}")
    if run.config["split"].get("warning"):
        err_console.print(Text.assemble(("warning: ", "yellow"), run.config["split"]["warning"]))


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="run directory"),
    device: str = typer.Option(None, help="also cost it on this device (see `wearprune devices`) and write a report"),
    baseline: Path = typer.Option(None, help="run to compare against in the report (the 'before')"),
    fp32: bool = typer.Option(False, "--fp32", help="cost the fp32 model instead of int8"),
    rate: float = typer.Option(60.0, help="inferences per minute for the battery-life estimate"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
):
    """Evaluate a run on its test subjects: metrics, per-class table, confusion matrix, size and speed."""
    from .verbs import evaluate_run

    if device:  # fail on a bad device name before the evaluation runs
        from .devices import load_device

        load_device(device)
    metrics = evaluate_run(run, data_root=data_root, progress=True)
    _print_metrics(metrics, f"evaluation of {run}", per_class=True)
    console.print(f"wrote {run / 'evaluation.json'}" + (
        f" and {run / 'confusion.png'}" if "accuracy" in metrics["test"] else ""))
    if device:
        _report([run], device, baseline, not fp32, rate, run / "report")


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="run directories (the first, or --baseline, is the 'before')"),
    device: str = typer.Option("nrf52840", help="device profile name or YAML file (see `wearprune devices`)"),
    baseline: Path = typer.Option(None, help="run to compare against (default: the first run)"),
    out: Path = typer.Option(None, help="folder for report.json/.md/.html (default: <last run>/report)"),
    fp32: bool = typer.Option(False, "--fp32", help="cost the fp32 models instead of int8"),
    rate: float = typer.Option(60.0, help="inferences per minute for the battery-life estimate"),
):
    """Before/after report of runs on a device: JSON, Markdown and a self-contained HTML page with plots."""
    _report(runs, device, baseline, not fp32, rate, out or runs[-1] / "report")


def _report(runs, device, baseline, int8, rate, out) -> None:
    from .report import build_report, write_report
    from .report.render import table_rows

    rep = build_report(runs, device, baseline=baseline, int8=int8, inferences_per_min=rate)
    paths = write_report(rep, out)
    table = Table(title=f"on {rep['device']['title']} ({rep['dtype']}, {rate:g}/min)",
                  caption="metrics measured on the host (test subjects); device costs estimated by the cost model")
    table.add_column("")
    for r in rep["runs"]:
        table.add_column(r["name"], justify="right", overflow="fold")
    for row in table_rows(rep):
        table.add_row(*row)
    console.print(table)
    console.print(f"wrote {paths['json']}, {paths['md'].name}, {paths['html'].name}")


@app.command()
def export(
    run: Path = typer.Argument(..., help="run directory"),
    format: str = typer.Option("tflite,onnx,c", "--format", help="comma-separated: tflite, onnx, c"),
    int8: bool = typer.Option(True, "--int8/--fp32-only", help="also export a full-integer int8 model"),
    qat_epochs: int = typer.Option(0, "--qat-epochs", help="int8 by quantisation-aware fine-tuning (epochs); "
                                   "0: post-training"),
    calib_windows: int = typer.Option(256, "--calib-windows", help="training windows for int8 calibration"),
    quantizer: str = typer.Option("auto", "--quantizer", help="auto | pt2e | ai-edge-quantizer"),
    int8_tolerance: float = typer.Option(0.05, "--int8-tolerance",
                                         help="refuse int8 more than this much worse than fp32 (relative)"),
    measure_on: list[str] = typer.Option(None, "--measure", help="then run the exported models on this emulated "
                                         "core (repeatable): cortex-m4, cortex-m33, cortex-m55 (`wearprune measure`)"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
):
    """Export for the device and check it: TFLite run in TensorFlow Lite Micro on the test set, ONNX in
    onnxruntime, the C array with the measured arena size. GRU/LSTM models export as a streaming step,
    causal TCNs also as one."""
    from .firmware import check_target

    for target in measure_on or []:  # a typo is refused before the export, not after
        check_target(target)
    from .specs import ExportSpec
    from .verbs import export_run

    spec = ExportSpec(formats=format, int8=int8, calib_windows=calib_windows, qat_epochs=qat_epochs,
                      quantizer=quantizer, int8_tolerance=int8_tolerance)
    result = export_run(run, spec, data_root=data_root, progress=True)
    key, value = result["pytorch"]
    table = Table(title=f"export of {run}", caption=f"split: {result['split']}; measured in TensorFlow Lite Micro "
                  "on this host, whole test set")
    for col in ("model", key, "max |diff| vs PyTorch", "arena (TFLM)", ".tflite"):
        table.add_column(col, justify="right" if col != "model" else "left")
    table.add_row("PyTorch fp32", f"{value:.4f}", "-", "-", "-")
    for dtype in ("fp32", "int8"):
        c = result["checks"].get(dtype)
        if c:
            how = f" ({c['quantizer']})" if "quantizer" in c else ""
            table.add_row(f"TFLite Micro {dtype}{how}", f"{c[key]:.4f}", f"{c['max_abs_diff']:.3g}",
                          f"{c['arena_bytes'] / 1024:.1f} KiB", f"{c['tflite_bytes'] / 1024:.1f} KiB")
    console.print(table)
    for dtype in ("fp32", "int8"):
        c = result["checks"].get(dtype) or {}
        step = c if c.get("streaming") else c.get("streaming_step")
        if step:
            console.print(f"{dtype} streaming step: {step['step_arena_bytes'] / 1024:.1f} KiB arena, "
                          f"{step['step_ops']} ops per frame, state {step['state_bytes']} bytes kept between frames")
    console.print("wrote " + ", ".join(str(run / f) for f in result["files"]))
    if measure_on:
        _measure_and_print(run, tuple(measure_on), None, 8, data_root)


@app.command()
def measure(
    run: Path = typer.Argument(..., help="exported run directory (`wearprune export` first)"),
    target: list[str] = typer.Option(["cortex-m4"], "--target", help="emulated core, repeatable: cortex-m4 "
                                     "(mps2-an386), cortex-m33 (mps2-an505), cortex-m55 with Helium (mps3-an547)"),
    dtype: str = typer.Option("all", "--dtype", help="int8, fp32 or all (every exported one)"),
    windows: int = typer.Option(8, "--windows", help="test windows run on the core and compared with the host"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
):
    """Run the exported model on an emulated Cortex-M: TensorFlow Lite Micro with CMSIS-NN kernels in QEMU.
    Prints executed instructions per inference (per frame and per window for a streaming model) and per op,
    checks the outputs against TensorFlow Lite Micro on the host, and stores both in the run's metrics.json.
    Needs `apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm`; the first call per core
    builds TensorFlow Lite Micro into ~/.cache/wearprune/firmware (several minutes)."""
    dtypes = None if dtype == "all" else (dtype,)
    _measure_and_print(run, tuple(target), dtypes, windows, data_root)


def _measure_and_print(run: Path, targets: tuple[str, ...], dtypes, windows: int, data_root) -> None:
    from .verbs.on_target import measure_on_target

    results = measure_on_target(run, targets, dtypes=dtypes, windows=windows, data_root=data_root,
                                announce=lambda line: err_console.print(line))
    table = Table(title=f"{run} on emulated Cortex-M (TFLite Micro + CMSIS-NN in QEMU)",
                  caption="measured: executed instructions (exact count, not cycles); MACs from the model")
    for col in ("core", "dtype", "instructions", "per frame", "instr/MAC", "arena", "vs host"):
        table.add_column(col, justify="left" if col in ("core", "dtype") else "right", no_wrap=col != "vs host")
    for target, per_dtype in results.items():
        for dt, m in per_dtype.items():
            total = m.get("instructions_per_inference") or m["instructions_per_window"]
            step = m if m["form"] == "streaming" else m.get("streaming")  # a TCN has both forms
            frame = f"{step['instructions_per_frame']:,} x {step['frames_per_window']}" if step else "-"
            parts = [m] + ([step] if step and step is not m else [])
            diffs = [p.get("max_abs_diff_host") for p in parts]
            same = "bit-exact" if all(p["outputs_equal_host"] for p in parts) else \
                ("differs" if None in diffs else f"max diff {max(diffs):.2g}")
            table.add_row(target, dt, f"{total:,}", frame, f"{m['instructions_per_mac']:.2f}",
                          f"{m['arena_used_bytes'] / 1024:.1f} KiB", same)
    console.print(table)
    for target, per_dtype in results.items():
        for dt, m in per_dtype.items():
            parts = [("step", m["step"]), ("front end", m.get("frontend"))] if m["form"] == "streaming" else \
                [("", m)]
            for name, part in parts:
                if part:
                    top = ", ".join(f"{op} {n:,}" for op, n in list(part["per_op_type"].items())[:5])
                    console.print(f"{target} {dt}{' ' + name if name else ''}: {top}")
    console.print(f"stored in {run / 'metrics.json'} under on_target")


@app.command("fit")
def fit_cmd(
    run: Path = typer.Argument(..., help="trained run directory (the dense model)"),
    device: str = typer.Option(..., "--device", help="device profile name or YAML file (see `wearprune devices`)"),
    out: Path = typer.Option(None, "--out", help="winning run directory (default: <run>-fit-<device>)"),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms", help="latency limit per inference"),
    max_energy_uj: float = typer.Option(None, "--max-energy-uj", help="energy limit per inference (uJ)"),
    max_ram_kb: float = typer.Option(None, "--max-ram-kb", help="tensor arena limit (default: all of the device's "
                                     "SRAM; leave room for your stack and app)"),
    max_flash_kb: float = typer.Option(None, "--max-flash-kb", help="flash limit (default: the device's flash)"),
    max_drop: float = typer.Option(None, "--max-drop", help="validation macro-F1 points (or MAE units) it may lose"),
    int8: bool = typer.Option(True, "--int8/--fp32", help="fit and export the full-integer int8 model"),
    trials: int = typer.Option(24, "--trials", help="search trials (completed ones count when resuming)"),
    trial_epochs: int = typer.Option(3, "--trial-epochs", help="fine-tuning epochs per candidate that fits"),
    final_epochs: int = typer.Option(10, "--final-epochs", help="fine-tuning epochs of the winner (distilled)"),
    select: str = typer.Option("auto", "--select", help="winner: search (best on validation), uniform (every "
                               "layer cut alike, scaled to the budget), auto (uniform when validation has <3 "
                               "subjects)"),
    workers: int = typer.Option(None, "--workers", help="parallel trial workers (default: up to 2 processes)"),
    storage: str = typer.Option(None, "--storage", help="Optuna storage URL (default: sqlite file in the run)"),
    ray: str = typer.Option(None, "--ray", help="run trials as Ray tasks: auto, local or a cluster ADDRESS"),
    part: list[str] = typer.Option(None, "--part", help="search the importance criterion per part: "
                                   "NAME=PATTERN[,PATTERN] (module-name globs, repeatable), or 'auto' (conv front "
                                   "end / recurrent layers / dense head); see docs/parts.md"),
    grow: str = typer.Option(None, "--grow", help="train the zoo model W x wider first and prune that (distilling "
                             "from the widest): a factor such as 2, or auto (tries x1, x2, x4); docs/budget.md"),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="also train the winner's architecture "
                                   "from scratch and the zoo model at the width that fits; ship the best on "
                                   "validation"),
    rank_folds: int = typer.Option(3, "--rank-folds", help="rank the finalists on this many inner folds over the "
                                   "training subjects (0: on the validation subjects only)"),
    cycles: int = typer.Option(1, "--cycles", help="cut the winner in this many steps, each fine-tuned with "
                               "distillation (iterative pruning)"),
    final_lr: list[float] = typer.Option(None, "--final-lr", help="learning rate of the final fine-tune, repeatable: "
                                         "the best on validation is kept (default: 0.001 and 0.003)"),
    harden: str = typer.Option(None, "--harden", help=HARDEN_HELP + " (the final fine-tune and the baselines)"),
    harden_eps: float = typer.Option(0.1, "--harden-eps", help="adversarial hardening budget (channel std)"),
    robust_search: bool = typer.Option(False, "--robust-search", help="score trials and contenders on the mean of "
                                       "clean and corrupted validation (every corruption at severity 3)"),
    dp_epsilon: float = typer.Option(None, "--dp-epsilon", help="every training of the fit with DP-SGD, together "
                                     "spending at most this ε (trials then train nothing; data-free criteria)"),
    dp_delta: float = typer.Option(None, "--dp-delta", help="DP δ (default 1 / (10 x training windows))"),
    dp_max_grad_norm: float = typer.Option(1.0, "--dp-max-grad-norm", help="per-window gradient clip"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace --out if it exists"),
):
    """Find the most accurate pruned (int8) model within every limit of the device and yours; export it,
    check it in TensorFlow Lite Micro and write the before/after report. A killed search resumes."""
    from .autofit import fit
    from .report.render import table_rows
    from .specs import FitSpec, parse_parts

    spec = FitSpec(device=device, max_latency_ms=max_latency_ms, max_energy_uj=max_energy_uj, max_ram_kb=max_ram_kb,
                   max_flash_kb=max_flash_kb, max_drop=max_drop, int8=int8, trials=trials, trial_epochs=trial_epochs,
                   final_epochs=final_epochs, select=select, workers=workers, storage=storage, ray=ray,
                   parts=parse_parts(part), grow=grow, baselines=baselines, rank_folds=rank_folds, cycles=cycles,
                   harden=harden, harden_eps=harden_eps, robust_search=robust_search, dp_epsilon=dp_epsilon,
                   dp_delta=dp_delta, dp_max_grad_norm=dp_max_grad_norm,
                   **({"final_lrs": tuple(final_lr)} if final_lr else {}))
    result = fit(run, spec, out, data_root=data_root, overwrite=overwrite, progress=True, log=_log)
    _print_fit(result, table_rows)


def _print_fit(result, table_rows) -> None:
    import json

    report = json.loads((result.path / "report" / "report.json").read_text())
    table = Table(title=f"fitted to {report['device']['title']} ({report['dtype']})",
                  caption="metrics measured on the test subjects; arena and metric also measured in TensorFlow Lite "
                          "Micro; latency/energy/battery estimated by the cost model; contenders not shipped are "
                          "in baselines/")
    table.add_column("")
    shipped = result.shipped.replace("_", " ")
    names = ["before (dense)", f"after (shipped: {shipped})"] + [r["name"].replace("_", " ")
                                                                 for r in report["runs"][2:]]
    for name in names:
        table.add_column(name, justify="right", overflow="fold")
    for row in table_rows(report):
        table.add_row(*row)
    console.print(table)
    w = result.winner
    if w.get("criteria"):
        console.print("criteria per part: " + ", ".join(f"{p}: {c}" for p, c in w["criteria"].items())
                      + f" (other groups: {w['importance']})")
    console.print(f"winner: trial {w['number']} ({w['importance']}, chosen by {w['selected_by']}) of "
                  f"{len(result.candidates)} candidates "
                  f"({result.trial_seconds:.0f} s of trials; {result.search_seconds:.0f} s searching in this call); "
                  f"Pareto front (validation score vs estimated energy): trials {result.pareto['est_energy_uj']}")
    limits = result.limits
    for name, value, limit, unit in (("latency", w["est_latency_ms"], limits["max_latency_ms"], "ms"),
                                     ("energy", w["est_energy_uj"], limits["max_energy_uj"], "uJ")):
        if limit is not None:
            console.print(f"{name}: {value:.2f} {unit} (estimated) within the {limit:g} {unit} limit")
    if result.contenders:
        scores = ", ".join(f"{name.replace('_', ' ')} {abs(c['val_score']):.3f}" for name, c in
                           sorted(result.contenders.items(), key=lambda kv: -kv[1]["val_score"]))
        console.print(f"validation {'MAE' if report['primary_metric'] == 'mae' else 'macro-F1'} of the contenders: "
                      f"{scores}; shipped: {shipped}")
    if result.privacy and result.privacy.get("spent"):
        dp = result.privacy["spent"]
        total = f"; with the run's own training {dp['epsilon_total']:.2f}" if dp["epsilon_total"] is not None else \
            "; the run it started from was trained without DP, so the model as a whole has no guarantee"
        console.print(f"differential privacy: the fit's trainings spent eps {dp['epsilon']:.2f} at delta "
                      f"{dp['delta']:.2g} ({dp['accountant']} accountant){total}")
    html = result.path / "report" / "report.html"
    console.print(f"wrote {result.path} (model, .tflite, C array, fit.json) and {html}")


@app.command()
def devices():
    """List the device profiles: core, clock, memory, kernel library (add your own YAML with --device FILE)."""
    from .devices import list_devices

    table = Table(title="device profiles (every number's source is in the profile file)")
    for col in ("name", "device", "clock", "SRAM", "flash", "latency from", "kernels"):
        table.add_column(col, overflow="fold")
    for d in list_devices():
        latency = (f"{d.instruction_model} instructions x {d.cycles_per_instruction:g} cycles" if d.instruction_model
                   else f"{d.cycles_per_mac['int8']:g} int8 cycles/MAC (assumed per-op costs)")
        table.add_row(d.name, d.title, f"{d.clock_mhz:g} MHz", f"{d.sram_kb:g} KB", f"{d.flash_kb:g} KB", latency,
                      d.kernel_library)
    console.print(table)


@app.command()
def prune(
    run: Path = typer.Argument(..., help="trained run directory"),
    out: Path = typer.Option(..., "--out", help="run directory for the pruned model"),
    method: str = typer.Option("channel", help="channel (conv channels, neurons, RNN units), neuron, weight, layer"),
    ratio: float = typer.Option(0.5, help="fraction of the prunable units (or weights) removed"),
    importance: str = typer.Option("l2", help="l1, l2, bn_scale, taylor, fpgm, activation, apoz, random, snip; "
                                   "layer: loss or similarity"),
    scope: str = typer.Option(None, help="local (same ratio per layer) or global (channel); global or layer (weight)"),
    round_to: int = typer.Option(1, help="keep channel counts a multiple of this (SIMD kernels: 4, 8, 16)"),
    min_channels: int = typer.Option(1, help="never prune a layer below this width"),
    n_m: str = typer.Option(None, "--n-m", help="N:M weight sparsity, e.g. 2:4 (method weight)"),
    recipe: Path = typer.Option(None, help="YAML recipe of ordered steps (hybrid pruning)"),
    finetune: int = typer.Option(10, help="fine-tuning epochs after pruning (0: none); per cycle"),
    cycles: int = typer.Option(1, help="iterative pruning: prune -> fine-tune cycles reaching --ratio"),
    distill: bool = typer.Option(True, help="distil from the dense model while fine-tuning"),
    lr: float = typer.Option(1e-3, help="fine-tuning learning rate"),
    harden: str = typer.Option(None, "--harden", help=HARDEN_HELP),
    harden_eps: float = typer.Option(0.1, "--harden-eps", help="adversarial hardening budget (channel std)"),
    dp_epsilon: float = typer.Option(None, "--dp-epsilon", help=DP_HELP + "; data-free criteria only"),
    dp_delta: float = typer.Option(None, "--dp-delta", help="DP δ (default 1 / (10 x training windows))"),
    dp_max_grad_norm: float = typer.Option(1.0, "--dp-max-grad-norm", help="per-window gradient clip"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
    overwrite: bool = typer.Option(False, help="replace --out if it exists"),
):
    """Prune a trained run physically, fine-tune it, and compare it with the dense model."""
    from .errors import ConfigError
    from .prune.recipe import Recipe
    from .specs import PruneSpec
    from .verbs import prune_run

    options: dict = {}
    if method == "weight":
        if scope:
            options["scope"] = scope
        if n_m:
            try:
                options["n_m"] = tuple(int(v) for v in n_m.split(":"))
            except ValueError:
                raise ConfigError(f"--n-m must look like 2:4, got {n_m!r}") from None
    elif method != "layer":
        options.update(scope=scope or "local", round_to=round_to, min_channels=min_channels)
    steps = Recipe.from_yaml(recipe).to_dict() if recipe else None
    spec = PruneSpec(method=method, ratio=ratio, importance=importance, options=options, recipe=steps,
                     finetune_epochs=finetune, cycles=cycles, distill=distill, lr=lr, harden=harden,
                     harden_eps=harden_eps, dp_epsilon=dp_epsilon, dp_delta=dp_delta, dp_max_grad_norm=dp_max_grad_norm)
    result = prune_run(run, out, spec, data_root=data_root, overwrite=overwrite, progress=True)
    _print_comparison(result.metrics, f"pruned {run} -> {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="folder for the demo's run directories"),
    device: str = typer.Option("nrf52840", help="device to fit (see `wearprune devices`)"),
    # 8 ms on the nRF52840 is about 2.4x below the dense cnn1d's estimate on HMP (half its channels or so)
    max_latency_ms: float = typer.Option(8.0, "--max-latency-ms", help="latency budget per inference on the device"),
    epochs: int = typer.Option(None, help="training epochs of the dense model (default: the training recipe's "
                               "60 with patience 15 on HMP, 40 otherwise)"),
    trials: int = typer.Option(12, help="search trials"),
    grow: float = typer.Option(1.0, help="width factor of a model trained before pruning and pruned instead of the "
                               "dense one (1: prune the dense one; docs/budget.md measured x2 not to pay on HMP)"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
    overwrite: bool = typer.Option(True, help="replace the demo's runs if they exist"),
):
    """The whole job on real data: train a baseline, fit it to a device in int8 within a latency budget,
    export the .tflite and C array, check them in TensorFlow Lite Micro, write the HTML report."""
    from .autofit import fit
    from .data.registry import is_present
    from .report.render import table_rows
    from .specs import FitSpec
    from .train import TrainConfig
    from .verbs import evaluate_run
    from .verbs import train as train_run

    hmp = is_present("hmp", data_root)
    data = "hmp" if hmp else "basicmotions"
    what = ("HMP ADL wrist accelerometer (real recordings, subject-wise split)" if hmp else
            "BasicMotions smartwatch accel+gyro (real, shipped in sktime; set WEARPRUNE_DATA for HMP)")
    console.print(Text.assemble(("wearprune demo", "bold"), f": {what} -> {device}, int8, <= {max_latency_ms:g} ms per "
                                "inference"))
    console.print(Text.assemble(("1/3 train", "bold"), " the dense baseline (cnn1d)"))
    config = TrainConfig(epochs=epochs or (None if hmp else 40), batch_size=64 if hmp else 16)
    run = train_run(data, "cnn1d", out / "dense", config=config, overwrite=overwrite, data_root=data_root,
                    progress=True)
    _print_metrics(evaluate_run(run, data_root=data_root, progress=False), f"dense cnn1d on {data} -> {out / 'dense'}")
    start = f"train large (x{grow:g} width), then compress: " if grow > 1 else ""
    console.print(Text.assemble(("2/3 fit", "bold"), f": {start}layer sensitivity, {trials} search trials over "
                                "per-layer ratios and criteria costed on the device, finalists ranked on inner folds, "
                                "the winner fine-tuned with distillation; checked against the same budget trained "
                                "from scratch and at uniform width (the best on validation is shipped)"))
    spec = FitSpec(device=device, max_latency_ms=max_latency_ms, int8=True, trials=trials, trial_epochs=2,
                   final_epochs=8, grow=grow if grow > 1 else None)
    result = fit(out / "dense", spec, out / "fitted", data_root=data_root, overwrite=overwrite, progress=True,
                 log=_log)
    console.print(Text.assemble(("3/3 exported", "bold"), " .tflite (fp32, int8) and the C array; both run in "
                                "TensorFlow Lite Micro on the whole test set"))
    _print_fit(result, table_rows)
    console.print(_demo_verdict(result))


def _demo_verdict(result) -> str:
    """One line: is the fitted model at least as accurate as the dense one on the test subjects, and if not, why."""
    import json

    report = json.loads((result.path / "report" / "report.json").read_text())
    key = report["primary_metric"]
    before, after = (r["metrics"][key] for r in report["runs"][:2])
    tflm = (result.measured.get("int8") or {}).get(key)
    better = after >= before if key != "mae" else after <= before
    macs = report["runs"][1]["vs_baseline"]["macs"]
    shown = f"{key} {before:.3f} dense -> {after:.3f} fitted (int8 in TFLite Micro: {tflm:.3f}), {macs:.1f}x fewer MACs"
    if better:
        return f"verdict: the fitted model is at least as accurate as the dense one on the test subjects: {shown}"
    others = ", ".join(f"{name.replace('_', ' ')} {c['test'][key]:.3f}" for name, c in (result.contenders or {}).items()
                       if key in c.get("test", {}))
    return (f"verdict: the fitted model is less accurate than the dense one on the test subjects: {shown}. Why: the "
            f"limit forces a model {macs:.1f}x smaller and no contender of that size matched the dense one"
            + (f" (test {key}: {others}; the shipped one was the best on validation)" if others else "")
            + "; docs/budget.md measures this with paired cross-validation")


@app.command("cv")
def cv_cmd(
    data: str = typer.Option(..., "--data", help=DATA_HELP),
    model: str = typer.Option("cnn1d", "--model", help="zoo model (see `wearprune models`)"),
    out: Path = typer.Option(..., "--out", help="cross-validation folder (rerun the same command to resume)"),
    folds: int = typer.Option(4, "--folds", help="subject folds (MIT-BIH: its DS1/DS2 protocol, 2 folds)"),
    seeds: int = typer.Option(3, "--seeds", help="training seeds per fold (--seed, --seed + 1, ...)"),
    seed: int = typer.Option(0, "--seed", help="first training seed"),
    fold_seed: int = typer.Option(0, "--fold-seed", help="seed of the shuffle that deals subjects into folds"),
    protocol: str = typer.Option("auto", "--protocol", help="auto (MIT-BIH: DS1->DS2 and DS2->DS1; no subject ids: "
                                 "the predefined split), kfold or predefined"),
    width: float = typer.Option(1.0, help="width multiplier for the model's channels"),
    epochs: int = typer.Option(None, help="maximum epochs (default: 60, more on a small set so that it gets 600 "
                               "optimizer steps; early stopping on validation subjects of the fold)"),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(3e-3, help="AdamW learning rate (cosine schedule)"),
    patience: int = typer.Option(None, help="epochs without validation improvement before stopping (default 15)"),
    augment: str = typer.Option(None, help=AUGMENT_HELP),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="classification: cross-entropy label "
                                          "smoothing (0 to <1)"),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda"),
    prune: str = typer.Option(None, "--prune", help="variant in every fold: method[:ratio[:importance]], e.g. "
                              "channel:0.5:taylor"),
    finetune: int = typer.Option(10, "--finetune", help="fine-tuning epochs of the --prune variant"),
    fit: str = typer.Option(None, "--fit", help="variant in every fold: fit to this device (see `wearprune devices`)"),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms", help="--fit: latency limit per inference"),
    max_energy_uj: float = typer.Option(None, "--max-energy-uj", help="--fit: energy limit per inference (uJ)"),
    max_ram_kb: float = typer.Option(None, "--max-ram-kb", help="--fit: tensor arena limit"),
    max_flash_kb: float = typer.Option(None, "--max-flash-kb", help="--fit: flash limit"),
    int8: bool = typer.Option(True, "--int8/--fp32", help="--fit: fit and export the full-integer int8 model"),
    trials: int = typer.Option(24, "--trials", help="--fit: search trials per fold"),
    trial_epochs: int = typer.Option(3, "--trial-epochs", help="--fit: fine-tuning epochs per candidate"),
    final_epochs: int = typer.Option(10, "--final-epochs", help="--fit: fine-tuning epochs of the winner"),
    grow: str = typer.Option(None, "--grow", help="--fit: train the model W x wider first and prune that (a factor, "
                             "or auto)"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
    rate: float = typer.Option(None, help="sampling rate in Hz (user recordings)"),
    window_s: float = typer.Option(None, help="window length in seconds (user recordings)"),
    step_s: float = typer.Option(None, help="window step in seconds (user recordings; default half a window)"),
    label_column: str = typer.Option(None, help="label column of a user recording (default: label)"),
    subject_column: str = typer.Option(None, help="subject column of a user recording (default: subject)"),
    task: str = typer.Option(None, help="classification or regression (user recordings; default: inferred)"),
):
    """Cross-validate by subject: folds x seeds, each an ordinary run in --out; with --prune or --fit, the
    variant of every fold's own dense run and the paired difference with its 95 % interval (cv.json)."""
    from .errors import ConfigError
    from .specs import FitSpec
    from .verbs.cv import crossval, parse_prune

    fit_given = {"max_latency_ms": max_latency_ms, "max_energy_uj": max_energy_uj, "max_ram_kb": max_ram_kb,
                 "max_flash_kb": max_flash_kb}
    if not fit and (any(v is not None for v in fit_given.values()) or grow is not None):
        raise ConfigError("--max-latency-ms, --max-energy-uj, --max-ram-kb, --max-flash-kb and --grow are options of "
                          "--fit DEVICE; add --fit")
    cfg = _train_config(augment, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
                        device=device, label_smoothing=label_smoothing)
    variant_prune = parse_prune(prune, finetune_epochs=finetune) if prune is not None else None
    variant_fit = FitSpec(device=fit, int8=int8, trials=trials, trial_epochs=trial_epochs,
                          final_epochs=final_epochs, grow=grow, **fit_given) if fit else None
    given = {"rate_hz": rate, "window_s": window_s, "step_s": step_s, "label_column": label_column,
             "subject_column": subject_column, "task": task}
    options = {k: v for k, v in given.items() if v is not None}
    doc = crossval(data, model, out, folds=folds, seeds=seeds, width=width, config=cfg, data_root=data_root,
                   data_options=options, prune=variant_prune, fit=variant_fit, protocol=protocol,
                   fold_seed=fold_seed, progress=True, log=_log)
    _print_cv(doc, out)


def _print_cv(doc: dict, out: Path) -> None:
    metric, summary, runs = doc["metric"], doc["summary"], doc["runs"]
    paired = "difference" in summary
    label = "variant" if not paired else ("pruned" if doc["spec"]["variant"]["kind"] == "prune" else "fitted")
    table = Table(title=f"cross-validation of {doc['spec']['model']} on {doc['spec']['data']['name']}: "
                        f"{metric} on held-out subjects",
                  caption=f"{doc['protocol']['name']}; seeds {', '.join(map(str, doc['protocol']['seeds']))}; "
                          "mean +/- 95 % t-interval over folds x seeds (cv.json: also over fold means and a "
                          "bootstrap over subjects)")
    for col in ("fold", "seed", "test subjects"):
        table.add_column(col, overflow="fold")
    for col in (["dense", label, "difference"] if paired else ["dense"]):
        table.add_column(col, justify="right")
    for r in runs:
        subjects = ", ".join(r["test_subjects"])
        row = [str(r["fold"]), str(r["seed"]), subjects if len(subjects) <= 40 else subjects[:37] + "...",
               f"{r['dense'][metric]:.4f}"]
        if paired:
            row += [f"{r['variant'][metric]:.4f}", f"{r['difference']:+.4f}"]
        table.add_row(*row)
    mean_row = ["mean", "", f"n = {summary['dense']['n']}", _mean_ci(summary["dense"])]
    if paired:
        mean_row += [_mean_ci(summary["variant"]), _mean_ci(summary["difference"], signed=True)]
    table.add_section()
    table.add_row(*mean_row)
    if paired:
        macs = summary["macs"]
        table.add_row("MACs", "", "mean per inference", f"{macs['dense']:,.0f}", f"{macs['variant']:,.0f}",
                      f"{macs['ratio']:.2f}x fewer")
    console.print(table)
    if doc["protocol"].get("note"):
        console.print(f"note: {doc['protocol']['note']}")
    if paired:
        d = summary["difference"]
        p = f", paired t-test p = {d['p_value']:.3g}" if d.get("p_value") is not None else ""
        console.print(f"paired difference ({label} - dense): {_mean_ci(d, signed=True)}{p}")
    seconds = doc["seconds"]
    variants = f", variants {seconds['variant']:.0f} s" if paired else ""
    console.print(f"wrote {out / 'cv.json'} ({doc['done']}/{doc['total']} fold runs; training "
                  f"{seconds['training']:.0f} s{variants})")


@app.command()
def compare(
    a: Path = typer.Argument(..., help="cross-validation folder A (the reference)"),
    b: Path = typer.Argument(..., help="cross-validation folder B, run on the same folds and seeds"),
    side: str = typer.Option("dense", help="dense: compare the dense runs; variant: the pruned/fitted ones"),
    json_out: Path = typer.Option(None, "--json", help="also write the comparison to this JSON file"),
):
    """Paired comparison of two cross-validations on the same folds and seeds (e.g. two training
    recipes): B - A per fold x seed, its mean and 95 % interval."""
    from .io import atomic_write_json
    from .verbs.cv import compare_cv

    doc = compare_cv(a, b, side)
    metric = doc["metric"]
    table = Table(title=f"{metric} on held-out subjects: B - A ({side} runs)", caption=f"A = {a}; B = {b}")
    for col in ("fold", "seed", "A", "B", "B - A"):
        table.add_column(col, justify="right")
    for pair, diff in zip(doc["pairs"], doc["difference"]["per_run"]):
        table.add_row(str(pair["fold"]), str(pair["seed"]), f"{pair['a']:.4f}", f"{pair['b']:.4f}", f"{diff:+.4f}")
    console.print(table)
    d = doc["difference"]
    p = f", paired t-test p = {d['p_value']:.3g}" if d.get("p_value") is not None else ""
    console.print(f"A {_mean_ci(doc['a_mean'])}; B {_mean_ci(doc['b_mean'])}; B - A {_mean_ci(d, signed=True)}{p} "
                  f"(n = {d['n']} fold x seed pairs)")
    if doc["unpaired"]["a"] or doc["unpaired"]["b"]:
        console.print(f"note: left out, no partner: {doc['unpaired']['a']} runs of A, {doc['unpaired']['b']} of B")
    if json_out:
        atomic_write_json(json_out, doc)
        console.print(f"wrote {json_out}")


def _mean_ci(block: dict, signed: bool = False) -> str:
    fmt = "+.4f" if signed else ".4f"
    ci = block.get("ci95")
    if ci is None:
        return f"{block['mean']:{fmt}} (no CI: n = 1)"
    return f"{block['mean']:{fmt}} [{ci[0]:{fmt}}, {ci[1]:{fmt}}]"


def _print_metrics(metrics: dict, title: str, per_class: bool = False) -> None:
    test, cost = metrics["test"], metrics["cost"]
    table = Table(title=title, caption=f"split: {metrics['split']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "kappa", "mae", "rmse"):
        if key in test:
            table.add_row(key, f"{test[key]:.4f}")
    table.add_row("test windows", str(test["n"]))
    table.add_row("parameters", f"{cost['params']:,}")
    table.add_row("MACs / inference", f"{cost['macs']:,}")
    table.add_row("size (fp32)", f"{cost['size_bytes'] / 1024:.1f} KiB")
    table.add_row("host latency (batch 1)", f"{cost['host_latency_ms']:.3f} ms")
    console.print(table)
    if per_class and "per_class" in test:
        pc = Table(title="per class (test)")
        for col in ("class", "precision", "recall", "F1", "support"):
            pc.add_column(col, justify="right" if col != "class" else "left")
        for row in test["per_class"]:
            pc.add_row(row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                       str(row["support"]))
        console.print(pc)


def _print_comparison(metrics: dict, title: str) -> None:
    dense, pruned = metrics["dense"], metrics
    table = Table(title=title, caption=f"split: {metrics['split']}")
    for col in ("", "dense", "pruned", "change"):
        table.add_column(col, justify="right" if col else "left")
    for key in ("accuracy", "macro_f1", "mae"):
        if key in pruned["test"]:
            a, b = dense["test"][key], pruned["test"][key]
            table.add_row(key, f"{a:.4f}", f"{b:.4f}", f"{b - a:+.4f}")
    for key, label in (("params", "parameters"), ("macs", "MACs / inference"), ("size_bytes", "size (bytes)"),
                       ("host_latency_ms", "host latency ms")):
        a, b = dense["cost"][key], pruned["cost"][key]
        table.add_row(label, f"{a:,}" if isinstance(a, int) else f"{a:.3f}",
                      f"{b:,}" if isinstance(b, int) else f"{b:.3f}", f"{a / max(b, 1e-12):.2f}x smaller")
    console.print(table)
    widths = Table(title="layer widths (channels / units)")
    for col in ("group", "before", "after"):
        widths.add_column(col)
    for step in metrics["prune"]:
        for layer in step.get("layers", []):
            widths.add_row(layer["group"], str(layer["before"]), str(layer["after"]))
        for block, how in step.get("removed", {}).items():
            widths.add_row(f"block {block}", "present", "identity" if how == "identity" else f"-> {how}")
        if "pruned_sparsity" in step:
            widths.add_row(f"weights ({step['step']['method']})", "dense",
                           f"{step['pruned_sparsity']:.0%} zeros")
    console.print(widths)


@app.command("robustness")
def robustness_cmd(
    runs: list[Path] = typer.Argument(..., help="run directories of one data set and split; the first is the "
                                      "reference (usually the dense model)"),
    corruption: str = typer.Option(None, "--corruption", help="comma list of noise, wander, gain, offset, rotation, "
                                   "dead, resample, clip, gaps (default: every one that applies to the data)"),
    tflm: bool = typer.Option(False, "--tflm", help="evaluate the exported int8 models in TensorFlow Lite Micro "
                              "(export the runs first) instead of PyTorch fp32"),
    seed: int = typer.Option(0, "--seed", help="seed of the corruptions' random draws (the same for every run)"),
    attack_eps: list[float] = typer.Option(None, "--attack-eps", help="also FGSM and PGD on the fp32 models at this "
                                           "L-inf budget in channel standard deviations, repeatable (e.g. 0.05 0.2)"),
    out: Path = typer.Option(None, "--out", help="folder for robustness.json and robustness.png (default: "
                             "RUN/robustness of the first run)"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
):
    """The test subjects under wearable corruptions (noise, baseline wander, gain and offset drift, strap
    rotation, a dead channel, clock error, clipping, packet loss) at five severities each: the metric per
    severity, the mean corruption metric, the worst corruption, and ImageNet-C's corruption error against
    the first run."""
    from .robust.evaluate import robustness

    doc = robustness(runs, corruptions=corruption, tflm=tflm, seed=seed, data_root=data_root,
                     out=out or runs[0] / "robustness", attack_eps=tuple(attack_eps or ()), log=lambda m: None)
    metric = doc["runs"][0]["metric"]
    table = Table(title=f"robustness on {doc['data']} ({doc['engine']})", caption=f"split: {doc['split']}; mean "
                  "corruption metric over every corruption and severity 1-5; CE / mCE against the first run")
    for col in ("run", f"clean {metric}", "mean corrupted", "worst corruption", "mCE", "relative mCE",
                *doc["corruptions"]):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in doc["runs"]:
        table.add_row(r["run"], f"{r['clean']:.3f}", f"{r['mean_corruption']:.3f}", r["worst"],
                      *("-" if v is None else f"{v:.2f}" for v in (r["mce"], r["relative_mce"])),
                      *(f"{r['per_corruption_mean'][n]:.3f}" for n in doc["corruptions"]))
    console.print(table)
    if "attacks" in doc:
        adv = Table(title=f"adversarial {metric} (fp32, eps in channel standard deviations)")
        adv.add_column("run")
        eps = list(doc["runs"][0]["attacks"]["fgsm"])
        for method in ("fgsm", "pgd"):
            for e in eps:
                adv.add_column(f"{method.upper()} {e}", justify="right")
        for r in doc["runs"]:
            adv.add_row(r["run"], *(f"{r['attacks'][m][e]:.3f}" for m in ("fgsm", "pgd") for e in eps))
        console.print(adv)
    if "per_class_recall" in doc["runs"][0]:
        console.print(_per_class_recall_table(doc))
    if doc["not_applicable"]:
        console.print(f"not applicable to these channels: {', '.join(doc['not_applicable'])}")
    console.print(f"wrote {out or runs[0] / 'robustness'}/robustness.json and robustness.png")


def _per_class_recall_table(doc: dict) -> Table:
    """Each class's recall clean -> mean corrupted, per run (a class without test windows shows '-')."""
    first = doc["runs"][0]["per_class_recall"]
    table = Table(title="recall (sensitivity) per class: clean -> mean over corruptions and severities 1-5")
    table.add_column("run")
    for name, n in zip(first["classes"], first["support"], strict=True):
        table.add_column(f"{name} (n={n})", justify="right")
    for r in doc["runs"]:
        pc = r["per_class_recall"]
        table.add_row(r["run"], *(f"{c:.2f} -> {m:.2f}" if n else "-"
                                  for c, m, n in zip(pc["clean"], pc["mean_corruption"], pc["support"], strict=True)))
    return table


@app.command("audit")
def audit_cmd(
    runs: list[Path] = typer.Argument(..., help="run directories to audit (e.g. dense, pruned, DP)"),
    tflm: bool = typer.Option(False, "--tflm", help="attack the exported int8 models in TensorFlow Lite Micro"),
    max_windows: int = typer.Option(2000, "--max-windows", help="windows per side (members, non-members)"),
    seed: int = typer.Option(0, "--seed", help="seed of the window sample"),
    out: Path = typer.Option(None, "--out", help="folder for audit.json (default: RUN/audit of the first run)"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
):
    """Membership inference: can an attacker tell the training subjects' windows from unseen subjects'?
    A loss-threshold attack and a class-calibrated one; ROC AUC (0.5 = chance) and TPR at 1 % FPR."""
    from .robust.audit import audit

    doc = audit(runs, tflm=tflm, max_windows=max_windows, seed=seed, data_root=data_root,
                out=out or runs[0] / "audit", log=lambda m: None)
    table = Table(title="membership inference audit", caption="members: training subjects' windows; non-members: "
                  "test subjects'; population (calibration): validation subjects'")
    for col in ("run", "windows/side", "loss AUC", "loss TPR@1%FPR", "calibrated AUC", "calibrated TPR@1%FPR"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in doc["runs"]:
        a, c = r["loss_threshold"], r["class_calibrated"]
        table.add_row(r["run"], str(r["windows_per_side"]), f"{a['auc']:.3f}", f"{a['tpr_at_1pct_fpr']:.3f}",
                      f"{c['auc']:.3f}", f"{c['tpr_at_1pct_fpr']:.3f}")
    console.print(table)
    console.print(f"wrote {out or runs[0] / 'audit'}/audit.json")


band_app = typer.Typer(no_args_is_help=True, help="Several models on one chip: plan the band (flash, RAM, battery "
                       "days, policy), replay real recordings in TFLite Micro, export the C bundle.")
app.add_typer(band_app, name="band")


@band_app.command("plan")
def band_plan(
    spec: Path = typer.Argument(..., help="band spec (YAML; see examples/band.yaml)"),
    out: Path = typer.Option(..., "--out", help="band folder: per-task runs, band.json, report.html"),
    objective: str = typer.Option(None, "--objective", help="battery (longest life with every floor met) or "
                                  "accuracy (most accurate lasting --min-days); default: the spec's"),
    min_days: float = typer.Option(None, "--min-days", help="battery days the plan must reach"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="redo task folders planned for another spec"),
):
    """Fit every task of the band to one chip together: per task the dense model, its fit and a ladder of
    cheaper prunes (each checked in TensorFlow Lite Micro); then one variant per task, jointly, within the
    chip's flash and RAM and every task's floor; and a battery-level policy. A killed plan resumes."""
    from .band import plan

    doc = plan(spec, out, data_root=data_root, overwrite=overwrite, objective=objective, min_days=min_days, log=_log)
    from .band.report import SPLIT_HEAD, battery_rows, split_rows

    table = Table(title=f"band plan on {doc['device']['title']} ({doc['objective']})",
                  caption="flash and arena measured (int8 in TFLite Micro); energy estimated by the cost model")
    for col in SPLIT_HEAD:
        table.add_column(col, justify="left" if col in ("part", "variant") else "right")
    for row in split_rows(doc["plan"]):
        table.add_row(*row)
    console.print(table)
    days = Table(title="battery days")
    for col in ("setting", "days", "variants"):
        days.add_column(col, justify="right" if col == "days" else "left")
    for name, d, choice in battery_rows(doc):
        days.add_row(name, f"{d:.2f}", choice)
    console.print(days)
    for line in doc["binds"]:
        console.print(f"binds: {line}", markup=False, highlight=False)
    console.print(f"wrote {out / 'band.json'} and {out / 'report.html'}")


@band_app.command("replay")
def band_replay(
    band: Path = typer.Argument(..., help="band folder written by `wearprune band plan`"),
    subject: list[str] = typer.Option(None, "--subject", help="held-out subject ID (for every task whose data has "
                                      "it) or TASK=ID, repeatable; default: each task's first test subject"),
    level: str = typer.Option(None, "--level", help="run a policy level's variants (default: the plan's)"),
    variant: str = typer.Option(None, "--variant", help="run this variant of every task instead (e.g. dense, fit)"),
    dtype: str = typer.Option("int8", "--dtype", help="int8 (as shipped) or fp32"),
    out: Path = typer.Option(None, "--out", help="folder for timeline.csv, replay.json, replay.png "
                             "(default: BAND/replay)"),
    data_root: str = typer.Option(None, "--data-root", help=ROOT_HELP),
):
    """Stream a held-out subject's real recordings through the band's exported models in TensorFlow Lite
    Micro, each task at its rate: timeline CSV, per-task metrics, energy spent, and a plot."""
    from .band import replay

    result = replay(band, subject, level=level, variant=variant, dtype=dtype, data_root=data_root, out=out, log=_log)
    e = result["energy"]
    console.print(f"replayed {result['span_s'] / 3600:.2f} h of recordings in {result['wall_s']:.1f} s "
                  f"({result['faster_than_real_time']:.0f}x real time); energy spent {e['total_j']:.3f} J "
                  f"(models {e['models_j']:.4f} J, estimated)")
    console.print(f"wrote {(out or band / 'replay')}/timeline.csv, replay.json, replay.png")


@band_app.command("export")
def band_export(
    band: Path = typer.Argument(..., help="band folder written by `wearprune band plan`"),
    out: Path = typer.Option(None, "--out", help="folder for band.h and band_main.c (default: BAND/c)"),
):
    """The band as C: every model the policy may run, the shared arena size, per-task buffers, the schedule
    and the policy in band.h, and a band_main.c scheduler skeleton (gcc -std=c11 -Wall -Werror)."""
    from .band import bundle

    paths = bundle(band, out)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


def _log(message: str) -> None:
    """Progress lines from the verbs: their text may hold paths and brackets, never rich markup."""
    console.print(message, markup=False, highlight=False)


def _error(message: str) -> None:
    err_console.print(Text.assemble(("error: ", "red"), message), highlight=False, soft_wrap=True)


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Training warnings are for the user: one yellow line, not Python's file:line form."""
    from .train import TrainingWarning

    if issubclass(category, TrainingWarning):
        err_console.print(Text.assemble(("warning: ", "yellow"), str(message)))
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main() -> None:
    """Entry point: user errors become one red line and exit code 2, never a traceback.
    ``WEARPRUNE_DEBUG=1`` shows the traceback of an unexpected error."""
    warnings.showwarning = _show_warning
    try:
        rc = app(standalone_mode=False)
    except WearpruneError as e:
        _error(str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        rc = 130
    except typer.Exit as e:
        rc = e.exit_code
    except typer.Abort:
        rc = 1
    except OSError as e:  # the machine refused a read or write (permissions, full disk, read-only mount)
        if os.environ.get("WEARPRUNE_DEBUG"):
            raise
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        _error(f"{e.strerror or e}{where}; check the path, its permissions and free space")
        sys.exit(2)
    except Exception as e:
        if any(c.__name__ == "ClickException" for c in type(e).__mro__):  # usage errors (typer may vendor click)
            e.show()
            sys.exit(e.exit_code)
        if os.environ.get("WEARPRUNE_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        _error(f"internal error {type(e).__name__}: {first[:300]}; please report it (WEARPRUNE_DEBUG=1 shows the "
               "traceback)")
        sys.exit(1)
    if rc == 130:  # typer turns Ctrl-C into Exit(130), which standalone_mode=False returns instead of raising
        err_console.print(Text.assemble(("interrupted", "red"), "; nothing half-written was left behind"))
        sys.exit(130)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
