import json

import pytest

from wearprune.errors import ConfigError
from wearprune.prune.schedule import CubicSchedule, IterativeSchedule, OneShot, schedule_from_dict


def test_cubic_endpoints_and_formula():
    s = CubicSchedule(target=0.8, begin_step=100, end_step=200, initial=0.1)
    assert s.sparsity_at(0) == 0.1 and s.sparsity_at(100) == 0.1  # constant before the start
    assert s.sparsity_at(200) == 0.8 and s.sparsity_at(10_000) == 0.8  # and after the end
    assert s.sparsity_at(150) == pytest.approx(0.8 + (0.1 - 0.8) * 0.5**3)


def test_cubic_is_monotone_and_front_loaded():
    s = CubicSchedule(target=0.9, begin_step=0, end_step=1000)
    values = [s.sparsity_at(t) for t in range(-5, 1100)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    # cubic: more than half the pruning happens in the first quarter of the window
    assert s.sparsity_at(250) > 0.9 / 2


def test_cubic_frequency_holds_values_between_updates():
    s = CubicSchedule(target=0.5, begin_step=10, end_step=55, frequency=10)
    assert s.update_steps() == [10, 20, 30, 40, 50, 55]  # the last jump lands on end_step
    assert [t for t in range(0, 70) if s.should_update(t)] == s.update_steps()
    for t in range(20, 30):
        assert s.sparsity_at(t) == s.sparsity_at(20)
    assert s.sparsity_at(30) > s.sparsity_at(29)
    assert s.sparsity_at(54) < 0.5 == s.sparsity_at(55)


def test_cubic_with_no_window_prunes_at_once():
    s = CubicSchedule(target=0.6, begin_step=5, end_step=5)
    assert s.sparsity_at(4) == 0.0 and s.sparsity_at(5) == 0.6 and s.update_steps() == [5]


def test_one_shot():
    s = OneShot(0.7)
    assert s.sparsity_at(0) == s.sparsity_at(99) == 0.7
    assert s.should_update(0) and not s.should_update(1)


def test_iterative_ratios_reach_target_geometrically():
    s = IterativeSchedule(target=0.9, cycles=4)
    ratios = s.ratios()
    assert len(ratios) == 4 and ratios[-1] == 0.9 and s.sparsity_at(0) == 0.0
    kept = [1.0] + [1 - r for r in ratios]
    shares = [b / a for a, b in zip(kept, kept[1:])]  # each cycle keeps the same share of what remains
    assert shares == pytest.approx([shares[0]] * 4)
    assert 1 - shares[0] == pytest.approx(s.fraction_per_cycle)
    assert all(a < b for a, b in zip(ratios, ratios[1:]))
    assert IterativeSchedule(0.5, 1).ratios() == [0.5]


@pytest.mark.parametrize("schedule", [
    OneShot(0.5),
    CubicSchedule(0.75, 3, 40, frequency=4, initial=0.05),
    IterativeSchedule(0.875, 3),
])
def test_round_trip_through_json(schedule):
    d = json.loads(json.dumps(schedule.to_dict()))
    again = schedule_from_dict(d)
    assert again == schedule and type(again) is type(schedule)
    assert type(schedule).from_dict(d) == schedule
    assert [again.sparsity_at(t) for t in range(50)] == [schedule.sparsity_at(t) for t in range(50)]


def test_numpy_values_become_json_safe():
    np = pytest.importorskip("numpy")
    s = CubicSchedule(np.float32(0.5), 0, 10)
    json.dumps(s.to_dict())


@pytest.mark.parametrize("bad", [
    [1, 2],
    {},
    {"kind": "exponential", "target": 0.5},
    {"kind": ["cubic"]},
    {"kind": "one_shot"},
    {"kind": "one_shot", "target": 1.0},
    {"kind": "one_shot", "target": "0.5"},
    {"kind": "one_shot", "target": 0.5, "steps": 3},
    {"kind": "cubic", "target": 0.5, "begin_step": 10, "end_step": 5},
    {"kind": "cubic", "target": 0.5, "begin_step": 0, "end_step": 5, "frequency": 0},
    {"kind": "cubic", "target": 0.5, "begin_step": 0.5, "end_step": 5},
    {"kind": "cubic", "target": 0.5, "begin_step": 0, "end_step": 5, "initial": 0.6},
    {"kind": "iterative", "target": 0.5, "cycles": 0},
    {"kind": "iterative", "target": -0.1, "cycles": 2},
    {"kind": "iterative", "target": 0.5, "cycles": True},
])
def test_bad_dicts_raise_one_line_config_error(bad):
    with pytest.raises(ConfigError) as err:
        schedule_from_dict(bad)
    assert "\n" not in str(err.value) and str(err.value)


def test_from_dict_refuses_another_kind():
    with pytest.raises(ConfigError, match="expected a 'cubic' schedule"):
        CubicSchedule.from_dict(OneShot(0.5).to_dict())
