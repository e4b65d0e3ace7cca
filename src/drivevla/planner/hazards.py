"""Ground-truth hazard analysis for the privileged expert: what is in the ego's corridor,
which pedestrians will cross it, which signals govern it, and who it must yield to.

Everything works on the ego's planned path (world points every metre, starting ahead of the
ego) and returns :class:`~drivevla.planner.trajectory.SpeedCap` s with a reason tag and the
object they refer to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from drivevla.language.reasons import Reason
from drivevla.planner.trajectory import SpeedCap, follow_lanes, straightest_successor

CORRIDOR_MARGIN_M = 0.5
MIN_GAP_M = 3.0
TIME_GAP_S = 1.2


@dataclass(frozen=True)
class Cap(SpeedCap):
    """A speed cap that names the object it is about."""

    obj: dict = field(default_factory=dict)


def path_arclength(ego_xy: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Arc length (m) of each path point measured from the ego."""
    pts = np.vstack([np.asarray(ego_xy)[None], path])
    return np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))


def binding_cap(caps: list[Cap], decel_mps2: float = 3.0) -> Cap:
    """The cap that constrains the speed now the most (lowest braking envelope at the ego)."""
    return min(caps, key=lambda c: math.sqrt(c.speed_mps**2 + 2.0 * decel_mps2
                                             * max(c.s_m, 0.0)))


def _tangents(path: np.ndarray) -> np.ndarray:
    d = np.gradient(path, axis=0)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)


def describe(obj, kind: str, colour: str | None = None) -> dict:
    d = {"kind": kind, "x": float(obj.position[0]), "y": float(obj.position[1])}
    if colour:
        d["colour"] = colour
    return d


def leader_caps(
    world, path: np.ndarray, s_path: np.ndarray, ego_width: float, colour_of
) -> list[Cap]:
    """Caps for vehicles and pedestrians inside the corridor along ``path``."""
    ego = world.ego
    tangents = _tangents(path)
    caps: list[Cap] = []
    for obj in [*world.npcs, *world.pedestrians]:
        rel = obj.position - ego.position
        if rel @ rel > (s_path[-1] + 10.0) ** 2:
            continue
        d = np.linalg.norm(path - obj.position, axis=1)
        i = int(np.argmin(d))
        half = ego_width / 2 + obj.WIDTH / 2 + CORRIDOR_MARGIN_M
        if d[i] > half or i == 0 and d[0] > 1.0:
            continue
        is_ped = obj in world.pedestrians
        v_along = max(float(obj.speed * np.cos(obj.heading - math.atan2(*tangents[i][::-1]))), 0.0)
        if is_ped:
            v_along = 0.0  # a pedestrian in the corridor is waited for, not followed
        gap = s_path[i] - ego.LENGTH / 2 - obj.LENGTH / 2
        desired = MIN_GAP_M + TIME_GAP_S * v_along
        kind = "pedestrian" if is_ped else "vehicle"
        caps.append(
            Cap(
                max(gap - desired, 0.0),
                v_along if gap > desired else v_along * max(gap, 0.0) / desired,
                Reason.PEDESTRIAN_CROSSING.value if is_ped else Reason.SLOW_LEADER.value,
                describe(obj, kind, None if is_ped else colour_of(obj)),
            )
        )
    return caps


def crossing_pedestrian_caps(
    world, path: np.ndarray, s_path: np.ndarray, ego_width: float, horizon_s: float = 4.0
) -> list[Cap]:
    """Stop before the point where a walking (or about to walk) pedestrian crosses the path."""
    ego = world.ego
    caps: list[Cap] = []
    for ped in world.pedestrians:
        if ped.hit_by_ego:
            continue
        remaining = ped.end_xy - ped.position
        dist_left = float(np.linalg.norm(remaining))
        if dist_left < 0.2:
            continue
        wait = max(ped.start_time_s - world.time_s, 0.0)
        if wait > 3.0:
            continue
        direction = remaining / dist_left
        walk = min(dist_left, ped.walk_speed_mps * max(horizon_s - wait, 0.0))
        samples = ped.position + np.outer(np.linspace(0.0, walk, 12), direction)
        d = np.linalg.norm(path[None, :, :] - samples[:, None, :], axis=2)
        j, i = np.unravel_index(int(np.argmin(d)), d.shape)
        clear = ego_width / 2 + 1.2
        # also hold while the pedestrian is still inside the corridor
        here = np.linalg.norm(path - ped.position, axis=1)
        k = int(np.argmin(here))
        if here[k] < clear:
            i = k
        elif d[j, i] > clear:
            continue
        stop = s_path[i] - ego.LENGTH / 2 - 3.0
        if stop < -2.0:  # already past the crossing point
            continue
        caps.append(
            Cap(max(stop, 0.0), 0.0, Reason.PEDESTRIAN_CROSSING.value, describe(ped, "pedestrian"))
        )
    return caps


def light_caps(world, path: np.ndarray, s_path: np.ndarray, margin_m: float = 1.5) -> list[Cap]:
    """Stop at red (and at yellow when a comfortable stop is possible).

    The stop point keeps the front bumper ``margin_m`` before the line. A light stays binding
    while the ego's tail has not crossed its line (the criteria count the tail crossing), so
    an ego that overshot stops rather than running the light."""
    ego = world.ego
    caps: list[Cap] = []
    c, s = math.cos(ego.heading), math.sin(ego.heading)
    for light in world.lights:
        mid = light.stop_line.mean(axis=0)
        rel = mid - ego.position
        x_rel, y_rel = rel[0] * c + rel[1] * s, -rel[0] * s + rel[1] * c
        d = np.linalg.norm(path - mid, axis=1)
        i = int(np.argmin(d))
        near_ego = abs(y_rel) < 2.5 and -ego.LENGTH / 2 < x_rel < 10.0
        if d[i] > 2.0 and not near_ego:
            continue
        approach = light.facing_yaw - math.pi
        if math.cos(float(ego.heading) - approach) < 0.5 and not (
            d[i] <= 2.0
            and math.cos(
                math.atan2(*(path[min(i + 1, len(path) - 1)] - path[max(i - 1, 0)])[::-1])
                - approach
            )
            >= 0.5
        ):
            continue  # a signal for another approach
        state = world.light_state(light).value
        if state == "green":
            continue
        along = x_rel if near_ego else float(s_path[i])
        dist = along - ego.LENGTH / 2 - margin_m
        v = max(float(ego.speed), 0.1)
        if state == "yellow" and dist + margin_m < v * v / (2 * 3.5):
            continue  # too late to stop comfortably: clear the junction
        caps.append(
            Cap(
                max(dist, 0.0),
                0.0,
                Reason.RED_LIGHT.value,
                {"kind": "traffic_light", "state": state, "x": float(mid[0]), "y": float(mid[1])},
            )
        )
    return caps


def predict_vehicle(vehicle, network, times: np.ndarray) -> np.ndarray:
    """Positions at ``times`` driving on at constant speed along the vehicle's route."""
    route = list(getattr(vehicle, "route", None) or [])

    def choose(net, lane_id):
        for a, b, i in route:
            if a == lane_id[1]:
                lanes = net.graph[a][b]
                k = i if i is not None and i < len(lanes) else min(lane_id[2], len(lanes) - 1)
                return (a, b, k)

        return straightest_successor(net, lane_id)

    # conservative: a vehicle below its lane's limit may pick up speed at 1.5 m/s^2 (a car
    # pulling away from a stop), but it stops where it must (red light, yield line)
    v0 = max(float(vehicle.speed), 0.0)
    limit = float(getattr(vehicle.lane, "speed_limit", 0.0) or v0)
    v_t = np.minimum(v0 + 1.5 * times, max(v0, 0.8 * limit))
    travelled = np.concatenate([[0.0], np.cumsum((v_t[1:] + v_t[:-1]) / 2 * np.diff(times))])
    stop = getattr(vehicle, "stop_distance_m", None)
    if stop is not None:
        travelled = np.minimum(travelled, max(stop, 0.0))
    path = follow_lanes(network, vehicle.lane_index, vehicle.position, travelled[-1] + 2.0, choose)
    s = path_arclength(vehicle.position, path)
    return np.stack(
        [np.interp(travelled, s, path[:, 0]), np.interp(travelled, s, path[:, 1])], axis=1
    )


_PARALLEL_COS = math.cos(math.radians(20.0))


def yield_caps(
    world,
    path: np.ndarray,
    s_path: np.ndarray,
    yield_s: float,
    zone_end_s: float,
    reason: Reason,
    v_cross: float,
    colour_of,
    ignore: set[int],
) -> list[Cap]:
    """Wait at ``yield_s`` (path arc length of the stop point) while another vehicle would
    reach the conflict zone (the path between ``yield_s`` and ``zone_end_s``) within a safe
    time gap of the ego. Vehicles whose ids are in ``ignore`` (e.g. leaders) are skipped."""
    ego = world.ego
    stop_s = yield_s - ego.LENGTH / 2 - 0.5  # where the ego's centre waits
    if stop_s < -2.0:
        return []  # the front is well into the zone: committed, clear it
    times = np.arange(0.0, 7.01, 0.25)
    # ego: from standstill-ish at the stop point, accelerating at 2 m/s^2 up to v_cross
    v0 = float(ego.speed)
    ego_s = []
    s, v = 0.0, v0
    for _ in times:
        ego_s.append(s)
        v = min(v + 2.0 * 0.25, max(v_cross, 3.0))
        s += v * 0.25
    ego_s = np.array(ego_s)
    zone = (s_path >= yield_s) & (s_path <= zone_end_s)
    if not zone.any():
        return []
    zone_pts = path[zone]
    zone_s = s_path[zone]
    # when would the ego occupy each zone point (first and last time within 3 m)?
    t_enter = np.interp(zone_s - 3.0 - ego.LENGTH / 2, ego_s, times, right=np.inf)
    t_leave = np.interp(zone_s + 3.0 + ego.LENGTH / 2, ego_s, times, right=np.inf)
    zone_dir = np.gradient(zone_pts, axis=0) if len(zone_pts) > 1 else np.ones((1, 2))
    zone_dir /= np.maximum(np.linalg.norm(zone_dir, axis=1, keepdims=True), 1e-6)
    for npc in world.npcs:
        if id(npc) in ignore or npc.crashed:
            continue
        if np.linalg.norm(npc.position - zone_pts.mean(axis=0)) > 80.0:
            continue
        pred = predict_vehicle(npc, world.road.network, times)
        d = np.linalg.norm(pred[:, None, :] - zone_pts[None, :, :], axis=2)  # (T, Z)
        close = d < 3.0 + npc.WIDTH / 2
        if close.any():
            # a vehicle moving parallel (or opposite) to the ego's path at the conflict point,
            # e.g. oncoming traffic going straight on the next lane, conflicts only when the
            # footprints would overlap, not merely within 3 m (below a lane width)
            step = np.gradient(pred, axis=0)
            norm = np.linalg.norm(step, axis=1, keepdims=True)
            heading = np.array([math.cos(npc.heading), math.sin(npc.heading)])
            npc_dir = np.where(norm > 1e-3, step / np.maximum(norm, 1e-6), heading)  # (T, 2)
            parallel = np.abs(npc_dir @ zone_dir.T) > _PARALLEL_COS  # (T, Z)
            close &= ~parallel | (d < (ego.WIDTH + npc.WIDTH) / 2 + 0.5)
        if not close.any():
            continue
        for ti, zi in zip(*np.nonzero(close), strict=True):
            t_npc = times[ti]
            if t_enter[zi] - 2.0 <= t_npc <= t_leave[zi] + 1.5:
                return [
                    Cap(
                        max(stop_s, 0.0),
                        0.0,
                        reason.value,
                        describe(npc, "vehicle", colour_of(npc)),
                    )
                ]
    return []
