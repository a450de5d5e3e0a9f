"""wearprune: prune, quantize and fit deep-learning models onto wearables."""

__version__ = "0.1.0"
