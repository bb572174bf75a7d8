"""COLMAP text model and points3d.ply: the pose conversion against our own projection, quaternions
on every branch, reading what other tools write, and the points' size rule."""

from __future__ import annotations

import numpy as np
import plyfile  # an independent PLY reader (requirements-dev.txt)
import pytest

from nerf_engine.data.cameras import Intrinsics, look_at, project_points
from nerf_engine.data.colmap import (
    ColmapView,
    colmap_pose,
    quaternion_to_rotation,
    read_colmap_text,
    rotation_to_quaternion,
    write_colmap_text,
)
from nerf_engine.data.lens import RADIAL_TANGENTIAL
from nerf_engine.data.point_cloud import surface_pixels, view_shares, write_ply
from nerf_engine.data.transforms_fields import DatasetError

K = Intrinsics(fl_x=40.0, fl_y=32.0, cx=17.25, cy=11.5, w=32, h=24)


def test_colmap_pose_projects_like_our_cameras():
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, size=(50, 3))
    for eye in ((4, 1, 2), (-3, -3, -1), (0.1, 0.2, 5), (0, 0, -5)):
        c2w = look_at(eye, (0, 0, 0))
        qvec, tvec = colmap_pose(c2w)
        cam = points @ quaternion_to_rotation(qvec).T + tvec  # OpenCV: +Z forward, +Y down
        assert (cam[:, 2] > 0).all()
        pixels = np.stack(
            [K.fl_x * cam[:, 0] / cam[:, 2] + K.cx, K.fl_y * cam[:, 1] / cam[:, 2] + K.cy], -1
        )
        expected, depth = project_points(points, K, c2w)
        assert np.allclose(pixels, expected, atol=1e-9) and np.allclose(cam[:, 2], depth)


@pytest.mark.parametrize("seed", range(4))
def test_quaternions_on_every_branch(seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    half_turns = [np.diag(d) for d in ((1, -1, -1), (-1, 1, -1), (-1, -1, 1))]
    for rotation in [np.eye(3), q, *half_turns]:
        qvec = rotation_to_quaternion(rotation)
        assert qvec[0] >= 0 and np.linalg.norm(qvec) == pytest.approx(1.0)
        assert np.allclose(quaternion_to_rotation(qvec), rotation, atol=1e-12)


def test_write_then_read_keeps_poses_and_intrinsics(tmp_path):
    views = [ColmapView(f"train/r_{i}.png", look_at((3, i, 2), (0, 0, 0)), K) for i in range(3)]
    write_colmap_text(tmp_path, views)
    assert (tmp_path / "cameras.txt").read_text().count("PINHOLE") == 1  # shared intrinsics
    back = read_colmap_text(tmp_path)
    assert [v.name for v in back] == [v.name for v in views]
    for got, want in zip(back, views, strict=True):
        assert got.intrinsics == want.intrinsics and got.distortion is None
        assert np.allclose(got.camera_to_world, want.camera_to_world, atol=1e-12)


def test_reads_a_colmap_model_with_distortion_and_points(tmp_path):
    """As COLMAP writes it: comments, an OPENCV camera, an image with 2D points."""
    (tmp_path / "cameras.txt").write_text(
        "# Camera list with one line of data per camera:\n# Number of cameras: 1\n"
        "7 OPENCV 640 480 500 510 320.5 240.5 -0.1 0.01 0.001 -0.002\n"
    )
    (tmp_path / "images.txt").write_text(
        "# Image list with two lines of data per image:\n"
        "1 0.7071067811865476 0.7071067811865476 0 0 1 2 3 7 IMG 0001.jpg\n"
        "10.5 20.5 1 30.5 40.5 -1\n"
    )
    (view,) = read_colmap_text(tmp_path)
    assert view.name == "IMG 0001.jpg"  # a name with a space is the rest of the line
    assert view.intrinsics == Intrinsics(500.0, 510.0, 320.5, 240.5, 640, 480)
    assert view.distortion.model == RADIAL_TANGENTIAL
    assert (view.distortion.k1, view.distortion.p2) == (-0.1, -0.002)
    qvec, tvec = colmap_pose(view.camera_to_world)
    assert np.allclose(qvec, [0.5**0.5, 0.5**0.5, 0, 0]) and np.allclose(tvec, [1, 2, 3])


@pytest.mark.parametrize(
    ("cameras", "images", "match"),
    [
        ("1 PINHOLE 32 24 40 32 16\n", "", "needs CAMERA_ID MODEL WIDTH HEIGHT and 4"),
        ("1 PINHOLE 32 0 40 32 16 12\n", "", "WIDTH and HEIGHT must be positive"),
        ("1 PINHOLE 32 24 40 32 16 12\n", "1 1 0 0 0 0 0 4 2 a.png\n\n", "camera 2 is not"),
        ("1 PINHOLE 32 24 40 32 16 12\n", "1 1 0 0 x 0 0 4 1 a.png\n\n", "expected numbers"),
        ("1 PINHOLE 32 24 40 32 16 12\n", "# nothing\n", "lists no image"),
    ],
)
def test_bad_models_name_the_file_and_line(tmp_path, cameras, images, match):
    (tmp_path / "cameras.txt").write_text(cameras)
    (tmp_path / "images.txt").write_text(images)
    with pytest.raises(DatasetError, match=match):
        read_colmap_text(tmp_path)


def test_size_rule_shares_the_points_between_views():
    assert view_shares(3, 10) == [4, 3, 3]
    assert sum(view_shares(7)) == 100_000
    rng = np.random.default_rng(0)
    distance = np.where(rng.uniform(size=(40, 50)) < 0.5, 2.0, 0.0)
    distance[0, 0] = np.inf  # Blender's "no hit" that was not zeroed: not a surface
    rows, cols = surface_pixels(distance, 100, rng)
    assert len(rows) == 100 and (distance[rows, cols] == 2.0).all()
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == 100  # no pixel twice
    rows, cols = surface_pixels(distance, 10_000, rng)
    assert len(rows) == int((distance == 2.0).sum())  # fewer surface pixels: all of them


def test_ply_reads_back_with_plyfile(tmp_path):
    xyz = np.array([[0.5, -1.0, 2.0], [3.0, 4.0, -5.25]])
    rgb = np.array([[255, 0, 7], [1, 2, 3]], dtype=np.uint8)
    write_ply(tmp_path / "points3d.ply", xyz, rgb)
    vertex = plyfile.PlyData.read(str(tmp_path / "points3d.ply"))["vertex"]
    assert np.array_equal(np.stack([vertex[a] for a in "xyz"], -1), xyz)
    assert np.array_equal(np.stack([vertex[c] for c in ("red", "green", "blue")], -1), rgb)
    assert {"nx", "ny", "nz"} <= set(vertex.data.dtype.names)  # 3DGS's fetchPly reads them
