"""``drivevla collect --executor ray``: the same shards and episode lines as the process pool,
and a collection started on one backend resumed on the other."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from drivevla.cli import main as cli_main
from drivevla.core.execution import Executor
from drivevla.datasets.collect import CollectConfig, collect
from support.ray_parts import local_ray

ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]")')

TINY_SUITE = Path(__file__).parent / "tiny_suite.yaml"
EPISODES = 6  # as the shared tiny_dataset (tests/conftest.py), collected by the process pool


@pytest.fixture(scope="module")
def ray_cluster():
    with local_ray(sys.modules[__name__]) as started:
        yield started


def _collect(out: Path, episodes: int, executor: Executor | None = None) -> dict:
    config = CollectConfig(suite=str(TINY_SUITE), episodes=episodes, out=str(out), workers=2,
                           show_progress=False)
    return collect(config, executor)


def _lines(out: Path) -> dict[str, dict]:
    lines = (out / "meta" / "episodes.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len({r["episode_id"] for r in records}) == len(records)  # no duplicate
    return {r["episode_id"]: {k: v for k, v in r.items() if k != "wall_time_s"} for r in records}


def _shards(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "data").rglob("*.parquet"))}


def test_collection_on_ray_writes_the_process_pools_shards(ray_cluster, tiny_dataset, tmp_path):
    # the shared tiny dataset was collected by the process pool with these settings
    summary = _collect(tmp_path / "ray", EPISODES, Executor(kind="ray"))
    assert summary["episodes"] == EPISODES and summary["failed"] == []
    assert _shards(tmp_path / "ray") == _shards(tiny_dataset)  # byte-identical Parquet files
    assert _lines(tmp_path / "ray") == _lines(tiny_dataset)


def test_a_collection_resumes_across_backends_without_loss_or_duplicates(
    ray_cluster, tiny_dataset, tmp_path
):
    out = tmp_path / "ds"
    _collect(out, 1)  # the process pool collects the first episode
    summary = _collect(out, EPISODES, Executor(kind="ray"))  # Ray the rest
    assert summary["episodes_collected"] == EPISODES - 1
    assert _lines(out) == _lines(tiny_dataset) and _shards(out) == _shards(tiny_dataset)


def test_cli_collect_on_ray(ray_cluster, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["collect", "--suite", str(TINY_SUITE), "--episodes", "1", "--out", str(out),
            "--executor", "ray"]
    assert cli_main([*args, "--workers", "1", "--ray-num-cpus-per-worker", "1"]) == 0
    assert len(_lines(out)) == 1
    assert cli_main([*args, "--episodes", "2", "--workers", "0"]) == 2
    assert "needs workers >= 1" in capsys.readouterr().err
