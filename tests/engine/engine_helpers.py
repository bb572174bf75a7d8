"""Helpers shared by engine tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from nerf_engine.config import preset, with_overrides


def tiny_config(**overrides):
    """A seconds-long configuration: same algorithm, tiny sizes."""
    base = {
        "model.depth": 2,
        "model.width": 32,
        "model.view_width": 16,
        "model.skip_layer": None,
        "sampling.n_coarse": 8,
        "sampling.n_fine": 8,
        "batch_rays": 64,
        "steps": 10,
        "log_every": 5,
        "preview_every": 5,
        "checkpoint_every": 5,
        "preview_max_side": 16,
        "eval_views": 1,
        "precrop_steps": 3,
        "device": "cpu",
    }
    base.update(overrides)
    return with_overrides(preset("preview"), base)
