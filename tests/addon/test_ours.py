"""What the add-on puts in the scene is "ours" and never pollutes the artist's scene: an imported
NeRF image plane is left out of Export's subject, box and images and of Compare's ground truth
(unless Include NeRF Results is on), put back exactly afterwards, also after a failed render;
and each image plane shows in its own camera only, in final renders and in the viewport.

The "NeRF render" imported here is a flat-coloured PNG written where Render Views writes its
images (with its ``blender_views.json``): Import View reads the folder, never the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import export, read_all, render_png, time_limit, use_trained_run  # noqa: E402

from blender_nerf.compare.ground_truth import render_ground_truth  # noqa: E402
from blender_nerf.nerf_engine.data.images import write_png  # noqa: E402
from blender_nerf.scene import blender_render, ours, scene_io  # noqa: E402
from blender_nerf.views import plan  # noqa: E402
from blender_nerf.views.import_view import TAG  # noqa: E402

SIZE = 16
GREEN, RED, BLUE = (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(120):
        yield


def _tiny(scene) -> None:
    from addon_helpers import configure_fast_render

    configure_fast_render(scene, size=(SIZE, SIZE))
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"  # as Export and Compare render


def _import_plane(scene, camera, folder: Path, colour, distance: float) -> bpy.types.Object:
    """Import View of an opaque ``colour`` image for ``camera`` as a plane at ``distance``."""
    folder.mkdir(parents=True, exist_ok=True)
    image = np.ones((SIZE, SIZE, 4))
    image[..., :3] = colour
    write_png(folder / f"{camera.name}.png", image)
    view = {"name": camera.name, "image": f"{camera.name}.png", "camera": camera.name,
            "frame": None, "w": SIZE, "h": SIZE}  # fmt: skip
    (folder / plan.VIEWS_FILE).write_text(json.dumps({"views": [view]}), encoding="utf-8")
    nerf = scene.nerf
    nerf.render_dir, nerf.import_target, nerf.import_distance = str(folder), "PLANE", distance
    assert bpy.ops.nerf.import_view(camera=camera.name) == {"FINISHED"}
    return next(ob for ob in bpy.data.objects if ob.get(TAG) == camera.name)


def _share(image: np.ndarray, colour) -> float:
    """The fraction of pixels that show ``colour`` (opaque, within 0.1)."""
    close = np.abs(image[..., :3] - colour).max(axis=-1) < 0.1
    return float(np.mean(close & (image[..., 3] > 0.9)))


def _ground_truth(scene, folder: Path, **options) -> np.ndarray:
    scene.nerf.render_source = "ACTIVE"
    shots = plan.plan_view_shots(bpy.context)
    subject = scene_io.subject_objects(bpy.context, "AUTO")
    render_ground_truth(bpy.context, shots, folder, transparent=True, subject=subject, **options)
    return scene_io.read_image(folder / f"{shots[0].name}.png")


def test_compare_ground_truth_leaves_out_the_imported_plane(scene, tmp_path):
    _tiny(scene)
    camera = scene.camera
    plane = _import_plane(scene, camera, tmp_path / "render", GREEN, distance=20.0)
    assert ours.is_ours(plane) and ours.is_ours(plane.data) and ours.is_ours(plane.active_material)
    behind = render_png(scene, camera=camera, path=tmp_path / "with_plane.png")
    assert _share(behind, GREEN) > 0.5  # the plane fills the frame behind the cube

    gt = _ground_truth(scene, tmp_path / "gt")
    assert _share(gt, GREEN) == 0.0 and not plane.hide_render
    assert scene.nerf.include_ours is False  # off unless the artist asks
    plane.hide_render = True
    without = render_png(scene, camera=camera, path=tmp_path / "without_plane.png")
    assert np.abs(gt - without).max() <= 1 / 255 + 1e-6  # as if the plane were not there
    assert 0.05 < np.mean(gt[..., 3] > 0.5) < 0.9  # the cube, on a transparent background

    plane.hide_render = False
    kept = _ground_truth(scene, tmp_path / "gt_ours", include_ours=True)
    assert _share(kept, GREEN) > 0.5 and not plane.hide_render


def test_compare_after_import_view_scores_against_the_scene_not_the_plane(
    scene, trained_run, tmp_path
):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    nerf.import_target, nerf.import_distance = "PLANE", 3.0  # in front of the cube
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    plane = next(ob for ob in bpy.data.objects if ob.get(TAG) == scene.camera.name)
    assert bpy.ops.nerf.compare() == {"FINISHED"}, nerf.job_status
    gt = scene_io.read_image(trained_run.run / "compare" / "ground_truth" / "Camera.png")
    assert not plane.hide_render
    plane.hide_render = True
    scene.view_settings.view_transform = "Standard"  # as Compare renders
    scene.render.film_transparent = True
    without = render_png(scene, camera=scene.camera, path=tmp_path / "without_plane.png")
    assert np.abs(gt - without).max() <= 1 / 255 + 1e-6  # the scene, not the NeRF's picture


def test_export_after_import_view_leaves_out_the_plane_unless_asked(scene, tmp_path):
    _tiny(scene)
    camera = scene.camera
    plane = _import_plane(scene, camera, tmp_path / "render", GREEN, distance=20.0)
    cube = bpy.data.objects["Cube"]
    bpy.ops.object.select_all(action="DESELECT")
    camera.select_set(True)
    plane.select_set(True)  # selected or not, the NeRF's own picture is never the subject
    settings = {"camera_source": "SELECTED", "split_val": 0.0, "split_test": 0.0}

    assert export(scene, tmp_path / "data", **settings) == {"FINISHED"}
    split = read_all(tmp_path / "data")["train"]
    corners = np.array([cube.matrix_world @ c.co for c in cube.data.vertices])
    assert np.allclose(split.aabb, [corners.min(0), corners.max(0)], atol=0.01)
    image = scene_io.read_image(tmp_path / "data" / "train" / "r_0.png")
    assert _share(image, GREEN) == 0.0 and np.mean(image[..., 3] > 0.5) > 0.05
    assert f"left out what the NeRF add-on made ('{plane.name}'" in scene.nerf.job_status
    assert not plane.hide_render and plane.select_get()

    scene.nerf.include_ours = True
    plane.select_set(False)  # Subject Auto: all visible geometry, the plane included
    assert export(scene, tmp_path / "with_ours", **settings) == {"FINISHED"}
    grown = read_all(tmp_path / "with_ours")["train"].aabb
    assert np.all(grown[1] - grown[0] > split.aabb[1] - split.aabb[0] + 1.0)
    image = scene_io.read_image(tmp_path / "with_ours" / "train" / "r_0.png")
    assert _share(image, GREEN) > 0.5


def test_a_scene_of_nothing_but_ours_says_how_to_export_it(scene, tmp_path):
    _tiny(scene)
    plane = _import_plane(scene, scene.camera, tmp_path / "render", GREEN, distance=20.0)
    bpy.data.objects.remove(bpy.data.objects["Cube"])
    with pytest.raises(RuntimeError, match=f"'{plane.name}'.* turn on Include NeRF Results"):
        export(scene, tmp_path / "data", rig_views=3)


def test_a_failed_export_shows_the_plane_again(scene, tmp_path, monkeypatch):
    _tiny(scene)
    plane = _import_plane(scene, scene.camera, tmp_path / "render", GREEN, distance=20.0)

    def fail(scene):
        assert plane.hide_render  # hidden while Blender renders
        raise RuntimeError("Error: Render error (Out of memory) cannot render, aborting")

    monkeypatch.setattr(blender_render, "render_still", fail)
    with pytest.raises(RuntimeError, match="Out of memory"):
        export(scene, tmp_path / "data", rig_views=3)
    assert plane.hide_render is False and plane.name in bpy.data.objects


def test_import_cameras_and_shown_images_are_ours(scene, tmp_path):
    _tiny(scene)
    assert export(scene, tmp_path / "data", rig_views=3) == {"FINISHED"}
    path = tmp_path / "data" / "transforms_train.json"
    assert bpy.ops.nerf.import_cameras(filepath=str(path)) == {"FINISHED"}
    made = [c for c in bpy.data.collections if c.name.startswith("NeRF Cameras")]
    assert len(made) == 1 and ours.is_ours(made[0]) and len(made[0].objects) > 0
    assert all(ours.is_ours(ob) and ours.is_ours(ob.data) for ob in made[0].objects)
    assert not ours.is_ours(bpy.data.objects["Camera"]) and not ours.is_ours(scene)


def test_an_image_plane_shows_in_its_own_camera_only(scene, tmp_path):
    _tiny(scene)
    first = scene.camera
    first.scale = (2.0, 2.0, 2.0)  # a scaled camera sees the same; its plane must still show
    second = bpy.data.objects.new("Second", bpy.data.cameras.new("Second"))
    scene.collection.objects.link(second)
    bpy.context.view_layer.update()
    pose = scene_io.camera_to_world(first)
    pose[:3, 3] += 0.3 * pose[:3, 0]  # a little to the side, looking the same way
    scene_io.set_camera_pose(second, pose)
    far = _import_plane(scene, first, tmp_path / "render_a", RED, distance=8.0)
    near = _import_plane(scene, second, tmp_path / "render_b", BLUE, distance=5.0)
    bpy.data.objects["Cube"].hide_render = True

    seen = render_png(scene, camera=first, path=tmp_path / "first.png")
    assert _share(seen, RED) > 0.9 and _share(seen, BLUE) == 0.0  # the nearer plane: hidden
    seen = render_png(scene, camera=second, path=tmp_path / "second.png")
    assert _share(seen, BLUE) > 0.9 and _share(seen, RED) == 0.0

    for camera, shown, hidden in ((first, far, near), (second, near, far), (first, far, near)):
        scene.camera = camera  # what the viewport shows looking through a camera
        depsgraph = bpy.context.evaluated_depsgraph_get()
        depsgraph.update()
        assert len(shown.evaluated_get(depsgraph).data.polygons) == 1
        assert len(hidden.evaluated_get(depsgraph).data.polygons) == 0
