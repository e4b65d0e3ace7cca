"""The runner's clocks: the wall clock on a vehicle, a simulated clock for reproducible runs.

A clock has ``now()`` (seconds), ``sleep(s)``, ``begin_tick(t_s)`` and ``wait(future, s)``.
The runner measures the action path's latency and decides deadlines on its clock only, so
swapping :class:`MonotonicClock` for :class:`SimulatedClock` makes a run deterministic:

- :class:`MonotonicClock`: ``time.monotonic``; ``wait`` blocks at most the timeout, so a
  late policy does not hold up the control tick (it keeps running on its worker thread).
- :class:`SimulatedClock`: time is the observation's timestamp (``begin_tick``) plus the
  latency spent in this tick, which only ``sleep`` adds (injected latency: the policy's own
  compute time counts as zero). ``wait`` lets the job finish (the simulator waits for us),
  then judges it on simulated time. Same seed, same faults, same drive.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def begin_tick(self, timestamp_s: float) -> None: ...

    def wait(self, future: Future[Any], timeout_s: float) -> None: ...


class MonotonicClock:
    """Wall time (``time.monotonic``): what a vehicle integration runs on."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(float(seconds), 0.0))

    def begin_tick(self, timestamp_s: float) -> None:
        """Wall time needs no help from the observation's timestamp."""

    def wait(self, future: Future[Any], timeout_s: float) -> None:
        """Return when ``future`` is done or ``timeout_s`` has passed, whichever is first."""
        wait_futures([future], timeout=max(float(timeout_s), 0.0))


class SimulatedClock:
    """Simulated time: the tick's timestamp plus the latency ``sleep`` added in this tick.

    ``wall_guard_s``: how long ``wait`` waits in real time for a job at most (a policy that
    hangs for real ends up as a late tick instead of hanging the run)."""

    def __init__(self, start_s: float = 0.0, wall_guard_s: float = 300.0) -> None:
        self._t = float(start_s)
        self.wall_guard_s = float(wall_guard_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._t += max(float(seconds), 0.0)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)

    def begin_tick(self, timestamp_s: float) -> None:
        """The tick starts at the observation's time (latency of the last tick is forgotten
        here; the runner remembers when a late job finishes)."""
        with self._lock:
            self._t = float(timestamp_s)

    def wait(self, future: Future[Any], timeout_s: float) -> None:
        """Let the job finish (in real time, at most ``wall_guard_s``): on simulated time the
        runner then sees how long it took and decides whether it was late."""
        wait_futures([future], timeout=self.wall_guard_s)
