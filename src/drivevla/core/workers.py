"""Set-up shared by every worker process pool (collection, closed-loop evaluation)."""

from __future__ import annotations

import os
import signal
import sys


def init_worker(ignore_sigint: bool = True) -> None:
    """Initialiser of a spawned worker: Ctrl-C is the main process's business (it cancels
    queued jobs and lets running ones end), cameras render offscreen, and torch runs one
    thread per worker (a pool already uses one process per core; more threads oversubscribe).
    ``ignore_sigint=False`` for workers whose scheduler cancels through SIGINT (Ray)."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
