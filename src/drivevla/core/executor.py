"""Where the jobs of a fan-out run (:class:`Executor`) and what a job that never returned leaves
(:class:`TaskLost`); the execution itself is :func:`drivevla.core.execution.run_jobs`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivevla.core.errors import DriveVLAError

EXECUTORS = ("process", "ray")
RAY_EXTRA_HINT = 'pip install -e ".[ray]"'


class RayNotInstalledError(DriveVLAError, ImportError):
    """``--executor ray`` was chosen but the ``ray`` package is not installed."""


@dataclass(frozen=True)
class Executor:
    """Where jobs run. ``kind``: ``process`` or ``ray``. The Ray fields: ``ray_address`` (a
    cluster such as ``ray://head:10001`` or ``auto``; None starts a local instance unless one is
    already initialised in this process), resources per task (``num_cpus_per_worker``,
    ``num_gpus_per_worker``: what Ray reserves for one job) and ``max_retries`` (how often a job
    whose worker died or whose task raised is rerun before it is lost; the process pool always
    retries a dead worker's job once)."""

    kind: str = "process"
    ray_address: str | None = None
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float = 0.0
    max_retries: int = 1

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor {self.kind!r} is not one of {EXECUTORS}")
        if not self.num_cpus_per_worker > 0:
            raise ValueError(f"num_cpus_per_worker={self.num_cpus_per_worker!r} must be > 0")
        if not self.num_gpus_per_worker >= 0:
            raise ValueError(f"num_gpus_per_worker={self.num_gpus_per_worker!r} must be >= 0")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) \
                or self.max_retries < 0:
            raise ValueError(f"max_retries={self.max_retries!r} must be an integer >= 0")

    def describe(self) -> dict[str, Any]:
        """What a run records about where it ran (never part of a resume fingerprint)."""
        if self.kind == "process":
            return {"kind": "process"}
        return {"kind": "ray", "ray_address": self.ray_address,
                "num_cpus_per_worker": self.num_cpus_per_worker,
                "num_gpus_per_worker": self.num_gpus_per_worker,
                "max_retries": self.max_retries}


@dataclass(frozen=True)
class TaskLost:
    """A job whose task never returned a result: ``error`` the last error, ``died`` True when its
    worker process died (else the task raised), ``attempts`` how many times it ran."""

    error: BaseException
    died: bool
    attempts: int
