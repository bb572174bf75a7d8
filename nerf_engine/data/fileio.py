"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

A write that fails (full disk, read-only folder, a file where a folder should be) raises
:class:`OutputError`, which names the file and what to do, and leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class OutputError(OSError):
    """A file or folder that cannot be written. The message names it and says what to do;
    ``errno`` is the operating system's error number (None when it gave none)."""


_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space and try again",
    getattr(errno, "EDQUOT", errno.ENOSPC): "the disk quota is used up; free some space",
    errno.EACCES: "the folder is not writable; choose another one or fix its permissions",
    errno.EPERM: "the folder is not writable; choose another one or fix its permissions",
    errno.EROFS: "the disk is read-only; choose another folder",
    errno.ENOTDIR: "a file stands where a folder should be; choose another path",
    errno.EEXIST: "a file stands where a folder should be; choose another path",
    errno.EISDIR: "a folder stands where the file should be; choose another path",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
}


def output_error(path: str | os.PathLike, exc: OSError, action: str = "write") -> OutputError:
    """``exc`` as an :class:`OutputError` naming ``path``, with advice for the usual causes."""
    advice = _ADVICE.get(exc.errno)
    reason = exc.strerror or str(exc)
    error = OutputError(f"{path}: cannot {action} ({reason})" + (f"; {advice}." if advice else "."))
    error.errno = exc.errno
    return error


def make_dir(path: str | os.PathLike) -> Path:
    """Create an output folder and its parents (fine if it exists); :class:`OutputError` if not
    possible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc, "create the folder") from exc
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is synced and renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched; an OSError
    (also one raised while writing the temporary file) becomes an :class:`OutputError`. The new
    file gets the permissions of the file it replaces, or the usual ones for a new file (0666 less
    the umask) — not the owner-only 0600 that ``mkstemp`` gives the temporary file.
    """
    path = Path(path)
    make_dir(path.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OutputError:
        raise
    except OSError as exc:
        raise output_error(path, exc) from exc
    finally:
        with contextlib.suppress(OSError):  # (the error that got here matters more)
            tmp.unlink(missing_ok=True)


def _new_file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask. Linux shows it in /proc; elsewhere it can only be read by setting it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Serialise first (a value JSON cannot hold raises before any file is touched), then write."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))
