"""Image files in and out: 8/16-bit PNG, JPEG and other Pillow formats, OpenEXR.

Colours come back as float32 in [0, 1], sRGB-encoded (display-referred, like a PNG), with a straight
(not premultiplied) alpha channel; images without alpha get alpha = 1. EXR files hold linear,
premultiplied colour (Blender's convention); they are unpremultiplied and sRGB-encoded on read so
that every format trains the same way.

Third-party readers are imported where they are used: this module (through ``dataset``) must import
inside Blender, whose Python has numpy but not Pillow, pypng or OpenEXR.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from .fileio import atomic_path

MAX_PIXELS = 16384 * 16384  # larger images are refused (a decompression bomb is never decoded)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An image file that cannot be used; the message says which file and why."""


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB-encoded values (the IEC 61966-2-1 curve), clipped to [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def _png_header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, bit depth) of a PNG from its IHDR chunk, or None if not a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(29)
    if not head.startswith(PNG_SIGNATURE):
        return None
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise ImageError(f"{path}: truncated or corrupt PNG header; re-export the image.")
    width, height, depth = struct.unpack(">IIB", head[16:25])
    return width, height, depth


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"{path}: image has no pixels ({width}×{height}); re-export it.")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{path}: image is {width}×{height} pixels, over the limit of {MAX_PIXELS} "
            "(a decompression bomb or a mistake); downscale it first."
        )


def _too_large_for_pillow(path: Path, exc: Exception) -> ImageError:
    """Pillow refuses images over its own limit (about 179 million pixels) while parsing the
    header; the same refusal as ``_check_pixels``, as an ImageError."""
    return ImageError(f"{path}: image is too large to decode ({exc}); downscale it first.")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ImageError(f"{path}: image file not found.")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: image file is empty (0 bytes); re-export it.")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) read from the file header without decoding the pixels; sizes over
    ``MAX_PIXELS`` are refused here already."""
    path = Path(path)
    _check_file(path)
    try:
        if path.suffix.lower() == ".exr":
            import OpenEXR

            with OpenEXR.File(str(path), header_only=True) as exr:
                (x0, y0), (x1, y1) = exr.header()["dataWindow"]
            width, height = int(x1 - x0 + 1), int(y1 - y0 + 1)
        else:
            png = _png_header(path)
            if png is not None:
                width, height = png[0], png[1]
            else:
                from PIL import Image

                try:
                    with Image.open(path) as img:
                        width, height = img.size
                except Image.DecompressionBombError as exc:
                    raise _too_large_for_pillow(path, exc) from exc
    except ImageError:
        raise
    except Exception as exc:  # every reader has its own error types
        raise ImageError(
            f"{path}: cannot read the image header ({exc}); is it an image? Re-export it."
        ) from exc
    _check_pixels(path, width, height)
    return width, height


def _to_rgba(arr: np.ndarray, scale: float) -> np.ndarray:
    """[H, W] / [H, W, 1..4] integer or float array -> float32 [H, W, 4]."""
    arr = arr.astype(np.float32) / scale
    if arr.ndim == 2:
        arr = arr[..., None]
    channels = arr.shape[-1]
    if channels in (1, 2):  # grey, grey + alpha
        grey = np.repeat(arr[..., :1], 3, axis=-1)
        alpha = arr[..., 1:2] if channels == 2 else np.ones_like(arr[..., :1])
        return np.concatenate([grey, alpha], axis=-1)
    if channels == 3:
        return np.concatenate([arr, np.ones_like(arr[..., :1])], axis=-1)
    return arr[..., :4]


def _read_png16(path: Path) -> np.ndarray:
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    data = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    # asDirect() rescales to the significant bits of an sBIT chunk (e.g. 12-bit data).
    return _to_rgba(data.reshape(height, width, planes), float(2 ** info["bitdepth"] - 1))


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _too_large_for_pillow(path, exc) from exc
    with img:
        _check_pixels(path, *img.size)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            return _to_rgba(np.asarray(img, dtype=np.float32), 65535.0)
        has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
        if img.mode not in ("RGB", "RGBA", "L", "LA") or "transparency" in img.info:
            # palette, CMYK, YCbCr, ...; a tRNS colour key (grey, RGB, palette) becomes alpha
            img = img.convert("RGBA" if has_alpha else "RGB")
        return _to_rgba(np.asarray(img), 255.0)


def _read_exr(path: Path) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(str(path)) as exr:  # the channels are emptied when the file closes
        channels = exr.channels()
        if "RGBA" in channels or "RGB" in channels:
            data = np.array(channels["RGBA" if "RGBA" in channels else "RGB"].pixels, np.float32)
        elif all(c in channels for c in "RGB"):
            names = "RGBA" if "A" in channels else "RGB"
            data = np.stack([np.array(channels[c].pixels, np.float32) for c in names], axis=-1)
        else:
            raise ImageError(f"{path}: EXR has no R, G, B channels (it has {sorted(channels)}).")
    rgba = _to_rgba(data, 1.0)
    alpha = np.clip(rgba[..., 3:4], 0.0, 1.0)
    straight = np.where(alpha > 1e-6, rgba[..., :3] / np.maximum(alpha, 1e-6), 0.0)
    return np.concatenate([srgb_encode(straight), alpha], axis=-1).astype(np.float32)


def read_rgba(path: str | os.PathLike) -> np.ndarray:
    """Read an image as float32 [H, W, 4]: sRGB colour and straight alpha, all in [0, 1]."""
    path = Path(path)
    image_size(path)  # exists, not empty, not too large: checked before any pixel is decoded
    try:
        if path.suffix.lower() == ".exr":
            rgba = _read_exr(path)
        elif (_png_header(path) or (0, 0, 8))[2] == 16:
            rgba = _read_png16(path)
        else:
            rgba = _read_pillow(path)
    except ImageError:
        raise
    except Exception as exc:  # truncated data, unknown format, reader bugs
        raise ImageError(
            f"{path}: cannot decode the image ({type(exc).__name__}: {exc}); it may be truncated "
            "or damaged: re-export it."
        ) from exc
    if not np.isfinite(rgba).all():
        raise ImageError(f"{path}: image contains NaN or infinite values.")
    return rgba


def composite(rgba: np.ndarray, background) -> np.ndarray:
    """Straight-alpha RGBA [..., 4] over a constant background colour -> RGB [..., 3]."""
    bg = np.asarray(background, dtype=rgba.dtype)
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + bg * (1.0 - alpha)


def to_uint8(values: np.ndarray) -> np.ndarray:
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write float [H, W, 3|4] in [0, 1] (or uint8) as an 8-bit RGB/RGBA PNG, atomically."""
    from PIL import Image

    data = image if image.dtype == np.uint8 else to_uint8(image)
    with atomic_path(path) as tmp:
        Image.fromarray(data).save(tmp, format="PNG")


def write_png16(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write uint16 [H, W] (grey) or [H, W, 3|4] as a 16-bit PNG, atomically."""
    import png

    data = np.asarray(image)
    if data.dtype.kind not in "ui":
        raise TypeError(f"write_png16 takes integers in [0, 65535], not {data.dtype}; scale first")
    if data.size and (data.min() < 0 or data.max() > 65535):
        raise ValueError(f"write_png16: values {data.min()}..{data.max()} outside [0, 65535]")
    if data.ndim not in (2, 3) or (data.ndim == 3 and not 1 <= data.shape[2] <= 4):
        raise ValueError(f"write_png16 takes [H, W] or [H, W, 1..4], not {data.shape}")
    data = data.astype(np.uint16)
    height, width = data.shape[:2]
    planes = 1 if data.ndim == 2 else data.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes] + ";16"
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        png.from_array(data.reshape(height, width * planes), mode).write(handle)


def write_exr(path: str | os.PathLike, channels: dict[str, np.ndarray]) -> None:
    """Write float32 [H, W] channels (e.g. {"Z": depth}) to an uncompressed-safe ZIP EXR."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    data = {name: np.ascontiguousarray(v, dtype=np.float32) for name, v in channels.items()}
    with atomic_path(path) as tmp, OpenEXR.File(header, data) as exr:
        exr.write(str(tmp))
