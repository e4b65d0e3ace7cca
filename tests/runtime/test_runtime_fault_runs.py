"""Fault injection in a closed-loop run (``eval closed-loop --faults``): the spec's parsing
and errors, the blocking loop that shows what latency does without the runtime, sensor
faults reaching the driver inside a rollout, and the false-AEB audit against ground truth."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.benchmarks.closed_loop_runtime import RuntimeRecord, aeb_confirmed
from drivevla.cli import main
from drivevla.core.scene import ActorBox, ActorKind, SceneSnapshot
from drivevla.core.types import RadarReading, RuntimeStatus
from drivevla.perception.radar import RadarSpec
from drivevla.runtime.blocking import BlockingAgent
from drivevla.runtime.clock import SimulatedClock
from drivevla.runtime.fault_spec import FaultSpec
from drivevla.runtime.faults import PolicyFaults, PolicyFaultsError
from support.runtime_parts import (
    ScriptedPolicy,
    cruise_decision,
    drive,
    one_route_suite,
    route_record,
)

TICKS = 60


@pytest.fixture
def suite(tmp_path):
    return one_route_suite(tmp_path)


def test_fault_spec_parses_round_trips_and_names_bad_keys():
    spec = FaultSpec.parse("policy.latency_share=0.3, policy.latency_ms=300,"
                           "sensors.drop_share=0.1,seed=7")
    assert spec.policy == PolicyFaults(seed=7, latency_share=0.3, latency_ms=300.0)
    assert spec.sensors.drop_share == 0.1 and spec.sensors.seed == 7 and spec.active
    assert spec.to_dict() == {"seed": 7, "policy": {"latency_share": 0.3, "latency_ms": 300.0},
                              "sensors": {"drop_share": 0.1}}
    assert FaultSpec.from_dict(spec.to_dict()) == spec
    assert not FaultSpec.parse("").active and FaultSpec.from_dict(None) == FaultSpec()
    for text, name in (("policy.jitter=1", "jitter"), ("camera.drop_share=0.1", "camera"),
                       ("policy.nan_share=2", "nan_share"), ("seed=1.5", "seed"),
                       ("policy.nan_share", "KEY=VALUE"), ("sensors.noise_std=x", "noise_std")):
        with pytest.raises(PolicyFaultsError, match=name):
            FaultSpec.parse(text)


def test_the_cli_refuses_a_bad_fault_spec_naming_it(tmp_path, suite, capsys):
    with pytest.raises(SystemExit):
        main(["eval", "closed-loop", "--policy", "expert", "--suite", str(suite), "--out",
              str(tmp_path / "x"), "--faults", "policy.latency_sharee=0.3"])
    assert "latency_sharee" in capsys.readouterr().err


def test_a_late_decision_without_the_runtime_arrives_late_and_the_world_moves_on():
    clock = SimulatedClock()
    policy = ScriptedPolicy(["ok", "ok", ("sleep", 0.25), "ok", "ok", "ok"], clock=clock)
    agent = BlockingAgent(policy, clock, control_dt_s=0.1)
    agent.reset()
    controls, decisions = drive(agent, 6)
    # tick 2 takes 2.5 periods: ticks 2 and 3 drive tick 1's control; tick 4 drives the
    # decision made at tick 2 (from tick 2's observation); the policy is not asked meanwhile
    assert controls[2] is controls[1] and controls[3] is controls[1]
    assert decisions[2] is decisions[1] and decisions[4] is not decisions[1]
    assert policy.calls == 4 and agent.late_ticks == 2
    assert controls[4] != controls[1]
    agent.reset()
    assert agent.late_ticks == 0


def test_policy_latency_without_protections_blocks_and_with_them_falls_back(tmp_path, suite):
    spec = FaultSpec.parse("policy.latency_share=0.3,policy.latency_ms=300,seed=4")
    runs = {}
    for runtime in ("none", "realtime"):
        run_closed_loop("expert", suite, tmp_path / runtime, workers=0, max_steps=TICKS,
                        progress=False, print_table=False, runtime=runtime, faults=spec)
        runs[runtime] = route_record(tmp_path / runtime)
    blocked = runs["none"]["metrics"]["faults"]
    assert blocked["latency"] > 0 and blocked["blocked_ticks"] >= blocked["latency"]
    protected = runs["realtime"]["metrics"]
    # each late act costs its deadline; the ticks a late act is still running are "busy"
    assert set(protected["faults"]) == {"latency"} and protected["faults"]["latency"] > 0
    assert protected["runtime"]["causes"]["deadline"] == protected["faults"]["latency"]
    assert runs["realtime"]["error"] is None and protected["n_ticks"] == TICKS
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert summary["config"]["faults"] == spec.to_dict()
    assert summary["faults"]["injected"]["latency"] == blocked["latency"]
    # another fault spec into the same folder is refused: it is part of the fingerprint
    with pytest.raises(ValueError, match="faults"):
        run_closed_loop("expert", suite, tmp_path / "none", workers=0, max_steps=TICKS,
                        progress=False, print_table=False,
                        faults=FaultSpec.parse("policy.nan_share=0.3"))


def test_sensor_faults_reach_the_driver_inside_a_rollout(tmp_path, suite):
    spec = FaultSpec.parse("sensors.black_share=1,seed=1")
    run_closed_loop("expert", suite, tmp_path / "black", workers=0, max_steps=20,
                    progress=False, print_table=False, faults=spec)
    metrics = route_record(tmp_path / "black")["metrics"]
    assert metrics["faults"] == {"black": 20}
    assert metrics["sensor_faults"]  # the agent's monitor saw the black frames


def _snapshot(ahead_m: float | None) -> SceneSnapshot:
    ego = ActorBox(0, ActorKind.VEHICLE, 0.0, 0.0, 0.0, 4.8, 2.0, 1.5, speed_mps=15.0)
    actors = []
    if ahead_m is not None:  # a stopped car ahead in the lane
        actors.append(ActorBox(5, ActorKind.VEHICLE, 2.4 + ahead_m + 2.4, 0.0, 0.0, 4.8, 2.0,
                               1.5, speed_mps=0.0))
    return SceneSnapshot(0.0, ego, actors)


@pytest.mark.parametrize("ahead_m, false", [(12.0, 0), (None, 1), (70.0, 1)])
def test_an_aeb_activation_is_false_when_the_true_world_has_nothing_ahead(ahead_m, false):
    snap = _snapshot(ahead_m)
    env = SimpleNamespace(world=SimpleNamespace(snapshot=lambda: snap), radar_spec=RadarSpec())
    record = RuntimeRecord(SimpleNamespace())
    record.on_reset(env, None, {})
    for k, aeb in enumerate((False, True, True, False)):  # one activation, held two ticks
        decision = cruise_decision()
        decision.runtime = RuntimeStatus(k, aeb=aeb)
        ego = SimpleNamespace(speed_mps=15.0)
        record.after_decision(SimpleNamespace(decision=decision,
                                              observation=SimpleNamespace(ego=ego)))
    assert record.false_aeb == false


def test_aeb_confirmation_uses_a_margin_over_the_aeb_itself():
    closing = RadarReading(20.0, -10.0, 0.0, 1)  # TTC 2 s: over the AEB's 1.5 s, under 3 s
    assert aeb_confirmed(closing, 10.0)
    assert not aeb_confirmed(RadarReading(40.0, -10.0, 0.0, 1), 10.0)  # TTC 4 s
    assert not aeb_confirmed(RadarReading(20.0, -10.0, 0.5, 1), 10.0)  # 9.6 m to the side
    assert not aeb_confirmed(None, 10.0)
    # standing against a car (after a collision): a near object ahead confirms at any speed
    assert aeb_confirmed(RadarReading(0.8, -0.02, 0.0, 1), 0.1)
    assert not aeb_confirmed(RadarReading(3.0, -0.02, 1.2, 1), 0.1)  # 2.8 m to the side
    assert not aeb_confirmed(RadarReading(6.0, 0.0, 0.0, 1), 0.1)  # 6 m, not closing


def test_on_the_wall_clock_latency_spikes_sleep_for_real_and_fall_back(tmp_path, suite):
    spec = FaultSpec.parse("policy.latency_share=0.3,policy.latency_ms=300,seed=4")
    start = time.monotonic()
    run_closed_loop("expert", suite, tmp_path / "wall", workers=0, max_steps=30,
                    progress=False, print_table=False, runtime="realtime", faults=spec,
                    clock="wall")
    took = time.monotonic() - start
    record = route_record(tmp_path / "wall")
    stats = record["metrics"]["runtime"]
    assert record["error"] is None and stats["ticks"] == 30
    # the simulator is paced to real time (10 Hz): a 300 ms spike covers about 3 ticks (its
    # deadline, then busy), not the hundreds an unpaced simulator would step meanwhile
    assert took >= 29 * 0.1
    spikes = record["metrics"]["faults"]["latency"]
    assert spikes > 0 and stats["causes"]["deadline"] >= spikes
    assert stats["fallback_ticks"] <= 4 * spikes + 2
    assert isinstance(stats["late_ticks"], int) and stats["max_tick_ms"] > 0
    summary = json.loads((tmp_path / "wall" / "summary.json").read_text())
    assert summary["config"]["clock"] == "wall"
    with pytest.raises(ValueError, match="clock='sundial'"):
        run_closed_loop("expert", suite, tmp_path / "x", workers=0, clock="sundial")
