"""Benchmark configurations by name: a preset with switches and settings, e.g.
``preview+noaccel``, ``paper+accel+compile``, ``fast+random_background=false+lr=2e-3``."""

from __future__ import annotations

from dataclasses import replace

from ..config import NO_ACCEL, TrainConfig, preset, with_overrides

ACCEL = {
    "sampling.use_aabb": True,
    "sampling.occupancy_resolution": 128,
    "sampling.early_stop": 1e-4,
}
SWITCHES = {
    "accel": ACCEL,
    "noaccel": NO_ACCEL,
    "compile": {"compile": True},
    "unfused": {"fused_layers": False},
    # the clock, not the preset's step count, ends training (as `train --max-seconds S` does):
    # what a time budget buys when the preset alone would stop sooner
    "clock": {"steps": 0},
}


def variant(name: str, precision: str, device: str) -> TrainConfig:
    """A preset with switches and settings: ``paper+accel``, ``preview+noaccel+compile``,
    ``preview+random_background=false+lr=2e-3`` (any ``--set`` key; ';' separates the values of
    a tuple: ``fast+model.plane_resolutions=32;64``). The name is the configuration's label."""
    base, *extras = name.strip().split("+")
    overrides = {"mixed_precision": precision, "device": device}
    for extra in extras:
        key, is_setting, value = extra.partition("=")
        if is_setting:
            overrides[key] = value.replace(";", ",")
        elif extra in SWITCHES:
            overrides.update(SWITCHES[extra])
        else:
            raise ValueError(
                f"unknown switch +{extra} in {name!r}; known: {', '.join(SWITCHES)}, or KEY=VALUE"
            )
    return replace(with_overrides(preset(base), overrides), preset=name.strip())
