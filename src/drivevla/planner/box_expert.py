"""The box expert: a privileged expert that reads only what every backend can give, so it
drives (and labels demonstrations) where the lane-graph expert cannot, as on a CARLA server.

Each tick it takes a fresh :class:`~drivevla.core.env.PrivilegedState` (``snapshots``): the
route polyline and the ego's progress along it, the other actors as oriented boxes with
speeds, the signals with their stop lines, the speed limit; and the observation's route
command. No lane graph, no other actor's route, no instruction events. Like the planners
CARLA's experts are built from (PDM-Lite's IDM on the route with box checks), per step it:

1. follows the route polyline 80 m ahead, blended in from the ego's current lateral offset
   (the route's own lane changes are the polyline's);
2. caps the speed: the speed limit, the path's curvature, actors in the corridor (vehicles
   followed at a time gap, pedestrians waited for), actors whose constant-velocity motion
   crosses the corridor within ``CROSSING_HORIZON_S`` before the ego would be clear of the
   crossing point (crossing traffic yielded to, pedestrians waited for), and red / yellow
   signals whose stop line the path crosses in the signal's approach direction;
3. labels the binding cap with a reason and a meta-action and renders the explanation with
   the lane-graph expert's words (:mod:`drivevla.planner.labels`).

It does not change lanes for gaps, overtake, or follow instructed speeds: routes whose intent
needs those are driven as plain route following. It is the demonstrator of
``drivevla collect --backend carla``; on the embedded simulator it is measured against the
lane-graph expert (``docs/experiments/box-expert.md``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from drivevla.core.env import PrivilegedState
from drivevla.core.scene import ActorBox, ActorKind, TrafficLightView
from drivevla.core.types import CameraSpec, Decision, HighLevelCommand, Observation
from drivevla.language.instructions import colour_name
from drivevla.language.reasons import Reason
from drivevla.planner.expert import (
    CRUISE_FRACTION,
    FAMILY_PLACE,
    LATERAL_ACCEL_MPS2,
    PLAN_LENGTH_M,
)
from drivevla.planner.hazards import (
    CORRIDOR_MARGIN_M,
    MIN_GAP_M,
    TIME_GAP_S,
    Cap,
    binding_cap,
    path_arclength,
)
from drivevla.planner.labels import TURN_META, explain, meta_action, object_slots
from drivevla.planner.trajectory import (
    curvature_speeds,
    plan_decision,
    route_lateral,
    route_path_ahead,
)
from drivevla.sim_bridge.embedded.route_path import RoutePath

CROSSING_HORIZON_S = 4.0
CROSSING_STEP_S = 0.25
CROSSING_COS = math.cos(math.radians(30.0))  # headings within 30 deg of the path: not crossing
STOP_MARGIN_M = 1.5  # front bumper before a stop line


class BoxExpert:
    """Privileged expert on backend-neutral snapshots (see the module docstring)."""

    name = "box-expert"

    def __init__(self, explanation_split: str = "train", seed: int = 0,
                 cameras: tuple[CameraSpec, ...] = ()) -> None:
        self.explanation_split, self.seed = explanation_split, seed
        self.cameras = tuple(cameras) or (CameraSpec(),)  # what the driven policy sees
        self.last_reason: Reason | None = None
        self.last_object: dict[str, Any] = {}

    def reset(self, privileged: PrivilegedState | None = None) -> None:
        if privileged is None or privileged.snapshots is None:
            raise ValueError(
                "the box expert is privileged: reset() needs a PrivilegedState whose "
                "backend gives fresh snapshots (env.privileged_state())")
        self._snapshot = privileged.snapshots
        self.speed_limit_mps = float(privileged.speed_limit_mps)
        self.route = RoutePath(privileged.route_polyline, self.speed_limit_mps)
        self.intent = privileged.intent
        self.place = FAMILY_PLACE.get(privileged.scenario)
        self._yield_reason = (Reason.YIELD_ROUNDABOUT if privileged.scenario == "roundabout"
                              else Reason.YIELD_JUNCTION)
        self.rng = np.random.default_rng(self.seed)
        self.last_reason, self.last_object = None, {}

    def act(self, obs: Observation) -> Decision:
        state = self._snapshot()
        ego = state.ego
        xy, v = np.array([ego.x, ego.y]), float(ego.speed_mps)
        s_route = float(state.route_progress_m)
        path = route_path_ahead(self.route, s_route, route_lateral(self.route, xy, s_route), v,
                                PLAN_LENGTH_M)
        s_path = path_arclength(xy, path)
        caps = [Cap(0.0, CRUISE_FRACTION * self.speed_limit_mps, Reason.SPEED_LIMIT.value,
                    {"kind": "speed_limit"})]
        caps += curve_caps(path, s_path, self.speed_limit_mps)
        caps += corridor_caps(ego, state.actors, path, s_path)
        caps += crossing_caps(ego, state.actors, path, s_path, self._yield_reason)
        caps += signal_caps(ego, state.lights, path, s_path)
        binding = binding_cap(caps)
        decision = plan_decision(path, xy, float(ego.yaw), v, caps)
        command = obs.route.command
        reason = self._reason(binding, v, command)
        meta = meta_action(decision, v, binding.speed_mps, command)
        self.last_reason, self.last_object = reason, dict(binding.obj)
        decision.reason, decision.meta_action = reason.value, meta
        slots = object_slots(binding.obj, xy, float(ego.yaw), self.cameras)
        decision.explanation = explain(reason, meta, slots, self.intent, self.rng,
                                       self.explanation_split, self.place)
        return decision

    def _reason(self, binding: Cap, v: float, command: HighLevelCommand) -> Reason:
        tag = Reason(binding.tag)
        if tag in (Reason.SPEED_LIMIT, Reason.CURVE):
            if command in TURN_META:
                return Reason.INSTRUCTED_TURN
            if tag == Reason.SPEED_LIMIT:
                return Reason.SPEED_LIMIT if v > binding.speed_mps + 0.5 else Reason.FOLLOW_ROUTE
        return tag


def _describe(actor: ActorBox) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": actor.kind.value, "x": float(actor.x), "y": float(actor.y)}
    if actor.kind == ActorKind.VEHICLE:
        obj["colour"] = colour_name(actor.color)
    return obj


def _tangent_yaw(path: np.ndarray, i: int) -> float:
    a, b = path[max(i - 1, 0)], path[min(i + 1, len(path) - 1)]
    return math.atan2(b[1] - a[1], b[0] - a[0])


def curve_caps(path: np.ndarray, s_path: np.ndarray, speed_limit_mps: float) -> list[Cap]:
    """Lateral-acceleration caps (``LATERAL_ACCEL_MPS2``) along the path."""
    return [Cap(float(s_path[i]), v, Reason.CURVE.value, {"kind": "curve"})
            for i, v in curvature_speeds(path, LATERAL_ACCEL_MPS2, speed_limit_mps)]


def corridor_caps(ego: ActorBox, actors: tuple[ActorBox, ...], path: np.ndarray,
                  s_path: np.ndarray) -> list[Cap]:
    """Vehicles in the corridor along ``path`` followed at a time gap (their speed along the
    path); pedestrians and static objects there waited for."""
    caps = []
    for actor in actors:
        pos = np.array([actor.x, actor.y])
        d = np.linalg.norm(path - pos, axis=1)
        i = int(np.argmin(d))
        if d[i] > ego.width / 2 + actor.width / 2 + CORRIDOR_MARGIN_M or i == 0 and d[0] > 1.0:
            continue
        v_along = 0.0
        if actor.kind == ActorKind.VEHICLE:
            v_along = max(actor.speed_mps * math.cos(actor.yaw - _tangent_yaw(path, i)), 0.0)
        gap = float(s_path[i]) - ego.length / 2 - actor.length / 2
        desired = MIN_GAP_M + TIME_GAP_S * v_along
        tag = Reason.SLOW_LEADER if actor.kind == ActorKind.VEHICLE \
            else Reason.PEDESTRIAN_CROSSING
        caps.append(Cap(max(gap - desired, 0.0),
                        v_along if gap > desired else v_along * max(gap, 0.0) / desired,
                        tag.value, _describe(actor)))
    return caps


def crossing_caps(ego: ActorBox, actors: tuple[ActorBox, ...], path: np.ndarray,
                  s_path: np.ndarray, yield_reason: Reason) -> list[Cap]:
    """Stops before the point where a moving actor, driving on at constant velocity, enters
    the corridor within ``CROSSING_HORIZON_S``, unless the ego is clear of that point a second
    before it arrives. Vehicles count only when they cross (heading over 30 degrees off the
    path there); pedestrians always."""
    times = np.arange(0.0, CROSSING_HORIZON_S + 1e-9, CROSSING_STEP_S)
    v_ego = max(float(ego.speed_mps), 0.1)
    caps = []
    for actor in actors:
        if actor.kind == ActorKind.STATIC or actor.speed_mps < 0.5:
            continue
        pos = np.array([actor.x, actor.y])
        if np.linalg.norm(np.linalg.norm(path - pos, axis=1).min()) < ego.width / 2:
            continue  # already in the corridor: corridor_caps follows or waits for it
        future = pos + np.outer(times, actor.velocity)
        d = np.linalg.norm(path[None, :, :] - future[:, None, :], axis=2)
        hit = d < ego.width / 2 + actor.width / 2 + CORRIDOR_MARGIN_M
        if not hit.any():
            continue
        k, i = np.unravel_index(int(np.argmax(hit)), hit.shape)  # the first time it enters
        vehicle = actor.kind == ActorKind.VEHICLE
        if vehicle and abs(math.cos(actor.yaw - _tangent_yaw(path, int(i)))) > CROSSING_COS:
            continue
        clear_s = (float(s_path[i]) + ego.length + actor.width) / v_ego
        if clear_s < times[k] - 1.0:
            continue  # through before it arrives
        stop = float(s_path[i]) - ego.length / 2 - actor.width / 2 - 2.0
        if stop < -1.0:
            continue  # the crossing point is beside or behind the ego
        tag = yield_reason if vehicle else Reason.PEDESTRIAN_CROSSING
        caps.append(Cap(max(stop, 0.0), 0.0, tag.value, _describe(actor)))
    return caps


def signal_caps(ego: ActorBox, lights: tuple[TrafficLightView, ...], path: np.ndarray,
                s_path: np.ndarray) -> list[Cap]:
    """Stop at red, and at yellow while a comfortable stop (3.5 m/s^2) is possible, where the
    path crosses the signal's stop line in its approach direction (the lamps face the
    approaching traffic). The line binds until the ego's tail has crossed it."""
    heading = np.array([math.cos(ego.yaw), math.sin(ego.yaw)])
    tail = np.array([ego.x, ego.y]) - heading * ego.length / 2
    line_path = np.vstack([tail, [ego.x, ego.y], path])
    line_s = np.concatenate([[-ego.length / 2, 0.0], s_path])
    v = max(float(ego.speed_mps), 0.1)
    caps = []
    for light in lights:
        state = getattr(light.state, "value", light.state)
        if state == "green":
            continue
        crossing = _first_crossing(line_path, line_s, np.asarray(light.stop_line, float))
        if crossing is None:
            continue
        s_cross, yaw = crossing
        if math.cos(yaw - (light.yaw - math.pi)) < 0.5:
            continue  # a signal for another approach
        dist = s_cross - ego.length / 2 - STOP_MARGIN_M
        if state == "yellow" and dist + STOP_MARGIN_M < v * v / (2 * 3.5):
            continue  # too late to stop comfortably: clear the junction
        mid = np.asarray(light.stop_line, float).mean(axis=0)
        caps.append(Cap(max(dist, 0.0), 0.0, Reason.RED_LIGHT.value,
                        {"kind": "traffic_light", "state": state,
                         "x": float(mid[0]), "y": float(mid[1])}))
    return caps


def _first_crossing(path: np.ndarray, s: np.ndarray, line: np.ndarray
                    ) -> tuple[float, float] | None:
    """(arc length, path heading) where ``path`` first crosses segment ``line`` (2, 2),
    extended 0.3 m at both ends; None if it does not."""
    a, b = line
    u = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
    a, b = a - 0.3 * u, b + 0.3 * u
    p, r = path[:-1], np.diff(path, axis=0)
    q = b - a
    denom = r[:, 0] * q[1] - r[:, 1] * q[0]
    ok = np.abs(denom) > 1e-12
    diff = a - p
    t = np.where(ok, (diff[:, 0] * q[1] - diff[:, 1] * q[0]) / np.where(ok, denom, 1.0), -1.0)
    w = np.where(ok, (diff[:, 0] * r[:, 1] - diff[:, 1] * r[:, 0]) / np.where(ok, denom, 1.0),
                 -1.0)
    hits = np.flatnonzero(ok & (t >= 0.0) & (t <= 1.0) & (w >= 0.0) & (w <= 1.0))
    if len(hits) == 0:
        return None
    j = int(hits[0])
    return float(s[j] + t[j] * (s[j + 1] - s[j])), math.atan2(r[j, 1], r[j, 0])

