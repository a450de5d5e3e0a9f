"""Training-time augmentation of [B, C, T] window batches (torch, applied per batch).

Each function keeps the batch shape and is a no-op on other layouts' tensors. ``auto`` picks per
modality (``for_data``): a window set with 3-axis motion channels (accelerometer, gyroscope) gets a
per-channel gain and a random rotation of each triple (how a watch sits differs between wearers);
other data get none (docs/recipe.md measures both choices).
"""

from __future__ import annotations

import math
import re

import torch

AUGMENTATIONS = ("jitter", "scaling", "rotation", "time_warp")
AUTO = "auto"
_AXIS = re.compile(r"^(.*?)[_\-. ]?([xyz])$", re.IGNORECASE)


def axis_triples(channel_names: list[str]) -> list[int]:
    """First indices of consecutive x, y, z channels with one prefix (acc_x, acc_y, acc_z; gyroX ...)."""
    starts, i = [], 0
    names = [str(n) for n in channel_names]
    while i + 2 < len(names):
        parts = [_AXIS.match(n) for n in names[i:i + 3]]
        if (all(parts) and [m.group(2).lower() for m in parts] == ["x", "y", "z"]
                and len({m.group(1).lower() for m in parts}) == 1):
            starts.append(i)
            i += 3
        else:
            i += 1
    return starts


def for_data(names: list[str], layout: str, channel_names: list[str]) -> tuple[list[str], list[int] | None]:
    """The augmentations to apply to this data set and the 3-axis groups ``rotation`` turns
    (None: every consecutive triple, for channels without axis names)."""
    triples = axis_triples(channel_names) if layout == "window" else []
    if AUTO in names:
        names = ["scaling", "rotation"] if triples else []
    return list(names), (triples or None)


def jitter(x: torch.Tensor, sigma: float = 0.05, g: torch.Generator | None = None) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=g)


def scaling(x: torch.Tensor, sigma: float = 0.1, g: torch.Generator | None = None) -> torch.Tensor:
    # One gain per window and channel: sensor gain differs between devices and wearers.
    return x * (1.0 + sigma * torch.randn(x.shape[0], x.shape[1], 1, generator=g))


def rotation(x: torch.Tensor, max_deg: float = 30.0, g: torch.Generator | None = None,
             starts: list[int] | None = None) -> torch.Tensor:
    """Rotate each 3-axis group (accel, gyro) by a random rotation: the watch sits differently.
    ``starts``: the groups' first channels (default: every consecutive triple)."""
    b, c, _ = x.shape
    out = x.clone()
    for start in (range(0, c - c % 3, 3) if starts is None else starts):
        rot = _random_rotations(b, max_deg, g)
        out[:, start:start + 3] = torch.bmm(rot, x[:, start:start + 3])
    return out


def time_warp(x: torch.Tensor, max_stretch: float = 0.1, g: torch.Generator | None = None) -> torch.Tensor:
    """Resample each window on a smoothly stretched time axis (speed varies between people)."""
    b, c, t = x.shape
    stretch = 1.0 + max_stretch * (2 * torch.rand(b, 1, generator=g) - 1)
    grid = torch.linspace(0, 1, t).unsqueeze(0) * stretch
    grid = grid - (grid[:, -1:] - 1) * torch.rand(b, 1, generator=g)  # random anchor keeps range mostly inside
    pos = (grid.clamp(0, 1) * (t - 1))
    lo = pos.floor().long().clamp(0, t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (pos - lo).unsqueeze(1)
    idx_lo = lo.unsqueeze(1).expand(b, c, t)
    idx_hi = hi.unsqueeze(1).expand(b, c, t)
    return x.gather(2, idx_lo) * (1 - w) + x.gather(2, idx_hi) * w


def _random_rotations(b: int, max_deg: float, g: torch.Generator | None) -> torch.Tensor:
    axis = torch.randn(b, 3, generator=g)
    angle = (2 * torch.rand(b, generator=g) - 1) * math.radians(max_deg)
    return rotation_matrices(axis, angle)


def rotation_matrices(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """[b, 3, 3] rotations by ``angle`` (radians, [b]) about ``axis`` ([b, 3], normalised here)."""
    b = axis.shape[0]
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-8)
    k = torch.zeros(b, 3, 3, dtype=axis.dtype)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(1, 2)
    s, c = angle.sin().view(b, 1, 1), angle.cos().view(b, 1, 1)
    return torch.eye(3, dtype=axis.dtype).expand(b, 3, 3) + s * k + (1 - c) * torch.bmm(k, k)  # Rodrigues


_FUNCS = {"jitter": jitter, "scaling": scaling, "rotation": rotation, "time_warp": time_warp}


def augment(x: torch.Tensor, names: list[str], g: torch.Generator | None = None,
            triples: list[int] | None = None) -> torch.Tensor:
    if x.dim() != 3 or not names:
        return x
    for name in names:
        x = rotation(x, g=g, starts=triples) if name == "rotation" else _FUNCS[name](x, g=g)
    return x
