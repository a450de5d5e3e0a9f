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

from .layers import conv_macs, first_window, linear_macs, rnn_macs, rule_for


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers at their stored dtype (the fp32 weights file, roughly)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


# Kept for callers of the old private names; the rules in wearprune.layers own MAC counting.
_conv_macs, _linear_macs, _rnn_macs = conv_macs, linear_macs, rnn_macs


def count_macs(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], detail: bool = False):
    """MACs for one example (the first of the batch ``example``; a tuple: one tensor per input).

    Every layer whose rule counts MACs is counted where it is called; the layers inside such a
    layer are not counted again (the cost model sees it as one call too).
    """
    inputs = first_window(example)
    counts: dict[str, int] = {}
    handles = []

    def hook_for(name: str, fn):
        def hook(m, args, out):
            counts[name] = counts.get(name, 0) + int(fn(m, args[0], out))

        return hook

    ruled: list[str] = []  # modules with a rule: one call each, their children are inside it
    for name, m in model.named_modules():
        if any(p == "" or name.startswith(p + ".") for p in ruled):
            continue
        rule = rule_for(m)
        if rule is None:
            continue
        ruled.append(name)
        if rule.macs is not None:
            handles.append(m.register_forward_hook(hook_for(name, rule.macs)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    total = sum(counts.values())
    return (total, counts) if detail else total


def host_latency_ms(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], runs: int = 50,
                    warmup: int = 5) -> float:
    """Median wall time of one batch-1 forward pass on this machine's CPU, in milliseconds."""
    model.eval()
    x = first_window(example)
    # One thread: a batch-1 pass on a tiny model is dominated by thread hand-offs otherwise, and
    # one core is what a wearable has.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _median_time(model, x, runs, warmup)
    finally:
        torch.set_num_threads(threads)


def _median_time(model: nn.Module, x: tuple[torch.Tensor, ...], runs: int, warmup: int) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(*x)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(*x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def profile_model(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], latency_runs: int = 50) -> dict:
    return {
        "params": count_params(model),
        "macs": count_macs(model, example),
        "size_bytes": model_bytes(model),
        "host_latency_ms": round(host_latency_ms(model, example, runs=latency_runs), 4),
        "host_latency_note": f"median of {latency_runs} batch-1 forward passes, "
                             f"torch {torch.__version__}, 1 CPU thread",
    }
