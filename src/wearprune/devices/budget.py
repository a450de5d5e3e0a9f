"""The budget a model must meet on a device: the chip's memory plus the user's latency, energy and
accuracy limits. Plain data, so it is stored with a search and shown in reports; every check of a
cost against limits (fit, its search, the report's verdict) goes through :meth:`Budget.excess`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from wearprune.devices.cost import Cost
from wearprune.devices.profile import DeviceProfile
from wearprune.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    max_ram_kb: float
    max_flash_kb: float
    max_latency_ms: float | None = None
    max_energy_uj: float | None = None
    max_drop: float | None = None  # macro-F1 points (x100) or MAE units (BPM) lost on validation

    @classmethod
    def for_device(cls, device: DeviceProfile, *, max_ram_kb: float | None = None, max_flash_kb: float | None = None,
                   max_latency_ms: float | None = None, max_energy_uj: float | None = None,
                   max_drop: float | None = None) -> Budget:
        """The device's SRAM and flash unless the user asks for less (more than the chip has is an error)."""
        for name, value in (("max-ram-kb", max_ram_kb), ("max-flash-kb", max_flash_kb),
                            ("max-latency-ms", max_latency_ms), ("max-energy-uj", max_energy_uj)):
            if value is not None and not value > 0:
                raise ConfigError(f"--{name} must be positive, got {value}")
        if max_drop is not None and max_drop < 0:
            raise ConfigError(f"--max-drop must not be negative, got {max_drop}")
        for name, value, chip in (("max-ram-kb", max_ram_kb, device.sram_kb),
                                  ("max-flash-kb", max_flash_kb, device.flash_kb)):
            if value is not None and value > chip:
                raise ConfigError(f"--{name} {value:g} is more than {device.name} has ({chip:g} KB)")
        return cls(max_ram_kb if max_ram_kb is not None else device.sram_kb,
                   max_flash_kb if max_flash_kb is not None else device.flash_kb,
                   max_latency_ms, max_energy_uj, max_drop)

    def to_dict(self) -> dict:
        return asdict(self)

    def excess(self, cost: Cost, drop: float | None = None) -> dict[str, float]:
        """How far over each limit ``cost`` (and the validation ``drop``) is, as a fraction of the limit;
        ≤ 0 where it is within. Optuna's constraint values."""
        out = {"ram": cost.arena_bytes / 1024 / self.max_ram_kb - 1,
               "flash": cost.flash_bytes / 1024 / self.max_flash_kb - 1}
        if self.max_latency_ms is not None:
            out["latency"] = cost.latency_ms / self.max_latency_ms - 1
        if self.max_energy_uj is not None:
            out["energy"] = cost.energy_uj / self.max_energy_uj - 1
        if self.max_drop is not None and drop is not None:
            out["accuracy"] = (drop - self.max_drop) / max(self.max_drop, 1e-9) if drop > self.max_drop else -1.0
        return out

    def fits(self, cost: Cost, drop: float | None = None) -> bool:
        """Within every limit (the accuracy limit only when ``drop`` is given)."""
        return all(v <= 0 for v in self.excess(cost, drop).values())

    def describe(self, limit: str, excess: dict[str, float]) -> str:
        """"+12% over the 5 ms limit": how far ``excess`` is over one of these limits."""
        bound = {"ram": f"{self.max_ram_kb:g} KB", "flash": f"{self.max_flash_kb:g} KB",
                 "latency": f"{self.max_latency_ms} ms", "energy": f"{self.max_energy_uj} uJ",
                 "accuracy": f"{self.max_drop} points"}[limit]
        return f"{excess[limit]:+.0%} over the {bound} limit"


def binding(excess: dict[str, float]) -> str:
    """The limit furthest over (or, when all are met, the tightest)."""
    return max(excess, key=excess.get)


LIMIT_WORDS = {"ram": "peak RAM (tensor arena)", "flash": "flash", "latency": "latency", "energy": "energy per "
               "inference", "accuracy": "accuracy drop"}
