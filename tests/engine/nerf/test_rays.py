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


def test_carving_rays_cover_each_pixel_and_never_pass_a_surface_it_shows():
    """``depth_rays(subpixels=k)``: k × k rays over each pixel's footprint, each with a depth no
    farther than the real surface along it (a slanted plane: the 3 × 3 neighbourhood's smallest
    depth bounds it); a pixel that shows matter (alpha > 0) but whose depth hit nothing is unknown
    (NaN) for itself and its neighbours; alpha 0 is nothing hit (+inf)."""
    intr = Intrinsics(fl_x=8.0, fl_y=8.0, cx=4.0, cy=4.0, w=8, h=8)
    box = SceneBox(np.array([[-1.0, -1, -1], [1, 1, 1]]), 1.0, 8.0)  # unit frame = world
    pose = look_at([4.0, 0.0, 0.0], [0, 0, 0])
    cameras = CameraTensors.from_frames([Frame(pose, intr)], box, torch.device("cpu"))
    normal, offset = torch.tensor([1.0, -0.8, 0.3]), 0.2  # the plane n · x = offset

    def to_plane(o, d):  # distance along each ray to the plane
        return (offset - o @ normal) / (d @ normal)

    ys, xs = torch.meshgrid(torch.arange(8.0) + 0.5, torch.arange(8.0) + 0.5, indexing="ij")
    unit_pose = torch.tensor(box.to_unit_poses(pose[None])[0], dtype=torch.float32)
    o, d = camera_rays(unit_pose, xs, ys, 8.0, 8.0, 4.0, 4.0)
    depth = to_plane(o, d)
    assert (depth > 0).all()
    image = np.ones((8, 8, 4), np.float32)
    image[:, 6:, 3] = 0.0  # the last two columns see nothing
    depth[:, 6:] = torch.inf
    image[0, 0, 3] = 0.5  # an edge pixel whose depth sample missed
    depth[0, 0] = torch.inf
    sampler = PixelSampler([(image, None)], cameras, torch.device("cpu"), [depth.numpy()])
    rays_o, rays_d, carve = (
        torch.cat(v)
        for v in zip(*sampler.depth_rays(1000, None, chunk=50, subpixels=3), strict=True)
    )
    assert len(carve) == 64 * 9
    finite = torch.isfinite(carve)
    assert finite.sum() > 30 * 9
    # every ray lies within its pixel: its pixel coordinates, seen from the camera
    local = (rays_d @ unit_pose[:3, :3]) * torch.tensor([1.0, -1.0, -1.0])
    px, py = 8.0 * local[:, 0] / local[:, 2] + 4.0, 8.0 * local[:, 1] / local[:, 2] + 4.0
    pixel = (py.floor() * 8 + px.floor()).long()
    # pixels with all 8 neighbours seeing the plane: never past it (at the image's border and
    # beside empty pixels half the footprint has no neighbour; the carving's margin covers it)
    inner = finite & (pixel // 8 >= 1) & (pixel // 8 <= 6) & (pixel % 8 >= 1) & (pixel % 8 <= 4)
    assert inner.sum() == 23 * 9  # (6 × 4 inner pixels, less the edge pixel's neighbour)
    assert (carve[inner] <= to_plane(rays_o, rays_d)[inner] * (1 + 2**-10)).all()
    assert len(set(pixel.tolist())) == 64 and (torch.bincount(pixel) == 9).all()
    by_pixel = torch.full((64,), 0.0)
    by_pixel[pixel] = torch.where(carve.isnan(), 1.0, torch.where(carve.isinf(), 2.0, 0.0))
    kind = by_pixel.view(8, 8)
    assert (kind[:2, :2] == 1).all() and kind[2:, :].ne(1).all()  # NaN: the edge pixel's 3 × 3
    # +inf only where the whole 3 × 3 sees nothing; beside the plane its depth bounds the footprint
    assert (kind[2:, 7] == 2).all() and (kind[2:, :7] == 0).all()
