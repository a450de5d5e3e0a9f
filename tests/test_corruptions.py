"""Wearable corruptions: severity 0 is the identity, damage grows with severity, rotation keeps norms,
and the robustness evaluation reports curves and corruption errors against the reference run."""

import json

import numpy as np
import pytest

from tests.test_cli import assert_clean_error, wearprune
from wearprune.errors import ConfigError
from wearprune.robust.corruptions import CORRUPTIONS, SEVERITIES, corrupt

NAMES = ["ppg1", "acc_x", "acc_y", "acc_z", "ecg"]


def signal(n=16, t=200, seed=0):
    rng = np.random.default_rng(seed)
    time = np.arange(t) / 25.0
    base = np.sin(2 * np.pi * 1.3 * time)[None, None, :] * rng.uniform(0.5, 2, (n, len(NAMES), 1))
    return (base + 0.1 * rng.standard_normal((n, len(NAMES), t)) + 1.0).astype(np.float32)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_severity_zero_is_the_identity(name):
    x = signal()
    assert np.array_equal(corrupt(x, name, 0, rate_hz=25, channel_names=NAMES), x)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_damage_grows_with_severity(name):
    x = signal()
    damage = [float(np.abs(corrupt(x, name, s, rate_hz=25, channel_names=NAMES, seed=3) - x).mean())
              for s in range(SEVERITIES + 1)]
    assert damage[0] == 0 and damage[-1] > 0
    assert all(b >= a for a, b in zip(damage, damage[1:])), damage


def test_rotation_keeps_vector_norms_and_only_turns_triples():
    x = signal()
    y = corrupt(x, "rotation", 5, rate_hz=25, channel_names=NAMES, seed=1)
    assert np.allclose(np.linalg.norm(y[:, 1:4], axis=1), np.linalg.norm(x[:, 1:4], axis=1), atol=1e-4)
    assert not np.allclose(y[:, 1:4], x[:, 1:4])
    assert np.array_equal(y[:, [0, 4]], x[:, [0, 4]])  # PPG and ECG untouched


def test_wander_touches_physiological_channels_only():
    x = signal()
    y = corrupt(x, "wander", 3, rate_hz=25, channel_names=NAMES)
    assert np.array_equal(y[:, 1:4], x[:, 1:4]) and not np.allclose(y[:, [0, 4]], x[:, [0, 4]])


def test_noise_has_the_asked_snr():
    x = signal(n=64, t=2000)
    y = corrupt(x, "noise", 3, rate_hz=25, channel_names=NAMES)  # 10 dB
    snr = 10 * np.log10(x.var(axis=2) / (y - x).var(axis=2))
    assert abs(float(np.median(snr)) - 10.0) < 0.5


def test_bad_arguments_are_one_line():
    with pytest.raises(ConfigError, match="unknown corruption 'fog'"):
        corrupt(signal(), "fog", 1, rate_hz=25)
    with pytest.raises(ConfigError, match="severity must be a whole number 0..5"):
        corrupt(signal(), "noise", 6, rate_hz=25)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    import wearprune as wp

    root = tmp_path_factory.mktemp("robust")
    ds = wp.load_dataset("basicmotions")
    dense = wp.train(ds, "cnn1d", root / "dense", config=wp.TrainConfig(epochs=20, batch_size=16))
    wp.prune_run(dense.path, root / "pruned", method="channel", ratio=0.5, finetune_epochs=5)
    return root


def test_robustness_reports_curves_and_corruption_error(two_runs, tmp_path):
    res = wearprune("robustness", str(two_runs / "dense"), str(two_runs / "pruned"), "--corruption",
                    "noise,rotation,gaps", "--attack-eps", "0.1", "--attack-eps", "0.5", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "robustness.json").read_text())
    assert list(doc["corruptions"]) == ["noise", "rotation", "gaps"]
    dense, pruned = doc["runs"]
    # the reference's own corruption error is 1 wherever it is defined (it loses something to the corruption)
    assert all(v is None or v == pytest.approx(1.0) for v in [*dense["ce"].values(), *dense["relative_ce"].values()])
    assert dense["mce"] in (None, pytest.approx(1.0))
    for r in doc["runs"]:
        assert all(len(v) == SEVERITIES + 1 and v[0] == pytest.approx(r["clean"]) for v in r["curves"].values())
        assert 0 <= r["mean_corruption"] <= 1 and r["worst"] in doc["corruptions"]
    assert (tmp_path / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    # per-class recall: clean = the run's own test evaluation at training time (another code path)
    trained = json.loads((two_runs / "dense" / "metrics.json").read_text())["test"]["per_class"]
    assert dense["per_class_recall"]["classes"] == [c["class"] for c in trained]
    assert dense["per_class_recall"]["clean"] == pytest.approx([c["recall"] for c in trained])
    for r in doc["runs"]:
        pc = r["per_class_recall"]
        assert list(pc["by_corruption"]) == ["noise", "rotation", "gaps"]
        assert np.allclose(pc["mean_corruption"], np.mean(list(pc["by_corruption"].values()), axis=0))
        assert all(0 <= v <= 1 for v in pc["mean_corruption"])
    assert "recall (sensitivity) per class" in res.stdout
    for r in doc["runs"]:  # a larger budget, and PGD against FGSM, hurt at least as much (up to noise)
        a = r["attacks"]
        assert a["pgd"]["0.5"] <= a["pgd"]["0.1"] + 0.05 and a["pgd"]["0.5"] <= a["fgsm"]["0.5"] + 0.05
        assert a["pgd"]["0.5"] < r["clean"]
    bad = wearprune("robustness", str(two_runs / "dense"), "--corruption", "fog")
    assert_clean_error(bad, "unknown corruption 'fog'")


def test_robustness_of_the_int8_model_in_tflm(two_runs, tmp_path):
    import wearprune as wp
    from wearprune.robust import robustness

    wp.export_run(two_runs / "dense", ("tflite",))
    doc = robustness([two_runs / "dense"], corruptions="noise,dead", tflm=True, out=tmp_path, log=lambda m: None)
    fp32 = robustness([two_runs / "dense"], corruptions="noise,dead", log=lambda m: None)
    assert doc["engine"].startswith("int8 in TensorFlow Lite Micro")
    tflm_clean = json.loads((two_runs / "dense" / "metrics.json").read_text())["tflm"]["int8"]["macro_f1"]
    assert doc["runs"][0]["clean"] == pytest.approx(tflm_clean)  # the same model export checked
    assert abs(doc["runs"][0]["mean_corruption"] - fp32["runs"][0]["mean_corruption"]) < 0.2
