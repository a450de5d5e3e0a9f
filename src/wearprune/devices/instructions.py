"""Instructions per TFLite Micro op on a Cortex-M core, fitted on counts measured on that core.

``wearprune measure`` and ``benchmarks/target_cost.py`` count the instructions each op of a model executes
on an emulated core (TFLite Micro + CMSIS-NN in QEMU). Per op type and output type (``CONV_2D/INT8``,
``ADD/FLOAT32``, ...) the count is modelled as

    instructions = per_mac x MACs + per_patch x MACs / output channels + per_out x output elements
                   + per_in x input elements + per_op

(MACs / output channels = the input values one output position reads, the im2col patch CMSIS-NN copies per
position: channel pruning shrinks it less than the MACs, which is why a pruned model speeds up less than its
MAC ratio)
fitted by non-negative least squares on relative error (a small op counts as much as a large one). The
fitted table of a core is a JSON data file in ``cores/`` with its source; a device profile that names it
(``instruction_model: cortex-m4``) is costed from it, in cycles = instructions x the profile's
``cycles_per_instruction`` (fitted on a published measurement, see docs/cost_validation.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache
from pathlib import Path

import numpy as np

from wearprune.errors import ConfigError

CORES = Path(__file__).with_name("cores")
FEATURES = ("macs", "out_channels", "out_elems", "in_elems")
TERMS = ("per_mac", "per_patch", "per_out", "per_in", "per_op")
ANY = "*"  # the pooled fit of every op without MACs: the cost of an op type never measured


def op_key(op: str, out_type: str) -> str:
    return f"{op}/{out_type}"


def _row(macs: int, out_channels: int, out_elems: int, in_elems: int) -> list[float]:
    return [macs, macs / out_channels if out_channels else 0.0, out_elems, in_elems, 1.0]


def _design(ops: list[dict]) -> np.ndarray:
    return np.array([_row(*(o[f] for f in FEATURES)) for o in ops], dtype=float)


def _nnls_relative(ops: list[dict]) -> list[float]:
    from scipy.optimize import nnls

    A = _design(ops)
    y = np.array([o["instructions"] for o in ops], dtype=float)
    scale = A.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(A / scale / y[:, None], np.ones(len(y)))
    return (coef / scale).tolist()


def fit_op_costs(ops: list[dict]) -> dict:
    """Per op key, the four coefficients (``TERMS``) and how many ops they were fitted on. ``ops``: measured
    ops with ``op``, ``type``, ``instructions`` and the ``FEATURES`` (what ``wearprune measure`` stores)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for o in ops:
        groups[op_key(o["op"], o["type"])].append(o)
    table = {key: {**dict(zip(TERMS, _nnls_relative(group))), "ops": len(group)} for key, group in groups.items()}
    no_macs = [o for o in ops if not o["macs"]]
    if no_macs:
        table[ANY] = {**dict(zip(TERMS, _nnls_relative(no_macs))), "ops": len(no_macs)}
    return table


def op_instructions(table: dict, op: str, out_type: str, macs: int, out_channels: int, out_elems: int,
                    in_elems: int) -> float:
    c = table.get(op_key(op, out_type)) or table.get(op_key(op, "INT8")) or table[ANY]
    return sum(c[t] * v for t, v in zip(TERMS, _row(macs, out_channels, out_elems, in_elems)))


def kernel_features(graph, kernel, dtype: str) -> tuple[str, str, int, int, int, int]:
    """What the instruction model reads of one kernel of a lowered graph (wearprune.devices.lower): op, output
    type, MACs, output channels, output and input elements. In an int8 graph a kernel with a float output (an
    int8 streaming step's gate math) runs the float kernel."""
    out = graph.tensors[kernel.output]
    size = out.nbytes or (1 if dtype == "int8" else 4)
    in_elems = graph.tensors[kernel.inputs[0]].elems if kernel.inputs else 0
    return (kernel.runtime_op, "FLOAT32" if size == 4 else "INT8", kernel.macs,
            kernel.channels if kernel.macs else 0, out.elems, in_elems)


def kernel_instructions(table: dict, graph, kernel, dtype: str) -> float:
    """Instructions of one kernel of a lowered graph on the table's core."""
    return op_instructions(table, *kernel_features(graph, kernel, dtype))


@cache
def load_core(name: str) -> dict:
    """The fitted table of a core (``cores/<name>.json``): ``ops``, ``per_invoke``, ``source``."""
    path = CORES / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CORES.glob("*.json")))
        raise ConfigError(f"no instruction model for core {name!r} (known: {known}); measure it with "
                          "benchmarks/target_cost.py or remove instruction_model from the profile")
    return json.loads(path.read_text())
