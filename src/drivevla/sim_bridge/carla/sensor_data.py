"""From CARLA sensor callbacks to the leaderboard's ``input_data`` (``{id: (frame, data)}``),
as the Leaderboard 2.0 sensor interface builds it, for a CARLA backend behind our ``Env``
(issue 26, item 3): the same data the agent file reads under the evaluator, so one reader
(:mod:`drivevla.sim_bridge.carla.sensor_inputs`) serves both.

- camera ``carla.Image``: ``raw_data`` (BGRA bytes) as ``uint8 (height, width, 4)``;
- ``carla.GnssMeasurement``: ``[latitude, longitude, altitude]``;
- ``carla.IMUMeasurement``: ``[acc.x, acc.y, acc.z, gyro.x, gyro.y, gyro.z, compass]``;
- the speedometer (a pseudo-sensor): ``{'speed': velocity . forward}`` (m/s, signed), from
  the ego's velocity and transform.

Callbacks run on CARLA's client threads; :class:`FrameBuffer` collects them per frame and
hands a frame over once every sensor has reported it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from drivevla.core.errors import InvalidObservationError


def camera_data(image: Any) -> np.ndarray:
    """A ``carla.Image`` (or anything with ``raw_data``, ``height``, ``width``) as
    ``uint8 (H, W, 4)`` BGRA (a copy: CARLA reuses the buffer)."""
    raw = np.frombuffer(bytes(image.raw_data), dtype=np.uint8)
    expected = int(image.height) * int(image.width) * 4
    if raw.size != expected:
        raise InvalidObservationError(
            f"camera image of {image.width}x{image.height} px has {raw.size} bytes; "
            f"{expected} expected (BGRA)")
    return raw.reshape(int(image.height), int(image.width), 4).copy()


def gnss_data(measurement: Any) -> np.ndarray:
    """A ``carla.GnssMeasurement`` as ``[lat, lon, alt]``."""
    return np.array([measurement.latitude, measurement.longitude, measurement.altitude],
                    dtype=np.float64)


def imu_data(measurement: Any) -> np.ndarray:
    """A ``carla.IMUMeasurement`` as ``[ax, ay, az, gx, gy, gz, compass]``."""
    acc, gyro = measurement.accelerometer, measurement.gyroscope
    return np.array([acc.x, acc.y, acc.z, gyro.x, gyro.y, gyro.z, measurement.compass],
                    dtype=np.float64)


def speedometer_data(velocity: Any, transform: Any) -> dict[str, float]:
    """The speedometer pseudo-sensor: the ego's ``carla.Vector3D`` velocity along its
    ``carla.Transform``'s forward vector (m/s, negative when reversing)."""
    forward = transform.get_forward_vector()
    return {"speed": float(velocity.x * forward.x + velocity.y * forward.y
                           + velocity.z * forward.z)}


CONVERTERS = {
    "sensor.camera.rgb": camera_data,
    "sensor.other.gnss": gnss_data,
    "sensor.other.imu": imu_data,
}


class FrameBuffer:
    """Sensor data per simulation frame, complete once every expected sensor reported it.

    ``callback(sensor_id, sensor_type)`` is what ``sensor.listen`` gets; the data's
    ``frame`` keys it. :meth:`pop_frame` returns ``{id: (frame, data)}`` for one frame and
    drops it and every older frame."""

    def __init__(self, sensor_ids: Iterable[str]) -> None:
        self.expected = frozenset(sensor_ids)
        self._frames: dict[int, dict[str, tuple[int, Any]]] = {}
        self._lock = threading.Condition()

    def callback(self, sensor_id: str, sensor_type: str):
        if sensor_id not in self.expected:
            raise ValueError(f"sensor {sensor_id!r} is not expected: {sorted(self.expected)}")
        convert = CONVERTERS[sensor_type]

        def on_data(data: Any) -> None:
            self.put(sensor_id, int(data.frame), convert(data))

        return on_data

    def put(self, sensor_id: str, frame: int, data: Any) -> None:
        with self._lock:
            self._frames.setdefault(frame, {})[sensor_id] = (frame, data)
            self._lock.notify_all()

    def complete(self, frame: int) -> bool:
        with self._lock:
            return self.expected <= set(self._frames.get(frame, {}))

    def pop_frame(self, frame: int, timeout_s: float = 10.0) -> dict[str, tuple[int, Any]]:
        """Every expected sensor's data of ``frame`` (waits up to ``timeout_s`` for late
        callbacks; a sensor still missing is an error naming it)."""
        with self._lock:
            self._lock.wait_for(lambda: self.expected <= set(self._frames.get(frame, {})),
                                timeout=timeout_s)
            got = self._frames.get(frame, {})
            missing = sorted(self.expected - set(got))
            if missing:
                raise InvalidObservationError(
                    f"frame {frame}: no data from sensor(s) {missing} after {timeout_s:g} s")
            for old in [f for f in self._frames if f <= frame]:
                del self._frames[old]
            return dict(got)
