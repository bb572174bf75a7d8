"""Resume after an interrupted export, and the modal (timer + Esc) path that shares its steps."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import RenderLog, export, scene_fingerprint  # noqa: E402

from blender_nerf.export.job import ExportJob  # noqa: E402
from blender_nerf.operators.export_dataset import modal_step  # noqa: E402


def _transforms(out):
    return sorted(p.name for p in out.glob("transforms_*.json"))


def _images(out):
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.glob("*/r_*.png")}


def test_interrupted_export_resumes_without_rerendering(scene, tmp_path):
    scene.nerf.dataset_dir, scene.nerf.rig_views = str(tmp_path), 6
    before = scene_fingerprint(scene)
    with RenderLog() as log:
        job = ExportJob.start(bpy.context)
        assert job.step() and job.step() and job.step()
        job.close()  # what Esc (or closing Blender) leaves behind
    assert len(log) == 3
    assert scene_fingerprint(scene) == before
    assert _transforms(tmp_path) == []  # no dataset file claims the missing views
    finished = _images(tmp_path)
    assert len(finished) == 3

    with RenderLog() as log:
        assert export(scene, tmp_path) == {"FINISHED"}
    assert len(log) == 3, "only the missing views are rendered"
    assert "resumed: kept 3 views already rendered" in scene.nerf.job_status
    assert {k: v for k, v in _images(tmp_path).items() if k in finished} == finished
    assert _transforms(tmp_path) == [f"transforms_{s}.json" for s in ("test", "train", "val")]

    with RenderLog() as log:
        export(scene, tmp_path)
    assert len(log) == 0 and "kept 6" in scene.nerf.job_status

    with RenderLog() as log:  # a different rig: nothing on disk matches it
        export(scene, tmp_path, rig_seed=7)
    assert len(log) == 6 and "kept" not in scene.nerf.job_status

    with RenderLog() as log:
        export(scene, tmp_path, overwrite=True)
    assert len(log) == 6


def test_a_view_whose_image_is_missing_is_rendered_again(scene, tmp_path):
    export(scene, tmp_path, rig_views=4, split_val=0.0, split_test=0.0)
    (tmp_path / "train" / "r_2.png").unlink()
    with RenderLog() as log:
        export(scene, tmp_path)
    assert len(log) == 1 and (tmp_path / "train" / "r_2.png").is_file()


def test_modal_steps_render_one_view_per_timer_and_esc_cancels(scene, tmp_path):
    scene.nerf.dataset_dir, scene.nerf.rig_views = str(tmp_path), 4
    before = scene_fingerprint(scene)
    job = ExportJob.start(bpy.context)
    assert scene.nerf.job_running and not bpy.ops.nerf.export_dataset.poll()
    with RenderLog() as log:
        assert modal_step(job, "MOUSEMOVE") == "RUNNING" and len(log) == 0
        assert modal_step(job, "TIMER") == "RUNNING" and len(log) == 1
        assert scene.nerf.job_progress == pytest.approx(0.25)
        assert modal_step(job, "ESC") == "CANCELLED" and len(log) == 1
    job.close()
    assert not scene.nerf.job_running and bpy.ops.nerf.export_dataset.poll()
    assert "Stopped after 1 of 4" in scene.nerf.job_status
    assert scene_fingerprint(scene) == before

    job = ExportJob.start(bpy.context)
    outcomes = []
    with RenderLog() as log:
        while not outcomes or outcomes[-1] == "RUNNING":
            outcomes.append(modal_step(job, "TIMER"))
    job.close()
    assert outcomes == ["RUNNING", "RUNNING", "FINISHED"] and len(log) == 3  # 1 was kept
    assert scene.nerf.job_progress == 1.0
    assert _transforms(tmp_path) == [f"transforms_{s}.json" for s in ("test", "train", "val")]
    assert scene_fingerprint(scene) == before


def test_invoke_default_does_the_whole_job_headless(scene, tmp_path):
    scene.nerf.dataset_dir, scene.nerf.rig_views = str(tmp_path), 2
    assert bpy.ops.nerf.export_dataset("INVOKE_DEFAULT") == {"FINISHED"}
    assert (tmp_path / "transforms_train.json").is_file()
