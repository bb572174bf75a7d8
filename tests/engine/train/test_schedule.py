"""The depth loss's weight over a run: decayed over the run's length, or by a half-life in steps."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from nerf_engine.config import preset, validate, with_overrides
from nerf_engine.train.schedule import depth_loss_weight


def test_over_the_run_the_weight_reaches_its_floor_at_the_end_of_any_budget():
    config = replace(preset("preview"), steps=0, max_seconds=90.0)
    assert depth_loss_weight(config, 0, 0.0) == pytest.approx(config.depth_loss)
    assert depth_loss_weight(config, 50, 0.5) == pytest.approx(
        (config.depth_loss * config.depth_loss_final) ** 0.5
    )  # halfway in log: the geometric mean
    for step in (100, 100_000):  # the clock, not the step count, ends the schedule
        assert depth_loss_weight(config, step, 1.0) == pytest.approx(config.depth_loss_final)


def test_a_half_life_halves_the_weight_per_steps_whatever_the_budget():
    config = with_overrides(preset("preview"), {"depth_loss_half_life": 1000})
    validate(config)
    start, floor = config.depth_loss, config.depth_loss_final
    for time_fraction in (0.0, 0.3, 1.0):  # the budget's share does not count
        assert depth_loss_weight(config, 0, time_fraction) == pytest.approx(start)
        assert depth_loss_weight(config, 1000, time_fraction) == pytest.approx(start / 2)
        assert depth_loss_weight(config, 2500, time_fraction) == pytest.approx(start / 2**2.5)
    weights = [depth_loss_weight(config, step) for step in range(0, 20_000, 500)]
    assert all(a >= b for a, b in itertools.pairwise(weights))  # never rises
    assert weights[-1] == pytest.approx(floor) and min(weights) == pytest.approx(floor)


def test_depth_off_has_no_weight_and_a_negative_half_life_is_refused():
    off = with_overrides(preset("preview"), {"depth_loss": 0, "depth_loss_half_life": 1000})
    assert depth_loss_weight(off, 0) == 0.0 and depth_loss_weight(off, 5000) == 0.0
    with pytest.raises(ValueError, match="depth_loss_half_life"):
        validate(with_overrides(preset("preview"), {"depth_loss_half_life": -5}))
