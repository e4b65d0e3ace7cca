"""``drivevla train --dagger N --executor ray``: a DAgger round's episodes run as Ray tasks and
drive the policy as the process pool does (the same shards)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from drivevla.core.execution import Executor, run_jobs
from drivevla.datasets import collect as collect_mod
from drivevla.datasets.collect import CollectConfig, collect
from drivevla.training.train import Trainer
from support.ray_parts import local_ray
from support.train_parts import TINY_SUITE
from support.train_parts import train_cfg as _cfg

ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]")')


@pytest.fixture(scope="module")
def ray_cluster():
    with local_ray(sys.modules[__name__]) as started:
        yield started


def _shards(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "data").rglob("*.parquet"))}


def test_a_dagger_round_runs_on_ray_and_its_policy_drives_as_in_the_process_pool(
    ray_cluster, tiny_dataset, frame_cache, tmp_path, monkeypatch
):
    executors: list[Executor | None] = []

    def spy(fn, jobs, workers, on_result, on_lost, executor=None):
        executors.append(executor)
        return run_jobs(fn, jobs, workers, on_result, on_lost, executor)

    monkeypatch.setattr(collect_mod, "run_jobs", spy)
    out = tmp_path / "train"
    cfg = _cfg(tiny_dataset, out, frame_cache, steps=1, dagger=1, dagger_steps=1,
               dagger_episodes=2, dagger_beta=0.3, dagger_workers=2, keep_checkpoints=1,
               dagger_suite=str(TINY_SUITE), dagger_max_steps=15)
    Trainer(cfg, Executor(kind="ray")).train()
    assert [e.kind for e in executors] == ["ray"]
    assert len(_shards(out / "dagger" / "round-1")) == 2

    # the same policy-driven collection (a round's settings) on each backend: the same shards
    policy = str((out / "checkpoints" / "step-000001").resolve())
    shards = []
    for name, executor in (("ray", Executor(kind="ray")), ("process", None)):
        config = CollectConfig(suite=str(TINY_SUITE), episodes=2, out=str(tmp_path / name),
                               workers=2, policy=policy, beta=0.3, max_steps=15,
                               show_progress=False)
        collect(config, executor)
        shards.append(_shards(tmp_path / name))
    assert len(shards[0]) == 2 and shards[0] == shards[1]
