"""Bad input: a clear ERROR report, CANCELLED, the scene as it was, no dataset file replaced."""

from __future__ import annotations

import os

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import RenderLog, export, read_all, scene_fingerprint  # noqa: E402


def _refused(scene, out, match, **settings):
    """Run the export expecting an error report that matches ``match``; check nothing changed."""
    before = scene_fingerprint(scene)
    existing = {p: p.read_bytes() for p in out.glob("transforms_*.json")} if out.is_dir() else {}
    with RenderLog() as log, pytest.raises(RuntimeError, match=match) as info:
        export(scene, out, **settings)
    assert str(info.value).startswith("Error: ")
    assert scene_fingerprint(scene) == before
    assert not scene.nerf.job_running
    now = {p: p.read_bytes() for p in out.glob("transforms_*.json")} if out.is_dir() else {}
    assert now == existing, "a dataset file was written or replaced"
    return log


def _delete_camera():
    camera = bpy.data.objects["Camera"]
    bpy.data.objects.remove(camera)
    assert bpy.context.scene.camera is None


@pytest.mark.parametrize(
    "source, match",
    [
        ("SELECTED", "No camera is selected; select the cameras to export, or set Cameras to Rig"),
        ("ANIMATION", "no active camera to animate"),
        ("RIG", "copies the active camera's lens but the scene has no active camera"),
    ],
)
def test_no_camera_and_no_rig(scene, tmp_path, source, match):
    _delete_camera()
    _refused(scene, tmp_path, match, camera_source=source)


def test_the_rig_needs_no_camera_with_a_custom_lens(scene, tmp_path):
    _delete_camera()
    assert export(scene, tmp_path, rig_views=2, rig_lens_source="CUSTOM") == {"FINISHED"}
    assert not any(ob.type == "CAMERA" for ob in bpy.data.objects)


@pytest.mark.parametrize("kind, word", [("ORTHO", "orthographic"), ("PANO", "panoramic")])
@pytest.mark.parametrize("source", ["SELECTED", "ANIMATION", "RIG"])
def test_orthographic_and_panoramic_cameras_are_refused(scene, tmp_path, kind, word, source):
    camera = bpy.data.objects["Camera"]
    camera.data.type = kind
    camera.select_set(True)
    log = _refused(
        scene, tmp_path, f"Camera 'Camera' is {word}; NeRF datasets need perspective cameras",
        camera_source=source, anim_use_scene_range=False, anim_frame_end=2,
    )  # fmt: skip
    assert len(log) == 0


@pytest.mark.parametrize("how", ["hide_render", "collection_excluded", "deleted"])
def test_nothing_visible_to_export(scene, tmp_path, how):
    """(Hidden in the viewport the cube still renders, so it is no reason to refuse: see
    test_subject.py.)"""
    cube = bpy.data.objects["Cube"]
    if how == "hide_render":
        cube.hide_render = True
    elif how == "collection_excluded":
        bpy.context.view_layer.layer_collection.children["Collection"].exclude = True
    else:
        bpy.data.objects.remove(cube)
    _refused(scene, tmp_path, "Nothing to export: no visible object with geometry")


def test_nothing_selected_as_subject(scene, tmp_path):
    bpy.ops.object.select_all(action="DESELECT")
    _refused(scene, tmp_path, "no visible geometry is selected", subject="SELECTED")


def test_output_folder_blocked_by_a_file(scene, tmp_path):
    blocker = tmp_path / "not a folder"
    blocker.write_text("x")
    _refused(scene, blocker / "dataset", "Cannot write to the dataset folder .*choose a folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_output_folder_without_write_permission(scene, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        _refused(scene, locked, "Cannot write to the dataset folder")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(rig_views=0), "The rig has 0 views; set Views to at least 1"),
        (
            dict(camera_source="ANIMATION", anim_use_scene_range=False, anim_frame_start=10,
                 anim_frame_end=1),
            "The frame range 10–1 is empty",
        ),
        (
            dict(rig_views=6, split_mode="COUNT", split_val_count=3, split_test_count=3),
            "6 views cannot hold out 3 for validation and 3 for testing",
        ),
        (dict(split_val=0.5, split_test=0.5), "add up to 1 or more"),
        (dict(dataset_dir=""), "No dataset folder"),
        (dict(dataset_dir="//relative/"), "not saved yet"),
    ],
)  # fmt: skip
def test_zero_views_and_impossible_settings(scene, tmp_path, settings, match):
    dataset_dir = settings.pop("dataset_dir", None)
    for key, value in settings.items():
        setattr(scene.nerf, key, value)
    before = scene_fingerprint(scene)
    scene.nerf.dataset_dir = str(tmp_path) if dataset_dir is None else dataset_dir
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.nerf.export_dataset()
    assert scene_fingerprint(scene) == before
    assert list(tmp_path.glob("transforms_*.json")) == []


def test_failure_mid_export_restores_the_scene_and_keeps_the_good_dataset(scene, tmp_path):
    assert export(scene, tmp_path, rig_views=5) == {"FINISHED"}
    good = read_all(tmp_path)
    (tmp_path / "train").rename(tmp_path / "old_train")
    (tmp_path / "train").write_text("a file where the train folder goes")
    log = _refused(
        scene, tmp_path, "Could not write view ./train/r_0 into .*check the folder",
        rig_views=5, rig_seed=3,
    )  # fmt: skip
    assert len(log) >= 1  # it failed after rendering had begun
    assert not any(ob.name.startswith(".nerf_rig") for ob in bpy.data.objects)
    assert not (tmp_path / ".nerf_staging").exists()
    (tmp_path / "train").unlink()
    (tmp_path / "old_train").rename(tmp_path / "train")
    again = read_all(tmp_path)
    assert set(again) == set(good)
    for name, split in good.items():
        for a, b in zip(split.frames, again[name].frames, strict=True):
            assert (a.camera_to_world == b.camera_to_world).all()
