"""Export Dataset, Train, Render Views and Compare change the scene (their status, numbers and
images): each is one undo step, as Import View and Import Cameras are. In bpy as a module the
undo stack works as in the interface; an operator called from Python pushes its undo step when
asked to (``undo=True``), as the interface always does."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import configure_fast_render  # noqa: E402

from blender_nerf.jobs import watcher  # noqa: E402

CHANGE_THE_SCENE = (
    "NERF_OT_export_dataset",
    "NERF_OT_train",
    "NERF_OT_render_views",
    "NERF_OT_compare",
    "NERF_OT_import_view",
    "NERF_OT_import_cameras",
    "NERF_OT_extract_mesh",
)


def test_every_operator_that_changes_the_scene_is_an_undo_step(scene):
    for name in CHANGE_THE_SCENE:
        assert "UNDO" in getattr(bpy.types, name).bl_options, name


def test_undo_takes_back_an_export_in_one_step(scene, tmp_path):
    configure_fast_render(scene, size=(16, 16))
    bpy.ops.ed.undo_push(message="start")
    scene.nerf.dataset_dir, scene.nerf.rig_views = str(tmp_path), 2
    bpy.ops.ed.undo_push(message="the artist's settings")
    assert bpy.ops.nerf.export_dataset("EXEC_DEFAULT", True) == {"FINISHED"}  # True: undo step
    assert bpy.context.scene.nerf.job_status.startswith("Exported 2 views")
    bpy.ops.ed.undo()
    nerf = bpy.context.scene.nerf  # undo loads the scene again
    assert nerf.job_status == "" and nerf.job_progress == 0.0
    assert nerf.rig_views == 2 and nerf.dataset_dir == str(tmp_path)  # the step before stays


def test_undo_to_a_step_taken_while_a_job_ran_does_not_lock_the_panel(scene):
    """From the panel, Train, Render Views and Compare return while their job runs: their undo
    step holds "a job is running". Going back to it after the job ended unlocks the panel."""
    nerf = scene.nerf
    bpy.ops.ed.undo_push(message="start")
    nerf.job_running = True  # what the step of a job started from the panel holds
    bpy.ops.ed.undo_push(message="Train NeRF")
    nerf.job_running = False  # the job ended
    bpy.ops.ed.undo_push(message="NeRF job finished")
    bpy.ops.ed.undo()
    assert bpy.context.scene.nerf.job_running is False
    assert bpy.ops.nerf.train.poll() and bpy.ops.nerf.export_dataset.poll()


def test_the_end_of_a_job_started_from_the_panel_is_one_undo_step(scene):
    """From the panel a job ends in the timer, after its operator's step: the timer's report of
    the end makes what it wrote (numbers, images) an undo step of its own."""
    bpy.ops.ed.undo_push(message="start")
    scene.nerf.rig_views = 3
    bpy.ops.ed.undo_push(message="the artist's change")
    scene.nerf.compare_psnr = 25.0  # what the end of a Compare writes
    watcher._report("INFO", "Compared 1 view(s): PSNR 25.00 dB")
    bpy.ops.ed.undo()
    nerf = bpy.context.scene.nerf
    assert nerf.compare_psnr == 0.0 and nerf.rig_views == 3
