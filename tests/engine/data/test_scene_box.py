"""Field case 03: the estimated scene box holds the content for every camera layout converters
produce — an orbit, a forward-facing capture (near-parallel axes), cameras looking outward, one
camera — and honours the file's near/far; without bounds for a non-orbit layout a note names the
keys to set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from real_world_helpers import content_points, dump, orbit_poses

from nerf_engine.data.cameras import Intrinsics, image_rays, look_at
from nerf_engine.data.dataset import read_transforms
from nerf_engine.data.scene_box import scene_box
from nerf_engine.tools.toy_scene import AABB, LOOK_AT

FORWARD = Intrinsics.from_fov(math.radians(60), 48, 36)


def forward_facing_poses(jitter: float = 0.01, seed: int = 3) -> list[np.ndarray]:
    """The case's capture: 20 cameras on a 0.8 × 0.5 grid, one orientation (± jitter rad, like a
    hand-held phone), 4–5 units from the toy scene."""
    rng = np.random.default_rng(seed)
    centre_eye = LOOK_AT + np.array([0.0, -4.2, 1.6])
    base = look_at(centre_eye, LOOK_AT)
    poses = []
    for iy in range(4):
        for ix in range(5):
            pose = base.copy()
            pose[:3, 3] = (
                centre_eye + base[:3, 0] * (ix - 2) * 0.2 + base[:3, 1] * (iy - 1.5) * 0.17
            )
            a, b = rng.normal(0, jitter, 2)
            rx = np.array(
                [[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]]
            )
            ry = np.array(
                [[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]]
            )
            pose[:3, :3] = pose[:3, :3] @ rx @ ry
            poses.append(pose)
    return poses


def camera_file(root, poses, intr: Intrinsics, **top):
    frames = [{"file_path": f"images/{i:03d}.png", "transform_matrix": p.tolist()}
              for i, p in enumerate(poses)]  # fmt: skip
    k = {
        "fl_x": intr.fl_x,
        "fl_y": intr.fl_y,
        "cx": intr.cx,
        "cy": intr.cy,
        "w": intr.w,
        "h": intr.h,
    }
    path = dump(root / "transforms.json", {**k, **top, "frames": frames})
    return read_transforms(path, require_images=False)


def share_inside(split, box) -> tuple[float, float]:
    """(share of the toy scene's visible surface points inside the box, share at a distance from
    the camera inside [near, far])."""
    inside = in_range = total = 0
    for frame in split.frames:
        o, d = image_rays(frame.intrinsics, frame.camera_to_world)
        points, t = content_points(o.reshape(-1, 3), d.reshape(-1, 3))
        total += len(t)
        inside += np.all((points >= box.aabb[0]) & (points <= box.aabb[1]), axis=1).sum()
        in_range += ((t >= box.near) & (t <= box.far)).sum()
    assert total > 100
    return inside / total, in_range / total


def test_forward_facing_capture_without_bounds_holds_the_content_and_says_what_to_set(tmp_path):
    """The case's right value: the content ([-1.6, -1.6, 0]..[1.6, 1.6, 0.9], 1.5–7.1 units from
    the cameras) inside the box (was 0%), and a note naming near, far and aabb."""
    split = camera_file(tmp_path, forward_facing_poses(), FORWARD)
    box = scene_box(split)
    assert share_inside(split, box) == (1.0, 1.0)
    (note,) = box.notes
    assert "'near' and 'far'" in note and "'aabb'" in note and "forward-facing" in note


def test_forward_facing_capture_with_near_far_gets_the_frusta_between_them(tmp_path):
    split = camera_file(tmp_path, forward_facing_poses(), FORWARD, near=1.51, far=7.07)
    box = scene_box(split)
    assert share_inside(split, box) == (1.0, 1.0)
    assert (box.near, box.far) == (1.51, 7.07) and box.notes == ()
    # the frusta between near and far, no bigger: the far corners of the outer cameras
    assert np.ptp(box.aabb, axis=0).max() < 2.2 * 7.07 * math.tan(math.radians(30)) + 1.0


def test_exactly_parallel_cameras_and_a_single_camera(tmp_path):
    for poses in (forward_facing_poses(jitter=0.0), forward_facing_poses()[:1]):
        split = camera_file(tmp_path, poses, FORWARD)
        box = scene_box(split)
        assert share_inside(split, box) == (1.0, 1.0) and len(box.notes) == 1


def test_cameras_looking_outward_from_the_middle_of_a_room(tmp_path):
    """A room scan: cameras at the centre looking out (their axes meet behind them). With near/far
    every point the cameras see in that range is inside the box."""
    eye = np.array([0.0, 0.0, 1.5])
    poses = [look_at(eye, eye + np.array([math.cos(a), math.sin(a), 0.0]))
             for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]  # fmt: skip
    split = camera_file(tmp_path, poses, FORWARD, near=0.5, far=6.0)
    box = scene_box(split)
    for frame in split.frames:
        o, d = image_rays(frame.intrinsics, frame.camera_to_world)
        for t in (0.5, 3.0, 6.0):
            p = (o + t * d).reshape(-1, 3)
            assert np.all((p >= box.aabb[0] - 1e-9) & (p <= box.aabb[1] + 1e-9))
    assert box.notes == ()
    assert len(scene_box(camera_file(tmp_path, poses, FORWARD)).notes) == 1  # no bounds: a note


@pytest.mark.parametrize("radius", [4.0, 6.0])
def test_an_orbit_keeps_the_box_around_the_point_the_cameras_look_at(tmp_path, radius):
    """The converging layout is unchanged: the content inside, a box near the toy scene's own."""
    intr = Intrinsics.from_fov(0.75, 48, 48)
    split = camera_file(tmp_path, orbit_poses(24, radius=radius), intr)
    box = scene_box(split)
    assert share_inside(split, box)[0] > 0.99 and box.notes == ()
    assert np.linalg.norm(box.center - LOOK_AT) < 0.1
    assert np.ptp(box.aabb, axis=0).max() < 3 * np.ptp(AABB, axis=0).max()


def test_the_files_aabb_wins(tmp_path):
    split = camera_file(tmp_path, forward_facing_poses(), FORWARD, aabb=AABB.tolist())
    box = scene_box(split)
    assert share_inside(split, box)[0] == 1.0 and box.notes == ()
    pad = 0.02 * np.ptp(AABB, axis=0).max()
    assert np.allclose(box.aabb, AABB + np.array([[-pad] * 3, [pad] * 3]))
