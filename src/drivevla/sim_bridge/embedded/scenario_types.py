"""What a scenario is: the records a family builder returns (the road network, the ego route,
traffic, pedestrians, static props, yield rules) and the context it builds from. The builders
themselves are in :mod:`drivevla.sim_bridge.embedded.scenarios`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from highway_env.road.road import RoadNetwork

from drivevla.sim_bridge.embedded.actors import TrafficLight
from drivevla.sim_bridge.embedded.geometry import FAMILY_GEOMETRY
from drivevla.sim_bridge.embedded.routes import Route

LaneId = tuple[str, str, int]


@dataclass
class NpcSpawn:
    lane: LaneId
    s: float
    speed: float
    destination: str | None = None  # network node to plan a route to
    lane_change: bool = True
    target_speed: float | None = None
    color: tuple[float, float, float] = (0.7, 0.1, 0.1)


@dataclass
class PedestrianSpawn:
    start: np.ndarray
    end: np.ndarray
    start_time_s: float
    walk_speed_mps: float = 1.4


@dataclass
class StaticSpawn:
    position: np.ndarray
    heading: float
    length: float
    width: float
    height: float


@dataclass
class YieldRule:
    """Traffic on ``lane`` stops at ``stop_s`` while any vehicle is on a ``conflict`` lane
    within ``conflict_window_m`` of that lane's end (or anywhere on it when the lane is a
    junction connector, ``whole_lane``)."""

    lane: LaneId
    stop_s: float
    conflicts: list[tuple[LaneId, float]]  # (lane, metres before its end that count)


@dataclass
class Scenario:
    family: str
    intent: str
    network: RoadNetwork
    route: Route
    speed_limit_mps: float
    ego_speed_mps: float
    instruction: str
    npcs: list[NpcSpawn] = field(default_factory=list)
    lights: list[TrafficLight] = field(default_factory=list)
    pedestrians: list[PedestrianSpawn] = field(default_factory=list)
    statics: list[StaticSpawn] = field(default_factory=list)
    yield_rules: list[YieldRule] = field(default_factory=list)
    # edges the ego may legitimately occupy besides the route's own (e.g. while blending
    # from a through lane onto an exit's deceleration lane)
    extra_route_edges: set[tuple[str, str]] = field(default_factory=set)
    # index into ``npcs`` of the vehicle an overtake instruction refers to
    overtake_target: int | None = None


@dataclass(frozen=True)
class BuildContext:
    rng: np.random.Generator
    traffic_density: float  # vehicles per 100 m of lane
    pedestrians: bool
    light_cycle_s: tuple[float, float, float]  # green, yellow, red
    light_offset_s: float | None
    guard_rails: bool
    # the map's parameters (sim_bridge/embedded/geometry.py); missing names: the fixed map's
    geometry: dict[str, float] = field(default_factory=dict)

    def geo(self, family: str, name: str) -> float:
        """Map parameter ``name`` of ``family`` (its fixed value when not drawn)."""
        if name in self.geometry:
            return float(self.geometry[name])
        return next(p.fixed for p in FAMILY_GEOMETRY[family] if p.name == name)
