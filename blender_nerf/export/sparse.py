"""Export's "Also Write COLMAP" and "Points for Splatting": a COLMAP text model of the training
views (``sparse/0/``) and ``points3d.ply``, written after the transforms files from the files the
export wrote (so a resumed export writes them the same way).

The points are the training views' pixels back-projected to their exported depth
(``nerf_engine.data.point_cloud``: at most 100 000, an equal share per view); with both options on,
``points3D.txt`` holds the same points, each observed by the view and pixel that made it. Held-out
views (val, test) are left out of both: a splatting tool trains on every image of the model.
Image names are relative to the dataset folder (``train/r_0.png``); docs/formats.md says which
image folder each tool wants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..nerf_engine.data import point_cloud
from ..nerf_engine.data.colmap import MODEL_FOLDER, ColmapView, write_colmap_text
from ..nerf_engine.data.fileio import make_dir
from ..scene import scene_io
from ..scene.scene_io import SceneError
from ..scene.shots import Shot


def stale_files(root: Path) -> list[Path]:
    """The files this module writes that exist in ``root`` (removed by Export before it replaces
    an image they describe)."""
    model = root.joinpath(*MODEL_FOLDER)
    files = [model / name for name in ("cameras.txt", "images.txt", "points3D.txt")]
    return [p for p in [*files, root / point_cloud.PLY_NAME] if p.is_file()]


def write_sparse(
    root: Path, views: list[tuple[Shot, dict[str, Path]]], *, colmap: bool, points: bool
) -> str:
    """Write what was asked for the training ``views`` (each with its output files: ``image`` and,
    for points, ``depth``); returns a sentence for the export's report ("" when nothing was
    asked). Raises SceneError when a file cannot be read, OutputError when one cannot be written.
    """
    if not (colmap or points) or not views:
        return ""
    cloud = _observations(views) if points else None
    written = []
    if points:
        point_cloud.write_ply(root / point_cloud.PLY_NAME, cloud.xyz, cloud.rgb)
        written.append(f"{point_cloud.PLY_NAME} ({len(cloud.xyz)} points from the depth)")
    if colmap:
        model = make_dir(root.joinpath(*MODEL_FOLDER))
        colmap_views = [
            ColmapView(files["image"].relative_to(root).as_posix(), shot.camera_to_world,
                       shot.intrinsics)
            for shot, files in views
        ]  # fmt: skip
        write_colmap_text(model, colmap_views, cloud)
        points_note = "with the same points" if cloud is not None else "without points"
        written.append(
            f"a COLMAP model of the {len(views)} training views in "
            f"{'/'.join(MODEL_FOLDER)}/ ({points_note}; images relative to the dataset folder)"
        )
    return "Also wrote " + " and ".join(written) + "."


def _observations(views: list[tuple[Shot, dict[str, Path]]]):
    """Back-project each view's share of surface pixels; colours from its image."""
    rng = np.random.default_rng(point_cloud.SEED)
    shares = point_cloud.view_shares(len(views))
    per_view = []
    for (shot, files), share in zip(views, shares, strict=True):
        distance = _read(files["depth"], shot)[..., 0]
        rows, cols = point_cloud.surface_pixels(distance, share, rng)
        xyz, pixel = point_cloud.backproject(
            shot.intrinsics, shot.camera_to_world, distance, rows, cols
        )
        rgb = point_cloud.to_uint8(_read(files["image"], shot)[rows, cols, :3])
        per_view.append((xyz, rgb, pixel))
    cloud = point_cloud.gather(per_view)
    if len(cloud.xyz) == 0:
        raise SceneError(
            "Points for Splatting found no surface in the depth of the training views (every "
            "pixel sees the background); check that the subject is in view, or turn the option "
            "off."
        )
    return cloud


def _read(path: Path, shot: Shot) -> np.ndarray:
    """An exported file's pixels [h, w, channels], checked against the view's size."""
    try:
        pixels = scene_io.read_image(path)
    except RuntimeError as exc:  # Blender cannot open it
        raise SceneError(
            f"Cannot read '{path}' for the points ({exc}); export again with Re-render Existing."
        ) from exc
    k = shot.intrinsics
    if pixels.shape[:2] != (k.h, k.w):
        raise SceneError(
            f"'{path}' is {pixels.shape[1]}×{pixels.shape[0]} pixels, not the view's "
            f"{k.w}×{k.h}; export again with Re-render Existing."
        )
    return pixels
