"""The run directory: everything one result needs, written atomically, never pickled.

    RUN/
      config.json         data, split, normaliser, model and training settings
      architecture.json   how to rebuild the module (zoo name, width, data spec)
      model.safetensors   the weights
      metrics.json        validation history, test metrics, size and compute
      confusion.png       test confusion matrix (classification)
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from .errors import ConfigError, WearpruneError
from .io import atomic_directory, atomic_write_json
from .models import build_model

FORMAT_VERSION = 1
_DAMAGED = "the run is damaged or from another version; retrain it (or re-prune it)"


@dataclass
class Run:
    path: Path
    config: dict
    architecture: dict
    model: nn.Module
    metrics: dict


def architecture_of(model_name: str, width: float, spec: dict, model: nn.Module | None = None,
                    removed_blocks: dict[str, str] | None = None, options: dict | None = None) -> dict:
    """Zoo name, width, block options and data spec; for a pruned model also removed blocks and every
    layer's size."""
    arch = {"format": "zoo", "version": FORMAT_VERSION, "model": model_name, "width": width, "spec": spec}
    if options:
        arch["options"] = dict(options)
    if removed_blocks:
        arch["removed_blocks"] = dict(removed_blocks)
    if model is not None:
        from .prune.shapes import layer_shapes

        base_model = build_model(model_name, spec, width, **(options or {}))
        if removed_blocks:
            from .prune.layer import remove_blocks

            remove_blocks(base_model, removed_blocks)
        base = layer_shapes(base_model)
        arch["layers"] = {k: v for k, v in layer_shapes(model).items() if base.get(k) != v}
    return arch


def build_from_architecture(arch: dict) -> nn.Module:
    if arch.get("format") != "zoo":
        raise ConfigError(f"unknown architecture format {arch.get('format')!r} in architecture.json")
    model = build_model(arch["model"], arch["spec"], arch["width"], **arch.get("options", {}))
    if arch.get("removed_blocks"):
        from .prune.layer import remove_blocks

        remove_blocks(model, arch["removed_blocks"])
    if arch.get("layers"):
        from .prune.shapes import apply_layer_shapes

        apply_layer_shapes(model, arch["layers"])
    return model


def save_run(path: str | Path, *, model: nn.Module, config: dict, architecture: dict, metrics: dict,
             extra: dict[str, bytes] | None = None, overwrite: bool = False) -> Path:
    """Write a whole run directory; on any failure nothing is left at ``path``."""
    path = Path(path)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"wearprune_format": str(FORMAT_VERSION)})
        atomic_write_json(tmp / "config.json", config)
        atomic_write_json(tmp / "architecture.json", architecture)
        atomic_write_json(tmp / "metrics.json", metrics)
        for name, data in (extra or {}).items():
            (tmp / name).write_bytes(data)
    return path


def load_run(path: str | Path) -> Run:
    """Load a run directory written by :func:`save_run` (safetensors weights, JSON description).

    Every key the verbs read later is checked here, so a damaged or foreign run is one line naming
    the file and the key, not a KeyError deep inside evaluation or pruning.
    """
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path} is not a run directory; train one with `wearprune train ... --out {path}`")
    needed = ["config.json", "architecture.json", "model.safetensors"]
    missing = [n for n in needed if not (path / n).is_file()]
    if missing:
        raise ConfigError(f"{path} is not a complete run (missing {', '.join(missing)}); train it again")
    config = _read_json(path / "config.json")
    arch = _read_json(path / "architecture.json")
    metrics = _read_json(path / "metrics.json") if (path / "metrics.json").exists() else {}
    _check_config(path / "config.json", config)
    _check_architecture(path / "architecture.json", arch)
    model = _rebuild(path / "architecture.json", arch)
    try:
        state = load_file(str(path / "model.safetensors"))
    except Exception as e:  # safetensors raises its own types for truncated or foreign files
        raise ConfigError(f"{path}/model.safetensors cannot be read ({e}); train the run again") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise ConfigError(f"{path}: weights do not match architecture.json ({first})") from None
    model.eval()
    return Run(path=path, config=config, architecture=arch, model=model, metrics=metrics)


# -- checks of a stored run -----------------------------------------------------------------------
def _read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{file}: invalid JSON ({e.msg} at line {e.lineno}); {_DAMAGED}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: cannot be read ({type(e).__name__}: {e}); {_DAMAGED}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: holds a JSON {type(data).__name__}, not a JSON object; {_DAMAGED}")
    return data


class _Schema:
    """Checks of one file's keys; every failure is one line naming the file and the key."""

    def __init__(self, file: Path):
        self.file = file

    def fail(self, key: str, why: str, where: str = ""):
        inside = f" of {where}" if where else ""
        raise ConfigError(f"{self.file}: key {key!r}{inside} {why}; {_DAMAGED}")

    def get(self, d: dict, key: str, kind, where: str = "", optional: bool = False):
        if key not in d:
            if optional:
                return None
            self.fail(key, "is missing", where)
        value = d[key]
        if optional and value is None:
            return None
        if not _is(value, kind):
            self.fail(key, f"should be {_KIND_NAMES[kind]}, not {_short(value)}", where)
        return value


def _is(value, kind) -> bool:
    if kind == "number":
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind == "count":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


_KIND_NAMES = {dict: "a mapping", str: "text", list: "a list", bool: "true or false", "number": "a number",
               "count": "a whole number >= 1", "int": "a whole number"}


def _short(value) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, int, float, bool, type(None))) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_config(file: Path, config: dict) -> None:
    c = _Schema(file)
    data = c.get(config, "data", dict)
    c.get(data, "name", str, "data")
    c.get(data, "options", dict, "data", optional=True)
    c.get(data, "root", str, "data", optional=True)
    split = c.get(config, "split", dict)
    subjects = c.get(split, "test_subjects", list, "split", optional=True)
    if subjects is not None and not all(isinstance(s, str) for s in subjects):
        c.fail("test_subjects", "should be a list of subject ids (text)", "split")
    c.get(split, "mode", str, "split", optional=True)
    norm = c.get(config, "normalizer", dict)
    for key in ("mean", "std"):
        values = c.get(norm, key, list, "normalizer")
        if not all(_is(v, "number") for v in values):
            c.fail(key, "should hold numbers", "normalizer")
    c.get(norm, "layout", str, "normalizer")
    scale = c.get(config, "target_scale", dict, optional=True)
    if scale is not None:
        c.get(scale, "mean", "number", "target_scale")
        c.get(scale, "std", "number", "target_scale")
    train = c.get(config, "train", dict)
    c.get(train, "seed", "int", "train")
    model = c.get(config, "model", dict)
    c.get(model, "name", str, "model")
    c.get(model, "width", "number", "model")


def _check_architecture(file: Path, arch: dict) -> None:
    a = _Schema(file)
    fmt = a.get(arch, "format", str)
    if fmt != "zoo":
        a.fail("format", f"is {fmt!r}, a format this version does not know (it reads 'zoo')")
    a.get(arch, "model", str)
    width = a.get(arch, "width", "number")
    if not width > 0:
        a.fail("width", f"should be above 0, not {width}")
    spec = a.get(arch, "spec", dict)
    a.get(spec, "layout", str, "spec")
    a.get(spec, "task", str, "spec")
    shape = a.get(spec, "input_shape", list, "spec")
    if not shape or not all(_is(v, "count") for v in shape):
        a.fail("input_shape", f"should be a list of whole numbers >= 1, not {_short(shape)}", "spec")
    a.get(spec, "n_outputs", "count", "spec")
    for key in ("channel_names", "class_names"):
        a.get(spec, key, list, "spec", optional=True)
    removed = a.get(arch, "removed_blocks", dict, optional=True)
    if removed is not None and not all(isinstance(v, str) for v in removed.values()):
        a.fail("removed_blocks", "should map block names to 'identity' or a child's name")
    layers = a.get(arch, "layers", dict, optional=True)
    for name, entry in (layers or {}).items():
        where = f"layers.{name}"
        if not isinstance(entry, dict):
            a.fail(name, f"should be a mapping of layer sizes, not {_short(entry)}", "layers")
        a.get(entry, "type", str, where)
        for key, value in entry.items():
            if key == "type":
                continue
            ok = _is(value, "count") or (isinstance(value, list) and value and all(_is(v, "count") for v in value))
            if not ok:
                a.fail(key, f"should be a whole number >= 1, not {_short(value)}", where)


def _rebuild(file: Path, arch: dict) -> nn.Module:
    """The model of a checked architecture; a layer that does not fit the zoo model is one line."""
    layers = arch.get("layers") or {}
    if layers:
        from .prune.shapes import layer_shapes

        try:
            base = layer_shapes(build_from_architecture({**arch, "layers": None}))
        except WearpruneError as e:
            raise ConfigError(f"{file}: {e}; {_DAMAGED}") from None
        except Exception as e:  # noqa: BLE001 - a foreign spec can fail anywhere in a model's constructor
            raise ConfigError(f"{file}: cannot build the model ({type(e).__name__}: {_first_line(e)}); "
                              f"{_DAMAGED}") from None
        for name, entry in layers.items():
            have = base.get(name)
            if have is None or have["type"] != entry["type"]:
                raise ConfigError(f"{file}: layer {name!r} ({entry['type']}) is not in model {arch['model']!r}; "
                                  f"{_DAMAGED}")
            if set(have) != set(entry):
                wrong = sorted(set(have) ^ set(entry))
                raise ConfigError(f"{file}: layer {name!r} has the wrong keys ({', '.join(map(repr, wrong))}); "
                                  f"{_DAMAGED}")
    try:
        return build_from_architecture(arch)
    except WearpruneError as e:
        raise ConfigError(f"{file}: {e}; {_DAMAGED}") from None
    except Exception as e:  # noqa: BLE001 - e.g. sizes torch refuses (groups not dividing channels)
        raise ConfigError(f"{file}: cannot build the model ({type(e).__name__}: {_first_line(e)}); "
                          f"{_DAMAGED}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"
