#!/usr/bin/env python3
"""Host side of the firmware check: real input windows in, host TFLM out, comparison.

Run with the project's venv (it imports wearprune and the tflite-micro package):

    host_tflm.py inputs RUN_DIR MODEL.tflite INPUT.bin [--windows K] [--data-root DIR]
        First K test windows of the run's dataset (as `wearprune export` checks them),
        quantised with the model's input scale/zero point like wearprune.export.tflm
        does, written back to back as the raw input tensor bytes the runner reads.
    host_tflm.py run MODEL.tflite INPUT.bin OUTPUT.bin
        The same windows through the host TFLM interpreter (reference kernels):
        raw output tensor bytes, in the runner's --output layout.
    host_tflm.py compare MODEL.tflite INPUT.bin FIRMWARE_OUTPUT.bin
        Run the host interpreter and compare with the firmware's --output file;
        prints one JSON object (bit_exact, differing bytes, max |diff| in
        quantised steps, argmax agreement) and exits 1 if they differ.
    host_tflm.py tensors MODEL.tflite INPUT.bin FIRMWARE_DUMP.bin
        Debugging: the first window through the host interpreter with every tensor
        preserved, compared tensor by tensor with the runner's --dump-tensors file;
        one JSON line per tensor (name, producing op, equal, max |diff|).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _interp(model: bytes):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=8 * 1024 * 1024)


def _details(interp, model: bytes, kind: str):
    from wearprune.export.tflm import tflite_summary

    n = len(tflite_summary(model)["inputs" if kind == "input" else "outputs"])
    get = interp.get_input_details if kind == "input" else interp.get_output_details
    return [get(i) for i in range(n)]


def _nbytes(d) -> int:
    return int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize


def cmd_inputs(a) -> int:
    from wearprune.data.prepare import prepare_from_config
    from wearprune.export.tflm import quantize
    from wearprune.runs import load_run

    model = open(a.model, "rb").read()
    interp = _interp(model)
    ins = _details(interp, model, "input")
    if len(ins) != 1:
        print("inputs: only single-input models are supported here", file=sys.stderr)
        return 2
    run = load_run(a.run)
    test = prepare_from_config(run.config, a.data_root).test
    x = np.asarray(test.X[: a.windows], dtype=np.float32)
    with open(a.out, "wb") as f:
        for window in x:
            q = quantize(window[None], ins[0])
            f.write(np.ascontiguousarray(q.reshape(ins[0]["shape"])).tobytes())
    labels = getattr(test, "y", None)
    print(json.dumps({"windows": len(x), "bytes_per_window": _nbytes(ins[0]), "out": a.out,
                      "labels": None if labels is None else np.asarray(labels[: a.windows]).tolist()}))
    return 0


def host_outputs(model: bytes, raw: bytes) -> tuple[bytes, list, list]:
    interp = _interp(model)
    ins, outs = _details(interp, model, "input"), _details(interp, model, "output")
    per_window = sum(_nbytes(d) for d in ins)
    if per_window == 0 or len(raw) % per_window:
        raise SystemExit(f"input file size {len(raw)} is not a multiple of {per_window} bytes")
    blobs = []
    for w in range(len(raw) // per_window):
        off = w * per_window
        for i, d in enumerate(ins):
            n = _nbytes(d)
            arr = np.frombuffer(raw[off:off + n], dtype=d["dtype"]).reshape(d["shape"])
            interp.set_input(arr, i)
            off += n
        interp.invoke()
        for i in range(len(outs)):
            blobs.append(np.ascontiguousarray(interp.get_output(i)).tobytes())
    return b"".join(blobs), ins, outs


def cmd_run(a) -> int:
    out, _, _ = host_outputs(open(a.model, "rb").read(), open(a.input, "rb").read())
    with open(a.out, "wb") as f:
        f.write(out)
    return 0


def cmd_compare(a) -> int:
    host, _, outs = host_outputs(open(a.model, "rb").read(), open(a.input, "rb").read())
    fw = open(a.firmware_output, "rb").read()
    result = {"bytes": len(host), "firmware_bytes": len(fw)}
    if len(fw) != len(host):
        result["bit_exact"] = False
        print(json.dumps(result))
        return 1
    d0 = outs[0]
    dt = np.dtype(d0["dtype"])
    h = np.frombuffer(host, dtype=dt) if len(outs) == 1 else np.frombuffer(host, dtype=np.uint8)
    f = np.frombuffer(fw, dtype=dt) if len(outs) == 1 else np.frombuffer(fw, dtype=np.uint8)
    diff = np.abs(h.astype(np.float64) - f.astype(np.float64))
    result.update({"bit_exact": host == fw, "differing_elements": int((diff > 0).sum()),
                   "elements": int(h.size), "max_abs_diff": float(diff.max()) if diff.size else 0.0,
                   "dtype": dt.name})
    if len(outs) == 1:
        classes = int(np.prod(d0["shape"]))
        if classes > 1 and h.size % classes == 0:
            hw, fwa = h.reshape(-1, classes), f.reshape(-1, classes)
            result["windows"] = int(hw.shape[0])
            result["argmax_agree"] = int((hw.argmax(1) == fwa.argmax(1)).sum())
            result["host_argmax"] = hw.argmax(1).tolist()
    print(json.dumps(result))
    return 0 if result["bit_exact"] else 1


def cmd_tensors(a) -> int:
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = open(a.model, "rb").read()
    interp = runtime.Interpreter.from_bytes(model, arena_size=8 * 1024 * 1024,
                                            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    ins = _details(interp, model, "input")
    raw = open(a.input, "rb").read()
    off = 0
    for i, d in enumerate(ins):
        n = _nbytes(d)
        interp.set_input(np.frombuffer(raw[off:off + n], dtype=d["dtype"]).reshape(d["shape"]), i)
        off += n
    interp.invoke()
    fw = {}
    blob = open(a.dump, "rb").read()
    pos = 0
    while pos + 8 <= len(blob):
        idx, nbytes = np.frombuffer(blob[pos:pos + 8], dtype="<u4")
        fw[int(idx)] = blob[pos + 8:pos + 8 + int(nbytes)]
        pos += 8 + int(nbytes)
    obj = runtime.convert_bytearray_to_object(bytearray(model))
    graph = obj.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    producer = {}
    for k, op in enumerate(graph.operators):
        code = obj.operatorCodes[op.opcodeIndex]
        for t in op.outputs:
            producer[int(t)] = f"{k}:{names.get(max(code.builtinCode, code.deprecatedBuiltinCode), 'CUSTOM')}"
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    np_types = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32,
                "FLOAT32": np.float32, "INT64": np.int64, "BOOL": np.bool_}
    differing = 0
    for i, t in enumerate(graph.tensors):
        try:
            host = np.ascontiguousarray(interp.GetTensor(i, 0)["tensor_data"]).tobytes()
        except Exception:
            host = None
        mine = fw.get(i)
        dt = np_types.get(types.get(t.type, ""), np.uint8)
        row = {"tensor": i, "name": t.name.decode(errors="replace")[:60], "type": types.get(t.type),
               "producer": producer.get(i, "input/const"), "host_bytes": None if host is None else len(host),
               "fw_bytes": None if mine is None else len(mine)}
        if host is not None and mine is not None and len(host) == len(mine) and len(host):
            h = np.frombuffer(host, dtype=dt).astype(np.float64)
            f = np.frombuffer(mine, dtype=dt).astype(np.float64)
            row["equal"] = host == mine
            row["max_abs_diff"] = float(np.abs(h - f).max())
            differing += not row["equal"]
        print(json.dumps(row))
    return 1 if differing else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("inputs")
    s.add_argument("run")
    s.add_argument("model")
    s.add_argument("out")
    s.add_argument("--windows", type=int, default=1)
    s.add_argument("--data-root", default=None)
    s.set_defaults(fn=cmd_inputs)
    s = sub.add_parser("run")
    s.add_argument("model")
    s.add_argument("input")
    s.add_argument("out")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("compare")
    s.add_argument("model")
    s.add_argument("input")
    s.add_argument("firmware_output")
    s.set_defaults(fn=cmd_compare)
    s = sub.add_parser("tensors")
    s.add_argument("model")
    s.add_argument("input")
    s.add_argument("dump")
    s.set_defaults(fn=cmd_tensors)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
