"""A NeRF whose field is fit directly to the toy scene's spheres: a run folder with known geometry.

Training from images learns geometry slowly (a 400-step preview of the 40×40 toy scene is still
foggy: its surfaces sit a quarter of a radius off), so what consumes a field's geometry — mesh
extraction, depth — is tested on a field fit to the truth instead: the real preview network,
supervised with the analytic density (σ high inside a sphere, falling off within
:data:`EDGE` of its surface) and with the colour the training images show on each sphere
(``toy_scene.seen_color``), in a scene box moved by ``offset`` and scaled by ``scale`` so that
world space is not the unit frame. Seconds on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import save_checkpoint
from ..config import preset, with_overrides
from ..data.scene_box import SceneBox
from ..nerf.model import NeRF
from . import toy_scene

SPHERE_SIGMA = 400.0  # σ inside the spheres, per unit of the toy scene's length
EDGE = 0.008  # the density's fall-off at the surface (toy units)
AABB = np.array([[-1.0, -1.0, -0.1], [1.0, 1.0, 0.9]])  # around the spheres (toy units)
_CENTERS = np.array([s.center for s in toy_scene.SPHERES])
_RADII = np.array([s.radius for s in toy_scene.SPHERES])


def sphere_targets(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For toy-scene points [N, 3]: σ [N] (toy units), the seen colour of the nearest sphere's
    surface point [N, 3], and the signed distance to that sphere [N]."""
    gaps = np.linalg.norm(points[:, None] - _CENTERS[None], axis=-1) - _RADII
    nearest = gaps.argmin(axis=1)
    signed = gaps[np.arange(len(points)), nearest]
    sigma = SPHERE_SIGMA / (1.0 + np.exp(np.clip(signed / EDGE, -50.0, 50.0)))
    normal = points - _CENTERS[nearest]
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
    surface = _CENTERS[nearest] + _RADII[nearest, None] * normal
    return sigma, toy_scene.seen_color(surface + 0.05 * normal, -normal), signed


def fit_toy_field(
    run_dir: str | os.PathLike,
    *,
    scale: float = 1.0,
    offset=(0.0, 0.0, 0.0),
    steps: int = 400,
    seed: int = 0,
) -> Path:
    """Fit the preview network to the spheres in the box ``AABB · scale + offset`` and write it
    as ``run_dir``'s only checkpoint (no occupancy grid; the coarse network is a copy of the
    fine one). Returns ``run_dir``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    offset = np.asarray(offset, dtype=np.float64)
    config = with_overrides(preset("preview"), {"sampling.occupancy_resolution": 0})
    box = SceneBox(AABB * scale + offset, 0.5 * scale, 20.0 * scale)
    model = NeRF(config.model, config.sampling, torch.tensor(box.unit_aabb(), dtype=torch.float32))
    field = model.fine
    optimizer = torch.optim.Adam(field.parameters(), lr=2e-3)
    for _ in range(steps):
        points = _training_points(rng)
        sigma, color, signed = sphere_targets(points)
        x = torch.tensor(((points * scale + offset) - box.center) / box.scale, dtype=torch.float32)
        view = torch.nn.functional.normalize(torch.randn(len(x), 3), dim=-1)
        rgb, raw = field(field.pos_enc(x), field.direction_term(view))
        # σ per unit-frame length = σ per toy length × toy lengths per unit-frame length
        target = torch.tensor(sigma * box.scale / scale, dtype=torch.float32)
        density = field.density(raw[:, 0])
        near = torch.tensor(np.abs(signed) < 0.05, dtype=torch.float32)
        color_error = ((rgb - torch.tensor(color, dtype=torch.float32)) ** 2).sum(-1)
        loss = ((torch.log1p(density) - torch.log1p(target)) ** 2).mean()
        loss = loss + 10.0 * (color_error * near).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.coarse.load_state_dict(field.state_dict())
    run = Path(run_dir)
    save_checkpoint(
        run / "checkpoints" / "step_0000001.pt", step=1, config=config, box=box,
        dataset_dir="", model=model, optimizer=optimizer, generator=torch.Generator(),
    )  # fmt: skip
    return run


def _training_points(rng: np.random.Generator, n: int = 2048) -> np.ndarray:
    """Toy-scene points: ``n`` anywhere in the box, ``2n`` near the spheres' surfaces."""
    anywhere = rng.uniform(AABB[0], AABB[1], (n, 3))
    which = rng.integers(0, len(_RADII), 2 * n)
    direction = rng.normal(size=(2 * n, 3))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    depth = _RADII[which, None] + rng.normal(0.0, 0.03, (2 * n, 1))
    return np.concatenate([anywhere, _CENTERS[which] + depth * direction])
