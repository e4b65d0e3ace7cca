"""Perception targets from the simulator's ground truth, for auxiliary training heads on the
camera tokens (issue 28, item 2; training only, nothing runs at inference):

- :func:`bev_raster`: a bird's-eye semantic raster around the ego (ego frame, heading up):
  drivable area, the route's lane, vehicles, pedestrians;
- :func:`governing_signal`: the signal whose stop line the route crosses next, its state and
  the distance to it along the route;
- :func:`lead_object`: the nearest vehicle or pedestrian in the route's corridor ahead, its
  distance along the route and its speed;
- :func:`frame_targets`: all three for one snapshot, as the dataset's ``perception.*``
  columns (collection records them; schema 2).

Inputs are the scene types of :mod:`drivevla.core.scene` in the world frame; rasters are drawn
with PIL. Pixel ``(row, col)`` covers ego-frame ``x = ahead_m - (row + 0.5) * res``,
``y = half_width_m - (col + 0.5) * res`` (x forward, y left).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from drivevla.core.env import PrivilegedState
from drivevla.core.frames import world_to_ego
from drivevla.core.scene import (
    ActorBox,
    ActorKind,
    LaneGeometry,
    LightState,
    TrafficLightView,
    strip_edges,
)

CHANNELS = ("drivable", "route", "vehicle", "pedestrian")
SUPERSAMPLE = 4  # fine pixels per cell side when rasterising


@dataclass(frozen=True)
class BevGrid:
    """The raster's extent around the ego (metres) and cell size."""

    ahead_m: float = 32.0
    behind_m: float = 8.0
    half_width_m: float = 20.0
    resolution_m: float = 0.5

    @property
    def shape(self) -> tuple[int, int]:
        return (round((self.ahead_m + self.behind_m) / self.resolution_m),
                round(2 * self.half_width_m / self.resolution_m))

    def pixels(self, points_ego: np.ndarray) -> list[tuple[float, float]]:
        """Ego-frame points as PIL ``(col, row)`` coordinates (pixel edges at integers)."""
        pts = np.asarray(points_ego, dtype=np.float64).reshape(-1, 2)
        cols = (self.half_width_m - pts[:, 1]) / self.resolution_m
        rows = (self.ahead_m - pts[:, 0]) / self.resolution_m
        return [(float(c), float(r)) for c, r in zip(cols, rows, strict=True)]

    def centre_of(self, row: int, col: int) -> tuple[float, float]:
        """The ego-frame ``(x, y)`` of a pixel's centre."""
        return (self.ahead_m - (row + 0.5) * self.resolution_m,
                self.half_width_m - (col + 0.5) * self.resolution_m)


def strip_polygon(centerline: np.ndarray, width: float) -> np.ndarray:
    """``(2N, 2)`` outline of a strip ``width`` wide around a polyline (its left edge forward,
    then its right edge back)."""
    right, left = strip_edges(centerline, width)
    return np.concatenate([left, right[::-1]])


def _layer(grid: BevGrid, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Cells at least half covered by the polygons (drawn at SUPERSAMPLE x the resolution,
    each fine pixel on when its centre is inside)."""
    rows, cols = grid.shape
    k = SUPERSAMPLE
    image = Image.new("L", (cols * k, rows * k), 0)
    draw = ImageDraw.Draw(image)
    for poly in polygons:
        if len(poly) >= 3:
            draw.polygon([(c * k - 0.5, r * k - 0.5) for c, r in grid.pixels(poly)], fill=1)
    fine = np.asarray(image, dtype=np.float32).reshape(rows, k, cols, k)
    return fine.mean(axis=(1, 3)) >= 0.5


def bev_raster(grid: BevGrid, ego_xy: np.ndarray, ego_yaw: float,
               lanes: Sequence[LaneGeometry], route_polyline: np.ndarray,
               actors: Sequence[ActorBox], route_width_m: float = 3.5) -> np.ndarray:
    """``(len(CHANNELS), rows, cols)`` bool raster of the scene around the ego."""
    ego_xy = np.asarray(ego_xy, dtype=np.float64)

    def ego(points: np.ndarray) -> np.ndarray:
        return world_to_ego(np.asarray(points, dtype=np.float64), ego_xy, float(ego_yaw))

    drivable = [ego(strip_polygon(lane.centerline, lane.width)) for lane in lanes
                if len(lane.centerline) >= 2]
    route = [ego(strip_polygon(route_polyline, route_width_m))] if len(route_polyline) >= 2 \
        else []
    boxes = {kind: [ego(a.footprint()) for a in actors if a.kind == kind]
             for kind in (ActorKind.VEHICLE, ActorKind.PEDESTRIAN)}
    return np.stack([_layer(grid, drivable), _layer(grid, route),
                     _layer(grid, boxes[ActorKind.VEHICLE]),
                     _layer(grid, boxes[ActorKind.PEDESTRIAN])])


def _route_ahead(route_polyline: np.ndarray, ego_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The route from the ego's projection on: ``(points, arc length from the ego)``."""
    pts = np.asarray(route_polyline, dtype=np.float64)
    seg = np.diff(pts, axis=0)
    length = np.maximum(np.einsum("ij,ij->i", seg, seg), 1e-12)
    t = np.clip(np.einsum("ij,ij->i", ego_xy - pts[:-1], seg) / length, 0.0, 1.0)
    foot = pts[:-1] + t[:, None] * seg
    i = int(np.argmin(np.linalg.norm(foot - ego_xy, axis=1)))
    ahead = np.vstack([foot[i], pts[i + 1:]])
    return ahead, np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(ahead, axis=0),
                                                                   axis=1))])


def _crossing(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> float | None:
    """Where segment a crosses segment b, as a fraction of a (None: they do not cross)."""
    da, db = a1 - a0, b1 - b0
    denom = da[0] * db[1] - da[1] * db[0]
    if abs(denom) < 1e-12:
        return None
    diff = b0 - a0
    ta = (diff[0] * db[1] - diff[1] * db[0]) / denom
    tb = (diff[0] * da[1] - diff[1] * da[0]) / denom
    return float(ta) if 0.0 <= ta <= 1.0 and 0.0 <= tb <= 1.0 else None


def governing_signal(lights: Sequence[TrafficLightView], ego_xy: np.ndarray,
                     route_polyline: np.ndarray, max_m: float = 60.0
                     ) -> tuple[LightState, float] | None:
    """The first signal whose stop line the route crosses within ``max_m`` ahead: its state
    and the distance (m) along the route to the line; None when there is none."""
    ahead, arc = _route_ahead(route_polyline, np.asarray(ego_xy, dtype=np.float64))
    best: tuple[LightState, float] | None = None
    for light in lights:
        line = np.asarray(light.stop_line, dtype=np.float64)
        for k in range(len(ahead) - 1):
            if arc[k] > max_m or (best is not None and arc[k] > best[1]):
                break
            t = _crossing(ahead[k], ahead[k + 1], line[0], line[1])
            if t is not None:
                d = float(arc[k] + t * (arc[k + 1] - arc[k]))
                if d <= max_m and (best is None or d < best[1]):
                    best = (light.state, d)
                break
    return best


def lead_object(actors: Sequence[ActorBox], ego_xy: np.ndarray, route_polyline: np.ndarray,
                corridor_half_m: float = 1.8, max_m: float = 60.0
                ) -> tuple[float, float] | None:
    """The nearest vehicle or pedestrian ahead with a corner in the route's corridor (within
    ``corridor_half_m`` of the route): ``(route distance m to that corner's projection, on
    0.5 m samples; its speed m/s)``; None when there is none within ``max_m``."""
    ahead, arc = _route_ahead(route_polyline, np.asarray(ego_xy, dtype=np.float64))
    keep = arc <= max_m + 10.0
    dense_s = np.arange(0.0, min(arc[keep][-1] if keep.any() else 0.0, max_m) + 1e-9, 0.5)
    if len(dense_s) < 2:
        return None
    centre = np.stack([np.interp(dense_s, arc, ahead[:, 0]),
                       np.interp(dense_s, arc, ahead[:, 1])], axis=1)
    best: tuple[float, float] | None = None
    for actor in actors:
        if actor.kind == ActorKind.STATIC:
            continue
        dist = np.linalg.norm(centre[:, None, :] - actor.footprint()[None, :, :], axis=2)
        nearest = dist.argmin(axis=0)  # each corner's nearest corridor sample
        inside = [int(i) for c, i in enumerate(nearest)
                  if dist[i, c] <= corridor_half_m and i > 0]
        if inside:
            s = float(dense_s[min(inside)])
            if best is None or s < best[0]:
                best = (s, float(actor.speed_mps))
    return best


def frame_targets(state: PrivilegedState, grid: BevGrid | None = None) -> dict[str, Any]:
    """The ``perception.*`` columns of one dataset frame (:mod:`drivevla.datasets.format`)
    from a ground-truth snapshot: the packed raster, the governing signal and the lead
    object (NaN / '' where there is none)."""
    grid = grid or BevGrid()
    ego = state.ego
    xy = np.array([ego.x, ego.y], dtype=np.float64)
    reach = math.hypot(max(grid.ahead_m, grid.behind_m), grid.half_width_m) + 5.0
    near = [lane for lane in state.lanes if len(lane.centerline)
            and float(np.min(np.linalg.norm(lane.centerline - xy, axis=1))) < reach]
    raster = bev_raster(grid, xy, float(ego.yaw), near, state.route_polyline, state.actors)
    signal = governing_signal(state.lights, xy, state.route_polyline)
    lead = lead_object(state.actors, xy, state.route_polyline)
    return {
        "perception.bev": np.packbits(raster).tobytes(),
        "perception.signal_state": "" if signal is None else LightState(signal[0]).value,
        "perception.signal_distance": math.nan if signal is None else signal[1],
        "perception.lead_distance": math.nan if lead is None else lead[0],
        "perception.lead_speed": math.nan if lead is None else lead[1],
    }


def unpack_bev(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The bool raster of a ``perception.bev`` value (``shape``: channels, rows, cols; or
    the concatenated values of a batch, ``shape``: batch, channels, rows, cols)."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=int(np.prod(shape)))
    return bits.reshape(shape).astype(bool)
