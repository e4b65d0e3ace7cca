"""A renderer-neutral description of the embedded world.

The simulator (``env.py``) produces these; the camera renderer, the BEV renderer, ground-truth
``info`` and the infraction criteria consume them. All positions are in the world frame
(see :mod:`drivevla.core.frames`), metres and radians.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class MarkingType(str, Enum):
    NONE = "none"
    STRIPED = "striped"
    SOLID = "solid"


class ActorKind(str, Enum):
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    STATIC = "static"


class LightState(str, Enum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


@dataclass(frozen=True)
class LaneGeometry:
    """One lane of the road network, sampled along its centreline.

    ``centerline``: (N, 2) world metres, in driving direction. ``right_marking`` is the line
    on the lane's right-hand side (lateral = -width/2), ``left_marking`` on its left.
    """

    lane_id: tuple[str, str, int]
    centerline: np.ndarray
    width: float
    left_marking: MarkingType
    right_marking: MarkingType
    speed_limit_mps: float

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(right_edge, left_edge), each (N, 2): the centreline offset by -/+ width/2."""
        return strip_edges(self.centerline, self.width)


def strip_edges(centerline: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """(right_edge, left_edge) of a strip ``width`` wide around a polyline, each (N, 2)."""
    c = np.asarray(centerline, dtype=np.float64)
    d = np.gradient(c, axis=0)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    d = d / np.maximum(norm, 1e-9)
    left_normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    half = width / 2.0
    return c - half * left_normal, c + half * left_normal


def box_footprint(x: float, y: float, yaw: float, length: float, width: float) -> np.ndarray:
    """(4, 2) world corners of an oriented rectangle, counter-clockwise from rear-right."""
    hl, hw = length / 2.0, width / 2.0
    local = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw]])
    c, s = np.cos(yaw), np.sin(yaw)
    return local @ np.array([[c, s], [-s, c]]) + np.array([x, y])


@dataclass(frozen=True)
class ActorBox:
    """An oriented 3D box standing on the ground (z = 0 at its base)."""

    actor_id: int
    kind: ActorKind
    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float
    speed_mps: float = 0.0
    color: tuple[float, float, float] = (0.6, 0.6, 0.6)

    @property
    def velocity(self) -> np.ndarray:
        return self.speed_mps * np.array([np.cos(self.yaw), np.sin(self.yaw)])

    def footprint(self) -> np.ndarray:
        """(4, 2) world corners, counter-clockwise from rear-right."""
        return box_footprint(self.x, self.y, self.yaw, self.length, self.width)

    def corners_3d(self) -> np.ndarray:
        """(8, 3) world corners: the footprint at z = 0, then at z = height."""
        fp = self.footprint()
        bottom = np.concatenate([fp, np.zeros((4, 1))], axis=1)
        top = np.concatenate([fp, np.full((4, 1), self.height)], axis=1)
        return np.concatenate([bottom, top], axis=0)

    def to_dict(self) -> dict:
        return {
            "id": self.actor_id,
            "kind": self.kind.value,
            "x": self.x,
            "y": self.y,
            "yaw": self.yaw,
            "length": self.length,
            "width": self.width,
            "height": self.height,
            "speed_mps": self.speed_mps,
        }


@dataclass(frozen=True)
class TrafficLightView:
    """A signal head and the stop line it governs.

    ``x, y, z``: centre of the lamp housing; ``yaw``: the direction the lamps face (towards
    approaching traffic). ``stop_line``: (2, 2) world endpoints across the controlled lanes.
    """

    light_id: int
    x: float
    y: float
    z: float
    yaw: float
    state: LightState
    stop_line: np.ndarray
    controlled_lanes: tuple[tuple[str, str, int], ...] = ()

    def to_dict(self) -> dict:
        return {
            "id": self.light_id,
            "x": self.x,
            "y": self.y,
            "z": self.z,
            "yaw": self.yaw,
            "state": self.state.value,
            "stop_line": self.stop_line.tolist(),
        }


@dataclass
class SceneSnapshot:
    """Everything dynamic at one instant."""

    time_s: float
    ego: ActorBox
    actors: list[ActorBox] = field(default_factory=list)
    lights: list[TrafficLightView] = field(default_factory=list)
