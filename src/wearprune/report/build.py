"""Collect what a report shows: each run's test metrics (measured) and its cost on a device (estimated)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from wearprune.devices import DeviceProfile, estimate_cost, load_device
from wearprune.errors import ConfigError
from wearprune.prune.shapes import layer_shapes
from wearprune.runs import Run, load_run

METRIC_KEYS = ("accuracy", "macro_recall", "macro_f1", "kappa", "mae", "rmse")
MEASURED = "measured: PyTorch fp32 on the host, held-out test subjects"
ESTIMATED = "estimated: wearprune cost model (docs/cost_validation.md gives its measured error)"


def build_report(runs: list[str | Path | Run], device: str | Path | DeviceProfile, *,
                 baseline: str | Path | Run | None = None, int8: bool = True, inferences_per_min: float = 60.0) -> dict:
    """Report dictionary for ``runs`` on ``device`` (a profile name, a profile YAML file or a loaded profile);
    the baseline (default: the first run) is the 'before'."""
    dev = load_device(device)
    loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
    if baseline is not None:
        base = baseline if isinstance(baseline, Run) else load_run(baseline)
        loaded = [base] + [r for r in loaded if Path(r.path).resolve() != Path(base.path).resolve()]
    if not loaded:
        raise ConfigError("give at least one run directory")
    # the loaded profile, not its name: a profile given as a YAML file has a name no lookup knows
    entries = [_entry(r, dev, int8, inferences_per_min) for r in loaded]
    base = entries[0]
    for e in entries:
        e["vs_baseline"] = _ratios(base, e)
    return {"format": "wearprune-report", "version": 1, "device": dev.to_dict(), "dtype": "int8" if int8 else "fp32",
            "inferences_per_min": inferences_per_min, "labels": {"metrics": MEASURED, "cost": ESTIMATED},
            "primary_metric": entries[0]["primary_metric"], "baseline": base["name"], "runs": entries,
            **_robustness_and_audit(loaded)}


# What `wearprune robustness` and `wearprune audit` leave in a run (their default --out): the report shows it
ROBUSTNESS_FILE = Path("robustness") / "robustness.json"
AUDIT_FILE = Path("audit") / "audit.json"


def _robustness_and_audit(runs: list[Run]) -> dict:
    """The robustness evaluations and membership audits found in the runs' folders, summarised per run
    (the curves' PNG beside a robustness.json goes into the HTML page)."""
    found, seen = {"robustness": [], "audit": []}, set()
    for run in runs:
        for key, name, summary in (("robustness", ROBUSTNESS_FILE, _robustness_summary),
                                   ("audit", AUDIT_FILE, _audit_summary)):
            path = Path(run.path) / name
            if path.is_file() and path.resolve() not in seen:
                seen.add(path.resolve())
                found[key].append(summary(json.loads(path.read_text()), path))
    return {key: docs for key, docs in found.items() if docs}


def _robustness_summary(doc: dict, path: Path) -> dict:
    keep = ("metric", "clean", "mean_corruption", "worst", "per_corruption_mean", "mce", "relative_mce", "attacks",
            "per_class_recall")
    png = path.with_name("robustness.png")
    return {"source": str(path), "engine": doc.get("engine"), "split": doc.get("split"),
            "reference": doc.get("reference"), "png": str(png) if png.is_file() else None,
            "runs": [{"run": r["run"], **{k: r.get(k) for k in keep}} for r in doc.get("runs", [])]}


def _audit_summary(doc: dict, path: Path) -> dict:
    rows = []
    for r in doc.get("runs", []):
        dp = r.get("dp") or {}
        rows.append({"run": r["run"], "engine": r.get("engine"), "windows_per_side": r.get("windows_per_side"),
                     **{a: r[a] for a in ("loss_threshold", "class_calibrated") if a in r},
                     "dp_epsilon": dp.get("epsilon_total") or dp.get("epsilon")})
    return {"source": str(path), "members": doc.get("members"), "nonmembers": doc.get("nonmembers"), "runs": rows}


def _entry(run: Run, device: DeviceProfile, int8: bool, per_min: float) -> dict:
    spec = run.architecture.get("spec", {})
    if "input_shape" not in spec:
        raise ConfigError(f"run {run.path} has no input shape in architecture.json; retrain it with this version")
    x = torch.zeros(1, *spec["input_shape"])
    sparse = float(run.metrics.get("sparsity", 0) or 0) > 0.05
    cost = estimate_cost(run.model, x, device, int8=int8, inferences_per_min=per_min, sparse=sparse)
    test = _test_metrics(run)
    regression = "mae" in test and "macro_f1" not in test
    measured = run.metrics.get("tflm") or {}
    return {
        "name": Path(run.path).name, "path": str(run.path), "model": run.architecture.get("model"),
        "dataset": run.metrics.get("dataset") or run.config.get("data", {}).get("name"),
        "split": run.metrics.get("split"), "task": "regression" if regression else "classification",
        "primary_metric": "mae" if regression else "macro_f1",
        "metrics": {k: test[k] for k in METRIC_KEYS if k in test},
        "cost": {k: v for k, v in cost.to_dict().items() if k != "kernels"},
        "kernels": [k.__dict__ for k in cost.kernels],
        "widths": layer_widths(run.model),
        "measured_on_device": measured,
        "on_target": run.metrics.get("on_target") or {},
        **({"privacy": _privacy(run.metrics["dp"])} if (run.metrics or {}).get("dp") else {}),
    }


def _privacy(dp: dict) -> dict:
    """What the report says of a DP-trained run: the ε this run's own trainings spent and, composed with its
    parents', the whole model's (None: a parent was trained without DP)."""
    own = dp.get("epsilon")
    total = dp["epsilon_total"] if "epsilon_total" in dp else own
    return {"epsilon": own, "epsilon_total": total, "delta": dp.get("delta"), "accountant": dp.get("accountant"),
            "noise_multiplier": dp.get("noise_multiplier"), "steps": dp.get("steps"),
            "max_grad_norm": dp.get("max_grad_norm"), "note": dp.get("composition") or dp.get("unit")}


def _test_metrics(run: Run) -> dict:
    evaluation = Path(run.path) / "evaluation.json"
    if evaluation.is_file():
        return json.loads(evaluation.read_text()).get("test", {})
    return run.metrics.get("test", {})


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output width of each weight layer (channels, neurons, RNN units), from the pruner's layer shapes."""
    widths = {}
    for name, shape in layer_shapes(model).items():
        width = shape.get("out_channels", shape.get("out_features", shape.get("hidden_size")))
        if width is not None:
            widths[name] = width
    return widths


def _ratios(base: dict, e: dict) -> dict:
    b, c = base["cost"], e["cost"]
    out = {"compression": b["params"] / max(c["params"], 1), "macs": b["macs"] / max(c["macs"], 1),
           "flash": b["model_flash_bytes"] / max(c["model_flash_bytes"], 1),
           "ram": b["arena_bytes"] / max(c["arena_bytes"], 1), "latency": b["latency_ms"] / max(c["latency_ms"], 1e-9),
           "energy": b["energy_uj"] / max(c["energy_uj"], 1e-9)}
    key = base["primary_metric"]
    if key in base["metrics"] and key in e["metrics"]:
        out[f"{key}_change"] = e["metrics"][key] - base["metrics"][key]
    return out
