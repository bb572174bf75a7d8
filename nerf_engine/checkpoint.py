"""Checkpoints: written atomically, loaded with ``weights_only=True``, checked before use.

A checkpoint holds only tensors, numbers and strings (JSON text for the configuration and the scene
box), so ``torch.load(..., weights_only=True)`` can read it and a file from elsewhere cannot
run code. It is serialised in memory and then written atomically, so a process killed mid-write
leaves only a temporary file beside the previous checkpoints (removed by the next training run),
and a full disk raises :class:`~.data.fileio.OutputError` with the previous checkpoints intact.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import TrainConfig, from_dict, validate
from .data.fileio import write_bytes_atomic
from .data.run_folder import CHECKPOINTS, RunFolder, RunFolderError
from .data.scene_box import SceneBox
from .nerf.model import NeRF
from .runtime import resolve_device

FORMAT = "blender-nerf-checkpoint"
VERSION = 1


class CheckpointError(RunFolderError):
    """A checkpoint or run folder that cannot be used; the message names the file and what to do."""


def save_checkpoint(
    path: Path,
    *,
    step: int,
    config: TrainConfig,
    box: SceneBox,
    dataset_dir: str,
    model: NeRF,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    lr_scale: float = 1.0,
) -> None:
    """Write a checkpoint atomically; ``lr_scale`` is the learning-rate factor left by NaN
    rollbacks (1 when there were none)."""
    state = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "config": config.to_json(),
        "scene": json.dumps(box.to_dict()),
        "dataset_dir": dataset_dir,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "lr_scale": float(lr_scale),
    }
    buffer = io.BytesIO()  # so that every failure to write is an OSError of our own write
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getbuffer())


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    for old in RunFolder(run_dir).checkpoints()[: -max(keep, 1)]:
        old.unlink(missing_ok=True)


def remove_partial_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of checkpoint writes that never finished (the process was
    killed mid-write); returns them. Call only while no other process trains into ``run_dir``."""
    partial = RunFolder(run_dir).partial_checkpoints()
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load and validate a checkpoint file onto the CPU."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found.") from exc
    except Exception as exc:  # truncated zip, pickle refusing a non-tensor object, ...
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {_first_line(exc)}). "
            "It may be truncated or not from blender-nerf; use an earlier checkpoint or retrain."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a blender-nerf checkpoint; train with this engine or pick another file."
        )
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {state.get('version')!r}; this engine reads "
            f"version {VERSION}. Retrain, or use the engine version that wrote it."
        )
    damaged = "it is damaged; use an earlier checkpoint or retrain."
    for key in ("step", "config", "scene", "model", "optimizer", "generator"):
        if key not in state:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'; {damaged}")
    step, lr_scale = state["step"], state.get("lr_scale", 1.0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{path}: 'step' is {step!r}, not a step number; {damaged}")
    if not isinstance(lr_scale, float | int) or not (0.0 < lr_scale <= 1.0):
        raise CheckpointError(f"{path}: 'lr_scale' is {lr_scale!r}, not in (0, 1]; {damaged}")
    return state


def read_newest(checkpoints: list[Path]) -> tuple[dict, Path, list[str]]:
    """The newest checkpoint of ``checkpoints`` (oldest first) that reads, its path, and why each
    newer one was passed over. A damaged newest file (disk trouble, an edit by hand) then costs
    the steps since the one before it, not the run. None readable: the newest one's error."""
    errors: list[CheckpointError] = []
    for path in reversed(checkpoints):
        try:
            state = read_checkpoint(path)
        except CheckpointError as exc:
            errors.append(exc)
            continue
        return state, path, [f"{exc} Using the checkpoint before it." for exc in errors]
    if not errors:
        raise CheckpointError("no checkpoints given")
    if len(errors) == 1:
        raise errors[0]
    raise CheckpointError(f"{errors[0]} (none of the {len(errors)} checkpoints reads)")


def build_model(
    state: dict, path: Path, device: torch.device
) -> tuple[NeRF, TrainConfig, SceneBox]:
    """The model a checkpoint describes, with its weights, on ``device``."""
    try:
        config = from_dict(json.loads(state["config"]))
        validate(config)
        box = SceneBox.from_dict(json.loads(state["scene"]))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{path}: its configuration is unreadable ({exc}); it is damaged or not from this "
            "engine — use an earlier checkpoint or retrain."
        ) from exc
    model = NeRF(config.model, config.sampling, torch.tensor(box.unit_aabb()))
    problem = _weights_mismatch(model.state_dict(), state["model"])
    if problem:
        raise CheckpointError(
            f"{path}: weights do not fit the architecture its configuration describes ({problem})."
        )
    bad = [k for k, v in state["model"].items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise CheckpointError(
            f"{path}: weights contain NaN or infinity ({', '.join(bad[:3])}); training diverged "
            "before this was saved — use an earlier checkpoint or retrain."
        )
    model.load_state_dict(state["model"], strict=True)
    return model.to(device), config, box


def _weights_mismatch(expected: dict, weights) -> str:
    """'' when ``weights`` fits ``expected`` (a state_dict), else what differs, briefly."""
    if not isinstance(weights, dict):
        return "weights are not a dictionary of tensors"
    problems = [f"missing {k}" for k in expected if k not in weights]
    problems += [f"unexpected {k}" for k in weights if k not in expected]
    for key, tensor in expected.items():
        value = weights.get(key)
        if value is not None and not isinstance(value, torch.Tensor):
            problems.append(f"{key} is not a tensor")
        elif value is not None and value.shape != tensor.shape:
            problems.append(
                f"size mismatch {key}: {tuple(value.shape)}, expected {tuple(tensor.shape)}"
            )
    shown = "; ".join(problems[:3])
    return shown + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:300]


@dataclass
class LoadedRun:
    run_dir: Path
    checkpoint: Path
    step: int
    config: TrainConfig
    box: SceneBox
    model: NeRF
    dataset_dir: str
    notes: list[str] = field(default_factory=list)  # newer checkpoints that did not read


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "auto") -> LoadedRun:
    """The latest checkpoint of a run folder, ready to render (model in eval mode)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: run folder not found; train first or check the path.")
    checkpoints = RunFolder(run_dir).checkpoints()
    if not checkpoints:
        raise CheckpointError(f"{run_dir}: no checkpoints in {CHECKPOINTS}/; train first.")
    state, path, skipped = read_newest(checkpoints)
    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    model, config, box = build_model(state, path, torch_device)
    model.eval()
    return LoadedRun(
        run_dir,
        path,
        int(state["step"]),
        config,
        box,
        model,
        str(state.get("dataset_dir", "")),
        skipped,
    )
