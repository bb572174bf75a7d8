"""``bpy.ops.nerf.check_engine`` and ``bpy.ops.nerf.install_dependencies`` (the preferences'
buttons). Install runs pip as a background job watched like training: headless it waits, from the
preferences a timer shows pip's last line and reports the outcome."""

from __future__ import annotations

import sys

import bpy
from bpy.props import EnumProperty, StringProperty

from ..jobs import engine_python, watcher
from ..jobs.engine_python import EnginePython, EngineSetupError
from ..jobs.process import JobError, ProcessJob
from ..preferences import (
    ADDON_ID,
    INSTALL_KEY,
    VARIANT_ITEMS,
    find_engine,
    get_preferences,
    offline_refusal,
)
from .train import headless


class NERF_OT_check_engine(bpy.types.Operator):
    """Find the engine's Python and show its PyTorch version and devices (CUDA, MPS, CPU)"""

    bl_idname = "nerf.check_engine"
    bl_label = "Check"
    bl_options = frozenset({"REGISTER"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = get_preferences(context)
        try:
            engine = find_engine(context)
            info = engine_python.check(engine)
        except EngineSetupError as exc:
            if prefs is not None:
                prefs.engine_info = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        text = f"{engine_python.describe(info)} ({engine.executable}, {engine.source})"
        if prefs is not None:
            prefs.engine_info = text
        self.report({"INFO"}, text)
        return {"FINISHED"}


class NERF_OT_install_dependencies(bpy.types.Operator):
    """Download PyTorch and the engine's packages with pip into the add-on's user folder"""

    bl_idname = "nerf.install_dependencies"
    bl_label = "Install Dependencies"
    bl_options = frozenset({"REGISTER"})

    variant: EnumProperty(
        name="PyTorch",
        description="Which PyTorch build to download (unset: the preferences' choice)",
        items=VARIANT_ITEMS,
        default="CPU",
        options={"SKIP_SAVE"},
    )
    wheel_dir: StringProperty(
        name="Offline Wheels",
        description="Install from this folder of wheel files (empty: the preference, else "
        "download)",
        default="",
        subtype="DIR_PATH",
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return watcher.get(INSTALL_KEY) is None

    @classmethod
    def description(cls, context: bpy.types.Context, properties) -> str:
        prefs = get_preferences(context)
        wheel_dir = properties.wheel_dir or (prefs.wheel_dir if prefs is not None else "")
        return offline_refusal(wheel_dir) or cls.__doc__

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self._start(context):
            return {"CANCELLED"}
        level, message = watcher.run_blocking(INSTALL_KEY)
        self.report({level}, message)
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if headless(context):
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        self.report({"INFO"}, "Installing PyTorch in the background; see the preferences.")
        return {"FINISHED"}

    def _start(self, context: bpy.types.Context) -> bool:
        prefs = get_preferences(context)
        variant, wheel_dir = self._choices(prefs)
        refused = offline_refusal(wheel_dir)  # Blender's rule: no download when it is off
        if refused:
            self._fail(prefs, refused)
            return False
        try:
            target = engine_python.dependencies_dir(ADDON_ID, create=True)
            blender_python = EnginePython(sys.executable, (), "blender")
            need_pip = not engine_python.has_module(blender_python, "pip")
            commands = engine_python.install_commands(
                sys.executable, target, variant, wheel_dir=wheel_dir, need_pip=need_pip
            )
            job = ProcessJob(commands, label="Install Dependencies", grace_s=10.0).start()
        except (EngineSetupError, JobError, OSError) as exc:
            self._fail(prefs, f"Install Dependencies failed: {exc}")
            return False
        watcher.watch(INSTALL_KEY, job, _show_progress, _finisher(prefs, target, variant))
        if prefs is not None and prefs.python_path:
            self.report(
                {"WARNING"},
                "Engine Python is set in the preferences: the installed packages are used only "
                "when it is empty.",
            )
        return True

    def _choices(self, prefs) -> tuple[str, str]:
        variant = self.variant
        if prefs is not None and not self.properties.is_property_set("variant"):
            variant = prefs.torch_variant
        wheel_dir = self.wheel_dir or (prefs.wheel_dir if prefs is not None else "")
        return variant, bpy.path.abspath(wheel_dir) if wheel_dir else ""

    def _fail(self, prefs, message: str) -> None:
        if prefs is not None:
            prefs.install_status = message
        self.report({"ERROR"}, message)


def _show_progress(job: ProcessJob, events: list[dict]) -> None:
    """Nothing to copy: the preferences draw the running job's last output line themselves."""


def _finisher(prefs, target, variant: str):
    labels = {item[0]: item[1] for item in VARIANT_ITEMS}

    def finish(job: ProcessJob) -> tuple[str, str]:
        if job.state == "finished":
            message = (
                f"Installed PyTorch ({labels[variant]}) into '{target}'. Press Check to see "
                "its devices."
            )
        else:
            message = job.message
            if job.state == "failed" and any(target.iterdir()):
                message += f" Partly installed files stay in '{target}'."
        if prefs is not None:
            prefs.install_status = message
        return watcher.LEVELS[job.state], message

    return finish
