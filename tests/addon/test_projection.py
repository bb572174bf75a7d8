"""The acceptance test of exact intrinsics: every mesh vertex projected with the exported camera
matches Blender's own ``world_to_camera_view`` within 1e-3 px, and lands on a rendered pixel."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import configure_fast_render, export, read_all, scene_fingerprint  # noqa: E402
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Vector  # noqa: E402

from blender_nerf.nerf_engine.data.cameras import project_points  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import load_rgba  # noqa: E402

CASES = {
    "portrait_360x640": dict(size=(360, 640)),
    "landscape_vertical_fit": dict(size=(640, 360), sensor_fit="VERTICAL", sensor_height=24.0),
    "shift": dict(size=(320, 240), shift=(0.15, -0.1), lens=35.0),
    "pixel_aspect_2_1": dict(size=(160, 240), pixel_aspect=(2.0, 1.0)),
    "resolution_50_percent": dict(size=(640, 480), percentage=50),
    "scaled_camera": dict(size=(320, 240), scale=(1.5, 0.7, 2.0)),  # matrix_world without scale
    "all_at_once": dict(  # 200×120 pixels of 1:2 aspect: a portrait frame on screen
        size=(400, 240),
        sensor_fit="VERTICAL",
        sensor_height=20.0,
        shift=(0.1, -0.05),
        pixel_aspect=(1.0, 2.0),
        percentage=50,
        lens=30.0,
    ),
}


def _setup_camera(scene, case):
    configure_fast_render(scene, size=case["size"], samples=16)
    # A vertex on the silhouette may sit at the corner of its pixel with the object outside it;
    # a wider (symmetric, so unbiased) pixel filter lets that pixel see the object next to it.
    scene.cycles.filter_width = 3.0
    scene.render.resolution_percentage = case.get("percentage", 100)
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = case.get("pixel_aspect", (1, 1))
    camera = bpy.data.objects["Camera"]
    cam = camera.data
    cam.lens = case.get("lens", 50.0)
    cam.sensor_fit = case.get("sensor_fit", "AUTO")
    cam.sensor_height = case.get("sensor_height", 24.0)
    cam.shift_x, cam.shift_y = case.get("shift", (0.0, 0.0))
    camera.scale = case.get("scale", (1.0, 1.0, 1.0))
    # a second mesh so vertices spread over more of the frame than the cube's
    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=1, radius=0.6, location=(0.4, -1.6, 1.3))
    bpy.ops.object.select_all(action="DESELECT")
    camera.select_set(True)
    return camera


def _mesh_vertices_world():
    points = []
    for ob in bpy.data.objects:
        if ob.type == "MESH":
            points += [ob.matrix_world @ v.co for v in ob.data.vertices]
    return points


@pytest.mark.parametrize("name", list(CASES))
def test_exported_camera_projects_like_blender(scene, tmp_path, name):
    camera = _setup_camera(scene, CASES[name])
    before = scene_fingerprint(scene)
    out = tmp_path / name
    assert export(scene, out, camera_source="SELECTED", split_val=0.0, split_test=0.0) == {
        "FINISHED"
    }
    assert scene_fingerprint(scene) == before
    splits = read_all(out)
    assert set(splits) == {"train"}
    (frame,) = splits["train"].frames
    rotation = frame.camera_to_world[:3, :3]
    assert np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-6)
    k = frame.intrinsics
    render = scene.render
    pct = render.resolution_percentage
    assert (k.w, k.h) == (render.resolution_x * pct // 100, render.resolution_y * pct // 100)

    points = _mesh_vertices_world()
    expected = []
    for co in points:
        ndc = world_to_camera_view(scene, camera, co)
        expected.append((ndc.x * k.w, (1.0 - ndc.y) * k.h))
    expected = np.array(expected)
    pixels, depth = project_points(np.array([tuple(p) for p in points]), k, frame.camera_to_world)
    assert (depth > 0).all()
    assert np.abs(pixels - expected).max() < 1e-3, np.abs(pixels - expected).max()

    inside = (pixels >= 0).all(axis=1) & (pixels[:, 0] < k.w) & (pixels[:, 1] < k.h)
    assert inside.all(), f"test setup: {np.count_nonzero(~inside)} vertices leave the frame"
    (rgba,) = load_rgba(splits["train"])
    cols, rows = np.floor(pixels).astype(int).T
    alpha = rgba[rows, cols, 3]
    assert (alpha > 0).all(), f"vertices on empty pixels: {pixels[alpha == 0]}"
    assert rgba[..., 3].min() == 0.0  # transparent background around the subject


def test_the_classic_wrong_focal_would_fail(scene, tmp_path):
    """The check above can fail: with the focal from sensor_width and image width (the common
    exporter bug) a portrait frame misses Blender's projection by many pixels."""
    camera = _setup_camera(scene, CASES["portrait_360x640"])
    export(scene, tmp_path, camera_source="SELECTED", split_val=0.0, split_test=0.0)
    (frame,) = read_all(tmp_path)["train"].frames
    k = frame.intrinsics
    wrong = type(k)(**{**k.to_dict(), "fl_x": 50 / 36 * k.w, "fl_y": 50 / 36 * k.w})
    co = Vector((1.0, 1.0, 1.0))
    ndc = world_to_camera_view(scene, camera, co)
    right_px, _ = project_points(np.array([tuple(co)]), k, frame.camera_to_world)
    wrong_px, _ = project_points(np.array([tuple(co)]), wrong, frame.camera_to_world)
    target = np.array([ndc.x * k.w, (1 - ndc.y) * k.h])
    assert np.abs(right_px[0] - target).max() < 1e-3
    assert np.abs(wrong_px[0] - target).max() > 5.0
