"""The closed-loop benchmark on Ray (``--executor ray``) against the process pool: the same
route files, failures recorded the same way, and a run interrupted on one backend resumed on
the other without loss or duplicates."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from drivevla.agents import registry
from drivevla.benchmarks import closed_loop
from drivevla.benchmarks.closed_loop import STATUS_AGENT_CRASHED, run_closed_loop
from drivevla.cli import main as cli_main
from drivevla.core.execution import Executor
from drivevla.planner.expert import ExpertPolicy
from drivevla.sim_bridge.embedded.suites import load_suite
from support.ray_parts import local_ray

ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]")')

MAX_STEPS = 40  # a few seconds of every smoke route: the plumbing, not the driving, is tested
NO_CAMERAS = {"cameras": []}  # the expert reads the privileged state; nothing to render
RAY = Executor(kind="ray")


@pytest.fixture(scope="module")
def ray_cluster():
    with local_ray(sys.modules[__name__]) as started:
        yield started


class RaisingPolicy:
    """The expert, except that it raises at its 6th step on turn_left routes."""

    name = "test_ray_raising"

    def __init__(self) -> None:
        self.inner, self.steps, self.raises = ExpertPolicy(), 0, False

    def reset(self, privileged=None) -> None:
        self.inner.reset(privileged)
        self.steps, self.raises = 0, privileged.intent == "turn_left"

    def act(self, obs):
        self.steps += 1
        if self.raises and self.steps == 6:
            raise RuntimeError("raising policy exploded at step 6")
        return self.inner.act(obs)


class KillerPolicy(RaisingPolicy):
    """Kills its own worker process at its 3rd step on turn_left routes (a segfault / OOM)."""

    name = "test_ray_killer"

    def act(self, obs):
        if self.raises and self.steps == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(obs)


def _run(policy: str, suite, out: Path, **kw) -> dict:
    return run_closed_loop(policy, suite, out, progress=False, print_table=False,
                           base_config=NO_CAMERAS, max_steps=MAX_STEPS, **kw)


def _routes(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "routes").glob("*.json"))}


def _same_results(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert set(a) == set(b)
    for rid in a:
        for key in ("status", "result", "metrics", "drive", "route", "config", "seed"):
            assert a[rid][key] == b[rid][key], (rid, key)
        ea, eb = a[rid]["error"], b[rid]["error"]
        assert (ea is None) == (eb is None), rid
        if ea is not None:
            assert {k: ea[k] for k in ("phase", "type", "message", "step")} == \
                   {k: eb[k] for k in ("phase", "type", "message", "step")}


def _smoke_file(tmp_path: Path, n: int | None = None) -> Path:
    suite = load_suite("smoke")
    routes = [s.to_dict() for s in suite.routes][:n]
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump({"name": "smoke", "routes": routes}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def process_run(tmp_path_factory) -> Path:
    """The smoke suite driven by the expert on the process pool (the reference)."""
    out = tmp_path_factory.mktemp("process") / "out"
    _run("expert", "smoke", out, workers=2)
    return out


def test_smoke_on_ray_writes_the_process_pools_route_files(ray_cluster, process_run, tmp_path):
    out = tmp_path / "ray"
    summary = _run("expert", "smoke", out, workers=2, executor=RAY)
    reference = _routes(process_run)
    assert len(reference) == 6 and summary["n_routes"] == 6
    assert all(r["drive"] and r["metrics"]["n_ticks"] == MAX_STEPS for r in reference.values())
    _same_results(_routes(out), reference)  # statuses, scores, bit-identical drives
    old = json.loads((process_run / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k not in ("run", "provenance")} == \
           {k: v for k, v in old.items() if k not in ("run", "provenance")}
    assert summary["run"]["executor"]["kind"] == "ray"
    assert old["run"]["executor"] == {"kind": "process"}


def test_a_raising_policy_fails_its_route_on_ray_as_in_the_process_pool(ray_cluster, tmp_path):
    registry.policy_names()
    registry.register_policy(RaisingPolicy.name, RaisingPolicy)
    suite = _smoke_file(tmp_path)
    local = _run(RaisingPolicy.name, suite, tmp_path / "local", workers=2)
    on_ray = _run(RaisingPolicy.name, suite, tmp_path / "ray", workers=2, executor=RAY)
    routes = _routes(tmp_path / "ray")
    failed = routes["intersection-turn_left"]
    assert failed["status"] == STATUS_AGENT_CRASHED and failed["error"]["phase"] == "agent"
    assert "exploded at step 6" in failed["error"]["message"]
    assert on_ray["n_failed"] == local["n_failed"] == 1
    _same_results(routes, _routes(tmp_path / "local"))


def test_a_dead_ray_worker_costs_only_its_route_retried_then_recorded(ray_cluster, tmp_path):
    registry.policy_names()
    registry.register_policy(KillerPolicy.name, KillerPolicy)
    suite = _smoke_file(tmp_path, 4)  # its 4th route turns left
    summary = _run(KillerPolicy.name, suite, tmp_path / "out", workers=2, executor=RAY)
    routes = _routes(tmp_path / "out")
    dead = routes["intersection-turn_left"]
    assert dead["status"] == STATUS_AGENT_CRASHED and dead["error"]["phase"] == "worker"
    assert "died twice" in dead["error"]["message"]
    assert summary["n_routes"] == 4 and summary["n_failed"] == 1
    assert all(r["error"] is None for rid, r in routes.items() if rid != "intersection-turn_left")


def test_a_ray_run_interrupted_midway_resumes_on_the_process_pool_and_back(
    ray_cluster, process_run, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    write = closed_loop.write_route_record
    written: list[str] = []

    def write_then_interrupt(job, record):  # Ctrl-C in the driver after two routes
        record = write(job, record)
        written.append(job.spec.route_id)
        if len(written) == 2:
            raise KeyboardInterrupt
        return record

    monkeypatch.setattr(closed_loop, "write_route_record", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run("expert", "smoke", out, workers=2, executor=RAY)
    monkeypatch.undo()
    assert sorted(_routes(out)) == sorted(written) and not (out / "summary.json").exists()
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "routes").glob("*.json")}

    resumed = _run("expert", "smoke", out, workers=2)  # the process pool finishes it
    assert resumed["run"]["routes_skipped"] == 2 and resumed["run"]["routes_run"] == 4
    assert {p.name: p.stat().st_mtime_ns for p in (out / "routes").glob("*.json")
            if p.name in mtimes} == mtimes  # the finished routes were not redone
    _same_results(_routes(out), _routes(process_run))

    by_process = sorted(p.name for p in (out / "routes").glob("*.json") if p.name not in mtimes)
    for name in (sorted(mtimes)[0], by_process[0]):  # as if lost by a killed run
        (out / "routes" / name).unlink()
    again = _run("expert", "smoke", out, workers=2, executor=RAY)  # and Ray finishes that
    assert again["run"]["routes_run"] == 2 and again["n_routes"] == 6
    _same_results(_routes(out), _routes(process_run))


def test_cli_runs_on_ray_and_refuses_inline_workers(ray_cluster, tmp_path, capsys):
    suite = _smoke_file(tmp_path, 2)
    args = ["eval", "closed-loop", "--policy", "expert", "--suite", str(suite), "--out",
            str(tmp_path / "out"), "--max-steps", "10", "--explain-every", "0"]
    assert cli_main([*args, "--executor", "ray", "--workers", "2",
                     "--ray-num-cpus-per-worker", "1"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_routes"] == 2 and summary["run"]["executor"]["kind"] == "ray"
    assert cli_main([*args, "--executor", "ray", "--workers", "0"]) == 2
    assert "needs workers >= 1" in capsys.readouterr().err
