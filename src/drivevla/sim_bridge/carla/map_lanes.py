"""A CARLA map's driving lanes as our :class:`~drivevla.core.scene.LaneGeometry`, for the
privileged snapshot's ``lanes`` (the perception targets' drivable-area channel): the map's
waypoints every ``step_m`` (``Map.generate_waypoints``), grouped by road, section and lane,
ordered along the lane's own direction. Pure functions of the client's value types."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from drivevla.core.scene import LaneGeometry, MarkingType
from drivevla.sim_bridge.carla.convert import carla_transform_to_world


def lane_geometries(waypoints: Iterable[Any], speed_limit_mps: float) -> list[LaneGeometry]:
    """One lane per ``(road_id, section_id, lane_id)`` of ``waypoints`` (``carla.Waypoint``
    s of driving lanes), its centreline in driving order (CARLA's ``s`` grows along the road;
    lanes with a negative id run along it, positive ones against it), width the lane's mean.
    Lanes with fewer than two waypoints are left out (no extent to draw)."""
    groups: dict[tuple[int, int, int], list[Any]] = defaultdict(list)
    for w in waypoints:
        groups[(int(w.road_id), int(w.section_id), int(w.lane_id))].append(w)
    lanes = []
    for (road, section, lane), points in sorted(groups.items()):
        if len(points) < 2:
            continue
        points.sort(key=lambda w: float(w.s), reverse=lane > 0)
        centre = np.array([carla_transform_to_world(w.transform)[:2] for w in points])
        lanes.append(LaneGeometry(
            (f"{road}", f"{section}", lane), centre,
            float(np.mean([w.lane_width for w in points])),
            MarkingType.NONE, MarkingType.NONE, float(speed_limit_mps)))
    return lanes
