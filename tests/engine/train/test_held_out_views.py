"""Field case 01: a BlenderNeRF-style dataset lists test cameras whose images were never rendered.
Held-out splits only serve previews and metrics: training goes on, the preview comes from a view
that has an image, one warning says what was left out; rendering the test cameras still works."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from engine_helpers import tiny_config

from nerf_engine.data.dataset import read_split
from nerf_engine.eval.renderer import frames_to_render
from nerf_engine.tools.toy_scene import make_toy_dataset
from nerf_engine.train.trainer import train


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A toy dataset whose train, val and test views all have images (16×16)."""
    return make_toy_dataset(
        tmp_path_factory.mktemp("held_out") / "data", size=(16, 16), n_train=6, n_val=2, n_test=3
    )


def copy_without(rendered, tmp_path, *, drop: tuple[str, ...], keep_test: int = 0):
    """The dataset with the val split removed and test images deleted (all but ``keep_test``)."""
    root = tmp_path / "data"
    shutil.copytree(rendered, root)
    for name in drop:
        (root / f"transforms_{name}.json").unlink()
        shutil.rmtree(root / name)
    for i, image in enumerate(sorted((root / "test").glob("*.png"))):
        if i >= keep_test:
            image.unlink()
    return root


def warnings_of(run):
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return [e["message"] for e in events if e["event"] == "warning"], events


def test_a_test_split_without_images_does_not_stop_training(rendered, tmp_path):
    """The case's right value: training runs, the preview is a training view, one warning says the
    test views have no images, and no metrics are claimed."""
    root = copy_without(rendered, tmp_path, drop=("val",))
    result = train(tiny_config(), root, tmp_path / "run")
    assert result.stopped == "completed" and result.step == 10
    warnings, events = warnings_of(tmp_path / "run")
    (warning,) = warnings
    assert (
        "transforms_test.json" in warning and "none of the 3 held-out views has an image" in warning
    )
    assert result.psnr is None and not (tmp_path / "run" / "metrics.json").exists()
    assert any(e["event"] == "preview" for e in events)


def test_some_test_images_missing_measures_the_others(rendered, tmp_path):
    root = copy_without(rendered, tmp_path, drop=("val",), keep_test=2)
    result = train(tiny_config(eval_views=5), root, tmp_path / "run")
    (warning,) = warnings_of(tmp_path / "run")[0]
    assert "1 of the 3 held-out views have no image" in warning
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_views"] == 2 and result.psnr == pytest.approx(metrics["psnr"])


def test_val_without_images_previews_a_test_view(rendered, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(rendered, root)
    shutil.rmtree(root / "val")
    train(tiny_config(), root, tmp_path / "run")
    (warning,) = warnings_of(tmp_path / "run")[0]
    assert "transforms_val.json" in warning
    assert (tmp_path / "run" / "metrics.json").is_file()  # the test split is complete


def test_test_cameras_without_images_can_still_be_rendered(rendered, tmp_path):
    root = copy_without(rendered, tmp_path, drop=("val",))
    frames = frames_to_render(SimpleNamespace(dataset_dir=str(root)), None, "test")
    assert len(frames) == 3 and all(f.image_path is None for f in frames)
    assert frames[0].intrinsics == read_split(rendered, "test").frames[0].intrinsics
