"""`python -m nerf_engine` end to end: train, render, eval; JSON-lines events; SIGTERM; errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import engine, events_of

from nerf_engine import cli
from nerf_engine.checkpoint import load_run
from nerf_engine.config import preset
from nerf_engine.data.cameras import Intrinsics
from nerf_engine.data.dataset import Frame, load_rgba, read_split, write_transforms
from nerf_engine.data.images import composite, read_rgba
from nerf_engine.data.run_folder import RunFolder
from nerf_engine.eval.metrics import psnr

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--preset", "preview", "--device", "cpu",
    "--set", "model.depth=2", "--set", "model.width=32", "--set", "model.view_width=16",
    "--set", "model.skip_layer=none", "--set", "sampling.n_coarse=8", "--set", "sampling.n_fine=8",
    "--set", "batch_rays=64", "--set", "log_every=2", "--set", "preview_every=5",
    "--set", "checkpoint_every=5", "--set", "preview_max_side=16", "--set", "eval_views=1",
]  # fmt: skip


def test_train_render_eval_round_trip(toy_dataset, tmp_path):
    run = tmp_path / "run"
    result = engine("train", toy_dataset, "--out", run, "--steps", 10, "--events", "jsonl", *TINY)
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert events[-1]["stopped"] == "completed" and events[-1]["step"] == 10

    # render: the test cameras, plus a novel wide camera at another resolution, no images needed
    test = read_split(toy_dataset, "test")
    novel = Frame(test.frames[0].camera_to_world, Intrinsics(30.0, 30.0, 29.0, 10.0, 56, 24))
    cameras = tmp_path / "cameras.json"
    write_transforms(
        cameras, [Frame(f.camera_to_world, f.intrinsics) for f in test.frames] + [novel]
    )
    out = tmp_path / "renders"
    result = engine("render", run, "--cameras", cameras, "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "render.json").read_text())
    assert len(manifest["views"]) == len(test.frames) + 1 and manifest["step"] == 10
    last = manifest["views"][-1]
    rgba = read_rgba(out / last["image"])
    assert rgba.shape == (24, 56, 4)
    assert (out / last["depth"]).is_file() and last["depth_max"] > 0

    result = engine("eval", run, "--split", "test", "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"psnr", "ssim", "n_views", "seconds"} <= report.keys()
    assert report["n_views"] == len(test.frames) and np.isfinite(report["psnr"])
    # render --split gives the views eval measured (up to the PNG's 8-bit rounding)
    split = engine("render", run, "--split", "test", "--out", tmp_path / "split", "--depth", "none")
    assert split.returncode == 0, split.stderr
    for view, gt in zip(report["views"], load_rgba(test), strict=True):
        rendered = composite(read_rgba(tmp_path / "split" / f"{view['name']}.png"), (1, 1, 1))
        assert psnr(rendered, composite(gt, (1, 1, 1))) == pytest.approx(view["psnr"], abs=0.1)


def test_sigterm_checkpoints_and_resume_continues(toy_dataset, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["train", str(toy_dataset), "--out", str(run), "--steps", "100000", "--events", "jsonl"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nerf_engine", *args, *TINY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        for line in proc.stdout:
            if json.loads(line)["event"] == "progress":
                break
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    done = events_of(stdout)[-1]
    assert done["event"] == "done" and done["stopped"] == "signal"
    stopped_at = load_run(run, "cpu").step
    assert stopped_at == done["step"] > 0
    result = engine(
        "train",
        toy_dataset,
        "--out",
        run,
        "--resume",
        "--steps",
        stopped_at + 4,
        "--events",
        "jsonl",
    )
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    assert events[0]["step"] == stopped_at and events[0]["resumed"] is True
    assert events[-1]["step"] == stopped_at + 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "{tmp}/missing", "--out", "{tmp}/run"], "dataset folder not found"),
        (["train", "{data}", "--out", "{tmp}/run", "--set", "nope=1"], "unknown setting 'nope'"),
        (["train", "{data}", "--out", "{tmp}/run", "--set", "steps=ten"], "'steps'"),
        (["render", "{tmp}", "--split", "test", "--out", "{tmp}/r"], "no checkpoints"),
        (["eval", "{tmp}/missing"], "run folder not found"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(toy_dataset, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, data=toy_dataset) for a in args]
    result = engine(*args, "--events", "jsonl")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    error = events_of(result.stdout)[-1]
    assert error["event"] == "error" and message in error["message"]
    assert not (tmp_path / "run" / "checkpoints").exists()


def _job_events(result: subprocess.CompletedProcess, job: str, total: int) -> list[dict]:
    """The events of a finished render/eval/compare job, checked against the contract."""
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    assert all(isinstance(e["step"], int) and isinstance(e["time"], float) for e in events)
    start, *progress, done = [e for e in events if e["event"] != "warning"]
    assert (start["event"], start["job"], start["total"]) == ("start", job, total)
    assert [(e["event"], e["done"], e["total"]) for e in progress] == [
        ("progress", i, total) for i in range(1, total + 1)
    ]
    assert (done["event"], done["job"], done["n_views"]) == ("done", job, total)
    return events


def test_render_eval_and_compare_speak_the_events_of_train(toy_dataset, tmp_path):
    """One job flow: every job prints the same JSON-lines events (start, progress with done and
    total, done; error on failure), so the add-on needs one watcher and no text parsing."""
    run = tmp_path / "run"
    assert engine("train", toy_dataset, "--out", run, "--steps", 4, *TINY).returncode == 0
    n = len(read_split(toy_dataset, "test").frames)
    renders = tmp_path / "renders"
    result = engine(
        "render", run, "--split", "test", "--out", renders, "--depth", "none", "--events", "jsonl"
    )
    events = _job_events(result, "render", n)
    assert {e["step"] for e in events} == {4}
    assert [Path(e["path"]) for e in events[1:-1]] == sorted(renders.glob("r_*.png"))
    result = engine("eval", run, "--events", "jsonl", "--device", "cpu")
    done = _job_events(result, "eval", n)[-1]
    assert 0 < done["psnr"] < 100 and 0 < done["ssim"] <= 1
    gt = tmp_path / "gt"  # the test images themselves as ground truth
    gt.mkdir()
    for frame in read_split(toy_dataset, "test").frames:
        shutil.copyfile(frame.image_path, gt / frame.image_path.name)
    result = engine(
        "compare", "--gt", gt, "--nerf", renders, "--run", run, "--out", tmp_path / "cmp",
        "--events", "jsonl", "--no-plots",
    )  # fmt: skip
    done = _job_events(result, "compare", n)[-1]
    report = json.loads(Path(done["report"]).read_text())
    assert done["psnr"] == pytest.approx(report["psnr"]) and report["n_views"] == n
    warnings = [e for e in events_of(result.stdout) if e["event"] == "warning"]
    assert [w["message"] for w in warnings] == report["notes"]
    # the module path of earlier versions is an alias of the subcommand
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    alias = subprocess.run(
        [sys.executable, "-m", "nerf_engine.compare", "--gt", str(gt), "--nerf", str(renders),
         "--out", str(tmp_path / "alias"), "--no-plots", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert alias.returncode == 0, alias.stderr
    assert json.loads(alias.stdout)["n_views"] == n


def _train_args(*args: str):
    return cli.build_parser().parse_args(["train", "data", "--out", *args])


def test_a_budget_is_the_unit_and_the_device_picks_the_preset(tmp_path):
    """--max-seconds without --steps trains for the whole budget (steps = 0); a step count applies
    when given, or when there is no budget; a CPU never defaults to balanced."""
    budget = cli.train_config(_train_args(str(tmp_path / "a"), "--max-seconds", "600"))
    assert (budget.steps, budget.max_seconds, budget.preset) == (0, 600.0, "preview")
    both = cli.train_config(_train_args(str(tmp_path / "b"), "--max-seconds", "60", "--steps", "7"))
    assert (both.steps, both.max_seconds) == (7, 60.0)
    as_set = cli.train_config(
        _train_args(str(tmp_path / "c"), "--max-seconds", "60", "--set", "steps=9")
    )
    assert as_set.steps == 9
    plain = cli.train_config(_train_args(str(tmp_path / "d"), "--preset", "balanced"))
    assert (plain.steps, plain.max_seconds) == (preset("balanced").steps, 0.0)
    assert cli.default_preset("cpu") == "preview"
    assert cli.train_config(_train_args(str(tmp_path / "e"), "--device", "cpu")).preset == "preview"
    # resuming a run of the preset's steps with a budget trains for that budget
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.config_path.write_text(json.dumps({"config": preset("preview").to_dict()}))
    resumed = cli.train_config(_train_args(str(run.path), "--resume", "--max-seconds", "30"))
    assert (resumed.steps, resumed.max_seconds, resumed.preset) == (0, 30.0, "preview")


def test_bench_runs_and_reports_every_figure(tmp_path):
    result = engine(
        "bench", "--presets", "preview", "--precision", "off", "--steps", 1, "--size", 24,
        "--json", tmp_path / "bench.json", "--markdown", tmp_path / "bench.md",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["peaks"]["fp32"] > 0 and data["peaks"]["bf16"] > 0
    (row,) = data["rows"]
    for key in ("ms_per_step", "train_rays_per_s", "gflops", "render_rays_per_s", "cpu_user_s"):
        assert row[key] > 0, key
    assert (
        row["precision"] == "fp32" and "| preview | fp32 |" in (tmp_path / "bench.md").read_text()
    )
