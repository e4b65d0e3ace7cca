"""Explanations off the control path: their own thread, a lower rate, never in the way.

:class:`ExplanationWorker` is offered each tick's valid decision; every ``every_ticks``
ticks, when its thread is free, it snapshots what the policy needs to explain that decision
and generates the text on its thread. A finished explanation is published at the next tick
the runner polls, as an :class:`Explanation` naming the tick it belongs to (the decision it
explains) and the tick it was published at. Nothing here feeds back into the action path:
the runner attaches the latest text to ``Decision.explanation`` only; the controller never
reads it.

What is snapshotted (on the runner's thread, right after the decision came back):

- a DriveVLA policy: its last action pass (``_last``), explained by ``explain_output`` from
  a copy of that pass's KV cache; an ``onnx:`` policy: its last outputs
  (``_last_outputs``) by ``explain_outputs``. The text then explains exactly that tick;
- any other policy with ``explain()``: ``explain`` itself, which explains whatever the
  policy's latest decision is when it runs (possibly a tick later).

A failing explanation is logged and counted, never raised into the control loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Explanation:
    """One published explanation: the ``tick`` of the decision it explains, the tick it was
    ``published_tick`` at, and the generation time on the wall clock (s)."""

    tick: int
    text: str
    published_tick: int
    latency_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"tick": self.tick, "text": self.text, "published_tick": self.published_tick,
                "latency_ms": round(self.latency_s * 1e3, 2)}


def explanation_job(policy: Any) -> Callable[[], str] | None:
    """A call that explains ``policy``'s latest decision, bound to a snapshot of it where
    the policy allows (see the module docstring); None for a policy that cannot explain."""
    last = getattr(policy, "_last", None)
    if last is not None and callable(getattr(policy, "explain_output", None)):
        return lambda: policy.explain_output(last)
    outputs = getattr(policy, "_last_outputs", None)
    if outputs is not None and callable(getattr(policy, "explain_outputs", None)):
        return lambda: policy.explain_outputs(outputs)
    explain = getattr(policy, "explain", None)
    return explain if callable(explain) else None


class ExplanationWorker:
    """Explains every ``every_ticks``-th offered tick on its own thread (module docstring)."""

    def __init__(self, every_ticks: int = 10) -> None:
        if int(every_ticks) < 1:
            raise ValueError(f"every_ticks={every_ticks!r} must be at least 1")
        self.every_ticks = int(every_ticks)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drivevla-explain")
        self.reset()

    def reset(self) -> None:
        self.drain()
        self._job: tuple[int, Future[tuple[str, float]]] | None = None
        self._last_offered: int | None = None
        self.published: list[Explanation] = []
        self.failures = 0
        self.skipped_busy = 0

    def offer(self, tick: int, policy: Any) -> bool:
        """Start explaining ``tick``'s decision when it is due and the thread is free."""
        due = self._last_offered is None or tick - self._last_offered >= self.every_ticks
        if not due:
            return False
        if self._job is not None:
            self.skipped_busy += 1
            return False
        job = explanation_job(policy)
        if job is None:
            return False
        self._last_offered = tick
        self._job = (tick, self._pool.submit(_timed, job))
        return True

    def poll(self, tick: int) -> Explanation | None:
        """The explanation finished since the last poll (published at ``tick``), if any."""
        if self._job is None or not self._job[1].done():
            return None
        belongs_to, future = self._job
        self._job = None
        try:
            text, latency = future.result()
        except Exception as exc:  # an explanation must never break the control loop
            self.failures += 1
            log.warning("explanation of tick %d failed: %s: %s", belongs_to,
                        type(exc).__name__, exc)
            return None
        explanation = Explanation(belongs_to, str(text), tick, latency)
        self.published.append(explanation)
        return explanation

    def drain(self) -> None:
        """Wait for a running explanation (before the policy is reset)."""
        job = getattr(self, "_job", None)
        if job is not None:
            job[1].exception()

    def close(self) -> None:
        self.drain()
        self._pool.shutdown(wait=True)


def _timed(job: Callable[[], str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    text = job()
    return text, time.perf_counter() - t0
