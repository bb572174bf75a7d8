"""Field case 12: images that are a whole-number downscale of the size the file gives (nerfstudio's
``images_2/``, nerf-pytorch's ``half_res``) — the camera is scaled with them and a note says so;
any other size mismatch is refused with advice that names every key to change."""

from __future__ import annotations

import numpy as np
import pytest
from real_world_helpers import dump, orbit_poses, save_toy

from nerf_engine.data.cameras import Intrinsics, project_points
from nerf_engine.data.dataset import DatasetError, load_rgba, read_split, read_transforms
from nerf_engine.tools.toy_scene import SPHERES

FULL = Intrinsics(56.0, 56.0, 31.0, 25.0, 64, 48)  # the case's full-resolution camera
TOP = {"fl_x": 56.0, "fl_y": 56.0, "cx": 31.0, "cy": 25.0, "w": 64, "h": 48}


def images_n(root, factor: int, suffix: str = ".png", n: int = 3, size=None) -> list[dict]:
    """Views rendered at 1/factor of FULL into images_<factor>/, with their frames."""
    w, h = size or (FULL.w // factor, FULL.h // factor)
    small = FULL.scaled(w, h)
    frames = []
    for i, pose in enumerate(orbit_poses(n)):
        rel = f"images_{factor}/frame_{i:05d}{suffix}"
        save_toy(root / rel, small, pose)
        frames.append({"file_path": rel, "transform_matrix": pose.tolist()})
    return frames


def test_half_size_images_get_the_half_size_camera_and_a_note(tmp_path):
    """The case's right value: fl_x = fl_y = 28, cx = 15.5, cy = 12.5 for 32×24 images, and the
    toy scene's spheres project where the images show them."""
    frames = images_n(tmp_path, 2)
    dump(tmp_path / "transforms.json", {**TOP, "frames": frames})
    split = read_split(tmp_path, "train")
    k = split.frames[0].intrinsics
    assert (k.fl_x, k.fl_y, k.cx, k.cy, k.w, k.h) == (28.0, 28.0, 15.5, 12.5, 32, 24)
    (note,) = split.notes
    assert "1/2 of the size" in note and "fl_x, fl_y, cx and cy were scaled" in note
    assert [im.shape for im in load_rgba(split)] == [(24, 32, 4)] * len(split.frames)
    true_half = FULL.scaled(32, 24)
    centres = np.array([s.center for s in SPHERES])
    for frame in split.frames:
        got, _ = project_points(centres, k, frame.camera_to_world)
        want, _ = project_points(centres, true_half, frame.camera_to_world)
        assert np.abs(got - want).max() < 1e-9


@pytest.mark.parametrize("suffix", [".jpg", ".exr"])
def test_quarter_size_jpg_and_exr_images_and_split_files(tmp_path, suffix):
    frames = images_n(tmp_path, 4, suffix)
    dump(tmp_path / "transforms_train.json", {**TOP, "frames": frames})
    split = read_split(tmp_path, "train")
    k = split.frames[0].intrinsics
    assert (k.fl_x, k.cx, k.cy, k.w, k.h) == (14.0, 7.75, 6.25, 16, 12)
    assert "1/4 of the size" in split.notes[0]
    assert load_rgba(split)[0].shape == (12, 16, 4)


def test_per_frame_intrinsics_are_scaled_frame_by_frame(tmp_path):
    frames = images_n(tmp_path, 2, n=2)
    frames[0].update(TOP)  # full-size camera on the frame, half-size image
    frames[1].update({**TOP, "w": 32, "h": 24, "fl_x": 28.0, "fl_y": 28.0, "cx": 15.5, "cy": 12.5})
    dump(tmp_path / "transforms.json", {"frames": frames})
    split = read_transforms(tmp_path / "transforms.json")
    assert [f.intrinsics for f in split.frames] == [FULL.scaled(32, 24)] * 2
    assert "1 image(s) are 1/2" in split.notes[0]


def test_odd_sizes_rounded_either_way_are_downscales(tmp_path):
    """65×49 halved is 32.5×24.5: ffmpeg, Pillow and nerfstudio round differently."""
    top = {**TOP, "w": 65, "h": 49}
    for size in ((32, 24), (33, 25)):
        frames = images_n(tmp_path / str(size), 2, n=1, size=size)
        dump(tmp_path / str(size) / "transforms.json", {**top, "frames": frames})
        k = read_transforms(tmp_path / str(size) / "transforms.json").frames[0].intrinsics
        assert (k.w, k.h) == size
        assert k.fl_x == pytest.approx(56.0 * size[0] / 65)  # the image's own extent
        assert k.cy == pytest.approx(25.0 * size[1] / 49)


@pytest.mark.parametrize("size", [(48, 36), (128, 96), (32, 32)], ids=["3/4", "2x", "aspect"])
def test_other_sizes_are_refused_naming_every_key_to_scale(tmp_path, size):
    """Following the advice must give the right camera: it names fl_x, fl_y, cx, cy with w, h."""
    frames = images_n(tmp_path, 2, n=2, size=size)
    dump(tmp_path / "transforms.json", {**TOP, "frames": frames})
    with pytest.raises(DatasetError) as info:
        read_split(tmp_path, "train")
    message = str(info.value)
    assert info.value.key == "w" and info.value.frame == 1  # (frame 0 is held out for val)
    assert f"is {size[0]}×{size[1]} but the camera says 64×48" in message
    assert all(key in message for key in ("fl_x", "fl_y", "cx", "cy", "w and h")), message


def test_images_of_the_declared_size_are_untouched_and_give_no_note(tmp_path):
    frames = images_n(tmp_path, 1, n=2, size=(64, 48))
    dump(tmp_path / "transforms.json", {**TOP, "frames": frames})
    split = read_transforms(tmp_path / "transforms.json")
    assert split.frames[0].intrinsics == FULL and split.notes == ()


def test_camera_files_and_import_reading_keep_the_declared_camera(tmp_path):
    """Without image sizes (Import Cameras inside Blender) the file's camera is kept: the same
    field of view at the declared size."""
    frames = images_n(tmp_path, 2, n=1)
    dump(tmp_path / "transforms.json", {**TOP, "frames": frames})
    split = read_transforms(tmp_path / "transforms.json", require_images=False, image_sizes=False)
    assert split.frames[0].intrinsics == FULL and split.notes == ()


def test_a_principal_point_off_the_image_is_a_warning(tmp_path):
    """The case's second step: w/h set to the images' size but fl_x, cx, cy left at full size (the
    old advice) — a camera no converter writes; a note says which keys to scale."""
    frames = images_n(tmp_path, 2, n=2)
    dump(tmp_path / "transforms.json", {**TOP, "w": 32, "h": 24, "frames": frames})
    split = read_transforms(tmp_path / "transforms.json")
    (note,) = split.notes
    assert "(cx 31, cy 25) of 2 frame(s) lies outside their 32×24 image" in note
    assert all(key in note for key in ("fl_x", "fl_y", "cx", "cy", "w and h"))
