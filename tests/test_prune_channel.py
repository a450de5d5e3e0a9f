"""Structured pruning: physical removal is exact, counts drop as planned, every zoo model prunes."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.graph import UnsupportedOpError, build_graph
from wearprune.models import MODELS, build_model
from wearprune.profile import count_macs, count_params
from wearprune.prune.channel import keep_masks, remove_units
from wearprune.prune.groups import build_groups
from wearprune.prune.importance import CRITERIA

T = 32


class RandomNet(nn.Module):
    """Blocks drawn by hypothesis: conv, residual add, concat, depthwise-separable, gating multiply,
    pooling; then a head: global pooling, flatten -> Linear, or a (bi)GRU/LSTM."""

    def __init__(self, c_in: int, blocks: list[tuple[str, int]], head: tuple[str, int, int], n_out: int = 3):
        super().__init__()
        self.kinds = [k for k, _ in blocks]
        self.blocks = nn.ModuleList()
        c, t = c_in, T
        for kind, w in blocks:
            if kind == "conv":
                self.blocks.append(nn.Sequential(nn.Conv1d(c, w, 3, padding=1), nn.BatchNorm1d(w), nn.ReLU()))
                c = w
            elif kind == "res":
                self.blocks.append(nn.ModuleDict({
                    "a": nn.Sequential(nn.Conv1d(c, w, 3, padding=1), nn.BatchNorm1d(w), nn.ReLU()),
                    "b": nn.Sequential(nn.Conv1d(w, c, 3, padding=1), nn.BatchNorm1d(c))}))
            elif kind == "concat":
                self.blocks.append(nn.ModuleDict({"a": nn.Conv1d(c, w, 1), "b": nn.Conv1d(c, w + 1, 3, padding=1)}))
                c = 2 * w + 1
            elif kind == "dw":
                self.blocks.append(nn.Sequential(nn.Conv1d(c, c, 3, padding=1, groups=c), nn.BatchNorm1d(c),
                                                 nn.ReLU(), nn.Conv1d(c, w, 1)))
                c = w
            elif kind == "gate":
                self.blocks.append(nn.Conv1d(c, c, 1))
            elif kind == "pool":
                self.blocks.append(nn.MaxPool1d(2))
                t //= 2
        self.head_kind, hidden, layers = head
        if self.head_kind == "gap":
            self.head = nn.Linear(c, n_out)
        elif self.head_kind == "flatten":
            self.head = nn.Linear(c * t, n_out)
        else:
            rnn = nn.GRU if "gru" in self.head_kind else nn.LSTM
            bi = self.head_kind.startswith("bi")
            self.rnn = rnn(c, hidden, num_layers=layers, batch_first=True, bidirectional=bi)
            self.head = nn.Linear(hidden * (2 if bi else 1), n_out)

    def forward(self, x):
        for kind, block in zip(self.kinds, self.blocks):
            if kind == "res":
                x = torch.relu(x + block["b"](block["a"](x)))
            elif kind == "concat":
                x = torch.cat([block["a"](x), block["b"](x)], dim=1)
            elif kind == "gate":
                x = x * torch.sigmoid(block(x))
            else:
                x = block(x)
        if self.head_kind == "gap":
            return self.head(x.mean(dim=2))
        if self.head_kind == "flatten":
            return self.head(x.flatten(1))
        out, _ = self.rnn(x.transpose(1, 2))
        return self.head(out[:, -1])


def randomise_norms(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def zeroed_reference(model, graph, removed):
    """The original model with every weight that reads a removed channel set to zero."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for pd in graph.param_dims:
            if pd.role == "in":
                pos = np.flatnonzero(np.isin(graph.uf.roots(pd.ids), list(removed)))
                if len(pos):
                    getattr(ref.get_submodule(pd.module), pd.param).index_fill_(pd.dim, torch.from_numpy(pos), 0.0)
    return ref


def expected_params(model, graph, removed):
    masks = keep_masks(graph, removed)
    total = count_params(model)
    for (module, param), dims in masks.items():
        t = getattr(model.get_submodule(module), param)
        if not isinstance(t, nn.Parameter):
            continue
        kept = t.numel()
        for dim, keep in dims.items():
            kept = kept // t.shape[dim] * int(keep.sum())
        total -= t.numel() - kept
    return total


blocks_st = st.lists(st.tuples(st.sampled_from(["conv", "res", "concat", "dw", "gate", "pool"]),
                               st.integers(2, 6)), min_size=1, max_size=4)
head_st = st.tuples(st.sampled_from(["gap", "flatten", "gru", "lstm", "bigru", "bilstm"]),
                    st.integers(2, 5), st.integers(1, 2))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=blocks_st, head=head_st, ratio=st.floats(0.1, 0.8), seed=st.integers(0, 2**16))
def test_physical_pruning_equals_zeroing_the_readers(blocks, head, ratio, seed):
    torch.manual_seed(seed)
    model = randomise_norms(RandomNet(3, blocks, head))
    x = torch.randn(4, 3, T)
    work = copy.deepcopy(model)
    graph = build_graph(work, x)
    groups = build_groups(graph)
    rng = np.random.default_rng(seed)
    removed = set()
    for g in groups:
        k = min(int(round(ratio * g.size)), g.size - 1)
        removed |= set(rng.choice(g.roots, size=k, replace=False).tolist())
    ref = zeroed_reference(model, graph, removed)
    want_params = expected_params(model, graph, removed)
    remove_units(work, graph, removed)
    with torch.no_grad():
        torch.testing.assert_close(work(x), ref(x), atol=1e-5, rtol=1e-4)
    assert count_params(work) == want_params
    assert count_params(work) <= count_params(model)
    # MACs scale with each weight matrix's kept fraction (they are bilinear in in/out widths).
    _, before = count_macs(model, x, detail=True)
    _, after = count_macs(work, x, detail=True)
    assert set(after) == set(before)
    work.train()
    work(x).sum().backward()  # the pruned model trains


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("importance", list(CRITERIA))
def test_every_zoo_model_prunes_with_every_criterion(name, importance):
    layout = MODELS[name].layouts[0]
    shape = {"window": [6, 64], "features": [20], "sequence": [9, 5]}[layout]
    model = build_model(name, {"layout": layout, "input_shape": shape, "n_outputs": 4})
    x, y = torch.randn(16, *shape), torch.randint(0, 4, (16,))
    before = copy.deepcopy(model.state_dict())
    pruned, summary = wp.prune(model, x, method="channel", ratio=0.5, importance=importance, calib=(x, y))
    assert pruned(x).shape == (16, 4)
    assert summary["params_after"] < summary["params_before"]
    assert summary["macs_after"] < summary["macs_before"]
    for layer in summary["layers"]:
        assert layer["after"] == layer["before"] - round(0.5 * layer["before"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # input untouched


@pytest.mark.parametrize("name", list(MODELS))
def test_every_zoo_model_prunes_weights_and_neurons(name):
    layout = MODELS[name].layouts[0]
    shape = {"window": [6, 64], "features": [20], "sequence": [9, 5]}[layout]
    model = build_model(name, {"layout": layout, "input_shape": shape, "n_outputs": 4})
    x = torch.randn(2, *shape)
    pruned, summary = wp.prune(model, x, method="weight", ratio=0.6)
    assert summary["pruned_sparsity"] == pytest.approx(0.6, abs=0.01)
    pruned, summary = wp.prune(model, x, method="neuron", ratio=0.5)
    assert pruned(x).shape == (2, 4)


def test_global_scope_and_round_to_and_min_channels():
    model = build_model("resnet1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 5})
    x = torch.randn(2, 3, 64)
    pruned, s = wp.prune(model, x, ratio=0.6, scope="global", round_to=4, min_channels=4)
    widths = [layer["after"] for layer in s["layers"]]
    assert all(w % 4 == 0 and w >= 4 for w in widths)
    total_before = sum(layer["before"] for layer in s["layers"])
    assert sum(widths) <= total_before * 0.45  # about 60 % removed (rounding up keeps a little more)


def test_gru_hidden_units_shrink_all_gates_together():
    model = build_model("cnn_gru", {"layout": "window", "input_shape": [6, 64], "n_outputs": 4})
    pruned, _ = wp.prune(model, torch.randn(2, 6, 64), ratio=0.5)
    rnn = pruned.rnn
    assert rnn.hidden_size == 16
    assert rnn.weight_ih_l0.shape == (3 * 16, 16) and rnn.weight_hh_l1.shape == (3 * 16, 16)
    assert pruned.classifier.in_features == 16


def test_protected_layers_keep_their_width():
    model = build_model("cnn1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    pruned, s = wp.prune(model, torch.randn(2, 3, 64), ratio=0.5, protected=("features.0", "classifier"))
    assert pruned.features[0][0].out_channels == 16
    assert pruned.features[2][0].out_channels == 16


class WithSort(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = torch.sort(self.conv(x), dim=1).values  # mixes channels: not followable
        return self.fc(self.conv2(x).mean(2))


def test_unknown_op_strict_names_op_and_node():
    with pytest.raises(UnsupportedOpError, match="unsupported op sort at node 'sort'"):
        build_graph(WithSort(), torch.randn(1, 3, 16), strict=True)


def test_unknown_op_freezes_its_channels_and_stays_correct():
    model = WithSort().eval()
    x = torch.randn(2, 3, 16)
    pruned, s = wp.prune(model, x, ratio=0.5)
    assert pruned.conv.out_channels == 8  # frozen by the sort
    assert pruned.conv2.out_channels == 4  # free to prune
    assert any("sort" in n for n in s["notes"])
    assert pruned(x).shape == (2, 2)


def test_untraceable_model_gives_a_clear_error():
    class Dynamic(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return self.fc(x)
            return -self.fc(x)

    with pytest.raises(UnsupportedOpError, match="torch.fx cannot trace Dynamic"):
        wp.prune(Dynamic(), torch.randn(1, 4))


def test_bad_options_are_clear():
    model = build_model("cnn1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    x = torch.randn(2, 3, 64)
    with pytest.raises(ConfigError, match="ratio must be in"):
        wp.prune(model, x, ratio=1.0)
    with pytest.raises(ConfigError, match="unknown importance"):
        wp.prune(model, x, importance="magic")
    with pytest.raises(ConfigError, match="needs calibration"):
        wp.prune(model, x, importance="taylor")
    with pytest.raises(ConfigError, match="unknown pruning method"):
        wp.prune(model, x, method="block")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("name", ["resnet1d", "cnn_gru"])
def test_pruned_models_export_to_onnx_and_match_in_onnxruntime(name, tmp_path):
    import onnxruntime as ort

    model = build_model(name, {"layout": "window", "input_shape": [6, 64], "n_outputs": 4}).eval()
    x = torch.randn(1, 6, 64)
    pruned, _ = wp.prune(model, x, ratio=0.5)
    path = tmp_path / "m.onnx"
    torch.onnx.export(pruned, (x,), str(path), dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, pruned(x).detach().numpy(), atol=1e-5, rtol=1e-4)


def test_ratio_for_macs_meets_the_target_closely():
    from wearprune.prune import ratio_for_macs

    model = build_model("resnet1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    x = torch.randn(1, 3, 64)
    dense = count_macs(model, x)
    ratio, pruned, s = ratio_for_macs(model, x, dense // 4)
    assert s.macs_after <= dense // 4
    looser = wp.prune(model, x, ratio=max(ratio - 0.05, 0.0))[1]
    assert looser["macs_after"] > dense // 4  # a smaller ratio would miss the target
    with pytest.raises(ConfigError, match="cannot reach"):
        ratio_for_macs(model, x, 10)
