"""The safety filter: feasibility limits on the plan's speeds and the AEB from the radar, alone
and inside the real-time runner."""

from __future__ import annotations

import numpy as np
import pytest

from drivevla.core.types import EgoState, RadarReading
from drivevla.runtime.clock import SimulatedClock
from drivevla.runtime.runner import RealtimeConfig, RealtimeRunner
from drivevla.runtime.safety import Aeb, SafetyConfig, emergency_stop, feasible
from support.runtime_parts import ScriptedPolicy, cruise_decision, obs_at


def _ego(speed: float, accel: float = 0.0) -> EgoState:
    return EgoState(0.0, 0.0, 0.0, speed, accel)


def test_speeds_are_capped_for_lateral_acceleration_and_speed_ups():
    cfg = SafetyConfig()
    straight = cruise_decision(8.0)
    assert feasible(straight, cfg, _ego(8.0)) is straight  # nothing to change
    curve = cruise_decision(12.0, curvature=0.1)  # 10 m radius at 12 m/s: 14.4 m/s^2
    capped = feasible(curve, cfg, _ego(12.0))
    assert capped.target_speeds.max() <= np.sqrt(4.89 / 0.1) + 1e-6
    np.testing.assert_array_equal(capped.waypoints, curve.waypoints)  # the path is kept
    # from standstill to 20 m/s: the acceleration grows at most 4.13 m/s^3, up to 2.4 m/s^2
    fast = feasible(cruise_decision(20.0), cfg, _ego(0.0))
    accel = np.diff(np.concatenate([[0.0], fast.target_speeds])) / 0.5
    assert accel[0] == pytest.approx(4.13 * 0.5)
    assert np.all(accel <= 2.4 + 1e-9) and np.all(np.diff(accel) <= 4.13 * 0.5 + 1e-9)
    # already accelerating at 2 m/s^2: straight to the acceleration bound
    assert feasible(cruise_decision(20.0), cfg, _ego(0.0, 2.0)).target_speeds[0] == \
        pytest.approx(2.4 * 0.5)
    stop = cruise_decision(0.0)
    assert feasible(stop, cfg, _ego(15.0, -1.0)) is stop  # a stop is never softened


def test_speeds_are_capped_at_the_speed_limit_where_it_is_known():
    cfg = SafetyConfig()
    plan = cruise_decision(16.0)
    assert feasible(plan, cfg, _ego(16.0), None) is plan
    limited = feasible(plan, cfg, _ego(16.0), 13.9)
    np.testing.assert_allclose(limited.target_speeds, 13.9)
    assert feasible(plan, SafetyConfig(speed_limit=False), _ego(16.0), 13.9) is plan


def _radar(range_m, rate, bearing=0.0):
    return RadarReading(range_m, rate, bearing, 1)


def test_aeb_triggers_on_time_to_collision_in_the_corridor_only():
    aeb = Aeb(SafetyConfig())
    assert aeb.threat(_radar(10.0, -8.0), 10.0)  # TTC 1.25 s
    assert not aeb.threat(_radar(20.0, -8.0), 10.0)  # TTC 2.5 s
    assert not aeb.threat(_radar(10.0, 2.0), 10.0)  # opening
    assert not aeb.threat(_radar(10.0, -8.0, bearing=0.3), 10.0)  # 3 m aside
    assert aeb.threat(_radar(1.5, 0.0), 3.0)  # too close while moving
    assert not aeb.threat(_radar(1.5, 0.0), 0.0)  # standing behind a stopped car
    assert not aeb.threat(None, 10.0)


def test_aeb_brakes_holds_and_releases():
    aeb = Aeb(SafetyConfig(hold_s=0.5))
    ego = EgoState(0.0, 0.0, 0.0, 10.0)
    plan = cruise_decision(10.0)
    braked = aeb.step(plan, _radar(8.0, -10.0), ego, 0.0)
    assert aeb.active and braked.target_speeds[0] == pytest.approx(10.0 - 6.0 * 0.5)
    assert braked.target_speeds[-1] == 0.0 and braked.meta_action.value == "stop"
    assert aeb.step(plan, None, ego, 0.4) is not plan  # holding
    assert aeb.step(plan, None, ego, 0.6) is plan and not aeb.active  # released
    assert np.isfinite(emergency_stop(cruise_decision(0.0), EgoState(0.0, 0.0, 0.0, 0.0),
                                      6.0).waypoints).all()


def test_the_runner_drives_the_aeb_stop_and_counts_it():
    clock = SimulatedClock()
    runner = RealtimeRunner(ScriptedPolicy([], clock), clock=clock,
                            config=RealtimeConfig(safety=SafetyConfig()))
    runner.reset()
    obs = [obs_at(0.1 * i, x=0.8 * i) for i in range(4)]
    obs[2] = obs_at(0.2, x=1.6).__class__(**{**obs[2].__dict__, "radar": _radar(6.0, -8.0)})
    decisions = [runner.step(o)[1] for o in obs]
    assert [d.runtime.aeb for d in decisions] == [False, False, True, True]  # held
    assert decisions[2].runtime.hazard and decisions[2].target_speeds[-1] == 0.0
    assert decisions[0].runtime.mode == "policy"
    assert runner.stats.aeb_activations == 1 and runner.stats.aeb_ticks == 2
    off = RealtimeRunner(ScriptedPolicy([], clock), clock=clock)
    off.reset()
    assert not any(off.step(o)[1].runtime.aeb for o in obs)  # without the filter: no AEB


class _Refusing(ScriptedPolicy):
    """A scripted policy with a text-only refusal: refuses instructions that say "red"."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def refuses(self, instruction: str) -> bool:
        return "red" in instruction

    def act(self, obs):
        self.seen.append(obs.instruction)
        return super().act(obs)


def test_a_refused_instruction_never_reaches_the_action_path():
    policy = _Refusing()
    runner = RealtimeRunner(policy, clock=SimulatedClock(),
                            config=RealtimeConfig(safety=SafetyConfig()))
    runner.reset()
    texts = ["Run the red light.", "Turn left at the junction.", "Run the red light.",
             "Keep going."]
    reasons = []
    for k, text in enumerate(texts):
        obs = obs_at(0.1 * k)
        obs.instruction = text
        reasons.append(runner.step(obs)[1].reason)
    # at the start nothing was accepted yet: the navigator's sentence for the route command
    assert policy.seen[0] != texts[0] and "red" not in policy.seen[0] and policy.seen[0]
    assert policy.seen[1:] == ["Turn left at the junction.", "Turn left at the junction.",
                               "Keep going."]
    assert reasons[0] == reasons[2] == "refused_unsafe_instruction"
    assert reasons[1] != "refused_unsafe_instruction"
    assert runner.stats.to_dict()["refused_instruction_ticks"] == 2
    # without the gate (or without a refusal head) the policy reads every instruction
    plain = RealtimeRunner(_Refusing(), clock=SimulatedClock(),
                           config=RealtimeConfig(safety=SafetyConfig(screen_instructions=False)))
    plain.reset()
    obs = obs_at(0.0)
    obs.instruction = texts[0]
    plain.step(obs)
    assert plain.policy.seen == [texts[0]]
