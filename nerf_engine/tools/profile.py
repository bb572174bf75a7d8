"""``bench --profile STEPS``: where one training step's time goes.

The engine names its phases with ``torch.profiler.record_function`` (a no-op unless a profiler
runs): drawing rays (``train.rays``), placing samples and querying the occupancy grid
(``nerf.sample``), packing the kept samples (``nerf.pack``), encoding positions and directions
(``nerf.encode``), the MLPs (``nerf.mlp``), compositing (``nerf.composite``), the backward pass
(``train.backward``), Adam (``train.optimizer``) and the occupancy refresh (``train.occupancy``).
This runs ``STEPS`` steps of a configuration under the profiler (after a warm-up) and reports
each phase's share of the step's wall time, and what fraction of the matmul peak the MLPs reach.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from ..config import TrainConfig
from ..runtime import autocast_dtype, resolve_device, synchronize
from ..train.trainer import Trainer
from .bench_curves import write_outputs
from .variants import variant

PHASES = (
    "train.rays",
    "nerf.sample",
    "nerf.pack",
    "nerf.encode",
    "nerf.mlp",
    "nerf.composite",
    "train.backward",
    "train.optimizer",
    "train.occupancy",
)


def profile_steps(config: TrainConfig, dataset: Path, steps: int = 20, warmup: int = 5) -> dict:
    """Profile ``steps`` training steps of ``config`` on ``dataset`` after ``warmup`` steps
    (past the occupancy grid's warm-up, so that skipping is on as in a real run).

    Returns ``{"ms_per_step", "phases": {name: ms per step}, "other_ms", "mlp_gflops",
    "samples_per_step"}``; phases are inclusive CPU times of their ``record_function`` ranges
    (forward only, except ``train.backward``), ``other`` is the wall time no phase covers.
    """
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, str(dataset), Path(tmp))
        trainer.global_step = max(config.sampling.occupancy_warmup, config.precrop_steps)
        for _ in range(warmup):
            trainer.step()
        synchronize(trainer.device)
        activities = [ProfilerActivity.CPU]
        if trainer.device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        samples = 0
        with profile(activities=activities) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                samples += trainer.step().n_samples
            synchronize(trainer.device)
            seconds = time.perf_counter() - start
    totals = {name: 0.0 for name in PHASES}
    for event in prof.key_averages():
        if event.key in totals:
            totals[event.key] += event.cpu_time_total / 1000.0 / steps  # µs -> ms per step
    ms_per_step = 1000.0 * seconds / steps
    mlp_flops = trainer.model.coarse.flops_per_sample() * samples / steps  # forward, per step
    mlp_s = totals["nerf.mlp"] / 1000.0
    return {
        "ms_per_step": ms_per_step,
        "phases": totals,
        "other_ms": max(ms_per_step - sum(totals.values()), 0.0),
        "mlp_gflops": mlp_flops / mlp_s / 1e9 if mlp_s > 0 else float("nan"),
        "samples_per_step": samples / steps,
    }


def profile_table(name: str, result: dict, peak_gflops: float) -> str:
    """Markdown: each phase's milliseconds and share of a step, and the MLPs' share of the peak."""
    step = result["ms_per_step"]
    lines = [
        f"`{name}`: {step:.1f} ms per step, {result['samples_per_step']:.0f} field evaluations "
        f"per step; MLP forward at {result['mlp_gflops']:.0f} GFLOP/s = "
        f"{100 * result['mlp_gflops'] / peak_gflops:.0f}% of the matmul peak "
        f"({peak_gflops:.0f} GFLOP/s)",
        "",
        "| phase | ms/step | share |",
        "|---|---|---|",
    ]
    rows = [*result["phases"].items(), ("other (Python, glue)", result["other_ms"])]
    for phase, ms in rows:
        lines.append(f"| {phase} | {ms:.1f} | {100 * ms / step:.0f}% |")
    return "\n".join(lines) + "\n"


def run_profiles(
    args, dataset: Path, results: dict, header: str, say: Callable[[str], None]
) -> int:
    """``bench --profile STEPS`` (``header``: the machine's line)."""
    text = header + "\n\n"
    results["profiles"] = {}
    for name in args.presets.split(","):
        for precision in args.precision.split(","):
            config = variant(name, precision.strip(), args.device)
            profiled = profile_steps(config, dataset, args.profile)
            device = resolve_device(args.device)
            dtype = "bf16" if autocast_dtype(config.mixed_precision, device) else "fp32"
            label = f"{name} {dtype}"
            results["profiles"][label] = profiled
            table = profile_table(label, profiled, results["peaks"][dtype])
            say(table)
            text += table + "\n"
    write_outputs(args, results, text)
    return 0
