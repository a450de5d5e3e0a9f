"""Robustness and privacy of (pruned) wearable models: corruptions, the robustness evaluation, the
membership-inference audit."""

from .audit import audit
from .corruptions import CORRUPTIONS, corrupt
from .evaluate import robustness

__all__ = ["CORRUPTIONS", "audit", "corrupt", "robustness"]
