"""Former home of the verbs; they now live in :mod:`wearprune.verbs` (one module each) and the data
preparation in :mod:`wearprune.data.prepare`. These names stay importable from here."""

from .data.prepare import PreparedData, calibration_sample, prepare_data, prepare_from_config
from .specs import EXPORT_FORMATS
from .verbs import evaluate_run, export_run, prune_run, train

__all__ = ["EXPORT_FORMATS", "PreparedData", "calibration_sample", "evaluate_run", "export_run", "prepare_data",
           "prepare_from_config", "prune_run", "train"]
