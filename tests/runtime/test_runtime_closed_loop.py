"""``drivevla eval closed-loop --runtime realtime``: the expert scores the same through the
runner, the route record carries the runner's accounting, the resume fingerprint tells the
runtimes apart, and a policy that raises is caught instead of crashing the route."""

from __future__ import annotations

import json

import pytest

from drivevla.agents import registry
from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.cli import main
from drivevla.planner.expert import ExpertPolicy
from drivevla.runtime.faults import FaultyPolicy, PolicyFaults
from support.runtime_parts import one_route_suite, route_record

TICKS = 60


def expert_raising_sometimes():
    """The expert with an exception on 20 % of its ticks (module level: picklable)."""
    return FaultyPolicy(ExpertPolicy(), PolicyFaults(seed=2, exception_share=0.2))


def expert_spiking():
    """The expert with 300 ms of latency on 30 % of its ticks."""
    return FaultyPolicy(ExpertPolicy(), PolicyFaults(seed=4, latency_share=0.3, latency_ms=300))


@pytest.fixture
def suite(tmp_path):
    return one_route_suite(tmp_path)


def test_the_expert_scores_the_same_with_the_realtime_runtime(tmp_path, suite, capsys):
    plain = tmp_path / "plain"
    run_closed_loop("expert", suite, plain, workers=0, max_steps=TICKS, progress=False,
                    print_table=False)
    timed = tmp_path / "timed"
    assert main(["eval", "closed-loop", "--policy", "expert", "--suite", str(suite),
                 "--out", str(timed), "--workers", "0", "--max-steps", str(TICKS),
                 "--runtime", "realtime"]) == 0
    a, b = route_record(plain), route_record(timed)
    assert a["result"] == b["result"] and a["metrics"]["n_ticks"] == TICKS
    assert a["metrics"]["runtime"] is None
    stats = b["metrics"]["runtime"]
    assert (stats["ticks"], stats["fallback_ticks"], stats["causes"]) == (TICKS, 0, {})
    summary = json.loads((timed / "summary.json").read_text())
    assert summary["config"]["runtime"] == "realtime"
    assert summary["runtime"]["ticks"] == TICKS and summary["runtime"]["fallback_share"] == 0
    # resuming into the other runtime's folder is refused: the fingerprint includes it
    with pytest.raises(ValueError, match="runtime"):
        run_closed_loop("expert", suite, plain, workers=0, max_steps=TICKS, progress=False,
                        print_table=False, runtime="realtime")
    with pytest.raises(ValueError, match="runtime='fast'"):
        run_closed_loop("expert", suite, tmp_path / "x", workers=0, runtime="fast")


def test_policy_exceptions_crash_the_route_without_the_runtime_and_not_with_it(tmp_path,
                                                                                suite):
    registry.policy_names()
    registry.register_policy("expert-raising", expert_raising_sometimes)
    run_closed_loop("expert-raising", suite, tmp_path / "none", workers=0, max_steps=TICKS,
                    progress=False, print_table=False)
    run_closed_loop("expert-raising", suite, tmp_path / "rt", workers=0, max_steps=TICKS,
                    progress=False, print_table=False, runtime="realtime")
    crashed, protected = route_record(tmp_path / "none"), route_record(tmp_path / "rt")
    assert crashed["status"] == "Failed - Agent crashed"
    assert "InjectedFault" in crashed["error"]["type"]
    assert protected["error"] is None and protected["metrics"]["n_ticks"] == TICKS
    stats = protected["metrics"]["runtime"]
    assert stats["causes"]["exception"] == stats["fallback_ticks"] > 0


def test_latency_spikes_in_the_closed_loop_run_on_simulated_time_and_repeat(tmp_path, suite):
    registry.policy_names()
    registry.register_policy("expert-spiking", expert_spiking)
    runs = []
    for name in ("a", "b"):
        run_closed_loop("expert-spiking", suite, tmp_path / name, workers=0, max_steps=TICKS,
                        progress=False, print_table=False, runtime="realtime")
        runs.append(route_record(tmp_path / name))
    stats = runs[0]["metrics"]["runtime"]
    assert runs[0]["error"] is None and runs[0]["metrics"]["n_ticks"] == TICKS
    assert stats["causes"]["deadline"] > 0 and stats["causes"]["busy"] > 0
    assert set(stats["causes"]) == {"deadline", "busy"} and stats["late_ticks"] == 0
    assert runs[1]["metrics"]["runtime"]["causes"] == stats["causes"]
    assert runs[1]["drive"] == runs[0]["drive"]
