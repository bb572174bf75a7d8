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
    p.add_argument("--markdown", help="also write the results as a Markdown table to this file")


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


def training_flops(state, n_samples: int) -> float:
    """FLOPs of training on ``n_samples`` field evaluations (the count the step reports: rays that
    miss the scene box cost nothing): forward + backward ≈ 3 × forward."""
    return 3.0 * state.model.coarse.flops_per_sample() * n_samples


def measure(config: TrainConfig, dataset: Path, steps: int, quality_seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        state = build_state(config, str(dataset), Path(tmp))
        for _ in range(2):  # warm-up: allocator, autocast caches, lazy init
            train_step(state)
        synchronize(state.device)
        user0, sys0 = _cpu_times()
        start = time.perf_counter()
        n_samples = 0
        for _ in range(steps):
            n_samples += train_step(state)[2]
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
            "gflops": training_flops(state, n_samples) / seconds / 1e9,
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
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(device, peaks, rows, args))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": str(device), "peaks": peaks, "rows": rows}, indent=2)
        )
    return 0


def markdown_table(device: torch.device, peaks: dict, rows: list[dict], args) -> str:
    head = (
        f"`python -m nerf_engine bench --presets {args.presets} --precision {args.precision} "
        f"--steps {args.steps} --size {args.size}"
        + (f" --quality-seconds {args.quality_seconds:g}`" if args.quality_seconds else "`")
        + f"\n\ndevice {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s\n\n"
    )
    quality = any("test_psnr" in r for r in rows)
    cols = "| preset | precision | rays/pass | ms/step | train rays/s | GFLOP/s (% of peak) |"
    cols += " CPU user / sys s | render s/view | render rays/s |"
    cols += " steps in budget | test PSNR |" if quality else ""
    lines = [cols, "|" + "---|" * cols.count(" |")]
    for r in rows:
        line = (
            f"| {r['preset']} | {r['precision']} | {r['rays_per_pass']} | {r['ms_per_step']:.0f} "
            f"| {r['train_rays_per_s']:.0f} | {r['gflops']:.0f} "
            f"({100 * r['gflops'] / r['peak_gflops']:.0f}%) | {r['cpu_user_s']:.1f} / "
            f"{r['cpu_system_s']:.1f} | {r['render_s_per_view']:.2f} "
            f"| {r['render_rays_per_s']:.0f} |"
        )
        if quality:
            line += f" {r.get('quality_steps', '')} | {r.get('test_psnr', float('nan')):.2f} |"
        lines.append(line)
    return head + "\n".join(lines) + "\n"


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
