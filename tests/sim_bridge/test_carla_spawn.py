"""What a CARLA backend would spawn for our cameras and the navigation sensors (value types
of the real client; no server)."""

from __future__ import annotations

import pytest

from drivevla.core.types import CameraSpec
from drivevla.sim_bridge.carla.convert import (
    SensorConfigError,
    camera_to_sensor_dict,
    navigation_sensors,
)
from drivevla.sim_bridge.carla.spawn import sensor_spawn_specs, synchronous_settings

carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")


def test_cameras_and_navigation_sensors_become_spawn_specs():
    left = CameraSpec(name="left", width=640, height=360, fov_deg=100.0, x=1.0, y=0.5, z=1.6,
                      yaw_deg=55.0, pitch_deg=5.0)
    specs = sensor_spawn_specs([camera_to_sensor_dict(left)] + navigation_sensors())
    assert [s.sensor_id for s in specs] == ["left", "gps", "imu"]  # the speedometer is pseudo
    cam, gps, imu = specs
    assert cam.blueprint == "sensor.camera.rgb"
    assert cam.attributes["image_size_x"] == "640" and cam.attributes["fov"] == "100.0"
    assert isinstance(cam.transform, carla.Transform)
    loc, rot = cam.transform.location, cam.transform.rotation
    assert (loc.x, loc.y, loc.z) == pytest.approx((1.0, -0.5, 1.6))  # left: CARLA y < 0
    assert (rot.yaw, rot.pitch) == pytest.approx((-55.0, -5.0))  # left-looking, nose down
    assert gps.attributes["noise_lat_stddev"] == "5e-06"
    assert gps.attributes["sensor_tick"] == "0.05"
    assert imu.attributes["noise_gyro_stddev_z"] == "0.001"
    exact = sensor_spawn_specs(navigation_sensors(), noise=False)
    assert exact[0].attributes["noise_lat_stddev"] == "0.0"


def test_limits_are_checked_and_the_world_is_synchronous():
    with pytest.raises(SensorConfigError, match="at most 8"):
        sensor_spawn_specs([camera_to_sensor_dict(CameraSpec(name=f"c{i}")) for i in range(9)])
    settings = synchronous_settings(20.0)
    assert isinstance(settings, carla.WorldSettings)
    assert settings.synchronous_mode and settings.fixed_delta_seconds == pytest.approx(0.05)
