"""``nerf_engine.eval.compare``: metrics agree with ``metrics`` (and so with eval), masks restrict
them, images and the training curve are written, and bad input is one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nerf_engine.data.images import read_rgba, write_png
from nerf_engine.eval import compare, plots
from nerf_engine.eval.metrics import masked_ssim, psnr, ssim, ssim_map

ROOT = Path(__file__).resolve().parents[3]


def _image(seed: int, shape=(24, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = 0.5 + 0.4 * np.sin(xx / 3.0)[..., None] * np.cos(yy[..., None] / 4.0 + np.arange(3))
    rgb = np.clip(base + rng.normal(0, 0.03, (*shape, 3)), 0, 1)
    alpha = np.zeros((*shape, 1))
    alpha[4:-4, 6:-6] = 1.0
    return np.concatenate([rgb, alpha], axis=-1).astype(np.float32)


def _folders(tmp_path: Path, names=("a", "b"), noise=0.05):
    gt, nerf = tmp_path / "gt", tmp_path / "nerf"
    gt.mkdir(), nerf.mkdir()
    for i, name in enumerate(names):
        image = _image(i)
        write_png(gt / f"{name}.png", image)
        noisy = image.copy()
        noisy[..., :3] = np.clip(noisy[..., :3] + np.random.default_rng(9).normal(0, noise), 0, 1)
        write_png(nerf / f"{name}.png", noisy)
    views = [{"name": n, "image": f"{n}.png"} for n in names]
    (nerf / "render.json").write_text(json.dumps({"views": views}))
    return gt, nerf


def test_ssim_map_mean_is_the_engines_ssim():
    a, b = _image(0)[..., :3], _image(1)[..., :3]
    values = ssim_map(a, b)
    assert values.shape == (24 - 10, 32 - 10)
    assert values.mean() == pytest.approx(ssim(a, b), abs=1e-9)
    mask = np.zeros((24, 32), bool)
    mask[:, 16:] = True  # the right half: windows centred there
    assert masked_ssim(values, mask) == pytest.approx(values[:, 11:].mean())
    assert np.isnan(masked_ssim(values, np.zeros((24, 32), bool)))


def test_metrics_composite_over_the_background_like_eval(tmp_path):
    gt, nerf = _image(0), _image(0)
    nerf[..., :3] = np.where(nerf[..., 3:] > 0, nerf[..., :3], 0.3)  # differs only where alpha 0
    metrics, gt_rgb, nerf_rgb = compare.compare_images(gt, nerf, gt[..., 3] > 0.5, (1, 1, 1))
    assert metrics["psnr"] == 100.0 and metrics["psnr_mask"] == 100.0
    nerf[5:8, 10:12, :3] = 0.0  # an error inside the object
    metrics, gt_rgb, nerf_rgb = compare.compare_images(gt, nerf, gt[..., 3] > 0.5, (1, 1, 1))
    assert metrics["psnr"] == pytest.approx(psnr(nerf_rgb, gt_rgb))
    assert metrics["psnr_mask"] < metrics["psnr"]  # the same error over fewer pixels
    assert metrics["ssim"] == pytest.approx(ssim(nerf_rgb, gt_rgb))
    assert metrics["mask_fraction"] == pytest.approx((gt[..., 3] > 0.5).mean())


def test_compare_writes_report_images_and_curve(tmp_path):
    gt, nerf = _folders(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    events = [{"event": "start", "step": 0}] + [
        {"event": "progress", "step": s, "loss": 1.0 / s, "psnr": 10 + s / 10} for s in (10, 20)
    ]
    (run / "events.jsonl").write_text("\n".join(map(json.dumps, events)) + "\nnot json\n")
    (run / "config.json").write_text(json.dumps({"config": {"background": [0.0, 0.0, 0.0]}}))
    report = compare.compare(gt, nerf, tmp_path / "out", run_dir=run)
    assert report == json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["n_views"] == 2 and [v["name"] for v in report["views"]] == ["a", "b"]
    assert report["background"] == [0.0, 0.0, 0.0] and report["notes"] == []
    assert report["psnr"] == pytest.approx(np.mean([v["psnr"] for v in report["views"]]))
    assert 10 < report["psnr"] < 40 and 0 < report["ssim"] < 1
    for name in ("side_by_side.png", "side_by_side_a.png", "side_by_side_b.png"):
        assert read_rgba(tmp_path / "out" / name).shape[1] > 3 * 32
    assert report["training_curve"] == "training_curve.png"
    assert (tmp_path / "out" / "training_curve.png").stat().st_size > 1000
    assert compare.read_training_curve(run / "events.jsonl") == {
        "step": [10.0, 20.0],
        "loss": [0.1, 0.05],
        "psnr": [11.0, 12.0],
    }


def test_a_damaged_event_log_still_gives_the_curve_of_its_good_records(tmp_path):
    path = tmp_path / "events.jsonl"
    good = [{"event": "progress", "step": s, "loss": 0.5, "psnr": 20.0} for s in (5, 10)]
    bad = [
        b"\xff\xfe not utf-8",
        json.dumps({"event": "progress", "step": "x", "loss": 1}).encode(),
        json.dumps({"event": "progress", "step": 7, "loss": [1]}).encode(),
        json.dumps({"event": "progress", "step": 8, "loss": 10**400}).encode(),
        b'{"event": "progress", "step": 9, "lo',  # cut off by a kill
    ]
    lines = [json.dumps(good[0]).encode(), *bad, json.dumps(good[1]).encode()]
    path.write_bytes(b"\n".join(lines))
    curve = compare.read_training_curve(path)
    assert curve == {"step": [5.0, 10.0], "loss": [0.5, 0.5], "psnr": [20.0, 20.0]}


def test_without_matplotlib_the_images_are_drawn_with_numpy(tmp_path):
    gt, nerf = _folders(tmp_path, names=("a",))
    report = compare.compare(gt, nerf, tmp_path / "out", run_dir=tmp_path, use_matplotlib=False)
    assert any("matplotlib is not installed" in note for note in report["notes"])
    assert report["training_curve"] is None
    image = read_rgba(tmp_path / "out" / "side_by_side.png")
    factor = -(-plots.MIN_PANEL_PX // 32)  # 32 px panels, enlarged to at least 256
    assert image.shape[0] == 24 * factor
    gt_rgba = read_rgba(gt / "a.png")
    over_white = gt_rgba[..., :3] * gt_rgba[..., 3:] + (1 - gt_rgba[..., 3:])
    assert np.allclose(image[::factor, : 32 * factor : factor, :3], over_white, atol=1 / 255)


def test_colour_bar_runs_from_dark_to_bright():
    values = np.linspace(0, plots.ERROR_MAX, 50)[None]
    brightness = plots.colorize(values)[0].sum(-1)
    assert np.all(np.diff(brightness) > 0)
    assert np.allclose(plots.colorize(np.array([[10.0]])), plots.RAMP[-1])


def test_cli_constant_image_scores_lower_and_bad_input_exits_2(tmp_path):
    gt, nerf = _folders(tmp_path, names=("a",), noise=0.01)
    constant = tmp_path / "constant"
    constant.mkdir()
    write_png(constant / "a.png", np.full((24, 32, 4), 0.5, np.float32))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*args):
        cmd = [sys.executable, "-m", "nerf_engine", "compare", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    good = run("--gt", gt, "--nerf", nerf, "--out", tmp_path / "good", "--json")
    bad = run("--gt", gt, "--nerf", constant, "--out", tmp_path / "bad", "--json")
    assert good.returncode == bad.returncode == 0, good.stderr + bad.stderr
    assert "[1/1] a" in good.stderr
    assert json.loads(good.stdout)["psnr"] > json.loads(bad.stdout)["psnr"] + 10
    missing = run("--gt", tmp_path / "nowhere", "--nerf", nerf, "--out", tmp_path / "x")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "no ground truth for view 'a'" in missing.stderr
    write_png(constant / "a.png", np.full((10, 10, 4), 0.5, np.float32))
    other_size = run("--gt", gt, "--nerf", constant, "--out", tmp_path / "y")
    assert other_size.returncode == 2 and "render both at the same size" in other_size.stderr


def test_an_empty_nerf_render_is_reported_not_scored(tmp_path):
    """Two empty images agree perfectly (100 dB): a NeRF render that covers nothing is named in
    ``empty_views`` with a warning and left out of the means; all of them empty: no score."""
    gt, nerf = _folders(tmp_path, names=("a", "b"))
    empty = read_rgba(nerf / "b.png")
    empty[..., 3] = 0.0  # the NeRF is nowhere in view 'b'
    write_png(nerf / "b.png", empty)
    events = []
    report = compare.compare(
        gt, nerf, tmp_path / "out", use_matplotlib=False, on_event=events.append
    )
    assert report["empty_views"] == ["b"] and report["n_scored"] == 1 and report["n_views"] == 2
    (scored,) = [v for v in report["views"] if not v["empty"]]
    assert report["psnr"] == pytest.approx(scored["psnr"]) and scored["name"] == "a"
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("empty in 1 of 2 views ('b')" in w and "not scored" in w for w in warnings)

    write_png(nerf / "a.png", np.zeros_like(empty))
    gt_empty = np.zeros_like(empty)
    for name in ("a", "b"):
        write_png(gt / f"{name}.png", gt_empty)
    report = compare.compare(gt, nerf, tmp_path / "out2", use_matplotlib=False)
    assert report["psnr"] is None and report["ssim"] is None and report["n_scored"] == 0
    assert report["empty_views"] == ["a", "b"] and "every view" in report["notes"][0]


def test_renders_that_show_their_learned_world_are_compared_as_they_are(tmp_path):
    """A NeRF trained on opaque images renders the world behind it in its colour, with the
    field's own alpha; render.json says ``"world": true`` and Compare takes the colour as it is
    (compositing it over the background again would wash the world out)."""
    gt, nerf = _folders(tmp_path, names=("a",), noise=0.0)
    opaque = read_rgba(gt / "a.png")
    opaque[..., 3] = 1.0  # Blender's render with the world behind the subject
    write_png(gt / "a.png", opaque)
    with_world = opaque.copy()
    with_world[..., 3] = read_rgba(nerf / "a.png")[..., 3]  # the field's own opacity
    write_png(nerf / "a.png", with_world)
    washed = compare.compare(gt, nerf, tmp_path / "washed", use_matplotlib=False)
    manifest = json.loads((nerf / "render.json").read_text())
    (nerf / "render.json").write_text(json.dumps({**manifest, "world": True}))
    report = compare.compare(gt, nerf, tmp_path / "out", use_matplotlib=False)
    assert report["psnr"] == 100.0 and washed["psnr"] < 20
