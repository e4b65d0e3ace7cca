"""Actors the project adds to highway-env: the ego, signal-aware traffic, pedestrians,
traffic lights and static props.

highway-env's ``Vehicle.on_state_update`` searches *every* lane of the network for the
closest one at every step; :class:`LaneLocator` replaces that with a search over the current
lane's road, its successors and predecessors (a handful of lanes), which is what keeps the
simulator above 100 steps/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from highway_env.road.road import Road, RoadNetwork
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import RoadObject

from drivevla.core.frames import steer_to_wheel_angle
from drivevla.core.scene import LightState
from drivevla.core.types import Control

LaneId = tuple[str, str, int]


class LaneLocator:
    """Closest-lane lookup restricted to the neighbourhood of a previous lane."""

    def __init__(self, network: RoadNetwork) -> None:
        self.network = network
        self.all_ids: list[LaneId] = list(network.lanes_dict().keys())
        self._neighbours: dict[LaneId, list[LaneId]] = {}
        preds: dict[str, list[str]] = {}
        for a, tos in network.graph.items():
            for b in tos:
                preds.setdefault(b, []).append(a)
        for a, b, i in self.all_ids:
            cands = [(a, b, k) for k in range(len(network.graph[a][b]))]
            for c, lanes in network.graph.get(b, {}).items():
                cands += [(b, c, k) for k in range(len(lanes))]
            for p in preds.get(a, []):
                cands += [(p, a, k) for k in range(len(network.graph[p][a]))]
            self._neighbours[(a, b, i)] = cands

    def closest(self, position: np.ndarray, heading: float, previous: LaneId | None) -> LaneId:
        ids = self._neighbours.get(previous, self.all_ids) if previous else self.all_ids
        best, best_d = ids[0], math.inf
        for lane_id in ids:
            d = self.network.get_lane(lane_id).distance_with_heading(position, heading)
            if d < best_d:
                best, best_d = lane_id, d
        # far from every neighbour (e.g. after leaving the road): fall back to a full search
        if best_d > 8.0 and ids is not self.all_ids:
            return self.closest(position, heading, None)
        return best


class _LocatedMixin:
    """Use the road's LaneLocator for lane updates (see module docstring)."""

    def on_state_update(self) -> None:  # type: ignore[override]
        road = self.road
        if road is None:
            return
        locator: LaneLocator | None = getattr(road, "locator", None)
        if locator is None:
            Vehicle.on_state_update(self)  # type: ignore[misc]
            return
        self.lane_index = locator.closest(self.position, self.heading, self.lane_index)
        self.lane = road.network.get_lane(self.lane_index)


class EgoVehicle(_LocatedMixin, Vehicle):
    """The ego: a kinematic bicycle (highway-env) driven by acceleration and wheel angle.

    Differences from highway-env's ``Vehicle``: no reverse (speed is clamped at 0), a
    first-order steering lag, and no physical collision response (the criteria detect
    contacts; the car is not frozen by a crash, as in CARLA where it can drive on).
    """

    LENGTH = 4.8
    WIDTH = 2.0
    HEIGHT = 1.5

    def __init__(
        self,
        road: Road,
        position,
        heading: float = 0.0,
        speed: float = 0.0,
        steer_tau_s: float = 0.1,
        max_accel_mps2: float = 4.0,
        max_brake_mps2: float = 8.0,
        max_steer_rad: float = math.radians(35.0),
    ) -> None:
        super().__init__(road, position, heading, speed)
        self.collidable = False  # contacts are scored by the criteria, not by highway-env
        self.steer_tau_s = steer_tau_s
        self.max_accel_mps2 = max_accel_mps2
        self.max_brake_mps2 = max_brake_mps2
        self.max_steer_rad = max_steer_rad
        self.wheel_angle = 0.0
        self.accel_mps2 = 0.0
        self.yaw_rate_rps = 0.0

    def apply_control(self, control: Control, dt: float) -> None:
        """Map a CARLA-style ``Control`` onto acceleration and wheel angle for the next step.

        Throttle acceleration fades linearly to 0 at 50 m/s; brake decelerates up to
        ``max_brake_mps2``; rolling and air resistance ``0.1 + 0.0004 v^2`` m/s^2 act while
        moving. Steer +1 is full right (a negative, clockwise wheel angle in the world frame),
        reached through a first-order lag of ``steer_tau_s``.
        """
        v = self.speed
        drive = control.throttle * self.max_accel_mps2 * max(0.0, 1.0 - v / 50.0)
        resist = (0.1 + 0.0004 * v * v) if v > 0.05 else 0.0
        accel = drive - control.brake * self.max_brake_mps2 - resist
        wheel_cmd = steer_to_wheel_angle(control.steer, self.max_steer_rad)
        alpha = 1.0 if self.steer_tau_s <= 0 else min(1.0, dt / self.steer_tau_s)
        self.wheel_angle += alpha * (wheel_cmd - self.wheel_angle)
        self.action = {"steering": self.wheel_angle, "acceleration": accel}

    def step(self, dt: float) -> None:
        heading0, speed0 = self.heading, self.speed
        # a brake command never drives the car backwards
        if self.speed + self.action["acceleration"] * dt < 0.0:
            self.action["acceleration"] = -self.speed / dt
        self.crashed = False
        super().step(dt)
        self.speed = max(self.speed, 0.0)
        self.impact = None
        self.accel_mps2 = (self.speed - speed0) / dt
        self.yaw_rate_rps = (self.heading - heading0) / dt


class TrafficVehicle(_LocatedMixin, IDMVehicle):
    """IDM/MOBIL traffic that also stops at red lights, for pedestrians and to yield.

    The world sets ``stop_distance_m`` every tick: the distance along the lane to the
    nearest point where this vehicle must stop (None when nothing applies).
    """

    LENGTH = 4.6
    WIDTH = 1.9
    HEIGHT = 1.5
    COMFORT_ACC_MIN = -6.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stop_distance_m: float | None = None
        self.crash_until_s: float | None = None  # when a crashed car may drive on
        self.color_rgb = (0.7, 0.1, 0.1)

    def act(self, action=None) -> None:
        super().act(action)
        if self.crashed or self.stop_distance_m is None:
            return
        gap = max(self.stop_distance_m - self.LENGTH / 2, 0.01)
        v, v0 = max(self.speed, 0.0), max(self.target_speed, 0.1)
        s_star = 2.0 + v * self.TIME_WANTED + v * v / (2 * math.sqrt(self.COMFORT_ACC_MAX * 5.0))
        a_stop = self.COMFORT_ACC_MAX * (1 - (v / v0) ** self.DELTA - (s_star / gap) ** 2)
        self.action["acceleration"] = float(
            np.clip(min(self.action["acceleration"], a_stop), -8.0, self.ACC_MAX)
        )

    def step(self, dt: float) -> None:
        super().step(dt)
        self.speed = max(self.speed, 0.0)


class Pedestrian(RoadObject):
    """A pedestrian who waits at the kerb and starts crossing at a seeded time."""

    LENGTH = 0.6
    WIDTH = 0.6
    HEIGHT = 1.75

    def __init__(
        self,
        road: Road,
        start: np.ndarray,
        end: np.ndarray,
        start_time_s: float,
        walk_speed_mps: float = 1.4,
    ) -> None:
        direction = np.asarray(end, float) - np.asarray(start, float)
        super().__init__(road, start, math.atan2(direction[1], direction[0]), 0.0)
        self.start_xy = np.asarray(start, float)
        self.end_xy = np.asarray(end, float)
        self.start_time_s = start_time_s
        self.walk_speed_mps = walk_speed_mps
        self.check_collisions = False
        self.collidable = True
        self.solid = False  # traffic sees it (neighbour search) but highway-env does not bounce it
        self.hit_by_ego = False

    def update(self, time_s: float, dt: float) -> None:
        if self.hit_by_ego:
            self.speed = 0.0
            return
        remaining = self.end_xy - self.position
        dist = float(np.linalg.norm(remaining))
        if time_s < self.start_time_s or dist < 1e-3:
            self.speed = 0.0
            return
        self.speed = self.walk_speed_mps
        self.position = self.position + remaining / dist * min(self.speed * dt, dist)

    @property
    def crossing(self) -> bool:
        return self.speed > 0.0


class StaticProp(RoadObject):
    """A static obstacle (guard rail segment, signal pole, parked object)."""

    def __init__(
        self, road: Road, position, heading: float, length: float, width: float, height: float
    ) -> None:
        self.LENGTH, self.WIDTH, self.HEIGHT = length, width, height
        super().__init__(road, position, heading, 0.0)
        self.check_collisions = False
        self.collidable = False  # traffic never reaches them; the ego's contacts are scored


@dataclass
class TrafficLight:
    """A signal head with a fixed cycle. ``offset_s`` shifts where in the cycle t=0 falls."""

    light_id: int
    position: np.ndarray  # lamp housing centre, world xy
    height_m: float
    facing_yaw: float
    stop_line: np.ndarray  # (2, 2)
    controlled_lane: LaneId
    stop_s: float  # distance along the controlled lane of the stop line
    green_s: float
    yellow_s: float
    red_s: float
    offset_s: float

    def state_at(self, time_s: float) -> LightState:
        cycle = self.green_s + self.yellow_s + self.red_s
        t = (time_s + self.offset_s) % cycle
        if t < self.green_s:
            return LightState.GREEN
        if t < self.green_s + self.yellow_s:
            return LightState.YELLOW
        return LightState.RED
