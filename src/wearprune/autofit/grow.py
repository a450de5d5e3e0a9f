"""Train large, then compress: the zoo model at ×W its width, trained on the dense run's own split and
recipe, as the starting point and teacher of ``fit --grow`` (Li et al., ICML 2020).

A grown run is an ordinary run directory cached inside the dense run (``<run>/grow-x<W>/``), so a killed
or repeated fit reuses it; it is rebuilt when the dense run's weights change. Only a plain zoo run can
grow: a model already pruned (layer sizes or removed blocks in its architecture) has no width to scale.
"""

from __future__ import annotations

import json
from pathlib import Path

from wearprune.autofit.study import weights_digest
from wearprune.errors import ConfigError

AUTO_WIDTHS = (1.0, 2.0, 4.0)  # what --grow auto tries


def check_growable(run) -> None:
    """A ConfigError unless ``run`` is a plain zoo model (nothing pruned), whose width can be scaled."""
    arch = run.architecture
    if arch.get("format") != "zoo" or arch.get("layers") or arch.get("removed_blocks"):
        raise ConfigError(f"{run.path} is not a plain zoo model (it was pruned or resized), so it has no width to "
                          "grow; fit it without --grow, or fit the dense run it came from")


def grow_widths(grow) -> tuple[float, ...]:
    """The width multipliers ``FitSpec.grow`` asks for: (1,) for none, (W,) for a number, AUTO_WIDTHS for auto."""
    if grow is None:
        return (1.0,)
    if grow == "auto":
        return AUTO_WIDTHS
    return (float(grow),)


def grown_run(dense, factor: float, prepared, *, progress: bool = False, log=print):
    """The dense run's zoo model at ``factor`` × its width, trained like the dense run (same split, normaliser,
    recipe and seed); ``dense`` itself for a factor of 1. Cached in ``<dense>/grow-x<factor>``."""
    from wearprune.models import build_model
    from wearprune.progress import progress_bar
    from wearprune.runs import architecture_of, load_run, save_run
    from wearprune.train import TrainConfig
    from wearprune.train import fit as fit_model
    from wearprune.verbs.evaluate import measure

    if factor == 1:
        return dense
    check_growable(dense)
    arch = dense.architecture
    width = arch["width"] * factor
    path = Path(dense.path) / f"grow-x{factor:g}"
    source = weights_digest(Path(dense.path))
    if path.exists():
        cached = load_run(path)
        if cached.config.get("grown_from", {}).get("weights") == source:
            return cached
        log(f"  the dense run changed since {path.name} was trained: training it again")
    import torch

    cfg = TrainConfig(**{**dense.config["train"], "device": "auto"})
    torch.manual_seed(cfg.seed)
    net = build_model(arch["model"], arch["spec"], width, **arch.get("options", {}))
    log(f"growing the teacher: {arch['model']} at x{factor:g} width ({width:g}), trained like the dense run")
    with progress_bar(progress, f"train {arch['model']} x{factor:g}", cfg.planned_epochs(len(prepared.train))) as bar:
        history = fit_model(net, prepared.train, prepared.val, cfg, target_scale=prepared.target_scale,
                            on_epoch=bar.epoch, on_batch=bar.batch)
    config = {**dense.config, "model": {**dense.config["model"], "width": width},
              "grown_from": {"run": str(Path(dense.path).resolve()), "factor": factor, "weights": source}}
    metrics, extra = measure(net, prepared)
    metrics["history"] = history.to_dict()
    save_run(path, model=net, config=config, architecture=architecture_of(arch["model"], width, arch["spec"],
                                                                          options=arch.get("options")),
             metrics=metrics, extra=extra, overwrite=True)
    return load_run(path)


def describe(factor: float, run) -> dict:
    """What fit.json records about the run a search started from."""
    return {"factor": factor, "width": run.architecture.get("width"), "path": str(run.path),
            "epochs": len(run.metrics.get("history", {}).get("epochs", [])),
            "seconds": run.metrics.get("history", {}).get("seconds"),
            "config": json.loads(json.dumps(run.config.get("model", {})))}
