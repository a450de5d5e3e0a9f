"""``band replay``: a held-out subject's real recordings streamed through the band's exported models
in TensorFlow Lite Micro, each task at its own rate.

Each task's windows of that subject are taken in recording order (the data set's own windows: HMP
trials back to back, TROIKA recordings, a night of sleep epochs) and timestamped one inference period
apart; a streaming model (GRU/LSTM step) runs frame by frame with its state fed back. Writes
``timeline.csv`` (time, task, variant, output, truth), ``replay.json`` (per-task metrics on the
subject, energy spent by the schedule, speed vs real time) and ``replay.png``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .spec import BandSpec

DTYPES = ("int8", "fp32")


def read_band(band: str | Path) -> dict:
    path = Path(band) / "band.json"
    if not path.is_file():
        raise ConfigError(f"{band} holds no band.json; plan the band first "
                          f"(wearprune band plan band.yaml --out {band})")
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON ({e}); plan the band again") from None
    if doc.get("format") != "wearprune-band":
        raise ConfigError(f"{path} is not a wearprune band plan; plan the band again")
    return doc


def variant_dir(band: str | Path, variant: dict) -> Path:
    """A variant's run folder (band.json keeps it relative to the band folder)."""
    return Path(band) / variant["run"]


def chosen_variants(doc: dict, level: str | None, variant: str | None = None) -> dict[str, str]:
    """Variant per task: the plan's, a policy level's, or the one named ``variant`` of every task."""
    if variant is not None:
        names = {v["name"] for t in doc["tasks"].values() for v in t["variants"]}
        if level is not None or not all(variant in {v["name"] for v in t["variants"]} for t in doc["tasks"].values()):
            raise ConfigError(f"--variant {variant!r} must be a variant of every task (known: "
                              f"{', '.join(sorted(names))}) and comes without --level")
        return dict.fromkeys(doc["tasks"], variant)
    if level is None:
        return dict(doc["plan"]["choice"])
    for row in doc["policy"]["levels"]:
        if row["level"] == level:
            return dict(row["choice"])
    raise ConfigError(f"no policy level {level!r}; levels: {', '.join(r['level'] for r in doc['policy']['levels'])}")


def _subjects(given: list[str] | None, doc: dict) -> dict[str, str | None]:
    """``TASK=ID`` pins one task's subject; a bare ``ID`` applies to every task whose data has it."""
    pinned: dict[str, str | None] = dict.fromkeys(doc["tasks"])
    bare = []
    for item in given or []:
        if "=" in item:
            task, sid = item.split("=", 1)
            if task not in doc["tasks"]:
                raise ConfigError(f"--subject {item}: no task {task!r}; tasks: {', '.join(doc['tasks'])}")
            pinned[task] = sid
        else:
            bare.append(item)
    for task, info in doc["tasks"].items():
        if pinned[task] is None:
            hits = [s for s in bare if s in info["test_subjects"]]
            pinned[task] = hits[0] if hits else None
    if bare and not any(s in info["test_subjects"] for s in bare for info in doc["tasks"].values()):
        shown = "; ".join(f"{t}: {', '.join(i['test_subjects'])}" for t, i in doc["tasks"].items())
        raise ConfigError(f"--subject {', '.join(bare)} is not a held-out test subject of any task; test subjects: "
                          f"{shown}")
    return pinned


def replay(band: str | Path, subjects: list[str] | None = None, *, level: str | None = None,
           variant: str | None = None, dtype: str = "int8", data_root: str | None = None,
           out: str | Path | None = None, log=print) -> dict:
    """Replay held-out recordings through the band's models in TFLite Micro; returns replay.json's dict.
    ``subjects``: ``ID`` or ``TASK=ID`` items (default per task: its first test subject). ``level``: a
    policy level's variants; ``variant``: that variant of every task (e.g. "dense"); default: the plan's.
    Also writes ``outputs.npz``: each task's raw model outputs (logits, or the scaled target)."""
    from ..data.prepare import prepare_from_config
    from ..evaluate import headline, task_metrics
    from ..export.tflm import run_exported
    from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
    from ..runs import load_run

    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be int8 or fp32, got {dtype!r}")
    doc = read_band(band)
    spec = BandSpec.from_dict(doc["spec"])
    choice = chosen_variants(doc, level, variant)
    pinned = _subjects(subjects, doc)
    out = Path(out) if out is not None else Path(band) / "replay"
    rows: list[tuple[float, str, str, str, str]] = []
    tasks, curves, raw, started = {}, {}, {}, time.time()
    spent_model_j, span_s = 0.0, 0.0
    for task in spec.tasks:
        info = doc["tasks"][task.name]
        variant = next(v for v in info["variants"] if v["name"] == choice[task.name])
        run = load_run(variant_dir(band, variant))
        prepared = prepare_from_config(run.config, data_root)
        sid = pinned[task.name] or info["test_subjects"][0]
        sub = _subject_windows(prepared, sid, task.name)
        t0 = time.time()
        outputs = run_exported(variant_dir(band, variant), sub.X, dtype)
        seconds = time.time() - t0
        raw[task.name] = outputs
        metrics = task_metrics(sub, outputs, prepared.target_scale)
        key, value = headline(metrics)
        values = _numeric(sub, outputs, prepared.target_scale)
        pred, truth, labels = _readable(sub, values, outputs.shape[1])
        times = np.arange(len(sub.X)) * task.every_s
        rows += [(float(t), task.name, variant["name"], p, g) for t, p, g in zip(times, pred, truth)]
        spent = len(sub.X) * variant["energy_uj"] * 1e-6
        spent_model_j += spent
        span_s = max(span_s, float(len(sub.X) * task.every_s))
        tasks[task.name] = {"subject": sid, "variant": variant["name"], "dtype": dtype, "windows": len(sub.X),
                            "metric": key, key: float(value), "recorded_s": float(len(sub.X) * task.every_s),
                            "inference_s": seconds, "model_energy_j": spent,
                            "faster_than_real_time": len(sub.X) * task.every_s / max(seconds, 1e-9),
                            **({"accuracy": metrics["accuracy"]} if "accuracy" in metrics else {})}
        curves[task.name] = (times, values, sub.y.astype(float), labels)
        log(f"{task.name}: subject {sid}, {len(sub.X)} windows through {variant['name']} ({dtype}, TFLite Micro): "
            f"{key} {value:.3f}")
    wall = time.time() - started
    asleep_j = doc["device"]["sleep_uw"] * 1e-6 * span_s
    baseline_j = sum(b["uw"] * 1e-6 * span_s * b["hours"] / 24.0 for b in doc["spec"].get("baseline", []))
    shown = level or (f"variant {variant}" if variant else "plan")
    result = {"band": str(band), "level": shown, "dtype": dtype, "tasks": tasks,
              "span_s": span_s, "wall_s": wall, "faster_than_real_time": span_s / wall if wall > 0 else float("inf"),
              "energy": {"models_j": spent_model_j, "mcu_asleep_j": asleep_j, "baseline_j": baseline_j,
                         "total_j": spent_model_j + asleep_j + baseline_j,
                         "note": "energy per inference estimated by the cost model; the baseline prorated by its "
                                 "hours per day over the replayed span"},
              "measured": "outputs from the exported .tflite files in the TensorFlow Lite Micro interpreter on this "
                          "host; times are one inference period apart from the first window"}
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["time_s", "task", "variant", "output", "truth"])
    writer.writerows(sorted(rows, key=lambda r: (r[0], r[1])))
    atomic_write_text(out / "timeline.csv", buf.getvalue())
    atomic_write_json(out / "replay.json", result)
    npz = io.BytesIO()
    np.savez(npz, **raw)
    atomic_write_bytes(out / "outputs.npz", npz.getvalue())
    atomic_write_bytes(out / "replay.png", _plot(curves, tasks))
    return result


def _subject_windows(prepared, sid: str, task: str):
    ds = prepared.dataset
    idx = np.flatnonzero(ds.subjects == sid)
    held_out = set(prepared.test.subjects.tolist())
    if not len(idx):
        raise ConfigError(f"task {task}: subject {sid!r} is not in {ds.name}; held-out subjects: "
                          f"{', '.join(sorted(held_out))}")
    if sid not in held_out:
        raise ConfigError(f"task {task}: subject {sid!r} was used for training or validation; replay a held-out one: "
                          f"{', '.join(sorted(held_out))}")
    return prepared.normalizer.apply(ds.subset(idx))


def _numeric(sub, outputs: np.ndarray, scale) -> np.ndarray:
    if sub.task == "classification":
        return outputs.argmax(1).astype(float)
    pred = outputs[:, 0]
    return pred * scale["std"] + scale["mean"] if scale else pred


def _readable(sub, values: np.ndarray, n_outputs: int) -> tuple[list[str], list[str], list[str] | None]:
    """Model outputs (class ids, or targets in their unit) and the truth as CSV text, and the class names."""
    if sub.task == "classification":
        names = sub.class_names or [str(i) for i in range(n_outputs)]
        return [names[int(v)] for v in values], [names[int(v)] for v in sub.y], names
    return [f"{v:.2f}" for v in values], [f"{v:.2f}" for v in sub.y], None


def _plot(curves: dict, tasks: dict) -> bytes:
    from ..report.render import png_bytes, pyplot

    fig, axes = pyplot().subplots(len(curves), 1, figsize=(11, 2.6 * len(curves)), squeeze=False)
    for ax, (name, (t, pred, truth, labels)) in zip(axes[:, 0], curves.items()):
        info = tasks[name]
        if labels is None:
            ax.plot(t, truth, color="black", lw=1.2, label="truth")
            ax.plot(t, pred, color="tab:red", lw=0.9, label="estimate")
        else:
            ax.step(t, truth, where="post", color="black", lw=1.2, label="truth")
            ax.step(t, pred, where="post", color="tab:red", lw=0.8, alpha=0.8, label="model")
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_title(f"{name}: subject {info['subject']}, {info['variant']} ({info['dtype']}, TFLite Micro), "
                     f"{info['metric']} {info[info['metric']]:.3f}", fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return png_bytes(fig)
