"""``python -m nerf_engine bench``: throughput and quality figures, all measured in one run.

For each preset and precision: training rays/s and ms/step, achieved GFLOP/s of the MLPs next to
the matmul peak measured in the same process, CPU user vs system time, and render rays/s; with
``--quality-seconds`` also the test PSNR reached in that wall-clock budget. The scene is the
procedural toy scene (``toyscene.py``) at ``--size``, or any dataset given with ``--dataset``.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from .config import PRESETS, TrainConfig, preset
from .dataset import read_split
from .evaluate import evaluate_views
from .render import render_view
from .runtime import configure_process, resolve_device, synchronize
from .toyscene import make_toy_dataset
from .trainer import build_state, train_step


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    p.add_argument(
        "--precision", default="off,bf16", help="comma-separated: off (fp32), bf16, auto"
    )
    p.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    p.add_argument("--size", type=int, default=100, help="toy scene image size")
    p.add_argument("--dataset", help="benchmark on this dataset instead of the toy scene")
    p.add_argument(
        "--quality-seconds",
        type=float,
        default=0.0,
        help="also train each configuration this long and report test PSNR",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the results to this file")


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 8) -> float:
    """GFLOP/s of a square n×n matmul in ``dtype`` (best of ``reps``)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for _ in range(reps + 1):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _cpu_times() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def flops_per_step(config: TrainConfig, state) -> float:
    """Training FLOPs of one step: forward + backward ≈ 3 × forward, coarse and fine networks."""
    per_sample = state.model.coarse.flops_per_sample()
    samples = config.sampling.n_coarse + (config.sampling.n_coarse + config.sampling.n_fine)
    return 3.0 * per_sample * samples * config.batch_rays


def measure(config: TrainConfig, dataset: Path, steps: int, quality_seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        state = build_state(config, str(dataset), Path(tmp))
        for _ in range(2):  # warm-up: allocator, autocast caches, lazy init
            train_step(state)
        synchronize(state.device)
        user0, sys0 = _cpu_times()
        start = time.perf_counter()
        for _ in range(steps):
            train_step(state)
        synchronize(state.device)
        seconds = time.perf_counter() - start
        user1, sys1 = _cpu_times()
        frame = read_split(dataset, "test").frames[0]
        t0 = time.perf_counter()
        render_view(
            state.model,
            state.box,
            state.bounds,
            frame.intrinsics,
            frame.camera_to_world,
            chunk_rays=state.chunk_rays,
            dtype=state.dtype,
        )
        render_s = time.perf_counter() - t0
        result = {
            "preset": config.preset,
            "precision": "bf16" if state.dtype == torch.bfloat16 else "fp32",
            "rays_per_pass": state.pass_rays,
            "ms_per_step": 1000 * seconds / steps,
            "train_rays_per_s": config.batch_rays * steps / seconds,
            "gflops": flops_per_step(config, state) * steps / seconds / 1e9,
            "cpu_user_s": user1 - user0,
            "cpu_system_s": sys1 - sys0,
            "render_s_per_view": render_s,
            "render_rays_per_s": frame.intrinsics.w * frame.intrinsics.h / render_s,
        }
        if quality_seconds > 0:
            result.update(_quality(state, dataset, quality_seconds))
        return result


def _quality(state, dataset: Path, seconds: float) -> dict:
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds and state.step < state.config.steps:
        train_step(state)
        state.step += 1
        steps += 1
    test = read_split(dataset, "test")
    report = evaluate_views(state.model, state.box, state.bounds, test, state.config, state.dtype)
    return {"quality_steps": steps, "test_psnr": report["psnr"], "test_ssim": report["ssim"]}


def run(args) -> int:
    configure_process()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = (
            Path(args.dataset)
            if args.dataset
            else make_toy_dataset(
                Path(tmp) / "toy", size=(args.size, args.size), n_train=40, n_val=1, n_test=4
            )
        )
        peaks = {
            "fp32": matmul_peak(device, torch.float32),
            "bf16": matmul_peak(device, torch.bfloat16),
        }
        print(
            f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s",
            flush=True,
        )
        rows = []
        for name in args.presets.split(","):
            for precision in args.precision.split(","):
                config = replace(
                    preset(name.strip()), mixed_precision=precision.strip(), device=args.device
                )
                row = measure(config, dataset, args.steps, args.quality_seconds)
                row["peak_gflops"] = peaks.get(row["precision"], peaks["fp32"])
                rows.append(row)
                print(format_row(row), flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": str(device), "peaks": peaks, "rows": rows}, indent=2)
        )
    return 0


def format_row(row: dict) -> str:
    text = (
        f"{row['preset']:>8} {row['precision']:>5}: {row['ms_per_step']:8.1f} ms/step "
        f"{row['train_rays_per_s']:8.0f} rays/s  {row['gflops']:6.1f} GFLOP/s "
        f"({100 * row['gflops'] / row['peak_gflops']:.0f}% of peak)  "
        f"cpu user {row['cpu_user_s']:.1f}s sys {row['cpu_system_s']:.1f}s  "
        f"render {row['render_s_per_view']:.2f} s/view ({row['render_rays_per_s']:.0f} rays/s)"
    )
    if "test_psnr" in row:
        text += f"  -> {row['test_psnr']:.2f} dB after {row['quality_steps']} steps"
    return text
