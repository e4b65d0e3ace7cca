"""CARLA Leaderboard 2.0 infraction criteria, independent of any simulator.

The embedded simulator calls :meth:`RouteCriteria.update` once per control tick with a
:class:`CriteriaTick` (what the ego touched, whether it is outside its route lanes or driving
the wrong way, the traffic lights around it, the mean speed of the surrounding traffic). The
criteria turn these into :class:`~drivevla.core.types.Infraction` records and decide
when the route ends; :meth:`RouteCriteria.result` gives the
:class:`~drivevla.core.types.RouteResult` with ``DS = RC * P``.

The rules follow ``/work/shared/METRICS.md`` and the reference implementation
(carla-simulator/leaderboard, branch ``leaderboard-2.0``: ``statistics_manager.py``;
scenario_runner ``atomic_criteria.py``):

* collisions (``CollisionTest``): a hit with the same actor as the last counted one is ignored
  until 5 s have passed; any hit while the ego is within 5 m of the last counted collision's
  position is ignored; hits while the ego is slower than 0.1 m/s are ignored.
* red lights (``RunningRedLightTest``): the probe is the ego's *tail* segment (from 0.8 of
  the half-length behind the centre to 1 m behind the rear bumper); a red light is run when
  that segment crosses the light's stop line while the ego is within 15 m of the light. At
  10 Hz a fast ego could jump the short tail segment over the line, so the segment is swept
  from the previous tick's rear end to the current tail point.
* outside route lanes / wrong way (``OutsideRouteLanesTest``): one record whose factor is
  ``1 - pct/100``; by default ``pct`` is the share of the *route progress* made while flagged
  (as the leaderboard does); ``outside_lanes_basis="driven"`` uses odometry instead.
* minimum speed (``MinimumSpeedRouteTest``): checkpoint values ``100 * mean ego speed / mean
  traffic speed`` (rounded to 0.01 as the leaderboard does), factor ``1 - 0.3 (1 - v/100)``
  when ``v < 100``; the last checkpoint is evaluated when the route ends beyond 95 %.
* route deviation (``InRouteTest``), agent blocked (``ActorBlockedTest``) and route timeout end
  the route without a factor; route completion (``RouteCompletionTest``) snaps to 100 above
  99 % within 10 m of the end.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from drivevla.core.types import Infraction, InfractionType, RouteResult

logger = logging.getLogger(__name__)

PROTOCOL = "CARLA Leaderboard 2.0 (criteria)"

# Constant factors per event (leaderboard-2.0 ``PENALTY_VALUE_DICT``).
PENALTY_FACTORS: dict[InfractionType, float] = {
    InfractionType.COLLISION_PEDESTRIAN: 0.50,
    InfractionType.COLLISION_VEHICLE: 0.60,
    InfractionType.COLLISION_STATIC: 0.65,
    InfractionType.RED_LIGHT: 0.70,
    InfractionType.STOP_SIGN: 0.80,
    InfractionType.SCENARIO_TIMEOUT: 0.70,
    InfractionType.YIELD_EMERGENCY: 0.70,
}
# ``PENALTY_PERC_DICT``: min speed [0.7, "decreases"]: factor 1 - (1 - 0.7) * (1 - v/100).
MIN_SPEED_MAX_PENALTY = 0.70

COLLISION_KINDS: dict[str, InfractionType] = {
    "vehicle": InfractionType.COLLISION_VEHICLE,
    "pedestrian": InfractionType.COLLISION_PEDESTRIAN,
    "static": InfractionType.COLLISION_STATIC,
}

# Route statuses, spelled as the leaderboard's statistics manager writes them.
STATUS_RUNNING = "Started"
STATUS_COMPLETED = "Completed"
STATUS_PERFECT = "Perfect"
STATUS_DEVIATED = "Failed - Agent deviated from the route"
STATUS_BLOCKED = "Failed - Agent got blocked"
STATUS_TIMED_OUT = "Failed - Agent timed out"

# Absorbs float round-off when simulation times are sums of a fixed step (0.1 s is inexact).
_TIME_EPS_S = 1e-6
# Tail probe of the red-light test: from -0.8 * half-length to -(half-length + 1 m).
_TAIL_CLOSE_FRACTION = 0.8
_TAIL_FAR_EXTRA_M = 1.0
# How strongly RoutePath.project prefers candidates near the hint (m of distance per m of arc)
# so that, where the route passes close to itself, the projection stays on the current pass.
_CONTINUITY_WEIGHT = 0.02
_OUTSIDE_LANES_BASES = ("route", "driven")


@dataclass(frozen=True)
class CriteriaConfig:
    """Thresholds of the criteria (defaults: CARLA Leaderboard 2.0). Metres, seconds, m/s."""

    collision_same_actor_window_s: float = 5.0
    collision_min_separation_m: float = 5.0
    collision_min_ego_speed_mps: float = 0.1
    # Documented here; the env applies them when it computes the tick's flags.
    outside_lane_tolerance_m: float = 0.5
    wrong_way_angle_deg: float = 120.0
    red_light_check_distance_m: float = 15.0
    route_deviation_m: float = 30.0
    route_deviation_far_m: float = 15.0
    route_deviation_far_share: float = 0.30
    blocked_speed_mps: float = 0.1
    blocked_time_s: float = 180.0
    timeout_base_s: float = 300.0
    timeout_speed_fraction: float = 0.10  # route timeout = base + length / (fraction * limit)
    min_speed_checkpoints: int = 4
    enable_min_speed: bool = True  # Bench2Drive switches the min-speed penalty off
    completion_snap_fraction: float = 0.99
    completion_snap_distance_m: float = 10.0
    # "route": outside-lanes share of route progress (leaderboard); "driven": of odometry.
    outside_lanes_basis: str = "route"
    # Half-width (m of arc) of the route window searched around the previous projection.
    projection_window_m: float = 20.0

    def __post_init__(self) -> None:
        positive = (
            "collision_same_actor_window_s",
            "collision_min_separation_m",
            "red_light_check_distance_m",
            "route_deviation_m",
            "route_deviation_far_m",
            "blocked_time_s",
            "timeout_speed_fraction",
            "completion_snap_distance_m",
            "projection_window_m",
        )
        for key in positive:
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"CriteriaConfig.{key}={value!r} must be a finite number > 0")
        non_negative = (
            "collision_min_ego_speed_mps",
            "outside_lane_tolerance_m",
            "blocked_speed_mps",
            "timeout_base_s",
        )
        for key in non_negative:
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"CriteriaConfig.{key}={value!r} must be a finite number >= 0")
        for key in ("route_deviation_far_share", "completion_snap_fraction"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and 0 < value <= 1):
                raise ValueError(f"CriteriaConfig.{key}={value!r} must be in (0, 1]")
        if not (0 < self.wrong_way_angle_deg <= 180):
            raise ValueError(
                f"CriteriaConfig.wrong_way_angle_deg={self.wrong_way_angle_deg!r} "
                "must be in (0, 180]"
            )
        if isinstance(self.min_speed_checkpoints, bool) or not (
            isinstance(self.min_speed_checkpoints, int) and self.min_speed_checkpoints >= 1
        ):
            raise ValueError(
                f"CriteriaConfig.min_speed_checkpoints={self.min_speed_checkpoints!r} "
                "must be an integer >= 1"
            )
        if self.outside_lanes_basis not in _OUTSIDE_LANES_BASES:
            raise ValueError(
                f"CriteriaConfig.outside_lanes_basis={self.outside_lanes_basis!r}; "
                f"valid: {list(_OUTSIDE_LANES_BASES)}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CriteriaConfig:
        """Build from a mapping; unknown keys raise a ``ValueError`` listing the valid keys."""
        valid = sorted(f.name for f in fields(cls))
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"unknown criteria key(s) {unknown}; valid keys: {valid}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class RoutePath:
    """The route centreline as a polyline in world metres, parametrised by arc length ``s``."""

    def __init__(self, points: np.ndarray, speed_limit_mps: float) -> None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 2:
            raise ValueError(f"route points must be (N >= 2, 2) world metres, got {pts.shape}")
        if not np.isfinite(pts).all():
            raise ValueError("route points contain NaN or inf")
        speed_limit_mps = float(speed_limit_mps)
        if not (math.isfinite(speed_limit_mps) and speed_limit_mps > 0):
            raise ValueError(f"speed_limit_mps={speed_limit_mps!r} must be a finite number > 0")
        # Drop repeated points: zero-length segments have no direction.
        step = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        keep = np.concatenate([[True], step > 1e-9])
        pts = pts[keep]
        if pts.shape[0] < 2:
            raise ValueError("route has zero length (all points coincide)")
        seg = np.diff(pts, axis=0)
        seg_len = np.linalg.norm(seg, axis=1)
        self.points = pts
        self.speed_limit_mps = speed_limit_mps
        self.cum_s = np.concatenate([[0.0], np.cumsum(seg_len)])
        self.length_m = float(self.cum_s[-1])
        self._seg_len = seg_len
        self._ax = pts[:-1, 0].copy()
        self._ay = pts[:-1, 1].copy()
        self._dx = seg[:, 0] / seg_len
        self._dy = seg[:, 1] / seg_len
        self._n_seg = seg_len.shape[0]

    @property
    def end_xy(self) -> np.ndarray:
        return self.points[-1].copy()

    def project(
        self, xy: Any, hint_s: float | None = None, window_m: float = 40.0
    ) -> tuple[float, float]:
        """Project a world point onto the route: ``(s along route in m, distance to route in m)``.

        Without ``hint_s`` the whole route is searched (nearest point). With ``hint_s`` only the
        segments within ``window_m`` of arc around it are searched, which is cheap and keeps the
        projection on the current pass where the route comes back near itself (roundabouts,
        loops). Among those, candidates are ranked by ``distance + 0.02 * |s - hint_s|``, so
        where two passes are about equally near the current one wins (this shifts ``s`` towards
        the hint by about 2 % of the lateral distance; the returned distance is the true one).
        """
        px, py = float(xy[0]), float(xy[1])
        if hint_s is None:
            i0, i1 = 0, self._n_seg
        else:
            lo, hi = hint_s - window_m, hint_s + window_m
            i0 = max(int(np.searchsorted(self.cum_s, lo, side="left")) - 1, 0)
            i1 = min(int(np.searchsorted(self.cum_s, hi, side="left")), self._n_seg)
            if i0 >= self._n_seg:  # hint beyond the end
                i0 = self._n_seg - 1
            i1 = max(i1, i0 + 1)
        ax, ay = self._ax[i0:i1], self._ay[i0:i1]
        dx, dy = self._dx[i0:i1], self._dy[i0:i1]
        t = np.clip((px - ax) * dx + (py - ay) * dy, 0.0, self._seg_len[i0:i1])
        ex = px - (ax + t * dx)
        ey = py - (ay + t * dy)
        dist = np.sqrt(ex * ex + ey * ey)
        s_all = self.cum_s[i0:i1] + t
        if hint_s is None:
            k = int(np.argmin(dist))
        else:
            k = int(np.argmin(dist + _CONTINUITY_WEIGHT * np.abs(s_all - hint_s)))
        return float(s_all[k]), float(dist[k])

    def _segment_at(self, s: float) -> tuple[int, float]:
        s = min(max(float(s), 0.0), self.length_m)
        i = int(np.searchsorted(self.cum_s, s, side="right")) - 1
        i = min(max(i, 0), self._n_seg - 1)
        return i, s - float(self.cum_s[i])

    def point_at(self, s: float) -> np.ndarray:
        """World point (2,) at arc length ``s`` (clamped to [0, length])."""
        i, ds = self._segment_at(s)
        return np.array([self._ax[i] + ds * self._dx[i], self._ay[i] + ds * self._dy[i]])

    def heading_at(self, s: float) -> float:
        """Route direction (world yaw, rad) at arc length ``s``."""
        i, _ = self._segment_at(s)
        return math.atan2(self._dy[i], self._dx[i])


@dataclass
class LightCrossing:
    """A traffic light near the ego and the stop line it governs (world metres).

    ``light_xy`` is the reference point of the 15 m check distance; the leaderboard measures to
    the centre of the light's trigger volume, which sits at the stop line, so pass the stop
    line's midpoint when the lamp housing stands elsewhere. ``approach_yaw`` (optional): the
    driving direction of the lanes the light controls; when given, a crossing only counts
    while the ego heads within 90 degrees of it (the leaderboard's lane-direction check).
    """

    light_id: int
    state: str  # "red" / "yellow" / "green" (a scene.LightState also works)
    stop_line: np.ndarray  # (2, 2)
    light_xy: np.ndarray  # (2,)
    approach_yaw: float | None = None


@dataclass
class CriteriaTick:
    """What the env reports after one control tick (world frame, SI units)."""

    time_s: float
    x: float
    y: float
    yaw: float
    speed_mps: float
    ego_length: float
    ego_width: float
    # (actor_id, kind) for actors the ego's box touches this tick; kind: vehicle/pedestrian/static
    collisions: list[tuple[int, str]] = field(default_factory=list)
    outside_route_lanes: bool = False  # ego centre outside the route's lanes beyond tolerance
    wrong_way: bool = False  # ego heading more than wrong_way_angle_deg off its lane
    lights: list[LightCrossing] = field(default_factory=list)
    traffic_speed_mps: float | None = None  # mean speed of surrounding traffic; None: no traffic


def _orientation(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def segments_intersect(
    p1: tuple[float, float],
    p2: tuple[float, float],
    q1: tuple[float, float],
    q2: tuple[float, float],
) -> bool:
    """Whether closed segments p1-p2 and q1-q2 share a point (touching counts)."""
    d1 = _orientation(q1[0], q1[1], q2[0], q2[1], p1[0], p1[1])
    d2 = _orientation(q1[0], q1[1], q2[0], q2[1], p2[0], p2[1])
    d3 = _orientation(p1[0], p1[1], p2[0], p2[1], q1[0], q1[1])
    d4 = _orientation(p1[0], p1[1], p2[0], p2[1], q2[0], q2[1])
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on_segment(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    return (
        (d1 == 0 and on_segment(q1, q2, p1))
        or (d2 == 0 and on_segment(q1, q2, p2))
        or (d3 == 0 and on_segment(p1, p2, q1))
        or (d4 == 0 and on_segment(p1, p2, q2))
    )


class RouteCriteria:
    """Leaderboard 2.0 criteria for one route; feed it one :class:`CriteriaTick` per tick.

    ``update`` returns the infractions raised by that tick. The route ends (``done``) on
    completion, route deviation, agent blocked or route timeout; ``status`` then reads like the
    leaderboard's (``Perfect``, ``Completed``, ``Failed - Agent deviated from the route``, ...).
    ``terminate`` ends it from outside (the env stopped for another reason).
    """

    def __init__(
        self,
        route: RoutePath,
        *,
        route_id: str,
        scenario: str,
        intent: str,
        seed: int,
        config: CriteriaConfig | None = None,
        dt_s: float,
    ) -> None:
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise ValueError(f"dt_s={dt_s!r} must be a finite number > 0")
        self.route = route
        self.route_id = str(route_id)
        self.scenario = scenario
        self.intent = intent
        self.seed = int(seed)
        self.config = config if config is not None else CriteriaConfig()
        self.dt_s = float(dt_s)
        cfg = self.config
        self.timeout_s = cfg.timeout_base_s + route.length_m / (
            cfg.timeout_speed_fraction * route.speed_limit_mps
        )
        self._checkpoint_m = route.length_m / cfg.min_speed_checkpoints
        self._end_x, self._end_y = (float(v) for v in route.points[-1])

        self.done = False
        self.status = STATUS_RUNNING
        self.checkpoint_values: list[float | None] = []  # None: no traffic in that section

        self._events: list[Infraction] = []
        self._started = False
        self._t0 = 0.0  # simulation start: one step before the first tick
        self._last_time = 0.0
        self._x = self._y = 0.0
        self._prev_tail_far: tuple[float, float] | None = None
        self._s_hint = 0.0
        self._s_max = 0.0
        self._completed = False
        self._driven_m = 0.0
        # outside lanes / wrong way
        self._outside_m = 0.0
        self._outside_total_m = 0.0
        self._outside_first: tuple[float, float, float] | None = None
        # route deviation (distance progressed while farther than route_deviation_far_m)
        self._far_m = 0.0
        # collisions
        self._col_id: int | None = None
        self._col_time = 0.0
        self._col_xy: tuple[float, float] | None = None
        # red lights counted on the current pass: light id -> reference position
        self._counted_lights: dict[int, tuple[float, float]] = {}
        # min speed, current section
        self._ms_ego_sum = 0.0
        self._ms_traffic_sum = 0.0
        self._ms_points = 0
        # agent blocked
        self._last_moving_time = 0.0

    # ----------------------------------------------------------------------------- queries

    @property
    def progress_m(self) -> float:
        """Route length passed so far (monotone), metres."""
        return self._s_max

    @property
    def route_completion(self) -> float:
        """Route completion in percent, rounded to 0.01 as the leaderboard does."""
        if self._completed:
            return 100.0
        return round(min(100.0 * self._s_max / self.route.length_m, 100.0), 2)

    @property
    def outside_lanes_pct(self) -> float:
        if self._outside_total_m <= 0:
            return 0.0
        return min(100.0 * self._outside_m / self._outside_total_m, 100.0)

    @property
    def infractions(self) -> list[Infraction]:
        """Every infraction so far, including a provisional outside-lanes record while running."""
        items = list(self._events)
        if not self.done and self._outside_m > 0:
            items.append(self._outside_lanes_infraction())
        return items

    @property
    def infraction_penalty(self) -> float:
        penalty = 1.0
        for infraction in self.infractions:
            penalty *= infraction.penalty
        return penalty

    def result(self) -> RouteResult:
        """The route's :class:`RouteResult` (final once ``done``)."""
        infractions = self.infractions
        penalty = 1.0
        for infraction in infractions:
            penalty *= infraction.penalty
        return RouteResult(
            route_id=self.route_id,
            scenario=self.scenario,
            intent=self.intent,
            seed=self.seed,
            route_length_m=self.route.length_m,
            route_completion=self.route_completion,
            infraction_penalty=penalty,
            infractions=infractions,
            status=self.status,
            duration_s=(self._last_time - self._t0) if self._started else 0.0,
            driven_distance_m=self._driven_m,
            outside_lanes_pct=self.outside_lanes_pct,
        )

    # ------------------------------------------------------------------------------ update

    def update(self, tick: CriteriaTick) -> list[Infraction]:
        """Evaluate one tick; returns the infractions it raised (empty once ``done``)."""
        if self.done:
            return []
        cfg = self.config
        t, x, y = float(tick.time_s), float(tick.x), float(tick.y)
        if not (math.isfinite(t) and math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"CriteriaTick has a non-finite time/position: {t}, {x}, {y}")
        speed = abs(float(tick.speed_mps))
        if not self._started:
            self._started = True
            self._t0 = t - self.dt_s
            self._last_moving_time = t
            step = 0.0
            s, dist = self.route.project((x, y))
        else:
            step = math.hypot(x - self._x, y - self._y)
            s, dist = self.route.project((x, y), self._s_hint, cfg.projection_window_m)
        self._x, self._y, self._last_time = x, y, t
        self._s_hint = s
        self._driven_m += step

        new: list[Infraction] = []
        self._check_collisions(tick, t, x, y, speed, new)
        self._check_red_lights(tick, t, x, y, new)

        # Route progress: the furthest projection made while reasonably close to the route.
        progress = 0.0
        if dist <= cfg.route_deviation_m and s > self._s_max:
            progress = s - self._s_max
            self._s_max = s

        # Outside route lanes / wrong way: distance made while flagged, over all distance made.
        increment = progress if cfg.outside_lanes_basis == "route" else step
        self._outside_total_m += increment
        if tick.outside_route_lanes or tick.wrong_way:
            if self._outside_first is None:
                self._outside_first = (t, x, y)
            self._outside_m += increment

        # InRouteTest: progress made while farther than the safe distance.
        if dist >= cfg.route_deviation_far_m:
            self._far_m += progress

        # Minimum speed: close the sections whose end the ego passed, then sample this tick.
        n_cp = cfg.min_speed_checkpoints
        while (
            len(self.checkpoint_values) < n_cp - 1
            and self._s_max > (len(self.checkpoint_values) + 1) * self._checkpoint_m
        ):
            self._close_checkpoint(t, x, y, new)
        if tick.traffic_speed_mps is not None:
            self._ms_ego_sum += speed
            self._ms_traffic_sum += abs(float(tick.traffic_speed_mps))
            self._ms_points += 1

        # Route-ending conditions, completion first (the leaderboard scores a reached target).
        rc_raw = 100.0 * self._s_max / self.route.length_m
        if (
            rc_raw > 100.0 * cfg.completion_snap_fraction
            and math.hypot(x - self._end_x, y - self._end_y) < cfg.completion_snap_distance_m
        ):
            self._completed = True
            self._finish(None, t, x, y, new)
        elif (
            dist > cfg.route_deviation_m
            or self._far_m > cfg.route_deviation_far_share * self.route.length_m
        ):
            reason = (
                f"Agent deviated from the route at (x={x:.3f}, y={y:.3f}): {dist:.1f} m away, "
                f"{self._far_m:.1f} m of the route driven beyond {cfg.route_deviation_far_m:g} m"
            )
            self._finish(Infraction(InfractionType.ROUTE_DEVIATION, t, x, y, reason), t, x, y, new)
        elif self._is_blocked(t, speed):
            reason = (
                f"Agent got blocked at (x={x:.3f}, y={y:.3f}): below {cfg.blocked_speed_mps:g} m/s "
                f"for {t - self._last_moving_time:.1f} s"
            )
            self._finish(Infraction(InfractionType.AGENT_BLOCKED, t, x, y, reason), t, x, y, new)
        elif t - self._t0 >= self.timeout_s - _TIME_EPS_S:
            reason = f"Route timeout after {t - self._t0:.1f} s (limit {self.timeout_s:.1f} s)"
            self._finish(Infraction(InfractionType.ROUTE_TIMEOUT, t, x, y, reason), t, x, y, new)

        # Tail end for the next tick's swept red-light probe.
        half = 0.5 * float(tick.ego_length)
        c, s_ = math.cos(tick.yaw), math.sin(tick.yaw)
        far = half + _TAIL_FAR_EXTRA_M
        self._prev_tail_far = (x - far * c, y - far * s_)
        return new

    def terminate(self, failure_message: str = "") -> list[Infraction]:
        """End the route from outside (e.g. the simulation stopped); returns new infractions.

        The status becomes ``"Failed - <failure_message>"`` (``"Failed"`` without a message).
        No-op once ``done``.
        """
        if self.done:
            return []
        new: list[Infraction] = []
        self._finish(None, self._last_time, self._x, self._y, new, failure_message or "")
        return new

    # ---------------------------------------------------------------------------- criteria

    def _record(self, infraction: Infraction, new: list[Infraction]) -> None:
        self._events.append(infraction)
        new.append(infraction)
        logger.debug("route %s: %s", self.route_id, infraction.detail)

    def _check_collisions(
        self, tick: CriteriaTick, t: float, x: float, y: float, speed: float, new: list
    ) -> None:
        cfg = self.config
        # Forget the last collision's position once the ego left it, and its actor after 5 s.
        if self._col_xy is not None and (
            math.hypot(x - self._col_xy[0], y - self._col_xy[1]) > cfg.collision_min_separation_m
        ):
            self._col_xy = None
        if self._col_id is not None and t - self._col_time > cfg.collision_same_actor_window_s:
            self._col_id = None
        for actor_id, kind in tick.collisions:
            kind_value = getattr(kind, "value", kind)
            infraction_type = COLLISION_KINDS.get(kind_value)
            if infraction_type is None:
                raise ValueError(
                    f"collision with actor {actor_id} has kind {kind!r}; "
                    f"valid kinds: {sorted(COLLISION_KINDS)}"
                )
            if self._col_id is not None and actor_id == self._col_id:
                continue
            if self._col_xy is not None and (
                math.hypot(x - self._col_xy[0], y - self._col_xy[1])
                <= cfg.collision_min_separation_m
            ):
                continue
            if speed < cfg.collision_min_ego_speed_mps:
                continue  # a standing ego is not at fault
            self._col_id, self._col_time, self._col_xy = actor_id, t, (x, y)
            detail = (
                f"Agent collided against object with type={kind_value} and id={actor_id} "
                f"at (x={x:.3f}, y={y:.3f})"
            )
            self._record(
                Infraction(infraction_type, t, x, y, detail, PENALTY_FACTORS[infraction_type]),
                new,
            )

    def _check_red_lights(
        self, tick: CriteriaTick, t: float, x: float, y: float, new: list
    ) -> None:
        check_m = self.config.red_light_check_distance_m
        if self._counted_lights:
            # A counted light can count again on a later pass, once the ego has left it.
            for light_id, (lx, ly) in list(self._counted_lights.items()):
                if math.hypot(x - lx, y - ly) > check_m:
                    del self._counted_lights[light_id]
        if not tick.lights:
            return
        yaw = float(tick.yaw)
        c, s = math.cos(yaw), math.sin(yaw)
        half = 0.5 * float(tick.ego_length)
        close = half * _TAIL_CLOSE_FRACTION
        tail_close = (x - close * c, y - close * s)
        if self._prev_tail_far is not None:
            tail_far = self._prev_tail_far
        else:
            far = half + _TAIL_FAR_EXTRA_M
            tail_far = (x - far * c, y - far * s)
        for light in tick.lights:
            if getattr(light.state, "value", light.state) != "red":
                continue
            if light.light_id in self._counted_lights:
                continue
            lx, ly = float(light.light_xy[0]), float(light.light_xy[1])
            if math.hypot(x - lx, y - ly) > check_m:
                continue
            if light.approach_yaw is not None and math.cos(yaw - light.approach_yaw) <= 0:
                continue
            line = light.stop_line
            q1 = (float(line[0][0]), float(line[0][1]))
            q2 = (float(line[1][0]), float(line[1][1]))
            if segments_intersect(tail_far, tail_close, q1, q2):
                self._counted_lights[light.light_id] = (lx, ly)
                detail = f"Agent ran a red light {light.light_id} at (x={lx:.3f}, y={ly:.3f})"
                penalty = PENALTY_FACTORS[InfractionType.RED_LIGHT]
                self._record(Infraction(InfractionType.RED_LIGHT, t, x, y, detail, penalty), new)

    def _close_checkpoint(self, t: float, x: float, y: float, new: list) -> None:
        """Evaluate the current min-speed section (``MinimumSpeedRouteTest._set_traffic_event``)."""
        cfg = self.config
        index = len(self.checkpoint_values) + 1
        value: float | None = None
        if self._ms_points > 0 and self._ms_traffic_sum > 0:
            # ratio of the means over the section's ticks (the tick counts cancel)
            value = round(100.0 * self._ms_ego_sum / self._ms_traffic_sum, 2)
        self.checkpoint_values.append(value)
        self._ms_ego_sum = self._ms_traffic_sum = 0.0
        self._ms_points = 0
        if value is None or value >= 100.0:
            return
        factor = 1.0 - (1.0 - MIN_SPEED_MAX_PENALTY) * (1.0 - value / 100.0)
        detail = (
            f"Average speed is {value}% of the surrounding traffic's one "
            f"(checkpoint {index}/{cfg.min_speed_checkpoints})"
        )
        if not cfg.enable_min_speed:
            detail += f"; penalty {factor:.4f} not applied (min-speed penalty off, Bench2Drive)"
            factor = 1.0
        self._record(Infraction(InfractionType.MIN_SPEED, t, x, y, detail, factor), new)

    def _is_blocked(self, t: float, speed: float) -> bool:
        cfg = self.config
        if speed >= cfg.blocked_speed_mps:
            self._last_moving_time = t
            return False
        return t - self._last_moving_time >= cfg.blocked_time_s - _TIME_EPS_S

    def _outside_lanes_infraction(self) -> Infraction:
        pct = self.outside_lanes_pct
        t, x, y = self._outside_first if self._outside_first is not None else (0.0, 0.0, 0.0)
        basis = "completed route" if self.config.outside_lanes_basis == "route" else "driven"
        detail = (
            f"Agent went outside its route lanes for about {self._outside_m:.3f} meters "
            f"({pct:.2f}% of the {basis} distance)"
        )
        return Infraction(InfractionType.OUTSIDE_ROUTE_LANES, t, x, y, detail, 1.0 - pct / 100.0)

    def _finish(
        self,
        ending: Infraction | None,
        t: float,
        x: float,
        y: float,
        new: list[Infraction],
        failure_message: str | None = None,
    ) -> None:
        """End the route: last min-speed checkpoint, the outside-lanes record, the status."""
        cfg = self.config
        # MinimumSpeedRouteTest.terminate: routes end near 99 %, so record the last section.
        if (
            len(self.checkpoint_values) < cfg.min_speed_checkpoints
            and self._s_max / self.route.length_m > 0.95
        ):
            self._close_checkpoint(t, x, y, new)
        if self._outside_m > 0:
            self._record(self._outside_lanes_infraction(), new)
        if ending is not None:
            self._record(ending, new)
        self.done = True
        if self._completed:
            self.status = STATUS_COMPLETED if self._events else STATUS_PERFECT
        elif ending is not None:
            self.status = {
                InfractionType.ROUTE_DEVIATION: STATUS_DEVIATED,
                InfractionType.AGENT_BLOCKED: STATUS_BLOCKED,
                InfractionType.ROUTE_TIMEOUT: STATUS_TIMED_OUT,
            }[ending.kind]
        else:
            self.status = f"Failed - {failure_message}" if failure_message else "Failed"
        logger.debug(
            "route %s ended: %s, RC %.2f, penalty %.4f",
            self.route_id,
            self.status,
            self.route_completion,
            self.infraction_penalty,
        )
