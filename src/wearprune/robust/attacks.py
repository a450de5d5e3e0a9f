"""Adversarial examples on the fp32 model: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018)
under an L-infinity budget ``eps`` in units of each channel's standard deviation. The models read
standardised windows (per-channel z-scores), so eps is the same number in the model's input space.

The attacker maximises the task's loss (cross-entropy, or squared error of the scaled target)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError


def _loss(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    if task == "classification":
        return nn.functional.cross_entropy(out, y.long())
    return nn.functional.mse_loss(out[:, 0], y.float())


def _targets(y: np.ndarray, task: str, target_scale: dict | None) -> torch.Tensor:
    if task == "regression" and target_scale:
        y = (y - target_scale["mean"]) / target_scale["std"]
    return torch.from_numpy(np.asarray(y))


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, task: str, steps: int = 10,
        step_size: float | None = None, random_start: bool = True, seed: int = 0) -> torch.Tensor:
    """``x`` moved within ``eps`` (L-inf) to raise the loss; ``steps=1`` without a random start is FGSM."""
    if not eps >= 0:
        raise ConfigError(f"eps must be >= 0 (in channel standard deviations), got {eps}")
    if eps == 0:
        return x.clone()
    step_size = step_size if step_size is not None else (eps if steps == 1 else 2.5 * eps / steps)
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    adv = x.clone()
    if random_start:
        adv = adv + (2 * torch.rand(x.shape, generator=gen) - 1) * eps
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        loss = _loss(model(adv), y, task)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + step_size * grad.sign()
        adv = torch.max(torch.min(adv, x + eps), x - eps)
    model.train(was_training)
    return adv.detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, task: str) -> torch.Tensor:
    return pgd(model, x, y, eps, task=task, steps=1, random_start=False)


def attacked_outputs(model: nn.Module, X: np.ndarray, y: np.ndarray, eps: float, *, method: str, task: str,
                     target_scale: dict | None, batch_size: int = 256, steps: int = 10) -> np.ndarray:
    """The model's outputs on ``X`` attacked by ``method`` (fgsm | pgd) at ``eps``."""
    if method not in ("fgsm", "pgd"):
        raise ConfigError(f"unknown attack {method!r}; use fgsm or pgd")
    targets = _targets(y, task, target_scale)
    outs = []
    for i in range(0, len(X), batch_size):
        xb, yb = torch.from_numpy(X[i:i + batch_size]), targets[i:i + batch_size]
        adv = fgsm(model, xb, yb, eps, task=task) if method == "fgsm" else pgd(model, xb, yb, eps, task=task,
                                                                               steps=steps, seed=i)
        with torch.no_grad():
            outs.append(model(adv).numpy())
    return np.concatenate(outs)
