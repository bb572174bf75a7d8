"""The add-on registers and unregisters cleanly, twice, and its panels draw."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import RecordingLayout  # noqa: E402

import blender_nerf  # noqa: E402
from blender_nerf import operators, preferences, properties  # noqa: E402
from blender_nerf.jobs import watcher  # noqa: E402
from blender_nerf.ui import panels, panels_views  # noqa: E402

ALL_CLASSES = (
    *properties.CLASSES,
    *preferences.CLASSES,
    *operators.CLASSES,
    *panels.CLASSES,
    *panels_views.CLASSES,
)


def _registered() -> dict[str, bool]:
    state = {
        "Scene.nerf": hasattr(bpy.types.Scene, "nerf"),
        "Camera.nerf": hasattr(bpy.types.Camera, "nerf"),
        "operator": "export_dataset" in dir(bpy.ops.nerf),
        "load_post": properties.reset_job_state in bpy.app.handlers.load_post,
        "load_pre": watcher.stop_on_load in bpy.app.handlers.load_pre,
        "undo_post": watcher.running_after_undo in bpy.app.handlers.undo_post,
        "redo_post": watcher.running_after_undo in bpy.app.handlers.redo_post,
        "train operator": "train" in dir(bpy.ops.nerf),
        "view operators": {"render_views", "import_view", "compare", "import_cameras"}
        <= set(dir(bpy.ops.nerf)),
    }
    for cls in ALL_CLASSES:
        state[cls.__name__] = cls.is_registered
    for cls in (*operators.CLASSES, *panels.CLASSES, *panels_views.CLASSES):  # by name
        state[f"bpy.types.{cls.__name__}"] = hasattr(bpy.types, cls.__name__)
    return state


def test_register_unregister_twice(factory_scene):
    assert not any(_registered().values())
    for _ in range(2):
        blender_nerf.register()
        assert all(_registered().values()), _registered()
        assert bpy.context.scene.nerf.camera_source == "RIG"
        assert bpy.ops.nerf.export_dataset.poll()
        blender_nerf.unregister()
        assert not any(_registered().values()), _registered()


def test_a_file_saved_mid_export_does_not_block_the_operator(scene, tmp_path):
    scene.nerf.job_running = True
    assert not bpy.ops.nerf.export_dataset.poll()
    path = tmp_path / "saved while exporting.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert bpy.context.scene.nerf.job_running is False
    assert bpy.ops.nerf.export_dataset.poll()


def test_enable_and_disable_through_blender(factory_scene):
    """Blender's own add-on machinery enables it (preferences included) and disables it."""
    import addon_utils

    module = addon_utils.enable("blender_nerf", default_set=True, handle_error=_raise)
    try:
        assert module is blender_nerf
        assert all(_registered().values()), _registered()
        prefs = bpy.context.preferences.addons["blender_nerf"].preferences
        assert prefs.python_path == ""
        layout = RecordingLayout()
        preferences.draw_preferences(layout, prefs)
        assert ("prop", "NERF_AP_preferences", "python_path") in layout.calls
    finally:
        addon_utils.disable("blender_nerf", default_set=True, handle_error=_raise)
    assert not any(_registered().values()), _registered()


def _raise(exc):
    raise exc


def test_contract_properties_exist(scene):
    """DESIGN.md's minimum property set of Scene.nerf, with its enum values."""
    props = scene.nerf.bl_rna.properties
    for name in (
        "dataset_dir", "camera_source", "rig_views", "rig_radius", "rig_hemisphere",
        "split_val", "split_test", "run_dir", "preset", "train_steps", "train_seconds",
        "device", "render_dir", "render_source", "import_target", "job_progress", "job_status",
    ):  # fmt: skip
        assert name in props, name
    enums = {
        "camera_source": {"RIG", "SELECTED", "ANIMATION"},
        "preset": {"PREVIEW", "BALANCED", "PAPER", "FAST"},  # DESIGN's three + tri-planes
        "device": {"AUTO", "CPU", "CUDA", "MPS"},
        "render_source": {"ACTIVE", "SELECTED", "ANIMATION"},
        "import_target": {"PLANE", "CAMERA_BACKGROUND", "COMPOSITOR"},
    }
    for name, values in enums.items():
        assert {item.identifier for item in props[name].enum_items} == values


def test_manifest_is_an_extension_manifest():
    manifest = tomllib.loads(
        (Path(blender_nerf.__file__).parents[1] / "addon_manifest.toml").read_text()
    )
    assert manifest["id"] == "blender_nerf"
    assert manifest["type"] == "add-on"
    assert tuple(int(x) for x in manifest["blender_version_min"].split(".")) >= (4, 2, 0)


def _drawn_props(calls):
    return {c[2] for c in calls if c[0] == "prop"}


def test_panels_draw_every_branch(scene):
    bpy.data.objects["Camera"].select_set(True)
    bpy.context.view_layer.objects.active = bpy.data.objects["Camera"]
    seen = set()
    for source in ("RIG", "SELECTED", "ANIMATION"):
        for lens in ("ACTIVE_CAMERA", "CUSTOM"):
            for mode in ("FRACTION", "COUNT"):
                nerf = scene.nerf
                nerf.camera_source, nerf.rig_lens_source, nerf.split_mode = source, lens, mode
                for running in (False, True):
                    nerf.job_running = running
                    for draw in (panels.draw_main, panels.draw_dataset):
                        layout = RecordingLayout()
                        draw(layout, bpy.context)
                        seen |= _drawn_props(layout.calls)
    nerf.job_running = False
    nerf.camera_source = "RIG"
    for centre in ("SUBJECT", "OBJECT", "POINT"):
        nerf.rig_center_mode = centre
        layout = RecordingLayout()
        panels.draw_dataset(layout, bpy.context)
        seen |= _drawn_props(layout.calls)
    assert {
        "rig_inside_out",
        "rig_center_object",
        "rig_center_point",
        "rig_views",
        "rig_lens",
        "anim_frame_step",
        "split_test_count",
        "use_resolution",
    } <= seen
    layout = RecordingLayout()
    panels.draw_camera(layout, bpy.data.cameras["Camera"])
    assert ("operator", "nerf.export_dataset") in _all_calls(scene)


def _all_calls(scene):
    layout = RecordingLayout()
    panels.draw_dataset(layout, bpy.context)
    return layout.calls


def test_panel_classes_draw_through_their_draw_methods(scene):
    """Each registered panel's own draw() (not only the helpers) runs with a real context."""
    for cls in (panels.NERF_PT_main, panels.NERF_PT_dataset):
        layout = RecordingLayout()
        cls.draw(SimpleNamespace(layout=layout), bpy.context)
        assert layout.calls
    layout = RecordingLayout()
    ctx = SimpleNamespace(camera=bpy.data.cameras["Camera"])
    panels.NERF_PT_camera.draw(SimpleNamespace(layout=layout), ctx)
    assert _drawn_props(layout.calls) == {"use_resolution", "resolution_x", "resolution_y"}
    assert panels.NERF_PT_dataset.bl_parent_id == panels.NERF_PT_main.bl_idname
    assert panels.NERF_PT_main.bl_category == "NeRF"


def test_recording_layout_catches_a_typo(scene):
    with pytest.raises(AssertionError, match="rig_veiws"):
        RecordingLayout().prop(scene.nerf, "rig_veiws")
