"""Export Dataset end to end in real Blender: rig, selected cameras, animation, engines, passes."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    RenderLog,
    blender_pixels,
    configure_fast_render,
    export,
    read_all,
    scene_fingerprint,
    vertices_world,
)
from PIL import Image  # noqa: E402

from blender_nerf.nerf_engine.data.cameras import project_points  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import load_rgba  # noqa: E402


def _frames(splits):
    return [(name, f) for name, split in splits.items() for f in split.frames]


def _assert_vertices_on_subject(frame, rgba, points):
    pixels, depth = project_points(points, frame.intrinsics, frame.camera_to_world)
    k = frame.intrinsics
    assert (depth > 0).all()
    assert (pixels >= 0).all() and (pixels[:, 0] < k.w).all() and (pixels[:, 1] < k.h).all()
    cols, rows = np.floor(pixels).astype(int).T
    assert (rgba[rows, cols, 3] > 0).all()


def test_rig_export_of_the_default_cube(scene, tmp_path):
    configure_fast_render(scene, size=(48, 40), samples=16)
    scene.cycles.filter_width = 3.0  # see test_projection: silhouette vertices see their pixel
    before = scene_fingerprint(scene)
    out = tmp_path / "my dataset – ünïcødé 数据"
    with RenderLog() as log:
        result = export(scene, out, rig_views=12, split_val=0.1, split_test=0.1)
    assert result == {"FINISHED"}
    assert len(log) == 12
    assert scene_fingerprint(scene) == before  # rig camera gone, settings and AgX back
    assert scene.view_settings.view_transform == "AgX"
    assert all(r["view_transform"] == "Standard" and r["look"] == "None" for r in log.renders)
    assert all(r["film_transparent"] for r in log.renders)
    assert not (out / ".nerf_staging").exists()

    splits = read_all(out)
    assert {k: len(v.frames) for k, v in splits.items()} == {"train": 10, "val": 1, "test": 1}
    frames = _frames(splits)
    cube = vertices_world([bpy.data.objects["Cube"]])
    images = {}
    for split_name, frame in frames:
        assert frame.image_path.is_file() and frame.image_path.parent.name == split_name
        with Image.open(frame.image_path) as im:
            assert im.mode == "RGBA" and im.size == (48, 40)
    for split in splits.values():
        for frame, rgba in zip(split.frames, load_rgba(split), strict=True):
            border = np.concatenate([rgba[0, :, 3], rgba[-1, :, 3], rgba[:, 0, 3], rgba[:, -1, 3]])
            assert (border == 0).all(), "transparent background"
            assert (rgba[..., 3] == 1).sum() > 20, "the cube is in the picture"
            _assert_vertices_on_subject(frame, rgba, cube)
            images[frame.file_path] = rgba

    centres = np.array([f.camera_to_world[:3, 3] for _, f in frames])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2) + np.eye(12) * 1e9
    assert gaps.min() > 0.1, "no view duplicates another"
    for a, b in itertools.combinations(images.values(), 2):
        assert np.abs(a - b).max() > 0.1
    assert (centres[:, 2] >= -1e-9).all(), "upper hemisphere around the cube's centre"

    top = splits["train"]
    assert np.allclose(top.aabb, [[-1, -1, -1], [1, 1, 1]], atol=1e-3)
    corners = np.array(list(itertools.product((-1, 1), repeat=3)), dtype=float)
    dist = np.linalg.norm(centres[:, None] - corners[None], axis=2)
    assert top.near < dist.min() and dist.max() < top.far


def test_rig_lens_radius_elevation_and_seed(scene, tmp_path):
    from blender_nerf.export.plan import build_plan

    nerf = scene.nerf
    nerf.dataset_dir = str(tmp_path)
    nerf.rig_views, nerf.rig_radius, nerf.rig_hemisphere = 9, 7.5, False
    nerf.rig_elevation_min, nerf.rig_elevation_max = np.radians(-20), np.radians(35)
    nerf.rig_lens_source, nerf.rig_lens, nerf.rig_sensor_width = "CUSTOM", 24.0, 36.0
    plan = build_plan(bpy.context)
    centres = np.array([v.camera_to_world[:3, 3] for v in plan.views])
    assert np.allclose(np.linalg.norm(centres, axis=1), 7.5)
    elevation = np.degrees(np.arcsin(centres[:, 2] / 7.5))
    assert elevation.min() >= -20 - 1e-6 and elevation.max() <= 35 + 1e-6 and elevation.min() < 0
    assert plan.views[0].intrinsics.fl_x == pytest.approx(24 / 36 * 32)
    for view in plan.views:  # every rig camera looks at the subject's centre
        forward = -view.camera_to_world[:3, 2]
        assert np.allclose(forward, -view.camera_to_world[:3, 3] / 7.5)
    again = build_plan(bpy.context)
    assert all(
        np.allclose(a.camera_to_world, b.camera_to_world)
        for a, b in zip(plan.views, again.views, strict=True)
    )
    nerf.rig_seed = 1
    other = build_plan(bpy.context)
    assert not np.allclose(plan.views[0].camera_to_world, other.views[0].camera_to_world)


def _add_camera(name, location, lens, target=(0.0, 0.0, 0.0)):
    data = bpy.data.cameras.new(name)
    data.lens = lens
    camera = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(camera)
    camera.location = location
    direction = np.subtract(target, location)
    from mathutils import Vector

    camera.rotation_euler = Vector(direction).to_track_quat("-Z", "Y").to_euler()
    return camera


def test_selected_cameras_with_their_own_lenses_and_resolution(scene, tmp_path):
    configure_fast_render(scene, size=(40, 30))
    tele = _add_camera("Tele", (0.0, -14.0, 3.0), lens=85.0)
    wide = _add_camera("Wide", (6.0, 5.0, 2.0), lens=24.0)
    wide.data.sensor_fit = "VERTICAL"
    wide.data.nerf.use_resolution = True
    wide.data.nerf.resolution_x, wide.data.nerf.resolution_y = 24, 40
    bpy.ops.object.select_all(action="DESELECT")
    for ob in (bpy.data.objects["Camera"], tele, wide):
        ob.select_set(True)
    before = scene_fingerprint(scene)
    with RenderLog() as log:
        result = export(
            scene, tmp_path, camera_source="SELECTED", split_mode="COUNT", split_val_count=0,
            split_test_count=0,
        )  # fmt: skip
    assert result == {"FINISHED"}
    assert scene_fingerprint(scene) == before
    assert [r["camera"] for r in log.renders] == ["Camera", "Tele", "Wide"]
    raw = json.loads((tmp_path / "transforms_train.json").read_text())
    assert "fl_x" not in raw and all("fl_x" in f for f in raw["frames"])  # per-frame intrinsics
    split = read_all(tmp_path)["train"]
    points = vertices_world()
    for frame, rgba, name in zip(
        split.frames, load_rgba(split), ("Camera", "Tele", "Wide"), strict=True
    ):
        k = frame.intrinsics
        assert rgba.shape[:2] == (k.h, k.w)
        camera = bpy.data.objects[name]
        if name == "Wide":
            assert (k.w, k.h) == (24, 40)
            scene.render.resolution_x, scene.render.resolution_y = 24, 40  # Blender's view of it
        expected = blender_pixels(scene, camera, points, k.w, k.h)
        got, _ = project_points(points, k, frame.camera_to_world)
        assert np.abs(got - expected).max() < 1e-3, name
        assert np.allclose(frame.camera_to_world, np.array(camera.matrix_world.normalized()))
    fl = [f.intrinsics.fl_x for f in split.frames]
    assert fl[1] == pytest.approx(fl[0] * 85 / 50)


def test_animation_frames_1_to_10_step_3(scene, tmp_path):
    configure_fast_render(scene, size=(32, 24))
    camera = bpy.data.objects["Camera"]
    for frame, x, lens in ((1, 7.0, 35.0), (10, -7.0, 70.0)):
        camera.location.x, camera.data.lens = x, lens
        camera.keyframe_insert("location", frame=frame)
        camera.data.keyframe_insert("lens", frame=frame)
    track = camera.constraints.new("TRACK_TO")  # the pose comes from a constraint: evaluated
    track.target = bpy.data.objects["Cube"]
    scene.frame_set(5)
    before = scene_fingerprint(scene)
    with RenderLog() as log:
        result = export(
            scene,
            tmp_path,
            camera_source="ANIMATION",
            anim_use_scene_range=False,
            anim_frame_start=1,
            anim_frame_end=10,
            anim_frame_step=3,
            split_mode="COUNT",
            split_val_count=1,
            split_test_count=0,
        )
    assert result == {"FINISHED"}
    assert scene_fingerprint(scene) == before and scene.frame_current == 5
    assert sorted(r["frame"] for r in log.renders) == [1, 4, 7, 10]
    splits = read_all(tmp_path)
    assert {k: len(v.frames) for k, v in splits.items()} == {"train": 3, "val": 1}
    by_frame = dict(zip([1, 4, 7, 10], _ordered_views(splits), strict=True))
    points = vertices_world([bpy.data.objects["Cube"]])
    for frame_number, frame in by_frame.items():
        scene.frame_set(frame_number)
        expected = blender_pixels(scene, camera, points, frame.intrinsics.w, frame.intrinsics.h)
        got, _ = project_points(points, frame.intrinsics, frame.camera_to_world)
        assert np.abs(got - expected).max() < 1e-3, frame_number
    lenses = [f.intrinsics.fl_x * 36 / 32 for f in by_frame.values()]
    assert lenses[0] == pytest.approx(35.0) and lenses[-1] == pytest.approx(70.0)
    assert len(set(np.round(lenses, 6))) == 4


def _ordered_views(splits):
    """Frames of all splits in render order (the plan's order: by frame)."""
    frames = [f for _, f in _frames(splits)]
    return sorted(frames, key=lambda f: -f.camera_to_world[0, 3])  # the camera moves +x -> -x


def test_workbench_renders_too(scene, tmp_path):
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = 32
    assert export(scene, tmp_path, rig_views=3, split_val=0.0, split_test=0.0) == {"FINISHED"}
    assert scene.render.engine == "BLENDER_WORKBENCH"
    for rgba in load_rgba(read_all(tmp_path)["train"]):
        assert rgba[0, 0, 3] == 0 and rgba[..., 3].max() == 1.0


def test_opaque_background_when_transparency_is_off(scene, tmp_path):
    result = export(scene, tmp_path, rig_views=2, split_val=0, split_test=0, film_transparent=False)
    assert result == {"FINISHED"}
    assert scene.render.film_transparent is False
    for rgba in load_rgba(read_all(tmp_path)["train"]):
        assert (rgba[..., 3] == 1).all()


def test_the_report_says_how_the_world_behind_the_subject_is_handled(scene, tmp_path):
    """The scene renders its world (Film > Transparent off): a transparent dataset says the
    world is left out; an opaque one says training learns it as an environment."""
    scene.render.film_transparent = False
    views = {"rig_views": 2, "split_val": 0.0, "split_test": 0.0}
    assert export(scene, tmp_path / "clear", **views) == {"FINISHED"}
    assert "Background: transparent, so the scene's world is left out" in scene.nerf.job_status
    assert export(scene, tmp_path / "opaque", film_transparent=False, **views) == {"FINISHED"}
    assert "training learns it as an environment" in scene.nerf.job_status
    assert scene.render.film_transparent is False


def test_a_camera_that_clips_the_subject_is_warned_about(scene, tmp_path):
    from blender_nerf.export.plan import build_plan

    scene.nerf.dataset_dir, scene.nerf.camera_source = str(tmp_path), "SELECTED"
    bpy.data.objects["Camera"].select_set(True)
    assert build_plan(bpy.context).notes == []
    bpy.data.cameras["Camera"].clip_end = 10.0  # the cube's far corners are ~12.8 away
    (note,) = build_plan(bpy.context).notes
    assert "Camera 'Camera' clips at 0.1 m–10 m" in note and "raise Clip End" in note
