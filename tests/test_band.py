"""The band: spec checks, the ledger by hand, the joint choice, and plan -> replay -> C bundle end to end
on the embedded BasicMotions data (real recordings shipped with sktime)."""

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.test_cli import assert_clean_error, wearprune
from wearprune.band import load_band_spec, plan, replay
from wearprune.band.ledger import Variant, energy_per_day, memory, policy_days
from wearprune.band.plan import choose
from wearprune.devices import load_device
from wearprune.errors import ConfigError

TINY_FIT = {"trials": 2, "trial_epochs": 1, "final_epochs": 1, "baselines": False, "rank_folds": 0,
            "final_lrs": [0.001]}


def spec_dict(**over):
    d = {"device": "nrf52840", "battery": {"mah": 100, "volts": 3.7, "source": "assumption"},
         "night_hours": 8,
         "baseline": [{"name": "imu", "ua": 10, "source": "assumption"},
                      {"name": "ppg", "uw": 100, "hours": 12, "source": "assumption"}],
         "tasks": [{"name": "activity", "data": "basicmotions", "model": "cnn1d", "every_s": 10, "hours": "day",
                    "floor": 0.3, "epochs": 4, "fit": dict(TINY_FIT), "ladder": [2]},
                   {"name": "motion", "data": "basicmotions", "model": "dscnn", "every_s": 5, "hours": "all",
                    "floor": 0.2, "epochs": 4, "fit": dict(TINY_FIT), "ladder": [2]}]}
    d.update(over)
    return d


def write_spec(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d))
    return path


# -- the spec ---------------------------------------------------------------------------------------
def test_example_specs_parse():
    root = Path(__file__).resolve().parents[1] / "examples"
    full = load_band_spec(root / "band.yaml")
    assert [t.name for t in full.tasks] == ["heart_rate", "activity", "sleep"]
    assert full.inferences_per_day(full.task("heart_rate")) == 16 * 3600 / 2
    assert full.inferences_per_day(full.task("sleep")) == 8 * 3600 / 30
    assert all(b.source for b in full.baseline)
    assert load_band_spec(root / "band_basicmotions.yaml").tasks[0].data == "basicmotions"


@pytest.mark.parametrize("change, field", [
    (lambda d: d["tasks"][0].update(colour="red"), "tasks[0].colour"),
    (lambda d: d["tasks"][1].update(every_s=-2), "tasks[1].every_s"),
    (lambda d: d["tasks"][0].update(hours="weekends"), "tasks[0].hours"),
    (lambda d: d["tasks"][0].pop("floor"), "tasks[0].floor"),
    (lambda d: d["baseline"][0].pop("source"), "baseline[0].source"),
    (lambda d: d["battery"].update(mah=0), "battery.mah"),
    (lambda d: d["tasks"][0].update(fit={"trials": 0}), "tasks[0].fit"),
    (lambda d: d.update(levels=[{"a": 10}, {"b": 50}, {"c": 0}]), "levels"),
])
def test_bad_spec_names_the_field(tmp_path, change, field):
    d = spec_dict()
    change(d)
    with pytest.raises(ConfigError, match=re.escape(field)):
        load_band_spec(write_spec(tmp_path / "band.yaml", d))


def test_bad_spec_line_is_reported(tmp_path):
    d = spec_dict()
    d["tasks"][1]["every_s"] = -1
    with pytest.raises(ConfigError, match=r"line \d+: tasks\[1\]\.every_s must be a positive number"):
        load_band_spec(write_spec(tmp_path / "band.yaml", d))


def test_cli_bad_spec_is_one_line_exit_2(tmp_path):
    d = spec_dict()
    d["tasks"][0]["colour"] = "red"
    res = wearprune("band", "plan", str(write_spec(tmp_path / "band.yaml", d)), "--out", str(tmp_path / "band"))
    assert_clean_error(res, "tasks[0].colour", "is not a known field")
    assert len(res.stderr.strip().splitlines()) == 1
    d = spec_dict()
    d["tasks"][1]["every_s"] = -5
    res = wearprune("band", "plan", str(write_spec(tmp_path / "band.yaml", d)), "--out", str(tmp_path / "band"))
    assert_clean_error(res, "tasks[1].every_s", "positive")
    assert not (tmp_path / "band" / "band.json").exists()
    (tmp_path / "notes.txt").write_text("mine")  # an existing folder that is not a band folder is refused
    res = wearprune("band", "plan", str(write_spec(tmp_path / "ok.yaml", spec_dict())), "--out", str(tmp_path))
    assert_clean_error(res, "is not a band folder")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- the ledger, by hand ------------------------------------------------------------------------------
def variant(task, name, *, model=10_000, arena=8_000, window=600, state=0, ms=2.0, uj=20.0, val=0.8):
    return Variant(task=task, name=name, run="", macs=1, params=1, model_bytes=model, arena_bytes=arena,
                   window_bytes=window, state_bytes=state, latency_ms=ms, energy_uj=uj, val=val, test=val,
                   test_int8=val)


def test_arena_is_the_largest_and_buffers_are_counted(tmp_path):
    dev = load_device("nrf52840")
    a = variant("activity", "fit", arena=8_000, window=600, model=10_000)
    b = variant("motion", "fit", arena=5_000, window=300, state=256, model=7_000)
    m = memory(dev, {"activity": [a], "motion": [b]})
    assert m["arena_bytes"] == 8_000 and m["arena_of"] == "activity"  # the largest, not the sum
    assert m["buffers_per_task"] == {"activity": 600, "motion": 556}
    assert m["ram_bytes"] == 8_000 + 600 + 300 + 256
    assert m["flash_bytes"] == 40 * 1024 + 10_000 + 7_000  # one runtime + every model
    # a policy keeps two variants of a task in flash; its buffers are sized for the larger one
    small = variant("activity", "fit/2", arena=9_000, window=900, model=4_000)
    m2 = memory(dev, {"activity": [a, small], "motion": [b]})
    assert m2["flash_bytes"] == 40 * 1024 + 10_000 + 4_000 + 7_000
    assert m2["arena_bytes"] == 9_000 and m2["buffers_per_task"]["activity"] == 900


def test_battery_days_follow_from_the_energy_ledger(tmp_path):
    spec = load_band_spec(write_spec(tmp_path / "band.yaml", spec_dict()))
    dev = load_device("nrf52840")
    choice = {"activity": variant("activity", "fit", ms=2.0, uj=20.0),
              "motion": variant("motion", "fit", ms=1.0, uj=10.0)}
    e = energy_per_day(spec, dev, choice)
    n_act, n_mot = 16 * 3600 / 10, 24 * 3600 / 5  # day = 24 - 8 night hours
    assert e["per_task_j"]["activity"] == pytest.approx(n_act * 20e-6)
    assert e["per_task_j"]["motion"] == pytest.approx(n_mot * 10e-6)
    busy = n_act * 0.002 + n_mot * 0.001
    sleep = dev.sleep_uw * 1e-6 * (86_400 - busy)
    imu = 10 * 3.7 * 1e-6 * 86_400  # 10 uA at the battery's 3.7 V, all day
    ppg = 100e-6 * 12 * 3600
    total = n_act * 20e-6 + n_mot * 10e-6 + sleep + imu + ppg
    assert e["total_j"] == pytest.approx(total)
    assert e["days"] == pytest.approx(100 * 3.6 * 3.7 / total)  # mAh x 3.6 = C; x V = J
    # the policy: 50 % of the battery at the first level's rate, 30 % at the second's, 20 % at the third's
    assert policy_days(spec, [10.0, 5.0, 2.0]) == pytest.approx(1332 * (0.5 / 10 + 0.3 / 5 + 0.2 / 2))


def _tasks_doc(variants: dict[str, list[Variant]], metric="macro_f1"):
    return {n: {"metric": metric, "higher_is_better": True, "variants": [v.to_dict() for v in vs],
                "test_subjects": ["s"]} for n, vs in variants.items()}


def test_choice_meets_floors_and_prefers_battery(tmp_path):
    spec = load_band_spec(write_spec(tmp_path / "band.yaml", spec_dict()))
    dev = load_device("nrf52840")
    vs = {"activity": [variant("activity", "dense", uj=100, val=0.9), variant("activity", "fit", uj=30, val=0.6),
                       variant("activity", "fit/2", uj=10, val=0.25)],
          "motion": [variant("motion", "dense", uj=80, val=0.9), variant("motion", "fit", uj=20, val=0.5)]}
    doc = choose(spec, dev, _tasks_doc(vs))
    # fit/2 of activity is cheapest but misses its floor (0.25 < 0.3): the plan takes fit
    assert doc["plan"]["choice"] == {"activity": "fit", "motion": "fit"}
    assert any("floor of activity" in b for b in doc["binds"])
    levels = [r["choice"] for r in doc["policy"]["levels"]]
    assert levels[0] == {"activity": "dense", "motion": "dense"}  # most accurate
    assert levels[2]["activity"] == "fit/2"  # cheapest, floors relaxed
    assert doc["fixed"]["all dense"]["energy"]["days"] < doc["plan"]["energy"]["days"]
    accurate = choose(replace(spec, objective="accuracy", min_days=1), dev, _tasks_doc(vs))
    assert accurate["plan"]["choice"] == {"activity": "dense", "motion": "dense"}


def test_floor_no_variant_meets_names_the_task(tmp_path):
    spec = load_band_spec(write_spec(tmp_path / "band.yaml", spec_dict()))
    vs = {"activity": [variant("activity", "dense", val=0.9)], "motion": [variant("motion", "dense", val=0.1)]}
    with pytest.raises(ConfigError, match=r"tasks\[1\]\.floor: no variant of task motion"):
        choose(spec, load_device("nrf52840"), _tasks_doc(vs))


def test_memory_and_min_days_that_cannot_be_met_say_what_binds(tmp_path):
    spec = load_band_spec(write_spec(tmp_path / "band.yaml", spec_dict()))
    dev = load_device("nrf52840")
    big = {"activity": [variant("activity", "dense", model=900_000)],
           "motion": [variant("motion", "dense", model=200_000)]}
    with pytest.raises(ConfigError, match=r"flash: even the smallest variants need .* \(largest: task activity"):
        choose(spec, dev, _tasks_doc(big))
    ok = {"activity": [variant("activity", "dense")], "motion": [variant("motion", "dense")]}
    with pytest.raises(ConfigError, match=r"min_days 10000: the longest-lasting plan .* largest energy item"):
        choose(replace(spec, min_days=10_000), dev, _tasks_doc(ok))


# -- end to end on BasicMotions -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def band(tmp_path_factory):
    root = tmp_path_factory.mktemp("band")
    spec = write_spec(root / "band.yaml", spec_dict())
    doc = plan(spec, root / "band", log=lambda m: None)
    return root, doc


def test_plan_writes_every_variant_checked_in_tflm(band):
    root, doc = band
    out = root / "band"
    saved = json.loads((out / "band.json").read_text())
    assert saved["plan"] == doc["plan"]
    for task in doc["tasks"].values():
        assert [v["name"] for v in task["variants"]] == ["dense", "fit", "fit/2"]
        macs = [v["macs"] for v in task["variants"]]
        assert macs[2] <= macs[1] / 2 * 1.05 and macs[1] < macs[0]  # the ladder rung halves the fitted MACs
        for v in task["variants"]:
            metrics = json.loads((out / v["run"] / "metrics.json").read_text())
            assert metrics["tflm"]["int8"]["arena_bytes"] >= v["arena_bytes"] > 0  # measured in TFLite Micro
            assert (out / v["run"] / "model_int8.tflite").stat().st_size == v["model_bytes"]
    plan_ = doc["plan"]
    assert plan_["memory"]["arena_bytes"] == max(
        next(v["arena_bytes"] for v in doc["tasks"][n]["variants"] if v["name"] == c)
        for n, c in plan_["choice"].items())
    assert doc["fixed"]["all dense"]["energy"]["days"] <= plan_["energy"]["days"]
    html = (out / "report.html").read_text()
    assert "Battery days" in html and "data:image/png;base64," in html
    assert "What binds" in (out / "report.md").read_text()


def test_plan_resumes_and_floor_too_high_is_exit_2(band, tmp_path):
    root, doc = band
    copy = tmp_path / "band"
    shutil.copytree(root / "band", copy)
    d = spec_dict()
    d["tasks"][0]["floor"] = 1.01  # the task's runs are reused (its floor does not change them)
    res = wearprune("band", "plan", str(write_spec(tmp_path / "band.yaml", d)), "--out", str(copy))
    assert_clean_error(res, "tasks[0].floor", "no variant of task activity")
    d["tasks"][0]["epochs"] = 5  # this would change the runs: refused without --overwrite
    res = wearprune("band", "plan", str(write_spec(tmp_path / "band.yaml", d)), "--out", str(copy))
    assert_clean_error(res, "planned for another spec", "--overwrite")


def test_replay_in_tflm_writes_timeline_metrics_and_plot(band, tmp_path):
    root, doc = band
    res = wearprune("band", "replay", str(root / "band"), "--subject", "uea-test", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    result = json.loads((tmp_path / "r" / "replay.json").read_text())
    assert set(result["tasks"]) == {"activity", "motion"}
    for name, t in result["tasks"].items():
        assert t["subject"] == "uea-test" and t["variant"] == doc["plan"]["choice"][name]
        assert 0 <= t["macro_f1"] <= 1 and t["windows"] == 40
    rows = (tmp_path / "r" / "timeline.csv").read_text().splitlines()
    assert rows[0] == "time_s,task,variant,output,truth" and len(rows) == 1 + 80
    assert result["faster_than_real_time"] >= 50
    assert (tmp_path / "r" / "replay.png").read_bytes()[:4] == b"\x89PNG"
    bad = wearprune("band", "replay", str(root / "band"), "--subject", "uea-train")
    assert_clean_error(bad, "not a held-out test subject")


def test_replay_of_dense_fp32_reproduces_pytorch(band, tmp_path):
    from wearprune.data.prepare import prepare_from_config
    from wearprune.evaluate import predict
    from wearprune.runs import load_run

    root, doc = band
    replay(root / "band", variant="dense", dtype="fp32", out=tmp_path, log=lambda m: None)
    with np.load(tmp_path / "outputs.npz") as z:
        for name, task in doc["tasks"].items():
            run = load_run(root / "band" / task["variants"][0]["run"])
            prepared = prepare_from_config(run.config)
            torch_out = predict(run.model, prepared.test.X)  # the test side is exactly the held-out subject here
            assert z[name].shape == torch_out.shape
            assert np.abs(z[name] - torch_out).max() < 1e-3


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed (apt-get install gcc)")
def test_c_bundle_compiles_and_runs_the_schedule(band, tmp_path):
    root, doc = band
    res = wearprune("band", "export", str(root / "band"), "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    header = (tmp_path / "band.h").read_text()
    arena = max(v["arena_bytes"] for t in doc["tasks"].values() for v in t["variants"]
                if v["name"] in {r["choice"][v["task"]] for r in doc["policy"]["levels"]})
    assert f"#define BAND_ARENA_SIZE {arena + 1024}" in header
    build = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", str(tmp_path / "band_main.c"), "-o",
                            str(tmp_path / "band_sim")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(tmp_path / "band_sim")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    counts = dict(line.split() for line in run.stdout.splitlines() if not line.startswith("arena"))
    for name, task in doc["tasks"].items():
        assert int(counts[name]) == task["inferences_per_day"]  # the C schedule runs what the ledger counts


def test_replay_runs_a_streaming_model_frame_by_frame(tmp_path):
    """A GRU task's exported front end + step, in TFLite Micro frame by frame, gives PyTorch's outputs."""
    import wearprune as wp
    from wearprune.data.prepare import prepare_from_config
    from wearprune.evaluate import predict
    from wearprune.export.tflm import run_exported

    run = wp.train(wp.load_dataset("basicmotions"), "cnn_gru", tmp_path / "gru", config=wp.TrainConfig(epochs=1))
    wp.export_run(run.path, ("tflite",))
    assert (run.path / "model_step_fp32.tflite").exists() and not (run.path / "model_fp32.tflite").exists()
    X = prepare_from_config(run.config).test.X[:8]
    assert np.abs(run_exported(run.path, X, "fp32") - predict(run.model, X)).max() < 1e-3
