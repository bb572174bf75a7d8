"""``python -m nerf_engine bench``: speed, memory and quality figures, all measured in one run.

Throughput (always): for each configuration and precision, training rays/s and ms/step right
after initialisation, achieved GFLOP/s of the MLPs next to the matmul peak measured in the same
process, CPU user vs system time, peak resident memory, and render time of one test view.
``--reference``: the plain reference NeRF (``benchmarks/reference_nerf.py``) at the paper's sizes,
as written and with glibc told to keep freed memory, for the "x times the reference" figure.
``--curves SECONDS``: each configuration, and the reference at preview sizes as a plain small NeRF
would run it (bf16, per-ray bounds from the scene box, tuned allocator), trained against the clock:
seconds to 20/24/26/29 dB test PSNR and a plot.

Configurations are presets with optional switches ``+accel``, ``+noaccel``, ``+compile``,
``+clock`` (``paper+accel``, ``preview+clock``). The scene
is the procedural toy scene at ``--size`` or any dataset (``--dataset``, e.g. the demo's export).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..data.cameras import Intrinsics
from ..data.dataset import Frame, read_split, write_transforms
from ..data.images import write_exr, write_png
from ..runtime import (
    configure_process,
    cpu_has_native_bf16,
    resolve_device,
    synchronize,
)
from ..train.trainer import Trainer
from .bench_curves import (
    REFERENCE_PAPER,
    REFERENCE_SMALL,
    curves_table,
    plot_curves,
    run_reference,
    time_render,
    train_against_clock_apart,
    write_outputs,
)
from .bench_ddp import run_ddp
from .profile import run_profiles
from .suite import run_suite_command
from .toy_scene import hemisphere_poses, make_toy_dataset, render_toy, toy_depth
from .variants import variant


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--presets",
        default="preview,balanced,paper",
        help="comma-separated presets with optional switches +accel, +noaccel, +compile, +clock",
    )
    p.add_argument(
        "--precision", default="off,bf16", help="comma-separated: off (fp32), bf16, auto"
    )
    p.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    p.add_argument("--size", type=int, default=100, help="toy scene image size")
    p.add_argument("--dataset", help="benchmark on this dataset instead of the toy scene")
    p.add_argument(
        "--reference",
        action="store_true",
        help="also time the plain reference NeRF at the paper's sizes",
    )
    p.add_argument(
        "--curves",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also train each preset (auto precision) and the reference for SECONDS",
    )
    p.add_argument(
        "--curve-presets",
        help="configurations for --curves (default: the non-paper ones of --presets)",
    )
    p.add_argument(
        "--memory",
        action="store_true",
        help="also measure peak memory: preview on 100 images of 800×800, a 1080p render",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="instead of timing: profile STEPS steps of each configuration and report where the "
        "time goes (rays, sampling, packing, encoding, MLPs, compositing, backward, Adam)",
    )
    p.add_argument(
        "--suite",
        metavar="DIR",
        help="instead: the scene suite (benchmarks/scene_suite.py, built into DIR on demand): "
        "each configuration of --curve-presets (default preview) trained for each of --budgets "
        "seconds, and the plain reference, per scene with the mean and the worst scene",
    )
    p.add_argument("--budgets", default="60,180,600", help="--suite: training budgets, seconds")
    p.add_argument("--suite-resolution", type=int, default=100, help="--suite: image size")
    p.add_argument("--suite-views", type=int, default=100, help="--suite: training views")
    p.add_argument("--suite-test", type=int, default=20, help="--suite: test views measured")
    p.add_argument("--suite-scenes", help="--suite: only these scenes (comma-separated)")
    p.add_argument(
        "--no-reference", action="store_true", help="--suite: leave out the reference NeRF"
    )
    p.add_argument(
        "--ddp",
        type=int,
        default=0,
        metavar="N",
        help="instead: steady training rays/s of 1 and of N processes (torchrun, DDP) on the "
        "same data (the first of --presets and --precision)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--ddp: override a setting of the training runs, as in train --set",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--markdown", help="also write the results as Markdown to this file")
    p.add_argument("--plot", help="with --curves: write the PSNR-vs-time plot here")


def reset_peak_memory() -> None:
    """Start a new peak-RSS measurement (Linux: /proc/self/clear_refs; elsewhere a no-op)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_gib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


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


def training_flops(trainer: Trainer, n_samples: int) -> float:
    """FLOPs of training on ``n_samples`` field evaluations (the count the step reports: rays that
    miss the scene box cost nothing): forward + backward ≈ 3 × forward."""
    return 3.0 * trainer.model.coarse.flops_per_sample() * n_samples


def measure(config: TrainConfig, dataset: Path, steps: int) -> dict:
    """Throughput right after initialisation (before any occupancy-grid warm-up)."""
    reset_peak_memory()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, str(dataset), Path(tmp))
        for _ in range(2):  # warm-up: allocator, autocast caches, lazy init
            trainer.step()
        synchronize(trainer.device)
        user0, sys0 = _cpu_times()
        start = time.perf_counter()
        n_samples = 0
        for _ in range(steps):
            n_samples += trainer.step().n_samples
        synchronize(trainer.device)
        seconds = time.perf_counter() - start
        user1, sys1 = _cpu_times()
        frame = read_split(dataset, "test").frames[0]
        render_s = time_render(trainer.renderer, frame)
        return {
            "preset": config.preset,
            "precision": "bf16" if trainer.dtype == torch.bfloat16 else "fp32",
            "rays_per_pass": trainer.pass_rays,
            "ms_per_step": 1000 * seconds / steps,
            "train_rays_per_s": config.batch_rays * steps / seconds,
            "gflops": training_flops(trainer, n_samples) / seconds / 1e9,
            "cpu_user_s": user1 - user0,
            "cpu_system_s": sys1 - sys0,
            "peak_gib": peak_memory_gib(),
            "render_s_per_view": render_s,
            "render_rays_per_s": frame.intrinsics.w * frame.intrinsics.h / render_s,
        }


def run(args, say: Callable[[str], None]) -> int:
    """``bench`` with the parsed arguments; ``say`` shows each result line as it is measured."""
    configure_process()
    if args.suite:
        return run_suite_command(args, say)
    if args.ddp:
        return run_ddp(args, say)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = (
            Path(args.dataset)
            if args.dataset
            else make_toy_dataset(
                Path(tmp) / "toy", size=(args.size, args.size), n_train=40, n_val=1, n_test=4
            )
        )
        results = {
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "dataset": str(dataset),
        }
        results["peaks"] = peaks = {
            "fp32": matmul_peak(device, torch.float32),
            "bf16": matmul_peak(device, torch.bfloat16),
        }
        say(environment_line(results))
        if args.profile:
            return run_profiles(args, dataset, results, environment_line(results), say)
        results["rows"] = rows = []
        for name in args.presets.split(","):
            for precision in args.precision.split(","):
                row = measure(variant(name, precision.strip(), args.device), dataset, args.steps)
                row["peak_gflops"] = peaks[row["precision"]]
                rows.append(row)
                say(format_row(row))
        if args.reference:
            sizes = {**REFERENCE_PAPER, "steps": 3}
            results["reference"] = run_reference(dataset, 1e9, sizes, 0)
            results["reference_tuned"] = run_reference(dataset, 1e9, sizes, 0, tuned_malloc=True)
            say(
                f"reference NeRF, paper sizes: {results['reference']['rays_per_s']:.0f} rays/s, "
                f"tuned allocator {results['reference_tuned']['rays_per_s']:.0f} rays/s"
            )
        if args.curves:
            results["curves"] = run_curves(args, dataset, say)
        if args.memory:
            results["memory"] = measure_memory(args.device, Path(tmp))
            say(f"memory: {results['memory']}")
    write_reports(args, results, say)
    return 0


def measure_memory(device: str, folder: Path, n_images: int = 100, size: int = 800) -> dict:
    """Peak RSS of `preview` training on ``n_images`` of ``size``² pixels with depth maps, and of
    rendering one 1920×1080 view, each in its own engine process, as the add-on runs them."""
    intr = Intrinsics.from_fov(0.75, size, size)
    data = folder / "big"
    pose = hemisphere_poses(1, np.random.default_rng(0))[0]
    write_png(data / "view.png", render_toy(intr, pose, supersample=1))
    write_exr(data / "view_depth.exr", {"R": toy_depth(intr, pose)})  # a depth map per view too
    poses = hemisphere_poses(n_images + 1, np.random.default_rng(1))
    depth = {"depth_file_path": "view_depth.exr"}
    for split, chosen in (("train", poses[:-1]), ("test", poses[-1:])):
        frames = [Frame(p, intr, "view.png", extra=depth) for p in chosen]
        write_transforms(data / f"transforms_{split}.json", frames)
    hd = folder / "hd_camera.json"
    write_transforms(hd, [Frame(poses[-1], Intrinsics.from_fov(0.75, 1920, 1080))])
    train = [
        "train",
        data,
        "--out",
        folder / "big_run",
        "--preset",
        "preview",
        "--steps",
        3,
        "--device",
        device,
        "--set",
        "eval_views=0",
        "--set",
        "preview_max_side=64",
    ]
    render = [
        "render",
        folder / "big_run",
        "--cameras",
        hd,
        "--out",
        folder / "hd",
        "--device",
        device,
    ]
    return {
        "train_100x800x800_peak_gib": _child_peak_gib(train),
        "render_1920x1080_peak_gib": _child_peak_gib(render),
    }


# The child reports its own peak: VmHWM belongs to the address space exec made, while ru_maxrss
# (the fallback off Linux) would also count the parent's resident memory at fork time.
_PEAK_WRAPPER = """
import resource, runpy, sys
sys.argv = ['nerf_engine', *sys.argv[1:]]
try:
    runpy.run_module('nerf_engine', run_name='__main__')
finally:
    try:
        kib = next(int(line.split()[1]) for line in open('/proc/self/status')
                   if line.startswith('VmHWM:'))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write(f'PEAK_KIB {kib}\\n')
"""


def _child_peak_gib(args: list) -> float:
    """Run ``python -m nerf_engine *args`` in a fresh process; its peak resident memory in GiB."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-c", _PEAK_WRAPPER, *map(str, args)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    peaks = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("PEAK_KIB")]
    if result.returncode != 0 or not peaks:
        raise RuntimeError(f"bench: {' '.join(cmd[3:])} failed: {result.stderr[-500:]}")
    return int(peaks[-1]) / 2**20


def run_curves(args, dataset: Path, say: Callable[[str], None]) -> dict:
    curves = {}
    names = args.curve_presets or ",".join(
        n for n in args.presets.split(",") if not n.startswith("paper")
    )
    for name in names.split(","):
        config = variant(name, "auto", args.device)
        curves[f"{name} (ours)"] = train_against_clock_apart(config, dataset, args.curves)
        say(f"{name}: {curves[f'{name} (ours)']['curve'][-1]}")
    bf16 = cpu_has_native_bf16()
    flags = ("--aabb", "--bf16") if bf16 else ("--aabb",)
    reference = run_reference(dataset, args.curves, REFERENCE_SMALL, flags=flags, tuned_malloc=True)
    curves[f"reference 4x128, 32+32, {'bf16' if bf16 else 'fp32'}, box bounds"] = reference
    say(f"reference: {reference['curve'][-1] if reference['curve'] else None}")
    return curves


def environment_line(results: dict) -> str:
    peaks = results["peaks"]
    return (
        f"device {results['device']}, torch {results['torch']}, {results['threads']} threads; "
        f"matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s"
    )


def reference_lines(results: dict) -> str:
    """Our `paper` preset (no acceleration) against the reference, per precision."""
    plain = results["reference"]["rays_per_s"]
    tuned = results.get("reference_tuned", {}).get("rays_per_s", float("nan"))
    text = (
        f"\nReference NeRF at the paper's sizes (8×256, 64+128, 4096 rays, fp32, one pass): "
        f"{plain:.0f} rays/s as written, {tuned:.0f} rays/s with glibc keeping freed memory.\n"
    )
    for row in results["rows"]:
        if row["preset"] in ("paper", "paper+noaccel"):  # the paper preset is unaccelerated
            rate = row["train_rays_per_s"]
            text += (
                f"Our `paper` preset without acceleration, {row['precision']}: {rate:.0f} rays/s = "
                f"{rate / plain:.1f}× the reference as written, {rate / tuned:.1f}× tuned.\n"
            )
    return text


def write_reports(args, results: dict, say: Callable[[str], None]) -> None:
    if args.plot and "curves" in results:
        why_not = plot_curves(results["curves"], Path(args.plot), environment_line(results))
        if why_not:
            say(why_not)
    text = markdown_table(results["rows"], args) + "\n" + environment_line(results) + "\n"
    if "reference" in results:
        text += reference_lines(results)
    if "memory" in results:
        m = results["memory"]
        text += (
            f"\nPeak memory: `preview` training on 100 images of 800×800 "
            f"{m['train_100x800x800_peak_gib']:.2f} GiB; a 1920×1080 render "
            f"{m['render_1920x1080_peak_gib']:.2f} GiB.\n"
        )
    if "curves" in results:
        text += f"\nTraining against the clock ({args.curves:g} s each):\n\n"
        text += curves_table(results["curves"])
    write_outputs(args, results, text)


def markdown_table(rows: list[dict], args) -> str:
    cols = (
        "| configuration | precision | rays/pass | ms/step | train rays/s | GFLOP/s (% of peak) "
        "| CPU user / sys s | peak RSS GiB | render s/view |"
    )
    lines = [cols, "|" + "---|" * cols.count(" |")]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['precision']} | {r['rays_per_pass']} | {r['ms_per_step']:.0f} "
            f"| {r['train_rays_per_s']:.0f} | {r['gflops']:.0f} "
            f"({100 * r['gflops'] / r['peak_gflops']:.0f}%) | {r['cpu_user_s']:.1f} / "
            f"{r['cpu_system_s']:.1f} | {r['peak_gib']:.2f} | {r['render_s_per_view']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def format_row(row: dict) -> str:
    return (
        f"{row['preset']:>14} {row['precision']:>5}: {row['ms_per_step']:8.1f} ms/step "
        f"{row['train_rays_per_s']:8.0f} rays/s  {row['gflops']:6.1f} GFLOP/s "
        f"({100 * row['gflops'] / row['peak_gflops']:.0f}% of peak)  "
        f"cpu user {row['cpu_user_s']:.1f}s sys {row['cpu_system_s']:.1f}s  "
        f"peak {row['peak_gib']:.2f} GiB  render {row['render_s_per_view']:.2f} s/view"
    )
