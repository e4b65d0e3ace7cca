"""CARLA sensor callbacks to the leaderboard's input_data (stand-ins with the attributes of
carla.Image / GnssMeasurement / IMUMeasurement, which need a server to exist; the real
client's Vector3D and Transform)."""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from drivevla.core.errors import InvalidObservationError
from drivevla.core.types import CameraSpec
from drivevla.sim_bridge.carla.convert import world_xy_to_gnss
from drivevla.sim_bridge.carla.sensor_data import FrameBuffer, camera_data, speedometer_data
from drivevla.sim_bridge.carla.sensor_inputs import read_input_data

carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")


def _image(frame, rgb):
    h, w, _ = rgb.shape
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((h, w, 1), 255, np.uint8)], axis=2)
    return SimpleNamespace(frame=frame, width=w, height=h, raw_data=bytearray(bgra.tobytes()))


def test_callbacks_make_the_input_data_the_agent_reads():
    spec = CameraSpec(name="front", width=32, height=16)
    rgb = np.random.default_rng(0).integers(0, 255, (16, 32, 3), dtype=np.uint8)
    lat, lon, alt = world_xy_to_gnss(30.0, 40.0, 2.0)
    buffer = FrameBuffer(["front", "gps", "imu"])
    buffer.callback("front", "sensor.camera.rgb")(_image(7, rgb))
    buffer.callback("gps", "sensor.other.gnss")(
        SimpleNamespace(frame=7, latitude=lat, longitude=lon, altitude=alt))
    assert not buffer.complete(7)
    buffer.callback("imu", "sensor.other.imu")(SimpleNamespace(
        frame=7, accelerometer=carla.Vector3D(1.0, 0.5, 9.8),
        gyroscope=carla.Vector3D(0.0, 0.0, -0.2), compass=0.0))
    assert buffer.complete(7)
    # the ego drives north (CARLA yaw -90) at 5 m/s: the speedometer reads +5
    transform = carla.Transform(carla.Location(), carla.Rotation(yaw=-90.0))
    speed = speedometer_data(carla.Vector3D(0.0, -5.0, 0.0), transform)
    assert speed["speed"] == pytest.approx(5.0)
    data = {**buffer.pop_frame(7), "speed": (7, speed)}
    assert data["front"][0] == 7 and data["front"][1].shape == (16, 32, 4)
    frame = read_input_data(data, [spec])
    np.testing.assert_array_equal(frame.images["front"], rgb)
    assert (frame.ego.x, frame.ego.y) == pytest.approx((30.0, 40.0))
    assert frame.ego.yaw == pytest.approx(math.pi / 2) and frame.ego.speed_mps == 5.0
    assert frame.ego.yaw_rate_rps == pytest.approx(0.2)
    assert not buffer.complete(7)  # popped


def test_a_late_callback_is_waited_for_and_a_missing_one_named():
    buffer = FrameBuffer(["gps", "imu"])
    gps = buffer.callback("gps", "sensor.other.gnss")
    gps(SimpleNamespace(frame=3, latitude=0.0, longitude=0.0, altitude=0.0))
    late = threading.Timer(0.05, buffer.put, ("imu", 3, np.zeros(7)))
    late.start()
    assert set(buffer.pop_frame(3, timeout_s=5.0)) == {"gps", "imu"}
    gps(SimpleNamespace(frame=4, latitude=0.0, longitude=0.0, altitude=0.0))
    with pytest.raises(InvalidObservationError, match=r"frame 4: no data .*\['imu'\]"):
        buffer.pop_frame(4, timeout_s=0.01)
    with pytest.raises(InvalidObservationError, match="2x2 px has 8 bytes; 16 expected"):
        camera_data(SimpleNamespace(width=2, height=2, raw_data=bytes(8)))
    with pytest.raises(ValueError, match="sensor 'lidar' is not expected"):
        buffer.callback("lidar", "sensor.other.gnss")
