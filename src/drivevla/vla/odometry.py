"""Odometry inputs: readings a memoryless model gets about its own motion since the route
began, integrated by the policy tick to tick from its pose (a gyro, a compass-free lateral
offset, an odometer; no map). One place per channel: its name (the config's
``model.odometry`` entry and the datasets' sample key), its unit, how it is normalised, and
how the policy tracks it. The model's ego input is ``[speed, accel, yaw rate, steer]``
followed by the configured channels in :data:`CHANNELS` order.

- ``heading_change`` (rad, unwrapped since the start: a full circle reads 2 pi): how far
  round a roundabout or a turn the car has come;
- ``lateral_offset`` (m, left +, across the starting heading, clipped at four lanes): whether
  "change to the left lane" is already done;
- ``distance_travelled`` (m of path since the start, an odometer, clipped at 500 m): timing
  "within the next 140 metres, get over".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivevla.core.frames import lateral_offset, wrap_angle

if TYPE_CHECKING:  # the config imports this file: `drivevla --help` should not load torch
    import torch

    from drivevla.core.types import Observation


@dataclass(frozen=True)
class Channel:
    name: str
    unit: str
    scale: float  # the model reads value / scale (after clipping)
    low: float = -math.inf
    high: float = math.inf

    def normalise(self, values: torch.Tensor) -> torch.Tensor:
        if math.isfinite(self.low) or math.isfinite(self.high):
            values = values.clamp(self.low, self.high)
        return values / self.scale


# the order of the model's ego input (never reorder: checkpoints read these positions)
CHANNELS: dict[str, Channel] = {
    "heading_change": Channel("heading_change", "rad", 1.5),
    # one lane width; beyond four lanes the offset says only "turned"
    "lateral_offset": Channel("lateral_offset", "m", 3.5, -14.0, 14.0),
    # saturates at 500 m: longer than any route's manoeuvre
    "distance_travelled": Channel("distance_travelled", "m", 100.0, 0.0, 500.0),
}


def check_channels(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` validated and put in :data:`CHANNELS` order."""
    unknown = [n for n in names if n not in CHANNELS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"model.odometry={list(names)}: each channel once, from "
                         f"{list(CHANNELS)}")
    return tuple(n for n in CHANNELS if n in names)


def normalise_channels(names: tuple[str, ...], readings: dict[str, torch.Tensor | None],
                       dtype: torch.dtype) -> list[torch.Tensor]:
    """(B, 1) model inputs of the channels ``names`` from (B,) raw ``readings``; a missing
    reading is an error naming the channel."""
    parts = []
    for name in names:
        value = readings.get(name)
        if value is None:
            raise ValueError(f"this model reads the odometry channel {name!r} "
                             f"({CHANNELS[name].unit} since the route began); none was given")
        parts.append(CHANNELS[name].normalise(value.to(dtype).reshape(-1, 1)))
    return parts


class OdometryTracker:
    """Integrates the configured channels from the ego pose of each observation since the
    first one after :meth:`reset`. Reading the same observation twice adds nothing."""

    def __init__(self, channels: tuple[str, ...]) -> None:
        self.channels = check_channels(channels)
        # metres added to every odometer reading: the odometer-shift probe (a fault injected
        # by runtime/faults.py, ``policy.odometer_bias_m``; never part of a checkpoint)
        self.odometer_bias_m = 0.0
        self.reset()

    def reset(self) -> None:
        self._yaw_last: float | None = None
        self._heading_change = 0.0
        self._start_pose: tuple[float, float, float] | None = None
        self._xy_last: tuple[float, float] | None = None
        self._distance = 0.0

    def read(self, obs: Observation) -> dict[str, float]:
        """The configured channels' raw readings after ``obs`` (channel name -> value)."""
        track = {"heading_change": self._heading, "lateral_offset": self._lateral,
                 "distance_travelled": self._odometer}
        return {name: track[name](obs) for name in self.channels}

    def _heading(self, obs: Observation) -> float:
        yaw = float(obs.ego.yaw)
        if not math.isfinite(yaw):
            raise ValueError(f"ego yaw is {yaw}: the heading change cannot be tracked")
        if self._yaw_last is not None:
            self._heading_change += wrap_angle(yaw - self._yaw_last)
        self._yaw_last = yaw
        return self._heading_change

    def _lateral(self, obs: Observation) -> float:
        ego = obs.ego
        pose = (float(ego.x), float(ego.y), float(ego.yaw))
        if not all(math.isfinite(v) for v in pose):
            raise ValueError(f"ego pose is {pose}: the lateral offset cannot be tracked")
        if self._start_pose is None:
            self._start_pose = pose
        return float(lateral_offset(pose[0], pose[1], *self._start_pose))

    def _odometer(self, obs: Observation) -> float:
        xy = (float(obs.ego.x), float(obs.ego.y))
        if not all(math.isfinite(v) for v in xy):
            raise ValueError(f"ego position is {xy}: the distance travelled cannot be tracked")
        if self._xy_last is not None:
            self._distance += math.hypot(xy[0] - self._xy_last[0], xy[1] - self._xy_last[1])
        self._xy_last = xy
        return self._distance + self.odometer_bias_m
