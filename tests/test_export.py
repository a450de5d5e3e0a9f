"""Export of a run: TFLite checked in TensorFlow Lite Micro on the test set, ONNX, and a C array that
compiles; failures leave no files behind."""

import json
import shutil
import subprocess

import pytest

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.pipeline import export_run

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


def test_recurrent_model_gives_a_clear_error_and_no_files(tmp_path):
    path = tmp_path / "gru"
    wp.train(wp.load_dataset("basicmotions"), "cnn_gru", path, config=wp.TrainConfig(epochs=1))
    before = set(p.name for p in path.iterdir())
    with pytest.raises(ConfigError, match="TensorFlow Lite Micro cannot load this model"):
        export_run(path, ("tflite",), int8=False)
    assert set(p.name for p in path.iterdir()) == before


def test_export_cli_errors(run):
    assert_clean_error(wearprune("export", str(run), "--format", "pdf"), "unknown export format pdf")
