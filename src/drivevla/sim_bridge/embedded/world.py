"""The simulated world of one episode: highway-env road and traffic, plus the project's
traffic lights, pedestrians, static props, yielding rules and ego contact detection."""

from __future__ import annotations

import math

import numpy as np
from highway_env.road.road import Road

from drivevla.core.scene import (
    ActorBox,
    ActorKind,
    LightState,
    SceneSnapshot,
    TrafficLightView,
    box_footprint,
)
from drivevla.sim_bridge.embedded.actors import (
    EgoVehicle,
    LaneLocator,
    Pedestrian,
    StaticProp,
    TrafficLight,
    TrafficVehicle,
)
from drivevla.sim_bridge.embedded.config import SimConfig
from drivevla.sim_bridge.embedded.scenario_types import NpcSpawn, Scenario, YieldRule

EGO_COLOR = (0.1, 0.35, 0.85)
PED_COLOR = (0.95, 0.55, 0.15)
STATIC_COLOR = (0.55, 0.55, 0.5)


def _obb_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex quads given as (4, 2) corner arrays."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _footprint(obj) -> np.ndarray:
    """Footprint of a highway-env object (position, heading, LENGTH, WIDTH)."""
    return box_footprint(obj.position[0], obj.position[1], obj.heading, obj.LENGTH, obj.WIDTH)


def _box(actor_id: int, kind: ActorKind, obj, color) -> ActorBox:
    return ActorBox(
        actor_id,
        kind,
        float(obj.position[0]),
        float(obj.position[1]),
        float(obj.heading),
        obj.LENGTH,
        obj.WIDTH,
        obj.HEIGHT,
        float(obj.speed),
        color,
    )


class World:
    """Owns every actor of an episode and advances them by one physics step at a time."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator, config: SimConfig) -> None:
        self.scenario = scenario
        self.time_s = 0.0
        self.traffic_radius_m = config.traffic_radius_m
        self.npc_crash_hold_s = config.npc_crash_hold_s
        net = scenario.network
        self.road = Road(network=net, np_random=rng, record_history=False)
        self.road.locator = LaneLocator(net)  # type: ignore[attr-defined]
        pos, heading = scenario.route.start_pose
        self.ego = EgoVehicle(
            self.road,
            pos,
            heading,
            scenario.ego_speed_mps,
            steer_tau_s=config.steer_tau_s,
            max_accel_mps2=config.max_accel_mps2,
            max_brake_mps2=config.max_brake_mps2,
            max_steer_rad=math.radians(config.max_steer_deg),
        )
        self.road.vehicles.append(self.ego)
        self._next_id = 1
        self.spawned_npcs: list[TrafficVehicle] = []  # in Scenario.npcs order, never culled
        self.actor_ids: dict[int, int] = {id(self.ego): 0}
        for spawn in scenario.npcs:
            self.spawn_vehicle(spawn)
        self.pedestrians: list[Pedestrian] = []
        for p in scenario.pedestrians:
            ped = Pedestrian(self.road, p.start, p.end, p.start_time_s, p.walk_speed_mps)
            self._add(ped)
            self.pedestrians.append(ped)
            self.road.objects.append(ped)
        # static props stay out of road.objects: traffic never interacts with them
        self.statics: list[StaticProp] = []
        for s in scenario.statics:
            prop = StaticProp(None, s.position, s.heading, s.length, s.width, s.height)
            self._add(prop)
            self.statics.append(prop)
        self.lights: list[TrafficLight] = scenario.lights
        self._lights_by_lane: dict[tuple, list[TrafficLight]] = {}
        for light in self.lights:
            self._lights_by_lane.setdefault(light.controlled_lane, []).append(light)
        self._yield_by_lane: dict[tuple, YieldRule] = {r.lane: r for r in scenario.yield_rules}
        self.contacts: list[tuple[int, str]] = []
        self.impact_speed_mps: float | None = None  # ego speed at a crash this step

    def spawn_vehicle(self, spawn: NpcSpawn) -> TrafficVehicle:
        """Add a traffic vehicle (also used by tests and custom scenarios)."""
        lane = self.road.network.get_lane(spawn.lane)
        v = TrafficVehicle(
            self.road,
            lane.position(spawn.s, 0.0),
            lane.heading_at(spawn.s),
            spawn.speed,
            target_lane_index=spawn.lane,
            target_speed=spawn.target_speed or spawn.speed,
            enable_lane_change=spawn.lane_change,
        )
        v.color_rgb = spawn.color
        if spawn.destination:
            v.plan_route_to(spawn.destination)
        v.randomize_behavior()
        self._add(v)
        self.road.vehicles.append(v)
        self.spawned_npcs.append(v)
        return v

    def _add(self, obj) -> None:
        self.actor_ids[id(obj)] = self._next_id
        self._next_id += 1

    def actor_id(self, obj) -> int:
        return self.actor_ids[id(obj)]

    @property
    def npcs(self) -> list[TrafficVehicle]:
        return [v for v in self.road.vehicles if v is not self.ego]

    # ------------------------------------------------------------------ stepping
    def light_state(self, light: TrafficLight) -> LightState:
        return light.state_at(self.time_s)

    def _stop_distance(self, v: TrafficVehicle) -> float | None:
        lane_id = v.lane_index
        s = v.lane.local_coordinates(v.position)[0]
        best: float | None = None
        for light in self._lights_by_lane.get(lane_id, ()):
            d = light.stop_s - s
            if not (0.0 < d < 60.0):
                continue
            state = self.light_state(light)
            stop = state == LightState.RED or (
                state == LightState.YELLOW and d > v.speed**2 / (2 * 3.0) + 2.0
            )
            if stop:
                best = d if best is None else min(best, d)
        rule = self._yield_by_lane.get(lane_id)
        if rule is not None:
            d = rule.stop_s - s
            if 0.0 < d < 30.0 and self._conflict_occupied(rule, v):
                best = d if best is None else min(best, d)
        return best

    def _conflict_occupied(self, rule: YieldRule, me: TrafficVehicle) -> bool:
        windows = dict(rule.conflicts)
        for other in self.road.vehicles:
            if other is me or other.lane_index not in windows:
                continue
            lane = other.lane
            s = lane.local_coordinates(other.position)[0]
            if lane.length - s < windows[other.lane_index] and other.speed > 0.3:
                return True
            if windows[other.lane_index] > 1e8:  # a vehicle inside the junction/ring section
                return True
        return False

    def step(self, dt: float) -> None:
        """Advance every actor by ``dt`` seconds (the ego's action must already be set)."""
        for v in self.road.vehicles:
            if isinstance(v, TrafficVehicle):
                self._recover_from_crash(v)
                v.stop_distance_m = self._stop_distance(v)
                v.act()
        for ped in self.pedestrians:
            ped.update(self.time_s, dt)
        ego_before = (self.ego.position.copy(), self.ego.heading)
        self.impact_speed_mps = None
        self.road.step(dt)
        self.time_s += dt
        self.contacts = self._ego_contacts()
        if any(kind in ("vehicle", "static") for _, kind in self.contacts):
            # a crash: the ego does not drive through cars or guard rails; it stops where
            # the contact happened (no restitution, as a crude inelastic impact)
            self.ego.position, self.ego.heading = ego_before
            self.impact_speed_mps = float(self.ego.speed)
            self.ego.speed = 0.0
            self.ego.on_state_update()
        self._cull()

    def _recover_from_crash(self, v: TrafficVehicle) -> None:
        """A crashed traffic car drives on ``npc_crash_hold_s`` after its last contact (a
        contact with the ego restarts the clock; one between two traffic cars starts it
        when first seen here)."""
        if not v.crashed or self.npc_crash_hold_s is None:
            return
        if v.crash_until_s is None:
            v.crash_until_s = self.time_s + self.npc_crash_hold_s
        elif self.time_s >= v.crash_until_s - 1e-9:
            v.crashed, v.crash_until_s = False, None

    def _ego_contacts(self) -> list[tuple[int, str]]:
        ego = self.ego
        ego_fp = _footprint(ego)
        reach = ego.LENGTH
        hits: list[tuple[int, str]] = []
        for kind, objs in (("vehicle", self.npcs), ("pedestrian", self.pedestrians)):
            for o in objs:
                if np.abs(o.position - ego.position).max() > reach + o.LENGTH:
                    continue
                if _obb_overlap(ego_fp, _footprint(o)):
                    hits.append((self.actor_id(o), kind))
                    if kind == "vehicle":
                        o.crashed = True
                        if self.npc_crash_hold_s is not None:
                            o.crash_until_s = self.time_s + self.npc_crash_hold_s
                    else:
                        o.hit_by_ego = True
        for o in self.statics:
            if np.abs(o.position - ego.position).max() > reach + o.LENGTH:
                continue
            if _obb_overlap(ego_fp, _footprint(o)):
                hits.append((self.actor_id(o), "static"))
        return hits

    def _cull(self) -> None:
        keep = []
        for v in self.road.vehicles:
            if v is self.ego:
                keep.append(v)
                continue
            far = np.linalg.norm(v.position - self.ego.position) > self.traffic_radius_m
            lane = v.lane
            s = lane.local_coordinates(v.position)[0]
            dead_end = s > lane.length + 3.0 and not self.road.network.graph.get(v.lane_index[1])
            if not (far or dead_end):
                keep.append(v)
        self.road.vehicles = keep

    # ------------------------------------------------------------------ views
    def snapshot(self) -> SceneSnapshot:
        ego_box = _box(0, ActorKind.VEHICLE, self.ego, EGO_COLOR)
        actors = [_box(self.actor_id(v), ActorKind.VEHICLE, v, v.color_rgb) for v in self.npcs]
        actors += [
            _box(self.actor_id(p), ActorKind.PEDESTRIAN, p, PED_COLOR) for p in self.pedestrians
        ]
        actors += [_box(self.actor_id(s), ActorKind.STATIC, s, STATIC_COLOR) for s in self.statics]
        lights = [
            TrafficLightView(
                lt.light_id,
                float(lt.position[0]),
                float(lt.position[1]),
                lt.height_m,
                lt.facing_yaw,
                self.light_state(lt),
                lt.stop_line,
                (lt.controlled_lane,),
            )
            for lt in self.lights
        ]
        return SceneSnapshot(self.time_s, ego_box, actors, lights)
