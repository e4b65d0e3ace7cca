"""The CARLA backend without a server: what the criteria read from CARLA's values (the real
``carla`` client types), its config, and the errors for a dead server and a missing route
planner. Driving against a server is in tests/carla_agent/test_carla_live.py."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")

from tests.support.carla_routes import free_port  # noqa: E402
from tests.support.criteria_parts import make, straight_route, tick  # noqa: E402

from drivevla.core.env import PrivilegedState  # noqa: E402
from drivevla.core.types import CameraSpec, InfractionType  # noqa: E402
from drivevla.planner.expert import ExpertPolicy  # noqa: E402
from drivevla.sim_bridge.carla.criteria_inputs import (  # noqa: E402
    CollisionLog,
    actor_box,
    actor_kind,
    lane_flags,
    light_crossings,
    mean_speed,
    stop_line,
)
from drivevla.sim_bridge.carla.env import (  # noqa: E402
    CarlaConnection,
    CarlaDrivingEnv,
    CarlaEnvConfig,
    CarlaUnavailableError,
    global_route_planner,
    weather_parameters,
)
from drivevla.sim_bridge.carla.observer import ObserverSettings  # noqa: E402
from drivevla.sim_bridge.carla.routes_xml import LeaderboardRoute  # noqa: E402


def _transform(x: float, y: float, yaw_deg: float) -> carla.Transform:
    return carla.Transform(carla.Location(x=x, y=y, z=0.0), carla.Rotation(yaw=yaw_deg))


def _config(**changes) -> CarlaEnvConfig:
    route = LeaderboardRoute("7", "Town03", np.array([[0.0, 0.0, 0.5], [100.0, 0.0, 0.5]]))
    return CarlaEnvConfig(route, ObserverSettings((CameraSpec(),)), **changes)


def test_actor_kinds_follow_the_type_id():
    assert actor_kind("vehicle.tesla.model3") == "vehicle"
    assert actor_kind("walker.pedestrian.0001") == "pedestrian"
    assert actor_kind("static.prop.trafficcone01") == "static"
    assert actor_kind("traffic.traffic_light") == "static"


def test_an_actor_becomes_a_world_frame_box():
    # CARLA (x=1, y=2) facing +y (south, yaw 90 deg) is world (1, -2) facing -pi/2
    box = actor_box(5, "vehicle.audi.a2", _transform(1.0, 2.0, 90.0),
                    carla.Vector3D(2.4, 1.0, 0.8), carla.Vector3D(3.0, 4.0, 0.0))
    assert (box.x, box.y) == (1.0, -2.0)
    assert box.yaw == pytest.approx(-math.pi / 2)
    assert (box.length, box.width, box.height) == pytest.approx((4.8, 2.0, 1.6))
    assert box.speed_mps == pytest.approx(5.0)
    assert box.kind.value == "vehicle"


def test_the_collision_log_counts_each_actor_once_per_tick_and_empties():
    log = CollisionLog()
    car = SimpleNamespace(id=11, type_id="vehicle.audi.a2")
    person = SimpleNamespace(id=12, type_id="walker.pedestrian.0002")
    for other in (car, car, person):
        log.on_event(SimpleNamespace(other_actor=other))
    assert log.drain() == [(11, "vehicle"), (12, "pedestrian")]
    assert log.drain() == []


def test_a_stop_line_lies_across_its_lane():
    # a lane heading east (CARLA yaw 0) at CARLA (10, -5): world (10, 5)
    line = stop_line(_transform(10.0, -5.0, 0.0), 3.5)
    np.testing.assert_allclose(sorted(line.tolist()), [[10.0, 3.25], [10.0, 6.75]], atol=1e-9)


def test_running_a_red_light_from_carla_stop_waypoints_is_an_infraction_one_way_only():
    def red_crossing_count(yaw: float, xs) -> int:
        crit = make(straight_route(100.0))
        lights = light_crossings(3, carla.TrafficLightState.Red, [(_transform(50.0, 0.0, 0.0),
                                                                   3.5)])
        assert lights[0].state == "red" and lights[0].approach_yaw == pytest.approx(0.0)
        raised = []
        for i, x in enumerate(xs):
            raised += crit.update(tick(0.1 * (i + 1), float(x), 0.0, yaw=yaw, lights=lights))
        return sum(r.kind == InfractionType.RED_LIGHT for r in raised)

    assert red_crossing_count(0.0, np.arange(30.0, 70.0, 1.0)) == 1  # along the lane
    assert red_crossing_count(math.pi, np.arange(70.0, 30.0, -1.0)) == 0  # the other way
    green = light_crossings(3, carla.TrafficLightState.Green, [(_transform(0, 0, 0), 3.0)])
    assert green[0].state == "green"
    assert light_crossings(3, carla.TrafficLightState.Off, [(_transform(0, 0, 0), 3.0)]
                           )[0].state == "off"


def test_lane_flags():
    assert lane_flags(0.0, None, 120.0) == (True, False)  # no driving lane under the ego
    assert lane_flags(0.0, math.radians(90.0), 120.0) == (False, False)
    assert lane_flags(math.radians(170.0), math.radians(-20.0), 120.0) == (False, True)


def test_the_traffic_speed_is_the_mean_horizontal_speed():
    assert mean_speed([]) is None
    assert mean_speed([carla.Vector3D(3.0, 4.0, 9.0), carla.Vector3D(0.0, 1.0, 0.0)]) == 3.0


def test_a_route_files_weather_becomes_carla_weather_parameters():
    params = weather_parameters({"route_percentage": 0.0, "cloudiness": 5.0, "wetness": 20.0})
    assert (params.cloudiness, params.wetness) == (5.0, 20.0)
    with pytest.raises(ValueError, match="unknown weather parameter 'sunniness'"):
        weather_parameters({"sunniness": 1.0})


def test_the_config_checks_rates_and_leaves_the_connection_out_of_its_dict():
    cfg = _config(connection=CarlaConnection("10.0.0.5", 3000))
    assert (cfg.ticks_per_control, cfg.dt_s) == (2, 0.1)
    record = cfg.to_dict()
    assert record["town"] == "Town03" and record["waypoints_carla"][1] == [100.0, 0.0, 0.5]
    assert "10.0.0.5" not in str(record) and "3000" not in str(record)
    assert cfg.replace(max_steps=5).max_steps == 5
    with pytest.raises(ValueError, match="whole number"):
        _config(sim_rate_hz=15.0)


def test_without_carlas_python_api_the_route_planner_is_a_named_error():
    try:
        import agents.navigation.global_route_planner  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CARLA's PythonAPI (agents.navigation) is importable here")
    with pytest.raises(CarlaUnavailableError, match=r"PythonAPI/carla to PYTHONPATH"):
        global_route_planner(None)


def test_a_dead_server_is_a_named_error_and_close_still_works():
    port = free_port()
    env = CarlaDrivingEnv(_config(connection=CarlaConnection("127.0.0.1", port, timeout_s=1.0)))
    with pytest.raises(CarlaUnavailableError, match=rf"127\.0\.0\.1:{port}: could not connect"):
        env.reset()
    env.close()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(None)


def test_privileged_planners_refuse_a_backend_without_a_live_handle():
    ego = actor_box(1, "vehicle.lincoln.mkz_2020", _transform(0, 0, 0),
                    carla.Vector3D(2.4, 1.0, 0.8), carla.Vector3D(0, 0, 0))
    state = PrivilegedState(0.0, ego, (), (), "carla:Town03", "follow_route",
                            np.zeros((2, 2)), 10.0, 0.0, 13.9, 0.0, backend=None)
    with pytest.raises(ValueError, match="the expert plans on the simulator's lane graph"):
        ExpertPolicy().reset(state)
