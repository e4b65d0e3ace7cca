"""Scripted drives in the embedded simulator that each produce one expected infraction and
the driving score the CARLA Leaderboard 2.0 penalty factors give for it."""

from __future__ import annotations

import numpy as np
import pytest

from drivevla.core.types import Control, InfractionType
from drivevla.planner.route_follower import RouteFollower, RouteFollowerConfig
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv

QUIET = {
    "cameras": [],
    "traffic_density": 0.0,
    "pedestrians": False,
    "criteria": {"enable_min_speed": False},
}


def _kinds(result) -> list[InfractionType]:
    return [i.kind for i in result.infractions]


def _drive(env, controller, max_steps=3000):
    obs, info = env.last
    for _ in range(max_steps):
        obs, _, term, trunc, info = env.step(controller(info))
        if term or trunc:
            break
    return env.route_result()


def _env(**config):
    env = EmbeddedDrivingEnv({**QUIET, **config})
    return env


def test_hitting_a_vehicle_costs_factor_0_6():
    env = _env(scenario="highway", intent="overtake", max_steps=250)
    env.last = env.reset(seed=4)
    # drive straight on at full throttle into the slow car ahead, then brake to a stop
    state = {"hit": False}

    def controller(info):
        state["hit"] = state["hit"] or bool(env.world.contacts)
        return Control(0.0, 0.0, 1.0) if state["hit"] else Control(1.0, 0.0, 0.0)

    result = _drive(env, controller)
    assert _kinds(result) == [InfractionType.COLLISION_VEHICLE]
    assert result.infraction_penalty == pytest.approx(0.6)
    # a crash stops the ego: it does not drive through the car it hit
    assert env.world.ego.position[0] < env.world.spawned_npcs[0].position[0]
    assert result.driving_score == pytest.approx(result.route_completion * 0.6)
    assert 0 < result.route_completion < 100


@pytest.mark.parametrize("hold_s", [3.0, None])
def test_a_car_hit_by_the_ego_stands_then_drives_on_unless_told_to_stay(hold_s):
    env = _env(scenario="highway", intent="overtake", max_steps=400, npc_crash_hold_s=hold_s)
    env.last = env.reset(seed=4)
    npc = env.world.spawned_npcs[0]
    state = {"hit_t": None}
    speeds = []  # (time since the hit, npc speed)

    def controller(info):
        if state["hit_t"] is None and env.world.contacts:
            state["hit_t"] = env.world.time_s
        if state["hit_t"] is not None:
            speeds.append((env.world.time_s - state["hit_t"], float(npc.speed)))
            return Control(0.0, 0.0, 1.0)  # the ego stays where it hit
        return Control(1.0, 0.0, 0.0)

    _drive(env, controller, max_steps=400)
    assert state["hit_t"] is not None
    # it brakes after the hit (highway-env's crashed car: deceleration = its speed per s)
    at_hit = speeds[0][1]
    braking = [v for t, v in speeds if t <= 2.5]
    assert all(b <= a + 1e-9 for a, b in zip(braking, braking[1:], strict=False))
    assert braking[-1] < 0.2 * at_hit
    late = [v for t, v in speeds if t >= 8.0]
    assert late
    if hold_s is None:
        assert npc.crashed and max(late) < 0.1
    else:
        assert not npc.crashed and min(late) > 2.0


def test_npc_crash_hold_must_be_non_negative():
    with pytest.raises(ValueError, match="npc_crash_hold_s"):
        _env(npc_crash_hold_s=-1.0)


def test_hitting_a_pedestrian_costs_factor_0_5():
    env = _env(scenario="urban", intent="go_straight", pedestrians=True, max_steps=200)
    env.last = env.reset(seed=2)
    ped = env.world.pedestrians[0]
    ego = env.world.ego
    # a pedestrian standing in the ego's lane 25 m ahead
    ped.position = ego.position + 25.0 * np.array([np.cos(ego.heading), np.sin(ego.heading)])
    ped.start_time_s = 1e9
    for other in env.world.pedestrians[1:]:
        other.start_time_s = 1e9
    follower = RouteFollower(env.privileged_state(), RouteFollowerConfig(stop_for_red=False))
    follower._gap_ahead = lambda info: None  # a driver that does not look
    state = {"hit": False}

    def controller(info):
        state["hit"] = state["hit"] or bool(env.world.contacts)
        return Control(0.0, 0.0, 1.0) if state["hit"] else follower.control(info)

    result = _drive(env, controller)
    assert _kinds(result) == [InfractionType.COLLISION_PEDESTRIAN]
    assert result.driving_score == pytest.approx(result.route_completion * 0.5)


def test_running_a_red_light_costs_factor_0_7_and_green_costs_nothing():
    def run(offset):
        env = _env(
            scenario="urban",
            intent="go_straight",
            light_offset_s=offset,
            light_cycle_s=[40.0, 3.0, 45.0],
        )
        env.last = env.reset(seed=0)
        follower = RouteFollower(env.privileged_state(), RouteFollowerConfig(stop_for_red=False))
        return _drive(env, follower.control)

    red = run(43.0)  # the ego's signal group is red from t=0 for 45 s
    assert _kinds(red) == [InfractionType.RED_LIGHT]
    assert red.route_completion == pytest.approx(100.0)
    assert red.driving_score == pytest.approx(70.0)
    green = run(0.0)  # green for the first 40 s
    assert _kinds(green) == []
    assert green.driving_score == pytest.approx(100.0)


def test_leaving_the_road_is_penalised_by_the_share_outside_lanes():
    env = _env(scenario="highway", intent="cruise", guard_rails=False)
    env.last = env.reset(seed=1)
    follower = RouteFollower(env.privileged_state())
    route = env.scenario.route

    def controller(info):
        # between 100 m and 180 m of progress, aim 9 m to the right of the route, then return
        s = info["route_progress_m"]
        c = follower.control(info)
        if 100.0 <= s <= 180.0:
            target = route.point_at(s + 12.0)
            heading = np.arctan2(*(route.point_at(s + 13.0) - target)[::-1])
            right = np.array([np.sin(heading), -np.cos(heading)])
            aim = target + 9.0 * right
            ego = info["ego"]
            rel = aim - np.array([ego["x"], ego["y"]])
            err = np.arctan2(rel[1], rel[0]) - ego["yaw"]
            c = Control(c.throttle, float(np.clip(-1.5 * err, -1, 1)), c.brake)
        return c

    result = _drive(env, controller)
    assert _kinds(result) == [InfractionType.OUTSIDE_ROUTE_LANES]
    assert result.route_completion == pytest.approx(100.0)
    assert 5.0 < result.outside_lanes_pct < 30.0
    assert result.infraction_penalty == pytest.approx(1 - result.outside_lanes_pct / 100)
    assert result.driving_score == pytest.approx(100.0 - result.outside_lanes_pct, abs=1e-6)


def test_hitting_a_guard_rail_is_a_static_collision():
    env = _env(scenario="highway", intent="cruise", guard_rails=True, max_steps=200)
    env.last = env.reset(seed=0)
    state = {"hit": False}

    def controller(info):
        state["hit"] = state["hit"] or any(k == "static" for _, k in env.world.contacts)
        return Control(0.0, 0.0, 1.0) if state["hit"] else Control(0.6, 0.25, 0.0)

    result = _drive(env, controller)
    kinds = _kinds(result)
    assert kinds.count(InfractionType.COLLISION_STATIC) == 1
    assert set(kinds) <= {InfractionType.COLLISION_STATIC, InfractionType.OUTSIDE_ROUTE_LANES}


def test_standing_still_past_the_blocked_limit_ends_the_route():
    env = _env(scenario="highway", intent="cruise")
    env.last = env.reset(seed=0)
    result = _drive(env, lambda info: Control(0.0, 0.0, 1.0), max_steps=5000)
    assert _kinds(result) == [InfractionType.AGENT_BLOCKED]
    assert result.status == "Failed - Agent got blocked"
    # the ego stops within a few seconds, then 180 s of standing still end the route
    assert 180.0 <= result.duration_s <= 190.0
    assert result.infraction_penalty == pytest.approx(1.0)
    assert result.driving_score == pytest.approx(result.route_completion)
    assert result.route_completion < 20.0
