"""Validate the cost model: estimated vs measured TFLite Micro arena (and .tflite size) for the zoo,
and estimated vs published MLPerf Tiny latency and energy.

    WEARPRUNE_DATA=../shared/data .venv/bin/python benchmarks/cost_validation.py

Part 1 converts each model with litert-torch (fp32 and int8; dense and 50 % channel-pruned) and reads
the arena TensorFlow Lite Micro allocates from its own recorder. The persistent-part constants of the
cost model were fitted on the basicmotions rows; the other data sets are the validation.
Part 2 calibrates one int8 cycles-per-MAC figure per board on the MLPerf Tiny IC (ResNet-8) result
and predicts KWS, VWW and AD; power is the IC energy divided by its latency.
Writes docs/cost_validation.md and docs/cost_validation.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import warnings
from dataclasses import replace
from pathlib import Path

import torch

import wearprune as wp
from wearprune.devices import estimate_cost, load_device, lower
from wearprune.devices.cost import arena_estimate, flash_estimate, kernel_cycles
from wearprune.export import measure_arena, to_tflite
from wearprune.export.check import streaming_tflite
from wearprune.models.reference import mlperf_tiny_models

# Published MLPerf Tiny results (latency = 1000 / median throughput; energy = median energy per inference).
MLPERF = {
    "stm32l4r5": {
        "round": "v1.3, X-CUBE-AI 10.2, mlcommons/tiny_results_v1.3 closed/STMicroelectronics/results/NUCLEO_L4R5ZI-P",
        "ms": {"kws": 1000 / 23.032, "vww": 1000 / 11.181, "ic": 1000 / 6.036, "ad": 1000 / 208.608},
        "uj": {"kws": 1430.67, "vww": 3029.75, "ic": 5495.92, "ad": 160.42}},
    "stm32u575": {
        "round": "v1.3, X-CUBE-AI 10.2, mlcommons/tiny_results_v1.3 closed/STMicroelectronics/results/NUCLEO_U575ZI_Q",
        "ms": {"kws": 1000 / 34.489, "vww": 1000 / 16.873, "ic": 1000 / 9.133, "ad": 1000 / 311.579},
        "uj": {"kws": 664.42, "vww": 1372.17, "ic": 2565.24, "ad": 77.24}},
    "nrf5340": {
        "round": "v1.0, microTVM + CMSIS-NN, mlcommons/tiny_results_v1.0 "
                 "closed/OctoML/results/microtvm_cmsis_nn/NRF5340-DK",
        "ms": {"kws": 76.09, "vww": 232.02, "ic": 316.16, "ad": 6.27},
        "uj": {}},
}
TFLM_DATASETS = {"basicmotions": "calibration", "hmp": "validation", "mitdb": "validation", "troika": "validation"}
TFLM_MODELS = ("cnn1d", "resnet1d", "tcn", "dscnn", "cnn_gru", "cnn_lstm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(TFLM_DATASETS))
    ap.add_argument("--models", default=",".join(TFLM_MODELS))
    ap.add_argument("--out", default="docs")
    ap.add_argument("--render", action="store_true", help="only rewrite cost_validation.md from the JSON")
    ap.add_argument("--mlperf-only", action="store_true", help="recompute part 2 (latency, energy); keep arena rows")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.render or args.mlperf_only:
        data = json.loads((Path(args.out) / "cost_validation.json").read_text())
        if args.mlperf_only:
            data["mlperf"] = mlperf_table()
            (Path(args.out) / "cost_validation.json").write_text(json.dumps(data, indent=1))
        write_markdown(Path(args.out) / "cost_validation.md", data["arena"], data["mlperf"])
        return
    mlperf_rows = mlperf_table()
    arena_rows = []
    for ds_name in args.datasets.split(","):
        ds = wp.load_dataset(ds_name)
        x = torch.from_numpy(ds.X[:1]).float()
        for model_name in args.models.split(","):
            torch.manual_seed(0)
            dense = wp.build_model(model_name, ds.spec()).eval()
            _trained_like_batchnorm(dense)
            pruned, _ = wp.prune(dense, x, method="channel", ratio=0.5, importance="l2")
            for variant, model in (("dense", dense), ("pruned 50%", pruned.eval())):
                for int8 in (False, True):
                    row = arena_row(ds_name, model_name, variant, model, x, int8, ds.X[:64])
                    arena_rows.append(row)
                    print(json.dumps(row), flush=True)
    out = Path(args.out)
    (out / "cost_validation.json").write_text(json.dumps({"arena": arena_rows, "mlperf": mlperf_rows}, indent=1))
    write_markdown(out / "cost_validation.md", arena_rows, mlperf_rows)


def _trained_like_batchnorm(model: torch.nn.Module) -> None:
    """Fresh BatchNorms are identities, which the converter drops; give them statistics like a trained
    model's so the conversion path (BatchNorm folded before conversion) is the one real runs take."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def arena_row(ds_name, model_name, variant, model, x, int8, calib) -> dict:
    low = lower(model, x, int8=int8)
    head, tail = arena_estimate(low, int8)
    _, model_bytes = flash_estimate(low, int8)
    est = head + tail
    row = {"dataset": ds_name, "role": TFLM_DATASETS.get(ds_name, "validation"), "model": model_name,
           "variant": variant, "dtype": "int8" if int8 else "fp32", "est_arena": est, "est_head": head,
           "est_tail": tail, "est_tflite": model_bytes}
    if any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        # measured the way `wearprune export` ships it: front end + streaming step, one at a time
        _, rec, _, _ = streaming_tflite(model, x, calib[:1], row["dtype"], torch.from_numpy(calib))
        row.update({"tflm_arena": rec["arena_bytes"], "tflm_head": None, "tflm_tail": None,
                    "tflite_bytes": rec["tflite_bytes"], "streaming": True})
    else:
        tfl = to_tflite(model, x, int8=int8, calibration=calib)
        measured = measure_arena(tfl)
        row.update({"tflm_arena": measured.total, "tflm_head": measured.head, "tflm_tail": measured.tail,
                    "tflite_bytes": len(tfl)})
    row["arena_err"] = (est - row["tflm_arena"]) / row["tflm_arena"]
    row["tflite_err"] = (model_bytes - row["tflite_bytes"]) / row["tflite_bytes"]
    return row


# The emulated core whose instruction counts stand for each MLPerf board's core (docs/target_cost.md).
CORE_OF = {"stm32l4r5": "cortex-m4", "stm32u575": "cortex-m33", "nrf5340": "cortex-m33"}
INSTRUCTIONS, PER_MAC = "instruction model", "cycles/MAC"


def mlperf_table() -> list[dict]:
    """Both latency models on every board, each with its one factor solved from the board's IC result: the
    instruction model (instructions counted on the emulated core x cycles per instruction) and the older
    cycles-per-MAC model with assumed per-op costs. ``used``: the one the board's profile uses."""
    models = mlperf_tiny_models()
    lows = {k: lower(m, x, int8=True) for k, (m, x) in models.items()}
    ic_model, ic_x = models["ic"]
    ic = lows["ic"]
    rows = []
    for dev_name, pub in MLPERF.items():
        dev = load_device(dev_name)
        power = pub["uj"]["ic"] / pub["ms"]["ic"] if pub["uj"] else None
        for method in (INSTRUCTIONS, PER_MAC):
            if method == INSTRUCTIONS:
                base = replace(dev, instruction_model=CORE_OF[dev_name], cycles_per_instruction=1.0)
                instr = estimate_cost(ic_model, ic_x, base, int8=True, lowered=ic).latency_ms * dev.clock_mhz * 1e3
                factor = pub["ms"]["ic"] * dev.clock_mhz * 1e3 / instr
                cal = replace(base, cycles_per_instruction=factor, active_mw=power or dev.active_mw)
            else:  # one int8 cycles/MAC for the board: solve the IC latency exactly
                base = replace(dev, instruction_model="", cycles_per_instruction=0.0,
                               cycles_per_mac={"int8": 0.0, "fp32": 0.0})
                other = sum(k.cycles for k in kernel_cycles(ic, base, "int8")) + dev.inference_overhead_cycles
                factor = (pub["ms"]["ic"] * dev.clock_mhz * 1e3 - other) / ic.macs
                cal = replace(base, cycles_per_mac={"int8": factor, "fp32": dev.cycles_per_mac["fp32"]},
                              active_mw=power or dev.active_mw)
            used = (method == INSTRUCTIONS) == bool(dev.instruction_model)
            for bench, (m, x) in models.items():
                c = estimate_cost(m, x, cal, int8=True, lowered=lows[bench])
                ms, uj = pub["ms"][bench], pub["uj"].get(bench)
                rows.append({"device": dev_name, "round": pub["round"], "benchmark": bench, "method": method,
                             "used": used, "macs": lows[bench].macs, "core": CORE_OF[dev_name],
                             "role": "calibration" if bench == "ic" else "validation",
                             "factor": round(factor, 4), "power_mw": round(power, 2) if power else None,
                             "est_ms": c.latency_ms, "pub_ms": ms, "ms_err": (c.latency_ms - ms) / ms,
                             "est_uj": c.energy_uj if power else None, "pub_uj": uj,
                             "uj_err": (c.energy_uj - uj) / uj if (uj and power) else None})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+.1f} %"


def write_markdown(path: Path, arena: list[dict], mlperf: list[dict]) -> None:
    lines = ["# Cost model validation", "",
             f"Measured by `benchmarks/cost_validation.py` on {platform.machine()} CPU, torch {torch.__version__}, "
             "litert-torch for conversion and the `tflite-micro` package's interpreter for measurement.", ""]
    val = [r for r in arena if r["role"] == "validation"]
    if val:
        worst = max(val, key=lambda r: abs(r["arena_err"]))
        worst_fl = max(val, key=lambda r: abs(r["tflite_err"]))
        lines += [f"**TFLite Micro arena, validation rows: worst error {_pct(worst['arena_err'])}** "
                  f"({worst['dataset']} / {worst['model']} {worst['variant']} {worst['dtype']}); "
                  f"mean absolute error {100 * sum(abs(r['arena_err']) for r in val) / len(val):.1f} % over "
                  f"{len(val)} rows. `.tflite` size: worst {_pct(worst_fl['tflite_err'])}.", ""]
        window = [r for r in val if r["tflm_head"] is not None]
        exact = sum(r["est_head"] == r["tflm_head"] for r in window)
        streaming = [r for r in val if r["tflm_head"] is None]
        if streaming:
            worst_s = max(streaming, key=lambda r: abs(r["arena_err"]))
            lines += [f"Recurrent models (front end + streaming step), validation rows: worst arena error "
                      f"{_pct(worst_s['arena_err'])} ({worst_s['dataset']} / {worst_s['model']} {worst_s['variant']} "
                      f"{worst_s['dtype']}), mean absolute error "
                      f"{100 * sum(abs(r['arena_err']) for r in streaming) / len(streaming):.1f} % over "
                      f"{len(streaming)} rows.", ""]
        over = [r for r in val if abs(r["arena_err"]) > 0.10]
        lines += [f"The planned (head) part matches TFLite Micro exactly in {exact} of {len(window)} validation rows "
                  "(window graphs). "
                  f"Rows outside 10 %: {len(over)}"
                  + (" (" + "; ".join(f"{r['dataset']} {r['model']} {r['variant']} {r['dtype']} "
                                      f"{_pct(r['arena_err'])}" for r in over) + "). In these int8 graphs "
                     "litert-torch inserts a requantising QUANTIZE (and an extra TRANSPOSE) before the second "
                     "max-pool, which the lowering does not predict: the estimate is low by those tensors."
                     if over else "."), ""]
    for label, pick in (("the latency model each profile uses", lambda r: r.get("used", True)),
                        (f"the {INSTRUCTIONS} on every board", lambda r: r.get("method") == INSTRUCTIONS),
                        (f"{PER_MAC} with assumed per-op costs on every board", lambda r: r.get("method") == PER_MAC)):
        mv = [r for r in mlperf if r["role"] == "validation" and pick(r)]
        if not mv:
            continue
        worst = max(mv, key=lambda r: abs(r["ms_err"]))
        en = [r for r in mv if r["uj_err"] is not None]
        worst_e = max(en, key=lambda r: abs(r["uj_err"])) if en else None
        energy_note = f"{_pct(worst_e['uj_err'])} ({worst_e['device']} {worst_e['benchmark']})" if worst_e else "-"
        lines += [f"**MLPerf Tiny latency, validation rows, {label}: worst error {_pct(worst['ms_err'])}** "
                  f"({worst['device']} {worst['benchmark']}); energy: worst {energy_note}.", ""]
    lines += ["## 1. Arena: estimated vs measured in TensorFlow Lite Micro", "",
              "Models are untrained (the arena does not depend on weight values) but their BatchNorms get "
              "trained-like statistics, so conversion folds them as it does for real runs; int8 is calibrated on "
              "64 windows. "
              "'pruned 50%' is `wp.prune(method='channel', ratio=0.5, importance='l2')`. Estimated = planned "
              "activations (the greedy first-fit TFLite Micro uses, over the lowered graph) + persistent "
              "structures. Estimated .tflite = weights at their dtype + a fixed part + a cost per tensor, both "
              "fitted on the basicmotions rows. Recurrent zoo models (cnn_gru, cnn_lstm) are measured as "
              "`wearprune export` ships them, since litert-torch's unrolled graph exceeds TFLite Micro's "
              "CONCATENATION input limit: a front-end graph and a streaming step graph, run one at a time; "
              "TFLM arena = the larger of the two measured arenas + the state kept between steps (at the step "
              "inputs' types: in int8 the GRU's state stays float), .tflite = both files. The estimate plans "
              "the same two graphs, the int8 step as litert-torch quantises it (FULLY_CONNECTED and MUL in "
              "int8, the gate adds and activations in float, QUANTIZE/DEQUANTIZE between); its head is not "
              "compared (two graphs).", "",
              "| data (role) | model | variant | dtype | est. arena | TFLM arena | error | est. head / TFLM head | "
              "est. .tflite | .tflite | error |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in arena:
        lines.append(f"| {r['dataset']} ({r['role']}) | {r['model']} | {r['variant']} | {r['dtype']} | "
                     f"{r['est_arena']:,} | {r['tflm_arena']:,} | {_pct(r['arena_err'])} | "
                     f"{r['est_head']:,} / {'-' if r['tflm_head'] is None else format(r['tflm_head'], ',')} | "
                     f"{r['est_tflite']:,} | {r['tflite_bytes']:,} | "
                     f"{_pct(r['tflite_err'])} |")
    lines += ["", "## 2. Latency and energy: estimated vs published MLPerf Tiny results", "",
              "A board whose profile names an instruction model (the per-op instruction costs measured on its core "
              "in QEMU, docs/target_cost.md) gets one cycles-per-instruction factor, solved from the IC (ResNet-8) "
              "result; a board without one gets one int8 cycles-per-MAC figure, solved the same way (the "
              "calibration row, error 0 by construction). KWS (DS-CNN), VWW (MobileNetV1-0.25) and AD (FC "
              "autoencoder) are predictions. Power = IC energy / IC latency. The reference models are rebuilt in "
              "PyTorch (`wearprune.models.reference`); their MAC counts match the published ones (2.66 M, 7.49 M, "
              "12.50 M, 0.26 M).", "",
              "**used**: the model the board's profile uses (the instruction model where the board runs CMSIS-NN "
              "kernels, which is what was counted; ST's boards run X-CUBE-AI, whose kernels were not).", "",
              "| device | method | used | benchmark | role | MACs | factor (IC) | est. ms | published ms | error | "
              "est. uJ | published uJ | error | source |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in mlperf:
        est_uj = "-" if r["est_uj"] is None else f"{r['est_uj']:.0f}"
        pub_uj = "-" if r["pub_uj"] is None else f"{r['pub_uj']:.0f}"
        factor = f"{r['factor']} cycles/{'instruction' if r['method'] == INSTRUCTIONS else 'MAC'}"
        lines.append(f"| {r['device']} | {r['method']} | {'yes' if r['used'] else 'no'} | {r['benchmark']} | "
                     f"{r['role']} | {r['macs']:,} | {factor} | "
                     f"{r['est_ms']:.2f} | {r['pub_ms']:.2f} | {_pct(r['ms_err'])} | {est_uj} | {pub_uj} | "
                     f"{_pct(r['uj_err'])} | MLPerf Tiny {r['round']} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
