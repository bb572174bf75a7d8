"""What changes over a training run: its progress, the learning rate and the depth loss's weight.

Progress is the share of the run done — of ``steps``, or of the time budget when that ends
training first — so a run of any length follows the whole schedule.
"""

from __future__ import annotations

from ..config import TrainConfig


def progress(config: TrainConfig, step: int, time_fraction: float = 0.0) -> float:
    """The share of the run done, 0–1: ``step`` / ``steps`` or ``time_fraction`` (the share of
    ``max_seconds`` used), whichever is further. With ``steps`` = 0 the budget alone counts."""
    by_steps = step / config.steps if config.steps > 0 else 0.0
    return min(max(by_steps, time_fraction), 1.0)


def learning_rate(config: TrainConfig, step: int, time_fraction: float = 0.0) -> float:
    """Exponential decay from ``lr`` at step 0 to ``lr_final`` at ``steps`` — or at the end of the
    time budget, when that comes first (``time_fraction``: the share of ``max_seconds`` used).
    With ``steps`` = 0 the budget alone sets the schedule."""
    return config.lr * (config.lr_final / config.lr) ** progress(config, step, time_fraction)


def depth_loss_weight(config: TrainConfig, step: int, time_fraction: float = 0.0) -> float:
    """The depth loss's weight: exponential decay from ``depth_loss`` at the start to
    ``depth_loss_final`` at the end of training (0 when ``depth_loss`` is 0) — or, with
    ``depth_loss_half_life`` > 0, halving every that many steps until it reaches
    ``depth_loss_final``, whatever the run's length. Depth shapes the geometry early; late in
    training colour alone refines it (a depth map is one value per pixel, the colour is what is
    measured)."""
    if config.depth_loss <= 0:
        return 0.0
    if config.depth_loss_half_life > 0:
        halved = config.depth_loss * 0.5 ** (step / config.depth_loss_half_life)
        return max(halved, config.depth_loss_final)
    ratio = config.depth_loss_final / config.depth_loss
    return config.depth_loss * ratio ** progress(config, step, time_fraction)
