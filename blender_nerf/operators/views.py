"""``bpy.ops.nerf.render_views``, ``import_view``, ``compare`` and ``import_cameras``.

Render Views and Compare run the engine in the background like Train: headless ``execute()``
waits for the end and reports it; from the panel ``invoke()`` returns at once and the timer
reports. Import View and Import Cameras are quick and synchronous. Every operator checks its
input before it changes the scene and answers bad input with an ERROR report and CANCELLED.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper

from ..compare import start as compare
from ..jobs import watcher
from ..jobs.engine_python import EngineSetupError
from ..jobs.process import JobError
from ..scene.paths import folder_setting
from ..scene.scene_io import SceneError
from ..views import import_cameras, import_view, plan, render_views
from .train import headless

# Errors that stop a job from starting, with a message for the user.
START_ERRORS = (SceneError, EngineSetupError, JobError, OSError, RuntimeError)


def _idle(context: bpy.types.Context) -> bool:
    scene = context.scene
    return scene is not None and hasattr(scene, "nerf") and not scene.nerf.job_running


class _EngineJobOperator:
    """Start a background engine job; wait for it headless."""

    module = None  # views.render_views or compare.start: start(context) and KIND
    started = ""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _idle(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        if self._start(context) is None:
            return {"CANCELLED"}
        level, message = watcher.run_scene_blocking(context.scene, self.module.KIND)
        self.report({level}, message)
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if headless(context):
            return self.execute(context)
        if self._start(context) is None:
            return {"CANCELLED"}
        self.report({"INFO"}, self.started)
        return {"FINISHED"}

    def _start(self, context: bpy.types.Context):
        try:
            job = self.module.start(context)
        except START_ERRORS as exc:
            context.scene.nerf.job_status = str(exc)
            self.report({"ERROR"}, str(exc))
            return None
        for note in job.notes:
            self.report({"WARNING"}, note)
        return job


class NERF_OT_render_views(_EngineJobOperator, bpy.types.Operator):
    """Render the trained NeRF from the active camera, the selected cameras or an animation"""

    bl_idname = "nerf.render_views"
    bl_label = "Render Views"
    bl_options = frozenset({"REGISTER", "UNDO"})
    module = render_views
    started = "Rendering the NeRF in the background."


class NERF_OT_compare(_EngineJobOperator, bpy.types.Operator):
    """Render the cameras with Blender and with the NeRF; PSNR, SSIM, side-by-side images and
    the training curve into the run folder"""

    bl_idname = "nerf.compare"
    bl_label = "Compare"
    bl_options = frozenset({"REGISTER", "UNDO"})
    module = compare
    started = "Comparing in the background."


class NERF_OT_import_view(bpy.types.Operator):
    """Bring the last NeRF render back as an image plane, camera background or compositor
    background (importing again replaces the earlier import of that camera)"""

    bl_idname = "nerf.import_view"
    bl_label = "Import View"
    bl_options = frozenset({"REGISTER", "UNDO"})

    camera: StringProperty(
        name="Camera",
        description="Import only this camera's render (empty: every camera of the last render; "
        "the active camera's for the compositor)",
        default="",
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _idle(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        nerf = scene.nerf
        try:
            folder = folder_setting(nerf.render_dir, "Render Folder")
            views, aabb = plan.read_views(folder)
            target = nerf.import_target
            imports = import_view.plan_imports(scene, folder, views, target, self.camera)
            if target == "PLANE":  # checked for every camera before any is imported
                for item in imports:
                    camera = bpy.data.objects[item.camera]
                    import_view.plane_distance(scene, camera, nerf.import_distance, aabb)
            compositor = None
            if target == "COMPOSITOR":  # one camera: the active one's
                compositor = import_view.plan_compositor(scene, folder, imports[0], nerf)
            done = [
                import_view.apply_import(scene, it, target, nerf, aabb, compositor)
                for it in imports
            ]
        except (SceneError, RuntimeError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported the NeRF render as {'; '.join(done)}.")
        return {"FINISHED"}


class NERF_OT_import_cameras(bpy.types.Operator, ImportHelper):
    """Create the cameras of a NeRF dataset, with their exact lenses, from its transforms file
    (ours, NeRF-synthetic, instant-ngp, nerfstudio), from every split of a dataset folder, or
    from a COLMAP text model (sparse/0 folder, cameras.txt or images.txt)"""

    bl_idname = "nerf.import_cameras"
    bl_label = "Import Cameras"
    bl_options = frozenset({"REGISTER", "UNDO"})

    filename_ext = ".json"
    filter_glob: StringProperty(
        default="*.json;*.txt", description="Which files the file browser shows", options={"HIDDEN"}
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and hasattr(context.scene, "nerf")

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.filepath:
            self.report(
                {"ERROR"},
                "No file: choose a transforms .json, a dataset folder or a COLMAP sparse/0 folder.",
            )
            return {"CANCELLED"}
        if self.filepath.startswith("//") and not bpy.data.filepath:
            self.report(
                {"ERROR"},
                f"'{self.filepath}' is relative to the .blend file, which is not saved yet; "
                "save the file or choose the transforms file by its full path.",
            )
            return {"CANCELLED"}
        path = Path(bpy.path.abspath(self.filepath))
        if not path.exists():
            self.report(
                {"ERROR"},
                f"'{path}' does not exist: choose a transforms .json file or a COLMAP model.",
            )
            return {"CANCELLED"}
        try:
            collection, note, warnings = import_cameras.import_cameras(context, path)
        except SceneError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        count = len(collection.objects)
        self.report({"INFO"}, f"Imported {count} camera(s) into '{collection.name}'.{note}")
        for warning in warnings:
            self.report({"WARNING"}, warning)
        return {"FINISHED"}


CLASSES = (NERF_OT_render_views, NERF_OT_compare, NERF_OT_import_view, NERF_OT_import_cameras)
