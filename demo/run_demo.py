"""The whole loop on the bundled demo scene: `python3 build.py demo` runs this in the project venv.

1. build the procedural demo scene in Blender (bpy) and save it as a .blend;
2. export a NeRF dataset with the add-on's own operator (rig cameras, Cycles, transparent film);
3. train the `preview` preset with the engine CLI (bounded by a wall-clock budget);
4. render the test views and a novel orbit with the CLI, evaluate PSNR/SSIM against Blender's
   renders, and write a side-by-side image (ground truth | NeRF | error).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nerf_engine.cameras import look_at  # noqa: E402
from nerf_engine.dataset import Frame, load_rgba, read_split, write_transforms  # noqa: E402
from nerf_engine.images import composite, read_rgba, write_png  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "demo_out"), help="output folder")
    p.add_argument("--views", type=int, default=72, help="rig views (all splits)")
    p.add_argument("--resolution", type=int, default=100)
    p.add_argument("--preset", default="preview")
    p.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    p.add_argument("--seconds", type=float, default=600.0, help="training wall-clock budget")
    p.add_argument("--orbit-frames", type=int, default=24)
    return p.parse_args(argv)


def engine(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "nerf_engine", *map(str, args)]
    result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"demo: `{' '.join(cmd[2:])}` failed with exit status {result.returncode}")
    return result


def export_dataset(out: Path, views: int, resolution: int) -> Path:
    import bpy

    import blender_nerf
    from demo.scene import build_demo_scene

    blender_nerf.register()
    try:
        scene = build_demo_scene(resolution=resolution)
        bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo_scene.blend"))
        nerf = scene.nerf
        nerf.dataset_dir = str(out / "dataset")
        nerf.camera_source = "RIG"
        nerf.rig_views = views
        nerf.rig_hemisphere = True
        nerf.split_val, nerf.split_test = 0.04, 0.12
        if bpy.ops.nerf.export_dataset() != {"FINISHED"}:
            sys.exit("demo: the dataset export failed (see the message above)")
    finally:
        blender_nerf.unregister()
    return out / "dataset"


def orbit_cameras(dataset: Path, path: Path, n: int) -> None:
    """A circle of cameras at 25° elevation, at the rig's mean distance: views nobody rendered."""
    train = read_split(dataset, "train")
    centre = np.asarray(train.aabb).mean(axis=0) if train.aabb is not None else np.zeros(3)
    radius = float(np.linalg.norm(train.poses()[:, :3, 3] - centre, axis=-1).mean())
    frames = []
    for i in range(n):
        a, e = 2 * math.pi * i / n, math.radians(25)
        eye = centre + radius * np.array(
            [math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]
        )
        frames.append(Frame(look_at(eye, centre), train.frames[0].intrinsics, f"orbit_{i:03d}"))
    write_transforms(path, frames)


def side_by_side(dataset: Path, renders: Path, name: str, path: Path) -> None:
    """ground truth | NeRF | absolute error ×4, all over white."""
    test = read_split(dataset, "test")
    gt = composite(load_rgba(test)[0], (1, 1, 1))
    nerf = composite(read_rgba(renders / f"{name}.png"), (1, 1, 1))
    error = np.clip(np.abs(gt - nerf).mean(-1, keepdims=True) * 4, 0, 1).repeat(3, -1)
    write_png(path, np.concatenate([gt, nerf, 1 - error], axis=1))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"[1/4] building the demo scene and exporting {args.views} views ...", flush=True)
    dataset = export_dataset(out, args.views, args.resolution)
    print(f"[2/4] training the {args.preset} preset (at most {args.seconds:.0f} s) ...", flush=True)
    run = out / "run"
    steps = ["--steps", args.steps] if args.steps else []
    resume = ["--resume"] if (run / "checkpoints").is_dir() else []
    engine("train", dataset, "--out", run, "--preset", args.preset, "--max-seconds", args.seconds,
           "--set", "log_every=100", *steps, *resume)  # fmt: skip
    print("[3/4] rendering the test views and a novel orbit ...", flush=True)
    engine("render", run, "--split", "test", "--out", out / "test_renders")
    orbit_cameras(dataset, out / "orbit_cameras.json", args.orbit_frames)
    engine("render", run, "--cameras", out / "orbit_cameras.json", "--out", out / "orbit")
    print("[4/4] evaluating against Blender's renders ...", flush=True)
    report = json.loads(engine("eval", run, "--split", "test", "--json").stdout)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    side_by_side(
        dataset, out / "test_renders", report["views"][0]["name"], out / "side_by_side.png"
    )
    print(f"""
done in {time.time() - started:.0f} s
  test PSNR {report["psnr"]:.2f} dB, SSIM {report["ssim"]:.3f} over {report["n_views"]} views
  scene        {out / "demo_scene.blend"}
  dataset      {dataset}
  run          {run}   (checkpoints, previews, events.jsonl)
  test renders {out / "test_renders"}
  novel orbit  {out / "orbit"}
  side by side {out / "side_by_side.png"}   (ground truth | NeRF | error)""")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
