"""Loss and throughput over the steps since the last progress event of a training run."""

from __future__ import annotations

import time

import torch

from ..eval.metrics import mse_to_psnr


class Window:
    """Loss and throughput since the last progress event (one device sync per report)."""

    def __init__(self, now: float):
        self.reset(now)

    def reset(self, now: float) -> None:
        self.start, self.steps, self.rays, self.samples = now, 0, 0, 0
        self.loss, self.mse = 0.0, 0.0

    def add(self, loss: torch.Tensor, mse: torch.Tensor, rays: int, samples: int) -> None:
        self.loss, self.mse = self.loss + loss, self.mse + mse
        self.steps, self.rays, self.samples = (
            self.steps + 1,
            self.rays + rays,
            self.samples + samples,
        )

    def report(self, trainer, started: float) -> dict:
        now = time.perf_counter()
        seconds = max(now - self.start, 1e-9)
        loss, mse = float(self.loss) / self.steps, float(self.mse) / self.steps
        cfg, elapsed = trainer.config, now - started
        eta = max(cfg.steps - trainer.global_step, 0) * seconds / self.steps
        if cfg.until_budget:
            eta = max(cfg.max_seconds - elapsed, 0.0)
        elif cfg.max_seconds:
            eta = min(eta, max(cfg.max_seconds - elapsed, 0.0))
        report = {
            "total_steps": cfg.steps,
            "loss": loss,
            "psnr": mse_to_psnr(mse),
            "lr": trainer.learning_rate,
            "rays_per_s": self.rays / seconds,
            "samples_per_s": self.samples / seconds,
            "ms_per_step": 1000.0 * seconds / self.steps,
            "elapsed_s": elapsed,
            "eta_s": eta,
        }
        self.reset(now)
        return report
