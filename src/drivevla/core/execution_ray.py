"""The Ray backend of :func:`drivevla.core.execution.run_jobs`: one Ray task per job.

Why tasks and not one warm actor per worker: a job (a route) builds its own simulator and
policy anyway (as in the process pool, so that no state leaks between routes and a result never
depends on which worker ran it), and Ray already reuses its worker processes across tasks, so
the imports (torch, Panda3D, highway-env) and the registry's loaded checkpoint stay warm in
them. Tasks also give Ray's own fault handling for free: a task whose worker or node dies is
resubmitted (``max_retries``), and so is a task that raised (``retry_exceptions``), each at most
``Executor.max_retries`` times; after that the job is handed to ``on_lost``.

Results come back to the driver (the calling process) as they finish; the caller writes them,
so nothing a task returns needs a file system shared with the driver. ``ray`` is imported
only here and only when the backend is chosen (an optional extra).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from drivevla.core.executor import RAY_EXTRA_HINT, Executor, RayNotInstalledError, TaskLost
from drivevla.core.workers import init_worker

logger = logging.getLogger(__name__)


def import_ray() -> Any:
    """The ``ray`` module; :class:`RayNotInstalledError` naming the extra when it is missing."""
    try:
        import ray  # lazy: ray is an optional extra, imported only for --executor ray
    except ImportError as exc:
        raise RayNotInstalledError(
            f"--executor ray needs the ray package, an optional extra of drivevla: "
            f"{RAY_EXTRA_HINT} (or pip install 'ray>=2.40'); without it use --executor process"
        ) from exc
    return ray


def _call(fn: Callable[[Any], Any], job: Any) -> Any:
    """The body of every task: the worker set-up of the process pool, then the job."""
    init_worker(ignore_sigint=False)  # Ray cancels a task through SIGINT / a kill
    return fn(job)


def connect_ray(ray: Any, executor: Executor, num_cpus: int | None = None) -> bool:
    """Join the cluster (or start a local instance, of ``num_cpus`` CPUs when given; Ray's
    default is every core); True when this call started Ray."""
    if ray.is_initialized():
        return False
    # offline by design (docs/security.md): the Ray instance started here sends no usage
    # telemetry (Ray's documented opt-out variable; a value the user set wins)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    local = {"num_cpus": num_cpus} if num_cpus is not None and executor.ray_address is None \
        else {}
    ray.init(address=executor.ray_address, include_dashboard=False,
             logging_level=logging.WARNING, **local)
    return True


def _lost(ray: Any, exc: BaseException, executor: Executor) -> TaskLost:
    attempts = executor.max_retries + 1
    if isinstance(exc, ray.exceptions.RayTaskError):  # the task raised, every attempt
        cause = getattr(exc, "cause", None)
        return TaskLost(cause if isinstance(cause, BaseException) else exc, False, attempts)
    return TaskLost(exc, True, attempts)  # worker or node died, object lost, ...


def run_jobs_on_ray(
    fn: Callable[[Any], Any],
    jobs: list[Any],
    workers: int,
    on_result: Callable[[Any, Any], None],
    on_lost: Callable[[Any, TaskLost], None],
    executor: Executor,
) -> list[Any]:
    """See :func:`drivevla.core.execution.run_jobs`. At most ``max(workers, 1)`` tasks are in
    flight (Ray queues the rest on the driver, so a huge suite is not submitted at once); an
    interrupt (Ctrl-C) cancels the tasks in flight. Returns [] (Ray retries internally)."""
    ray = import_ray()
    started = connect_ray(ray, executor)
    task = ray.remote(_call).options(
        num_cpus=executor.num_cpus_per_worker,
        num_gpus=executor.num_gpus_per_worker,
        max_retries=executor.max_retries,
        retry_exceptions=executor.max_retries > 0,
    )
    fn_ref = ray.put(fn)  # shipped once, not per task
    queue = list(reversed(jobs))
    pending: dict[Any, Any] = {}

    def submit() -> None:
        while queue and len(pending) < max(1, workers):
            job = queue.pop()
            pending[task.remote(fn_ref, job)] = job

    try:
        submit()
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                on_lost(job, _lost(ray, exc, executor))
            else:
                on_result(job, result)
            submit()
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
    return []
