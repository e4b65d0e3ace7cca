"""CARLA Leaderboard 2.0 infraction criteria, independent of any simulator.

The embedded simulator calls :meth:`RouteCriteria.update` once per control tick with a
:class:`CriteriaTick` (what the ego touched, whether it is outside its route lanes or driving
the wrong way, the traffic lights around it, the mean speed of the surrounding traffic). The
criteria turn these into :class:`~drivevla.core.types.Infraction` records and decide
when the route ends; :meth:`RouteCriteria.result` gives the
:class:`~drivevla.core.types.RouteResult` with ``DS = RC * P``.

The rules follow ``docs/metrics.md`` and the reference implementation
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
from dataclasses import dataclass, field

import numpy as np

from drivevla.core.types import Infraction, InfractionType, RouteResult
from drivevla.sim_bridge.embedded.criteria_config import (
    COLLISION_KINDS,
    MIN_SPEED_MAX_PENALTY,
    PENALTY_FACTORS,
    STATUS_BLOCKED,
    STATUS_COMPLETED,
    STATUS_DEVIATED,
    STATUS_PERFECT,
    STATUS_RUNNING,
    STATUS_TIMED_OUT,
    CriteriaConfig,
)
from drivevla.sim_bridge.embedded.route_path import RoutePath, segments_intersect

logger = logging.getLogger(__name__)

# Settings and the route path live beside this module; they stay importable from here.
__all__ = [
    "PROTOCOL",
    "PENALTY_FACTORS",
    "MIN_SPEED_MAX_PENALTY",
    "COLLISION_KINDS",
    "STATUS_RUNNING",
    "STATUS_COMPLETED",
    "STATUS_PERFECT",
    "STATUS_DEVIATED",
    "STATUS_BLOCKED",
    "STATUS_TIMED_OUT",
    "CriteriaConfig",
    "RoutePath",
    "segments_intersect",
    "LightCrossing",
    "CriteriaTick",
    "RouteCriteria",
]

PROTOCOL = "CARLA Leaderboard 2.0 (criteria)"

# Absorbs float round-off when simulation times are sums of a fixed step (0.1 s is inexact).
_TIME_EPS_S = 1e-6
# Tail probe of the red-light test: from -0.8 * half-length to -(half-length + 1 m).
_TAIL_CLOSE_FRACTION = 0.8
_TAIL_FAR_EXTRA_M = 1.0


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
    def outside_route_lanes_m(self) -> float:
        """Distance (m) driven outside the route lanes so far (the record comes at route end)."""
        return self._outside_m

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
        t, x, y = float(tick.time_s), float(tick.x), float(tick.y)
        if not (math.isfinite(t) and math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"CriteriaTick has a non-finite time/position: {t}, {x}, {y}")
        speed = abs(float(tick.speed_mps))
        step, s, dist = self._locate(t, x, y)

        new: list[Infraction] = []
        self._check_collisions(tick, t, x, y, speed, new)
        self._check_red_lights(tick, t, x, y, new)
        self._advance_progress(tick, t, x, y, s, dist, step)
        self._sample_min_speed(tick, t, x, y, speed, new)
        self._check_route_end(t, x, y, dist, speed, new)

        # Tail end for the next tick's swept red-light probe.
        half = 0.5 * float(tick.ego_length)
        c, s_ = math.cos(tick.yaw), math.sin(tick.yaw)
        far = half + _TAIL_FAR_EXTRA_M
        self._prev_tail_far = (x - far * c, y - far * s_)
        return new

    def _locate(self, t: float, x: float, y: float) -> tuple[float, float, float]:
        """Move the ego to (x, y) at time t: ``(odometry step m, route s m, distance m)``."""
        if not self._started:
            self._started = True
            self._t0 = t - self.dt_s
            self._last_moving_time = t
            step = 0.0
            s, dist = self.route.project((x, y))
        else:
            step = math.hypot(x - self._x, y - self._y)
            s, dist = self.route.project((x, y), self._s_hint, self.config.projection_window_m)
        self._x, self._y, self._last_time = x, y, t
        self._s_hint = s
        self._driven_m += step
        return step, s, dist

    def _advance_progress(
        self, tick: CriteriaTick, t: float, x: float, y: float, s: float, dist: float,
        step: float,
    ) -> None:
        """Route progress, outside-lanes distance and off-route progress of this tick."""
        cfg = self.config
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

    def _sample_min_speed(
        self, tick: CriteriaTick, t: float, x: float, y: float, speed: float, new: list
    ) -> None:
        """Minimum speed: close the sections whose end the ego passed, then sample this tick."""
        n_cp = self.config.min_speed_checkpoints
        while (
            len(self.checkpoint_values) < n_cp - 1
            and self._s_max > (len(self.checkpoint_values) + 1) * self._checkpoint_m
        ):
            self._close_checkpoint(t, x, y, new)
        if tick.traffic_speed_mps is not None:
            self._ms_ego_sum += speed
            self._ms_traffic_sum += abs(float(tick.traffic_speed_mps))
            self._ms_points += 1

    def _check_route_end(
        self, t: float, x: float, y: float, dist: float, speed: float, new: list
    ) -> None:
        """Route-ending conditions, completion first (the leaderboard scores a reached
        target), then deviation, blocked and timeout."""
        cfg = self.config
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
