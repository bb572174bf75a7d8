"""Settings: one PropertyGroup at ``Scene.nerf`` (contract, see DESIGN.md) and a small one on
camera data (``Camera.nerf``) for a per-camera resolution override. The engine's presets and
devices come from ``nerf_engine.config`` (their identifiers here are the names in capitals)."""

from __future__ import annotations

import math

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from .nerf_engine.config import DEVICES, PRESET_SUMMARIES, PRESETS
from .properties_composite import CompositeSettings
from .properties_devices import DEVICES_TIP, NERF_PG_devices
from .properties_mesh import NERF_PG_mesh
from .properties_status import StatusSettings

# Blender 4.5+ warns about "//" paths unless a path property says it supports them.
RELATIVE_PATH = (
    {"PATH_SUPPORTS_BLEND_RELATIVE"}
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties
    else set()
)
# Depth and mask export write through the compositor's node group (Blender 5.0+; export/plan.py
# refuses them without it: this layer may not be imported from there).
PASS_EXPORT = "compositing_node_group" in bpy.types.Scene.bl_rna.properties
CAMERA_SOURCES = (
    ("RIG", "Rig", "Views on a sphere or hemisphere around the subject (temporary cameras)"),
    ("SELECTED", "Selected Cameras", "Every selected camera, each with its own lens and size"),
    ("ANIMATION", "Animation", "The active camera over a frame range"),
)
SUBJECTS = (
    (
        "AUTO",
        "Auto",
        "Every object that shows in the render, except a ground or backdrop plane far larger "
        "than the rest (the export names what it kept and what it left out)",
    ),
    ("SELECTED", "Selected", "Only the selected objects that show in the render"),
    ("VISIBLE", "Everything", "Every object that shows in the render, ground planes included"),
)
RIG_CENTERS = (
    ("SUBJECT", "Subject", "The middle of the box around the subject"),
    ("OBJECT", "Object", "Where an object (an empty, say) stands now"),
    ("POINT", "Point", "A point you type in"),
)
LENS_SOURCES = (
    ("ACTIVE_CAMERA", "Active Camera", "Copy focal length and sensor from the active camera"),
    ("CUSTOM", "Custom", "Use the focal length and sensor width set here"),
)
SPLIT_MODES = (
    ("FRACTION", "Fraction", "Hold out a fraction of the views"),
    ("COUNT", "Count", "Hold out a number of views"),
)
PRESET_ITEMS = tuple((name.upper(), *PRESET_SUMMARIES[name]) for name in PRESETS)
# The engine's devices (named in capitals here), in words: label and tooltip
DEVICE_WORDS = {
    "auto": (
        "Auto",
        "The fastest this computer has: an NVIDIA GPU, else an Apple GPU, else the CPU",
    ),
    "cpu": ("CPU", "The processor: works on every computer, but slowest"),
    "cuda": ("CUDA", "An NVIDIA graphics card (needs PyTorch for CUDA, see the preferences)"),
    "mps": ("MPS", "The graphics chip of an Apple Silicon Mac (Metal)"),
}
DEVICE_ITEMS = tuple((name.upper(), *DEVICE_WORDS[name]) for name in DEVICES)


def _upper_hemisphere(self) -> bool:
    return self.rig_elevation_min >= 0.0


def _set_upper_hemisphere(self, value: bool) -> None:
    """Upper Hemisphere is Min Elevation at 0° or above: on raises it to 0°, off opens it to -90°
    (the fields show it; nothing is clamped out of sight)."""
    if value:
        self.rig_elevation_min = max(self.rig_elevation_min, 0.0)
        self.rig_elevation_max = max(self.rig_elevation_max, self.rig_elevation_min)
    elif self.rig_elevation_min >= 0.0:
        self.rig_elevation_min = -math.pi / 2


class NERF_PG_camera(bpy.types.PropertyGroup):
    """Per-camera export settings (Camera data > NeRF)."""

    use_resolution: BoolProperty(
        name="Own Resolution",
        description="Render this camera at its own resolution instead of the scene's",
        default=False,
    )
    resolution_x: IntProperty(
        name="Width",
        description="This camera's image width in pixels",
        min=1,
        max=65536,
        default=1080,
        subtype="PIXEL",
    )
    resolution_y: IntProperty(
        name="Height",
        description="This camera's image height in pixels",
        min=1,
        max=65536,
        default=1920,
        subtype="PIXEL",
    )


class NERF_PG_scene(CompositeSettings, StatusSettings, bpy.types.PropertyGroup):
    """Everything the NeRF panel sets (``scene.nerf``); scripts set these and call the operators."""

    # --- dataset export ---
    dataset_dir: StringProperty(
        name="Dataset Folder",
        description="Where Export writes the training pictures and cameras, and Train reads them",
        default="//nerf_dataset/",
        subtype="DIR_PATH",
        options=RELATIVE_PATH,
    )
    camera_source: EnumProperty(
        name="Cameras",
        description="Which cameras take the training pictures",
        items=CAMERA_SOURCES,
        default="RIG",
    )
    subject: EnumProperty(
        name="Subject",
        items=SUBJECTS,
        default="AUTO",
        description="What the rig looks at and what the NeRF's scene box must hold. Only "
        "objects that show in the render count (hiding in the viewport does not matter)",
    )
    rig_center_mode: EnumProperty(
        name="Rig Centre",
        items=RIG_CENTERS,
        default="SUBJECT",
        description="The point the rig's cameras circle and look at (inside out: where they stand)",
    )
    rig_center_object: PointerProperty(
        name="Centre Object",
        type=bpy.types.Object,
        description="The object whose position is the rig's centre",
    )
    rig_center_point: FloatVectorProperty(
        name="Centre Point",
        size=3,
        subtype="TRANSLATION",
        unit="LENGTH",
        description="The rig's centre, in world coordinates",
    )
    rig_inside_out: BoolProperty(
        name="Inside Out",
        description="Stand the cameras close around the rig centre, looking out in every "
        "direction: for an interior such as a room, seen from within. The floor and walls stay "
        "in the subject; Upper Hemisphere does not apply",
        default=False,
    )
    rig_views: IntProperty(
        name="Views",
        description="How many pictures the rig takes (training and held-out views together)",
        min=0,
        soft_min=1,
        max=10000,
        default=100,
    )
    rig_radius: FloatProperty(
        name="Radius",
        description="How far the cameras stand from the rig centre; 0: far enough to fit the "
        "subject in the frame (inside out: a quarter of the way to the nearest side of the "
        "subject's box)",
        min=0.0,
        default=0.0,
        unit="LENGTH",
    )
    rig_hemisphere: BoolProperty(
        name="Upper Hemisphere",
        description="Only views from above the subject's centre (Min Elevation 0° or more); off "
        "lets Min Elevation go down to -90° (views from below too)",
        get=_upper_hemisphere,
        set=_set_upper_hemisphere,
    )
    rig_elevation_min: FloatProperty(
        name="Min Elevation",
        description="The lowest view, as an angle above the subject's centre (-90°: straight "
        "below; below 0° turns Upper Hemisphere off)",
        min=-math.pi / 2,
        max=math.pi / 2,
        default=0.0,
        subtype="ANGLE",
    )
    rig_elevation_max: FloatProperty(
        name="Max Elevation",
        description="The highest view, as an angle above the subject's centre (90°: straight "
        "above)",
        min=-math.pi / 2,
        max=math.pi / 2,
        default=math.pi / 2,
        subtype="ANGLE",
    )
    rig_seed: IntProperty(
        name="Seed",
        min=0,
        default=0,
        description="Turns the whole rig around the subject: another seed, other viewpoints "
        "(same number, same spread)",
    )
    rig_lens_source: EnumProperty(
        name="Lens",
        description="Where the rig's cameras get their focal length and sensor",
        items=LENS_SOURCES,
        default="ACTIVE_CAMERA",
    )
    rig_lens: FloatProperty(
        name="Focal Length",
        description="The rig cameras' focal length",
        min=1.0,
        default=50.0,
        unit="CAMERA",
    )
    rig_sensor_width: FloatProperty(
        name="Sensor Width",
        description="The rig cameras' sensor size (as Sensor Fit Auto: the larger side)",
        min=1.0,
        default=36.0,
        unit="CAMERA",
    )
    anim_use_scene_range: BoolProperty(
        name="Scene Frame Range", description="Use the scene's start, end and step", default=True
    )
    anim_frame_start: IntProperty(name="Start", description="First frame to export", default=1)
    anim_frame_end: IntProperty(name="End", description="Last frame to export", default=250)
    anim_frame_step: IntProperty(
        name="Step", description="Export every this many frames", min=1, default=1
    )
    split_mode: EnumProperty(
        name="Hold Out",
        description="Views kept out of training to measure how well the NeRF does on views it "
        "has not seen",
        items=SPLIT_MODES,
        default="FRACTION",
    )
    split_val: FloatProperty(
        name="Validation",
        description="Share of the views held out from training to watch its progress (Preview)",
        min=0.0,
        max=1.0,
        default=0.1,
        subtype="FACTOR",
    )
    split_test: FloatProperty(
        name="Test",
        description="Share of the views held out from training for its final score",
        min=0.0,
        max=1.0,
        default=0.1,
        subtype="FACTOR",
    )
    split_val_count: IntProperty(
        name="Validation",
        description="Views held out from training to watch its progress (Preview)",
        min=0,
        default=10,
    )
    split_test_count: IntProperty(
        name="Test",
        description="Views held out from training for its final score",
        min=0,
        default=10,
    )
    use_resolution_override: BoolProperty(
        name="Override Resolution",
        description="Render at this size instead of the scene's",
        default=False,
    )
    resolution_x: IntProperty(
        name="Width",
        description="Picture width in pixels",
        min=1,
        max=65536,
        default=800,
        subtype="PIXEL",
    )
    resolution_y: IntProperty(
        name="Height",
        description="Picture height in pixels",
        min=1,
        max=65536,
        default=800,
        subtype="PIXEL",
    )
    film_transparent: BoolProperty(
        name="Transparent Background",
        description="Pictures with a see-through background behind the subject (recommended)",
        default=True,
    )
    include_ours: BoolProperty(
        name="Include NeRF Results",
        description="Also use what this add-on put in the scene (imported NeRF images and "
        "planes, meshes made from a NeRF) as part of the subject, in Export's images and in "
        "Compare's reference renders. Off: they are left out, so the NeRF never learns from, "
        "or is scored against, its own pictures",
        default=False,
    )
    export_depth: BoolProperty(
        name="Depth",
        description="Also write each pixel's distance from the camera (EXR, in scene units). "
        "Training learns from it and skips the empty space it shows from the first step: on "
        "the benchmark scenes +0.65 dB at 3 minutes on average (docs/benchmarks.md). Needs "
        "Blender 5.0+",
        default=PASS_EXPORT,  # on wherever it can be written
    )
    export_mask: BoolProperty(
        name="Subject Mask",
        description="Also write a black and white picture of where the subject is (PNG)",
        default=False,
    )
    export_colmap: BoolProperty(
        name="Also Write COLMAP",
        description="Also write the training cameras as a COLMAP model (sparse/0/, text), which "
        "COLMAP, nerfstudio and Gaussian-splatting tools read; with Points for Splatting it "
        "holds the same points",
        default=False,
    )
    export_points: BoolProperty(
        name="Points for Splatting",
        description="Also write points3d.ply: up to 100,000 coloured points on the surfaces the "
        "training views see, from their depth (needs Depth), where Gaussian-splatting tools "
        "start from",
        default=False,
    )
    keep_blur: BoolProperty(
        name="Keep Blur",
        description="Render the dataset and Compare's pictures with the scene's motion blur and "
        "the cameras' depth of field. Off: both are switched off while rendering (and back on "
        "after), because a NeRF learns from sharp pictures taken in an instant",
        default=False,
    )
    cycles_without_gpu: BoolProperty(
        name="Cycles Without a GPU",
        description="Where EEVEE cannot render because Blender has no GPU (a render server, "
        "Blender in the background), render the dataset and Compare's pictures with Cycles "
        "instead; the scene keeps EEVEE",
        default=False,
    )
    overwrite: BoolProperty(
        name="Re-render Existing",
        description="Render every view again; otherwise views already rendered with the same "
        "camera are kept (resume)",
        default=False,
    )
    # --- training, rendering, comparing (used by later operators) ---
    run_dir: StringProperty(
        name="Run Folder",
        description="Where training saves the NeRF, its progress and its previews; Render and "
        "Compare read the NeRF from here",
        default="//nerf_run/",
        subtype="DIR_PATH",
        options=RELATIVE_PATH,
    )
    preset: EnumProperty(
        name="Preset",
        description="How big a NeRF to train: quicker, or sharper",
        items=PRESET_ITEMS,
        default="PREVIEW",
    )
    train_steps: IntProperty(
        name="Steps",
        min=0,
        default=0,
        description="How long to train, in learning steps. 0: the preset's, or with a Time "
        "Budget as many as fit in it",
    )
    train_seconds: FloatProperty(
        name="Time Budget",
        description="Train for this long, then save and stop (0: no budget). The learning slows "
        "down over the budget; with Steps set, whichever ends first stops training",
        min=0.0,
        default=0.0,
        unit="TIME_ABSOLUTE",
    )
    device: EnumProperty(
        name="Device",
        description="Which chip trains and renders the NeRF",
        items=DEVICE_ITEMS,
        default="AUTO",
    )
    devices: PointerProperty(type=NERF_PG_devices, name="Devices", description=DEVICES_TIP)
    train_extra_args: StringProperty(
        name="Extra Arguments",
        description="For experts: more options for the training program, as on its command "
        "line, e.g. --set batch_rays=1024 --set lr=1e-3",
        default="",
    )
    render_dir: StringProperty(
        name="Render Folder",
        description="Where Render Views writes the NeRF's pictures, and Import View reads them",
        default="//nerf_render/",
        subtype="DIR_PATH",
        options=RELATIVE_PATH,
    )
    render_source: EnumProperty(
        name="Cameras",
        description="The cameras Render Views and Compare render",
        items=(
            ("ACTIVE", "Active Camera", "The scene's active camera"),
            ("SELECTED", "Selected Cameras", "Every selected camera, each with its own lens"),
            ("ANIMATION", "Animation", "The active camera over a frame range"),
        ),
        default="ACTIVE",
    )
    render_use_scene_range: BoolProperty(
        name="Scene Frame Range", description="Use the scene's start, end and step", default=True
    )
    render_frame_start: IntProperty(name="Start", description="First frame to render", default=1)
    render_frame_end: IntProperty(name="End", description="Last frame to render", default=250)
    render_frame_step: IntProperty(
        name="Step", description="Render every this many frames", min=1, default=1
    )
    render_depth: BoolProperty(
        name="Depth",
        description="Also write a depth picture per view (16-bit greyscale PNG: black at the "
        "camera, white at that view's farthest point, whose distance render.json lists)",
        default=False,
    )
    import_target: EnumProperty(
        name="Import As",
        description="How Import View brings the NeRF's picture into the scene",
        items=(
            ("PLANE", "Image Plane", "A plane filling the camera's view at Plane Distance"),
            ("CAMERA_BACKGROUND", "Camera Background", "The camera's viewport background image"),
            ("COMPOSITOR", "Compositor", "Behind the scene's own render, in the compositor"),
        ),
        default="PLANE",
    )
    import_distance: FloatProperty(
        name="Plane Distance",
        description="How far in front of the camera the image plane stands; 0: just behind the "
        "trained subject (so the scene's objects stay in front), inside Clip End",
        min=0.0,
        default=0.0,
        unit="LENGTH",
    )
    import_opacity: FloatProperty(
        name="Opacity",
        description="How strongly the background image shows in the viewport",
        min=0.0,
        max=1.0,
        default=1.0,
        subtype="FACTOR",
    )
    import_depth: EnumProperty(
        name="Show",
        description="Whether the background image shows behind or in front of the scene's "
        "objects in the viewport",
        items=(
            ("BACK", "Back", "Behind the scene's objects"),
            ("FRONT", "Front", "In front of the scene's objects"),
        ),
        default="BACK",
    )
    mesh: PointerProperty(type=NERF_PG_mesh, name="Mesh", description="Extract Mesh's settings")


CLASSES = (NERF_PG_mesh, NERF_PG_devices, NERF_PG_camera, NERF_PG_scene)


@bpy.app.handlers.persistent
def reset_job_state(*_args) -> None:
    """After a file loads no job of ours runs, whatever the file saved mid-export says."""
    for scene in bpy.data.scenes:
        nerf = getattr(scene, "nerf", None)
        if nerf is not None and nerf.job_running:
            nerf.job_running = False


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.nerf = PointerProperty(type=NERF_PG_scene)
    bpy.types.Camera.nerf = PointerProperty(type=NERF_PG_camera)
    bpy.app.handlers.load_post.append(reset_job_state)


def unregister() -> None:
    if reset_job_state in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(reset_job_state)
    del bpy.types.Camera.nerf
    del bpy.types.Scene.nerf
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
