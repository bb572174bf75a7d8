"""Engine fixtures: small procedural datasets, made once per test session."""

from __future__ import annotations

import pytest

from nerf_engine.tools.toy_scene import make_toy_dataset


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory):
    """The toy scene (textured spheres on a wide flat ground disc), 40×40 pixels, with bounds."""
    return make_toy_dataset(
        tmp_path_factory.mktemp("toy") / "data", size=(40, 40), n_train=30, n_val=1, n_test=3
    )


@pytest.fixture(scope="session")
def toy_dataset_no_bounds(tmp_path_factory):
    """The same scene written like the original NeRF-synthetic files: no aabb, near or far."""
    return make_toy_dataset(
        tmp_path_factory.mktemp("toy_nb") / "data",
        size=(40, 40),
        n_train=30,
        n_val=1,
        n_test=3,
        write_bounds=False,
    )


@pytest.fixture(scope="session")
def preview_run(toy_dataset, tmp_path_factory):
    """A short `preview` training run on the toy scene (about 30 s), shared by the tests that need
    a trained model. Returns (run folder, TrainResult)."""
    from nerf_engine.config import preset, with_overrides
    from nerf_engine.train.trainer import train

    config = with_overrides(
        preset("preview"),
        {"steps": 400, "batch_rays": 512, "eval_views": 3, "preview_every": 200, "device": "cpu"},
    )
    run = tmp_path_factory.mktemp("preview") / "run"
    return run, train(config, toy_dataset, run)
