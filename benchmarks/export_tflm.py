"""fp32 vs int8 in TensorFlow Lite Micro on real data, dense vs channel-pruned: metric on the whole
test set (subject-wise split), flash (.tflite bytes) and the arena TFLite Micro allocates, beside the
cost model's arena estimate.

    WEARPRUNE_DATA=../shared/data .venv/bin/python benchmarks/export_tflm.py

Each dense model is trained here, pruned to half its channels (taylor) and fine-tuned with
distillation, then both are exported with `wearprune.pipeline.export_run` (litert-torch; int8 via
torchao pt2e with litert-torch's quantizer, calibrated on 256 training windows). Writes
docs/export_tflm.md and docs/export_tflm.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import warnings
from pathlib import Path

import torch

import wearprune as wp
from wearprune.devices.cost import arena_estimate
from wearprune.devices.lower import lower
from wearprune.verbs import export_run, prune_run

CASES = {"hmp": [("resnet1d", 15, 64), ("cnn_gru", 15, 64)], "mitdb": [("resnet1d", 4, 256), ("cnn_gru", 4, 256)],
         "troika": [("resnet1d", 25, 32)]}
QAT_EPOCHS = 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(CASES))
    ap.add_argument("--out", default="docs")
    ap.add_argument("--models", default=None, help="only these models (comma-separated; default: every case)")
    ap.add_argument("--reestimate", action="store_true",
                    help="only recompute the cost model's arena estimates in docs/export_tflm.json from each row's "
                         "architecture, then rewrite the markdown")
    ap.add_argument("--keep", action="store_true",
                    help="keep docs/export_tflm.json rows of the datasets and models not rerun")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    if args.reestimate:
        rows = [_reestimate(r) for r in json.loads((out / "export_tflm.json").read_text())]
        (out / "export_tflm.json").write_text(json.dumps(rows, indent=1))
        return write_markdown(out / "export_tflm.md", rows)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            for model, epochs, batch in CASES[name]:
                if args.models is None or model in args.models.split(","):
                    rows += _case(Path(tmp), name, model, epochs, batch)
    if args.keep and (out / "export_tflm.json").exists():  # rows not rerun stay, in the order of CASES
        done = {(r["dataset"], r["model"]) for r in rows}
        old = [r for r in json.loads((out / "export_tflm.json").read_text()) if (r["dataset"], r["model"]) not in done]
        order = [(d, m) for d, cases in CASES.items() for m, _, _ in cases]
        rows = sorted(old + rows, key=lambda r: order.index((r["dataset"], r["model"])))
    (out / "export_tflm.json").write_text(json.dumps(rows, indent=1))
    write_markdown(out / "export_tflm.md", rows)


def _case(tmp: Path, name: str, model: str, epochs: int, batch: int) -> list[dict]:
    dense, pruned = tmp / f"{name}-{model}-dense", tmp / f"{name}-{model}-pruned"
    wp.train(name, model, dense, config=wp.TrainConfig(epochs=epochs, batch_size=batch, patience=5,
                                                                 augment=[]))
    prune_run(dense, pruned, ratio=0.5, importance="taylor", finetune_epochs=5)
    rows = []
    for variant, path in (("dense", dense), ("pruned 50% (taylor)", pruned)):
        result = export_run(path, ("tflite",))
        run = wp.load_run(path)
        x = torch.zeros(1, *run.architecture["spec"]["input_shape"])
        key, torch_value = result["pytorch"]
        row = {"dataset": name, "split": result["split"], "model": model, "variant": variant, "metric": key,
               "pytorch": torch_value, "macs": wp.count_macs(run.model, x),
               "streaming": bool(result["checks"]["fp32"].get("streaming"))}
        for dtype in ("fp32", "int8"):
            c = result["checks"][dtype]
            head, tail = arena_estimate(lower(run.model, x, int8=dtype == "int8"), dtype == "int8")
            row[dtype] = {"metric": c[key], "tflite_bytes": c["tflite_bytes"], "arena": c["arena_bytes"],
                          "arena_est": head + tail, "max_abs_diff": c["max_abs_diff"]}
        if not row["streaming"]:  # QAT is for window graphs; streaming steps are post-training int8
            qat = export_run(path, ("tflite",), qat_epochs=QAT_EPOCHS)["checks"]["int8"]
            row["int8_qat"] = {"metric": qat[key], "tflite_bytes": qat["tflite_bytes"], "arena": qat["arena_bytes"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _reestimate(row: dict) -> dict:
    """The row's arena estimates from the current cost model. They depend on shapes only: the dense
    architecture is rebuilt (and cut to half its channels for a pruned row, which fixes the shapes
    whatever the criterion); its MAC count must match the stored one, or the row is left as it was."""
    spec = wp.load_dataset(row["dataset"]).spec()
    torch.manual_seed(0)
    model = wp.build_model(row["model"], spec).eval()
    x = torch.zeros(1, *spec["input_shape"])
    if row["variant"] != "dense":
        model, _ = wp.prune(model, x, method="channel", ratio=0.5)
    if wp.count_macs(model, x) != row["macs"]:
        print(f"{row['dataset']} {row['model']} {row['variant']}: architecture not reproduced; estimates kept")
        return row
    row = json.loads(json.dumps(row))
    for dtype in ("fp32", "int8"):
        head, tail = arena_estimate(lower(model, x, int8=dtype == "int8"), dtype == "int8")
        row[dtype]["arena_est"] = head + tail
    return row


def write_markdown(path: Path, rows: list[dict]) -> None:
    lines = ["# fp32 vs int8 in TensorFlow Lite Micro, dense vs pruned", "",
             f"Measured by `benchmarks/export_tflm.py` on {platform.machine()} CPU, torch {torch.__version__}: "
             "each `.tflite` runs in the `tflite-micro` package's interpreter over the whole test set. "
             "Metrics: macro-F1 (classification) or MAE in BPM (TROIKA). One seed; dense models trained "
             "here for a fixed budget, so their scores sit a little below docs/baselines.md.", "",
             f"int8 is post-training (PTQ, 256 training windows); *int8 QAT* is {QAT_EPOCHS} epochs of "
             "quantisation-aware fine-tuning from the same weights (pt2e). CNN-GRU runs as a streaming step "
             "(conv front end once per window, then one step per frame): its flash is both graphs and its "
             "arena the larger of the two plus the state; the estimate costs the same two graphs. In int8 the "
             "step is mixed: litert-torch's quantizer keeps the gate adds and activations in float, with "
             "QUANTIZE/DEQUANTIZE between, and the GRU's state stays a float input. Arena estimates are from the "
             "current cost model (`--reestimate` recomputes them from each row's architecture).", "",
             "| data (split) | model | variant | MACs | metric | PyTorch fp32 | TFLM fp32 | TFLM int8 | TFLM int8 QAT "
             "| .tflite fp32 | .tflite int8 | arena fp32 (est.) | arena int8 (est.) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    kib = lambda b: f"{b / 1024:.1f}"  # noqa: E731
    for r in rows:
        f, q = r["fp32"], r["int8"]
        qat = (f"{r['int8_qat']['metric']:.3f}" if "int8_qat" in r else "n/a (streaming)" if r.get("streaming")
               else "not run")
        lines.append(
            f"| {r['dataset']} ({r['split']}) | {r['model']} | {r['variant']} | {r['macs']:,} | {r['metric']} "
            f"| {r['pytorch']:.3f} | {f['metric']:.3f} | {q['metric']:.3f} | {qat} | {kib(f['tflite_bytes'])} KiB "
            f"| {kib(q['tflite_bytes'])} KiB | {kib(f['arena'])} KiB ({kib(f['arena_est'])}) "
            f"| {kib(q['arena'])} KiB ({kib(q['arena_est'])}) |")
    lines += ["", "## Notes (computed from the rows above)", ""]
    if any(r.get("earlier_run") for r in rows):
        lines.append("- Rows marked *not run* under QAT come from the earlier run of this benchmark (post-training "
                     "int8 only, before QAT and CNN-GRU were added); the rerun of those datasets did not fit the "
                     "session.")
    for r in rows:
        if "int8_qat" in r:
            gain = (r["int8_qat"]["metric"] - r["int8"]["metric"]) * (1 if r["metric"] == "macro_f1" else -1)
            lines.append(f"- {r['dataset']} {r['model']} {r['variant']}: QAT vs PTQ {gain:+.3f} "
                         f"({'better' if gain > 0 else 'worse'}) in {r['metric']}.")
    worst = max(rows, key=lambda r: abs(r["int8"]["arena_est"] / r["int8"]["arena"] - 1))
    lines.append(f"- Largest int8 arena estimate miss: {worst['dataset']} {worst['model']} {worst['variant']}, "
                 f"{worst['int8']['arena_est'] / worst['int8']['arena'] - 1:+.0%} (estimate vs TFLite Micro).")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
