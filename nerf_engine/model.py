"""The NeRF: an MLP field (paper fig. 7) and the coarse-to-fine ray renderer built on it.

Coordinates here are in the unit scene frame (see ``scene.py``): the scene box maps into [−1, 1]³.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, SamplingConfig
from .encoding import PositionalEncoding
from .rendering import RenderOutput, volume_render
from .sampling import interval_edges, merge_samples, sample_pdf, stratified_samples


class NeRFField(nn.Module):
    """(encoded position, encoded direction) -> (rgb in [0, 1], σ ≥ 0).

    Trunk of ``depth`` ReLU layers of ``width`` with the encoded position concatenated again into
    the input of ``skip_layer``; σ from the trunk; a ``width`` feature (no activation) joined with
    the encoded direction -> ``view_width`` ReLU -> RGB (sigmoid).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.pos_enc = PositionalEncoding(3, cfg.pos_freqs)
        self.dir_enc = PositionalEncoding(3, cfg.dir_freqs)
        in_dim = self.pos_enc.out_dim
        layers = []
        for i in range(cfg.depth):
            width_in = in_dim if i == 0 else cfg.width
            if i == cfg.skip_layer and i > 0:
                width_in += in_dim
            layers.append(nn.Linear(width_in, cfg.width))
        self.trunk = nn.ModuleList(layers)
        self.sigma_head = nn.Linear(cfg.width, 1)
        self.feature = nn.Linear(cfg.width, cfg.width)
        self.view = nn.Linear(cfg.width + self.dir_enc.out_dim, cfg.view_width)
        self.rgb_head = nn.Linear(cfg.view_width, 3)

    def density(self, raw: torch.Tensor) -> torch.Tensor:
        if self.cfg.density_activation == "relu":
            return F.relu(raw)
        return F.softplus(raw + self.cfg.density_bias)

    def forward(
        self, x_enc: torch.Tensor, d_enc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x_enc [..., P] encoded positions, d_enc [..., Q] encoded directions (same leading dims).

        Returns rgb [..., 3] and raw (pre-activation) density [..., 1].
        """
        h = x_enc
        for i, layer in enumerate(self.trunk):
            if i == self.cfg.skip_layer and i > 0:
                h = torch.cat([x_enc, h], dim=-1)
            h = F.relu(layer(h))
        raw_sigma = self.sigma_head(h)
        h = F.relu(self.view(torch.cat([self.feature(h), d_enc], dim=-1)))
        return torch.sigmoid(self.rgb_head(h)), raw_sigma

    def flops_per_sample(self) -> int:
        """Multiply-adds ×2 of one forward evaluation (the encodings are negligible)."""
        return sum(
            2 * m.in_features * m.out_features for m in self.modules() if isinstance(m, nn.Linear)
        )


@dataclass
class RayBatch:
    """Rays in the unit scene frame: origins/unit directions [N, 3], bounds [N, 1]."""

    rays_o: torch.Tensor
    rays_d: torch.Tensor
    near: torch.Tensor
    far: torch.Tensor

    def __len__(self) -> int:
        return self.rays_o.shape[0]

    def subset(self, index: torch.Tensor) -> RayBatch:
        return RayBatch(self.rays_o[index], self.rays_d[index], self.near[index], self.far[index])


@dataclass
class NeRFOutput:
    coarse: RenderOutput
    fine: RenderOutput | None
    n_samples: int  # field evaluations made (coarse + fine), for throughput figures

    @property
    def final(self) -> RenderOutput:
        return self.fine if self.fine is not None else self.coarse


def render_rays(
    model: NeRF, rays: RayBatch, background: torch.Tensor | None, **kwargs
) -> NeRFOutput:
    """Run ``model`` only on rays with a non-empty [near, far] and give every ray its result: rays
    that miss the scene box cost nothing and render as background (acc = 0). The outputs' per-sample
    ``weights`` cover the hit rays only. ``background``: one colour [3], one per ray [N, 3], or
    None for premultiplied colour."""
    hit = (rays.far > rays.near)[:, 0]
    n_hit = int(hit.sum())
    if n_hit == len(rays):
        return model(rays, background, **kwargs)
    empty = RenderOutput(
        rgb=rays.rays_o.new_zeros(len(rays), 3)
        if background is None
        else background.expand(len(rays), 3),
        depth=rays.near.clone(),
        acc=rays.near.new_zeros(len(rays), 1),
        weights=rays.near.new_zeros(0, 1),
    )
    if n_hit == 0:
        return NeRFOutput(empty, empty if model.fine is not None else None, 0)
    per_ray = background is not None and background.dim() == 2
    out = model(rays.subset(hit), background[hit] if per_ray else background, **kwargs)

    def scatter(part: RenderOutput) -> RenderOutput:
        rgb, depth, acc = empty.rgb.clone(), empty.depth.clone(), empty.acc.clone()
        rgb[hit], depth[hit], acc[hit] = part.rgb.to(rgb.dtype), part.depth, part.acc
        return RenderOutput(rgb=rgb, depth=depth, acc=acc, weights=part.weights)

    return NeRFOutput(scatter(out.coarse), scatter(out.fine) if out.fine else None, out.n_samples)


class NeRF(nn.Module):
    """Coarse and fine fields with hierarchical sampling (paper §5.2)."""

    def __init__(self, model_cfg: ModelConfig, sampling_cfg: SamplingConfig):
        super().__init__()
        self.model_cfg, self.sampling_cfg = model_cfg, sampling_cfg
        self.coarse = NeRFField(model_cfg)
        self.fine = NeRFField(model_cfg) if sampling_cfg.n_fine > 0 else None

    def forward(
        self,
        rays: RayBatch,
        background: torch.Tensor | None,
        *,
        perturb: bool,
        generator: torch.Generator | None = None,
        autocast_dtype: torch.dtype | None = None,
    ) -> NeRFOutput:
        cfg = self.sampling_cfg
        t_coarse = stratified_samples(
            rays.near, rays.far, cfg.n_coarse, perturb=perturb, generator=generator
        )
        d_enc = self.coarse.dir_enc(rays.rays_d)
        coarse = self._render(
            self.coarse, rays, d_enc, t_coarse, background, perturb, generator, autocast_dtype
        )
        if self.fine is None:
            return NeRFOutput(coarse, None, t_coarse.numel())
        edges = interval_edges(t_coarse, rays.near, rays.far)
        t_fine = sample_pdf(edges, coarse.weights, cfg.n_fine, perturb=perturb, generator=generator)
        t_all = merge_samples(t_coarse, t_fine)
        fine = self._render(
            self.fine, rays, d_enc, t_all, background, perturb, generator, autocast_dtype
        )
        return NeRFOutput(coarse, fine, t_coarse.numel() + t_all.numel())

    def _render(
        self, field, rays, d_enc, t, background, perturb, generator, autocast_dtype
    ) -> RenderOutput:
        points = rays.rays_o[:, None, :] + t[..., None] * rays.rays_d[:, None, :]  # [N, S, 3]
        x_enc = field.pos_enc(points)
        d_enc = d_enc[:, None, :].expand(-1, t.shape[1], -1)
        with _autocast(points.device, autocast_dtype):
            rgb, raw_sigma = field(x_enc, d_enc)
        raw_sigma = raw_sigma[..., 0].float()
        if perturb and self.sampling_cfg.density_noise > 0:
            noise = torch.randn(raw_sigma.shape, device=raw_sigma.device, generator=generator)
            raw_sigma = raw_sigma + noise * self.sampling_cfg.density_noise
        sigma = field.density(raw_sigma)
        edges = interval_edges(t, rays.near, rays.far)
        return volume_render(rgb.float(), sigma, t, edges, background)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
