"""Shared checks for the add-on tests (plain functions, imported by the test modules)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import bpy

from blender_nerf.nerf_engine.data.dataset import SPLITS, read_split
from blender_nerf.scene import blender_render


def export(scene, out_dir, **settings):
    """Set ``scene.nerf`` from keywords, run the operator, return its result set."""
    scene.nerf.dataset_dir = str(out_dir)
    for key, value in settings.items():
        setattr(scene.nerf, key, value)
    return bpy.ops.nerf.export_dataset()


def read_all(out_dir):
    """{split: Split} for every split that was written."""
    return {
        s: read_split(out_dir, s) for s in SPLITS if (out_dir / f"transforms_{s}.json").exists()
    }


def scene_fingerprint(scene):
    """The scene state an export must leave as it found it."""
    render = scene.render
    view = scene.view_settings
    return {
        "camera": scene.camera.name if scene.camera else None,
        "frame": (scene.frame_current, scene.frame_subframe),
        "objects": sorted(ob.name for ob in bpy.data.objects),
        "cameras": sorted(c.name for c in bpy.data.cameras),
        "node_groups": sorted(g.name for g in bpy.data.node_groups),
        "compositor": getattr(scene.compositing_node_group, "name", None),
        "render": {
            a: getattr(render, a)
            for a in (
                "engine",
                "resolution_x",
                "resolution_y",
                "resolution_percentage",
                "film_transparent",
                "filepath",
                "use_compositing",
                "use_file_extension",
                "use_border",
                "pixel_aspect_x",
                "pixel_aspect_y",
            )
        },
        "image": (render.image_settings.file_format, render.image_settings.color_mode),
        "view": (view.view_transform, view.look, view.exposure, view.gamma),
        "passes": [(vl.use, vl.use_pass_z, vl.use_pass_object_index) for vl in scene.view_layers],
        "pass_index": sorted((ob.name, ob.pass_index) for ob in bpy.data.objects),
        "selection": sorted(ob.name for ob in bpy.context.selected_objects),
    }


class RenderLog:
    """Records, for every render Blender starts, the settings the export renders with."""

    def __init__(self):
        self.renders = []

    def __call__(self, scene, *args):
        self.renders.append(
            {
                "camera": scene.camera.name if scene.camera else None,
                "engine": scene.render.engine,
                "view_transform": scene.view_settings.view_transform,
                "look": scene.view_settings.look,
                "film_transparent": scene.render.film_transparent,
                "frame": scene.frame_current,
                "size": (scene.render.resolution_x, scene.render.resolution_y),
                "percentage": scene.render.resolution_percentage,
            }
        )

    def __enter__(self):
        bpy.app.handlers.render_pre.append(self)
        return self

    def __exit__(self, *exc):
        bpy.app.handlers.render_pre.remove(self)

    def __len__(self):
        return len(self.renders)


class FailingRenderer:
    """Blender's renderer that fails on render number ``fail_at`` (1-based): it raises, as
    ``bpy.ops.render.render`` does for a failed render, or, with ``truncate``, renders and then
    cuts the written image short, as a full disk does."""

    def __init__(self, fail_at, truncate=False):
        self.fail_at, self.truncate, self.calls = fail_at, truncate, 0
        self.real = blender_render.render_still

    def __call__(self, scene):
        self.calls += 1
        if self.calls != self.fail_at:
            return self.real(scene)
        if not self.truncate:
            raise RuntimeError("Error: Render error (Out of memory) cannot render, aborting")
        result = self.real(scene)
        path = Path(scene.render.filepath)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return result


def vertices_world(objects=None):
    """[N, 3] world coordinates of every vertex of the given (default: all) mesh objects."""
    import numpy as np

    objects = objects or [ob for ob in bpy.data.objects if ob.type == "MESH"]
    return np.array([tuple(ob.matrix_world @ v.co) for ob in objects for v in ob.data.vertices])


def blender_pixels(scene, camera, points, w, h):
    """Pixel coordinates of ``points`` according to Blender's own world_to_camera_view."""
    import numpy as np
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    ndc = [world_to_camera_view(scene, camera, Vector(p)) for p in points]
    return np.array([(v.x * w, (1.0 - v.y) * h) for v in ndc])


def render_png(scene, path, camera=None):
    """Blender's render of ``scene`` (through ``camera`` when given) written to ``path`` and read
    back as a straight-alpha RGBA float array [H, W, 4], row 0 at the top."""
    from blender_nerf.scene import scene_io

    if camera is not None:
        scene.camera = camera
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.use_file_extension = False
    assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
    return scene_io.read_image(path)


def configure_fast_render(scene, size=(32, 32), samples=1):
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 1
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100


class RecordingLayout:
    """A stand-in for ``UILayout`` that checks every property and operator it is asked to show.

    ``prop(data, "name")`` fails unless ``name`` is an RNA property of ``data``; ``operator(id)``
    fails unless the operator is registered. Sub-layouts record into the same list.
    """

    def __init__(self, calls=None):
        self.calls = [] if calls is None else calls

    def __setattr__(self, name, value):
        if name != "calls":
            assert hasattr(bpy.types.UILayout, name) or name in bpy.types.UILayout.bl_rna.properties
        object.__setattr__(self, name, value)

    def _sub(self, *args, **kwargs):
        return RecordingLayout(self.calls)

    row = column = box = split = grid_flow = column_flow = _sub

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{data.bl_rna.identifier} has no property {name!r}"
        self.calls.append(("prop", data.bl_rna.identifier, name))

    def operator(self, idname, **kwargs):
        module, name = idname.split(".")
        assert name in dir(getattr(bpy.ops, module)), f"operator {idname} is not registered"
        self.calls.append(("operator", idname))
        return SimpleNamespace()

    def label(self, text="", icon="NONE", **kwargs):
        assert isinstance(text, str)
        self._check_icon(icon)
        self.calls.append(("label", text))

    def progress(self, factor=0.0, text="", **kwargs):
        assert 0.0 <= factor <= 1.0
        self.calls.append(("progress", factor))

    def separator(self, **kwargs):
        pass

    def template_icon(self, icon_value=0, scale=1.0, **kwargs):
        assert icon_value > 0, "template_icon needs a real icon id"
        self.calls.append(("template_icon", icon_value))

    @staticmethod
    def _check_icon(icon):
        icons = bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items
        assert icon in icons, f"unknown icon {icon!r}"


# The tiny training configuration (same algorithm, seconds on a CPU) as Extra Arguments.
TINY_ARGS = (
    "--set model.depth=2 --set model.width=32 --set model.view_width=16 "
    "--set model.skip_layer=none --set sampling.n_coarse=8 --set sampling.n_fine=8 "
    "--set batch_rays=64 --set log_every=2 --set preview_every=5 --set checkpoint_every=5 "
    "--set preview_max_side=16 --set eval_views=1"
)


def tiny_dataset(scene, out_dir, views=6):
    """Export a 16×16-pixel rig dataset of the default cube (train 4, val 1, test 1)."""
    configure_fast_render(scene, size=(16, 16))
    assert export(scene, out_dir, rig_views=views) == {"FINISHED"}
    return out_dir


def tiny_training(scene, run_dir, steps=20, extra=""):
    """Point ``scene.nerf`` at ``run_dir`` with the tiny configuration on the CPU."""
    nerf = scene.nerf
    nerf.run_dir = str(run_dir)
    nerf.preset = "PREVIEW"
    nerf.train_steps = steps
    nerf.train_seconds = 0.0
    nerf.device = "CPU"
    nerf.train_extra_args = f"{TINY_ARGS} {extra}".strip()


def read_events(run_dir):
    path = Path(run_dir) / "events.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TimeoutError in the main thread after ``seconds``: a hang fails the test."""

    def expire(signum, frame):
        raise TimeoutError(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pid_alive(pid):
    """Whether process ``pid`` exists and is not a zombie (Linux /proc; else os.kill)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc").is_dir():
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False  # gone between the two checks
    return state != "Z"


def engine_children():
    """Process ids of this process's children that run ``nerf_engine`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"nerf_engine" in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# A NeRF of the default cube that has learned something (its silhouette and colours): made once
# per session by the `trained_run` fixture, through the operators.
TRAINED_SIZE = (24, 24)
TRAINED_ARGS = "--set batch_rays=256 --set log_every=20 --set preview_every=100 "
TRAINED_ARGS += "--set checkpoint_every=100"


def make_trained_run(root):
    """Export 10 rig views of the default cube at 24×24 and train the tiny model 300 steps."""
    scene = bpy.context.scene
    configure_fast_render(scene, size=TRAINED_SIZE, samples=4)
    # without depth maps, as these runs were measured: with them (Export's default since session
    # 25) more of the unseen inside of the tiny cube gets density, and its Extract Mesh came out
    # 0.16 m off the surface (median) instead of 0.09 m -- the tiny-export gap of the depth
    # start (issue 16's notes); not yet solved
    assert export(scene, root / "data", rig_views=10, export_depth=False) == {"FINISHED"}
    tiny_training(scene, root / "run", steps=300, extra=TRAINED_ARGS)
    assert bpy.ops.nerf.train() == {"FINISHED"}, scene.nerf.job_status
    return SimpleNamespace(dataset=root / "data", run=root / "run")


def use_trained_run(scene, trained, render_dir):
    """Point ``scene`` at the trained run, render as the dataset was rendered, and bring the
    camera into the range of distances the run was trained at (the rig's)."""
    configure_fast_render(scene, size=TRAINED_SIZE, samples=4)
    nerf = scene.nerf
    nerf.run_dir = str(trained.run)
    nerf.dataset_dir = str(trained.dataset)
    nerf.render_dir = str(render_dir)
    nerf.device = "CPU"
    scene.camera.location = scene.camera.location * 0.55
    bpy.context.view_layer.update()
    return nerf
