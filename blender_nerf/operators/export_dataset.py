"""``bpy.ops.nerf.export_dataset``: render the scene's cameras into a NeRF dataset.

``execute()`` does the whole export (scripts, headless Blender); ``invoke()`` runs the same
:class:`~..export.job.ExportJob` from a timer, one view per tick, with a progress bar and Esc to
cancel.
"""

from __future__ import annotations

import bpy

from ..export.job import ExportJob
from ..jobs import watcher
from ..scene.scene_io import SceneError

# Errors an export can meet and report; anything else is a bug and propagates.
EXPORT_ERRORS = (SceneError, OSError, RuntimeError)


def modal_step(job: ExportJob, event_type: str) -> str:
    """Advance ``job`` for one modal event: 'RUNNING', 'FINISHED' or 'CANCELLED' (Esc).

    Renders one view per TIMER event; other events leave the job alone. Errors propagate.
    """
    if event_type == "ESC":
        return "CANCELLED"
    if event_type != "TIMER":
        return "RUNNING"
    return "RUNNING" if job.step() else "FINISHED"


class NERF_OT_export_dataset(bpy.types.Operator):
    """Render the scene's cameras into a NeRF dataset (transforms_*.json and images)"""

    bl_idname = "nerf.export_dataset"
    bl_label = "Export Dataset"
    bl_options = frozenset({"REGISTER", "UNDO"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = context.scene
        return scene is not None and hasattr(scene, "nerf") and not scene.nerf.job_running

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        try:
            job.run()
        except EXPORT_ERRORS as exc:
            return self._fail(job, exc)
        finally:
            job.close()
        self.report({"INFO"}, job.summary())
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if context.window is None:  # no UI to run a modal operator in
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.05, window=context.window)
        wm.progress_begin(0, job.total)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        job = self._job
        try:
            outcome = modal_step(job, event.type)
        except EXPORT_ERRORS as exc:
            self._stop_modal(context)
            return self._fail(job, exc)
        if event.type == "TIMER":
            context.window_manager.progress_update(job.position)
            watcher.redraw_sidebars()
        if outcome == "RUNNING":
            return {"PASS_THROUGH"} if event.type != "TIMER" else {"RUNNING_MODAL"}
        self._stop_modal(context)
        if outcome == "CANCELLED":
            self.report({"WARNING"}, f"Export cancelled after {job.position} of {job.total} views.")
            return {"CANCELLED"}
        self.report({"INFO"}, job.summary())
        return {"FINISHED"}

    def cancel(self, context: bpy.types.Context) -> None:
        self._stop_modal(context)

    def _start(self, context: bpy.types.Context) -> ExportJob | None:
        try:
            job = ExportJob.start(context)
        except EXPORT_ERRORS as exc:
            context.scene.nerf.job_status = str(exc)  # the panel says why, as the report does
            self.report({"ERROR"}, str(exc))
            return None
        self.report({"INFO"}, job.plan.subject_text)
        for note in job.plan.notes:
            self.report({"WARNING"}, note)
        return job

    def _fail(self, job: ExportJob, exc: Exception) -> set[str]:
        job.close()
        self.report(
            {"ERROR"},
            f"Export failed at view {job.position} of {job.total}: {exc}{job.failure_note()}",
        )
        return {"CANCELLED"}

    def _stop_modal(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if getattr(self, "_timer", None) is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            wm.progress_end()
        job = getattr(self, "_job", None)
        if job is not None:
            job.close()
        watcher.redraw_sidebars()
