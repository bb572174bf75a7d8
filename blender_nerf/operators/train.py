"""``bpy.ops.nerf.train`` (Train / Resume) and ``bpy.ops.nerf.cancel_job``.

Headless (scripts, ``blender -b``, bpy as a module) ``execute()`` trains to the end and reports
how it went. From the panel ``invoke()`` starts the trainer and returns at once; a timer
(``jobs.watcher.tick``) keeps the panel up to date and reports the outcome.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from ..jobs import watcher
from ..jobs.engine_python import EngineSetupError
from ..jobs.process import JobError
from ..scene.scene_io import SceneError
from ..train import start as train
from ..train.job import TrainJob

# Errors that stop a training from starting, with a message for the user.
START_ERRORS = (SceneError, EngineSetupError, JobError, OSError)
REPORT_LEVELS = (
    ("INFO", "Info", "It went well"),
    ("WARNING", "Warning", "It ended, with something to know"),
    ("ERROR", "Error", "It failed"),
)


def headless(context: bpy.types.Context) -> bool:
    """No UI to come back to: run a job to the end inside the operator."""
    return bpy.app.background or context.window is None


class NERF_OT_train(bpy.types.Operator):
    """Train a NeRF on the dataset folder in a separate process"""

    bl_idname = "nerf.train"
    bl_label = "Train NeRF"
    bl_options = frozenset({"REGISTER", "UNDO"})

    resume: BoolProperty(
        name="Resume",
        description="Continue the run in Run Folder from its latest checkpoint",
        default=False,
        options={"SKIP_SAVE"},
    )

    @classmethod
    def description(cls, context: bpy.types.Context, properties) -> str:
        if properties.resume:
            return "Continue training the run in Run Folder from its latest checkpoint"
        return cls.__doc__

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = context.scene
        if scene is None or not hasattr(scene, "nerf") or scene.nerf.job_running:
            return False
        return train.running_job(scene) is None

    def execute(self, context: bpy.types.Context) -> set[str]:
        if self._start(context) is None:
            return {"CANCELLED"}
        level, message = watcher.run_scene_blocking(context.scene, train.KIND)
        self.report({level}, message)
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if headless(context):
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self.report({"INFO"}, f"Training started: {job.request.run_dir}")
        return {"FINISHED"}

    def _start(self, context: bpy.types.Context) -> TrainJob | None:
        try:
            return train.start(context, resume=self.resume)
        except START_ERRORS as exc:
            context.scene.nerf.job_status = str(exc)
            self.report({"ERROR"}, str(exc))
            return None


class NERF_OT_cancel_job(bpy.types.Operator):
    """Stop the scene's running job: training saves a checkpoint first (Resume continues from
    it); Render Views and Compare stop at once"""

    bl_idname = "nerf.cancel_job"
    bl_label = "Cancel"
    bl_options = frozenset({"REGISTER"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = context.scene
        return scene is not None and watcher.scene_job(scene) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        key, job = watcher.scene_job(scene)
        job.request_stop()
        scene.nerf.job_status = job.status()
        if headless(context):  # nobody else polls: wait for the checkpoint here
            level, message = watcher.run_blocking(key)
            self.report({level}, message)
        return {"FINISHED"}


class NERF_OT_job_report(bpy.types.Operator):
    """Report how a background job ended (used by the add-on's timer)"""

    bl_idname = "nerf.job_report"
    bl_label = "NeRF Job Report"
    bl_options = frozenset({"INTERNAL"})

    level: EnumProperty(
        name="Level", description="How the job ended", items=REPORT_LEVELS, default="INFO"
    )
    message: StringProperty(name="Message", description="What to tell the artist", default="")

    def execute(self, context: bpy.types.Context) -> set[str]:
        self.report({self.level}, self.message)
        return {"FINISHED"}
