"""The model as a microcontroller runtime sees it: a list of kernels and the tensors between them.

Traced with ``torch.fx`` like the pruning graph, then lowered the way litert-torch lowers a PyTorch
model to TFLite, because the arena TensorFlow Lite Micro plans depends on exactly which tensors
exist:

- convolutions run channel-last: a ``[1, C, L]`` tensor entering a convolution is reshaped to
  ``[1, C, 1, L]`` and transposed to ``[1, 1, L, C]`` (two tensors), and transposed back where a
  layout-sensitive op (pad, mean, flatten, view, linear, recurrent, and most activations after a
  1-D convolution) reads it;
- BatchNorm after a convolution or linear layer is folded into it; ReLU/ReLU6 after a
  convolution, linear layer or add is fused into it; dropout and identity vanish;
- normalisation and activations litert-torch decomposes (LayerNorm, GroupNorm, SiLU, Mish...) are
  the elementwise and reduce kernels it makes of them; in an int8 graph those its quantizer leaves
  in float hold 4-byte tensors, with a DEQUANTIZE before and a QUANTIZE after;
- a convolution's padding is free when it is VALID or TF-SAME, otherwise an explicit PAD tensor;
- GRU/LSTM layers are one recurrent kernel here (MACs and time), which also carries the streaming
  step export makes of the layer (one FULLY_CONNECTED per gate and the gate math, int8 where
  litert-torch quantises it): the arena is planned on the front end and that step
  (:func:`streaming_graphs`), the graphs firmware runs; litert-torch itself would unroll the layer.

What each module type becomes is its layer rule's ``lower`` (:mod:`wearprune.layers`), which emits
kernels through :class:`Lowerer`'s public methods. An op this lowering does not know raises
:class:`UnsupportedOpError` naming the op and the node.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from wearprune.graph.dependency import UnsupportedOpError
from wearprune.layers import (
    CONCAT,
    CONV,
    DENSE,
    DEPTHWISE,
    ELEMENTWISE,
    LAYOUT,
    MAC_KINDS,
    PAD,
    POOL,
    RECURRENT,
    REDUCE,
    Call,
    first_window,
    rule_for,
    trace,
)

__all__ = ["CONCAT", "CONV", "DENSE", "DEPTHWISE", "ELEMENTWISE", "LAYOUT", "MAC_KINDS", "PAD", "POOL", "RECURRENT",
           "REDUCE", "Kernel", "Lowered", "Lowerer", "Tensor", "int8_step", "lower", "step_frames", "streaming_graphs"]
_CONST_OPERANDS = {LAYOUT: 1, PAD: 1, REDUCE: 1}  # shape / permutation / paddings / axes constants

CONST = "const"  # the value of a parameter, or of arithmetic on parameters only (folded by the converter)
# What a kernel computes in, in an int8 graph (see Lowerer.kernel).
INT8, FLOAT, SAME, BOOL = "int8", "float", "same", "bool"


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
# The function and method tables below cover what the dependency graph follows (graph/dependency.py).
_BINARY = {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
           torch.add: "add", torch.sub: "sub", torch.mul: "mul", torch.div: "div", operator.iadd: "add",
           operator.imul: "mul", torch.maximum: "maximum", torch.minimum: "minimum"}
_BINARY_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "add_": "add", "mul_": "mul",
                   "maximum": "maximum", "minimum": "minimum"}
_VIEW_FUNCS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
_VIEW_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}
_PERMUTE_FUNCS = {torch.transpose, torch.permute, torch.movedim}
_PERMUTE_METHODS = {"transpose", "permute", "movedim", "t"}
_SAME_METHODS = {"size", "dim", "contiguous", "float", "to", "clone", "detach", "type_as"}
_UNARY_OPS = {torch.abs: "ABS", torch.neg: "NEG", operator.neg: "NEG"}
_UNARY_METHOD_OPS = {"abs": "ABS", "neg": "NEG"}
# Functions lower exactly as the module they equal does (that module's layer rule).
_FUNCTION_MODULES = {
    torch.relu: nn.ReLU, F.relu: nn.ReLU, F.relu6: nn.ReLU6, torch.sigmoid: nn.Sigmoid, F.sigmoid: nn.Sigmoid,
    torch.tanh: nn.Tanh, F.tanh: nn.Tanh, F.gelu: nn.GELU, F.silu: nn.SiLU, F.hardswish: nn.Hardswish,
    F.hardsigmoid: nn.Hardsigmoid, F.mish: nn.Mish, F.softplus: nn.Softplus, F.leaky_relu: nn.LeakyReLU,
    F.elu: nn.ELU, F.dropout: nn.Dropout, F.dropout1d: nn.Dropout1d, F.dropout2d: nn.Dropout2d,
    F.max_pool1d: nn.MaxPool1d, F.max_pool2d: nn.MaxPool2d, F.avg_pool1d: nn.AvgPool1d, F.avg_pool2d: nn.AvgPool2d,
    F.adaptive_avg_pool1d: nn.AdaptiveAvgPool1d, F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
    F.adaptive_max_pool1d: nn.AdaptiveMaxPool1d, F.adaptive_max_pool2d: nn.AdaptiveMaxPool2d,
}
_METHOD_MODULES = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
_SOFTMAX_FUNCS = {torch.softmax: nn.Softmax, F.softmax: nn.Softmax, torch.log_softmax: nn.LogSoftmax,
                  F.log_softmax: nn.LogSoftmax}


def lower(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], *, int8: bool = False) -> Lowered:
    """Lower ``model`` for one window shaped like ``example[:1]`` (a tuple: one tensor per input).

    ``int8``: litert-torch's quantized graphs keep elementwise ops in PyTorch's layout (each
    operand transposed back), and run the ops its quantizer does not annotate (normalisation,
    SiLU, Mish, Softplus...) in float between DEQUANTIZE and QUANTIZE; both change the arena.
    """
    inputs = first_window(example)
    try:
        gm = trace(model)
    except Exception as e:  # fx raises several types for dynamic code
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsupportedOpError(
            f"the cost model cannot trace {type(model).__name__} with torch.fx ({first}); "
            "make forward free of data-dependent control flow") from None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            lowerer = Lowerer(gm, int8)
            lowerer.run(*(torch.as_tensor(e, dtype=torch.float32) for e in inputs))
    finally:
        model.train(was_training)
    return lowerer.out


class Lowerer(fx.Interpreter):
    """Walks the trace and emits kernels. A module call goes to its layer rule's
    ``lower(lowerer, call)``, which uses the public methods below (``kernel``, ``to_nhwc``,
    ``to_torch``, ``elementwise``, ``activation``, ``view``...) and returns the output tensor id."""

    def __init__(self, gm: fx.GraphModule, int8: bool):
        super().__init__(gm)
        self.int8 = int8
        self.out = Lowered()
        self.modules = dict(gm.named_modules())
        self.value: dict[fx.Node, object] = {}  # fx node -> tensor id (or tuple of ids / None)
        self.producer: dict[int, str] = {}  # tensor id -> kind of kernel that wrote it ("add" for adds)
        self.converted: dict[tuple[int, str], int] = {}  # (tensor id, layout or dtype) -> converted tensor id

    # -- public surface for layer rules ----------------------------------------------------------
    def tensor(self, tid: int) -> Tensor:
        return self.out.tensors[tid]

    t = tensor  # short name used throughout

    def module_of(self, node) -> nn.Module | None:
        """The module an fx node calls (None for functions, methods and constants)."""
        if isinstance(node, fx.Node) and node.op == "call_module":
            return self.modules.get(node.target)
        return None

    def producer_of(self, tid: int) -> str | None:
        """The kind of kernel that wrote ``tid`` ("add" for adds), None for a graph input."""
        return self.producer.get(tid)

    def kernel(self, kind: str, runtime_op: str, node: str, inputs: list[int], shape: tuple[int, ...],
               layout: str = "torch", producer: str | None = None, dtype: str | None = None, **kw) -> int:
        """Emit one kernel writing a new tensor of ``shape``; returns its id.

        ``dtype`` matters in int8 graphs: ``int8`` (the default; float inputs get a QUANTIZE),
        ``float`` (an op litert-torch's quantizer leaves in float: int8 inputs get a DEQUANTIZE),
        ``same`` (the default for layout and reduce kernels: the first input's type), ``bool``.
        """
        dtype = dtype or (SAME if kind in (LAYOUT, REDUCE) else INT8)
        nbytes = 0
        if self.int8:
            if dtype == FLOAT:
                inputs, nbytes = [self._as_float(i, node) for i in inputs], 4
            elif dtype == INT8:
                inputs = [self._as_int8(i, node) for i in inputs]
            elif dtype == SAME and inputs:
                nbytes = self.t(inputs[0]).nbytes
        if dtype == BOOL:
            nbytes = 1
        return self._emit(kind, runtime_op, node, inputs, shape, layout, producer, nbytes, **kw)

    def to_nhwc(self, tid: int, node: str) -> int:
        """``tid`` channel-last ([1, H, W, C]; a [1, C, L] tensor becomes [1, 1, L, C]), as convolutions read it."""
        t = self.t(tid)
        if t.layout == "nhwc":
            return tid
        key = (tid, "nhwc")
        if key not in self.converted:
            back = self.converted.get((tid, "from4d"))
            if back is not None:  # a tensor just transposed back from channel-last: transpose its 4-D form
                _, c, h, w = self.t(back).shape
                self.converted[key] = self.kernel(LAYOUT, "TRANSPOSE", node, [back], (1, h, w, c), "nhwc")
            elif len(t.shape) == 3:  # [1, C, L] -> [1, C, 1, L] -> [1, 1, L, C]
                _, c, length = t.shape
                r = self.kernel(LAYOUT, "RESHAPE", node, [tid], (1, c, 1, length))
                self.converted[key] = self.kernel(LAYOUT, "TRANSPOSE", node, [r], (1, 1, length, c), "nhwc")
            elif len(t.shape) == 4:  # [1, C, H, W] -> [1, H, W, C]
                _, c, h, w = t.shape
                self.converted[key] = self.kernel(LAYOUT, "TRANSPOSE", node, [tid], (1, h, w, c), "nhwc")
            else:
                raise UnsupportedOpError(f"convolution on a rank-{len(t.shape)} tensor at node {node!r}")
        return self.converted[key]

    def to_torch(self, tid: int, node: str, keep_4d: bool = False) -> int:
        """``tid`` in PyTorch's layout (transposed back, and reshaped to 3-D unless ``keep_4d``)."""
        t = self.t(tid)
        if t.layout == "torch":
            return tid
        key = (tid, "torch4" if keep_4d else "torch")
        if key not in self.converted:
            _, h, w, c = t.shape
            tr = self.kernel(LAYOUT, "TRANSPOSE", node, [tid], (1, c, h, w))
            self.converted[(tid, "torch4")] = tr
            if not keep_4d:
                self.converted[key] = (self.kernel(LAYOUT, "RESHAPE", node, [tr], (1, c, w)) if h == 1 else tr)
                self.converted[(self.converted[key], "from4d")] = tr
        return self.converted[key]

    def to_torch_1d(self, tid: int, node: str) -> int:
        """``tid`` as litert-torch feeds it to an elementwise op: a 1-D conv's channel-last output
        ([1, 1, L, C]) is transposed back to PyTorch's layout first, a 2-D conv's stays channel-last."""
        t = self.t(tid)
        return self.to_torch(tid, node) if t.layout == "nhwc" and t.shape[1] == 1 else tid

    def activation(self, x: int, node: str, real: torch.Tensor, op: str = "RELU") -> int:
        """A ReLU-like activation: fused into the conv, linear or add that wrote ``x``, else its own kernel."""
        if self.producer.get(x) in _FUSABLE_PRODUCERS:
            return x  # fused into the producing kernel
        return self.elementwise(op, node, [x], real)

    def elementwise(self, op: str, node: str, ins: list[int], real: torch.Tensor, dtype: str | None = None) -> int:
        """One elementwise kernel in its first input's layout."""
        layout = self.t(ins[0]).layout
        return self.kernel(ELEMENTWISE, op, node, ins, self.shape(real, layout), layout, dtype=dtype)

    def view(self, x: int, real: torch.Tensor, node: str) -> int:
        """A reshape to ``real``'s shape: free when nothing moves, else a RESHAPE (after a transpose back)."""
        shape = (1, *real.shape[1:])
        t = self.t(x)
        if t.layout == "torch" and _squeezed(t.shape) == _squeezed(shape) and len(t.shape) == len(shape):
            return x
        if t.layout == "torch" and t.shape == shape:
            return x
        xin = self.to_torch(x, node)
        if self.t(xin).shape == shape:
            return xin
        if self.producer.get(xin) == REDUCE and _squeezed(self.t(xin).shape) == _squeezed(shape):
            return xin  # MEAN already dropped the unit axes
        return self.kernel(LAYOUT, "RESHAPE", node, [xin], shape)

    @staticmethod
    def shape(real: torch.Tensor, layout: str = "torch") -> tuple[int, ...]:
        """``real``'s batch-1 shape in ``layout``."""
        return _nhwc_shape(real) if layout == "nhwc" else (1, *real.shape[1:])

    @staticmethod
    def nhwc_shape(real: torch.Tensor) -> tuple[int, ...]:
        return _nhwc_shape(real)

    @staticmethod
    def lower_module(model: nn.Module, example: tuple[torch.Tensor, ...]) -> Lowered:
        """``model`` lowered on its own, in float (a recurrent layer's streaming step graph)."""
        return lower(model, example)

    def unsupported(self, call: Call, what: str):
        """Raise the cost model's error for a layer it cannot lower (``what`` says which case)."""
        raise UnsupportedOpError(f"the cost model does not know {what} at node {call.name!r}; "
                                 "replace it with a supported layer or report it")

    # -- plumbing ---------------------------------------------------------------------------------
    def _tensor(self, shape, layout="torch", nbytes: int = 0) -> int:
        t = Tensor(len(self.out.tensors), tuple(int(s) for s in shape), layout, nbytes)
        self.out.tensors.append(t)
        return t.id

    def _emit(self, kind, runtime_op, node, inputs, shape, layout, producer, nbytes, **kw) -> int:
        out = self._tensor(shape, layout, nbytes)
        k = Kernel(kind, runtime_op, node, list(inputs), out, **kw)
        k.work = k.work or self.out.tensors[out].elems
        self.out.kernels.append(k)
        self.producer[out] = producer or kind
        return out

    def _as_float(self, tid: int, node: str) -> int:
        # in the main int8 graph nbytes 0 is int8, 4 float, 1 bool (never dequantised)
        return self._converted_dtype(tid, node, "DEQUANTIZE", 4) if self.t(tid).nbytes == 0 else tid

    def _as_int8(self, tid: int, node: str) -> int:
        return self._converted_dtype(tid, node, "QUANTIZE", 0) if self.t(tid).nbytes == 4 else tid

    def _converted_dtype(self, tid: int, node: str, op: str, nbytes: int) -> int:
        key = (tid, op)  # one (de)quantised copy per tensor, however many kernels read it
        if key not in self.converted:
            t = self.t(tid)
            self.converted[key] = self._emit(ELEMENTWISE, op, node, [tid], t.shape, t.layout, None, nbytes)
        return self.converted[key]

    # -- the walk ---------------------------------------------------------------------------------
    def run_node(self, n: fx.Node):
        real = super().run_node(n)
        value = getattr(self, f"_op_{n.op}")(n, real)
        if self.int8 and isinstance(value, int) and self.t(value).layout == "nhwc" and _feeds_binary(n, self.modules):
            # litert-torch's int8 graphs transpose such a tensor back at once; later convolutions read
            # it through one more TRANSPOSE of the 4-D intermediate
            value = self.to_torch(value, n.name)
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
        return CONST  # a constant: lives in flash with the weights

    def _op_output(self, n, real):
        outs = n.args[0] if isinstance(n.args[0], (tuple, list)) else (n.args[0],)
        for o in outs:
            tid = self.value.get(o)
            if isinstance(tid, int):
                tid = self.to_torch(tid, "output")
                self.out.outputs.append(tid)
        return None

    def _op_call_module(self, n, real):
        m = self.modules[n.target]
        first = n.args[0] if n.args else None
        call = Call(str(n.target), m, n, self.value.get(first) if isinstance(first, fx.Node) else None,
                    self.env.get(first) if isinstance(first, fx.Node) else first, real)
        return self._lower_call(call, type(m).__name__)

    def _lower_call(self, call: Call, what: str):
        rule = rule_for(call.module)
        if rule is None or rule.lower is None:
            raise UnsupportedOpError(
                f"the cost model does not know module {what} at node {call.name!r}; "
                "replace it with a supported layer, register a rule for it (wearprune.layers.register_layer), "
                "or report it")
        call.macs = int(rule.macs(call.module, call.inp, call.out)) if rule.macs else 0
        return rule.lower(self, call)

    def _op_call_function(self, n, real):
        return self._function(n, n.target, real, method=False)

    def _op_call_method(self, n, real):
        return self._function(n, n.target, real, method=True)

    # -- functions and methods ------------------------------------------------------------------
    def _as_module_call(self, n, target, real, method: bool):
        """An activation function or method as a Call of the module it equals, or None."""
        cls = _METHOD_MODULES.get(target) if method else _FUNCTION_MODULES.get(target)
        if cls is not None:
            try:  # the function's own arguments, where the module takes them in the same order
                module = cls(*n.args[1:], **n.kwargs)
            except (TypeError, ValueError):
                module = cls()
            return Call(n.name, module, n, self._in(n), self.env.get(n.args[0]), real)
        soft = {"softmax": nn.Softmax, "log_softmax": nn.LogSoftmax}.get(target) if method else \
            _SOFTMAX_FUNCS.get(target)
        if soft is not None:
            dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else None)
            return Call(n.name, soft(dim=dim), n, self._in(n), self.env.get(n.args[0]), real)
        return None

    def _function(self, n, target, real, method: bool):
        name = n.name
        if target is operator.getitem and isinstance(self._in(n), tuple):
            return self._in(n)[n.args[1]]  # (output, state) of a recurrent layer
        if not isinstance(real, torch.Tensor):
            if isinstance(real, (tuple, list)) and any(isinstance(r, torch.Tensor) for r in real):
                self._unknown_function(n, target, method)  # several tensors out (sort, split...): not followed
            return None  # sizes and other Python values
        if n.all_input_nodes and all(self.value.get(a) is CONST for a in n.all_input_nodes):
            return CONST  # computed from parameters and constants only: the converter folds it
        if method and target in _SAME_METHODS:
            return self._in(n)
        op = _UNARY_METHOD_OPS.get(target) if method else _UNARY_OPS.get(target)
        if op is not None:
            return self.elementwise(op, name, [self.to_torch_1d(self._in(n), name)], real)
        if (method and target in ("clamp", "clip")) or (not method and target in (torch.clamp, torch.clip)):
            x = self.to_torch_1d(self._in(n), name)  # a MAXIMUM for the lower bound, a MINIMUM for the upper
            bounds = (n.kwargs.get("min", n.args[1] if len(n.args) > 1 else None),
                      n.kwargs.get("max", n.args[2] if len(n.args) > 2 else None))
            for op, bound in zip(("MAXIMUM", "MINIMUM"), bounds):
                if bound is not None:
                    x = self.elementwise(op, name, [x], real)
            return x
        kind = _BINARY_METHODS.get(target) if method else _BINARY.get(target)
        if kind:
            ins = [self.value[a] for a in n.args[:2] if isinstance(self.value.get(a) if isinstance(a, fx.Node)
                                                                  else None, int)]
            # litert-torch adds in PyTorch's layout when an operand is (or already was made) torch-laid
            if self.int8 or any(self.t(i).layout == "torch" or (i, "torch") in self.converted for i in ins):
                ins = [self.to_torch(i, name) for i in ins]
            layout = self.t(ins[0]).layout
            return self.kernel(ELEMENTWISE, kind.upper(), name, ins, self.shape(real, layout), layout,
                               producer="add" if kind == "add" else ELEMENTWISE)
        call = self._as_module_call(n, target, real, method)
        if call is not None:
            return self._lower_call(call, type(call.module).__name__)
        if (not method and target in _VIEW_FUNCS) or (method and target in _VIEW_METHODS):
            return self.view(self._in(n), real, name)
        if (not method and target in _PERMUTE_FUNCS) or (method and target in _PERMUTE_METHODS):
            x = self.to_torch(self._in(n), name)
            return self.kernel(LAYOUT, "TRANSPOSE", name, [x], (1, *real.shape[1:]))
        if (not method and target in (torch.mean, torch.sum, torch.amax, torch.amin)) or (
                method and target in ("mean", "sum", "amax", "amin")):
            x = self.to_torch(self._in(n), name)
            return self.kernel(REDUCE, "MEAN", name, [x], (1, *real.shape[1:]))
        if not method and target in (torch.cat, torch.concat):
            ins = [self.value[a] for a in n.args[0]]
            layouts = {self.t(i).layout for i in ins}
            if len(layouts) > 1:
                ins = [self.to_torch(i, name) for i in ins]
            layout = self.t(ins[0]).layout
            return self.kernel(CONCAT, "CONCATENATION", name, ins, self.shape(real, layout), layout)
        if not method and target is operator.getitem:
            x = self.to_torch(self._in(n), name)
            index = n.args[1] if isinstance(n.args[1], tuple) else (n.args[1],)
            if all(isinstance(i, slice) for i in index):
                return self.kernel(LAYOUT, "SLICE", name, [x], (1, *real.shape[1:]))
            kept = tuple(1 if isinstance(i, int) else s for i, s in zip(index, self.t(x).shape)) + tuple(
                self.t(x).shape[len(index):])  # an integer index: SLICE keeps the axis, RESHAPE drops it
            sliced = self.kernel(LAYOUT, "SLICE", name, [x], (1, *kept[1:]))
            return self.kernel(LAYOUT, "RESHAPE", name, [sliced], (1, *real.shape[1:]))
        self._unknown_function(n, target, method)

    @staticmethod
    def _unknown_function(n, target, method: bool):
        what = getattr(target, "__name__", str(target))
        raise UnsupportedOpError(
            f"the cost model does not know {'method' if method else 'function'} {what!r} at node {n.name!r}; "
            "rewrite it with supported ops or report it")


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
        if u.op == "call_module" and getattr(rule_for(modules.get(u.target)), "identity", False):
            if _feeds_binary(u, modules):
                return True
        elif (u.op == "call_function" and u.target in _BINARY) or (u.op == "call_method" and u.target in
                                                                    _BINARY_METHODS):
            return True
    return False


def _nhwc_shape(real: torch.Tensor) -> tuple[int, ...]:
    if real.dim() == 3:  # [B, C, L]
        return (1, 1, int(real.shape[2]), int(real.shape[1]))
    if real.dim() == 4:  # [B, C, H, W]
        return (1, int(real.shape[2]), int(real.shape[3]), int(real.shape[1]))
    return (1, *real.shape[1:])


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(int(s) for s in shape if s != 1)
