"""What channel pruning buys a streaming recurrent model inside TensorFlow Lite Micro: instructions
per window (front end once + the step once per frame) counted by callgrind, beside the MAC ratio and
the cost model's latency ratio.

    .venv/bin/python benchmarks/tflm_streaming_cost.py

CNN-GRU and CNN-LSTM for HMP's window (3 x 96, 14 classes), random weights, channel-pruned (l2) at
30 % and 50 %, exported as `wearprune export` ships them (front end + streaming step; int8 calibrated
on the frames and states streaming meets). Each graph's Ir per invoke is counted the same way as in
benchmarks/tflm_invoke_cost.py (whose worker and callgrind driver this reuses); per window = front
end + frames x step. The step's instructions are split into conv/fc (the MAC loops, requantisation
included) and the rest (interpreter, elementwise gate math, quantize/dequantize), to show how much of
a step is per-op work that channel pruning does not remove. Writes docs/tflm_streaming_cost.md and
docs/tflm_streaming_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import tflm_invoke_cost as tic  # noqa: E402

MODELS = ("cnn_gru", "cnn_lstm")
INVOKES = 4  # 1 warm-up + 3 counted; every invoke of a graph counts the same on this build


def export_variants(tmp: Path) -> list[dict]:
    import torch

    import wearprune as wp
    from wearprune.devices import estimate_cost, lower
    from wearprune.devices.lower import step_frames
    from wearprune.export.check import streaming_tflite

    torch.manual_seed(0)
    x = torch.randn(1, *tic.SPEC["input_shape"])
    calib = np.random.default_rng(1).standard_normal((64, *tic.SPEC["input_shape"])).astype(np.float32)
    calib = torch.from_numpy(calib)
    rows = []
    for name in MODELS:
        dense = wp.build_model(name, tic.SPEC).eval()
        shapes = [("dense", dense)]
        for r in tic.RATIOS:
            pruned, _ = wp.prune(dense, x, method="channel", ratio=r, importance="l2")
            shapes.append((f"pruned {int(r * 100)}%", pruned.eval()))
        for shape, model in shapes:
            for dtype in ("fp32", "int8"):
                _, record, made, _ = streaming_tflite(model, x, calib[:1].numpy(), dtype, calib)
                paths = {}
                for part in ("frontend", "step"):
                    path = tmp / f"{name}-{shape.replace(' ', '').replace('%', '')}-{part}-{dtype}.tflite"
                    path.write_bytes(made[f"model_{part}_{dtype}.tflite"])
                    paths[part] = str(path)
                low = lower(model, x, int8=dtype == "int8")
                rows.append({"model": name, "shape": shape, "dtype": dtype, "macs": wp.count_macs(model, x),
                             "frames": step_frames(low), "step_ops": record["step_ops"], "paths": paths,
                             "est_ms": {d: estimate_cost(model, x, d, int8=dtype == "int8", lowered=low).latency_ms
                                        for d in ("nrf52840", "stm32u575")}})
                print(f"  exported {name} {shape} {dtype}: {rows[-1]['macs']:,} MACs, {record['step_ops']} step ops",
                      flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    out = Path(args.out)
    if args.render:
        data = json.loads((out / "tflm_streaming_cost.json").read_text())
        return write_markdown(out / "tflm_streaming_cost.md", data)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        rows = export_variants(Path(tmp))
        for r in rows:
            for part, path in r.pop("paths").items():
                cg = tic.callgrind(Path(path), INVOKES)
                r[part] = {"ir": cg["ir_per_invoke"][-1], "ir_all": cg["ir_per_invoke"], "families": cg["families"]}
            r["ir_window"] = r["frontend"]["ir"] + r["frames"] * r["step"]["ir"]
            print(json.dumps({k: r[k] for k in ("model", "shape", "dtype", "ir_window")}), flush=True)
    data = {"rows": rows, "machine": f"{platform.machine()} ({tic._cpu_name()})", "tflite_micro": tic._tflm_version(),
            "minutes": (time.time() - started) / 60}
    (out / "tflm_streaming_cost.json").write_text(json.dumps(data, indent=1))
    write_markdown(out / "tflm_streaming_cost.md", data)
    return None


def _mac_part(families: dict) -> int:
    return families.get("conv/fc", 0) + families.get("requantise", 0)


def write_markdown(path: Path, data: dict) -> None:
    rows = data["rows"]
    dense = {(r["model"], r["dtype"]): r for r in rows if r["shape"] == "dense"}
    lines = ["# TFLite Micro cost of a streaming recurrent model: dense vs channel-pruned", "",
        "**On the target:** these are x86 counts of TFLite Micro's reference kernels. The same shapes on an emulated "
        "Cortex-M4/M33 with the CMSIS-NN kernels a wearable runs (and a cost model fitted on them) are in "
        "[target_cost.md](target_cost.md): int8 there executes 3-4x fewer instructions, and pruning speeds up "
        "less than here.", "",
             f"Measured by `benchmarks/tflm_streaming_cost.py` on {data['machine']}, tflite-micro "
             f"{data['tflite_micro']}; whole run {data['minutes']:.1f} min.", "",
             "CNN-GRU and CNN-LSTM for HMP's window (3 x 96, 14 classes; random weights), channel-pruned (l2), "
             "exported as `wearprune export` ships them: the conv front end once per window, then the streaming "
             "step once per frame (states in and out). **instr./window** = callgrind Ir inside "
             "`MicroInterpreter::Invoke()` for the front end + frames x the step (each graph's invokes count the "
             "same every time). **step: MAC loops** = the step's share in the fully-connected kernels and their "
             "requantisation; the rest is per-op work (interpreter dispatch, the gate adds and activations, "
             "QUANTIZE/DEQUANTIZE), which channel pruning does not remove. **est. ratio** = the cost model's "
             "latency, dense / variant (nRF52840; STM32U575 in brackets), beside the measured instruction ratio "
             "on this x86 build (reference kernels, not a microcontroller).", "",
             "| model | variant | dtype | MACs | MAC ratio | frames | step ops | instr. front end | instr./step "
             "| step: MAC loops | instr./window | measured ratio | est. ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = dense[(r["model"], r["dtype"])]
        share = _mac_part(r["step"]["families"]) / r["step"]["ir"]
        lines.append(
            f"| {r['model']} | {r['shape']} | {r['dtype']} | {r['macs']:,} | {d['macs'] / r['macs']:.2f}x "
            f"| {r['frames']} | {r['step_ops']} | {r['frontend']['ir']:,} | {r['step']['ir']:,} | {share:.0%} "
            f"| {r['ir_window']:,} | {d['ir_window'] / r['ir_window']:.2f}x "
            f"| {d['est_ms']['nrf52840'] / r['est_ms']['nrf52840']:.2f}x "
            f"({d['est_ms']['stm32u575'] / r['est_ms']['stm32u575']:.2f}x) |")
    lines += ["", "## Notes (computed from the rows)", ""]
    for r in rows:
        if r["shape"] != "dense":
            d = dense[(r["model"], r["dtype"])]
            lines.append(f"- {r['model']} {r['shape']} {r['dtype']}: {d['macs'] / r['macs']:.2f}x fewer MACs, "
                         f"{d['ir_window'] / r['ir_window']:.2f}x fewer instructions per window "
                         f"({d['ir_window'] / r['ir_window'] / (d['macs'] / r['macs']):.0%} of the MAC ratio).")
    fp, q = dense.get(("cnn_gru", "fp32")), dense.get(("cnn_gru", "int8"))
    if fp and q:
        lines.append(f"- cnn_gru dense step: {fp['step_ops']} ops in fp32, {q['step_ops']} in int8; int8 / fp32 "
                     f"instructions per step {q['step']['ir'] / fp['step']['ir']:.2f}x.")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()  # the callgrind worker is tflm_invoke_cost.py's own (tic.callgrind runs that file)
