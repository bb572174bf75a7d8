"""Depth maps: read in every convention and unit to the same distances along the rays; missing,
unreadable or mis-sized files refused like images (file, frame, key and what to do)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from nerf_engine.data.dataset import DatasetError, read_split
from nerf_engine.data.depth import planar_to_ray_distance, read_depth
from nerf_engine.data.images import write_exr, write_png16
from nerf_engine.tools.toy_scene import make_toy_dataset


@pytest.fixture(scope="module")
def toy_depth(tmp_path_factory):
    """The toy scene at 16×12 pixels with depth maps (distance along the ray, EXR)."""
    folder = tmp_path_factory.mktemp("toy_depth") / "data"
    return make_toy_dataset(folder, size=(16, 12), n_train=2, n_val=1, n_test=1, depth=True)


def rewrite(folder, tmp_path, top: dict, frame0: dict):
    """A copy of the toy dataset's train split with the top-level and frame-0 keys changed."""
    raw = json.loads((folder / "transforms_train.json").read_text())
    raw.update(top)
    raw["frames"][0].update(frame0)
    for name in ("train",):
        (tmp_path / name).mkdir(exist_ok=True)
        for path in (folder / name).iterdir():
            (tmp_path / name / path.name).write_bytes(path.read_bytes())
    (tmp_path / "transforms_train.json").write_text(json.dumps(raw))
    return read_split(tmp_path, "train")


def test_planar_z_and_along_ray_files_of_one_view_give_the_same_supervision(toy_depth, tmp_path):
    along = read_split(toy_depth, "train")
    distance = read_depth(along, 0)
    assert np.isinf(distance).any() and np.isfinite(distance).any()  # sky and surfaces
    frame = along.frames[0]
    stretch = planar_to_ray_distance(np.ones_like(distance), frame.intrinsics)
    z = np.where(np.isfinite(distance), distance / stretch, np.inf).astype(np.float32)
    write_exr(tmp_path / "train" / "z.exr", {"R": z})
    planar = rewrite(
        toy_depth, tmp_path, {"depth_convention": "z"}, {"depth_file_path": "train/z.exr"}
    )
    np.testing.assert_allclose(read_depth(planar, 0), distance, rtol=1e-6)
    # nerfstudio's 16-bit PNG in millimetres (its default scale), planar: the same to 1 mm
    millimetres = np.where(np.isfinite(z), np.round(z * 1000.0), 0).astype(np.uint16)
    write_png16(tmp_path / "train" / "z.png", millimetres)
    png = rewrite(
        toy_depth, tmp_path, {"depth_convention": "z"}, {"depth_file_path": "train/z.png"}
    )
    from_png = read_depth(png, 0)
    surface = np.isfinite(distance)
    assert np.abs(from_png[surface] - distance[surface]).max() < 1e-3 * stretch.max()
    assert np.isnan(from_png[~surface]).all()  # 0 in a sensor's file: no measurement
    # the same file with its own scale: centimetres
    centimetres = np.where(np.isfinite(z), np.round(z * 100.0), 0).astype(np.uint16)
    write_png16(tmp_path / "train" / "cm.png", centimetres)
    cm = rewrite(
        toy_depth, tmp_path, {"depth_convention": "z", "depth_unit_scale_factor": 0.01},
        {"depth_file_path": "train/cm.png"},
    )  # fmt: skip
    assert np.abs(read_depth(cm, 0)[surface] - distance[surface]).max() < 1e-2 * stretch.max()


def test_our_exports_zero_means_nothing_was_hit(toy_depth, tmp_path):
    distance = read_depth(read_split(toy_depth, "train"), 0)
    zeros = np.where(np.isfinite(distance), distance, 0.0).astype(np.float32)
    write_exr(tmp_path / "train" / "zero.exr", {"R": zeros})
    ours = rewrite(
        toy_depth, tmp_path, {"generator": "blender-nerf"}, {"depth_file_path": "train/zero.exr"}
    )
    np.testing.assert_array_equal(read_depth(ours, 0), distance)
    theirs = rewrite(toy_depth, tmp_path, {"generator": "x"}, {"depth_file_path": "train/zero.exr"})
    assert np.isnan(read_depth(theirs, 0)[~np.isfinite(distance)]).all()


@pytest.mark.parametrize(
    ("top", "frame0", "key", "match"),
    [
        ({}, {"depth_file_path": "train/none.exr"}, "depth_file_path", "not found"),
        ({}, {"depth_file_path": "train/bad.exr"}, "depth_file_path", "re-export"),
        ({}, {"depth_file_path": "train/small.exr"}, "depth_file_path", "is 8×6 but the camera"),
        ({}, {"depth_file_path": "train/grey8.png"}, "depth_file_path", "16-bit"),
        ({}, {"depth_file_path": "../outside.exr"}, "depth_file_path", "outside|inside|\\.\\."),
        ({"depth_convention": "planar"}, {}, "depth_convention", "distance_along_ray"),
        ({"depth_unit_scale_factor": -1}, {}, "depth_unit_scale_factor", "positive"),
    ],
)
def test_bad_depth_files_are_refused_naming_file_frame_and_key(
    toy_depth, tmp_path, top, frame0, key, match
):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "bad.exr").write_bytes(b"\x76\x2f\x31\x01 not really an EXR")
    write_exr(tmp_path / "train" / "small.exr", {"R": np.ones((6, 8), np.float32)})
    from PIL import Image

    Image.fromarray(np.zeros((12, 16), np.uint8)).save(tmp_path / "train" / "grey8.png")
    split = rewrite(toy_depth, tmp_path, top, frame0)
    with pytest.raises(DatasetError) as caught:
        read_depth(split, 0)
    error = caught.value
    assert error.frame == 0 and error.key == key and error.path.name == "transforms_train.json"
    assert re.search(match, str(error), re.IGNORECASE), str(error)
