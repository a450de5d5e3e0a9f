"""Model registry: name -> builder, with the data layouts each model takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ConfigError
from . import conv, recurrent
from .layers import ACTIVATIONS, NORMS


@dataclass(frozen=True)
class ModelInfo:
    name: str
    layouts: tuple[str, ...]
    builder: Callable[..., nn.Module]
    description: str
    options: tuple[str, ...] = ()  # block options its builder takes (norm, act)


BLOCK_OPTIONS = ("norm", "act")

MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in [
        ModelInfo("cnn1d", ("window",), conv.CNN1D, "three Conv1d-BN-ReLU blocks, global pooling", BLOCK_OPTIONS),
        ModelInfo("resnet1d", ("window",), conv.ResNet1D, "residual 1-D CNN (residual adds)", ("norm",)),
        ModelInfo("tcn", ("window",), conv.TCN, "dilated causal temporal convolutional network"),
        ModelInfo("dscnn", ("window",), conv.DSCNN, "depthwise-separable CNN", BLOCK_OPTIONS),
        ModelInfo("cnn_gru", ("window",), recurrent.CNNGRU, "conv front end + 2-layer GRU", BLOCK_OPTIONS),
        ModelInfo("cnn_lstm", ("window",), recurrent.CNNLSTM, "DeepConvLSTM-style conv + 2-layer LSTM", BLOCK_OPTIONS),
        ModelInfo("mlp", ("features", "sequence", "window"), conv.MLP, "multilayer perceptron"),
        ModelInfo("sleep_seq", ("sequence",), recurrent.EpochSequenceNet,
                  "epoch encoder + bidirectional GRU over a sequence of 30 s epochs"),
    ]
}


def model_names() -> list[str]:
    return list(MODELS)


def models_for(layout: str) -> list[str]:
    return [m.name for m in MODELS.values() if layout in m.layouts]


def build_model(name: str, spec: dict, width: float = 1.0, **options: str) -> nn.Module:
    """Build zoo model ``name`` for data ``spec`` (``WearableDataset.spec()``) at ``width`` x channels.

    ``options``: the conv blocks' ``norm`` (batch, group) and ``act`` (relu, relu6, hardswish, silu,
    mish, elu), for the models that list them (``wearprune models``)."""
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
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        takes = f"it takes {', '.join(info.options)}" if info.options else "it takes none"
        raise ConfigError(f"model {name!r} has no option {', '.join(unknown)}; {takes}")
    for key, allowed in (("norm", NORMS), ("act", ACTIVATIONS)):
        if key in options and options[key] not in allowed:
            raise ConfigError(f"unknown {key} {options[key]!r}; choose one of: {', '.join(allowed)}")
    return info.builder(tuple(spec["input_shape"]), int(spec["n_outputs"]), width, **options)
