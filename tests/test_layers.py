"""The layer registry: one rule per layer type, read by the graph, the pruner, the MAC counter, the cost
model and export; users' own layers; one input contract for every verb that takes example inputs."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wearprune as wp
from wearprune.devices import estimate_cost, lower
from wearprune.errors import ConfigError
from wearprune.graph import UnsupportedOpError, build_graph
from wearprune.layers import (
    LayerRule,
    as_inputs,
    channelwise,
    elementwise,
    register_layer,
    registered_layers,
    rule_for,
    unregister_layer,
)
from wearprune.prune.shapes import apply_layer_shapes, layer_shapes

BUILTIN = set(registered_layers())  # before any test registers its own


class Then(nn.Module):
    """``front`` (makes channels to prune), then ``layer``; ``channel_last`` hands it [B, T, C]."""

    def __init__(self, front: nn.Module, layer: nn.Module, channel_last: bool = False, head: nn.Module | None = None):
        super().__init__()
        self.front, self.layer, self.channel_last = front, layer, channel_last
        self.head = head if head is not None else nn.Identity()

    def forward(self, x):
        x = self.front(x)
        if self.channel_last:
            x = x.transpose(1, 2)
        return self.head(self.layer(x))


class LastFrame(nn.Module):
    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        out, _ = self.rnn(x)
        return out[:, -1]


def c1(c_out: int = 8) -> nn.Conv1d:
    return nn.Conv1d(4, c_out, 3, padding=1)


def c2(c_out: int = 8) -> nn.Conv2d:
    return nn.Conv2d(2, c_out, 3, padding=1)


X1, X2 = torch.randn(2, 4, 16), torch.randn(2, 2, 6, 8)
# One tiny model per built-in layer type: the same set the graph and the cost model must both know.
EXAMPLES = {
    nn.Conv1d: lambda: (Then(c1(), nn.Conv1d(8, 8, 3, padding=1, groups=8)), X1),
    nn.Conv2d: lambda: (Then(c2(), nn.Conv2d(8, 8, 3, padding=1, groups=8)), X2),
    nn.Linear: lambda: (Then(c1(), nn.Linear(8, 3), channel_last=True), X1),
    nn.BatchNorm1d: lambda: (Then(nn.Sequential(c1(), nn.ReLU()), nn.BatchNorm1d(8)), X1),
    nn.BatchNorm2d: lambda: (Then(c2(), nn.BatchNorm2d(8)), X2),
    nn.LayerNorm: lambda: (Then(c1(), nn.LayerNorm(8), channel_last=True), X1),
    nn.GroupNorm: lambda: (Then(c1(), nn.GroupNorm(1, 8)), X1),
    nn.GRU: lambda: (Then(c1(), LastFrame(nn.GRU(8, 6, batch_first=True)), channel_last=True), X1),
    nn.LSTM: lambda: (Then(c1(), LastFrame(nn.LSTM(8, 6, num_layers=2, batch_first=True)), channel_last=True), X1),
    nn.RNN: lambda: (Then(c1(), LastFrame(nn.RNN(8, 6, batch_first=True)), channel_last=True), X1),
    nn.ReLU: lambda: (Then(c1(), nn.ReLU()), X1),
    nn.ReLU6: lambda: (Then(c1(), nn.ReLU6()), X1),
    nn.LeakyReLU: lambda: (Then(c1(), nn.LeakyReLU()), X1),
    nn.ELU: lambda: (Then(c1(), nn.ELU()), X1),
    nn.GELU: lambda: (Then(c1(), nn.GELU()), X1),
    nn.SiLU: lambda: (Then(c1(), nn.SiLU()), X1),
    nn.Hardswish: lambda: (Then(c2(), nn.Hardswish()), X2),
    nn.Mish: lambda: (Then(c1(), nn.Mish()), X1),
    nn.Sigmoid: lambda: (Then(c1(), nn.Sigmoid()), X1),
    nn.Tanh: lambda: (Then(c1(), nn.Tanh()), X1),
    nn.Hardsigmoid: lambda: (Then(c1(), nn.Hardsigmoid()), X1),
    nn.Softplus: lambda: (Then(c1(), nn.Softplus()), X1),
    nn.Softmax: lambda: (Then(c1(), nn.Softmax(dim=2)), X1),
    nn.LogSoftmax: lambda: (Then(c1(), nn.LogSoftmax(dim=2)), X1),
    nn.Dropout: lambda: (Then(c1(), nn.Dropout()), X1),
    nn.Dropout1d: lambda: (Then(c1(), nn.Dropout1d()), X1),
    nn.Dropout2d: lambda: (Then(c2(), nn.Dropout2d()), X2),
    nn.AlphaDropout: lambda: (Then(c1(), nn.AlphaDropout()), X1),
    nn.Identity: lambda: (Then(c1(), nn.Identity()), X1),
    nn.MaxPool1d: lambda: (Then(c1(), nn.MaxPool1d(2)), X1),
    nn.MaxPool2d: lambda: (Then(c2(), nn.MaxPool2d(2)), X2),
    nn.AvgPool1d: lambda: (Then(c1(), nn.AvgPool1d(2)), X1),
    nn.AvgPool2d: lambda: (Then(c2(), nn.AvgPool2d(2)), X2),
    nn.AdaptiveAvgPool1d: lambda: (Then(c1(), nn.AdaptiveAvgPool1d(1)), X1),
    nn.AdaptiveAvgPool2d: lambda: (Then(c2(), nn.AdaptiveAvgPool2d((3, 2))), X2),
    nn.AdaptiveMaxPool1d: lambda: (Then(c1(), nn.AdaptiveMaxPool1d(4)), X1),
    nn.AdaptiveMaxPool2d: lambda: (Then(c2(), nn.AdaptiveMaxPool2d(1)), X2),
    nn.Upsample: lambda: (Then(c1(), nn.Upsample(scale_factor=2)), X1),
    nn.ConstantPad1d: lambda: (Then(c1(), nn.ConstantPad1d((2, 0), 0.0)), X1),
    nn.ConstantPad2d: lambda: (Then(c2(), nn.ConstantPad2d(1, 0.0)), X2),
    nn.ZeroPad1d: lambda: (Then(c1(), nn.ZeroPad1d(1)), X1),
    nn.ZeroPad2d: lambda: (Then(c2(), nn.ZeroPad2d(1)), X2),
    nn.Flatten: lambda: (Then(c1(), nn.Flatten(), head=nn.Linear(8 * 16, 3)), X1),
    nn.Unflatten: lambda: (Then(c1(), nn.Unflatten(1, (2, 4))), X1),
}


def test_the_graph_and_the_cost_model_know_the_same_layer_types():
    assert BUILTIN == set(EXAMPLES), "every built-in rule needs an example below (and every example a rule)"
    for t, rule in registered_layers().items():
        assert rule.couple is not None and rule.lower is not None, t.__name__
    # what the graph knew before the registry, and the cost model did not (GroupNorm, LayerNorm, Mish...)
    for t in (nn.GroupNorm, nn.LayerNorm, nn.Mish, nn.Softplus, nn.Dropout1d, nn.AdaptiveMaxPool1d,
              nn.AdaptiveMaxPool2d, nn.Hardswish, nn.SiLU):
        assert t in BUILTIN


@pytest.mark.parametrize("kind", sorted(EXAMPLES, key=lambda t: t.__name__), ids=lambda t: t.__name__)
def test_every_layer_type_traces_strictly_lowers_and_counts_the_same_macs(kind):
    torch.manual_seed(0)
    model, x = EXAMPLES[kind]()
    model.eval()
    assert any(type(m) is kind for m in model.modules())
    graph = build_graph(model, x, strict=True)  # no op the graph does not know
    assert graph.frozen_by == [] or kind is nn.Conv1d or kind is nn.Conv2d  # (depthwise notes only)
    for int8 in (False, True):
        low = lower(model, x, int8=int8)
        assert low.macs == wp.count_macs(model, x), kind.__name__
        assert low.kernels and low.outputs
    assert estimate_cost(model, x, "nrf52840").arena_bytes > 0


def test_a_subclass_gets_its_parents_rule_and_an_unknown_type_is_named():
    class MyConv(nn.Conv1d):
        pass

    assert rule_for(MyConv(2, 2, 1)) is rule_for(nn.Conv1d)

    class Odd(nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=1).values

    class Box(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.odd = c1(), Odd()

        def forward(self, x):
            return self.odd(self.conv(x))

    with pytest.raises(UnsupportedOpError, match="sort"):
        lower(Box(), X1)


class Functional(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.conv, self.fn = c1(), fn

    def forward(self, x):
        return self.fn(self.conv(x))


def _functional_mix(x):
    x = F.max_pool1d(torch.clamp(F.silu(x), -3.0, 3.0), 2)
    x = F.dropout(torch.abs(x), 0.1, training=False)
    return torch.maximum(x, -x).mean(2)


def test_functions_lower_like_the_modules_they_equal_and_the_graph_follows_them_all():
    for fn, module in ((F.silu, nn.SiLU()), (F.mish, nn.Mish()), (F.elu, nn.ELU()), (torch.tanh, nn.Tanh()),
                       (lambda x: F.softmax(x, dim=2), nn.Softmax(dim=2)), (F.relu, nn.ReLU())):
        for int8 in (False, True):
            as_fn = [k.runtime_op for k in lower(Functional(fn), X1, int8=int8).kernels]
            assert as_fn == [k.runtime_op for k in lower(Then(c1(), module), X1, int8=int8).kernels]
    model = Functional(_functional_mix)
    build_graph(model, X1, strict=True)
    low = lower(model, X1)
    assert low.macs == wp.count_macs(model, X1)
    ops = [k.runtime_op for k in low.kernels]
    assert {"LOGISTIC", "MAXIMUM", "MINIMUM", "MAX_POOL_2D", "ABS", "NEG"} <= set(ops) and "DROPOUT" not in ops


# -- a user's own layer ---------------------------------------------------------------------------
class ChannelScale(nn.Module):
    """A learned gain per channel: y = x * w[c]."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, channels))

    def forward(self, x):
        return x * self.weight[:, None]


class ScaledNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 16, 5, padding=2)
        self.scale = ChannelScale(16)
        self.conv2 = nn.Conv1d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.scale(self.conv1(x)))
        return self.fc(torch.relu(self.conv2(x)).mean(2))


@pytest.fixture
def channel_scale():
    register_layer(ChannelScale, LayerRule(
        couple=channelwise("weight"), lower=elementwise("MUL"),
        shapes=lambda m: {"channels": m.weight.numel()}, resize=lambda m, s: ChannelScale(s["channels"])))
    yield
    unregister_layer(ChannelScale)


def test_a_registered_user_layer_prunes_costs_and_reloads(channel_scale):
    torch.manual_seed(0)
    model, x = ScaledNet().eval(), torch.randn(8, 3, 32)
    pruned, summary = wp.prune(model, x, method="channel", ratio=0.5)
    assert pruned.conv1.out_channels == 8 and pruned.scale.weight.shape == (8,) and pruned.conv2.in_channels == 8
    assert pruned(x).shape == (8, 4)
    assert not any("scale" in n for n in summary["notes"])  # followed, not frozen
    # the kept channels compute exactly what they did: zero the removed ones in the original instead
    pruned, summary = wp.prune(model, x, method="channel", ratio=0.5, protected=("conv2", "fc"))
    keep = torch.from_numpy(np.isin(model.scale.weight.detach().numpy(), pruned.scale.weight.detach().numpy()))
    ref = copy.deepcopy(model)
    with torch.no_grad():
        ref.conv2.weight[:, ~keep] = 0
        torch.testing.assert_close(pruned(x), ref(x), atol=1e-5, rtol=1e-4)
    cost = estimate_cost(pruned, x, "nrf52840")
    assert [k.op for k in cost.kernels if k.node == "scale"] == ["MUL"]
    assert cost.macs == wp.count_macs(pruned, x) == summary["macs_after"]
    fresh = apply_layer_shapes(ScaledNet(), layer_shapes(pruned))  # rebuilt from the original class
    fresh.load_state_dict(pruned.state_dict())
    assert layer_shapes(fresh)["scale"] == {"type": "ChannelScale", "channels": 8}


def test_an_unregistered_user_layer_is_frozen_by_the_pruner_and_named_by_the_cost_model():
    class Opaque(nn.Module):  # not registered: fx traces into it, the graph meets a parameter it cannot follow
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 8, 3, padding=1)
            self.w = nn.Parameter(torch.ones(8))

        def forward(self, x):
            return torch.cumsum(self.conv(x) * self.w[:, None], 2)

    with pytest.raises(UnsupportedOpError, match="cumsum"):
        lower(Opaque(), torch.randn(1, 3, 16))
    pruned, _ = wp.prune(Opaque(), torch.randn(2, 3, 16))
    assert pruned.conv.out_channels == 8


# -- combinations of the new layer types, pruned, costed and run in TensorFlow Lite Micro -----------
class GroupNormMish(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.gn1, self.act1 = nn.Conv1d(3, 16, 5, padding=2), nn.GroupNorm(1, 16), nn.Mish()
        self.conv2, self.gn2 = nn.Conv1d(16, 16, 3, padding=1), nn.GroupNorm(16, 16)
        self.drop, self.act2 = nn.Dropout1d(0.2), nn.Softplus()
        self.pool, self.fc = nn.AdaptiveAvgPool1d(1), nn.Linear(16, 4)

    def forward(self, x):
        x = self.act1(self.gn1(self.conv1(x)))
        x = self.act2(self.drop(self.gn2(self.conv2(x))))
        return self.fc(self.pool(x).flatten(1))


class DepthwiseHardswish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.Hardswish())
        self.pw = nn.Sequential(nn.Conv2d(16, 24, 1), nn.Hardswish())
        self.pool, self.fc = nn.AdaptiveMaxPool2d(1), nn.Linear(24, 4)

    def forward(self, x):
        return self.fc(self.pool(self.pw(self.dw(self.stem(x)))).flatten(1))


class LayerNormSiLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.act = nn.Conv1d(3, 16, 5, padding=2), nn.LayerNorm(16), nn.SiLU()
        self.fc1, self.act2, self.fc = nn.Linear(16, 16), nn.SiLU(), nn.Linear(16, 4)

    def forward(self, x):
        x = self.act(self.norm(self.conv(x).transpose(1, 2)))  # [B, T, C]: normalised over channels
        return self.fc(self.act2(self.fc1(x)).mean(1))


class EluMaxPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.act1 = nn.Conv1d(3, 16, 3, padding=1), nn.ELU()
        self.conv2, self.act2 = nn.Conv1d(16, 16, 3, padding=1), nn.LeakyReLU(0.1)
        self.conv3, self.act3 = nn.Conv1d(16, 8, 1), nn.Hardsigmoid()
        self.pool, self.fc = nn.AdaptiveMaxPool1d(4), nn.Linear(8 * 4, 4)

    def forward(self, x):
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(self.pool(self.act3(self.conv3(x))).flatten(1))


def _trained_looking(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


COMBOS = {"conv1d-groupnorm-mish-softplus": (GroupNormMish, (3, 48)),
          "conv2d-depthwise-hardswish-adaptivemax": (DepthwiseHardswish, (1, 8, 24)),
          "conv1d-layernorm-silu-linear": (LayerNormSiLU, (3, 48)),
          "conv1d-elu-leaky-hardsigmoid-adaptivemax": (EluMaxPool, (3, 48))}


@pytest.mark.parametrize("name", list(COMBOS))
def test_new_layer_combinations_prune_cost_and_run_in_tflite_micro(name):
    from wearprune.export import measure_arena, run_tflm, to_tflite
    from wearprune.export.tflite import to_tflite_int8

    cls, shape = COMBOS[name]
    torch.manual_seed(0)
    model, x = _trained_looking(cls()), torch.randn(48, *shape)
    pruned, summary = wp.prune(model, x[:1], method="channel", ratio=0.5)
    assert summary["macs_after"] < summary["macs_before"] / 2
    assert not [n for n in summary["notes"] if n.startswith("frozen")], summary["notes"]
    with torch.no_grad():
        ref = pruned(x[:8]).numpy()
    scale = np.abs(ref).max()
    for int8 in (False, True):
        cost = estimate_cost(pruned, x[:1], "nrf52840", int8=int8)
        assert cost.macs == summary["macs_after"]
        if int8:
            try:
                tflite, _, _ = to_tflite_int8(pruned, x[:1], x.numpy(), quantizer="auto")
            except ConfigError as e:  # say so, never fake it
                pytest.skip(f"litert-torch cannot make this model int8: {e}")
        else:
            tflite = to_tflite(pruned, x[:1])
        out = run_tflm(tflite, x[:8].numpy())
        err = np.abs(out - ref).max() / scale
        assert err < (0.15 if int8 else 1e-4), (int8, err)
        measured = measure_arena(tflite).total
        assert 0.8 < cost.arena_bytes / measured < 1.25, (int8, cost.arena_bytes, measured)


def test_adaptive_max_pooling_that_is_not_a_plain_pooling_is_refused_by_the_cost_model():
    model = Then(c1(), nn.AdaptiveMaxPool1d(5))  # 16 samples into 5: no equal MaxPool
    with pytest.raises(UnsupportedOpError, match="AdaptiveMaxPool1d whose output size"):
        lower(model, X1)


# -- one input contract ----------------------------------------------------------------------------
class TwoInputs(nn.Module):
    """Wrist accelerometer and PPG, one branch each, joined before the classifier."""

    def __init__(self):
        super().__init__()
        self.acc = nn.Sequential(nn.Conv1d(3, 16, 5, padding=2), nn.ReLU())
        self.ppg = nn.Sequential(nn.Conv1d(1, 8, 5, padding=2), nn.ReLU())
        self.fc = nn.Linear(24, 4)

    def forward(self, acc, ppg):
        return self.fc(torch.cat([self.acc(acc).mean(2), self.ppg(ppg).mean(2)], dim=1))


def test_prune_takes_a_tensor_or_a_tuple_and_gives_the_same_result():
    model = wp.build_model("resnet1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    x = torch.randn(2, 3, 64)
    a, sa = wp.prune(model, x, method="channel", ratio=0.5)
    b, sb = wp.prune(model, (x,), method="channel", ratio=0.5)
    c, _ = wp.prune(model, [x], method="channel", ratio=0.5)
    assert sa == sb
    for other in (b, c):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), other.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    assert wp.count_macs(model, (x,)) == wp.count_macs(model, x)
    assert wp.prune(model, (x,), method="weight", ratio=0.5)[1]["macs_after"] == sa["macs_before"]


def test_a_two_input_model_prunes_and_is_counted_and_costed():
    torch.manual_seed(0)
    model = TwoInputs().eval()
    inputs = (torch.randn(4, 3, 32), torch.randn(4, 1, 32))
    macs = wp.count_macs(model, inputs)
    assert macs == 32 * 16 * 3 * 5 + 32 * 8 * 5 + 24 * 4
    pruned, summary = wp.prune(model, inputs, method="channel", ratio=0.5)
    assert pruned.acc[0].out_channels == 8 and pruned.ppg[0].out_channels == 4 and pruned.fc.in_features == 12
    assert summary["macs_before"] == macs and summary["macs_after"] == wp.count_macs(pruned, inputs) < macs
    assert pruned(*inputs).shape == (4, 4)
    cost = estimate_cost(pruned, inputs, "nrf52840")
    assert cost.macs == summary["macs_after"] and len(lower(pruned, inputs).inputs) == 2
    assert wp.profile_model(pruned, inputs, latency_runs=2)["macs"] == summary["macs_after"]
    x, y = inputs, torch.randint(0, 4, (4,))
    pruned, _ = wp.prune(model, inputs, method="channel", ratio=0.5, importance="taylor", calib=(x, y))
    assert pruned(*inputs).shape == (4, 4)


@pytest.mark.parametrize("bad, why", [("x", "got str"), ((), "empty"), ([torch.zeros(1, 3, 8), 3], "item 1: int"),
                                      (np.zeros((1, 3, 8), np.float32), "got ndarray")])
def test_bad_example_inputs_are_one_clear_error(bad, why):
    model = nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU())
    with pytest.raises(ConfigError, match=why):
        as_inputs(bad)
    for call in (lambda: wp.prune(model, bad), lambda: wp.count_macs(model, bad), lambda: lower(model, bad),
                 lambda: estimate_cost(model, bad, "nrf52840"), lambda: build_graph(model, bad)):
        with pytest.raises(ConfigError) as e:
            call()
        assert "\n" not in str(e.value)
