"""Differential privacy for training and fine-tuning: DP-SGD with Opacus (per-sample gradients clipped
to ``max_grad_norm``, Gaussian noise, Poisson-sampled batches), the noise set so that the planned
epochs spend at most ``epsilon`` at ``delta``; the ε actually spent (early stopping may end sooner)
comes from Opacus's accountant.

What the guarantee covers, said where it is reported: one *window* of the training subjects (record
level; a subject contributes many windows, so per person the bound is weaker, by group privacy); the
model's training steps only — the normaliser's per-channel mean/std and the int8 calibration read
training windows without noise, and a teacher trained on the same data is a release of its own.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

from torch import nn

from .errors import ConfigError

ACCOUNTANT = "prv"  # Opacus's PRV accountant (Gopi et al. 2021): tighter than RDP for the same noise
DATA_FREE = ("l1", "l2", "fpgm", "random", "bn_scale")  # pruning criteria that read no training windows


def check_model(model: nn.Module) -> None:
    """One line when Opacus cannot compute per-sample gradients for this model, and what to use."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ConfigError("DP-SGD cannot train BatchNorm (each window's output depends on its batch); train the "
                          "model with --norm group (cnn1d, dscnn, resnet1d, cnn_gru, cnn_lstm take it)")
    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        raise ConfigError("DP-SGD of GRU/LSTM models is not built: Opacus needs its own DPGRU/DPLSTM layers, whose "
                          "weights the streaming export does not read yet; use a convolutional model")
    from opacus.validators import ModuleValidator

    was_training = model.training
    model.train()  # the validator also asks for training mode, which is not what this check is about
    errors = ModuleValidator.validate(model, strict=False)
    model.train(was_training)
    if errors:
        raise ConfigError(f"Opacus cannot train this model with DP-SGD: {str(errors[0]).splitlines()[0][:200]}")


def check_importance(importance: str) -> None:
    if importance not in DATA_FREE:
        raise ConfigError(f"importance {importance!r} reads training windows, which --dp-epsilon does not account for; "
                          f"use a data-free criterion: {', '.join(DATA_FREE)}")


def default_delta(n_windows: int) -> float:
    """δ below 1 / (training windows), the usual rule: 1 / (10 N)."""
    return 1.0 / (10 * max(1, n_windows))


def make_private(model: nn.Module, optimizer, n_windows: int, batch_size: int, epochs: int, epsilon: float,
                 delta: float, max_grad_norm: float, seed: int, noise_multiplier: float | None = None):
    """(wrapped model, DP optimizer, Poisson loader of window indices, privacy engine). ``noise_multiplier``:
    planned by a caller that runs several trainings on one budget (``planned_noise``); None: set so that
    this training's ``epochs`` spend ``epsilon``."""
    import torch
    from opacus import PrivacyEngine

    # Opacus's own chatter, not the user's concern: hooks on a first layer whose input needs no gradient, and
    # the accountant's note on its search range (the PRV accountant reports the ε used here)
    warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha", category=UserWarning)
    warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)  # seeded: reproducible
    check_model(model)
    model.train()  # Opacus wraps a module in training mode
    indices = torch.utils.data.TensorDataset(torch.arange(n_windows))
    loader = torch.utils.data.DataLoader(indices, batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    engine = PrivacyEngine(accountant=ACCOUNTANT)
    noise = noise_multiplier if noise_multiplier is not None else planned_noise(epsilon, delta, n_windows,
                                                                               batch_size, epochs)
    wrapped, dp_optimizer, dp_loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=noise, max_grad_norm=max_grad_norm,
        noise_generator=torch.Generator().manual_seed(seed + 1))
    return wrapped, dp_optimizer, dp_loader, engine


def steps_per_epoch(n_windows: int, batch_size: int) -> int:
    """Poisson-sampled batches per epoch, as Opacus makes them (sample rate = 1 / this)."""
    return max(1, -(-n_windows // batch_size))


def planned_noise(epsilon: float, delta: float, n_windows: int, batch_size: int, epochs: int) -> float:
    """The noise multiplier with which ``epochs`` epochs of DP-SGD (in one training or spread over several, at
    the same batch size) compose to ``epsilon`` at ``delta`` under the accountant."""
    from opacus.accountants.utils import get_noise_multiplier

    per_epoch = steps_per_epoch(n_windows, batch_size)
    with _quiet():
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=1.0 / per_epoch,
                                          steps=max(1, epochs) * per_epoch, accountant=ACCOUNTANT,
                                          epsilon_tolerance=0.01))


@contextmanager
def _quiet():
    """The PRV accountant bounds its domain with RDP, whose note on its order range is not the user's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha", category=UserWarning)
        yield


def history_of(rec: dict | None) -> list[list]:
    """A record's accountant history [[noise multiplier, sample rate, steps], ...] (older records: one entry)."""
    if not rec:
        return []
    if rec.get("history") is not None:
        return [list(h) for h in rec["history"]]
    return [[rec["noise_multiplier"], rec["sample_rate"], rec["steps"]]] if rec.get("steps") else []


def lineage(rec: dict | None) -> list[list]:
    """Every DP step behind a run's weights: its parents' (``parent_history``) and its own."""
    return [list(h) for h in (rec or {}).get("parent_history", [])] + history_of(rec)


def compose(history: list, delta: float) -> float:
    """ε of every step in ``history`` together (the accountant composes them; tighter than adding ε)."""
    from opacus.accountants import create_accountant

    steps = [tuple(h) for h in history if h[2] > 0]
    if not steps:
        return 0.0
    acc = create_accountant(ACCOUNTANT)
    acc.history = steps
    with _quiet():
        return float(acc.get_epsilon(delta))


def combined(records: list[dict], *, delta: float, epsilon_target: float, max_grad_norm: float,
             parent: dict | None, what: str) -> dict:
    """One record for a command that ran several DP trainings on the same windows (cycles of a fine-tune, the
    contenders of a fit): ``epsilon`` composes all of them; ``epsilon_total`` adds the parent run's training
    (None when the parent was trained without DP: then the model as a whole has no guarantee)."""
    own = [h for r in records for h in history_of(r)]
    prior = lineage(parent)
    first = records[0] if records else {}
    return {**{k: first.get(k) for k in ("accountant", "unit", "noise_rng")},
            "epsilon": compose(own, delta), "epsilon_target": epsilon_target, "delta": delta,
            "noise_multiplier": own[-1][0] if own else None, "sample_rate": own[-1][1] if own else None,
            "steps": int(sum(h[2] for h in own)), "max_grad_norm": max_grad_norm, "history": own,
            "trainings": len(records), "covers": what,
            "epsilon_parent": compose(prior, delta) if parent else None,
            "epsilon_total": compose(prior + own, delta) if parent else None,
            "composition": f"{ACCOUNTANT} accountant over the parent run's steps and these" if parent else
                           "the parent run was not trained with DP: its weights (and a teacher's outputs) carry no "
                           "guarantee, so the model as a whole has none",
            "parent_history": prior,
            "not_covered": first.get("not_covered")}


def record(engine, delta: float, epsilon_target: float, max_grad_norm: float) -> dict:
    """What the run reports about its privacy (metrics.json, config, report), from the accountant's history."""
    history = engine.accountant.history  # [(noise multiplier, sample rate, steps), ...]
    steps = sum(h[2] for h in history)
    return {"epsilon": float(engine.get_epsilon(delta)) if steps else 0.0, "epsilon_target": epsilon_target,
            "delta": delta, "accountant": ACCOUNTANT, "noise_multiplier": float(history[-1][0]) if history else None,
            "sample_rate": float(history[-1][1]) if history else None, "steps": int(steps),
            "history": [[float(s), float(q), int(n)] for s, q, n in history],
            "max_grad_norm": max_grad_norm, "unit": "one training window (record-level)",
            "noise_rng": "seeded torch generator (Opacus secure_mode off): reproducible, not for a deployed guarantee",
            "not_covered": "the normaliser's mean/std and int8 calibration (training windows, no noise); a teacher's "
                           "own training"}


def epsilon_of(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε of ``steps`` Poisson-sampled Gaussian steps, from the same accountant (for checks)."""
    return compose([[noise_multiplier, sample_rate, steps]], delta)


def valid_epsilon(epsilon) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon <= 0:
        raise ConfigError(f"--dp-epsilon must be a positive number, got {epsilon!r}")
    return float(epsilon)
