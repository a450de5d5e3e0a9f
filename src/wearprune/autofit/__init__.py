"""Adaptive pruning: fit a trained model to a device's budget automatically (``wearprune fit``)."""

from wearprune.autofit.limits import Limits
from wearprune.autofit.run import FitResult, fit

__all__ = ["FitResult", "Limits", "fit"]
