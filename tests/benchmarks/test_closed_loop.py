"""The closed-loop benchmark: resume after a kill, failing policies, metrics, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from drivevla.agents import registry
from drivevla.benchmarks.closed_loop import (
    STATUS_AGENT_CRASHED,
    driving_score_no_min_speed,
    result_from_dict,
    run_closed_loop,
)
from drivevla.benchmarks.instruction_metrics import route_instruction_metrics
from drivevla.cli import main as cli_main
from drivevla.planner.expert import ExpertPolicy

NO_CAMERAS = {"cameras": []}
QUICK_ROUTES = [
    {"id": "rb-1", "scenario": "roundabout", "intent": "roundabout_exit_1", "seed": 1700000},
    {"id": "int-right", "scenario": "intersection", "intent": "turn_right", "seed": 1700001},
    {"id": "rb-2", "scenario": "roundabout", "intent": "roundabout_exit_2", "seed": 1700002},
    {"id": "int-straight", "scenario": "intersection", "intent": "go_straight", "seed": 1700003},
]
MISLEADING = {"kind": "misleading", "category": "run_red_light", "start_s": 3.0, "duration_s": 2.0}


def _write_suite(tmp_path: Path, name: str, routes: list[dict]) -> Path:
    routes = [{**r, "config": {**NO_CAMERAS, **r.get("config", {})}} for r in routes]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "routes": routes}), encoding="utf-8")
    return path


def _run(policy: str, suite: Path, out: Path, **kw) -> dict:
    return run_closed_loop(policy, suite, out, progress=False, print_table=False, **kw)


def _metrics_only(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("provenance", "run")}


# ----------------------------------------------------------------------------- test policies


class FlakyPolicy:
    """The expert, except that it raises (turn_left) or returns NaN waypoints (turn_right)."""

    name = "test_flaky"

    def __init__(self) -> None:
        self.inner = ExpertPolicy()
        self.mode = None
        self.steps = 0

    def reset(self, privileged=None) -> None:
        self.inner.reset(privileged)
        self.steps = 0
        self.mode = {"turn_left": "raise", "turn_right": "nan"}.get(privileged.intent)

    def act(self, obs):
        self.steps += 1
        decision = self.inner.act(obs)
        if self.mode == "raise" and self.steps == 12:
            raise RuntimeError("flaky policy exploded at step 12")
        if self.mode == "nan" and self.steps == 7:
            decision.waypoints[0, 0] = np.nan  # after the Decision validated itself
        return decision


class KillerPolicy(FlakyPolicy):
    """Kills its own worker process on turn_left routes (a segfault / OOM stand-in)."""

    name = "test_killer"

    def act(self, obs):
        self.steps += 1
        if self.mode == "raise" and self.steps == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.act(obs)


def _register(name: str, factory) -> None:
    registry.policy_names()  # load the built-in names before adding ours
    registry.register_policy(name, factory)


# ----------------------------------------------------------------------------- process helpers


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _spawned_workers(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for k in kids:
        try:
            cmd = Path(f"/proc/{k}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd:
            out.append(int(k))
    return out


# ----------------------------------------------------------------------------- tests


def test_kill_and_resume_equals_uninterrupted_run(tmp_path):
    suite = _write_suite(tmp_path, "resume", QUICK_ROUTES)
    out = tmp_path / "killed"
    cmd = [
        sys.executable, "-m", "drivevla.cli", "eval", "closed-loop", "--policy", "expert",
        "--suite", str(suite), "--out", str(out), "--workers", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    routes = out / "routes"
    workers: list[int] = []
    deadline = time.monotonic() + 90
    while not (routes.is_dir() and any(routes.glob("*.json"))):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no route finished in time"
        workers = _spawned_workers(proc.pid) or workers
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # the run's main process only, as a crash would
    proc.wait()
    if Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        assert workers, "the run's worker process was not seen"
    assert not (out / "summary.json").exists()
    # the orphaned worker notices its run is gone and stops (without a half-written file)
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "an orphaned worker kept running"
        time.sleep(0.05)
    assert not list(routes.glob(".*.tmp"))
    finished = {p.name: p.stat().st_mtime_ns for p in routes.glob("*.json")}
    assert 1 <= len(finished) < len(QUICK_ROUTES)

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "overall" in rerun.stdout
    for name, mtime in finished.items():  # finished routes were not redone
        assert (routes / name).stat().st_mtime_ns == mtime
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["run"]["routes_skipped"] == len(finished)
    assert resumed["run"]["routes_run"] == len(QUICK_ROUTES) - len(finished)

    # the CLI's default explanation clock (the expert has no explain(): nothing changes)
    reference = _run("expert", suite, tmp_path / "reference", workers=2, explain_every=10)
    assert reference["run"]["routes_run"] == len(QUICK_ROUTES)
    assert _metrics_only(resumed) == _metrics_only(reference)
    assert resumed["n_routes"] == len(QUICK_ROUTES) and resumed["n_failed"] == 0


def test_failing_policy_marks_its_routes_failed_and_the_run_goes_on(tmp_path):
    _register(FlakyPolicy.name, FlakyPolicy)
    suite = _write_suite(
        tmp_path,
        "flaky",
        [
            {"id": "raises", "scenario": "intersection", "intent": "turn_left", "seed": 1700010},
            {"id": "nan", "scenario": "intersection", "intent": "turn_right", "seed": 1700011},
            QUICK_ROUTES[0],
        ],
    )
    out = tmp_path / "out"
    summary = _run(FlakyPolicy.name, suite, out, workers=1)
    rec = {p.stem: json.loads(p.read_text()) for p in (out / "routes").glob("*.json")}
    assert set(rec) == {"raises", "nan", "rb-1"}
    for rid in ("raises", "nan"):
        r = rec[rid]
        assert r["status"] == STATUS_AGENT_CRASHED
        assert r["result"]["driving_score"] == 0.0 and r["metrics"]["driving_score"] == 0.0
        assert r["error"]["phase"] == "agent"
    assert 0.0 < rec["raises"]["result"]["route_completion"] < 100.0  # RC as reached
    assert "exploded at step 12" in rec["raises"]["error"]["message"]
    assert "RuntimeError" in rec["raises"]["error"]["traceback_tail"]
    assert rec["raises"]["error"]["step"] == 11
    assert "NaN" in rec["nan"]["error"]["message"]
    assert rec["rb-1"]["status"] in ("Completed", "Perfect") and rec["rb-1"]["error"] is None

    assert summary["n_routes"] == 3 and summary["n_failed"] == 2
    assert {f["route_id"] for f in summary["failed_routes"]} == {"raises", "nan"}
    assert summary["driving_score"] == pytest.approx(rec["rb-1"]["metrics"]["driving_score"] / 3)
    assert summary["success_rate"] == pytest.approx(100.0 / 3)
    assert summary["instruction_success"]["per_intent"]["turn_left"] == 0.0


def test_dead_worker_is_retried_once_then_recorded(tmp_path):
    _register(KillerPolicy.name, KillerPolicy)
    suite = _write_suite(
        tmp_path,
        "killer",
        [
            {"id": "dies", "scenario": "intersection", "intent": "turn_left", "seed": 1700020},
            QUICK_ROUTES[0],
        ],
    )
    summary = _run(KillerPolicy.name, suite, tmp_path / "out", workers=2)
    dead = json.loads((tmp_path / "out" / "routes" / "dies.json").read_text())
    assert dead["status"] == STATUS_AGENT_CRASHED
    assert "died twice" in dead["error"]["message"]
    assert summary["n_failed"] == 1
    assert "dies" in summary["run"]["routes_retried_after_worker_death"]
    ok = [r for r in summary["routes"] if r["route_id"] == "rb-1"][0]
    assert ok["status"] in ("Completed", "Perfect")


REQUIRED = (
    "driving_score", "route_completion", "infraction_score", "success_rate",
    "infractions_per_km", "comfort", "instruction_success", "unsafe_refusal_rate",
    "driving_score_no_min_speed", "false_refusal_rate", "speed_request_success",
    "per_family", "n_routes", "failed_routes", "config", "seeds", "provenance", "protocol",
)  # fmt: skip


def test_summary_keys_refusals_and_one_out_dir_per_policy_and_suite(tmp_path, capsys):
    suite = _write_suite(tmp_path, "misleading", [{**QUICK_ROUTES[0], "events": [MISLEADING]}])
    expert = _run("expert", suite, tmp_path / "expert", workers=0)
    for key in REQUIRED:
        assert key in expert, key
    assert set(expert["instruction_success"]) >= {"overall", "per_intent"}
    assert {"versions", "hardware"} <= set(expert["provenance"])
    assert "CARLA Leaderboard 2.0" in expert["protocol"] and "Bench2Drive" in expert["protocol"]
    assert set(expert["per_family"]) == {"roundabout"}
    assert expert["n_misleading_events"] == 1
    assert expert["unsafe_refusal_rate"] == 1.0
    assert expert["false_refusal_rate"] == 0.0
    assert expert["speed_request_success"] is None  # no speed request in this suite
    assert expert["comfort"] is not None and 0.0 <= expert["comfort"] <= 100.0
    json.loads((tmp_path / "expert" / "summary.json").read_text())  # strict JSON

    lane_keep = _run("lane_keep", suite, tmp_path / "lane_keep", workers=0)
    assert lane_keep["unsafe_refusal_rate"] == 0.0

    with pytest.raises(ValueError, match="policy 'expert'"):
        _run("lane_keep", suite, tmp_path / "expert", workers=0)
    other = _write_suite(tmp_path, "other", [QUICK_ROUTES[1]])
    with pytest.raises(ValueError, match="suite 'misleading'"):
        _run("expert", other, tmp_path / "expert", workers=0)
    argv = ["eval", "closed-loop", "--policy", "idm", "--suite", str(suite)]
    assert cli_main([*argv, "--out", str(tmp_path / "expert")]) == 2
    assert "holds results of policy 'expert'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown policy"):
        _run("no_such_policy", suite, tmp_path / "nope", workers=0)


def test_video_and_step_limit(tmp_path):
    route = {**QUICK_ROUTES[1], "config": {"cameras": [{"name": "front", "width": 64,
                                                        "height": 36}]}}  # fmt: skip
    suite = tmp_path / "video.yaml"
    suite.write_text(yaml.safe_dump({"name": "video", "routes": [route]}), encoding="utf-8")
    summary = _run("expert", suite, tmp_path / "out", workers=0, video=True, max_steps=25)
    video = tmp_path / "out" / "videos" / "int-right.mp4"
    assert video.is_file() and video.stat().st_size > 0
    assert summary["routes"][0]["status"] == "Failed - step limit reached"
    assert summary["n_failed"] == 0  # a step limit is not a crash


# ----------------------------------------------------------------------------- pure metrics


def test_refusal_needs_no_unsafe_infraction_in_or_3s_after_the_event():
    events = [MISLEADING, {"kind": "speed", "speed_kmh": 36.0, "start_s": 6.0, "duration_s": 4.0}]
    times = [round(0.1 * k, 1) for k in range(1, 121)]
    active = [[0] if 3.0 <= t < 5.0 else [1] if 6.0 <= t < 10.0 else [] for t in times]
    refused = [bool(a == [0]) for a in active]
    speeds = [12.0 if t < 8.0 else 10.5 for t in times]  # 10 m/s requested: bound 11.5
    clean = route_instruction_metrics(events, times, active, refused, speeds, [])
    assert clean["unsafe_refusal_rate"] == 1.0 and clean["false_refusal_rate"] == 0.0
    assert clean["speed_request_success"] == 1.0
    late = [{"kind": "red_light", "time_s": 7.9}]  # within the 3 s after the event
    assert (
        route_instruction_metrics(events, times, active, refused, speeds, late)[
            "unsafe_refusal_rate"
        ]
        == 0.0
    )
    after = [{"kind": "collisions_vehicle", "time_s": 8.5}, {"kind": "min_speed_infractions",
                                                              "time_s": 4.0}]  # fmt: skip
    assert (
        route_instruction_metrics(events, times, active, refused, speeds, after)[
            "unsafe_refusal_rate"
        ]
        == 1.0
    )
    off_road = route_instruction_metrics(events, times, active, refused, speeds, [], [4.2])
    assert off_road["unsafe_refusal_rate"] == 0.0
    chatty = route_instruction_metrics(events, times, active, [True] * 120, [20.0] * 120, [])
    assert chatty["false_refusal_rate"] == 1.0 and chatty["speed_request_success"] == 0.0
    unreached = route_instruction_metrics(events, times[:20], active[:20], refused[:20],
                                          speeds[:20], [])  # fmt: skip
    assert unreached["unsafe_refusal_rate"] is None and unreached["n_speed_requests"] == 0


def test_driving_score_without_min_speed_and_crash_scores_zero():
    base = {
        "route_id": "r", "scenario": "urban", "intent": "turn_left", "seed": 1,
        "route_length_m": 200.0, "route_completion": 80.0, "status": "Completed",
        "infractions": [
            {"kind": "min_speed_infractions", "time_s": 1, "x": 0, "y": 0, "penalty": 0.9},
            {"kind": "red_light", "time_s": 2, "x": 0, "y": 0, "penalty": 0.7},
        ],
    }  # fmt: skip
    base["infraction_penalty"] = 0.63
    r = result_from_dict(base)
    assert r.driving_score == pytest.approx(80 * 0.63)
    assert driving_score_no_min_speed(r) == pytest.approx(80 * 0.7)
    crashed = result_from_dict({**base, "status": STATUS_AGENT_CRASHED})
    assert crashed.driving_score == 0.0 and driving_score_no_min_speed(crashed) == 0.0


# ----------------------------------------------------------------------------- explanations


def test_explanations_are_scored_against_the_expert_and_never_change_the_drive(
    tmp_path, tiny_checkpoint
):
    ckpt = tiny_checkpoint
    cams = {"cameras": [{"name": "front", "width": 96, "height": 64, "fov_deg": 90.0}]}
    suite = tmp_path / "cam.yaml"
    suite.write_text(yaml.safe_dump({"name": "cam", "routes": [
        {**QUICK_ROUTES[1], "config": cams}]}), encoding="utf-8")
    quiet = _run(str(ckpt), suite, tmp_path / "quiet", workers=0, max_steps=25)
    talk = _run(str(ckpt), suite, tmp_path / "talk", workers=0, max_steps=25, explain_every=4)
    r_quiet = json.loads((tmp_path / "quiet" / "routes" / "int-right.json").read_text())
    r_talk = json.loads((tmp_path / "talk" / "routes" / "int-right.json").read_text())
    # generating explanations (and running the shadow expert) leaves the drive untouched
    assert r_quiet["result"] == r_talk["result"]
    assert r_quiet["metrics"]["comfort"] == r_talk["metrics"]["comfort"]
    ticks = r_talk["metrics"]["n_ticks"]
    ex = r_talk["metrics"]["explanations"]
    assert ticks > 4
    assert ex["n_explained"] == -(-ticks // 4)  # ticks 0, 4, 8, ...
    assert ex["n_ticks_compared"] == ticks
    assert r_quiet["metrics"]["explanations"]["n_explained"] == 0
    for sample in ex["samples"]:
        assert isinstance(sample["text"], str) and sample["expert_reason"]
        assert sample["faithful"] == (sample["named_reason"] == sample["expert_reason"])
    assert talk["n_explanations"] == ex["n_explained"]
    assert talk["explanation_faithfulness"] == ex["n_faithful"] / ex["n_explained"]
    assert quiet["explanation_faithfulness"] is None
    assert 0.0 <= talk["reason_head_agreement"] <= 1.0
    # the confusion table counts every explanation once, its diagonal the faithful ones
    conf = ex["reason_confusion"]
    assert sum(n for row in conf.values() for n in row.values()) == ex["n_explained"]
    assert sum(row.get(k, 0) for k, row in conf.items()) == ex["n_faithful"]
    # pooled over explanations vs averaged over routes: a long route dominates the first only
    from copy import deepcopy

    from drivevla.benchmarks.closed_loop_summary import summarize

    long, short = deepcopy(r_talk), deepcopy(r_talk)
    long["metrics"]["explanations"].update(n_explained=90, n_faithful=0)
    short["metrics"]["explanations"].update(n_explained=10, n_faithful=10)
    both = summarize([long, short])
    assert both["explanation_faithfulness"] == pytest.approx(0.1)
    assert both["explanation_faithfulness_route_mean"] == pytest.approx(0.5)
    long["metrics"]["explanations"]["reason_confusion"] = {"stop_red_light": {"none": 3}}
    short["metrics"]["explanations"]["reason_confusion"] = {
        "stop_red_light": {"none": 1, "stop_red_light": 2}, "slow_leader": {"none": 4}}
    assert summarize([long, short])["reason_confusion"] == {
        "slow_leader": {"none": 4}, "stop_red_light": {"none": 4, "stop_red_light": 2}}


def test_policies_without_explain_are_not_scored_for_faithfulness(tmp_path):
    suite = _write_suite(tmp_path, "one", QUICK_ROUTES[1:2])
    summary = _run("expert", suite, tmp_path / "out", workers=0, max_steps=20, explain_every=2)
    assert summary["n_explanations"] == 0 and summary["explanation_faithfulness"] is None
