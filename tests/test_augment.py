import torch

from wearprune.data.augment import augment, rotation, time_warp


def test_augmentations_keep_shape_and_change_values():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 50)
    for name in ("jitter", "scaling", "rotation", "time_warp"):
        y = augment(x, [name], g)
        assert y.shape == x.shape and not torch.allclose(x, y)


def test_rotation_preserves_vector_norms():
    x = torch.randn(3, 3, 40)
    y = rotation(x, g=torch.Generator().manual_seed(1))
    assert torch.allclose(x.norm(dim=1), y.norm(dim=1), atol=1e-5)


def test_time_warp_of_a_constant_is_the_constant():
    x = torch.full((2, 3, 30), 7.0)
    assert torch.allclose(time_warp(x, g=torch.Generator().manual_seed(0)), x)


def test_features_are_not_augmented():
    x = torch.randn(4, 10)
    assert augment(x, ["jitter"]) is x
