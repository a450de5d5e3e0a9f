"""Adaptive pruning: fit a trained model to a device's budget automatically (``wearprune fit``)."""

from wearprune.autofit.run import FitResult, fit
from wearprune.devices.budget import Budget

Limits = Budget  # the former name

__all__ = ["Budget", "FitResult", "Limits", "fit"]
