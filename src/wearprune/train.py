"""Training and fine-tuning: AdamW + cosine schedule, class-weighted loss, early stopping on the
validation subjects, optional knowledge distillation from a teacher."""

from __future__ import annotations

import copy
import random
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data.augment import AUGMENTATIONS, AUTO, augment, for_data
from .data.dataset import WearableDataset
from .errors import ConfigError, DataError
from .evaluate import headline, predict, task_metrics
from .prune.timing import bn_l1_penalty
from .robust.harden import hardened_batch

DEFAULT_EPOCHS = 60  # with patience 15 and augment auto: docs/recipe.md measured the gain
MIN_STEPS = 600  # optimizer steps a small data set gets when epochs are left to the default


class TrainingWarning(UserWarning):
    """Training finished but its result is suspect (e.g. validation never improved)."""


@dataclass
class TrainConfig:
    # None: DEFAULT_EPOCHS, or more on a small set so that it gets at least ``min_steps`` optimizer
    # steps (a few hundred windows are only a handful of batches per epoch); early stopping then
    # waits for those steps too. A number is taken as given.
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    patience: int = 15  # epochs without validation improvement before stopping
    class_weighted: bool = True  # inverse-frequency weights: wearable data is imbalanced
    augment: list[str] = field(default_factory=lambda: [AUTO])  # per modality: data/augment.py
    distill_alpha: float = 0.5  # share of the loss taken from the teacher when one is given
    distill_temperature: float = 4.0
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    bn_l1: float = 0.0  # Network Slimming: L1 penalty on BatchNorm scales, before pruning by bn_scale
    select_from_epoch: int = 1  # best-validation weights are taken from this epoch on (after a schedule)
    label_smoothing: float = 0.0  # classification only
    min_steps: int = MIN_STEPS  # used when epochs is None
    harden: str | None = None  # corruptions | adversarial: robust/harden.py
    harden_eps: float = 0.1  # adversarial hardening's L-inf budget, in channel standard deviations
    dp_epsilon: float | None = None  # DP-SGD with Opacus to this ε (privacy.py); None: ordinary training
    dp_delta: float | None = None  # None: 1 / (10 x training windows)
    dp_max_grad_norm: float = 1.0  # per-sample gradient clipping bound
    # set by prune and fit, which plan one noise level for all their trainings (privacy.planned_noise);
    # None: the noise that spends dp_epsilon in this training's planned epochs
    dp_noise_multiplier: float | None = None

    def validate(self) -> None:
        if (self.epochs is not None and self.epochs < 1) or self.batch_size < 1:
            raise ConfigError("epochs and batch size must be at least 1")
        if self.min_steps < 0:
            raise ConfigError(f"min_steps must be 0 or more, got {self.min_steps}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        unknown = set(self.augment) - set(AUGMENTATIONS) - {AUTO}
        if unknown:
            raise ConfigError(f"unknown augmentation {sorted(unknown)}; choose from {', '.join(AUGMENTATIONS)} "
                              f"or {AUTO} (per modality)")
        if not 0 <= self.distill_alpha <= 1:
            raise ConfigError("distill_alpha must be between 0 and 1")
        from .robust.harden import MODES

        if self.harden is not None and self.harden not in MODES:
            raise ConfigError(f"unknown --harden {self.harden!r}; choose {' or '.join(MODES)}")
        if not self.harden_eps > 0:
            raise ConfigError(f"--harden-eps must be positive (channel standard deviations), got {self.harden_eps}")
        if self.dp_epsilon is not None:
            from .privacy import valid_epsilon

            valid_epsilon(self.dp_epsilon)
            if self.harden == "adversarial":
                raise ConfigError("--harden adversarial adds a second copy of each window to the batch, which DP-SGD's "
                                  "per-window bound does not allow; use --harden corruptions with --dp-epsilon")
        if self.dp_delta is not None and not 0 < self.dp_delta < 1:
            raise ConfigError(f"--dp-delta must be in (0, 1), got {self.dp_delta}")
        if not self.dp_max_grad_norm > 0:
            raise ConfigError(f"--dp-max-grad-norm must be positive, got {self.dp_max_grad_norm}")
        if self.dp_noise_multiplier is not None and not self.dp_noise_multiplier > 0:
            raise ConfigError(f"the DP noise multiplier must be positive, got {self.dp_noise_multiplier}")
        check_device(self.device)

    def to_dict(self) -> dict:
        return asdict(self)

    def steps_per_epoch(self, n_windows: int) -> int:
        return max(1, -(-n_windows // self.batch_size))

    def planned_epochs(self, n_windows: int) -> int:
        """Epochs a training set of ``n_windows`` gets (before early stopping)."""
        if self.epochs is not None:
            return self.epochs
        return max(DEFAULT_EPOCHS, -(-self.min_steps // self.steps_per_epoch(n_windows)))

    def steps_before_stopping(self) -> int:
        """Optimizer steps early stopping waits for: ``min_steps`` when the epochs are the default."""
        return self.min_steps if self.epochs is None else 0


def epochs_for_steps(epochs: int, n_windows: int, batch_size: int, min_steps: int) -> int:
    """``epochs``, or more when that many epochs of ``n_windows`` give fewer than ``min_steps`` optimizer steps
    (a small data set is a handful of batches per epoch: a few epochs of fine-tuning barely move it)."""
    if epochs <= 0:
        return epochs
    per_epoch = max(1, -(-n_windows // batch_size))
    return max(epochs, -(-min_steps // per_epoch))


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("nan")
    score_name: str = ""
    seconds: float = 0.0
    stopped_early: bool = False
    steps: int = 0  # optimizer steps taken
    augment: list[str] = field(default_factory=list)  # as applied ("auto" resolved for the data)
    warning: str = ""  # set when the result is suspect (validation never improved)
    # How to get the same weights again: seeds, thread count, deterministic kernels (see reproducible())
    reproducibility: dict = field(default_factory=dict)
    dp: dict | None = None  # DP-SGD: ε spent, δ, noise multiplier, accountant (privacy.record)

    def to_dict(self) -> dict:
        return asdict(self)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


_NONDETERMINISTIC = "does not have a deterministic implementation"


@contextmanager
def reproducible(device: str, seed: int) -> Iterator[dict]:
    """Seed every generator and ask torch for deterministic kernels while the block runs; yield the
    record a run stores (seed, thread count, settings, and any op torch could not make deterministic).

    Deterministic algorithms are switched on for CPU only: on CUDA they need CUBLAS_WORKSPACE_CONFIG
    set before CUDA starts, so there cuDNN is pinned (no autotuning) and the record says the run may
    still vary. The previous global settings are restored afterwards: other code is not affected.
    """
    set_seed(seed)
    cpu = not str(device).startswith("cuda")
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    record = {"seed": seed, "torch_threads": torch.get_num_threads(), "device": str(device),
              "torch": torch.__version__, "deterministic": cpu, "cudnn_deterministic": True,
              "data_order": "torch.Generator seeded with the seed (batches and augmentation)",
              "nondeterministic_ops": []}
    if not cpu:
        record["note"] = ("CUDA: deterministic algorithms not enforced (cuBLAS needs CUBLAS_WORKSPACE_CONFIG before "
                          "start-up); reruns can differ slightly: compare seeds, not single runs")
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    if cpu:
        # warn_only: an op without a deterministic kernel warns (recorded below) instead of failing the run
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield record
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
        seen = set()
        for w in caught:
            text = str(w.message)
            if _NONDETERMINISTIC in text:
                op = text.split(_NONDETERMINISTIC)[0].strip()
                if op not in record["nondeterministic_ops"]:
                    record["nondeterministic_ops"].append(op)
            elif (w.category, text) not in seen:  # other warnings go on to the caller, once each
                seen.add((w.category, text))
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if record["nondeterministic_ops"]:
            record["deterministic"] = False


def check_device(name: str) -> None:
    """Refuse a device this machine lacks at validate time, before any data are loaded or a model
    is built (torch would only fail at the first ``.to(device)``, with a traceback)."""
    if not isinstance(name, str):
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    if name in ("auto", "cpu"):
        return
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ConfigError(f"unknown device {name!r}; use --device auto, cpu or cuda (or cuda:N)")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked but no CUDA device is available; use --device cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name} asked but this machine has {torch.cuda.device_count()} CUDA device(s) "
                          "(cuda:0 ...); use --device cuda, cpu or auto")


def _check_classes(train: WearableDataset) -> None:
    # One class on the training side trains a model that always answers it (macro-F1 looks perfect).
    if train.task != "classification":
        return
    present = np.unique(train.y)
    if len(present) < 2:
        only = int(present[0]) if len(present) else -1
        label = train.class_names[only] if 0 <= only < len(train.class_names) else str(only)
        raise DataError(f"{train.name}: training needs at least two classes; found only {label!r} in the training "
                        "windows; add windows of other classes")


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def fit(
    model: nn.Module,
    train: WearableDataset,
    val: WearableDataset,
    config: TrainConfig | None = None,
    *,
    teacher: nn.Module | None = None,
    target_scale: dict | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    after_step: Callable[[], None] | None = None,
) -> History:
    """Train ``model`` in place on normalised data and restore its best validation weights.

    ``target_scale`` ({"mean", "std"}) standardises regression targets for the loss;
    ``after_step`` runs after every optimiser step.
    """
    config = config or TrainConfig()
    config.validate()
    _check_classes(train)
    device = resolve_device(config.device)
    with reproducible(device, config.seed) as record:
        history = _fit(model, train, val, config, device, teacher, target_scale, on_epoch, on_batch, after_step)
    history.reproducibility = record
    return history


def never_improved(history: History, config: TrainConfig) -> str:
    """A one-line warning when validation never beat its first eligible epoch ('' otherwise). After
    training from scratch the model then kept its first weights, which usually means it learnt
    nothing that carries to new subjects (a fine-tune may peak at once: this is for training)."""
    first = max(1, config.select_from_epoch)
    later = [e for e in history.epochs if e["epoch"] > first]
    if len(later) < 3 or history.best_epoch > first:  # two epochs tell little: short runs are often tests
        return ""
    name = history.score_name or "score"
    return (f"validation {name.removeprefix('val_')} never improved after epoch {first} "
            f"({history.best_score:.4g}) in {len(history.epochs)} epochs ({history.steps} optimizer steps): the model "
            f"kept its epoch-{first} weights; check the labels, add windows or subjects, or lower the learning rate")


def _fit(model, train, val, config, device, teacher, target_scale, on_epoch, on_batch, after_step) -> History:
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    X = torch.from_numpy(train.X)
    y = torch.from_numpy(_loss_targets(train, target_scale))
    weights = _class_weights(train).to(device) if config.class_weighted and train.task == "classification" else None
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = config.steps_per_epoch(len(X))
    epochs = config.planned_epochs(len(X))
    trained, engine, loader = model, None, None
    if config.dp_epsilon is not None:
        from .privacy import default_delta, make_private

        delta = config.dp_delta or default_delta(len(X))
        trained, opt, loader, engine = make_private(model, opt, len(X), config.batch_size, epochs, config.dp_epsilon,
                                                    delta, config.dp_max_grad_norm, config.seed,
                                                    noise_multiplier=config.dp_noise_multiplier)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)

    history = History()
    history.augment, triples = for_data(config.augment, train.layout, train.channel_names)
    best_state, best, since_best = None, None, 0
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for b, idx in enumerate(_batches(len(X), config.batch_size, gen, loader)):
            if loader is not None and len(idx) == 0:
                continue  # an empty Poisson batch: nothing to release
            if loader is None and len(idx) < 2 and len(X) > 1:
                continue  # BatchNorm cannot train on a batch of one
            xb = augment(X[idx], history.augment, gen, triples).to(device)
            yb = y[idx].to(device)
            if config.harden:
                xb, yb = hardened_batch(config.harden, model, xb, yb, task=train.task,
                                        channel_names=train.channel_names, rate_hz=train.rate_hz, gen=gen,
                                        eps=config.harden_eps)
            out = trained(xb)
            if loader is not None:  # DP-SGD: each window's loss on its own (a weighted mean couples the batch)
                loss = _window_losses(out, yb, train.task, weights, config.label_smoothing).mean()
            else:
                loss = _task_loss(out, yb, train.task, weights, config.label_smoothing)
            if teacher is not None:
                with torch.no_grad():
                    t_out = teacher(xb)
                loss = (1 - config.distill_alpha) * loss + config.distill_alpha * _distill_loss(
                    out, t_out, train.task, config.distill_temperature)
            if config.bn_l1:
                loss = loss + config.bn_l1 * bn_l1_penalty(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step:
                after_step()  # e.g. re-apply pruning masks so sparsity does not drift
            sched.step()
            history.steps += 1
            total += loss.item() * len(xb)
            count += len(xb)
            if on_batch:
                on_batch(b + 1, steps_per_epoch)
        metrics = task_metrics(val, predict(model, val.X, device=device), target_scale)
        name, score = headline(metrics)
        eligible = epoch + 1 >= config.select_from_epoch
        better = eligible and (best is None or (score > best if name == "macro_f1" else score < best))
        record = {"epoch": epoch + 1, "train_loss": total / max(count, 1), f"val_{name}": score,
                  "lr": sched.get_last_lr()[0]}
        history.epochs.append(record)
        if better:
            best, since_best = score, 0
            best_state = copy.deepcopy(model.state_dict())
            history.best_epoch, history.best_score, history.score_name = epoch + 1, score, f"val_{name}"
        elif eligible:
            since_best += 1
        if on_epoch:
            on_epoch(record)
        if since_best >= config.patience and history.steps >= config.steps_before_stopping():
            history.stopped_early = True
            break
    if engine is not None:
        from .privacy import record

        history.dp = record(engine, delta, config.dp_epsilon, config.dp_max_grad_norm)
        trained._close()  # Opacus's hooks and per-sample gradients leave the model
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - started
    model.to("cpu").eval()
    return history


def _loss_targets(ds: WearableDataset, target_scale: dict | None) -> np.ndarray:
    if ds.task == "classification":
        return ds.y.astype(np.int64)
    y = ds.y.astype(np.float32)
    if target_scale:
        y = (y - target_scale["mean"]) / target_scale["std"]
    return y.astype(np.float32)


def _class_weights(ds: WearableDataset) -> torch.Tensor:
    counts = np.bincount(ds.y, minlength=ds.n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    # Square root tempers the weights: full inverse frequency over-corrects on rare MIT-BIH classes.
    w = np.sqrt(w)
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


def _batches(n: int, batch_size: int, gen: torch.Generator, loader=None):
    """Window indices per step: a seeded permutation cut in batches, or (DP-SGD) Opacus's Poisson batches."""
    if loader is not None:
        for (idx,) in loader:
            yield idx
        return
    perm = torch.randperm(n, generator=gen)
    for b in range(-(-n // batch_size)):
        yield perm[b * batch_size:(b + 1) * batch_size]


def _window_losses(out: torch.Tensor, y: torch.Tensor, task: str, weights: torch.Tensor | None,
                   label_smoothing: float = 0.0) -> torch.Tensor:
    if task == "classification":
        losses = F.cross_entropy(out, y, label_smoothing=label_smoothing, reduction="none")
        return losses * weights[y] if weights is not None else losses
    return F.smooth_l1_loss(out[:, 0], y, reduction="none")


def _task_loss(out: torch.Tensor, y: torch.Tensor, task: str, weights: torch.Tensor | None,
               label_smoothing: float = 0.0) -> torch.Tensor:
    if task == "classification":
        return F.cross_entropy(out, y, weight=weights, label_smoothing=label_smoothing)
    return F.smooth_l1_loss(out[:, 0], y)


def _distill_loss(out: torch.Tensor, teacher_out: torch.Tensor, task: str, temperature: float) -> torch.Tensor:
    if task == "classification":
        t = temperature
        return F.kl_div(F.log_softmax(out / t, 1), F.softmax(teacher_out / t, 1), reduction="batchmean") * t * t
    return F.mse_loss(out, teacher_out)
