"""What a CARLA backend spawns, built from Leaderboard 2.0 sensor dicts: blueprint ids,
attributes and mount transforms, set as the leaderboard's ``agent_wrapper`` sets them (so a
policy sees in our CARLA backend what it sees under the evaluator), and the synchronous
world settings. Pure value building with the ``carla`` client's types: no server needed;
spawning itself (``world.spawn_actor(blueprint, transform, attach_to=ego)``) is the
backend's (issue 26, item 3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drivevla.sim_bridge.carla.convert import check_sensor_limits

# Leaderboard 2.0 agent_wrapper: the camera lens model and the GNSS / IMU noise it sets
CAMERA_LENS_ATTRIBUTES = {
    "lens_circle_multiplier": "3.0",
    "lens_circle_falloff": "3.0",
    "chromatic_aberration_intensity": "0.5",
    "chromatic_aberration_offset": "0",
}
GNSS_NOISE_DEG = 0.000005
IMU_NOISE = 0.001  # accelerometer (m/s^2) and gyroscope (rad/s) std dev, per axis


@dataclass(frozen=True)
class SensorSpawn:
    """One sensor to spawn on the ego: ``world.spawn_actor(library.find(blueprint) with
    attributes, transform, attach_to=ego)``; ``sensor_id`` keys its data in ``input_data``."""

    sensor_id: str
    blueprint: str
    attributes: dict[str, str]
    transform: Any  # carla.Transform, in the vehicle's frame


def synchronous_settings(sim_rate_hz: float = 20.0) -> Any:
    """``carla.WorldSettings`` for a synchronous world at a fixed step of ``1 / sim_rate_hz``
    (the leaderboard's 20 Hz by default)."""
    import carla  # optional heavy dependency (the `carla` extra): lazy

    if not sim_rate_hz > 0:
        raise ValueError(f"sim_rate_hz={sim_rate_hz!r} must be > 0")
    settings = carla.WorldSettings()
    settings.synchronous_mode = True
    settings.fixed_delta_seconds = 1.0 / float(sim_rate_hz)
    return settings


def _attributes(sensor: Mapping[str, Any], noise: bool) -> dict[str, str]:
    kind = sensor["type"]
    if kind == "sensor.camera.rgb":
        return {"image_size_x": str(int(sensor["width"])),
                "image_size_y": str(int(sensor["height"])),
                "fov": str(float(sensor["fov"])), **CAMERA_LENS_ATTRIBUTES}
    out: dict[str, str] = {}
    if "sensor_tick" in sensor:
        out["sensor_tick"] = str(float(sensor["sensor_tick"]))
    if kind == "sensor.other.gnss":
        std = GNSS_NOISE_DEG if noise else 0.0
        out.update({f"noise_{k}_stddev": str(std) for k in ("alt", "lat", "lon")})
        out.update({f"noise_{k}_bias": "0.0" for k in ("alt", "lat", "lon")})
    elif kind == "sensor.other.imu":
        std = IMU_NOISE if noise else 0.0
        out.update({f"noise_{part}_stddev_{axis}": str(std)
                    for part in ("accel", "gyro") for axis in "xyz"})
    return out


def sensor_spawn_specs(sensors: Iterable[Mapping[str, Any]], noise: bool = True
                       ) -> list[SensorSpawn]:
    """The sensors to spawn for Leaderboard 2.0 sensor dicts (limits checked first; the
    speedometer and the map are pseudo-sensors and spawn nothing). ``noise``: the
    leaderboard's GNSS and IMU noise (False: exact readings)."""
    import carla  # optional heavy dependency (the `carla` extra): lazy

    sensors = list(sensors)
    check_sensor_limits(sensors)
    out = []
    for sensor in sensors:
        if sensor["type"] in ("sensor.speedometer", "sensor.opendrive_map"):
            continue
        transform = carla.Transform(
            carla.Location(x=float(sensor.get("x", 0.0)), y=float(sensor.get("y", 0.0)),
                           z=float(sensor.get("z", 0.0))),
            carla.Rotation(pitch=float(sensor.get("pitch", 0.0)),
                           yaw=float(sensor.get("yaw", 0.0)),
                           roll=float(sensor.get("roll", 0.0))))
        out.append(SensorSpawn(str(sensor["id"]), str(sensor["type"]),
                               _attributes(sensor, noise), transform))
    return out
