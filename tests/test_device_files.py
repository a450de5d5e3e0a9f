"""A user's own device profile file (``--device board.yaml``) works end to end: the report, ``evaluate``,
the search's workers (which get the loaded profile, not a name to look up) and ``fit``."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import wearprune as wp
from wearprune.autofit.study import Job
from wearprune.devices import load_device
from wearprune.devices.profile import PACKAGED
from wearprune.report import build_report

from .test_cli import wearprune


def _board(folder: Path) -> Path:
    """nRF52840's profile renamed, at twice the clock and SRAM: a chip no packaged profile is."""
    text = (PACKAGED / "nrf52840.yaml").read_text()
    text = (text.replace("name: nrf52840", "name: myboard").replace("clock_mhz: 64", "clock_mhz: 128")
            .replace("sram_kb: 256", "sram_kb: 512").replace("title: Nordic nRF52840", "title: My board"))
    path = folder / "board.yaml"
    path.write_text(text)
    assert load_device(path).clock_mhz == 128
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("device_files") / "dense"
    wp.train(wp.load_dataset("basicmotions"), "cnn1d", path, config=wp.TrainConfig(epochs=1, batch_size=16))
    return path


def _latency(run, device) -> float:
    r = wp.load_run(run)
    return wp.estimate_cost(r.model, torch.zeros(1, *r.architecture["spec"]["input_shape"]), device).latency_ms


def test_report_on_a_profile_file(run, tmp_path):
    board = _board(tmp_path)
    rep = build_report([run], str(board))
    assert rep["device"]["name"] == "myboard" and rep["device"]["clock_mhz"] == 128
    packaged = build_report([run], "nrf52840")["runs"][0]["cost"]["latency_ms"]
    assert rep["runs"][0]["cost"]["latency_ms"] < packaged  # costed on the file's numbers, not a namesake's
    assert build_report([run], load_device(board))["device"]["name"] == "myboard"  # a loaded profile too


def test_report_and_evaluate_cli_take_a_profile_file(run, tmp_path):
    _board(tmp_path)  # given as the README does: a relative path
    res = wearprune("report", str(run), "--device", "board.yaml", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "r" / "report.json").read_text())["device"]["name"] == "myboard"
    res = wearprune("evaluate", str(run), "--device", "board.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "report" / "report.json").read_text())["device"]["name"] == "myboard"


def test_search_workers_get_the_loaded_profile_not_its_path(run, tmp_path, monkeypatch):
    """A worker (another process, a Ray task, another node) may not see the file, nor share the working
    directory the relative path was given in: the job carries the profile itself."""
    board = _board(tmp_path)
    monkeypatch.chdir(tmp_path)
    job = Job(run=str(run), data_root=None, device="board.yaml", limits={"max_ram_kb": 512, "max_flash_kb": 1024},
              int8=True, storage="", study="", trials=1, trial_epochs=0, seed=0)
    assert job.profile.to_dict() == load_device(board).to_dict() and Path(job.run).is_absolute()
    board.unlink()  # gone, and the worker runs elsewhere
    worker = textwrap.dedent("""
        import sys
        from wearprune.autofit.study import Job, _Context
        ctx = _Context(Job.from_json(sys.argv[1]))
        print(ctx.device.name, ctx.device.clock_mhz)
    """)
    res = subprocess.run([sys.executable, "-c", worker, job.to_json()], capture_output=True, text=True,
                         cwd=Path(run).parent.parent, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-2:] == ["myboard", "128.0"]


def test_fit_to_a_profile_file(run, tmp_path):
    """The whole of `fit` on a user's file: the search in two worker processes, then the report at the end
    (which once looked the device up by name, after the whole search)."""
    board = _board(tmp_path)
    limit = _latency(run, board) / 2
    result = wp.fit(run, str(board), tmp_path / "fitted", max_latency_ms=limit, trials=2, trial_epochs=0,
                    final_epochs=0, workers=2, storage=f"sqlite:///{tmp_path / 'fit.db'}", log=lambda *_: None)
    assert result.winner["est_latency_ms"] <= limit
    report = json.loads((tmp_path / "fitted" / "report" / "report.json").read_text())
    assert report["device"]["name"] == "myboard" and report["device"]["clock_mhz"] == 128
