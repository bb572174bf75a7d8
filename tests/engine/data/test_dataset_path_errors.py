"""Malformed datasets, part two: image paths must stay inside the dataset folder (no absolute paths,
no ``..`` or symlinks out), and images must be usable, refused from the header before a single pixel
is decoded where the header already tells."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from transforms_helpers import needs_symlinks, png, refused, valid, with_file_path, write

from nerf_engine.data.dataset import load_rgba, read_split, read_transforms


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, w: int = 100_000, h: int = 100_000) -> Path:
    """A valid-looking RGBA PNG whose header claims ``w``×``h`` pixels (40 GB decoded)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat))
    return path


@pytest.fixture
def data(tmp_path) -> Path:
    """The dataset folder, inside ``tmp_path`` so that ``tmp_path`` itself is 'outside'."""
    root = tmp_path / "data"
    root.mkdir()
    png(tmp_path / "outside.png")  # a real image just outside the dataset
    return root


@pytest.mark.parametrize(
    "file_path",
    ["/etc/hostname", "/abs/r_1.png", "C:\\data\\r_1.png", "C:/data/r_1", "C:r_1", "\\\\srv\\s\\r"],
)
def test_absolute_file_path(data, file_path):
    refused(with_file_path(data, file_path), frame=1, key="file_path", match="is absolute")


@pytest.mark.parametrize(
    "file_path", ["../outside", "../outside.png", "train/../../outside", "..\\outside", "../nope"]
)
def test_file_path_leaving_the_folder_through_dotdot(data, file_path):
    refused(with_file_path(data, file_path), frame=1, key="file_path", match="leads outside")


def test_dotdot_that_stays_inside_is_fine(data):
    path = with_file_path(data, "train/../train/r_1")
    assert read_transforms(path).frames[1].image_path == (data / "train/r_1.png").resolve()


@needs_symlinks
def test_symlinked_image_pointing_outside_is_refused(data):
    path = with_file_path(data, "./train/r_1")
    (data / "train/r_1.png").unlink()
    (data / "train/r_1.png").symlink_to(data.parent / "outside.png")
    refused(path, frame=1, key="file_path", match="leads outside the dataset folder")


@needs_symlinks
def test_symlinked_folder_pointing_outside_is_refused(data):
    (data / "linked").symlink_to(data.parent, target_is_directory=True)
    path = with_file_path(data, "linked/outside.png")
    refused(path, frame=1, key="file_path", match="leads outside the dataset folder")


@needs_symlinks
def test_dangling_symlink_pointing_outside_is_refused(data):
    path = with_file_path(data, "./train/r_1")
    (data / "train/r_1.png").unlink()
    (data / "train/r_1.png").symlink_to(data.parent / "missing.png")
    refused(path, frame=1, key="file_path", match="leads outside")


@needs_symlinks
def test_symlink_inside_the_folder_is_followed(data):
    (data / "alias.png").symlink_to(data / "train/r_0.png")
    frame = read_transforms(with_file_path(data, "alias")).frames[1]
    assert frame.image_path == (data / "train/r_0.png").resolve()


@needs_symlinks
def test_symlink_loop_is_refused(data):
    (data / "loop_a.png").symlink_to(data / "loop_b.png")
    (data / "loop_b.png").symlink_to(data / "loop_a.png")
    refused(with_file_path(data, "loop_a.png"), frame=1, key="file_path", match="loop_a.png")


@pytest.mark.parametrize(
    ("file_path", "match"),
    [
        ("", "missing or empty"),
        ("   ", "missing or empty"),
        (7, "expected a string, found int 7"),
        (None, "missing or empty"),
        ("train/r\x001", "cannot be opened"),
        ("x" * 5000, "cannot be opened"),
        ("train/r_7", "image 'train/r_7' not found"),
        ("train", "not found"),  # a folder is not an image
    ],
)
def test_unusable_file_path(data, file_path, match):
    refused(with_file_path(data, file_path), frame=1, key="file_path", match=match)


# --- the image files ---------------------------------------------------------------------------


def test_zero_byte_image(data):
    path = with_file_path(data, "train/r_1")
    (data / "train/r_1.png").write_bytes(b"")
    refused(path, frame=1, key="file_path", match="empty (0 bytes)")


def test_text_file_named_png(data):
    path = with_file_path(data, "train/r_1")
    (data / "train/r_1.png").write_text("not a picture\n")
    refused(path, frame=1, key="file_path", match="cannot read the image header")


def test_decompression_bomb_is_refused_from_the_header(data):
    path = with_file_path(data, "train/r_1")
    bomb_png(data / "train/r_1.png")
    refused(path, frame=1, key="file_path", match="100000×100000 pixels, over the limit")


def rgba_of(path: Path):
    return load_rgba(read_transforms(path))


def declared_size(root: Path) -> Path:
    """The valid file with w/h declared, so that reading it needs no image header."""
    return write(root, {**valid(root), "w": 4, "h": 3})


def test_zero_byte_image_with_declared_size_fails_on_load(data):
    path = declared_size(data)
    (data / "train/r_1.png").write_bytes(b"")
    refused(path, frame=1, key="file_path", match="empty (0 bytes)", call=rgba_of)


def test_truncated_png_fails_on_load(data):
    path = declared_size(data)
    image = data / "train/r_1.png"
    image.write_bytes(image.read_bytes()[:46])  # header intact, pixel data cut off mid-stream
    error = refused(path, frame=1, key="file_path", match="cannot decode", call=rgba_of)
    assert str(image) in str(error)


def test_bomb_with_declared_size_fails_on_load(data):
    path = declared_size(data)
    bomb_png(data / "train/r_1.png")
    refused(path, frame=1, key="file_path", match="over the limit", call=rgba_of)


def test_image_size_differing_from_declared_size(data):
    path = declared_size(data)
    png(data / "train/r_1.png", w=5, h=3)
    refused(path, frame=1, key="w", match="is 5×3 but the camera says 4×3", call=rgba_of)


def test_load_rgba_reads_every_frame(data):
    images = rgba_of(declared_size(data))
    assert [im.shape for im in images] == [(3, 4, 4), (3, 4, 4)]
    assert images[0][0, 0].tolist() == pytest.approx([100 / 255] * 4)


# --- hostile files: huge, deep, overflowing -----------------------------------------------------


@needs_symlinks
def test_transforms_file_symlinked_from_outside_is_refused(data):
    outside = write(data.parent, valid(data), "elsewhere.json")
    (data / "transforms_train.json").symlink_to(outside)
    call = lambda p: read_split(p.parent, "train")  # noqa: E731
    path = data / "transforms_train.json"
    refused(path, frame=None, key=None, match="outside the dataset folder; copy the", call=call)
