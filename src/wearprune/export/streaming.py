"""Recurrent models as a streaming step: firmware calls the step once per frame with the state
tensors in and out, instead of an unrolled window (which TensorFlow Lite Micro cannot run).

A ``CNNGRU``/``CNNLSTM`` becomes two graphs:
- ``frontend``: the convolutional feature extractor over a window, ``[1, C, T] -> [1, T', F]``;
- ``step``: one time step of every RNN layer plus the classifier,
  ``(frame [1, F], state_1, ..., state_L) -> (outputs [1, n], new states...)``.
Gate matrices are split per gate (one Linear each), so the step lowers to FULLY_CONNECTED,
LOGISTIC, TANH, MUL and ADD only: no slicing, no concatenation.
"""

from __future__ import annotations

import torch
from torch import nn


class _Frontend(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.features = model.features

    def forward(self, x):
        return self.features(x).transpose(1, 2)


def _gate_linears(rnn: nn.RNNBase, layer: int, gates: int, suffix: str = "") -> tuple[nn.ModuleList, nn.ModuleList]:
    """One Linear per gate for input and hidden state (``suffix`` "_reverse": the backward direction)."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}{suffix}"), getattr(rnn, f"weight_hh_l{layer}{suffix}")
    b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}{suffix}"), getattr(rnn, f"bias_hh_l{layer}{suffix}")
    hidden = rnn.hidden_size
    ins, hs = nn.ModuleList(), nn.ModuleList()
    for g in range(gates):
        rows = slice(g * hidden, (g + 1) * hidden)
        li = nn.Linear(w_ih.shape[1], hidden)
        lh = nn.Linear(hidden, hidden)
        with torch.no_grad():
            li.weight.copy_(w_ih[rows])
            li.bias.copy_(b_ih[rows])
            lh.weight.copy_(w_hh[rows])
            lh.bias.copy_(b_hh[rows])
        ins.append(li)
        hs.append(lh)
    return ins, hs


class _RNNStep(nn.Module):
    gates = 1

    def __init__(self, rnn: nn.RNNBase, head: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList()
        for layer in range(rnn.num_layers):
            ins, hs = _gate_linears(rnn, layer, self.gates)
            self.layers.append(nn.ModuleDict({"x": ins, "h": hs}))
        self.head = head


class GRUStep(_RNNStep):
    """One step of a unidirectional multi-layer ``nn.GRU`` (PyTorch's gate order r, z, n) + head."""

    gates = 3

    def forward(self, frame, *states):
        x, new = frame, []
        for k, layer in enumerate(self.layers):  # states indexed, not iterated: torch.fx traces this
            x = _gru_cell(layer["x"], layer["h"], x, states[k])
            new.append(x)
        return (self.head(x), *new)


def _gru_cell(gx, gh, x, h):
    r = torch.sigmoid(gx[0](x) + gh[0](h))
    z = torch.sigmoid(gx[1](x) + gh[1](h))
    n = torch.tanh(gx[2](x) + r * gh[2](h))
    return n + z * (h - n)  # = (1 - z) * n + z * h


class LSTMStep(_RNNStep):
    """One step of a unidirectional multi-layer ``nn.LSTM`` (gate order i, f, g, o); states are h1, c1, h2, c2..."""

    gates = 4

    def forward(self, frame, *states):
        x, new = frame, []
        for k, layer in enumerate(self.layers):
            h, c = states[2 * k], states[2 * k + 1]
            gx, gh = layer["x"], layer["h"]
            i = torch.sigmoid(gx[0](x) + gh[0](h))
            f = torch.sigmoid(gx[1](x) + gh[1](h))
            g = torch.tanh(gx[2](x) + gh[2](h))
            o = torch.sigmoid(gx[3](x) + gh[3](h))
            c = f * c + i * g
            x = o * torch.tanh(c)
            new += [x, c]
        return (self.head(x), *new)


class CentreBiGRU(nn.Module):
    """``EpochSequenceNet`` (per-epoch encoder, bidirectional GRU, the centre epoch's stage) as a
    graph TFLite Micro can run: the GRU unrolled with one Linear per gate, each direction only as
    far as the centre epoch (forward 0..c, backward S-1..c). litert-torch's own unrolled GRU
    concatenates every step's output and trips TFLite Micro's CONCATENATION input limit."""

    def __init__(self, model: nn.Module):
        super().__init__()
        rnn = model.rnn
        self.encoder, self.classifier, self.centre = model.encoder, model.classifier, model.centre
        self.hidden = rnn.hidden_size
        fx, fh = _gate_linears(rnn, 0, 3)
        bx, bh = _gate_linears(rnn, 0, 3, "_reverse")
        self.fwd = nn.ModuleDict({"x": fx, "h": fh})
        self.bwd = nn.ModuleDict({"x": bx, "h": bh})

    def forward(self, x):
        e = self.encoder(x)
        h = torch.zeros(x.shape[0], self.hidden)
        for t in range(self.centre + 1):
            h = _gru_cell(self.fwd["x"], self.fwd["h"], e[:, t], h)
        b = torch.zeros(x.shape[0], self.hidden)
        for t in range(e.shape[1] - 1, self.centre - 1, -1):
            b = _gru_cell(self.bwd["x"], self.bwd["h"], e[:, t], b)
        return self.classifier(torch.cat([h, b], dim=1))


def device_form(model: nn.Module) -> nn.Module:
    """The graph to convert for a whole-window model: ``model`` itself, or its unrolled form where
    TFLite Micro cannot run litert-torch's conversion of it (the bidirectional sequence model)."""
    rnn = getattr(model, "rnn", None)
    if isinstance(rnn, nn.GRU) and rnn.bidirectional and rnn.num_layers == 1 and hasattr(model, "centre"):
        return CentreBiGRU(model).eval()
    return model


def streaming_parts(model: nn.Module) -> tuple[nn.Module, nn.Module, list[torch.Size]]:
    """(frontend, step, state shapes) for a conv + RNN zoo model."""
    rnn = getattr(model, "rnn", None)
    if not isinstance(rnn, (nn.GRU, nn.LSTM)) or rnn.bidirectional or not hasattr(model, "features"):
        raise ValueError("streaming export needs a conv front end + unidirectional GRU/LSTM (cnn_gru, cnn_lstm)")
    head = model.classifier
    step = GRUStep(rnn, head) if isinstance(rnn, nn.GRU) else LSTMStep(rnn, head)
    per_layer = 1 if isinstance(rnn, nn.GRU) else 2
    shapes = [torch.Size([1, rnn.hidden_size])] * (rnn.num_layers * per_layer)
    return _Frontend(model).eval(), step.eval(), shapes


def run_streaming(frontend: nn.Module, step: nn.Module, shapes, x: torch.Tensor) -> torch.Tensor:
    """PyTorch reference of the streaming form: the front end, then one step per frame."""
    outs = []
    with torch.no_grad():
        for window in x:
            frames = frontend(window[None])[0]
            states = [torch.zeros(s) for s in shapes]
            for t in range(frames.shape[0]):
                y, *states = step(frames[t : t + 1], *states)
            outs.append(y[0])
    return torch.stack(outs)


def step_calibration(frontend: nn.Module | None, step: nn.Module, shapes, windows: torch.Tensor,
                     limit: int = 1024) -> list[tuple[torch.Tensor, ...]]:
    """The step's inputs ``(frame, *states)`` met while streaming ``windows`` in PyTorch: int8
    calibration for the step graph (states included, so their ranges are the ones firmware sees).
    ``frontend`` None: the window itself, channel-last, is the frame sequence."""
    seen: list[tuple[torch.Tensor, ...]] = []
    with torch.no_grad():
        for window in windows:
            frames = frontend(window[None])[0] if frontend is not None else window.T
            states = [torch.zeros(s) for s in shapes]
            for t in range(frames.shape[0]):
                args = (frames[t : t + 1], *states)
                seen.append(tuple(a.clone() for a in args))
                _, *states = step(*args)
    stride = max(1, len(seen) // limit)
    return seen[::stride][:limit]
