"""The box expert (the demonstrator that needs no lane graph): its caps on constructed scenes
(a stop line crossed in and against its approach, leaders in and beside the corridor, crossing
traffic), its refusal without snapshots, and a drive on the embedded simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.agents.agent import Agent
from drivevla.agents.rollout import run_episode
from drivevla.core.env import PrivilegedState
from drivevla.core.scene import ActorBox, ActorKind, LightState, TrafficLightView
from drivevla.language.reasons import Reason
from drivevla.planner.box_expert import (
    BoxExpert,
    corridor_caps,
    crossing_caps,
    signal_caps,
)
from drivevla.planner.hazards import path_arclength
from drivevla.planner.trajectory import route_lateral, route_points
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.route_path import RoutePath

EGO = ActorBox(0, ActorKind.VEHICLE, 0.0, 0.0, 0.0, 4.8, 2.0, 1.5, speed_mps=8.0)
PATH = np.stack([np.arange(1.0, 81.0), np.zeros(80)], axis=1)  # straight on along +x
S_PATH = path_arclength(np.zeros(2), PATH)


def _car(x, y, yaw=0.0, speed=0.0, kind=ActorKind.VEHICLE) -> ActorBox:
    return ActorBox(7, kind, x, y, yaw, 4.5, 1.9, 1.5, speed_mps=speed, color=(0.9, 0.1, 0.1))


def _light(state: str, facing: float, x: float = 20.0) -> TrafficLightView:
    return TrafficLightView(3, x + 2.0, -3.0, 4.0, facing, LightState(state),
                            np.array([[x, -1.75], [x, 1.75]]))


def test_a_red_light_binds_at_its_line_in_its_approach_only():
    (cap,) = signal_caps(EGO, (_light("red", math.pi),), PATH, S_PATH)  # faces us
    assert cap.s_m == pytest.approx(20.0 - 2.4 - 1.5) and cap.speed_mps == 0.0
    assert cap.tag == Reason.RED_LIGHT.value and cap.obj["state"] == "red"
    assert signal_caps(EGO, (_light("red", 0.0),), PATH, S_PATH) == []  # the other approach
    assert signal_caps(EGO, (_light("green", math.pi),), PATH, S_PATH) == []
    # yellow: stopped for when a comfortable stop is possible, run when it is too late
    assert len(signal_caps(EGO, (_light("yellow", math.pi),), PATH, S_PATH)) == 1
    assert signal_caps(EGO, (_light("yellow", math.pi, x=6.0),), PATH, S_PATH) == []


def test_a_light_binds_until_the_tail_has_crossed_its_line():
    # the front is 1 m past the line, the tail is not: stop (cap at 0), not run it
    (cap,) = signal_caps(EGO, (_light("red", math.pi, x=1.4),), PATH, S_PATH)
    assert cap.s_m == 0.0
    assert signal_caps(EGO, (_light("red", math.pi, x=-2.6),), PATH, S_PATH) == []


def test_leaders_in_the_corridor_are_followed_and_cars_beside_it_ignored():
    (cap,) = corridor_caps(EGO, (_car(25.0, 0.3, speed=5.0),), PATH, S_PATH)
    assert cap.tag == Reason.SLOW_LEADER.value and cap.obj["colour"] == "red"
    assert cap.speed_mps == pytest.approx(5.0)
    assert cap.s_m == pytest.approx(25.0 - 2.4 - 2.25 - (3.0 + 1.2 * 5.0), abs=0.6)
    assert corridor_caps(EGO, (_car(25.0, 3.5, speed=5.0),), PATH, S_PATH) == []
    (ped,) = corridor_caps(EGO, (_car(15.0, 0.0, speed=1.2, kind=ActorKind.PEDESTRIAN),),
                           PATH, S_PATH)
    assert ped.speed_mps == 0.0 and ped.tag == Reason.PEDESTRIAN_CROSSING.value


def test_crossing_traffic_is_yielded_to_and_traffic_moving_away_is_not():
    towards = _car(30.0, -20.0, yaw=math.pi / 2, speed=8.0)  # reaches our path in ~2.3 s
    (cap,) = crossing_caps(EGO, (towards,), PATH, S_PATH, Reason.YIELD_JUNCTION)
    assert cap.tag == Reason.YIELD_JUNCTION.value and cap.speed_mps == 0.0
    assert cap.s_m == pytest.approx(30.0 - 2.4 - 0.95 - 2.0, abs=1.5)
    away = _car(30.0, -20.0, yaw=-math.pi / 2, speed=8.0)
    parallel = _car(10.0, -3.5, yaw=0.0, speed=12.0)
    parked = _car(30.0, -5.0, yaw=math.pi / 2, speed=0.0)
    assert crossing_caps(EGO, (away, parallel, parked), PATH, S_PATH,
                         Reason.YIELD_JUNCTION) == []
    # far beyond the horizon: nothing to yield to yet
    late = _car(30.0, -60.0, yaw=math.pi / 2, speed=8.0)
    assert crossing_caps(EGO, (late,), PATH, S_PATH, Reason.YIELD_JUNCTION) == []


def test_the_route_goes_straight_on_past_its_end():
    route = RoutePath(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 0.0], [10.0, 10.0]]), 13.9)
    assert route.length_m == pytest.approx(20.0)
    pts = route_points(route, np.array([5.0, 15.0, 25.0]))
    np.testing.assert_allclose(pts, [[5.0, 0.0], [10.0, 5.0], [10.0, 15.0]])
    assert route_lateral(route, np.array([4.0, 1.0]), 4.0) == pytest.approx(1.0)  # left of it


def test_reset_needs_snapshots():
    state = PrivilegedState(0.0, EGO, (), (), "carla:Town03", "follow_route",
                            PATH, 80.0, 0.0, 13.9, 0.0, backend=None)
    with pytest.raises(ValueError, match="backend gives fresh snapshots"):
        BoxExpert().reset(state)
    with pytest.raises(ValueError, match="box expert is privileged"):
        BoxExpert().reset(None)


@pytest.mark.parametrize("scenario,intent", [("intersection", "turn_left"),
                                             ("urban", "turn_right"),
                                             ("roundabout", "roundabout_exit_2")])
def test_it_drives_embedded_routes_without_a_lane_graph(scenario, intent):
    env = EmbeddedDrivingEnv({"scenario": scenario, "intent": intent, "cameras": []})
    expert = BoxExpert()
    try:
        episode = run_episode(env, Agent(expert), [], seed=1700002, options={})
        result = env.route_result().to_dict()
    finally:
        env.close()
    assert result["route_completion"] == pytest.approx(100.0)
    kinds = {i["kind"] for i in result["infractions"]}
    assert kinds <= {"min_speed_infractions"}, kinds
    assert episode.ticks > 50 and expert.last_reason is not None
