"""Rendering full images from a trained field: one :class:`Renderer`, and the ``render`` job that
writes a folder of images.

Images are rendered in chunks of rays without gradients on the model's device and returned as numpy.
Output PNGs are RGBA with straight alpha = accumulated opacity, so compositing one over the training
background reproduces what the model was trained to match. A model trained on opaque images
learned the world behind the scene (``nerf/environment.py``): its PNGs show that world behind the
NeRF in their colour, and their alpha is still the NeRF's own opacity (``render.json`` says
``"world": true``).

Any camera renders the whole scene box (no clipping by the training cameras' near/far); a view in
which the NeRF covers (almost) nothing is reported with a ``warning`` event and ``"empty": true``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from ..checkpoint import LoadedRun, load_run
from ..config import TrainConfig
from ..data.cameras import Intrinsics
from ..data.dataset import Frame, read_split, read_transforms
from ..data.events import OnEvent, emit
from ..data.fileio import make_dir, write_json_atomic
from ..data.images import composite, write_exr, write_png, write_png16
from ..data.scene_box import SceneBox
from ..nerf.model import NeRF, render_rays
from ..nerf.rays import RayBatch, RayBounds, image_rays_tensor
from ..nerf.sampling import interval_edges
from ..nerf.volume_rendering import RenderOutput, median_depth
from ..runtime import (
    autocast_dtype,
    configure_process,
    configure_threads,
    rays_per_pass,
    resolve_device,
)
from .metrics import EMPTY_COVERAGE, is_empty

DEPTH_FORMATS = ("png16", "exr")


@dataclass
class RenderedView:
    # [H, W, 4] float32, alpha = accumulated opacity of the field; colour straight, or (``world``)
    # the final colour with the learned world behind the field
    rgba: np.ndarray
    # [H, W] float32 world distance along each ray to the surface that covers most of the pixel
    # (the median depth; 0 where nothing was hit)
    depth: np.ndarray
    world: bool = False  # the colour already shows the learned environment behind the field

    def over(self, background) -> np.ndarray:
        """[H, W, 3] the view composited over a constant background colour — or, when the model
        learned the world behind the scene, over that world (``background`` is not used)."""
        if self.world:
            return self.rgba[..., :3].copy()
        return composite(self.rgba, background)

    @property
    def coverage(self) -> float:
        """The share of the image the NeRF covers: the mean opacity, 0–1."""
        return float(self.rgba[..., 3].mean())


class Renderer:
    """A field ready to render any camera: the model (coarse + fine), the scene box it was trained
    in, and how to run it (ray bounds, autocast dtype, rays per chunk) as its configuration says.

    Used for the ``render`` and ``eval`` jobs, training previews, the final evaluation and the
    benchmarks alike. The model's device is the renderer's device.
    """

    def __init__(
        self,
        model: NeRF,
        box: SceneBox,
        config: TrainConfig,
        *,
        chunk_rays: int | None = None,
    ):
        """``chunk_rays``: rays per forward pass (default: what ``config`` gives on the model's
        device)."""
        self.model, self.box, self.config = model, box, config
        self.device = next(model.parameters()).device
        # any camera, also one farther away than the training rig: the scene box bounds the rays
        self.bounds = RayBounds(box, config.sampling.use_aabb, self.device, novel_views=True)
        self.dtype = autocast_dtype(config.mixed_precision, self.device)
        self.chunk_rays = chunk_rays or rays_per_pass(config, self.device, training=False)

    @classmethod
    def for_run(cls, run: LoadedRun) -> Renderer:
        return cls(run.model, run.box, run.config)

    @torch.no_grad()
    def render(self, intrinsics: Intrinsics, camera_to_world: np.ndarray) -> RenderedView:
        """Render one camera: ``camera_to_world`` [4, 4] in world units, at the intrinsics'
        resolution. Depth comes back in world units (metres for a Blender scene)."""
        box, early_stop = self.box, self.config.sampling.early_stop
        rays_o, rays_d = image_rays_tensor(
            intrinsics, box.to_unit_poses(camera_to_world), self.device
        )
        rgb_parts, acc_parts, depth_parts, world_parts = [], [], [], []
        world = self.model.environment
        for start in range(0, rays_o.shape[0], self.chunk_rays):
            part = slice(start, start + self.chunk_rays)
            rays = self.bounds(rays_o[part], rays_d[part])
            out = render_rays(
                self.model, rays, None, perturb=False, autocast_dtype=self.dtype,
                early_stop=early_stop,
            ).final  # fmt: skip
            rgb_parts.append(out.rgb.float().cpu())
            acc_parts.append(out.acc.float().cpu())
            depth_parts.append(_surface_depth(out, rays).cpu())
            if world is not None:
                world_parts.append(world(rays_d[part]).float().cpu())
        h, w = intrinsics.h, intrinsics.w
        premultiplied = torch.cat(rgb_parts).numpy().reshape(h, w, 3)
        acc = torch.cat(acc_parts).numpy().reshape(h, w, 1).clip(0.0, 1.0)
        depth = torch.cat(depth_parts).numpy().reshape(h, w) * box.scale
        depth = np.where(acc[..., 0] > 1e-3, depth, 0.0)
        if world is not None:  # C = C_field + (1 − acc) · C_env(rays_d); alpha stays the field's
            behind = torch.cat(world_parts).numpy().reshape(h, w, 3)
            color = (premultiplied + (1.0 - acc) * behind).clip(0.0, 1.0)
        else:
            color = np.where(acc > 1e-6, premultiplied / np.maximum(acc, 1e-6), 0.0).clip(0, 1)
        return RenderedView(
            rgba=np.concatenate([color, acc], axis=-1).astype(np.float32),
            depth=depth.astype(np.float32),
            world=world is not None,
        )


def _surface_depth(out: RenderOutput, rays: RayBatch) -> torch.Tensor:
    """[N, 1] each ray's median depth (``volume_rendering.median_depth``: one surface per pixel,
    as Blender's depth pass has), in the unit frame; rays that miss the scene box keep ``out``'s.
    ``out.weights`` and ``out.t_vals`` cover the hit rays only (see ``render_rays``)."""
    hit = (rays.far > rays.near)[:, 0]
    depth = out.depth.float().clone()
    if out.weights.shape[0] == int(hit.sum()) > 0:
        edges = interval_edges(out.t_vals.float(), rays.near[hit], rays.far[hit])
        depth[hit] = median_depth(out.weights, edges)
    return depth


def view_name(frame: Frame, index: int) -> str:
    """The file stem a view is written under: its image's name, else ``view_<index>``."""
    if frame.file_path:
        stem = Path(frame.file_path.replace("\\", "/")).name
        stem = (
            stem.rsplit(".", 1)[0]
            if stem.lower().endswith((".png", ".exr", ".jpg", ".jpeg"))
            else stem
        )
        if stem and stem not in (".", ".."):
            return stem
    return f"view_{index:04d}"


def render_frames(
    renderer: Renderer,
    frames: Sequence[Frame],
    out_dir: str | os.PathLike,
    *,
    depth_format: str | None = "png16",
    on_event: OnEvent | None = None,
    step: int = 0,
    run_dir: str | None = None,
    group: distributed.Group = distributed.SINGLE,
) -> dict:
    """Render ``frames`` into ``out_dir`` as ``<name>.png`` (+ ``<name>_depth.png|.exr``) and
    write ``render.json`` listing the files and the depth encoding. Returns that manifest.

    ``on_event`` gets a ``progress`` event (``done``, ``total``, ``name``, ``path``) after each
    view, and a ``warning`` for each empty one (also ``"empty": true`` with its ``coverage``, the
    mean opacity, in the manifest); ``step`` (the model's training step) and ``run_dir`` are
    recorded in the manifest, and ``world`` says whether the colour shows the learned world.

    Several processes (``group``, under torchrun) split the frames (rank r renders frames r,
    r + N, ...: the same pixels a single process writes); rank 0 writes ``render.json`` for all
    of them and counts ``done`` as if every rank kept its pace. Every rank returns the manifest.
    """
    out = make_dir(out_dir)
    views, names = [], unique_names(frames)
    started = time.perf_counter()
    mine = range(group.rank, len(frames), group.world_size)
    for count, index in enumerate(mine, start=1):
        frame, name = frames[index], names[index]
        view = renderer.render(frame.intrinsics, frame.camera_to_world)
        write_png(out / f"{name}.png", view.rgba)
        entry = {
            "name": name,
            "image": f"{name}.png",
            "transform_matrix": frame.camera_to_world.tolist(),
            "coverage": view.coverage,
            "empty": is_empty(view.rgba[..., 3]),
        }
        if entry["empty"]:
            emit(on_event, "warning", step, message=empty_view_message(name), view=name)
        entry.update(_write_depth(out, name, view.depth, depth_format))
        views.append((index, entry))
        done = min(len(frames), count * group.world_size) if group.active else index + 1
        emit(
            on_event, "progress", step, done=done, total=len(frames), name=name,
            path=str(out / f"{name}.png"),
        )  # fmt: skip
    views = [entry for part in distributed.gather(views, group) for entry in part]
    views = [entry for _, entry in sorted(views, key=lambda item: item[0])]
    manifest = {
        "run": run_dir,
        "step": step,
        "seconds": time.perf_counter() - started,
        "world": renderer.model.environment is not None,  # the colour shows the learned world
        "views": views,
    }
    if group.is_main:
        write_json_atomic(out / "render.json", manifest)
    return manifest


def unique_names(frames: Sequence[Frame]) -> list[str]:
    """The file stem of every frame (:func:`view_name`; a repeated one gets its index)."""
    names, seen = [], set()
    for index, frame in enumerate(frames):
        name = view_name(frame, index)
        if name in seen:
            name = f"{name}_{index:04d}"
        seen.add(name)
        names.append(name)
    return names


def empty_view_message(name: str) -> str:
    """What to tell the user about a view in which the NeRF is (almost) invisible."""
    return (
        f"view '{name}': the NeRF render is empty (it covers under {EMPTY_COVERAGE:.1%} of the "
        "image): nothing of the trained scene is in front of this camera. Aim the camera at the "
        "subject (the scene box the NeRF was trained in)."
    )


def _write_depth(out: Path, name: str, depth: np.ndarray, depth_format: str | None) -> dict:
    if depth_format is None:
        return {}
    if depth_format == "exr":
        write_exr(out / f"{name}_depth.exr", {"Z": depth})
        return {
            "depth": f"{name}_depth.exr",
            "depth_encoding": "exr float32 distance along the ray",
        }
    depth_max = float(depth.max()) or 1.0
    write_png16(out / f"{name}_depth.png", np.round(depth / depth_max * 65535.0).astype(np.uint16))
    return {
        "depth": f"{name}_depth.png",
        "depth_encoding": "uint16 distance along the ray; metres = value / 65535 * depth_max",
        "depth_max": depth_max,
    }


def frames_to_render(
    run: LoadedRun, cameras: str | os.PathLike | None, split: str | None
) -> list[Frame]:
    """The frames of a cameras file or of a split of the run's dataset (images not needed: a
    test split whose views were never rendered renders all the same)."""
    if cameras is not None:
        return list(read_transforms(cameras, require_images=False).frames)
    return list(read_split(run.dataset_dir, split or "test", require_images=False).frames)


def render_job(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    cameras: str | os.PathLike | None = None,
    split: str | None = None,
    depth_format: str | None = "png16",
    device: str = "auto",
    on_event: OnEvent | None = None,
) -> dict:
    """The ``render`` job: the run's newest readable checkpoint renders the cameras of
    ``cameras`` (a transforms file whose frames need no images) or of ``split`` of its dataset
    into ``out_dir``. Events: ``warning`` (a newer checkpoint did not read), ``start``,
    ``progress`` per view, ``done``. Returns the ``render.json`` manifest.

    Raises CheckpointError/DatasetError (ValueErrors) naming the file for bad input, and
    OutputError when ``out_dir`` cannot be written.
    """
    if depth_format is not None and depth_format not in DEPTH_FORMATS:
        raise ValueError(f"depth format {depth_format!r}: use one of {', '.join(DEPTH_FORMATS)}")
    configure_process()
    with distributed.process_group(resolve_device(device)) as (group, rank_device):
        configure_threads(distributed.cpu_threads(group, rank_device))
        on_event = on_event if group.is_main else None  # (rank 0 speaks for all)
        run = load_run(run_dir, rank_device)
        for note in run.notes:
            emit(on_event, "warning", run.step, message=note)
        frames = frames_to_render(run, cameras, split)
        emit(on_event, "start", run.step, job="render", total=len(frames), run=str(run.run_dir))
        manifest = render_frames(
            Renderer.for_run(run), frames, out_dir, depth_format=depth_format,
            on_event=on_event, step=run.step, run_dir=str(run.run_dir), group=group,
        )  # fmt: skip
    emit(
        on_event, "done", run.step, job="render", n_views=len(manifest["views"]),
        seconds=manifest["seconds"], out=str(out_dir),
    )  # fmt: skip
    return manifest
