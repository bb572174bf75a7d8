"""Training with depth maps: the same steps give a lower depth error on held-out views than
training without them (``depth_loss=0``), and empty space is skipped from the first step."""

from __future__ import annotations

import pytest
from engine_helpers import tiny_config

from nerf_engine.data.dataset import read_split
from nerf_engine.eval.evaluate import evaluate_views
from nerf_engine.tools.toy_scene import make_toy_dataset
from nerf_engine.train.trainer import Trainer


@pytest.fixture(scope="module")
def toy_with_depth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_with_depth") / "data"
    return make_toy_dataset(folder, size=(16, 16), n_train=12, n_val=1, n_test=2, depth=True)


def train_and_measure(dataset, run, steps: int, **overrides) -> tuple[float, Trainer]:
    config = tiny_config(
        steps=steps, batch_rays=256, precrop_steps=0, **{"sampling.occupancy_resolution": 32},
        **overrides,
    )  # fmt: skip
    trainer = Trainer(config, str(dataset), run)
    for _ in range(steps):
        trainer.step()
    report = evaluate_views(trainer.renderer, read_split(dataset, "test"))
    return report["depth_error"], trainer


def test_depth_maps_give_a_lower_depth_error_in_the_same_steps(toy_with_depth, tmp_path):
    with_depth, trainer = train_and_measure(toy_with_depth, tmp_path / "a", 150)
    without, plain = train_and_measure(toy_with_depth, tmp_path / "b", 150, depth_loss=0)
    assert with_depth < 0.7 * without, (with_depth, without)
    # the grid started from the depth maps (skipping from step 0); without them it waits
    assert trainer.grid_seeded and not plain.grid_seeded
    assert trainer.model.occupancy.occupied_fraction() < 0.5
