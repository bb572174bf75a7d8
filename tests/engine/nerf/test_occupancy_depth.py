"""The occupancy grid started from depth maps: the cells around known surface points occupied,
never a cell that holds a surface point empty, the rest skipped from the first step; refreshes
from the network stay within those cells."""

from __future__ import annotations

import torch

from nerf_engine.nerf.occupancy import OccupancyGrid

CENTER, RADIUS = torch.tensor([0.2, -0.1, 0.05]), 0.4


def sphere_surface(n: int, generator: torch.Generator) -> torch.Tensor:
    direction = torch.randn(n, 3, generator=generator)
    return CENTER + RADIUS * direction / direction.norm(dim=-1, keepdim=True)


def test_depth_points_mark_their_cells_and_a_margin_occupied_and_the_rest_empty():
    grid = OccupancyGrid(32, torch.tensor([[-1.0] * 3, [1.0] * 3]), step_size=0.05)
    generator = torch.Generator().manual_seed(0)
    points = sphere_surface(20000, generator)
    outside = torch.tensor([[3.0, 0.0, 0.0]])  # beyond the grid: ignored
    margin = 2
    cells = grid.cells_near([points[:7000], points[7000:], outside], margin)
    grid.bound(cells, seed=True)
    assert grid.query(points).all()  # never a cell holding a surface point empty
    # every cell within the margin (in cells, per axis) of a surface cell is occupied ...
    ijk = ((points + 1.0) / 2.0 * 32).long()
    for offset in ((margin, 0, 0), (0, -margin, 0), (0, 0, margin), (margin, margin, -margin)):
        shifted = (ijk + torch.tensor(offset)).clamp(0, 31)
        assert grid.occupied[shifted[:, 0], shifted[:, 1], shifted[:, 2]].all()
    # ... and a cell farther than the margin from the surface is empty (skipped from step 0)
    distance = ((grid.cell_centers() - CENTER).norm(dim=-1) - RADIUS).abs()
    far = distance > float(grid.cell_size.norm()) * (margin + 1)
    assert not grid.occupied.flatten()[far].any()
    assert grid.occupied_fraction() < 0.35


def test_refreshes_from_the_network_stay_within_the_depth_maps_cells():
    grid = OccupancyGrid(16, torch.tensor([[-1.0] * 3, [1.0] * 3]), step_size=0.05)
    points = sphere_surface(5000, torch.Generator().manual_seed(1))
    grid.bound(grid.cells_near([points], 1), seed=True)
    seeded = grid.occupied.clone()
    grid.update(lambda p: torch.full((len(p),), 50.0))  # a young network: dense everywhere
    assert torch.equal(grid.occupied, seeded)  # nothing outside the depth maps' surfaces
    grid.update(lambda p: torch.zeros(len(p)))
    grid.update(lambda p: ((p - CENTER).norm(dim=-1) - RADIUS).abs().lt(0.15).float() * 50.0)
    assert grid.query(points).all() and grid.occupied.sum() <= seeded.sum()
