"""Export of a run: TFLite checked in TensorFlow Lite Micro on the test set, ONNX, and a C array that
compiles; failures leave no files behind."""

import json
import shutil
import subprocess

import pytest

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.verbs import export_run

from .test_cli import assert_clean_error, wearprune


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "cnn"
    wp.train(wp.load_dataset("basicmotions"), "cnn1d", path, config=wp.TrainConfig(epochs=3))
    return path


def test_export_all_formats_checked_on_the_test_set(run):
    result = export_run(run)
    assert set(result["files"]) == {"model_fp32.tflite", "model_int8.tflite", "model.onnx", "model_data.h",
                                    "model_data.c"}
    fp32, int8 = result["checks"]["fp32"], result["checks"]["int8"]
    assert fp32["max_abs_diff"] < 1e-3 and fp32["macro_f1"] == pytest.approx(result["pytorch"][1])
    assert int8["arena_bytes"] < fp32["arena_bytes"] and int8["tflite_bytes"] < fp32["tflite_bytes"] / 2
    assert abs(int8["macro_f1"] - fp32["macro_f1"]) < 0.2
    stored = json.loads((run / "metrics.json").read_text())["tflm"]
    assert stored["int8"]["arena_bytes"] == int8["arena_bytes"]
    header = (run / "model_data.h").read_text()
    assert f"#define MODEL_ARENA_SIZE {int8['arena_bytes'] + 1024}" in header
    assert "MODEL_INPUT_SCALE" in header and "model_input_mean" in header


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler on this machine")
def test_c_array_compiles(run, tmp_path):
    if not (run / "model_data.c").exists():
        export_run(run, ("c",))
    res = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-c", str(run / "model_data.c"), "-o",
                          str(tmp_path / "m.o")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_recurrent_model_exports_as_a_streaming_step_that_runs_in_tflm(tmp_path):
    path = tmp_path / "gru"
    wp.train(wp.load_dataset("basicmotions"), "cnn_gru", path, config=wp.TrainConfig(epochs=1))
    result = export_run(path, ("tflite", "c"))
    assert {"model_frontend_fp32.tflite", "model_step_fp32.tflite", "model_step_data.h"} <= set(result["files"])
    fp32 = result["checks"]["fp32"]
    assert fp32["streaming"] and fp32["max_abs_diff"] < 1e-3  # frame-by-frame in TFLM == the full window
    assert fp32["macro_f1"] == pytest.approx(result["pytorch"][1])
    assert fp32["step_arena_bytes"] < 32 * 1024 and fp32["step_ops"] < 60  # not ~1,000 unrolled ops
    int8 = result["checks"]["int8"]  # calibrated on the (frame, state) pairs streaming meets
    assert int8["streaming"] and int8["quantizer"] == "pt2e-ptq" and int8["max_abs_diff"] < 0.5
    assert int8["tflite_bytes"] < fp32["tflite_bytes"]
    assert {"model_frontend_int8.tflite", "model_step_int8.tflite"} <= set(result["files"])
    # the step's header tells firmware each state's size and types: the int8 GRU step reads its state
    # as float and returns it as int8, so output k is dequantised before it goes back in as input k
    header = (path / "model_step_data.h").read_text()
    assert "#define MODEL_STEP_STATE_2_ELEMENTS 32" in header and "MODEL_STEP_STATE_3" not in header
    assert "/* state 1: input 1 float32, output 1 int8 */" in header and "MODEL_STEP_STATE_1_OUT_SCALE" in header
    if shutil.which("gcc"):
        res = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-c", str(path / "model_step_data.c"), "-o",
                              str(tmp_path / "step.o")], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_causal_tcn_also_exports_a_per_sample_streaming_step(tmp_path):
    path = tmp_path / "tcn"
    wp.train(wp.load_dataset("basicmotions"), "tcn", path, config=wp.TrainConfig(epochs=1))
    result = export_run(path, ("tflite",))
    for dtype in ("fp32", "int8"):
        step = result["checks"][dtype]["streaming_step"]
        assert step["step_arena_bytes"] < 32 * 1024 and f"model_step_{dtype}.tflite" in result["files"]
    assert result["checks"]["fp32"]["streaming_step"]["max_abs_diff"] < 1e-3  # sample by sample == the window


def test_int8_that_diverges_is_refused_naming_the_layer(run, tmp_path):
    """Channel 0 of the first block pushed to ~1e4x the others (and read 1e4x smaller by the next
    conv): fp32 copes, but the one per-tensor int8 scale crushes the other channels."""
    import torch
    from torch import nn

    from wearprune.runs import save_run

    r = wp.load_run(run)
    with torch.no_grad():
        bn = [m for m in r.model.features[0] if isinstance(m, nn.BatchNorm1d)][0]
        bn.weight[0], bn.bias[0] = bn.weight[0].abs() * 1e4 + 1e3, bn.bias[0].abs() * 1e4 + 1e3
        r.model.features[2][0].weight[:, 0] /= 1e4
    bad = save_run(tmp_path / "outlier", model=r.model, config=r.config, architecture=r.architecture, metrics={})
    with pytest.raises(ConfigError, match=r"int8 model's macro_f1 .* precision is lost at layer 'features\.0"):
        export_run(bad, int8_tolerance=0.0)
    assert sorted(p.name for p in bad.iterdir()) == ["architecture.json", "config.json", "metrics.json",
                                                      "model.safetensors"]


def test_streaming_step_reproduces_the_window_in_pytorch():
    import torch

    from wearprune.export.streaming import run_streaming, streaming_parts

    spec = {"layout": "window", "task": "classification", "input_shape": [3, 40], "n_outputs": 5}
    for name in ("cnn_gru", "cnn_lstm"):
        model = wp.build_model(name, spec).eval()
        x = torch.randn(4, 3, 40)
        frontend, step, shapes = streaming_parts(model)
        assert torch.allclose(run_streaming(frontend, step, shapes, x), model(x), atol=1e-5)


def test_export_cli_errors(run):
    assert_clean_error(wearprune("export", str(run), "--format", "pdf"), "unknown export format pdf")


def test_a_diverging_conversion_is_refused_and_leaves_no_files(run, tmp_path, monkeypatch):
    import numpy as np

    import wearprune.export.check as export

    fresh = tmp_path / "copy"
    shutil.copytree(run, fresh)
    for f in fresh.glob("model_*"):
        f.unlink()
    before = sorted(p.name for p in fresh.iterdir())
    real = export.run_tflm
    monkeypatch.setattr(export, "run_tflm", lambda tfl, x: real(tfl, x) + np.float32(0.5))  # a broken converter
    with pytest.raises(ConfigError, match="differs from PyTorch by 0.5"):
        export_run(fresh)
    assert sorted(p.name for p in fresh.iterdir()) == before


def test_report_shows_fp32_and_int8_measured_in_tflm_side_by_side(run):
    from wearprune.report import build_report
    from wearprune.report.render import to_markdown

    if "tflm" not in wp.load_run(run).metrics:
        export_run(run, ("tflite",))
    md = to_markdown(build_report([run], "nrf52840"))
    assert "TFLite Micro arena, fp32 (measured)" in md and "TFLite Micro arena, int8 (measured)" in md
    assert "peak RAM (arena) (estimated)" in md
