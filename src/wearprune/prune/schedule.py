"""Pruning schedules: how much to have pruned at each training step (or prune → fine-tune cycle).

Schedules are plain frozen dataclasses so they can live in a recipe file and in a run's
``config.json``: ``to_dict()`` gives JSON-safe values plus a ``"kind"`` field, and
``schedule_from_dict`` builds the schedule back (a bad dict is a one-line ``ConfigError``).

Each schedule answers ``sparsity_at(step)``, the cumulative fraction of prunable weights (or units)
that should be removed at ``step``, and ``should_update(step)``, whether a training loop should
prune at that step. A loop therefore reads::

    for step in range(total):
        ...train one step...
        if schedule.should_update(step):
            prune_to(schedule.sparsity_at(step))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from numbers import Real
from typing import Any, ClassVar

from ..errors import ConfigError


def _fraction(name: str, value: object) -> float:
    """A sparsity in [0, 1): 1 would remove everything, which no schedule should ask for."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not 0 <= value < 1:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)  # plain float: numpy scalars would not survive json.dumps


def _integer(name: str, value: object, minimum: int, what: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {what or minimum}, got {value!r}")
    return int(value)


class _Serialisable:
    """``to_dict`` / ``from_dict`` shared by the schedule dataclasses."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        if not isinstance(d, Mapping):
            raise ConfigError(f"a {cls.kind!r} schedule must be a mapping, got {type(d).__name__}")
        data = dict(d)
        kind = data.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ConfigError(f"expected a {cls.kind!r} schedule, got kind {kind!r}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names), key=str)
        if unknown:
            raise ConfigError(f"unknown field(s) {unknown} for a {cls.kind!r} schedule; expected {names}")
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in data]
        if missing:
            raise ConfigError(f"a {cls.kind!r} schedule needs field(s) {missing}")
        return cls(**data)


@dataclass(frozen=True)
class OneShot(_Serialisable):
    """Prune to ``target`` once, at step 0 (after training, before any fine-tuning)."""

    target: float
    kind: ClassVar[str] = "one_shot"

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", _fraction("target", self.target))

    def sparsity_at(self, step: int) -> float:
        return self.target

    def should_update(self, step: int) -> bool:
        return step == 0


@dataclass(frozen=True)
class CubicSchedule(_Serialisable):
    """Gradual pruning of Zhu & Gupta (2017), "To prune, or not to prune".

    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n Δt))^3 for t0 <= t <= t0 + n Δt, where
    t0 = ``begin_step``, t0 + n Δt = ``end_step``, Δt = ``frequency``: sparsity rises fast while
    the network has many redundant weights and slowly near the target. The value only changes on
    update steps (t0, t0 + Δt, ...); if ``end_step - begin_step`` is not a multiple of Δt, the last
    jump to the target happens at ``end_step`` itself. Before t0 it is ``initial``, after the end
    ``target``.
    """

    target: float
    begin_step: int
    end_step: int
    frequency: int = 1
    initial: float = 0.0
    kind: ClassVar[str] = "cubic"

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", _fraction("target", self.target))
        object.__setattr__(self, "initial", _fraction("initial", self.initial))
        _integer("begin_step", self.begin_step, 0)
        _integer("end_step", self.end_step, self.begin_step, f"begin_step ({self.begin_step})")
        _integer("frequency", self.frequency, 1)
        if self.initial > self.target:
            raise ConfigError(f"initial sparsity {self.initial} is above the target {self.target}")

    def sparsity_at(self, step: int) -> float:
        if step >= self.end_step:  # checked first so begin_step == end_step prunes at once
            return self.target
        if step <= self.begin_step:
            return self.initial
        last_update = self.begin_step + (step - self.begin_step) // self.frequency * self.frequency
        progress = (last_update - self.begin_step) / (self.end_step - self.begin_step)
        return self.target + (self.initial - self.target) * (1.0 - progress) ** 3

    def should_update(self, step: int) -> bool:
        if not self.begin_step <= step <= self.end_step:
            return False
        return (step - self.begin_step) % self.frequency == 0 or step == self.end_step

    def update_steps(self) -> list[int]:
        """Every step at which the sparsity changes (or is first set)."""
        steps = list(range(self.begin_step, self.end_step + 1, self.frequency))
        return steps if steps[-1] == self.end_step else [*steps, self.end_step]


@dataclass(frozen=True)
class IterativeSchedule(_Serialisable):
    """``cycles`` rounds of prune → fine-tune, each removing the same fraction of what remains.

    The kept fraction after cycle k is (1 - target)^(k / cycles), so the last cycle reaches
    ``target`` exactly; geometric steps are gentler than equal ones on an already sparse model.
    ``step`` counts completed cycles: ``sparsity_at(0) == 0``, ``sparsity_at(cycles) == target``.
    """

    target: float
    cycles: int
    kind: ClassVar[str] = "iterative"

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", _fraction("target", self.target))
        _integer("cycles", self.cycles, 1)

    @property
    def fraction_per_cycle(self) -> float:
        """Share of the remaining weights each cycle removes."""
        return 1.0 - (1.0 - self.target) ** (1.0 / self.cycles)

    def sparsity_at(self, step: int) -> float:
        k = min(max(step, 0), self.cycles)
        if k == self.cycles:
            return self.target  # exact, not 1 - (1 - target) ** 1.0 with rounding
        return 1.0 - (1.0 - self.target) ** (k / self.cycles)

    def should_update(self, step: int) -> bool:
        return 1 <= step <= self.cycles

    def ratios(self) -> list[float]:
        """Cumulative ratio to prune to in cycle 1, 2, ..., ``cycles``."""
        return [self.sparsity_at(k) for k in range(1, self.cycles + 1)]


Schedule = OneShot | CubicSchedule | IterativeSchedule
SCHEDULES: dict[str, type[Schedule]] = {c.kind: c for c in (OneShot, CubicSchedule, IterativeSchedule)}


def schedule_from_dict(d: Mapping[str, Any]) -> Schedule:
    """Build a schedule from ``to_dict()`` output (or a recipe entry), choosing the class by ``"kind"``."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"a schedule must be a mapping with a 'kind' field, got {type(d).__name__}")
    kind = d.get("kind")
    if not isinstance(kind, str) or kind not in SCHEDULES:
        raise ConfigError(f"unknown schedule kind {kind!r}; choose one of: {', '.join(SCHEDULES)}")
    return SCHEDULES[kind].from_dict(d)


def cycle_ratios(sizes: Mapping[str, int], ratios: Mapping[str, float], cycles: int) -> list[dict[str, float]]:
    """Per-group ratios that reach ``ratios`` (one-shot shares of each group's ``sizes``) in ``cycles`` cuts.

    Each cut removes an equal share of the units still to go, as a ratio of the group's width at that cut,
    so the last cut leaves exactly the widths the one-shot prune leaves (the pruner keeps
    ``size - round(ratio * size)`` units)."""
    cycles = _integer("cycles", cycles, 1)
    keep_final = {g: sizes[g] - int(round(r * sizes[g])) for g, r in ratios.items()}
    width = {g: sizes[g] for g in ratios}
    steps = []
    for c in range(1, cycles + 1):
        step = {}
        for g in ratios:
            keep = sizes[g] - int(round((sizes[g] - keep_final[g]) * c / cycles))
            step[g] = (width[g] - keep) / width[g] if width[g] else 0.0
            width[g] = keep
        steps.append(step)
    return steps
