"""Camera and dataset math of the exporter (blender_nerf.scene.geometry), against hand-computed
values.

The module itself never imports bpy, but importing it goes through the add-on package, which does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("bpy")

from blender_nerf.nerf_engine.data.cameras import Intrinsics, look_at, project_points
from blender_nerf.scene import geometry


def _intr(**overrides):
    args = dict(
        lens=50.0, sensor_width=36.0, sensor_height=24.0, sensor_fit="AUTO",
        shift_x=0.0, shift_y=0.0, w=1920, h=1080,
    )  # fmt: skip
    args.update(overrides)
    return geometry.blender_intrinsics(**args)


def test_landscape_auto_fit_uses_the_sensor_width_across_the_width():
    k = _intr()
    assert k.fl_x == pytest.approx(50 / 36 * 1920)
    assert k.fl_y == pytest.approx(k.fl_x)
    assert (k.cx, k.cy, k.w, k.h) == (960.0, 540.0, 1920, 1080)


def test_portrait_auto_fit_puts_the_sensor_width_across_the_height():
    """The classic exporter bug: focal from sensor_width and the image width, wrong for portrait."""
    k = _intr(w=1080, h=1920)
    assert k.fl_y == pytest.approx(50 / 36 * 1920)
    assert k.fl_x == pytest.approx(k.fl_y)
    assert k.fl_x != pytest.approx(50 / 36 * 1080)


def test_vertical_fit_uses_the_sensor_height_across_the_height():
    k = _intr(sensor_fit="VERTICAL")
    assert k.fl_y == pytest.approx(50 / 24 * 1080)
    assert k.fl_x == pytest.approx(k.fl_y)


def test_horizontal_fit_on_portrait_keeps_the_width():
    k = _intr(sensor_fit="HORIZONTAL", w=1080, h=1920)
    assert k.fl_x == pytest.approx(50 / 36 * 1080)


def test_shift_moves_the_principal_point_by_the_fitted_side():
    k = _intr(shift_x=0.15, shift_y=-0.1)
    assert k.cx == pytest.approx(960 - 0.15 * 1920)
    assert k.cy == pytest.approx(540 - 0.1 * 1920)  # shift is in units of the fitted (wider) side
    k = _intr(shift_x=0.15, shift_y=-0.1, w=1080, h=1920)
    assert k.cx == pytest.approx(540 - 0.15 * 1920)


def test_wide_pixels_halve_the_horizontal_focal_in_pixels():
    k = _intr(pixel_aspect_x=2.0, pixel_aspect_y=1.0)  # 1920 px of double width: 3840 wide
    assert k.fl_y == pytest.approx(2 * k.fl_x)
    assert k.fl_x == pytest.approx(50 / 36 * 1920)
    # AUTO compares the frame as displayed: 960x1080 with 2:1 pixels is landscape (1920 wide)
    k = _intr(w=960, h=1080, pixel_aspect_x=2.0)
    assert k.fl_x == pytest.approx(50 / 36 * 960)


def test_bad_camera_values_are_refused():
    with pytest.raises(ValueError, match="sensor_fit"):
        _intr(sensor_fit="DIAGONAL")
    with pytest.raises(ValueError, match="positive"):
        _intr(lens=0.0)


def test_normalized_pose_drops_scale():
    c2w = look_at((3.0, -2.0, 1.0), (0.0, 0.0, 0.0))
    scaled = c2w.copy()
    scaled[:3, :3] *= np.array([2.0, 0.5, 3.0])
    assert np.allclose(geometry.normalized_pose(scaled), c2w)


@pytest.mark.parametrize("low, high", [(0.0, math.pi / 2), (-math.pi / 2, math.pi / 2), (0.2, 0.6)])
def test_sphere_directions_cover_the_band_without_duplicates(low, high):
    d = geometry.sphere_directions(50, low, high, seed=3)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0)
    elevation = np.arcsin(d[:, 2])
    assert elevation.min() >= low - 1e-9 and elevation.max() <= high + 1e-9
    gaps = np.linalg.norm(d[:, None] - d[None], axis=2) + np.eye(50) * 10
    assert gaps.min() > 0.05
    assert np.allclose(d, geometry.sphere_directions(50, low, high, seed=3))
    assert not np.allclose(d, geometry.sphere_directions(50, low, high, seed=4))


def test_fit_radius_frames_the_bounding_sphere():
    k = Intrinsics.from_fov(math.radians(40), 64, 48)
    radius = geometry.fit_radius(1.0, k, margin=1.0)
    half_y = math.atan(24 / k.fl_y)  # the narrower side limits
    assert radius == pytest.approx(1.0 / math.sin(half_y))
    poses = geometry.rig_poses(np.zeros(3), radius, geometry.sphere_directions(8, 0, 1, 0))
    points = np.array([[0, 0, 1.0], [0, 0, -1.0], [1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0]])
    for c2w in poses:
        px, depth = project_points(points, k, c2w)
        assert (depth > 0).all()
        assert (px >= -1e-6).all() and (px[:, 0] <= 64 + 1e-6).all() and (px[:, 1] <= 48).all()


@pytest.mark.parametrize("n, n_val, n_test", [(12, 1, 1), (100, 10, 10), (7, 0, 3), (5, 2, 0)])
def test_assign_splits_is_deterministic_and_spread(n, n_val, n_test):
    labels = geometry.assign_splits(n, n_val, n_test)
    assert labels == geometry.assign_splits(n, n_val, n_test)
    assert labels.count("val") == n_val and labels.count("test") == n_test
    held = [i for i, s in enumerate(labels) if s != "train"]
    if len(held) > 1:
        assert max(np.diff(held)) <= math.ceil(n / len(held)) + 1


def test_assign_splits_refuses_to_leave_nothing_to_train():
    with pytest.raises(ValueError, match="no training view"):
        geometry.assign_splits(4, 2, 2)


def test_split_counts():
    assert geometry.split_counts(100, "FRACTION", 0.1, 0.2) == (10, 20)
    assert geometry.split_counts(12, "FRACTION", 0.05, 0.0) == (1, 0)  # never rounds to nothing
    assert geometry.split_counts(12, "COUNT", 3, 2) == (3, 2)


def test_near_far_enclose_the_box_from_every_camera():
    aabb = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    poses = np.stack([look_at((5.0, 0, 0), (0, 0, 0)), look_at((0, 0, 3.0), (0, 0, 0))])
    near, far = geometry.near_far(aabb, poses, margin=0.0)
    assert near == pytest.approx(2.0)  # the camera at z=3 is 2 from the top face
    assert far == pytest.approx(math.sqrt(6**2 + 1 + 1))  # (5,0,0) to (-1, ±1, ±1)
    inside = np.stack([look_at((0.0, 0, 0.5), (1, 0, 0))])
    assert geometry.near_far(aabb, inside)[0] == 0.0


def test_planar_to_ray_distance():
    k = Intrinsics(fl_x=10.0, fl_y=20.0, cx=2.0, cy=1.0, w=4, h=2)
    d = geometry.planar_to_ray_distance(np.full((2, 4), 3.0), k)
    x, y = (np.arange(4) + 0.5 - 2.0) / 10.0, (np.arange(2) + 0.5 - 1.0) / 20.0
    assert np.allclose(d, 3.0 * np.sqrt(1 + x[None] ** 2 + y[:, None] ** 2))
    assert (d > 3.0).all()


def test_ground_planes_are_flat_and_far_larger_than_the_solid_objects():
    def box(lo, hi):
        return np.array([lo, hi], dtype=float)

    product = box((-1, -1, 0), (1, 1, 2))
    floor = box((-25, -25, 0), (25, 25, 0))  # a studio floor under the product
    plinth = box((-1.5, -1.5, 0), (1.5, 1.5, 0))  # a plane just under it: part of it
    far_floor = box((475, 275, 0), (525, 325, 0))  # a ground left far from the product
    tilted = box((-20, -20, -20), (20, 20, 20))  # a backdrop turned 45°: flat in its own axes
    boxes = np.stack([product, floor, plinth, far_floor])
    dims = np.array([(2, 2, 2), (50, 50, 0), (3, 3, 0), (50, 50, 0)], dtype=float)
    assert geometry.ground_planes(boxes, dims).tolist() == [False, True, False, True]
    assert geometry.ground_planes(
        np.stack([product, tilted]), np.array([(2, 2, 2), (56, 0.01, 56)])
    ).tolist() == [False, True]
    # three or more large planes enclose the rest (a room's floor and walls): they stay
    walls = [box((-10, 6, 0), (10, 6, 3)), box((-10, -6, 0), (10, -6, 3)), floor]
    room = np.stack([product, *walls])
    room_dims = np.array([(2, 2, 2), (20, 0, 3), (20, 0, 3), (50, 50, 0)], dtype=float)
    assert not geometry.ground_planes(room, room_dims).any()
    # only planes (cards, image planes): nothing to compare with, nothing left out
    assert not geometry.ground_planes(boxes[1:], dims[1:]).any()


def test_inside_out_poses_stand_around_the_centre_and_look_away_from_it():
    centre = np.array([1.0, 2.0, 1.5])
    aabb = np.array([[-9.0, -4.0, 0.0], [11.0, 8.0, 3.0]])
    radius = geometry.inside_out_radius(centre, aabb)
    assert radius == pytest.approx(0.25 * 1.5)  # a quarter of the way to the floor/ceiling
    directions = geometry.sphere_directions(10, -0.5, 0.5, 0)
    poses = geometry.inside_out_poses(centre, radius, directions)
    assert np.allclose(np.linalg.norm(poses[:, :3, 3] - centre, axis=1), radius)
    assert np.allclose(-poses[:, :3, 2], directions)  # each looks along its direction, outward
    assert geometry.inside_out_radius((20.0, 0.0, 1.0), aabb) == 0.0  # outside the box
    assert geometry.nearest_distance(aabb, poses[:, :3, 3]) > 9.0
