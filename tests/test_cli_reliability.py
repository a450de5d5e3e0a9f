"""Bad input and faults at the command line, as a new user meets them: one clear line, a non-zero
exit, nothing half-written. Each case here once gave a traceback, a silent exit 0 or a torn export."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.verbs.outdir import check_out

from .test_cli import assert_clean_error, wearprune


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    path = tmp_path_factory.mktemp("rel") / "dense"
    wp.train(wp.load_dataset("basicmotions"), "cnn1d", path, config=wp.TrainConfig(epochs=2, batch_size=16))
    return path


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: root ignores permission bits, /sys refuses it."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_a_path_with_brackets_is_printed_as_is(tmp_path):
    # rich markup once ate "[/x]" and crashed the error printer itself
    odd = tmp_path / "a[/x]" / "rec[bold].csv"
    res = wearprune("train", "--data", str(odd), "--out", str(tmp_path / "r"))
    assert_clean_error(res, "rec[bold].csv")


def test_a_4d_npz_error_keeps_its_bracketed_shape(tmp_path):
    f = tmp_path / "four.npz"
    np.savez(f, X=np.zeros((4, 2, 3, 5), np.float32), y=np.zeros(4))
    assert_clean_error(wearprune("train", "--data", str(f), "--out", str(tmp_path / "r")),
                       "[windows, channels, samples]")


def test_ctrl_c_exits_130_with_a_message(monkeypatch, capsys):
    import wearprune.cli as cli
    import wearprune.verbs as verbs

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(verbs, "train", interrupted)
    monkeypatch.setattr(sys, "argv", ["wearprune", "train", "--data", "basicmotions", "--out", "/nonexistent/x"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 130
    assert "interrupted" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    import wearprune.cli as cli
    import wearprune.verbs as verbs

    def broken(*a, **k):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(verbs, "train", broken)
    monkeypatch.setattr(sys, "argv", ["wearprune", "train", "--data", "basicmotions", "--out", "/nonexistent/x"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    err = capsys.readouterr().err
    assert e.value.code == 1 and "internal error RuntimeError: something inside broke" in err
    assert "Traceback" not in err and "second line" not in err


def test_out_in_a_folder_that_refuses_writes_fails_before_any_work(tmp_path, dense):
    ro = _read_only_folder(tmp_path)
    with pytest.raises(ConfigError, match="cannot write into"):
        check_out(ro / "run", overwrite=False)
    res = wearprune("train", "--data", "basicmotions", "--out", str(ro / "run"))
    assert_clean_error(res, "cannot write into")
    assert "epoch" not in res.stdout  # refused before training
    assert_clean_error(wearprune("prune", str(dense), "--out", str(ro / "p")), "cannot write into")
    assert_clean_error(wearprune("fit", str(dense), "--device", "nrf52840", "--out", str(ro / "f")),
                       "cannot write into")


def test_out_under_a_file_is_refused(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ConfigError, match="cannot write into"):
        check_out(f / "run", overwrite=False)


def test_datasets_table_never_breaks_a_name_mid_word(tmp_path):
    res = wearprune("datasets", "--data-root", str(tmp_path), "--no-count", env={"COLUMNS": "80"})
    assert res.returncode == 0, res.stderr
    for name in ("basicmotions", "sleep-walch", "wisdm-watch"):
        assert name in res.stdout, res.stdout


def test_specs_validate_once_with_one_line_each():
    with pytest.raises(ConfigError, match="ratio must be in"):
        wp.PruneSpec(ratio=1.5)
    with pytest.raises(ConfigError, match="finite"):
        wp.PruneSpec(lr=float("nan"))
    with pytest.raises(ConfigError, match="unknown export format"):
        wp.ExportSpec(formats=("tflite", "pdf"))
    with pytest.raises(ConfigError, match="trials must be at least 1"):
        wp.FitSpec(device="nrf52840", trials=0)
    with pytest.raises(ConfigError, match="--max-latency-ms must be finite"):
        wp.FitSpec(device="nrf52840", max_latency_ms=float("inf"))
    with pytest.raises(ConfigError, match="unknown fields"):
        wp.FitSpec.from_dict({"device": "nrf52840", "max_latencyms": 3})
    spec = wp.ExportSpec(formats="tflite, c")
    assert spec.formats == ("tflite", "c")
    assert wp.ExportSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_specs_take_numpy_numbers_and_store_plain_ones():
    spec = wp.PruneSpec(ratio=np.float32(0.25), finetune_epochs=np.int64(2), cycles=np.int32(1))
    assert (spec.ratio, spec.finetune_epochs) == (0.25, 2) and type(spec.finetune_epochs) is int
    assert json.loads(json.dumps(spec.to_dict()))["finetune_epochs"] == 2  # stored as JSON
    fit = wp.FitSpec(device="nrf52840", max_latency_ms=np.float64(5.0), trials=np.int64(3))
    assert type(fit.trials) is int and fit.max_latency_ms == 5.0
    with pytest.raises(ConfigError, match="finetune epochs must be an integer"):
        wp.PruneSpec(finetune_epochs=np.float64(2.5))
    with pytest.raises(ConfigError, match="must be a number"):
        wp.PruneSpec(ratio=np.bool_(True))


def test_export_is_all_or_nothing_when_one_file_cannot_be_written(dense, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(dense, run)
    wp.export_run(run, ("tflite", "c"), int8=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    import wearprune.verbs.export as export_verb

    real = export_verb.atomic_write_bytes

    def fail_on_c(path, data):
        if Path(path).name == "model_data.c":
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(export_verb, "atomic_write_bytes", fail_on_c)
    with pytest.raises(OSError):
        wp.export_run(run, ("tflite", "onnx", "c"), int8=False)
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before  # not one file replaced: .tflite, .h and metrics.json all as they were
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".run.")]  # no staging left behind


def test_prune_run_accepts_a_spec_or_its_fields(dense):
    spec = wp.PruneSpec(ratio=0.25, finetune_epochs=0)
    a = wp.prune_run(dense, None, spec)
    b = wp.prune_run(dense, None, ratio=0.25, finetune_epochs=0)
    assert a.metrics["cost"]["macs"] == b.metrics["cost"]["macs"] < a.metrics["dense"]["cost"]["macs"]
    assert a.config["prune"]["spec"]["ratio"] == 0.25
    with pytest.raises(ConfigError, match="not both"):
        wp.prune_run(dense, None, spec, ratio=0.5)


def _recording_without_subjects(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["ax,ay,az,label"]
    for label, freq in (("walk", 2.0), ("rest", 0.3)):
        t = np.arange(50 * 40) / 50
        sig = np.stack([np.sin(2 * np.pi * freq * t + k) for k in range(3)], 1) + 0.1 * rng.standard_normal((len(t), 3))
        rows += [f"{a:.4f},{b:.4f},{c:.4f},{label}" for a, b, c in sig]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_data_without_subject_ids_trains_with_an_explicit_split(tmp_path):
    rec = _recording_without_subjects(tmp_path / "rec.csv")
    assert_clean_error(wearprune("train", "--data", str(rec), "--rate", "50", "--out", str(tmp_path / "a")),
                       "--split")  # the subject-wise default says what to do instead
    res = wearprune("train", "--data", str(rec), "--rate", "50", "--split", "random", "--epochs", "2",
                    "--out", str(tmp_path / "b"))
    assert res.returncode == 0, res.stderr
    assert "warning:" in res.stderr and "optimistic" in " ".join(res.stderr.split())
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["split"]["mode"] == "random"
    assert wearprune("evaluate", str(tmp_path / "b")).returncode == 0  # the same split is rebuilt
    assert_clean_error(wearprune("train", "--data", str(rec), "--rate", "50", "--split", "sideways",
                                 "--out", str(tmp_path / "c")), "unknown split 'sideways'")
