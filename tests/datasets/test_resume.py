"""Kill a collection with SIGKILL half-way and rerun the same command: nothing finished is lost,
rewritten or duplicated, and the dataset ends with the requested episodes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from drivevla.datasets.collect import CollectConfig, collect

TINY_SUITE = Path(__file__).with_name("tiny_suite.yaml")
EPISODES = 10


def _lines(out: Path) -> list[dict]:
    path = out / "meta/episodes.jsonl"
    if not path.is_file():
        return []
    recs = []
    for line in path.read_text().splitlines():
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:  # a partial last line at the moment of the kill
            pass
    return recs


def test_sigkill_then_rerun_resumes_without_loss_or_duplicates(tmp_path):
    suite = yaml.safe_load(TINY_SUITE.read_text())
    for route in suite["routes"]:
        route["config"]["max_steps"] = 60  # a wider window between first and last episode
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "ds"
    cmd = [
        sys.executable,
        "-m",
        "drivevla.cli",
        "collect",
        "--suite",
        str(suite_path),
        "--episodes",
        str(EPISODES),
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not _lines(out):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no episode finished in time"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the collection and its workers, like a crash
        proc.wait()
    finished = {r["episode_id"]: r for r in _lines(out)}
    assert 1 <= len(finished) < EPISODES, "the kill must land half-way"
    mtimes = {e: (out / r["file"]).stat().st_mtime_ns for e, r in finished.items()}

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    records = _lines(out)
    ids = [r["episode_id"] for r in records]
    assert len(ids) == len(set(ids)) == EPISODES, "each episode exactly once"
    assert sorted(ids) == [f"{i:06d}" for i in range(EPISODES)]
    for e, mtime in mtimes.items():
        assert (out / finished[e]["file"]).stat().st_mtime_ns == mtime, f"{e} was rewritten"
    shards = sorted(p.name for p in (out / "data").rglob("*") if p.is_file())
    assert shards == sorted(f"episode-{i:06d}.parquet" for i in range(EPISODES)), "no leftovers"
    info = json.loads((out / "meta/info.json").read_text())
    assert info["counts"]["episodes"] == EPISODES
    assert info["counts"]["frames"] == sum(r["n_frames"] for r in records)

    # the same configuration once more (in-process): nothing to do, nothing touched
    before = {p: p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet")}
    summary = collect(
        CollectConfig(suite=str(suite_path), episodes=EPISODES, out=str(out), show_progress=False)
    )
    assert summary["episodes_collected"] == 0 and summary["episodes"] == EPISODES
    assert {p: p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet")} == before
    assert len(_lines(out)) == EPISODES
