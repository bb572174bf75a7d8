"""The NeRF's depth for the compositor, in the convention of Blender's own Z pass.

Render Views writes each view's depth as the engine measures it (``render.json``: a 16-bit PNG,
``value / 65535 * depth_max``, or a float EXR) in scene units, as the **distance along each
pixel's ray**, and 0 where the NeRF is empty. Blender's Z pass (Render Layers > Depth) holds the
**planar depth** along the camera's −Z axis, and 10¹⁰ where nothing was hit. :func:`plan_depths`
checks that every image of an import has its depth, before anything changes;
:func:`planar_depth_image` converts each exactly, per pixel, with the intrinsics the engine
rendered that view with (``cameras.json``), writes ``<name>_z.exr`` beside it (a temporary file,
then renamed) and loads it as a Blender image (a sequence for an animation).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..nerf_engine.data.cameras import Intrinsics
from ..nerf_engine.data.dataset import read_transforms
from ..scene import geometry, scene_io
from ..scene.ours import mark_ours
from ..scene.scene_io import SceneError
from .composite import MAKER
from .plan import CAMERAS_FILE

DEPTH_TAG = "nerf_import_z"  # the camera whose NeRF depth an image holds
SUFFIX = "_z.exr"
NO_HIT = 1e10  # what Blender's Z pass holds where a ray hits nothing
HIT_ALPHA = 1e-3  # below this opacity the engine writes no depth (0)
ADVICE = "turn on Render > Depth and press Render Views again"


@dataclass(frozen=True)
class DepthSource:
    """One view's depth as Render Views wrote it: the file, its scale and its intrinsics."""

    name: str
    path: Path
    depth_max: float | None  # the 16-bit PNG's scale (None: a float EXR in scene units)
    intrinsics: Intrinsics


def plan_depths(folder: Path, names: list[str]) -> list[DepthSource]:
    """The depth of each view in ``names`` (file stems of the NeRF's images in ``folder``);
    raises SceneError naming the view and what to do when one has none."""
    try:
        manifest = json.loads((folder / "render.json").read_text(encoding="utf-8"))
        entries = {v["name"]: v for v in manifest["views"]}
        frames = read_transforms(folder / CAMERAS_FILE, require_images=False).frames
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SceneError(
            f"Render Folder '{folder}' has no readable render.json or {CAMERAS_FILE} ({exc}): "
            "press Render Views again."
        ) from exc
    intrinsics = {frame.file_path: frame.intrinsics for frame in frames}
    sources = []
    for name in names:
        entry = entries.get(name, {})
        path = folder / str(entry.get("depth", ""))
        if "depth" not in entry or not path.is_file() or name not in intrinsics:
            raise SceneError(
                f"The NeRF render '{name}' in '{folder}' has no depth, which Depth Compositing "
                f"needs: {ADVICE}."
            )
        scale = entry.get("depth_max") if path.suffix.lower() == ".png" else None
        sources.append(DepthSource(name, path, scale, intrinsics[name]))
    return sources


def planar_depth(source: DepthSource) -> np.ndarray:
    """[h, w] float32 planar depth (scene units, along the camera's −Z) of one view, 10¹⁰ where
    the NeRF is empty: Blender's Z-pass convention."""
    raw = scene_io.read_image(source.path)[..., 0].astype(np.float64)
    distance = raw * source.depth_max if source.depth_max is not None else raw
    k = source.intrinsics
    if distance.shape != (k.h, k.w):
        raise SceneError(
            f"The depth '{source.path}' is {distance.shape[1]}×{distance.shape[0]}, not the "
            f"{k.w}×{k.h} of its view: {ADVICE}."
        )
    planar = geometry.ray_distance_to_planar(distance, k)
    return np.where(distance > 0.0, planar, NO_HIT).astype(np.float32)


def planar_depth_image(camera: str, sources: list[DepthSource]) -> bpy.types.Image:
    """Write each view's planar depth as ``<name>_z.exr`` and return the Blender image of the
    first (a sequence when there are several), tagged with ``camera`` and reloaded."""
    files = []
    for source in sources:
        target = source.path.parent / f"{source.name}{SUFFIX}"
        tmp = target.with_name(f".{target.stem}.tmp.exr")
        try:
            scene_io.write_exr(tmp, planar_depth(source))
            os.replace(tmp, target)
        except (OSError, RuntimeError) as exc:  # Blender's image save raises RuntimeError
            raise SceneError(
                f"Cannot write the NeRF's depth '{target}' ({exc}): make the Render Folder "
                "writable, or render into another one."
            ) from exc
        files.append(target)
    image = next((im for im in bpy.data.images if im.get(DEPTH_TAG) == camera), None)
    if image is None:
        image = bpy.data.images.load(str(files[0]), check_existing=False)
        image.name = f"NeRF Depth {camera}"
        image[DEPTH_TAG] = camera
        mark_ours(image, MAKER)
    image.source = "SEQUENCE" if len(files) > 1 else "FILE"
    image.filepath = str(files[0])
    image.colorspace_settings.is_data = True
    image.reload()
    return image
