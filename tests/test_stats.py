"""Confidence intervals checked against scipy on known numbers, and their edge cases."""

import numpy as np
import pytest
from scipy import stats as sps

from wearprune.errors import ConfigError
from wearprune.stats import bootstrap_ci, mean_ci, paired_difference

SCORES = [0.529, 0.470, 0.516, 0.561, 0.498]  # e.g. macro-F1 of five folds


def test_t_interval_matches_scipy():
    est = mean_ci(SCORES)
    lo, hi = sps.t.interval(0.95, len(SCORES) - 1, loc=np.mean(SCORES), scale=sps.sem(SCORES))
    assert est.ci == pytest.approx((lo, hi)) and est.mean == pytest.approx(np.mean(SCORES))
    assert est.sd == pytest.approx(np.std(SCORES, ddof=1)) and est.n == 5
    # a hand-checked value: t(0.975, 4) = 2.776445
    assert est.high - est.mean == pytest.approx(2.776445 * np.std(SCORES, ddof=1) / np.sqrt(5), rel=1e-6)
    d = est.to_dict()
    assert d["ci95"] == pytest.approx([lo, hi]) and "df = n - 1 = 4" in d["method"]
    assert mean_ci(SCORES, confidence=0.9).to_dict()["ci90"] == pytest.approx(
        list(sps.t.interval(0.9, 4, loc=np.mean(SCORES), scale=sps.sem(SCORES))))


def test_paired_difference_matches_ttest_rel():
    dense = [0.52, 0.47, 0.51, 0.56, 0.50, 0.49]
    pruned = [0.50, 0.46, 0.47, 0.55, 0.47, 0.49]
    diffs, est = paired_difference(pruned, dense)
    assert diffs == pytest.approx(np.subtract(pruned, dense))
    test = sps.ttest_rel(pruned, dense)
    assert est.p_value == pytest.approx(test.pvalue)
    assert est.ci == pytest.approx(test.confidence_interval(0.95))
    assert est.mean == pytest.approx(np.mean(pruned) - np.mean(dense))
    with pytest.raises(ConfigError, match="one variant score per reference"):
        paired_difference([1.0, 2.0], [1.0])


def test_one_value_has_no_interval():
    est = mean_ci([0.5])
    assert est.ci is None and est.sd is None and "undefined" in est.note
    assert est.to_dict()["ci95"] is None
    _, diff = paired_difference([0.4], [0.5])
    assert diff.ci is None and diff.p_value is None and diff.mean == pytest.approx(-0.1)
    assert bootstrap_ci([0.3]).ci is None


def test_zero_variance():
    est = mean_ci([0.1, 0.1, 0.1])  # float sums make x.std() about 1e-17 here; it must be exactly 0
    assert est.sd == 0 and est.ci == (0.1, 0.1) and "zero width" in est.note
    _, diff = paired_difference([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])  # +0.1 every time, up to rounding
    assert diff.mean == pytest.approx(0.1)
    _, same = paired_difference([0.5, 0.6], [0.5, 0.6])
    assert same.ci == (0.0, 0.0) and same.p_value is None and "zero width" in same.note


def test_bootstrap_is_seeded_and_close_to_scipy():
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 0.1, size=16)
    a, b = bootstrap_ci(x, seed=3), bootstrap_ci(x, seed=3)
    assert a.ci == b.ci and a.low < a.mean < a.high
    ref = sps.bootstrap((x,), np.mean, method="percentile", n_resamples=10_000, random_state=0).confidence_interval
    assert a.low == pytest.approx(ref.low, abs=0.01) and a.high == pytest.approx(ref.high, abs=0.01)


def test_bad_input():
    for bad in ([], [np.nan, 1.0], "abc", [[1.0, 2.0]]):
        with pytest.raises(ConfigError):
            mean_ci(bad)
    with pytest.raises(ConfigError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=95)
