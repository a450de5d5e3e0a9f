import pytest
import torch

from wearprune.errors import ConfigError
from wearprune.models import MODELS, build_model

SHAPES = {"window": [6, 100], "features": [91], "sequence": [21, 7]}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("width", [0.5, 1.0])
def test_every_zoo_model_forward_shape(name, width):
    for layout in MODELS[name].layouts:
        spec = {"layout": layout, "input_shape": SHAPES[layout], "n_outputs": 5}
        model = build_model(name, spec, width)
        out = model(torch.randn(3, *SHAPES[layout]))
        assert out.shape == (3, 5)
        out.sum().backward()  # every model trains


def test_width_multiplier_shrinks_models():
    spec = {"layout": "window", "input_shape": [3, 96], "n_outputs": 4}
    small = sum(p.numel() for p in build_model("resnet1d", spec, 0.5).parameters())
    big = sum(p.numel() for p in build_model("resnet1d", spec, 1.0).parameters())
    assert small < big / 2.5


def test_regression_head_has_one_output():
    model = build_model("cnn1d", {"layout": "window", "input_shape": [5, 200], "n_outputs": 1})
    assert model(torch.randn(2, 5, 200)).shape == (2, 1)


def test_tcn_is_causal():
    model = build_model("tcn", {"layout": "window", "input_shape": [3, 64], "n_outputs": 2}).eval()
    x = torch.randn(1, 3, 64)
    y = x.clone()
    y[:, :, -1] += 5.0  # only the last sample changes ...
    trunk = model.blocks
    a, b = trunk(x), trunk(y)
    assert torch.allclose(a[:, :, :-1], b[:, :, :-1], atol=1e-6)  # ... so earlier outputs do not


def test_unknown_model_and_wrong_layout_are_clear():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_model("nope", {"layout": "window", "input_shape": [3, 10], "n_outputs": 2})
    with pytest.raises(ConfigError, match="does not take features data; models for it: mlp"):
        build_model("cnn1d", {"layout": "features", "input_shape": [10], "n_outputs": 2})
