"""The NeRF model: coarse and fine fields (``field``) with hierarchical sampling (paper §5.2), an
optional occupancy grid, and the ray renderer built on them.

Coordinates here are in the unit scene frame (``data/scene_box.py``): the scene box maps into
[−1, 1]³.
Samples are evaluated packed: only those the occupancy grid keeps (and, when rendering, only those
still visible through what is in front of them) go through the networks.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from ..config import ModelConfig, SamplingConfig
from .environment import EnvironmentMap
from .field import NeRFField, make_field
from .occupancy import OccupancyGrid
from .rays import RayBatch
from .sampling import interval_edges, merge_samples, sample_pdf, stratified_samples
from .volume_rendering import RenderOutput, volume_render

EARLY_STOP_SEGMENTS = 4  # ray segments between transmittance checks when rendering
# The occupancy threshold is an opacity for a sample this fine: the box diagonal / 256 (nerfacc
# uses about 1/1000 of it). Measured on a trained preview model: it skips ~70% of the grid and
# changes renders by less than 1e-6 in MSE (63 dB), where the render-time spacing (diagonal / 64)
# kept 98% of the grid because untouched space sits at the softplus floor (σ ≈ 0.3).
OCCUPANCY_REFERENCE_STEPS = 256


@dataclass
class NeRFOutput:
    coarse: RenderOutput
    fine: RenderOutput | None
    n_samples: int  # field evaluations actually made (coarse + fine), for throughput figures

    @property
    def final(self) -> RenderOutput:
        return self.fine if self.fine is not None else self.coarse


@dataclass(frozen=True)
class _Options:
    generator: torch.Generator | None
    dtype: torch.dtype | None
    use_grid: bool
    early_stop: float  # transmittance below which samples are skipped (rendering only)
    density_noise: float  # std of the noise added to raw σ (training only)


class NeRF(nn.Module):
    """Coarse and fine fields with hierarchical sampling (paper §5.2), an optional occupancy
    grid over ``unit_aabb`` ([2, 3]) for empty-space skipping, and an optional environment (the
    world behind the box, ``environment``: rays_d -> rgb; the caller passes it as the background).
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        sampling_cfg: SamplingConfig,
        unit_aabb: torch.Tensor | None = None,
    ):
        super().__init__()
        self.model_cfg, self.sampling_cfg = model_cfg, sampling_cfg
        box = unit_aabb if unit_aabb is not None else torch.tensor([[-1.0] * 3, [1.0] * 3])
        self.coarse = make_field(model_cfg, box)
        self.fine = make_field(model_cfg, box) if sampling_cfg.n_fine > 0 else None
        self.occupancy = None
        if sampling_cfg.occupancy_resolution > 0:
            diagonal = float((box[1] - box[0]).norm())
            self.occupancy = OccupancyGrid(
                sampling_cfg.occupancy_resolution,
                box,
                step_size=diagonal / OCCUPANCY_REFERENCE_STEPS,
                threshold=sampling_cfg.occupancy_threshold,
            )
        # the world behind the scene box (opaque images); "auto" left unresolved means none
        self.environment = None
        if model_cfg.environment == "on":
            self.environment = EnvironmentMap(model_cfg.environment_resolution)

    @property
    def fields(self) -> list[NeRFField]:
        return [f for f in (self.coarse, self.fine) if f is not None]

    def parameter_groups(self, lr: float) -> list[dict]:
        """Adam's parameter groups: the MLPs at ``lr``, (for tri-plane fields) the planes at
        ``plane_lr_scale`` × ``lr`` and (when there is one) the environment map at
        ``environment_lr_scale`` × ``lr``; each group's ``lr_scale`` is its multiple of the
        schedule."""
        planes = [p for f in self.fields for p in getattr(f.pos_enc, "planes", [])]
        world = list(self.environment.parameters()) if self.environment is not None else []
        ids = {id(p) for p in planes + world}
        mlp = [p for p in self.parameters() if id(p) not in ids]
        groups = [{"params": mlp, "lr": lr, "lr_scale": 1.0}]
        for params, scale in (
            (planes, self.model_cfg.plane_lr_scale),
            (world, self.model_cfg.environment_lr_scale),
        ):
            if params:
                groups.append({"params": params, "lr": lr * scale, "lr_scale": scale})
        return groups

    def regularization(self) -> torch.Tensor | None:
        """The loss terms of the fields themselves (the planes' total variation, weighted), or
        None when there are none."""
        weight = self.model_cfg.plane_tv
        if weight <= 0 or self.model_cfg.encoding != "triplane":
            return None
        return weight * sum(f.pos_enc.total_variation() for f in self.fields)

    def speed_switches(self, compile: bool = False, fused_layers: bool = True) -> None:
        """Switches that change speed, never parameters or results beyond rounding (checkpoints
        stay interchangeable). ``compile``: ``torch.compile`` both networks' ``forward`` in place;
        packed batches vary in size, hence ``dynamic=True`` (:func:`padded_count` keeps the
        number of distinct sizes small). ``fused_layers``: hidden layers in one oneDNN call on
        CPUs under bf16 (:mod:`.fused`)."""
        for field in self.fields:
            field.fused_layers = fused_layers
            if compile:
                field.compile(dynamic=True)

    def forward(
        self,
        rays: RayBatch,
        background: torch.Tensor | None,
        *,
        perturb: bool,
        generator: torch.Generator | None = None,
        autocast_dtype: torch.dtype | None = None,
        use_grid: bool = True,
        early_stop: float = 0.0,
    ) -> NeRFOutput:
        """Render ``rays``. ``use_grid``: skip samples in empty cells (if the model has a grid);
        ``early_stop``: when not training, skip samples behind a transmittance below this."""
        cfg = self.sampling_cfg
        opt = _Options(
            generator=generator,
            dtype=autocast_dtype,
            use_grid=use_grid and self.occupancy is not None,
            early_stop=0.0 if torch.is_grad_enabled() else early_stop,
            density_noise=cfg.density_noise if perturb else 0.0,
        )
        with record_function("nerf.sample"):
            t_coarse = stratified_samples(
                rays.near, rays.far, cfg.n_coarse, perturb=perturb, generator=generator
            )
        coarse, n_coarse = self._render(self.coarse, rays, t_coarse, background, opt)
        if self.fine is None:
            return NeRFOutput(coarse, None, n_coarse)
        with record_function("nerf.sample"):
            edges = interval_edges(t_coarse, rays.near, rays.far)
            t_fine = sample_pdf(
                edges, coarse.weights, cfg.n_fine, perturb=perturb, generator=generator
            )
            t_all = merge_samples(t_coarse, t_fine)
        fine, n_fine = self._render(self.fine, rays, t_all, background, opt)
        return NeRFOutput(coarse, fine, n_coarse + n_fine)

    def _render(self, field: NeRFField, rays: RayBatch, t, background, opt: _Options):
        with record_function("nerf.sample"):  # (named phases: what `bench --profile` reports)
            points = rays.rays_o[:, None, :] + t[..., None] * rays.rays_d[:, None, :]  # [N, S, 3]
            keep = self.occupancy.query(points) if opt.use_grid else None
            edges = interval_edges(t, rays.near, rays.far)
        with record_function("nerf.encode"):
            dir_term = field.direction_term(rays.rays_d)
        if opt.early_stop > 0:
            rgb, sigma, n = _evaluate_front_to_back(field, points, keep, dir_term, edges, opt)
        else:
            rgb, sigma, n = _evaluate(field, points, keep, dir_term, opt)
        with record_function("nerf.composite"):
            return volume_render(rgb, sigma, t, edges, background), n


def padded_count(n: int, steps_per_octave: int = 16) -> int:
    """``n`` rounded up to one of ``steps_per_octave`` sizes per power of two (at most 1/16 more).

    Skipping makes the number of evaluated samples different every step; thousands of distinct
    tensor sizes fragment the C heap (measured: resident memory doubled within 300 steps, with
    glibc's default settings too). A few sizes reuse the same blocks.
    """
    if n <= steps_per_octave:
        return n
    step = 1 << max(n.bit_length() - steps_per_octave.bit_length(), 0)
    return -(-n // step) * step


def _evaluate(field: NeRFField, points, keep, dir_term, opt: _Options):
    """rgb [N, S, 3] and σ [N, S] of the samples ``keep`` selects ([N, S] bool, None = all), the
    others left at zero (empty space); and how many samples were evaluated."""
    n_rays, n_samples = points.shape[:2]
    with record_function("nerf.pack"):
        if keep is None:
            flat_points = points.reshape(-1, 3)
            flat_dir = dir_term[:, None, :].expand(-1, n_samples, -1)
            flat_dir = flat_dir.reshape(-1, dir_term.shape[-1])
        else:
            flat_points = points[keep]
            flat_dir = dir_term[keep.nonzero()[:, 0]]
        count = len(flat_points)
        padded = padded_count(count)
        if padded > count:
            flat_points = F.pad(flat_points, (0, 0, 0, padded - count))
            flat_dir = F.pad(flat_dir, (0, 0, 0, padded - count))
    with record_function("nerf.encode"):
        x_enc = field.pos_enc(flat_points)
    with record_function("nerf.mlp"), autocast(points.device, opt.dtype):
        rgb_flat, raw_flat = field(x_enc, flat_dir)
    rgb_flat, raw = rgb_flat[:count], raw_flat[:count, 0].float()
    if opt.density_noise > 0:
        noise = torch.randn(raw.shape, device=raw.device, generator=opt.generator)
        raw = raw + noise * opt.density_noise
    sigma_flat = field.density(raw)
    if keep is None:
        return (
            rgb_flat.float().view(n_rays, n_samples, 3),
            sigma_flat.view(n_rays, n_samples),
            len(raw),
        )
    with record_function("nerf.pack"):
        rgb = points.new_zeros(n_rays, n_samples, 3)
        sigma = points.new_zeros(n_rays, n_samples)
        rgb[keep], sigma[keep] = rgb_flat.float(), sigma_flat
    return rgb, sigma, len(raw)


def _evaluate_front_to_back(field, points, keep, dir_term, edges, opt: _Options):
    """:func:`_evaluate` in segments along the rays (rendering only): after each segment, samples
    of rays whose transmittance fell below ``opt.early_stop`` are dropped — they cannot be seen."""
    n_rays, n_samples = points.shape[:2]
    keep = (
        torch.ones(points.shape[:2], dtype=torch.bool, device=points.device)
        if keep is None
        else keep
    )
    rgb, sigma = points.new_zeros(n_rays, n_samples, 3), points.new_zeros(n_rays, n_samples)
    optical_depth = points.new_zeros(n_rays)
    deltas = edges[..., 1:] - edges[..., :-1]
    evaluated = 0
    bounds = torch.linspace(0, n_samples, EARLY_STOP_SEGMENTS + 1).long().tolist()
    for lo, hi in itertools.pairwise(bounds):
        visible = torch.exp(-optical_depth) > opt.early_stop
        part = keep[:, lo:hi] & visible[:, None]
        seg_rgb, seg_sigma, n = _evaluate(field, points[:, lo:hi], part, dir_term, opt)
        rgb[:, lo:hi], sigma[:, lo:hi] = seg_rgb, seg_sigma
        optical_depth = optical_depth + (seg_sigma * deltas[:, lo:hi]).sum(-1)
        evaluated += n
    return rgb, sigma, evaluated


def render_rays(
    model: NeRF, rays: RayBatch, background: torch.Tensor | None, **kwargs
) -> NeRFOutput:
    """Run ``model`` only on rays with a non-empty [near, far] and give every ray its result: rays
    that miss the scene box cost nothing and render as background (acc = 0). The outputs'
    per-sample ``weights`` and ``t_vals`` cover the hit rays only (``near < far``).
    ``background``: one colour [3], one per ray [N, 3], or None for premultiplied colour.
    ``model`` may be a NeRF wrapped for several processes (``DistributedDataParallel``: called,
    so that its gradients are averaged)."""
    hit = (rays.far > rays.near)[:, 0]
    n_hit = int(hit.sum())
    if n_hit == len(rays):
        return model(rays, background, **kwargs)
    zeros = rays.rays_o.new_zeros(len(rays), 3)
    empty = RenderOutput(
        rgb=zeros if background is None else background.expand(len(rays), 3),
        depth=rays.near.clone(),
        acc=rays.near.new_zeros(len(rays), 1),
        weights=rays.near.new_zeros(0, 1),
        t_vals=rays.near.new_zeros(0, 1),
    )
    per_ray = background is not None and background.dim() == 2
    if n_hit == 0:
        if torch.is_grad_enabled():  # (training: the backward needs a graph, see _probe)
            empty = replace(empty, rgb=empty.rgb + _probe(model, rays, background, per_ray, kwargs))
        fine = getattr(model, "module", model).fine
        return NeRFOutput(empty, empty if fine is not None else None, 0)
    out = model(rays.subset(hit), background[hit] if per_ray else background, **kwargs)

    def scatter(part: RenderOutput) -> RenderOutput:
        rgb, depth, acc = empty.rgb.clone(), empty.depth.clone(), empty.acc.clone()
        rgb[hit], depth[hit], acc[hit] = part.rgb.to(rgb.dtype), part.depth, part.acc
        return RenderOutput(rgb, depth, acc, weights=part.weights, t_vals=part.t_vals)

    return NeRFOutput(scatter(out.coarse), scatter(out.fine) if out.fine else None, out.n_samples)


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _probe(model, rays: RayBatch, background, per_ray: bool, kwargs) -> torch.Tensor:
    """0, made by running ``model`` on one ray over [0, 1e-3], for a training pass whose rays all
    missed the scene box: its loss then still has a graph to go back through (else backward
    fails), and under several processes every rank's backward reaches every parameter (the
    gradient average waits for all of them)."""
    one = RayBatch(rays.rays_o[:1], rays.rays_d[:1], rays.near[:1] * 0, rays.near[:1] * 0 + 1e-3)
    out = model(one, background[:1] if per_ray else background, **kwargs)
    parts = [out.coarse] + ([out.fine] if out.fine is not None else [])
    return 0.0 * sum(part.rgb.float().sum() for part in parts)
