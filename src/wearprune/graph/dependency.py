"""Dependency graph of a traced model: which channel dimensions are coupled.

Every tensor in the traced forward pass gets an *id tensor* of the same shape: the id of the
channel each element belongs to. Layers that create channels (convolution and linear outputs,
RNN hidden units) draw fresh ids; shape operations (flatten, reshape, permute, slicing, concat)
are simply run on the id tensor, so offsets and channel x length expansions fall out exactly;
elementwise operations (residual add, multiply) union the ids they combine. Ids that end up in
one union-find class must be pruned together; the frozen class (id 0: model inputs, outputs,
parameters used outside their module, and anything an unknown op touches) is never pruned.

Every parameter dimension is recorded as a :class:`ParamDim` — which id each position along that
dimension belongs to, and whether the layer produces the channel there ("out") or reads it
("in"). Pruning, importance criteria and the cost model all read these records.

What a module call does to channels is its layer rule's ``couple`` (:mod:`wearprune.layers`), which
talks to :class:`ChannelTracer` through its public methods; functions and tensor methods (``F.relu``,
``x.view``, ``torch.cat``...) are followed here.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import WearpruneError
from ..layers import Call, as_inputs, rule_for, trace
from .unionfind import FROZEN, UnionFind

NO_ID = -1  # padding positions: belong to no channel


class UnsupportedOpError(WearpruneError):
    """The graph met an op it cannot follow, in strict mode (otherwise its channels are frozen)."""


@dataclass
class ParamDim:
    module: str  # qualified module name
    param: str  # attribute name ("weight", "bias", "running_mean", "weight_ih_l0", ...)
    dim: int
    ids: np.ndarray  # channel id of every position along ``dim``
    role: str  # "out": the layer produces these channels; "in": it reads them


@dataclass
class ChannelTensor:
    """A traced tensor whose channel axis is known: used by activation-based importance."""

    node: str
    axis: int
    ids: np.ndarray
    post_activation: bool


@dataclass
class DependencyGraph:
    model: nn.Module
    gm: fx.GraphModule
    uf: UnionFind
    param_dims: list[ParamDim] = field(default_factory=list)
    producers: dict[str, np.ndarray] = field(default_factory=dict)  # module -> ids it creates
    tensors: list[ChannelTensor] = field(default_factory=list)
    frozen_by: list[str] = field(default_factory=list)  # why channels were frozen, for the summary

    def root(self, i: int) -> int:
        return self.uf.find(int(i))

    def classes(self) -> dict[int, list[tuple[int, np.ndarray]]]:
        """Prunable classes: root id -> [(index into param_dims, positions along that dim)]."""
        out: dict[int, list[tuple[int, np.ndarray]]] = {}
        for k, pd in enumerate(self.param_dims):
            roots = self.uf.roots(pd.ids)
            for r in np.unique(roots):
                if r in (FROZEN, NO_ID):
                    continue
                out.setdefault(int(r), []).append((k, np.flatnonzero(roots == r)))
        return out


# -- function and method tables (modules are described by their layer rules) ----------------------
_UNARY_FUNCS = {
    F.relu, torch.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.mish, F.softplus,
    torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.dropout, F.dropout1d, F.dropout2d, torch.abs, torch.neg,
    operator.neg, F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d, torch.clamp, torch.clip,
}
_ACTIVATION_FUNCS = {F.relu, torch.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.hardswish, F.mish}
_UNARY_METHODS = {"relu", "sigmoid", "tanh", "abs", "neg", "clamp", "clip", "float", "contiguous", "clone",
                  "detach", "to", "type_as"}
_BINARY_FUNCS = {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul,
                 torch.div, torch.maximum, torch.minimum, operator.iadd, operator.imul}
_BINARY_METHODS = {"add", "sub", "mul", "div", "add_", "mul_", "maximum", "minimum"}
_SHAPE_FUNCS = {torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze, torch.unsqueeze,
                torch.cat, torch.concat, torch.stack, torch.split, torch.chunk, operator.getitem, torch.narrow,
                torch.select, torch.movedim}
_SHAPE_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "squeeze", "unsqueeze", "split", "chunk",
                  "narrow", "select", "movedim", "expand", "expand_as", "view_as", "reshape_as", "unbind", "t"}
_REDUCE_FUNCS = {torch.mean, torch.sum, torch.amax, torch.amin}
_REDUCE_METHODS = {"mean", "sum", "amax", "amin"}
_INFO_METHODS = {"size", "dim", "numel"}


def build_graph(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...], *,
                strict: bool = False) -> DependencyGraph:
    """Trace ``model`` on ``example_inputs`` (a tensor, or a tuple with one tensor per input) and build
    its channel dependency graph.

    ``strict``: raise :class:`UnsupportedOpError` on an op the graph does not know, instead of
    freezing the channels it touches.
    """
    inputs = as_inputs(example_inputs)
    try:
        gm = trace(model)
    except Exception as e:  # fx raises TraceError, TypeError, NotImplementedError... for dynamic code
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsupportedOpError(
            f"torch.fx cannot trace {type(model).__name__} ({first}); make forward free of data-dependent "
            "control flow, or mark that submodule as protected"
        ) from None
    graph = DependencyGraph(model=model, gm=gm, uf=UnionFind())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ChannelTracer(gm, graph, strict).run(*inputs)
    finally:
        model.train(was_training)
    return graph


class ChannelTracer(fx.Interpreter):
    """Runs the real forward pass and, beside it, the id tensors.

    A module call is handed to its layer rule's ``couple(tracer, call)``, which uses the public
    methods below (``new_ids``, ``param``, ``produces``, ``emit``, ``passthrough``, ``run_on_ids``,
    ``unknown``...); functions and tensor methods are followed here.
    """

    def __init__(self, gm: fx.GraphModule, graph: DependencyGraph, strict: bool):
        super().__init__(gm)
        self.g = graph
        self.uf = graph.uf
        self.strict = strict
        self.ids: dict[fx.Node, object] = {}
        self.modules = dict(gm.named_modules())

    # -- the loop --------------------------------------------------------------------------------
    def run_node(self, n: fx.Node):
        real = super().run_node(n)
        handler = getattr(self, f"_op_{n.op}")
        self.ids[n] = handler(n, real)
        return real

    def _op_placeholder(self, n, real):
        return _full_like(real, FROZEN)  # inputs are the sensor channels: never pruned here

    def _op_get_attr(self, n, real):
        return _full_like(real, FROZEN)  # a parameter used outside its module: keep it whole

    def _op_output(self, n, real):
        for t in _leaves(self.arg_ids(n.args[0])):
            self.uf.freeze(t.numpy())  # the model's outputs (classifier) are protected
        return None

    def _op_call_module(self, n, real):
        m = self.modules[n.target]
        first = n.args[0] if n.args else None
        call = Call(str(n.target), m, n, self.arg_ids(first),
                    self.env.get(first) if isinstance(first, fx.Node) else first, real)
        rule = rule_for(m)
        if rule is None or rule.couple is None:
            return self.unknown(call, type(m).__name__)
        return rule.couple(self, call)

    def _op_call_function(self, n, real):
        f = n.target
        if f in _UNARY_FUNCS:
            return self._pass(n, self.arg_ids(n.args[0]), real, post_activation=f in _ACTIVATION_FUNCS)
        if f in _BINARY_FUNCS:
            return self._binary(n, real)
        if f is F.pad:
            return self._run_on_ids(n, real, pad_value=NO_ID)
        if f in _SHAPE_FUNCS:
            return self._shape(n, real)
        if f in _REDUCE_FUNCS:
            return self._reduce(n, real)
        if f in (F.softmax, F.log_softmax, torch.softmax, torch.log_softmax):
            dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else None)
            return self._softmax(n, self.arg_ids(n.args[0]), real, dim)
        if f is getattr and isinstance(real, (torch.Size, int, torch.dtype, torch.device)):
            return None
        return self._unknown(n, real, getattr(f, "__name__", str(f)))

    def _op_call_method(self, n, real):
        m = n.target
        if m in _INFO_METHODS or not _has_tensor(real):
            return None
        if m in _UNARY_METHODS:
            return self._pass(n, self.arg_ids(n.args[0]), real, post_activation=m == "relu")
        if m in _BINARY_METHODS:
            return self._binary(n, real)
        if m in _SHAPE_METHODS:
            return self._shape(n, real)
        if m in _REDUCE_METHODS:
            return self._reduce(n, real)
        return self._unknown(n, real, f"Tensor.{m}")

    # -- public surface for layer rules ----------------------------------------------------------
    def new_ids(self, n: int) -> np.ndarray:
        """``n`` fresh channel ids (the channels a layer creates)."""
        return self.uf.new(n)

    def param(self, module: str, param: str, dim: int, ids: np.ndarray, role: str) -> None:
        """Record that ``module.param`` along ``dim`` makes ("out") or reads ("in") the channels ``ids``."""
        self.g.param_dims.append(ParamDim(module, param, dim, np.asarray(ids, dtype=np.int64), role))

    def produces(self, module: str, ids: np.ndarray) -> None:
        """``module`` creates the channels ``ids``: they form its group when pruning."""
        self.g.producers[module] = np.asarray(ids, dtype=np.int64)

    def record(self, call: Call, axis: int, vec: np.ndarray, post_activation: bool = False) -> None:
        """The output of ``call`` carries channels ``vec`` along ``axis`` (activation-based importance)."""
        self.g.tensors.append(ChannelTensor(call.node.name, axis, vec, post_activation))

    def emit(self, call: Call, vec: np.ndarray, axis: int) -> torch.Tensor:
        """The id tensor of the call's output: channel ``vec[i]`` at index ``i`` along ``axis``."""
        return self._emit(call.node, call.out, vec, axis)

    def passthrough(self, call: Call, post_activation: bool = False) -> torch.Tensor:
        """Channels go through unchanged (activations, dropout, pooling over time)."""
        return self._pass(call.node, call.x, call.out, post_activation)

    def run_on_ids(self, call: Call, pad: bool = False) -> torch.Tensor:
        """Run the module itself on the id tensor (shape layers); ``pad``: padding positions get no id."""
        return self._run_on_ids(call.node, call.out, pad_value=NO_ID if pad else None)

    def softmax(self, call: Call, dim: int | None) -> torch.Tensor:
        """A softmax over ``dim``: fine along time, unknown across channels."""
        return self._softmax(call.node, call.x, call.out, dim)

    def unknown(self, call: Call, what: str):
        """An op the graph cannot follow: its channels are frozen (or, strict, an error names it)."""
        return self._unknown(call.node, call.out, what)

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Channels ``a[i]`` and ``b[i]`` must be pruned together."""
        self.uf.union_arrays(a, b)

    def freeze(self, ids: np.ndarray, why: str | None = None) -> None:
        """Never prune ``ids``; ``why`` goes into the summary's notes."""
        self.uf.freeze(ids)
        if why:
            self.g.frozen_by.append(why)

    def note(self, why: str) -> None:
        """A line for the summary's notes (why some channels are tied or kept)."""
        self.g.frozen_by.append(why)

    def arg_ids(self, a):
        """The id tensor(s) of an fx argument (None for constants)."""
        if isinstance(a, fx.Node):
            return self.ids.get(a)
        if isinstance(a, (tuple, list)):
            return type(a)(self.arg_ids(x) for x in a)
        return None

    @staticmethod
    def vector(x, axis: int) -> np.ndarray | None:
        """The channel id at each index along ``axis`` if ids vary along that axis only, else None."""
        return _vector(x, axis)

    @staticmethod
    def constant_along(x, axis: int) -> bool:
        """True when the ids do not change along ``axis`` (it is not a channel axis)."""
        return _constant_along(x, axis)

    @staticmethod
    def broadcast(vec: np.ndarray, shape, axis: int) -> torch.Tensor:
        """An id tensor of ``shape`` holding ``vec`` along ``axis``."""
        return _broadcast(vec, shape, axis)

    @staticmethod
    def leaves(ids) -> list[torch.Tensor]:
        """The id tensors inside a (nested) tuple of them."""
        return list(_leaves(ids))

    # -- generic rules ---------------------------------------------------------------------------
    def _pass(self, n, x, real, post_activation=False):
        if not isinstance(x, torch.Tensor) or not isinstance(real, torch.Tensor):
            return self._unknown(n, real, "non-tensor input")
        if tuple(x.shape) == tuple(real.shape):
            out = x.clone()
        else:  # pooling changes the non-channel axes only
            out = self._same_channels(x, real)
            if out is None:
                return self._unknown(n, real, f"{n.target} changes the channel axis")
        axis = _channel_axis(out)
        if axis is not None:
            self.g.tensors.append(ChannelTensor(n.name, axis, _vector(out, axis), post_activation))
        return out

    def _same_channels(self, x, real):
        for axis in range(x.dim()):
            if x.shape[axis] == real.shape[axis] and (vec := _vector(x, axis)) is not None:
                if all(x.shape[a] == real.shape[a] or _constant_along(x, a) for a in range(x.dim())):
                    return _broadcast(vec, real.shape, axis)
        return None

    def _binary(self, n, real):
        if not isinstance(real, torch.Tensor):
            return None
        parts = [self.arg_ids(a) for a in list(n.args[:2]) + list(n.kwargs.values())]
        tensors = [p.expand(real.shape) for p in parts if isinstance(p, torch.Tensor)]
        if not tensors:
            return None
        out = tensors[0].clone()
        for t in tensors[1:]:
            a, b = out.numpy(), t.numpy()
            both = (a >= 0) & (b >= 0)
            self.uf.union_arrays(a[both], b[both])
            # An id meeting padding would lose its partner on pruning: freeze it.
            self.uf.freeze(np.concatenate([a[(a >= 0) & (b < 0)], b[(b >= 0) & (a < 0)]]))
            out = torch.where(out >= 0, out, t)
        return out

    def _shape(self, n, real):
        for a in list(n.args[1:]) + list(n.kwargs.values()):
            if isinstance(a, int) and a > 1 and n.target in ("view", "reshape", torch.reshape):
                # A literal size would be wrong after pruning if it spans channels: keep those whole.
                out = self._run_on_ids(n, real)
                self._freeze_if_literal(n, out)
                return out
        return self._run_on_ids(n, real)

    def _freeze_if_literal(self, n, out):
        sizes = [a for a in n.args[1:] if isinstance(a, int)]
        for axis in range(out.dim()):
            if out.shape[axis] in sizes and out.shape[axis] > 1 and not _constant_along(out, axis):
                self.uf.freeze(out.numpy())
                self.g.frozen_by.append(f"{n.name}: {n.target} with a literal size over channels")
                return

    def _reduce(self, n, real):
        x = self.arg_ids(n.args[0])
        dims = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else None)
        keep = n.kwargs.get("keepdim", n.args[2] if len(n.args) > 2 else False)
        if not isinstance(x, torch.Tensor) or dims is None:
            return self._unknown(n, real, f"{n.target} over all dimensions")
        dims = [dims] if isinstance(dims, int) else list(dims)
        dims = [d % x.dim() for d in dims]
        if any(not _constant_along(x, d) for d in dims):
            return self._unknown(n, real, f"{getattr(n.target, '__name__', n.target)} over the channel axis")
        out = x.amax(dim=dims, keepdim=bool(keep))
        return out.expand(real.shape) if isinstance(real, torch.Tensor) else None

    def _softmax(self, n, x, real, dim):
        if isinstance(x, torch.Tensor) and dim is not None and _constant_along(x, dim % x.dim()):
            return self._pass(n, x, real)
        return self._unknown(n, real, "softmax over the channel axis")

    def _run_on_ids(self, n, real, pad_value=None):
        """Apply the node's own operation to the id tensors: offsets and expansions come out exact."""
        args = fx.node.map_arg(n.args, lambda a: self._value_for_ids(a))
        kwargs = fx.node.map_arg(n.kwargs, lambda a: self._value_for_ids(a))
        if pad_value is not None:
            if n.op == "call_module":
                m = self.modules[n.target]
                return F.pad(args[0], m.padding, value=pad_value)
            kwargs = dict(kwargs, value=pad_value)
        if n.op == "call_module":
            return self.modules[n.target](*args, **kwargs)
        if n.op == "call_method":
            return getattr(args[0], n.target)(*args[1:], **kwargs)
        return n.target(*args, **kwargs)

    def _value_for_ids(self, a: fx.Node):
        ids = self.ids.get(a)
        return ids if ids is not None else self.env[a]

    def _unknown(self, n, real, what: str):
        if self.strict:
            raise UnsupportedOpError(f"unsupported op {what} at node {n.name!r}; its channels cannot be pruned "
                                     "safely (pass strict=False to keep them whole)")
        for a in n.all_input_nodes:
            for t in _leaves(self.ids.get(a)):
                self.uf.freeze(t.numpy())
        self.g.frozen_by.append(f"{n.name}: {what}")
        return _full_like(real, FROZEN)

    def _emit(self, n, real, vec, axis):
        self.g.tensors.append(ChannelTensor(n.name, axis % real.dim(), vec, False))
        return _broadcast(vec, real.shape, axis)


# -- id tensor helpers ----------------------------------------------------------------------------
def _full_like(real, value):
    if isinstance(real, torch.Tensor):
        return torch.full(real.shape, value, dtype=torch.int64)
    if isinstance(real, (tuple, list)):
        return type(real)(_full_like(r, value) for r in real)
    return None


def _leaves(ids):
    if isinstance(ids, torch.Tensor):
        yield ids
    elif isinstance(ids, (tuple, list)):
        for x in ids:
            yield from _leaves(x)


def _has_tensor(real) -> bool:
    return any(True for _ in _leaves(real))


def _broadcast(vec: np.ndarray, shape, axis: int) -> torch.Tensor:
    axis = axis % len(shape)
    view = [1] * len(shape)
    view[axis] = len(vec)
    return torch.from_numpy(np.ascontiguousarray(vec)).view(view).expand(tuple(shape)).clone()


def _vector(x, axis: int) -> np.ndarray | None:
    """The channel id at each index along ``axis`` if ids vary along that axis only (padding ignored)."""
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return None
    a = np.moveaxis(x.numpy(), axis, 0).reshape(x.shape[axis], -1)
    lo = np.where(a >= 0, a, np.iinfo(np.int64).max).min(axis=1)
    hi = a.max(axis=1)
    ok = (lo == hi) | (hi < 0) | (lo == np.iinfo(np.int64).max)
    if not ok.all():
        return None
    return np.where(hi < 0, NO_ID, hi)


def _constant_along(x, axis: int) -> bool:
    if not isinstance(x, torch.Tensor):
        return True
    first = x.narrow(axis, 0, 1)
    return bool((x == first).all())


def _channel_axis(x) -> int | None:
    if not isinstance(x, torch.Tensor):
        return None
    varying = [a for a in range(x.dim()) if not _constant_along(x, a)]
    return varying[0] if len(varying) == 1 else None
