"""Device profiles: YAML data files, every number with its source in the same file.

The packaged profiles live in ``wearprune/devices/profiles``; users add their own by passing a
path (``--device my_board.yaml``) or by dropping files into ``$WEARPRUNE_DEVICES``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from wearprune.errors import ConfigError

PACKAGED = Path(__file__).with_name("profiles")
DTYPES = ("int8", "fp32")
_NUMBERS = ("clock_mhz", "sram_kb", "flash_kb", "op_overhead_cycles", "inference_overhead_cycles",
            "runtime_flash_kb", "active_mw", "sleep_uw", "battery_mah", "battery_v")
_PER_DTYPE = ("cycles_per_mac", "cycles_per_element")
_TEXT = ("name", "title", "core", "kernel_library")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    title: str
    core: str
    kernel_library: str
    clock_mhz: float
    sram_kb: float
    flash_kb: float
    cycles_per_mac: dict[str, float]
    cycles_per_element: dict[str, float]
    op_overhead_cycles: float
    inference_overhead_cycles: float
    runtime_flash_kb: float
    active_mw: float
    sleep_uw: float
    battery_mah: float
    battery_v: float
    sources: dict[str, str] = field(default_factory=dict)
    path: str = ""
    # Measured per-op instruction costs of the board's core (devices/cores/<name>.json) and the board's cycles per
    # instruction: where given, latency comes from them instead of cycles_per_mac and the per-op assumptions.
    instruction_model: str = ""
    cycles_per_instruction: float = 0.0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "path"}


def _search_dirs() -> list[Path]:
    extra = os.environ.get("WEARPRUNE_DEVICES")
    return ([Path(p) for p in extra.split(os.pathsep) if p] if extra else []) + [PACKAGED]


def list_devices() -> list[DeviceProfile]:
    seen: dict[str, DeviceProfile] = {}
    for d in _search_dirs():
        for f in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            p = load_profile_file(f)
            seen.setdefault(p.name, p)
    return sorted(seen.values(), key=lambda p: p.name)


def load_device(name_or_path: str | os.PathLike | DeviceProfile) -> DeviceProfile:
    """A profile by name (``nrf52840``) or by path to a YAML file."""
    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        if not Path(text).is_file():
            raise ConfigError(f"device profile {text} not found; give a YAML file or a name from `wearprune devices`")
        return load_profile_file(Path(text))
    known = list_devices()
    for p in known:
        if p.name == text.lower():
            return p
    raise ConfigError(f"unknown device {text!r}; known devices: {', '.join(p.name for p in known)} "
                      "(or give the path of your own profile YAML)")


def _yaml_error(path: Path, e: yaml.YAMLError) -> ConfigError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f" line {mark.line + 1}" if mark else ""
    # YAML spells a !!python/... tag out in full in its messages; show it as it was written.
    problem = " ".join(str(getattr(e, "problem", None) or e).split()).replace("tag:yaml.org,2002:", "!!")
    if isinstance(e, yaml.constructor.ConstructorError) and "tag" in problem:
        # safe_load refuses !!python/... tags (they would run code); say so instead of a traceback.
        return ConfigError(f"device profile {path}{where} uses a YAML tag that is refused ({problem}); "
                           "a profile holds plain values only: remove the tag")
    return ConfigError(f"device profile {path}{where} is not valid YAML: {problem}")


def load_profile_file(path: Path) -> DeviceProfile:
    """Parse and check a profile; a bad field names the field, the file and the line.

    Only plain YAML is read (``yaml.safe_load``): a ``!!python/...`` tag is refused with its line.
    """
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)  # composed first: the nodes give each field's line
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read device profile {path}: {type(e).__name__}: {e}") from None
    except yaml.YAMLError as e:
        raise _yaml_error(path, e) from None
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise ConfigError(f"device profile {path} must be a mapping of fields (name, clock_mhz, ...)")
    nodes = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}

    def bad(field_name: str, why: str):
        node = nodes.get(field_name)
        line = f" line {node.start_mark.line + 1}" if node is not None else ""
        raise ConfigError(f"device profile {path}{line}: field {field_name!r} {why}")

    known = set(_NUMBERS) | set(_PER_DTYPE) | set(_TEXT) | {"sources", "instruction_model", "cycles_per_instruction"}
    for k in data:
        if k not in known:
            bad(str(k), f"is not a profile field (fields: {', '.join(sorted(known))})")
    for k in _TEXT:
        if not isinstance(data.get(k), str) or not data[k].strip():
            bad(k, "is missing or not text")
    values = {}
    for k in _NUMBERS:
        v = data.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            bad(k, f"must be a positive number, got {v!r}")
        values[k] = float(v)
    for k in _PER_DTYPE:
        v = data.get(k)
        if not isinstance(v, dict) or set(v) != set(DTYPES) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in v.values()):
            bad(k, f"must map int8 and fp32 to positive numbers, got {v!r}")
        values[k] = {d: float(v[d]) for d in DTYPES}
    sources = data.get("sources")
    if not isinstance(sources, dict):
        bad("sources", "is missing: every number needs its source (a datasheet, a measurement, or 'assumption')")
    for k in (*_NUMBERS, *_PER_DTYPE):
        if k not in ("battery_v",) and not str(sources.get(k, "")).strip():
            bad("sources", f"has no source for {k!r}")
    if "instruction_model" in data or "cycles_per_instruction" in data:
        values.update(_instruction_fields(data, sources, bad))
    return DeviceProfile(name=data["name"].strip().lower(), title=data["title"], core=data["core"],
                         kernel_library=data["kernel_library"], sources={k: str(v) for k, v in sources.items()},
                         path=str(path), **values)


def _instruction_fields(data: dict, sources: dict, bad) -> dict:
    """instruction_model (a core with a fitted table) and cycles_per_instruction go together, each with a source."""
    from wearprune.devices.instructions import CORES

    core, cpi = data.get("instruction_model"), data.get("cycles_per_instruction")
    known = sorted(p.stem for p in CORES.glob("*.json"))
    if not isinstance(core, str) or core not in known:
        bad("instruction_model", f"must name a measured core ({', '.join(known)}), got {core!r}")
    if isinstance(cpi, bool) or not isinstance(cpi, (int, float)) or cpi <= 0:
        bad("cycles_per_instruction", f"must be a positive number, got {cpi!r}")
    for k in ("instruction_model", "cycles_per_instruction"):
        if not str(sources.get(k, "")).strip():
            bad("sources", f"has no source for {k!r}")
    return {"instruction_model": core, "cycles_per_instruction": float(cpi)}
