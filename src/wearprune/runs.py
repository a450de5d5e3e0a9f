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
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from .errors import ConfigError
from .io import atomic_directory, atomic_write_json
from .models import build_model

FORMAT_VERSION = 1


@dataclass
class Run:
    path: Path
    config: dict
    architecture: dict
    model: nn.Module
    metrics: dict


def architecture_of(model_name: str, width: float, spec: dict, model: nn.Module | None = None,
                    removed_blocks: dict[str, str] | None = None) -> dict:
    """Zoo name, width and data spec; for a pruned model also removed blocks and every layer's size."""
    arch = {"format": "zoo", "version": FORMAT_VERSION, "model": model_name, "width": width, "spec": spec}
    if removed_blocks:
        arch["removed_blocks"] = dict(removed_blocks)
    if model is not None:
        from .prune.shapes import layer_shapes

        base_model = build_model(model_name, spec, width)
        if removed_blocks:
            from .prune.layer import remove_blocks

            remove_blocks(base_model, removed_blocks)
        base = layer_shapes(base_model)
        arch["layers"] = {k: v for k, v in layer_shapes(model).items() if base.get(k) != v}
    return arch


def build_from_architecture(arch: dict) -> nn.Module:
    if arch.get("format") != "zoo":
        raise ConfigError(f"unknown architecture format {arch.get('format')!r} in architecture.json")
    model = build_model(arch["model"], arch["spec"], arch["width"])
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
    """Load a run directory written by :func:`save_run` (safetensors weights, JSON description)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path} is not a run directory; train one with `wearprune train ... --out {path}`")
    needed = ["config.json", "architecture.json", "model.safetensors"]
    missing = [n for n in needed if not (path / n).is_file()]
    if missing:
        raise ConfigError(f"{path} is not a complete run (missing {', '.join(missing)}); train it again")
    try:
        config = json.loads((path / "config.json").read_text())
        arch = json.loads((path / "architecture.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {}
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: damaged JSON ({e.msg} at line {e.lineno}); train the run again") from None
    model = build_from_architecture(arch)
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
