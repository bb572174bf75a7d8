"""Add-on preferences (Edit > Preferences > Add-ons > blender-nerf): the engine's Python, a Check
of what it can train on, and Install Dependencies (PyTorch into the extension's user folder).
:func:`find_engine` is the interpreter they choose, for every engine job."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from . import properties_devices as devices
from .jobs import engine_python, watcher
from .jobs.engine_python import TORCH_VARIANTS

ADDON_ID = __package__  # "blender_nerf", or "bl_ext.<repo>.blender_nerf" as an installed extension
INSTALL_KEY = "install"  # the watcher's key of the running Install Dependencies


OFFLINE_MESSAGE = (
    "Install Dependencies downloads PyTorch, but Allow Online Access is off (Preferences > "
    "System): turn it on, or set Offline Wheels to a folder of downloaded wheel files."
)

VARIANT_ITEMS = [(ident, label, description) for ident, label, description, _ in TORCH_VARIANTS]


class NERF_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="Engine Python",
        description="A Python interpreter with PyTorch that runs the NeRF engine for training and "
        "rendering (empty: Blender's own, with the packages from Install Dependencies)",
        default="",
        subtype="FILE_PATH",
    )
    torch_variant: EnumProperty(
        name="PyTorch",
        description="Which PyTorch build Install Dependencies downloads",
        items=VARIANT_ITEMS,
        default="CPU",
    )
    wheel_dir: StringProperty(
        name="Offline Wheels",
        description="Install from this folder of downloaded wheel files instead of the internet "
        "(empty: download)",
        default="",
        subtype="DIR_PATH",
    )
    __annotations__.update(devices.preference_properties())  # Devices, Cluster Command
    engine_info: StringProperty(name="Engine", description="What the last Check found", default="")
    install_status: StringProperty(
        name="Install", description="How the last Install Dependencies went", default=""
    )

    def draw(self, context: bpy.types.Context) -> None:
        draw_preferences(self.layout, self)


def draw_preferences(layout: bpy.types.UILayout, prefs: bpy.types.AddonPreferences) -> None:
    """The preferences' layout (a function so that tests can draw it into a recording layout)."""
    layout.use_property_split = True
    col = layout.column()
    col.prop(prefs, "python_path")
    row = col.row()
    row.operator("nerf.check_engine", icon="CHECKMARK")
    if prefs.engine_info:
        col.label(text=prefs.engine_info, icon="INFO")
    col.prop(prefs, "devices")
    col.prop(prefs, "torchrun_command")
    box = layout.box()
    box.label(text="Install Dependencies (PyTorch for Blender's own Python)", icon="IMPORT")
    box.prop(prefs, "torch_variant")
    box.prop(prefs, "wheel_dir")
    installing = watcher.get(INSTALL_KEY)
    refused = offline_refusal(prefs.wheel_dir)
    row = box.row()
    row.enabled = installing is None and not refused
    row.operator("nerf.install_dependencies", icon="IMPORT")
    if refused:
        box.label(text="Allow Online Access is off (Preferences > System):", icon="ERROR")
        box.label(text="turn it on, or install from Offline Wheels.")
    if installing is not None:
        box.label(text=f"Installing… {installing.last_output()[:90]}", icon="TIME")
    elif prefs.install_status:
        box.label(text=prefs.install_status, icon="INFO")
    layout.label(text="Datasets export from the sidebar: 3D Viewport > N > NeRF.", icon="INFO")


def offline_refusal(wheel_dir: str) -> str:
    """Why Install Dependencies may not download (Blender's Allow Online Access is off and no
    Offline Wheels folder is given), or "" when it may go ahead."""
    return "" if wheel_dir or bpy.app.online_access else OFFLINE_MESSAGE


def get_preferences(context: bpy.types.Context) -> NERF_AP_preferences | None:
    """The add-on's preferences, or None when it was registered without Blender's add-on
    machinery (bpy as a module calling ``register()``): then every preference has its default."""
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def find_engine(context: bpy.types.Context) -> engine_python.EnginePython:
    """The interpreter from the preferences, Blender's own, or Install Dependencies'. Raises
    EngineSetupError saying what to do when there is none."""
    prefs = get_preferences(context)
    python_path = bpy.path.abspath(prefs.python_path) if prefs and prefs.python_path else ""
    return engine_python.resolve(python_path, engine_python.dependencies_dir(ADDON_ID))


CLASSES = (NERF_AP_preferences,)
