"""The fallback plans (re-timed hold, controlled stop) and the plausibility bounds, on
constructed geometry; and the runner on the expert in the embedded simulator: no fallback
and the same controls as the plain Agent when all is well."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.agents.agent import Agent
from drivevla.agents.rollout import Hook, run_episode
from drivevla.core.frames import ego_to_world
from drivevla.core.types import Decision, EgoState
from drivevla.planner.expert import ExpertPolicy
from drivevla.runtime.clock import SimulatedClock
from drivevla.runtime.fallback import hold_decision, stop_decision
from drivevla.runtime.runner import RealtimeRunner
from drivevla.runtime.validity import invalid_reason
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from support.runtime_parts import cruise_decision


def test_hold_re_times_a_straight_plan_to_where_the_car_is_now():
    last = cruise_decision(speed=8.0)  # 4 m every 0.5 s along x
    made_at = EgoState(10.0, 5.0, 0.0, 8.0)
    now = EgoState(14.0, 5.0, 0.0, 8.0)  # 0.5 s later, 4 m on
    hold = hold_decision(last, made_at, now, elapsed_s=0.5)
    assert np.allclose(hold.waypoints[:, 1], 0.0, atol=1e-9)
    assert np.allclose(hold.waypoints[:, 0], 4.0 * np.arange(1, 7))
    assert np.allclose(hold.target_speeds, 8.0)


def test_hold_keeps_the_world_path_of_a_curve_and_shifts_the_speed_profile():
    last = cruise_decision(speed=6.0, curvature=0.05)  # a 20 m radius left curve
    last.target_speeds[:] = np.linspace(6.0, 3.0, 6)
    made_at = EgoState(0.0, 0.0, 0.3, 6.0)
    # the car is 3 m along the curve, 0.2 m to its right, heading along it
    s = 3.0
    on_path = ego_to_world(np.array([20 * math.sin(s / 20), 20 * (1 - math.cos(s / 20))]),
                           made_at.xy, made_at.yaw)
    yaw = 0.3 + s / 20
    now_xy = on_path + 0.2 * np.array([math.sin(yaw), -math.cos(yaw)])
    now = EgoState(now_xy[0], now_xy[1], yaw, 6.0)
    hold = hold_decision(last, made_at, now, elapsed_s=0.5)
    world = ego_to_world(hold.waypoints, now.xy, now.yaw)
    local = (world - made_at.xy) @ np.array([[math.cos(0.3), -math.sin(0.3)],
                                             [math.sin(0.3), math.cos(0.3)]])
    radius = np.hypot(local[:, 0], local[:, 1] - 20.0)
    # on the old circle: 3 m chords of a 20 m circle stay within their 6 cm sagitta
    assert np.all((radius[:4] > 19.93) & (radius[:4] <= 20.0 + 1e-9))
    assert np.all(hold.waypoints[:, 0] > 0)
    assert hold.target_speeds[0] == pytest.approx(np.interp(1.0, [0.5, 1.0], [6.0, 5.4]))


def test_stop_decelerates_comfortably_along_the_last_path():
    last = cruise_decision(speed=10.0)
    now = EgoState(2.0, 0.0, 0.0, 10.0)
    stop = stop_decision(last, EgoState(0.0, 0.0, 0.0, 10.0), now, decel_mps2=2.0)
    assert np.allclose(stop.target_speeds, [9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    assert np.allclose(stop.waypoints[:, 1], 0.0, atol=1e-9)
    assert np.all(np.diff(stop.waypoints[:, 0]) > 0)
    standing = stop_decision(last, EgoState(0.0, 0.0, 0.0, 10.0), EgoState(2, 0, 0, 0.0), 2.0)
    assert np.allclose(standing.target_speeds, 0.0) and np.allclose(standing.waypoints, 0.0)


def _plan(points, speeds):
    return Decision(np.asarray(points, float), np.asarray(speeds, float))


@pytest.mark.parametrize("make, match", [
    (lambda d: d.waypoints.__setitem__((0, 0), math.nan), "non-finite"),
    (lambda d: d.target_speeds.__setitem__(3, math.inf), "non-finite"),
    (lambda d: d.target_speeds.__setitem__(slice(None), 60.0), "target speed"),
    (lambda d: d.target_speeds.__setitem__(slice(None), -3.0), "target speed"),
    (lambda d: d.waypoints.__setitem__(slice(None), d.waypoints * 10), "waypoints imply"),
    (lambda d: d.target_speeds.__setitem__(slice(3, None), 16.0), "acceleration"),
])
def test_implausible_plans_are_named(make, match):
    decision = cruise_decision(speed=8.0)
    make(decision)
    assert match in invalid_reason(decision)


def test_curvature_and_lateral_acceleration_bounds():
    assert invalid_reason(cruise_decision(speed=4.0, curvature=0.1)) is None
    assert "curvature" in invalid_reason(cruise_decision(speed=4.0, curvature=0.5))
    assert "lateral" in invalid_reason(cruise_decision(speed=14.0, curvature=0.15))
    assert "not a Decision" in invalid_reason(None)
    # a hard stop is a legitimate plan
    assert invalid_reason(_plan([[4, 0], [6, 0]] + [[6.5, 0]] * 4, [8, 2, 0, 0, 0, 0])) is None


class _Record(Hook):
    def __init__(self):
        self.controls, self.decisions = [], []

    def after_decision(self, tick):
        self.controls.append(tick.control)
        self.decisions.append(tick.decision)


def _expert_drive(make_driver, ticks):
    env = EmbeddedDrivingEnv({"scenario": "urban", "intent": "turn_left", "max_steps": ticks})
    record = _Record()
    try:
        run_episode(env, make_driver, [record], seed=3, options={"intent": "turn_left"})
    finally:
        env.close()
    return record


def test_the_expert_through_the_runner_drives_exactly_as_without_it():
    ticks = 250  # the whole route (~210 ticks), through the left turn at the junction
    plain = _expert_drive(lambda e: Agent(ExpertPolicy()), ticks)
    runner = RealtimeRunner(ExpertPolicy(), clock=SimulatedClock())
    try:
        timed = _expert_drive(lambda e: runner, ticks)
    finally:
        runner.close()
    n = len(plain.controls)
    assert n > 150 and len(timed.controls) == n
    assert [d.runtime.mode for d in timed.decisions] == ["policy"] * n
    assert timed.controls == plain.controls
    assert all(invalid_reason(d) is None for d in plain.decisions)
