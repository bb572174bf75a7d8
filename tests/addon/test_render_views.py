"""Render Views with the real engine: the active camera, the selected cameras (each with its own
lens), an animation; exact intrinsics at the scene's size (aspect, shift, percentage); the
timer path's progress and Cancel; the Render and Compare panels."""

from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    RecordingLayout,
    blender_pixels,
    engine_children,
    scene_fingerprint,
    time_limit,
    use_trained_run,
)

from blender_nerf.jobs import process, watcher  # noqa: E402
from blender_nerf.jobs.engine_job import EngineJob  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import read_transforms  # noqa: E402
from blender_nerf.scene import scene_io  # noqa: E402
from blender_nerf.ui import panels, panels_views  # noqa: E402
from blender_nerf.views import plan, render_views  # noqa: E402
from blender_nerf.views.plan import VIEWS_FILE  # noqa: E402

LIMIT_S = 120


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(LIMIT_S):
        yield
    assert process.live_jobs() == [], "an engine process outlived its test"


def _cameras(render_dir):
    return read_transforms(render_dir / "cameras.json", require_images=False).frames


def _alpha_centroid(path):
    alpha = scene_io.read_image(path)[..., 3]
    ys, xs = np.mgrid[: alpha.shape[0], : alpha.shape[1]]
    return np.array([(xs * alpha).sum(), (ys * alpha).sum()]) / alpha.sum() + 0.5


def test_active_camera_with_shift_aspect_and_percentage(scene, trained_run, tmp_path):
    out = tmp_path / "render"
    nerf = use_trained_run(scene, trained_run, out)
    render, cam = scene.render, scene.camera.data
    render.resolution_x, render.resolution_y, render.resolution_percentage = 40, 25, 80
    cam.shift_x, cam.shift_y = 0.05, -0.08
    nerf.render_depth = True
    before = scene_fingerprint(scene)

    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    assert scene_fingerprint(scene) == before
    assert not nerf.job_running and nerf.job_progress == 1.0
    assert nerf.job_status.startswith("Rendered 1 view of the NeRF at step 300 into")
    (frame,) = _cameras(out)
    expected = scene_io.camera_intrinsics(scene.camera, scene, (32, 20))
    assert frame.intrinsics == expected
    assert np.allclose(frame.camera_to_world, scene_io.camera_to_world(scene.camera))
    rgba = scene_io.read_image(out / "Camera.png")
    assert rgba.shape == (20, 32, 4)
    assert rgba[..., 3].max() > 0.9 and rgba[..., 3].min() < 0.1  # the cube, over nothing
    manifest = json.loads((out / "render.json").read_text())
    assert manifest["views"][0]["depth"] == "Camera_depth.png" and manifest["step"] == 300
    views = json.loads((out / VIEWS_FILE).read_text())["views"]
    assert views == [
        {
            "name": "Camera",
            "image": "Camera.png",
            "camera": "Camera",
            "frame": None,
            "w": 32,
            "h": 20,
        }
    ]
    # the NeRF's cube sits where Blender projects the cube, shift and aspect included
    (centre,) = blender_pixels(scene, scene.camera, [(0.0, 0.0, 0.0)], 32, 20)
    assert np.linalg.norm(_alpha_centroid(out / "Camera.png") - centre) < 1.5
    assert nerf.render_image is not None and tuple(nerf.render_image.size) == (32, 20)


def test_selected_cameras_each_with_its_own_lens(scene, trained_run, tmp_path):
    out = tmp_path / "render"
    nerf = use_trained_run(scene, trained_run, out)
    camera = scene.camera
    other = camera.copy()
    other.data = camera.data.copy()
    other.name = "Close up.2"
    other.data.lens, other.data.shift_x = 70.0, 0.1
    scene.collection.objects.link(other)
    bpy.ops.object.select_all(action="DESELECT")
    camera.select_set(True)
    other.select_set(True)
    nerf.render_source = "SELECTED"

    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    frames = _cameras(out)
    assert [f.file_path for f in frames] == ["Camera", "Close_up_2"]
    for ob, frame in zip((camera, other), frames, strict=True):
        assert frame.intrinsics == scene_io.camera_intrinsics(ob, scene, (24, 24))
        assert (out / f"{frame.file_path}.png").is_file()
    assert frames[1].intrinsics.fl_x > frames[0].intrinsics.fl_x
    views = json.loads((out / VIEWS_FILE).read_text())["views"]
    assert [v["camera"] for v in views] == ["Camera", "Close up.2"]


def test_animation_renders_every_frame_and_keeps_the_current_one(scene, trained_run, tmp_path):
    out = tmp_path / "render"
    nerf = use_trained_run(scene, trained_run, out)
    camera = scene.camera
    start = camera.location.copy()
    camera.keyframe_insert("location", frame=1)
    camera.location = start * 1.1
    camera.keyframe_insert("location", frame=3)
    scene.frame_start, scene.frame_end = 1, 3
    scene.frame_set(2)
    nerf.render_source = "ANIMATION"

    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    assert scene.frame_current == 2
    frames = _cameras(out)
    assert [f.file_path for f in frames] == ["Camera_0001", "Camera_0002", "Camera_0003"]
    assert np.allclose(frames[0].camera_to_world[:3, 3], start)
    assert np.allclose(frames[2].camera_to_world[:3, 3], start * 1.1)
    views = json.loads((out / VIEWS_FILE).read_text())["views"]
    assert [v["frame"] for v in views] == [1, 2, 3]

    nerf.render_use_scene_range = False
    nerf.render_frame_start, nerf.render_frame_end, nerf.render_frame_step = 1, 3, 2
    assert bpy.ops.nerf.render_views() == {"FINISHED"}
    assert [f.file_path for f in _cameras(out)] == ["Camera_0001", "Camera_0003"]


def _tick_until(condition, seconds=LIMIT_S / 2):
    with time_limit(seconds):
        while not condition():
            watcher.tick()
            time.sleep(0.02)


def test_the_timer_path_shows_progress_and_cancel_stops_it(scene, trained_run, tmp_path):
    out = tmp_path / "render"
    nerf = use_trained_run(scene, trained_run, out)
    scene.render.resolution_x = scene.render.resolution_y = 96
    scene.frame_start, scene.frame_end = 1, 400
    nerf.render_source = "ANIMATION"

    job = render_views.start(bpy.context)
    assert nerf.job_running and not bpy.ops.nerf.render_views.poll()
    assert not bpy.ops.nerf.train.poll() and not bpy.ops.nerf.compare.poll()
    assert engine_children() == [job.pid]
    _tick_until(lambda: job.views_done[0] >= 1)
    assert 0 < nerf.job_progress < 1
    assert nerf.job_status.startswith("Render Views: view ") and "of 400" in nerf.job_status
    calls = _draw(panels_views.draw_render)
    assert ("operator", "nerf.cancel_job") in calls and (
        "operator",
        "nerf.render_views",
    ) not in calls
    assert ("operator", "nerf.cancel_job") in _draw(panels.draw_main)

    assert bpy.ops.nerf.cancel_job() == {"FINISHED"}
    assert job.state == "cancelled" and not nerf.job_running
    assert nerf.job_status == "Render Views stopped."
    assert not (out / VIEWS_FILE).exists()  # Import View does not take a half render
    assert engine_children() == []
    assert bpy.ops.nerf.render_views.poll()


def _draw(draw):
    layout = RecordingLayout()
    draw(layout, bpy.context)
    return layout.calls


def test_render_and_compare_panels_draw_every_branch(scene):
    nerf = scene.nerf
    seen = set()
    for source in ("ACTIVE", "SELECTED", "ANIMATION"):
        for target in ("PLANE", "CAMERA_BACKGROUND", "COMPOSITOR"):
            nerf.render_source, nerf.import_target = source, target
            for draw in (panels_views.draw_render, panels_views.draw_compare):
                seen |= {c[2] for c in _draw(draw) if c[0] == "prop"}
    assert {"render_frame_step", "import_distance", "import_opacity", "import_depth"} <= seen
    calls = _draw(panels_views.draw_render)
    assert {("operator", "nerf.render_views"), ("operator", "nerf.import_view")} <= set(calls)
    assert ("operator", "nerf.import_cameras") in calls
    assert ("operator", "nerf.compare") in _draw(panels_views.draw_compare)
    nerf.compare_views, nerf.compare_psnr = 3, 27.5
    assert ("label", "PSNR 27.50 dB") in _draw(panels_views.draw_compare)
    for cls in panels_views.CLASSES:
        layout = RecordingLayout()
        cls.draw(SimpleNamespace(layout=layout), bpy.context)
        assert layout.calls and cls.bl_parent_id == "NERF_PT_main" and cls.is_registered


def test_progress_events_count_views_over_all_commands_and_reach_the_panel(scene, tmp_path):
    """An engine job's progress comes from the engine's ``progress`` events (``done`` of
    ``total``), summed over its commands, and the watcher copies it into ``scene.nerf``."""
    script = "import json, time\nfor i in (1, 2):\n"
    script += "    print(json.dumps({'event': 'progress', 'step': 300, 'done': i, 'total': 2}))\n"
    script += "    time.sleep(0.2)\n"
    job = EngineJob([[sys.executable, "-c", script]] * 2, total=2, label="Test").start()
    watcher.watch_scene(scene, "render", job)
    seen = []
    with time_limit(60):
        while not job.done:
            watcher.tick()
            seen.append((scene.nerf.job_progress, scene.nerf.job_status))
            time.sleep(0.02)
    progress = [p for p, _ in seen]
    assert progress == sorted(progress) and {0.25, 0.5, 0.75} <= set(progress)
    assert progress[-1] == 1.0 and job.state == "finished" and job.step == 300
    assert any(s == "Test: view 1 of 2 (step 2 of 2)" for _, s in seen)
    assert not scene.nerf.job_running and scene.nerf.job_status == "Test finished."


def test_a_camera_outside_the_trained_range_is_warned_about(scene, trained_run, tmp_path):
    far_away = plan.plan_view_shots(bpy.context)  # the default camera: 11 m away
    run = plan.check_run(str(trained_run.run))
    (note,) = plan.range_notes(scene, far_away, run)
    assert note.startswith("Camera 'Camera' sees the scene box") and "cut off" in note
    train = read_transforms(trained_run.dataset / "transforms_train.json")
    scene_io.set_camera_pose(scene.camera, train.frames[0].camera_to_world)  # a training view
    bpy.context.view_layer.update()
    assert plan.range_notes(scene, plan.plan_view_shots(bpy.context), run) == []
