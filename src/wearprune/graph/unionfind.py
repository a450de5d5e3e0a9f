"""Union-find over integer channel ids; id 0 is the frozen class (never pruned)."""

from __future__ import annotations

import numpy as np

FROZEN = 0


class UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = [FROZEN]

    def new(self, n: int) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return np.arange(start, start + n, dtype=np.int64)

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:  # path compression
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        # The frozen class always stays the root, so "is it frozen" is find(x) == FROZEN.
        if rb == FROZEN:
            ra, rb = rb, ra
        self.parent[rb] = ra

    def union_arrays(self, a: np.ndarray, b: np.ndarray) -> None:
        for x, y in zip(np.asarray(a).ravel().tolist(), np.asarray(b).ravel().tolist()):
            if x >= 0 and y >= 0:
                self.union(x, y)

    def freeze(self, ids: np.ndarray) -> None:
        for x in np.unique(np.asarray(ids)).tolist():
            if x >= 0:
                self.union(FROZEN, x)

    def roots(self, ids: np.ndarray) -> np.ndarray:
        flat = np.asarray(ids).ravel()
        return np.array([self.find(int(x)) if x >= 0 else -1 for x in flat], dtype=np.int64).reshape(
            np.shape(ids))
