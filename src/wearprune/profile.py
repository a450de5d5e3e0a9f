"""Model size and compute: parameters, exact MACs (recurrent layers included), bytes, host latency.

MAC convention: multiply-accumulates of the weight layers (convolution, linear, and every gate
matrix product of GRU/LSTM/RNN cells at every time step). Normalisation, activations, pooling
and the RNN's elementwise gate arithmetic are not counted (they are O(activations), not
O(weights)); ``count_macs(..., detail=True)`` lists the count per layer.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers at their stored dtype (the fp32 weights file, roughly)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _conv_macs(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    kernel = 1
    for k in m.kernel_size:
        kernel *= k
    per_output = (m.in_channels // m.groups) * kernel
    return out[0].numel() * per_output  # per example: batch element 0


def _linear_macs(m: nn.Linear, inp: torch.Tensor, out: torch.Tensor) -> int:
    return (out[0].numel() // m.out_features) * m.in_features * m.out_features


_GATES = {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}


def _rnn_macs(m: nn.RNNBase, inp: torch.Tensor, out) -> int:
    x = inp
    steps = x.shape[1] if m.batch_first else x.shape[0]
    if x.dim() == 2:  # unbatched input [T, F]
        steps = x.shape[0]
    gates = _GATES[type(m)]
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


def count_macs(model: nn.Module, example: torch.Tensor, detail: bool = False):
    """MACs for one example (the first of the batch ``example``)."""
    counts: dict[str, int] = {}
    handles = []

    def hook_for(name: str, fn):
        def hook(m, args, out):
            counts[name] = counts.get(name, 0) + int(fn(m, args[0], out))

        return hook

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            handles.append(m.register_forward_hook(hook_for(name, _conv_macs)))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(hook_for(name, _linear_macs)))
        elif type(m) in _GATES:
            handles.append(m.register_forward_hook(hook_for(name, _rnn_macs)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    total = sum(counts.values())
    return (total, counts) if detail else total


def host_latency_ms(model: nn.Module, example: torch.Tensor, runs: int = 50, warmup: int = 5) -> float:
    """Median wall time of one batch-1 forward pass on this machine's CPU, in milliseconds."""
    model.eval()
    x = example[:1]
    # One thread: a batch-1 pass on a tiny model is dominated by thread hand-offs otherwise, and
    # one core is what a wearable has.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _median_time(model, x, runs, warmup)
    finally:
        torch.set_num_threads(threads)


def _median_time(model: nn.Module, x: torch.Tensor, runs: int, warmup: int) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def profile_model(model: nn.Module, example: torch.Tensor, latency_runs: int = 50) -> dict:
    return {
        "params": count_params(model),
        "macs": count_macs(model, example),
        "size_bytes": model_bytes(model),
        "host_latency_ms": round(host_latency_ms(model, example, runs=latency_runs), 4),
        "host_latency_note": f"median of {latency_runs} batch-1 forward passes, "
                             f"torch {torch.__version__}, 1 CPU thread",
    }
