"""The verbs of the command line, one module each: train, evaluate, prune, export, cv (fit lives in
:mod:`wearprune.autofit`). Each takes a run directory or data and writes a run directory."""

from .cv import compare_cv, crossval
from .evaluate import evaluate_run, measure
from .export import export_run
from .prune import prune_run
from .train import train

__all__ = ["compare_cv", "crossval", "evaluate_run", "export_run", "measure", "prune_run", "train"]
