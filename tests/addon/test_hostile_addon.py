"""Hostile and broken input to the add-on's operators: cameras a pinhole dataset cannot describe,
folders that cannot be written or hold someone else's files, paths with spaces and non-ASCII
names, relative paths in an unsaved file, damaged run folders, tiny renders, hostile transforms
files for Import Cameras. Each refusal is one ERROR report that names the thing and says what to
do, with the scene, the files and Blender's state as they were; the rest must simply work."""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    RenderLog,
    configure_fast_render,
    engine_children,
    export,
    read_all,
    read_events,
    scene_fingerprint,
    tiny_dataset,
    tiny_training,
)

import blender_nerf  # noqa: E402
from blender_nerf.jobs import process  # noqa: E402
from blender_nerf.nerf_engine.data.cameras import look_at  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import MAX_JSON_BYTES  # noqa: E402
from blender_nerf.nerf_engine.data.images import image_size  # noqa: E402
from blender_nerf.views import import_cameras  # noqa: E402

UNICODE_DIR = "my NeRF ü 日本 ñ"  # spaces and non-ASCII letters in every folder the flow uses


def _state(scene):
    kinds = ("images", "materials", "meshes", "node_groups", "collections", "cameras")
    blocks = {kind: sorted(getattr(bpy.data, kind).keys()) for kind in kinds}
    render = scene.render
    return scene_fingerprint(scene), blocks, (render.pixel_aspect_x, render.pixel_aspect_y)


def _refused(scene, operator, match, **kwargs):
    """``operator`` refuses with one ERROR report matching ``match``; nothing changed, nothing
    runs, and the operator can be used again."""
    before = _state(scene)
    with pytest.raises(RuntimeError, match=match) as info:
        operator(**kwargs)
    assert str(info.value).startswith("Error: ")
    assert _state(scene) == before
    assert not scene.nerf.job_running and process.live_jobs() == [] and engine_children() == []
    assert operator.poll()
    return str(info.value)


def _snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _add_camera(name, kind="PERSP", panorama="FISHEYE_EQUIDISTANT", location=(6, -6, 4)):
    data = bpy.data.cameras.new(name)
    data.type = kind
    if kind == "PANO":
        data.panorama_type = panorama
    camera = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(camera)
    camera.location = location
    camera.rotation_euler = bpy.data.objects["Camera"].rotation_euler
    return camera


@pytest.fixture(scope="module")
def unicode_run(tmp_path_factory):
    """Export and train a tiny NeRF in folders with spaces and non-ASCII names (must work)."""
    bpy.ops.wm.read_factory_settings(use_empty=False)
    blender_nerf.register()
    try:
        root = tmp_path_factory.mktemp("hostile") / UNICODE_DIR
        scene = bpy.context.scene
        tiny_dataset(scene, root / "data set é")
        tiny_training(scene, root / "run ø 1", steps=10)
        assert bpy.ops.nerf.train() == {"FINISHED"}, scene.nerf.job_status
        return root / "data set é", root / "run ø 1"
    finally:
        blender_nerf.unregister()


def _use_run(scene, run, render_dir, size=(16, 16)):
    configure_fast_render(scene, size=size)
    nerf = scene.nerf
    nerf.run_dir, nerf.render_dir, nerf.device = str(run), str(render_dir), "CPU"
    return nerf


# --- what must work -------------------------------------------------------------------------


def test_spaces_and_non_ascii_folders_work_end_to_end(scene, unicode_run, tmp_path):
    data, run = unicode_run
    assert {s: len(x.frames) for s, x in read_all(data).items()} == {
        "train": 4, "val": 1, "test": 1,
    }  # fmt: skip
    assert read_events(run)[-1]["event"] == "done"
    out = tmp_path / UNICODE_DIR / "renders é 日本"
    _use_run(scene, run, out)
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, scene.nerf.job_status
    assert image_size(out / "Camera.png") == (16, 16)
    scene.nerf.import_target = "PLANE"
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    assert any(img.filepath.endswith("Camera.png") and UNICODE_DIR in img.filepath
               for img in bpy.data.images)  # fmt: skip


@pytest.mark.parametrize(
    "size, percentage, expected", [((100, 100), 1, (1, 1)), ((8, 6), 25, (2, 1))]
)
def test_one_pixel_export(scene, tmp_path, size, percentage, expected):
    """Blender's resolution is at least 4: a 1×1 or 2×1 dataset still renders at its size."""
    configure_fast_render(scene, size=size)
    scene.render.resolution_percentage = percentage
    before = scene_fingerprint(scene)
    assert export(scene, tmp_path, rig_views=3) == {"FINISHED"}, scene.nerf.job_status
    assert scene_fingerprint(scene) == before
    for split in read_all(tmp_path).values():
        for frame in split.frames:
            assert (frame.intrinsics.w, frame.intrinsics.h) == expected
            assert image_size(frame.image_path) == expected


def test_a_one_pixel_nerf_render(scene, unicode_run, tmp_path):
    nerf = _use_run(scene, unicode_run[1], tmp_path / "render", size=(100, 100))
    scene.render.resolution_percentage = 1
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    assert image_size(tmp_path / "render" / "Camera.png") == (1, 1)


def test_a_folder_with_the_users_own_files_keeps_them(scene, tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "train" / "holiday.png").write_bytes(b"someone's picture")
    (tmp_path / "project" / ".hidden").mkdir(parents=True)
    (tmp_path / "project" / ".hidden" / "keep.blend").write_bytes(b"BLENDER")
    mine = _snapshot(tmp_path)
    assert export(scene, tmp_path, rig_views=4) == {"FINISHED"}
    assert export(scene, tmp_path, rig_views=3, rig_seed=5) == {"FINISHED"}  # fewer, others
    now = _snapshot(tmp_path)
    assert {k: now.get(k) for k in mine} == mine, "a file of the user's was changed or deleted"
    assert sum(len(s.frames) for s in read_all(tmp_path).values()) == 3


# --- export refusals ------------------------------------------------------------------------


def test_a_fisheye_among_the_selected_cameras(scene, tmp_path):
    fisheye = _add_camera("Fisheye", "PANO", "FISHEYE_EQUIDISTANT")
    bpy.data.objects["Camera"].select_set(True)
    fisheye.select_set(True)
    scene.nerf.dataset_dir = str(tmp_path)
    scene.nerf.camera_source = "SELECTED"
    with RenderLog() as log:
        _refused(
            scene, bpy.ops.nerf.export_dataset,
            r"Camera 'Fisheye' is panoramic; NeRF datasets need perspective cameras "
            r"\(Panorama Type: Fisheye Equidistant\)\. Set its Lens > Type to Perspective",
        )  # fmt: skip
    assert len(log) == 0 and list(tmp_path.iterdir()) == []


def test_an_animation_that_switches_to_an_orthographic_camera(scene, tmp_path):
    ortho = _add_camera("Ortho", "ORTHO")
    marker = scene.timeline_markers.new("switch", frame=3)
    marker.camera = ortho
    first = scene.timeline_markers.new("start", frame=1)
    first.camera = bpy.data.objects["Camera"]
    nerf = scene.nerf
    nerf.dataset_dir, nerf.camera_source = str(tmp_path), "ANIMATION"
    nerf.anim_use_scene_range, nerf.anim_frame_start, nerf.anim_frame_end = False, 1, 4
    with RenderLog() as log:
        _refused(scene, bpy.ops.nerf.export_dataset, "Camera 'Ortho' is orthographic")
    assert len(log) == 0 and scene.frame_current == 1


def test_a_folder_holding_another_tools_dataset_is_not_overwritten(scene, tmp_path):
    c2w = look_at((0.0, -4.0, 2.0), (0, 0, 0)).tolist()
    foreign = {"camera_angle_x": 0.69, "frames": [{"file_path": "./train/r_0",
                                                   "transform_matrix": c2w}]}  # fmt: skip
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "r_0.png").write_bytes(b"their image")
    (tmp_path / "transforms_train.json").write_text(json.dumps(foreign))
    (tmp_path / "transforms_val.json").write_text(json.dumps(foreign))
    theirs = _snapshot(tmp_path)
    scene.nerf.dataset_dir, scene.nerf.split_val = str(tmp_path), 0.0
    for overwrite in (False, True):
        scene.nerf.overwrite = overwrite
        _refused(
            scene, bpy.ops.nerf.export_dataset,
            r"holds a dataset that blender-nerf did not make \(transforms_\w+\.json\); exporting "
            "would overwrite it. Choose an empty folder, or move that dataset away first",
        )  # fmt: skip
    assert _snapshot(tmp_path) == theirs


def test_an_empty_scene_has_nothing_to_export(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_nerf.register()
    try:
        scene = bpy.context.scene
        configure_fast_render(scene, size=(8, 8))
        scene.nerf.dataset_dir = str(tmp_path / "data")
        for lens in ("ACTIVE_CAMERA", "CUSTOM"):
            scene.nerf.rig_lens_source = lens
            _refused(
                scene, bpy.ops.nerf.export_dataset,
                "Nothing to export: no visible object with geometry is enabled for rendering; "
                "unhide the subject or add one",
            )  # fmt: skip
        assert not (tmp_path / "data").exists()
    finally:
        blender_nerf.unregister()


def test_a_mesh_without_vertices_is_no_subject(scene, tmp_path):
    bpy.data.objects.remove(bpy.data.objects["Cube"])
    empty = bpy.data.objects.new("Empty Mesh", bpy.data.meshes.new("Empty Mesh"))
    scene.collection.objects.link(empty)
    scene.nerf.dataset_dir = str(tmp_path)
    _refused(scene, bpy.ops.nerf.export_dataset, "Nothing to export: no visible object")


# --- zero-size renders, unwritable and relative folders ---------------------------------------

ZERO = "The render size is 0×0 pixels \\(4×4 at 1%\\); raise the resolution or the percentage"


@pytest.mark.parametrize("operator", ["export_dataset", "render_views", "compare"])
def test_a_zero_pixel_render_is_refused(scene, unicode_run, tmp_path, operator):
    nerf = _use_run(scene, unicode_run[1], tmp_path / "render", size=(4, 4))
    nerf.dataset_dir = str(tmp_path / "data")
    scene.render.resolution_percentage = 1
    _refused(scene, getattr(bpy.ops.nerf, operator), ZERO)
    assert not (tmp_path / "data").exists() and not (tmp_path / "render").exists()


def test_a_render_folder_inside_a_file(scene, unicode_run, tmp_path):
    (tmp_path / "file").write_text("x")
    _use_run(scene, unicode_run[1], tmp_path / "file" / "render")
    _refused(
        scene, bpy.ops.nerf.render_views,
        r"Cannot write to the render folder '.*file/render' \(Not a directory\); choose a folder "
        "you can write to",
    )  # fmt: skip


@pytest.mark.parametrize("where", ["inside a file", "is a file"])
def test_a_run_folder_that_cannot_be_written_is_refused_before_training(scene, tmp_path, where):
    data = tiny_dataset(scene, tmp_path / "data")
    (tmp_path / "file").write_text("x")
    run = tmp_path / "file" / "run" if where == "inside a file" else tmp_path / "file"
    tiny_training(scene, run)
    scene.nerf.dataset_dir = str(data)
    reason = "Not a directory" if where == "inside a file" else "File exists"
    message = _refused(
        scene, bpy.ops.nerf.train,
        rf"Cannot write to the run folder '.*file(/run)?' \({reason}\); choose a folder you can",
    )  # fmt: skip
    assert scene.nerf.job_status in message
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize(
    "operator, setting, label",
    [
        ("render_views", "render_dir", "Render Folder"),
        ("render_views", "run_dir", "Run Folder"),
        ("compare", "run_dir", "Run Folder"),
        ("import_view", "render_dir", "Render Folder"),
        ("train", "dataset_dir", "Dataset Folder"),
    ],
)
def test_relative_folders_in_an_unsaved_file(
    scene, unicode_run, tmp_path, operator, setting, label
):
    nerf = _use_run(scene, unicode_run[1], tmp_path / "render")
    nerf.dataset_dir = str(unicode_run[0])
    assert not bpy.data.filepath
    cwd = os.getcwd()
    setattr(nerf, setting, "//nerf stuff/")
    _refused(
        scene, getattr(bpy.ops.nerf, operator),
        f"{label} '//nerf stuff/' is relative to the .blend file, which is not saved yet; save "
        "the file or choose an absolute folder",
    )  # fmt: skip
    assert not os.path.exists(os.path.join(cwd, "nerf stuff"))


def test_import_cameras_from_a_relative_path_in_an_unsaved_file(scene, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where '//' used to end up: the working directory
    (tmp_path / "cams.json").write_text(json.dumps({"camera_angle_x": 0.7, "w": 8, "h": 8,
        "frames": [{"transform_matrix": np.eye(4).tolist()}]}))  # fmt: skip
    _refused(
        scene, bpy.ops.nerf.import_cameras,
        "'//cams.json' is relative to the .blend file, which is not saved yet; save the file or "
        "choose the transforms file by its full path",
        filepath="//cams.json",
    )  # fmt: skip


# --- damaged run folders: Render Views, Compare, Resume ----------------------------------------


def _damaged_copy(run, tmp_path, damage):
    copy = tmp_path / "run copy"
    shutil.copytree(run, copy)
    if damage == "checkpoints":
        for checkpoint in (copy / "checkpoints").glob("step_*.pt"):
            checkpoint.write_bytes(checkpoint.read_bytes()[:200])  # a cut-off download
    elif damage == "events":
        with open(copy / "events.jsonl", "a", encoding="utf-8") as events:
            events.write('not json at all\n{"event": "progress", "step": 7, "lo')  # killed mid-line
    return copy


@pytest.mark.parametrize(
    "operator, prefix",
    [
        ("render_views", "Render Views failed"),
        ("compare", "Compare failed"),
        ("train", "Training failed"),
    ],
)
def test_truncated_checkpoints(scene, unicode_run, tmp_path, operator, prefix):
    run = _damaged_copy(unicode_run[1], tmp_path, "checkpoints")
    nerf = _use_run(scene, run, tmp_path / "render")
    tiny_training(scene, run, steps=15)
    nerf.dataset_dir = str(unicode_run[0])
    kwargs = {"resume": True} if operator == "train" else {}
    message = _refused(
        scene, getattr(bpy.ops.nerf, operator),
        rf"{prefix}: .*step_0000010\.pt: not a readable checkpoint .*(retrain|train)",
        **kwargs,
    )  # fmt: skip
    assert nerf.job_status in message
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_0000005.pt", "step_0000010.pt",
    ]  # fmt: skip


def test_a_damaged_newest_checkpoint_is_skipped_and_reports_say_so(scene, unicode_run, tmp_path):
    """The engine renders from the checkpoint before a damaged newest one and says so in a
    warning event; Render Views and Compare end their reports with it."""
    run = _damaged_copy(unicode_run[1], tmp_path, None)
    newest = run / "checkpoints" / "step_0000010.pt"
    newest.write_bytes(newest.read_bytes()[:200])
    nerf = _use_run(scene, run, tmp_path / "render")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    assert "of the NeRF at step 5 into" in nerf.job_status
    assert "1 warning: " in nerf.job_status and "step_0000010.pt" in nerf.job_status
    assert nerf.job_status.endswith("Using the checkpoint before it.")
    assert bpy.ops.nerf.compare() == {"FINISHED"}, nerf.job_status
    assert nerf.job_status.startswith("Compared 1 view(s)")
    assert "Note: " in nerf.job_status and "step_0000010.pt" in nerf.job_status


def test_an_unreadable_config_is_refused_before_the_engine_starts(scene, unicode_run, tmp_path):
    run = _damaged_copy(unicode_run[1], tmp_path, None)
    (run / "config.json").write_text('{"dataset": ')
    _use_run(scene, run, tmp_path / "render")
    for operator in (bpy.ops.nerf.render_views, bpy.ops.nerf.compare):
        _refused(
            scene, operator,
            r"Run Folder '.*run copy' has no readable config.json \(.*\): is it a training run",
        )  # fmt: skip


def test_a_damaged_event_log_does_not_stop_compare(scene, unicode_run, tmp_path):
    """Compare reads the run's events.jsonl for its training curve; a line cut off by a killed
    trainer, or one that is not JSON, is skipped."""
    run = _damaged_copy(unicode_run[1], tmp_path, "events")
    nerf = _use_run(scene, run, tmp_path / "render")
    assert bpy.ops.nerf.compare() == {"FINISHED"}, nerf.job_status
    assert nerf.compare_views == 1 and math.isfinite(nerf.compare_psnr)
    assert (run / "compare" / "training_curve.png").is_file()


# --- Import Cameras: hostile transforms files --------------------------------------------------


def _frame(**overrides):
    frame = {"file_path": "images/0001.png", "transform_matrix": look_at((3, -3, 2), (0, 0, 0))}
    frame["transform_matrix"] = frame["transform_matrix"].tolist()
    return frame | overrides


def _write(path, frames, **top):
    path.write_text(json.dumps({"fl_x": 20.0, "w": 32, "h": 24, **top, "frames": frames}))


@pytest.mark.parametrize(
    "frames, top, match",
    [
        ([_frame(file_path="../../../etc/passwd")], {},
         r"frame 0, key 'file_path': '../../../etc/passwd' leads outside the dataset folder"),
        ([_frame(file_path="/etc/passwd")], {},
         r"frame 0, key 'file_path': '/etc/passwd' is absolute"),
        ([_frame(), _frame(transform_matrix=[[math.nan] * 4] * 3 + [[0, 0, 0, 1]])], {},
         r"frame 1, key 'transform_matrix': contains NaN or infinity"),
        ([_frame()], {"w": 100_000, "h": 10},
         r"frame 0 \('0001'\) is 100000×10 pixels; Blender renders at most 65536 a side"),
        ([_frame()], {"fl_x": 0.5},
         r"frame 0 \('0001'\): fl_x 0.5 for a 32-pixel-wide image is a field of view wider than "
         r"a Blender lens can show \(under 1 mm\)\. Check 'fl_x'"),
        ([_frame()], {"fl_y": 20_000.0},
         r"fl_x/fl_y ratio is 0.001; Blender's pixel aspect allows 1/200 to 200"),
        ([_frame()] * 6, {},
         r"holds 6 cameras; Import Cameras creates at most 5\. Import one split's transforms "
         "file, or thin out the frames"),
    ],
)  # fmt: skip
def test_hostile_transforms_files(scene, tmp_path, monkeypatch, frames, top, match):
    monkeypatch.setattr(import_cameras, "MAX_CAMERAS", 5)  # the real limit, 10 000, takes seconds
    path = tmp_path / "transforms.json"
    _write(path, frames, **top)
    _refused(scene, bpy.ops.nerf.import_cameras, match, filepath=str(path))


def test_a_huge_transforms_file_is_refused_without_reading_it(scene, tmp_path):
    path = tmp_path / "transforms.json"
    with open(path, "wb") as handle:  # sparse: no disk space, nothing to read
        handle.truncate(MAX_JSON_BYTES + 1)
    _refused(
        scene, bpy.ops.nerf.import_cameras,
        rf"transforms.json: file is {MAX_JSON_BYTES + 1} bytes, over the {MAX_JSON_BYTES}-byte",
        filepath=str(path),
    )  # fmt: skip


# --- the trainer recovered from something: the artist hears about it ---------------------------


def test_a_trainer_warning_reaches_the_status_and_the_report(tmp_path):
    """The engine's ``warning`` events (a NaN loss rolled back, say) show in the panel's status
    while training and in the final report. The child here prints the engine's event lines."""
    import sys

    from blender_nerf.train.job import TrainJob, TrainRequest

    rolled_back = "NaN/inf loss between steps 10 and 20: rolled back to step 10 and halved the lr."
    lines = [
        {"event": "start", "step": 0, "total_steps": 40},
        {"event": "progress", "step": 20, "total_steps": 40, "loss": 0.1, "psnr": 12.0},
        {"event": "warning", "step": 10, "message": rolled_back, "failed_step": 20},
        {"event": "done", "step": 40, "stopped": "completed", "psnr": 14.5},
    ]
    script = "import json, sys\nfor line in json.loads(sys.argv[1]): print(json.dumps(line))\n"
    job = TrainJob(TrainRequest(str(tmp_path), str(tmp_path / "run")), sys.executable)
    job.commands = [[sys.executable, "-c", script, json.dumps(lines)]]  # stands in for the engine
    job.start()
    assert job.wait(timeout=30) and job.state == "finished"
    assert job.warnings == [rolled_back]
    assert job.message == (
        f"Trained to step 40 in '{tmp_path / 'run'}', test PSNR 14.50 dB. 1 warning: {rolled_back}"
    )
    job.state = "running"  # the panel's line while it still ran
    assert job.status() == f"Training: step 40 of 40 ({rolled_back})"
