"""Triangle meshes with per-vertex normals and colours as binary PLY (the mesh job's output).

The file is what Blender, MeshLab, CloudCompare and most tools read: ``binary_little_endian
1.0``, a ``vertex`` element with float ``x y z nx ny nz`` and uchar ``red green blue``, and a
``face`` element with a ``vertex_indices`` list (uchar count, int indices), coordinates in world
units. :func:`write_mesh_ply` writes it with ``plyfile`` (imported where it is used), atomically.

:func:`read_mesh_ply` reads such a file back into numpy with the standard library and numpy only,
because the add-on reads it inside Blender, whose Python has no ``plyfile``. It accepts binary
little-endian files with scalar vertex properties in any order and a triangle list; anything
else is refused with :class:`MeshFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import atomic_path

_SCALARS = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
MAX_HEADER_BYTES = 65536


class MeshFileError(ValueError):
    """A mesh file that cannot be read; the message names the file and what to do."""


@dataclass(frozen=True)
class MeshArrays:
    """A triangle mesh: ``vertices`` [V, 3] float32 (world units), ``faces`` [F, 3] int32
    (counter-clockwise seen from outside), ``normals`` [V, 3] float32 unit outward normals,
    ``colors`` [V, 3] uint8 sRGB."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colors: np.ndarray


def write_mesh_ply(
    path: str | os.PathLike, mesh: MeshArrays, comments: tuple[str, ...] = ()
) -> None:
    """Write ``mesh`` as a binary little-endian PLY (``plyfile``), atomically: a failed write
    leaves no partial file. ``comments``: header comment lines (e.g. how it was made).

    Raises :class:`~.fileio.OutputError` when ``path`` cannot be written.
    """
    from plyfile import PlyData, PlyElement

    vertex = np.empty(
        len(mesh.vertices),
        dtype=[(n, "f4") for n in ("x", "y", "z", "nx", "ny", "nz")]
        + [(n, "u1") for n in ("red", "green", "blue")],
    )
    for i, name in enumerate("xyz"):
        vertex[name] = mesh.vertices[:, i]
        vertex["n" + name] = mesh.normals[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        vertex[name] = mesh.colors[:, i]
    face = np.empty(len(mesh.faces), dtype=[("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = mesh.faces
    data = PlyData(
        [PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")],
        text=False,
        byte_order="<",
        comments=list(comments),
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        data.write(handle)


def read_mesh_ply(path: str | os.PathLike) -> MeshArrays:
    """Read a binary little-endian triangle PLY (see the module docstring) into numpy.

    Normals default to zero and colours to mid grey when the file has none. Raises
    :class:`MeshFileError` for a missing, truncated or unsupported file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MeshFileError(f"{path}: cannot read the mesh file ({exc.strerror or exc}).") from exc
    end = raw.find(b"end_header\n", 0, MAX_HEADER_BYTES)
    if not raw.startswith(b"ply\n") or end < 0:
        raise MeshFileError(f"{path}: not a PLY file (no 'ply' ... 'end_header' header).")
    elements = _parse_header(path, raw[:end].decode("ascii", errors="replace").splitlines())
    offset = end + len(b"end_header\n")
    arrays = {}
    for name, count, dtype in elements:
        size = count * dtype.itemsize
        if offset + size > len(raw):
            raise MeshFileError(f"{path}: the file is truncated in its '{name}' data.")
        arrays[name] = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        offset += size
    return _mesh_from(path, arrays)


def _parse_header(path: Path, lines: list[str]) -> list[tuple[str, int, np.dtype]]:
    """[(element name, count, numpy dtype of one record)] of the header's elements."""
    if "format binary_little_endian 1.0" not in lines:
        raise MeshFileError(
            f"{path}: only binary little-endian PLY is read here; save it as binary PLY."
        )
    elements: list[tuple[str, int, list]] = []
    for line in lines:
        words = line.split()
        if words[:1] == ["element"] and len(words) == 3:
            elements.append((words[1], int(words[2]), []))
        elif words[:1] == ["property"] and elements:
            fields = elements[-1][2]
            if words[1] == "list" and len(words) == 5:
                if words[2] not in ("uchar", "uint8") or words[3] not in _SCALARS:
                    raise MeshFileError(f"{path}: unsupported list property '{line}'.")
                fields += [("count", "u1"), (words[4], "<" + _SCALARS[words[3]], (3,))]
            elif len(words) == 3 and words[1] in _SCALARS:
                fields.append((words[2], "<" + _SCALARS[words[1]]))
            else:
                raise MeshFileError(f"{path}: unsupported property '{line}'.")
    return [(name, count, np.dtype(fields)) for name, count, fields in elements]


def _mesh_from(path: Path, arrays: dict) -> MeshArrays:
    vertex, face = arrays.get("vertex"), arrays.get("face")
    if vertex is None or face is None or "vertex_indices" not in (face.dtype.names or ()):
        raise MeshFileError(f"{path}: a mesh needs 'vertex' and 'face' elements.")
    if len(face) and not (face["count"] == 3).all():
        raise MeshFileError(f"{path}: only triangles are read here; triangulate the mesh.")
    names = vertex.dtype.names

    def columns(keys, default, dtype):
        if all(k in names for k in keys):
            return np.stack([vertex[k] for k in keys], axis=-1).astype(dtype)
        return np.full((len(vertex), len(keys)), default, dtype=dtype)

    faces = face["vertex_indices"].astype(np.int32)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertex)):
        raise MeshFileError(f"{path}: a face refers to a vertex the file does not have.")
    return MeshArrays(
        vertices=columns(("x", "y", "z"), 0.0, np.float32),
        faces=faces.reshape(-1, 3),
        normals=columns(("nx", "ny", "nz"), 0.0, np.float32),
        colors=columns(("red", "green", "blue"), 128, np.uint8),
    )
