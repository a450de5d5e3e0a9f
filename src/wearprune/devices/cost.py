"""Cost of one inference on a device: params, MACs, flash, peak RAM, latency, energy, battery life.

Everything is computed from the lowered graph (:mod:`wearprune.devices.lower`), the same fx trace
the pruner walks, and a device profile. All figures are estimates; the validation against
TensorFlow Lite Micro and MLPerf Tiny is in ``docs/cost_validation.md``.

- flash = weights at their dtype (int8: 1 byte per weight, int32 biases, per-channel scales) plus
  the flatbuffer's own structure, plus the profile's runtime code; ``sparse=True`` stores
  unstructured-pruned weights as non-zeros with a 1-bit mask;
- peak RAM = the TFLite Micro arena: planned activations (:mod:`wearprune.devices.memory`) plus
  its persistent structures;
- latency = (sum over kernels of MACs x cycles/MAC + other work x cycles/element + per-kernel
  overhead + per-invoke overhead) / clock; energy = latency x active power. A recurrent model runs
  as export ships it: the front end once, then the streaming step (every op of it) once per frame;
- peak RAM and flash of a recurrent model: the front end and the step graph (see ``arena_estimate``);
- battery life for a duty cycle: ``inferences_per_min`` inferences, asleep in between. The model
  only: sensors, radio and display are not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from wearprune.devices.instructions import kernel_instructions, load_core
from wearprune.devices.lower import (
    CONV,
    DENSE,
    DEPTHWISE,
    LAYOUT,
    MAC_KINDS,
    PAD,
    Lowered,
    lower,
    step_frames,
    streaming_graphs,
)
from wearprune.devices.memory import Buffer, align, greedy_plan, lifetimes
from wearprune.devices.profile import DeviceProfile, load_device

# TFLite Micro's persistent (tail) section, from its RecordingMicroAllocator categories on the
# basicmotions zoo models (calibration; other data sets and pruned models are the validation).
_EVAL_TENSOR_B = 24  # TfLiteEvalTensor per tensor
_NODE_B = 64  # NodeAndRegistration per kernel
_IO_TENSOR_B = 64  # persistent TfLiteTensor per model input/output
_FIXED_TAIL_B = 600
_PER_KERNEL_TAIL_B = 15
_OP_DATA_B = {CONV: 96, DEPTHWISE: 96, DENSE: 24, "elementwise": 56, PAD: 56, "pool": 56, "reduce": 56}
_PER_CHANNEL_B = 8  # output multiplier + shift per channel (see _per_channel)
# The .tflite flatbuffer around the weights: a fixed part and a cost per tensor (shape, name,
# quantisation, buffer alignment); least squares on the basicmotions zoo files (calibration rows of
# docs/cost_validation.md), BatchNorm folded as export does.
_FLATBUFFER_FIXED_B = {False: 730, True: 2560}
_FLATBUFFER_PER_TENSOR_B = {False: 212, True: 225}


@dataclass
class KernelCost:
    node: str
    op: str
    kind: str
    macs: int
    output_bytes: int
    cycles: float


@dataclass
class Cost:
    device: str
    dtype: str
    params: int
    macs: int
    weights_bytes: int
    model_flash_bytes: int  # the .tflite file
    flash_bytes: int  # model + runtime code
    arena_bytes: int  # TFLite Micro tensor arena: head + tail
    arena_head_bytes: int
    arena_tail_bytes: int
    latency_ms: float
    energy_uj: float
    battery_hours: float
    inferences_per_min: float
    fits: bool
    binding: str  # the limit that binds (or the tightest one when it fits)
    flash_use: float  # fraction of the device's flash
    ram_use: float
    recurrent: bool
    kernels: list[KernelCost] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def arena_estimate(low: Lowered, int8: bool) -> tuple[int, int]:
    """(head, tail) bytes of TFLite Micro's arena for this lowered graph. A model with a recurrent
    layer runs as export makes it: the front end over the window, then the step once per frame, one
    graph at a time; the arena is the larger of the two, and the head also holds the state kept
    between steps."""
    parts = streaming_graphs(low, int8)
    if parts is None:
        return _graph_arena(low, int8)
    front, step = parts
    state = sum(align(step.tensors[t].elems * (step.tensors[t].nbytes or (1 if int8 else 4)))
                for t in step.inputs[1:])
    head, tail = max(_graph_arena(front, int8), _graph_arena(step, int8), key=sum)
    return head + state, tail


def _graph_arena(low: Lowered, int8: bool) -> tuple[int, int]:
    nbytes = 1 if int8 else 4
    life = lifetimes(len(low.kernels), [(k.inputs, k.output) for k in low.kernels], low.inputs, low.outputs,
                     len(low.tensors))
    buffers = [Buffer(align(low.tensors[t].elems * (low.tensors[t].nbytes or nbytes)), a, b)
               for t, (a, b) in life.items()]
    for i, k in enumerate(low.kernels, start=1):
        if k.scratch:
            buffers.append(Buffer(align(k.scratch * 4), i, i))  # recurrent state and gates stay 32-bit
    head, _ = greedy_plan(buffers)
    n_consts = sum(k.const_tensors - _shared_const(k) for k in low.kernels)
    n_consts += len({(k.runtime_op, len(low.tensors[k.output].shape), low.tensors[k.output].layout)
                     for k in low.kernels if _shared_const(k)})  # the converter shares shape/perm constants
    tail = (_FIXED_TAIL_B + len(low.kernels) * (_NODE_B + _PER_KERNEL_TAIL_B)
            + (len(low.tensors) + n_consts) * _EVAL_TENSOR_B
            + (len(low.inputs) + len(low.outputs)) * _IO_TENSOR_B + (64 if int8 else 0)
            + sum(_OP_DATA_B.get(k.kind, 0) + _PER_CHANNEL_B * _per_channel(k, int8) for k in low.kernels))
    return head, tail


def _per_channel(k, int8: bool) -> int:
    """Channels TFLite Micro keeps an output multiplier and shift for: a conv's (float too), and an
    int8 fully-connected layer's (litert-torch quantises its weights per channel)."""
    if k.kind in (CONV, DEPTHWISE) or (int8 and k.kind == DENSE):
        return k.channels
    return 0


def _shared_const(k) -> int:
    """1 for kernels whose constant operand (shape, permutation, paddings, axes) is shared by the converter."""
    return 1 if k.kind in (LAYOUT, PAD, "reduce") else 0


def flash_estimate(low: Lowered, int8: bool, sparse_zeros: int = 0) -> tuple[int, int]:
    """(weights bytes, .tflite bytes). ``sparse_zeros``: weights known to be zero, stored as a mask.
    A model with a recurrent layer ships as export makes it: two flatbuffers, front end and step."""
    graphs = streaming_graphs(low, int8) or (low,)
    kernels = [k for g in graphs for k in g.kernels]
    w = sum(k.weights for k in kernels)
    b = sum(k.biases for k in kernels)
    if int8:
        weights = w + 4 * b + sum(12 * k.channels for k in kernels if k.kind in MAC_KINDS)
    else:
        weights = 4 * (w + b)
    if sparse_zeros:
        per = 1 if int8 else 4
        weights -= sparse_zeros * per
        weights += (w + 7) // 8  # one bit per weight says which are stored
    n_tensors = sum(len({t for k in g.kernels for t in (*k.inputs, k.output)} | set(g.inputs)) for g in graphs)
    n_tensors += sum(k.const_tensors for k in kernels)
    model = weights + len(graphs) * _FLATBUFFER_FIXED_B[int8] + n_tensors * _FLATBUFFER_PER_TENSOR_B[int8]
    return weights, model


def kernel_cycles(low: Lowered, device: DeviceProfile, dtype: str) -> list[KernelCost]:
    """Cycles of each kernel: the core's measured instruction model x the board's cycles per instruction where
    the profile has them (docs/target_cost.md), else MACs x cycles/MAC + work x cycles/element + per-op cost."""
    nbytes = 1 if dtype == "int8" else 4
    table = load_core(device.instruction_model)["ops"] if device.instruction_model else None
    out = []
    for k in low.kernels:
        size = low.tensors[k.output].nbytes or nbytes
        kind = "fp32" if size == 4 else dtype  # the float gate math of an int8 step runs at float speed
        if table is not None:
            cycles = kernel_instructions(table, low, k, dtype) * device.cycles_per_instruction
        elif k.kind in MAC_KINDS:
            cycles = k.macs * device.cycles_per_mac[kind] + device.op_overhead_cycles
        else:
            cycles = k.work * device.cycles_per_element[kind] + device.op_overhead_cycles
        out.append(KernelCost(k.node, k.runtime_op, k.kind, k.macs, low.tensors[k.output].elems * size, cycles))
    return out


def device_kernels(low: Lowered, device: DeviceProfile, dtype: str) -> tuple[list[KernelCost], int]:
    """(kernels as the device runs them for one window, interpreter invokes). A model with a recurrent
    layer runs its front end once and the streaming step once per frame: every step op pays its
    per-op cost each frame, and each call is an invoke."""
    parts = streaming_graphs(low, dtype == "int8")
    if parts is None:
        return kernel_cycles(low, device, dtype), 1
    front, step = parts
    frames = step_frames(low)
    per_frame = [replace(k, node=f"{k.node} (x{frames} frames)", macs=k.macs * frames, cycles=k.cycles * frames)
                 for k in kernel_cycles(step, device, dtype)]
    return kernel_cycles(front, device, dtype) + per_frame, 1 + frames


def invoke_cycles(device: DeviceProfile) -> float:
    """Cycles of one interpreter invoke beyond its kernels."""
    if device.instruction_model:
        return load_core(device.instruction_model)["per_invoke"] * device.cycles_per_instruction
    return device.inference_overhead_cycles


def estimate_cost(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], device: str | DeviceProfile,
                  *, int8: bool = True, inferences_per_min: float = 60.0, sparse: bool = False,
                  reserved_ram_kb: float = 0.0, lowered: Lowered | None = None) -> Cost:
    """Estimated cost of one inference of ``model`` (batch 1, shaped like ``example``: a tensor, or a
    tuple with one tensor per input) on ``device``."""
    dev = load_device(device)
    dtype = "int8" if int8 else "fp32"
    low = lowered or lower(model, example, int8=int8)
    params = sum(p.numel() for p in model.parameters())
    zeros = sum(int((p == 0).sum()) for n, p in model.named_parameters() if n.endswith("weight")) if sparse else 0
    weights_b, model_b = flash_estimate(low, int8, zeros)
    head, tail = arena_estimate(low, int8)
    arena = head + tail
    kernels, invokes = device_kernels(low, dev, dtype)
    cycles = sum(k.cycles for k in kernels) + invoke_cycles(dev) * invokes
    latency_ms = cycles / (dev.clock_mhz * 1e3)
    energy_uj = latency_ms * dev.active_mw  # mW x ms = uJ
    battery = _battery_hours(dev, latency_ms, energy_uj, inferences_per_min)
    flash_total = model_b + int(dev.runtime_flash_kb * 1024)
    flash_use = flash_total / (dev.flash_kb * 1024)
    ram_use = (arena + reserved_ram_kb * 1024) / (dev.sram_kb * 1024)
    duty = latency_ms * inferences_per_min / 60_000
    limits = {"flash": flash_use, "RAM": ram_use, "time (latency x rate)": duty}
    binding = max(limits, key=limits.get)
    notes = []
    if low.has_recurrent:
        if invokes > 1:  # the streaming step export ships
            notes.append(f"the recurrent layer runs as export's streaming step, one invoke per frame "
                         f"({invokes - 1} frames): latency is the front end once plus every step op each frame; "
                         "the arena is the larger of the two graphs', plus the state kept between steps")
        else:
            notes.append("recurrent layers are costed as a streaming step kernel (state + gates as scratch); "
                         "litert-torch unrolls them, which TFLite Micro cannot run")
    return Cost(device=dev.name, dtype=dtype, params=params, macs=low.macs, weights_bytes=weights_b,
                model_flash_bytes=model_b, flash_bytes=flash_total, arena_bytes=arena, arena_head_bytes=head,
                arena_tail_bytes=tail, latency_ms=latency_ms, energy_uj=energy_uj, battery_hours=battery,
                inferences_per_min=inferences_per_min, fits=all(v <= 1.0 for v in limits.values()),
                binding=binding, flash_use=flash_use, ram_use=ram_use, recurrent=low.has_recurrent,
                kernels=kernels, notes=notes)


def _battery_hours(dev: DeviceProfile, latency_ms: float, energy_uj: float, per_min: float) -> float:
    """Hours on the profile's battery running only this model at ``per_min`` inferences a minute."""
    busy_s = min(latency_ms * per_min / 1000, 60.0)
    energy_per_min_uj = energy_uj * per_min + dev.sleep_uw * (60.0 - busy_s)
    avg_mw = energy_per_min_uj / 60.0 / 1000.0
    battery_mwh = dev.battery_mah * dev.battery_v
    return battery_mwh / avg_mw

