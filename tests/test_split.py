import numpy as np
import pytest

from wearprune.data.normalize import Normalizer
from wearprune.data.split import make_split, split_from_dict, subject_split
from wearprune.data.synthetic import make_synthetic
from wearprune.errors import ConfigError, DataError


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_subject_in_two_splits(seed):
    ds = make_synthetic(n_subjects=10)
    ds.test_subjects = None
    s = subject_split(ds, seed=seed)
    groups = [set(ds.subjects[idx]) for idx in (s.train, s.val, s.test)]
    assert not groups[0] & groups[1] and not groups[0] & groups[2] and not groups[1] & groups[2]
    assert len(s.train) + len(s.val) + len(s.test) == len(ds)
    assert set(s.test_subjects) == groups[2]


def test_standard_test_group_is_used():
    ds = make_synthetic(n_subjects=6)
    s = subject_split(ds)
    assert s.test_subjects == ["s5"] and set(ds.subjects[s.test]) == {"s5"}


def test_single_training_subject_falls_back_to_window_validation():
    ds = make_synthetic(n_subjects=2)
    s = subject_split(ds)
    assert len(s.val) > 0 and "windows of the training subjects" in s.name
    assert not set(s.val) & set(s.train)


def test_unknown_test_subject_is_clear():
    with pytest.raises(DataError, match="not in the data"):
        subject_split(make_synthetic(), test_subjects=["zz"])


def test_normaliser_uses_training_statistics_only():
    ds = make_synthetic()
    s = subject_split(ds)
    norm = Normalizer.fit(ds.X[s.train], ds.layout)
    z = norm.transform(ds.X[s.train])
    assert np.allclose(z.mean(axis=(0, 2)), 0, atol=1e-4) and np.allclose(z.std(axis=(0, 2)), 1, atol=1e-3)
    back = Normalizer.from_dict(norm.to_dict())
    assert np.array_equal(back.transform(ds.X), norm.transform(ds.X))


# -- split modes: subject, predefined, random -----------------------------------------------------
def _with_sides(ds, sides):
    ds.split_labels = np.asarray(sides)
    return ds


def test_make_split_subject_mode_never_shares_a_subject():
    ds = make_synthetic(n_subjects=10)
    ds.test_subjects = None
    for seed in range(4):
        s = make_split(ds, "subject", seed=seed)
        sides = [set(ds.subjects[idx]) for idx in (s.train, s.val, s.test)]
        assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
        assert s.mode == "subject" and s.warning is None and s.to_dict()["mode"] == "subject"
        again = split_from_dict(ds, s.to_dict(), seed)
        assert all(np.array_equal(a, b) for a, b in zip((s.train, s.val, s.test), (again.train, again.val, again.test)))


def test_make_split_subject_mode_is_subject_split():
    ds = make_synthetic(n_subjects=6)
    a, b = make_split(ds, seed=3), subject_split(ds, seed=3)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train) and a.name == b.name


def test_one_subject_points_at_the_other_split_modes():
    ds = make_synthetic(n_subjects=1)
    ds.test_subjects = None
    with pytest.raises(DataError, match="--split random.*--split predefined|--split predefined.*--split random"):
        make_split(ds, "subject")


def test_predefined_split_follows_the_labels():
    ds = make_synthetic(n_subjects=1, per_subject=60)
    ds.test_subjects = None
    sides = np.array(["train"] * 36 + ["val"] * 12 + ["test"] * 12)
    _with_sides(ds, sides)
    s = make_split(ds, "predefined")
    assert s.train.tolist() == list(range(36)) and s.val.tolist() == list(range(36, 48))
    assert s.test.tolist() == list(range(48, 60))
    assert s.mode == "predefined" and "predefined" in s.name and s.to_dict()["mode"] == "predefined"
    again = split_from_dict(ds, s.to_dict(), seed=0)
    assert np.array_equal(again.test, s.test) and np.array_equal(again.val, s.val)


def test_predefined_split_without_val_holds_out_training_windows():
    ds = make_synthetic(n_subjects=1, per_subject=60)
    _with_sides(ds, np.array(["train"] * 45 + ["test"] * 15))
    s = make_split(ds, "predefined", seed=1)
    assert len(s.val) > 0 and not set(s.val) & set(s.train) and set(s.val) | set(s.train) == set(range(45))
    assert s.test.tolist() == list(range(45, 60)) and "validation" in s.name


def test_predefined_split_errors():
    ds = make_synthetic(n_subjects=2, per_subject=30)
    ds.test_subjects = None
    with pytest.raises(DataError, match="no split labels.*split.*--split subject"):
        make_split(ds, "predefined")
    _with_sides(ds, np.array(["train"] * 60))
    with pytest.raises(DataError, match="no test windows"):
        make_split(ds, "predefined")
    _with_sides(ds, np.array(["test"] * 30 + ["val"] * 30))
    with pytest.raises(DataError, match="no train windows"):
        make_split(ds, "predefined")


def test_predefined_split_warns_when_a_subject_is_on_both_sides():
    ds = make_synthetic(n_subjects=3, per_subject=20)
    _with_sides(ds, np.array((["train"] * 15 + ["test"] * 5) * 3))
    s = make_split(ds, "predefined")
    assert s.warning and "both sides" in s.warning


def test_random_split_is_stratified_and_warns():
    ds = make_synthetic(n_subjects=1, per_subject=200)
    ds.test_subjects = None
    s = make_split(ds, "random", seed=5)
    parts = [set(s.train), set(s.val), set(s.test)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert len(s.train) + len(s.val) + len(s.test) == len(ds)
    for c in range(ds.n_classes):  # every class on every side, in about the right share
        share = (ds.y[s.test] == c).mean()
        assert abs(share - (ds.y == c).mean()) < 0.05
    assert s.mode == "random" and "optimistic" in s.warning and "same person" in s.warning
    d = s.to_dict()
    assert d["mode"] == "random" and d["warning"] == s.warning
    again = split_from_dict(ds, d, seed=5)
    assert np.array_equal(again.test, s.test) and np.array_equal(again.train, s.train)
    other = make_split(ds, "random", seed=6)
    assert not np.array_equal(other.test, s.test)


def test_random_split_regression():
    ds = make_synthetic(task="regression", n_subjects=2, per_subject=50)
    s = make_split(ds, "random", seed=0)
    assert len(s.test) == 25 and len(s.train) + len(s.val) == 75 and s.warning


def test_unknown_split_mode_and_test_subjects_outside_subject_mode():
    ds = make_synthetic()
    with pytest.raises(ConfigError, match="unknown split 'kfold'.*subject, predefined or random"):
        make_split(ds, "kfold")
    with pytest.raises(ConfigError, match="test subjects"):
        make_split(ds, "random", test_subjects=["s1"])


def test_split_from_dict_of_an_old_run_is_subject_wise():
    ds = make_synthetic(n_subjects=6)
    s = split_from_dict(ds, {"name": "x", "test_subjects": ["s2"], "val_subjects": [], "sizes": {}}, seed=0)
    assert s.mode == "subject" and set(ds.subjects[s.test]) == {"s2"}
    with pytest.raises(ConfigError, match="unknown split"):
        split_from_dict(ds, {"mode": "weird"}, seed=0)


def test_basicmotions_predefined_split_matches_its_subject_split():
    from wearprune.data.loaders.basicmotions import load_basicmotions

    try:
        ds = load_basicmotions()
    except DataError as e:
        pytest.skip(str(e))
    a, b = make_split(ds, "subject"), make_split(ds, "predefined")
    assert a.test.tolist() == b.test.tolist() == list(range(40, 80))
    assert a.train.tolist() == b.train.tolist() and a.val.tolist() == b.val.tolist()
    assert (ds.split_labels[:40] == "train").all() and (ds.split_labels[40:] == "test").all()


def test_prepare_data_with_split_mode_and_rebuild_from_config():
    from wearprune.data.prepare import prepare_data, prepare_from_config

    ds = make_synthetic(n_subjects=1, per_subject=120)
    ds.test_subjects = None
    p = prepare_data(ds, split="random", seed=2)
    assert p.split.mode == "random" and len(p.test) == 30
    config = {"data": {"name": "synthetic", "in_memory": True}, "split": p.split.to_dict(),
              "normalizer": p.normalizer.to_dict(), "train": {"seed": 2}}
    q = prepare_from_config(config, data=ds)
    assert np.array_equal(q.split.test, p.split.test) and np.array_equal(q.test.X, p.test.X)
