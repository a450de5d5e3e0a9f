"""Importance criteria: a group in, one score per unit out (higher = more important, kept).

Every criterion has the same signature ``fn(group, ctx) -> np.ndarray`` and is registered in
``CRITERIA``. ``ctx`` gives access to the model, and (computed once, on demand) gradients and
activation statistics over calibration windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..graph.dependency import DependencyGraph
from ..layers import as_inputs, rule_for
from .groups import Group, Slice


@dataclass
class ImportanceContext:
    model: nn.Module
    graph: DependencyGraph
    calib: tuple[torch.Tensor, torch.Tensor] | None = None  # inputs (a tuple for several), targets
    task: str = "classification"
    seed: int = 0
    _grads: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    _acts: dict[str, dict[int, float]] | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    def tensor(self, s: Slice) -> torch.Tensor:
        return getattr(self.model.get_submodule(s.pdim.module), s.pdim.param).detach()

    def grad(self, s: Slice) -> torch.Tensor:
        if self._grads is None:
            self._grads = _gradients(self.model, self._need_calib("gradient"), self.task)
        g = self._grads.get(f"{s.pdim.module}.{s.pdim.param}")
        return g if g is not None else torch.zeros_like(self.tensor(s))  # buffers have no gradient

    def activation(self, kind: str) -> dict[int, float]:
        """Per unit root: mean |activation| ("mean") or fraction of non-zeros ("apoz" -> 1 - APoZ)."""
        if self._acts is None:
            self._acts = _activation_stats(self.graph, self._need_calib("activation"))
        return self._acts[kind]

    def _need_calib(self, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.calib is None or len(as_inputs(self.calib[0])[0]) == 0:
            raise ConfigError(f"{what}-based importance needs calibration windows; pass calib=(X, y)")
        return as_inputs(self.calib[0]), self.calib[1]


Criterion = Callable[[Group, ImportanceContext], np.ndarray]


def _unit_reduce(s: Slice, t: torch.Tensor, fn) -> np.ndarray:
    """Apply ``fn`` to each unit's sub-tensor (positions along the slice's dim); 0 for no positions."""
    out = np.zeros(len(s.positions))
    for u, pos in enumerate(s.positions):
        if len(pos):
            out[u] = float(fn(t.index_select(s.pdim.dim, torch.from_numpy(pos))))
    return out


def _producer_slices(group: Group, ctx: ImportanceContext) -> list[Slice]:
    """The weights that create the group's channels (conv filters, linear rows, RNN gate rows)."""
    out = []
    for s in group.slices:
        rule = rule_for(ctx.model.get_submodule(s.pdim.module))
        if s.pdim.role == "out" and rule is not None and rule.weighted and s.pdim.param.startswith("weight"):
            out.append(s)
    return out


def magnitude(p: int) -> Criterion:
    def score(group: Group, ctx: ImportanceContext) -> np.ndarray:
        total = np.zeros(group.size)
        for s in _producer_slices(group, ctx):
            total += _unit_reduce(s, ctx.tensor(s), lambda w: w.abs().pow(p).sum())
        return total ** (1.0 / p)

    score.__name__ = f"l{p}"
    return score


def bn_scale(group: Group, ctx: ImportanceContext) -> np.ndarray:
    """Network Slimming: |gamma| of the normalisation layers (their rule's ``scale``) on the group's channels."""
    total, found = np.zeros(group.size), False
    for s in group.slices:
        rule = rule_for(ctx.model.get_submodule(s.pdim.module))
        if rule is not None and rule.scale is not None and s.pdim.param == rule.scale:
            total += _unit_reduce(s, ctx.tensor(s), lambda w: w.abs().sum())
            found = True
    if not found:
        ctx.notes.append(f"{group.name}: no BatchNorm scale, ranked by L2 magnitude instead")
        return magnitude(2)(group, ctx)
    return total


def taylor(group: Group, ctx: ImportanceContext) -> np.ndarray:
    """First-order Taylor (Molchanov et al. 2019): |sum of w * dL/dw| over the unit's parameters."""
    total = np.zeros(group.size)
    for s in group.slices:
        if s.pdim.role != "out":
            continue
        prod = ctx.tensor(s) * ctx.grad(s)
        total += np.abs(_unit_reduce(s, prod, lambda t: t.sum()))
    return total


def snip(group: Group, ctx: ImportanceContext) -> np.ndarray:
    """SNIP connection sensitivity |w * dL/dw| summed over every weight that makes or reads the unit."""
    total = np.zeros(group.size)
    for s in group.slices:
        total += _unit_reduce(s, (ctx.tensor(s) * ctx.grad(s)).abs(), lambda t: t.sum())
    return total


def fpgm(group: Group, ctx: ImportanceContext) -> np.ndarray:
    """FPGM (He et al. 2019): filters near the geometric median are redundant; score = summed
    distance of a unit's filter to all other filters of its layer."""
    total = np.zeros(group.size)
    for s in _producer_slices(group, ctx):
        t = ctx.tensor(s)
        rows = [t.index_select(s.pdim.dim, torch.from_numpy(p)).flatten() if len(p) else None
                for p in s.positions]
        present = [i for i, r in enumerate(rows) if r is not None]
        if len(present) < 2:
            continue
        mat = torch.stack([rows[i] for i in present])
        dist = torch.cdist(mat[None], mat[None])[0].sum(1).numpy()
        total[present] += dist
    return total


def activation_mean(group: Group, ctx: ImportanceContext) -> np.ndarray:
    stats = ctx.activation("mean")
    return np.array([stats.get(r, 0.0) for r in group.roots])


def apoz(group: Group, ctx: ImportanceContext) -> np.ndarray:
    """Average Percentage of Zeros (Hu et al. 2016) after activations; score = 1 - APoZ."""
    stats = ctx.activation("apoz")
    return np.array([stats.get(r, 1.0) for r in group.roots])


def random_scores(group: Group, ctx: ImportanceContext) -> np.ndarray:
    rng = np.random.default_rng(ctx.seed + sum(ord(c) for c in group.name))
    return rng.random(group.size)


CRITERIA: dict[str, Criterion] = {
    "l1": magnitude(1),
    "l2": magnitude(2),
    "bn_scale": bn_scale,
    "taylor": taylor,
    "fpgm": fpgm,
    "activation": activation_mean,
    "apoz": apoz,
    "random": random_scores,
    "snip": snip,
}
NEEDS_CALIB = {"taylor", "activation", "apoz", "snip"}


def get_criterion(name: str) -> Criterion:
    if name not in CRITERIA:
        raise ConfigError(f"unknown importance {name!r}; choose one of: {', '.join(CRITERIA)}")
    return CRITERIA[name]


# -- calibration statistics ---------------------------------------------------------------------
def _gradients(model: nn.Module, calib, task: str) -> dict[str, torch.Tensor]:
    xs, y = calib  # xs: one tensor per model input
    n = len(xs[0])
    was_training = model.training
    model.eval()  # BatchNorm statistics stay as trained; gradients flow the same way
    params = dict(model.named_parameters())
    grads = {k: torch.zeros_like(p) for k, p in params.items()}
    for i in range(0, n, 256):
        model.zero_grad(set_to_none=True)
        out = model(*(x[i:i + 256] for x in xs))
        yb = y[i:i + 256]
        loss = F.cross_entropy(out, yb.long(), reduction="sum") if task == "classification" else \
            F.mse_loss(out[:, 0], yb.float(), reduction="sum")
        loss.backward()
        for k, p in params.items():
            if p.grad is not None:
                grads[k] += p.grad.detach()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {k: g / n for k, g in grads.items()}


def _activation_stats(graph: DependencyGraph, calib) -> dict[str, dict[int, float]]:
    """Run the traced graph on calibration windows and average, per unit, |x| and the non-zero rate
    of the tensors that carry it (post-activation tensors when a unit has any)."""
    xs, _ = calib
    wanted = {t.node: t for t in graph.tensors}
    sums: dict[str, np.ndarray] = {}
    nonzero: dict[str, np.ndarray] = {}
    count = 0

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            t = wanted.get(n.name)
            if t is not None and isinstance(out, torch.Tensor):
                moved = out.detach().movedim(t.axis, 0).reshape(out.shape[t.axis], -1)
                sums[n.name] = sums.get(n.name, 0) + moved.abs().sum(1).numpy() / moved.shape[1]
                nonzero[n.name] = nonzero.get(n.name, 0) + (moved != 0).float().mean(1).numpy()
            return out

    graph.model.eval()
    with torch.no_grad():
        for i in range(0, len(xs[0]), 256):
            Recorder(graph.gm).run(*(x[i:i + 256] for x in xs))
            count += 1
    roots = {t.node: graph.uf.roots(t.ids) for t in graph.tensors}
    result = {}
    for kind, table in (("mean", sums), ("apoz", nonzero)):
        post = _per_root(graph, table, roots, count, post_only=True)
        anywhere = _per_root(graph, table, roots, count, post_only=False)
        result[kind] = {**anywhere, **post}
    return result


def _per_root(graph, table, roots, count, post_only: bool) -> dict[int, float]:
    acc: dict[int, list[float]] = {}
    for t in graph.tensors:
        if t.node not in table or (post_only and not t.post_activation):
            continue
        for r, v in zip(roots[t.node].tolist(), (table[t.node] / count).tolist()):
            if r > 0:
                acc.setdefault(r, []).append(v)
    return {r: float(np.mean(v)) for r, v in acc.items()}
