"""FGSM and PGD: they stay within the budget, raise the loss, and PGD beats FGSM."""

import pytest
import torch

from wearprune.errors import ConfigError
from wearprune.robust.attacks import _loss, fgsm, pgd


def model_and_batch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 3)).eval()
    x = torch.randn(64, 3, 16)
    y = model(x).argmax(1)  # what the model says now: the attack must move it away
    return model, x, y


def test_attacks_stay_within_eps_and_raise_the_loss():
    model, x, y = model_and_batch()
    clean = _loss(model(x), y, "classification").item()
    one = fgsm(model, x, y, 0.3, task="classification")
    assert torch.allclose((one - x).abs(), torch.full_like(x, 0.3), atol=1e-6)  # one full signed step
    many = pgd(model, x, y, 0.3, task="classification", steps=20)
    assert (many - x).abs().max() <= 0.3 + 1e-6
    with torch.no_grad():
        l_fgsm = _loss(model(one), y, "classification").item()
        l_pgd = _loss(model(many), y, "classification").item()
    assert clean < l_fgsm <= l_pgd + 1e-4
    assert torch.equal(pgd(model, x, y, 0.0, task="classification"), x)


def test_regression_attack_and_bad_eps():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 1)).eval()
    x, y = torch.randn(32, 2, 4), torch.randn(32)
    adv = pgd(model, x, y, 0.2, task="regression")
    with torch.no_grad():
        assert _loss(model(adv), y, "regression") > _loss(model(x), y, "regression")
    with pytest.raises(ConfigError, match="eps must be >= 0"):
        pgd(model, x, y, -1.0, task="regression")


def test_hardened_batches():
    from wearprune.robust.harden import hardened_batch

    model, x, y = model_and_batch()
    gen = torch.Generator().manual_seed(0)
    names = ["acc_x", "acc_y", "acc_z"]
    xa, ya = hardened_batch("adversarial", model, x, y, task="classification", channel_names=names, rate_hz=16,
                            gen=gen, eps=0.2)
    assert xa.shape[0] == 2 * len(x) and torch.equal(xa[: len(x)], x) and torch.equal(ya, torch.cat([y, y]))
    assert (xa[len(x):] - x).abs().max() <= 0.2 + 1e-6
    changed = []
    for _ in range(20):
        xc, yc = hardened_batch("corruptions", model, x, y, task="classification", channel_names=names, rate_hz=16,
                                gen=gen, eps=0.2)
        assert xc.shape == x.shape and torch.equal(yc, y)
        changed.append(float((xc != x).flatten(1).any(1).float().mean()))
    assert 0.2 < sum(changed) / len(changed) < 0.6  # about half of each batch, some corruptions barely touch it


def test_prune_with_hardening_records_it(tmp_path):
    import wearprune as wp
    from wearprune.data.synthetic import make_synthetic

    ds = make_synthetic(n_subjects=5, per_subject=16, seed=3)
    run = wp.train(ds, "cnn1d", tmp_path / "d", config=wp.TrainConfig(epochs=2))
    from wearprune.data.prepare import prepare_from_config

    prepared = prepare_from_config(run.config, data=ds)
    pruned = wp.prune_run(run, None, prepared=prepared, ratio=0.5, finetune_epochs=2, harden="adversarial",
                          harden_eps=0.05)
    assert pruned.config["prune"]["spec"]["harden"] == "adversarial"
    with pytest.raises(ConfigError, match="unknown --harden 'armour'"):
        wp.PruneSpec(harden="armour")
