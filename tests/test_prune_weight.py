import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from wearprune.errors import ConfigError
from wearprune.models import MODELS, build_model
from wearprune.prune.weight import (
    MaskKeeper,
    apply_masks,
    default_protected,
    prune_weights,
    sparsity,
    weight_masks,
    weight_params,
    zero_masks,
)

SHAPES = {"window": [6, 100], "features": [20], "sequence": [21, 7]}


def zoo(name: str, seed: int = 0) -> tuple[nn.Module, dict]:
    layout = MODELS[name].layouts[0]
    spec = {"layout": layout, "input_shape": SHAPES[layout], "n_outputs": 4}
    torch.manual_seed(seed)
    return build_model(name, spec), spec


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def zeros(t: torch.Tensor) -> int:
    return int((t == 0).sum())


@pytest.mark.parametrize("name", list(MODELS))
def test_layer_scope_exact_per_tensor_on_every_zoo_model(name):
    model, spec = zoo(name)
    original = snapshot(model)
    pruned, summary = prune_weights(model, 0.6, scope="layer")
    params = dict(pruned.named_parameters())
    keys = [k for k, t in summary["tensors"].items() if t["pruned"]]
    assert keys and all(zeros(params[k]) == round(0.6 * params[k].numel()) for k in keys)
    (classifier,) = default_protected(model)
    assert classifier == "classifier" and not summary["tensors"]["classifier.weight"]["pruned"]
    assert torch.equal(params["classifier.weight"], original["classifier.weight"])
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())  # input untouched
    json.dumps(summary)
    assert pruned(torch.randn(2, *spec["input_shape"])).shape == (2, 4)


@pytest.mark.parametrize("name", list(MODELS))
def test_global_scope_exact_overall_on_every_zoo_model(name):
    model, _ = zoo(name)
    masks = weight_masks(model, 0.7)
    total = sum(m.numel() for m in masks.values())
    assert sum(zeros(m) for m in masks.values()) == round(0.7 * total)
    pruned, summary = prune_weights(model, 0.7)
    assert summary["pruned_sparsity"] == pytest.approx(round(0.7 * total) / total)
    assert summary["nonzero_before"] - summary["nonzero_after"] == round(0.7 * total)
    assert summary["params_total"] == sum(p.numel() for p in model.parameters())


def test_masks_cover_every_weight_matrix_and_nothing_else():
    model, _ = zoo("cnn_gru")
    keys = set(weight_masks(model, 0.5))
    rnn = {f"rnn.weight_{kind}_l{layer}" for kind in ("ih", "hh") for layer in (0, 1)}
    assert keys == {"features.0.0.weight", "features.1.0.weight"} | rnn
    sleep, _ = zoo("sleep_seq")
    assert "rnn.weight_hh_l0_reverse" in weight_masks(sleep, 0.5)  # bidirectional weights too


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_smallest_magnitudes_are_removed(scope):
    model, _ = zoo("resnet1d")
    masks = weight_masks(model, 0.5, scope=scope)
    groups = [[k] for k in masks] if scope == "layer" else [list(masks)]
    params = dict(model.named_parameters())
    for keys in groups:
        w = torch.cat([params[k].detach().abs().flatten() for k in keys])
        keep = torch.cat([masks[k].flatten() for k in keys])
        assert w[~keep].max() <= w[keep].min()


def test_ties_are_broken_by_position_deterministically():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.fill_(0.5)
    first = weight_masks(model, 0.25, scope="layer")["0.weight"]
    assert torch.equal(first, weight_masks(model, 0.25, scope="layer")["0.weight"])
    assert first.flatten().tolist() == [False] * 4 + [True] * 12


def test_n_m_pattern_on_linear():
    model, _ = zoo("mlp")
    pruned, summary = prune_weights(model, None, n_m=(2, 4))
    original = model.fc1.weight.detach().abs().reshape(-1, 4)
    groups = pruned.fc1.weight.detach().reshape(-1, 4)
    assert ((groups != 0).sum(1) == 2).all()
    kept = torch.where(groups != 0, original, torch.inf).amin(1)
    dropped = torch.where(groups == 0, original, -torch.inf).amax(1)
    assert (dropped <= kept).all()  # the two largest of every four stay
    assert summary["pruned_sparsity"] == 0.5 and summary["scope"] == "n:m"
    assert torch.equal(pruned.classifier.weight, model.classifier.weight)


def test_n_m_on_conv_groups_in_channels_times_kernel():
    model, _ = zoo("cnn_gru")  # first conv: 6 channels x 5 taps = 30, not a multiple of 4
    with pytest.raises(ConfigError, match="features.0.0"):
        weight_masks(model, 0.5, n_m=(2, 4))
    masks = weight_masks(model, 0.5, n_m=(2, 4), protected=["features.0"])
    assert "features.0.0.weight" not in masks
    conv = masks["features.1.0.weight"]  # [32, 32, 5]: groups run along 32 x 5
    assert (conv.reshape(conv.shape[0], -1).reshape(-1, 4).sum(1) == 2).all()


def test_protected_modules_stay_dense():
    model, _ = zoo("cnn1d")
    pruned, summary = prune_weights(model, 0.8, scope="layer", protected=["features.0"])
    assert torch.equal(pruned.features[0][0].weight, model.features[0][0].weight)
    assert summary["protected"] == ["classifier", "features.0"]
    open_classifier = weight_masks(model, 0.8, scope="layer", protect_classifier=False)
    assert "classifier.weight" in open_classifier


@pytest.mark.parametrize("kwargs", [
    {"ratio": 1.0}, {"ratio": -0.1}, {"ratio": float("nan")}, {"ratio": None}, {"ratio": "0.5"},
    {"ratio": 0.5, "scope": "channel"},
    {"ratio": None, "n_m": (4, 2)}, {"ratio": None, "n_m": (0, 4)}, {"ratio": None, "n_m": (2, 4, 8)},
    {"ratio": 0.3, "n_m": (2, 4)}, {"ratio": float("nan"), "n_m": (2, 4)},
    {"ratio": 0.5, "protected": ["no_such_layer"]},
    {"ratio": 0.5, "include": (nn.Conv3d,)},
])
def test_bad_options_raise_one_line_config_error(kwargs):
    model, _ = zoo("mlp")
    with pytest.raises(ConfigError) as err:
        prune_weights(model, **kwargs)
    assert "\n" not in str(err.value)


def test_apply_masks_rejects_foreign_masks():
    model, _ = zoo("mlp")
    with pytest.raises(ConfigError, match="matches no parameter"):
        apply_masks(model, {"fc9.weight": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ConfigError, match="shape"):
        apply_masks(model, {"fc1.weight": torch.ones(3, dtype=torch.bool)})


def test_sparsity_report():
    model, _ = zoo("mlp")
    pruned, _ = prune_weights(model, 0.5, scope="layer")
    report = sparsity(pruned)
    assert report["tensors"]["fc1.weight"] == 0.5 and report["tensors"]["classifier.weight"] == 0.0
    assert report["numel"] == sum(p.numel() for p in weight_params(pruned).values())
    assert report["overall"] == report["zeros"] / report["numel"]
    assert sparsity(model)["zeros"] == 0


def fine_tune(model: nn.Module, keeper_mode: str | None, masks: dict, steps: int = 5) -> None:
    torch.manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    keeper = MaskKeeper(model, masks, opt if keeper_mode == "hook" else None) if keeper_mode else None
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(torch.randn(16, 20)), torch.randint(0, 4, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if keeper_mode == "manual":
            keeper.step()
    if keeper:
        keeper.remove()


@pytest.mark.parametrize("mode", ["hook", "manual"])
def test_mask_keeper_holds_zero_positions_while_training(mode):
    model, _ = zoo("mlp")
    pruned, _ = prune_weights(model, 0.5)
    masks = zero_masks(pruned)
    fine_tune(pruned, mode, masks)
    assert all(torch.equal(m, zero_masks(pruned)[k]) for k, m in masks.items())
    assert not torch.equal(pruned.fc1.weight, prune_weights(model, 0.5)[0].fc1.weight)  # it did train


def test_without_mask_keeper_zeros_drift():
    model, _ = zoo("mlp")
    pruned, _ = prune_weights(model, 0.5)
    before = zero_masks(pruned)
    fine_tune(pruned, None, before)
    assert sparsity(pruned)["overall"] < 0.01  # AdamW revives nearly every pruned weight


def test_mask_keeper_remove_detaches_the_hook():
    model, _ = zoo("mlp")
    pruned, _ = prune_weights(model, 0.5)
    opt = torch.optim.SGD(pruned.parameters(), lr=0.1)
    masks = weight_masks(model, 0.9, scope="layer")
    with MaskKeeper(pruned, masks, opt):
        pass
    assert zeros(pruned.fc1.weight) == zeros(masks["fc1.weight"])  # applied on creation
    nn.functional.cross_entropy(pruned(torch.randn(16, 20)), torch.randint(0, 4, (16,))).backward()
    opt.step()
    # no longer re-applied: masked weights move again (rows whose every input weight is masked feed a
    # constant into BN -> ReLU, get no gradient and stay zero, so "most", not "all")
    assert zeros(pruned.fc1.weight) < zeros(masks["fc1.weight"]) // 2


@pytest.mark.parametrize("name", ["mlp", "cnn_gru"])
def test_pruned_model_round_trips_through_safetensors(name, tmp_path):
    model, spec = zoo(name)
    pruned, _ = prune_weights(model, 0.75)
    save_file(pruned.state_dict(), tmp_path / "model.safetensors")
    fresh, _ = zoo(name, seed=123)
    fresh.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert sparsity(fresh) == sparsity(pruned)
    x = torch.randn(3, *spec["input_shape"])
    assert torch.equal(fresh.eval()(x), pruned.eval()(x))
