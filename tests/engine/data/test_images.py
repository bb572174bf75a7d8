"""Image files in: every PNG flavour, JPEG, CMYK, EXR -> sRGB float RGBA with straight alpha; out:
8/16-bit PNG. Bad files -> one ImageError that names the file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import OpenEXR
import png as pypng
import pytest
from PIL import Image

from nerf_engine.data import images
from nerf_engine.data.images import (
    ImageError,
    composite,
    image_size,
    read_rgba,
    srgb_encode,
    write_exr,
    write_png,
    write_png16,
)

RNG = np.random.default_rng(7)
RGBA8 = RNG.integers(0, 256, size=(3, 5, 4), dtype=np.uint8)
RGBA16 = RNG.integers(0, 65536, size=(3, 5, 4), dtype=np.uint16)
RGBA16[0, 0] = [1, 65534, 32769, 65535]  # values that 8 bits cannot hold


def opaque(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, np.ones_like(rgb[..., :1])], axis=-1)


def test_rgba_and_rgb_8bit_png(tmp_path):
    Image.fromarray(RGBA8, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(RGBA8[..., :3], "RGB").save(tmp_path / "b.png")
    a, b = read_rgba(tmp_path / "a.png"), read_rgba(tmp_path / "b.png")
    assert a.dtype == np.float32 and a.shape == (3, 5, 4)
    np.testing.assert_array_equal(a, RGBA8 / np.float32(255))
    np.testing.assert_array_equal(b, opaque(RGBA8[..., :3] / np.float32(255)))
    assert image_size(tmp_path / "a.png") == (5, 3)


def test_16bit_rgba_png_keeps_full_precision(tmp_path):
    path = tmp_path / "deep.png"
    pypng.from_array(RGBA16.reshape(3, 5 * 4), "RGBA;16").save(str(path))
    rgba = read_rgba(path)
    np.testing.assert_array_equal(np.round(rgba * 65535.0).astype(np.uint16), RGBA16)
    # What Pillow would have given: 8 bits, wrong in the low byte.
    assert rgba[0, 0, 0] == pytest.approx(1 / 65535) and rgba[0, 0, 0] > 0


def test_16bit_grey_and_grey_alpha_png(tmp_path):
    grey = RGBA16[..., 0]
    pypng.from_array(grey, "L;16").save(str(tmp_path / "g.png"))
    pypng.from_array(RGBA16[..., :2].reshape(3, 10), "LA;16").save(str(tmp_path / "ga.png"))
    g, ga = read_rgba(tmp_path / "g.png"), read_rgba(tmp_path / "ga.png")
    np.testing.assert_array_equal(
        np.round(g * 65535), np.stack([grey] * 3 + [grey * 0 + 65535], -1)
    )
    np.testing.assert_array_equal(np.round(ga[..., 3] * 65535), RGBA16[..., 1])


def test_png_with_fewer_significant_bits_is_scaled_to_full_range(tmp_path):
    """A 12-bit PNG (16-bit samples with an sBIT chunk): 4095 is white, not 1/16 grey."""
    writer = pypng.Writer(2, 1, bitdepth=12, greyscale=False, alpha=True)
    with open(tmp_path / "b12.png", "wb") as handle:
        writer.write(handle, [[4095, 2048, 0, 4095, 0, 0, 4095, 1365]])
    rgba = read_rgba(tmp_path / "b12.png")
    np.testing.assert_allclose(
        rgba[0], [[1.0, 2048 / 4095, 0.0, 1.0], [0.0, 0.0, 1.0, 1365 / 4095]], atol=1e-6
    )


def test_grey_and_grey_alpha_8bit_png(tmp_path):
    Image.fromarray(RGBA8[..., 0], "L").save(tmp_path / "l.png")
    Image.fromarray(RGBA8[..., :2], "LA").save(tmp_path / "la.png")
    l_img, la = read_rgba(tmp_path / "l.png"), read_rgba(tmp_path / "la.png")
    grey = RGBA8[..., 0] / np.float32(255)
    np.testing.assert_array_equal(l_img, np.stack([grey, grey, grey, np.ones_like(grey)], -1))
    np.testing.assert_array_equal(la[..., :3], np.stack([grey] * 3, -1))
    np.testing.assert_array_equal(la[..., 3], RGBA8[..., 1] / np.float32(255))


def palette_image() -> Image.Image:
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    img.putdata([0, 1, 2])
    return img


def test_palette_png_without_and_with_transparency(tmp_path):
    palette_image().save(tmp_path / "p.png")
    palette_image().save(tmp_path / "pt.png", transparency=bytes([255, 0, 128]))
    plain, clear = read_rgba(tmp_path / "p.png"), read_rgba(tmp_path / "pt.png")
    want = [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]]
    np.testing.assert_array_equal(plain[0], want)
    np.testing.assert_allclose(clear[0], [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 128 / 255]])


@pytest.mark.parametrize(
    ("mode", "key"), [("L", 7), ("RGB", (7, 7, 7))], ids=["grey tRNS", "rgb tRNS"]
)
def test_colour_key_transparency_of_grey_and_rgb_png_becomes_alpha(tmp_path, mode, key):
    img = Image.new(mode, (2, 1), 200 if mode == "L" else (200, 200, 200))
    img.putpixel((0, 0), key)
    img.save(tmp_path / "k.png", transparency=key)
    rgba = read_rgba(tmp_path / "k.png")
    np.testing.assert_allclose(rgba[0, :, 3], [0.0, 1.0])
    np.testing.assert_allclose(rgba[0, 1, :3], 200 / 255)


def test_jpeg(tmp_path):
    colour = np.full((8, 8, 3), (200, 40, 90), np.uint8)
    Image.fromarray(colour).save(tmp_path / "c.jpg", quality=95)
    rgba = read_rgba(tmp_path / "c.jpg")
    np.testing.assert_allclose(rgba, opaque(colour / 255.0), atol=6 / 255)
    assert image_size(tmp_path / "c.jpg") == (8, 8)


def test_cmyk_tiff_and_jpeg_become_rgb(tmp_path):
    rgb = np.full((4, 4, 3), (200, 40, 90), np.uint8)
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(tmp_path / "c.tif")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    np.testing.assert_array_equal(read_rgba(tmp_path / "c.tif"), opaque(rgb / np.float32(255)))
    np.testing.assert_allclose(read_rgba(tmp_path / "c.jpg"), opaque(rgb / 255.0), atol=6 / 255)


def exr(path: Path, channels: dict[str, np.ndarray]) -> Path:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, channels) as f:
        f.write(str(path))
    return path


def test_exr_linear_premultiplied_becomes_straight_srgb(tmp_path):
    data = np.zeros((2, 3, 4), np.float32)
    data[0, 0] = [0.1, 0.05, 0.0, 0.5]  # premultiplied: the straight colour is (0.2, 0.1, 0)
    data[0, 1] = [0.001, 0.5, 2.0, 1.0]  # below the sRGB toe; an over-bright value
    data[0, 2] = [0.3, 0.3, 0.3, 0.0]  # fully transparent
    rgba = read_rgba(exr(tmp_path / "a.exr", {"RGBA": data}))
    srgb_02 = 1.055 * 0.2 ** (1 / 2.4) - 0.055  # 0.48453
    np.testing.assert_allclose(rgba[0, 0], [srgb_02, 0.349190, 0.0, 0.5], atol=1e-5)
    np.testing.assert_allclose(rgba[0, 1], [0.01292, 0.735357, 1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(rgba[0, 2], [0.0, 0.0, 0.0, 0.0])
    assert image_size(tmp_path / "a.exr") == (3, 2)


def test_exr_with_separate_channels_and_without_alpha(tmp_path):
    r, g, b = (np.full((2, 2), v, np.float32) for v in (0.2, 0.0, 1.0))
    separate = exr(tmp_path / "s.exr", {"R": r, "G": g, "B": b, "A": np.full((2, 2), 1.0, "f")})
    rgb_only = exr(tmp_path / "rgb.exr", {"RGB": np.stack([r, g, b], -1)})
    want = [float(srgb_encode(0.2)), 0.0, 1.0, 1.0]
    np.testing.assert_allclose(read_rgba(separate)[1, 1], want, atol=1e-6)
    np.testing.assert_allclose(read_rgba(rgb_only)[1, 1], want, atol=1e-6)


def test_srgb_encode_matches_the_standard_curve():
    x = np.array([0.0, 0.0031308, 0.01, 0.5, 1.0, 1.5, -1.0])
    want = [0.0, 0.04045, 0.0998528, 0.7353570, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(srgb_encode(x), want, atol=1e-5)


def test_composite_over_white_and_black():
    rgba = np.array([[0.2, 0.4, 1.0, 0.5], [1.0, 1.0, 1.0, 0.0], [0.3, 0.6, 0.9, 1.0]], np.float32)
    np.testing.assert_allclose(
        composite(rgba, (1.0, 1.0, 1.0)), [[0.6, 0.7, 1.0], [1, 1, 1], [0.3, 0.6, 0.9]], atol=1e-7
    )
    np.testing.assert_allclose(
        composite(rgba, 0.0), [[0.1, 0.2, 0.5], [0, 0, 0], [0.3, 0.6, 0.9]], atol=1e-7
    )
    assert composite(rgba, (1, 1, 1)).dtype == np.float32


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
def test_write_png16_round_trip(tmp_path, channels):
    data = RGBA16[..., 0] if channels is None else RGBA16[..., :channels]
    write_png16(tmp_path / "o.png", data)
    back = np.round(read_rgba(tmp_path / "o.png") * 65535).astype(np.uint16)
    planes = data.reshape(3, 5, -1)
    want = {1: [0, 0, 0], 2: [0, 0, 0, 1], 3: [0, 1, 2], 4: [0, 1, 2, 3]}[planes.shape[-1]]
    np.testing.assert_array_equal(back[..., : len(want)], planes[..., want])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (np.full((2, 2), 0.5), TypeError),  # floats would be truncated to 0
        (np.full((2, 2), 70000), ValueError),  # would wrap around
        (np.full((2, 2), -1), ValueError),
        (np.zeros((2, 2, 5), np.uint16), ValueError),
    ],
)
def test_write_png16_refuses_values_it_cannot_store(tmp_path, data, error):
    with pytest.raises(error):
        write_png16(tmp_path / "o.png", data)
    assert list(tmp_path.iterdir()) == []


def test_write_png_and_write_exr_round_trip(tmp_path):
    write_png(tmp_path / "o.png", RGBA8 / 255.0)
    np.testing.assert_array_equal(read_rgba(tmp_path / "o.png"), RGBA8 / np.float32(255))
    depth = RNG.uniform(0, 10, size=(3, 5)).astype(np.float32)
    write_exr(tmp_path / "d.exr", {"Z": depth})
    with OpenEXR.File(str(tmp_path / "d.exr")) as f:
        np.testing.assert_array_equal(f.channels()["Z"].pixels, depth)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.exr", "o.png"]


# --- bad files ---------------------------------------------------------------------------------


def bomb_png(path: Path) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 6, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 4096))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_refused_without_decoding(tmp_path, monkeypatch):
    def no_decoding(path):
        raise AssertionError(f"decoded {path}")

    monkeypatch.setattr(images, "_read_pillow", no_decoding)
    monkeypatch.setattr(images, "_read_png16", no_decoding)
    path = bomb_png(tmp_path / "bomb.png")
    for read in (read_rgba, image_size):
        with pytest.raises(ImageError, match="100000×100000 pixels, over the limit") as info:
            read(path)
        assert str(path) in str(info.value)


def truncated_png(path: Path) -> Path:
    Image.fromarray(RGBA8).save(path)
    path.write_bytes(path.read_bytes()[:50])
    return path


def writing(data: bytes):
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return make


BAD_FILES = {
    "missing": (lambda p: p, "image file not found"),
    "empty": (writing(b""), "empty (0 bytes)"),
    "text named .png": (writing(b"hello"), "cannot read the image header"),
    "short PNG header": (writing(b"\x89PNG\r\n\x1a\n\0\0"), "truncated or corrupt PNG header"),
    "truncated PNG": (truncated_png, "cannot decode"),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_image_file(tmp_path, case):
    make, match = case
    path = make(tmp_path / "x.png")
    with pytest.raises(ImageError) as info:
        read_rgba(path)
    assert type(info.value) is ImageError
    assert str(info.value).startswith(f"{tmp_path / 'x.png'}: ")
    assert match in str(info.value)


def test_exr_without_colour_channels_or_with_nan(tmp_path):
    z_only = exr(tmp_path / "z.exr", {"Z": np.ones((2, 2), np.float32)})
    with pytest.raises(ImageError, match=r"z\.exr: EXR has no R, G, B channels \(it has \['Z'\]\)"):
        read_rgba(z_only)
    nan = exr(tmp_path / "n.exr", {"RGBA": np.full((2, 2, 4), np.nan, np.float32)})
    with pytest.raises(ImageError, match=r"n\.exr: image contains NaN"):
        read_rgba(nan)


# --- other formats: bombs and broken files are refused before any pixel is decoded ---------------


def small(path: Path, fmt: str) -> Path:
    Image.new("RGB", (4, 3), (10, 20, 30)).save(path, format=fmt)
    return path


def bomb_bmp(path: Path) -> Path:
    data = bytearray(small(path, "BMP").read_bytes())
    struct.pack_into("<ii", data, 18, 100_000, 100_000)  # BITMAPINFOHEADER width, height
    path.write_bytes(bytes(data))
    return path


def bomb_gif(path: Path) -> Path:
    data = bytearray(small(path, "GIF").read_bytes())
    struct.pack_into("<HH", data, 6, 60_000, 60_000)  # logical screen width, height
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("make", [bomb_bmp, bomb_gif], ids=["BMP", "GIF"])
def test_decompression_bomb_in_other_formats_is_refused_clearly(tmp_path, monkeypatch, make):
    path = make(tmp_path / ("bomb." + make.__name__[-3:]))
    monkeypatch.setattr(images, "_to_rgba", lambda *a: pytest.fail("decoded pixels"))
    for read in (read_rgba, image_size):
        with pytest.raises(ImageError) as info:
            read(path)
        assert type(info.value) is ImageError
        message = str(info.value)
        assert message.startswith(f"{path}: image is too large to decode (Image size (")
        assert message.endswith("; downscale it first.")


def truncated_jpeg(path: Path) -> Path:
    Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:1000])  # the header whole, the pixel data cut off
    return path


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZERO_WIDTH_PNG = PNG_SIGNATURE + b"\0\0\0\rIHDR" + struct.pack(">IIBBBBB", 0, 3, 8, 6, 0, 0, 0)
MORE_BAD_FILES = {
    "truncated JPEG": (truncated_jpeg, "x.jpg", "may be truncated or damaged: re-export it"),
    "random bytes .jpg": (writing(bytes(range(256)) * 4), "x.jpg", "is it an image? Re-export"),
    "PNG signature only": (writing(PNG_SIGNATURE), "x.png", "truncated or corrupt PNG header"),
    "PNG with zero width": (writing(ZERO_WIDTH_PNG), "x.png", "no pixels (0×3); re-export it"),
}


@pytest.mark.parametrize("case", MORE_BAD_FILES.values(), ids=MORE_BAD_FILES.keys())
def test_more_bad_image_files(tmp_path, case):
    make, name, match = case
    path = make(tmp_path / name)
    with pytest.raises(ImageError) as info:
        read_rgba(path)
    assert type(info.value) is ImageError
    assert str(info.value).startswith(f"{path}: ") and match in str(info.value)
