"""The band's ledger: flash, RAM and energy per day of a set of task variants on one chip, and
battery life. Plain arithmetic on measured sizes and estimated energies, checkable by hand.

- flash = one TensorFlow Lite Micro runtime (the profile's ``runtime_flash_kb``) + every model
  stored on the chip (a policy stores every variant it may switch to);
- RAM = one shared tensor arena, the largest of the models' (tasks run one at a time), + every
  task's input window buffer and streaming state, which live between calls;
- energy per day = Σ inferences per day x energy per inference + the microcontroller asleep the rest
  of the day + the band's always-on baseline; battery days = usable battery energy / energy per day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from ..devices.profile import DeviceProfile
from .spec import BandSpec

DAY_S = 86_400.0


def higher_is_better(metric: str) -> bool:
    return metric != "mae"


def meets(value: float, floor: float, metric: str) -> bool:
    """Whether a task's metric meets its floor: macro-F1 at least, MAE at most."""
    return value >= floor if higher_is_better(metric) else value <= floor


@dataclass(frozen=True)
class Variant:
    """One exported model of a task, as the ledger and the plan need it."""

    task: str
    name: str  # dense | fit | fit/2 | fit/4 ...
    run: str  # its run directory
    macs: int
    params: int
    model_bytes: int  # the int8 .tflite file(s) (front end + step for a streaming model), measured
    arena_bytes: int  # TensorFlow Lite Micro arena, measured, without the streaming state
    window_bytes: int  # the model's input window, kept between calls (int8)
    state_bytes: int  # streaming state kept between calls (0 for a window model)
    latency_ms: float  # estimated by the cost model on the band's device
    energy_uj: float  # estimated, per inference
    val: float  # headline metric on the validation subjects (PyTorch)
    test: float  # on the test subjects (PyTorch fp32)
    test_int8: float  # on the test subjects, int8 in TensorFlow Lite Micro

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Variant:
        return cls(**d)


def memory(dev: DeviceProfile, present: Mapping[str, Sequence[Variant]]) -> dict:
    """Flash and RAM of the variants stored on the chip (``present``: per task, every variant kept)."""
    runtime = int(dev.runtime_flash_kb * 1024)
    flash_tasks = {t: sum(v.model_bytes for v in vs) for t, vs in present.items()}
    arena = max(v.arena_bytes for vs in present.values() for v in vs)
    arena_task = next(t for t, vs in present.items() for v in vs if v.arena_bytes == arena)
    # a task's buffers are allocated once, for the largest of its variants
    buffers = {t: max(v.window_bytes for v in vs) + max(v.state_bytes for v in vs) for t, vs in present.items()}
    flash = runtime + sum(flash_tasks.values())
    ram = arena + sum(buffers.values())
    return {"flash_bytes": flash, "flash_runtime_bytes": runtime, "flash_per_task": flash_tasks,
            "flash_use": flash / (dev.flash_kb * 1024),
            "ram_bytes": ram, "arena_bytes": arena, "arena_of": arena_task, "buffers_per_task": buffers,
            "ram_use": ram / (dev.sram_kb * 1024)}


def energy_per_day(spec: BandSpec, dev: DeviceProfile, choice: Mapping[str, Variant]) -> dict:
    """Joules per day of running ``choice`` (one variant per task) on the band, and battery days."""
    tasks, busy_s = {}, 0.0
    for task in spec.tasks:
        v = choice[task.name]
        n = spec.inferences_per_day(task)
        tasks[task.name] = n * v.energy_uj * 1e-6
        busy_s += n * v.latency_ms / 1000.0
    if busy_s > DAY_S:
        busy_s = DAY_S  # over-committed: the time check in the plan reports it
    sleep = dev.sleep_uw * 1e-6 * (DAY_S - busy_s)
    baseline = {b.name: b.uw * 1e-6 * b.hours * 3600.0 for b in spec.baseline}
    total = sum(tasks.values()) + sleep + sum(baseline.values())
    return {"per_task_j": tasks, "mcu_sleep_j": sleep, "baseline_j": baseline, "total_j": total,
            "busy_s": busy_s, "days": spec.battery.joules / total}


def duty(spec: BandSpec, choice: Mapping[str, Variant]) -> dict[str, float]:
    """Fraction of each task's period its inference takes (above 1: it cannot keep up)."""
    return {t.name: choice[t.name].latency_ms / 1000.0 / t.every_s for t in spec.tasks}


def policy_days(spec: BandSpec, level_totals_j: Sequence[float]) -> float:
    """Battery days when level i (``spec.levels``, highest first) runs from its upper bound down to
    its own threshold at ``level_totals_j[i]`` joules a day."""
    days, upper = 0.0, 100.0
    for (_, above), total in zip(spec.levels, level_totals_j):
        share = (upper - above) / 100.0
        days += share * spec.battery.joules / total
        upper = above
    return days
