"""Training configuration: frozen dataclasses and the three presets (standard library only: the
add-on reads the preset and device names from here inside Blender).

``paper`` is Mildenhall et al. 2020 for synthetic scenes. ``balanced`` and ``preview`` change only
sizes and counts (never the algorithm: still positional encoding, coarse + fine networks,
inverse-CDF sampling) and switch on scene-box-bounded sampling.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

PRESETS = ("preview", "balanced", "paper", "fast")
# What each preset is, in a line, in an artist's words: the add-on's Preset menu shows these
# (label, tooltip). The sizes behind them are the presets below.
PRESET_SUMMARIES = {
    "preview": (
        "Preview",
        "Quickest: a small NeRF that gives a useful preview in minutes on a laptop's CPU "
        "(6000 steps)",
    ),
    "balanced": (
        "Balanced",
        "A bigger NeRF, sharper: for a GPU or a long CPU run (20000 steps)",
    ),
    "paper": (
        "Paper",
        "The original NeRF paper's settings: the biggest and sharpest, hours on a GPU "
        "(200000 steps)",
    ),
    "fast": (
        "Fast (tri-planes)",
        "A different kind of NeRF that learns more per step (feature planes instead of the "
        "paper's method) but takes half as many steps a second. On 5 test scenes with depth "
        "maps (100×100 pixels, 2 CPU cores) after 3 minutes: 30.4 dB on average against "
        "Preview's 29.9, ahead on 3 of the 5 (level after 90 s); at 400×400 pixels (thin "
        "structures, 10 minutes) well ahead: 32.8 dB against Preview's 29.6",
    ),
}
DEVICES = ("auto", "cpu", "cuda", "mps")
ENCODINGS = ("positional", "triplane")  # ModelConfig.encoding
ENVIRONMENTS = ("auto", "on", "off")  # ModelConfig.environment


@dataclass(frozen=True)
class ModelConfig:
    """One field network (the coarse and the fine network share this shape)."""

    pos_freqs: int = 10  # L for positions
    dir_freqs: int = 4  # L for view directions
    depth: int = 8  # trunk layers
    width: int = 256
    skip_layer: int | None = 5  # 0-based trunk layer whose input gets the encoded position again
    view_width: int = 128
    # "softplus": σ = softplus(raw + density_bias); never dead at initialisation, so training
    # cannot collapse to an all-background image. "relu" is the paper's literal activation.
    density_activation: str = "softplus"
    density_bias: float = -1.0
    # How positions are encoded: "positional" (the paper's sines and cosines, L = pos_freqs) or
    # "triplane" (multi-resolution feature planes, K-Planes; depth and width then size a small MLP).
    encoding: str = "positional"
    plane_resolutions: tuple[int, ...] = (64, 128, 256)
    plane_features: int = 16
    plane_lr_scale: float = 10.0  # the planes' learning rate, in units of the MLPs'
    plane_tv: float = 0.0  # weight of the planes' total variation in the loss
    # The world behind the scene box, learned as a background that depends on the ray direction
    # only (nerf/environment.py): "auto" = "on" for opaque training images (no alpha channel, or
    # alpha 1 everywhere: Film > Transparent off) and "off" for images with transparency; training
    # resolves "auto" before it builds the model (a model built from an unresolved "auto", i.e.
    # a checkpoint from before this setting, has none).
    environment: str = "auto"
    environment_resolution: int = 64  # rows of the finest equirectangular map (columns: twice)
    environment_lr_scale: float = 10.0  # the map's learning rate, in units of the MLPs'


@dataclass(frozen=True)
class SamplingConfig:
    n_coarse: int = 64
    n_fine: int = 128  # the fine network sees n_coarse + n_fine samples
    use_aabb: bool = False  # clip each ray's [near, far] to the scene box (rays that miss are free)
    density_noise: float = 0.0  # the paper's raw σ noise (off for synthetic scenes)
    # Empty-space skipping: an occupancy grid of this resolution over the scene box (0 = off),
    # refreshed every `occupancy_every` steps from the coarse network, used after the warm-up.
    occupancy_resolution: int = 0
    occupancy_every: int = 16
    occupancy_warmup: int = 256
    occupancy_threshold: float = 0.01  # a cell is empty when a cell-long sample's α stays below
    early_stop: float = 0.0  # rendering: skip samples behind a transmittance below this (0 = off)


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    steps: int = 200_000  # 0: no step limit, the time budget (max_seconds) ends training
    batch_rays: int = 4096
    lr: float = 5e-4
    lr_final: float = 5e-5  # exponential decay from lr to lr_final over `steps`
    precrop_steps: int = 500  # warm-up: sample rays only from the image centre
    precrop_fraction: float = 0.5
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # for RGBA data, evaluation, previews
    # Train RGBA data over a random colour per ray instead of `background`: transparent pixels then
    # cannot be explained by semi-transparent matter, so the learned alpha is right (instant-ngp).
    random_background: bool = False
    # Weight of an MSE between the rendered opacity and the images' alpha (RGBA data): teaches
    # alpha directly, also when training over a constant background.
    alpha_loss: float = 0.0
    # Weight of the coarse network's MSE beside the fine one's (the paper: 1, both equal;
    # mip-NeRF and nerfacc's proposal samplers weigh the sampling network's loss 0.1, which
    # measured worse here: the coarse network also refreshes the occupancy grid).
    coarse_loss: float = 1.0
    # Depth supervision, for datasets with depth maps (``depth_file_path``; nerf/depth_loss.py):
    # the depth loss's weight at the start of training, decaying exponentially to
    # `depth_loss_final` at its end. 0 = the depth maps are not used at all (no loss, and the
    # occupancy grid waits for its warm-up as without depth).
    depth_loss: float = 0.1
    depth_loss_final: float = 0.01
    # > 0: the weight halves every this many steps instead (floored at `depth_loss_final`), so
    # that a short run keeps a high weight and a long one reaches the floor, whatever its budget.
    depth_loss_half_life: int = 0
    # Start the occupancy grid from the depth maps' surface points (dilated by a margin) so that
    # empty space is skipped from the first step, instead of after `sampling.occupancy_warmup`.
    depth_occupancy: bool = True
    mixed_precision: str = "auto"  # "auto" (bf16 where the hardware has it), "bf16", "off"
    device: str = "auto"
    seed: int = 0
    max_seconds: float = 0.0  # wall-clock budget for this run; 0 = none (then `steps` ends it)
    log_every: int = 25
    preview_every: int = 500
    preview_max_side: int = 200
    checkpoint_every: int = 2000
    keep_checkpoints: int = 3
    eval_views: int = 8  # test views rendered for metrics.json at the end (0 = none)
    # Rays per forward/backward pass (gradients accumulate over the batch) and per rendering chunk;
    # 0 = automatic: the whole batch on CUDA, activation tensors of at most ~32 MB elsewhere.
    rays_per_pass: int = 0
    chunk_rays: int = 0
    threads: int = 0  # CPU threads for torch (0 = $NERF_THREADS or one per physical core)
    # torch.compile the two MLPs (dynamic shapes): faster steps after a one-off compilation; needs
    # a C++ compiler on the CPU. Off by default: the compilation costs more than a preview saves.
    compile: bool = False
    # CPU under bf16: each hidden layer's bias and ReLU fused into its oneDNN matmul, with a
    # hand-written backward (nerf/fused.py); a speed switch only (docs/benchmarks.md)
    fused_layers: bool = True

    @property
    def until_budget(self) -> bool:
        """Whether the time budget alone ends training (``steps`` = 0)."""
        return self.steps == 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# `--no-accel`: the plain paper algorithm (every sample between near and far is evaluated).
NO_ACCEL = {
    "sampling.use_aabb": False,
    "sampling.occupancy_resolution": 0,
    "sampling.early_stop": 0.0,
}


def preset(name: str) -> TrainConfig:
    """The named preset's configuration."""
    if name == "paper":
        return TrainConfig()
    if name == "balanced":
        return TrainConfig(
            preset="balanced",
            model=ModelConfig(depth=8, width=128, view_width=64),
            sampling=SamplingConfig(
                n_coarse=64,
                n_fine=64,
                use_aabb=True,
                occupancy_resolution=128,
                occupancy_warmup=500,
                early_stop=1e-4,
            ),
            random_background=True,
            steps=20_000,
            batch_rays=2048,
            precrop_steps=300,
            checkpoint_every=1000,
        )
    if name == "preview":
        return TrainConfig(
            preset="preview",
            model=ModelConfig(depth=4, width=128, skip_layer=None, view_width=64),
            sampling=SamplingConfig(
                n_coarse=32,
                n_fine=32,
                use_aabb=True,
                occupancy_resolution=64,
                # a refresh re-measures every cell through the coarse network: every 64 steps
                # instead of 16 gives 7-22 % more steps and was better on all five suite scenes
                # at 90 s and 180 s (docs/benchmarks.md)
                occupancy_every=64,
                occupancy_warmup=256,
                early_stop=1e-4,
            ),
            random_background=True,
            steps=6000,  # (no budget given) as many rays as 3000 steps of 1024 rays
            # 512 rays a step, not 1024: ~1.5x the steps; with the refresh above +0.50 dB on the
            # suite's mean and +0.75 dB on its worst scene at 180 s (docs/benchmarks.md)
            batch_rays=512,
            lr=1e-3,
            # a floor of 3e-4 instead of 1e-4: with depth maps +1.68 dB on the suite's mean and
            # +3.11 dB on its worst scene at 90 s, better on all five (docs/benchmarks.md)
            lr_final=3e-4,
            # no centre-crop warm-up: on the scene suite it cost 1-4 dB at 120 s on every scene
            # (docs/benchmarks.md, ablations)
            precrop_steps=0,
            preview_every=250,
            checkpoint_every=500,
        )
    if name == "fast":
        # preview's floor of 3e-4, 512 rays a step and refresh every 64 steps: on tri-planes
        # too better on all five suite scenes at 180 s (docs/benchmarks.md); 6000 steps where no
        # budget is given: the same rays as the 3000 steps of 1024 that fast had before
        return replace(
            preset("preview"),
            preset="fast",
            model=ModelConfig(
                depth=1,
                width=64,
                skip_layer=None,
                view_width=64,
                encoding="triplane",
                plane_resolutions=(64, 128, 256),
                plane_features=16,
                plane_lr_scale=10.0,
                plane_tv=1e-4,
            ),
        )
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def from_dict(data: dict) -> TrainConfig:
    """Rebuild a TrainConfig from :meth:`TrainConfig.to_dict` output (config.json, checkpoints);
    settings added since it was written take their defaults, JSON lists become tuples again."""
    data = dict(data)
    model = _tuples(ModelConfig, data.pop("model", {}))
    sampling = _tuples(SamplingConfig, data.pop("sampling", {}))
    return _tuples(TrainConfig, data, model=model, sampling=sampling)


def _tuples(cls, values: dict, **extra):
    """``cls(**values, **extra)`` with the lists of tuple-valued fields made tuples."""
    tuple_fields = {f.name for f in fields(cls) if isinstance(_default(f), tuple)}
    values = {k: tuple(v) if k in tuple_fields else v for k, v in values.items()}
    return cls(**values, **extra)


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def with_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Apply ``{"steps": 100, "model.width": 64, ...}``; values are converted to the field's type.

    Raises ValueError naming the key for unknown keys and unconvertible values.
    """
    for dotted, value in overrides.items():
        config = _set(config, dotted.split("."), value, dotted)
    return config


def _set(obj, path: list[str], value, dotted: str):
    by_name = {f.name: f for f in fields(obj)}
    if path[0] not in by_name:
        raise ValueError(f"unknown setting {dotted!r}; known: {', '.join(sorted(by_name))}")
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"{dotted!r}: {path[0]} has no sub-settings")
        return replace(obj, **{path[0]: _set(current, path[1:], value, dotted)})
    return replace(obj, **{path[0]: _convert(current, value, dotted)})


def _convert(current, value, dotted: str):
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes", "on")
        if isinstance(current, int) or (current is None and text.lstrip("-").isdigit()):
            return None if text.lower() == "none" else int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):  # of the same element type: (64, 128) or (1.0, 1.0, 1.0)
            kind = type(current[0]) if current else float
            return tuple(kind(v) for v in text.strip("()[]").split(","))
    except ValueError as exc:
        raise ValueError(
            f"{dotted!r}: cannot use {value!r} (expected {type(current).__name__})"
        ) from exc
    return None if text.lower() == "none" else text


def resolve_environment(config: TrainConfig, opaque_images: bool) -> TrainConfig:
    """``config`` with ``model.environment`` decided for the training images: "auto" becomes
    "on" when they are opaque (``opaque_images``: no alpha channel, or alpha 1 everywhere — the
    world was rendered behind the subject) and "off" when they have transparency; "on" and "off"
    stay as they are."""
    if config.model.environment != "auto":
        return config
    choice = "on" if opaque_images else "off"
    return replace(config, model=replace(config.model, environment=choice))


def validate(config: TrainConfig) -> None:
    """Reject settings that cannot train, with the setting's name."""
    checks = [
        (
            config.steps >= 1 or (config.steps == 0 and config.max_seconds > 0),
            "steps must be at least 1 (or 0 with a time budget: max_seconds > 0)",
        ),
        (config.batch_rays >= 1, "batch_rays must be at least 1"),
        (config.rays_per_pass >= 0 and config.chunk_rays >= 0, "rays_per_pass, chunk_rays >= 0"),
        (config.lr > 0 and config.lr_final > 0, "lr and lr_final must be positive"),
        (config.coarse_loss >= 0, "coarse_loss must be >= 0"),
        (config.sampling.n_coarse >= 2, "sampling.n_coarse must be at least 2"),
        (config.sampling.n_fine >= 0, "sampling.n_fine must be at least 0"),
        (config.model.depth >= 1 and config.model.width >= 1, "model.depth and width must be >= 1"),
        (config.model.density_activation in ("softplus", "relu"), "model.density_activation"),
        (config.model.encoding in ENCODINGS, f"model.encoding: one of {', '.join(ENCODINGS)}"),
        (
            all(r >= 2 for r in config.model.plane_resolutions)
            and config.model.plane_features >= 1
            and config.model.plane_lr_scale > 0,
            "model.plane_resolutions >= 2, plane_features >= 1, plane_lr_scale > 0",
        ),
        (
            config.model.environment in ENVIRONMENTS
            and config.model.environment_resolution >= 4
            and config.model.environment_lr_scale > 0,
            f"model.environment: one of {', '.join(ENVIRONMENTS)}; environment_resolution >= 4, "
            "environment_lr_scale > 0",
        ),
        (config.mixed_precision in ("auto", "bf16", "off"), "mixed_precision: auto, bf16 or off"),
        (config.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
        (0 < config.precrop_fraction <= 1, "precrop_fraction must be in (0, 1]"),
        (len(config.background) == 3, "background must be three numbers (r, g, b)"),
        (config.max_seconds >= 0, "max_seconds must be >= 0"),
        (config.alpha_loss >= 0, "alpha_loss must be >= 0"),
        (
            config.depth_loss == 0 or (config.depth_loss > 0 and config.depth_loss_final > 0),
            "depth_loss must be >= 0 (0 = off), and depth_loss_final > 0 when it is on",
        ),
        (
            config.depth_loss_half_life >= 0,
            "depth_loss_half_life must be 0 (decay over the whole run) or a number of steps",
        ),
        (config.threads >= 0, "threads must be 0 (automatic) or positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"invalid configuration: {message}")
