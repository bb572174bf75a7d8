"""Export's COLMAP model (sparse/0/*.txt) and points3d.ply, read back with checks of their own:
the text files parsed here from COLMAP's documented format, the PLY with plyfile; and Import
Cameras turning the model back into the cameras that made it."""

from __future__ import annotations

import json
import math

import numpy as np
import plyfile  # an independent PLY reader (requirements-dev.txt)
import pytest

bpy = pytest.importorskip("bpy")
OpenEXR = pytest.importorskip("OpenEXR")

from addon_helpers import (  # noqa: E402
    FailingRenderer,
    configure_fast_render,
    export,
    scene_fingerprint,
)
from PIL import Image  # noqa: E402

from blender_nerf.nerf_engine.data.cameras import look_at  # noqa: E402
from blender_nerf.scene import blender_render, scene_io  # noqa: E402


def _cameras(scene):
    """Three cameras: the default one with lens shift, a portrait-fit one, a plain one; the
    scene's pixels non-square. Returns their names."""
    configure_fast_render(scene, size=(32, 24))
    scene.render.pixel_aspect_x = 1.25
    camera = bpy.data.objects["Camera"]
    camera.data.shift_x, camera.data.shift_y = 0.08, -0.05
    names = ["Camera"]
    for i, (eye, fit) in enumerate((((-5.0, 4.0, 3.0), "VERTICAL"), ((1.0, -6.0, -2.0), "AUTO"))):
        data = bpy.data.cameras.new(f"Cam{i}")
        data.sensor_fit = fit
        ob = bpy.data.objects.new(f"Cam{i}", data)
        scene.collection.objects.link(ob)
        scene_io.set_camera_pose(ob, look_at(eye, (0, 0, 0)))
        names.append(ob.name)
    bpy.ops.object.select_all(action="DESELECT")
    for name in [*names, "Cube"]:
        bpy.data.objects[name].select_set(True)
    return names


def _export(scene, tmp_path, **settings):
    options = {
        "camera_source": "SELECTED",
        "subject": "SELECTED",
        "export_depth": True,
        "export_colmap": True,
        "export_points": True,
        "split_val": 0,
        "split_test": 0.34,
    }
    return export(scene, tmp_path, **(options | settings))  # fmt: skip


def _rows(path):
    """COLMAP text lines, comments dropped (an image's empty POINTS2D line kept)."""
    lines = [line for line in path.read_text().split("\n") if not line.startswith("#")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _rotation(qw, qx, qy, qz):
    """COLMAP's qvec (Hamilton, w first) as a rotation matrix."""
    return np.array([
        [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)],
        [2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)],
        [2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)],
    ])  # fmt: skip


def _read_model(folder):
    cameras = {}
    for line in _rows(folder / "cameras.txt"):
        cid, model, w, h, *params = line.split()
        assert model == "PINHOLE"
        cameras[cid] = (int(w), int(h), [float(p) for p in params])
    images = {}
    lines = _rows(folder / "images.txt")
    for head, points in zip(lines[::2], lines[1::2] + [""] * (len(lines) % 2), strict=True):
        iid, qw, qx, qy, qz, tx, ty, tz, cid, name = head.split()
        obs = np.array(points.split(), dtype=np.float64).reshape(-1, 3)
        pose = (_rotation(*map(float, (qw, qx, qy, qz))), np.array([tx, ty, tz], dtype=float))
        images[iid] = (name, cameras[cid], pose, obs)
    points = {}
    for line in _rows(folder / "points3D.txt"):
        pid, x, y, z, r, g, b, _err, *track = line.split()
        points[pid] = (np.array([x, y, z], dtype=float), (int(r), int(g), int(b)), track)
    return images, points


def _depth(path):
    with OpenEXR.File(str(path)) as f:
        channels = f.channels()
        pixels = channels["R"].pixels if "R" in channels else channels["RGBA"].pixels[..., 0]
    return np.asarray(pixels, dtype=np.float64)


def test_colmap_and_points_round_trip(scene, tmp_path):
    _cameras(scene)
    before = scene_fingerprint(scene)
    assert _export(scene, tmp_path) == {"FINISHED"}
    assert scene_fingerprint(scene) == before
    train = json.loads((tmp_path / "transforms_train.json").read_text())
    images, points = _read_model(tmp_path / "sparse" / "0")
    # the training views only (the held-out test view stays out of what a splatting tool sees)
    assert sorted(n for n, *_ in images.values()) == ["train/r_0.png", "train/r_1.png"]
    frames = {f["file_path"].lstrip("./") + ".png": f for f in train["frames"]}
    for name, (w, h, (fx, fy, cx, cy)), _, _ in images.values():
        f = {**train, **frames[name]}  # PINHOLE with the transforms file's exact intrinsics
        assert (w, h) == (f["w"], f["h"]) and [fx, fy, cx, cy] == [
            f["fl_x"], f["fl_y"], f["cx"], f["cy"]
        ]  # fmt: skip
    assert any(fx != fy for _, (_, _, (fx, fy, _, _)), _, _ in images.values())

    ply = plyfile.PlyData.read(str(tmp_path / "points3d.ply"))["vertex"]
    xyz_ply = np.stack([ply["x"], ply["y"], ply["z"]], axis=-1)
    rgb_ply = np.stack([ply["red"], ply["green"], ply["blue"]], axis=-1)
    assert len(xyz_ply) == len(points)
    surface = 0
    for iid, (name, (w, h, (fx, fy, cx, cy)), (rot, t), obs) in images.items():
        depth = _depth(tmp_path / name.replace(".png", "_depth.exr")).reshape(h, w)
        with Image.open(tmp_path / name) as im:
            rgb = np.asarray(im.convert("RGB"))
        surface += int((depth > 0).sum())
        for index, (x, y, pid) in enumerate(obs):
            xyz, colour, track = points[str(int(pid))]
            assert track == [iid, str(index)]  # the point knows the pixel that made it
            cam = rot @ xyz + t  # OpenCV axes: in front of the camera is +Z
            assert cam[2] > 0
            u, v = fx * cam[0] / cam[2] + cx, fy * cam[1] / cam[2] + cy
            assert abs(u - x) < 1e-6 * w and abs(v - y) < 1e-6 * h
            col, row = math.floor(x), math.floor(y)
            assert (x, y) == (col + 0.5, row + 0.5)  # a pixel centre
            centre = -rot.T @ t
            assert np.linalg.norm(xyz - centre) == pytest.approx(depth[row, col], rel=1e-5)
            assert colour == tuple(rgb[row, col])
            i = int(pid) - 1
            assert np.allclose(xyz_ply[i], xyz, atol=1e-5) and tuple(rgb_ply[i]) == colour
    # the size rule: every surface pixel while the 100 000 shared by the views allow it
    assert len(points) == surface > 100


def test_points_need_depth(scene, tmp_path):
    _cameras(scene)
    before = scene_fingerprint(scene)
    with pytest.raises(RuntimeError, match="turn on Depth"):
        _export(scene, tmp_path, export_depth=False)
    assert scene_fingerprint(scene) == before
    assert not (tmp_path / "points3d.ply").exists()


def test_replacing_the_images_retires_the_model_and_points(scene, tmp_path, monkeypatch):
    """Like the transforms files: an export that replaces images and stops midway leaves no
    COLMAP model or points3d.ply describing the old views; exporting again writes new ones."""
    configure_fast_render(scene, size=(16, 16))
    options = {"rig_views": 3, "split_val": 0, "split_test": 0, "export_depth": True,
               "export_colmap": True, "export_points": True}  # fmt: skip
    assert export(scene, tmp_path, **options) == {"FINISHED"}
    written = ["points3d.ply", "sparse/0/cameras.txt", "sparse/0/images.txt",
               "sparse/0/points3D.txt"]  # fmt: skip
    assert all((tmp_path / name).is_file() for name in written)
    monkeypatch.setattr(blender_render, "render_still", FailingRenderer(fail_at=2))
    with pytest.raises(RuntimeError, match=r"sparse/0/images\.txt.* were removed"):
        export(scene, tmp_path, rig_seed=7)
    assert not any((tmp_path / name).exists() for name in written)
    monkeypatch.undo()
    assert export(scene, tmp_path) == {"FINISHED"}
    images, points = _read_model(tmp_path / "sparse" / "0")
    frames = json.loads((tmp_path / "transforms_train.json").read_text())["frames"]
    for name, _, (rot, t), _ in images.values():
        (frame,) = [f for f in frames if f["file_path"].lstrip("./") + ".png" == name]
        assert np.allclose(-rot.T @ t, np.array(frame["transform_matrix"])[:3, 3], atol=1e-6)
    assert len(points) > 0


def test_import_cameras_reads_the_colmap_model_back(scene, tmp_path):
    names = _cameras(scene)
    assert _export(scene, tmp_path, export_points=False) == {"FINISHED"}
    size = scene_io.render_size(scene)
    originals = {
        name: (scene_io.camera_to_world(bpy.data.objects[name]),
               scene_io.camera_intrinsics(bpy.data.objects[name], scene, size))
        for name in names
    }  # fmt: skip
    assert (tmp_path / "sparse" / "0" / "points3D.txt").is_file()
    scene.render.pixel_aspect_x = 1.0  # Import Cameras sets it back from fx/fy
    for source in (tmp_path / "sparse" / "0", tmp_path / "sparse" / "0" / "images.txt"):
        assert bpy.ops.nerf.import_cameras(filepath=str(source)) == {"FINISHED"}
        imported = [bpy.data.objects[n] for n in ("train_r_0", "train_r_1")]
        assert scene.render.pixel_aspect_x / scene.render.pixel_aspect_y == pytest.approx(1.25)
        matched = set()
        for camera in imported:
            c2w = scene_io.camera_to_world(camera)
            (name,) = [n for n, (pose, _) in originals.items() if np.allclose(pose, c2w, atol=1e-5)]
            got = scene_io.camera_intrinsics(camera, scene, size)
            assert got.to_dict() == pytest.approx(originals[name][1].to_dict(), rel=1e-5)
            matched.add(name)
        assert len(matched) == 2


def test_import_cameras_refuses_an_unknown_colmap_model(scene, tmp_path):
    model = tmp_path / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text("1 FOV 32 32 20 16 16 0.1\n")
    (model / "images.txt").write_text("1 1 0 0 0 0 0 4 1 a.png\n\n")
    before = scene_fingerprint(scene)
    with pytest.raises(RuntimeError, match=r"cameras\.txt: line 1: camera model 'FOV'"):
        bpy.ops.nerf.import_cameras(filepath=str(tmp_path))
    assert scene_fingerprint(scene) == before
