"""Faults during an export: the renderer failing after some views, Blender killed mid-export, a
full disk while an image or a transforms file is written. A finished dataset is never damaged by
a failed export of the same views; a transforms file never pairs its poses with another export's
images; exporting again resumes, rendering only what is missing."""

from __future__ import annotations

import errno
import pathlib
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    FailingRenderer,
    RenderLog,
    export,
    read_all,
    scene_fingerprint,
)

from blender_nerf.export.job import MANIFEST, STAGING  # noqa: E402
from blender_nerf.nerf_engine.data.images import image_size  # noqa: E402
from blender_nerf.scene import blender_render  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VIEWS = 6
SPLIT_FILES = ["transforms_test.json", "transforms_train.json", "transforms_val.json"]


def _transforms(out):
    return sorted(p.name for p in out.glob("transforms_*.json"))


def _files(out):
    """{relative path: bytes} of the dataset's files (not the resume manifest)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }


def _complete(out):
    """Check that the dataset in ``out`` is whole (every split loads, every image exists at its
    size, nothing temporary is left); returns its [N, 4, 4] poses."""
    splits = read_all(out)
    assert sorted(f"transforms_{s}.json" for s in splits) == SPLIT_FILES
    for split in splits.values():
        for frame in split.frames:
            assert image_size(frame.image_path) == (frame.intrinsics.w, frame.intrinsics.h)
    assert not (out / STAGING).exists()
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
    return np.stack([f.camera_to_world for s in splits.values() for f in s.frames])


def _rig_poses(scene, tmp_path, seed):
    """The poses an export of the rig with ``seed`` writes (exported once into a scratch folder)."""
    out = tmp_path / f"reference {seed}"  # beside the dataset folder, tmp_path / "data"
    assert export(scene, out, rig_views=VIEWS, rig_seed=seed) == {"FINISHED"}
    return np.stack([f.camera_to_world for s in read_all(out).values() for f in s.frames])


def _failed_export(scene, out, match, **settings):
    """Export expecting an ERROR report matching ``match``; the scene is as it was."""
    before = scene_fingerprint(scene)
    with pytest.raises(RuntimeError, match=match) as info:
        export(scene, out, **settings)
    assert scene_fingerprint(scene) == before
    assert not scene.nerf.job_running and bpy.ops.nerf.export_dataset.poll()
    assert not any(ob.name.startswith(".nerf_rig") for ob in bpy.data.objects)
    assert not (out / STAGING).exists()
    return str(info.value)


def test_a_render_that_fails_midway_then_resume(scene, tmp_path, monkeypatch):
    out = tmp_path / "data"
    renderer = FailingRenderer(fail_at=3)
    monkeypatch.setattr(blender_render, "render_still", renderer)
    _failed_export(
        scene, out,
        r"Export failed at view 3 of 6: Error: Render error \(Out of memory\)",
        rig_views=VIEWS,
    )  # fmt: skip
    assert _transforms(out) == []  # no dataset file claims the missing views
    assert len(list(out.glob("*/r_*.png"))) == 2
    monkeypatch.undo()
    done = {p: p.stat().st_mtime_ns for p in out.glob("*/r_*.png")}
    with RenderLog() as log:
        assert export(scene, out) == {"FINISHED"}
    assert len(log) == VIEWS - 2, "only the missing views are rendered"
    assert {p: p.stat().st_mtime_ns for p in done} == done
    assert "resumed: kept 2 views already rendered" in scene.nerf.job_status
    poses = _complete(out)
    assert np.allclose(poses, _rig_poses(scene, tmp_path, 0))


def test_an_image_cut_short_by_a_full_disk_never_replaces_a_good_one(scene, tmp_path, monkeypatch):
    out = tmp_path / "data"
    assert export(scene, out, rig_views=VIEWS) == {"FINISHED"}
    good = _files(out)
    monkeypatch.setattr(blender_render, "render_still", FailingRenderer(1, truncate=True))
    _failed_export(
        scene, out,
        r"Export failed at view 1 of 6: Blender wrote an incomplete image for view \./\w+/r_0 "
        r"\('image.png' ends early\); check the free space of the output folder's disk",
        rig_seed=7,
    )  # fmt: skip
    assert _files(out) == good  # the failed view replaced nothing
    _complete(out)


def test_a_failure_after_replacing_images_removes_the_transforms_files(
    scene, tmp_path, monkeypatch
):
    """Re-exporting other cameras over a dataset replaces its images one by one: if that stops
    midway, no transforms file may describe the mix of old and new images."""
    out = tmp_path / "data"
    assert export(scene, out, rig_views=VIEWS) == {"FINISHED"}
    monkeypatch.setattr(blender_render, "render_still", FailingRenderer(fail_at=4))
    message = _failed_export(
        scene, out, "Export failed at view 4 of 6: ", rig_views=VIEWS, rig_seed=7
    )
    assert message.rstrip().endswith(
        "The dataset is incomplete: transforms_train.json, transforms_val.json, "
        "transforms_test.json were removed because their images were being replaced; export "
        "again to finish it (finished views are kept)."
    )
    assert _transforms(out) == []
    monkeypatch.undo()
    with RenderLog() as log:
        assert export(scene, out) == {"FINISHED"}
    assert len(log) == VIEWS - 3
    poses = _complete(out)
    assert np.allclose(poses, _rig_poses(scene, tmp_path, 7))


def test_rerendering_the_same_views_keeps_the_transforms_files(scene, tmp_path, monkeypatch):
    """Re-render Existing over the same cameras: the transforms files stay true, so they stay."""
    out = tmp_path / "data"
    assert export(scene, out, rig_views=VIEWS) == {"FINISHED"}
    before = {name: (out / name).read_bytes() for name in _transforms(out)}
    monkeypatch.setattr(blender_render, "render_still", FailingRenderer(fail_at=4))
    message = _failed_export(scene, out, "Export failed at view 4 of 6", overwrite=True)
    assert "incomplete" not in message
    assert {name: (out / name).read_bytes() for name in _transforms(out)} == before
    _complete(out)


def _disk_full_for(prefix):
    """``Path.write_bytes`` that writes half of a file whose name starts with ``prefix`` and then
    fails with ENOSPC, as a full disk does; other files are written normally."""
    real = pathlib.Path.write_bytes

    def write_bytes(self, data):
        if not self.name.startswith(prefix):
            return real(self, data)
        real(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    return write_bytes


def test_a_full_disk_while_writing_the_transforms_keeps_the_good_ones(scene, tmp_path, monkeypatch):
    out = tmp_path / "data"
    assert export(scene, out, rig_views=VIEWS) == {"FINISHED"}
    good = _files(out)
    monkeypatch.setattr(pathlib.Path, "write_bytes", _disk_full_for(".transforms_"))
    with RenderLog() as log:
        _failed_export(
            scene, out,
            r"Could not write the transforms files.*transforms_train\.json.*No space left on "
            r"device.*free (some )?space",
        )  # fmt: skip
    assert len(log) == 0
    monkeypatch.undo()
    assert _files(out) == good, "a half-written transforms file replaced a good one"
    _complete(out)
    assert export(scene, out) == {"FINISHED"}
    assert "kept 6" in scene.nerf.job_status


def test_a_full_disk_while_recording_a_view_then_resume(scene, tmp_path, monkeypatch):
    """The resume manifest cannot be written: the view is not counted as done and is rendered
    again next time; the manifest itself stays readable."""
    out = tmp_path / "data"
    monkeypatch.setattr(pathlib.Path, "write_bytes", _disk_full_for(f".{MANIFEST}"))
    _failed_export(
        scene, out,
        r"Could not write view \./\w+/r_0.*nerf_export\.json.*No space left on device.*free "
        "(some )?space",
        rig_views=VIEWS,
    )  # fmt: skip
    monkeypatch.undo()
    assert not (out / MANIFEST).exists() and _transforms(out) == []
    with RenderLog() as log:
        assert export(scene, out) == {"FINISHED"}
    assert len(log) == VIEWS
    _complete(out)


# A Blender session (bpy as a module) that exports the rig with seed argv[4] into argv[3] and is
# killed (SIGKILL: no cleanup at all) while it renders view argv[5].
KILLED_EXPORT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import bpy, blender_nerf
    from addon_helpers import configure_fast_render
    bpy.ops.wm.read_factory_settings(use_empty=False)
    blender_nerf.register()
    scene = bpy.context.scene
    configure_fast_render(scene)
    rendered = []

    def kill_during(*args):
        rendered.append(1)
        if len(rendered) == int(sys.argv[5]):
            os.kill(os.getpid(), signal.SIGKILL)

    bpy.app.handlers.render_write.append(kill_during)  # the image is in staging, not yet moved
    scene.nerf.dataset_dir = sys.argv[3]
    scene.nerf.rig_views, scene.nerf.rig_seed = 6, int(sys.argv[4])
    bpy.ops.nerf.export_dataset()
    print("NOT KILLED", scene.nerf.job_status, flush=True)
    """
)


def test_blender_killed_mid_export_then_resume(scene, tmp_path):
    out = tmp_path / "data"
    assert export(scene, out, rig_views=VIEWS) == {"FINISHED"}  # a good dataset, seed 0
    script = tmp_path / "session.py"
    script.write_text(KILLED_EXPORT)
    args = [sys.executable, str(script), str(ROOT), str(Path(__file__).parent), str(out)]
    session = subprocess.run([*args, "7", "4"], capture_output=True, text=True, timeout=120)
    assert session.returncode == -signal.SIGKILL, session.stdout + session.stderr
    # three views of the new rig replaced old images: no transforms file may describe them
    assert _transforms(out) == []
    assert (out / STAGING / "image.png").is_file()  # what the killed export left
    with RenderLog() as log:
        assert export(scene, out, rig_seed=7) == {"FINISHED"}
    assert len(log) == VIEWS - 3, "only the views the killed export did not finish"
    poses = _complete(out)
    assert np.allclose(poses, _rig_poses(scene, tmp_path, 7))
