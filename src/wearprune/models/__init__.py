"""The model zoo: plain ``nn.Module``s built from a data spec and a width multiplier."""

from .registry import MODELS, build_model, model_names, models_for

__all__ = ["MODELS", "build_model", "model_names", "models_for"]
