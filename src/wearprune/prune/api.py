"""``prune(model, example_inputs, method=..., ratio=...)``: one verb over every granularity."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import as_inputs
from ..profile import count_macs, count_params
from .structured import prune_structured
from .weight import prune_weights

METHODS = ("channel", "neuron", "weight", "layer")


def prune(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    method: str = "channel",
    ratio: float = 0.5,
    importance: str = "l2",
    **options,
) -> tuple[nn.Module, dict]:
    """Return a pruned copy of ``model`` and a summary; ``model`` itself is left untouched.

    - ``channel``: conv channels, linear neurons and RNN hidden units removed physically, coupled
      layers together (options: ``scope`` local|global, ``min_channels``, ``round_to``,
      ``protected``, ``calib=(X, y)`` for data-driven criteria, ``strict``);
    - ``neuron``: the same, restricted to Linear and GRU/LSTM units;
    - ``weight``: unstructured magnitude pruning, zeros baked into the weights (options: ``scope``
      global|layer, ``n_m=(2, 4)``, ``protected``);
    - ``layer``: whole blocks replaced by an identity or their shortcut, ranked by ``importance``
      loss (default) or similarity on ``calib=(X, y)``; ``ratio`` of the candidate blocks removed.

    ``ratio`` is the fraction of the prunable units (or weights) removed. ``example_inputs`` is a
    tensor, or a tuple/list with one tensor per model input. ``where`` (every method): module-name
    glob patterns restricting the step to one part of the model (:mod:`wearprune.prune.parts`), e.g.
    ``where="features.*"``; the ratio then counts that part's units only.
    """
    example_inputs = as_inputs(example_inputs)
    if method in ("channel", "neuron"):
        pruned, summary = prune_structured(model, example_inputs, method=method, ratio=ratio,
                                           importance=importance, **options)
        return pruned, summary.to_dict()
    if method == "weight":
        if importance not in ("l1", "l2", "magnitude"):  # one weight: |w| ranks the same under both norms
            raise ConfigError(f"weight pruning ranks by magnitude; importance {importance!r} is for channels")
        options.setdefault("scope", "global")
        pruned, summary = prune_weights(model, ratio if options.get("n_m") is None else None, **options)
        summary.update(method="weight", ratio=ratio, importance="magnitude",
                       params_before=count_params(model), params_after=count_params(pruned),
                       macs_before=count_macs(model, example_inputs), macs_after=count_macs(pruned, example_inputs))
        return pruned, summary
    if method == "layer":
        from .layer import prune_layers

        options.pop("scope", None)
        options.pop("seed", None)
        for key in ("round_to", "min_channels", "strict"):
            options.pop(key, None)
        crit = "loss" if importance == "l2" else importance  # l2 is prune()'s default for channels
        if "protected" not in options:
            from .weight import default_protected

            options["protected"] = default_protected(model)
        return prune_layers(model, example_inputs, ratio=ratio, importance=crit, **options)
    raise ConfigError(f"unknown pruning method {method!r}; choose one of: {', '.join(METHODS)}")
