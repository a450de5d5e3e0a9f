"""When to prune: at initialisation (SNIP), during training (cubic schedule, Network Slimming),
after training (iterative cycles)."""

import torch
from torch import nn

import wearprune as wp
from wearprune.data.synthetic import make_synthetic
from wearprune.prune import sparsity
from wearprune.prune.schedule import CubicSchedule
from wearprune.prune.timing import GradualWeightPruning, bn_l1_penalty
from wearprune.verbs import prune_run


def test_gradual_pruning_follows_the_schedule():
    model = wp.build_model("mlp", {"layout": "features", "input_shape": [20], "n_outputs": 3})
    prune_step = GradualWeightPruning(model, CubicSchedule(0.8, 0, 20, frequency=5))
    seen = []
    for _ in range(25):
        prune_step()
        seen.append(sparsity(model)["overall"])
    assert seen[0] == 0.0 or seen[0] < 0.05
    assert all(b >= a - 1e-9 for a, b in zip(seen, seen[1:]))  # never less sparse
    # The classifier stays dense, so the overall figure sits a little under the 80 % of the rest.
    assert 0.7 < seen[-1] <= 0.8


def test_training_with_gradual_sparsity_ends_at_the_target(tmp_path):
    ds = make_synthetic(n_subjects=6, per_subject=30)
    run = wp.train(ds, "cnn1d", tmp_path / "g", config=wp.TrainConfig(epochs=6), gradual={"target": 0.7})
    s = sparsity(wp.load_run(tmp_path / "g").model)
    prunable = {k: v for k, v in s["tensors"].items() if not k.startswith("classifier")}
    assert min(prunable.values()) > 0.2 and run.metrics["sparsity"] > 0.6  # global scope: layers differ
    assert run.metrics["history"]["best_epoch"] >= 5  # weights from after the schedule ended


def test_slimming_penalty_shrinks_bn_scales():
    ds = make_synthetic(n_subjects=6, per_subject=30)
    settings = dict(epochs=8, lr=0.05, patience=99, select_from_epoch=8)  # compare the final weights
    plain = wp.train(ds, "cnn1d", None, config=wp.TrainConfig(**settings))
    slim = wp.train(ds, "cnn1d", None, config=wp.TrainConfig(**settings, bn_l1=1.0))
    with torch.no_grad():
        assert bn_l1_penalty(slim.model).item() < 0.7 * bn_l1_penalty(plain.model).item()
    pruned, s = wp.prune(slim.model, torch.from_numpy(ds.X[:1]), ratio=0.5, importance="bn_scale", scope="global")
    assert s["macs_after"] < s["macs_before"]


def test_snip_at_initialisation_trains_a_smaller_model(tmp_path):
    ds = make_synthetic(n_subjects=6, per_subject=30)
    dense = wp.train(ds, "resnet1d", None, config=wp.TrainConfig(epochs=2))
    run = wp.train(ds, "resnet1d", tmp_path / "snip", config=wp.TrainConfig(epochs=2),
                   prune_at_init={"ratio": 0.5})
    assert run.metrics["cost"]["params"] < 0.4 * dense.metrics["cost"]["params"]
    assert run.metrics["prune_at_init"]["importance"] == "snip"
    loaded = wp.load_run(tmp_path / "snip").model
    x = torch.from_numpy(ds.X[:2])
    torch.testing.assert_close(loaded(x), run.model.eval()(x))


def test_iterative_cycles_reach_the_ratio(tmp_path):
    ds = wp.load_dataset("basicmotions")
    wp.train(ds, "cnn1d", tmp_path / "d", config=wp.TrainConfig(epochs=2, batch_size=16))
    run = prune_run(tmp_path / "d", tmp_path / "it", ratio=0.75, cycles=2, finetune_epochs=1)
    assert len(run.metrics["prune"]) == 2
    convs = [m for m in run.model.modules() if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [4, 8, 16]  # 16/32/64 with 75 % removed in two cycles
