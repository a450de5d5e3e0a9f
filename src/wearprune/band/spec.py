"""The band spec (``band.yaml``): one chip, one battery, the band's always-on parts, and its tasks.

Read with ``yaml.safe_load`` only; every bad field is one line naming the field, the file and its
line. Every number of the battery and the always-on baseline carries a source (a datasheet, a
measurement, or the word *assumption*), as the device profiles do. See ``examples/band.yaml``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError

HOURS = ("day", "night", "all")
DEFAULT_LEVELS = (("full", 50.0), ("saver", 20.0), ("critical", 0.0))  # (name, battery % above which it applies)
# What band plan asks of each task's fit unless the task says otherwise: a quick search (the joint
# plan then chooses among each task's ladder), limits from the task's dense model (see plan.py).
FIT_DEFAULTS = {"trials": 12, "trial_epochs": 2, "final_epochs": 8}
_TOP = ("device", "battery", "night_hours", "baseline", "tasks", "levels", "objective", "min_days")
_TASK = ("name", "data", "data_options", "model", "width", "run", "every_s", "hours", "floor", "epochs", "fit",
         "ladder")
_BATTERY = ("mah", "volts", "usable", "source")
_BASELINE = ("name", "ua", "uw", "hours", "source")
OBJECTIVES = ("battery", "accuracy")


@dataclass(frozen=True)
class Battery:
    mah: float
    volts: float
    source: str
    usable: float = 1.0  # fraction of the rated capacity the band may use (cut-off voltage, ageing)

    @property
    def joules(self) -> float:
        return self.mah * 3.6 * self.volts * self.usable  # mAh x 3.6 = coulombs


@dataclass(frozen=True)
class BaselineItem:
    """An always-on part of the band: a current at the battery voltage (``ua``) or a power (``uw``),
    drawn ``hours`` a day."""

    name: str
    uw: float
    hours: float
    source: str


@dataclass(frozen=True)
class TaskSpec:
    name: str
    data: str
    every_s: float  # one inference every this many seconds while active
    hours: str  # day | night | all
    floor: float  # the task's headline metric must stay at or above (F1) / at or below (MAE) this
    model: str | None = None  # zoo model trained on ``data`` ...
    run: str | None = None  # ... or an existing trained run directory
    width: float = 1.0
    epochs: int | None = None  # dense training epochs (None: the training recipe's)
    data_options: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)  # FitSpec fields for this task's fit (device excluded)
    ladder: tuple[float, ...] = (2.0, 4.0)  # cheaper rungs below the fitted model: MACs / each factor


@dataclass(frozen=True)
class BandSpec:
    device: str
    battery: Battery
    tasks: tuple[TaskSpec, ...]
    baseline: tuple[BaselineItem, ...] = ()
    night_hours: float = 8.0
    levels: tuple[tuple[str, float], ...] = DEFAULT_LEVELS
    objective: str = "battery"
    min_days: float | None = None
    path: str = ""

    def active_hours(self, task: TaskSpec) -> float:
        return {"day": 24.0 - self.night_hours, "night": self.night_hours, "all": 24.0}[task.hours]

    def inferences_per_day(self, task: TaskSpec) -> float:
        return self.active_hours(task) * 3600.0 / task.every_s

    def task(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ConfigError(f"no task {name!r} in the band; tasks: {', '.join(t.name for t in self.tasks)}")

    def to_dict(self) -> dict:
        """The spec as band.yaml would write it (``from_dict`` reads it back)."""
        d = asdict(self)
        d.pop("path")
        d["levels"] = [{name: above} for name, above in self.levels]
        d["baseline"] = [{k: v for k, v in b.items()} for b in d["baseline"]]
        d["tasks"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in t.items() if v is not None}
                      for t in d["tasks"]]
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> BandSpec:
        """The inverse of :meth:`to_dict` (``band.json`` keeps the spec that made the plan)."""
        return _parse(d, lambda where, why: _fail("band.json", None, where, why), "band.json")


def _fail(path: str, line: int | None, where: str, why: str):
    at = f" line {line}" if line else ""
    raise ConfigError(f"band spec {path}{at}: {where} {why}")


def load_band_spec(path: str | os.PathLike) -> BandSpec:
    """Read and check ``band.yaml``; a bad field is one line naming it (file, line, field)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read band spec {path}: {e.strerror if isinstance(e, OSError) else e}; "
                          "give a band.yaml (see examples/band.yaml)") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ConfigError(f"band spec {path}{where} is not valid YAML ({problem}); a spec holds plain values only"
                          ) from None
    lines = _lines(root)

    def bad(where: str, why: str):
        _fail(str(path), lines.get(where) or lines.get(where.rsplit(".", 1)[0]), where, why)

    spec = _parse(data, bad, str(path))
    object.__setattr__(spec, "path", str(path))
    return spec


def _lines(node, prefix: str = "") -> dict[str, int]:
    """Dotted field path (``tasks[1].every_s``) -> 1-based line, from the composed YAML nodes."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{prefix}.{k.value}" if prefix else str(k.value)
            out[key] = k.start_mark.line + 1
            out.update(_lines(v, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            key = f"{prefix}[{i}]"
            out[key] = v.start_mark.line + 1
            out.update(_lines(v, key))
    return out


def _mapping(value, where: str, known: tuple[str, ...], bad) -> dict:
    if not isinstance(value, dict):
        bad(where, f"must be a mapping with fields {', '.join(known)}")
    for k in value:
        if k not in known:
            bad(f"{where}.{k}" if where else str(k), f"is not a known field (known: {', '.join(known)})")
    return value


def _positive(value, where: str, bad, *, zero: bool = False, upper: float | None = None) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value < 0 if zero else value <= 0) or (upper is not None and value > upper):
        limit = f" and at most {upper:g}" if upper is not None else ""
        bad(where, f"must be a {'non-negative' if zero else 'positive'} number{limit}, got {value!r}")
    return float(value)


def _text(value, where: str, bad) -> str:
    if not isinstance(value, str) or not value.strip():
        bad(where, f"must be text, got {value!r}")
    return value.strip()


def _parse(data, bad, path: str) -> BandSpec:
    d = _mapping(data, "", _TOP, bad)
    for k in ("device", "battery", "tasks"):
        if k not in d:
            bad(k, "is missing (a band spec needs device, battery and tasks)")
    b = _mapping(d["battery"], "battery", _BATTERY, bad)
    for k in ("mah", "volts", "source"):
        if k not in b:
            bad(f"battery.{k}", "is missing")
    battery = Battery(mah=_positive(b["mah"], "battery.mah", bad), volts=_positive(b["volts"], "battery.volts", bad),
                      source=_text(b["source"], "battery.source", bad),
                      usable=_positive(b.get("usable", 1.0), "battery.usable", bad, upper=1.0))
    night = _positive(d.get("night_hours", 8.0), "night_hours", bad, zero=True, upper=24.0)
    baseline = []
    items = d.get("baseline") or []
    if not isinstance(items, list):
        bad("baseline", "must be a list of {name, ua or uw, hours, source}")
    for i, item in enumerate(items):
        where = f"baseline[{i}]"
        item = _mapping(item, where, _BASELINE, bad)
        if ("ua" in item) == ("uw" in item):
            bad(where, "needs exactly one of ua (current at the battery voltage) or uw (power)")
        if not str(item.get("source", "")).strip():
            bad(f"{where}.source", "is missing: every number needs its source (datasheet, measurement or "
                                   "'assumption')")
        uw = (_positive(item["ua"], f"{where}.ua", bad, zero=True) * battery.volts if "ua" in item
              else _positive(item["uw"], f"{where}.uw", bad, zero=True))
        baseline.append(BaselineItem(name=_text(item.get("name"), f"{where}.name", bad), uw=uw,
                                     hours=_positive(item.get("hours", 24.0), f"{where}.hours", bad, upper=24.0),
                                     source=str(item["source"]).strip()))
    tasks_raw = d["tasks"]
    if not isinstance(tasks_raw, list) or not tasks_raw:
        bad("tasks", "must be a non-empty list of tasks")
    tasks = [_task(t, f"tasks[{i}]", bad, path) for i, t in enumerate(tasks_raw)]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        bad("tasks", f"names must be unique, got {names}")
    levels = _levels(d.get("levels"), bad)
    objective = d.get("objective", "battery")
    if objective not in OBJECTIVES:
        bad("objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    min_days = d.get("min_days")
    if min_days is not None:
        min_days = _positive(min_days, "min_days", bad)
    device = _text(d["device"], "device", bad)
    return BandSpec(device=device, battery=battery, tasks=tuple(tasks), baseline=tuple(baseline), night_hours=night,
                    levels=levels, objective=objective, min_days=min_days)


def _task(raw, where: str, bad, path: str) -> TaskSpec:
    t = _mapping(raw, where, _TASK, bad)
    for k in ("name", "data", "every_s", "hours", "floor"):
        if k not in t:
            bad(f"{where}.{k}", "is missing (a task needs name, data, model or run, every_s, hours, floor)")
    name = _text(t["name"], f"{where}.name", bad)
    if not name.replace("_", "").replace("-", "").isalnum():
        bad(f"{where}.name", f"must be letters, digits, _ or - (it names a folder and C identifiers), got {name!r}")
    if ("model" in t) == ("run" in t):
        bad(where, "needs exactly one of model (a zoo model trained on data) or run (a trained run directory)")
    hours = t["hours"]
    if hours not in HOURS:
        bad(f"{where}.hours", f"must be one of {', '.join(HOURS)}, got {hours!r}")
    floor = t["floor"]
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not math.isfinite(floor):
        bad(f"{where}.floor", f"must be a number (the task's metric: macro-F1 at least, or MAE at most), got {floor!r}")
    fit = t.get("fit") or {}
    if not isinstance(fit, dict) or "device" in fit:
        bad(f"{where}.fit", "must be a mapping of fit options (trials, final_epochs, max_latency_ms, ...), "
                            "without device")
    from ..specs import FitSpec

    try:
        FitSpec(device="band", **{**FIT_DEFAULTS, **fit})
    except (ConfigError, TypeError) as e:
        bad(f"{where}.fit", f"is not valid: {e}")
    ladder = t.get("ladder", [2, 4])
    if not isinstance(ladder, list) or any(isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 1
                                           for f in ladder):
        bad(f"{where}.ladder", f"must be a list of MAC reduction factors > 1 (e.g. [2, 4]), got {ladder!r}")
    epochs = t.get("epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        bad(f"{where}.epochs", f"must be a whole number of epochs >= 1, got {epochs!r}")
    run = t.get("run")
    if run is not None:
        run = str(Path(path).parent / run) if not Path(str(run)).is_absolute() and path != "band.json" else str(run)
    options = t.get("data_options") or {}
    if not isinstance(options, dict):
        bad(f"{where}.data_options", "must be a mapping of the loader's options")
    return TaskSpec(name=name, data=_text(t["data"], f"{where}.data", bad),
                    every_s=_positive(t["every_s"], f"{where}.every_s", bad), hours=hours, floor=float(floor),
                    model=t.get("model"), run=run, width=_positive(t.get("width", 1.0), f"{where}.width", bad),
                    epochs=epochs, data_options=dict(options), fit=dict(fit),
                    ladder=tuple(sorted(float(f) for f in ladder)))


def _levels(raw, bad) -> tuple[tuple[str, float], ...]:
    if raw is None:
        return DEFAULT_LEVELS
    if not isinstance(raw, list) or len(raw) != 3:
        bad("levels", "must list three battery levels, e.g. [{full: 50}, {saver: 20}, {critical: 0}]")
    levels = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or len(item) != 1:
            bad(f"levels[{i}]", "must be one {name: percent above which it applies}")
        (name, above), = item.items()
        levels.append((str(name), _positive(above, f"levels[{i}]", bad, zero=True, upper=100.0)))
    if [a for _, a in levels] != sorted((a for _, a in levels), reverse=True) or levels[-1][1] != 0:
        bad("levels", "must go from the highest battery level down, the last one at 0")
    return tuple(levels)
