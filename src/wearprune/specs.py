"""What a verb is asked to do, as data: frozen, serialisable specs validated once when built.

The command line builds them from its options; the Python verbs accept them (or the same fields as
keyword arguments); the run directory stores the spec that made it (``config.json``).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass, field, fields

from .errors import ConfigError

EXPORT_FORMATS = ("tflite", "onnx", "c")
QUANTIZERS = ("auto", "pt2e", "ai-edge-quantizer")
SELECT = ("auto", "search", "uniform")  # how fit picks its winner among the feasible candidates
PRUNE_METHODS = ("channel", "neuron", "weight", "layer")


def _number(name: str, value, *, low: float | None = None, positive: bool = False, integer: bool = False) -> None:
    """One line for a bad number: not a number, not finite, or out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    if low is not None and value < low:
        raise ConfigError(f"{name} must be at least {low:g}, got {value}")


_DEFAULTED = {"options"}  # None given for these means "the default"


class _Spec:
    """Shared by every spec: ``to_dict`` / ``from_dict`` with unknown keys refused."""

    def _plain_numbers(self) -> None:
        """NumPy (or other) integer and real scalars become int and float: a spec is stored as JSON."""
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, bool) or type(value) in (int, float):
                continue
            if isinstance(value, numbers.Integral):
                object.__setattr__(self, f.name, int(value))
            elif isinstance(value, numbers.Real):
                object.__setattr__(self, f.name, float(value))

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise ConfigError(f"a {cls.__name__} is a mapping of its fields, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def resolve(cls, spec, given: dict):
        """A verb's spec from either a spec object or its fields as keyword arguments (not both)."""
        if spec is not None and given:
            raise ConfigError(f"pass either a {cls.__name__} or its fields, not both (got {sorted(given)})")
        if spec is not None:
            if not isinstance(spec, cls):
                raise ConfigError(f"expected a {cls.__name__}, got {type(spec).__name__}")
            return spec
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConfigError(f"unknown arguments {unknown}; a {cls.__name__} has {sorted(known)}")
        return cls(**{k: v for k, v in given.items() if v is not None or k not in _DEFAULTED})


def _check_harden(harden, eps) -> None:
    from .robust.harden import MODES

    if harden is not None and harden not in MODES:
        raise ConfigError(f"unknown --harden {harden!r}; choose {' or '.join(MODES)}")
    _number("--harden-eps", eps, positive=True)


PART_NAME = re.compile(r"[A-Za-z0-9_-]+")  # it becomes an Optuna parameter name and a key in fit.json


def _check_parts(parts) -> dict[str, list[str]] | str:
    """``"auto"``, or {name: [patterns]} with every name a plain word and every pattern a non-empty string."""
    if parts == "auto":
        return parts
    if not isinstance(parts, dict) or not parts:
        raise ConfigError(f"parts must be 'auto' or a non-empty mapping of part name to module-name patterns "
                          f"(e.g. {{'front': 'features.*', 'rnn': 'rnn'}}), got {parts!r}")
    checked = {}
    for name, patterns in parts.items():
        if not isinstance(name, str) or not PART_NAME.fullmatch(name):
            raise ConfigError(f"part name {name!r} must be letters, digits, '_' or '-'")
        listed = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(listed, (list, tuple)) or not listed or not all(
                isinstance(p, str) and p.strip() for p in listed):
            raise ConfigError(f"part {name!r} needs a module-name pattern or a non-empty list of them, got "
                              f"{patterns!r}")
        checked[name] = [p.strip() for p in listed]
    return checked


def parse_parts(values: list[str] | tuple[str, ...] | None) -> dict[str, list[str]] | str | None:
    """Command-line ``--part`` values (``NAME=PATTERN[,PATTERN]``, repeatable; or ``auto`` alone) as
    ``FitSpec.parts``."""
    if not values:
        return None
    if list(values) == ["auto"]:
        return "auto"
    parts: dict[str, list[str]] = {}
    for value in values:
        name, sep, patterns = value.partition("=")
        if not sep or not name.strip() or value == "auto":
            raise ConfigError(f"--part {value!r}: expected NAME=PATTERN[,PATTERN] (e.g. front='features.*'), "
                              "or --part auto alone")
        if name.strip() in parts:
            raise ConfigError(f"--part {name.strip()!r} is given twice")
        parts[name.strip()] = [p for p in patterns.split(",") if p.strip()]
    return _check_parts(parts)


@dataclass(frozen=True)
class PruneSpec(_Spec):
    """Prune a trained run, then fine-tune it. ``recipe`` (a dict with ``steps``) overrides
    method / ratio / importance / options; ``cycles`` > 1 prunes iteratively to ``ratio``."""

    method: str = "channel"
    ratio: float = 0.5
    importance: str = "l2"
    options: dict = field(default_factory=dict)
    recipe: dict | None = None
    finetune_epochs: int = 10
    cycles: int = 1
    distill: bool = True
    lr: float = 1e-3
    calib_windows: int = 512
    harden: str | None = None  # corruptions | adversarial, while fine-tuning (robust/harden.py)
    harden_eps: float = 0.1
    dp_epsilon: float | None = None  # fine-tune with DP-SGD to this ε (privacy.py); data-free criteria only
    dp_delta: float | None = None
    dp_max_grad_norm: float = 1.0

    def __post_init__(self):
        self._plain_numbers()
        _check_harden(self.harden, self.harden_eps)
        if self.dp_epsilon is not None:
            from .privacy import check_importance, valid_epsilon

            valid_epsilon(self.dp_epsilon)
            for step in ((self.recipe or {}).get("steps") or [{"importance": self.importance}]):
                check_importance(step.get("importance", self.importance))
        if self.method not in PRUNE_METHODS:
            raise ConfigError(f"unknown pruning method {self.method!r}; choose one of: {', '.join(PRUNE_METHODS)}")
        _number("ratio", self.ratio)
        if not 0 <= self.ratio < 1:
            raise ConfigError(f"ratio must be in [0, 1), got {self.ratio}")
        _number("cycles", self.cycles, low=1, integer=True)
        _number("finetune epochs", self.finetune_epochs, low=0, integer=True)
        _number("learning rate", self.lr, positive=True)
        _number("calibration windows", self.calib_windows, low=1, integer=True)
        if self.recipe is not None:
            from .prune.recipe import Recipe

            Recipe.from_dict(self.recipe)  # validated here, once


@dataclass(frozen=True)
class ExportSpec(_Spec):
    """Export a run: formats, int8 (post-training or ``qat_epochs`` of quantisation-aware
    fine-tuning), calibration windows, quantiser, and how much worse than fp32 int8 may be."""

    formats: tuple[str, ...] = EXPORT_FORMATS
    int8: bool = True
    calib_windows: int = 256
    qat_epochs: int = 0
    quantizer: str = "auto"
    int8_tolerance: float = 0.05

    def __post_init__(self):
        self._plain_numbers()
        formats = tuple(self.formats) if not isinstance(self.formats, str) else tuple(
            f.strip() for f in self.formats.split(",") if f.strip())
        object.__setattr__(self, "formats", formats)
        bad = [f for f in formats if f not in EXPORT_FORMATS]
        if bad or not formats:
            raise ConfigError(f"unknown export format {', '.join(bad) or '(none)'}; use {', '.join(EXPORT_FORMATS)}")
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"unknown quantizer {self.quantizer!r}; use {', '.join(QUANTIZERS)}")
        _number("qat epochs", self.qat_epochs, low=0, integer=True)
        _number("int8 tolerance", self.int8_tolerance, low=0)
        from .quant.pt2e import MIN_CALIBRATION

        _number("calibration windows", self.calib_windows, integer=True)
        if self.int8 and self.calib_windows < MIN_CALIBRATION:
            raise ConfigError(f"int8 calibration needs at least {MIN_CALIBRATION} windows, got --calib-windows "
                              f"{self.calib_windows}")


@dataclass(frozen=True)
class FitSpec(_Spec):
    """Fit a trained run to a device: the limits (RAM and flash default to the chip's), the search
    (trials, epochs, how the winner is picked) and where it runs (workers, storage, Ray).

    ``parts`` ({part name: module-name pattern or list of patterns}, or ``"auto"``: front end /
    recurrent layers / head by layer kind) makes the search sample the importance criterion per part
    (docs/parts.md); None searches one criterion for the whole model.

    Train large, then compress (docs/budget.md): ``grow`` (a width factor ≥ 1, or ``"auto"``: ×1, ×2, ×4)
    trains the zoo model that much wider as the start and teacher of the search; ``baselines`` trains the
    winner's architecture from scratch and the zoo model at the width that meets the limits, and ships
    whichever of the three is best on validation; ``rank_folds`` (0, or ≥ 2) ranks the finalists on that
    many inner folds over the training subjects; ``cycles`` cuts the winner in that many steps, each
    fine-tuned with distillation; ``final_lrs``: the final fine-tune's learning rates, the best on
    validation kept."""

    device: str
    max_latency_ms: float | None = None
    max_energy_uj: float | None = None
    max_ram_kb: float | None = None
    max_flash_kb: float | None = None
    max_drop: float | None = None
    int8: bool = True
    trials: int = 24
    trial_epochs: int = 3
    final_epochs: int = 10
    select: str = "auto"
    workers: int | None = None
    storage: str | None = None
    ray: str | None = None
    seed: int = 0
    parts: dict[str, str | list[str]] | str | None = None
    grow: float | str | None = None
    baselines: bool = True
    rank_folds: int = 3
    cycles: int = 1
    final_lrs: tuple[float, ...] = (1e-3, 3e-3)
    harden: str | None = None  # the final fine-tune and the baselines train hardened (robust/harden.py)
    harden_eps: float = 0.1
    # score trials and contenders on clean + corrupted validation (autofit/scoring.py)
    robust_search: bool = False
    # DP-SGD for every training the fit runs, all of them together spending this ε (privacy.py, docs in README)
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    dp_max_grad_norm: float = 1.0

    def __post_init__(self):
        self._plain_numbers()
        _check_harden(self.harden, self.harden_eps)
        if self.dp_epsilon is not None:
            from .privacy import valid_epsilon

            valid_epsilon(self.dp_epsilon)
            if self.grow is not None:
                raise ConfigError("--grow with --dp-epsilon is not built: the wider teacher would be one more DP "
                                  "training to plan; fit a DP-trained run without --grow")
            if self.harden == "adversarial":
                raise ConfigError("--harden adversarial adds a second copy of each window to the batch, which "
                                  "DP-SGD's per-window bound does not allow; use --harden corruptions")
            if self.dp_delta is not None and not 0 < self.dp_delta < 1:
                raise ConfigError(f"--dp-delta must be in (0, 1), got {self.dp_delta}")
            _number("--dp-max-grad-norm", self.dp_max_grad_norm, positive=True)
        if self.grow is not None and self.grow != "auto":
            if isinstance(self.grow, str):
                try:
                    object.__setattr__(self, "grow", float(self.grow))
                except ValueError:
                    raise ConfigError(f"--grow must be a width factor (e.g. 2) or 'auto', got {self.grow!r}") from None
            _number("--grow", self.grow, low=1)
            object.__setattr__(self, "grow", float(self.grow))
        _number("--rank-folds", self.rank_folds, low=0, integer=True)
        if self.rank_folds == 1:
            raise ConfigError("--rank-folds must be 0 (rank on the validation subjects) or at least 2")
        _number("--cycles", self.cycles, low=1, integer=True)
        lrs = (self.final_lrs,) if isinstance(self.final_lrs, (int, float)) else tuple(self.final_lrs or ())
        if not lrs:
            raise ConfigError("final_lrs needs at least one learning rate")
        for lr in lrs:
            _number("final learning rate", lr, positive=True)
        object.__setattr__(self, "final_lrs", tuple(float(lr) for lr in lrs))
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError("fit needs a device: a profile name (see `wearprune devices`) or a YAML file")
        if self.parts is not None:
            object.__setattr__(self, "parts", _check_parts(self.parts))
        for name in ("max_latency_ms", "max_energy_uj", "max_ram_kb", "max_flash_kb"):
            value = getattr(self, name)
            if value is not None:
                _number(f"--{name.replace('_', '-')}", value, positive=True)
        if self.max_drop is not None:
            _number("--max-drop", self.max_drop, low=0)
        _number("trials", self.trials, low=1, integer=True)
        _number("trial epochs", self.trial_epochs, low=0, integer=True)
        _number("final epochs", self.final_epochs, low=0, integer=True)
        if self.workers is not None:
            _number("workers", self.workers, low=1, integer=True)
        if self.select not in SELECT:
            raise ConfigError(f"unknown selection {self.select!r}; choose one of {', '.join(SELECT)}")

    def budget(self, device):
        """The :class:`~wearprune.devices.budget.Budget` on the loaded device profile."""
        from .devices.budget import Budget

        return Budget.for_device(device, max_ram_kb=self.max_ram_kb, max_flash_kb=self.max_flash_kb,
                                 max_latency_ms=self.max_latency_ms, max_energy_uj=self.max_energy_uj,
                                 max_drop=self.max_drop)
