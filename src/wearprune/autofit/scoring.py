"""How the fit scores a model on validation: the task's headline (``sensitivity.score``), or, with
``--robust-search``, the mean of that and of the headline under every applicable wearable corruption
(robust/corruptions.py) at one middle severity, so that candidates and contenders which keep their
accuracy on a loose strap, a dead channel or a noisy sensor rank higher.

The corrupted copies of the validation windows are made once (seeded) and scored like the clean ones;
higher is better (an MAE is negated)."""

from __future__ import annotations

import numpy as np

from wearprune.autofit.sensitivity import score

SEVERITY = 3  # of 1..5: the middle of each corruption's range


class ValScore:
    """``scorer(model)``: the validation score the search maximises."""

    def __init__(self, prepared, robust: bool = False, seed: int = 0):
        from wearprune.robust.evaluate import corrupted_validation

        self.prepared = prepared
        self.robust = robust
        self.copies = corrupted_validation(prepared, SEVERITY, seed) if robust else {}

    def __call__(self, model) -> float:
        clean = score(model, self.prepared.val, self.prepared.target_scale)
        if not self.copies:
            return clean
        corrupted = [score(model, ds, self.prepared.target_scale) for ds in self.copies.values()]
        return float(0.5 * (clean + np.mean(corrupted)))

    def describe(self) -> str:
        if not self.robust:
            return "the validation headline"
        return (f"the mean of the clean validation headline and its mean under {len(self.copies)} corruptions "
                f"({', '.join(self.copies)}) at severity {SEVERITY} of 5")
