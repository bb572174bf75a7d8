"""A graceful stop on SIGINT/SIGTERM: the trainer checkpoints and returns instead of dying."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Within the block, SIGINT/SIGTERM set a flag (the returned callable reads it) instead of
    killing the process, so the trainer can checkpoint and exit cleanly. A second signal while the
    flag is set acts as usual. Off the main thread (where Python cannot take signals) a no-op."""
    seen = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield seen.is_set
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if seen.is_set():  # asked twice: stop now
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        seen.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield seen.is_set
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
