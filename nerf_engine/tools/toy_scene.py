"""A procedural test scene, ray-traced in numpy: textured spheres on a wide, flat ground disc.

It is the engine's own ground truth for tests and benchmarks without Blender: exact cameras, an
alpha channel (transparent background), fine texture detail, and a large flat, low-texture region
(the ground) of the kind that makes a plain NeRF collapse to an all-background image.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.cameras import Intrinsics, image_rays, look_at
from ..data.dataset import Frame, write_transforms
from ..data.images import write_exr, write_png


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float]
    radius: float
    colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    pattern: str  # "checker", "stripes" or "dots"
    frequency: float


SPHERES = (
    Sphere((0.35, 0.2, 0.42), 0.42, ((0.85, 0.15, 0.1), (0.95, 0.85, 0.2)), "checker", 6.0),
    Sphere((-0.5, 0.15, 0.3), 0.3, ((0.1, 0.25, 0.8), (0.92, 0.92, 0.95)), "stripes", 9.0),
    Sphere((-0.05, -0.55, 0.24), 0.24, ((0.1, 0.55, 0.2), (0.05, 0.1, 0.05)), "dots", 5.0),
)
GROUND_RADIUS = 1.6
GROUND_COLOR = np.array([0.72, 0.68, 0.6])
LIGHT = np.array([0.4, -0.3, 0.87]) / np.linalg.norm([0.4, -0.3, 0.87])
LOOK_AT = np.array([0.0, 0.0, 0.25])
# An optional thin structure: a dark vertical wire about one pixel wide at 48×48 (``wire=True``),
# for tests of what empty-space skipping does to thin things.
WIRE_XY, WIRE_RADIUS, WIRE_HEIGHT = np.array([0.95, -0.7]), 0.03, 0.8
WIRE_COLOR = np.array([0.08, 0.08, 0.1])
AABB = np.array([[-GROUND_RADIUS, -GROUND_RADIUS, -0.01], [GROUND_RADIUS, GROUND_RADIUS, 0.9]])


def _hit_sphere(o, d, s: Sphere):
    oc = o - np.asarray(s.center)
    b = (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - s.radius**2
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return np.where((disc > 0) & (t > 1e-6), t, np.inf)


def _hit_ground(o, d):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -o[..., 2] / d[..., 2]
    p = o + t[..., None] * d
    inside = (d[..., 2] < -1e-9) & (t > 1e-6) & ((p[..., :2] ** 2).sum(-1) <= GROUND_RADIUS**2)
    return np.where(inside, t, np.inf)


def _hit_wire(o, d):
    """Ray parameter of the first hit with the wire's side (a vertical cylinder), else inf."""
    oc, dxy = o[..., :2] - WIRE_XY, d[..., :2]
    a = (dxy * dxy).sum(-1)
    b = (oc * dxy).sum(-1)
    c = (oc * oc).sum(-1) - WIRE_RADIUS**2
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    z = o[..., 2] + t * d[..., 2]
    hit = (disc > 0) & (a > 1e-12) & (t > 1e-6) & (z >= 0.0) & (z <= WIRE_HEIGHT)
    return np.where(hit, t, np.inf)


def _texture(s: Sphere, normal):
    u = np.arctan2(normal[..., 1], normal[..., 0]) / math.pi  # [-1, 1]
    v = np.arcsin(np.clip(normal[..., 2], -1, 1)) / (0.5 * math.pi)
    f = s.frequency
    if s.pattern == "checker":
        mask = (np.floor(u * f) + np.floor(v * f * 0.5)) % 2 == 0
    elif s.pattern == "stripes":
        mask = np.sin(v * f * math.pi + 2.0 * np.sin(u * math.pi * 2)) > 0
    else:
        mask = (np.sin(u * f * math.pi * 2) * np.sin(v * f * math.pi)) > 0.35
    c0, c1 = (np.asarray(c) for c in s.colors)
    return np.where(mask[..., None], c0, c1)


def _shade(o, d, wire: bool = False):
    """Straight colour [N, 3] and coverage [N] of rays o, d [N, 3] (with the thin wire if
    ``wire``)."""
    wire_t = _hit_wire(o, d) if wire else np.full(len(o), np.inf)
    hits = np.stack([_hit_sphere(o, d, s) for s in SPHERES] + [_hit_ground(o, d), wire_t], -1)
    which, t = hits.argmin(-1), hits.min(-1)
    hit = np.isfinite(t)
    p = o + np.where(hit, t, 0.0)[..., None] * d
    color = np.zeros_like(o)
    normal = np.tile([0.0, 0.0, 1.0], (len(o), 1))
    for i, s in enumerate(SPHERES):
        sel = which == i
        n = (p[sel] - np.asarray(s.center)) / s.radius
        normal[sel] = n
        color[sel] = _texture(s, n)
    ground = which == len(SPHERES)
    color[ground] = GROUND_COLOR
    on_wire = which == len(SPHERES) + 1
    normal[on_wire, :2] = (p[on_wire, :2] - WIRE_XY) / WIRE_RADIUS
    normal[on_wire, 2] = 0.0
    color[on_wire] = WIRE_COLOR
    shadow_o = p + normal * 1e-4
    lit = np.all(
        np.stack(
            [
                ~np.isfinite(_hit_sphere(shadow_o, np.broadcast_to(LIGHT, o.shape), s))
                for s in SPHERES
            ]
        ),
        0,
    )
    diffuse = np.clip((normal * LIGHT).sum(-1), 0.0, 1.0) * np.where(lit, 1.0, 0.25)
    return np.clip(color * (0.35 + 0.65 * diffuse[..., None]), 0.0, 1.0), hit


def seen_color(rays_o: np.ndarray, rays_d: np.ndarray) -> np.ndarray:
    """[N, 3] the colour the training images show along rays ``rays_o``, ``rays_d`` [N, 3]
    (unit directions): the shading is Lambertian, so a surface point looks the same from every
    camera (black where a ray hits nothing)."""
    return _shade(np.asarray(rays_o, float), np.asarray(rays_d, float))[0]


def sky_color(d: np.ndarray) -> np.ndarray:
    """An HDRI-like world at infinity, by direction: unit rays [N, 3] -> rgb [N, 3]. A blue sky
    that pales towards an orange horizon, a warm glow around one azimuth, dark green ground below
    the horizon."""
    up = np.clip(d[..., 2], -1.0, 1.0)
    azimuth = np.arctan2(d[..., 1], d[..., 0])
    height = np.sqrt(np.clip(up, 0.0, 1.0))[..., None]
    sky = (1.0 - height) * np.array([0.95, 0.7, 0.45]) + height * np.array([0.2, 0.4, 0.85])
    glow = 0.25 * np.clip(np.cos(azimuth - 0.8), 0.0, 1.0) ** 4 * (1.0 - height[..., 0])
    sky = sky + glow[..., None] * np.array([1.0, 0.6, 0.2])
    ground = np.array([0.2, 0.32, 0.15]) * (0.7 + 0.3 * np.cos(3.0 * azimuth))[..., None]
    return np.clip(np.where(up[..., None] >= 0.0, sky, ground), 0.0, 1.0)


def render_toy(
    intrinsics: Intrinsics,
    camera_to_world: np.ndarray,
    supersample: int = 3,
    wire: bool = False,
    world: bool = False,
) -> np.ndarray:
    """Straight-alpha RGBA float32 [h, w, 4], antialiased with ``supersample``² rays per pixel;
    ``wire`` adds the thin wire; ``world`` renders opaque (alpha 1) with :func:`sky_color` behind
    the scene, as Blender does with Film > Transparent off."""
    k = supersample
    fine = intrinsics.scaled(intrinsics.w * k, intrinsics.h * k)
    o, d = image_rays(fine, camera_to_world)
    color, hit = _shade(o.reshape(-1, 3), d.reshape(-1, 3), wire)
    if world:
        color = np.where(hit[:, None], color, sky_color(d.reshape(-1, 3)))
        hit = np.ones_like(hit)
    h, w = intrinsics.h, intrinsics.w
    color = color.reshape(h, k, w, k, 3)
    hit = hit.reshape(h, k, w, k).astype(np.float64)
    coverage = hit.mean(axis=(1, 3))
    summed = (color * hit[..., None]).sum(axis=(1, 3))
    straight = np.where(
        coverage[..., None] > 0, summed / np.maximum(hit.sum(axis=(1, 3)), 1)[..., None], 0.0
    )
    return np.concatenate([straight, coverage[..., None]], axis=-1).astype(np.float32)


def toy_depth(intrinsics: Intrinsics, camera_to_world: np.ndarray, wire: bool = False):
    """Distance along each pixel-centre ray to the first surface, float32 [h, w] (+inf where the
    ray hits nothing): the depth map of :func:`render_toy`'s view."""
    o, d = image_rays(intrinsics, camera_to_world)
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    wire_t = _hit_wire(o, d) if wire else np.full(len(o), np.inf)
    hits = np.stack([_hit_sphere(o, d, s) for s in SPHERES] + [_hit_ground(o, d), wire_t], -1)
    return hits.min(-1).reshape(intrinsics.h, intrinsics.w).astype(np.float32)


def hemisphere_poses(n: int, rng: np.random.Generator, radius: float = 4.0) -> list[np.ndarray]:
    """``n`` cameras on the upper hemisphere (elevation 12°–70°) looking at the scene centre."""
    poses = []
    for _ in range(n):
        azimuth = rng.uniform(0.0, 2.0 * math.pi)
        elevation = math.radians(rng.uniform(12.0, 70.0))
        eye = LOOK_AT + radius * np.array(
            [
                math.cos(elevation) * math.cos(azimuth),
                math.cos(elevation) * math.sin(azimuth),
                math.sin(elevation),
            ]
        )
        poses.append(look_at(eye, LOOK_AT))
    return poses


def make_toy_dataset(
    out_dir: str | os.PathLike,
    *,
    size: tuple[int, int] = (64, 64),
    n_train: int = 40,
    n_val: int = 2,
    n_test: int = 6,
    camera_angle_x: float = 0.75,
    seed: int = 0,
    write_bounds: bool = True,
    wire: bool = False,
    world: bool = False,
    depth: bool = False,
) -> Path:
    """Write a NeRF-synthetic-style dataset (RGBA PNGs + transforms_*.json) and return its folder.

    Without ``write_bounds`` the JSON has no aabb/near/far, like the original NeRF-synthetic files;
    ``wire`` adds a thin dark wire (a cylinder of radius ``WIRE_RADIUS``) standing on the ground;
    ``world`` renders opaque images with an HDRI-like sky behind the scene (:func:`sky_color`);
    ``depth`` writes each view's depth map (EXR, distance along the ray, +inf where nothing is
    hit) as ``depth_file_path``, as Export Dataset does.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    intrinsics = Intrinsics.from_fov(camera_angle_x, *size)
    bounds = {"aabb": AABB, "near": 1.5, "far": 7.0} if write_bounds else {}
    if depth:
        bounds["extra"] = {"depth_convention": "distance_along_ray"}
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        frames = []
        for i, pose in enumerate(hemisphere_poses(count, rng)):
            rel = f"{split}/r_{i}"
            write_png(out / f"{rel}.png", render_toy(intrinsics, pose, wire=wire, world=world))
            extra = {}
            if depth:
                write_exr(out / f"{rel}_depth.exr", {"R": toy_depth(intrinsics, pose, wire)})
                extra["depth_file_path"] = f"{rel}_depth.exr"
            frames.append(Frame(pose, intrinsics, f"./{rel}", extra=extra))
        write_transforms(out / f"transforms_{split}.json", frames, **bounds)
    return out
