"""Groups: the prunable units of a dependency graph, gathered by the layers that produce them.

A *unit* is one union-find class of channel ids (a conv filter together with the residual
partners it is added to, or an RNN hidden unit with all its gates). A *group* is the units made
by the same set of layers — the channels of one layer, as a user would name it. Importance
criteria take a group and return one score per unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..graph.dependency import DependencyGraph, ParamDim


@dataclass
class Slice:
    """One parameter dimension's view of a group: the positions of each unit along ``dim``."""

    pdim: ParamDim
    positions: list[np.ndarray]  # one array per unit (may be empty)


@dataclass
class Group:
    name: str  # "+"-joined producer layers
    producers: tuple[str, ...]
    roots: list[int]  # union-find root of each unit
    slices: list[Slice]

    @property
    def size(self) -> int:
        return len(self.roots)


def build_groups(graph: DependencyGraph, protected: tuple[str, ...] = ()) -> list[Group]:
    """All prunable groups; units produced by a protected layer (or its children) are left out."""
    classes = graph.classes()
    producer_of: dict[int, set[str]] = {}
    for module, ids in graph.producers.items():
        for r in graph.uf.roots(ids).tolist():
            producer_of.setdefault(r, set()).add(module)
    by_key: dict[tuple[str, ...], list[int]] = {}
    for root in classes:
        key = tuple(sorted(producer_of.get(root, ())))
        if not key or any(_is_protected(p, protected) for p in key):
            continue
        by_key.setdefault(key, []).append(root)
    groups = []
    for key, roots in sorted(by_key.items()):
        roots = sorted(roots)
        slices = _slices(graph, classes, roots)
        groups.append(Group(name="+".join(key), producers=key, roots=roots, slices=slices))
    return groups


def _slices(graph: DependencyGraph, classes, roots: list[int]) -> list[Slice]:
    per_pdim: dict[int, list[np.ndarray]] = {}
    empty = np.zeros(0, dtype=np.int64)
    for u, r in enumerate(roots):
        for k, pos in classes[r]:
            per_pdim.setdefault(k, [empty] * len(roots))
            per_pdim[k][u] = pos
    return [Slice(graph.param_dims[k], pos) for k, pos in sorted(per_pdim.items())]


def _is_protected(module: str, protected: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in protected)
