"""Paths on the lane graph and speed profiles along them, turned into ``Decision`` s.

A plan is a world-frame path sampled every metre plus speed caps at points along it (stop
lines, leaders, curves). :func:`plan_decision` rolls a speed profile forward under
acceleration limits and a braking envelope and samples the ego-frame waypoints a
``Decision`` carries (0.5 s apart, 3 s by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from highway_env.road.road import RoadNetwork

from drivevla.core.frames import world_to_ego
from drivevla.core.types import Decision, MetaAction

LaneId = tuple[str, str, int]
PATH_STEP_M = 1.0
WAYPOINT_DT_S = 0.5
N_WAYPOINTS = 6


def straightest_successor(network: RoadNetwork, lane_id: LaneId) -> LaneId | None:
    """The successor lane continuing most straight on (same lane index when possible)."""
    a, b, i = lane_id
    nexts = network.graph.get(b, {})
    if not nexts:
        return None
    lane = network.get_lane(lane_id)
    h_end = lane.heading_at(lane.length)
    best, best_cost = None, math.inf
    for c, lanes in nexts.items():
        for k, nl in enumerate(lanes):
            dh = abs(
                (nl.heading_at(min(8.0, nl.length)) - h_end + math.pi) % (2 * math.pi) - math.pi
            )
            cost = dh + 0.5 * float(
                np.linalg.norm(nl.position(0, 0) - lane.position(lane.length, 0))
            )
            if cost < best_cost:
                best, best_cost = (b, c, k), cost
    return best


def follow_lanes(
    network: RoadNetwork,
    lane_id: LaneId,
    position: np.ndarray,
    length_m: float,
    choose_next: Callable[[RoadNetwork, LaneId], LaneId | None] = straightest_successor,
) -> np.ndarray:
    """World points every metre along lane centres from the projection of ``position``."""
    lane = network.get_lane(lane_id)
    s = max(lane.local_coordinates(position)[0], 0.0)
    pts, remaining, current = [], length_m, lane_id
    while remaining > 0 and current is not None:
        lane = network.get_lane(current)
        avail = lane.length - s
        if avail > 0:
            take = min(avail, remaining)
            n = max(int(take / PATH_STEP_M), 1)
            for k in range(n):
                pts.append(lane.position(s + (k + 1) * take / n, 0.0))
            remaining -= take
        current, s = choose_next(network, current), 0.0
    if not pts:
        pts.append(lane.position(lane.length, 0.0))
    if remaining > 0:  # dead end: extend straight on
        last = pts[-1]
        h = lane.heading_at(lane.length)
        d = np.array([math.cos(h), math.sin(h)])
        pts += [last + d * (k + 1) for k in range(int(remaining))]
    return np.array(pts)


def route_points(route, s: np.ndarray) -> np.ndarray:
    """Points of ``route`` (``point_at(s)``, ``length_m``) at route distances ``s``; past the
    goal, straight on along the route's last 2 m (clamping them all to the goal would fold
    the path back at the goal: a spurious hairpin the speed plan braked for)."""
    s = np.asarray(s, dtype=np.float64)
    length = float(route.length_m)
    pts = np.array([route.point_at(si) for si in s])
    beyond = s > length
    if beyond.any():
        end = route.point_at(length)
        back = end - route.point_at(length - 2.0)
        t = back / max(float(np.linalg.norm(back)), 1e-9)
        pts[beyond] = end + np.outer(s[beyond] - length, t)
    return pts


def route_lateral(route, xy: np.ndarray, s_route: float) -> float:
    """Signed lateral offset (m, left +) of ``xy`` from ``route`` at route distance
    ``s_route`` (across the route's direction over the next metre)."""
    p0 = route.point_at(s_route)
    p1 = route.point_at(s_route + 1.0)
    t = (p1 - p0) / max(np.linalg.norm(p1 - p0), 1e-6)
    rel = np.asarray(xy, dtype=np.float64) - p0
    return float(t[0] * rel[1] - t[1] * rel[0])


def route_path_ahead(route, s_route: float, lateral: float, speed_mps: float,
                     length_m: float) -> np.ndarray:
    """The route ``length_m`` ahead of ``s_route``, 1 m apart, starting ``lateral`` m to its
    left and blending onto it over 2.5 s of driving (20-45 m; smoothstep: the current offset
    is left tangentially)."""
    blend = float(np.clip(2.5 * speed_mps, 20.0, 45.0))
    d = np.arange(1.0, length_m + 1.0)
    pts = route_points(route, s_route + d)
    tang = np.gradient(pts, axis=0)
    tang /= np.maximum(np.linalg.norm(tang, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tang[:, 1], tang[:, 0]], axis=1)
    w = np.clip(1.0 - d / blend, 0.0, 1.0)
    w = w * w * (3 - 2 * w)
    return pts + normal * (lateral * w)[:, None]


def path_curvature(path: np.ndarray) -> np.ndarray:
    """Unsigned curvature (1/m) at each point of a path sampled about every metre."""
    if len(path) < 3:
        return np.zeros(len(path))
    d = np.diff(path, axis=0)
    ds = np.linalg.norm(d, axis=1)
    h = np.arctan2(d[:, 1], d[:, 0])
    # repeated points (a path clamped at the route's goal) have no heading: carry the last
    # one, so the end of a route does not read as a hairpin
    valid = ds > 1e-3
    if not valid.any():
        return np.zeros(len(path))
    idx = np.maximum.accumulate(np.where(valid, np.arange(len(ds)), 0))
    first = int(np.argmax(valid))
    idx[:first] = first
    h = np.unwrap(h[idx])
    k = np.abs(np.diff(h)) / np.maximum(ds[1:], 1e-6)
    k[~valid[1:]] = 0.0
    # smooth over ~5 m so a polyline kink does not read as a hairpin
    k = np.convolve(k, np.ones(5) / 5.0, mode="same")
    return np.concatenate([[k[0]], k, [k[-1]]])


def curvature_speeds(path: np.ndarray, lateral_accel_mps2: float, speed_limit_mps: float
                     ) -> list[tuple[int, float]]:
    """(point index, speed) where the path's curvature (every 4th point) holds the speed
    below the limit at ``lateral_accel_mps2``: ``sqrt(a / k)``."""
    k = path_curvature(path)
    out = []
    for i in range(0, len(path), 4):
        if k[i] > 1e-3:
            v = math.sqrt(lateral_accel_mps2 / k[i])
            if v < speed_limit_mps:
                out.append((i, v))
    return out


def route_road_curvature(route, network: RoadNetwork) -> tuple[np.ndarray, np.ndarray]:
    """The curvature (1/m) of the road under a lane-level route: ``(s, k)`` sampled about every
    metre of the route polyline.

    It is the curvature of the lane centrelines the route's legs run on (heading change per
    metre along each lane, smoothed over ~5 m like :func:`path_curvature`), so a lane change
    (a leg's lateral offset, the next leg's lane beside the last) on a straight road reads as
    straight; junction connectors, ring lanes and ramps read as the bends they are. Heading
    steps where one lane joins the next are not counted."""
    s_all, k_all = [], []
    for leg, start in zip(route.legs, route.leg_start_m, strict=True):
        lane = network.get_lane(leg.lane)
        n = max(int(math.ceil(leg.s_end - leg.s_start)), 2)
        ls = np.linspace(leg.s_start, leg.s_end, n + 1)
        h = np.unwrap([lane.heading_at(x) for x in ls])
        ds = np.maximum(np.diff(ls), 1e-6)
        k = np.abs(np.diff(h)) / ds
        s_all.append(float(start) + (ls[:-1] + ls[1:]) / 2 - leg.s_start)
        k_all.append(k)
    s, k = np.concatenate(s_all), np.concatenate(k_all)
    order = np.argsort(s, kind="stable")
    s, k = s[order], np.convolve(k[order], np.ones(5) / 5.0, mode="same")
    return s, k


def road_curvature_ahead(
    s_road: np.ndarray, k_road: np.ndarray, s_from: float, s_to: float
) -> float:
    """The largest road curvature (1/m) between route distances ``s_from`` and ``s_to``."""
    lo, hi = np.searchsorted(s_road, [s_from, s_to])
    if hi <= lo:
        return float(np.interp(s_from, s_road, k_road)) if len(s_road) else 0.0
    return float(k_road[lo:hi].max())


@dataclass(frozen=True)
class SpeedCap:
    """Speed must be at most ``speed_mps`` from ``s_m`` (metres along the path) on."""

    s_m: float
    speed_mps: float
    tag: str = ""


def braking_envelope(s_grid: np.ndarray, caps: Sequence[SpeedCap], decel_mps2: float) -> np.ndarray:
    """Max speed at each s so that every cap ahead is met braking at ``decel_mps2``."""
    v = np.full(len(s_grid), np.inf)
    for cap in caps:
        dist = np.maximum(cap.s_m - s_grid, 0.0)
        v = np.minimum(v, np.sqrt(cap.speed_mps**2 + 2.0 * decel_mps2 * dist))
    return v


def plan_decision(
    path_world: np.ndarray,
    ego_xy: np.ndarray,
    ego_yaw: float,
    v0: float,
    caps: Sequence[SpeedCap],
    *,
    accel_mps2: float = 2.0,
    decel_mps2: float = 3.0,
    meta_action: MetaAction | None = None,
    reason: str | None = None,
    explanation: str | None = None,
    dt_s: float = WAYPOINT_DT_S,
    n_waypoints: int = N_WAYPOINTS,
) -> Decision:
    """Roll a speed profile along ``path_world`` (starting at the ego) and sample waypoints."""
    path = np.vstack([np.asarray(ego_xy, dtype=np.float64)[None], path_world])
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s_grid = np.concatenate([[0.0], np.cumsum(seg)])
    envelope = braking_envelope(s_grid, caps, decel_mps2)
    sim_dt = 0.1
    s, v = 0.0, max(v0, 0.0)
    samples_s, samples_v = [], []
    steps_per = int(round(dt_s / sim_dt))
    for k in range(n_waypoints * steps_per):
        v_allowed = float(np.interp(s, s_grid, envelope))
        if v < v_allowed:
            v = min(v + accel_mps2 * sim_dt, v_allowed)
        else:  # brake towards the envelope (harder when the envelope demands it)
            v = max(v_allowed, v - 2.0 * decel_mps2 * sim_dt, 0.0)
        s += v * sim_dt
        if (k + 1) % steps_per == 0:
            samples_s.append(min(s, s_grid[-1]))
            samples_v.append(v)
    xs = np.interp(samples_s, s_grid, path[:, 0])
    ys = np.interp(samples_s, s_grid, path[:, 1])
    wps = world_to_ego(np.stack([xs, ys], axis=1), ego_xy, ego_yaw)
    return Decision(
        wps,
        np.array(samples_v),
        dt_s=dt_s,
        meta_action=meta_action,
        reason=reason,
        explanation=explanation,
    )
