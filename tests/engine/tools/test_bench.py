"""The benchmark's parts: configuration switches, training against the clock, the reference NeRF,
thread and compile settings."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import tiny_config

from nerf_engine.runtime import configure_threads
from nerf_engine.tools import bench_curves
from nerf_engine.tools.bench_curves import (
    reference_script,
    run_reference,
    time_to,
    train_against_clock,
    train_against_clock_apart,
)
from nerf_engine.tools.variants import variant


def test_switches_combine_and_unknown_ones_are_named():
    config = variant("preview+noaccel+compile", "bf16", "cpu")
    assert config.preset == "preview+noaccel+compile"
    assert config.compile and config.mixed_precision == "bf16"
    assert config.sampling.occupancy_resolution == 0 and not config.sampling.use_aabb
    accelerated = variant("paper+accel", "off", "cpu")
    assert accelerated.sampling.occupancy_resolution > 0 and not accelerated.compile
    with pytest.raises(ValueError, match=r"unknown switch \+fast in 'preview\+fast'"):
        variant("preview+fast", "off", "cpu")
    ablation = variant("fast+random_background=false+model.plane_resolutions=32;64", "auto", "cpu")
    assert ablation.preset == "fast+random_background=false+model.plane_resolutions=32;64"
    assert not ablation.random_background and ablation.model.plane_resolutions == (32, 64)
    with pytest.raises(ValueError, match="unknown setting 'nope'"):
        variant("preview+nope=1", "auto", "cpu")


def test_a_curve_ends_with_the_last_step_when_the_preset_stops_first(toy_dataset):
    config = tiny_config(steps=6, precrop_steps=0)
    result = train_against_clock(config, toy_dataset, seconds=1e6, evals=2)
    assert result["steps"] == 6
    assert result["curve"][-1]["step"] == 6  # measured after the last step, not before it
    seconds = [point["seconds"] for point in result["curve"]]
    assert seconds == sorted(seconds) and result["render_s_per_view"] > 0


def test_a_curve_is_measured_at_the_times_asked_for(toy_dataset):
    """--suite's 60/180/600 s: one measurement at the first step past each time (several times
    passed in one step give one measurement), PSNR, SSIM and the alpha error each time."""
    config = tiny_config(steps=0, precrop_steps=0)  # the clock alone ends it
    result = train_against_clock(config, toy_dataset, 0.6, eval_at=[0.3, 0.0, 0.6], test_views=2)
    points = result["curve"]
    assert 1 <= len(points) <= 3 and points[0]["step"] == 1  # 0.0 s: right after the first step
    assert points[-1]["seconds"] >= 0.6 and points[-1]["step"] == result["steps"]
    for point in points:
        assert 5 < point["psnr"] < 60 and 0 < point["ssim"] <= 1 and 0 <= point["alpha_error"] <= 1


def test_a_run_apart_is_the_same_measurement_in_a_fresh_process(toy_dataset, tmp_path):
    """The suite and --curves train each configuration in its own process (in one process later
    runs were slower); same result shape, the configuration as given, errors with the cause."""
    config = tiny_config(steps=5, precrop_steps=0)  # 5 steps: no preset's, so it travelled
    result = train_against_clock_apart(config, toy_dataset, 1e6, eval_at=[1e6], test_views=2)
    assert result["steps"] == 5 and result["curve"][-1]["step"] == 5
    assert 5 < result["curve"][-1]["psnr"] < 60 and result["render_s_per_view"] > 0
    assert set(result) == set(train_against_clock(config, toy_dataset, 1e6, evals=1))
    with pytest.raises(RuntimeError, match=r"(?s)training .* failed:.*transforms"):
        train_against_clock_apart(config, tmp_path / "nowhere", 1.0)


def test_time_to_reads_the_first_crossing():
    curve = [
        {"seconds": s, "psnr": p}
        for s, p in [(10.0, 18.0), (20.0, 24.5), (30.0, 23.0), (40.0, 26.1)]
    ]
    assert time_to(curve, 24.0) == 20.0 and time_to(curve, 26.0) == 40.0
    assert time_to(curve, 30.0) is None


@pytest.mark.parametrize("flags", [(), ("--aabb", "--bf16")])
def test_the_reference_nerf_trains_on_our_datasets(toy_dataset, flags):
    assert reference_script().is_file()
    sizes = {"depth": 2, "width": 16, "coarse": 8, "fine": 8, "batch": 64, "steps": 3}
    result = run_reference(toy_dataset, 1e6, sizes, evals=0, flags=flags, tuned_malloc=True)
    assert result["steps"] == 3 and result["rays_per_s"] > 0 and result["curve"] == []


def test_the_reference_is_measured_like_the_engine(toy_dataset):
    sizes = {"depth": 2, "width": 16, "coarse": 8, "fine": 8, "batch": 64, "steps": 4}
    result = run_reference(toy_dataset, 1e6, sizes, eval_at=[0.0], test_views=2)
    (point,) = result["curve"]
    assert point["step"] == 1 and 5 < point["psnr"] < 60 and 0 < point["ssim"] <= 1


def test_without_the_repository_the_reference_is_refused_with_advice(monkeypatch, tmp_path):
    """The extension zip ships the engine without benchmarks/: bench says where it looked."""
    monkeypatch.setattr(bench_curves, "REPOSITORY", tmp_path)
    with pytest.raises(FileNotFoundError, match="clone of the blender-nerf repository"):
        reference_script()


def test_threads_setting(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1
        monkeypatch.setenv("NERF_THREADS", "2")
        assert configure_threads() == 2
        assert configure_threads(1) == 1  # an explicit count wins over the environment
        with pytest.raises(ValueError, match="threads must be 0"):
            configure_threads(-1)
    finally:
        torch.set_num_threads(before)


def test_compiled_fields_compute_what_the_eager_ones_do(toy_dataset, tmp_path):
    """torch.compile (inductor; needs a C++ compiler) changes speed, not results, and keeps the
    parameter names, so a compiled run's checkpoint loads anywhere."""
    from nerf_engine.train.trainer import Trainer

    losses = []
    for compiled in (False, True):
        config = tiny_config(compile=compiled, mixed_precision="off", precrop_steps=0)
        trainer = Trainer(config, str(toy_dataset), tmp_path / f"run_{compiled}")
        names = sorted(trainer.model.state_dict())
        assert (trainer.model.coarse._compiled_call_impl is not None) == compiled
        losses.append([float(trainer.step().loss) for _ in range(3)])
        assert trainer.global_step == 3
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    assert all("_orig_mod" not in name for name in names)


def test_a_profile_names_where_the_step_goes(toy_dataset):
    from nerf_engine.tools.profile import PHASES, profile_steps, profile_table

    result = profile_steps(tiny_config(steps=50), toy_dataset, steps=3, warmup=1)
    assert set(result["phases"]) == set(PHASES) and result["ms_per_step"] > 0
    for phase in ("train.rays", "nerf.sample", "nerf.encode", "nerf.mlp", "train.backward"):
        assert result["phases"][phase] > 0, phase
    assert sum(result["phases"].values()) < 1.5 * result["ms_per_step"]  # (nesting is avoided)
    table = profile_table("tiny", result, peak_gflops=100.0)
    assert "| nerf.mlp |" in table and "% of the matmul peak" in table


def test_a_child_process_reports_its_own_peak_memory():
    """``bench --memory`` runs each job through a small wrapper that prints the child's peak
    resident memory (it was once a SyntaxError in the child, and ``--memory`` failed)."""
    from nerf_engine.tools.bench import _child_peak_gib

    peak = _child_peak_gib(["--help"])  # the engine's CLI: imports torch, exits 0
    assert 0.01 < peak < 8.0, peak
