"""Recovery from diverged training: the last good state kept in memory, and a roll back to it when
the loss or the weights stop being finite.

The trainer checks at every step where it reports, previews or checkpoints (one device sync, where
it syncs anyway). A good check copies model and optimizer state (weights, Adam moments, occupancy
grid) into memory; a bad one — a NaN/inf loss since the last check, or a NaN/inf weight — copies it
back, and the trainer goes on from that step with a lower learning rate and fresh random rays.
Failing ``max_in_a_row`` checks without a good one between them raises :class:`DivergedError`.
So a NaN never reaches a checkpoint, a preview or the final model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class DivergedError(ValueError):
    """Training that keeps producing NaN or infinity even at a lower learning rate."""


def clone_state(tree):
    """A deep copy of a (nested) state dict: every tensor cloned, on its own device."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {key: clone_state(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(clone_state(value) for value in tree)
    return tree  # numbers, strings, None


class LastGood:
    """The last training state that passed :meth:`check`: its step, weights and optimizer."""

    def __init__(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, max_in_a_row=3
    ):
        self.model, self.optimizer, self.max_in_a_row = model, optimizer, max_in_a_row
        self.failures_in_a_row = 0
        self._keep(step)

    def _keep(self, step: int) -> None:
        self.step = step
        self.model_state = clone_state(self.model.state_dict())
        self.optimizer_state = clone_state(self.optimizer.state_dict())

    def is_finite(self, loss: torch.Tensor | float) -> bool:
        """Whether ``loss`` (a sum over the steps since the last check) and every weight are
        finite: one device sync."""
        params = list(self.model.parameters())
        flags = [torch.as_tensor(loss, device=params[0].device).isfinite().all()]
        flags += [p.isfinite().all() for p in params]
        return bool(torch.stack(flags).all())

    def check(self, step: int, loss: torch.Tensor | float) -> bool:
        """Keep the current state if it is finite (True); else restore the last good one into the
        model and optimizer (False) — the caller goes back to :attr:`step`."""
        if self.is_finite(loss):
            self.failures_in_a_row = 0
            self._keep(step)
            return True
        self.failures_in_a_row += 1
        self.model.load_state_dict(self.model_state)
        # (the optimizer adopts the tensors it is given: hand it copies, keep the originals)
        self.optimizer.load_state_dict(clone_state(self.optimizer_state))
        return False

    @property
    def given_up(self) -> bool:
        return self.failures_in_a_row >= self.max_in_a_row


def healthy(trainer, last_good: LastGood, loss, log, checkpoint: Callable) -> bool:
    """Keep the state in memory when the loss since the last check and the weights are finite;
    else roll back to the last good state with half the learning rate and a warning — or, after
    ``max_in_a_row`` failures, save that state (``checkpoint(trainer, log)``) and raise
    :class:`DivergedError`. ``trainer``: the ``Trainer`` (its step, learning-rate scale, run
    folder); ``log``: its event log."""
    if last_good.check(trainer.global_step, loss):
        return True
    failed_step, trainer.global_step = trainer.global_step, last_good.step
    trainer.lr_scale *= 0.5
    step = trainer.global_step
    if last_good.given_up:
        kept = "nothing was trained yet"
        if step > 0:
            kept = f"the last good state is saved as {trainer.run.checkpoint_path(step)}"
            if step != trainer.checkpoint_step:
                checkpoint(trainer, log)
        raise DivergedError(
            f"training diverged: the loss or the weights became NaN/inf {last_good.max_in_a_row} "
            f"times in a row (last between steps {step} and {failed_step}), even at "
            f"{trainer.lr_scale:g}× the learning rate; {kept}. Lower the learning rate "
            "(--set lr=...), try --set mixed_precision=off, or check the dataset."
        )
    log.emit(
        "warning",
        step,
        message=f"NaN/inf loss between steps {step} and {failed_step}: rolled back to step "
        f"{step} and halved the learning rate (now {trainer.lr_scale:g}× the schedule).",
        failed_step=failed_step,
        lr_scale=trainer.lr_scale,
    )
    return False
