"""Pinhole rays: through the right 3D points, OpenGL axes, pixel centres, batching, rescaling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nerf_engine.data.cameras import Intrinsics, camera_rays, image_rays, look_at, project_points

ODD_CAMERA = Intrinsics(fl_x=80.0, fl_y=95.0, cx=41.3, cy=22.7, w=90, h=50)


def random_pose(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = q, rng.normal(size=3) * 3
    return pose


def point_to_ray_distance(p, o, d):
    v = p - o
    return np.linalg.norm(v - (v * d).sum(-1, keepdims=True) * d, axis=-1)


def test_ray_through_pixel_passes_through_the_point_that_projects_there():
    rng = np.random.default_rng(0)
    for _ in range(5):
        c2w = random_pose(rng)
        local = np.stack(
            [rng.uniform(-1, 1, 50), rng.uniform(-0.5, 0.5, 50), -rng.uniform(1, 9, 50)], -1
        )
        points = local @ c2w[:3, :3].T + c2w[:3, 3]
        pixels, depth = project_points(points, ODD_CAMERA, c2w)
        np.testing.assert_allclose(depth, -local[:, 2], rtol=1e-9)
        o, d = camera_rays(c2w, pixels[:, 0], pixels[:, 1], *_k(ODD_CAMERA))
        np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, rtol=1e-12)
        assert point_to_ray_distance(points, o, d).max() < 1e-9
        assert ((points - o) * d).sum(-1).min() > 0  # in front of the camera


def _k(intr: Intrinsics):
    return intr.fl_x, intr.fl_y, intr.cx, intr.cy


def test_opengl_convention_on_a_hand_made_camera():
    # A camera at (0, -5, 0) looking along +Y (Blender: rotation x = 90°), up = +Z.
    c2w = np.array([[1, 0, 0, 0], [0, 0, -1, -5], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float)
    intr = Intrinsics(fl_x=10, fl_y=10, cx=5, cy=5, w=10, h=10)
    o, d = camera_rays(c2w, np.array([5.0, 9.5, 5.0]), np.array([5.0, 5.0, 0.5]), *_k(intr))
    np.testing.assert_allclose(o, [[0, -5, 0]] * 3)
    np.testing.assert_allclose(d[0], [0, 1, 0], atol=1e-12)  # principal point -> straight ahead
    assert d[1, 0] > 0 and abs(d[1, 2]) < 1e-12  # a pixel right of centre looks right (+X)
    assert d[2, 2] > 0 and abs(d[2, 0]) < 1e-12  # the top row looks up (+Z)
    np.testing.assert_allclose(look_at([0, -5, 0], [0, 0, 0]), c2w, atol=1e-12)


def test_rays_go_through_pixel_centres():
    intr = Intrinsics(fl_x=1.0, fl_y=1.0, cx=1.0, cy=1.0, w=2, h=2)
    _, d = image_rays(intr, np.eye(4))
    expected = np.array([-0.5, 0.5, -1.0]) / math.sqrt(1.5)
    np.testing.assert_allclose(d[0, 0], expected)  # top-left pixel, centre (0.5, 0.5)
    np.testing.assert_allclose(d[1, 1], expected * [-1, -1, 1])


def test_batched_torch_and_numpy_agree_with_one_by_one():
    rng = np.random.default_rng(1)
    poses = np.stack([random_pose(rng) for _ in range(6)])
    px, py = rng.uniform(0, 90, 6), rng.uniform(0, 50, 6)
    o_np, d_np = camera_rays(poses, px, py, *_k(ODD_CAMERA))
    o_t, d_t = camera_rays(torch.tensor(poses), torch.tensor(px), torch.tensor(py), *_k(ODD_CAMERA))
    np.testing.assert_allclose(d_t.numpy(), d_np, rtol=1e-12)
    np.testing.assert_allclose(o_t.numpy(), o_np, rtol=1e-12)
    for i in range(6):
        o1, d1 = camera_rays(poses[i], px[i : i + 1], py[i : i + 1], *_k(ODD_CAMERA))
        np.testing.assert_allclose(d1[0], d_np[i], rtol=1e-12)
        np.testing.assert_allclose(o1[0], o_np[i], rtol=1e-12)


@pytest.mark.parametrize("size", [(45, 25), (180, 100), (91, 51)])
def test_scaled_intrinsics_keep_the_image_plane(size):
    """A point lands at the same fraction of the image at any render resolution."""
    rng = np.random.default_rng(2)
    c2w = random_pose(rng)
    points = np.stack([rng.uniform(-1, 1, 20), rng.uniform(-1, 1, 20), -rng.uniform(2, 5, 20)], -1)
    points = points @ c2w[:3, :3].T + c2w[:3, 3]
    scaled = ODD_CAMERA.scaled(*size)
    a, _ = project_points(points, ODD_CAMERA, c2w)
    b, _ = project_points(points, scaled, c2w)
    np.testing.assert_allclose(
        b / [scaled.w, scaled.h], a / [ODD_CAMERA.w, ODD_CAMERA.h], atol=1e-12
    )


def test_field_of_view_round_trip():
    intr = Intrinsics.from_fov(0.6911112070083618, 800, 800)
    assert intr.fl_x == pytest.approx(1111.1110311937682)
    assert intr.camera_angle_x == pytest.approx(0.6911112070083618)
    assert (intr.cx, intr.cy) == (400.0, 400.0)
