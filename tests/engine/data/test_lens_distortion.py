"""Field case 02: COLMAP-made files with lens distortion (instant-ngp's fox, ns-process-data's
OPENCV model) — the images are undistorted on load with OpenCV onto the file's pinhole camera, for
the radial-tangential and the fisheye model, with the keys instant-ngp and nerfstudio read."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from real_world_helpers import dump, orbit_poses, save_image

from nerf_engine.data.cameras import Intrinsics, camera_rays
from nerf_engine.data.dataset import iter_views, read_split, read_transforms
from nerf_engine.data.images import write_png16
from nerf_engine.data.lens import FISHEYE, RADIAL_TANGENTIAL, LensDistortion, opencv_camera_matrix
from nerf_engine.tools.toy_scene import _shade

FOX = {"k1": 0.0578421, "k2": -0.0805099, "p1": -0.000980296, "p2": 0.00015575}
STRONG = LensDistortion(RADIAL_TANGENTIAL, k1=-0.28, k2=0.08, p1=0.004, p2=-0.003, k3=0.0)
FISH = LensDistortion(FISHEYE, k1=0.05, k2=-0.02, k3=0.01, k4=-0.002)
INTR = Intrinsics(fl_x=44.0, fl_y=43.5, cx=32.4, cy=23.7, w=64, h=48)


def distorted_photo(intr: Intrinsics, lens: LensDistortion, c2w, ss: int = 3) -> np.ndarray:
    """The toy scene as the distorted lens photographs it: each photo sub-pixel's ray comes from
    OpenCV's inverse of the lens model. Straight RGBA [h, w, 4]."""
    xs, ys = np.meshgrid((np.arange(intr.w * ss) + 0.5) / ss, (np.arange(intr.h * ss) + 0.5) / ss)
    photo = np.stack([xs.ravel(), ys.ravel()], axis=-1)[:, None, :] - 0.5  # OpenCV pixels
    matrix = opencv_camera_matrix(intr)
    coefficients = lens.opencv_coefficients()
    if lens.model == FISHEYE:
        normal = cv2.fisheye.undistortPoints(photo, matrix, coefficients)[:, 0]
    else:
        normal = cv2.undistortPoints(photo, matrix, coefficients)[:, 0]
    px, py = normal[:, 0] * intr.fl_x + intr.cx, normal[:, 1] * intr.fl_y + intr.cy
    o, d = camera_rays(np.asarray(c2w), px, py, intr.fl_x, intr.fl_y, intr.cx, intr.cy)
    color, hit = _shade(o, d)
    color, hit = color.reshape(intr.h, ss, intr.w, ss, 3), hit.reshape(intr.h, ss, intr.w, ss)
    cover = hit.mean(axis=(1, 3))
    summed = (color * hit[..., None]).sum(axis=(1, 3)) / np.maximum(hit.sum(axis=(1, 3)), 1)[
        ..., None
    ]
    return np.concatenate([summed, cover[..., None]], axis=-1).astype(np.float32)


def lens_keys(lens: LensDistortion) -> dict:
    if lens.model == FISHEYE:
        return {"camera_model": "OPENCV_FISHEYE", "k1": lens.k1, "k2": lens.k2, "k3": lens.k3,
                "k4": lens.k4}  # fmt: skip
    return {"camera_model": "OPENCV", "k1": lens.k1, "k2": lens.k2, "p1": lens.p1, "p2": lens.p2}


def photo_dataset(root, lens: LensDistortion, n: int = 3, suffix: str = ".png", **top):
    frames = []
    for i, pose in enumerate(orbit_poses(n)):
        rel = f"images/{i:04d}{suffix}"
        save_image(root / rel, distorted_photo(INTR, lens, pose))
        frames.append({"file_path": rel, "transform_matrix": pose.tolist()})
    k = {"fl_x": INTR.fl_x, "fl_y": INTR.fl_y, "cx": INTR.cx, "cy": INTR.cy, "w": 64, "h": 48}
    dump(root / "transforms.json", {**k, **lens_keys(lens), **top, "frames": frames})
    return root


def coordinate_photo(intr: Intrinsics, lens: LensDistortion) -> np.ndarray:
    """A photo through ``lens`` of a pattern that writes, into each pixel, where the pinhole
    camera sees the same direction: R = px / w, G = py / h. uint16 RGBA [h, w, 4]."""
    xs, ys = np.meshgrid(np.arange(intr.w) + 0.5, np.arange(intr.h) + 0.5)
    photo = np.stack([xs.ravel(), ys.ravel()], axis=-1)[:, None, :] - 0.5  # OpenCV pixels
    matrix = opencv_camera_matrix(intr)
    coefficients = lens.opencv_coefficients()
    if lens.model == FISHEYE:
        normal = cv2.fisheye.undistortPoints(photo, matrix, coefficients)[:, 0]
    else:
        normal = cv2.undistortPoints(photo, matrix, coefficients)[:, 0]
    px = (normal[:, 0] * intr.fl_x + intr.cx) / intr.w
    py = (normal[:, 1] * intr.fl_y + intr.cy) / intr.h
    rgba = np.stack([px, py, np.full_like(px, 0.5), np.ones_like(px)], axis=-1)
    return np.round(np.clip(rgba, 0, 1) * 65535).astype(np.uint16).reshape(intr.h, intr.w, 4)


@pytest.mark.parametrize("lens", [STRONG, FISH], ids=["OPENCV", "OPENCV_FISHEYE"])
def test_each_undistorted_pixel_shows_what_the_pinhole_camera_sees_there(tmp_path, lens):
    """The case's right value: after undistortion a pixel holds the photo's colour for its own
    pinhole direction, to 0.05 px; taking the photo as it is (the old advice: set k1..p2 to 0)
    is pixels off."""
    write_png16(tmp_path / "images/0.png", coordinate_photo(INTR, lens))
    frame = {"file_path": "images/0.png", "transform_matrix": orbit_poses(1)[0].tolist()}
    k = {"fl_x": INTR.fl_x, "fl_y": INTR.fl_y, "cx": INTR.cx, "cy": INTR.cy, "w": 64, "h": 48}
    dump(tmp_path / "transforms.json", {**k, **lens_keys(lens), "frames": [frame]})
    split = read_transforms(tmp_path / "transforms.json")
    assert split.frames[0].distortion == lens and split.frames[0].intrinsics == INTR
    ((rgba, valid),) = list(iter_views(split))
    xs, ys = np.meshgrid(np.arange(64) + 0.5, np.arange(48) + 0.5)
    keep = valid.copy()
    keep[[0, -1], :] = keep[:, [0, -1]] = False  # (border pixels interpolate with the edge)
    off = np.hypot(rgba[..., 0] * 64 - xs, rgba[..., 1] * 48 - ys)[keep]
    assert keep.mean() > 0.8 and off.max() < 0.05, off.max()
    raw = coordinate_photo(INTR, lens).astype(np.float64) / 65535
    assert np.hypot(raw[..., 0] * 64 - xs, raw[..., 1] * 48 - ys).max() > 1.5
    assert any("undistorted with OpenCV" in note for note in split.notes)


def test_pixels_that_see_past_the_photo_are_not_valid():
    """Pincushion distortion (k1 > 0): the pinhole image's corners lie outside the photo."""
    from nerf_engine.data.lens import undistort

    lens = LensDistortion(RADIAL_TANGENTIAL, k1=0.3)
    rgba, valid = undistort(np.ones((48, 64, 4), np.float32), INTR, lens)
    assert rgba.shape == (48, 64, 4)
    assert not valid[0, 0] and not valid[-1, -1] and valid[24, 32]
    assert 0.6 < valid.mean() < 1.0


@pytest.mark.parametrize("style", ["instant-ngp", "nerfstudio"])
def test_the_fox_files_are_read_with_their_coefficients(tmp_path, style):
    """The case's files: instant-ngp's fox header (no camera_model, w/h as floats) and
    ns-process-data's (camera_model OPENCV, applied_transform, ply_file_path) — read, not
    refused, with the coefficients both tools read."""
    s = 36 / 1080
    intr = Intrinsics(1375.52 * s, 1374.49 * s, 554.558 * s, 965.268 * s, 36, 64)
    lens = LensDistortion(RADIAL_TANGENTIAL, **FOX)
    frames = []
    for i, pose in enumerate(orbit_poses(9, radius=5.0)):
        rel = f"images/{i + 1:04d}.jpg"
        save_image(tmp_path / rel, distorted_photo(intr, lens, pose, ss=2), alpha=False)
        frames.append({"file_path": rel, "transform_matrix": pose.tolist()})
    top = {"fl_x": intr.fl_x, "fl_y": intr.fl_y, "cx": intr.cx, "cy": intr.cy, **FOX}
    if style == "instant-ngp":
        top |= {"w": 36.0, "h": 64.0, "aabb_scale": 4, "camera_angle_x": intr.camera_angle_x}
        frames = [{**f, "sharpness": 30.0} for f in frames]
    else:
        top |= {"w": 36, "h": 64, "camera_model": "OPENCV", "ply_file_path": "sparse_pc.ply",
                "applied_transform": [[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0]]}  # fmt: skip
    dump(tmp_path / "transforms.json", {**top, "frames": frames})
    split = read_split(tmp_path, "train")
    assert {f.distortion for f in split.frames} == {lens}
    views = list(iter_views(split))
    assert [rgba.shape for rgba, _ in views] == [(64, 36, 4)] * len(split.frames)


def test_per_frame_coefficients_win_and_zero_means_a_pinhole(tmp_path):
    photo_dataset(tmp_path, STRONG, n=2)
    path = tmp_path / "transforms.json"
    import json

    data = json.loads(path.read_text())
    data["frames"][1].update({"k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0})
    data["frames"][0]["k1"] = -0.2
    path.write_text(json.dumps(data))
    split = read_transforms(path)
    assert split.frames[0].distortion.k1 == -0.2 and split.frames[0].distortion.k2 == STRONG.k2
    assert split.frames[1].distortion is None


def test_instant_ngp_is_fisheye_key_selects_the_fisheye_model(tmp_path):
    photo_dataset(tmp_path, FISH, n=1)
    path = tmp_path / "transforms.json"
    import json

    data = json.loads(path.read_text())
    del data["camera_model"]
    data["is_fisheye"] = True
    path.write_text(json.dumps(data))
    assert read_transforms(path).frames[0].distortion == FISH


def test_distortion_survives_a_write_and_read(tmp_path):
    from nerf_engine.data.dataset import write_transforms

    split = read_transforms(photo_dataset(tmp_path, FISH, n=1) / "transforms.json")
    write_transforms(tmp_path / "again.json", split.frames)
    assert read_transforms(tmp_path / "again.json").frames[0].distortion == FISH
