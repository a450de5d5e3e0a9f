"""The membership audit: chance on two halves of the same unseen subjects, high on a model that
memorised its training windows, the AUC and TPR formulas, and the command line."""

import json

import numpy as np
import pytest
import torch

from tests.test_cli import assert_clean_error, wearprune
from wearprune.data.synthetic import make_synthetic
from wearprune.robust.audit import attack, per_window_loss, roc_auc, tpr_at_fpr


def test_auc_and_tpr_formulas():
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5  # ties count half
    non = np.arange(1000, dtype=float)
    assert tpr_at_fpr(np.array([995.0, 2000.0, 10.0, 5.0]), non) == 0.5  # above the 99th percentile


def _train(model, x, y, steps):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _losses(model, x, y):
    with torch.no_grad():
        return per_window_loss(model(torch.from_numpy(x)).numpy(), y, "classification", None)


def test_auc_is_chance_on_two_halves_of_the_same_unseen_subjects():
    ds = make_synthetic(n_subjects=8, per_subject=150, seed=1)
    train = np.isin(ds.subjects, ["s0", "s1", "s2", "s3"])
    torch.manual_seed(0)
    model = _train(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 3)), torch.from_numpy(ds.X[train]),
                   torch.from_numpy(ds.y[train]), 200)
    unseen = np.flatnonzero(np.isin(ds.subjects, ["s5", "s6", "s7"]))
    halves = np.random.default_rng(0).permutation(unseen)
    a, b = halves[: len(halves) // 2], halves[len(halves) // 2:]
    pop = np.flatnonzero(ds.subjects == "s4")
    result = attack(_losses(model, ds.X[a], ds.y[a]), ds.y[a], _losses(model, ds.X[b], ds.y[b]), ds.y[b],
                    _losses(model, ds.X[pop], ds.y[pop]), ds.y[pop], "classification")
    for name in ("loss_threshold", "class_calibrated"):
        assert abs(result[name]["auc"] - 0.5) < 0.08, result  # no membership to find: chance


def test_auc_is_high_on_a_model_that_memorised_its_training_windows():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3, 32)).astype(np.float32)
    y = rng.integers(0, 4, 200)  # random labels: only memorising fits them
    torch.manual_seed(0)
    model = _train(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(96, 256), torch.nn.ReLU(),
                                       torch.nn.Linear(256, 4)), torch.from_numpy(x[:60]), torch.from_numpy(y[:60]),
                   400)
    result = attack(_losses(model, x[:60], y[:60]), y[:60], _losses(model, x[60:120], y[60:120]), y[60:120],
                    _losses(model, x[120:], y[120:]), y[120:], "classification")
    assert result["loss_threshold"]["auc"] > 0.9 and result["class_calibrated"]["auc"] > 0.75
    assert result["loss_threshold"]["tpr_at_1pct_fpr"] > 0.3


def test_audit_command(tmp_path):
    import wearprune as wp

    ds = make_synthetic(n_subjects=6, per_subject=40, seed=2)
    wp.train(ds, "cnn1d", tmp_path / "run", config=wp.TrainConfig(epochs=3))
    # a run trained on in-memory data is audited from Python (the command line reloads data by name)
    doc = wp.audit([tmp_path / "run"], data_root=None, out=tmp_path / "a", data=ds)
    row = doc["runs"][0]
    assert 0 <= row["loss_threshold"]["auc"] <= 1 and row["windows_per_side"] == 40
    assert json.loads((tmp_path / "a" / "audit.json").read_text())["runs"][0]["run"] == str(tmp_path / "run")
    res = wearprune("audit", str(tmp_path / "run"), "--max-windows", "3")
    assert_clean_error(res, "--max-windows must be a whole number >= 10")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_per_window_loss_is_the_training_loss(task):
    out = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]], np.float32)
    if task == "classification":
        y = np.array([0, 2])
        expected = torch.nn.functional.cross_entropy(torch.from_numpy(out), torch.from_numpy(y), reduction="none")
        assert np.allclose(per_window_loss(out, y, task, None), expected.numpy(), atol=1e-6)
    else:
        y = np.array([70.0, 50.0])
        got = per_window_loss(out[:, :1], y, task, {"mean": 60.0, "std": 10.0})
        assert np.allclose(got, [(2.0 - 1.0) ** 2, (0.5 + 1.0) ** 2])
