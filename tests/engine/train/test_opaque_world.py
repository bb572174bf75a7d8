"""Opaque images (Film > Transparent off: the world rendered behind the subject) train with the
world learned as an environment behind the field; images with transparency train as before."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from engine_helpers import tiny_config

from nerf_engine.checkpoint import load_run
from nerf_engine.config import with_overrides
from nerf_engine.eval.evaluate import evaluate_run
from nerf_engine.nerf.environment import OPAQUE_NOTE
from nerf_engine.tools.toy_scene import make_toy_dataset
from nerf_engine.train.trainer import Trainer, train

STEPS = 150


@pytest.fixture(scope="module")
def opaque_world(tmp_path_factory):
    """The toy scene rendered opaque with an HDRI-like sky behind it, 16×16 pixels."""
    return make_toy_dataset(
        tmp_path_factory.mktemp("opaque") / "data", size=(16, 16), n_train=16, n_val=1,
        n_test=3, world=True,
    )  # fmt: skip


def _config(**overrides):
    base = {"steps": STEPS, "eval_views": 3, "log_every": 50, "preview_every": 1000,
            "checkpoint_every": 1000, "precrop_steps": 0, "batch_rays": 128}  # fmt: skip
    return tiny_config(**{**base, **overrides})


def test_an_opaque_dataset_trains_clearly_better_with_the_environment(opaque_world, tmp_path):
    with_world = train(_config(), opaque_world, tmp_path / "world")  # "auto": opaque -> on
    without = train(_config(**{"model.environment": "off"}), opaque_world, tmp_path / "none")
    print(f"test PSNR after {STEPS} steps: {with_world.psnr:.2f} dB with the environment, "
          f"{without.psnr:.2f} dB without")  # fmt: skip
    assert with_world.psnr > without.psnr + 3.0

    # saved in the checkpoint and used when the run is loaded: the same numbers again
    run = load_run(tmp_path / "world", "cpu")
    assert run.config.model.environment == "on" and run.model.environment is not None
    assert evaluate_run(tmp_path / "world", max_views=3, device="cpu")["psnr"] == pytest.approx(
        with_world.psnr, abs=1e-4
    )
    assert load_run(tmp_path / "none", "cpu").model.environment is None
    events = (tmp_path / "world" / "events.jsonl").read_text()
    assert OPAQUE_NOTE.split(":")[0] in events  # the user is told why

    # resumable: the map's optimizer state comes back, and it keeps learning
    before = [level.detach().clone() for level in run.model.environment.levels]
    resumed = train(_config(steps=STEPS + 10), opaque_world, tmp_path / "world", resume=True)
    assert resumed.step == STEPS + 10
    after = load_run(tmp_path / "world", "cpu").model.environment.levels
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_images_with_transparency_train_without_an_environment(toy_dataset, tmp_path):
    """RGBA datasets keep today's training exactly: no environment, the random background,
    the same parameter groups."""
    config = tiny_config()
    trainer = Trainer(config, str(toy_dataset), tmp_path / "run")
    assert trainer.model.environment is None and len(trainer.optimizer.param_groups) == 1
    assert trainer.config == replace(config, model=replace(config.model, environment="off"))
    assert OPAQUE_NOTE not in trainer.notes
    forced = Trainer(with_overrides(config, {"model.environment": "on"}), str(toy_dataset),
                     tmp_path / "forced")  # fmt: skip
    assert forced.model.environment is not None and len(forced.optimizer.param_groups) == 2
