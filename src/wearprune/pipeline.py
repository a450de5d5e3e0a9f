"""The verbs the command line uses: prepare data, train a zoo model into a run, evaluate a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .data.dataset import WearableDataset
from .data.normalize import Normalizer
from .data.registry import load_dataset
from .data.split import Split, subject_split
from .errors import ConfigError
from .evaluate import confusion_png, predict, task_metrics
from .io import atomic_write_bytes, atomic_write_json
from .models import build_model
from .models.conv import TCN
from .profile import profile_model
from .runs import Run, architecture_of, load_run, save_run
from .train import TrainConfig, fit


@dataclass
class PreparedData:
    dataset: WearableDataset  # raw, as loaded
    split: Split
    normalizer: Normalizer  # fitted on the training subjects only
    train: WearableDataset
    val: WearableDataset
    test: WearableDataset
    target_scale: dict | None  # regression: training-target mean/std for the loss


def prepare_data(data: str | WearableDataset, *, data_root=None, data_options: dict | None = None,
                 test_subjects: list[str] | None = None, seed: int = 0) -> PreparedData:
    ds = data if isinstance(data, WearableDataset) else load_dataset(data, data_root, **(data_options or {}))
    split = subject_split(ds, test_subjects=test_subjects, seed=seed)
    norm = Normalizer.fit(ds.X[split.train], ds.layout)
    parts = [norm.apply(ds.subset(idx)) for idx in (split.train, split.val, split.test)]
    scale = None
    if ds.task == "regression":
        yt = ds.y[split.train]
        scale = {"mean": float(yt.mean()), "std": float(yt.std() or 1.0)}
    return PreparedData(ds, split, norm, *parts, scale)


def prepare_from_config(config: dict, data_root=None, data: WearableDataset | None = None) -> PreparedData:
    """Rebuild exactly the data a run was trained on (same split, same normaliser)."""
    d = config["data"]
    if data is not None:
        ds = data
    elif d.get("in_memory"):
        raise ConfigError(f"this run was trained on in-memory data ({d['name']}); pass the dataset as data=")
    else:
        root = data_root if data_root is not None else d.get("root")
        ds = load_dataset(d["name"], root, **d.get("options", {}))
    split = subject_split(ds, test_subjects=config["split"]["test_subjects"], seed=config["train"]["seed"])
    norm = Normalizer.from_dict(config["normalizer"])
    parts = [norm.apply(ds.subset(idx)) for idx in (split.train, split.val, split.test)]
    return PreparedData(ds, split, norm, *parts, config.get("target_scale"))


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
    teacher: str | Path | None = None,
    prune_at_init: dict | None = None,
    gradual: dict | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Run:
    """Train zoo ``model`` on ``data`` with a subject-wise split; write a run directory to ``out``.

    Pruning around training: ``prune_at_init={"ratio": 0.5, "importance": "snip"}`` removes
    channels at initialisation, then trains the smaller model; ``gradual={"target": 0.8}`` prunes
    weights during training on Zhu & Gupta's cubic schedule (ending at 3/4 of the epochs);
    ``config.bn_l1`` adds Network Slimming's penalty (prune afterwards with importance bn_scale).
    """
    from .prune.schedule import CubicSchedule
    from .prune.structured import prune_structured
    from .prune.timing import GradualWeightPruning

    config = config or TrainConfig()
    config.validate()
    _check_out(out, overwrite)
    prepared = prepare_data(data, data_root=data_root, data_options=data_options,
                            test_subjects=test_subjects, seed=config.seed)
    torch.manual_seed(config.seed)
    net = build_model(model, prepared.dataset.spec(), width)
    init_summary = None
    if prune_at_init:
        opts = dict(prune_at_init)
        calib = _calibration(prepared, config.seed, opts.pop("windows", 512))
        net, init_summary = prune_structured(net, calib[0][:1], calib=calib, task=prepared.dataset.task,
                                             **{"importance": "snip", **opts})
        net.train()
    after_step, steps_per_epoch = None, max(1, -(-len(prepared.train) // config.batch_size))
    if gradual:
        end = max(1, int(0.75 * config.epochs * steps_per_epoch))
        schedule = CubicSchedule(float(gradual["target"]), 0, end, frequency=max(1, steps_per_epoch // 4))
        after_step = GradualWeightPruning(net, schedule, gradual.get("scope", "global"))
        # Keep the final weights from after the schedule ends: earlier ones are less sparse.
        config = TrainConfig(**{**config.to_dict(), "select_from_epoch": -(-end // steps_per_epoch) + 1,
                                "patience": max(config.patience, config.epochs)})
    teacher_model = load_run(teacher).model if teacher else None
    with _progress(progress, f"train {model} on {prepared.dataset.name}", config.epochs) as bar:
        history = fit(net, prepared.train, prepared.val, config, teacher=teacher_model,
                      target_scale=prepared.target_scale, on_epoch=bar.epoch, on_batch=bar.batch,
                      after_step=after_step)
    run_config = {
        "wearprune_version": __version__,
        "data": _data_record(prepared.dataset),
        "split": prepared.split.to_dict(),
        "normalizer": prepared.normalizer.to_dict(),
        "target_scale": prepared.target_scale,
        "model": {"name": model, "width": width},
        "train": config.to_dict(),
        "teacher": str(teacher) if teacher else None,
        "prune_at_init": prune_at_init,
        "gradual": gradual,
    }
    arch = architecture_of(model, width, prepared.dataset.spec(), net if prune_at_init else None)
    metrics, extra = _measure(net, prepared)
    metrics["history"] = history.to_dict()
    if init_summary is not None:
        metrics["prune_at_init"] = init_summary.to_dict()
    if gradual:
        from .prune.weight import sparsity

        metrics["sparsity"] = sparsity(net)["overall"]
    if out is None:
        return Run(path=Path(), config=run_config, architecture=arch, model=net, metrics=metrics)
    path = save_run(out, model=net, config=run_config, architecture=arch, metrics=metrics,
                    extra=extra, overwrite=overwrite)
    return Run(path=path, config=run_config, architecture=arch, model=net, metrics=metrics)


def evaluate_run(run: str | Path | Run, *, data_root: str | None = None, data: WearableDataset | None = None,
                 write: bool = True, progress: bool = False) -> dict:
    """Evaluate a run on its test subjects; write evaluation.json (+ confusion.png) into the run."""
    run = run if isinstance(run, Run) else load_run(run)
    with _progress(progress, f"evaluate {run.path}", 1) as bar:
        prepared = prepare_from_config(run.config, data_root, data)
        metrics, extra = _measure(run.model, prepared)
        bar.epoch({})
    if write:
        atomic_write_json(run.path / "evaluation.json", metrics)
        for name, data in extra.items():
            atomic_write_bytes(run.path / name, data)
    return metrics


def _measure(model, prepared: PreparedData) -> tuple[dict, dict[str, bytes]]:
    test = prepared.test
    outputs = predict(model, test.X)
    metrics = task_metrics(test, outputs, prepared.target_scale)
    example = torch.from_numpy(test.X[:1])
    result = {
        "dataset": prepared.dataset.name,
        "split": prepared.split.name,
        "test_subjects": prepared.split.test_subjects,
        "test": metrics,
        "cost": profile_model(model, example),
    }
    extra = {}
    if test.task == "classification":
        names = test.class_names or [str(i) for i in range(outputs.shape[1])]
        title = f"{prepared.dataset.name} test ({prepared.split.name})"[:90]
        extra["confusion.png"] = confusion_png(metrics["confusion_matrix"], names, title)
    return result, extra


def _data_record(ds: WearableDataset) -> dict:
    if ds.origin:
        return dict(ds.origin)
    return {"name": ds.name, "root": None, "options": {}, "in_memory": True}


class _NoBar:
    def epoch(self, record):
        pass

    def batch(self, done, total):
        pass


class _RichBar:
    def __init__(self, title: str, epochs: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False)
        self.title = title
        self.task = self.progress.add_task(title, total=epochs, info="")
        self.batches = None

    def epoch(self, record: dict):
        info = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch", "lr"))
        self.progress.update(self.task, advance=1, info=info)

    def batch(self, done: int, total: int):
        if self.batches is None:
            self.batches = self.progress.add_task("  batches", total=total, info="")
        self.progress.update(self.batches, completed=done % total if done < total else total)
        if done >= total:
            self.progress.reset(self.batches, total=total)


class _progress:
    def __init__(self, enabled: bool, title: str, epochs: int):
        self.bar = _RichBar(title, epochs) if enabled else _NoBar()

    def __enter__(self):
        if isinstance(self.bar, _RichBar):
            self.bar.progress.start()
        return self.bar

    def __exit__(self, *exc):
        if isinstance(self.bar, _RichBar):
            bar = self.bar
            # Early stopping ends before the last epoch: show the bar as finished, not stuck.
            bar.progress.update(bar.task, completed=bar.progress.tasks[bar.task].total)
            if bar.batches is not None:
                bar.progress.remove_task(bar.batches)
            bar.progress.stop()
        return False


def prune_run(
    run: str | Path | Run,
    out: str | Path | None = None,
    *,
    method: str = "channel",
    ratio: float = 0.5,
    importance: str = "l2",
    recipe: dict | None = None,
    finetune_epochs: int = 10,
    cycles: int = 1,
    distill: bool = True,
    lr: float = 1e-3,
    options: dict | None = None,
    data_root: str | None = None,
    calib_windows: int = 512,
    overwrite: bool = False,
    progress: bool = False,
) -> Run:
    """Prune a trained run, fine-tune it (distilling from the dense model by default), evaluate both
    on the same test subjects, and write a new run directory."""
    from .prune import MaskKeeper, zero_masks
    from .prune.recipe import PruneStep, Recipe, apply_recipe
    from .prune.schedule import IterativeSchedule

    _check_out(out, overwrite)
    dense = run if isinstance(run, Run) else load_run(run)
    prepared = prepare_from_config(dense.config, data_root)
    if cycles < 1:
        raise ConfigError(f"cycles must be at least 1, got {cycles}")
    if recipe:
        steps = Recipe.from_dict(recipe)
    else:
        # Iterative pruning: each cycle removes the same share of what remains, then fine-tunes.
        share = IterativeSchedule(ratio, cycles).fraction_per_cycle if cycles > 1 else ratio
        steps = Recipe([PruneStep(method, share, importance, dict(options or {})) for _ in range(cycles)])
    seed = dense.config["train"]["seed"]
    calib = _calibration(prepared, seed, calib_windows)
    example = calib[0][:1]
    model, summaries, history = dense.model, [], None
    rounds = [[s] for s in steps.steps] if cycles > 1 and not recipe else [steps.steps]
    for k, round_steps in enumerate(rounds, 1):
        model, done = apply_recipe(model, example, Recipe(round_steps), calib=calib, task=prepared.dataset.task,
                                   seed=seed)
        summaries += done
        if finetune_epochs > 0:
            cfg = TrainConfig(**{**dense.config["train"], "epochs": finetune_epochs, "lr": lr, "bn_l1": 0.0,
                                 "patience": max(3, finetune_epochs), "select_from_epoch": 1})
            sparse = any(s.method == "weight" for s in steps.steps)
            # Unstructured zeros must survive fine-tuning: re-apply the masks after every step.
            keeper = MaskKeeper(model, zero_masks(model)) if sparse else None
            title = f"fine-tune pruned {dense.architecture['model']}" + (f" (cycle {k}/{len(rounds)})"
                                                                          if len(rounds) > 1 else "")
            with _progress(progress, title, cfg.epochs) as bar:
                history = fit(model, prepared.train, prepared.val, cfg, teacher=dense.model if distill else None,
                              target_scale=prepared.target_scale, on_epoch=bar.epoch, on_batch=bar.batch,
                              after_step=keeper.step if keeper else None)
    metrics, extra = _measure(model, prepared)
    before, _ = _measure(dense.model, prepared)
    metrics["dense"] = {"test": {k: v for k, v in before["test"].items() if not isinstance(v, list)},
                        "cost": before["cost"]}
    metrics["prune"] = summaries
    if history is not None:
        metrics["history"] = history.to_dict()
    config = dict(dense.config, pruned_from=str(dense.path), prune={"recipe": steps.to_dict(), "cycles": cycles,
                  "finetune_epochs": finetune_epochs, "distill": distill, "lr": lr})
    removed_blocks = dict(dense.architecture.get("removed_blocks", {}))
    for summary in summaries:
        removed_blocks.update(summary.get("removed", {}))
    arch = architecture_of(dense.architecture["model"], dense.architecture["width"], dense.architecture["spec"],
                           model, removed_blocks)
    if out is None:
        return Run(path=Path(), config=config, architecture=arch, model=model, metrics=metrics)
    path = save_run(out, model=model, config=config, architecture=arch, metrics=metrics, extra=extra,
                    overwrite=overwrite)
    return Run(path=path, config=config, architecture=arch, model=model, metrics=metrics)


def _calibration(prepared: PreparedData, seed: int, windows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded sample of training windows for data-driven importance and layer ranking."""
    pick = np.random.default_rng(seed).permutation(len(prepared.train))[:windows]
    return torch.from_numpy(prepared.train.X[pick]), torch.from_numpy(prepared.train.y[pick])


def _check_out(out, overwrite: bool) -> None:
    """Refuse an existing --out before any work, not after minutes of training."""
    if out is not None and Path(out).exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another --out or pass --overwrite")


EXPORT_FORMATS = ("tflite", "onnx", "c")
FP32_TOLERANCE = 1e-3  # max |TFLite Micro - PyTorch| on fp32 outputs (logits or scaled targets)
INT8_TOLERANCE = 0.05  # int8 may be at most 5 % worse than fp32 in TFLite Micro (relative, F1 or MAE)


def export_run(run: str | Path | Run, formats: tuple[str, ...] = EXPORT_FORMATS, *, int8: bool = True,
               data_root: str | None = None, calib_windows: int = 256, qat_epochs: int = 0,
               quantizer: str = "auto", int8_tolerance: float = INT8_TOLERANCE, progress: bool = False) -> dict:
    """Export a run for the device and check it by running it.

    Every ``.tflite`` runs in TensorFlow Lite Micro on the whole test set: its metrics (beside
    PyTorch's), its largest output difference and the arena TFLite Micro allocates are stored in the
    run's metrics under ``tflm``. int8 is post-training (calibrated on ``calib_windows`` training
    windows) or, with ``qat_epochs``, quantisation-aware fine-tuning; an int8 model more than
    ``int8_tolerance`` worse than fp32 is refused, naming the layer where precision is lost. Files
    are built in memory first and written atomically at the end, so a failed check leaves no export.
    """
    from .evaluate import headline
    from .export.c_array import to_c_source
    from .export.onnx import run_onnx, to_onnx

    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad or not formats:
        raise ConfigError(f"unknown export format {', '.join(bad) or '(none)'}; use {', '.join(EXPORT_FORMATS)}")
    from .quant.pt2e import MIN_CALIBRATION

    if int8 and calib_windows < MIN_CALIBRATION:
        raise ConfigError(f"int8 calibration needs at least {MIN_CALIBRATION} windows, got --calib-windows "
                          f"{calib_windows}")
    if quantizer not in ("auto", "pt2e", "ai-edge-quantizer"):
        raise ConfigError(f"unknown quantizer {quantizer!r}; use auto, pt2e or ai-edge-quantizer")
    if qat_epochs < 0 or not int8_tolerance >= 0:
        raise ConfigError("qat_epochs and int8_tolerance must not be negative")
    run = run if isinstance(run, Run) else load_run(run)
    prepared = prepare_from_config(run.config, data_root)
    test, model = prepared.test, run.model.eval()
    if int8 and len(prepared.train) < MIN_CALIBRATION:
        raise ConfigError(f"int8 calibration needs training windows; {run.config.get('data')} has only "
                          f"{len(prepared.train)} in its training split")
    x1 = torch.from_numpy(test.X[:1])
    reference = predict(model, test.X)
    files: dict[str, bytes] = {}
    checks: dict[str, dict] = {}
    from .export.streaming import device_form

    form = device_form(model)  # a bidirectional sequence model is unrolled per gate instead of streamed
    recurrent = form is model and any(isinstance(m, torch.nn.RNNBase) for m in model.modules())
    if recurrent and qat_epochs:
        raise ConfigError("quantisation-aware training of a streaming step is not built; export recurrent "
                          "models with post-training int8 (drop --qat-epochs)")
    if recurrent and quantizer == "ai-edge-quantizer":
        raise ConfigError("the ai-edge-quantizer path calibrates single-input graphs; a streaming step has its "
                          "states as inputs too: use --quantizer pt2e")
    # what to try when int8 is refused, for this kind of model
    advice = "more --calib-windows, or --fp32-only" if recurrent else "--qat-epochs 3, more --calib-windows, or " \
        "--fp32-only"
    dtypes = ["fp32"] + (["int8"] if int8 else [])
    calib = _calibration(prepared, 0, calib_windows)[0] if int8 else None
    with _progress(progress, f"export {run.path}", len(dtypes) + 1) as bar:
        for dtype in dtypes:
            if recurrent:
                outputs, check, made, graph = _streaming_tflite(model, x1, test.X, dtype, calib, quantizer)
            else:
                outputs, check, made, graph = _window_tflite(form, x1, test.X, dtype, calib, prepared,
                                                             qat_epochs, quantizer)
            diff = float(np.abs(outputs - reference).max())
            if dtype == "fp32" and diff > FP32_TOLERANCE:
                raise ConfigError(f"the fp32 TFLite model differs from PyTorch by {diff:.2g} (tolerance "
                                  f"{FP32_TOLERANCE}); the conversion is wrong, report it with the model")
            metrics = task_metrics(test, outputs, prepared.target_scale)
            key, value = headline(metrics)
            checks[dtype] = {**check, "max_abs_diff": diff, key: value, "test_windows": len(test.X),
                             **({"accuracy": metrics["accuracy"]} if "accuracy" in metrics else {})}
            if dtype == "int8":
                _check_int8(checks["fp32"], checks["int8"], key, int8_tolerance, graph, calib, advice)
            files.update(made)
            bar.epoch({})
        if "onnx" in formats:
            onnx_bytes = to_onnx(model, x1)
            diff = float(np.abs(run_onnx(onnx_bytes, test.X[:64]) - reference[:64]).max())
            if diff > FP32_TOLERANCE:
                raise ConfigError(f"the ONNX model differs from PyTorch by {diff:.2g} in onnxruntime")
            files["model.onnx"] = onnx_bytes
            checks["onnx"] = {"max_abs_diff": diff, "bytes": len(onnx_bytes)}
        if "c" in formats:
            dtype = dtypes[-1]
            for part in ["frontend", "step"] if recurrent else [None]:
                name = f"model_{part}" if part else "model"
                tfl = files[f"{name}_{dtype}.tflite"]
                arena = checks[dtype][f"{part}_arena_bytes"] if part else checks[dtype]["arena_bytes"]
                header, source = to_c_source(tfl, name, arena_bytes=arena, io=_io_details(tfl),
                                             normalizer=run.config.get("normalizer") if part != "step" else None)
                files[f"{name}_data.h"], files[f"{name}_data.c"] = header.encode(), source.encode()
        bar.epoch({})
    if "tflite" not in formats and "c" not in formats:
        files = {k: v for k, v in files.items() if not k.endswith(".tflite")}
    for name, data in files.items():
        atomic_write_bytes(run.path / name, data)
    run.metrics["tflm"] = {**checks, "measured": "TensorFlow Lite Micro interpreter (tflite-micro package) on "
                                                 "this host, whole test set"}
    atomic_write_json(run.path / "metrics.json", run.metrics)
    return {"files": sorted(files), "checks": checks, "split": prepared.split.name,
            "pytorch": headline(task_metrics(test, reference, prepared.target_scale))}


def _window_tflite(model, x1, windows, dtype, calib, prepared, qat_epochs, quantizer):
    """A whole-window model: (TFLite Micro outputs, check record, files, the pt2e int8 graph or None)."""
    from .export import measure_arena, run_tflm, to_tflite
    from .export.tflite import to_tflite_int8
    from .quant import qat, weight_sparsity

    graph, record = None, {}
    if dtype == "int8":
        source = model
        if qat_epochs:
            source = qat(model, prepared.train, prepared.val, epochs=qat_epochs, target_scale=prepared.target_scale)
            record = {"qat_epochs": qat_epochs, "weight_sparsity_before": weight_sparsity(model),
                      "weight_sparsity_after": weight_sparsity(source.module)}
        tfl, method, graph = to_tflite_int8(source, x1, calib, quantizer=quantizer)
        record["quantizer"] = method
    else:
        tfl = to_tflite(model, x1)
    arena = measure_arena(tfl)
    check = {"arena_bytes": arena.total, "arena_head_bytes": arena.head, "arena_tail_bytes": arena.tail,
             "tflite_bytes": len(tfl), **record}
    made = {f"model_{dtype}.tflite": tfl}
    if isinstance(model, TCN):  # causal: also exported as a per-sample streaming step (post-training int8)
        some = windows[:32]
        step_out, step_check, step_files, _ = _streaming_tflite(model, x1, some, dtype, calib, "pt2e")
        step_diff = float(np.abs(step_out - predict(model, some)).max())
        if dtype == "fp32" and step_diff > FP32_TOLERANCE:
            raise ConfigError(f"the streaming step differs from the window model by {step_diff:.2g} in TFLite Micro")
        kept = {k: v for k, v in step_check.items() if k.startswith("step") or k in ("state_bytes", "quantizer")}
        check["streaming_step"] = {**kept, "max_abs_diff": step_diff, "windows": len(some)}
        made.update(step_files)
    return run_tflm(tfl, windows), check, made, graph


def _streaming_tflite(model, x1: torch.Tensor, windows: np.ndarray, dtype: str, calib, quantizer: str = "pt2e"):
    """A model as a streaming step (GRU/LSTM after a conv front end, or a causal TCN sample by
    sample), run in TFLite Micro frame by frame: litert-torch's unrolled recurrent graph exceeds
    TFLite Micro's limits, and firmware wants one call per new sample anyway."""
    from .export import measure_arena, tflite_summary, to_tflite
    from .export.streaming import step_calibration, streaming_parts
    from .export.tflite import to_tflite_int8
    from .export.tflm import run_tflm_streaming

    try:
        if isinstance(model, TCN):
            from .export.streaming_tcn import tcn_streaming_parts

            frontend, (step, shapes) = None, tcn_streaming_parts(model)
        else:
            frontend, step, shapes = streaming_parts(model)
    except ValueError as e:
        raise ConfigError(f"cannot export this model as a streaming step: {e}") from None
    with torch.no_grad():
        frame = frontend(x1)[:, 0] if frontend is not None else x1[:, :, 0]
    states = tuple(torch.zeros(s) for s in shapes)
    graph, record, made, front_b = None, {}, {}, None
    if dtype == "int8":
        if frontend is not None:
            front_b, method, _ = to_tflite_int8(frontend, x1, calib.numpy(), quantizer=quantizer)
            record["frontend_quantizer"] = method
        # the step's inputs include its states: calibrate on the (frame, states) that streaming meets
        step_calib = step_calibration(frontend, step, shapes, calib)
        step_b, method, graph = to_tflite_int8(step, (frame, *states), step_calib, quantizer="pt2e")
        record["quantizer"] = method
    else:
        front_b = to_tflite(frontend, x1) if frontend is not None else None
        step_b = to_tflite(step, (frame, *states))
    step_a = measure_arena(step_b)
    outputs = run_tflm_streaming(front_b, step_b, len(shapes), windows)
    summary = tflite_summary(step_b)
    # kept between steps, at the step's input types (int8 graphs keep a state float where float ops read it)
    state_bytes = sum(summary["input_bytes"][1:])
    record.update({"streaming": True, "step_arena_bytes": step_a.total, "state_bytes": state_bytes,
                   "step_ops": len(summary["ops"]), "step_tflite_bytes": len(step_b),
                   "tflite_bytes": len(step_b)})
    made[f"model_step_{dtype}.tflite"] = step_b
    if frontend is not None:
        front_a = measure_arena(front_b)
        # both arenas are measured; firmware runs one graph at a time and keeps the state between calls
        record.update({"frontend_arena_bytes": front_a.total, "arena_bytes": max(front_a.total, step_a.total)
                       + state_bytes, "arena_is": "larger measured arena (front end, step) + state",
                       "tflite_bytes": len(front_b) + len(step_b)})
        made[f"model_frontend_{dtype}.tflite"] = front_b
    return outputs, record, made, graph


def _check_int8(fp32: dict, int8: dict, key: str, tolerance: float, graph, calib, advice: str) -> None:
    """Refuse an int8 model that lost more than ``tolerance`` (relative) of the fp32 metric in
    TFLite Micro, naming the layer where the int8 activations part from fp32."""
    before, after = fp32[key], int8[key]
    worse = (after - before) / max(abs(before), 1e-9) if key == "mae" else (before - after) / max(abs(before), 1e-9)
    int8["loss_vs_fp32"] = worse
    if worse <= tolerance:
        return
    where = ""
    if graph is not None:
        from .quant import layer_errors, worst_layer
        from .quant.pt2e import fp32_graph

        inputs = graph.calibration[:32] or calib[:32]
        worst = worst_layer(layer_errors(fp32_graph(graph), graph.module, inputs))
        if worst is not None:
            where = (f"; precision is lost at layer {worst.layer or worst.node!r} (its int8 output is off by "
                     f"{worst.relative_error:.0%}, {worst.added:+.0%} over the layer before)")
    raise ConfigError(f"the int8 model's {key} is {after:.3f} in TFLite Micro against {before:.3f} in fp32 "
                      f"({worse:.0%} worse; tolerance {tolerance:.0%}){where}; try {advice}")


def _io_details(tflite: bytes) -> dict:
    from .export.tflm import _load, tflite_summary

    interp, _ = _load(tflite)

    def describe(detail: dict) -> dict:
        q = detail["quantization_parameters"]
        quantised = len(q["scales"]) > 0
        return {"dtype": np.dtype(detail["dtype"]).name, "shape": list(detail["shape"]),
                "scale": float(q["scales"][0]) if quantised else None,
                "zero_point": int(q["zero_points"][0]) if quantised else None}

    out = {"inputs": [], "outputs": []}
    summary = tflite_summary(tflite)
    for side, get in (("inputs", interp.get_input_details), ("outputs", interp.get_output_details)):
        for i in range(len(summary[side])):
            out[side].append(describe(get(i)))
    out["input"], out["output"] = out["inputs"][0], out["outputs"][0]  # a streaming step: the frame, the output
    return out
