"""The Leaderboard 2.0 agent file without a server: an embedded-simulator drive replayed as
CARLA would deliver it gets the embedded Agent's controls back, as ``carla.VehicleControl``s;
its sensors respect the limits; a bad config or bad ``input_data`` is a named error.

(This folder is not called ``carla``: tests/ is on sys.path, and a ``tests/carla`` folder
would pass for the client package where it is not installed.)"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from drivevla.carla.agent_config import AgentConfigError
from drivevla.carla.leaderboard_agent import DriveVLALeaderboardAgent, get_entry_point
from drivevla.core.errors import InvalidObservationError
from drivevla.sim_bridge.carla.convert import (
    MAX_SENSOR_RADIUS_M,
    SensorConfigError,
    check_sensor_limits,
    world_xy_to_gnss,
)
from support.carla_replay import embedded_drive, input_data_of

carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")

URBAN_LEFT = {"scenario": "urban", "intent": "turn_left", "notice_instructions": False}
TICKS = 60  # the command turns to "left" at tick 50 of this drive


@pytest.fixture(scope="module")
def drive():
    return embedded_drive(URBAN_LEFT, TICKS)


def _agent(tmp_path, plan, **config):
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"policy": "drivevla-tiny", **config}))
    agent = DriveVLALeaderboardAgent("localhost", 2000)
    agent.set_global_plan(plan, [])  # the leaderboard calls it before setup
    agent.setup(str(path))
    return agent


def test_the_entry_point_names_the_class():
    import drivevla.carla.leaderboard_agent as module

    assert getattr(module, get_entry_point()) is DriveVLALeaderboardAgent


def test_a_replayed_drive_gets_the_embedded_agents_controls(drive, tmp_path):
    # the replay GNSS is exact: no filter (the filter has its own test)
    agent = _agent(tmp_path, drive.plan_gps, instruction=drive.observations[0].instruction,
                   gnss_filter=False)
    got = []
    for k, obs in enumerate(drive.observations):
        data = input_data_of(obs, 2 * k)
        got.append(agent.run_step(data, obs.timestamp_s))  # a policy tick (10 Hz) ...
        held = agent.run_step(data, obs.timestamp_s + 0.05)  # ... and a held one (20 Hz)
        assert (held.throttle, held.steer, held.brake) == \
            (got[-1].throttle, got[-1].steer, got[-1].brake)
    agent.destroy()
    assert all(isinstance(c, carla.VehicleControl) for c in got)
    # VehicleControl stores float32: compare at that precision, element by element
    expected = np.array([c.as_array() for c in drive.controls], dtype=np.float32)
    actual = np.array([[c.throttle, c.steer, c.brake] for c in got], dtype=np.float32)
    np.testing.assert_array_equal(actual, expected)
    start, *lines = [json.loads(x) for x in (tmp_path / "agent_log/explanations.jsonl").open()]
    assert start["route_start"]["route_length_m"] > 0
    assert len(lines) == 2 * TICKS and [x["policy_tick"] for x in lines[:2]] == [True, False]
    # the explanation stream (every 10th policy tick by default) never changed a control
    assert isinstance(lines[0]["explanation"], str) and lines[0]["explanation"]
    commands = [x["command"] for x in lines if x["policy_tick"]]
    assert commands == [o.route.command.value for o in drive.observations]
    assert commands[-1] == "left" and commands[0] == "lane_follow"


def _straight_plan(options_by_metre):
    """A GPS plan along world +x (east), a point every 10 m, with the RoadOption in force
    from each listed distance on."""
    plan = []
    for x in range(0, 260, 10):
        option = [o for start, o in options_by_metre if start <= x][-1]
        lat, lon, z = world_xy_to_gnss(float(x), 0.0)
        plan.append(({"lat": lat, "lon": lon, "z": z}, option))
    return plan


def test_instructions_rendered_from_a_road_option_plan(tmp_path):
    # lane follow, a left turn 100-130 m, lane follow, a change to the right lane from 160 m
    plan = _straight_plan([(0, 4), (100, 1), (130, 4), (160, 6), (180, 4)])
    agent = _agent(tmp_path, plan, output_dir=None)
    said = {}
    for x in range(0, 200, 5):  # the ego drives along the route
        agent.tracker.update(np.array([float(x), 0.0]))
        said[x] = agent.instruction()
    assert said[0] == "Follow the road and keep your lane."  # the turn is 100 m away
    assert said[60] == "In about 40 metres, turn left."
    assert said[90] == "Turn left at the next junction."  # 10 m: no distance any more
    assert said[120] == "Turn left at the next junction."  # turning
    assert said[140] == "In about 20 metres, move into the right lane."
    assert said[190] == "Follow the road and keep your lane."
    assert agent.tracker.next_manoeuvre(30.0) is None
    agent.tracker.progress_m = 75.0
    assert agent.tracker.route_info(np.array([75.0, 0.0]), 0.0).command.value == "left"
    np.testing.assert_allclose(agent.tracker.route_info(np.array([75.0, 0.0]), 0.0)
                               .target_points, [[10.0 * (i + 1), 0.0] for i in range(5)],
                               atol=1e-6)


def test_target_point_mode_and_the_explanation_log(drive, tmp_path):
    agent = _agent(tmp_path, drive.plan_gps, mode="target_point", explain_every=1)
    for k, obs in enumerate(drive.observations[:3]):
        agent.run_step(input_data_of(obs, k), obs.timestamp_s)
        agent._tick = 0  # every call a policy tick
    agent.destroy()
    _, *lines = [json.loads(x) for x in (tmp_path / "agent_log/explanations.jsonl").open()]
    assert len(lines) == 3
    assert {x["instruction"] for x in lines} == {"Follow the road and keep your lane."}
    assert all(isinstance(x["explanation"], str) and x["explanation"] for x in lines)


def test_sensors_respect_the_leaderboard_limits(drive, tmp_path):
    agent = _agent(tmp_path, drive.plan_gps)
    sensors = agent.sensors()
    check_sensor_limits(sensors)
    assert [s["id"] for s in sensors] == ["front", "gps", "imu", "speed"]
    assert sensors[0]["width"] == 320 and sensors[0]["type"] == "sensor.camera.rgb"
    cameras = [{"name": f"c{i}"} for i in range(9)]
    with pytest.raises(SensorConfigError, match="at most 8"):
        _agent(tmp_path, drive.plan_gps, cameras=cameras)
    with pytest.raises(SensorConfigError, match=f"at most {MAX_SENSOR_RADIUS_M}"):
        _agent(tmp_path, drive.plan_gps, cameras=[{"name": "front", "x": 3.5}])


@pytest.mark.parametrize("config, message", [
    ({"policy": "no-such-policy"}, "policy: unknown policy 'no-such-policy'"),
    ({"policy": "expert"}, "'expert' cannot drive in CARLA"),
    ({"policy": "drivevla-tiny", "speed": 3}, r"unknown key\(s\) \['speed'\]"),
    ({"policy": "drivevla-tiny", "mode": "telepathy"}, "mode='telepathy'"),
    ({"policy": "drivevla-tiny", "control_rate_hz": 15}, "whole number"),
    ({"policy": "drivevla-tiny", "controller": {"kp_typo": 1}}, "controller: .*kp_typo"),
    ({"policy": "drivevla-tiny", "gnss_filter": "yes"}, "gnss_filter='yes'"),
])
def test_a_bad_agent_config_is_a_named_error(tmp_path, config, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    agent = DriveVLALeaderboardAgent()
    agent.set_global_plan([({"lat": 0.0, "lon": 0.0, "z": 0.0}, 4),
                           ({"lat": 0.0, "lon": 1e-3, "z": 0.0}, 4)], [])
    with pytest.raises(AgentConfigError, match=f"{path}: .*{message}"):
        agent.setup(str(path))


def test_malformed_input_data_is_named(drive, tmp_path):
    agent = _agent(tmp_path, drive.plan_gps)
    good = input_data_of(drive.observations[0], 0)
    missing = {k: v for k, v in good.items() if k != "imu"}
    with pytest.raises(InvalidObservationError, match="lacks sensor 'imu'"):
        agent.run_step(missing, 0.0)
    small = {**good, "front": (0, np.zeros((90, 160, 4), np.uint8))}
    with pytest.raises(InvalidObservationError, match="'front': image is 160x90 px"):
        agent.run_step(small, 0.0)
    rgb = {**good, "front": (0, np.zeros((180, 320, 3), np.uint8))}
    with pytest.raises(InvalidObservationError, match=r"'front'.*\(180, 320, 3\)"):
        agent.run_step(rgb, 0.0)
    nan_gps = {**good, "gps": (0, world_xy_to_gnss(math.nan, 0.0))}
    with pytest.raises(InvalidObservationError, match="'gps'.*not finite"):
        agent.run_step(nan_gps, 0.0)
    agent.destroy()
