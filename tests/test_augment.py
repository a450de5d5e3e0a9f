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


def test_axis_triples_from_channel_names():
    from wearprune.data.augment import axis_triples

    assert axis_triples(["acc_x", "acc_y", "acc_z"]) == [0]
    assert axis_triples(["ppg1", "ppg2", "acc_x", "acc_y", "acc_z"]) == [2]  # TROIKA
    assert axis_triples(["ax", "ay", "az", "gyroX", "gyroY", "gyroZ"]) == [0, 3]
    assert axis_triples(["acc_x", "gyro_y", "acc_z"]) == []  # one prefix per triple
    assert axis_triples(["ch0", "ch1", "ch2"]) == axis_triples(["MLII", "V1/other", "pre_rr"]) == []


def test_auto_picks_per_modality_and_rotates_only_the_motion_axes():
    from wearprune.data.augment import augment, for_data

    assert for_data(["auto"], "window", ["ppg1", "ppg2", "acc_x", "acc_y", "acc_z"]) == (["scaling", "rotation"], [2])
    assert for_data(["auto"], "window", ["MLII", "V1/other", "pre_rr"]) == ([], None)  # ECG: none
    assert for_data(["auto"], "features", ["x", "y", "z"]) == ([], None)
    assert for_data(["rotation"], "window", ["ch0", "ch1", "ch2"]) == (["rotation"], None)  # every triple, as before
    x = torch.randn(8, 5, 40)
    out = augment(x, ["rotation"], torch.Generator().manual_seed(0), [2])
    assert torch.equal(out[:, :2], x[:, :2])  # the PPG channels are not mixed into the accelerometer
    assert not torch.allclose(out[:, 2:], x[:, 2:])
    assert torch.allclose(out[:, 2:].norm(dim=1), x[:, 2:].norm(dim=1), atol=1e-5)  # a rotation keeps the norm


def test_training_records_the_augmentation_it_applied():
    from wearprune.data.synthetic import make_synthetic
    from wearprune.train import TrainConfig
    from wearprune.verbs import train

    ds = make_synthetic(n_subjects=4, per_subject=10, length=32)
    ds.channel_names = ["acc_x", "acc_y", "acc_z"]
    run = train(ds, "cnn1d", None, config=TrainConfig(epochs=1, augment=["auto"]))
    assert run.metrics["history"]["augment"] == ["scaling", "rotation"]
    assert run.config["train"]["augment"] == ["auto"]
