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


def export_int8(model, example, calib) -> dict[str, bytes]:
    """The int8 graphs `wearprune export` would ship: {"window": ...} or {"frontend"?: ..., "step": ...}."""
    import torch

    from wearprune.export.check import streaming_tflite
    from wearprune.export.streaming import device_form
    from wearprune.export.tflite import to_tflite

    form = device_form(model)
    if form is model and any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        _, _, made, _ = streaming_tflite(model, example, calib[:1], "int8", torch.from_numpy(calib))
        return {part: made[f"model_{part}_int8.tflite"] for part in ("frontend", "step")
                if f"model_{part}_int8.tflite" in made}
    return {"window": to_tflite(form, example, int8=True, calibration=calib)}


def estimate(model, example, target: str) -> dict:
    from wearprune.devices import estimate_cost, load_device

    dev = load_device(BOARD[target])
    cost = estimate_cost(model, example, dev, int8=True)
    return {"board": dev.name, "est_cycles": cost.latency_ms * dev.clock_mhz * 1e3, "est_ms": cost.latency_ms,
            "est_kernels": [{"op": k.op, "kind": k.kind, "macs": k.macs, "cycles": k.cycles} for k in cost.kernels]}


def measure(firmware, graphs: dict[str, bytes], X: np.ndarray) -> dict:
    from wearprune.verbs.on_target import measure_streaming, measure_window

    if "window" in graphs:
        return measure_window(firmware, graphs["window"], X)
    return measure_streaming(firmware, graphs.get("frontend"), graphs["step"], X)


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"meta": {}, "records": {}}


def save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="cortex-m4,cortex-m33")
    ap.add_argument("--models", default=",".join(ZOO + MLPERF))
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
            todo = [t for t in targets if f"{name}/{variant}/{t}" not in data["records"]]
            if not todo:
                continue
            t0 = time.time()
            graphs = export_int8(model, example, calib)
            X = np.random.default_rng(2).standard_normal((WINDOWS, *example.shape[1:])).astype(np.float32)
            import wearprune as wp

            macs = wp.count_macs(model, example)
            for target in todo:
                m = measure(firmwares[target], graphs, X)
                rec = {"model": name, "variant": variant, "target": target, "macs": macs, "commit": commit,
                       "tflite_bytes": sum(len(b) for b in graphs.values()), **m, **estimate(model, example, target),
                       "seconds": round(time.time() - t0, 1)}
                rec["instructions"] = m.get("instructions_per_inference") or m["instructions_per_window"]
                data["records"][f"{name}/{variant}/{target}"] = rec
                save(path, data)
                print(f"{name} {variant} {target}: {rec['instructions']:,} instructions, {macs:,} MACs, "
                      f"est {rec['est_cycles']:,.0f} cycles, equal to host: {m['outputs_equal_host']}", flush=True)
    write_markdown(out / "target_cost.md", data)


def ratio_rows(records: dict) -> list[dict]:
    """Each pruned variant against its dense model on the same core: measured and estimated speed-up."""
    rows = []
    for r in records.values():
        dense = records.get(f"{r['model']}/dense/{r['target']}")
        if r["variant"] in ("dense", "reference") or dense is None:
            continue
        measured = dense["instructions"] / r["instructions"]
        est = dense["est_cycles"] / r["est_cycles"]
        rows.append({"model": r["model"], "variant": r["variant"], "target": r["target"],
                     "mac_ratio": dense["macs"] / r["macs"], "measured": measured, "estimated": est,
                     "error": est / measured - 1})
    return rows


def write_markdown(path: Path, data: dict) -> None:
    meta, records = data["meta"], data["records"]
    lines = ["# Instructions on the target: TFLite Micro + CMSIS-NN on emulated Cortex-M cores", "",
             "Measured by `benchmarks/target_cost.py` with `wearprune.firmware` (TFLite Micro "
             f"{meta.get('tflm_commit')} + CMSIS-NN built for each core, run in QEMU). **Counts are executed "
             "instructions** (QEMU's exact count, not cycles: QEMU is not cycle-accurate). Estimated = today's cost "
             "model in cycles on the board of that core (nRF52840 for the M4, nRF5340 for the M33), whose per-op "
             "and per-invoke costs are still assumptions. Random weights (int8 kernel counts do not depend on weight "
             "values), int8 only, outputs of every graph byte-equal to host TFLite Micro unless flagged.", "",
             "| model | variant | core | MACs | instructions | instr./MAC | est. cycles | est./instr. | = host |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records.values():
        per = f" ({r['instructions_per_frame']:,}/frame x {r['frames_per_window']})" if r["form"] == "streaming" else ""
        lines.append(f"| {r['model']} | {r['variant']} | {r['target']} | {r['macs']:,} | {r['instructions']:,}{per} | "
                     f"{r['instructions'] / max(r['macs'], 1):.2f} | {r['est_cycles']:,.0f} | "
                     f"{r['est_cycles'] / r['instructions']:.2f} | {'yes' if r['outputs_equal_host'] else 'NO'} |")
    ratios = ratio_rows(records)
    if ratios:
        worst = max(ratios, key=lambda r: abs(r["error"]))
        within = sum(abs(r["error"]) <= 0.10 for r in ratios)
        lines += ["", "## Dense / pruned speed-up: estimated vs measured (target: within 10 %)", "",
                  f"{within} of {len(ratios)} pairs within 10 %; worst {100 * worst['error']:+.1f} % "
                  f"({worst['model']} {worst['variant']} on {worst['target']}). error = estimated ratio / measured "
                  "ratio - 1.", "", "| model | variant | core | MAC ratio | measured ratio | estimated ratio | error |",
                  "|---|---|---|---|---|---|---|"]
        for r in ratios:
            lines.append(f"| {r['model']} | {r['variant']} | {r['target']} | {r['mac_ratio']:.2f}x | "
                         f"{r['measured']:.2f}x | {r['estimated']:.2f}x | {100 * r['error']:+.1f} % |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
