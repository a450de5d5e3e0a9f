"""Peak RAM the way TensorFlow Lite Micro plans it: tensor lifetimes, then a greedy first-fit.

TFLite Micro does not sum tensors. Each activation tensor lives from the kernel that writes it to
the last kernel that reads it (model inputs from the start, outputs to the end); buffers are
rounded up to 16 bytes, sorted largest first (equal sizes: the later tensor first, as TFLite Micro's
planner orders them), and each is placed at the lowest offset that does not collide with a
buffer alive at the same time. The arena's planned part is the highest end offset. Kernel scratch
buffers join the plan with the lifetime of their kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 16


@dataclass(frozen=True)
class Buffer:
    size: int
    first: int  # first kernel (1-based; 0 = before the first kernel) that needs it
    last: int  # last kernel that reads it


def align(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


def greedy_plan(buffers: list[Buffer]) -> tuple[int, list[int]]:
    """Arena bytes and the offset of each buffer, by TFLite Micro's greedy algorithm."""
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, -i))
    offsets = [0] * len(buffers)
    placed: list[int] = []  # indices, kept sorted by offset
    for i in order:
        b = buffers[i]
        candidate = 0
        for j in placed:
            other = buffers[j]
            if other.first > b.last or b.first > other.last:
                continue  # not alive at the same time
            if offsets[j] - candidate >= b.size:
                break  # the gap before this buffer is big enough
            candidate = max(candidate, offsets[j] + other.size)
        offsets[i] = candidate
        placed.append(i)
        placed.sort(key=lambda j: offsets[j])
    peak = max((offsets[i] + buffers[i].size for i in range(len(buffers))), default=0)
    return peak, offsets


def lifetimes(n_kernels: int, kernel_io: list[tuple[list[int], int]], inputs: list[int], outputs: list[int],
              n_tensors: int) -> dict[int, tuple[int, int]]:
    """Tensor id -> (first, last) kernel index, as TFLite Micro marks them."""
    first: dict[int, int] = {t: 0 for t in inputs}
    last: dict[int, int] = {t: 0 for t in inputs}
    for k, (ins, out) in enumerate(kernel_io, start=1):
        first.setdefault(out, k)
        for t in ins:
            last[t] = k
        last[out] = max(last.get(out, k), k)
    for t in outputs:
        last[t] = n_kernels
    return {t: (first[t], last[t]) for t in sorted(first)}

