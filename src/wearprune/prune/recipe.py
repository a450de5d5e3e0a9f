"""Hybrid pruning recipes: an ordered list of steps (plain dict / YAML), each with its own method,
criterion and amount, e.g. channel (taylor, 50 %) then weight (magnitude, 60 %).

    steps:
      - {method: channel, ratio: 0.5, importance: taylor, scope: global}
      - {method: weight, ratio: 0.6}

A step's ``where`` (a module-name pattern or a list) restricts it to one part of the model, so each
part gets its own method, criterion and amount (:mod:`wearprune.prune.parts`):

    steps:
      - {method: channel, ratio: 0.5, importance: taylor, where: "features.*"}
      - {method: neuron, ratio: 0.25, where: rnn, round_to: 8}
      - {method: weight, n_m: [2, 4], where: classifier}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from .api import METHODS, prune
from .parts import check_where

_STEP_KEYS = {"method", "ratio", "importance"}
_OPTION_KEYS = {"scope", "min_channels", "round_to", "protected", "n_m", "strict", "ratios", "where"}


@dataclass
class PruneStep:
    method: str = "channel"
    ratio: float = 0.5
    importance: str = "l2"
    options: dict = field(default_factory=dict)


@dataclass
class Recipe:
    steps: list[PruneStep]

    def to_dict(self) -> dict:
        return {"steps": [{"method": s.method, "ratio": s.ratio, "importance": s.importance, **s.options}
                          for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        if not isinstance(d, dict) or not isinstance(d.get("steps"), list) or not d["steps"]:
            raise ConfigError("a recipe needs a non-empty 'steps' list, e.g. steps: [{method: channel, ratio: 0.5}]")
        steps = []
        for i, raw in enumerate(d["steps"], 1):
            if not isinstance(raw, dict):
                raise ConfigError(f"recipe step {i} must be a mapping like {{method: channel, ratio: 0.5}}")
            unknown = set(raw) - _STEP_KEYS - _OPTION_KEYS
            if unknown:
                raise ConfigError(f"recipe step {i}: unknown keys {sorted(unknown)}; "
                                  f"allowed: {sorted(_STEP_KEYS | _OPTION_KEYS)}")
            method = raw.get("method", "channel")
            if method not in METHODS:
                raise ConfigError(f"recipe step {i}: unknown method {method!r}; choose one of {', '.join(METHODS)}")
            ratio = raw.get("ratio", 0.5)
            if not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
                raise ConfigError(f"recipe step {i}: ratio must be a number in [0, 1), got {ratio!r}")
            ratios = raw.get("ratios")
            if ratios is not None and (method not in ("channel", "neuron") or not isinstance(ratios, dict) or not all(
                    isinstance(r, (int, float)) for r in ratios.values())):
                raise ConfigError(f"recipe step {i}: 'ratios' is a mapping of group name to a number, for channel "
                                  "or neuron steps only")
            if "where" in raw:
                try:
                    check_where(raw["where"])
                except ConfigError as e:
                    raise ConfigError(f"recipe step {i}: {e}") from None
            options = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in _OPTION_KEYS}
            steps.append(PruneStep(method, float(ratio), raw.get("importance", "l2"), options))
        return cls(steps)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"recipe file {path} not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"recipe {path} is not valid YAML{where}") from None
        return cls.from_dict(data)


def apply_recipe(model: nn.Module, example_inputs: torch.Tensor, recipe: Recipe, *,
                 calib=None, task: str = "classification", seed: int = 0) -> tuple[nn.Module, list[dict]]:
    """Run the steps in order on a copy of ``model``; one summary per step (a step with ``where`` records the
    part's patterns and what it changed: ``changed`` modules, and ``skipped`` groups straddling the part)."""
    summaries = []
    for step in recipe.steps:
        extra = dict(step.options)
        if step.method in ("channel", "neuron"):
            extra.update(calib=calib, task=task, seed=seed)
        elif step.method == "layer":
            extra.update(calib=calib, task=task)
        model, summary = prune(model, example_inputs, step.method, step.ratio, step.importance, **extra)
        summaries.append({"step": asdict(step), **summary})
    return model, summaries
