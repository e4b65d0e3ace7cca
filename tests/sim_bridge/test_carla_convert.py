"""The CARLA boundary conversions against hand-computed values, with the real ``carla``
client's value types (no server needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.errors import InvalidObservationError
from drivevla.core.frames import world_to_ego
from drivevla.core.types import CameraSpec, Control, HighLevelCommand
from drivevla.sim_bridge.carla import convert as cv

carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")

DEG = math.pi * 6378137.0 / 180.0


def test_bgra_channels_land_in_rgb_order():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 255  # B G R A
    rgb = cv.bgra_to_rgb(bgra)
    assert rgb.shape == (2, 3, 3) and rgb.flags.c_contiguous
    assert rgb[0, 0].tolist() == [30, 20, 10]
    np.testing.assert_array_equal(cv.bgra_to_rgb(cv.rgb_to_bgra(rgb)), rgb)
    with pytest.raises(InvalidObservationError, match="'rgb_front'.*\\(2, 3, 3\\)"):
        cv.bgra_to_rgb(rgb, "rgb_front")


def test_a_gnss_point_100_m_north_is_100_m_ahead_when_the_compass_points_north():
    ref = cv.GeoReference(lat_ref=0.0, lon_ref=0.0)
    assert cv.METRES_PER_DEGREE == pytest.approx(111319.49, abs=0.01)
    ego_xy = cv.gnss_to_world_xy([0.0, 0.0, 0.0], ref)
    point = cv.gnss_to_world_xy([100.0 / DEG, 0.0, 3.0], ref)
    np.testing.assert_allclose(point, [0.0, 100.0], atol=1e-9)  # x east, y north
    yaw = cv.compass_to_yaw(0.0)
    assert yaw == pytest.approx(math.pi / 2)
    np.testing.assert_allclose(world_to_ego(point, ego_xy, yaw), [100.0, 0.0], atol=1e-9)
    # facing east (compass pi/2), the same point is 100 m to the left
    east = cv.compass_to_yaw(math.pi / 2)
    np.testing.assert_allclose(world_to_ego(point, ego_xy, east), [0.0, 100.0], atol=1e-9)


def test_gnss_uses_the_reference_and_round_trips():
    ref = cv.GeoReference(lat_ref=49.0, lon_ref=8.0)
    xy = cv.gnss_to_world_xy([49.0 + 1e-3, 8.0 - 2e-3, 0.0], ref)
    np.testing.assert_allclose(xy, [-2e-3 * DEG, 1e-3 * DEG], rtol=1e-6)  # -222.6 m, 111.3 m
    back = cv.world_xy_to_gnss(*xy, 5.0, ref=ref)
    np.testing.assert_allclose(back, [49.001, 7.998, 5.0], rtol=0, atol=1e-12)


def test_gnss_matches_carlas_left_handed_location():
    # a location 50 m along CARLA +x and 20 m along CARLA +y (right of +x: south)
    loc = carla.Location(x=50.0, y=20.0, z=0.0)
    x, y, _ = cv.carla_transform_to_world(carla.Transform(loc, carla.Rotation()))
    lat, lon, _ = cv.world_xy_to_gnss(x, y)
    assert lon * DEG == pytest.approx(50.0) and lat * DEG == pytest.approx(-20.0)


def test_compass_is_clockwise_from_north():
    for compass, yaw in ((0.0, math.pi / 2), (math.pi / 2, 0.0), (math.pi, -math.pi / 2),
                         (3 * math.pi / 2, -math.pi)):
        assert cv.compass_to_yaw(compass) == pytest.approx(yaw)
        assert cv.yaw_to_compass(yaw) == pytest.approx(compass % (2 * math.pi))
    # CARLA yaw 90 deg (facing +y, i.e. south) reads compass pi
    _, _, world_yaw = cv.carla_transform_to_world(
        carla.Transform(carla.Location(), carla.Rotation(yaw=90.0)))
    assert cv.yaw_to_compass(world_yaw) == pytest.approx(math.pi)


def test_imu_and_speedometer_make_the_ego_state():
    imu = [1.5, 0.4, 9.81, 0.0, 0.0, -0.2, 0.0]  # gyro z -0.2: turning left in CARLA
    gnss = [10.0 / DEG, 20.0 / DEG, 0.0]
    ego = cv.ego_state_from_sensors(gnss, imu, {"speed": 7.5}, steer=-0.1)
    assert (ego.x, ego.y) == pytest.approx((20.0, 10.0))
    assert ego.yaw == pytest.approx(math.pi / 2)
    assert ego.speed_mps == 7.5 and ego.accel_mps2 == 1.5
    assert ego.yaw_rate_rps == pytest.approx(0.2) and ego.steer == -0.1
    assert cv.imu_to_reading(imu).lateral_accel_mps2 == pytest.approx(-0.4)
    back = cv.reading_to_imu(1.5, 0.2, math.pi / 2, lateral_accel_mps2=-0.4)
    np.testing.assert_allclose(back, imu, atol=1e-12)


def test_malformed_sensor_data_is_named():
    imu = [0.0] * 7
    with pytest.raises(InvalidObservationError, match="'gps'.*NaN"):
        cv.ego_state_from_sensors([math.nan, 0.0, 0.0], imu, {"speed": 0.0})
    with pytest.raises(InvalidObservationError, match="'imu'.*6 values"):
        cv.imu_to_reading([0.0] * 6)
    with pytest.raises(InvalidObservationError, match="'speed'"):
        cv.speedometer_to_speed([3.0])
    nan_compass = [0.0] * 6 + [math.nan]
    with pytest.raises(InvalidObservationError, match="compass is NaN"):
        cv.ego_state_from_sensors([0.0, 0.0, 0.0], nan_compass, {"speed": 0.0})
    held = cv.ego_state_from_sensors([0.0, 0.0, 0.0], nan_compass, {"speed": 0.0},
                                     fallback_yaw=0.3)
    assert held.yaw == 0.3


def test_transforms_go_through_core_frames():
    t = cv.world_to_carla_transform(3.0, 4.0, math.radians(30.0), z=0.5)
    assert isinstance(t, carla.Transform)
    assert (t.location.x, t.location.y, t.location.z) == pytest.approx((3.0, -4.0, 0.5))
    assert t.rotation.yaw == pytest.approx(-30.0)
    assert cv.carla_transform_to_world(t) == pytest.approx((3.0, 4.0, math.radians(30.0)))


def test_controls_round_trip_through_vehicle_control():
    vc = cv.control_to_carla(Control(0.25, -0.5, 0.0))
    assert isinstance(vc, carla.VehicleControl)
    assert (vc.throttle, vc.steer, vc.brake) == (0.25, -0.5, 0.0)
    assert cv.carla_to_control(carla.VehicleControl(throttle=0.0, steer=0.5, brake=1.0)) == \
        Control(0.0, 0.5, 1.0)


def test_road_options_map_to_commands_and_back():
    expected = {1: HighLevelCommand.LEFT, 2: HighLevelCommand.RIGHT,
                3: HighLevelCommand.STRAIGHT, 4: HighLevelCommand.LANE_FOLLOW,
                5: HighLevelCommand.CHANGE_LANE_LEFT, 6: HighLevelCommand.CHANGE_LANE_RIGHT}
    for value, command in expected.items():
        assert cv.road_option_to_command(value) is command
        assert cv.command_to_road_option(command) == value
    assert cv.road_option_to_command("RoadOption.CHANGELANELEFT") is \
        HighLevelCommand.CHANGE_LANE_LEFT
    assert cv.road_option_to_command(-1) is HighLevelCommand.LANE_FOLLOW
    with pytest.raises(ValueError, match="unknown RoadOption value 7"):
        cv.road_option_to_command(7)


def test_a_camera_spec_round_trips_to_the_carla_sensor_dict():
    spec = CameraSpec(name="left", width=640, height=360, fov_deg=100.0, x=1.2, y=0.4, z=1.7,
                      yaw_deg=60.0, pitch_deg=5.0, roll_deg=1.0)
    sensor = cv.camera_to_sensor_dict(spec)
    assert sensor == {"type": "sensor.camera.rgb", "x": 1.2, "y": -0.4, "z": 1.7,
                      "roll": 1.0, "pitch": -5.0, "yaw": -60.0, "width": 640, "height": 360,
                      "fov": 100.0, "id": "left"}
    assert cv.sensor_dict_to_camera(sensor) == spec
    # in carla.Transform's left-handed frame the camera looks 60 deg to the left: its forward
    # vector points to -y (left) and +x
    mount = carla.Transform(carla.Location(x=sensor["x"], y=sensor["y"], z=sensor["z"]),
                            carla.Rotation(yaw=sensor["yaw"]))
    forward = mount.get_forward_vector()
    assert (forward.x, forward.y) == pytest.approx((0.5, -math.sqrt(3) / 2), abs=1e-6)


def test_the_leaderboard_sensor_limits_are_checked():
    cams = [cv.camera_to_sensor_dict(CameraSpec(name=f"c{i}")) for i in range(8)]
    cv.check_sensor_limits(cams + cv.navigation_sensors())
    with pytest.raises(cv.SensorConfigError, match="9 sensors of type sensor.camera.rgb"):
        cv.check_sensor_limits(cams + [cv.camera_to_sensor_dict(CameraSpec(name="c8"))])
    far = cv.camera_to_sensor_dict(CameraSpec(name="far", x=2.5, z=2.0))  # 3.20 m
    with pytest.raises(cv.SensorConfigError, match="'far' is 3.20 m"):
        cv.check_sensor_limits([far])
    with pytest.raises(cv.SensorConfigError, match="used twice"):
        cv.check_sensor_limits(cams[:1] * 2)
    with pytest.raises(cv.SensorConfigError, match="not allowed"):
        cv.check_sensor_limits([{"type": "sensor.other.collision", "id": "c"}])
