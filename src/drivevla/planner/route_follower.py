"""A rule-based route follower: pure pursuit on the route polyline, a P speed controller and
an IDM-style gap to whatever is ahead in the ego's corridor, from ground truth.

It is the scripted driver of the main job until the learned model exists, and a building
block for the privileged expert. It reads ``info`` (ground truth) and the route plan of the
:class:`~drivevla.core.env.PrivilegedState` it is built with, and returns a ``Control``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivevla.core.env import PrivilegedState
from drivevla.core.frames import wheel_angle_to_steer, world_to_ego
from drivevla.core.types import Control

WHEELBASE_M = 2.4  # highway-env's bicycle model pivots about LENGTH / 2 of a 4.8 m car


@dataclass
class RouteFollowerConfig:
    lookahead_min_m: float = 4.0
    lookahead_gain_s: float = 0.35
    speed_fraction: float = 0.9  # of the speed limit
    max_lateral_accel_mps2: float = 2.5
    time_gap_s: float = 1.5
    min_gap_m: float = 5.0
    kp_speed: float = 0.5
    max_steer_deg: float = 35.0
    stop_for_red: bool = True


class RouteFollower:
    """Follows the episode's route; brakes for objects ahead and (optionally) red lights."""

    def __init__(
        self, privileged: PrivilegedState, config: RouteFollowerConfig | None = None
    ) -> None:
        # the plan: ``point_at(s)``
        self.route = privileged.live_backend("the route follower").scenario.route
        self.cfg = config or RouteFollowerConfig()

    def reset(self) -> None:
        pass

    def target_speed(self, info: dict) -> float:
        """Desired speed (m/s) from the limit, the route curvature ahead and obstacles."""
        ego = info["ego"]
        v = ego["speed_mps"]
        v_des = self.cfg.speed_fraction * info["speed_limit_mps"]
        # curvature over the next 40 m bounds the speed through turns
        route = self.route
        s0 = info["route_progress_m"]
        pts = np.array([route.point_at(s0 + d) for d in range(0, 45, 5)])
        headings = np.unwrap(np.arctan2(np.diff(pts[:, 1]), np.diff(pts[:, 0])))
        curvature = np.max(np.abs(np.diff(headings))) / 5.0 if len(headings) > 1 else 0.0
        if curvature > 1e-3:
            v_des = min(v_des, math.sqrt(self.cfg.max_lateral_accel_mps2 / curvature))
        gap = self._gap_ahead(info)
        if gap is not None:
            gap_dist, lead_speed = gap
            safe = self.cfg.min_gap_m + v * self.cfg.time_gap_s
            v_des = min(v_des, max(0.0, lead_speed + (gap_dist - safe) * 0.5))
            if gap_dist < self.cfg.min_gap_m:
                v_des = 0.0
        return max(v_des, 0.0)

    def _gap_ahead(self, info: dict) -> tuple[float, float] | None:
        """(distance m, speed m/s) of the nearest blocker in a corridor along the route."""
        ego = info["ego"]
        route = self.route
        s0 = info["route_progress_m"]
        corridor = np.array([route.point_at(s0 + d) for d in np.arange(0.0, 60.0, 2.0)])
        best: tuple[float, float] | None = None
        for a in info["actors"]:
            if a["kind"] == "static":
                continue
            p = np.array([a["x"], a["y"]])
            d = np.linalg.norm(corridor - p, axis=1)
            i = int(np.argmin(d))
            if d[i] < 1.6 + a["width"] / 2 and i > 0:
                dist = i * 2.0 - a["length"] / 2 - ego["length"] / 2
                rel = world_to_ego(p[None], np.array([ego["x"], ego["y"]]), ego["yaw"])[0]
                if rel[0] <= 0:
                    continue
                if best is None or dist < best[0]:
                    best = (dist, a["speed_mps"])
        if self.cfg.stop_for_red:
            for lt in info["traffic_lights"]:
                if lt["state"] == "green":
                    continue
                mid = np.mean(np.array(lt["stop_line"]), axis=0)
                d = np.linalg.norm(corridor - mid, axis=1)
                i = int(np.argmin(d))
                if d[i] < 2.5 and i > 0:
                    dist = i * 2.0 - ego["length"] / 2
                    brake_needed = ego["speed_mps"] ** 2 / (2 * dist) if dist > 0 else 99
                    if lt["state"] == "yellow" and brake_needed > 4.0:
                        continue  # too late to stop comfortably: clear the junction
                    if best is None or dist < best[0]:
                        best = (dist + self.cfg.min_gap_m, 0.0)
        return best

    def control(self, info: dict) -> Control:
        ego = info["ego"]
        v = ego["speed_mps"]
        lookahead = self.cfg.lookahead_min_m + self.cfg.lookahead_gain_s * v
        target = self.route.point_at(info["route_progress_m"] + lookahead)
        local = world_to_ego(target[None], np.array([ego["x"], ego["y"]]), ego["yaw"])[0]
        ld2 = max(float(local @ local), 1e-6)
        wheel = math.atan(2.0 * WHEELBASE_M * local[1] / ld2)
        steer = wheel_angle_to_steer(wheel, math.radians(self.cfg.max_steer_deg))
        v_des = self.target_speed(info)
        err = v_des - v
        if v_des < 0.2 and v < 1.0:
            return Control(0.0, steer, 1.0)
        if err >= 0:
            return Control(float(np.clip(self.cfg.kp_speed * err, 0.0, 1.0)), steer, 0.0)
        return Control(0.0, steer, float(np.clip(-0.35 * err, 0.0, 1.0)))
