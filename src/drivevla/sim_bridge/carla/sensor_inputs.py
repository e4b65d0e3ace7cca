"""One tick of the leaderboard's ``input_data`` (``{sensor_id: (frame, data)}``) read into
drivevla terms: RGB images by camera name and the ego state (conversions in
:mod:`drivevla.sim_bridge.carla.convert`). A missing sensor, a wrong shape or a NaN reading
is an :class:`~drivevla.core.errors.InvalidObservationError` naming the sensor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivevla.core.errors import InvalidObservationError
from drivevla.core.types import CameraSpec, EgoState
from drivevla.sim_bridge.carla.convert import (
    TOWN_REFERENCE,
    GeoReference,
    bgra_to_rgb,
    ego_state_from_sensors,
)

GNSS_ID, IMU_ID, SPEED_ID = "gps", "imu", "speed"


@dataclass(frozen=True)
class SensorFrame:
    """What one tick's ``input_data`` says: images (RGB, by camera name) and the ego."""

    images: dict[str, np.ndarray]
    ego: EgoState


def _data(input_data: Mapping[str, Any], sensor_id: str) -> Any:
    if not isinstance(input_data, Mapping):
        raise InvalidObservationError(
            f"input_data is {type(input_data).__name__}; the leaderboard passes a dict "
            "{sensor_id: (frame, data)}")
    if sensor_id not in input_data:
        raise InvalidObservationError(
            f"input_data lacks sensor {sensor_id!r}; got {sorted(map(str, input_data))}")
    entry = input_data[sensor_id]
    if not isinstance(entry, tuple | list) or len(entry) != 2:
        raise InvalidObservationError(
            f"input_data[{sensor_id!r}] is not a (frame, data) pair: {type(entry).__name__}")
    return entry[1]


def read_input_data(
    input_data: Mapping[str, Any],
    cameras: Sequence[CameraSpec],
    ref: GeoReference = TOWN_REFERENCE,
    steer: float = 0.0,
    fallback_yaw: float | None = None,
) -> SensorFrame:
    """Images and ego state of one tick. ``steer``: the last applied steer (CARLA reports no
    wheel angle); ``fallback_yaw``: the heading kept for a NaN compass."""
    images = {}
    for spec in cameras:
        rgb = bgra_to_rgb(_data(input_data, spec.name), spec.name)
        if rgb.shape[:2] != (spec.height, spec.width):
            raise InvalidObservationError(
                f"camera {spec.name!r}: image is {rgb.shape[1]}x{rgb.shape[0]} px; its sensor "
                f"was declared {spec.width}x{spec.height}")
        images[spec.name] = rgb
    ego = ego_state_from_sensors(
        _data(input_data, GNSS_ID), _data(input_data, IMU_ID), _data(input_data, SPEED_ID),
        ref, steer=steer, fallback_yaw=fallback_yaw)
    return SensorFrame(images, ego)
