"""The artist's render settings survive Export and Compare: every setting of the render, its
image format, colour management (Look and curve included), film, Cycles and EEVEE is the same
afterwards, also after a render fails midway. Motion blur and depth of field stay out of the
dataset and Compare's ground truth unless Keep Blur asks for them. EEVEE without a GPU is refused
before anything renders, or rendered with Cycles when Cycles Without a GPU asks for it."""

from __future__ import annotations

import re

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    FailingRenderer,
    RenderLog,
    configure_fast_render,
    export,
    read_all,
    scene_fingerprint,
)

from blender_nerf.compare.ground_truth import render_ground_truth  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import load_rgba  # noqa: E402
from blender_nerf.scene import blender_render, scene_io  # noqa: E402
from blender_nerf.scene.blender_render import SettingsSnapshot  # noqa: E402
from blender_nerf.scene.scene_io import SceneError  # noqa: E402
from blender_nerf.views import plan  # noqa: E402

ONE_VIEW = {"split_mode": "COUNT", "split_val_count": 0, "split_test_count": 0}
# settings an export changes, or that a careless restore loses: the snapshot must hold them all
COVERED = {
    "render.engine",
    "render.film_transparent",
    "render.use_border",
    "render.use_motion_blur",
    "render.filepath",
    "render.image_settings.file_format",
    "render.image_settings.quality",
    "view_settings.view_transform",
    "view_settings.look",
    "view_settings.exposure",
    "view_settings.use_curve_mapping",
    "display_settings.display_device",
    "cycles.samples",
    "cycles.film_exposure",
    "cycles.pixel_filter_type",
    "cycles.film_transparent_glass",
    "eevee.taa_render_samples",
}


def _artists_settings(scene) -> SettingsSnapshot:
    """An artist's scene: AgX with a Look, a curve, JPEG output, opaque film, a border, motion
    blur, their own film and sampling settings; returns the snapshot taken of them."""
    view = scene.view_settings
    view.view_transform, view.look = "AgX", "AgX - Punchy"
    view.exposure, view.gamma, view.use_curve_mapping = 0.5, 1.2, True
    render = scene.render
    render.film_transparent, render.use_border = False, True
    render.use_motion_blur, render.filepath = True, "//shots/artist_####"
    render.image_settings.file_format, render.image_settings.quality = "JPEG", 70
    scene.cycles.film_transparent_glass = not scene.cycles.film_transparent_glass
    scene.eevee.taa_render_samples = 7
    snapshot = SettingsSnapshot(scene)
    assert set(snapshot.values) >= COVERED, COVERED - set(snapshot.values)
    assert len(snapshot.values) > 300  # every setting, not a list of the ones we change
    return snapshot


def test_export_puts_back_every_render_setting_even_after_a_failure(scene, tmp_path, monkeypatch):
    before = _artists_settings(scene)
    fingerprint = scene_fingerprint(scene)
    assert export(scene, tmp_path / "done", rig_views=2, **ONE_VIEW) == {"FINISHED"}
    assert before.changed() == {}
    assert scene.view_settings.look == "AgX - Punchy"
    monkeypatch.setattr(blender_render, "render_still", FailingRenderer(fail_at=2))
    with pytest.raises(RuntimeError, match="Export failed at view 2 of 2"):
        export(scene, tmp_path / "failed")
    assert before.changed() == {} and scene_fingerprint(scene) == fingerprint


def _render_one_view(scene, folder, **settings):
    assert export(scene, folder, **settings) == {"FINISHED"}, scene.nerf.job_status
    (rgba,) = load_rgba(read_all(folder)["train"])
    return rgba


def _moving_cube_and_selected_camera(scene):
    """The cube moves fast through frame 1; the scene's camera alone is selected."""
    cube, camera = bpy.data.objects["Cube"], bpy.data.objects["Camera"]
    for frame, x in ((1, 0.0), (2, 3.0)):
        cube.location.x = x
        cube.keyframe_insert("location", frame=frame)
    scene.frame_set(1)
    bpy.ops.object.select_all(action="DESELECT")
    camera.select_set(True)
    return camera


def test_motion_blur_and_depth_of_field_stay_out_of_the_dataset_unless_kept(scene, tmp_path):
    configure_fast_render(scene, size=(16, 16), samples=4)
    camera = _moving_cube_and_selected_camera(scene)
    sharp = _render_one_view(scene, tmp_path / "sharp", camera_source="SELECTED", **ONE_VIEW)

    scene.render.use_motion_blur, scene.render.motion_blur_shutter = True, 1.0
    dof = camera.data.dof
    dof.use_dof, dof.focus_distance, dof.aperture_fstop = True, 40.0, 0.05  # focus far behind
    exported = _render_one_view(scene, tmp_path / "exported")
    assert np.abs(exported - sharp).max() <= 1 / 255 + 1e-6
    assert (
        "Rendered without motion blur and the depth of field of camera 'Camera': a NeRF learns "
        "sharp pictures taken in an instant (turn on Keep Blur to keep them)."
    ) in scene.nerf.job_status
    assert scene.render.use_motion_blur and dof.use_dof  # the scene keeps them

    scene.nerf.keep_blur = True
    blurred = _render_one_view(scene, tmp_path / "kept")
    assert np.abs(blurred - sharp).mean() > 0.02
    assert "Keep Blur" not in scene.nerf.job_status


def test_eevee_without_a_gpu_is_refused_before_rendering_or_rendered_with_cycles(
    scene, tmp_path, monkeypatch
):
    monkeypatch.setattr(blender_render, "has_gpu", lambda: False)  # a server without one
    scene.render.engine = "BLENDER_EEVEE"
    before = SettingsSnapshot(scene)
    advice = "EEVEE needs a GPU here; use Cycles (the export can switch it for you"
    with RenderLog() as log, pytest.raises(RuntimeError, match=re.escape(advice)):
        export(scene, tmp_path, rig_views=2, **ONE_VIEW)
    assert len(log) == 0 and not list(tmp_path.rglob("*.png"))
    assert before.changed() == {} and not scene.nerf.job_running
    assert scene.nerf.job_status.startswith(advice)  # the panel says it too

    scene.nerf.cycles_without_gpu = True
    with RenderLog() as log:
        assert export(scene, tmp_path) == {"FINISHED"}
    assert [r["engine"] for r in log.renders] == ["CYCLES", "CYCLES"]
    assert "Rendered with Cycles (with the scene's Cycles settings): EEVEE needs a GPU." in (
        scene.nerf.job_status
    )
    assert scene.render.engine == "BLENDER_EEVEE" and before.changed() == {}


@pytest.mark.skipif(not blender_render.has_gpu(), reason="EEVEE needs a GPU; Blender has none here")
def test_eevee_renders_where_there_is_a_gpu(scene, tmp_path):
    scene.render.engine = "BLENDER_EEVEE"
    scene.eevee.taa_render_samples = 1
    scene.render.resolution_x = scene.render.resolution_y = 16
    assert export(scene, tmp_path, rig_views=1) == {"FINISHED"}
    (rgba,) = load_rgba(read_all(tmp_path)["train"])
    assert rgba[0, 0, 3] == 0 and rgba[8, 8, 3] == 1.0


def test_compare_ground_truth_puts_back_every_setting_and_is_sharp(scene, tmp_path, monkeypatch):
    """Compare's part in Blender (its ground truth, rendered before the engine starts)."""
    configure_fast_render(scene, size=(16, 16), samples=4)
    camera = _moving_cube_and_selected_camera(scene)
    sharp = _render_one_view(scene, tmp_path / "sharp", camera_source="SELECTED", **ONE_VIEW)
    scene.render.motion_blur_shutter = 1.0
    dof = camera.data.dof
    dof.use_dof, dof.focus_distance, dof.aperture_fstop = True, 40.0, 0.05
    before = _artists_settings(scene)  # with motion blur on
    scene.nerf.render_source = "SELECTED"
    (shot,) = plan.plan_view_shots(bpy.context)
    notes = render_ground_truth(bpy.context, [shot], tmp_path / "gt", transparent=True, subject=[])
    assert before.changed() == {} and dof.use_dof
    gt = scene_io.read_image(tmp_path / "gt" / f"{shot.name}.png")
    assert np.abs(gt - sharp).max() <= 1 / 255 + 1e-6
    assert notes == [
        "Rendered without motion blur and the depth of field of camera 'Camera': a NeRF learns "
        "sharp pictures taken in an instant (turn on Keep Blur to keep them)."
    ]

    second = bpy.data.objects.new("Second", bpy.data.cameras.new("Second"))
    scene.collection.objects.link(second)
    second.matrix_world = camera.matrix_world
    second.select_set(True)
    shots = plan.plan_view_shots(bpy.context)
    monkeypatch.setattr(blender_render, "render_still", FailingRenderer(fail_at=2))
    with pytest.raises(RuntimeError, match=r"Render error \(Out of memory\)"):
        render_ground_truth(bpy.context, shots, tmp_path / "gt", transparent=True, subject=[])
    assert len(shots) == 2 and before.changed() == {} and dof.use_dof

    monkeypatch.setattr(blender_render, "has_gpu", lambda: False)
    scene.render.engine = "BLENDER_EEVEE"
    advice = "EEVEE needs a GPU here; use Cycles (Compare can switch it for you"
    with pytest.raises(SceneError, match=re.escape(advice)):
        render_ground_truth(bpy.context, shots, tmp_path / "gt", transparent=True, subject=[])
    assert scene.render.engine == "BLENDER_EEVEE"
