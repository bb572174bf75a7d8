"""Import Cameras: Blender cameras whose own projection reproduces the intrinsics and poses of a
transforms file (ours, NeRF-synthetic, instant-ngp style), from a file or a dataset folder;
importing again replaces them; bad files are refused with the scene unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

bpy = pytest.importorskip("bpy")

from addon_helpers import blender_pixels, scene_fingerprint  # noqa: E402

from blender_nerf.nerf_engine.data.cameras import Intrinsics, look_at, project_points  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import Frame, write_transforms  # noqa: E402
from blender_nerf.scene import scene_io  # noqa: E402
from blender_nerf.scene.shots import camera_size  # noqa: E402

POINTS = np.array([[0.3, -0.2, 0.1], [-0.5, 0.4, 0.6], [0.0, 0.0, -0.4], [0.7, 0.7, 0.0]])


def _frames():
    """Portrait and landscape, off-centre principal points, non-square pixels (fl_x/fl_y 1.25)."""
    sizes = [(40, 60, 50.0, 24.0, 27.0), (64, 36, 70.0, 30.0, 20.5), (48, 48, 40.0, 24.0, 24.0)]
    frames = []
    for i, (w, h, fl, cx, cy) in enumerate(sizes):
        eye = (4 * math.cos(i), 4 * math.sin(i), 1.0 + i)
        k = Intrinsics(fl_x=fl, fl_y=fl / 1.25, cx=cx, cy=cy, w=w, h=h)
        frames.append(Frame(look_at(eye, (0, 0, 0)), k, file_path=f"./images/frame_{i:03d}"))
    return frames


def test_imported_cameras_project_like_the_file(scene, tmp_path):
    path = tmp_path / "transforms.json"
    frames = _frames()
    write_transforms(path, frames, near=1.0, far=9.0)
    assert bpy.ops.nerf.import_cameras(filepath=str(path)) == {"FINISHED"}
    render = scene.render
    assert render.pixel_aspect_y / render.pixel_aspect_x == pytest.approx(1.25)
    collection = bpy.data.collections["NeRF Cameras transforms"]
    cameras = sorted(collection.objects, key=lambda ob: ob.name)
    assert [ob.name for ob in cameras] == ["frame_000", "frame_001", "frame_002"]
    for camera, frame in zip(cameras, frames, strict=True):
        k = frame.intrinsics
        assert camera_size(scene, camera.data) == (k.w, k.h)
        got = scene_io.camera_intrinsics(camera, scene, (k.w, k.h))
        assert got.to_dict() == pytest.approx(k.to_dict(), rel=1e-6)  # float32 lens, shift
        assert np.allclose(scene_io.camera_to_world(camera), frame.camera_to_world, atol=1e-6)
        assert camera.data.clip_start == pytest.approx(0.5)
        assert camera.data.clip_end == pytest.approx(18.0)
        # Blender's own projection, at the camera's size, lands where the file says
        render.resolution_x, render.resolution_y = k.w, k.h
        expected, _ = project_points(POINTS, k, frame.camera_to_world)
        assert np.abs(blender_pixels(scene, camera, POINTS, k.w, k.h) - expected).max() < 1e-4


def test_a_dataset_folder_and_reimport_replace_the_cameras(scene, tmp_path):
    for split, count in (("train", 3), ("test", 2)):
        frames = [Frame(look_at((3, i, 2), (0, 0, 0)), Intrinsics.from_fov(0.8, 32, 32),
                        file_path=f"./{split}/r_{i}") for i in range(count)]  # fmt: skip
        write_transforms(tmp_path / f"transforms_{split}.json", frames)
    scene.render.resolution_x = scene.render.resolution_y = 32
    for _ in range(2):
        assert bpy.ops.nerf.import_cameras(filepath=str(tmp_path)) == {"FINISHED"}
        names = sorted(ob.name for ob in bpy.data.objects if ob.type == "CAMERA")
        assert names == ["Camera", "test_r_0", "test_r_1", "train_r_0", "train_r_1", "train_r_2"]
        assert len(bpy.data.cameras) == 6
    camera = bpy.data.objects["train_r_0"]
    assert not camera.data.nerf.use_resolution  # the scene's size already fits
    assert scene.render.pixel_aspect_x == scene.render.pixel_aspect_y == 1.0


def test_instant_ngp_style_file(scene, tmp_path):
    path = tmp_path / "transforms.json"
    c2w = look_at((2.0, -3.0, 1.5), (0, 0, 0))
    data = {"fl_x": 30.0, "fl_y": 30.0, "cx": 17.0, "cy": 11.0, "w": 32, "h": 24,
            "aabb_scale": 4, "frames": [{"file_path": "images/0001.jpg",
                                         "transform_matrix": c2w.tolist()}]}  # fmt: skip
    path.write_text(json.dumps(data))
    assert bpy.ops.nerf.import_cameras(filepath=str(path)) == {"FINISHED"}
    camera = bpy.data.objects["0001"]
    k = scene_io.camera_intrinsics(camera, scene, (32, 24))
    assert (k.fl_x, k.fl_y, k.cx, k.cy) == pytest.approx((30.0, 30.0, 17.0, 11.0))


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "malformed JSON"),
        ('{"frames": [{"file_path": "a"}]}', "transform_matrix"),
        (None, "fl_x/fl_y ratios differ"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_created(scene, tmp_path, content, match):
    path = tmp_path / "cameras.json"
    if content is None:
        frames = _frames()
        frames[1] = Frame(frames[1].camera_to_world, Intrinsics(50, 50, 20, 30, 40, 60))
        write_transforms(path, frames)
    else:
        path.write_text(content)
    before = scene_fingerprint(scene), len(bpy.data.collections), scene.render.pixel_aspect_y
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.nerf.import_cameras(filepath=str(path))
    assert (scene_fingerprint(scene), len(bpy.data.collections), scene.render.pixel_aspect_y) == (
        before
    )
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.nerf.import_cameras(filepath=str(tmp_path / "missing.json"))


# --- real-world files (issue 14: field cases 01, 02, 12) ----------------------------------------


def _cameras_file(path, top: dict, n: int = 2, **frame_keys) -> None:
    frames = [{"file_path": f"test/{i:04d}.png", "transform_matrix":
               look_at((3.0, i - 0.5, 2.0), (0, 0, 0)).tolist(), **frame_keys}
              for i in range(n)]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**top, "frames": frames}))


def test_a_field_of_view_alone_imports_at_the_scenes_size_and_says_so(scene, tmp_path):
    """Field case 01: BlenderNeRF's NeRF-format test file (camera_angle_x only, images never
    rendered) imports with the scene's render size; the field of view is exact."""
    from blender_nerf.views.import_cameras import import_cameras

    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    path = tmp_path / "nerf_format" / "transforms_test.json"
    _cameras_file(path, {"camera_angle_x": 0.7})
    collection, _, warnings = import_cameras(bpy.context, path)
    assert len(collection.objects) == 2
    camera = bpy.data.objects["0000"]
    assert not camera.data.nerf.use_resolution  # the scene's own size
    k = scene_io.camera_intrinsics(camera, scene, (64, 48))
    assert k.camera_angle_x == pytest.approx(0.7, rel=1e-6) and k.fl_y == pytest.approx(k.fl_x)
    (warning,) = warnings
    assert "2 frame(s) give no image size" in warning and "64×48" in warning
    assert bpy.ops.nerf.import_cameras(filepath=str(path)) == {"FINISHED"}


def test_both_angles_alone_keep_both_fields_of_view(scene, tmp_path):
    scene.render.resolution_x, scene.render.resolution_y = 64, 64
    path = tmp_path / "transforms_test.json"
    ax, ay = 0.8, 2 * math.atan(math.tan(0.4) * 0.75)  # a 4:3 camera
    _cameras_file(path, {"camera_angle_x": ax, "camera_angle_y": ay})
    from blender_nerf.views.import_cameras import import_cameras

    _, _, (warning,) = import_cameras(bpy.context, path)
    assert "given 64×48 pixels" in warning
    camera = bpy.data.objects["0000"]
    assert camera_size(scene, camera.data) == (64, 48)
    k = scene_io.camera_intrinsics(camera, scene, (64, 48))
    assert (k.camera_angle_x, k.camera_angle_y) == pytest.approx((ax, ay), rel=1e-5)


@pytest.mark.parametrize("style", ["instant-ngp", "nerfstudio", "fisheye"])
def test_cameras_with_lens_distortion_import_their_pinhole_part_with_a_warning(
    scene, tmp_path, style
):
    """Field case 02: the fox header (instant-ngp), ns-process-data's OPENCV model, a fisheye."""
    from blender_nerf.views.import_cameras import import_cameras

    s = 36 / 1080
    pinhole = {"fl_x": 1375.52 * s, "fl_y": 1374.49 * s, "cx": 554.558 * s, "cy": 965.268 * s}
    top = {**pinhole, "k1": 0.0578421, "k2": -0.0805099}
    top |= {
        "instant-ngp": {"p1": -0.000980296, "p2": 0.00015575, "w": 36.0, "h": 64.0},
        "nerfstudio": {"p1": -0.000980296, "p2": 0.00015575, "w": 36, "h": 64,
                       "camera_model": "OPENCV", "applied_transform": [[1, 0, 0, 0]]},
        "fisheye": {"k3": 0.01, "k4": -0.002, "w": 36, "h": 64, "camera_model": "OPENCV_FISHEYE"},
    }[style]  # fmt: skip
    path = tmp_path / "transforms.json"
    _cameras_file(path, top)
    _, _, warnings = import_cameras(bpy.context, path)
    camera = bpy.data.objects["0000"]
    k = scene_io.camera_intrinsics(camera, scene, (36, 64))
    assert (k.fl_x, k.fl_y, k.cx, k.cy) == pytest.approx(tuple(pinhole.values()), rel=1e-5)
    (warning,) = warnings
    assert "lens distortion" in warning and "pinhole part" in warning
    assert ("fisheye" in warning) == (style == "fisheye")


def test_full_resolution_intrinsics_with_downscaled_images_import_the_same_view(scene, tmp_path):
    """Field case 12's file: the declared (full-size) camera is imported — the same field of view
    and shift as the half-size camera the engine trains with."""
    path = tmp_path / "transforms.json"
    _cameras_file(path, {"fl_x": 56.0, "fl_y": 56.0, "cx": 31.0, "cy": 25.0, "w": 64, "h": 48})
    (tmp_path / "test").mkdir()
    for i in range(2):  # the images are half the size
        Image.new("RGB", (32, 24)).save(tmp_path / "test" / f"{i:04d}.png")
    assert bpy.ops.nerf.import_cameras(filepath=str(path)) == {"FINISHED"}
    k = scene_io.camera_intrinsics(bpy.data.objects["0000"], scene, (32, 24))
    assert (k.fl_x, k.cx, k.cy) == pytest.approx((28.0, 15.5, 12.5), rel=1e-5)
