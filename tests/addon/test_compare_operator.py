"""Compare through the operator: Blender renders the ground truth of views the model trained on
(cameras made by Import Cameras from the training transforms), the numbers match
``nerf_engine eval`` on those views and beat a constant image, the report, images and training
curve land in the run folder and in Blender, and the scene is left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    RecordingLayout,
    scene_fingerprint,
    time_limit,
    use_trained_run,
)

from blender_nerf.jobs import process  # noqa: E402
from blender_nerf.nerf_engine.data.images import write_png  # noqa: E402
from blender_nerf.scene import scene_io  # noqa: E402
from blender_nerf.ui import panels_views  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(180):
        yield
    assert process.live_jobs() == []


def _engine(module, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", module, *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def _select_trained_views(scene, trained_run, names=("r_0", "r_1")) -> None:
    """Cameras of training views (Import Cameras of the training transforms), selected."""
    train = trained_run.dataset / "transforms_train.json"
    assert bpy.ops.nerf.import_cameras(filepath=str(train)) == {"FINISHED"}
    bpy.ops.object.select_all(action="DESELECT")
    for name in names:
        bpy.data.objects[name].select_set(True)
    scene.nerf.render_source = "SELECTED"


def _check_ground_truth(out, trained_run, names=("r_0", "r_1")) -> None:
    """Blender's ground truth is the training image again; the mask covers the cube."""
    for name in names:
        gt = scene_io.read_image(out / "ground_truth" / f"{name}.png")
        dataset_image = scene_io.read_image(trained_run.dataset / "train" / f"{name}.png")
        assert np.abs(gt - dataset_image).max() <= 1 / 255 + 1e-6
        mask = scene_io.read_image(out / "ground_truth" / f"{name}_mask.png")[..., 0] > 0.5
        assert mask.any() and np.mean(mask != (dataset_image[..., 3] > 0.5)) < 0.05


def _check_shown_in_blender(nerf, report, out) -> None:
    assert nerf.compare_psnr == pytest.approx(report["psnr"], abs=1e-4)
    assert nerf.compare_ssim_mask == pytest.approx(report["ssim_mask"], abs=1e-5)
    assert nerf.compare_views == 2 and nerf.compare_report == str(out / "report.json")
    assert nerf.job_status.startswith(f"Compared 2 view(s): PSNR {report['psnr']:.2f} dB")
    for image, name in ((nerf.compare_image, "side_by_side.png"),
                        (nerf.curve_image, "training_curve.png")):  # fmt: skip
        assert image is not None and Path(bpy.path.abspath(image.filepath)) == out / name
        assert image.size[0] > 200
    layout = RecordingLayout()
    panels_views.draw_compare(layout, bpy.context)
    assert ("label", f"PSNR {report['psnr']:.2f} dB") in layout.calls
    names = (nerf.compare_image.name, nerf.curve_image.name)  # labels where there is no icon
    shown = [c for c in layout.calls if c[0] == "template_icon" or c[1:] in ((n,) for n in names)]
    assert len(shown) == 2


def test_compare_trained_views_matches_eval_and_beats_a_constant_image(
    scene, trained_run, tmp_path
):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    _select_trained_views(scene, trained_run)
    before = scene_fingerprint(scene)
    assert bpy.ops.nerf.compare() == {"FINISHED"}, nerf.job_status
    assert scene_fingerprint(scene) == before
    out = trained_run.run / "compare"
    report = json.loads((out / "report.json").read_text())
    assert [v["name"] for v in report["views"]] == ["r_0", "r_1"]
    _check_ground_truth(out, trained_run)

    evaluated = _engine("nerf_engine", "eval", trained_run.run, "--split", "train",
                        "--max-views", 2, "--json", "--device", "cpu")  # fmt: skip
    for ours, theirs in zip(report["views"], evaluated["views"], strict=True):
        assert ours["name"] == theirs["name"]
        assert ours["psnr"] == pytest.approx(theirs["psnr"], abs=0.05)
        assert ours["ssim"] == pytest.approx(theirs["ssim"], abs=0.003)
    assert report["psnr"] == pytest.approx(evaluated["psnr"], abs=0.05)
    assert report["psnr"] > 15 and report["psnr_mask"] < report["psnr"]

    constant = tmp_path / "constant"
    constant.mkdir()
    for name in ("r_0", "r_1"):
        write_png(constant / f"{name}.png", np.full((24, 24, 4), 0.5, np.float32))
    args = ["--gt", out / "ground_truth", "--nerf", constant, "--out", tmp_path / "worse"]
    worse = _engine("nerf_engine", "compare", *args, "--run", trained_run.run, "--json")
    assert report["psnr"] > worse["psnr"] + 3
    _check_shown_in_blender(nerf, report, out)


def test_compare_of_an_empty_render_says_so_instead_of_a_score(scene, trained_run, tmp_path):
    """A camera that looks away from the subject: the NeRF render is empty, and Compare says so
    (a warning, no PSNR/SSIM) instead of headlining the score of two empty images."""
    from mathutils import Vector

    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    camera = scene.camera
    camera.rotation_euler = Vector(camera.location).to_track_quat("-Z", "Y").to_euler()  # away
    bpy.context.view_layer.update()
    assert bpy.ops.nerf.compare() == {"FINISHED"}, nerf.job_status
    report = json.loads((trained_run.run / "compare" / "report.json").read_text())
    assert report["n_views"] == 1 and report["empty_views"] == [report["views"][0]["name"]]
    assert report["psnr"] is None and report["ssim"] is None and report["n_scored"] == 0
    assert "empty in every one" in nerf.job_status and "PSNR" not in nerf.job_status
    assert nerf.compare_views == 0  # the panel shows no numbers
    layout = RecordingLayout()
    panels_views.draw_compare(layout, bpy.context)
    assert not any("PSNR" in str(call) for call in layout.calls)
