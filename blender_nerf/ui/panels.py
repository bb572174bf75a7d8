"""The 3D Viewport sidebar tab "NeRF" and the camera's NeRF settings.

Draw code lives in module functions taking ``(layout, context)`` so that tests run it against a
recording layout that checks every property name.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..jobs import watcher
from ..nerf_engine.data.run_folder import RunFolder
from ..train.job import duration
from ..train.start import running_job

CATEGORY = "NeRF"
PREVIEW_SCALE = 6.0  # preview icons, in UI units (the two fit side by side in the sidebar)


class NERF_PT_main(bpy.types.Panel):
    bl_label = "NeRF"
    bl_idname = "NERF_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context: bpy.types.Context) -> None:
        draw_main(self.layout, context)


class NERF_PT_dataset(bpy.types.Panel):
    bl_label = "Dataset"
    bl_idname = "NERF_PT_dataset"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_parent_id = "NERF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        draw_dataset(self.layout, context)


class NERF_PT_training(bpy.types.Panel):
    bl_label = "Training"
    bl_idname = "NERF_PT_training"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_parent_id = "NERF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        draw_training(self.layout, context)


class NERF_PT_camera(bpy.types.Panel):
    bl_label = "NeRF"
    bl_idname = "NERF_PT_camera"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "data"
    bl_options = frozenset({"DEFAULT_CLOSED"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return getattr(context, "camera", None) is not None

    def draw(self, context: bpy.types.Context) -> None:
        draw_camera(self.layout, context.camera)


def draw_main(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    nerf = context.scene.nerf
    if nerf.job_running:
        layout.progress(factor=nerf.job_progress, text=nerf.job_status or "Working")
        if watcher.scene_job(context.scene) is None:  # an export: its modal operator
            layout.label(text="Esc cancels", icon="CANCEL")
        elif running_job(context.scene) is None:  # Render Views, Compare
            layout.operator("nerf.cancel_job", text="Cancel", icon="CANCEL")
    elif nerf.job_status:
        layout.label(text=nerf.job_status, icon="INFO")
    else:
        layout.label(text="Export a dataset, then train a NeRF on it.")


def draw_dataset(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    scene = context.scene
    nerf = scene.nerf
    layout.use_property_split = True
    layout.use_property_decorate = False
    col = layout.column()
    col.prop(nerf, "dataset_dir")
    col.prop(nerf, "camera_source")
    col.prop(nerf, "subject")
    box = layout.box()
    if nerf.camera_source == "RIG":
        _draw_rig(box, nerf)
    elif nerf.camera_source == "SELECTED":
        _draw_selected(box, context)
    else:
        _draw_animation(box, nerf)
    _draw_splits(layout.box(), nerf)
    _draw_output(layout.box(), scene)
    row = layout.row()
    row.scale_y = 1.5
    row.enabled = not nerf.job_running
    row.operator("nerf.export_dataset", icon="RENDER_ANIMATION")


def _draw_rig(layout, nerf) -> None:
    col = layout.column()
    col.prop(nerf, "rig_views")
    col.prop(nerf, "rig_inside_out")
    col.prop(nerf, "rig_center_mode")
    if nerf.rig_center_mode == "OBJECT":
        col.prop(nerf, "rig_center_object")
    elif nerf.rig_center_mode == "POINT":
        col.prop(nerf, "rig_center_point")
    col.prop(nerf, "rig_radius")
    row = col.row()
    row.active = not nerf.rig_inside_out
    row.prop(nerf, "rig_hemisphere")
    sub = col.column(align=True)
    sub.prop(nerf, "rig_elevation_min", text="Elevation Min")
    sub.prop(nerf, "rig_elevation_max", text="Max")
    col.prop(nerf, "rig_seed")
    col.prop(nerf, "rig_lens_source")
    if nerf.rig_lens_source == "CUSTOM":
        col.prop(nerf, "rig_lens")
        col.prop(nerf, "rig_sensor_width")


def _draw_selected(layout, context) -> None:
    cameras = [ob for ob in context.selected_objects if ob.type == "CAMERA"]
    if cameras:
        layout.label(text=f"{len(cameras)} selected camera(s)", icon="CAMERA_DATA")
    else:
        layout.label(text="Select the cameras to export", icon="ERROR")
    active = context.active_object
    if active is not None and active.type == "CAMERA":
        draw_camera(layout, active.data)


def _draw_animation(layout, nerf) -> None:
    col = layout.column()
    col.label(text="The active camera over a frame range", icon="CAMERA_DATA")
    col.prop(nerf, "anim_use_scene_range")
    sub = col.column(align=True)
    sub.enabled = not nerf.anim_use_scene_range
    sub.prop(nerf, "anim_frame_start")
    sub.prop(nerf, "anim_frame_end")
    sub.prop(nerf, "anim_frame_step")


def _draw_splits(layout, nerf) -> None:
    col = layout.column()
    col.prop(nerf, "split_mode")
    if nerf.split_mode == "FRACTION":
        col.prop(nerf, "split_val")
        col.prop(nerf, "split_test")
    else:
        col.prop(nerf, "split_val_count")
        col.prop(nerf, "split_test_count")


def _draw_output(layout, scene) -> None:
    nerf = scene.nerf
    col = layout.column()
    col.prop(nerf, "use_resolution_override")
    sub = col.column(align=True)
    sub.enabled = nerf.use_resolution_override
    sub.prop(nerf, "resolution_x")
    sub.prop(nerf, "resolution_y")
    col.prop(scene.render, "resolution_percentage")
    col.prop(nerf, "film_transparent")
    col.prop(nerf, "include_ours")
    col.prop(nerf, "export_depth")
    col.prop(nerf, "export_mask")
    col.prop(nerf, "export_colmap")
    row = col.row()
    row.active = nerf.export_depth  # the points come from the depth
    row.prop(nerf, "export_points")
    col.prop(nerf, "keep_blur")
    col.prop(nerf, "cycles_without_gpu")
    col.prop(nerf, "overwrite")
    note = layout.column(align=True)
    note.label(
        text=f"Renders with {scene.render.engine.replace('BLENDER_', '').title()} and the",
        icon="INFO",
    )
    note.label(text="Standard view transform: the default AgX")
    note.label(text="would distort the comparison.")


def draw_training(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    nerf = context.scene.nerf
    job = running_job(context.scene)
    layout.use_property_split = True
    layout.use_property_decorate = False
    col = layout.column()
    col.enabled = job is None and not nerf.job_running
    col.prop(nerf, "dataset_dir")
    col.prop(nerf, "run_dir")
    col.prop(nerf, "preset")
    col.prop(nerf, "train_steps")
    col.prop(nerf, "train_seconds")
    col.prop(nerf, "device")
    col.prop(nerf.devices, "count")
    col.prop(nerf.devices, "launcher")
    col.prop(nerf, "train_extra_args")
    if job is not None:
        _draw_progress(layout, nerf, job)
    else:
        _draw_train_buttons(layout, nerf)
    _draw_previews(layout, nerf)


def _draw_train_buttons(layout, nerf) -> None:
    saved = _latest_checkpoint(nerf.run_dir)
    row = layout.row(align=True)
    row.scale_y = 1.5
    row.enabled = not nerf.job_running
    sub = row.row(align=True)
    sub.enabled = not saved
    sub.operator("nerf.train", text="Train NeRF", icon="PLAY").resume = False
    sub = row.row(align=True)
    sub.enabled = bool(saved)
    sub.operator("nerf.train", text="Resume", icon="FILE_REFRESH").resume = True
    if saved:
        layout.label(text=f"Run Folder holds {saved}: Resume, or pick a new folder", icon="INFO")
    if nerf.job_status and not nerf.job_running:
        layout.label(text=nerf.job_status, icon="INFO")


def _draw_progress(layout, nerf, job) -> None:
    total = nerf.train_total_steps
    text = f"Step {nerf.train_step} / {total}" if total else job.status()
    layout.progress(factor=nerf.job_progress, type="BAR", text=text)
    if nerf.train_step:
        grid = layout.grid_flow(row_major=True, columns=2, align=True)
        grid.label(text=f"Loss {nerf.train_loss:.5f}")
        grid.label(text=f"PSNR {nerf.train_psnr:.2f} dB")
        grid.label(text=f"{nerf.train_rays_per_s:,.0f} pixels/s")
        grid.label(text=f"ETA {duration(nerf.train_eta_s)}")
    row = layout.row()
    row.scale_y = 1.5
    row.enabled = not job.stop_requested
    row.operator("nerf.cancel_job", text="Cancel", icon="CANCEL")
    if job.stop_requested:
        layout.label(text=job.status(), icon="TIME")


def _draw_previews(layout, nerf) -> None:
    draw_images(layout, [(nerf.preview_image, "NeRF"), (nerf.target_image, "Blender")])


def draw_images(layout, images, scale: float = PREVIEW_SCALE) -> None:
    """Images side by side as preview icons, each under its title; nothing if none is set."""
    if not any(image for image, _ in images):
        return
    row = layout.row()
    for image, title in images:
        col = row.column(align=True)
        col.label(text=title)
        icon = image.preview.icon_id if image is not None and image.preview else 0
        if icon:
            col.template_icon(icon_value=icon, scale=scale)
        else:
            col.label(text=image.name if image is not None else "—", icon="IMAGE_DATA")


def _latest_checkpoint(run_dir: str) -> str:
    """The name of the Run Folder's latest checkpoint, or "" (cheap: one small folder listing)."""
    if not run_dir.strip() or (run_dir.startswith("//") and not bpy.data.filepath):
        return ""
    try:
        found = RunFolder(Path(bpy.path.abspath(run_dir))).latest_checkpoint()
    except OSError:  # an unreadable folder: Train says why when pressed
        return ""
    return found.name if found else ""


def draw_camera(layout: bpy.types.UILayout, camera_data: bpy.types.Camera) -> None:
    settings = camera_data.nerf
    col = layout.column()
    col.prop(settings, "use_resolution")
    sub = col.column(align=True)
    sub.enabled = settings.use_resolution
    sub.prop(settings, "resolution_x")
    sub.prop(settings, "resolution_y")


CLASSES = (NERF_PT_main, NERF_PT_dataset, NERF_PT_training, NERF_PT_camera)
