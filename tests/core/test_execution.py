"""The execution layer: the same call on the process pool and on Ray; a job that raises or
whose worker dies is retried (bounded) and then handed back as lost; no ray, one named error."""

from __future__ import annotations

import os
import sys

import pytest

from drivevla.core import execution_ray
from drivevla.core.execution import Executor, TaskLost, run_jobs
from drivevla.core.executor import RayNotInstalledError
from support.ray_parts import local_ray


def square(job: tuple[str, int]) -> int:
    return job[1] * job[1]


def raise_after_logging(job: tuple[str, int]) -> int:
    with open(job[0], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    raise ValueError(f"job {job[1]} cannot be done")


def die_after_logging(job: tuple[str, int]) -> int:
    with open(job[0], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    os._exit(7)  # a segfault / out-of-memory stand-in


def die_or_square(job: tuple[str, int]) -> int:
    return die_after_logging(job) if job[0] else square(job)


def _collect(fn, jobs, workers, executor):
    results: dict[int, int] = {}
    lost: dict[int, TaskLost] = {}
    run_jobs(fn, jobs, workers, lambda j, r: results.__setitem__(j[1], r),
             lambda j, t: lost.__setitem__(j[1], t), executor)
    return results, lost


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(RayNotInstalledError, match=r'pip install -e "\.\[ray\]"'):
        execution_ray.import_ray()
    with pytest.raises(RayNotInstalledError):
        run_jobs(square, [("", 1)], 1, print, print, Executor(kind="ray"))


def test_bad_executor_options_are_refused():
    with pytest.raises(ValueError, match="not one of"):
        Executor(kind="slurm")
    with pytest.raises(ValueError, match="max_retries"):
        Executor(kind="ray", max_retries=-1)
    with pytest.raises(ValueError, match="num_gpus_per_worker"):
        Executor(kind="ray", num_gpus_per_worker=-0.5)


def test_process_pool_streams_every_result():
    jobs = [("", i) for i in range(5)]
    assert _collect(square, jobs, 2, None) == ({i: i * i for i in range(5)}, {})


# --------------------------------------------------------------------------------------- Ray

ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]")')


@pytest.fixture(scope="module")
def ray_cluster():
    with local_ray(sys.modules[__name__]) as started:
        yield started


def test_ray_gives_the_results_of_the_process_pool(ray_cluster):
    jobs = [("", i) for i in range(6)]
    assert _collect(square, jobs, 2, Executor(kind="ray")) == _collect(square, jobs, 2, None)
    assert ray_cluster.is_initialized()  # a Ray this call did not start is left running


def test_ray_retries_a_raising_task_then_hands_it_back(ray_cluster, tmp_path):
    log = tmp_path / "attempts.txt"
    results, lost = _collect(raise_after_logging, [(str(log), 3)], 1,
                             Executor(kind="ray", max_retries=2))
    assert results == {}
    assert isinstance(lost[3].error, ValueError) and "job 3 cannot be done" in str(lost[3].error)
    assert not lost[3].died and lost[3].attempts == 3
    assert len(log.read_text().split()) == 3  # the first run and two retries


def test_ray_reruns_a_dead_workers_job_once_then_hands_it_back(ray_cluster, tmp_path):
    log = tmp_path / "attempts.txt"
    jobs = [(str(log), 1), ("", 2), ("", 3)]
    results, lost = _collect(die_or_square, jobs, 2, Executor(kind="ray"))
    assert results == {2: 4, 3: 9}  # the others are not affected
    assert set(lost) == {1} and lost[1].died and lost[1].attempts == 2
    pids = log.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]  # a fresh worker for the retry


def test_a_ray_run_can_be_interrupted_and_its_tasks_are_cancelled(ray_cluster):
    seen: list[int] = []

    def on_result(job, result):
        seen.append(result)
        raise KeyboardInterrupt  # Ctrl-C while results stream in

    with pytest.raises(KeyboardInterrupt):
        run_jobs(square, [("", i) for i in range(6)], 2, on_result, print, Executor("ray"))
    assert len(seen) == 1
    assert ray_cluster.is_initialized()
