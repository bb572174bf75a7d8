"""Training rays: pixels drawn uniformly over images of any mix of sizes, each with its own ray."""

from __future__ import annotations

import numpy as np
import torch

from nerf_engine.data.cameras import Intrinsics, camera_rays, look_at
from nerf_engine.data.dataset import Frame
from nerf_engine.data.scene_box import SceneBox
from nerf_engine.nerf.pixel_sampler import PixelSampler
from nerf_engine.nerf.rays import CameraTensors


def test_mixed_sizes_uniform_over_pixels_and_rays_match_their_pixels():
    box = SceneBox(np.array([[-1.0, -1, -1], [1, 1, 1]]), 1.0, 8.0)
    sizes = [(8, 6), (20, 10), (4, 4)]
    frames, images = [], []
    for i, (w, h) in enumerate(sizes):
        intr = Intrinsics(fl_x=10.0 + i, fl_y=12.0, cx=w / 2, cy=h / 2, w=w, h=h)
        frames.append(Frame(look_at([4.0, i, 1.0], [0, 0, 0]), intr))
        image = np.zeros((h, w, 4), np.float32)
        image[..., 0] = i / 4  # the frame, in the red channel
        image[..., 1] = (np.arange(w)[None, :] + 0.5) / 32  # the column, exactly in float16
        image[..., 2] = (np.arange(h)[:, None] + 0.5) / 32  # the row
        image[..., 3] = 1.0
        images.append(image)
    cameras = CameraTensors.from_frames(frames, box, torch.device("cpu"))
    sampler = PixelSampler(((im, None) for im in images), cameras, torch.device("cpu"))
    rays_o, rays_d, rgba = sampler.sample(60000, torch.Generator().manual_seed(0))
    frame = (rgba[:, 0] * 4).round().long()
    counts = torch.bincount(frame, minlength=3).float() / len(frame)
    areas = torch.tensor([w * h for w, h in sizes], dtype=torch.float32)
    torch.testing.assert_close(counts, areas / areas.sum(), atol=0.01, rtol=0)
    px, py = rgba[:, 1] * 32, rgba[:, 2] * 32  # the pixel centre each target came from
    poses = torch.tensor(box.to_unit_poses(np.stack([f.camera_to_world for f in frames])))
    fl_x = torch.tensor([f.intrinsics.fl_x for f in frames])[frame]
    cx = torch.tensor([f.intrinsics.cx for f in frames])[frame]
    cy = torch.tensor([f.intrinsics.cy for f in frames])[frame]
    o, d = camera_rays(
        poses[frame].double(),
        px.double(),
        py.double(),
        fl_x.double(),
        12.0,
        cx.double(),
        cy.double(),
    )
    torch.testing.assert_close(rays_d.double(), d, atol=1e-5, rtol=0)
    torch.testing.assert_close(rays_o.double(), o, atol=1e-5, rtol=0)


def test_centre_crop_keeps_rays_in_the_middle():
    intr = Intrinsics(fl_x=10.0, fl_y=10.0, cx=10.0, cy=10.0, w=20, h=20)
    box = SceneBox(np.array([[-1.0, -1, -1], [1, 1, 1]]), 1.0, 8.0)
    cameras = CameraTensors.from_frames(
        [Frame(look_at([4.0, 0, 0], [0, 0, 0]), intr)], box, torch.device("cpu")
    )
    image = np.zeros((20, 20, 4), np.float32)
    image[..., 1] = (np.arange(20)[None, :] + 0.5) / 32
    image[..., 2] = (np.arange(20)[:, None] + 0.5) / 32
    sampler = PixelSampler([(image, None)], cameras, torch.device("cpu"))
    _, _, rgba = sampler.sample(5000, torch.Generator().manual_seed(1), crop_fraction=0.5)
    px, py = rgba[:, 1] * 32, rgba[:, 2] * 32
    assert px.min() >= 5 and px.max() <= 15 and py.min() >= 5 and py.max() <= 15


def test_novel_view_bounds_cover_the_scene_box_from_any_distance():
    """Rendering bounds come from the scene box alone: a camera farther away than the training
    range [near, far] (or inside the box) still gets each ray's whole span through the box;
    training keeps its near/far, and the paper's sampling keeps it wherever it covers the box."""
    from nerf_engine.nerf.rays import RayBounds
    from nerf_engine.nerf.sampling import ray_aabb_intersect

    box = SceneBox(np.array([[-1.0, -1, -1], [1, 1, 1]]), 2.0, 5.0)  # a rig 3 units away
    cpu = torch.device("cpu")
    for distance in (3.0, 12.0, 0.0):  # the rig's, 4× it, inside the box
        rays_o = torch.tensor([[distance, 0.0, 0.0]] * 3)
        rays_d = torch.nn.functional.normalize(
            torch.tensor([[-1.0, 0, 0], [-1, 0.2, 0.1], [0, 0, 1]]), dim=-1
        )
        if distance > 0:
            rays_d[2] = torch.tensor([1.0, 0, 0])  # looks away: misses the box
        t_enter, t_exit = ray_aabb_intersect(rays_o, rays_d, torch.tensor(box.unit_aabb()).float())
        t_enter = t_enter.clamp_min(0.0)
        hit = (t_exit > t_enter)[:, 0]
        for use_aabb in (True, False):
            rays = RayBounds(box, use_aabb, cpu, novel_views=True)(rays_o, rays_d)
            assert (rays.near[hit] <= t_enter[hit] + 1e-6).all()
            assert (rays.far[hit] >= t_exit[hit] - 1e-6).all()
            if use_aabb:  # exactly the span through the box; a miss costs nothing
                torch.testing.assert_close(rays.near[hit], t_enter[hit])
                torch.testing.assert_close(rays.far[hit], t_exit[hit])
                assert (rays.far[~hit] == rays.near[~hit]).all()
            elif distance == 3.0:  # the training range covers the box: the paper's bounds
                assert (rays.near == 2.0).all() and (rays.far == 5.0).all()
        training = RayBounds(box, True, cpu)(rays_o, rays_d)
        empty = training.far == training.near  # (nothing left of the ray inside [2, 5])
        assert (training.near >= 2.0).all() and ((training.far <= 5.0) | empty).all()
