"""Training with depth maps: the training pixels' depth in the unit frame, the depth loss of one
pass (nerf/depth_loss.py, weighted by ``schedule.depth_loss_weight``), and the occupancy grid
started from the depth maps' surface points.

Depth is used when the dataset has depth maps (``depth_file_path``) and ``depth_loss`` > 0.
Distances are converted to the unit frame exactly as the poses are: divided by the scene box's
``scale`` (the camera centres are moved and scaled; a distance along a unit ray only scales).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from ..config import TrainConfig
from ..data.dataset import Split
from ..data.depth import depth_notes, has_depth, iter_depths
from ..data.scene_box import SceneBox
from ..nerf.depth_loss import depth_loss
from ..nerf.model import NeRFOutput
from ..nerf.occupancy import OccupancyGrid
from ..nerf.pixel_sampler import PixelSampler
from ..nerf.rays import RayBatch

# Cells around each surface point that start occupied: the surface's own cell and two more on
# every side (the grid's refresh dilates by one; two covers a surface point on a cell border, and
# the depth of anti-aliased edge pixels, which lies between the two surfaces an edge separates).
SEED_MARGIN_CELLS = 2
# Training rays walked to carve the empty space in front of their surfaces (a random subset of
# the pixels of a large dataset; several rays a pixel over a small one, PixelSampler.depth_rays:
# a cell no ray crosses stays occupied and no sample ever tells the networks it is empty, which
# held-out views then see as fog). Only in front: the inside of a solid object stays occupied,
# as the network's own density keeps it after a refresh — with only a thin shell of cells around
# the surfaces a young field has too few samples to turn opaque and learns a half-transparent
# front and back (a plain sphere exported at 16–32 pixels: 11.8 dB against 21.8 dB without the
# grid's start).
CARVE_RAYS = 1 << 18


def training_depths(
    config: TrainConfig, split: Split, box: SceneBox
) -> tuple[Iterator[np.ndarray | None] | None, tuple[str, ...]]:
    """(every frame's depth in the unit frame, one frame at a time — or None when the split has
    no depth maps or ``depth_loss`` is 0 — and notes for the user)."""
    if config.depth_loss <= 0 or not has_depth(split.frames):
        return None, ()
    scale = box.scale
    return (None if d is None else d / scale for d in iter_depths(split)), depth_notes(split)


def depth_term(
    out: NeRFOutput, rays: RayBatch, depth: torch.Tensor, alpha: torch.Tensor, weight: float
) -> torch.Tensor:
    """``weight`` × the depth loss of the coarse and the fine render of N rays (the rays' bounds
    ``rays``; ``depth`` [N] unit-frame distances, +inf nothing hit, NaN unknown; the pixels'
    ``alpha`` [N]: a transparent pixel (alpha 0) hits nothing). Rays that miss the scene box
    (``near`` = ``far``; they have no samples) add 0 to the mean."""
    depth = torch.where(alpha <= 0, torch.full_like(depth, torch.inf), depth)
    hit = (rays.far > rays.near)[:, 0]
    share = float(hit.sum()) / max(len(hit), 1)
    if share == 0:
        return depth.new_zeros(())
    total = depth.new_zeros(())
    for part in (out.coarse, out.fine):
        if part is not None:
            loss = depth_loss(part.weights, part.t_vals, depth[hit], rays.far[hit, 0])
            total = total + loss
    return weight * share * total


def bound_occupancy(grid: OccupancyGrid | None, sampler: PixelSampler, *, seed: bool) -> bool:
    """Keep ``grid`` within the cells the depth maps do not show empty (space carved in front of
    the training pixels' surfaces; the cells around the surface points are always kept) and,
    with ``seed``, start it from them (see ``OccupancyGrid.bound``); whether it was done: a grid and
    complete depth maps are needed (a pixel without a measurement — a sensor's hole — may hide
    a surface no other view shows)."""
    if grid is None or sampler.depth is None:
        return False
    valid = sampler.depth if sampler.valid_index is None else sampler.depth[sampler.valid_index]
    if bool(torch.isnan(valid).any()):
        return False
    generator = torch.Generator(device=sampler.rgba.device).manual_seed(0)
    # a few views of few pixels: several rays a pixel, over its footprint (up to 4 × 4)
    subpixels = max(1, min(4, math.isqrt(CARVE_RAYS // max(sampler.n_pixels, 1))))
    rays = sampler.depth_rays(CARVE_RAYS // subpixels**2, generator, subpixels=subpixels)
    free = grid.free_cells(rays, SEED_MARGIN_CELLS)
    near = grid.cells_near(sampler.surface_points(), SEED_MARGIN_CELLS)
    grid.bound(near | ~free, seed=seed)
    return True
