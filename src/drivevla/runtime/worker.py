"""The action path on its own thread, with a deadline.

:meth:`ActionWorker.run` hands the policy's ``act`` to one worker thread and waits on the
runner's clock until the deadline. Late results are **discarded, never used**: a late
decision was made from an observation at least one tick old, using it next tick would mix
stale perception into a fresh control and make the drive depend on thread timing. While a
late job is still running, the worker is ``busy``: no new job is started (the policy is not
re-entrant and a second job would only compete with the first for the accelerator), and the
tick falls back. The first tick after the late job ends starts a fresh one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from drivevla.core.types import Observation
from drivevla.runtime.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One tick of the action path: ``result`` when it came back in time (else None),
    ``cause`` of a miss (``"deadline"``, ``"busy"``, ``"exception: ..."``), ``latency_s`` on
    the runner's clock (None when the job did not finish in time)."""

    result: Any = None
    cause: str | None = None
    latency_s: float | None = None


class ActionWorker:
    """One worker thread running ``act`` jobs against a deadline (see the module doc)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drivevla-action")
        self._late: Future[Any] | None = None  # a job that missed its deadline
        self._busy_until = float("-inf")  # when the last late job finished, on the clock
        self.discarded = 0  # late results thrown away

    def busy(self) -> bool:
        if self._late is not None and not self._late.done():
            return True
        if self._late is not None:
            self._late, self.discarded = None, self.discarded + 1
            log.debug("late action result discarded")
        return self.clock.now() < self._busy_until - 1e-9  # float sums of tick times

    def run(self, act: Callable[[Observation], Any], obs: Observation, deadline_s: float
            ) -> Outcome:
        """``act(obs)`` on the worker, waited for until ``deadline_s`` after now."""
        t0 = self.clock.now()
        if self.busy():
            return Outcome(cause="busy")
        future = self._pool.submit(self._timed, act, obs)
        self.clock.wait(future, deadline_s)
        if not future.done():
            self._late = future
            return Outcome(cause="deadline")
        try:
            result, t_end = future.result()
        except Exception as exc:  # the policy's failure is the tick's fallback cause
            return Outcome(cause=f"exception: {type(exc).__name__}: {exc}"[:200])
        latency = t_end - t0
        if latency > deadline_s:
            self._busy_until, self.discarded = t_end, self.discarded + 1
            return Outcome(cause="deadline", latency_s=latency)
        return Outcome(result=result, latency_s=latency)

    def _timed(self, act: Callable[[Observation], Any], obs: Observation) -> tuple[Any, float]:
        result = act(obs)
        return result, self.clock.now()

    def drain(self) -> None:
        """Wait for a late job to end (before the policy is reset or the worker closed)."""
        if self._late is not None:
            try:
                self._late.exception()
            finally:
                self._late = None
        self._busy_until = float("-inf")

    def close(self) -> None:
        self.drain()
        self._pool.shutdown(wait=True)
