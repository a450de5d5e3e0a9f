"""``wearprune audit RUN [RUN...]``: how much a model gives away about who was in its training set.

Members are windows of the training subjects, non-members windows of the test subjects (equal
numbers, seeded sample). Two attacks score each window; a higher score says "member":

- **loss threshold** (Yeom et al. 2018): score = -loss. Needs nothing but the model.
- **class-calibrated loss** (difficulty calibration as in Watson et al. 2022, at the granularity of
  the label): score = -(loss - median loss of that label) / its spread, both measured on a population
  the attacker holds: the validation subjects' windows (neither members nor the audited non-members).
  For regression the label is the target's quintile on that population.

Reported per attack: ROC AUC (0.5 = no better than chance) and the true-positive rate at 1 % false
positives (what an attacker confident in few guesses gets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError

FPR = 0.01


def roc_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(score of a member > score of a non-member), ties counted half (Mann-Whitney U / n1 n0)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([members, nonmembers]))
    n1, n0 = len(members), len(nonmembers)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float = FPR) -> float:
    """Share of members scored above the threshold that only ``fpr`` of the non-members exceed."""
    threshold = np.quantile(nonmembers, 1 - fpr, method="higher")
    return float((members > threshold).mean())


def per_window_loss(outputs: np.ndarray, y: np.ndarray, task: str, target_scale: dict | None) -> np.ndarray:
    """Cross-entropy per window (classification) or squared error on the scaled target (regression)."""
    if task == "classification":
        z = outputs - outputs.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y.astype(int)]
    target = (y - target_scale["mean"]) / target_scale["std"] if target_scale else y
    return (outputs[:, 0] - target) ** 2


def _groups(y: np.ndarray, population_y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    if task == "classification":
        return y.astype(int), population_y.astype(int)
    edges = np.quantile(population_y, [0.2, 0.4, 0.6, 0.8])
    return np.digitize(y, edges), np.digitize(population_y, edges)


def calibrated_scores(loss: np.ndarray, y: np.ndarray, pop_loss: np.ndarray, pop_y: np.ndarray,
                      task: str) -> np.ndarray:
    g, pg = _groups(y, pop_y, task)
    overall_med = np.median(pop_loss)
    overall_iqr = np.subtract(*np.quantile(pop_loss, [0.75, 0.25])) or 1.0
    out = np.empty(len(loss))
    for k in np.unique(g):
        ref = pop_loss[pg == k]
        med = np.median(ref) if len(ref) >= 5 else overall_med
        iqr = (np.subtract(*np.quantile(ref, [0.75, 0.25])) if len(ref) >= 5 else overall_iqr) or overall_iqr
        out[g == k] = -(loss[g == k] - med) / iqr
    return out


def attack(member_loss, member_y, nonmember_loss, nonmember_y, pop_loss, pop_y, task: str) -> dict:
    """Both attacks on given losses: {attack: {auc, tpr_at_1pct_fpr}}."""
    result = {"loss_threshold": (-member_loss, -nonmember_loss),
              "class_calibrated": (calibrated_scores(member_loss, member_y, pop_loss, pop_y, task),
                                   calibrated_scores(nonmember_loss, nonmember_y, pop_loss, pop_y, task))}
    return {name: {"auc": roc_auc(m, n), "tpr_at_1pct_fpr": tpr_at_fpr(m, n)} for name, (m, n) in result.items()}


def audit(runs: list, *, tflm: bool = False, max_windows: int = 2000, seed: int = 0, data_root: str | None = None,
          out: str | Path | None = None, data=None, log=print) -> dict:
    """Membership inference against each run (training subjects vs test subjects); ``audit.json`` in ``out``.
    ``data``: the dataset object, for runs trained on in-memory data."""
    from ..data.prepare import prepare_from_config
    from ..runs import Run, load_run
    from .evaluate import engine_outputs

    if not runs:
        raise ConfigError("audit needs at least one run directory")
    if isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 10:
        raise ConfigError(f"--max-windows must be a whole number >= 10, got {max_windows!r}")
    rows = []
    for r in runs:
        run = r if isinstance(r, Run) else load_run(r)
        prepared = prepare_from_config(run.config, data_root, data=data)
        rng = np.random.default_rng(seed)
        n = min(len(prepared.train), len(prepared.test), max_windows)
        if n < 10 or len(prepared.val) < 10:
            raise ConfigError(f"{run.path}: too few windows to audit (train {len(prepared.train)}, val "
                              f"{len(prepared.val)}, test {len(prepared.test)}); at least 10 each")
        sides = {"members": prepared.train, "nonmembers": prepared.test, "population": prepared.val}
        picks = {k: rng.permutation(len(d))[:n] for k, d in sides.items()}
        outputs = engine_outputs(run, tflm)
        task = prepared.dataset.task
        losses, labels = {}, {}
        for k, d in sides.items():
            x, y = d.X[picks[k]], d.y[picks[k]]
            losses[k] = per_window_loss(outputs(x), y, task, prepared.target_scale)
            labels[k] = y
        result = attack(losses["members"], labels["members"], losses["nonmembers"], labels["nonmembers"],
                        losses["population"], labels["population"], task)
        log(f"{run.path}: loss-threshold AUC {result['loss_threshold']['auc']:.3f}, class-calibrated AUC "
            f"{result['class_calibrated']['auc']:.3f}")
        rows.append({"run": str(run.path), "windows_per_side": n, "engine": "int8 TFLite Micro" if tflm else
                     "PyTorch fp32", "mean_loss": {k: float(v.mean()) for k, v in losses.items()},
                     "dp": (run.metrics or {}).get("dp"), **result})
    doc = {"runs": rows, "members": "windows of the training subjects", "nonmembers": "windows of the test subjects",
           "population": "windows of the validation subjects (the attacker's reference data)", "seed": seed,
           "attacks": {"loss_threshold": "score = -loss (Yeom et al. 2018)",
                       "class_calibrated": "score = -(loss - median loss of the label) / IQR on the population "
                                           "(difficulty calibration per label; regression: per target quintile)"}}
    if out is not None:
        from ..io import atomic_write_json

        atomic_write_json(Path(out) / "audit.json", doc)
    return doc
