"""Atomic writes: the old file or the whole new one, never half of one, and no debris."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

from nerf_engine.data import fileio
from nerf_engine.data.fileio import OutputError, atomic_path, write_bytes_atomic, write_json_atomic

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_creates_folders_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a" / "b" / "out.json"
    write_json_atomic(path, {"x": [1, 2.5]})
    assert json.loads(path.read_text()) == {"x": [1, 2.5]}
    assert listing(path.parent) == ["out.json"]


def test_replacing_an_existing_file(tmp_path):
    path = tmp_path / "out.bin"
    write_bytes_atomic(path, b"old")
    write_bytes_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert listing(tmp_path) == ["out.bin"]


def test_exception_while_writing_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_path(path) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"old"
    assert listing(tmp_path) == ["out.bin"]


def test_failing_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def refuse(src, dst):
        raise PermissionError(f"cannot replace {dst}")

    monkeypatch.setattr(fileio.os, "replace", refuse)
    with pytest.raises(OutputError, match=re.escape(f"{path}: cannot write (cannot replace")):
        write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object()], ids=["nan", "inf", "obj"])
def test_json_that_cannot_be_written_touches_nothing(tmp_path, value):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"ok": 1})
    with pytest.raises((ValueError, TypeError)):
        write_json_atomic(path, {"bad": value})
    assert json.loads(path.read_text()) == {"ok": 1}
    with pytest.raises((ValueError, TypeError)):
        write_json_atomic(tmp_path / "new.json", [value])
    assert listing(tmp_path) == ["out.json"]


def test_writing_over_a_folder_fails_cleanly(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        write_bytes_atomic(tmp_path / "taken", b"x")
    assert listing(tmp_path) == ["taken"]


@posix_only
def test_new_file_gets_the_usual_permissions_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "new.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644


@posix_only
def test_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "shared.json"
    path.write_text("{}")
    path.chmod(0o664)
    write_json_atomic(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
