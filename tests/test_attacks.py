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
