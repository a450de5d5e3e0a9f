"""Reports: JSON, Markdown and a self-contained HTML page, from real runs; the CLI around them."""

import base64
import json
import re

import pytest

import wearprune as wp
from wearprune.report import build_report, write_report
from wearprune.report.render import pareto_front
from wearprune.verbs import prune_run

from .test_cli import assert_clean_error, wearprune


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_runs")
    wp.train(wp.load_dataset("basicmotions"), "cnn1d", root / "dense", config=wp.TrainConfig(epochs=2))
    prune_run(root / "dense", root / "pruned", ratio=0.5, finetune_epochs=1)
    return root / "dense", root / "pruned"


def test_report_files_and_self_contained_html(runs, tmp_path):
    rep = build_report(list(runs), "nrf52840")
    paths = write_report(rep, tmp_path / "rep")
    data = json.loads(paths["json"].read_text())
    assert data["device"]["name"] == "nrf52840" and [r["name"] for r in data["runs"]] == ["dense", "pruned"]
    dense, pruned = data["runs"]
    assert pruned["cost"]["macs"] < dense["cost"]["macs"] and pruned["vs_baseline"]["macs"] > 1.5
    assert all(pruned["widths"][k] <= dense["widths"][k] for k in dense["widths"])
    assert "macro_f1" in dense["metrics"] and dense["cost"]["fits"] in (True, False)
    html = paths["html"].read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) == 3  # widths, metric vs MACs, metric vs energy
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    assert "http" not in html.replace("https://", "").split("<body>")[0]  # nothing fetched from outside
    md = paths["md"].read_text()
    assert "(measured)" in md and "(estimated)" in md and "fits" in md and "| features.0.0 |" in md


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (0.5, 0.4)]
    assert sorted(pareto_front(pts, higher_is_better=True)) == [0, 1, 3]
    assert sorted(pareto_front([(1.0, 5.0), (2.0, 4.0), (3.0, 6.0)], higher_is_better=False)) == [0, 1]


def test_report_and_evaluate_cli(runs, tmp_path):
    dense, pruned = runs
    res = wearprune("report", str(dense), str(pruned), "--device", "stm32u575", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert "fits" in res.stdout and (tmp_path / "r" / "report.html").exists()
    assert_clean_error(wearprune("report", str(tmp_path / "nothing"), "--device", "nrf52840"), "not a run directory")
    assert_clean_error(wearprune("evaluate", str(pruned), "--device", "nope"), "unknown device")


def test_report_shows_privacy_robustness_and_audit(tmp_path):
    """A DP run's ε, and the robustness curves and membership audit left in the run's folder, reach the report."""
    from wearprune.data.synthetic import make_synthetic

    data = make_synthetic(n_subjects=6, per_subject=40, seed=2)
    run = tmp_path / "dp"
    wp.train(data, "cnn1d", run, model_options={"norm": "group"},
             config=wp.TrainConfig(epochs=2, patience=2, dp_epsilon=5.0))
    rob = wp.robustness([run], data=data, out=run / "robustness", attack_eps=(0.1,), log=lambda *_: None)
    aud = wp.audit([run], data=data, out=run / "audit", log=lambda *_: None)
    rep = build_report([run], "nrf52840")
    paths = write_report(rep, tmp_path / "rep")
    assert rep["runs"][0]["privacy"]["epsilon"] == pytest.approx(wp.load_run(run).metrics["dp"]["epsilon"])
    assert rep["robustness"][0]["runs"][0]["mean_corruption"] == pytest.approx(rob["runs"][0]["mean_corruption"])
    auc = aud["runs"][0]["loss_threshold"]["auc"]
    assert rep["audit"][0]["runs"][0]["loss_threshold"]["auc"] == pytest.approx(auc)
    md = paths["md"].read_text()
    assert "DP ε, this run's trainings" in md and "Robustness to wearable corruptions" in md
    assert "Membership inference audit" in md and f"{auc:.3f}" in md
    pc = rob["runs"][0]["per_class_recall"]
    assert "Recall (sensitivity) per class" in md
    assert f"{pc['clean'][0]:.2f} → {pc['mean_corruption'][0]:.2f}" in md
    page = paths["html"].read_text()
    curves = base64.b64encode((run / "robustness" / "robustness.png").read_bytes()).decode()
    assert curves in page  # the curves are embedded, not linked
