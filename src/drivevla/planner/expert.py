"""The privileged expert: drives its route well, follows the instruction's intent, knows why.

It reads ground truth from the :class:`~drivevla.core.env.PrivilegedState` handed to
``reset`` (its live ``backend``: world, lane graph, route plan) and returns a ``Decision`` like
every other policy (the shared controllers drive it). Per step it:

1. plans a lateral path: the route polyline (past the goal, straight on along its last
   direction), blended in from the ego's current offset; a pending lane change (instructed
   change, overtake, exit, merge) is held in the current lane until the target lane has a
   safe gap;
2. caps the speed along that path: speed limit or an instructed speed, curvature, leaders
   (IDM-like time gap), pedestrians crossing or about to, red/yellow lights, and yielding at
   junction and roundabout entries to anyone whose predicted path meets the ego's;
3. labels the step with a meta-action and the reason (closed vocabulary) of the binding
   constraint, naming its object, and renders an explanation. The labels say what the
   cameras show: slowing for its own sideways move on a straight road (a lane change) is
   that manoeuvre's reason, never ``curve`` (the road's lane geometry decides what a bend
   is); a move back onto the route that no instruction asked for is ``follow_route``; a car
   is named by its colour only while a camera sees it; the side of a pedestrian or of a car
   given way to is that object's; phrasings naming another place than the scenario's
   (a highway's off-ramp at a roundabout) are not used.

Unsafe (misleading) instructions are refused: the plan ignores them (the trajectory is the
same as without them) and the reason is ``refused_unsafe_instruction`` while they last.
Speed requests are honoured up to the speed limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivevla.core.env import PrivilegedBackend, PrivilegedState
from drivevla.core.types import CameraSpec, Decision, HighLevelCommand, MetaAction, Observation
from drivevla.language.instructions import colour_name
from drivevla.language.reasons import Reason
from drivevla.planner.hazards import (
    Cap,
    binding_cap,
    crossing_pedestrian_caps,
    leader_caps,
    light_caps,
    path_arclength,
    yield_caps,
)
from drivevla.planner.labels import explain, meta_action, object_slots
from drivevla.planner.trajectory import (
    curvature_speeds,
    follow_lanes,
    plan_decision,
    road_curvature_ahead,
    route_lateral,
    route_path_ahead,
    route_road_curvature,
)

PLAN_LENGTH_M = 80.0
LATERAL_ACCEL_MPS2 = 3.0
CRUISE_FRACTION = 0.95
LANE_CHANGE_LOOKAHEAD_M = 45.0

_EXIT_INTENTS = {"take_exit", "roundabout_exit_1", "roundabout_exit_2", "roundabout_exit_3"}
# intents whose instruction is a lane-level manoeuvre: what a lane change is done for
_LANE_MANOEUVRES = {
    "overtake": Reason.INSTRUCTED_OVERTAKE,
    "merge": Reason.INSTRUCTED_MERGE,
    "take_exit": Reason.INSTRUCTED_EXIT,
}
_LANE_CHANGE_SIDE = {"change_lane_left": "left", "change_lane_right": "right"}
# where each scenario family is, for the explanations' place words (off-ramp, roundabout)
FAMILY_PLACE = {
    "highway": "highway",
    "merge": "highway",
    "exit": "highway",
    "roundabout": "roundabout",
    "intersection": "street",
    "urban": "street",
}


class ExpertPolicy:
    """Privileged rule-based expert (see module docstring)."""

    name = "expert"

    def __init__(self, explanation_split: str = "train", seed: int = 0) -> None:
        self.explanation_split = explanation_split
        self.seed = seed
        self.sim: PrivilegedBackend | None = None
        self.speed_limit_mps = 0.0
        self.intent = ""
        self.last_reason: Reason | None = None
        self.last_object: dict[str, Any] = {}

    # ------------------------------------------------------------------ contract
    def reset(self, privileged: PrivilegedState | None = None) -> None:
        if privileged is None:
            raise ValueError(
                "the expert is privileged: reset() needs the simulator's PrivilegedState "
                "(env.privileged_state())"
            )
        self.sim = privileged.live_backend("the expert")
        self.speed_limit_mps = privileged.speed_limit_mps
        self.intent = privileged.intent
        self.place = FAMILY_PLACE.get(privileged.scenario)
        # the cameras the driven policy sees (the default front camera when none render)
        config = getattr(self.sim, "config", None)
        self.cameras = tuple(getattr(config, "cameras", ()) or ()) or (CameraSpec(),)
        self.rng = np.random.default_rng(self.seed)
        self._committed = False
        scenario = self.sim.scenario
        self.route = scenario.route
        self.network = scenario.network
        self._yield_points = self._find_yield_points()
        self._road_s, self._road_k = route_road_curvature(self.route, self.network)

    def act(self, obs: Observation) -> Decision:
        world = self.sim.world
        ego = world.ego
        s_route = self.sim.route_progress_m
        path, changing = self._lateral_path(s_route)
        s_path = path_arclength(ego.position, path)
        caps = self._caps(path, s_path, s_route, changing)
        binding = binding_cap(caps)
        decision = plan_decision(path, ego.position, float(ego.heading), float(ego.speed), caps)
        reason = self._reason(binding, s_route, changing)
        meta = self._meta_action(decision, float(ego.speed), s_route, changing, binding)
        self.last_reason, self.last_object = reason, dict(binding.obj)
        decision.reason = reason.value
        decision.meta_action = meta
        decision.explanation = self._explain(reason, meta, binding)
        return decision

    # ------------------------------------------------------------------ lateral
    def _route_lateral(self, s_route: float) -> float:
        """Signed lateral offset (m, left +) of the ego from the route polyline."""
        return route_lateral(self.route, self.sim.world.ego.position, s_route)

    def _leg_at(self, s_route: float):
        i = int(np.searchsorted(self.route.leg_start_m, s_route, side="right") - 1)
        return self.route.legs[int(np.clip(i, 0, len(self.route.legs) - 1))]

    def _target_gap_ok(self, target_pt: np.ndarray) -> bool:
        """Is there room for the ego in the lane that contains ``target_pt``?"""
        world = self.sim.world
        ego = world.ego
        locator = world.road.locator
        lane_id = locator.closest(target_pt, float(ego.heading), None)
        lane = self.network.get_lane(lane_id)
        s_ego, _ = lane.local_coordinates(ego.position)
        for npc in world.npcs:
            s_n, lat_n = lane.local_coordinates(npc.position)
            if abs(lat_n) > lane.width_at(s_n) / 2 + 0.5:
                continue
            dv = float(npc.speed - ego.speed)
            rear = 8.0 + max(dv, 0.0) * 3.0
            front = 8.0 + max(-dv, 0.0) * 2.0
            if -rear < s_n - s_ego < front:
                return False
        return True

    def _lateral_path(self, s_route: float) -> tuple[np.ndarray, bool]:
        """World path ahead and whether a lane change is being executed."""
        world = self.sim.world
        ego = world.ego
        v = float(ego.speed)
        lat = self._route_lateral(s_route)
        lane_now = self.network.get_lane(ego.lane_index)
        # where the route lies, relative to the ego's lane, within that lane's extent (a
        # route that leaves the lane at its end, e.g. into a junction, is not a lane change)
        route_ahead, lat_target = self.route.point_at(s_route), 0.0
        for ahead in (LANE_CHANGE_LOOKAHEAD_M, 30.0, 15.0):
            if self._leg_at(s_route + ahead).lane[0] != ego.lane_index[0]:
                continue  # the route is on another road there (a junction, a ring exit)
            p = self.route.point_at(s_route + ahead)
            s_l, lat_l = lane_now.local_coordinates(p)
            if 0.0 <= s_l <= lane_now.length:
                route_ahead, lat_target = p, lat_l
                break
        change_needed = abs(lat_target) > 1.75 or abs(lat) > 1.75
        if abs(lat) < 0.4 and abs(lat_target) < 1.0:
            self._committed = False
        if change_needed and not self._committed:
            target_pt = route_ahead if abs(lat_target) > 1.75 else self.route.point_at(s_route)
            if self._target_gap_ok(target_pt):
                self._committed = True
        if change_needed and not self._committed:
            path = follow_lanes(self.network, ego.lane_index, ego.position, PLAN_LENGTH_M)
            return path, False
        path = route_path_ahead(self.route, s_route, lat, v, PLAN_LENGTH_M)
        return path, change_needed and self._committed

    # ------------------------------------------------------------------ longitudinal
    def _cruise_cap(self) -> Cap:
        limit = CRUISE_FRACTION * self.speed_limit_mps
        for event, _ in self.sim.active_events():
            if event.kind == "speed":
                requested = float(event.speed_kmh) / 3.6
                if requested < limit:
                    return Cap(
                        0.0,
                        requested,
                        Reason.INSTRUCTED_SPEED.value,
                        {"kind": "speed", "speed_kmh": float(event.speed_kmh)},
                    )
        return Cap(0.0, limit, Reason.SPEED_LIMIT.value, {"kind": "speed_limit"})

    def _curve_caps(self, path: np.ndarray, s_path: np.ndarray, s_route: float) -> list[Cap]:
        """Lateral-acceleration caps along the path. A cap where the road itself bends less
        than needs slowing for comes from the car's own sideways move (a lane change, a
        return onto the route) on a straight road: its object is ``lane_change``, not a bend."""
        k_bend = LATERAL_ACCEL_MPS2 / self.speed_limit_mps**2
        caps = []
        for i, v in curvature_speeds(path, LATERAL_ACCEL_MPS2, self.speed_limit_mps):
            s_r = s_route + float(s_path[i])
            road = road_curvature_ahead(self._road_s, self._road_k, s_r - 5.0, s_r + 5.0)
            kind = "curve" if road > k_bend else "lane_change"
            caps.append(Cap(float(s_path[i]), v, Reason.CURVE.value, {"kind": kind}))
        return caps

    def _find_yield_points(self) -> list[tuple[float, float, Reason]]:
        """(route s of the stop point, route s where the conflict zone ends, reason)."""
        points = []
        for i, leg in enumerate(self.route.legs):
            a, b, _ = leg.lane
            start = float(self.route.leg_start_m[i])
            end = (
                float(self.route.leg_start_m[i + 1])
                if i + 1 < len(self.route.legs)
                else (self.route.length_m)
            )
            if "_in" in a and "_out" in b:  # a junction connector
                points.append((start - 1.0, end + 4.0, Reason.YIELD_JUNCTION))
            elif a.startswith("R_ai") and b.startswith("R_e"):  # roundabout entry
                points.append((start + 2.0, end + 12.0, Reason.YIELD_ROUNDABOUT))
        return points

    def _caps(self, path, s_path, s_route: float, changing: bool) -> list[Cap]:
        world = self.sim.world
        ego = world.ego
        colour = self._colour_of
        caps = [self._cruise_cap(), *self._curve_caps(path, s_path, s_route)]
        caps += leader_caps(world, path, s_path, ego.WIDTH, colour)
        caps += crossing_pedestrian_caps(world, path, s_path, ego.WIDTH)
        caps += light_caps(world, path, s_path)
        approach = {
            leg.lane[:2]
            for leg, st in zip(self.route.legs, self.route.leg_start_m, strict=True)
            if st <= s_route + 1.0
        }
        ignore = {id(v) for v in world.npcs if v.lane_index and v.lane_index[:2] in approach}
        for y_s, z_end, reason in self._yield_points:
            if y_s - s_route > 60.0 or z_end < s_route:
                continue
            v_cross = min(8.0, self.speed_limit_mps)
            caps += yield_caps(
                world, path, s_path, y_s - s_route, z_end - s_route, reason, v_cross, colour, ignore
            )
        return caps

    # ------------------------------------------------------------------ labels
    def _lane_change_reason(self, s_route: float) -> Reason | None:
        """The instructed manoeuvre a lane change belongs to, or None: a move back onto the
        route (after a drift, e.g. a DAgger policy's) or to the side the instruction did not
        ask for is nobody's instruction."""
        if self.intent in _LANE_MANOEUVRES:
            return _LANE_MANOEUVRES[self.intent]
        side = _LANE_CHANGE_SIDE.get(self.intent)
        if side is None:
            return None
        lat = self._route_lateral(s_route)  # > 0: the ego is left of the route, moving right
        moving = "right" if lat > 0.5 else "left" if lat < -0.5 else side
        return Reason.INSTRUCTED_LANE_CHANGE if moving == side else None

    def _manoeuvre_reason(self, s_route: float, changing: bool) -> Reason | None:
        intent = self.intent
        cmd = self.route.command_at(s_route, lookahead_m=20.0)
        if changing:
            manoeuvre = self._lane_change_reason(s_route)
            if manoeuvre is not None:
                return manoeuvre
        if cmd in (HighLevelCommand.LEFT, HighLevelCommand.RIGHT, HighLevelCommand.STRAIGHT):
            if intent in _EXIT_INTENTS:
                return Reason.INSTRUCTED_EXIT
            if cmd != HighLevelCommand.STRAIGHT:
                return Reason.INSTRUCTED_TURN
        return None

    def _reason(self, binding: Cap, s_route: float, changing: bool) -> Reason:
        if any(e.kind == "misleading" for e, _ in self.sim.active_events()):
            return Reason.REFUSED_UNSAFE_INSTRUCTION
        tag = Reason(binding.tag)
        if tag == Reason.CURVE and binding.obj.get("kind") == "lane_change":
            # slowing for its own sideways move on a straight road: not a bend
            return self._manoeuvre_reason(s_route, True) or Reason.FOLLOW_ROUTE
        if tag in (Reason.SPEED_LIMIT, Reason.CURVE):
            manoeuvre = self._manoeuvre_reason(s_route, changing)
            if manoeuvre is not None:
                return manoeuvre
            if tag == Reason.SPEED_LIMIT:
                ego_v = float(self.sim.world.ego.speed)
                return (
                    Reason.SPEED_LIMIT if ego_v > binding.speed_mps + 0.5 else (Reason.FOLLOW_ROUTE)
                )
        return tag

    def _meta_action(
        self, decision: Decision, v: float, s_route: float, changing: bool, binding: Cap
    ) -> MetaAction:
        change = None
        if changing:
            lat = self._route_lateral(s_route)
            if abs(lat) > 0.5:
                change = MetaAction.CHANGE_RIGHT if lat > 0 else MetaAction.CHANGE_LEFT
        cmd = self.route.command_at(s_route, lookahead_m=10.0)
        return meta_action(decision, v, binding.speed_mps, cmd, change)

    def _colour_of(self, vehicle) -> str:

        return colour_name(getattr(vehicle, "color_rgb", (0.5, 0.5, 0.5)))

    def _explain(self, reason: Reason, meta: MetaAction, binding: Cap) -> str:
        ego = self.sim.world.ego
        slots = object_slots(binding.obj, ego.position, float(ego.heading), self.cameras)
        return explain(reason, meta, slots, self.intent, self.rng, self.explanation_split,
                       self.place)
