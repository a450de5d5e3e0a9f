"""`wearprune measure`: exported models on an emulated Cortex-M4 (TFLite Micro + CMSIS-NN in QEMU), their
outputs against TFLite Micro on the host, instruction counts against MACs. The toolchain tests need
`apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm` (CI installs it); the first run
builds TFLite Micro for the M4 into the firmware cache (several minutes, once)."""

import json

import pytest

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.firmware import APT_INSTALL, build, missing_tools
from wearprune.verbs import export_run
from wearprune.verbs.on_target import measure_on_target

from .test_cli import assert_clean_error, wearprune

needs_toolchain = pytest.mark.skipif(bool(missing_tools()), reason=f"no Arm toolchain/QEMU here ({APT_INSTALL})")


def test_missing_toolchain_is_one_line_and_exit_2(tmp_path):
    res = wearprune("measure", str(tmp_path), "--target", "cortex-m4", env={"PATH": str(tmp_path)})
    assert_clean_error(res, "arm-none-eabi-gcc not found", APT_INSTALL)


def test_missing_toolchain_from_python(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="apt-get install"):
        measure_on_target(tmp_path, "cortex-m4")


def test_unknown_target_and_bad_windows_are_refused(tmp_path):
    assert_clean_error(wearprune("measure", str(tmp_path), "--target", "cortex-m7"), "unknown target 'cortex-m7'")
    assert_clean_error(wearprune("export", str(tmp_path), "--measure", "m4"), "unknown target 'm4'")
    if not missing_tools():
        assert_clean_error(wearprune("measure", str(tmp_path), "--windows", "0"), "--windows must be at least 1")


@pytest.fixture(scope="module")
def m4():
    if missing_tools():
        pytest.skip(f"no Arm toolchain/QEMU here ({APT_INSTALL})")
    return build("cortex-m4")


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    path = tmp_path_factory.mktemp("target") / "dense"
    wp.train(wp.load_dataset("basicmotions"), "cnn1d", path, config=wp.TrainConfig(epochs=2))
    export_run(path, ("tflite",))
    return path


@needs_toolchain
def test_int8_on_the_m4_equals_host_tflm_and_is_stored(m4, dense, tmp_path):
    result = measure_on_target(dense, "cortex-m4", windows=6)["cortex-m4"]
    int8 = result["int8"]
    assert int8["outputs_equal_host"] and int8["max_abs_diff_host"] == 0.0  # CMSIS-NN == reference kernels
    assert int8["calls"] == 6 and int8["form"] == "window" and int8["kernels"] == "CMSIS-NN"
    assert int8["instructions_per_inference"] > int8["macs"] > 0
    ops = int8["per_op"]
    assert {"CONV_2D", "FULLY_CONNECTED"} <= {o["op"] for o in ops}
    # the per-op intervals cover the invoke, less the interpreter's own work between ops, plus the profiler's
    assert 0.9 < sum(o["instructions"] for o in ops) / int8["instructions_per_inference"] < 1.05
    assert result["fp32"]["max_abs_diff_host"] < 1e-5  # reference float kernels, another compiler
    assert result["fp32"]["instructions_per_inference"] > int8["instructions_per_inference"]
    stored = json.loads((dense / "metrics.json").read_text())["on_target"]["cortex-m4"]
    assert stored["int8"]["instructions_per_inference"] == int8["instructions_per_inference"]
    assert stored["int8"]["arena_used_bytes"] == int8["arena_used_bytes"] > 0
    report = wp.build_report([dense], "nrf52840")
    assert report["runs"][0]["on_target"]["cortex-m4"]["int8"]["instructions_per_inference"] > 0
    paths = wp.write_report(report, tmp_path / "rep")
    assert "instructions per inference on cortex-m4, int8 (measured: instruction count, QEMU)" \
        in paths["md"].read_text()


@needs_toolchain
def test_the_instruction_model_predicts_a_model_it_was_not_fitted_on(m4, dense):
    """The shipped cortex-m4 table was fitted on HMP-shaped zoo models and MLPerf Tiny; BasicMotions' cnn1d
    (6 channels x 100 samples, 4 classes) is new to it."""
    from dataclasses import replace

    import torch

    run = wp.load_run(dense)
    measured = measure_on_target(dense, "cortex-m4", dtypes=("int8",), windows=1)["cortex-m4"]["int8"]
    dev = replace(wp.load_device("nrf52840"), cycles_per_instruction=1.0)  # latency x clock = instructions
    x = torch.zeros(1, *run.architecture["spec"]["input_shape"])
    predicted = wp.estimate_cost(run.model.eval(), x, dev).latency_ms * dev.clock_mhz * 1e3
    assert abs(predicted / measured["instructions_per_inference"] - 1) < 0.25


@needs_toolchain
def test_instruction_counts_grow_with_macs_on_a_pruned_dense_pair(m4, dense, tmp_path):
    pruned = tmp_path / "pruned"
    wp.prune_run(dense, pruned, method="channel", ratio=0.5, finetune_epochs=1)
    export_run(pruned, ("tflite",))
    a = measure_on_target(dense, "cortex-m4", dtypes=("int8",), windows=2)["cortex-m4"]["int8"]
    b = measure_on_target(pruned, "cortex-m4", dtypes=("int8",), windows=2)["cortex-m4"]["int8"]
    assert b["macs"] < a["macs"] and b["instructions_per_inference"] < a["instructions_per_inference"]
    assert b["outputs_equal_host"]
    export_run(pruned, ("tflite",))  # new files: the counts of the old ones are dropped, not kept stale
    assert "on_target" not in json.loads((pruned / "metrics.json").read_text())


@needs_toolchain
def test_streaming_model_counts_per_frame_and_per_window(m4, tmp_path):
    path = tmp_path / "gru"
    wp.train(wp.load_dataset("basicmotions"), "cnn_gru", path, config=wp.TrainConfig(epochs=1))
    export_run(path, ("tflite",))
    res = wearprune("measure", str(path), "--target", "cortex-m4", "--dtype", "int8", "--windows", "2")
    assert res.returncode == 0, res.stderr
    assert "bit-exact" in res.stdout and "FULLY_CONNECTED" in res.stdout
    m = json.loads((path / "metrics.json").read_text())["on_target"]["cortex-m4"]["int8"]
    assert m["form"] == "streaming" and m["outputs_equal_host"]
    assert m["step"]["calls"] == m["frames_per_window"] > 1  # every frame of one window, state fed back
    assert m["instructions_per_window"] == m["frontend"]["instructions"] \
        + m["frames_per_window"] * m["instructions_per_frame"]
