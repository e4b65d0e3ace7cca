"""A multi-lane road with one bend: a straight, a circular arc, a straight (the drawn
motorway maps of :mod:`drivevla.sim_bridge.embedded.geometry`).

Each lane is a :class:`ChainLane`: highway-env's own ``StraightLane`` / ``CircularLane``
pieces joined end to end, measured by one arc length, so vehicles, routes and renderers use
it as any lane. Lane 0 is the rightmost; lane ``i`` runs ``i`` lane widths to its left, on an
arc of the same centre (so every lane turns by the same angle and the lanes stay parallel).
"""

from __future__ import annotations

import math

import numpy as np
from highway_env.road.lane import AbstractLane, CircularLane, LineType, StraightLane
from highway_env.road.road import RoadNetwork

from drivevla.sim_bridge.embedded.roads import LANE_WIDTH_M, left_normal, unit

_S, _C, _N = LineType.STRIPED, LineType.CONTINUOUS_LINE, LineType.NONE


class ChainLane(AbstractLane):
    """Lane pieces driven one after the other (each starting where the last ends)."""

    def __init__(self, pieces: list[AbstractLane], width: float, line_types, speed_limit: float,
                 priority: int = 0) -> None:
        super().__init__()
        self.pieces = pieces
        self.starts = np.concatenate([[0.0], np.cumsum([p.length for p in pieces])])
        self.length = float(self.starts[-1])
        self.width = width
        self.line_types = line_types
        self.forbidden = False
        self.speed_limit = speed_limit
        self.priority = priority

    def _piece(self, longitudinal: float) -> int:
        k = int(np.searchsorted(self.starts, longitudinal, side="right") - 1)
        return min(max(k, 0), len(self.pieces) - 1)

    def position(self, longitudinal: float, lateral: float) -> np.ndarray:
        k = self._piece(longitudinal)
        return self.pieces[k].position(longitudinal - self.starts[k], lateral)

    def heading_at(self, longitudinal: float) -> float:
        k = self._piece(longitudinal)
        return self.pieces[k].heading_at(longitudinal - self.starts[k])

    def width_at(self, longitudinal: float) -> float:
        return self.width

    def local_coordinates(self, position: np.ndarray) -> tuple[float, float]:
        """The nearest piece's coordinates: inside a piece's extent, or before the first /
        after the last (highway-env's ``after_end`` reads those)."""
        best: tuple[float, float, float] | None = None
        last = len(self.pieces) - 1
        for k, piece in enumerate(self.pieces):
            s, lat = piece.local_coordinates(position)
            before, after = s < 0.0 and k > 0, s > piece.length and k < last
            if before or after:
                s = min(max(s, 0.0), piece.length)
                gap = float(np.linalg.norm(piece.position(s, lat) - np.asarray(position)))
            else:
                gap = 0.0
            cost = gap + abs(lat)
            if best is None or cost < best[0]:
                best = (cost, s + self.starts[k], lat)
        return best[1], best[2]

    def to_config(self) -> dict:
        return {"class_path": f"{type(self).__module__}.{type(self).__name__}",
                "config": {"pieces": [p.to_config() for p in self.pieces],
                           "width": self.width, "line_types": self.line_types,
                           "speed_limit": self.speed_limit, "priority": self.priority}}


def add_bent_road(net: RoadNetwork, edge: tuple[str, str], start: np.ndarray, heading: float,
                  lanes: int, speed_limit: float, *, straight_m: float, radius_m: float,
                  angle_deg: float, after_m: float) -> None:
    """``lanes`` parallel lanes from ``start`` (the rightmost lane's centre) along
    ``heading``: ``straight_m`` straight, then a bend of ``angle_deg`` (left +) whose
    rightmost lane has radius ``radius_m``, then ``after_m`` straight. Outer lines
    continuous, lines between lanes striped."""
    if radius_m <= lanes * LANE_WIDTH_M or angle_deg == 0.0:
        raise ValueError(f"a bend needs radius_m > the road's width and angle_deg != 0, got "
                         f"{radius_m:g} m, {angle_deg:g} deg")
    left = angle_deg > 0
    phi = math.radians(abs(angle_deg))
    d0, n0 = unit(heading), left_normal(unit(heading))
    bend_start = np.asarray(start, float) + d0 * straight_m
    sign = 1.0 if left else -1.0
    centre = bend_start + n0 * sign * radius_m
    phase0 = heading - sign * math.pi / 2
    heading1 = heading + sign * phi
    for i in range(lanes):
        offset = n0 * LANE_WIDTH_M * i
        radius = radius_m - sign * LANE_WIDTH_M * i
        lines = (_C if i == 0 else _N, _C if i == lanes - 1 else _S)
        first = StraightLane(np.asarray(start, float) + offset, bend_start + offset,
                             width=LANE_WIDTH_M, line_types=lines, speed_limit=speed_limit)
        arc = CircularLane(centre, radius, phase0, phase0 + sign * phi, clockwise=left,
                           width=LANE_WIDTH_M, line_types=lines, speed_limit=speed_limit)
        arc_end = arc.position(arc.length, 0.0)
        last = StraightLane(arc_end, arc_end + unit(heading1) * after_m, width=LANE_WIDTH_M,
                            line_types=lines, speed_limit=speed_limit)
        net.add_lane(*edge, ChainLane([first, arc, last], LANE_WIDTH_M, lines, speed_limit))
