"""Render Views, Import View and Compare refuse bad input — no trained run, a run trained at
another size, a camera that is not perspective, nothing rendered yet, a plane the camera would
clip — with one clear ERROR report, CANCELLED, no engine started and the scene as it was."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import engine_children, scene_fingerprint, use_trained_run  # noqa: E402

from blender_nerf.jobs import process  # noqa: E402

OPERATORS = ("render_views", "compare")


def _refused(scene, operator: str, match: str) -> None:
    before = scene_fingerprint(scene), _datablocks()
    with pytest.raises(RuntimeError, match=match) as info:
        getattr(bpy.ops.nerf, operator)()
    assert str(info.value).startswith("Error: ")
    assert (scene_fingerprint(scene), _datablocks()) == before
    assert not scene.nerf.job_running and process.live_jobs() == [] and engine_children() == []


def _datablocks():
    kinds = ("images", "materials", "meshes", "node_groups", "collections")
    return {kind: sorted(getattr(bpy.data, kind).keys()) for kind in kinds}


@pytest.mark.parametrize("operator", OPERATORS)
def test_no_trained_run(scene, tmp_path, operator):
    scene.nerf.run_dir = str(tmp_path / "empty run")
    scene.nerf.render_dir = str(tmp_path / "render")
    _refused(scene, operator, "holds no trained NeRF .*train one first")


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("kind, word", [("ORTHO", "orthographic"), ("PANO", "panoramic")])
def test_a_camera_that_is_not_perspective(scene, trained_run, tmp_path, operator, kind, word):
    use_trained_run(scene, trained_run, tmp_path / "render")
    scene.camera.data.type = kind
    _refused(scene, operator, f"Camera 'Camera' is {word}; NeRF datasets need perspective")


def test_compare_refuses_a_run_trained_at_another_size(scene, trained_run, tmp_path):
    use_trained_run(scene, trained_run, tmp_path / "render")
    scene.render.resolution_x = 40
    _refused(scene, "compare", "was trained on 24×24 images but camera 'Camera' renders 40×24")


@pytest.mark.parametrize("operator", OPERATORS)
def test_no_active_camera_and_nothing_selected(scene, trained_run, tmp_path, operator):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    scene.camera = None
    _refused(scene, operator, "The scene has no active camera")
    nerf.render_source = "SELECTED"
    bpy.ops.object.select_all(action="DESELECT")
    _refused(scene, operator, "No camera is selected")


def test_import_view_refusals(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    for target in ("PLANE", "CAMERA_BACKGROUND", "COMPOSITOR"):
        nerf.import_target = target
        _refused(scene, "import_view", "holds no finished NeRF render .*press Render Views first")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}

    nerf.import_target, nerf.import_distance = "PLANE", 500.0
    _refused(
        scene,
        "import_view",
        r"Plane Distance 500 m is outside camera 'Camera''s clip range 0.1 m–100 m",
    )
    nerf.import_distance = 0.0
    nerf.import_target = "COMPOSITOR"
    scene.render.resolution_percentage = 50
    _refused(scene, "import_view", "is 24×24 but the scene renders 12×12: press Render Views")
    scene.render.resolution_percentage = 100
    scene.camera.data.type = "ORTHO"
    nerf.import_target = "PLANE"
    _refused(scene, "import_view", "Camera 'Camera' is orthographic")
    scene.camera.data.type = "PERSP"
    bpy.data.objects["Camera"].name = "Renamed"
    _refused(scene, "import_view", "Camera 'Camera' of the NeRF render is not in this file any")
    nerf.import_target = "COMPOSITOR"  # the active camera's render
    _refused(scene, "import_view", "has no NeRF render of camera 'Renamed'")
