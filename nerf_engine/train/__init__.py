"""Training: the :class:`~.trainer.Trainer` (one ``step()`` used by ``train`` and ``bench``
alike) and the ``train`` job around it (``trainer``), what a run writes besides checkpoints —
previews and final metrics (``outputs``), NaN/inf roll-back (``guard``) and a graceful stop on
SIGINT/SIGTERM (``signals``); the learning rate and depth-loss schedules (``schedule``), training
with depth maps (``depth``) and the progress window (``window``). May import ``..data``,
``..nerf``, ``..checkpoint``, ``..runtime`` and ``..eval`` (previews and final metrics are
renders).
"""
