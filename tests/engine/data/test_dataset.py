"""transforms_*.json reading (NeRF-synthetic, instant-ngp, nerfstudio), writing and round trips.

Every test writes its own tiny dataset in ``tmp_path``. Malformed input: test_dataset_errors.py.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerf_engine.data.cameras import Intrinsics, look_at
from nerf_engine.data.dataset import (
    DatasetError,
    Frame,
    available_splits,
    read_split,
    read_transforms,
    transforms_dict,
    write_transforms,
)


def png(root: Path, rel: str, w: int = 4, h: int = 3) -> Path:
    """A tiny RGBA PNG at ``root/rel``."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 4), 200, np.uint8)).save(path)
    return path


def pose(x: float = 0.0) -> list[list[float]]:
    c2w = look_at((x, -4.0, 1.0), (0.0, 0.0, 0.0))
    return c2w.tolist()


def dump(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, indent=1))
    return path


def one_frame_file(root: Path, file_path: str = "a", **top) -> Path:
    """``root/t.json`` with one frame and ``top`` as the top-level keys."""
    frames = [{"file_path": file_path, "transform_matrix": pose()}]
    return dump(root / "t.json", {"camera_angle_x": 1.0, **top, "frames": frames})


def test_nerf_synthetic_splits_take_the_image_size_from_the_png(tmp_path):
    angle = 0.6911112070083618  # the lego scene's camera_angle_x
    for n, split in enumerate(("train", "val", "test")):
        frames = []
        for i in range(n + 1):
            png(tmp_path, f"{split}/r_{i}.png", w=6, h=4)
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": pose(i)})
        dump(tmp_path / f"transforms_{split}.json", {"camera_angle_x": angle, "frames": frames})
    assert available_splits(tmp_path) == ["train", "val", "test"]
    fl = 0.5 * 6 / math.tan(0.5 * angle)
    for n, split in enumerate(("train", "val", "test")):
        data = read_split(tmp_path, split)
        assert data.name == split and len(data.frames) == n + 1
        assert data.aabb is None and data.near is None and data.far is None
        for i, frame in enumerate(data.frames):
            assert frame.intrinsics == Intrinsics(fl_x=fl, fl_y=fl, cx=3.0, cy=2.0, w=6, h=4)
            assert frame.image_path == (tmp_path / f"{split}/r_{i}.png").resolve()
            assert frame.file_path == f"./{split}/r_{i}"
            np.testing.assert_allclose(frame.camera_to_world, pose(i), atol=1e-12)


def ngp_file(root: Path) -> dict:
    for i in range(4):
        png(root, f"images/{i}.png", w=8, h=6)
    top = {"fl_x": 10.0, "fl_y": 12.0, "cx": 4.5, "cy": 2.5, "w": 8, "h": 6, "aabb_scale": 4}
    frames = [{"file_path": f"images/{i}.png", "transform_matrix": pose(i)} for i in range(4)]
    frames[1].update(fl_x=20.0, cx=3.0)  # overrides two values, inherits the rest
    frames[2]["camera_angle_x"] = 1.0  # its own field of view, nothing else
    frames[3].update(fl_y=30.0, w=8, h=6)
    return {**top, "frames": frames}


def test_instant_ngp_intrinsics_per_frame_values_win(tmp_path):
    data = read_transforms(dump(tmp_path / "transforms.json", ngp_file(tmp_path)))
    got = [f.intrinsics for f in data.frames]
    assert got[0] == Intrinsics(fl_x=10.0, fl_y=12.0, cx=4.5, cy=2.5, w=8, h=6)
    assert got[1] == Intrinsics(fl_x=20.0, fl_y=12.0, cx=3.0, cy=2.5, w=8, h=6)
    assert got[3] == Intrinsics(fl_x=10.0, fl_y=30.0, cx=4.5, cy=2.5, w=8, h=6)


def test_a_frames_own_field_of_view_is_not_shadowed_by_the_files_focal_lengths(tmp_path):
    frame = read_transforms(dump(tmp_path / "transforms.json", ngp_file(tmp_path))).frames[2]
    assert frame.intrinsics.fl_x == pytest.approx(0.5 * 8 / math.tan(0.5))
    assert frame.intrinsics.camera_angle_x == pytest.approx(1.0)
    # Key by key, as instant-ngp reads it: nothing in the frame replaces the file's fl_y.
    assert (frame.intrinsics.fl_y, frame.intrinsics.cx) == (12.0, 4.5)


def test_camera_angle_y_gives_fl_y_and_zero_distortion_is_accepted(tmp_path):
    png(tmp_path, "a.png", w=8, h=6)
    path = one_frame_file(tmp_path, camera_angle_y=0.5, camera_model="OPENCV", k1=0, p2=0.0)
    intr = read_transforms(path).frames[0].intrinsics
    assert intr.fl_x == pytest.approx(4 / math.tan(0.5))
    assert intr.fl_y == pytest.approx(3 / math.tan(0.25))


@pytest.mark.parametrize(
    "file_path",
    ["./train/r_0", "train/r_0.png", "./train/r_0.png", "train\\r_0", ".\\train\\r_0.png"],
)
def test_file_path_with_or_without_extension_and_either_slash(tmp_path, file_path):
    png(tmp_path, "train/r_0.png")
    png(tmp_path, "train/r_0.jpg.png")  # a decoy: only the exact name or name + suffix may match
    path = one_frame_file(tmp_path, file_path)
    assert read_transforms(path).frames[0].image_path == (tmp_path / "train/r_0.png").resolve()


def test_file_path_extension_other_than_png_is_found(tmp_path):
    Image.new("RGB", (5, 3)).save(tmp_path / "v.jpg")
    frame = read_transforms(one_frame_file(tmp_path, "v")).frames[0]
    assert frame.image_path.name == "v.jpg" and (frame.intrinsics.w, frame.intrinsics.h) == (5, 3)


def single_file(root: Path, n: int, **lists) -> Path:
    for i in range(n):
        png(root, f"images/f{i}.png")
    frames = [{"file_path": f"images/f{i}.png", "transform_matrix": pose(i)} for i in range(n)]
    return dump(root / "transforms.json", {"camera_angle_x": 1.0, **lists, "frames": frames})


def split_names(root: Path, split: str) -> list[str]:
    return [Path(f.file_path).stem for f in read_split(root, split).frames]


def test_plain_transforms_json_holds_out_every_8th_frame(tmp_path):
    single_file(tmp_path, 17)
    assert available_splits(tmp_path) == ["train", "val", "test"]
    assert split_names(tmp_path, "test") == ["f0", "f8", "f16"]
    assert split_names(tmp_path, "val") == ["f0", "f8", "f16"]
    train = split_names(tmp_path, "train")
    assert len(train) == 14 and not {"f0", "f8", "f16"} & set(train)


def test_nerfstudio_filename_lists_pick_the_splits(tmp_path):
    lists = {
        "train_filenames": ["images/f0.png", "images/f2.png", "./images/f3"],
        "val_filenames": ["images/f4.png"],
        "test_filenames": ["images/f1.png"],
    }
    single_file(tmp_path, 5, **lists)
    assert split_names(tmp_path, "train") == ["f0", "f2", "f3"]
    assert split_names(tmp_path, "val") == ["f4"]
    assert split_names(tmp_path, "test") == ["f1"]


def test_nerfstudio_lists_missing_val_uses_test_and_missing_train_takes_the_rest(tmp_path):
    single_file(tmp_path, 5, test_filenames=["images/f1.png", "images/f3.png"])
    assert split_names(tmp_path, "val") == ["f1", "f3"]
    assert split_names(tmp_path, "test") == ["f1", "f3"]
    assert split_names(tmp_path, "train") == ["f0", "f2", "f4"]


def test_3x4_matrices_and_scaled_rotations_are_read_as_rigid_4x4(tmp_path):
    png(tmp_path, "a.png")
    c2w = np.array(pose(1.0))
    scaled = c2w.copy()
    scaled[:3, :3] *= [2.0, 3.0, 0.5]  # a camera object with non-uniform scale
    tiny = c2w.copy()
    tiny[:3, :3] *= 1e-4  # a scene in small units: its det is 1e-12, still a valid camera
    matrices = [c2w[:3].tolist(), scaled.tolist(), tiny.tolist()]
    frames = [{"file_path": "a", "transform_matrix": m} for m in matrices]
    data = read_transforms(dump(tmp_path / "t.json", {"camera_angle_x": 1, "frames": frames}))
    for frame in data.frames:
        assert frame.camera_to_world.shape == (4, 4)
        np.testing.assert_allclose(frame.camera_to_world, c2w, atol=1e-12)
    assert data.poses().shape == (3, 4, 4)


def test_aabb_near_far_are_parsed(tmp_path):
    png(tmp_path, "a.png")
    aabb = [[-1, -2, -3], [1, 2, 3.5]]
    data = read_transforms(one_frame_file(tmp_path, aabb=aabb, near=0.5, far=6))
    np.testing.assert_array_equal(data.aabb, [[-1, -2, -3], [1, 2, 3.5]])
    assert (data.near, data.far) == (0.5, 6.0)


def test_mixed_image_sizes_without_declared_size_give_each_frame_its_own_camera(tmp_path):
    png(tmp_path, "a.png", w=4, h=3)
    png(tmp_path, "b.png", w=10, h=7)
    frames = [{"file_path": n, "transform_matrix": pose()} for n in "ab"]
    data = read_transforms(dump(tmp_path / "t.json", {"camera_angle_x": 1.0, "frames": frames}))
    a, b = (f.intrinsics for f in data.frames)
    assert (a.w, a.h, a.cx, a.cy) == (4, 3, 2.0, 1.5)
    assert (b.w, b.h, b.cx, b.cy) == (10, 7, 5.0, 3.5)
    assert a.camera_angle_x == pytest.approx(1.0) and b.camera_angle_x == pytest.approx(1.0)


def test_json_with_a_byte_order_mark_is_read(tmp_path):
    png(tmp_path, "a.png")
    path = one_frame_file(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Windows Notepad saves UTF-8
    assert len(read_transforms(path).frames) == 1


# --- writing and round trips -------------------------------------------------------------------


def frames_for(root: Path, intrinsics: list[Intrinsics], with_images: bool = True) -> list[Frame]:
    frames = []
    for i, intr in enumerate(intrinsics):
        if with_images:
            png(root, f"train/r_{i}.png", intr.w, intr.h)
        file_path = f"./train/r_{i}" if with_images else None
        frames.append(Frame(np.array(pose(0.3 * i)), intr, file_path))
    return frames


def assert_same_frames(read: tuple[Frame, ...], written: list[Frame]) -> None:
    assert len(read) == len(written)
    for got, want in zip(read, written, strict=True):
        np.testing.assert_allclose(got.camera_to_world, want.camera_to_world, atol=1e-12)
        for key, value in want.intrinsics.to_dict().items():
            assert getattr(got.intrinsics, key) == pytest.approx(value, rel=1e-12), key
        assert got.file_path == want.file_path


def test_round_trip_with_shared_intrinsics_is_readable_by_the_original_nerf_code(tmp_path):
    written = frames_for(tmp_path, [Intrinsics(fl_x=9.5, fl_y=9.5, cx=3.0, cy=2.0, w=6, h=4)] * 3)
    path = tmp_path / "transforms_train.json"
    write_transforms(path, written, aabb=np.array([[-1, -1, -1], [1, 1, 1]]), near=1.0, far=5.0)
    data = read_transforms(path)
    assert_same_frames(data.frames, written)
    assert (data.near, data.far) == (1.0, 5.0) and data.aabb.tolist() == [[-1, -1, -1], [1, 1, 1]]
    # What load_blender_data() in the original NeRF code does with the file:
    meta = json.loads(path.read_text())
    focal = 0.5 * 6 / np.tan(0.5 * float(meta["camera_angle_x"]))
    assert focal == pytest.approx(9.5)
    for frame in meta["frames"]:
        assert os.path.isfile(os.path.join(tmp_path, frame["file_path"] + ".png"))
        assert np.array(frame["transform_matrix"]).shape == (4, 4)


def test_round_trip_with_per_frame_intrinsics(tmp_path):
    cams = [
        Intrinsics(fl_x=9.5, fl_y=9.5, cx=3.0, cy=2.0, w=6, h=4),
        Intrinsics(fl_x=20.0, fl_y=21.0, cx=4.2, cy=1.7, w=8, h=3),
    ]
    written = frames_for(tmp_path, cams)
    write_transforms(tmp_path / "t.json", written)
    assert_same_frames(read_transforms(tmp_path / "t.json").frames, written)
    meta = json.loads((tmp_path / "t.json").read_text())
    assert "camera_angle_x" in meta and all(len(f["transform_matrix"]) == 4 for f in meta["frames"])


def test_round_trip_of_a_camera_file_without_images(tmp_path):
    written = frames_for(tmp_path, [Intrinsics.from_fov(0.8, 64, 48)] * 2, with_images=False)
    write_transforms(tmp_path / "cameras.json", written)
    data = read_transforms(tmp_path / "cameras.json", require_images=False)
    assert_same_frames(data.frames, written)
    assert all(f.image_path is None for f in data.frames)
    with pytest.raises(DatasetError, match="frame 0, key 'file_path'"):
        read_transforms(tmp_path / "cameras.json")  # training data must have images


def test_camera_file_may_name_images_that_do_not_exist_yet(tmp_path):
    frames = [Frame(np.eye(4), Intrinsics.from_fov(0.8, 8, 6), "renders/out_0")]
    write_transforms(tmp_path / "cameras.json", frames)
    frame = read_transforms(tmp_path / "cameras.json", require_images=False).frames[0]
    assert frame.file_path == "renders/out_0" and frame.image_path is None


def test_writer_accepts_numpy_scalars_and_3x4_poses(tmp_path):
    intr = Intrinsics(
        fl_x=np.float32(9.5), fl_y=np.float64(9.5), cx=np.float32(3), cy=2.0, w=np.int64(6), h=4
    )
    frame = Frame(np.eye(4)[:3], intr, None)
    write_transforms(tmp_path / "c.json", [frame])
    meta = json.loads((tmp_path / "c.json").read_text())
    assert meta["frames"][0]["transform_matrix"] == np.eye(4).tolist()
    assert (meta["w"], meta["fl_x"]) == (6, 9.5)


@pytest.mark.parametrize("file_path", ["/abs/r_0", "C:\\data\\r_0", "../outside/r_0"])
def test_writer_refuses_file_paths_its_reader_would_refuse(tmp_path, file_path):
    frame = Frame(np.eye(4), Intrinsics.from_fov(0.8, 8, 6), file_path)
    with pytest.raises(ValueError, match="frame 0: file_path"):
        transforms_dict([frame])


def test_failed_write_leaves_the_old_file_and_no_temporary_files(tmp_path):
    good = frames_for(tmp_path, [Intrinsics.from_fov(0.8, 4, 3)])
    path = tmp_path / "transforms_train.json"
    write_transforms(path, good)
    before, listing = path.read_bytes(), sorted(os.listdir(tmp_path))
    bad = Frame(np.full((4, 4), np.nan), good[0].intrinsics, "./train/r_0")
    with pytest.raises(ValueError):
        write_transforms(path, [bad])
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing


def test_extra_frame_keys_round_trip(tmp_path):
    intr = Intrinsics(fl_x=50.0, fl_y=50.0, cx=16.0, cy=12.0, w=32, h=24)
    extra = {"depth_file_path": "depth/r_0.exr", "object_mask_path": "r_0_mask.png", "r": 0.1}
    frames = [Frame(np.eye(4), intr, extra=extra, mask_path="mask/r_0.png"), Frame(np.eye(4), intr)]
    write_transforms(tmp_path / "cameras.json", frames)
    back = read_transforms(tmp_path / "cameras.json", require_images=False)
    assert back.frames[0].extra == extra and back.frames[1].extra == {}
    assert back.frames[0].mask_path == "mask/r_0.png"  # nerfstudio's key: read as itself
    with pytest.raises(ValueError, match="not extra"):
        write_transforms(tmp_path / "bad.json", [Frame(np.eye(4), intr, extra={"w": 3})])
