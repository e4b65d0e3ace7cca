"""Conversions at the CARLA boundary, each a small tested function.

What the Leaderboard 2.0 evaluator delivers to ``AutonomousAgent.run_step`` as
``input_data[sensor_id] = (frame, data)``:

=========================== ==================================================================
sensor                      ``data``
=========================== ==================================================================
``sensor.camera.rgb``       ``uint8 (H, W, 4)``, channels B, G, R, A
``sensor.other.gnss``       ``[lat, lon, alt]`` (degrees, degrees, metres)
``sensor.other.imu``        ``[ax, ay, az, gx, gy, gz, compass]``: m/s^2 and rad/s in the
                            vehicle's left-handed frame (x forward, y right, z up); compass in
                            rad, 0 = north, clockwise (east = pi/2)
``sensor.speedometer``      ``{'speed': m/s}``, signed along the vehicle's heading
=========================== ==================================================================

GNSS to metres: CARLA places ``(lat, lon)`` with a Mercator projection around the map's
reference ``(lat_ref, lon_ref)`` (``leaderboard/utils/route_manipulation.py``); near the
reference one degree is ``pi * 6378137 / 180 = 111319.49`` m on both axes (the constant
carla_garage uses). Longitude grows east (CARLA +x), latitude north (CARLA -y), so the
world frame of :mod:`drivevla.core.frames` (x east, y north) is simply
``x = (lon - lon_ref) * 111319.49``, ``y = (lat - lat_ref) * 111319.49``.

Compass to yaw: the compass is clockwise from north, world yaw counter-clockwise from east,
so ``yaw = pi/2 - compass``; a clockwise-positive CARLA gyro z is a negative world yaw rate.

Camera mounts: a :class:`CameraSpec` is in the ego frame (y left, yaw left-positive, pitch
nose-down positive); a CARLA sensor dict is in the vehicle's left-handed frame (y right, yaw
right-positive, pitch nose-up positive, degrees). Roll is right-side-down positive in both.

``RoadOption`` (CARLA's ``agents.navigation.local_planner``, an ``IntEnum``; not part of the
pip client): VOID -1, LEFT 1, RIGHT 2, STRAIGHT 3, LANEFOLLOW 4, CHANGELANELEFT 5,
CHANGELANERIGHT 6. Functions here accept the enum, its integer or its name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivevla.core.errors import DriveVLAError, InvalidObservationError
from drivevla.core.frames import carla_to_world_xy_yaw, world_to_carla_xy_yaw, wrap_angle
from drivevla.core.types import CameraSpec, Control, EgoState, HighLevelCommand

METRES_PER_DEGREE = math.pi * 6378137.0 / 180.0  # 111319.49 m: CARLA's equatorial scale

# Leaderboard 2.0, SENSORS track (leaderboard/autoagents/agent_wrapper.py)
MAX_RGB_CAMERAS = 8
MAX_SENSOR_RADIUS_M = 3.0
SENSOR_TYPE_LIMITS = {
    "sensor.camera.rgb": MAX_RGB_CAMERAS,
    "sensor.lidar.ray_cast": 2,
    "sensor.other.radar": 4,
    "sensor.other.gnss": 1,
    "sensor.other.imu": 1,
    "sensor.opendrive_map": 1,
    "sensor.speedometer": 1,
}
_POSITIONLESS = ("sensor.opendrive_map", "sensor.speedometer")

ROAD_OPTIONS: dict[int, str] = {
    -1: "VOID",
    1: "LEFT",
    2: "RIGHT",
    3: "STRAIGHT",
    4: "LANEFOLLOW",
    5: "CHANGELANELEFT",
    6: "CHANGELANERIGHT",
}
_COMMAND_OF_OPTION = {
    -1: HighLevelCommand.LANE_FOLLOW,  # VOID: no manoeuvre known; follow the lane
    1: HighLevelCommand.LEFT,
    2: HighLevelCommand.RIGHT,
    3: HighLevelCommand.STRAIGHT,
    4: HighLevelCommand.LANE_FOLLOW,
    5: HighLevelCommand.CHANGE_LANE_LEFT,
    6: HighLevelCommand.CHANGE_LANE_RIGHT,
}
_OPTION_OF_COMMAND = {c: o for o, c in _COMMAND_OF_OPTION.items() if o != -1}


class SensorConfigError(DriveVLAError, ValueError):
    """A sensor set the Leaderboard 2.0 evaluator would refuse (too many cameras, a sensor too
    far from the vehicle centre) or a sensor dict that is not a camera we can read back."""


# ------------------------------------------------------------------------------ images


def bgra_to_rgb(image: Any, sensor_id: str = "camera") -> np.ndarray:
    """A CARLA camera image ``uint8 (H, W, 4)`` BGRA as ``uint8 (H, W, 3)`` RGB (a copy)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 4 or arr.dtype != np.uint8:
        raise InvalidObservationError(
            f"camera {sensor_id!r}: data is {arr.shape} {arr.dtype}; CARLA delivers "
            "uint8 (H, W, 4) BGRA"
        )
    return np.ascontiguousarray(arr[:, :, 2::-1])


def rgb_to_bgra(image: np.ndarray) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB as CARLA delivers it: ``(H, W, 4)`` BGRA, alpha 255."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {arr.shape} {arr.dtype}")
    out = np.full((*arr.shape[:2], 4), 255, np.uint8)
    out[:, :, :3] = arr[:, :, ::-1]
    return out


# ------------------------------------------------------------------------------ GNSS, IMU


@dataclass(frozen=True)
class GeoReference:
    """The map's geo-reference (degrees): where world (0, 0) lies. CARLA's towns use (0, 0);
    a leaderboard route's own reference can be read from the OpenDRIVE header."""

    lat_ref: float = 0.0
    lon_ref: float = 0.0


TOWN_REFERENCE = GeoReference()  # CARLA's towns: world (0, 0) at (0 deg, 0 deg)


def _finite_vector(sensor_id: str, data: Any, length: int, layout: str) -> np.ndarray:
    try:
        arr = np.asarray(data, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidObservationError(
            f"{sensor_id!r}: data {data!r} is not numeric; expected {layout}"
        ) from None
    if arr.shape != (length,):
        raise InvalidObservationError(
            f"{sensor_id!r}: data has {arr.size} values; expected {length}: {layout}"
        )
    return arr


def gnss_to_world_xy(
    gnss: Any, ref: GeoReference = TOWN_REFERENCE, sensor_id: str = "gps"
) -> np.ndarray:
    """GNSS ``[lat, lon, alt]`` (deg, deg, m) as world ``(x east, y north)`` metres."""
    lat, lon, _alt = _finite_vector(sensor_id, gnss, 3, "[lat, lon, alt]")
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise InvalidObservationError(
            f"{sensor_id!r}: GNSS [lat, lon] = [{lat}, {lon}] is not finite (NaN or inf)"
        )
    return np.array(
        [(lon - ref.lon_ref) * METRES_PER_DEGREE, (lat - ref.lat_ref) * METRES_PER_DEGREE]
    )


def world_xy_to_gnss(
    x: float, y: float, alt_m: float = 0.0, ref: GeoReference = TOWN_REFERENCE
) -> np.ndarray:
    """Inverse of :func:`gnss_to_world_xy`: world metres to ``[lat, lon, alt]``."""
    return np.array(
        [ref.lat_ref + y / METRES_PER_DEGREE, ref.lon_ref + x / METRES_PER_DEGREE, alt_m]
    )


def compass_to_yaw(compass_rad: float) -> float:
    """IMU compass (rad, 0 = north, clockwise) as world yaw (rad, 0 = east, counter-clockwise),
    wrapped into [-pi, pi)."""
    return float(wrap_angle(math.pi / 2.0 - float(compass_rad)))


def yaw_to_compass(yaw_rad: float) -> float:
    """Inverse of :func:`compass_to_yaw`, in [0, 2 pi) as CARLA reports it."""
    return float((math.pi / 2.0 - float(yaw_rad)) % (2.0 * math.pi))


@dataclass(frozen=True)
class ImuReading:
    """An IMU sample in drivevla terms: longitudinal and lateral (left +) acceleration
    (m/s^2), yaw rate (rad/s, counter-clockwise +) and the world yaw from the compass (rad);
    ``yaw`` is None when the compass read NaN (CARLA's compass does so now and then)."""

    accel_mps2: float
    lateral_accel_mps2: float
    yaw_rate_rps: float
    yaw: float | None


def imu_to_reading(imu: Any, sensor_id: str = "imu") -> ImuReading:
    """CARLA IMU ``[ax, ay, az, gx, gy, gz, compass]`` as an :class:`ImuReading`."""
    arr = _finite_vector(sensor_id, imu, 7, "[ax, ay, az, gx, gy, gz, compass]")
    if not np.isfinite(arr[:6]).all():
        raise InvalidObservationError(
            f"{sensor_id!r}: accelerometer / gyroscope {arr[:6].tolist()} is not finite"
        )
    compass = float(arr[6])
    return ImuReading(
        accel_mps2=float(arr[0]),
        lateral_accel_mps2=-float(arr[1]),  # CARLA y right -> ours y left
        yaw_rate_rps=-float(arr[5]),  # left-handed z: clockwise-positive
        yaw=compass_to_yaw(compass) if math.isfinite(compass) else None,
    )


def reading_to_imu(accel_mps2: float, yaw_rate_rps: float, yaw: float,
                   lateral_accel_mps2: float = 0.0, vertical_accel_mps2: float = 9.81
                   ) -> np.ndarray:
    """Inverse of :func:`imu_to_reading` (roll and pitch rates zero): the IMU array CARLA
    would deliver."""
    return np.array([accel_mps2, -lateral_accel_mps2, vertical_accel_mps2, 0.0, 0.0,
                     -yaw_rate_rps, yaw_to_compass(yaw)])


def speedometer_to_speed(data: Any, sensor_id: str = "speed") -> float:
    """``{'speed': m/s}`` (the leaderboard's pseudo-sensor) as a finite float."""
    if not isinstance(data, Mapping) or "speed" not in data:
        raise InvalidObservationError(
            f"{sensor_id!r}: data {data!r} is not the speedometer's {{'speed': m/s}}"
        )
    speed = float(data["speed"])
    if not math.isfinite(speed):
        raise InvalidObservationError(f"{sensor_id!r}: speed {speed} is not finite")
    return speed


def ego_state_from_sensors(
    gnss: Any, imu: Any, speedometer: Any, ref: GeoReference = TOWN_REFERENCE,
    steer: float = 0.0, fallback_yaw: float | None = None,
) -> EgoState:
    """The :class:`EgoState` (world frame) of one tick's GNSS, IMU and speedometer data.

    ``steer`` is the last applied steer (CARLA reports none); ``fallback_yaw`` stands in for a
    NaN compass (None: a NaN compass is an error)."""
    x, y = gnss_to_world_xy(gnss, ref)
    reading = imu_to_reading(imu)
    yaw = reading.yaw if reading.yaw is not None else fallback_yaw
    if yaw is None:
        raise InvalidObservationError("'imu': compass is NaN and no earlier heading is known")
    return EgoState(float(x), float(y), yaw, speedometer_to_speed(speedometer),
                    reading.accel_mps2, reading.yaw_rate_rps, float(steer))


# ------------------------------------------------------------------------------ transforms


def carla_transform_to_world(transform: Any) -> tuple[float, float, float]:
    """A ``carla.Transform`` (left-handed, yaw in degrees) as world ``(x, y, yaw rad)``."""
    loc, rot = transform.location, transform.rotation
    return carla_to_world_xy_yaw(float(loc.x), float(loc.y), float(rot.yaw))


def world_to_carla_transform(x: float, y: float, yaw: float, z: float = 0.0) -> Any:
    """World ``(x, y, yaw rad)`` as a ``carla.Transform`` at height ``z`` (m)."""
    import carla  # optional heavy dependency (the `carla` extra): lazy

    cx, cy, cyaw = world_to_carla_xy_yaw(x, y, yaw)
    return carla.Transform(carla.Location(x=cx, y=cy, z=z), carla.Rotation(yaw=cyaw))


def control_to_carla(control: Control) -> Any:
    """Our :class:`Control` as a ``carla.VehicleControl`` (same semantics, +steer = right)."""
    import carla  # optional heavy dependency (the `carla` extra): lazy

    return carla.VehicleControl(throttle=float(control.throttle), steer=float(control.steer),
                                brake=float(control.brake))


def carla_to_control(vehicle_control: Any) -> Control:
    """A ``carla.VehicleControl`` as our :class:`Control` (hand brake, reverse dropped)."""
    return Control(float(vehicle_control.throttle), float(vehicle_control.steer),
                   float(vehicle_control.brake))


# ------------------------------------------------------------------------------ route options


def road_option_value(option: Any) -> int:
    """The integer of a ``RoadOption`` (enum, int or name such as ``"LANEFOLLOW"`` or
    ``"RoadOption.LEFT"``)."""
    if isinstance(option, str):
        name = option.rpartition(".")[2].upper()
        for value, known in ROAD_OPTIONS.items():
            if known == name:
                return value
        raise ValueError(f"unknown RoadOption {option!r}; valid: {list(ROAD_OPTIONS.values())}")
    value = int(getattr(option, "value", option))
    if value not in ROAD_OPTIONS:
        raise ValueError(f"unknown RoadOption value {option!r}; valid: {ROAD_OPTIONS}")
    return value


def road_option_to_command(option: Any) -> HighLevelCommand:
    """A ``RoadOption`` as our :class:`HighLevelCommand` (VOID counts as lane follow)."""
    return _COMMAND_OF_OPTION[road_option_value(option)]


def command_to_road_option(command: HighLevelCommand | str) -> int:
    """Our :class:`HighLevelCommand` as the ``RoadOption`` integer."""
    return _OPTION_OF_COMMAND[HighLevelCommand(command)]


# ------------------------------------------------------------------------------ sensors


def camera_to_sensor_dict(spec: CameraSpec) -> dict[str, Any]:
    """A :class:`CameraSpec` as a Leaderboard 2.0 ``sensor.camera.rgb`` dict (the camera's
    name is its ``id``; mount converted to CARLA's left-handed vehicle frame)."""
    return {
        "type": "sensor.camera.rgb",
        "x": float(spec.x), "y": -float(spec.y), "z": float(spec.z),
        "roll": float(spec.roll_deg), "pitch": -float(spec.pitch_deg),
        "yaw": -float(spec.yaw_deg),
        "width": int(spec.width), "height": int(spec.height), "fov": float(spec.fov_deg),
        "id": spec.name,
    }


def sensor_dict_to_camera(sensor: Mapping[str, Any]) -> CameraSpec:
    """Inverse of :func:`camera_to_sensor_dict`."""
    if sensor.get("type") != "sensor.camera.rgb":
        raise SensorConfigError(
            f"sensor {sensor.get('id')!r} has type {sensor.get('type')!r}, not sensor.camera.rgb"
        )
    try:
        return CameraSpec(
            name=str(sensor["id"]), width=int(sensor["width"]), height=int(sensor["height"]),
            fov_deg=float(sensor["fov"]), x=float(sensor["x"]), y=-float(sensor["y"]),
            z=float(sensor["z"]), yaw_deg=-float(sensor["yaw"]),
            pitch_deg=-float(sensor["pitch"]), roll_deg=float(sensor["roll"]),
        )
    except KeyError as exc:
        raise SensorConfigError(f"camera sensor {sensor.get('id')!r} lacks key {exc}") from None


def check_sensor_limits(sensors: Iterable[Mapping[str, Any]]) -> None:
    """Raise :class:`SensorConfigError` where the Leaderboard 2.0 SENSORS track would refuse
    ``sensors``: an unknown type, more of a type than allowed (at most 8 RGB cameras), a
    repeated id, or a mounted sensor more than 3 m from the vehicle centre."""
    sensors = list(sensors)
    counts: dict[str, int] = {}
    ids: set[str] = set()
    for sensor in sensors:
        kind, sid = sensor.get("type"), sensor.get("id")
        if kind not in SENSOR_TYPE_LIMITS:
            raise SensorConfigError(
                f"sensor {sid!r}: type {kind!r} is not allowed; allowed: "
                f"{sorted(SENSOR_TYPE_LIMITS)}"
            )
        if sid in ids:
            raise SensorConfigError(f"sensor id {sid!r} is used twice")
        ids.add(sid)
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] > SENSOR_TYPE_LIMITS[kind]:
            raise SensorConfigError(
                f"{counts[kind]} sensors of type {kind}; Leaderboard 2.0 allows at most "
                f"{SENSOR_TYPE_LIMITS[kind]}"
            )
        if kind not in _POSITIONLESS:
            radius = math.sqrt(sum(float(sensor.get(k, 0.0)) ** 2 for k in ("x", "y", "z")))
            if radius > MAX_SENSOR_RADIUS_M:
                raise SensorConfigError(
                    f"sensor {sid!r} is {radius:.2f} m from the vehicle centre; Leaderboard "
                    f"2.0 allows at most {MAX_SENSOR_RADIUS_M} m"
                )


def navigation_sensors(ids: Sequence[str] = ("gps", "imu", "speed"),
                       rate_hz: float = 20.0) -> list[dict[str, Any]]:
    """GNSS, IMU (at the vehicle centre) and the speedometer, with the given ids."""
    gps, imu, speed = ids
    tick = 1.0 / rate_hz
    return [
        {"type": "sensor.other.gnss", "x": 0.0, "y": 0.0, "z": 0.0, "sensor_tick": tick,
         "id": gps},
        {"type": "sensor.other.imu", "x": 0.0, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0,
         "yaw": 0.0, "sensor_tick": tick, "id": imu},
        {"type": "sensor.speedometer", "reading_frequency": rate_hz, "id": speed},
    ]
