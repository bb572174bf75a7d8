"""Field case 10: masks of transient objects (a passer-by) — nerfstudio's ``mask_path`` (0 = ignore)
and instant-ngp's ``dynamic_mask_<name>.png`` (non-zero = ignore) — keep the masked pixels out of
training and evaluation; blender-nerf's own object masks never count as such masks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from real_world_helpers import dump, orbit_poses, save_toy

from nerf_engine.data.cameras import Intrinsics
from nerf_engine.data.dataset import DatasetError, iter_views, read_split, read_transforms
from nerf_engine.data.scene_box import scene_box
from nerf_engine.eval.evaluate import evaluate_views
from nerf_engine.nerf.pixel_sampler import PixelSampler
from nerf_engine.nerf.rays import CameraTensors
from nerf_engine.tools.toy_scene import render_toy

INTR = Intrinsics.from_fov(0.75, 48, 48)
PASSERS = (1, 5, 9, 13)  # the frames with a red square painted in


def square(i: int) -> tuple[slice, slice]:
    x = 4 + 2 * i % 20
    return slice(18, 30), slice(x, x + 12)


def transient_dataset(root, *, convention="nerfstudio", suffix=".png", split_files=False):
    """The case's input: 16 photo-like views (no alpha); a pure-red 12×12 passer-by in 4 of them,
    marked by nerfstudio masks (masks/, 0 = ignore) or instant-ngp dynamic masks (255 = ignore)."""
    frames = []
    for i, pose in enumerate(orbit_poses(16)):
        name = f"frame_{i:03d}"
        path = save_toy(root / "images" / f"{name}{suffix}", INTR, pose, alpha=False)
        keep = np.full((48, 48), 255, np.uint8)
        if i in PASSERS:
            img = np.array(Image.open(path))
            img[square(i)] = (255, 0, 0)
            Image.fromarray(img).save(path, **({"quality": 100} if suffix == ".jpg" else {}))
            keep[square(i)] = 0
        frame = {"file_path": f"images/{name}{suffix}", "transform_matrix": pose.tolist()}
        if convention == "nerfstudio":
            (root / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(keep).save(root / "masks" / f"{name}.png")
            frame["mask_path"] = f"masks/{name}.png"
        else:
            Image.fromarray(255 - keep).save(root / "images" / f"dynamic_mask_{name}.png")
        frames.append(frame)
    top = {"fl_x": INTR.fl_x, "fl_y": INTR.fl_y, "cx": INTR.cx, "cy": INTR.cy, "w": 48, "h": 48}
    if split_files:
        dump(root / "transforms_train.json", {**top, "frames": frames})
    else:
        dump(root / "transforms.json", {**top, "frames": frames})
    return root


def red(rgba: torch.Tensor) -> torch.Tensor:
    return (rgba[:, 0] > 0.9) & (rgba[:, 1] < 0.1) & (rgba[:, 2] < 0.1)


@pytest.mark.parametrize(
    "convention, suffix, split_files",
    [
        ("nerfstudio", ".png", False),
        ("instant-ngp", ".png", False),
        ("nerfstudio", ".jpg", True),
        ("instant-ngp", ".jpg", True),
    ],
)
def test_masked_pixels_are_never_training_targets(tmp_path, convention, suffix, split_files):
    """The case's right value: 0 masked pixels among the training targets (was 82 of 4096)."""
    split = read_split(
        transient_dataset(tmp_path, convention=convention, suffix=suffix, split_files=split_files),
        "train",
    )
    cameras = CameraTensors.from_frames(split.frames, scene_box(split), torch.device("cpu"))
    sampler = PixelSampler(iter_views(split), cameras, torch.device("cpu"))
    n_passers = sum(i in PASSERS for i in range(16) if split_files or i % 8)
    assert sampler.n_pixels == len(split.frames) * 48 * 48 - n_passers * 144
    generator = torch.Generator().manual_seed(0)
    for crop in (1.0, 0.5):
        _, _, target = sampler.sample(20000, generator, crop)
        assert int(red(target).sum()) == 0
    key = "mask_path" if convention == "nerfstudio" else "dynamic_mask"
    assert any(
        key in note and "left out of training and evaluation" in note for note in split.notes
    )


def test_rays_of_a_masked_dataset_still_match_their_pixels(tmp_path):
    """The masked sampler's rays go through the pixel whose colour it returns."""
    split = read_split(transient_dataset(tmp_path), "train")
    cameras = CameraTensors.from_frames(split.frames, scene_box(split), torch.device("cpu"))
    sampler = PixelSampler(iter_views(split), cameras, torch.device("cpu"))
    flat = sampler.valid_index[torch.arange(0, sampler.n_pixels, 997)].long()
    frame, x, y = sampler._locate(flat)
    images = [rgba for rgba, _ in iter_views(split)]
    for f, px, py, value in zip(frame, x, y, sampler.rgba[flat].float(), strict=True):
        expected = torch.from_numpy(images[f][py, px]).half().float()
        torch.testing.assert_close(value, expected)


class CleanRenderer:
    """Stands in for the Renderer: returns the scene without the passer-by (a perfect NeRF)."""

    class config:
        background = (1.0, 1.0, 1.0)

    class _View:
        def __init__(self, rgba):
            self.rgba = rgba

        def over(self, background):
            return self.rgba[..., :3] * self.rgba[..., 3:] + (1 - self.rgba[..., 3:])

    def render(self, intrinsics, camera_to_world):
        return self._View(render_toy(intrinsics, camera_to_world, supersample=2))


def test_masked_pixels_are_not_evaluation_targets(tmp_path):
    split = read_split(transient_dataset(tmp_path), "train")
    passers = tuple(f for f in split.frames if int(f.file_path[-7:-4]) in PASSERS)
    report = evaluate_views(CleanRenderer(), replace(split, frames=passers))
    assert min(v["psnr"] for v in report["views"]) > 35  # the red square is not held against it
    unmasked = tuple(replace(f, masks=()) for f in passers)
    plain = evaluate_views(CleanRenderer(), replace(split, frames=unmasked))
    assert max(v["psnr"] for v in plain["views"]) < 20  # (the square itself is what a mask hides)


def test_full_resolution_masks_beside_downscaled_images(tmp_path):
    """nerfstudio's images_2/ with full-size masks: an image pixel is ignored if any of its
    mask pixels is."""
    pose = orbit_poses(1)[0]
    save_toy(tmp_path / "images_2/a.png", INTR.scaled(24, 24), pose)
    keep = np.full((48, 48), 255, np.uint8)
    keep[10, 11] = 0  # one full-size pixel: image pixel (5, 5)
    Image.fromarray(keep).save(tmp_path / "a_mask.png")
    frame = {
        "file_path": "images_2/a.png",
        "mask_path": "a_mask.png",
        "transform_matrix": pose.tolist(),
    }
    dump(tmp_path / "t.json", {"camera_angle_x": 0.75, "w": 48, "h": 48, "frames": [frame]})
    ((_, valid),) = list(iter_views(read_transforms(tmp_path / "t.json")))
    assert valid.shape == (24, 24) and np.argwhere(~valid).tolist() == [[5, 5]]


def test_mask_of_another_size_or_missing_is_refused_naming_the_key(tmp_path):
    pose = orbit_poses(1)[0]
    save_toy(tmp_path / "a.png", INTR, pose)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(tmp_path / "m.png")
    frame = {"file_path": "a.png", "mask_path": "m.png", "transform_matrix": pose.tolist()}
    dump(tmp_path / "t.json", {"camera_angle_x": 0.75, "frames": [frame]})
    with pytest.raises(
        DatasetError, match=r"mask m\.png .* is 48×40 but its image is 48×48"
    ) as info:
        list(iter_views(read_transforms(tmp_path / "t.json")))
    assert (info.value.frame, info.value.key) == (0, "mask_path")
    frame["mask_path"] = "nowhere.png"
    dump(tmp_path / "t.json", {"camera_angle_x": 0.75, "frames": [frame]})
    with pytest.raises(DatasetError, match=r"'nowhere\.png' not found") as info:
        read_transforms(tmp_path / "t.json")
    assert (info.value.frame, info.value.key) == (0, "mask_path")


def test_blender_nerf_object_masks_are_never_masks_of_pixels_to_ignore(tmp_path):
    """Old exports wrote the object mask (255 = subject) under mask_path; new ones write
    object_mask_path. Neither hides the background; a user's own mask_path still counts."""
    pose = orbit_poses(1)[0]
    save_toy(tmp_path / "train/r_0.png", INTR, pose)
    subject = np.zeros((48, 48), np.uint8)
    subject[20:28, 20:28] = 255
    Image.fromarray(subject).save(tmp_path / "train/r_0_mask.png")
    old = {
        "file_path": "./train/r_0",
        "mask_path": "train/r_0_mask.png",
        "transform_matrix": pose.tolist(),
    }
    new = {"file_path": "./train/r_0", "object_mask_path": "train/r_0_mask.png",
           "transform_matrix": pose.tolist()}  # fmt: skip
    for frame in (old, new):
        dump(tmp_path / "transforms_train.json",
             {"camera_angle_x": 0.75, "generator": "blender-nerf", "frames": [frame]})  # fmt: skip
        split = read_split(tmp_path, "train")
        ((_, valid),) = list(iter_views(split))
        assert valid is None and split.frames[0].masks == ()
    assert split.notes == ()  # the new key needs no note
    dump(tmp_path / "transforms_train.json",
         {"camera_angle_x": 0.75, "generator": "blender-nerf", "frames": [old]})  # fmt: skip
    assert "older blender-nerf export" in read_split(tmp_path, "train").notes[0]
    users = {**old, "mask_path": "people.png"}
    Image.fromarray(255 - subject).save(tmp_path / "people.png")
    dump(tmp_path / "transforms_train.json",
         {"camera_angle_x": 0.75, "generator": "blender-nerf", "frames": [users]})  # fmt: skip
    ((_, valid),) = list(iter_views(read_split(tmp_path, "train")))
    assert int((~valid).sum()) == 64
