"""Route tracking along the leaderboard's global plan.

``set_global_plan(global_plan_gps, global_plan_world_coord)`` hands the agent the route as
``[({'lat', 'lon', 'z'}, RoadOption), ...]`` and ``[(carla.Transform, RoadOption), ...]``.
:func:`plan_points` turns either into world-frame points (x east, y north, metres) with one
:class:`HighLevelCommand` each; the GPS plan is preferred (double precision, as the ego's own
GNSS; ``carla.Location`` stores float32).

A plan point's option is the manoeuvre of the stretch that *starts* at that point (CARLA's
global route planner tags each waypoint with the option of the road it lies on, and
``downsample_route`` keeps the first point of each option). :class:`RouteTracker` projects the
ego onto the plan polyline (the embedded simulator's :class:`RoutePath` projection), samples
the target points ahead (``Observation.route.target_points``) and says which manoeuvre comes
next with the embedded simulator's rule: the first non-lane-follow stretch starting within
the look-ahead, announced until the ego has driven past its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivevla.core.frames import world_to_ego
from drivevla.core.types import HighLevelCommand, RouteInfo
from drivevla.language.route_instructions import INTENT_OF_COMMAND
from drivevla.sim_bridge.carla.convert import (
    TOWN_REFERENCE,
    GeoReference,
    carla_transform_to_world,
    gnss_to_world_xy,
    road_option_to_command,
)
from drivevla.sim_bridge.embedded.route_path import RoutePath

_PATH_SPEED_PLACEHOLDER_MPS = 10.0  # RoutePath wants a speed limit; tracking never reads it


def plan_points(
    global_plan_gps: Sequence[tuple[Any, Any]] | None,
    global_plan_world_coord: Sequence[tuple[Any, Any]] | None = None,
    ref: GeoReference = TOWN_REFERENCE,
) -> tuple[np.ndarray, list[HighLevelCommand]]:
    """World points ``(N, 2)`` and the command of each, from the GPS plan (or, without one,
    the world-coordinate plan)."""
    points, commands = [], []
    if global_plan_gps:
        for i, (gps, option) in enumerate(global_plan_gps):
            try:
                lat, lon = float(gps["lat"]), float(gps["lon"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"global_plan_gps[{i}] = {gps!r} is not a {{'lat', 'lon', 'z'}} dict"
                ) from None
            points.append(gnss_to_world_xy([lat, lon, float(gps.get("z", 0.0))], ref,
                                           f"global_plan_gps[{i}]"))
            commands.append(road_option_to_command(option))
    elif global_plan_world_coord:
        for transform, option in global_plan_world_coord:
            x, y, _ = carla_transform_to_world(transform)
            points.append(np.array([x, y]))
            commands.append(road_option_to_command(option))
    else:
        raise ValueError("the global plan is empty: set_global_plan gave no route points")
    return np.array(points, dtype=np.float64).reshape(-1, 2), commands


@dataclass(frozen=True)
class Manoeuvre:
    """The next non-lane-follow stretch: its command and the distance (m) to its start
    (0 or less while driving it)."""

    command: HighLevelCommand
    distance_m: float


class RouteTracker:
    """Progress along the plan, target points ahead and the next manoeuvre."""

    def __init__(self, points_xy: np.ndarray, commands: Sequence[HighLevelCommand],
                 target_points: int = 5, spacing_m: float = 10.0) -> None:
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        if len(commands) != len(pts):
            raise ValueError(f"{len(pts)} plan points but {len(commands)} commands")
        # drop repeated points (as RoutePath does); a dropped point's option starts the
        # stretch at the point kept before it
        keep_points, keep_cmds = [pts[0]], [HighLevelCommand(commands[0])]
        for p, c in zip(pts[1:], commands[1:], strict=True):
            if np.linalg.norm(p - keep_points[-1]) > 1e-9:
                keep_points.append(p)
                keep_cmds.append(HighLevelCommand(c))
            else:
                keep_cmds[-1] = HighLevelCommand(c)
        if len(keep_points) < 2:
            raise ValueError("the global plan has fewer than two distinct points")
        self.path = RoutePath(np.array(keep_points), _PATH_SPEED_PLACEHOLDER_MPS)
        self.cumulative_m = self.path.cum_s
        self.points = self.path.points
        stretch = keep_cmds[:-1]  # the last point starts no stretch
        starts = [i for i in range(len(stretch)) if i == 0 or stretch[i] != stretch[i - 1]]
        self.leg_start_m = self.cumulative_m[starts]
        self.leg_command = [stretch[i] for i in starts]
        self.target_points = int(target_points)
        self.spacing_m = float(spacing_m)
        self.progress_m = 0.0  # the route begins at the ego

    @property
    def length_m(self) -> float:
        return float(self.cumulative_m[-1])

    def update(self, ego_xy: np.ndarray) -> float:
        """Project the ego (world metres) onto the route; returns the progress (m)."""
        self.progress_m, _ = self.path.project(ego_xy, hint_s=self.progress_m)
        return self.progress_m

    def point_at(self, s: float) -> np.ndarray:
        """World point at arc length ``s`` (clamped to the route)."""
        s = float(np.clip(s, 0.0, self.length_m))
        return np.array([np.interp(s, self.cumulative_m, self.points[:, 0]),
                         np.interp(s, self.cumulative_m, self.points[:, 1])])

    def targets_world(self) -> np.ndarray:
        """``(K, 2)`` world points every ``spacing_m`` ahead of the progress."""
        s = self.progress_m
        return np.array([self.point_at(s + self.spacing_m * (i + 1))
                         for i in range(self.target_points)])

    def next_manoeuvre(self, horizon_m: float) -> Manoeuvre | None:
        """The first non-lane-follow stretch that starts within ``horizon_m`` ahead and has
        not been driven past; None when there is none."""
        s = self.progress_m
        idx = int(np.searchsorted(self.leg_start_m, s, side="right") - 1)
        for i in range(max(idx, 0), len(self.leg_command)):
            if self.leg_start_m[i] > s + horizon_m:
                break
            if self.leg_command[i] != HighLevelCommand.LANE_FOLLOW:
                end = self.leg_start_m[i + 1] if i + 1 < len(self.leg_command) else self.length_m
                if s <= end:
                    return Manoeuvre(self.leg_command[i], float(self.leg_start_m[i] - s))
        return None

    def route_info(self, ego_xy: np.ndarray, ego_yaw: float,
                   command_lookahead_m: float = 30.0) -> RouteInfo:
        """The :class:`RouteInfo` at the current progress (call :meth:`update` first)."""
        targets = world_to_ego(self.targets_world(), ego_xy, ego_yaw)
        manoeuvre = self.next_manoeuvre(command_lookahead_m)
        command = HighLevelCommand.LANE_FOLLOW if manoeuvre is None else manoeuvre.command
        return RouteInfo(targets, command, INTENT_OF_COMMAND[command],
                         self.length_m - self.progress_m)
