"""Instructions per inference on an emulated Cortex-M (TFLite Micro + CMSIS-NN in QEMU), per op, for the zoo
at about 1x/2x/4x/8x fewer MACs and the MLPerf Tiny reference models, beside the cost model's estimate.

    .venv/bin/python benchmarks/target_cost.py [--targets cortex-m4,cortex-m33] [--models ...] [--render]

Zoo models for HMP's window (3 x 96, 14 classes), random weights, channel-pruned (l2) at 0 %, 30 %, 50 % and
65 % of the channels; int8 as `wearprune export` ships it (window graph, or front end + streaming step for
GRU/LSTM, calibrated on 64 random-normal windows). MLPerf Tiny: KWS DS-CNN, VWW MobileNetV1-0.25, IC ResNet-8,
AD autoencoder (wearprune.models.reference), int8. Each graph runs on the core over 2 random windows (a
streaming step over every frame of one window, its state fed back) through `wearprune.verbs.on_target`, so the
outputs are also checked byte for byte against host TFLite Micro. The count is executed instructions (QEMU's
exact TCG-plugin count, not cycles). The estimate is today's cost model (`estimate_cost`) on the board of the
same core (nRF52840 for the M4, nRF5340 for the M33), in cycles.

Writes docs/target_cost.json (one record per model x variant x core, written as it finishes; a rerun skips
finished records) and docs/target_cost.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

ZOO = ("cnn1d", "resnet1d", "tcn", "dscnn", "cnn_gru", "cnn_lstm")
MLPERF = ("kws", "vww", "ic", "ad")
SPEC = {"layout": "window", "task": "classification", "input_shape": [3, 96], "n_outputs": 14}
RATIOS = {"dense": 0.0, "pruned 30%": 0.3, "pruned 50%": 0.5, "pruned 65%": 0.65}  # ~1x, 2x, 4x, 8x fewer MACs
TARGETS_BOARD = {"cortex-m4": "mps2-an386", "cortex-m33": "mps2-an505", "cortex-m55": "mps3-an547"}
BOARD = {"cortex-m4": "nrf52840", "cortex-m33": "nrf5340", "cortex-m55": "alif_e3_u55"}
WINDOWS = 2


def variants(models: list[str]):
    """(model name, variant, torch model, example input, calibration windows) for every row to measure."""
    import torch

    import wearprune as wp
    from wearprune.models.reference import mlperf_tiny_models

    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    x = torch.randn(1, *SPEC["input_shape"])
    calib = rng.standard_normal((64, *SPEC["input_shape"])).astype(np.float32)
    for name in models:
        if name in MLPERF:
            model, example = mlperf_tiny_models()[name]
            shape = tuple(example.shape[1:])
            yield name, "reference", model, example, rng.standard_normal((64, *shape)).astype(np.float32)
            continue
        dense = wp.build_model(name, SPEC).eval()
        for variant, ratio in RATIOS.items():
            model = dense if not ratio else wp.prune(dense, x, method="channel", ratio=ratio, importance="l2")[0]
            yield name, variant, model.eval(), x, calib


def export_graphs(model, example, calib, dtype: str) -> dict[str, bytes]:
    """The graphs `wearprune export` would ship: {"window": ...} or {"frontend"?: ..., "step": ...}."""
    import torch

    from wearprune.export.check import streaming_tflite
    from wearprune.export.streaming import device_form
    from wearprune.export.tflite import to_tflite

    form = device_form(model)
    if form is model and any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        _, _, made, _ = streaming_tflite(model, example, calib[:1], dtype, torch.from_numpy(calib))
        return {part: made[f"model_{part}_{dtype}.tflite"] for part in ("frontend", "step")
                if f"model_{part}_{dtype}.tflite" in made}
    return {"window": to_tflite(form, example, int8=dtype == "int8", calibration=calib)}


def estimate(model, example, target: str, dtype: str) -> dict:
    """Today's cost model on the board of this core, with the assumption-based per-op costs it had before
    the instruction model (``benchmark_profile``), so the table shows what the fit replaces."""
    from wearprune.devices import estimate_cost

    dev = assumption_profile(BOARD[target])
    cost = estimate_cost(model, example, dev, int8=dtype == "int8")
    return {"board": dev.name, "est_cycles": cost.latency_ms * dev.clock_mhz * 1e3, "est_ms": cost.latency_ms,
            "est_kernels": [{"op": k.op, "kind": k.kind, "macs": k.macs, "cycles": k.cycles} for k in cost.kernels]}


def assumption_profile(name: str):
    """The board's profile without its instruction model: the cycles-per-MAC and per-op assumptions."""
    from dataclasses import replace

    from wearprune.devices import load_device

    return replace(load_device(name), instruction_model="", cycles_per_instruction=0.0)


def lowered_ops(model, example, dtype: str) -> list[list]:
    """What the cost model sees of one inference: per kernel of the lowered graph(s) [op, output type, MACs,
    output channels, output elements, input elements, times per window] (a streaming step runs once per frame)."""
    from wearprune.devices import lower
    from wearprune.devices.instructions import kernel_features
    from wearprune.devices.lower import step_frames, streaming_graphs

    low = lower(model, example, int8=dtype == "int8")
    parts = streaming_graphs(low, dtype == "int8")
    graphs = [(low, 1)] if parts is None else [(parts[0], 1), (parts[1], step_frames(low))]
    return [[*kernel_features(graph, k, dtype), times] for graph, times in graphs for k in graph.kernels]


def measure(firmware, graphs: dict[str, bytes], X: np.ndarray) -> dict:
    from wearprune.verbs.on_target import measure_streaming, measure_window

    if "window" in graphs:
        return measure_window(firmware, graphs["window"], X)
    return measure_streaming(firmware, graphs.get("frontend"), graphs["step"], X)


def load(path: Path) -> dict:
    data = json.loads(path.read_text()) if path.is_file() else {"meta": {}, "records": {}}
    # records from before the dtype dimension (int8 only) and the lowered features: measure them again
    data["records"] = {k: r for k, r in data["records"].items()
                       if "dtype" in r and len((r.get("lowered") or [[]])[0]) == 7}
    return data


def save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="cortex-m4,cortex-m33")
    ap.add_argument("--models", default=",".join(ZOO + MLPERF))
    ap.add_argument("--dtypes", default="int8,fp32")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    path = out / "target_cost.json"
    data = load(path)
    if not args.render:
        import torch

        from wearprune.firmware import build

        torch.set_num_threads(1)
        targets = args.targets.split(",")
        firmwares = {t: build(t, announce=print) for t in targets}
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        data["meta"] = {"counter": "executed instructions, exact (QEMU TCG plugin)", "windows": WINDOWS,
                        "tflm_commit": next(iter(firmwares.values())).tflm_commit, "spec": SPEC, "ratios": RATIOS,
                        "boards": BOARD}
        for name, variant, model, example, calib in variants(args.models.split(",")):
            for dtype in args.dtypes.split(","):
                todo = [t for t in targets if f"{name}/{variant}/{dtype}/{t}" not in data["records"]]
                if not todo:
                    continue
                t0 = time.time()
                graphs = export_graphs(model, example, calib, dtype)
                X = np.random.default_rng(2).standard_normal((WINDOWS, *example.shape[1:])).astype(np.float32)
                import wearprune as wp

                macs = wp.count_macs(model, example)
                for target in todo:
                    m = measure(firmwares[target], graphs, X)
                    rec = {"model": name, "variant": variant, "dtype": dtype, "target": target, "macs": macs,
                           "commit": commit, "tflite_bytes": sum(len(b) for b in graphs.values()), **m,
                           **estimate(model, example, target, dtype), "lowered": lowered_ops(model, example, dtype),
                           "seconds": round(time.time() - t0, 1)}
                    rec["instructions"] = m.get("instructions_per_inference") or m["instructions_per_window"]
                    data["records"][f"{name}/{variant}/{dtype}/{target}"] = rec
                    save(path, data)
                    print(f"{name} {variant} {dtype} {target}: {rec['instructions']:,} instructions, {macs:,} MACs, "
                          f"est {rec['est_cycles']:,.0f} cycles, equal to host: {m['outputs_equal_host']}", flush=True)
        for target in targets:
            write_core(target, data, commit)
    write_markdown(out / "target_cost.md", data)


def graphs_of(r: dict) -> list[dict]:
    return [r] if r["form"] == "window" else [r[p] for p in ("frontend", "step") if p in r]


def fit_core(records: list[dict]) -> dict:
    """The instruction model of a core from its records: per-op coefficients, and the per-invoke cost (what an
    invoke counts beyond its ops; the per-op intervals include the interpreter's dispatch)."""
    from wearprune.devices.instructions import fit_op_costs

    table = fit_op_costs([o for r in records for g in graphs_of(r) for o in g["per_op"]])
    beyond = [g["instructions"] - sum(o["instructions"] for o in g["per_op"]) for r in records for g in graphs_of(r)]
    return {"ops": table, "per_invoke": max(0.0, float(np.median(beyond)))}


def predict(core: dict, r: dict) -> float:
    from wearprune.devices.instructions import op_instructions

    invokes = sum({op[-1] for op in r["lowered"]})  # 1, or the front end once + the step once per frame
    return sum(times * op_instructions(core["ops"], *features) for *features, times in r["lowered"]) \
        + core["per_invoke"] * invokes


def held_out(records: dict, target: str) -> list[dict]:
    """Leave one model out: fit on every other model's records of this core, predict this model's from its
    lowered graph (what the cost model sees before export)."""
    rows = [r for r in records.values() if r["target"] == target]
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        core = fit_core([r for r in rows if r["model"] != name])
        for dtype in dict.fromkeys(r["dtype"] for r in rows):
            mine = {r["variant"]: r for r in rows if r["model"] == name and r["dtype"] == dtype}
            est = {v: predict(core, r) for v, r in mine.items()}
            for variant, r in mine.items():
                row = {"model": name, "variant": variant, "dtype": dtype, "instructions": r["instructions"],
                       "fitted": est[variant], "error": est[variant] / r["instructions"] - 1}
                if "dense" in mine and variant != "dense":
                    measured = mine["dense"]["instructions"] / r["instructions"]
                    row["ratio_error"] = (est["dense"] / est[variant]) / measured - 1
                out.append(row)
    return out


def write_core(target: str, data: dict, commit: str) -> None:
    """src/wearprune/devices/cores/<core>.json: the table the cost model reads, with its source."""
    rows = [r for r in data["records"].values() if r["target"] == target]
    core = fit_core(rows)
    n_ops = sum(len(g["per_op"]) for r in rows for g in graphs_of(r))
    doc = {"core": target, "board": TARGETS_BOARD.get(target), "unit": "executed instructions",
           "source": f"benchmarks/target_cost.py at {commit}: TFLite Micro {data['meta']['tflm_commit']} + CMSIS-NN "
                     f"built for {target}, run in QEMU ({TARGETS_BOARD.get(target)}), exact instruction counts of "
                     f"{n_ops} ops in {len(rows)} models (zoo at 4 widths + MLPerf Tiny, int8 and fp32); "
                     "non-negative least squares on relative error per op type (docs/target_cost.md)",
           "terms": "instructions = per_mac x MACs + per_patch x MACs / output channels + per_out x output elements "
                    "+ per_in x input elements + per_op",
           "per_invoke": round(core["per_invoke"], 1),
           "ops": {k: {t: round(v, 4) if isinstance(v, float) else v for t, v in c.items()}
                   for k, c in sorted(core["ops"].items())}}
    dest = Path(__file__).resolve().parents[1] / "src" / "wearprune" / "devices" / "cores" / f"{target}.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(doc, indent=1) + "\n")


def ratio_rows(records: dict) -> list[dict]:
    """Each pruned variant against its dense model (same core, dtype): measured and assumption-estimated."""
    rows = []
    for r in records.values():
        dense = records.get(f"{r['model']}/dense/{r['dtype']}/{r['target']}")
        if r["variant"] in ("dense", "reference") or dense is None:
            continue
        measured = dense["instructions"] / r["instructions"]
        est = dense["est_cycles"] / r["est_cycles"]
        rows.append({"model": r["model"], "variant": r["variant"], "dtype": r["dtype"], "target": r["target"],
                     "mac_ratio": dense["macs"] / r["macs"], "measured": measured, "estimated": est,
                     "error": est / measured - 1})
    return rows


def _summary(rows: list[dict], key: str) -> str:
    errs = [abs(r[key]) for r in rows if key in r]
    worst = max(rows, key=lambda r: abs(r.get(key, 0)))
    return (f"{sum(e <= 0.10 for e in errs)} of {len(errs)} within 10 %, worst {100 * worst[key]:+.1f} % "
            f"({worst['model']} {worst['variant']} {worst['dtype']}), mean |error| {100 * np.mean(errs):.1f} %")


def write_markdown(path: Path, data: dict) -> None:
    meta, records = data["meta"], data["records"]
    lines = ["# Instructions on the target: TFLite Micro + CMSIS-NN on emulated Cortex-M cores", "",
             "Measured by `benchmarks/target_cost.py` with `wearprune.firmware` (TFLite Micro "
             f"{meta.get('tflm_commit')} + CMSIS-NN built for each core, run in QEMU; every record names the commit "
             "it was written at). **Counts are executed instructions** (QEMU's exact count, not cycles: QEMU is not "
             "cycle-accurate). Zoo models for HMP's window (3 x 96, 14 classes) and the MLPerf Tiny reference "
             "models, random weights (the kernels' instruction counts depend on shapes, and slightly on the int8 "
             "scales, not on weight values), int8 and fp32 as `wearprune export` ships them. Every graph's outputs "
             "are compared byte for byte with host TFLite Micro on the same input tensors (= host).", "",
             "**est. (assumptions)**: the cost model before the instruction model, in cycles on the board of that "
             "core (nRF52840 for the M4, nRF5340 for the M33): MACs x cycles-per-MAC + assumed per-element, per-op "
             "and per-invoke costs.", "",
             "| model | variant | dtype | core | MACs | instructions | instr./MAC | est. (assumptions) | = host |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records.values():
        per = f" ({r['instructions_per_frame']:,}/frame x {r['frames_per_window']})" if r["form"] == "streaming" else ""
        lines.append(f"| {r['model']} | {r['variant']} | {r['dtype']} | {r['target']} | {r['macs']:,} | "
                     f"{r['instructions']:,}{per} | {r['instructions'] / max(r['macs'], 1):.2f} | "
                     f"{r['est_cycles']:,.0f} | {'yes' if r['outputs_equal_host'] else 'no (fp32: last bits)'} |")
    for target in dict.fromkeys(r["target"] for r in records.values()):
        ratios = [r for r in ratio_rows(records) if r["target"] == target]
        lo = held_out(records, target)
        if not ratios or not lo:
            continue
        shipped = fit_core([r for r in records.values() if r["target"] == target])
        for r in ratios:  # the table as shipped (fitted on every record, this one included)
            dense = records[f"{r['model']}/dense/{r['dtype']}/{target}"]
            mine = records[f"{r['model']}/{r['variant']}/{r['dtype']}/{target}"]
            r["shipped_error"] = (predict(shipped, dense) / predict(shipped, mine)) / r["measured"] - 1
        lines += ["", f"## {target}: dense / pruned speed-up, estimated vs measured (target: within 10 %)", "",
                  "error = estimated ratio / measured instruction ratio - 1. **Assumptions**: the cost model "
                  "before this benchmark. **Instruction model, held out**: per-op costs fitted on every *other* "
                  "model's counts on this core (leave one model out), applied to this model's lowered graph (what "
                  "the cost model sees before export); the shipped table (`src/wearprune/devices/cores/"
                  f"{target}.json`) is fitted on all of them.", "",
                  f"- assumptions: {_summary(ratios, 'error')}",
                  f"- instruction model, held out: {_summary(lo, 'ratio_error')}",
                  f"- instruction model as shipped (fitted on all records, in-sample): "
                  f"{_summary(ratios, 'shipped_error')}",
                  f"- instruction model, held out, whole inference (instructions): {_summary(lo, 'error')}", "",
                  "| model | variant | dtype | MAC ratio | measured ratio | assumptions | instruction model (held "
                  "out) | whole inference (held out) |", "|---|---|---|---|---|---|---|---|"]
        fitted = {(r["model"], r["variant"], r["dtype"]): r for r in lo}
        for r in ratios:
            f = fitted.get((r["model"], r["variant"], r["dtype"]), {})
            re_ = f"{100 * f['ratio_error']:+.1f} %" if "ratio_error" in f else "-"
            whole = f"{100 * f['error']:+.1f} %" if "error" in f else "-"
            lines.append(f"| {r['model']} | {r['variant']} | {r['dtype']} | {r['mac_ratio']:.2f}x | "
                         f"{r['measured']:.2f}x | {100 * r['error']:+.1f} % | {re_} | {whole} |")
        for r in lo:
            if r["variant"] in ("dense", "reference"):
                lines.append(f"| {r['model']} | {r['variant']} | {r['dtype']} | - | - | - | - | "
                             f"{100 * r['error']:+.1f} % |")
    lines += _x86_comparison(records, path.parent)
    path.write_text("\n".join(lines) + "\n")


def _x86_comparison(records: dict, docs: Path) -> list[str]:
    """The same shapes counted earlier on x86 (callgrind, TFLite Micro's reference kernels): how far those
    counts were from the core's own code path."""
    x86 = {}
    for name, key in (("tflm_invoke_cost.json", "ir_per_invoke"), ("tflm_streaming_cost.json", "ir_window")):
        if (docs / name).is_file():
            for r in json.loads((docs / name).read_text())["rows"]:
                ir = r[key][-1] if isinstance(r[key], list) else r[key]
                x86[(r["model"], r["shape"], r["dtype"])] = ir
    rows = [(r, x86[(r["model"], r["variant"], r["dtype"])]) for r in records.values()
            if r["target"] == "cortex-m4" and (r["model"], r["variant"], r["dtype"]) in x86]
    if not rows:
        return []
    lines = ["", "## Cortex-M4 (CMSIS-NN) vs the earlier x86 counts (reference kernels)", "",
             "docs/tflm_invoke_cost.md and docs/tflm_streaming_cost.md counted the same zoo shapes (HMP window, "
             "l2 channel pruning at 30 % and 50 %) with callgrind in the x86 build of TFLite Micro, whose reference "
             "kernels are not the CMSIS-NN kernels a Cortex-M runs. Here the same shapes on the emulated M4; "
             "speed-up = dense / pruned of the same dtype on each.", "",
             "| model | variant | dtype | x86 instructions | M4 instructions | M4 / x86 | x86 speed-up | M4 speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for r, ir in rows:
        dense = records.get(f"{r['model']}/dense/{r['dtype']}/cortex-m4")
        dense_x86 = x86.get((r["model"], "dense", r["dtype"]))
        up = (f"{dense_x86 / ir:.2f}x | {dense['instructions'] / r['instructions']:.2f}x"
              if dense and dense_x86 and r["variant"] != "dense" else "- | -")
        lines.append(f"| {r['model']} | {r['variant']} | {r['dtype']} | {ir:,} | {r['instructions']:,} | "
                     f"{r['instructions'] / ir:.2f} | {up} |")
    return lines


if __name__ == "__main__":
    main()
