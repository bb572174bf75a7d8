"""Malformed datasets: each is refused with one DatasetError naming the file, frame and key.

Every case starts from a valid two-frame NeRF-synthetic file (4×3 PNGs ``train/r_0``, ``train/r_1``)
and breaks one thing; the error must say where, and reading must write nothing. Image paths must
stay inside the dataset folder (no absolute paths, no ``..`` or symlinks out), and images must be
usable before a single pixel is decoded where the header already tells.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from transforms_helpers import refused, valid, with_file_path, write

from nerf_engine.data import dataset
from nerf_engine.data.dataset import DatasetError, read_split, read_transforms

# --- the file as a whole -----------------------------------------------------------------------


def test_missing_file(tmp_path):
    refused(tmp_path / "transforms_train.json", frame=None, key=None, match="not found")


def test_empty_file(tmp_path):
    path = tmp_path / "transforms_train.json"
    path.write_bytes(b"")
    refused(path, frame=None, key=None, match="empty")


def test_malformed_json_gives_line_and_column(tmp_path):
    path = tmp_path / "transforms_train.json"
    path.write_text('{\n  "camera_angle_x": 0.7,\n  "frames": [,]\n}\n')
    refused(path, frame=None, key=None, match="malformed JSON at line 3, column 14")


def test_not_utf8(tmp_path):
    path = tmp_path / "transforms_train.json"
    path.write_bytes(b'{"camera_angle_x": "\xff"}')
    refused(path, frame=None, key=None, match="not UTF-8")


@pytest.mark.parametrize("top", [[], "frames", 3, None])
def test_top_level_not_an_object(tmp_path, top):
    refused(write(tmp_path, top), frame=None, key=None, match="expected a JSON object")


@pytest.mark.parametrize("frames", ["missing", None, {"0": {}}, "r_0"])
def test_frames_missing_or_not_a_list(tmp_path, frames):
    obj = valid(tmp_path)
    if frames == "missing":
        del obj["frames"]
    else:
        obj["frames"] = frames
    refused(write(tmp_path, obj), frame=None, key="frames", match="not a list")


def test_frames_empty(tmp_path):
    obj = {**valid(tmp_path), "frames": []}
    refused(write(tmp_path, obj), frame=None, key="frames", match="has no frames")


def test_empty_split_of_a_single_transforms_file(tmp_path):
    obj = {**valid(tmp_path), "train_filenames": ["train/r_0.png", "train/r_1.png"]}
    path = write(tmp_path, obj, "transforms.json")
    call = lambda p: read_split(p.parent, "test")  # noqa: E731
    refused(path, frame=None, key="frames", match="split 'test' has no frames", call=call)


@pytest.mark.parametrize(
    ("names", "match"),
    [(["train/r_9.png"], "no frame has, e.g. 'train/r_9'"), ("train/r_0", "list of image paths")],
)
def test_bad_nerfstudio_filename_list(tmp_path, names, match):
    path = write(tmp_path, {**valid(tmp_path), "test_filenames": names}, "transforms.json")
    call = lambda p: read_split(p.parent, "test")  # noqa: E731
    refused(path, frame=None, key="test_filenames", match=match, call=call)


TOP_LEVEL_CASES = {
    "aabb wrong shape": ({"aabb": [[0, 0, 0], [1, 1]]}, "aabb", "[[min x, y, z]"),
    "aabb min above max": ({"aabb": [[0, 0, 0], [1, -1, 1]]}, "aabb", "min < max"),
    "aabb string": ({"aabb": [[0, 0, 0], [1, 1, "1"]]}, "aabb", "of numbers"),
    "aabb infinite": ({"aabb": [[0, 0, 0], [1, 1, float("inf")]]}, "aabb", "finite"),
    "near equals far": ({"near": 2.0, "far": 2.0}, "far", "must be smaller than far"),
    "near above far": ({"near": 3.0, "far": 2.0}, "far", "must be smaller than far"),
    "near negative": ({"near": -1.0}, "near", "at least 0"),
    "far not a number": ({"far": "6"}, "far", "expected a number"),
    "near NaN": ({"near": float("nan")}, "near", "finite"),
    "equirectangular model": ({"camera_model": "EQUIRECTANGULAR"}, "camera_model", "--camera-type"),
    "instant-ngp latlong": ({"latlong": True}, "latlong", "image_undistorter"),
    "instant-ngp f-theta": ({"ftheta_p0": 0.1}, "ftheta_p0", "not a pinhole camera"),
    "k4 without a fisheye": ({"k4": 0.01}, "k4", "set camera_model to OPENCV_FISHEYE"),
    "p1 on a fisheye": ({"is_fisheye": True, "k1": 0.1, "p1": 0.01}, "p1", "no tangential"),
    "is_fisheye not a bool": ({"is_fisheye": "yes", "k1": 0.1}, "is_fisheye", "true or false"),
    "distortion of a PINHOLE": ({"camera_model": "PINHOLE", "k1": 0.1}, "k1", "set camera_model"),
}


@pytest.mark.parametrize("case", TOP_LEVEL_CASES.values(), ids=TOP_LEVEL_CASES.keys())
def test_bad_top_level_value(tmp_path, case):
    change, key, match = case
    refused(write(tmp_path, {**valid(tmp_path), **change}), frame=None, key=key, match=match)


INTRINSICS_CASES = {
    "no focal length": ({"camera_angle_x": None}, 0, "fl_x", "no focal length"),
    "focal zero": ({"fl_x": 0}, None, "fl_x", "must be positive"),
    "focal negative": ({"fl_x": -50.0}, None, "fl_x", "must be positive"),
    "fl_y negative": ({"fl_y": -50.0}, None, "fl_y", "must be positive"),
    "focal a string": ({"fl_x": "50"}, None, "fl_x", "expected a number"),
    "fov zero": ({"camera_angle_x": 0.0}, None, "camera_angle_x", "(0, π)"),
    "fov pi": ({"camera_angle_x": 3.1416}, None, "camera_angle_x", "(0, π)"),
    "fov in degrees": ({"camera_angle_x": 40}, None, "camera_angle_x", "(0, π)"),
    "w fractional": ({"w": 4.5, "h": 3}, None, "w", "whole number"),
    "h zero": ({"w": 4, "h": 0}, None, "h", "at least 1"),
    "w negative": ({"w": -4, "h": 3}, None, "w", "at least 1"),
    "w a string": ({"w": "4", "h": 3}, None, "w", "expected a number"),
    "h a bool": ({"w": 4, "h": True}, None, "h", "expected a number"),
    "k1 not a number": ({"k1": "0.1"}, None, "k1", "expected a number"),
    "p2 infinite": ({"p2": float("inf")}, None, "p2", "finite"),
}


@pytest.mark.parametrize("case", INTRINSICS_CASES.values(), ids=INTRINSICS_CASES.keys())
def test_bad_intrinsics_at_the_top_level(tmp_path, case):
    change, frame, key, match = case
    obj = {**valid(tmp_path), **change}
    obj = {k: v for k, v in obj.items() if v is not None}
    refused(write(tmp_path, obj), frame=frame, key=key, match=match)


def test_read_split_names_the_folder_when_it_cannot_start(tmp_path):
    for root, split, match in [
        (tmp_path / "nowhere", "train", "dataset folder not found"),
        (tmp_path, "train", "no transforms_train.json or transforms.json here"),
        (tmp_path, "training", "unknown split 'training'"),
    ]:
        with pytest.raises(DatasetError, match=match) as info:
            read_split(root, split)
        assert str(info.value).startswith(f"{root}: ") and info.value.frame is None


# --- one frame ---------------------------------------------------------------------------------


def eye(**entries) -> list:
    m = np.eye(4)
    for name, value in entries.items():
        m[int(name[1]), int(name[2])] = value
    return m.tolist()


def with_matrix_entry(value) -> list:
    m: list = eye()
    m[1][2] = value
    return m


MATRIX_CASES = {
    "3x3": (np.eye(3).tolist(), "shape (3, 3)"),
    "flat 16": (np.eye(4).ravel().tolist(), "shape (16,)"),
    "4x5": (np.eye(4, 5).tolist(), "shape (4, 5)"),
    "ragged": ([[1, 0, 0, 0], [0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "rows of different"),
    "a number": (1.0, "shape ()"),
    "an object": ({"rows": 4}, "numbers, found {'rows': 4}"),
    "string entry": (with_matrix_entry("0.5"), "numbers, found '0.5'"),
    "bool entry": (with_matrix_entry(True), "numbers, found True"),
    "null entry": (with_matrix_entry(None), "numbers, found 'null'"),
    "NaN": (with_matrix_entry(float("nan")), "NaN or infinity"),
    "infinity": (with_matrix_entry(float("-inf")), "NaN or infinity"),
    "zero scale": (eye(m00=0.0, m11=0.0, m22=0.0), "singular"),
    "collinear axes": ([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "singular"),
    "mirrored": (eye(m00=-1.0), "mirrored"),
    "negative scale": (eye(m00=-2.0, m11=-2.0, m22=-2.0), "mirrored"),
    "bad last row": (eye(m32=1.0), "last row must be [0, 0, 0, 1]"),
    "projective last row": (eye(m30=0.5), "last row"),
}


@pytest.mark.parametrize("case", MATRIX_CASES.values(), ids=MATRIX_CASES.keys())
def test_bad_transform_matrix(tmp_path, case):
    matrix, match = case
    obj = valid(tmp_path)
    obj["frames"][1]["transform_matrix"] = matrix
    refused(write(tmp_path, obj), frame=1, key="transform_matrix", match=match)


def test_frame_not_an_object(tmp_path):
    obj = valid(tmp_path)
    obj["frames"][1] = "./train/r_1"
    refused(write(tmp_path, obj), frame=1, key=None, match="expected an object, found str")


def test_frame_without_transform_matrix(tmp_path):
    obj = valid(tmp_path)
    del obj["frames"][1]["transform_matrix"]
    refused(write(tmp_path, obj), frame=1, key="transform_matrix", match="missing")


FRAME_INTRINSICS_CASES = {
    "focal negative": ({"fl_x": -3.0}, "fl_x", "must be positive"),
    "fov out of range": ({"camera_angle_x": -0.5}, "camera_angle_x", "(0, π)"),
    "w fractional": ({"w": 3.5, "h": 3}, "w", "whole number"),
    "h infinite": ({"w": 4, "h": float("inf")}, "h", "finite"),
    "k1 NaN": ({"k1": float("nan")}, "k1", "finite"),
    "k4 on a frame that is no fisheye": ({"k4": 0.02}, "k4", "OPENCV_FISHEYE"),
    "fisheye": ({"camera_model": "FISHEYE"}, "camera_model", "not supported"),
    "equirectangular": ({"camera_model": "EQUIRECTANGULAR"}, "camera_model", "not supported"),
}


@pytest.mark.parametrize("case", FRAME_INTRINSICS_CASES.values(), ids=FRAME_INTRINSICS_CASES.keys())
def test_bad_intrinsics_in_a_frame(tmp_path, case):
    change, key, match = case
    obj = valid(tmp_path)
    obj["frames"][1].update(change)
    refused(write(tmp_path, obj), frame=1, key=key, match=match)


def test_camera_file_without_images_must_give_the_size(tmp_path):
    obj = valid(tmp_path)
    for frame in obj["frames"]:
        del frame["file_path"]
    path = write(tmp_path, obj)
    call = lambda p: read_transforms(p, require_images=False)  # noqa: E731
    refused(path, frame=0, key="w", match="image size unknown", call=call)


# --- image paths ------------------------------------------------------------------------------


def test_file_over_the_size_limit_is_refused_without_being_read(tmp_path, monkeypatch):
    path = tmp_path / "transforms_train.json"
    with open(path, "wb") as handle:  # sparse: takes no disk space
        handle.truncate(dataset.MAX_JSON_BYTES + 1)

    def no_reading(self):
        raise AssertionError(f"read {self}")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(DatasetError) as info:
        read_transforms(path)
    assert (info.value.path, info.value.frame, info.value.key) == (path, None, None)
    assert str(info.value) == (
        f"{path}: file is 268435457 bytes, over the 268435456-byte limit for a transforms file; "
        "check that this is the right file, or use fewer views."
    )


def test_a_million_frames_fail_fast_before_any_frame_is_read(tmp_path):
    path = tmp_path / "transforms_train.json"
    path.write_text('{"camera_angle_x": 0.7, "frames": [' + ",".join(["{}"] * 10**6) + "]}")
    started = time.perf_counter()
    refused(path, frame=None, key="frames", match="lists 1000000 frames, over the limit of 100000")
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"camera_angle_x": ' + "7" * 5000 + ', "frames": []}', "malformed JSON (Exceeds"),
        ('{"camera_angle_x": 0.7, "frames": [{"file_path": "train/r_0", "transform', "line 1"),
        ("  \n\t\n", "malformed JSON at line 3, column 1"),
    ],
    ids=["deeply nested", "5000-digit integer", "truncated", "whitespace only"],
)
def test_unparsable_json(tmp_path, text, match):
    path = tmp_path / "transforms_train.json"
    path.write_text(text)
    error = refused(path, frame=None, key=None, match=match)
    assert "fix or re-export" in str(error) or "is this a transforms file" in str(error)


def test_a_truncated_valid_file_names_the_place_it_stops(tmp_path):
    text = json.dumps(valid(tmp_path), indent=2)
    path = tmp_path / "transforms_train.json"
    path.write_text(text[: len(text) // 2])
    refused(path, frame=None, key=None, match="malformed JSON at line")


HUGE = "9" * 400  # an integer JSON reads fine but no float can hold


@pytest.mark.parametrize(
    ("where", "frame", "key", "match"),
    [
        ("matrix", 1, "transform_matrix", "too large for a float"),
        ("fl_x", None, "fl_x", "must be finite"),
        ("aabb", None, "aabb", "of numbers"),
        ("near", None, "near", "must be finite"),
    ],
)
def test_integers_too_large_for_a_float(tmp_path, where, frame, key, match):
    obj = valid(tmp_path)
    if where == "matrix":
        obj["frames"][1]["transform_matrix"][0][3] = "@HUGE@"
    elif where == "aabb":
        obj["aabb"] = [[0, 0, 0], [1, 1, "@HUGE@"]]
    else:
        obj[where] = "@HUGE@"
    path = tmp_path / "transforms_train.json"
    path.write_text(json.dumps(obj).replace('"@HUGE@"', HUGE))
    refused(path, frame=frame, key=key, match=match)


@pytest.mark.parametrize("file_path", [["train/r_1"], {"path": "train/r_1"}, 1.5, True])
def test_file_path_of_the_wrong_type(tmp_path, file_path):
    name = type(file_path).__name__
    path = with_file_path(tmp_path, file_path)
    refused(path, frame=1, key="file_path", match=f"expected a string, found {name}")


def test_camera_file_asking_for_a_gigantic_image(tmp_path):
    obj = {"camera_angle_x": 0.7, "w": 10**6, "h": 10**6, "frames": [{"transform_matrix": eye()}]}
    call = lambda p: read_transforms(p, require_images=False)  # noqa: E731
    refused(write(tmp_path, obj), frame=None, key="w", match="over the limit", call=call)


def test_a_split_in_its_own_file_may_be_empty_only_with_an_error(tmp_path):
    write(tmp_path, valid(tmp_path))
    path = write(tmp_path, {"camera_angle_x": 0.7, "frames": []}, "transforms_val.json")
    call = lambda p: read_split(p.parent, "val")  # noqa: E731
    refused(path, frame=None, key="frames", match="split 'val' has no frames", call=call)
