"""What our Leaderboard 2.0 criteria (:class:`~drivevla.sim_bridge.embedded.criteria.
RouteCriteria`, simulator-independent) need each tick, from what a CARLA server reports:
collision-sensor events, the map's lane under the ego, traffic lights and their stop
waypoints, the background traffic's speeds (and the actors as our boxes, for the privileged
snapshot). Pure functions of the ``carla`` client's value
types (no server needed); the CARLA backend (:mod:`drivevla.sim_bridge.carla.env`) feeds
them.

- collisions: ``sensor.other.collision`` events, the other actor's ``type_id`` sorted into
  vehicle / pedestrian / static as the leaderboard's ``CollisionTest`` does;
- outside lanes / wrong way: off every driving lane (the map has no ``Driving`` waypoint under
  the ego), or heading more than ``wrong_way_angle_deg`` against the lane's direction (the
  leaderboard's ``OutsideRouteLanesTest``: off-road and wrong-lane);
- red lights: each stop waypoint of a light (``TrafficLight.get_stop_waypoints()``) gives a
  stop line across its lane, checked against the ego's tail as in the embedded simulator.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from drivevla.core.frames import wrap_angle
from drivevla.core.scene import ActorBox, ActorKind
from drivevla.sim_bridge.carla.convert import carla_transform_to_world
from drivevla.sim_bridge.embedded.criteria import LightCrossing

_LIGHT_STATE_NAMES = {"Red": "red", "Yellow": "yellow", "Green": "green"}


def actor_kind(type_id: str) -> str:
    """The criteria's kind of a CARLA actor: ``vehicle.*`` -> vehicle, ``walker.*`` ->
    pedestrian, anything else (props, ``static.*``, traffic signs) -> static."""
    if type_id.startswith("vehicle."):
        return "vehicle"
    if type_id.startswith("walker."):
        return "pedestrian"
    return "static"


def actor_box(actor_id: int, type_id: str, transform: Any, extent: Any,
              velocity: Any) -> ActorBox:
    """A CARLA actor as our :class:`ActorBox` (world frame): its ``carla.Transform``, its
    bounding box's ``extent`` (half sizes, ``carla.Vector3D``) and ``carla.Vector3D``
    velocity (the speed is its horizontal norm)."""
    x, y, yaw = carla_transform_to_world(transform)
    return ActorBox(int(actor_id), ActorKind(actor_kind(type_id)), x, y, yaw,
                    2.0 * float(extent.x), 2.0 * float(extent.y), 2.0 * float(extent.z),
                    math.hypot(float(velocity.x), float(velocity.y)))


class CollisionLog:
    """The ego's collision-sensor events between two control ticks (``listen(log.on_event)``;
    CARLA calls it on a client thread). :meth:`drain` returns ``(actor_id, kind)`` pairs,
    one per actor, in the order first hit."""

    def __init__(self) -> None:
        self._hits: dict[int, str] = {}
        self._lock = threading.Lock()

    def on_event(self, event: Any) -> None:
        other = event.other_actor
        with self._lock:
            self._hits.setdefault(int(other.id), actor_kind(str(other.type_id)))

    def drain(self) -> list[tuple[int, str]]:
        with self._lock:
            hits, self._hits = list(self._hits.items()), {}
        return hits


def light_state_name(state: Any) -> str:
    """A ``carla.TrafficLightState`` as the criteria's name (``red`` / ``yellow`` / ``green``;
    Off and Unknown read as ``off``: never a red-light infraction)."""
    return _LIGHT_STATE_NAMES.get(getattr(state, "name", str(state)), "off")


def stop_line(transform: Any, lane_width: float) -> np.ndarray:
    """``(2, 2)`` world points of the stop line at a stop waypoint: across its lane, centred
    on the waypoint, ``lane_width`` long."""
    x, y, yaw = carla_transform_to_world(transform)
    half = 0.5 * float(lane_width)
    left = np.array([-math.sin(yaw), math.cos(yaw)]) * half
    centre = np.array([x, y])
    return np.stack([centre + left, centre - left])


def light_crossings(light_id: int, state: Any,
                    stop_waypoints: Iterable[tuple[Any, float]]) -> list[LightCrossing]:
    """One :class:`LightCrossing` per stop waypoint ``(carla.Transform, lane_width)`` of a
    light; the check distance is measured to each stop line's middle (the leaderboard's
    trigger volume) and a crossing counts only in the lane's driving direction."""
    name = light_state_name(state)
    out = []
    for transform, lane_width in stop_waypoints:
        line = stop_line(transform, lane_width)
        _, _, yaw = carla_transform_to_world(transform)
        out.append(LightCrossing(int(light_id), name, line, line.mean(axis=0),
                                 approach_yaw=float(yaw)))
    return out


def lane_flags(ego_yaw: float, lane_yaw: float | None,
               wrong_way_angle_deg: float) -> tuple[bool, bool]:
    """``(outside, wrong_way)``: outside when no driving lane lies under the ego
    (``lane_yaw`` None); wrong way when the ego heads more than ``wrong_way_angle_deg``
    against its lane's direction (world yaw, rad)."""
    if lane_yaw is None:
        return True, False
    off = abs(wrap_angle(float(ego_yaw) - float(lane_yaw)))
    return False, off > math.radians(wrong_way_angle_deg)


def mean_speed(velocities: Sequence[Any]) -> float | None:
    """The mean speed (m/s) of the background traffic's ``carla.Vector3D`` velocities (the
    leaderboard's ``MinimumSpeedRouteTest`` reference); None without traffic."""
    if not velocities:
        return None
    return float(np.mean([math.hypot(v.x, v.y) for v in velocities]))
