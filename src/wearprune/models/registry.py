"""Model registry: name -> builder, with the data layouts each model takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ConfigError
from . import conv, recurrent


@dataclass(frozen=True)
class ModelInfo:
    name: str
    layouts: tuple[str, ...]
    builder: Callable[..., nn.Module]
    description: str


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in [
        ModelInfo("cnn1d", ("window",), conv.CNN1D, "three Conv1d-BN-ReLU blocks, global pooling"),
        ModelInfo("resnet1d", ("window",), conv.ResNet1D, "residual 1-D CNN (residual adds)"),
        ModelInfo("tcn", ("window",), conv.TCN, "dilated causal temporal convolutional network"),
        ModelInfo("dscnn", ("window",), conv.DSCNN, "depthwise-separable CNN"),
        ModelInfo("cnn_gru", ("window",), recurrent.CNNGRU, "conv front end + 2-layer GRU"),
        ModelInfo("cnn_lstm", ("window",), recurrent.CNNLSTM, "DeepConvLSTM-style conv + 2-layer LSTM"),
        ModelInfo("mlp", ("features", "sequence", "window"), conv.MLP, "multilayer perceptron"),
        ModelInfo("sleep_seq", ("sequence",), recurrent.EpochSequenceNet,
                  "epoch encoder + bidirectional GRU over a sequence of 30 s epochs"),
    ]
}


def model_names() -> list[str]:
    return list(MODELS)


def models_for(layout: str) -> list[str]:
    return [m.name for m in MODELS.values() if layout in m.layouts]


def build_model(name: str, spec: dict, width: float = 1.0) -> nn.Module:
    """Build zoo model ``name`` for data ``spec`` (``WearableDataset.spec()``) at ``width`` x channels."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    info = MODELS[name]
    if spec["layout"] not in info.layouts:
        raise ConfigError(
            f"model {name!r} does not take {spec['layout']} data; models for it: "
            f"{', '.join(models_for(spec['layout']))}"
        )
    if not width > 0:
        raise ConfigError(f"width must be positive, got {width}")
    return info.builder(tuple(spec["input_shape"]), int(spec["n_outputs"]), width)
