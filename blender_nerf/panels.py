"""The 3D Viewport sidebar tab "NeRF" and the camera's NeRF settings.

Draw code lives in module functions taking ``(layout, context)`` so that tests run it against a
recording layout that checks every property name.
"""

from __future__ import annotations

import bpy

CATEGORY = "NeRF"


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
        layout.label(text="Esc cancels", icon="CANCEL")
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
    col.prop(nerf, "rig_radius")
    col.prop(nerf, "rig_hemisphere")
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
    col.prop(nerf, "export_depth")
    col.prop(nerf, "export_mask")
    col.prop(nerf, "overwrite")
    note = layout.column(align=True)
    note.label(
        text=f"Renders with {scene.render.engine.replace('BLENDER_', '').title()} and the",
        icon="INFO",
    )
    note.label(text="Standard view transform: the default AgX")
    note.label(text="would distort the comparison.")


def draw_camera(layout: bpy.types.UILayout, camera_data: bpy.types.Camera) -> None:
    settings = camera_data.nerf
    col = layout.column()
    col.prop(settings, "use_resolution")
    sub = col.column(align=True)
    sub.enabled = settings.use_resolution
    sub.prop(settings, "resolution_x")
    sub.prop(settings, "resolution_y")


CLASSES = (NERF_PT_main, NERF_PT_dataset, NERF_PT_camera)
