import numpy as np
import pytest

from wearprune.data.normalize import Normalizer
from wearprune.data.split import subject_split
from wearprune.data.synthetic import make_synthetic
from wearprune.errors import DataError


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
