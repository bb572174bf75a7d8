"""Optional depth (EXR, distance along each ray) and subject mask (PNG) passes."""

from __future__ import annotations

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
OpenEXR = pytest.importorskip("OpenEXR")

from addon_helpers import configure_fast_render, export, read_all, scene_fingerprint  # noqa: E402
from PIL import Image  # noqa: E402

from blender_nerf.nerf_engine.data.cameras import image_rays  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import iter_views, load_rgba  # noqa: E402

GROUND_Z = -1.5


def _ray_hits(frame):
    """Analytic distance along each pixel-centre ray to the cube [-1, 1]³ and to the ground
    plane (z = GROUND_Z, |x|, |y| < 4); inf where a ray misses."""
    rays_o, rays_d = image_rays(frame.intrinsics, frame.camera_to_world)
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (-1 - rays_o) / rays_d, (1 - rays_o) / rays_d
        t_in, t_out = np.minimum(t0, t1).max(-1), np.maximum(t0, t1).min(-1)
        cube = np.where((t_in < t_out) & (t_in > 0), t_in, np.inf)
        t_ground = (GROUND_Z - rays_o[..., 2]) / rays_d[..., 2]
    hit_xy = rays_o + t_ground[..., None] * rays_d
    on_ground = (t_ground > 0) & (np.abs(hit_xy[..., :2]) < 4).all(-1)
    ground = np.where(on_ground, t_ground, np.inf)
    return cube, ground


def _read_exr(path):
    with OpenEXR.File(str(path)) as f:
        channels = f.channels()
        return np.asarray(channels["R"].pixels if "R" in channels else channels["RGBA"].pixels)


def test_depth_and_subject_mask(scene, tmp_path):
    configure_fast_render(scene, size=(64, 48), samples=4)
    bpy.ops.mesh.primitive_plane_add(size=8, location=(0, 0, GROUND_Z))
    bpy.ops.object.select_all(action="DESELECT")
    bpy.data.objects["Cube"].select_set(True)
    bpy.data.objects["Camera"].select_set(True)
    before = scene_fingerprint(scene)
    assert scene.nerf.export_depth  # on by default where Blender writes it (5.0+): not set here
    result = export(
        scene, tmp_path, camera_source="SELECTED", subject="SELECTED", export_mask=True,
        split_val=0, split_test=0,
    )  # fmt: skip
    assert result == {"FINISHED"}
    assert scene_fingerprint(scene) == before  # passes, pass indices, compositor all restored
    raw = json.loads((tmp_path / "transforms_train.json").read_text())
    assert raw["depth_convention"] == "distance_along_ray"
    entry = raw["frames"][0]
    assert entry["depth_file_path"] == "train/r_0_depth.exr"
    # the subject mask under its own key: nerfstudio's mask_path (0 = ignore) would drop the
    # background from training, in nerfstudio and in our engine alike (issue 14, case 10)
    assert entry["object_mask_path"] == "train/r_0_mask.png" and "mask_path" not in entry
    split = read_all(tmp_path)["train"]
    ((_, valid),) = list(iter_views(split))
    assert valid is None and split.frames[0].masks == () and split.notes == ()
    assert np.allclose(split.aabb, [[-1, -1, -1], [1, 1, 1]], atol=1e-3)  # the subject only
    (frame,) = split.frames
    (rgba,) = load_rgba(split)
    depth = _read_exr(tmp_path / entry["depth_file_path"])
    assert depth.shape[:2] == (48, 64)
    depth = depth.reshape(48, 64, -1)[..., 0]
    cube, ground = _ray_hits(frame)
    first = np.minimum(cube, ground)
    # compare away from edges, where a pixel's depth comes from one surface
    solid = _eroded(
        np.isfinite(first) & (rgba[..., 3] == 1) & (np.isfinite(cube) == np.isfinite(cube))
    )
    solid &= _eroded(np.isfinite(cube)) | _eroded(np.isfinite(ground) & ~np.isfinite(cube))
    assert solid.sum() > 200
    assert np.abs(depth[solid] - first[solid]).max() < 1e-3 * first[solid].max()
    assert (depth[~np.isfinite(first) & (rgba[..., 3] == 0)] == 0).all()  # no hit: 0

    with Image.open(tmp_path / entry["object_mask_path"]) as im:
        mask = np.asarray(im.convert("L"), dtype=np.float32) / 255
    on_cube = _eroded(np.isfinite(cube))
    on_ground_only = _eroded(np.isfinite(ground) & ~np.isfinite(cube))
    assert on_cube.sum() > 50 and on_ground_only.sum() > 50
    assert (mask[on_cube] == 1).all()
    assert (mask[on_ground_only] == 0).all()
    assert (rgba[on_ground_only, 3] == 1).all()  # the ground renders, it is just not the subject


def _eroded(region):
    """``region`` shrunk by one pixel (pixels whose 3×3 neighbourhood is all inside)."""
    out = region.copy()
    out[1:-1, 1:-1] = np.all(
        [region[1 + dy : region.shape[0] - 1 + dy, 1 + dx : region.shape[1] - 1 + dx]
         for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0,
    )  # fmt: skip
    out[[0, -1], :] = False
    out[:, [0, -1]] = False
    return out
