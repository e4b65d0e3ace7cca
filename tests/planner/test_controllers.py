"""Closed-loop tracking of the shared controllers on the simulator's vehicle model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from highway_env.road.lane import StraightLane
from highway_env.road.road import Road, RoadNetwork

from drivevla.core.frames import world_to_ego
from drivevla.core.types import Decision, EgoState
from drivevla.planner.controllers import ControllerConfig, TrajectoryController, path_point_at
from drivevla.sim_bridge.embedded.actors import EgoVehicle

DT = 0.1


def _vehicle(speed: float) -> EgoVehicle:
    net = RoadNetwork()
    net.add_lane("a", "b", StraightLane([-1000, 0], [1000, 0]))
    return EgoVehicle(Road(network=net), np.zeros(2), 0.0, speed)


def _state(v: EgoVehicle) -> EgoState:
    return EgoState(float(v.position[0]), float(v.position[1]), float(v.heading), float(v.speed))


def _track(path_fn, speed_fn, v0: float, seconds: float, cfg: ControllerConfig | None = None):
    """Drive the vehicle model with decisions built from a reference path; returns the
    ego states over time. ``path_fn(s) -> world xy`` by arc length; ``speed_fn(t)``."""
    car = _vehicle(v0)
    ctrl = TrajectoryController(cfg)
    states, s_ref = [], 0.0
    for k in range(int(seconds / DT)):
        t = k * DT
        # nearest reference arc length near the previous one
        cands = s_ref + np.linspace(-2.0, 6.0, 161)
        d = np.linalg.norm(np.array([path_fn(c) for c in cands]) - car.position, axis=1)
        s_ref = float(cands[int(np.argmin(d))])
        v_t = speed_fn(t)
        ahead = s_ref + v_t * 0.5 * np.arange(1, 7)
        wps = world_to_ego(np.array([path_fn(a) for a in ahead]), car.position, car.heading)
        decision = Decision(wps, np.full(6, v_t))
        car.apply_control(ctrl.control(decision, _state(car)), DT)
        car.step(DT)
        states.append((t, car.position.copy(), car.speed))
    return states


def test_straight_line_tracking_and_speed_step():
    states = _track(lambda s: np.array([s, 0.0]), lambda t: 15.0, v0=10.0, seconds=15.0)
    settled = [s for s in states if s[0] > 6.0]
    assert max(abs(p[1]) for _, p, _ in settled) < 0.05
    assert max(abs(v - 15.0) for *_, v in settled) < 0.3


@pytest.mark.parametrize("radius, speed", [(30.0, 8.0), (12.0, 5.0)])
def test_circle_tracking_error_is_bounded(radius, speed):
    centre = np.array([0.0, radius])  # a left-hand circle starting at the origin heading +x

    def path(s):
        a = s / radius - math.pi / 2
        return centre + radius * np.array([math.cos(a), math.sin(a)])

    states = _track(path, lambda t: speed, v0=speed, seconds=20.0)
    errors = [abs(np.linalg.norm(p - centre) - radius) for t, p, _ in states if t > 4.0]
    assert max(errors) < 0.5
    assert float(np.mean(errors)) < 0.25
    assert abs(states[-1][2] - speed) < 0.3


def test_speeding_up_stays_within_the_comfort_bound_and_braking_is_not_capped():
    # from standstill to 15 m/s with the cap: the car gets there, never faster than 2.2 m/s^2
    capped = ControllerConfig(comfort_accel_mps2=2.2)
    states = _track(lambda s: np.array([s, 0.0]), lambda t: 15.0, v0=0.0, seconds=12.0,
                    cfg=capped)
    accel = np.diff([0.0] + [v for *_, v in states]) / DT
    assert accel.max() <= 2.2 + 1e-6
    assert abs(states[-1][2] - 15.0) < 0.3
    jump = Decision(np.array([[5.0 * k, 0.0] for k in range(1, 7)]), np.full(6, 15.0))
    # without the cap (the default) a jump in target speed is full throttle
    assert TrajectoryController().control(jump, _state(_vehicle(0.0))).throttle == 1.0
    assert TrajectoryController(capped).control(jump, _state(_vehicle(0.0))).throttle < 0.6
    # a plan to stop from 15 m/s brakes harder than the comfort bound (-4.05 m/s^2)
    ctrl = TrajectoryController(capped)
    control = ctrl.control(Decision(np.array([[1.0 * k, 0.0] for k in range(1, 7)]),
                                    np.zeros(6)), _state(_vehicle(15.0)))
    assert control.brake * ctrl.cfg.max_brake_mps2 > 4.05


def test_stop_decision_holds_the_brake():
    car = _vehicle(0.2)
    ctrl = TrajectoryController()
    control = ctrl.control(Decision(np.zeros((6, 2)), np.zeros(6)), _state(car))
    assert control.brake == 1.0 and control.throttle == 0.0


def test_path_point_extrapolates_beyond_the_waypoints():
    wps = np.array([[1.0, 0.0], [2.0, 0.0]])
    assert np.allclose(path_point_at(wps, 5.0), [5.0, 0.0])
    assert np.allclose(path_point_at(np.array([[0.0, 1.0], [0.0, 2.0]]), 1.5), [0.0, 1.5])


def test_bunched_waypoints_of_a_stopping_plan_do_not_steer_to_full_lock():
    from drivevla.planner.controllers import thin_path

    # a plan braking to a stop a little left of straight ahead: the last points lie within
    # centimetres, and the direction between two of them points hard left
    wps = np.array([[1.0, 0.02], [1.5, 0.08], [1.7, 0.12], [1.75, 0.25], [1.76, 0.33],
                    [1.76, 0.36]])
    assert len(thin_path(wps, 1.0)) == 1  # only the point a metre on carries direction
    target_raw = path_point_at(wps, 4.6)
    target = path_point_at(wps, 4.6, min_spacing_m=1.0)
    assert abs(math.atan2(target_raw[1], target_raw[0])) > math.radians(45)
    assert abs(math.atan2(target[1], target[0])) < math.radians(5)
    car = _vehicle(3.6)
    ctrl = TrajectoryController()
    decision = Decision(wps, np.linspace(2.0, 0.5, 6))
    assert abs(ctrl.control(decision, _state(car)).steer) < 0.2
    loose = TrajectoryController(dataclasses.replace(ctrl.cfg, path_min_spacing_m=0.0))
    assert abs(loose.control(decision, _state(car)).steer) > 0.9
    # a plan to stand still steers straight; well-spaced paths are unchanged
    assert np.allclose(path_point_at(np.zeros((6, 2)), 3.0, 1.0), [3.0, 0.0])
    line = np.array([[2.0, 0.0], [4.0, 1.0], [6.0, 2.0]])
    assert np.allclose(path_point_at(line, 3.0, 1.0), path_point_at(line, 3.0))


def test_path_curvature_of_a_circle_and_of_a_path_clamped_at_its_goal():
    from drivevla.planner.trajectory import path_curvature

    t = np.linspace(0.0, np.pi, 300)
    circle = np.stack([12.0 * np.cos(t), 12.0 * np.sin(t)], axis=1)
    k = path_curvature(circle)
    assert np.median(k) == pytest.approx(1 / 12.0, rel=0.02)
    # a straight path that stops at the goal (points repeated there, as a route clamps them)
    # is straight: the repeated points must not read as a hairpin
    line = np.stack([np.arange(30.0), np.zeros(30)], axis=1)
    clamped = np.concatenate([line, np.repeat(line[-1:], 15, axis=0)])
    assert path_curvature(clamped).max() < 1e-6
