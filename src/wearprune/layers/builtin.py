"""Rules for the ``torch.nn`` layers wearprune knows, and the building blocks users' rules can reuse.

Lowering follows what litert-torch 0.10 really emits (checked by converting one-layer models and
listing the flatbuffer's ops): activations other than ReLU/ReLU6/Sigmoid/Tanh run in PyTorch's
layout (a conv output is transposed back first); LayerNorm, GroupNorm, SiLU, Mish, Softplus, ELU,
Hardsigmoid and Softmax are decomposed into elementwise and reduce kernels, which litert-torch's
int8 quantizer leaves in float between DEQUANTIZE and QUANTIZE. Softplus, Mish and ELU would become
a SELECT, which TensorFlow Lite Micro cannot run, so export converts an exact SELECT-free form of
them (their rule's ``export``) and they are lowered as that.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .rule import (
    CONV,
    DENSE,
    DEPTHWISE,
    ELEMENTWISE,
    LAYOUT,
    PAD,
    POOL,
    RECURRENT,
    REDUCE,
    Call,
    LayerRule,
    register_layer,
)

FLOAT, BOOL = "float", "bool"  # kernel dtypes in an int8 graph (see Lowerer.kernel)


# -- MACs ----------------------------------------------------------------------------------------
def conv_macs(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates of a convolution for batch element 0."""
    kernel = 1
    for k in m.kernel_size:
        kernel *= k
    per_output = (m.in_channels // m.groups) * kernel
    return out[0].numel() * per_output


def linear_macs(m: nn.Linear, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates of a Linear layer for batch element 0 (every leading position counted)."""
    return (out[0].numel() // m.out_features) * m.in_features * m.out_features


def _gates(m: nn.Module) -> int:
    return 3 if isinstance(m, nn.GRU) else 4 if isinstance(m, nn.LSTM) else 1


def rnn_macs(m: nn.RNNBase, inp: torch.Tensor, out) -> int:
    """Every gate matrix product of a GRU/LSTM/RNN at every time step, for batch element 0."""
    x = inp
    steps = x.shape[1] if m.batch_first else x.shape[0]
    if x.dim() == 2:  # unbatched input [T, F]
        steps = x.shape[0]
    gates = _gates(m)
    hidden = m.hidden_size
    proj = m.proj_size or hidden
    dirs = 2 if m.bidirectional else 1
    total = 0
    for layer in range(m.num_layers):
        n_in = m.input_size if layer == 0 else proj * dirs
        per_step = gates * hidden * (n_in + proj)
        if m.proj_size:
            per_step += hidden * m.proj_size
        total += dirs * steps * per_step
    return total


# -- coupling building blocks --------------------------------------------------------------------
def passthrough(activation: bool = False) -> Callable:
    """Coupling of a layer that keeps every channel where it is (``activation``: for APoZ / activation importance)."""

    def couple(t, c: Call):
        return t.passthrough(c, post_activation=activation)

    return couple


def channelwise(*params: str, axis: int = 1) -> Callable:
    """Coupling of a layer with one entry per channel (along ``axis``) in each of ``params`` (norms, scales)."""

    def couple(t, c: Call):
        vec = t.vector(c.x, axis)
        if vec is None:
            return t.unknown(c, f"{type(c.module).__name__} over mixed channels")
        for p in params:
            if getattr(c.module, p, None) is not None:
                t.param(c.name, p, 0, vec, "out")
        return t.emit(c, vec, axis)

    return couple


def _couple_reshape(t, c: Call):
    return t.run_on_ids(c)


def _couple_pad(t, c: Call):
    return t.run_on_ids(c, pad=True)


def _couple_softmax(t, c: Call):
    return t.softmax(c, c.module.dim)


def _couple_conv(t, c: Call):
    m, name = c.module, c.name
    cin = t.vector(c.x, 1)
    if cin is None:
        return t.unknown(c, "convolution over mixed channels")
    groups = m.groups
    if groups == 1:
        out = t.new_ids(m.out_channels)
        t.param(name, "weight", 1, cin, "in")
    elif groups == m.in_channels:  # depthwise: output o reads input channel o // multiplier
        mult = m.out_channels // m.in_channels
        out = np.repeat(cin, mult) if mult > 1 else cin.copy()
        if mult > 1:
            t.note(f"{name}: depthwise multiplier {mult} ties its outputs to inputs")
    else:
        out = t.new_ids(m.out_channels)
        t.freeze(cin)
        t.freeze(out, f"{name}: grouped convolution (groups={groups}) is kept whole")
    t.param(name, "weight", 0, out, "out")
    if m.bias is not None:
        t.param(name, "bias", 0, out, "out")
    t.produces(name, out)
    return t.emit(c, out, 1)


def _couple_linear(t, c: Call):
    m, name = c.module, c.name
    fin = t.vector(c.x, -1)
    if fin is None:
        # The features are not a channel axis (e.g. a Linear over time): the layer stays whole.
        if isinstance(c.x, torch.Tensor) and t.constant_along(c.x, -1):
            return c.x[..., :1].expand(c.out.shape).clone()
        return t.unknown(c, "Linear over mixed channels")
    out = t.new_ids(m.out_features)
    t.param(name, "weight", 1, fin, "in")
    t.param(name, "weight", 0, out, "out")
    if m.bias is not None:
        t.param(name, "bias", 0, out, "out")
    t.produces(name, out)
    return t.emit(c, out, -1)


def _couple_layernorm(t, c: Call):
    if len(c.module.normalized_shape) != 1:
        return t.unknown(c, "LayerNorm over several dimensions")
    return channelwise("weight", "bias", axis=-1)(t, c)


def _couple_groupnorm(t, c: Call):
    m = c.module
    if m.num_groups not in (1, m.num_channels):
        return t.unknown(c, f"GroupNorm with {m.num_groups} groups (channels must stay divisible)")
    return channelwise("weight", "bias", axis=1)(t, c)


def _state_ids(stack: np.ndarray, shape) -> torch.Tensor:
    s = torch.from_numpy(stack)  # [layers * dirs, hidden]
    if len(shape) == 3:  # batched: [layers * dirs, batch, hidden]
        s = s[:, None, :]
    return s.expand(tuple(shape)).clone()


def _couple_rnn(t, c: Call):
    m, name, n = c.module, c.name, c.node
    fin = t.vector(c.x, -1)
    if fin is None or getattr(m, "proj_size", 0):
        return t.unknown(c, "RNN with projections" if fin is not None else "RNN over mixed channels")
    gates = _gates(m)
    dirs = 2 if m.bidirectional else 1
    hidden = [[t.new_ids(m.hidden_size) for _ in range(dirs)] for _ in range(m.num_layers)]
    # nn.GRU/LSTM hold one hidden size for every layer and direction: unit j goes in all of them.
    for layer in hidden:
        for h in layer:
            t.union(hidden[0][0], h)
    for layer in range(m.num_layers):
        layer_in = fin if layer == 0 else np.concatenate(hidden[layer - 1])
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            h = hidden[layer][d]
            gate_rows = np.tile(h, gates)  # all gates of a unit go together
            t.param(name, f"weight_ih{sfx}", 0, gate_rows, "out")
            t.param(name, f"weight_ih{sfx}", 1, layer_in, "in")
            t.param(name, f"weight_hh{sfx}", 0, gate_rows, "out")
            t.param(name, f"weight_hh{sfx}", 1, h, "in")
            if m.bias:
                t.param(name, f"bias_ih{sfx}", 0, gate_rows, "out")
                t.param(name, f"bias_hh{sfx}", 0, gate_rows, "out")
    t.produces(name, np.concatenate([np.concatenate(hs) for hs in hidden]))
    out_real, state_real = c.out
    last = np.concatenate(hidden[-1])
    out_ids = t.broadcast(last, out_real.shape, -1)
    t.record(c, -1, last)
    # h_n / c_n: [layers * dirs, (batch,) hidden], row k = layer k // dirs, direction k % dirs.
    stack = np.stack([hidden[k // dirs][k % dirs] for k in range(m.num_layers * dirs)])
    if len(n.args) > 1 and n.args[1] is not None:  # a given initial state is read by the hidden units
        for s in t.leaves(t.arg_ids(n.args[1])):
            t.union(s.numpy(), _state_ids(stack, s.shape).numpy())
    if isinstance(state_real, tuple):
        state_ids = tuple(_state_ids(stack, s.shape) for s in state_real)
    else:
        state_ids = _state_ids(stack, state_real.shape)
    return (out_ids, state_ids)


# -- lowering building blocks --------------------------------------------------------------------
def _as_2d(v, fill: int) -> tuple[int, int]:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    return (int(v[0]), int(v[1])) if len(v) == 2 else (fill, int(v[0]))


def _is_tf_same(spatial, k, s, d, p) -> bool:
    """TFLite's SAME padding puts the odd pixel at the end; PyTorch pads both sides equally."""
    for size, ki, si, di, pi in zip(spatial, k, s, d, p):
        out = -(-size // si)
        total = max((out - 1) * si + di * (ki - 1) + 1 - size, 0)
        if pi != total // 2 or pi != total - total // 2:
            return False
    return True


def _lower_conv(low, c: Call):
    m, name = c.module, c.name
    xin = low.to_nhwc(c.x, name)
    spatial = low.tensor(xin).shape[1:3]
    k, s, d = _as_2d(m.kernel_size, 1), _as_2d(m.stride, 1), _as_2d(m.dilation, 1)
    if isinstance(m.padding, str):
        p = (0, 0) if m.padding == "valid" else tuple((d[i] * (k[i] - 1)) // 2 for i in range(2))
    else:
        p = _as_2d(m.padding, 0)
    if any(p) and not _is_tf_same(spatial, k, s, d, p):
        padded = (1, spatial[0] + 2 * p[0], spatial[1] + 2 * p[1], low.tensor(xin).shape[3])
        xin = low.kernel(PAD, "PAD", name, [xin], padded, "nhwc")
    depthwise = m.groups > 1 and m.groups == m.in_channels
    return low.kernel(DEPTHWISE if depthwise else CONV, "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
                      name, [xin], low.nhwc_shape(c.out), "nhwc", macs=c.macs,
                      weights=m.weight.numel(), biases=m.out_channels, channels=m.out_channels)


def _lower_linear(low, c: Call):
    m = c.module
    xin = low.to_torch(c.x, c.name)
    return low.kernel(DENSE, "FULLY_CONNECTED", c.name, [xin], low.shape(c.out), macs=c.macs,
                      weights=m.weight.numel(), biases=m.out_features, channels=m.out_features)


def _cell_step(low, m: nn.Module):
    """The streaming step export makes of this layer (one Linear per gate, the gate math as
    elementwise ops), lowered; None where export has no step form (bidirectional, nn.RNN, projections)."""
    from wearprune.export.streaming import GRUStep, LSTMStep

    kind = GRUStep if isinstance(m, nn.GRU) else LSTMStep if isinstance(m, nn.LSTM) else None
    if kind is None or m.bidirectional or getattr(m, "proj_size", 0) or not m.batch_first:
        return None
    per_layer = 2 if isinstance(m, nn.LSTM) else 1
    states = tuple(torch.zeros(1, m.hidden_size) for _ in range(m.num_layers * per_layer))
    return low.lower_module(kind(m, nn.Identity()), (torch.zeros(1, m.input_size), *states))


def _lower_recurrent(low, c: Call):
    """One recurrent kernel (MACs and time) carrying the streaming step export makes of the layer."""
    m = c.module
    xin = low.to_torch(c.x, c.name)
    seq = c.out[0] if isinstance(c.out, tuple) else c.out
    gates = _gates(m)
    dirs = 2 if m.bidirectional else 1
    weights = sum(p.numel() for pn, p in m.named_parameters() if pn.startswith("weight"))
    biases = sum(p.numel() for pn, p in m.named_parameters() if pn.startswith("bias"))
    state = m.num_layers * dirs * m.hidden_size * (2 if isinstance(m, nn.LSTM) else 1)
    out = low.kernel(RECURRENT, type(m).__name__.upper(), c.name, [xin], (1, *seq.shape[1:]), macs=c.macs,
                     weights=weights, biases=biases, channels=gates * m.hidden_size * dirs,
                     scratch=state + gates * m.hidden_size * dirs, step=_cell_step(low, m))
    return (out, None) if isinstance(c.out, tuple) else out


def _lower_identity(low, c: Call):
    return c.x


def elementwise(*ops: str, layout: str = "any", dtype: str | None = None) -> Callable:
    """Lowering of a layer that is a chain of one-input elementwise kernels ``ops``.

    ``layout``: ``any`` runs where the input is (channel-last after a conv), ``torch`` transposes a
    1-D conv's output back to PyTorch's layout first, ``torch-int8`` does so in int8 graphs only.
    ``dtype`` "float": an op litert-torch's int8 quantizer leaves in float.
    """

    def lower(low, c: Call):
        x = _in_layout(low, c, layout)
        for op in ops:
            x = low.elementwise(op, c.name, [x], c.out, dtype=dtype)
        return x

    return lower


def _in_layout(low, c: Call, layout: str) -> int:
    if layout == "torch" or (layout == "torch-int8" and low.int8):
        return low.to_torch_1d(c.x, c.name)
    return c.x


def _lower_relu(op: str) -> Callable:
    def lower(low, c: Call):
        return low.activation(c.x, c.name, c.out, op)

    return lower


def _lower_silu(low, c: Call):  # x * sigmoid(x)
    x = low.to_torch_1d(c.x, c.name)
    s = low.elementwise("LOGISTIC", c.name, [x], c.out, dtype=FLOAT)
    return low.elementwise("MUL", c.name, [x, s], c.out, dtype=FLOAT)


def _softplus(low, c: Call, x: int) -> int:
    """(x + |x|) / 2 + log(1 + exp(-|x|)): the form export converts (see SoftplusForExport)."""
    a = low.elementwise("ABS", c.name, [x], c.out, dtype=FLOAT)
    pos = low.elementwise("ADD", c.name, [x, a], c.out, dtype=FLOAT)
    pos = low.elementwise("MUL", c.name, [pos], c.out)  # litert-torch's quantizer keeps this MUL in int8
    beta = getattr(c.module, "beta", 1)
    if beta != 1:
        a = low.elementwise("MUL", c.name, [a], c.out, dtype=FLOAT)
    neg = low.elementwise("MUL", c.name, [a], c.out, dtype=FLOAT)
    e = low.elementwise("EXP", c.name, [neg], c.out, dtype=FLOAT)
    e = low.elementwise("ADD", c.name, [e], c.out, dtype=FLOAT)
    lg = low.elementwise("LOG", c.name, [e], c.out, dtype=FLOAT)
    if beta != 1:
        lg = low.elementwise("MUL", c.name, [lg], c.out, dtype=FLOAT)
    return low.elementwise("ADD", c.name, [pos, lg], c.out, dtype=FLOAT)


def _lower_softplus(low, c: Call):
    return _softplus(low, c, low.to_torch_1d(c.x, c.name))


def _lower_mish(low, c: Call):  # x * tanh(softplus(x))
    x = low.to_torch_1d(c.x, c.name)
    th = low.elementwise("TANH", c.name, [_softplus(low, c, x)], c.out, dtype=FLOAT)
    return low.elementwise("MUL", c.name, [x, th], c.out)


def _lower_elu(low, c: Call):  # (x + |x|) / 2 + alpha * (exp((x - |x|) / 2) - 1), as export converts it
    x = low.to_torch_1d(c.x, c.name)
    a = low.elementwise("ABS", c.name, [x], c.out, dtype=FLOAT)
    pos = low.elementwise("ADD", c.name, [x, a], c.out, dtype=FLOAT)
    pos = low.elementwise("MUL", c.name, [pos], c.out)
    neg = low.elementwise("SUB", c.name, [x, a], c.out, dtype=FLOAT)
    neg = low.elementwise("MUL", c.name, [neg], c.out)
    e = low.elementwise("EXP", c.name, [neg], c.out, dtype=FLOAT)
    e = low.elementwise("SUB", c.name, [e], c.out, dtype=FLOAT)
    if low.int8 or c.module.alpha != 1:  # the fp32 converter drops a multiplication by 1
        e = low.elementwise("MUL", c.name, [e], c.out)
    return low.elementwise("ADD", c.name, [pos, e], c.out)


def _reduced(shape: tuple[int, ...], dims) -> tuple[int, ...]:
    dims = [d % len(shape) for d in ([dims] if isinstance(dims, int) else dims)]
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _lower_softmax(log: bool) -> Callable:
    def lower(low, c: Call):
        x = low.to_torch(c.x, c.name)
        shape = low.shape(c.out)
        dim = c.module.dim if c.module.dim is not None else len(shape) - 1
        small = _reduced(shape, dim)
        mx = low.kernel(REDUCE, "REDUCE_MAX", c.name, [x], small)
        mx = low.kernel(ELEMENTWISE, "MAXIMUM", c.name, [mx], small)
        d = low.kernel(ELEMENTWISE, "SUB", c.name, [x, mx], shape, dtype=FLOAT)
        e = low.kernel(ELEMENTWISE, "EXP", c.name, [d], shape, dtype=FLOAT)
        s = low.kernel(REDUCE, "SUM", c.name, [e], small, dtype=FLOAT)
        if not log:
            return low.kernel(ELEMENTWISE, "DIV", c.name, [e, s], shape, dtype=FLOAT)
        lg = low.kernel(ELEMENTWISE, "LOG", c.name, [s], small, dtype=FLOAT)
        return low.kernel(ELEMENTWISE, "SUB", c.name, [d, lg], shape, dtype=FLOAT)

    return lower


def _lower_batchnorm(low, c: Call):
    prev = c.node.args[0]
    m = low.module_of(prev)
    if m is not None and len(prev.users) == 1 and _bn_folds(m, c.module):
        return c.x  # folded into the weights before conversion (wearprune.export.fold)
    # litert-torch: x * scale + shift, channel-last after a conv in fp32, transposed back in int8
    x = _in_layout(low, c, "torch-int8")
    y = low.elementwise("MUL", c.name, [x], c.out)
    return low.elementwise("ADD", c.name, [y], c.out)


def _stats(low, c: Call, x: int, ops: list[str], shape: tuple[int, ...]) -> int:
    """A chain of float kernels on (small) statistics tensors of ``shape``."""
    for op in ops:
        x = low.kernel(LAYOUT if op == "RESHAPE" else ELEMENTWISE, op, c.name, [x], shape, dtype=FLOAT)
    return x


def _lower_layernorm(low, c: Call):
    """litert-torch: MEAN, SQUARED_DIFFERENCE, MEAN, rsqrt(var + eps) and the shift on the
    statistics, then x * scale + shift, then the affine MUL and ADD; float in int8 graphs."""
    if len(c.module.normalized_shape) != 1:
        return low.unsupported(c, "LayerNorm over several dimensions")
    x = low.to_torch(c.x, c.name)
    shape = low.shape(c.out)
    if len(shape) == 2:  # [1, C] is normalised as [1, 1, C]
        shape = (1, 1, shape[1])
        x = low.kernel(LAYOUT, "RESHAPE", c.name, [x], shape)
    stats = (*shape[:-1], 1)
    mean = _stats(low, c, low.kernel(REDUCE, "MEAN", c.name, [x], stats, dtype=FLOAT), ["RESHAPE"], stats)
    sq = low.kernel(ELEMENTWISE, "SQUARED_DIFFERENCE", c.name, [x, mean], shape, dtype=FLOAT)
    var = low.kernel(REDUCE, "MEAN", c.name, [sq], stats, dtype=FLOAT)
    scale = _stats(low, c, var, ["ADD", "RSQRT", "MUL", "SUB", "RESHAPE", "RESHAPE"], stats)
    y = low.kernel(ELEMENTWISE, "MUL", c.name, [x, scale], shape, dtype=FLOAT)
    y = low.kernel(ELEMENTWISE, "ADD", c.name, [y, scale], shape, dtype=FLOAT)
    if c.module.elementwise_affine:
        y = low.kernel(ELEMENTWISE, "MUL", c.name, [y], shape, dtype=FLOAT)
        y = low.kernel(ELEMENTWISE, "ADD", c.name, [y], shape, dtype=FLOAT)
    return low.view(y, c.out, c.name) if shape != low.shape(c.out) else y


def _lower_groupnorm(low, c: Call):
    """litert-torch: x reshaped to [1, groups, C / groups, ...], MEAN, SUB, MUL (square), MEAN, then
    per-channel scale and shift from the statistics, then x * scale + shift; float in int8 graphs."""
    m = c.module
    x = low.to_torch(c.x, c.name)
    shape = low.shape(c.out)
    g = m.num_groups
    grouped = (1, g, m.num_channels // g, *shape[2:])
    stats = (1, g) + (1,) * (len(grouped) - 2)
    r = low.kernel(LAYOUT, "RESHAPE", c.name, [x], grouped)
    mean = low.kernel(REDUCE, "MEAN", c.name, [r], stats, dtype=FLOAT)
    d = low.kernel(ELEMENTWISE, "SUB", c.name, [r, mean], grouped, dtype=FLOAT)
    sq = low.kernel(ELEMENTWISE, "MUL", c.name, [d], grouped, dtype=FLOAT)
    var = low.kernel(REDUCE, "MEAN", c.name, [sq], stats, dtype=FLOAT)
    per_channel = (1, m.num_channels) + (1,) * (len(shape) - 2)
    scale = _stats(low, c, var, ["ADD", "RESHAPE", "RSQRT", "MUL", "MUL", "MUL", "ADD"], stats)
    scale = _stats(low, c, scale, ["RESHAPE", "RESHAPE"], per_channel)
    y = low.kernel(ELEMENTWISE, "MUL", c.name, [x, scale], shape, dtype=FLOAT)
    return low.kernel(ELEMENTWISE, "ADD", c.name, [y, scale], shape, dtype=FLOAT)


def _lower_pool(low, c: Call):
    xin = low.to_nhwc(c.x, c.name)
    op = "MAX_POOL_2D" if isinstance(c.module, (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d,
                                                nn.AdaptiveMaxPool2d)) else "AVERAGE_POOL_2D"
    return low.kernel(POOL, op, c.name, [xin], low.nhwc_shape(c.out), "nhwc")


def _lower_adaptive_avg(low, c: Call):
    if all(s == 1 for s in c.out.shape[2:]):  # global: a MEAN over the spatial axes
        xin = low.to_torch(c.x, c.name, keep_4d=True)
        return low.kernel(REDUCE, "MEAN", c.name, [xin], (1, c.out.shape[1]))
    return _lower_pool(low, c)


def _lower_adaptive_max(low, c: Call):
    if _adaptive_kernel(c.inp.shape[2:], c.out.shape[2:]) is None:
        return low.unsupported(c, f"{type(c.module).__name__} whose output size does not divide its input "
                                  "(litert-torch has no adaptive max pooling)")
    return _lower_pool(low, c)  # export swaps in the equal max pooling (AdaptiveMaxAsPool)


def _lower_pad(low, c: Call):
    xin = low.to_torch(c.x, c.name)
    return low.kernel(PAD, "PAD", c.name, [xin], low.shape(c.out))


def _lower_view(low, c: Call):
    return low.view(c.x, c.out, c.name)


def _lower_upsample(low, c: Call):
    if c.module.mode != "nearest":
        return low.unsupported(c, f"Upsample mode {c.module.mode!r}")
    # litert-torch: channel-last TRANSPOSE, GATHER_ND of the repeated positions, TRANSPOSE back
    x = low.to_torch(c.x, c.name)
    shape = low.shape(c.out)
    last = (1, *low.tensor(x).shape[2:], shape[1])
    a = low.kernel(LAYOUT, "TRANSPOSE", c.name, [x], last)
    b = low.kernel(LAYOUT, "GATHER_ND", c.name, [a], (1, *shape[2:], shape[1]))
    return low.kernel(LAYOUT, "TRANSPOSE", c.name, [b], shape)


# -- sizes ---------------------------------------------------------------------------------------
def _conv_shapes(m):
    return {"in_channels": m.in_channels, "out_channels": m.out_channels, "groups": m.groups}


def _conv_resize(m, want):
    return type(m)(want["in_channels"], want["out_channels"], m.kernel_size, stride=m.stride, padding=m.padding,
                   dilation=m.dilation, groups=want["groups"], bias=m.bias is not None, padding_mode=m.padding_mode)


def _conv_sync(m):
    depthwise = m.groups == m.in_channels and m.groups > 1
    multiplier = m.out_channels // m.in_channels  # outputs per input channel (depthwise)
    m.out_channels = m.weight.shape[0]
    if depthwise:
        m.in_channels = m.groups = m.out_channels // multiplier
    else:
        m.in_channels = m.weight.shape[1] * m.groups


def _linear_sync(m):
    m.out_features, m.in_features = m.weight.shape


def _bn_sync(m):
    m.num_features = m.running_mean.shape[0] if m.running_mean is not None else m.weight.shape[0]


def _ln_sync(m):
    if m.weight is not None:
        m.normalized_shape = (m.weight.shape[0],)


def _gn_sync(m):
    n = m.weight.shape[0]
    m.num_groups = n if m.num_groups == m.num_channels else m.num_groups
    m.num_channels = n


def _rnn_resize(m, want):
    kwargs = dict(input_size=want["input_size"], hidden_size=want["hidden_size"], num_layers=m.num_layers,
                  bias=m.bias, batch_first=m.batch_first, dropout=m.dropout, bidirectional=m.bidirectional)
    if isinstance(m, nn.RNN):
        kwargs["nonlinearity"] = m.nonlinearity
    return type(m)(**kwargs)


def _rnn_rebuild(m: nn.RNNBase, params: dict[str, torch.Tensor]) -> nn.RNNBase:
    # nn.GRU/LSTM keep their sizes in flattened weight buffers: build a new module, copy the slices.
    sizes = {"input_size": params["weight_ih_l0"].shape[1], "hidden_size": params["weight_hh_l0"].shape[0] // _gates(m)}
    new = _rnn_resize(m, sizes).to(params["weight_hh_l0"].device)
    with torch.no_grad():
        for name, t in params.items():
            getattr(new, name).copy_(t)
    new.train(m.training)
    return new


# -- folding and export --------------------------------------------------------------------------
def _bn_folds(prev: nn.Module, bn: nn.Module) -> bool:
    if not bn.track_running_stats or bn.running_mean is None:
        return False
    return isinstance(prev, (nn.Conv1d, nn.Conv2d)) or (isinstance(prev, nn.Linear) and isinstance(bn, nn.BatchNorm1d))


def _bn_fold(prev: nn.Module, bn: nn.Module) -> nn.Module | None:
    if not _bn_folds(prev, bn):
        return None
    return fuse_conv_bn_eval(prev, bn) if isinstance(prev, (nn.Conv1d, nn.Conv2d)) else fuse_linear_bn_eval(prev, bn)


def _adaptive_kernel(spatial, out) -> tuple[int, ...] | None:
    if any(o == 0 or s % o for s, o in zip(spatial, out)):
        return None
    return tuple(int(s // o) for s, o in zip(spatial, out))


class AdaptiveMaxAsPool(nn.Module):
    """``AdaptiveMaxPool{1,2}d`` as the plain max pooling it equals when the output size divides the
    input: litert-torch has no lowering for adaptive max pooling, but converts MAX_POOL_2D."""

    def __init__(self, output_size, dims: int):
        super().__init__()
        self.output_size, self.dims = output_size, dims

    def forward(self, x):
        spatial = tuple(x.shape[-self.dims:])
        want = self.output_size if isinstance(self.output_size, (tuple, list)) else (self.output_size,) * self.dims
        out = tuple(s if o is None else o for s, o in zip(spatial, want))
        k = _adaptive_kernel(spatial, out)
        if k is None:  # not a plain pooling: leave it to the converter (which names the op it lacks)
            fn = F.adaptive_max_pool1d if self.dims == 1 else F.adaptive_max_pool2d
            return fn(x, out)
        return F.max_pool1d(x, k, k) if self.dims == 1 else F.max_pool2d(x, k, k)


class SoftplusForExport(nn.Module):
    """Softplus as ``(z + |z|) / 2 + log(1 + exp(-|z|))`` (z = beta x), divided by beta. litert-torch
    turns ``nn.Softplus`` into a SELECT, which TensorFlow Lite Micro has no kernel for; this form
    needs ABS, EXP, LOG and arithmetic only, and never overflows. Above ``threshold`` PyTorch returns
    x itself, which differs from this by log(1 + exp(-threshold)) (2e-9 at the default 20)."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        z = x * self.beta if self.beta != 1 else x
        a = torch.abs(z)
        y = (z + a) * 0.5 + torch.log(1 + torch.exp(-a))
        return y / self.beta if self.beta != 1 else y


class MishForExport(SoftplusForExport):
    """Mish, ``x * tanh(softplus(x))``, with the SELECT-free softplus (see SoftplusForExport)."""

    def forward(self, x):
        return x * torch.tanh(super().forward(x))


class ELUForExport(nn.Module):
    """ELU as ``(x + |x|) / 2 + alpha * (exp((x - |x|) / 2) - 1)``: exact, and free of the SELECT
    litert-torch makes of ``nn.ELU`` (TensorFlow Lite Micro has no kernel for it)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        a = torch.abs(x)
        return (x + a) * 0.5 + self.alpha * (torch.exp((x - a) * 0.5) - 1)


def _rnn_weights(m):
    return tuple(n for n, _ in m.named_parameters(recurse=False) if n.startswith("weight_"))


# -- the registry --------------------------------------------------------------------------------
def _register_builtin() -> None:
    conv = LayerRule(couple=_couple_conv, lower=_lower_conv, macs=conv_macs, shapes=_conv_shapes,
                     resize=_conv_resize, sync=_conv_sync, weights=("weight",), weighted=True)
    for t in (nn.Conv1d, nn.Conv2d):  # depthwise and grouped convolutions are Conv with groups > 1
        register_layer(t, conv)
    register_layer(nn.Linear, LayerRule(
        couple=_couple_linear, lower=_lower_linear, macs=linear_macs,
        shapes=lambda m: {"in_features": m.in_features, "out_features": m.out_features},
        resize=lambda m, w: type(m)(w["in_features"], w["out_features"], bias=m.bias is not None),
        sync=_linear_sync, weights=("weight",), weighted=True, neurons=True))
    bn = LayerRule(
        couple=channelwise("weight", "bias", "running_mean", "running_var"), lower=_lower_batchnorm,
        shapes=lambda m: {"num_features": m.num_features},
        resize=lambda m, w: type(m)(w["num_features"], eps=m.eps, momentum=m.momentum, affine=m.affine,
                                    track_running_stats=m.track_running_stats),
        sync=_bn_sync, fold=_bn_fold, scale="weight")
    for t in (nn.BatchNorm1d, nn.BatchNorm2d):
        register_layer(t, bn)
    register_layer(nn.LayerNorm, LayerRule(
        couple=_couple_layernorm, lower=_lower_layernorm,
        shapes=lambda m: {"normalized_shape": list(m.normalized_shape)},
        resize=lambda m, w: type(m)(w["normalized_shape"], eps=m.eps, elementwise_affine=m.elementwise_affine),
        sync=_ln_sync, scale="weight"))
    register_layer(nn.GroupNorm, LayerRule(
        couple=_couple_groupnorm, lower=_lower_groupnorm,
        shapes=lambda m: {"num_groups": m.num_groups, "num_channels": m.num_channels},
        resize=lambda m, w: type(m)(w["num_groups"], w["num_channels"], eps=m.eps, affine=m.affine),
        sync=_gn_sync, scale="weight"))
    rnn = LayerRule(couple=_couple_rnn, lower=_lower_recurrent, macs=rnn_macs,
                    shapes=lambda m: {"input_size": m.input_size, "hidden_size": m.hidden_size},
                    resize=_rnn_resize, rebuild=_rnn_rebuild, weights=_rnn_weights, weighted=True, neurons=True)
    for t in (nn.GRU, nn.LSTM, nn.RNN):
        register_layer(t, rnn)

    act, plain = passthrough(activation=True), passthrough()
    register_layer(nn.ReLU, LayerRule(couple=act, lower=_lower_relu("RELU")))
    register_layer(nn.ReLU6, LayerRule(couple=act, lower=_lower_relu("RELU6")))
    register_layer(nn.LeakyReLU, LayerRule(couple=act, lower=elementwise("LEAKY_RELU", layout="torch")))
    register_layer(nn.GELU, LayerRule(couple=act, lower=elementwise("GELU", layout="torch")))
    register_layer(nn.Hardswish, LayerRule(couple=act, lower=elementwise("HARD_SWISH", layout="torch")))
    register_layer(nn.ELU, LayerRule(couple=act, lower=_lower_elu, export=lambda m: ELUForExport(m.alpha)))
    register_layer(nn.SiLU, LayerRule(couple=act, lower=_lower_silu))
    register_layer(nn.Mish, LayerRule(couple=act, lower=_lower_mish, export=lambda m: MishForExport()))
    register_layer(nn.Sigmoid, LayerRule(couple=plain, lower=elementwise("LOGISTIC")))
    register_layer(nn.Tanh, LayerRule(couple=plain, lower=elementwise("TANH", layout="torch-int8")))
    register_layer(nn.Hardsigmoid, LayerRule(couple=plain, lower=elementwise("ADD", "MUL", layout="torch",
                                                                             dtype=FLOAT)))
    register_layer(nn.Softplus, LayerRule(couple=plain, lower=_lower_softplus,
                                          export=lambda m: SoftplusForExport(m.beta)))
    register_layer(nn.Softmax, LayerRule(couple=_couple_softmax, lower=_lower_softmax(log=False)))
    register_layer(nn.LogSoftmax, LayerRule(couple=_couple_softmax, lower=_lower_softmax(log=True)))

    gone = LayerRule(couple=plain, lower=_lower_identity, identity=True)
    for t in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity):
        register_layer(t, gone)
    pool = LayerRule(couple=plain, lower=_lower_pool)
    for t in (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d):
        register_layer(t, pool)
    for t in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d):
        register_layer(t, LayerRule(couple=plain, lower=_lower_adaptive_avg))
    register_layer(nn.AdaptiveMaxPool1d, LayerRule(couple=plain, lower=_lower_adaptive_max,
                                                   export=lambda m: AdaptiveMaxAsPool(m.output_size, 1)))
    register_layer(nn.AdaptiveMaxPool2d, LayerRule(couple=plain, lower=_lower_adaptive_max,
                                                   export=lambda m: AdaptiveMaxAsPool(m.output_size, 2)))
    register_layer(nn.Upsample, LayerRule(couple=plain, lower=_lower_upsample))
    pad = LayerRule(couple=_couple_pad, lower=_lower_pad)
    for t in (nn.ConstantPad1d, nn.ConstantPad2d, nn.ZeroPad1d, nn.ZeroPad2d):
        register_layer(t, pad)
    shape = LayerRule(couple=_couple_reshape, lower=_lower_view)
    for t in (nn.Flatten, nn.Unflatten):
        register_layer(t, shape)


_register_builtin()
