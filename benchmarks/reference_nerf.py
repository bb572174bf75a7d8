"""A reference NeRF, written plainly from the paper (Mildenhall et al. 2020, §4–5 and appendix A),
for benchmarks only: the yardstick the engine's speed is measured against.

Everything the paper describes and nothing more: rays precomputed for every training pixel, a
random batch per step, positional encoding (L = 10 / 4, input included), an MLP of `depth` × `width`
with the input concatenated again into the fifth layer's input and a view-direction branch, ReLU
density, stratified coarse samples and inverse-CDF fine samples (the fine network sees both sets),
the quadrature of eq. 3 with an infinite last interval, white background, MSE on coarse + fine,
Adam, float32, one pass per batch. Only the dataset loading is shared with the engine (so both read
the same pixels and cameras).

Two switches make it the "plain small NeRF" of issue 7's targets instead: ``--bf16`` (autocast the
MLPs to bfloat16) and ``--aabb`` (each ray sampled between its entry and exit of the dataset's
scene box instead of the global near/far; the last interval ends at the exit).

    python benchmarks/reference_nerf.py DATASET --seconds 300 --json out.json \
        [--depth 8 --width 256 --coarse 64 --fine 128 --batch 4096] [--eval-at 60,180,300] \
        [--eval-views 4] [--bf16] [--aabb]

Prints and writes {"steps", "train_seconds", "rays_per_s", "curve": [{"seconds", "step", "psnr",
"ssim"}, ...]} (the mean test PSNR and SSIM of the first --eval-views test views, measured with
the engine's metrics at the given training times).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nerf_engine.data.cameras import image_rays
from nerf_engine.data.dataset import load_rgba, read_split
from nerf_engine.eval.metrics import psnr, ssim


def encode(x, n_freqs):
    out = [x]
    for k in range(n_freqs):
        out += [torch.sin(2.0**k * math.pi * x), torch.cos(2.0**k * math.pi * x)]
    return torch.cat(out, -1)


class MLP(nn.Module):
    def __init__(self, depth, width):
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.Linear(63, width)]
            + [nn.Linear(width + (63 if i == 5 else 0), width) for i in range(1, depth)]
        )
        self.sigma = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.view = nn.Linear(width + 27, width // 2)
        self.rgb = nn.Linear(width // 2, 3)

    def forward(self, x, d):
        h = x
        for i, layer in enumerate(self.layers):
            h = torch.relu(layer(torch.cat([x, h], -1) if i == 5 else h))
        sigma = torch.relu(self.sigma(h))
        h = torch.relu(self.view(torch.cat([self.feature(h), d], -1)))
        return torch.sigmoid(self.rgb(h)), sigma[..., 0]


def render(net, rays_o, rays_d, t, opts):
    pts = rays_o[:, None] + rays_d[:, None] * t[..., None]
    dirs = rays_d / rays_d.norm(dim=-1, keepdim=True)
    x = encode(pts, 10)
    d = encode(dirs, 4)[:, None].expand(-1, t.shape[1], -1)
    with torch.autocast("cpu", torch.bfloat16, enabled=opts.bf16):
        rgb, sigma = net(x, d)
    rgb, sigma = rgb.float(), sigma.float()
    last = 0.0 if opts.aabb else 1e10
    delta = torch.cat([t[:, 1:] - t[:, :-1], torch.full_like(t[:, :1], last)], -1)
    delta = delta * rays_d.norm(dim=-1, keepdim=True)
    alpha = 1 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], -1), -1)
    weights = alpha * trans[:, :-1]
    color = (weights[..., None] * rgb).sum(1)
    return color + (1 - weights.sum(-1, keepdim=True)), weights


def sample_pdf(bins, weights, n):
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    u = torch.rand(cdf.shape[0], n)
    idx = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[1] - 1)
    c0, c1 = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    b0, b1 = bins.gather(1, idx - 1), bins.gather(1, idx)
    return b0 + (u - c0) / torch.where(c1 - c0 < 1e-5, torch.ones_like(c0), c1 - c0) * (b1 - b0)


def box_bounds(rays_o, rays_d, box):
    """Per-ray [N, 1] entry and exit of the axis-aligned ``box``; rays that miss get an empty
    interval at the exit."""
    lo, hi = (torch.tensor(np.asarray(c, dtype=np.float32)) for c in box)
    inv = 1.0 / torch.where(rays_d.abs() < 1e-9, torch.full_like(rays_d, 1e-9), rays_d)
    t0, t1 = (lo - rays_o) * inv, (hi - rays_o) * inv
    near = torch.minimum(t0, t1).amax(-1, keepdim=True).clamp(min=0.0)
    far = torch.maximum(t0, t1).amin(-1, keepdim=True)
    return near.clamp(max=far.clamp(min=0.0)), far.clamp(min=0.0)


def render_rays(nets, rays_o, rays_d, near, far, opts, train):
    n_coarse, n_fine = opts.coarse, opts.fine
    if opts.aabb:
        near, far = box_bounds(rays_o, rays_d, opts.box)
    t = near + (far - near) * torch.linspace(0, 1, n_coarse)[None].expand(len(rays_o), -1)
    if train:
        mids = 0.5 * (t[:, 1:] + t[:, :-1])
        lower, upper = torch.cat([t[:, :1], mids], -1), torch.cat([mids, t[:, -1:]], -1)
        t = lower + (upper - lower) * torch.rand_like(t)
    rgb_c, w = render(nets[0], rays_o, rays_d, t, opts)
    mids = 0.5 * (t[:, 1:] + t[:, :-1])
    t_f = sample_pdf(mids, w[:, 1:-1].detach(), n_fine).detach()
    t_all = torch.sort(torch.cat([t, t_f], -1), -1).values
    rgb_f, _ = render(nets[1], rays_o, rays_d, t_all, opts)
    return rgb_c, rgb_f


def load(dataset, split):
    data = read_split(dataset, split)
    o, d, rgb = [], [], []
    for frame, rgba in zip(data.frames, load_rgba(data), strict=True):
        ro, rd = image_rays(frame.intrinsics, frame.camera_to_world)
        o.append(ro.reshape(-1, 3))
        d.append(rd.reshape(-1, 3))
        rgb.append((rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]).reshape(-1, 3))
    as_tensor = lambda parts: torch.tensor(np.concatenate(parts), dtype=torch.float32)  # noqa: E731
    return as_tensor(o), as_tensor(d), as_tensor(rgb), data


@torch.no_grad()
def evaluate(nets, test, near, far, args) -> dict:
    """Mean PSNR and SSIM over the first ``args.eval_views`` test views, each rendered whole (the
    numbers ``nerf_engine eval`` reports for the engine)."""
    rays_o, rays_d, rgb, split = test
    psnrs, ssims, start = [], [], 0
    for frame in split.frames[: args.eval_views]:
        h, w = frame.intrinsics.h, frame.intrinsics.w
        end = start + h * w
        chunks = [slice(i, min(i + 4096, end)) for i in range(start, end, 4096)]
        parts = [render_rays(nets, rays_o[c], rays_d[c], near, far, args, False) for c in chunks]
        out = torch.cat([fine for _, fine in parts])
        image, truth = out.reshape(h, w, 3).numpy(), rgb[start:end].reshape(h, w, 3).numpy()
        psnrs.append(psnr(image, truth))
        ssims.append(ssim(image, truth) if min(h, w) >= 11 else float("nan"))
        start = end
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.nanmean(ssims))}


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--steps", type=int, default=10**9)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--coarse", type=int, default=64)
    p.add_argument("--fine", type=int, default=128)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--eval-at", default="", help="seconds of training to measure at: 60,180,600")
    p.add_argument("--eval-views", type=int, default=4, help="test views measured")
    p.add_argument("--bf16", action="store_true", help="autocast the MLPs to bfloat16")
    p.add_argument("--aabb", action="store_true", help="sample each ray inside the scene box")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    rays_o, rays_d, rgb, train = load(args.dataset, "train")
    test = load(args.dataset, "test")
    near, far = train.near or 2.0, train.far or 6.0
    if args.aabb and train.aabb is None:
        sys.exit(f"reference: --aabb needs a scene box (aabb) in {args.dataset}'s transforms")
    args.box = train.aabb
    nets = [MLP(args.depth, args.width), MLP(args.depth, args.width)]
    optim = torch.optim.Adam([p for n in nets for p in n.parameters()], lr=5e-4)
    pending = sorted(float(s) for s in args.eval_at.split(",") if s.strip())
    curve, trained, steps = [], 0.0, 0
    while trained < args.seconds and steps < args.steps:
        start = time.perf_counter()
        idx = torch.randint(0, len(rgb), (args.batch,))
        rgb_c, rgb_f = render_rays(nets, rays_o[idx], rays_d[idx], near, far, args, True)
        loss = ((rgb_c - rgb[idx]) ** 2).mean() + ((rgb_f - rgb[idx]) ** 2).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
        trained += time.perf_counter() - start
        steps += 1
        if pending and trained >= pending[0]:
            point = {"seconds": trained, "step": steps, **evaluate(nets, test, near, far, args)}
            curve.append(point)
            pending = [s for s in pending if s > trained]
            print(f"{trained:7.1f}s step {steps}: test PSNR {point['psnr']:.2f}", flush=True)
    result = {
        "steps": steps,
        "train_seconds": trained,
        "rays_per_s": steps * args.batch / trained,
        "curve": curve,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}))
    if args.json:
        Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
