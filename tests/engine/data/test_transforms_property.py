"""Property: whatever a transforms file holds — arbitrary JSON, a valid file with random parts
replaced, or bytes that are not JSON at all — reading it (and loading its images) either works or
raises DatasetError naming the file, and never opens a file outside the dataset folder.

The dataset folder sits next to a real image and a folder of images that are "outside", reachable
through '..', absolute paths and symlinks; every open() during a read is recorded and checked.
"""

from __future__ import annotations

import builtins
import io
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from nerf_engine.data.dataset import DatasetError, load_rgba, read_split, read_transforms

pytestmark = pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # derandomized (tests/conftest.py): every run draws the same examples
    suppress_health_check=[HealthCheck.too_slow],
)

TOP_KEYS = [
    "frames", "camera_angle_x", "camera_angle_y", "fl_x", "fl_y", "cx", "cy", "w", "h", "aabb",
    "near", "far", "camera_model", "k1", "p2", "train_filenames", "val_filenames",
    "test_filenames", "aabb_scale",
]  # fmt: skip
FRAME_KEYS = [
    "file_path", "transform_matrix", "fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x",
    "camera_model", "k1", "depth_file_path",
]  # fmt: skip
HOSTILE_PATHS = [
    "../secret", "../secret.png", "../secrets/x", "train/../../secret", "..\\secret",
    "/etc/hostname", "C:/secret.png", "\\\\server\\share\\x.png", "link", "link.png",
    "linkdir/x", "linkdir/x.png", "loop", "inner", "train/r_0", "./train/r_1", "train/r_1.png",
    "train", ".", "", " ", "\x00", "x" * 300, "train/r_0.exr",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(10**308, 10**320).map(lambda n: n * (-1) ** n)  # too large for any float
    | st.floats()  # NaN and ±inf included: json writes and reads them
    | st.text(max_size=12)
    | st.sampled_from(HOSTILE_PATHS)
)
keys = st.sampled_from(TOP_KEYS + FRAME_KEYS) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
matrix_like = st.lists(st.lists(scalars, min_size=3, max_size=5), min_size=2, max_size=5)


def pose(x: float) -> list:
    m = np.eye(4)
    m[:3, 3] = [x, 0.0, 4.0]
    return m.tolist()


def valid() -> dict:
    frames = [{"file_path": f"./train/r_{i}", "transform_matrix": pose(i)} for i in range(2)]
    return {"camera_angle_x": 0.7, "frames": frames}


mutations = st.one_of(
    st.tuples(st.just("set top"), st.sampled_from(TOP_KEYS), json_values),
    st.tuples(st.just("del top"), st.sampled_from(TOP_KEYS)),
    st.tuples(
        st.just("set frame"),
        st.integers(0, 2),
        st.sampled_from(FRAME_KEYS),
        json_values | matrix_like,
    ),
    st.tuples(st.just("del frame"), st.integers(0, 1), st.sampled_from(FRAME_KEYS)),
    st.tuples(st.just("entry"), st.integers(0, 1), st.integers(0, 3), st.integers(0, 3), scalars),
    st.tuples(st.just("file_path"), st.integers(0, 1), st.sampled_from(HOSTILE_PATHS) | st.text()),
)


def mutate(obj: dict, change: tuple) -> None:
    kind, *args = change
    frames = obj["frames"] if isinstance(obj.get("frames"), list) else None
    if kind == "set top":
        obj[args[0]] = args[1]
    elif kind == "del top":
        obj.pop(args[0], None)
    elif frames is None:
        return
    elif kind == "set frame":
        index, key, value = args
        if index >= len(frames):
            frames.append({})
        if isinstance(frames[index], dict):
            frames[index][key] = value
    elif kind == "del frame" and args[0] < len(frames) and isinstance(frames[args[0]], dict):
        frames[args[0]].pop(args[1], None)
    elif kind == "entry" and args[0] < len(frames) and isinstance(frames[args[0]], dict):
        matrix = frames[args[0]].get("transform_matrix")
        if isinstance(matrix, list) and len(matrix) > args[1]:
            row = matrix[args[1]]
            if isinstance(row, list) and len(row) > args[2]:
                row[args[2]] = args[3]
    elif kind == "file_path" and args[0] < len(frames) and isinstance(frames[args[0]], dict):
        frames[args[0]]["file_path"] = args[1]


def png(path: Path, size=(4, 3)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 4), 100, np.uint8)).save(path)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A dataset folder with two images, surrounded by images it must never read."""
    base = tmp_path_factory.mktemp("property")
    data = base / "data"
    png(data / "train" / "r_0.png")
    png(data / "train" / "r_1.png")
    png(base / "secret.png")
    png(base / "secrets" / "x.png")
    (data / "link.png").symlink_to(base / "secret.png")
    (data / "linkdir").symlink_to(base / "secrets", target_is_directory=True)
    (data / "inner.png").symlink_to(data / "train" / "r_0.png")
    (data / "loop.png").symlink_to(data / "loop.png")
    return data


@contextmanager
def recorded_opens():
    """Every path opened for reading or writing by any Python-level open while inside."""
    opened: list[str] = []
    real = {"builtins": builtins.open, "io": io.open, "os": os.open}

    def spy(real_open):
        def open_(file, *args, **kwargs):
            if isinstance(file, str | bytes | os.PathLike):
                opened.append(os.fsdecode(file))
            return real_open(file, *args, **kwargs)

        return open_

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", spy(real["builtins"]))
        patch.setattr(io, "open", spy(real["io"]))
        patch.setattr(os, "open", spy(real["os"]))
        yield opened


def read_everything(root: Path, name: str, split: str, require_images: bool):
    if name == "cameras.json":
        return read_transforms(root / name, require_images=require_images)
    result = read_split(root, split)
    load_rgba(result)
    return result


def check_reading(root: Path, content: bytes, name: str, split: str, require_images: bool):
    """Write ``content`` as the transforms file, read it, check the two properties."""
    for old in root.glob("*.json"):
        old.unlink()
    (root / name).write_bytes(content)
    with recorded_opens() as opened:
        try:
            read_everything(root, name, split, require_images)
            event("read")
        except DatasetError as exc:
            message = str(exc)
            assert message.startswith(str(exc.path)) and exc.path in (root, root / name), message
            event(f"DatasetError (key {exc.key})")
    inside = root.resolve()
    outside = [p for p in opened if not Path(p).resolve().is_relative_to(inside)]
    assert outside == [], f"opened outside the dataset folder: {outside}"


files = st.sampled_from(
    [
        ("transforms_train.json", "train"),
        ("transforms.json", "train"),
        ("transforms.json", "val"),
        ("transforms.json", "test"),
        ("cameras.json", None),
    ]
)


@SETTINGS
@given(obj=json_values, file=files, require_images=st.booleans())
def test_arbitrary_json_gives_a_split_or_a_dataset_error(root, obj, file, require_images):
    check_reading(root, json.dumps(obj).encode(), *file, require_images)


@SETTINGS
@given(changes=st.lists(mutations, min_size=1, max_size=4), file=files, require=st.booleans())
def test_a_valid_file_with_random_damage_gives_a_split_or_a_dataset_error(
    root, changes, file, require
):
    obj = valid()
    for change in changes:
        mutate(obj, change)
    check_reading(root, json.dumps(obj).encode(), *file, require)


@SETTINGS
@given(cut=st.integers(0, 400), noise=st.binary(max_size=8), file=files)
def test_truncated_or_corrupted_bytes_give_a_split_or_a_dataset_error(root, cut, noise, file):
    text = json.dumps(valid()).encode()
    check_reading(root, text[:cut] + noise + text[cut + len(noise) :], *file, True)


def test_the_spy_sees_a_read_outside(root):
    """The check above can fail: a plain open() of the outside image is recorded."""
    with recorded_opens() as opened:
        Image.open(root.parent / "secret.png").close()
        (root / "link.png").read_bytes()
    assert [Path(p).resolve() for p in opened] == [(root.parent / "secret.png").resolve()] * 2


def test_the_property_tests_draw_the_same_examples_every_run():
    """CI failures replay here: derandomized unless explicitly asked to explore."""
    exploring = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
    assert SETTINGS.derandomize != exploring
