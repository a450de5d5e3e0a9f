"""Confidence intervals for cross-validated scores.

* :func:`mean_ci`: the mean and its Student-t interval (df = n − 1);
* :func:`paired_difference`: per-pair differences (variant − reference), their mean, t-interval and
  the two-sided paired t-test p-value (the same test as ``scipy.stats.ttest_rel``);
* :func:`bootstrap_ci`: a percentile bootstrap of the mean, for per-subject scores.

An interval needs spread: with one value it is undefined (``None``, and the note says so); when
every value is equal the t-interval has zero width and the note says that too, since zero observed
spread is not zero uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from .errors import ConfigError

CONFIDENCE = 0.95
RESAMPLES = 10_000
ONE_VALUE = "one value: no spread to estimate, so the interval is undefined"
NO_SPREAD = "every value is equal: the interval has zero width (zero observed spread, not zero uncertainty)"


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float
    sd: float | None  # sample standard deviation (ddof 1)
    sem: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    note: str | None = None
    p_value: float | None = None  # paired differences: two-sided paired t-test (H0: mean difference 0)

    @property
    def ci(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)

    def to_dict(self) -> dict:
        level = f"ci{round(self.confidence * 100):d}"
        d = {"n": self.n, "mean": self.mean, "sd": self.sd, "sem": self.sem,
             level: None if self.ci is None else list(self.ci), "confidence": self.confidence, "method": self.method}
        if self.p_value is not None or self.method.startswith("paired"):
            d["p_value"] = self.p_value
        if self.note:
            d["note"] = self.note
        return d


def _values(values, what: str = "values") -> np.ndarray:
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers") from None
    if x.ndim != 1 or len(x) == 0:
        raise ConfigError(f"{what}: need a flat list of at least one number, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError(f"{what} hold NaN or inf; a score is missing or diverged")
    return x


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence!r}")


def mean_ci(values, confidence: float = CONFIDENCE) -> Estimate:
    """Mean and Student-t interval: mean ± t(1 − α/2, n − 1) · sd / √n."""
    _check_confidence(confidence)
    x = _values(values)
    return _t_estimate(x, confidence, f"t-interval (df = n - 1 = {len(x) - 1})")


def _t_estimate(x: np.ndarray, confidence: float, method: str) -> Estimate:
    n, mean = len(x), float(x.mean())
    if n < 2:
        return Estimate(n, mean, None, None, None, None, confidence, method, ONE_VALUE)
    if np.all(x == x[0]):  # exactly: x.std() of equal floats can be 1e-17, not 0
        return Estimate(n, float(x[0]), 0.0, 0.0, float(x[0]), float(x[0]), confidence, method, NO_SPREAD)
    sd = float(x.std(ddof=1))
    sem = sd / math.sqrt(n)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return Estimate(n, mean, sd, sem, mean - half, mean + half, confidence, method)


def paired_difference(variant, reference, confidence: float = CONFIDENCE) -> tuple[list[float], Estimate]:
    """(per-pair differences variant − reference, their mean with t-interval and paired t-test p-value).

    Pairs are positions: ``variant[i]`` and ``reference[i]`` must come from the same fold (and seed)."""
    _check_confidence(confidence)
    v, r = _values(variant, "variant scores"), _values(reference, "reference scores")
    if v.shape != r.shape:
        raise ConfigError(f"paired scores need one variant score per reference score, got {len(v)} and {len(r)}")
    d = v - r
    est = _t_estimate(d, confidence, f"paired t-interval on the differences (df = n - 1 = {len(d) - 1})")
    p = None
    if est.sem:  # undefined for one pair or zero spread (scipy returns nan there)
        p = float(2 * sps.t.sf(abs(est.mean / est.sem), len(d) - 1))
    return d.tolist(), replace(est, p_value=p)


def bootstrap_ci(values, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """Percentile bootstrap of the mean: resample the values with replacement ``resamples`` times and
    take the (α/2, 1 − α/2) quantiles of the resampled means. Seeded, so reruns give the same interval."""
    _check_confidence(confidence)
    x = _values(values)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ConfigError(f"bootstrap resamples must be a whole number of at least 100, got {resamples!r}")
    n, mean = len(x), float(x.mean())
    method = f"percentile bootstrap of the mean ({resamples} resamples, seed {seed})"
    sd = float(x.std(ddof=1)) if n > 1 else None
    sem = sd / math.sqrt(n) if sd is not None else None
    if n < 2:
        return Estimate(n, mean, None, None, None, None, confidence, method, ONE_VALUE)
    if np.all(x == x[0]):
        return Estimate(n, float(x[0]), 0.0, 0.0, float(x[0]), float(x[0]), confidence, method, NO_SPREAD)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # chunks bound the index matrix's memory for many values
        stop = min(resamples, start + 1000)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    note = "few values: a bootstrap interval is too narrow below about 10" if n < 10 else None
    return Estimate(n, mean, sd, sem, float(low), float(high), confidence, method, note)
