"""One execution layer for every fan-out of independent jobs (closed-loop routes, ...), with two
backends behind the same call, :func:`run_jobs`:

- ``process`` (the default): a local pool of ``spawn``-ed worker processes
  (:func:`drivevla.core.workers.init_worker` in each). A worker that dies (segfault, out of
  memory) breaks the pool: the jobs in flight or queued are retried once, each in a fresh
  single-worker process.
- ``ray``: one Ray task per job, on a local Ray instance or a cluster (``ray_address``). Ray is
  imported only when chosen (:mod:`drivevla.core.execution_ray`); without it,
  :class:`RayNotInstalledError` names the extra.

Both stream results back as jobs finish: ``on_result(job, result)`` runs in the calling
process, in completion order. A job whose task never returned (its worker died twice, or the
task itself raised) is handed to ``on_lost(job, TaskLost)`` once its retries are spent; the other
jobs go on. Which backend ran a job never changes its result.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from drivevla.core import execution_ray
from drivevla.core.executor import Executor, TaskLost
from drivevla.core.workers import init_worker

logger = logging.getLogger(__name__)

__all__ = ["Executor", "TaskLost", "run_jobs"]

OnResult = Callable[[Any, Any], None]
OnLost = Callable[[Any, TaskLost], None]


def run_jobs(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    workers: int,
    on_result: OnResult,
    on_lost: OnLost,
    executor: Executor | None = None,
) -> list[Any]:
    """Run ``fn(job)`` for every job on ``executor`` (default: the process pool) with at most
    ``workers`` jobs in flight (0: in this process, no isolation; process pool only).

    ``fn`` must be importable by reference (a module-level function). Returns the jobs that were
    rerun because a worker died (for the run's record)."""
    executor = executor or Executor()
    if not jobs:
        return []
    if executor.kind == "ray":
        return execution_ray.run_jobs_on_ray(fn, list(jobs), workers, on_result, on_lost,
                                             executor)
    return _run_process_pool(fn, list(jobs), workers, on_result, on_lost)


# --------------------------------------------------------------------------- the process pool


def _run_isolated(fn: Callable[[Any], Any], job: Any) -> tuple[bool, Any]:
    """Rerun a job in a fresh single-worker process: (True, result) or (False, TaskLost)."""
    try:
        with ProcessPoolExecutor(
            1, mp_context=mp.get_context("spawn"), initializer=init_worker
        ) as pool:
            return True, pool.submit(fn, job).result()
    except BrokenProcessPool as exc:
        return False, TaskLost(exc, died=True, attempts=2)
    except Exception as exc:  # the task raised
        return False, TaskLost(exc, died=False, attempts=2)


def _run_process_pool(
    fn: Callable[[Any], Any], jobs: list[Any], workers: int, on_result: OnResult,
    on_lost: OnLost,
) -> list[Any]:
    if workers <= 0:  # in-process (debugging): no isolation from crashes of the job
        for job in jobs:
            on_result(job, fn(job))
        return []
    broken: list[Any] = []
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=mp.get_context("spawn"),
        initializer=init_worker,
    )
    try:
        futures = {pool.submit(fn, job): job for job in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                result = fut.result()
            except BrokenProcessPool:
                broken.append(job)
                continue
            except Exception as exc:  # the task raised (not retried: it would raise again)
                on_lost(job, TaskLost(exc, died=False, attempts=1))
                continue
            on_result(job, result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if broken:
        logger.warning(
            "a worker process died; retrying %d job(s) once, each in a fresh process: %s",
            len(broken), ", ".join(_job_name(j) for j in broken),
        )
        with ThreadPoolExecutor(max(1, workers)) as threads:
            for job, (ok, value) in zip(broken, threads.map(lambda j: _run_isolated(fn, j),
                                                           broken), strict=True):
                on_result(job, value) if ok else on_lost(job, value)
    return broken


def _job_name(job: Any) -> str:
    spec = getattr(job, "spec", None)
    return str(getattr(spec, "route_id", None) or getattr(job, "name", None) or job)
