"""``bench --ddp N``: steady training rays/s of one process and of N processes (``torchrun``,
DDP) on the same data, in one run.

Each count trains the same preset on the same dataset as its own job — one process as
``python -m nerf_engine train``, N as ``python -m torch.distributed.run --standalone
--nproc-per-node N -m nerf_engine train`` (argument lists, no shell) — and reports the median
``rays_per_s`` of its ``progress`` events after the first (which includes start-up). With N
processes a step trains ``batch_rays × N`` rays (``train/ddp.py``), so the figure is the whole
job's throughput. On a CPU the processes share the cores (each gets its share), so N > 1 proves
that the code runs, not that it is faster; on N GPUs it measures the scaling.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..data.events import parse_event
from .toy_scene import make_toy_dataset

REPORTS = 5  # progress events per job (the first is left out: start-up)


def launch_argv(processes: int) -> list[str]:
    """What starts ``processes`` trainers: the engine itself for one, torchrun for more."""
    if processes <= 1:
        return [sys.executable]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*torchrun, "--nproc-per-node", str(processes)]


def measure_processes(args, dataset: Path, processes: int, run_dir: Path) -> dict:
    """Train ``args.steps`` steps (at least ``2 × REPORTS``) with ``processes`` processes;
    the job's steady rays/s. Raises RuntimeError with the job's error output when it fails."""
    preset, _, switches = args.presets.split(",")[0].partition("+")
    if switches:
        raise ValueError(f"--ddp: use a plain preset in --presets, not {args.presets!r}")
    steps = max(args.steps, 2 * REPORTS)
    cmd = [*launch_argv(processes), "-m", "nerf_engine", "train", str(dataset)]
    cmd += ["--out", str(run_dir), "--preset", preset, "--steps", str(steps), "--events", "jsonl"]
    cmd += ["--device", args.device, "--set", f"log_every={steps // REPORTS}"]
    precision = args.precision.split(",")[0].strip()
    for key, value in (("mixed_precision", precision), ("eval_views", 0)):
        cmd += ["--set", f"{key}={value}"]
    for key in ("preview_every", "checkpoint_every"):
        cmd += ["--set", f"{key}={steps + 1}"]
    for item in getattr(args, "set", []):
        cmd += ["--set", item]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"--ddp {processes}: training failed:\n{done.stderr[-4000:]}")
    events = [e for line in done.stdout.splitlines() if (e := parse_event(line))]
    progress = [e for e in events if e["event"] == "progress"][1:]
    rays_per_s = statistics.median(e["rays_per_s"] for e in progress)
    return {
        "processes": processes,
        "preset": preset,
        "precision": precision,
        "steps": steps,
        "train_rays_per_s": rays_per_s,
        "rays_per_s_per_process": rays_per_s / processes,
        "ms_per_step": statistics.median(e["ms_per_step"] for e in progress),
        "wall_s": time.perf_counter() - started,
    }


def run_ddp(args, say: Callable[[str], None]) -> int:
    """``bench --ddp N``: 1 and N processes on the toy scene at ``--size`` (or ``--dataset``)."""
    if args.ddp < 2:
        raise ValueError(f"--ddp {args.ddp}: give the number of processes to compare with one (2+)")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(args.dataset) if args.dataset else make_toy_dataset(
            Path(tmp) / "toy", size=(args.size, args.size), n_train=40, n_val=1, n_test=1
        )  # fmt: skip
        rows = []
        for processes in (1, args.ddp):
            row = measure_processes(args, dataset, processes, Path(tmp) / f"run_{processes}")
            rows.append(row)
            say(
                f"{processes} process{'es' if processes > 1 else ''}: "
                f"{row['train_rays_per_s']:.0f} training rays/s "
                f"({row['rays_per_s_per_process']:.0f} per process, {row['ms_per_step']:.1f} "
                f"ms/step, {row['preset']}, {row['precision']})"
            )
    scaling = rows[1]["train_rays_per_s"] / rows[0]["train_rays_per_s"]
    say(f"scaling with {args.ddp} processes: {scaling:.2f}x the rays/s of one")
    if args.json:
        Path(args.json).write_text(json.dumps({"ddp": rows, "scaling": scaling}, indent=2))
    return 0
