"""Empty-space skipping: a binary occupancy grid over the scene box (in the spirit of nerfacc).

Every few training steps the coarse network's density is sampled at a jittered point in every
cell; each cell keeps a decaying maximum of what it saw (``density = max(decay · density, σ)``),
and a cell is occupied while that density could make a sample in it visible: α = 1 − exp(−σ · δ)
above ``threshold`` for the renderer's typical sample spacing δ (``step_size``), or above the grid's
mean density while that is lower (early on, when everything is faint).
The occupied set is dilated by one cell so that surfaces on cell borders are never cut. Samples in
empty cells are dropped before the networks run, in the coarse and the fine pass alike.

With depth maps (exact, as a Blender export writes them) the grid starts from the cells around the
training views' surface points (``cells_near``, ``bound``): empty space is skipped from the first
step, and every refresh stays within those cells — no training view sees anything outside them,
and a network trained only where samples are taken has no say about the space it never sampled.

Thin structures: a structure about a cell thick is always kept. One point per cell finds a thinner
one only by chance, so the refresh that ends the training warm-up (after which cells are skipped)
measures every cell at several points (``samples_per_cell``); a wire a fifth of a cell thick may
still lose cells for a few hundred steps until the refreshes find them (a found cell is kept by
the decaying maximum). The grid's resolution is the scale of detail that is safe from skipping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .sampling import ray_aabb_intersect


class OccupancyGrid(nn.Module):
    """A ``resolution``³ grid over ``aabb`` (unit frame, [2, 3]), saved with the model."""

    def __init__(
        self,
        resolution: int,
        aabb: torch.Tensor,
        *,
        step_size: float,
        decay: float = 0.95,
        threshold: float = 0.01,
    ):
        super().__init__()
        self.resolution, self.decay, self.threshold = resolution, decay, threshold
        self.step_size = step_size
        self.register_buffer("aabb", aabb.detach().clone().float())
        self.register_buffer("density", torch.zeros((resolution,) * 3))
        self.register_buffer("occupied", torch.ones((resolution,) * 3, dtype=torch.bool))
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        # cells a refresh may mark occupied (None: all); set from depth maps by ``bound``, not
        # saved: a resumed run sets it again from the same depth maps
        self.allowed: torch.Tensor | None = None

    @property
    def cell_size(self) -> torch.Tensor:
        return (self.aabb[1] - self.aabb[0]) / self.resolution  # [3]

    def cell_centers(self) -> torch.Tensor:
        """[R³, 3] centres of all cells, in the order of ``occupied.flatten()``."""
        r = torch.arange(self.resolution, device=self.aabb.device, dtype=torch.float32) + 0.5
        ijk = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), dim=-1).reshape(-1, 3)
        return self.aabb[0] + ijk * self.cell_size

    def query(self, points: torch.Tensor) -> torch.Tensor:
        """[..., 3] points -> [...] True where a sample must be evaluated (occupied, or outside the
        grid, where the grid knows nothing)."""
        rel = (points - self.aabb[0]) / (self.aabb[1] - self.aabb[0])
        inside = ((rel >= 0) & (rel < 1)).all(dim=-1)
        ijk = (rel * self.resolution).long().clamp(0, self.resolution - 1)
        occupied = self.occupied[ijk[..., 0], ijk[..., 1], ijk[..., 2]]
        return occupied | ~inside

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[torch.Tensor], torch.Tensor],
        generator: torch.Generator | None = None,
        chunk: int = 65536,
        samples_per_cell: int = 1,
        cells: slice = slice(None),
        combine: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """Re-measure every cell with ``density_fn`` ([M, 3] points -> [M] σ) at
        ``samples_per_cell`` jittered points (their maximum counts) and re-threshold.

        Several processes (``distributed.py``) share the work and must end with the same grid:
        each measures only ``cells`` (its share of ``occupied.flatten()``; the others count
        σ = 0), and ``combine`` (an elementwise maximum over the processes, in place) joins the
        measurements [R³] before the grid changes — identical inputs, identical grids.
        """
        centers = self.cell_centers()
        sigma = torch.zeros(len(centers), device=centers.device)
        for _ in range(samples_per_cell):
            jitter = torch.rand(centers.shape, device=centers.device, generator=generator) - 0.5
            points = (centers + jitter * self.cell_size)[cells]
            measured = [density_fn(points[i : i + chunk]) for i in range(0, len(points), chunk)]
            sigma[cells] = torch.maximum(sigma[cells], torch.cat(measured).float())
        if combine is not None:
            sigma = combine(sigma)
        self.density.copy_(torch.maximum(self.density * self.decay, sigma.view_as(self.density)))
        visible = -math.log(1.0 - self.threshold) / self.step_size  # σ at which α = threshold
        threshold = min(visible, float(self.density.mean()))
        occupied = self.density > threshold
        dilated = F.max_pool3d(occupied[None, None].float(), kernel_size=3, stride=1, padding=1)
        occupied = dilated[0, 0] > 0
        self.occupied.copy_(occupied if self.allowed is None else occupied & self.allowed)
        self.updates += 1

    @torch.no_grad()
    def cells_near(self, points: Iterable[torch.Tensor], margin: int) -> torch.Tensor:
        """[R, R, R] bool: the cells holding one of ``points`` (chunks [M, 3], unit frame; points
        outside the grid are ignored), dilated by ``margin`` cells."""
        hits = torch.zeros(self.resolution**3, dtype=torch.bool, device=self.aabb.device)
        for chunk in points:
            chunk = chunk.to(self.aabb)
            rel = (chunk - self.aabb[0]) / (self.aabb[1] - self.aabb[0])
            hits[self._flat_index(chunk[((rel >= 0) & (rel < 1)).all(dim=-1)])] = True
        grid = hits.view((1, 1) + (self.resolution,) * 3).float()
        size = 2 * margin + 1
        return F.max_pool3d(grid, size, stride=1, padding=margin)[0, 0] > 0

    @torch.no_grad()
    def free_cells(
        self,
        rays: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        margin: int,
    ) -> torch.Tensor:
        """[R, R, R] bool: the cells that a ray crosses before its surface, ``margin`` cells and
        more in front of it (space carving). ``rays``: chunks of (rays_o [m, 3], rays_d [m, 3]
        unit directions, depth [m] distances along them; +inf: nothing hit, the whole way is
        free; NaN: unknown, nothing free), unit frame. The rays are walked in steps of half the
        smallest cell side. A cell behind every surface (inside a solid object) is never free:
        no ray sees it, and the network's density there is what lets a young field turn opaque."""
        free = torch.zeros(self.resolution**3, dtype=torch.bool, device=self.aabb.device)
        step = 0.5 * float(self.cell_size.min())
        keep_out = margin * float(self.cell_size.max()) * math.sqrt(3.0)
        for rays_o, rays_d, depth in rays:
            rays_o, rays_d = rays_o.to(self.aabb), rays_d.to(self.aabb)
            t_enter, t_exit = ray_aabb_intersect(rays_o, rays_d, self.aabb)
            start = t_enter[:, 0].clamp_min(0.0)
            end = torch.minimum(t_exit[:, 0], depth.to(self.aabb) - keep_out)
            end = torch.where(torch.isnan(depth), start, end)
            n_steps = int(((end - start).clamp_min(0.0).max() / step).ceil()) + 1
            for lo in range(0, n_steps, 64):
                t = start[:, None] + step * torch.arange(lo, min(lo + 64, n_steps)).to(start)
                ok = t < end[:, None]
                if not bool(ok.any()):
                    break
                points = rays_o[:, None] + t[..., None] * rays_d[:, None]
                free[self._flat_index(points[ok])] = True
        return free.view((self.resolution,) * 3)

    def _flat_index(self, points: torch.Tensor) -> torch.Tensor:
        """[M] flat indices of the cells holding ``points`` [M, 3] (clamped to the grid)."""
        rel = (points - self.aabb[0]) / (self.aabb[1] - self.aabb[0])
        ijk = (rel * self.resolution).long().clamp(0, self.resolution - 1)
        return (ijk[:, 0] * self.resolution + ijk[:, 1]) * self.resolution + ijk[:, 2]

    def bound(self, cells: torch.Tensor, *, seed: bool) -> None:
        """Keep every later refresh within ``cells`` ([R, R, R] bool: the cells the depth maps do
        not show empty — around their surfaces and behind them); with ``seed``, also start from
        them: those cells occupied, every other empty."""
        self.allowed = cells
        if seed:
            self.occupied.copy_(cells)

    def occupied_fraction(self) -> float:
        return float(self.occupied.float().mean())
