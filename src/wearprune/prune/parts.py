"""Parts of a model ("model decomposition"): module-name patterns that restrict a pruning step.

A *part* is the set of modules a ``where`` names: one glob pattern or a list of them, matched with
:func:`fnmatch.fnmatchcase` against qualified module names (``features.*``, ``rnn``, ``classifier``).
A module belongs to the part when its own name or the name of a module containing it matches, so
``where: features`` covers ``features.0.0`` too.

What each granularity does with a part:

- channel / neuron: only the groups of coupled channels whose *producing* layers all lie in the
  part are pruned. A group belongs to the part that produces it; the layers that merely read it (the
  GRU's input weights reading the last conv's channels) shrink along with it wherever they are. A
  group whose producers straddle parts (a residual add joining a conv inside the part and a shortcut
  or stem outside it) is left alone and listed in the step summary's ``skipped``: widen the pattern
  to cover both sides to prune it.
- weight: only the weights of modules in the part are ranked and zeroed (N:M included). Naming
  the classifier in ``where`` is explicit, so a weight step's part may include it (steps without
  ``where`` keep it dense); ``protected`` still shields modules.
- layer: only blocks in the part are candidates.

A pattern that matches no module is an error naming it, never a silent no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from torch import nn

from ..errors import ConfigError
from ..layers import conv_macs, linear_macs, rnn_macs, rule_for

Where = str | Sequence[str]


def check_where(where: object) -> tuple[str, ...]:
    """``where`` as a tuple of patterns: one non-empty string, or a non-empty list of them."""
    patterns = [where] if isinstance(where, str) else where
    if not isinstance(patterns, (list, tuple)) or not patterns or not all(
            isinstance(p, str) and p.strip() for p in patterns):
        raise ConfigError(f"where must be a module-name pattern or a non-empty list of them (e.g. 'features.*'), "
                          f"got {where!r}")
    return tuple(p.strip() for p in patterns)


def _ancestry(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``."""
    bits = name.split(".")
    return [".".join(bits[: i + 1]) for i in range(len(bits))]


def part_modules(model: nn.Module, where: Where) -> set[str]:
    """Qualified names of the modules in the part ``where`` names (a module, or one containing it, matches).

    ConfigError when a pattern matches no module: it names the pattern and shows the model's names."""
    patterns = check_where(where)
    names = [n for n, _ in model.named_modules() if n]  # the root ("") is the whole model, not a part
    for p in patterns:
        if not any(fnmatchcase(n, p) for n in names):
            top = [n for n, _ in model.named_children()]
            example = next((n for n in names if n.count(".") >= 1), names[0] if names else "")
            raise ConfigError(f"where pattern {p!r} matches no module; top-level modules: {', '.join(top[:10])}"
                              f"{' ...' if len(top) > 10 else ''} (patterns match qualified names like {example!r})")
    return {n for n in names if any(fnmatchcase(a, p) for a in _ancestry(n) for p in patterns)}


def split_by_part(producers: dict[str, Sequence[str]], part: set[str]) -> tuple[list[str], list[str]]:
    """(groups all of whose producers are in ``part``, groups only some of whose producers are)."""
    inside, straddling = [], []
    for group, prods in producers.items():
        hits = [p in part for p in prods]
        if hits and all(hits):
            inside.append(group)
        elif any(hits):
            straddling.append(group)
    return inside, straddling


# Module kinds read from the layer rules' MAC counters (the rule says what a type computes).
_KINDS = (("front", conv_macs), ("recurrent", rnn_macs), ("head", linear_macs))


def auto_parts(model: nn.Module) -> dict[str, list[str]]:
    """Split a model by layer kind: ``front`` (convolutions), ``recurrent`` (GRU/LSTM/RNN) and ``head``
    (Linear layers); each part lists its modules' exact names, and empty parts are left out.

    Meant for zoo-like models (conv front end -> recurrent layers -> dense head); a Linear inside a conv
    block would land in ``head`` — give the parts by hand for such models."""
    parts: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        rule = rule_for(module)
        for part, macs in _KINDS:
            if name and rule is not None and rule.macs is macs:
                parts.setdefault(part, []).append(name)
    if not parts:
        raise ConfigError("automatic parts found no convolution, recurrent or Linear layer; give the parts by "
                          "module-name patterns instead")
    return parts
