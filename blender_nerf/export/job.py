"""Render an :class:`~.plan.ExportPlan` one view per :meth:`ExportJob.step`, then write the
dataset through ``nerf_engine.data.dataset``.

The operator's ``execute()`` calls ``step()`` until it returns False; its modal path calls it once
per timer event, so the UI shows progress and Esc cancels between two views. Either way
:meth:`ExportJob.close` puts the scene back.

Resume: every finished view is recorded in ``<dataset>/.nerf_export.json`` with a fingerprint of
its camera and render settings; a later export keeps views whose files exist and whose fingerprint
matches, and renders only the others. Images are rendered into a staging folder, checked and
moved into place, so a file under ``train/`` is always complete; the transforms files are written
atomically after the last view, and removed before an image they describe is replaced by a
different one, so a transforms file never pairs a pose with another view's image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import bpy
import numpy as np

from ..nerf_engine.data.dataset import SPLITS, transforms_dict
from ..nerf_engine.data.fileio import write_json_atomic
from ..nerf_engine.data.images import image_size
from ..scene import blender_render, geometry, scene_io
from ..scene.blender_render import (
    PASS_PREFIX,
    SceneState,
    check_engine,
    configure_passes,
    configure_pinhole,
    configure_render,
    hide_ours,
    render_notes,
    set_render_size,
)
from ..scene.paths import GENERATOR
from ..scene.scene_io import SceneError
from ..scene.shots import Shot
from .plan import ExportPlan, RigLens, build_plan
from .sparse import stale_files, write_sparse

MANIFEST = ".nerf_export.json"
STAGING = ".nerf_staging"
NO_HIT_DEPTH = 1e9  # Blender writes 1e10 where a ray hits nothing


class ExportJob:
    """One export in progress; create it with :meth:`start`."""

    def __init__(self, context: bpy.types.Context, plan: ExportPlan, *, overwrite: bool = False):
        self.plan = plan
        self.scene = context.scene
        self.view_layer = context.view_layer
        self.state = SceneState(self.scene)
        self.overwrite = overwrite
        self.keep_blur = self.scene.nerf.keep_blur
        self.position = 0  # index of the next view to look at
        self.rendered = 0
        self.kept = 0
        self.finished = False
        self.closed = False
        self.removed_splits: list[str] = []
        self.retired: list[str] = []  # files describing images that change (transforms, COLMAP)
        self.sparse_note = ""  # what write_sparse wrote, for the report
        self.rig_camera: bpy.types.Object | None = None
        self.staging = plan.root / STAGING
        self._manifest = _read_manifest(plan.root / MANIFEST)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    @classmethod
    def start(cls, context: bpy.types.Context) -> ExportJob:
        """Plan the export from ``scene.nerf`` and prepare the scene. Raises SceneError."""
        plan = build_plan(context)
        return cls(context, plan, overwrite=context.scene.nerf.overwrite)

    @property
    def total(self) -> int:
        return len(self.plan.views)

    @property
    def progress(self) -> float:
        return 1.0 if self.finished else self.position / max(1, self.total)

    def step(self) -> bool:
        """Render the next view not already on disk; after the last one write the transforms
        files. Returns True while views remain."""
        if self.finished or self.closed:
            return False
        while self.position < self.total:
            view = self.plan.views[self.position]
            self.position += 1
            fingerprint = self._fingerprint(view)
            if not self.overwrite and self._is_done(view, fingerprint):
                self.kept += 1
                continue
            with _writing(f"view {view.name}", self.plan.root):
                self._render(view, fingerprint)
                self._record(view, fingerprint)
            self.rendered += 1
            if self.position < self.total:
                self._show_status()
                return True
        with _writing("the transforms files", self.plan.root):
            self._write_dataset()
        with _writing("the COLMAP model and points", self.plan.root):
            train = [(v, self._outputs(v)) for v in self.plan.views if v.split == "train"]
            self.sparse_note = write_sparse(
                self.plan.root, train, colmap=self.plan.colmap, points=self.plan.points
            )
        self.finished = True
        self._show_status()
        return False

    def run(self) -> None:
        """Render everything (the headless path)."""
        while self.step():
            pass

    def close(self) -> list[str]:
        """Put the scene back and remove temporary files; safe to call more than once."""
        if self.closed:
            return []
        self.closed = True
        problems = self.state.restore()
        shutil.rmtree(self.staging, ignore_errors=True)
        settings = self.scene.nerf
        settings.job_running = False
        if not self.finished:
            settings.job_status = f"Stopped after {self.position} of {self.total} views"
        return problems

    def failure_note(self) -> str:
        """What an export that stopped early left behind, for its error report."""
        if not self.retired or self.finished:
            return ""
        return (
            f" The dataset is incomplete: {', '.join(self.retired)} were removed because their "
            "images were being replaced; export again to finish it (finished views are kept)."
        )

    def summary(self) -> str:
        counts = {s: sum(v.split == s for v in self.plan.views) for s in SPLITS}
        text = (
            f"Exported {self.total} views to '{self.plan.root}' (train {counts['train']}, "
            f"val {counts['val']}, test {counts['test']}): rendered {self.rendered}"
        )
        if self.kept:
            text += f", resumed: kept {self.kept} views already rendered"
        if self.removed_splits:
            text += f"; removed the now empty {', '.join(self.removed_splits)}"
        if self.plan.left_out:
            names = ", ".join(f"'{name}'" for name in self.plan.left_out)
            text += (
                f"; left out what the NeRF add-on made ({names}: not the subject, not in the "
                "images; Include NeRF Results puts it in)"
            )
        background = self.plan.background_note()
        notes = [note for note in (background, self.sparse_note) if note]
        return " ".join([text + ".", *render_notes(self.state), *notes, self.plan.subject_text])

    # --- setup -----------------------------------------------------------------------------

    def _setup(self) -> None:
        settings = self.scene.nerf
        settings.job_running = True
        settings.job_progress = 0.0
        settings.job_status = f"Exporting {self.total} views"
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        check_engine(self.state, use_cycles=settings.cycles_without_gpu, who="the export")
        configure_render(
            self.state, self.view_layer, transparent=self.plan.transparent, keep_blur=self.keep_blur
        )
        if not self.plan.include_ours:
            hide_ours(self.state, self.scene)
        subject = [bpy.data.objects[name] for name in self.plan.subject]
        configure_passes(
            self.state,
            self.view_layer,
            subject,
            self.staging,
            depth=self.plan.depth,
            mask=self.plan.mask,
        )
        if self.plan.rig_lens is not None:
            self.rig_camera = self._make_rig_camera(self.plan.rig_lens)

    def _make_rig_camera(self, lens: RigLens) -> bpy.types.Object:
        camera = scene_io.new_camera(
            ".nerf_rig_camera", self.scene.collection, "Export Dataset", **asdict(lens)
        )
        self.state.created(bpy.data.cameras, camera.data)  # removed after the object
        return self.state.created(bpy.data.objects, camera)

    # --- one view --------------------------------------------------------------------------

    def _outputs(self, view: Shot) -> dict[str, Path]:
        base = self.plan.root / view.name
        outputs = {"image": base.with_name(base.name + ".png")}
        if self.plan.depth:
            outputs["depth"] = base.with_name(base.name + "_depth.exr")
        if self.plan.mask:
            outputs["mask"] = base.with_name(base.name + "_mask.png")
        return outputs

    def _render(self, view: Shot, fingerprint: str) -> None:
        scene = self.scene
        if view.frame is not None and view.frame != scene.frame_current:
            scene.frame_set(view.frame)
        camera = self._camera_for(view)
        configure_pinhole(self.state, camera, keep_blur=self.keep_blur)
        self.state.set(scene, "camera", camera)
        set_render_size(self.state, view.intrinsics.w, view.intrinsics.h)
        for stale in self.staging.iterdir():
            stale.unlink()
        image = self.staging / "image.png"
        self.state.set(scene.render, "filepath", str(image))
        result = blender_render.render_still(scene)
        if "FINISHED" not in result or not image.is_file():
            raise SceneError(
                f"Blender did not render view {view.name} ({result}); see the system console."
            )
        blender_render.check_rendered_png(image, f"view {view.name}")
        self._check_size(image, view)
        outputs = self._outputs(view)
        self._retire_stale_transforms(view, fingerprint, outputs)
        outputs["image"].parent.mkdir(parents=True, exist_ok=True)
        if self.plan.depth:
            self._save_depth(view, outputs["depth"])
        if self.plan.mask:
            os.replace(self._pass_file("mask"), outputs["mask"])
        os.replace(image, outputs["image"])  # last: the image marks the view as complete

    def _retire_stale_transforms(
        self, view: Shot, fingerprint: str, outputs: dict[str, Path]
    ) -> None:
        """Before an image that the existing transforms files describe is replaced by a
        different one, remove those files: until this export writes new ones, no transforms file
        may pair the old poses with new images (the manifest keeps what is finished; exporting
        again resumes)."""
        if self.retired or not any(path.exists() for path in outputs.values()):
            return
        if self._manifest.get(view.name) == fingerprint:
            return  # the same view rendered again (Re-render Existing): the files stay true
        paths = [self.plan.root / f"transforms_{split}.json" for split in SPLITS]
        for path in [p for p in paths if p.is_file()] + stale_files(self.plan.root):
            path.unlink()
            self.retired.append(path.relative_to(self.plan.root).as_posix())

    def _camera_for(self, view: Shot) -> bpy.types.Object:
        if view.camera is None:
            scene_io.set_camera_pose(self.rig_camera, view.camera_to_world)
            return self.rig_camera
        camera = bpy.data.objects.get(view.camera)
        if camera is None:
            raise SceneError(f"Camera '{view.camera}' was deleted during the export.")
        return camera

    def _check_size(self, image: Path, view: Shot) -> None:
        size = image_size(image)
        expected = (view.intrinsics.w, view.intrinsics.h)
        if size != expected:
            raise SceneError(
                f"View {view.name} rendered at {size[0]}×{size[1]} instead of "
                f"{expected[0]}×{expected[1]}; turn off render region or crop and export again."
            )

    def _pass_file(self, name: str) -> Path:
        found = sorted(self.staging.glob(f"{PASS_PREFIX}{name}*"))
        if not found:
            raise SceneError(
                f"The compositor did not write the {name} pass; check that the render engine "
                f"supports it ({self.scene.render.engine})."
            )
        return found[-1]

    def _save_depth(self, view: Shot, target: Path) -> None:
        planar = scene_io.read_image(self._pass_file("depth"))[..., 0].astype(np.float64)
        hit = planar < NO_HIT_DEPTH
        distance = np.where(hit, geometry.planar_to_ray_distance(planar, view.intrinsics), 0.0)
        tmp = self.staging / "depth.exr"
        scene_io.write_exr(tmp, distance.astype(np.float32))
        os.replace(tmp, target)

    # --- resume and results ----------------------------------------------------------------

    def _fingerprint(self, view: Shot) -> str:
        key = {
            "pose": np.round(view.camera_to_world, 6).tolist(),
            "intrinsics": {k: round(v, 6) for k, v in view.intrinsics.to_dict().items()},
            "frame": view.frame,
            "camera": view.camera,
            "engine": self.scene.render.engine,
            "transparent": self.plan.transparent,
            "depth": self.plan.depth,
            "mask": self.plan.mask,
            "include_ours": self.plan.include_ours,
        }
        if self.keep_blur:  # only then: views of earlier exports keep their fingerprints
            key["blur"] = True
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def _is_done(self, view: Shot, fingerprint: str) -> bool:
        if self._manifest.get(view.name) != fingerprint:
            return False
        return all(path.is_file() for path in self._outputs(view).values())

    def _record(self, view: Shot, fingerprint: str) -> None:
        self._manifest[view.name] = fingerprint
        write_json_atomic(
            self.plan.root / MANIFEST, {"generator": GENERATOR, "views": self._manifest}
        )

    def _show_status(self) -> None:
        settings = self.scene.nerf
        settings.job_progress = self.progress
        if self.finished:
            settings.job_status = self.summary()
        else:
            settings.job_status = f"Rendered {self.position} of {self.total} views"

    def _write_dataset(self) -> None:
        plan = self.plan
        extra = {"camera_model": "PINHOLE", "generator": GENERATOR}
        if plan.depth:
            extra |= {"depth_convention": "distance_along_ray", "depth_unit_scale_factor": 1.0}
        for split in SPLITS:
            views = [v for v in plan.views if v.split == split]
            path = plan.root / f"transforms_{split}.json"
            if not views:
                if path.is_file():
                    path.unlink()
                    self.removed_splits.append(path.name)
                continue
            frames = [v.to_frame() for v in views]
            data = transforms_dict(
                frames, aabb=plan.aabb, near=plan.near, far=plan.far, extra=extra
            )
            for entry, view in zip(data["frames"], views, strict=True):
                outputs = self._outputs(view)
                # The subject mask has a key of its own: nerfstudio reads mask_path as pixels to
                # ignore (0), which would drop the background from training.
                for key, kind in (("depth_file_path", "depth"), ("object_mask_path", "mask")):
                    if kind in outputs:
                        entry[key] = outputs[kind].relative_to(plan.root).as_posix()
            write_json_atomic(path, data)


@contextlib.contextmanager
def _writing(what: str, root: Path):
    """Turn a failed file operation into a SceneError that names the file and the cause."""
    try:
        yield
    except OSError as exc:
        if exc.strerror is None:  # already explained (the engine's OutputError names the file)
            raise SceneError(f"Could not write {what}: {exc}") from exc
        where = f" ({exc.filename})" if exc.filename else ""
        raise SceneError(
            f"Could not write {what} into '{root}': {exc.strerror}{where}; "
            "check the folder's permissions and free space."
        ) from exc


def _read_manifest(path: Path) -> dict[str, str]:
    """Views finished by an earlier export of this folder (empty when there is none)."""
    try:
        views = json.loads(path.read_text(encoding="utf-8")).get("views", {})
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(views, dict):
        return {}
    return {k: v for k, v in views.items() if isinstance(k, str) and isinstance(v, str)}
