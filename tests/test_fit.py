"""`wearprune fit`: the most accurate pruned int8 model within a device's limits, found by a search
that resumes after a kill (SQLite storage), runs in a process pool or on a local Ray, and ends with
the winner exported and measured in TensorFlow Lite Micro."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

import wearprune as wp
from wearprune.autofit import Budget, fit
from wearprune.autofit.sensitivity import guided_ratios
from wearprune.devices import load_device
from wearprune.errors import ConfigError

from .test_cli import assert_clean_error, wearprune

QUICK = {"trial_epochs": 1, "final_epochs": 1, "workers": 1}


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "dense"
    wp.train(wp.load_dataset("basicmotions"), "cnn1d", path, config=wp.TrainConfig(epochs=3, batch_size=16))
    return path


@pytest.fixture
def run(dense, tmp_path):
    """A private copy: the search's storage and the sensitivity cache live in the run."""
    copy = tmp_path / "dense"
    shutil.copytree(dense, copy)
    return copy


def _latency(run) -> float:
    r = wp.load_run(run)
    return wp.estimate_cost(r.model, torch.zeros(1, *r.architecture["spec"]["input_shape"]), "nrf52840").latency_ms


def test_fit_meets_every_limit_and_measures_the_winner_in_tflm(run, tmp_path):
    limit = _latency(run) / 3
    out = tmp_path / "fitted"
    result = fit(run, "nrf52840", out, max_latency_ms=limit, trials=6, **QUICK, log=lambda *_: None)
    w = result.winner
    assert w["feasible"] and w["est_latency_ms"] <= limit and w["macs"] < result.dense["macs"] / 2
    assert result.measured["int8"]["arena_bytes"] <= load_device("nrf52840").sram_kb * 1024  # measured, not estimated
    assert {"model_int8.tflite", "model_data.h", "fit.json", "report"} <= {p.name for p in out.iterdir()}
    stored = json.loads((out / "fit.json").read_text())
    assert len(stored["candidates"]) >= 6 and w["number"] in [c["number"] for c in stored["candidates"]]
    assert stored["pareto"]["est_energy_uj"] and (out / "report" / "report.html").stat().st_size > 10_000
    assert (run / "sensitivity.json").exists() and (run / "fit.db").exists()  # cached / resumable in the run
    # every candidate's limits were judged by the cost model; infeasible ones were never fine-tuned
    assert all(not c["tuned"] for c in stored["candidates"] if c["est_latency_ms"] > limit)


def test_impossible_limits_say_which_limit_binds_and_write_nothing(run, tmp_path):
    with pytest.raises(ConfigError, match=r"latency binds even at 88% of every layer pruned"):
        fit(run, "nrf52840", tmp_path / "never", max_latency_ms=0.01, trials=2, **QUICK)
    assert not (tmp_path / "never").exists()
    with pytest.raises(ConfigError, match="more than nrf52840 has"):
        fit(run, "nrf52840", tmp_path / "never", max_ram_kb=10_000, trials=2, **QUICK)


def test_unreachable_storage_is_one_clear_error(run, tmp_path):
    with pytest.raises(ConfigError, match="cannot open the search storage"):
        fit(run, "nrf52840", tmp_path / "x", storage="sqlite:////nonexistent/dir/fit.db", trials=2, **QUICK)
    assert not (tmp_path / "x").exists()


def test_cli_errors_unknown_device_and_untrained_run(run, tmp_path):
    assert_clean_error(wearprune("fit", str(run), "--device", "nrf99999", "--out", str(tmp_path / "o")),
                       "unknown device")
    (tmp_path / "empty").mkdir()
    assert_clean_error(wearprune("fit", str(tmp_path / "empty"), "--device", "nrf52840"), "not a complete run")
    assert not (tmp_path / "o").exists()


def _complete_trials(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:  # tables not created yet
        return 0


def _params(db, state: str) -> list[frozenset]:
    """Each trial's parameters in ``state``, as (name, stored value) pairs."""
    try:
        with sqlite3.connect(db) as con:
            rows = con.execute("select t.trial_id, p.param_name, p.param_value from trials t join trial_params p "
                               "on p.trial_id = t.trial_id where t.state = ?", (state,)).fetchall()
    except sqlite3.Error:  # tables not created yet
        return []
    trials: dict[int, set] = {}
    for trial_id, name, value in rows:
        trials.setdefault(trial_id, set()).add((name, value))
    return [frozenset(p) for p in trials.values()]


def test_a_killed_search_resumes_where_it_stopped(run, tmp_path):
    """kill -9 mid-trial, then the same command: the completed trials are kept, and the trial that was
    running when the process died is evaluated on resume (not left RUNNING for ever)."""
    out = tmp_path / "fitted"
    args = [sys.executable, "-m", "wearprune.cli", "fit", str(run), "--device", "nrf52840", "--out", str(out),
            "--max-latency-ms", f"{_latency(run) / 3:.3f}", "--trials", "8", "--workers", "1", "--trial-epochs", "1",
            "--final-epochs", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    db, deadline = run / "fit.db", time.time() + 300

    def mid_trial() -> bool:  # 3 done, and the next one running with all its parameters drawn
        complete, running = _params(db, "COMPLETE"), _params(db, "RUNNING")
        return len(complete) >= 3 and len(running) == 1 and len(running[0]) == len(complete[0])

    while not mid_trial() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _complete_trials(db)
    assert 3 <= before < 8 and not out.exists()  # killed mid-search: nothing half-written
    [killed] = _params(db, "RUNNING")
    with sqlite3.connect(db) as con:
        kept = con.execute("select number from trials where state = 'COMPLETE' order by number").fetchall()
    res = subprocess.run(args, capture_output=True, text=True, timeout=600, env=dict(os.environ, COLUMNS="200"))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f"{before} of 8 trials already done" in " ".join(res.stdout.split())
    with sqlite3.connect(db) as con:
        after = con.execute("select number from trials where state = 'COMPLETE' order by number").fetchall()
    assert len(after) >= 8 and set(kept) <= set(after)  # the earlier trials were kept, not redone
    assert killed in _params(db, "COMPLETE") and not _params(db, "RUNNING")  # the killed trial was evaluated
    assert (out / "fit.json").exists()


def test_trials_run_as_tasks_on_a_local_ray(run, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install 'wearprune[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = fit(run, "nrf52840", tmp_path / "fitted", max_latency_ms=_latency(run) / 2, trials=4, ray="auto",
                     trial_epochs=1, final_epochs=1, workers=2, log=lambda *_: None)
    finally:
        ray.shutdown()
    assert len(result.candidates) >= 4 and result.winner["feasible"]


@pytest.mark.skipif(not os.environ.get("WEARPRUNE_TEST_POSTGRES"), reason="WEARPRUNE_TEST_POSTGRES is not set: no "
                    "PostgreSQL server to test against (.ci/run starts one)")
def test_ray_tasks_share_a_study_in_postgresql(run, tmp_path):
    """docs/cluster.md on one machine: Ray tasks whose study lives in a PostgreSQL server, not in the run."""
    ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install 'wearprune[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = fit(run, "nrf52840", tmp_path / "fitted", max_latency_ms=_latency(run) / 2, trials=4, ray="auto",
                     storage=os.environ["WEARPRUNE_TEST_POSTGRES"], trial_epochs=1, final_epochs=1, workers=2,
                     log=lambda *_: None)
    finally:
        ray.shutdown()
    assert len(result.candidates) >= 4 and result.winner["feasible"] and not (run / "fit.db").exists()


def test_limits_default_to_the_device_memory():
    dev = load_device("nrf52840")
    limits = Budget.for_device(dev, max_latency_ms=20)
    assert (limits.max_ram_kb, limits.max_flash_kb, limits.max_latency_ms) == (dev.sram_kb, dev.flash_kb, 20)
    with pytest.raises(ConfigError, match="must be positive"):
        Budget.for_device(dev, max_energy_uj=0)


def test_sensitivity_guides_each_group_as_far_as_it_tolerates():
    sens = {"dense": 0.8, "groups": {"a": {"0.25": {"score": 0.8}, "0.5": {"score": 0.79}, "0.75": {"score": 0.5}},
                                     "b": {"0.25": {"score": 0.6}, "0.5": {"score": 0.5}, "0.75": {"score": 0.4}}}}
    first = guided_ratios(sens, levels=(0.02,))[0]
    assert first == {"a": 0.5, "b": 0.0}


def test_per_group_ratios_prune_only_the_named_groups():
    ds = wp.load_dataset("basicmotions")
    model = wp.build_model("cnn1d", ds.spec()).eval()
    x = torch.from_numpy(ds.X[:2])
    _, summary = wp.prune(model, x, ratio=0.0, ratios={"features.2.0": 0.5})
    widths = {layer["group"]: (layer["before"], layer["after"]) for layer in summary["layers"]}
    assert widths["features.2.0"] == (32, 16) and widths["features.0.0"] == (16, 16)
    with pytest.raises(ConfigError, match="no prunable group named nope"):
        wp.prune(model, x, ratios={"nope": 0.5})


def test_every_candidate_is_scaled_to_just_meet_the_limits(run):
    """fill_budget keeps the sampled proportions and cuts only as deep as the limits need."""
    from wearprune.autofit.study import MAX_RATIO, Job, _Context, fill_budget

    limit = _latency(run) / 3
    limits = Budget.for_device(load_device("nrf52840"), max_latency_ms=limit)
    job = Job(run=str(run), data_root=None, device="nrf52840", limits=limits.to_dict(), int8=True, storage="",
              study="", trials=1, trial_epochs=0, seed=0)
    ctx = _Context(job)
    first, *rest = ctx.groups
    shape = {first: 0.2, **{g: 0.4 for g in rest}}
    filled = fill_budget(ctx, shape)
    assert all(abs(filled[g] / filled[first] - shape[g] / shape[first]) < 0.01 for g in rest if filled[g] < MAX_RATIO)
    r = wp.load_run(run)
    x = torch.zeros(1, *r.architecture["spec"]["input_shape"])

    def latency(ratios):
        return wp.estimate_cost(wp.prune(r.model, x, ratio=0.0, ratios=ratios)[0], x, "nrf52840").latency_ms

    # just within: 10 % less cut breaks the limit
    assert latency(filled) <= limit < latency({g: v * 0.9 for g, v in filled.items()})
    assert fill_budget(ctx, {g: 0.0 for g in ctx.groups}) == {g: 0.0 for g in ctx.groups}  # nothing sampled, no cut
    loose = _Context(Job(**{**job.__dict__, "limits": Budget.for_device(load_device("nrf52840")).to_dict()}))
    assert set(fill_budget(loose, shape).values()) == {0.0}  # the dense model already fits: nothing to cut


def test_select_uniform_keeps_every_group_cut_alike_and_bad_select_is_refused(run, tmp_path):
    result = fit(run, "nrf52840", tmp_path / "u", max_latency_ms=_latency(run) / 3, trials=4, select="uniform",
                 **QUICK, log=lambda *_: None)
    assert len(set(result.winner["ratios"].values())) == 1 and result.winner["selected_by"] == "uniform"
    assert result.winner["est_latency_ms"] <= _latency(run) / 3
    with pytest.raises(ConfigError, match="unknown selection 'best'"):
        fit(run, "nrf52840", tmp_path / "v", select="best", **QUICK)
    assert not (tmp_path / "v").exists()
