"""The export's subject (what the rig looks at and the scene box holds), the rig centre and the
inside-out rig, in real Blender: the subject is what renders, chosen visibly and rightly."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import configure_fast_render, export, read_all  # noqa: E402

from blender_nerf.nerf_engine.data.dataset import load_rgba  # noqa: E402


def _plan(scene, tmp_path, **settings):
    from blender_nerf.export.plan import build_plan

    scene.nerf.dataset_dir = str(tmp_path)
    for key, value in settings.items():
        setattr(scene.nerf, key, value)
    return build_plan(bpy.context)


def _box(name, location, size, collection=None):
    """A box mesh object of ``size`` (x, y, z) centred at ``location``."""
    bpy.ops.mesh.primitive_cube_add(size=1, location=location)
    ob = bpy.context.active_object
    ob.name = name
    ob.scale = size
    if collection is not None:
        for owner in ob.users_collection:
            owner.objects.unlink(ob)
        collection.objects.link(ob)
    return ob


def _room():
    """A 20 × 12 × 3 room (floor, four walls, no ceiling) with a table: the default cube goes."""
    bpy.data.objects.remove(bpy.data.objects["Cube"])
    _box("Floor", (0, 0, -0.05), (20, 12, 0.1))
    _box("WallN", (0, 6, 1.5), (20, 0.2, 3))
    _box("WallS", (0, -6, 1.5), (20, 0.2, 3))
    _box("WallE", (10, 0, 1.5), (0.2, 12, 3))
    _box("WallW", (-10, 0, 1.5), (0.2, 12, 3))
    table = _box("Table", (2, 1, 0.4), (2, 1, 0.8))
    bpy.ops.object.select_all(action="DESELECT")
    return table


def test_auto_is_not_the_selection_a_statue_keeps_its_pedestal(scene, tmp_path):
    """Saved with the statue selected: Auto still exports statue and pedestal, and says so."""
    bpy.data.objects.remove(bpy.data.objects["Cube"])
    _box("Pedestal", (0, 0, 0.5), (1, 1, 1))
    statue = _box("Statue", (0, 0, 1.75), (0.5, 0.5, 1.5))
    bpy.ops.object.select_all(action="DESELECT")
    statue.select_set(True)
    plan = _plan(scene, tmp_path, rig_views=4)
    assert plan.subject == ["Pedestal", "Statue"]
    assert np.allclose(plan.aabb, [[-0.5, -0.5, 0], [0.5, 0.5, 2.5]], atol=1e-3)
    assert "Subject (Auto): 'Pedestal', 'Statue'" in plan.subject_text
    assert "set Subject to Selected to export only 'Statue'" in plan.subject_text
    selected = _plan(scene, tmp_path, subject="SELECTED")  # when the artist asks for it
    assert selected.subject == ["Statue"] and selected.aabb[0, 2] == pytest.approx(1, abs=1e-3)


def test_the_subject_is_what_renders_not_what_the_viewport_shows(scene, tmp_path):
    """Hidden with H or the monitor icon still renders: in the box. Off in the render, an
    excluded, held-out, indirect-only or render-disabled collection, not seen by the camera,
    a holdout or a shadow catcher: out of it."""
    _box("HiddenH", (0, 3, 0), (1, 1, 1)).hide_set(True)
    _box("NoViewport", (0, -3, 0), (1, 1, 1)).hide_viewport = True
    _box("NoRender", (9, 0, 0), (1, 1, 1)).hide_render = True
    _box("NoCameraRays", (-9, 0, 0), (1, 1, 1)).visible_camera = False
    _box("Holdout", (0, 0, 9), (1, 1, 1)).is_holdout = True
    _box("Catcher", (0, 0, -9), (1, 1, 1)).is_shadow_catcher = True
    layer = bpy.context.view_layer.layer_collection
    for name, how in [
        ("Excluded", "exclude"), ("HeldOut", "holdout"), ("Indirect", "indirect_only"),
        ("RenderOff", "hide_render"),
    ]:  # fmt: skip
        collection = bpy.data.collections.new(name)
        scene.collection.children.link(collection)
        _box(f"In{name}", (20, 20, 20), (1, 1, 1), collection)
        if how == "hide_render":
            collection.hide_render = True
        else:
            setattr(layer.children[name], how, True)
    for mode in ("AUTO", "VISIBLE"):
        plan = _plan(scene, tmp_path, subject=mode, rig_views=4)
        assert plan.subject == ["Cube", "HiddenH", "NoViewport"], mode
        assert np.allclose(plan.aabb, [[-1, -3.5, -1], [1, 3.5, 1]], atol=1e-3)


def test_auto_leaves_out_a_ground_plane_and_the_rig_circles_the_far_product(scene, tmp_path):
    """A product at (500, −300, 40) and a studio floor left at the origin: the rig goes around the
    product, and the report names the floor it left out."""
    product = bpy.data.objects["Cube"]
    product.location = (500, -300, 40)
    bpy.ops.mesh.primitive_plane_add(size=50)
    bpy.context.active_object.name = "Floor"
    bpy.ops.object.select_all(action="DESELECT")
    plan = _plan(scene, tmp_path, rig_views=6)
    assert plan.subject == ["Cube"]
    assert np.allclose(plan.aabb, [[499, -301, 39], [501, -299, 41]], atol=1e-3)
    distance = [np.linalg.norm(v.camera_to_world[:3, 3] - (500, -300, 40)) for v in plan.views]
    assert max(distance) < 10, "the rig stands around the product, not around the origin"
    assert "left out as ground or backdrop: 'Floor'" in plan.subject_text
    everything = _plan(scene, tmp_path, subject="VISIBLE")
    assert everything.subject == ["Cube", "Floor"]  # the artist can keep it


def test_a_room_keeps_its_floor_and_walls(scene, tmp_path):
    _room()
    plan = _plan(scene, tmp_path, rig_views=4)
    assert len(plan.subject) == 6 and "left out" not in plan.subject_text
    assert np.allclose(plan.aabb, [[-10.1, -6.1, -0.1], [10.1, 6.1, 3]], atol=1e-3)


def test_the_report_names_the_subject_and_its_box_in_the_scenes_units(scene, tmp_path):
    """A scene modelled in centimetres reads in cm, in the operator's report and the status."""
    units = scene.unit_settings
    units.system, units.scale_length, units.length_unit = "METRIC", 0.01, "CENTIMETERS"
    bpy.data.objects["Cube"].scale = (100, 100, 50)
    bpy.data.objects["Camera"].location *= 100
    bpy.data.cameras["Camera"].clip_end = 10000
    scene.render.resolution_x = scene.render.resolution_y = 16
    assert export(scene, tmp_path, rig_views=1, split_val=0, split_test=0) == {"FINISHED"}
    status = scene.nerf.job_status
    assert status.startswith("Exported 1 views")
    assert "Subject (Auto): 'Cube'; scene box x -100 cm to 100 cm, y -100 cm to 100 cm, " in status
    assert "z -50 cm to 50 cm" in status


def test_rig_centre_an_object_or_a_point(scene, tmp_path):
    target = bpy.data.objects.new("Target", None)
    scene.collection.objects.link(target)
    target.location = (3, 0, 1)
    with pytest.raises(ValueError, match="no Centre Object is chosen"):
        _plan(scene, tmp_path, rig_views=6, rig_center_mode="OBJECT")
    for settings, centre in [
        (dict(rig_center_object=target), (3, 0, 1)),
        (dict(rig_center_mode="POINT", rig_center_point=(-2, 1, 0.5)), (-2, 1, 0.5)),
        (dict(rig_center_mode="SUBJECT"), (0, 0, 0)),
    ]:
        plan = _plan(scene, tmp_path, **settings)
        for view in plan.views:
            eye = view.camera_to_world[:3, 3]
            forward = -view.camera_to_world[:3, 2]
            assert np.allclose(forward, (centre - eye) / np.linalg.norm(centre - eye)), settings
            assert eye[2] >= centre[2] - 1e-9  # upper hemisphere around the rig centre
        radius = np.linalg.norm(plan.views[0].camera_to_world[:3, 3] - centre)
        corners = np.array(list(np.ndindex(2, 2, 2))) * 2.0 - 1.0  # the cube
        reach = np.linalg.norm(corners - centre, axis=1).max()
        assert radius > reach, "the whole cube fits in the frame from the rig centre"


def test_inside_out_rig_looks_out_from_within_the_room(scene, tmp_path):
    _room()
    configure_fast_render(scene, size=(16, 16))
    plan = _plan(
        scene,
        tmp_path,
        rig_views=6,
        rig_inside_out=True,
        rig_elevation_min=-0.3,
        rig_elevation_max=0.3,
    )  # fmt: skip  (the room has no ceiling)
    centre = plan.aabb.mean(axis=0)
    lo, hi = plan.aabb
    for view in plan.views:
        eye = view.camera_to_world[:3, 3]
        assert np.all((eye > lo) & (eye < hi)), "every camera stands inside the room"
        outward = (eye - centre) / np.linalg.norm(eye - centre)
        assert np.allclose(-view.camera_to_world[:3, 2], outward)
    assert plan.near == 0.0 and plan.notes == []
    assert export(scene, tmp_path, split_val=0, split_test=0) == {"FINISHED"}
    for rgba in load_rgba(read_all(tmp_path)["train"]):
        # the room has no ceiling: the views tilted up see the sky above the walls
        assert (rgba[12:, :, 3] > 0.99).all(), "floor and walls fill the bottom of every view"
    with pytest.raises(ValueError, match=r"its centre .* is outside the subject's box"):
        _plan(scene, tmp_path, rig_center_mode="POINT", rig_center_point=(30, 0, 1))


def test_inside_out_keeps_the_ground_that_auto_leaves_out(scene, tmp_path):
    bpy.ops.mesh.primitive_plane_add(size=50)
    assert _plan(scene, tmp_path, rig_views=4).subject == ["Cube"]
    assert _plan(scene, tmp_path, rig_inside_out=True).subject == ["Cube", "Plane"]


def test_a_camera_inside_the_subjects_box_gets_no_false_clipping_warning(scene, tmp_path):
    _room()
    camera = bpy.data.objects["Camera"]
    camera.location, camera.rotation_euler = (0, 0, 1.6), (np.pi / 2, 0, 0)
    camera.select_set(True)
    plan = _plan(scene, tmp_path, camera_source="SELECTED")
    assert plan.near == 0.0 and plan.notes == []
    camera.data.clip_start = 2.0  # the table's nearest corner is 1.37 m away: cut off
    (note,) = _plan(scene, tmp_path).notes
    assert "Camera 'Camera' clips at 2 m" in note and "lower Clip Start" in note
