"""Hardening during training (``--harden``): what each batch is replaced with.

- ``corruptions``: half of each batch (chosen at random) goes through one corruption of
  :mod:`wearprune.robust.corruptions` at a random severity (1..5), drawn per batch among those that
  apply to the data's channels. It acts on the standardised windows the model reads, so every level is
  relative to a channel's spread (a dead channel reads the training mean).
- ``adversarial``: the batch plus its PGD counterpart (5 steps, L-inf ``eps`` in channel standard
  deviations, Madry et al. 2018), so the loss is half clean, half adversarial.
"""

from __future__ import annotations

import numpy as np
import torch

from .corruptions import CORRUPTIONS, SEVERITIES, apply, target_channels

MODES = ("corruptions", "adversarial")
ADVERSARIAL_STEPS = 5


def hardened_batch(mode: str, model, xb: torch.Tensor, yb: torch.Tensor, *, task: str, channel_names: list[str],
                   rate_hz: float | None, gen: torch.Generator, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The (inputs, targets) to train on instead of ``(xb, yb)``."""
    if mode == "adversarial":
        from .attacks import pgd

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        adv = pgd(model, xb, yb, eps, task=task, steps=ADVERSARIAL_STEPS, seed=seed)
        return torch.cat([xb, adv]), torch.cat([yb, yb])
    if xb.dim() != 3:
        return xb, yb  # corruptions act on [B, C, T] windows
    names = [n for n, c in CORRUPTIONS.items() if target_channels(c, channel_names, xb.shape[1])]
    pick = int(torch.randint(0, len(names), (1,), generator=gen))
    severity = int(torch.randint(1, SEVERITIES + 1, (1,), generator=gen))
    half = torch.rand(len(xb), generator=gen) < 0.5
    if not half.any():
        return xb, yb
    c = CORRUPTIONS[names[pick]]
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    x = xb.detach().cpu().numpy().copy()  # never write into the caller's batch
    x[half.numpy()] = apply(x[half.numpy()], c, c.levels[severity - 1], rate_hz=rate_hz or 1.0,
                            channel_names=channel_names, seed=seed)
    return torch.from_numpy(np.ascontiguousarray(x)).to(xb.device), yb
