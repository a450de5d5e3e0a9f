"""Unstructured (weight) pruning by magnitude: per layer, global, or N:M — baked into the weights.

Masks are computed from |w| and multiplied into the parameters themselves: a pruned model is a
plain ``nn.Module`` whose weights contain zeros, with no ``torch.nn.utils.prune`` re-parametrisation,
so it saves to safetensors and loads into an unmodified class. ``MaskKeeper`` keeps the zeros in
place while the model is fine-tuned (optimizers with momentum or weight decay would otherwise
revive them).

Which tensors: the weight matrices each layer's rule names (:mod:`wearprune.layers`) — ``weight``
of Conv/Linear, ``weight_*`` (``weight_ih_l*``, ``weight_hh_l*``) of GRU/LSTM/RNN, and those of
registered user layers — never biases or norm layers. Masks
are keyed ``"module.param"`` (``"rnn.weight_hh_l1"``). The classifier (the model's last Linear) and
any modules named in ``protected`` (with everything under them) stay dense.

Ties in magnitude are broken by position (a stable sort; the earlier weight goes first), so the
same weights always give the same mask.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import rule_for, types_with
from ..profile import count_params
from .parts import check_where, part_modules

# The built-in layer types with prunable weights; ``include=None`` (the default) also takes layers
# registered later, by their rules.
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = types_with(lambda r: bool(r.weights))
SCOPES = ("global", "layer")


# ---------------------------------------------------------------- which tensors


def default_protected(model: nn.Module) -> list[str]:
    """The classifier: the last ``nn.Linear`` registered in ``model`` (pruning it costs most accuracy per weight)."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    return [] if last is None else [last]


def _is_weight(module: nn.Module, param_name: str) -> bool:
    if isinstance(module, nn.RNNBase):
        return param_name.startswith("weight_")  # weight_ih_l0, weight_hh_l0_reverse, weight_hr_l0
    return param_name == "weight"


def _weight_names(module: nn.Module, include: tuple[type[nn.Module], ...] | None) -> tuple[str, ...]:
    """The prunable weights of ``module``: its rule's, or (a type named in ``include`` without a rule) ``weight``."""
    if include is not None and not isinstance(module, include):
        return ()
    rule = rule_for(module)
    names = rule.weight_names(module) if rule is not None else ()
    if names or include is None:
        return names
    return tuple(n for n, _ in module.named_parameters(recurse=False) if _is_weight(module, n))


def _under(name: str, prefixes: Iterable[str]) -> bool:
    """``name`` is one of ``prefixes`` or inside one ("" is the whole model)."""
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def _check_protected(model: nn.Module, protected: Sequence[str]) -> list[str]:
    protected = [protected] if isinstance(protected, str) else list(protected)  # one name is a common slip
    names = [name for name, _ in model.named_modules()]
    unknown = [p for p in protected if p not in names]
    if unknown:
        raise ConfigError(f"protected module(s) {unknown} not found in the model; names look like "
                          f"{[n for n in names if n][:5]}")
    return protected


def weight_params(
    model: nn.Module,
    *,
    include: Sequence[type[nn.Module]] | None = None,
    protected: Sequence[str] = (),
) -> dict[str, nn.Parameter]:
    """The weight matrices of the layers outside ``protected`` modules, keyed ``"module.param"``:
    every layer whose rule names prunable weights, or only the ``include`` types."""
    include = tuple(include) if include is not None else None
    protected = [protected] if isinstance(protected, str) else list(protected)
    weights: dict[str, nn.Parameter] = {}
    dense = {id(p) for name, m in model.named_modules() if _under(name, protected) for p in m.parameters()}
    for mod_name, module in model.named_modules():
        names = _weight_names(module, include)
        if not names or _under(mod_name, protected):
            continue
        for p_name, p in module.named_parameters(recurse=False):
            if p_name in names and id(p) not in dense:
                dense.add(id(p))  # a tied weight is ranked once, under its first name
                weights[f"{mod_name}.{p_name}" if mod_name else p_name] = p
    return weights


def _shielded(model: nn.Module, protected: Sequence[str], protect_classifier: bool) -> list[str]:
    protected = _check_protected(model, protected)
    return sorted(set(protected) | set(default_protected(model) if protect_classifier else []))


def _module_of(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


def _part_shielded(model: nn.Module, protected: Sequence[str], protect_classifier: bool,
                   where: Sequence[str] | None) -> list[str]:
    """The dense modules; a ``where`` that covers the classifier names it on purpose, so it is pruned."""
    if where is None:
        return _shielded(model, protected, protect_classifier)
    part = part_modules(model, where)
    classifier = [c for c in default_protected(model) if c not in part] if protect_classifier else []
    return sorted(set(_check_protected(model, protected)) | set(classifier))


def _candidates(model: nn.Module, protected: Sequence[str], protect_classifier: bool,
                include: Sequence[type[nn.Module]] | None,
                where: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    shielded = _part_shielded(model, protected, protect_classifier, where)
    weights = weight_params(model, include=include, protected=shielded)
    if where is not None:
        part = part_modules(model, where)
        weights = {k: w for k, w in weights.items() if _module_of(k) in part}
        if not weights:
            raise ConfigError(f"nothing to prune in where={list(check_where(where))}: no prunable weights in those "
                              f"modules outside the protected ones {shielded}")
    if not weights:
        kinds = ", ".join(t.__name__ for t in (include if include is not None else WEIGHT_LAYERS))
        shown = [name or "<the model itself>" for name in shielded]
        raise ConfigError(f"nothing to prune: no {kinds} weights outside the protected modules {shown}; "
                          "pass protect_classifier=False to prune the last Linear too")
    return weights


# ---------------------------------------------------------------- options


def _check_n_m(n_m: object) -> tuple[int, int]:
    ok = isinstance(n_m, (tuple, list)) and len(n_m) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in n_m)
    if not ok or not 1 <= n_m[0] <= n_m[1]:
        raise ConfigError(f"n_m must be two integers N, M with 1 <= N <= M (e.g. (2, 4)), got {n_m!r}")
    return int(n_m[0]), int(n_m[1])


def _check_ratio(ratio: object, n_m: tuple[int, int] | None) -> float:
    """With N:M the pattern fixes the ratio (1 - N/M); a ratio given beside it must agree."""
    if n_m is not None:
        implied = 1.0 - n_m[0] / n_m[1]
        if ratio is not None and (not isinstance(ratio, Real) or not abs(float(ratio) - implied) <= 1e-9):
            raise ConfigError(f"{n_m[0]}:{n_m[1]} pruning removes a fraction {implied:g} of the weights, "
                              f"but ratio is {ratio!r}; pass ratio={implied:g} or ratio=None")
        return implied
    if isinstance(ratio, bool) or not isinstance(ratio, Real) or not 0 <= ratio < 1:
        raise ConfigError(f"ratio (fraction of weights to remove) must be in [0, 1), got {ratio!r}")
    return float(ratio)


# ---------------------------------------------------------------- masks


def _keep_mask(scores: torch.Tensor, n_remove: int) -> torch.Tensor:
    """True where kept: the ``n_remove`` smallest scores go, earlier index first among equals."""
    order = torch.sort(scores, stable=True).indices
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[order[:n_remove]] = False
    return keep


def _layer_masks(weights: Mapping[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    return {key: _keep_mask(w.detach().abs().flatten(), round(ratio * w.numel())).view_as(w)
            for key, w in weights.items()}


def _global_masks(weights: Mapping[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    # One ranking over every weight together: layers with small weights lose more of them.
    device = next(iter(weights.values())).device
    scores = torch.cat([w.detach().abs().flatten().float().to(device) for w in weights.values()])
    keep = _keep_mask(scores, round(ratio * scores.numel()))
    parts = keep.split([w.numel() for w in weights.values()])
    return {key: part.view_as(w).to(w.device) for (key, w), part in zip(weights.items(), parts)}


def _n_m_mask(key: str, w: torch.Tensor, n: int, m: int) -> torch.Tensor:
    # Groups run along the input dimension: dim 1 of Linear/RNN weights, in_channels x kernel for convs.
    rows = w.detach().abs().reshape(w.shape[0], -1)
    if rows.shape[1] % m:
        layer = key.rsplit(".", 1)[0]
        raise ConfigError(f"{n}:{m} pruning needs the input size of layer {layer!r} ({rows.shape[1]} per output) "
                          f"to be a multiple of {m}; protect that layer or choose another M")
    groups = rows.reshape(-1, m)
    order = torch.sort(groups, dim=1, stable=True).indices
    keep = torch.ones_like(groups, dtype=torch.bool)
    keep.scatter_(1, order[:, : m - n], False)
    return keep.reshape(w.shape)


def _check_n_m_layers(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    for key in weights:
        module = model.get_submodule(key.rsplit(".", 1)[0]) if "." in key else model
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            raise ConfigError(f"N:M pruning does not support transposed convolution {key!r}; protect it")


def weight_masks(
    model: nn.Module,
    ratio: float | None,
    *,
    scope: str = "global",
    n_m: tuple[int, int] | None = None,
    protected: Sequence[str] = (),
    protect_classifier: bool = True,
    include: Sequence[type[nn.Module]] | None = None,
    where: str | Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks (True = kept) removing the smallest-magnitude weights.

    ``ratio`` is the fraction of the candidate weights removed: exactly ``round(ratio * numel)`` per
    tensor with ``scope="layer"``, over all candidates together with ``scope="global"``. With
    ``n_m=(N, M)`` every M consecutive weights along the input dimension keep their N largest;
    ``scope`` is then moot and ``ratio`` may be ``None`` (it must equal 1 - N/M if given).
    ``protected`` module names stay dense, and so does the classifier unless ``protect_classifier``
    is False. ``where`` (module-name patterns, :mod:`wearprune.prune.parts`) restricts the candidates to the
    weights of those modules; the classifier is pruned too when ``where`` covers it. The model is not changed.
    """
    if scope not in SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r}; choose one of: {', '.join(SCOPES)}")
    pattern = _check_n_m(n_m) if n_m is not None else None
    ratio = _check_ratio(ratio, pattern)
    weights = _candidates(model, protected, protect_classifier, include, where)
    if pattern is not None:
        _check_n_m_layers(model, weights)
        return {key: _n_m_mask(key, w, *pattern) for key, w in weights.items()}
    return _layer_masks(weights, ratio) if scope == "layer" else _global_masks(weights, ratio)


def zero_masks(model: nn.Module, include: Sequence[type[nn.Module]] | None = None) -> dict[str, torch.Tensor]:
    """Masks read back from a pruned model's zeros (e.g. after loading it) to fine-tune with ``MaskKeeper``."""
    return {key: p.detach() != 0 for key, p in weight_params(model, include=include).items()}


# ---------------------------------------------------------------- applying and keeping


def _param(model: nn.Module, key: str, mask: torch.Tensor) -> nn.Parameter:
    try:
        p = model.get_parameter(key)
    except AttributeError:
        raise ConfigError(f"mask {key!r} matches no parameter of the model") from None
    if p.shape != mask.shape:
        raise ConfigError(f"mask {key!r} has shape {tuple(mask.shape)} but the weight has {tuple(p.shape)}")
    return p


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero, in place, every weight whose mask entry is False."""
    for key, mask in masks.items():
        p = _param(model, key, mask)
        # masked_fill, not multiply: inf * 0 would leave NaN where a zero is promised.
        p.masked_fill_(~mask.to(device=p.device, dtype=torch.bool), 0.0)


class MaskKeeper:
    """Re-applies pruning masks after every optimizer step, so sparsity does not drift while fine-tuning.

    Give the ``optimizer`` and a post-step hook (``Optimizer.register_step_post_hook``) does it after
    each ``optimizer.step()``; without one, call ``keeper.step()`` right after each optimizer step.
    ``remove()`` (or leaving a ``with MaskKeeper(...)`` block) detaches the hook. The masks are applied
    once on creation too, so the model starts out pruned.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor],
                 optimizer: torch.optim.Optimizer | None = None):
        self.model = model
        self.masks = {key: mask.detach().to(torch.bool) for key, mask in masks.items()}
        apply_masks(model, self.masks)  # also checks every key and shape up front
        self._handle = optimizer.register_step_post_hook(self._after_step) if optimizer is not None else None

    def _after_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        self.step()

    def step(self) -> None:
        apply_masks(self.model, self.masks)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> MaskKeeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


# ---------------------------------------------------------------- measuring and the one-call API


def sparsity(model: nn.Module, include: Sequence[type[nn.Module]] | None = None) -> dict:
    """Zero fractions of every included weight tensor (protected ones too) and over all of them."""
    per_tensor, zeros, total = {}, 0, 0
    for key, p in weight_params(model, include=include).items():
        z = int((p.detach() == 0).sum())
        per_tensor[key] = z / p.numel() if p.numel() else 0.0
        zeros, total = zeros + z, total + p.numel()
    return {"tensors": per_tensor, "overall": zeros / total if total else 0.0, "zeros": zeros, "numel": total}


def _nonzero_params(model: nn.Module) -> int:
    return sum(int((p.detach() != 0).sum()) for p in model.parameters())


def _tensor_table(weights: Mapping[str, torch.Tensor], before: dict, after: dict, masks: Mapping) -> dict:
    return {key: {"numel": w.numel(), "sparsity_before": before["tensors"][key],
                  "sparsity_after": after["tensors"][key], "pruned": key in masks}
            for key, w in weights.items()}


def prune_weights(
    model: nn.Module,
    ratio: float | None,
    *,
    scope: str = "global",
    n_m: tuple[int, int] | None = None,
    protected: Sequence[str] = (),
    protect_classifier: bool = True,
    include: Sequence[type[nn.Module]] | None = None,
    where: str | Sequence[str] | None = None,
) -> tuple[nn.Module, dict]:
    """A pruned copy of ``model`` (left untouched) and a JSON-safe summary; options as in ``weight_masks``.

    ``pruned_sparsity`` is the achieved ratio over the pruned tensors; ``sparsity_before/after`` cover
    every included weight (the dense classifier too); ``nonzero_*`` count over all parameters.
    """
    pruned = copy.deepcopy(model)
    masks = weight_masks(pruned, ratio, scope=scope, n_m=n_m, protected=protected,
                         protect_classifier=protect_classifier, include=include, where=where)
    weights = weight_params(pruned, include=include)
    before, nonzero_before = sparsity(pruned, include), _nonzero_params(pruned)
    apply_masks(pruned, masks)
    after = sparsity(pruned, include)
    pruned_zeros = sum(int((weights[key].detach() == 0).sum()) for key in masks)
    summary = {
        "method": "weight",
        "scope": "n:m" if n_m is not None else scope,
        "ratio": _check_ratio(ratio, _check_n_m(n_m) if n_m is not None else None),
        "n_m": list(n_m) if n_m is not None else None,
        "protected": _part_shielded(pruned, protected, protect_classifier, where),
        "where": list(check_where(where)) if where is not None else None,
        "changed": sorted({_module_of(k) for k in masks}),  # the modules whose weights were ranked and zeroed
        "tensors": _tensor_table(weights, before, after, masks),
        "sparsity_before": before["overall"],
        "sparsity_after": after["overall"],
        "pruned_sparsity": pruned_zeros / sum(m.numel() for m in masks.values()),
        "params_total": count_params(pruned),
        "nonzero_before": nonzero_before,
        "nonzero_after": _nonzero_params(pruned),
    }
    return pruned, summary
