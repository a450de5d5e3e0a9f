"""The model as a microcontroller runtime sees it: a list of kernels and the tensors between them.

Traced with ``torch.fx`` like the pruning graph, then lowered the way litert-torch lowers a PyTorch
model to TFLite, because the arena TensorFlow Lite Micro plans depends on exactly which tensors
exist:

- convolutions run channel-last: a ``[1, C, L]`` tensor entering a convolution is reshaped to
  ``[1, C, 1, L]`` and transposed to ``[1, 1, L, C]`` (two tensors), and transposed back where a
  layout-sensitive op (pad, mean, flatten, view, linear, recurrent) reads it;
- BatchNorm after a convolution or linear layer is folded into it; ReLU/ReLU6 after a
  convolution, linear layer or add is fused into it; dropout and identity vanish;
- a convolution's padding is free when it is VALID or TF-SAME, otherwise an explicit PAD tensor;
- GRU/LSTM layers are one recurrent kernel here (MACs and time), which also carries the streaming
  step export makes of the layer (one FULLY_CONNECTED per gate and the gate math, int8 where
  litert-torch quantises it): the arena is planned on the front end and that step
  (:func:`streaming_graphs`), the graphs firmware runs; litert-torch itself would unroll the layer.

An op this lowering does not know raises :class:`UnsupportedOpError` naming the op and the node.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from wearprune.graph.dependency import UnsupportedOpError
from wearprune.profile import _conv_macs, _linear_macs, _rnn_macs

CONV, DEPTHWISE, DENSE, RECURRENT, ELEMENTWISE, POOL, REDUCE, LAYOUT, PAD, CONCAT = (
    "conv", "depthwise", "dense", "recurrent", "elementwise", "pool", "reduce", "layout", "pad", "concat")
MAC_KINDS = (CONV, DEPTHWISE, DENSE, RECURRENT)
_CONST_OPERANDS = {LAYOUT: 1, PAD: 1, REDUCE: 1}  # shape / permutation / paddings / axes constants


@dataclass
class Tensor:
    id: int
    shape: tuple[int, ...]  # batch 1
    layout: str = "torch"  # "torch" (as PyTorch lays it out) or "nhwc" (channel-last, inside conv regions)
    nbytes: int = 0  # bytes per element where it differs from the graph's dtype (float in an int8 graph)

    @property
    def elems(self) -> int:
        n = 1
        for s in self.shape:
            n *= int(s)
        return n


@dataclass
class Kernel:
    kind: str
    runtime_op: str  # the TFLite builtin it becomes (CONV_2D, ADD, ...)
    node: str  # fx node (module path or function) it comes from
    inputs: list[int]
    output: int
    macs: int = 0
    weights: int = 0  # weight elements
    biases: int = 0  # bias elements (a conv always gets one after BatchNorm folding)
    channels: int = 0  # output channels: per-channel quantisation parameters in int8
    work: int = 0  # output elements: the work of kernels without MACs
    scratch: int = 0  # elements of working memory besides inputs and outputs (recurrent state, gates)
    step: Lowered | None = None  # a recurrent layer's streaming step graph (fp32), where export can make one

    @property
    def const_tensors(self) -> int:
        return (1 if self.weights else 0) + (1 if self.biases else 0) + _CONST_OPERANDS.get(self.kind, 0)


@dataclass
class Lowered:
    tensors: list[Tensor] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(k.macs for k in self.kernels)

    @property
    def has_recurrent(self) -> bool:
        return any(k.kind == RECURRENT for k in self.kernels)


_FUSABLE_PRODUCERS = {CONV, DEPTHWISE, DENSE, "add"}
_ACT_MODULES = (nn.ReLU, nn.ReLU6)
_ELEMENTWISE_MODULES = (nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU, nn.Softmax)
_BINARY = {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
           torch.add: "add", torch.sub: "sub", torch.mul: "mul", torch.div: "div"}
_BINARY_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div"}
_VIEW_FUNCS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
_VIEW_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze"}
_PERMUTE_FUNCS = {torch.transpose, torch.permute}
_PERMUTE_METHODS = {"transpose", "permute"}
_ELEMENTWISE_FUNCS = {torch.relu, F.relu, torch.sigmoid, torch.tanh, F.gelu, F.silu, torch.softmax, F.softmax}
_GATES = {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}
_TFLITE_NAMES = {"SIGMOID": "LOGISTIC"}  # PyTorch's name -> the TFLite builtin


def lower(model: nn.Module, example: torch.Tensor | tuple, *, int8: bool = False) -> Lowered:
    """Lower ``model`` for one window shaped like ``example[:1]`` (a tuple: one tensor per input).

    ``int8``: litert-torch's quantized graphs keep elementwise ops in PyTorch's layout (each
    operand transposed back), which changes the tensors the arena holds.
    """
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # fx raises several types for dynamic code
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsupportedOpError(
            f"the cost model cannot trace {type(model).__name__} with torch.fx ({first}); "
            "make forward free of data-dependent control flow") from None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            lowerer = _Lowerer(gm, int8)
            examples = example if isinstance(example, tuple) else (example,)
            lowerer.run(*(torch.as_tensor(e[:1], dtype=torch.float32) for e in examples))
    finally:
        model.train(was_training)
    return lowerer.out


class _Lowerer(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, int8: bool):
        super().__init__(gm)
        self.int8 = int8
        self.out = Lowered()
        self.modules = dict(gm.named_modules())
        self.value: dict[fx.Node, object] = {}  # fx node -> tensor id (or tuple of ids / None)
        self.producer: dict[int, str] = {}  # tensor id -> kind of kernel that wrote it ("add" for adds)
        self.converted: dict[tuple[int, str], int] = {}  # (tensor id, layout) -> converted tensor id

    # -- plumbing ---------------------------------------------------------------------------------
    def _tensor(self, shape, layout="torch") -> int:
        t = Tensor(len(self.out.tensors), tuple(int(s) for s in shape), layout)
        self.out.tensors.append(t)
        return t.id

    def _kernel(self, kind, runtime_op, node, inputs, shape, layout="torch", producer=None, **kw) -> int:
        out = self._tensor(shape, layout)
        k = Kernel(kind, runtime_op, node, list(inputs), out, **kw)
        k.work = k.work or self.out.tensors[out].elems
        self.out.kernels.append(k)
        self.producer[out] = producer or kind
        return out

    def t(self, tid: int) -> Tensor:
        return self.out.tensors[tid]

    def _to_nhwc(self, tid: int, node: str) -> int:
        t = self.t(tid)
        if t.layout == "nhwc":
            return tid
        key = (tid, "nhwc")
        if key not in self.converted:
            back = self.converted.get((tid, "from4d"))
            if back is not None:  # a tensor just transposed back from channel-last: transpose its 4-D form
                _, c, h, w = self.t(back).shape
                self.converted[key] = self._kernel(LAYOUT, "TRANSPOSE", node, [back], (1, h, w, c), "nhwc")
            elif len(t.shape) == 3:  # [1, C, L] -> [1, C, 1, L] -> [1, 1, L, C]
                _, c, length = t.shape
                r = self._kernel(LAYOUT, "RESHAPE", node, [tid], (1, c, 1, length))
                self.converted[key] = self._kernel(LAYOUT, "TRANSPOSE", node, [r], (1, 1, length, c), "nhwc")
            elif len(t.shape) == 4:  # [1, C, H, W] -> [1, H, W, C]
                _, c, h, w = t.shape
                self.converted[key] = self._kernel(LAYOUT, "TRANSPOSE", node, [tid], (1, h, w, c), "nhwc")
            else:
                raise UnsupportedOpError(f"convolution on a rank-{len(t.shape)} tensor at node {node!r}")
        return self.converted[key]

    def _to_torch(self, tid: int, node: str, keep_4d: bool = False) -> int:
        t = self.t(tid)
        if t.layout == "torch":
            return tid
        key = (tid, "torch4" if keep_4d else "torch")
        if key not in self.converted:
            _, h, w, c = t.shape
            tr = self._kernel(LAYOUT, "TRANSPOSE", node, [tid], (1, c, h, w))
            self.converted[(tid, "torch4")] = tr
            if not keep_4d:
                self.converted[key] = (self._kernel(LAYOUT, "RESHAPE", node, [tr], (1, c, w)) if h == 1 else tr)
                self.converted[(self.converted[key], "from4d")] = tr
        return self.converted[key]

    # -- the walk ---------------------------------------------------------------------------------
    def run_node(self, n: fx.Node):
        real = super().run_node(n)
        value = getattr(self, f"_op_{n.op}")(n, real)
        if self.int8 and isinstance(value, int) and self.t(value).layout == "nhwc" and _feeds_binary(n, self.modules):
            # litert-torch's int8 graphs transpose such a tensor back at once; later convolutions read
            # it through one more TRANSPOSE of the 4-D intermediate
            value = self._to_torch(value, n.name)
        self.value[n] = value
        return real

    def _in(self, n: fx.Node, i: int = 0):
        return self.value[n.args[i]]

    def _op_placeholder(self, n, real):
        if isinstance(real, (tuple, list)):  # a *args input: one graph input per tensor
            return tuple(self._input(r) for r in real)
        return self._input(real)

    def _input(self, real) -> int:
        tid = self._tensor(real.shape[1:] and (1, *real.shape[1:]))
        self.out.inputs.append(tid)
        return tid

    def _op_get_attr(self, n, real):
        return None  # a constant: lives in flash with the weights

    def _op_output(self, n, real):
        outs = n.args[0] if isinstance(n.args[0], (tuple, list)) else (n.args[0],)
        for o in outs:
            tid = self.value.get(o)
            if isinstance(tid, int):
                tid = self._to_torch(tid, "output")
                self.out.outputs.append(tid)
        return None

    def _op_call_module(self, n, real):
        m = self.modules[n.target]
        name = str(n.target)
        x = self._in(n) if n.args else None
        inp = self.env[n.args[0]] if n.args else None  # the real input, for MAC counts
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return self._conv(m, x, real, name, _conv_macs(m, inp, real))
        if isinstance(m, nn.Linear):
            return self._linear(m, x, real, name, _linear_macs(m, inp, real))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if self.producer.get(x) in (CONV, DEPTHWISE, DENSE):
                return x  # folded into the weights before conversion
            return self._elementwise("MUL", name, [x], real)
        if isinstance(m, _ACT_MODULES):
            return self._activation(x, name, real)
        if isinstance(m, nn.Flatten):
            return self._view(x, real, name)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return x
        if isinstance(m, _ELEMENTWISE_MODULES):
            return self._elementwise(type(m).__name__.upper(), name, [x], real)
        if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d, nn.MaxPool2d, nn.AvgPool2d)):
            xin = self._to_nhwc(x, name)
            op = "MAX_POOL_2D" if "Max" in type(m).__name__ else "AVERAGE_POOL_2D"
            return self._kernel(POOL, op, name, [xin], _nhwc_shape(real), "nhwc")
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            xin = self._to_torch(x, name, keep_4d=True)
            return self._kernel(REDUCE, "MEAN", name, [xin], (1, real.shape[1]))
        if isinstance(m, (nn.ConstantPad1d, nn.ZeroPad1d, nn.ConstantPad2d, nn.ZeroPad2d)):
            xin = self._to_torch(x, name)
            return self._kernel(PAD, "PAD", name, [xin], (1, *real.shape[1:]))
        if type(m) in _GATES:
            return self._recurrent(m, x, real, name, _rnn_macs(m, inp, real))
        raise UnsupportedOpError(
            f"the cost model does not know module {type(m).__name__} at node {name!r}; "
            "replace it with a supported layer or report it")

    def _op_call_function(self, n, real):
        return self._function(n, n.target, real, method=False)

    def _op_call_method(self, n, real):
        return self._function(n, n.target, real, method=True)

    # -- functions and methods ------------------------------------------------------------------
    def _function(self, n, target, real, method: bool):
        name = n.name
        if target is operator.getitem and isinstance(self._in(n), tuple):
            return self._in(n)[n.args[1]]  # (output, state) of a recurrent layer
        if not isinstance(real, torch.Tensor):
            return None  # sizes and other Python values
        if method and target in ("size", "dim", "contiguous", "float", "to", "clone", "detach"):
            return self._in(n)
        kind = _BINARY_METHODS.get(target) if method else _BINARY.get(target)
        if kind:
            ins = [self.value[a] for a in n.args[:2] if isinstance(self.value.get(a) if isinstance(a, fx.Node)
                                                                  else None, int)]
            # litert-torch adds in PyTorch's layout when an operand is (or already was made) torch-laid
            if self.int8 or any(self.t(i).layout == "torch" or (i, "torch") in self.converted for i in ins):
                ins = [self._to_torch(i, name) for i in ins]
            layout = self.t(ins[0]).layout
            return self._kernel(ELEMENTWISE, kind.upper(), name, ins, _shape_in(real, layout), layout,
                                producer="add" if kind == "add" else ELEMENTWISE)
        if (not method and target in (torch.relu, F.relu)) or (method and target == "relu"):
            return self._activation(self._in(n), name, real)
        if (not method and target in _ELEMENTWISE_FUNCS) or (method and target in ("sigmoid", "tanh", "softmax")):
            return self._elementwise(getattr(target, "__name__", str(target)).upper(), name, [self._in(n)], real)
        if (not method and target in _VIEW_FUNCS) or (method and target in _VIEW_METHODS):
            return self._view(self._in(n), real, name)
        if (not method and target in _PERMUTE_FUNCS) or (method and target in _PERMUTE_METHODS):
            x = self._to_torch(self._in(n), name)
            return self._kernel(LAYOUT, "TRANSPOSE", name, [x], (1, *real.shape[1:]))
        if (not method and target in (torch.mean, torch.sum, torch.amax)) or (method and target in ("mean", "sum")):
            x = self._to_torch(self._in(n), name)
            return self._kernel(REDUCE, "MEAN", name, [x], (1, *real.shape[1:]))
        if not method and target in (torch.cat, torch.concat):
            ins = [self.value[a] for a in n.args[0]]
            layouts = {self.t(i).layout for i in ins}
            if len(layouts) > 1:
                ins = [self._to_torch(i, name) for i in ins]
            layout = self.t(ins[0]).layout
            return self._kernel(CONCAT, "CONCATENATION", name, ins, _shape_in(real, layout), layout)
        if not method and target is operator.getitem:
            x = self._to_torch(self._in(n), name)
            index = n.args[1] if isinstance(n.args[1], tuple) else (n.args[1],)
            if all(isinstance(i, slice) for i in index):
                return self._kernel(LAYOUT, "SLICE", name, [x], (1, *real.shape[1:]))
            kept = tuple(1 if isinstance(i, int) else s for i, s in zip(index, self.t(x).shape)) + tuple(
                self.t(x).shape[len(index):])  # an integer index: SLICE keeps the axis, RESHAPE drops it
            sliced = self._kernel(LAYOUT, "SLICE", name, [x], (1, *kept[1:]))
            return self._kernel(LAYOUT, "RESHAPE", name, [sliced], (1, *real.shape[1:]))
        what = getattr(target, "__name__", str(target))
        raise UnsupportedOpError(
            f"the cost model does not know {'method' if method else 'function'} {what!r} at node {name!r}; "
            "rewrite it with supported ops or report it")

    # -- kernels ----------------------------------------------------------------------------------
    def _conv(self, m, x, real, name, macs: int):
        xin = self._to_nhwc(x, name)
        t = self.t(xin)
        spatial = t.shape[1:3]
        k, s, d = _as_2d(m.kernel_size, 1), _as_2d(m.stride, 1), _as_2d(m.dilation, 1)
        if isinstance(m.padding, str):
            p = (0, 0) if m.padding == "valid" else tuple((d[i] * (k[i] - 1)) // 2 for i in range(2))
        else:
            p = _as_2d(m.padding, 0)
        if any(p) and not _is_tf_same(spatial, k, s, d, p):
            padded = (1, spatial[0] + 2 * p[0], spatial[1] + 2 * p[1], t.shape[3])
            xin = self._kernel(PAD, "PAD", name, [xin], padded, "nhwc")
        depthwise = m.groups > 1 and m.groups == m.in_channels
        return self._kernel(DEPTHWISE if depthwise else CONV, "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
                            name, [xin], _nhwc_shape(real), "nhwc", macs=macs,
                            weights=m.weight.numel(), biases=m.out_channels, channels=m.out_channels)

    def _linear(self, m, x, real, name, macs: int):
        xin = self._to_torch(x, name)
        return self._kernel(DENSE, "FULLY_CONNECTED", name, [xin], (1, *real.shape[1:]), macs=macs,
                            weights=m.weight.numel(),
                            biases=m.out_features, channels=m.out_features)

    def _activation(self, x, name, real):
        if self.producer.get(x) in _FUSABLE_PRODUCERS:
            return x  # fused into the producing kernel
        return self._elementwise("RELU", name, [x], real)

    def _elementwise(self, op, name, ins, real):
        layout = self.t(ins[0]).layout
        op = _TFLITE_NAMES.get(op, op)
        return self._kernel(ELEMENTWISE, op, name, ins, _shape_in(real, layout), layout)

    def _view(self, x, real, name):
        shape = (1, *real.shape[1:])
        t = self.t(x)
        if t.layout == "torch" and _squeezed(t.shape) == _squeezed(shape) and len(t.shape) == len(shape):
            return x
        if t.layout == "torch" and t.shape == shape:
            return x
        xin = self._to_torch(x, name)
        if self.t(xin).shape == shape:
            return xin
        if self.producer.get(xin) == REDUCE and _squeezed(self.t(xin).shape) == _squeezed(shape):
            return xin  # MEAN already dropped the unit axes
        return self._kernel(LAYOUT, "RESHAPE", name, [xin], shape)

    def _recurrent(self, m, x, real, name, macs: int):
        xin = self._to_torch(x, name)
        seq = real[0] if isinstance(real, tuple) else real
        gates = _GATES[type(m)]
        dirs = 2 if m.bidirectional else 1
        weights = sum(p.numel() for pn, p in m.named_parameters() if pn.startswith("weight"))
        biases = sum(p.numel() for pn, p in m.named_parameters() if pn.startswith("bias"))
        state = m.num_layers * dirs * m.hidden_size * (2 if isinstance(m, nn.LSTM) else 1)
        out = self._kernel(RECURRENT, type(m).__name__.upper(), name, [xin], (1, *seq.shape[1:]), macs=macs,
                           weights=weights, biases=biases, channels=gates * m.hidden_size * dirs,
                           scratch=state + gates * m.hidden_size * dirs, step=_cell_step(m))
        return (out, None) if isinstance(real, tuple) else out


def streaming_graphs(low: Lowered, int8: bool) -> tuple[Lowered, Lowered] | None:
    """(front end, step): the two graphs firmware runs for a model whose one recurrent layer has a
    step form (export's streaming step), else None. The kernels after the recurrent layer run in the
    step on its output; the slices that pick the last frame of the sequence vanish there."""
    rec = [i for i, k in enumerate(low.kernels) if k.kind == RECURRENT]
    if len(rec) != 1 or low.kernels[rec[0]].step is None:
        return None
    r = low.kernels[rec[0]]
    front = Lowered(low.tensors, low.kernels[:rec[0]], low.inputs, [r.inputs[0]])
    cell = r.step
    step = Lowered(list(cell.tensors), list(cell.kernels), list(cell.inputs))
    alias = {r.output: cell.outputs[0]}  # full-graph tensor -> step tensor
    for k in low.kernels[rec[0] + 1:]:
        if any(t not in alias for t in k.inputs):
            return None  # reads something besides the recurrent output: not the conv + RNN + head shape
        if k.kind == LAYOUT:
            alias[k.output] = alias[k.inputs[0]]
            continue
        t = low.tensors[k.output]
        step.tensors.append(Tensor(len(step.tensors), t.shape, t.layout))
        alias[k.output] = step.tensors[-1].id
        step.kernels.append(Kernel(**{**vars(k), "inputs": [alias[i] for i in k.inputs], "output": alias[k.output]}))
    if any(t not in alias for t in low.outputs):
        return None
    step.outputs = [alias[t] for t in low.outputs] + cell.outputs[1:]
    return front, int8_step(step) if int8 else step


def step_frames(low: Lowered) -> int:
    """Frames per window the streaming step runs: the recurrent layer's sequence length ([1, T, F])."""
    r = next(k for k in low.kernels if k.kind == RECURRENT)
    return low.tensors[r.inputs[0]].shape[1]


def _cell_step(m: nn.Module) -> Lowered | None:
    """The streaming step export makes of this layer (one Linear per gate, the gate math as
    elementwise ops), lowered; None where export has no step form (bidirectional, nn.RNN, projections)."""
    from wearprune.export.streaming import GRUStep, LSTMStep

    kind = {nn.GRU: GRUStep, nn.LSTM: LSTMStep}.get(type(m))
    if kind is None or m.bidirectional or getattr(m, "proj_size", 0) or not m.batch_first:
        return None
    per_layer = 2 if isinstance(m, nn.LSTM) else 1
    states = tuple(torch.zeros(1, m.hidden_size) for _ in range(m.num_layers * per_layer))
    return lower(kind(m, nn.Identity()), (torch.zeros(1, m.input_size), *states))


# What litert-torch's pt2e quantizer leaves in int8 in a recurrent step; the gate adds, subtractions
# and activations stay float, with QUANTIZE / DEQUANTIZE between (seen in its GRU and LSTM steps).
_INT8_STEP_OPS = {"FULLY_CONNECTED", "MUL"}


def int8_step(step: Lowered) -> Lowered:
    """``step`` (lowered fp32) as litert-torch's int8 conversion makes it: mixed int8 and float
    tensors, one QUANTIZE or DEQUANTIZE per tensor that crosses, placed before its first reader. A
    state input read by any float op stays a float input (the GRU's h); an output is int8 where an
    int8 copy is made anyway, else as produced (the LSTM's c stays float)."""
    out = Lowered()
    new_id: dict[int, int] = {}
    crossed: dict[int, int] = {}  # old tensor id -> its converted copy (new id)
    readers: dict[int, set[bool]] = {}
    for k in step.kernels:
        for t in k.inputs:
            readers.setdefault(t, set()).add(k.runtime_op in _INT8_STEP_OPS)

    def add_tensor(old: int, int8: bool) -> int:
        t = step.tensors[old]
        out.tensors.append(Tensor(len(out.tensors), t.shape, t.layout, 1 if int8 else 4))
        return len(out.tensors) - 1

    def read(old: int, int8: bool, node: str) -> int:
        t = new_id[old]
        if (out.tensors[t].nbytes == 1) == int8:
            return t
        if old not in crossed:
            crossed[old] = add_tensor(old, int8)
            op = "QUANTIZE" if int8 else "DEQUANTIZE"
            out.kernels.append(Kernel(ELEMENTWISE, op, node, [t], crossed[old], work=out.tensors[t].elems))
        return crossed[old]

    for t in step.inputs:
        new_id[t] = add_tensor(t, int8=False not in readers.get(t, {True}))
        out.inputs.append(new_id[t])
    for k in step.kernels:
        int8 = k.runtime_op in _INT8_STEP_OPS
        ins = [read(t, int8, k.node) for t in k.inputs]
        new_id[k.output] = add_tensor(k.output, int8)
        out.kernels.append(Kernel(**{**vars(k), "inputs": ins, "output": new_id[k.output]}))
    # an output is the int8 copy where one exists (a state the next layer reads), else as produced
    out.outputs = [crossed[t] if t in crossed and out.tensors[crossed[t]].nbytes == 1 else new_id[t]
                   for t in step.outputs]
    return out


def _feeds_binary(n: fx.Node, modules: dict) -> bool:
    """Is this value read directly by an add/mul? (Checked at the end of a fused conv-BN-ReLU chain.)"""
    for u in n.users:
        if u.op == "call_module" and isinstance(modules.get(u.target), (nn.Identity, nn.Dropout)):
            if _feeds_binary(u, modules):
                return True
        elif (u.op == "call_function" and u.target in _BINARY) or (u.op == "call_method" and u.target in
                                                                    _BINARY_METHODS):
            return True
    return False


def _shape_in(real: torch.Tensor, layout: str) -> tuple[int, ...]:
    return _nhwc_shape(real) if layout == "nhwc" else (1, *real.shape[1:])


def _nhwc_shape(real: torch.Tensor) -> tuple[int, ...]:
    if real.dim() == 3:  # [B, C, L]
        return (1, 1, int(real.shape[2]), int(real.shape[1]))
    if real.dim() == 4:  # [B, C, H, W]
        return (1, int(real.shape[2]), int(real.shape[3]), int(real.shape[1]))
    return (1, *real.shape[1:])


def _as_2d(v, fill: int) -> tuple[int, int]:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    return (int(v[0]), int(v[1])) if len(v) == 2 else (fill, int(v[0]))


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(int(s) for s in shape if s != 1)


def _is_tf_same(spatial, k, s, d, p) -> bool:
    """TFLite's SAME padding puts the odd pixel at the end; PyTorch pads both sides equally."""
    for size, ki, si, di, pi in zip(spatial, k, s, d, p):
        out = -(-size // si)
        total = max((out - 1) * si + di * (ki - 1) + 1 - size, 0)
        if pi != total // 2 or pi != total - total // 2:
            return False
    return True
