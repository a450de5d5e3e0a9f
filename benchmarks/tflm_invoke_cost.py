"""TensorFlow Lite Micro's cost per inference, dense vs channel-pruned vs int8, beside the MAC ratio:
instructions per invoke counted by valgrind (callgrind) around the interpreter's Invoke.

    .venv/bin/python benchmarks/tflm_invoke_cost.py

Zoo models are built for HMP's window (3 accelerometer axes x 96 samples, 3 s at 32 Hz; 14 classes)
with random weights and BatchNorm in eval mode (the exporter folds it). Each is channel-pruned (l2) at
two ratios, and every variant is converted with litert-torch to fp32 and to int8 (calibrated on 64
random-normal windows). Each ``.tflite`` then runs in a small worker process that imports only numpy
and ``tflite_micro`` (no torch, so valgrind stays fast): one fixed input, 1 warm-up + 5 invokes, under
``valgrind --tool=callgrind --collect-atstart=no --toggle-collect=<Invoke>`` with a profile dump
before every Invoke, so each invoke's instruction count (Ir) is read on its own. The per-function
profile of the last invoke is grouped into kernel families. Wall time per invoke is measured
separately, without valgrind. Writes docs/tflm_invoke_cost.md and docs/tflm_invoke_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

MODELS = ("resnet1d", "cnn1d", "tcn", "dscnn")
SPEC = {"layout": "window", "task": "classification", "input_shape": [3, 96], "n_outputs": 14}
RATIOS = (0.3, 0.5)  # fraction of channels removed: MACs fall by about (1 - r)^-2, i.e. ~2x and ~4x
INVOKE = "tflite::micro::MicroInterpreter::Invoke()"  # demangled; `nm -DC _runtime.so | grep Invoke`
ARENA = 8 * 1024 * 1024

# Kernel families for the per-function profile (first match wins; matched on the demangled name).
FAMILIES = (
    ("requantise", r"MultiplyByQuantizedMultiplier|SaturatingRoundingDoublingHighMul|RoundingDivideByPOT"),
    ("conv/fc", r"Conv|FullyConnected"),
    ("add/pool/mean", r"Add|Mean|Reduce|Max|Average|Pool|Sum"),
    ("layout", r"Transpose|Pad|Reshape|Slice|Quantize|Dequantize|Concat|mem(cpy|move|set)"),
)
OTHER = "interpreter/other"
WORKER_ENV = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # no idle BLAS threads


# --- worker side: numpy + tflite_micro only -------------------------------------------------------

def _interpreter(path: str):
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(Path(path).read_bytes(), arena_size=ARENA)
    rng = np.random.default_rng(0)
    for i in range(64):  # every input (a streaming step also takes its states)
        try:
            d = interp.get_input_details(i)
        except IndexError:
            break
        x = rng.standard_normal(tuple(d["shape"])).astype(np.float32)
        if d["dtype"] != np.float32:
            q = d["quantization_parameters"]
            scale, zero = float(q["scales"][0]), int(q["zero_points"][0])
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(d["dtype"])
        interp.set_input(x, i)
    return interp


def worker(mode: str, path: str, n: int) -> None:
    interp = _interpreter(path)
    if mode == "invoke":  # run under callgrind
        for _ in range(n):
            interp.invoke()
        return
    for _ in range(3):
        interp.invoke()
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.1:  # batch size that takes ~0.1 s
        interp.invoke()
        k += 1
    per = []
    for _ in range(n):
        t0 = time.perf_counter()
        for _ in range(k):
            interp.invoke()
        per.append((time.perf_counter() - t0) / k)
    print(json.dumps({"us": statistics.median(per) * 1e6, "batch": k, "repeats": n}))


# --- driver side ---------------------------------------------------------------------------------

def callgrind(path: Path, n: int) -> dict:
    """Ir of each of ``n`` invokes (dump before each Invoke; collection only inside it) and the
    last invoke's self cost grouped into kernel families."""
    out = path.with_suffix(".cg")
    cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={INVOKE}",
           f"--dump-before={INVOKE}", "--compress-strings=no", "--compress-pos=no",
           f"--callgrind-out-file={out}", sys.executable, __file__, "--worker", "invoke", str(path), str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=WORKER_ENV)
    if proc.returncode != 0:
        raise RuntimeError(f"valgrind failed on {path.name}: {proc.stderr[-2000:]}")
    collected = int(re.search(r"Collected : (\d+)", proc.stderr).group(1))
    # parts: <out>.1 = before the first Invoke (must be 0), <out>.k = invoke k-1, <out> = invoke n
    parts = [_totals(Path(f"{out}.{i}")) for i in range(1, n + 1)] + [_totals(out)]
    if parts[0] != 0 or sum(parts) != collected or min(parts[1:]) <= 0:
        raise RuntimeError(f"{path.name}: unexpected callgrind parts {parts} (collected {collected})")
    families = _families(out)
    if sum(families.values()) != parts[-1]:
        raise RuntimeError(f"{path.name}: profile sums to {sum(families.values())}, not {parts[-1]}")
    return {"ir_per_invoke": parts[1:], "collected": collected, "families": families}


def _totals(f: Path) -> int:
    m = re.search(r"^totals: (\d+)", f.read_text(), re.M)
    return int(m.group(1)) if m else 0


def _families(f: Path) -> dict:
    """Self cost per function from a callgrind file (uncompressed names), summed into FAMILIES."""
    self_cost: dict[str, int] = {}
    fn, call_line = "", False
    for line in f.read_text().splitlines():
        if line.startswith("fn="):
            fn = line[3:]
        elif line.startswith("calls="):
            call_line = True  # the next cost line is the callee's inclusive cost, not fn's own
        elif line[:1].isdigit() or line[:1] in "+-*":
            if call_line:
                call_line = False
                continue
            cols = line.split()
            if len(cols) >= 2:
                self_cost[fn] = self_cost.get(fn, 0) + int(cols[1])
    fam = {name: 0 for name, _ in FAMILIES} | {OTHER: 0}
    for name, ir in self_cost.items():
        fam[next((k for k, pat in FAMILIES if re.search(pat, name)), OTHER)] += ir
    return fam


def wall_time(path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", "time", str(path), "7"], capture_output=True,
                          text=True, check=True, env=WORKER_ENV)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def loop_counts(model, x) -> dict:
    """Per conv/linear layer, summed: MACs, inner-loop entries (one per output element and kernel tap:
    the reference kernel's innermost loop runs over the input channels of one tap) and outputs."""
    import torch
    from torch import nn

    tot = {"macs": 0, "taps": 0, "outputs": 0}

    def hook(m, args, out):
        if isinstance(m, nn.Conv1d):
            outputs = out.shape[1] * out.shape[2]
            taps = outputs * m.kernel_size[0]
            tot["macs"] += taps * (m.in_channels // m.groups)
        else:
            outputs = taps = m.out_features
            tot["macs"] += m.in_features * m.out_features
        tot["taps"] += taps
        tot["outputs"] += outputs

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return tot


def export_variants(tmp: Path, models: list[str]) -> list[dict]:
    import torch

    import wearprune as wp
    from wearprune.export.tflite import to_tflite
    from wearprune.export.tflm import tflite_summary

    torch.manual_seed(0)
    x = torch.randn(1, *SPEC["input_shape"])
    calib = np.random.default_rng(1).standard_normal((64, *SPEC["input_shape"])).astype(np.float32)
    rows = []
    for name in models:
        dense = wp.build_model(name, SPEC).eval()
        shapes = [("dense", dense)]
        for r in RATIOS:
            pruned, _ = wp.prune(dense, x, method="channel", ratio=r, importance="l2")
            shapes.append((f"pruned {int(r * 100)}%", pruned.eval()))
        for shape, model in shapes:
            macs = wp.count_macs(model, x)
            loops = loop_counts(model, x)
            for dtype in ("fp32", "int8"):
                t0 = time.time()
                blob = to_tflite(model, x, int8=dtype == "int8", calibration=calib)
                path = tmp / f"{name}-{shape.replace(' ', '').replace('%', '')}-{dtype}.tflite"
                path.write_bytes(blob)
                ops = tflite_summary(blob)["ops"]
                rows.append({"model": name, "shape": shape, "dtype": dtype, "macs": macs, "n_ops": len(ops),
                             "loops": loops, "ops": ops, "tflite_bytes": len(blob), "path": str(path)})
                print(f"  exported {path.name}: {macs:,} MACs, {len(ops)} ops ({time.time() - t0:.1f} s)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--invokes", type=int, default=6, help="invokes per callgrind run (the first is a warm-up)")
    ap.add_argument("--jobs", type=int, default=2, help="callgrind runs in parallel")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--render", action="store_true", help="only rewrite tflm_invoke_cost.md from the JSON")
    ap.add_argument("--worker", nargs=3, metavar=("MODE", "TFLITE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    out = Path(args.out)
    if args.render:
        write_markdown(out / "tflm_invoke_cost.md", json.loads((out / "tflm_invoke_cost.json").read_text()))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found")
    t_start = time.time()
    vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    import warnings

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        print("exporting ...", flush=True)
        rows = export_variants(Path(tmp), args.models.split(","))
        print(f"timing {len(rows)} models (no valgrind) ...", flush=True)
        for r in rows:
            r["time"] = wall_time(Path(r["path"]))
            print(f"  {Path(r['path']).name}: {r['time']['us']:.1f} us/invoke", flush=True)
        print(f"callgrind on {len(rows)} models, {args.jobs} at a time ...", flush=True)

        def one(r: dict) -> dict:
            t0 = time.time()
            res = callgrind(Path(r["path"]), args.invokes)
            print(f"  {Path(r['path']).name}: {res['ir_per_invoke'][-1]:,} Ir/invoke "
                  f"(all {args.invokes}: {res['ir_per_invoke']}; {time.time() - t0:.0f} s)", flush=True)
            return res

        with ThreadPoolExecutor(args.jobs) as pool:
            for r, res in zip(rows, pool.map(one, rows)):
                r.update(res)
                del r["path"]
    import torch

    meta = {"machine": platform.machine(), "cpu": _cpu_name(), "python": platform.python_version(),
            "torch": torch.__version__, "tflite_micro": _tflm_version(), "valgrind": vg, "invoke_symbol": INVOKE,
            "invokes_per_run": args.invokes, "spec": SPEC, "ratios": list(RATIOS),
            "kernels": _kernels(), "runtime_s": round(time.time() - t_start, 1)}
    data = {"meta": meta, "rows": _ratios(rows)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "tflm_invoke_cost.json").write_text(json.dumps(data, indent=1))
    write_markdown(out / "tflm_invoke_cost.md", data)
    print((out / "tflm_invoke_cost.md").read_text())
    print(f"total {meta['runtime_s']:.0f} s")


def _ratios(rows: list[dict]) -> list[dict]:
    by = {(r["model"], r["shape"], r["dtype"]): r for r in rows}
    for r in rows:
        ir = r["ir_per_invoke"][-1]
        r["ir"] = ir
        base = by[(r["model"], "dense", "fp32")]
        same = by[(r["model"], "dense", r["dtype"])]
        r["mac_ratio"] = base["macs"] / r["macs"]
        r["ir_ratio_vs_dense_fp32"] = base["ir_per_invoke"][-1] / ir
        r["ir_ratio_vs_dense_same_dtype"] = same["ir_per_invoke"][-1] / ir
        r["share_of_mac_ratio"] = r["ir_ratio_vs_dense_same_dtype"] / r["mac_ratio"]
        r["ir_per_mac"] = ir / r["macs"]
        r["int8_vs_fp32_same_shape"] = by[(r["model"], r["shape"], "fp32")]["ir_per_invoke"][-1] / ir
        r["time_ratio_vs_dense_same_dtype"] = same["time"]["us"] / r["time"]["us"]
        r["first_invoke_ir"] = r["ir_per_invoke"][0]
        r["steady_ir_identical"] = len(set(r["ir_per_invoke"][1:])) == 1
    return rows


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _tflm_version() -> str:
    from tflite_micro.python.tflite_micro import _version

    return _version.__version__


def _kernels() -> dict:
    """Which kernel implementations the tflite_micro extension was built with (from its symbol table)."""
    import tflite_micro

    so = next(Path(tflite_micro.__file__).parent.rglob("_runtime*.so"))
    syms = subprocess.run(["nm", "-C", str(so)], capture_output=True, text=True, check=True).stdout
    return {"library": so.name,
            "reference_integer_ops::ConvPerChannel": "reference_integer_ops::ConvPerChannel" in syms,
            "cmsis_nn (arm_*)": bool(re.search(r"\barm_(convolve|nn_|fully_connected)", syms)),
            "xtensa/hifi": "xtensa" in syms.lower() or "hifi" in syms.lower(),
            "compiler": _comment(so)}


def _comment(so: Path) -> str:
    try:
        text = subprocess.run(["readelf", "-p", ".comment", str(so)], capture_output=True, text=True).stdout
        return "; ".join(sorted({m.strip() for m in re.findall(r"\]\s+(.+)", text)}))
    except OSError:
        return ""


def write_markdown(path: Path, data: dict) -> None:
    meta, rows = data["meta"], data["rows"]
    k = meta["kernels"]
    lines = [
        "# TFLite Micro cost per inference: dense vs channel-pruned vs int8", "",
        "**On the target:** these are x86 counts of TFLite Micro's reference kernels. The same shapes on an emulated "
        "Cortex-M4/M33 with the CMSIS-NN kernels a wearable runs (and a cost model fitted on them) are in "
        "[target_cost.md](target_cost.md): int8 there executes 3-4x fewer instructions, and pruning speeds up "
        "less than here.", "",
        f"Measured by `benchmarks/tflm_invoke_cost.py` on {meta['machine']} ({meta['cpu']}), "
        f"tflite-micro {meta['tflite_micro']}, {meta['valgrind']}, torch {meta['torch']}; whole run "
        f"{meta['runtime_s'] / 60:.1f} min on 2 cores.", "",
        "Input: HMP's window, 3 axes x 96 samples (3 s at 32 Hz), 14 classes. Models from the zoo with "
        "random weights, BatchNorm in eval mode (folded by the exporter); channel pruning `l2` at "
        f"{' and '.join(f'{int(r * 100)}%' for r in meta['ratios'])} of the channels (about 2x and 4x fewer "
        "MACs). Converted with litert-torch; int8 is per-channel weights, per-tensor activations calibrated on "
        "64 random-normal windows. The weights' values do not change the instruction count of these kernels "
        "(no data-dependent skipping), only the shapes do, so random weights measure what trained ones would.",
        "",
        f"**instr./invoke**: instructions executed (callgrind Ir) inside `{meta['invoke_symbol']}` for one "
        f"invoke, counted with `--collect-atstart=no --toggle-collect` on that symbol and a dump before each "
        f"call; {meta['invokes_per_run']} invokes per model (1 warm-up). {_determinism(rows)} Python, set_input "
        "and allocation are outside the count. **speed-up**: dense Ir / "
        "variant Ir (same dtype unless stated); **MAC ratio**: dense MACs / variant MACs "
        "(`wearprune.count_macs`); **of MAC ratio**: speed-up / MAC ratio. **time/invoke**: wall-clock "
        "median without valgrind, through the Python binding (includes a few microseconds of call overhead).",
        "",
        "| model | variant | ops | MACs | MAC ratio | instr./invoke | instr./MAC | speed-up (vs dense fp32) "
        "| speed-up (vs dense, same dtype) | of MAC ratio | int8 vs fp32 (same shape) | time/invoke |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['shape']} {r['dtype']} | {r['n_ops']} | {r['macs']:,} | {r['mac_ratio']:.2f}x "
            f"| {r['ir']:,} | {r['ir_per_mac']:.1f} | {r['ir_ratio_vs_dense_fp32']:.2f}x "
            f"| {r['ir_ratio_vs_dense_same_dtype']:.2f}x | {r['share_of_mac_ratio']:.0%} "
            f"| {r['int8_vs_fp32_same_shape']:.2f}x | {r['time']['us']:.0f} us |")
    fams = list(rows[0]["families"])
    lines += ["", "## Where the instructions go", "",
              "Self cost of the last invoke by function, grouped: **conv/fc** the convolution, depthwise and "
              "fully-connected kernels (their MAC loops); **requantise** the int8 fixed-point rescale of each "
              "output (`MultiplyByQuantizedMultiplier`); **layout** transpose, pad, reshape, slice, quantize "
              "and memcpy; **add/pool/mean** the residual adds, max pooling and the global mean; "
              "**interpreter/other** dispatch, tensor lookup and anything else.", "",
              "The last two columns split the speed-up over the dense model of the same dtype: the conv/fc "
              "kernels (with their requantisation) and everything else, each against the MAC ratio.", "",
              "| model | variant | " + " | ".join(fams) + " | conv/fc Ir per MAC | conv/fc speed-up "
              "| rest speed-up |",
              "|---|---|" + "---|" * (len(fams) + 3)]
    for r in rows:
        tot = sum(r["families"].values())
        sp = _split(rows, r)
        lines.append(f"| {r['model']} | {r['shape']} {r['dtype']} | "
                     + " | ".join(f"{r['families'][f] / tot:.1%}" for f in fams)
                     + f" | {_conv_ir(r) / r['macs']:.1f} | {sp[0]:.2f}x (MAC {r['mac_ratio']:.2f}x) "
                     f"| {sp[1]:.2f}x |")
    lines += ["", "## Build of the interpreter", "",
              f"`{k['library']}` ({k['compiler']}): reference integer conv kernel "
              f"(`reference_integer_ops::ConvPerChannel`) present: {k['reference_integer_ops::ConvPerChannel']}; "
              f"CMSIS-NN symbols (`arm_convolve*`, `arm_nn_*`): {k['cmsis_nn (arm_*)']}; Xtensa/HiFi: "
              f"{k['xtensa/hifi']}. So these are TFLite Micro's portable reference kernels, as on a "
              "microcontroller built without an optimised kernel library.", ""]
    lines += findings(rows)
    path.write_text("\n".join(lines) + "\n")


def fit_conv(rows: list[dict], dtype: str) -> dict:
    """Least squares over all variants of one dtype: conv/fc Ir ~ a*MACs + b*taps + c*outputs."""
    sel = [r for r in rows if r["dtype"] == dtype]
    a = np.array([[r["loops"]["macs"], r["loops"]["taps"], r["loops"]["outputs"]] for r in sel], dtype=float)
    y = np.array([r["families"]["conv/fc"] + r["families"]["requantise"] for r in sel], dtype=float)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    err = np.abs(a @ coef - y) / y
    return {"per_mac": coef[0], "per_tap": coef[1], "per_output": coef[2], "max_rel_err": float(err.max()),
            "n": len(sel)}


def _conv_ir(r: dict) -> int:
    return r["families"]["conv/fc"] + r["families"]["requantise"]


def _split(rows: list[dict], r: dict) -> tuple[float, float]:
    """(conv/fc speed-up, rest speed-up) of ``r`` over the dense model of the same dtype."""
    d = next(x for x in rows if x["model"] == r["model"] and x["shape"] == "dense" and x["dtype"] == r["dtype"])
    rest = lambda x: sum(x["families"].values()) - _conv_ir(x)  # noqa: E731
    return _conv_ir(d) / _conv_ir(r), rest(d) / rest(r)


def _determinism(rows: list[dict]) -> str:
    same = [len(set(r["ir_per_invoke"])) == 1 for r in rows]
    if all(same):
        return ("Every invoke of every model, the first included, counted the same number of instructions, "
                "so the figures are exact and repeatable for a given `.tflite` on this build.")
    bad = ", ".join(f"{r['model']} {r['shape']} {r['dtype']}" for r, ok in zip(rows, same) if not ok)
    return f"Invokes of {bad} differed (the table gives the last); all others counted identically."


def _span(vals: list[float], fmt: str = "{:.0%}") -> str:
    return fmt.format(min(vals)) + "-" + fmt.format(max(vals))


def findings(rows: list[dict]) -> list[str]:
    """The 'What the numbers say' section, its numbers computed from the rows."""
    pr = [r for r in rows if r["shape"] != "dense"]
    small = [r for r in pr if r["shape"] == f"pruned {int(RATIOS[0] * 100)}%"]
    big = [r for r in pr if r["shape"] == f"pruned {int(RATIOS[-1] * 100)}%"]
    f32, i8 = fit_conv(rows, "fp32"), fit_conv(rows, "int8")
    share = lambda sel, dt: _span([r["share_of_mac_ratio"] for r in sel if r["dtype"] == dt])  # noqa: E731
    conv_sp = [_split(rows, r)[0] / r["mac_ratio"] for r in pr]
    rest_sp = [_split(rows, r)[1] for r in pr]
    rest_frac = [1 - _conv_ir(r) / r["ir"] for r in rows]
    d = {(r["model"], r["shape"], r["dtype"]): r for r in rows}
    dense_i8 = [r for r in rows if r["shape"] == "dense" and r["dtype"] == "int8"]
    i8_vs = _span([r["ir"] / d[(r["model"], r["shape"], "fp32")]["ir"] - 1 for r in rows if r["dtype"] == "int8"])
    ops = ", ".join(f"{r['model']} {d[(r['model'], 'dense', 'fp32')]['n_ops']} -> {r['n_ops']}" for r in dense_i8)
    ds = [r for r in pr if r["model"] == "dscnn"]
    return [
        "## What the numbers say", "",
        f"- **Channel pruning gives most, not all, of the MAC ratio.** At about 2x fewer MACs the instruction "
        f"count falls by {share(small, 'fp32')} of the MAC ratio in fp32 ({share(small, 'int8')} in int8, "
        f"against dense int8); at about 4x fewer MACs by {share(big, 'fp32')} ({share(big, 'int8')} in int8). "
        "The shortfall grows with the pruning ratio and is largest for dscnn "
        f"({_span([r['share_of_mac_ratio'] for r in ds])}) and cnn1d "
        f"({_span([r['share_of_mac_ratio'] for r in pr if r['model'] == 'cnn1d'])}), the models with the fewest "
        "MACs per kernel tap (below).",
        "- **Most of the shortfall is inside the conv kernels, not in the other ops.** Over all pruned "
        f"variants the conv/fc kernels alone reach {_span(conv_sp)} of the MAC ratio. TFLite Micro's reference "
        "convolution loops over output position, output channel and kernel tap, and only the innermost loop "
        "runs over input channels, so part of its cost is per output element and per tap, not per MAC. "
        "Removing a fraction r of the channels cuts the MACs of an inner layer by (1-r)^2 but the taps and "
        "outputs only by (1-r). A least-squares fit over the 12 fp32 variants, conv/fc Ir = "
        f"{f32['per_mac']:.1f} x MACs + {f32['per_tap']:.1f} x taps + {f32['per_output']:.0f} x outputs, is "
        f"within {f32['max_rel_err']:.0%} of every measurement (int8: {i8['per_mac']:.1f} / {i8['per_tap']:.1f} / "
        f"{i8['per_output']:.0f}, within {i8['max_rel_err']:.0%}; the per-output term holds the int8 "
        "requantisation). The fewer input channels per tap, the worse: dscnn's depthwise convolutions have one "
        "MAC per tap, so they scale with the channel count, not its square; that is why dscnn, at "
        f"{_span([r['ir_per_mac'] for r in rows if r['model'] == 'dscnn'], '{:.0f}')} instructions per MAC, "
        "keeps the least of its MAC ratio. The first convolution (3 input axes, never pruned) and the "
        "classifier (14 outputs) also shrink only linearly, but that is already in the MAC ratio.",
        f"- **The other ops (add, pooling, mean, transpose/pad/reshape/quantize, dispatch) are "
        f"{_span(rest_frac)} of the instructions** and shrink only in proportion to the activations, "
        f"{_span(rest_sp, '{:.1f}x')} over the pruned variants, well under the MAC ratio. They matter most "
        "where the convolutions are cheap (cnn1d's max pooling and mean, tcn's pad/reshape/transpose around "
        "every dilated causal conv) and in int8. The interpreter's own per-op dispatch is negligible here "
        "(0.2% or less): these models have at most a few dozen ops and each does thousands of MACs.",
        f"- **int8 costs more instructions than fp32 in this build ({i8_vs}).** These are the portable "
        "reference kernels (see the build section): an int8 MAC is a widen, an offset add and a 32-bit "
        "multiply-add, no cheaper on x86 than a float one, and each output adds a fixed-point requantisation "
        "(`MultiplyByQuantizedMultiplier`). The int8 graph also has more ops, because the converter leaves "
        f"transposes, reshapes and quantize ops around quantized convs and pools ({ops} ops, fp32 -> int8), "
        "and int8 ADD and MEAN rescale each element. On a Cortex-M with CMSIS-NN, int8 convolutions use "
        "2-way 16-bit SIMD multiply-accumulates and im2col, and a core without an FPU runs fp32 in software, "
        "so int8 there should be much faster than fp32; neither was measured here. The ratios in this table "
        "are what a microcontroller running the reference kernels would see (instruction counts are "
        "x86 instructions, a proxy for, not a count of, Cortex-M cycles).",
        "- **The int8 graph is not a fixed function of the architecture.** Whether the converter inserts a "
        "QUANTIZE between two ops depends on the calibrated scales, so the same pruned shape can export with "
        "a different op count for other weights (cnn1d pruned 30% int8 came out with 13 ops in a trial run "
        "with other random weights and 16 here, about 3% apart in instructions).",
        "- **Wall time on this x86 host follows the instruction count only roughly** (out-of-order execution, "
        "cache and Python-call overhead); the time column is a secondary check, the instruction counts are "
        "the deterministic measure.", "",
    ]


if __name__ == "__main__":
    main()
