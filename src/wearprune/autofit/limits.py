"""Moved to :mod:`wearprune.devices.budget` (``Budget``); this name stays for existing imports."""

from wearprune.devices.budget import LIMIT_WORDS, Budget, binding

Limits = Budget

__all__ = ["LIMIT_WORDS", "Budget", "Limits", "binding"]
