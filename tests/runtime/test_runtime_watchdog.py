"""The real-time runner's watchdog: deadlines, exceptions, invalid plans, hold then stop,
recovery, the accounting; on a simulated clock (deterministic) and one real-thread case."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from drivevla.agents.agent import Agent
from drivevla.runtime.clock import MonotonicClock, SimulatedClock
from drivevla.runtime.runner import RealtimeConfig, RealtimeRunner
from drivevla.runtime.safety import SafetyConfig
from support.runtime_parts import ScriptedPolicy, drive, obs_at


def _runner(script, **config):
    clock = SimulatedClock()
    runner = RealtimeRunner(ScriptedPolicy(script, clock), config=RealtimeConfig(**config),
                            clock=clock)
    runner.reset()
    return runner


def _modes(decisions):
    return [d.runtime.mode for d in decisions]


def _causes(decisions):
    return [None if d.runtime.cause is None else d.runtime.cause.split(":")[0]
            for d in decisions]


def test_on_time_valid_decisions_drive_like_the_plain_agent():
    runner = _runner([])
    controls, decisions = drive(runner, 20)
    agent = Agent(ScriptedPolicy([]))
    agent.reset()
    plain, _ = drive(agent, 20)
    assert controls == plain
    assert _modes(decisions) == ["policy"] * 20
    assert all(d.runtime.latency_s == 0.0 for d in decisions)
    assert runner.stats.fallback_ticks == 0 and runner.stats.events == []


def test_a_late_act_falls_back_on_that_tick_and_the_worker_stays_busy_until_it_ends():
    # 0.25 s of latency at tick 3 (t = 0.3): late; the job ends at t = 0.55, so ticks 4 and 5
    # find the worker busy; tick 6 runs a fresh act
    runner = _runner(["ok", "ok", "ok", ("sleep", 0.25)])
    _, decisions = drive(runner, 9)
    assert _causes(decisions) == [None] * 3 + ["deadline", "busy", "busy"] + [None] * 3
    assert _modes(decisions)[3:6] == ["hold"] * 3
    assert decisions[3].runtime.latency_s == pytest.approx(0.25)
    assert runner.worker.discarded == 1
    assert runner.stats.causes == {"deadline": 1, "busy": 2}


def test_latency_within_the_deadline_is_used():
    runner = _runner([("sleep", 0.05)])
    _, decisions = drive(runner, 2)
    assert decisions[0].runtime.mode == "policy"
    assert decisions[0].runtime.latency_s == pytest.approx(0.05)


def test_the_deadline_counts_from_the_ticks_start_not_from_the_act():
    # the instruction gate's check spends 50 ms of the 90 ms deadline; an act of 30 ms still
    # fits, one of 60 ms (in time on its own) does not
    class SlowGate(ScriptedPolicy):
        def refuses(self, instruction: str) -> bool:
            self.clock.sleep(0.05)
            return False

    clock = SimulatedClock()
    runner = RealtimeRunner(SlowGate([("sleep", 0.03), ("sleep", 0.06)], clock),
                            config=RealtimeConfig(safety=SafetyConfig(aeb=False)), clock=clock)
    runner.reset()
    _, decisions = drive(runner, 3)
    assert _causes(decisions)[:2] == [None, "deadline"]


def test_the_slowest_tick_is_named_with_the_time_spent_before_the_action_worker():
    # an act that really takes 60 ms on the third tick: the slowest, all of it on the worker
    clock = SimulatedClock()
    runner = RealtimeRunner(ScriptedPolicy(["ok", "ok", ("wall", 0.06)], clock),
                            config=RealtimeConfig(safety=SafetyConfig(aeb=False)), clock=clock)
    runner.reset()
    drive(runner, 5)
    record = runner.stats.to_dict()
    assert record["slowest_tick"] == 2
    assert record["max_tick_ms"] >= 60.0
    assert record["slowest_tick_pre_ms"] < 30.0


def test_a_slow_instruction_check_is_bounded_by_the_deadline():
    # a new text whose refusal check takes 200 ms (an exported model's whole pass, cold):
    # the tick falls back on time instead of waiting; once the check has finished, the verdict
    # is known and the text reaches the action path
    class SlowCheck(ScriptedPolicy):
        checked: set[str] = set()

        def refuses(self, instruction: str) -> bool:  # cached per text, as the real ones
            if "new" in instruction and instruction not in self.checked:
                self.clock.sleep(0.2)
            self.checked.add(instruction)
            return False

    clock = SimulatedClock()
    policy = SlowCheck([], clock)
    runner = RealtimeRunner(policy, config=RealtimeConfig(safety=SafetyConfig(aeb=False)),
                            clock=clock)
    runner.reset()
    decisions = []
    for k, text in enumerate(["Keep going.", "A new text.", "A new text.", "A new text.",
                              "A new text."]):
        obs = obs_at(0.1 * k)
        obs.instruction = text
        decisions.append(runner.step(obs)[1])
    assert _causes(decisions) == [None, "deadline", "busy", None, None]


def test_a_policy_that_raises_once_recovers_the_next_tick(caplog):
    runner = _runner(["ok", "raise"])
    with caplog.at_level(logging.INFO, logger="drivevla.runtime.runner"):
        _, decisions = drive(runner, 4)
    assert _causes(decisions) == [None, "exception", None, None]
    assert "RuntimeError: boom" in decisions[1].runtime.cause
    assert [e["mode"] for e in runner.stats.events] == ["hold", "policy"]
    assert "exception: RuntimeError: boom" in caplog.text


@pytest.mark.parametrize("step", ["nan", "fast"])
def test_nan_and_impossible_trajectories_are_caught(step):
    runner = _runner(["ok", step])
    _, decisions = drive(runner, 3)
    assert _causes(decisions) == [None, "invalid", None]
    assert decisions[1].runtime.mode == "hold"
    assert np.isfinite(decisions[1].waypoints).all()


def test_hold_for_the_horizon_then_a_controlled_stop_with_hazard_then_recovery():
    runner = _runner(["ok"] + ["raise"] * 30, hold_horizon_s=0.5)
    controls, decisions = drive(runner, 34)
    modes = _modes(decisions)
    # the last valid decision is at t = 0; ticks up to t = 0.5 hold it, the rest stop
    assert modes[1:6] == ["hold"] * 5 and modes[6:31] == ["stop"] * 25
    assert modes[31:] == ["policy"] * 3
    assert all(d.runtime.hazard == (d.runtime.mode == "stop") for d in decisions)
    speeds = [d.target_speeds[0] for d in decisions[6:31]]
    assert all(b <= a + 1e-9 for a, b in zip(speeds, speeds[1:], strict=False))
    assert all(c.brake > 0 or c.throttle == 0 for c in controls[7:31])
    assert runner.stats.stop_ticks == 25 and runner.stats.fallback_ticks == 30


def test_a_failure_on_the_first_tick_stops_straight_ahead():
    runner = _runner(["raise"])
    _, decisions = drive(runner, 2)
    first = decisions[0]
    assert first.runtime.mode == "stop" and first.runtime.hazard
    assert np.allclose(first.waypoints[:, 1], 0.0)
    assert decisions[1].runtime.mode == "policy"


def test_a_real_late_act_does_not_hold_up_the_tick():
    """Real threads and the wall clock: the policy blocks until released; the runner must
    return its fallback while the act is still blocked (a runner that waited would hang
    here until the policy's own 60 s timeout)."""
    policy = ScriptedPolicy(["ok", "block"])
    runner = RealtimeRunner(policy, config=RealtimeConfig(deadline_s=0.05),
                            clock=MonotonicClock())
    runner.reset()
    try:
        _, first = runner.step(obs_at(0.0))
        _, late = runner.step(obs_at(0.1))
        assert not policy.release.is_set()
        assert (first.runtime.mode, late.runtime.cause) == ("policy", "deadline")
        _, busy = runner.step(obs_at(0.2))
        assert busy.runtime.cause == "busy"
        policy.release.set()
        runner.worker.drain()
        _, fresh = runner.step(obs_at(0.3))
        assert fresh.runtime.mode == "policy" and policy.calls == 3
    finally:
        policy.release.set()
        runner.close()


def test_config_defaults_and_errors():
    assert RealtimeConfig().effective_deadline_s == pytest.approx(0.090)
    assert RealtimeConfig(deadline_s=0.05).effective_deadline_s == 0.05
    with pytest.raises(ValueError, match="deadline"):
        RealtimeConfig(deadline_s=0.2)
    with pytest.raises(ValueError, match="stop_decel_mps2"):
        RealtimeConfig(stop_decel_mps2=0.0)


def test_the_route_record_keeps_the_first_mode_changes_and_counts_the_rest(monkeypatch):
    monkeypatch.setattr("drivevla.runtime.runner.MAX_EVENTS", 3)
    runner = _runner(["ok", "raise", "ok", "raise", "ok", "raise"])
    drive(runner, 7)
    record = runner.stats.to_dict()
    assert [e["tick"] for e in record["events"]] == [1, 2, 3]
    assert record["events_dropped"] == 3 and record["causes"] == {"exception": 3}
