"""Hostile surroundings for the engine: output folders that cannot be written, a full disk, a
damaged run configuration, odd but valid images, and folders with spaces and non-ASCII names.

Failures must be one error of the engine's own type that names the path and says what to do, and
must leave what was already written intact; the odd-but-valid cases must simply work.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import png as pypng
import pytest
from engine_helpers import tiny_config
from PIL import Image

from nerf_engine import cli
from nerf_engine.checkpoint import CheckpointError, load_run
from nerf_engine.data.dataset import load_rgba, read_split, read_transforms
from nerf_engine.data.events import EventLog
from nerf_engine.data.fileio import OutputError, write_json_atomic
from nerf_engine.data.run_folder import RunFolder
from nerf_engine.eval.evaluate import evaluate_run
from nerf_engine.eval.renderer import Renderer, render_frames
from nerf_engine.tools.toy_scene import make_toy_dataset
from nerf_engine.train.trainer import train


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    return make_toy_dataset(
        tmp_path_factory.mktemp("hostile") / "data", size=(16, 16), n_train=6, n_val=1, n_test=1
    )


def last_event(run: Path) -> dict:
    return json.loads((run / "events.jsonl").read_text().splitlines()[-1])


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


# --- output folders that cannot be written ------------------------------------------------------


def test_run_folder_below_a_regular_file(small_dataset, tmp_path, capsys):
    """Works as root too, where permission bits do not stop a write."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file, not a folder")
    run = blocker / "run"
    with pytest.raises(OutputError) as info:
        train(tiny_config(steps=2), small_dataset, run)
    assert type(info.value) is OutputError and info.value.errno == errno.ENOTDIR
    assert str(info.value) == (
        f"{run}: cannot create the folder (Not a directory); a file stands where a folder "
        "should be; choose another path."
    )
    # the command line: exit status 2, the same one line, an error event, no traceback
    args = ["train", str(small_dataset), "--out", str(run), "--steps", "2", "--events", "jsonl"]
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["message"] == str(info.value)
    assert err == f"error: {info.value}\n"
    assert blocker.read_text() == "a file, not a folder"


def test_render_folder_below_a_regular_file(trained, tmp_path):
    blocker = tmp_path / "file.png"
    blocker.write_bytes(b"x")
    frames = read_split(trained["data"], "test").frames
    with pytest.raises(OutputError, match="a file stands where a folder should be"):
        render_frames(
            Renderer.for_run(load_run(trained["run"], "cpu")), frames, blocker / "renders"
        )


def test_read_only_run_folder(small_dataset, tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):  # root (or a file system without permission bits)
            pytest.skip("permission bits do not stop this user; see the regular-file case")
        with pytest.raises(OutputError, match="the folder is not writable; choose another"):
            train(tiny_config(steps=2), small_dataset, parent / "run")
    finally:
        parent.chmod(0o700)


# --- a full disk --------------------------------------------------------------------------------


def disk_full_after(monkeypatch, allowed: int) -> None:
    """From now on the (allowed+1)-th and later writes through ``atomic_path`` write half of their
    bytes and then fail the way a full disk does."""
    real_write = Path.write_bytes
    count = {"writes": 0}

    def write_bytes(self, data):
        if self.name.endswith(".tmp"):
            count["writes"] += 1
            if count["writes"] > allowed:
                real_write(self, bytes(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_full_disk_keeps_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"psnr": 30.0})
    disk_full_after(monkeypatch, 0)
    with pytest.raises(OutputError) as info:
        write_json_atomic(path, {"psnr": 31.0, "views": list(range(1000))})
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == (
        f"{path}: cannot write (No space left on device); the disk is full; free some space and "
        "try again."
    )
    assert json.loads(path.read_text()) == {"psnr": 30.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_full_disk_while_checkpointing_keeps_the_last_checkpoint_and_resume_works(
    small_dataset, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    config = tiny_config(steps=10, preview_every=100, eval_views=0)

    def fill_the_disk_after_the_first_checkpoint(event):
        if event["event"] == "checkpoint":
            disk_full_after(monkeypatch, 0)

    with pytest.raises(OutputError, match="the disk is full; free some space"):
        train(config, small_dataset, run, on_event=fill_the_disk_after_the_first_checkpoint)
    assert last_event(run)["event"] == "error"
    assert "step_0000010.pt: cannot write (No space left" in last_event(run)["message"]
    assert [p.name for p in RunFolder(run).checkpoints()] == ["step_0000005.pt"]
    assert load_run(run, "cpu").step == 5 and temporary_files(run) == []
    monkeypatch.undo()  # space freed
    result = train(config, small_dataset, run, resume=True)
    assert (result.stopped, result.step) == ("completed", 10)


# --- a damaged run configuration on --resume ----------------------------------------------------


@pytest.fixture(scope="module")
def trained(small_dataset, tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("trained") / "run"
    train(tiny_config(steps=2, eval_views=0), small_dataset, run)
    return {"data": small_dataset, "run": run}


@pytest.mark.parametrize(
    "content",
    ['{"config": {"steps": 5', '{"engine_version": "0.1"}', '{"config": {"steps": "many"}}', "[]"],
    ids=["truncated", "no config", "wrong type", "not an object"],
)
def test_resume_with_a_damaged_config_json(trained, tmp_path, capsys, content):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    (run / "config.json").write_text(content)
    before = RunFolder(run).checkpoints()[-1].read_bytes()
    args = ["train", str(trained["data"]), "--out", str(run), "--resume", "--steps", "4"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / 'config.json'}: unreadable run configuration (")
    assert "restore it, or resume with the run's --preset" in err and "Traceback" not in err
    assert RunFolder(run).checkpoints()[-1].read_bytes() == before
    with pytest.raises(CheckpointError):
        cli.train_config(cli.build_parser().parse_args(args))


# --- odd but valid inputs work -------------------------------------------------------------------


def test_grey_16_bit_palette_and_cmyk_images_in_one_dataset(tmp_path):
    """All accepted and decoded to the same colours an RGBA PNG would give."""
    grey = np.array([[0, 128, 255]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    pypng.from_array(np.array([[0, 32768, 65535]], np.uint16), "L;16").save(
        str(tmp_path / "deep.png")
    )
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    palette.putdata([0, 1, 2])
    palette.save(tmp_path / "palette.png", transparency=bytes([255, 0, 128]))
    Image.fromarray(np.array([[[200, 40, 90]] * 3], np.uint8)).convert("CMYK").save(
        tmp_path / "cmyk.tif"
    )
    names = ["grey", "deep", "palette", "cmyk.tif"]
    frames = [{"file_path": name, "transform_matrix": np.eye(4).tolist()} for name in names]
    path = tmp_path / "transforms_train.json"
    path.write_text(json.dumps({"camera_angle_x": 0.5, "frames": frames}))
    grey_img, deep, pal, cmyk = load_rgba(read_transforms(path))
    np.testing.assert_allclose(grey_img[0, :, 0], [0, 128 / 255, 1], atol=1e-7)
    np.testing.assert_allclose(deep[0], [[0, 0, 0, 1], [32768 / 65535] * 3 + [1], [1, 1, 1, 1]])
    np.testing.assert_allclose(pal[0], [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 128 / 255]])
    np.testing.assert_allclose(cmyk[0, 0], [200 / 255, 40 / 255, 90 / 255, 1], atol=1e-7)


NON_ASCII = "Müller’s scans 数据 ünïcödé"


def test_spaces_and_non_ascii_names_work_end_to_end(tmp_path):
    """Dataset folder, image files, run folder and render folder all with spaces, accents, CJK and
    a typographic apostrophe: read, train, checkpoint, resume, render, evaluate."""
    data = make_toy_dataset(
        tmp_path / NON_ASCII / "my data", size=(16, 16), n_train=6, n_val=1, n_test=1
    )
    for split in ("train", "val", "test"):  # images renamed to non-ASCII names with spaces
        transforms = data / f"transforms_{split}.json"
        obj = json.loads(transforms.read_text())
        for frame in obj["frames"]:
            old = data / f"{frame['file_path']}.png"
            frame["file_path"] = f"./{split}/Ansicht Nr. {old.stem} – é"
            old.rename(data / f"{frame['file_path']}.png")
        transforms.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    assert all(f.image_path.is_file() for f in read_split(data, "train").frames)

    run = tmp_path / "runs ✓" / "erster Lauf"
    first = train(tiny_config(steps=2, eval_views=0), data, run)
    assert (first.stopped, first.step) == ("completed", 2)
    resumed = train(tiny_config(steps=3, eval_views=1), data, run, resume=True)
    assert (resumed.stopped, resumed.step) == ("completed", 3)
    assert load_run(run, "cpu").step == 3

    out = tmp_path / "Ausgabe Bilder ü"
    frames = read_split(data, "test").frames
    manifest = render_frames(Renderer.for_run(load_run(run, "cpu")), frames, out)
    image = out / manifest["views"][0]["image"]
    assert image.name == "Ansicht Nr. r_0 – é.png" and image.is_file()
    report = evaluate_run(run, "test", device="cpu")
    assert report["n_views"] == 1 and np.isfinite(report["psnr"])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_events_on_a_full_disk_still_reach_the_caller_then_fail_clearly(tmp_path):
    """/dev/full: a real device on which every write fails with ENOSPC."""
    seen: list = []
    log = EventLog(Path("/dev/full"), seen.append)
    with pytest.raises(OutputError, match=r"/dev/full: cannot write .*the disk is full") as info:
        log.emit("progress", 3, loss=0.5)
    assert info.value.errno == errno.ENOSPC
    assert [(e["event"], e["step"]) for e in seen] == [("progress", 3)]
    log.close()  # lines that could not be written do not fail a second time
