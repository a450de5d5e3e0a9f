import numpy as np
import pytest
from sklearn import metrics as skm

from wearprune.evaluate import classification_metrics, regression_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 5
    y = rng.integers(0, k, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
    m = classification_metrics(y, p, [f"c{i}" for i in range(k)])
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert m["macro_precision"] == pytest.approx(skm.precision_score(y, p, average="macro"))
    assert m["macro_recall"] == pytest.approx(skm.recall_score(y, p, average="macro"))
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y, p))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, p, labels=range(k)).tolist()
    per_f1 = skm.f1_score(y, p, average=None)
    assert [r["f1"] for r in m["per_class"]] == pytest.approx(per_f1)


def test_macro_over_present_classes_matches_sklearn_labels():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 3, 1, 1, 2])  # class 3 never occurs in y
    m = classification_metrics(y, p, ["a", "b", "c", "d"])
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, labels=[0, 1, 2], average="macro"))


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.normal(100, 20, 50), rng.normal(100, 20, 50)
    m = regression_metrics(y, p)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
