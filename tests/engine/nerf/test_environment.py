"""The world behind the scene (``nerf/environment.py``): a direction reads the texel it points
at, the ±180° seam is continuous, and the map composites behind the field."""

from __future__ import annotations

import math

import torch

from nerf_engine.nerf.environment import EnvironmentMap, direction_to_equirect
from nerf_engine.nerf.volume_rendering import volume_render


def _direction(row: int, col: int, height: int) -> torch.Tensor:
    """The unit direction through the centre of texel (row, col) of a ``height``-row map."""
    lon = ((col + 0.5) / (2 * height) * 2 - 1) * math.pi
    lat = -((row + 0.5) / height * 2 - 1) * math.pi / 2
    return torch.tensor(
        [[math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)]]
    )


def test_a_direction_reads_its_texel_and_the_seam_is_continuous():
    env = EnvironmentMap(8)
    assert [tuple(t.shape) for t in env.levels] == [(1, 3, 8, 16), (1, 3, 4, 8)]
    up, east = direction_to_equirect(torch.tensor([[0.0, 0, 1], [0, 1, 0]]))
    assert torch.allclose(up, torch.tensor([0.0, -1.0])) and torch.allclose(
        east, torch.tensor([0.5, 0])
    )
    with torch.no_grad():
        env.levels[0][0, 0, 1, 3] = 2.0  # red at row 1, column 3 of the fine level
        env.levels[0][0, 1, :, 0], env.levels[0][0, 1, :, -1] = 1.0, -1.0  # green: the edges
    rgb = env(_direction(1, 3, 8))
    assert torch.allclose(rgb, torch.tensor([[torch.sigmoid(torch.tensor(2.0)), 0.5, 0.5]]))
    # just either side of longitude 180°: both halfway between the first and the last column
    e = 1e-4
    seam = env(torch.nn.functional.normalize(torch.tensor([[-1.0, e, 0], [-1.0, -e, 0]]), dim=-1))
    assert torch.allclose(seam[:, 1], torch.tensor([0.5, 0.5]), atol=1e-3)
    assert torch.allclose(env(_direction(3, 0, 8))[0, 1], torch.sigmoid(torch.tensor(1.0)))


def test_the_world_shows_where_the_field_is_transparent():
    env = EnvironmentMap(4)
    rays_d = torch.nn.functional.normalize(
        torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    sigma = torch.zeros(5, 4)
    sigma[:2] = 1e4  # two rays hit something opaque and red, the others see through
    rgb = torch.zeros(5, 4, 3)
    rgb[..., 0] = 1.0
    t = torch.linspace(1.0, 2.0, 4).expand(5, 4)
    edges = torch.linspace(0.875, 2.125, 5).expand(5, 5)
    behind = env(rays_d)
    out = volume_render(rgb, sigma, t, edges, behind)
    assert torch.allclose(out.rgb[:2], torch.tensor([1.0, 0, 0]).expand(2, 3), atol=1e-5)
    assert torch.allclose(out.rgb[2:], behind[2:]) and (out.acc[2:] == 0).all()
    out.rgb.sum().backward()  # the world learns from the rays that see it
    assert env.levels[0].grad.abs().sum() > 0
