"""Export to what runs on the device: TFLite (litert-torch) checked in TensorFlow Lite Micro."""

from wearprune.export.tflite import to_tflite
from wearprune.export.tflm import ArenaUse, measure_arena, run_tflm, tflite_summary

__all__ = ["ArenaUse", "measure_arena", "run_tflm", "tflite_summary", "to_tflite"]
