"""Layer / block pruning: candidates, least-harmful-first removal, shortcuts, reload."""

import copy

import pytest
import torch
from torch import nn

import wearprune as wp
from wearprune.errors import ConfigError
from wearprune.models import MODELS, build_model
from wearprune.prune.layer import block_candidates, prune_layers, remove_blocks
from wearprune.verbs import prune_run


def test_candidates_use_identity_or_the_shortcut():
    model = build_model("resnet1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    found = {c.name: c.replacement for c in block_candidates(model, torch.randn(1, 3, 64), ("classifier",))}
    assert found == {"layer1": "identity", "layer2": "shortcut", "layer3": "shortcut"}


def test_blocks_are_removed_in_order_of_measured_harm():
    model = build_model("tcn", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4}).eval()
    with torch.no_grad():  # blocks.2 adds nothing to its input (ReLU of a non-negative input is itself)
        model.blocks[2].conv2.weight.zero_()
        model.blocks[2].conv2.bias.zero_()
        model.blocks[2].bn2.bias.fill_(-10.0)
    x, y = torch.randn(64, 3, 64), torch.randint(0, 4, (64,))
    pruned, s = prune_layers(model, x, ratio=0.25, calib=(x, y), protected=("classifier",))
    scores = s["candidates"]
    assert scores["blocks.2"] == pytest.approx(0.0, abs=1e-6)  # removing it changes nothing
    assert list(s["removed"]) == [min(scores, key=scores.get)]  # least harmful first
    alone = remove_blocks(copy.deepcopy(model), {"blocks.2": "identity"})
    torch.testing.assert_close(alone(x), model(x), atol=1e-5, rtol=1e-4)
    assert s["macs_after"] < s["macs_before"]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("importance", ["loss", "similarity"])
def test_every_zoo_model_takes_layer_pruning(name, importance):
    layout = MODELS[name].layouts[0]
    shape = {"window": [6, 64], "features": [20], "sequence": [9, 5]}[layout]
    model = build_model(name, {"layout": layout, "input_shape": shape, "n_outputs": 4})
    x, y = torch.randn(16, *shape), torch.randint(0, 4, (16,))
    if name in ("cnn1d", "mlp", "sleep_seq"):  # plain stacks: nothing to remove, said rather than a no-op
        with pytest.raises(ConfigError, match="no removable block"):
            wp.prune(model, x, method="layer", ratio=0.5, importance=importance, calib=(x, y))
        return
    pruned, s = wp.prune(model, x, method="layer", ratio=0.5, importance=importance, calib=(x, y))
    assert pruned(x).shape == (16, 4)
    assert s["macs_after"] <= s["macs_before"]


def test_layer_pruning_a_model_without_blocks_is_an_error_not_a_no_op():
    model = nn.Sequential(nn.Conv1d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14, 4))
    x, y = torch.randn(8, 3, 16), torch.randint(0, 4, (8,))
    with pytest.raises(ConfigError, match="this model has no removable block .*use method channel or weight"):
        wp.prune(model, x, method="layer", ratio=0.5, calib=(x, y))
    with pytest.raises(ConfigError, match="no removable block outside the protected"):
        prune_layers(build_model("tcn", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4}),
                     torch.randn(4, 3, 64), calib=(torch.randn(4, 3, 64), torch.zeros(4)), protected=("blocks",))


def test_layer_pruning_needs_calibration_and_a_known_criterion():
    model = build_model("resnet1d", {"layout": "window", "input_shape": [3, 64], "n_outputs": 4})
    x = torch.randn(4, 3, 64)
    with pytest.raises(ConfigError, match="calibration"):
        prune_layers(model, x)
    with pytest.raises(ConfigError, match="loss or similarity"):
        prune_layers(model, x, importance="taylor", calib=(x, torch.zeros(4)))


def test_layer_pruned_run_reloads(tmp_path):
    ds = wp.load_dataset("basicmotions")
    wp.train(ds, "resnet1d", tmp_path / "d", config=wp.TrainConfig(epochs=1, batch_size=16))
    run = prune_run(tmp_path / "d", tmp_path / "p", method="layer", ratio=0.5, finetune_epochs=0)
    assert run.architecture["removed_blocks"]
    loaded = wp.load_run(tmp_path / "p").model
    x = torch.randn(2, 6, 100)
    torch.testing.assert_close(loaded(x), run.model.eval()(x))
    assert isinstance(loaded.get_submodule(next(iter(run.architecture["removed_blocks"]))), (nn.Identity, nn.Module))
