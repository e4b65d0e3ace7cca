"""A CARLA server behind the core :class:`~drivevla.core.env.Env` contract, so the closed-loop
benchmark drives a route of a Leaderboard 2.0 / Bench2Drive route file as it drives the
embedded simulator's: same rollout loop, agents, criteria, scoring and route records.

``reset`` connects (``carla.Client``), loads the route's town, makes the world synchronous at
``sim_rate_hz`` (20 Hz, as the leaderboard), interpolates the file's keypoints into the dense
route with CARLA's ``GlobalRoutePlanner`` (as the leaderboard's ``interpolate_trajectory``;
it ships in ``${CARLA_ROOT}/PythonAPI/carla``, not in the pip client), spawns the hero at the
route start with the sensors the leaderboard agent file declares (its cameras, GNSS, IMU;
the leaderboard's lens and noise settings), a collision sensor, and background traffic on the
Traffic Manager's autopilot (synchronous, seeded). ``step(control)`` applies the control and
ticks the world ``sim_rate_hz / control_rate_hz`` times (the control held in between, as the
agent file holds it). Observations are built from the sensors' data exactly as the agent
file builds them under the evaluator (:mod:`.observer`); the criteria are our simulator-
independent Leaderboard 2.0 ones (:mod:`drivevla.sim_bridge.embedded.criteria`), fed from the
server's ground truth (:mod:`.criteria_inputs`).

The privileged snapshot has the actors and lights but no live handle (``backend`` None):
privileged planners that need a lane graph (the expert) do not drive here. Verified without a
server: configs, conversions, the route-planner and dead-server errors; the server-facing
calls are written against the 0.9.16 client's API and run only in the live tests
(``DRIVEVLA_CARLA_HOST``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivevla.core.env import PrivilegedState
from drivevla.core.errors import DriveVLAError
from drivevla.core.scene import ActorBox, LightState, TrafficLightView
from drivevla.core.types import Control, Observation, RouteResult
from drivevla.sim_bridge.carla.convert import (
    camera_to_sensor_dict,
    carla_transform_to_world,
    control_to_carla,
    navigation_sensors,
)
from drivevla.sim_bridge.carla.criteria_inputs import (
    CollisionLog,
    actor_box,
    lane_flags,
    light_crossings,
    light_state_name,
    mean_speed,
)
from drivevla.sim_bridge.carla.map_lanes import lane_geometries
from drivevla.sim_bridge.carla.observer import ObserverSettings, SensorObserver
from drivevla.sim_bridge.carla.route_tracking import plan_points
from drivevla.sim_bridge.carla.routes_xml import LeaderboardRoute
from drivevla.sim_bridge.carla.sensor_data import FrameBuffer, speedometer_data
from drivevla.sim_bridge.carla.sensor_inputs import GNSS_ID, IMU_ID, SPEED_ID
from drivevla.sim_bridge.carla.spawn import sensor_spawn_specs, synchronous_settings
from drivevla.sim_bridge.embedded.criteria import (
    CriteriaConfig,
    CriteriaTick,
    LightCrossing,
    RouteCriteria,
)
from drivevla.sim_bridge.embedded.route_path import RoutePath

log = logging.getLogger(__name__)

INTENT = "follow_route"  # a route file's only instruction: drive the route
NEARBY_LIGHT_RADIUS_M = 50.0  # lights whose stop line is this close are checked each tick
_SPAWN_CLEARANCE_M = 15.0  # background traffic spawns no closer to the hero's start
_SENSOR_WAIT_S = 10.0
LANE_STEP_M = 2.0  # the town's lanes sampled this far apart (the snapshot's lanes)


class CarlaUnavailableError(DriveVLAError, RuntimeError):
    """The CARLA server cannot be used (not running, stopped answering, wrong town, no route
    planner); the message names the server and what failed."""


@dataclass(frozen=True)
class CarlaConnection:
    """Where the server is (never part of a run's fingerprint: results do not depend on it)."""

    host: str = "localhost"
    port: int = 2000
    timeout_s: float = 20.0
    traffic_manager_port: int = 8000

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CarlaEnvConfig:
    """One route of a route file on a server (SI units)."""

    route: LeaderboardRoute
    observer: ObserverSettings
    connection: CarlaConnection = field(default_factory=CarlaConnection)
    sim_rate_hz: float = 20.0
    vehicles: int = 30  # background traffic on the Traffic Manager's autopilot
    seed: int = 0
    max_steps: int | None = None
    # sets the criteria's route timeout (CARLA's own limits vary per road)
    speed_limit_mps: float = 50.0 / 3.6
    gnss_noise: bool = True  # the leaderboard's GNSS / IMU noise on the hero's sensors
    hero_blueprint: str = "vehicle.lincoln.mkz_2020"  # the leaderboard's hero
    criteria: CriteriaConfig = field(default_factory=CriteriaConfig)

    def __post_init__(self) -> None:
        ratio = self.sim_rate_hz / self.observer.control_rate_hz
        if not (self.sim_rate_hz > 0 and abs(ratio - round(ratio)) < 1e-6 and round(ratio) >= 1):
            raise ValueError(f"sim_rate_hz / control_rate_hz = {ratio:g} must be a whole "
                             "number >= 1 (the control is held for whole simulation ticks)")
        if self.vehicles < 0 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError(f"vehicles={self.vehicles} must be >= 0 and max_steps="
                             f"{self.max_steps} >= 1 (or None)")

    @property
    def control_hz(self) -> float:
        return float(self.observer.control_rate_hz)

    @property
    def dt_s(self) -> float:
        return 1.0 / self.control_hz

    @property
    def ticks_per_control(self) -> int:
        return round(self.sim_rate_hz / self.control_hz)

    def replace(self, **changes: Any) -> CarlaEnvConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """What the run depends on (the connection excluded)."""
        obs = self.observer
        return {
            "backend": "carla", "town": self.route.town, "route_id": self.route.route_id,
            "waypoints_carla": self.route.waypoints_carla.tolist(),
            "sim_rate_hz": self.sim_rate_hz, "control_hz": self.control_hz,
            "vehicles": self.vehicles, "seed": self.seed, "max_steps": self.max_steps,
            "speed_limit_mps": self.speed_limit_mps, "gnss_noise": self.gnss_noise,
            "hero_blueprint": self.hero_blueprint, "criteria": self.criteria.to_dict(),
            "cameras": [dataclasses.asdict(c) for c in obs.cameras], "mode": obs.mode,
            "instruction": obs.instruction, "gnss_filter": obs.gnss_filter,
        }


def weather_parameters(weather: dict[str, float]) -> Any:
    """A route file's ``<weather>`` attributes as ``carla.WeatherParameters`` (its
    ``route_percentage`` says where along the route it applies and is not a parameter)."""
    import carla  # optional heavy dependency (the `carla` extra): lazy

    params = carla.WeatherParameters()
    for key, value in weather.items():
        if key == "route_percentage":
            continue
        if not hasattr(params, key):
            raise ValueError(f"unknown weather parameter {key!r}")
        setattr(params, key, float(value))
    return params


def global_route_planner(world_map: Any, resolution_m: float = 1.0) -> Any:
    """CARLA's ``GlobalRoutePlanner`` on ``world_map`` (from ``${CARLA_ROOT}/PythonAPI/carla``,
    which the leaderboard also needs on ``PYTHONPATH``)."""
    try:
        from agents.navigation.global_route_planner import GlobalRoutePlanner
    except ImportError:
        raise CarlaUnavailableError(
            "the route between a route file's keypoints needs CARLA's GlobalRoutePlanner "
            "(agents.navigation): add ${CARLA_ROOT}/PythonAPI/carla to PYTHONPATH") from None
    return GlobalRoutePlanner(world_map, resolution_m)


def interpolate_route(planner: Any, waypoints_carla: np.ndarray) -> list[tuple[Any, Any]]:
    """The dense route ``[(carla.Transform, RoadOption), ...]`` through the keypoints (CARLA
    frame), as the leaderboard's ``interpolate_trajectory``."""
    import carla  # optional heavy dependency (the `carla` extra): lazy

    plan: list[tuple[Any, Any]] = []
    points = [carla.Location(x=float(x), y=float(y), z=float(z)) for x, y, z in waypoints_carla]
    for start, end in zip(points[:-1], points[1:], strict=True):
        for waypoint, option in planner.trace_route(start, end):
            plan.append((waypoint.transform, option))
    if len(plan) < 2:
        raise CarlaUnavailableError("the route planner found no route between the keypoints")
    return plan


class CarlaDrivingEnv:
    """One route on a CARLA server (see the module docstring); ``close()`` destroys what it
    spawned and gives the world back asynchronous."""

    def __init__(self, config: CarlaEnvConfig) -> None:
        self.config = config
        self.criteria: RouteCriteria | None = None
        self.observer: SensorObserver | None = None
        self._client = self._world = self._map = self._ego = None
        self._settings = None  # the world's settings before reset, restored by close()
        self._sensors: list[Any] = []
        self._traffic: list[Any] = []
        # each light and the stop lines it governs (their state set each tick)
        self._lights: list[tuple[Any, list[LightCrossing]]] = []
        self._buffer: FrameBuffer | None = None
        self._collisions = CollisionLog()
        self._steps, self._t0, self._steer = 0, 0.0, 0.0
        self._plan_xy = np.zeros((0, 2))
        self._lanes: tuple = ()  # the town's driving lanes (the snapshot's)

    # ------------------------------------------------------------------ Env contract
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        self.close()
        cfg = self.config
        seed = cfg.seed if seed is None else int(seed)
        world = self._connect()
        plan = interpolate_route(global_route_planner(self._map), cfg.route.waypoints_carla)
        points, commands = plan_points(None, plan)
        self._plan_xy = points
        self._call("spawn the hero", self._spawn_hero, world, plan[0][0])
        self._call("spawn the sensors", self._spawn_sensors, world)
        self._call("spawn the traffic", self._spawn_traffic, world, seed)
        if cfg.route.weathers:
            world.set_weather(weather_parameters(cfg.route.weathers[0]))
        self._lights = self._call("read the traffic lights", self._read_lights, world)
        self.observer = SensorObserver(cfg.observer, points, commands)
        self.criteria = RouteCriteria(
            RoutePath(points, cfg.speed_limit_mps), route_id=cfg.route.route_id,
            scenario=f"carla:{cfg.route.town}", intent=INTENT, seed=seed, config=cfg.criteria,
            dt_s=cfg.dt_s)
        self._steps, self._steer = 0, 0.0
        frame = self._tick()
        self._t0 = self._elapsed_s()
        return self._obs(frame), self._info([], self._box(self._ego), 0.0)

    def step(self, action: Control) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.criteria is None or self._ego is None:
            raise RuntimeError("step() before reset()")
        self._call("apply the control", self._ego.apply_control, control_to_carla(action))
        self._steer = float(action.steer)
        for _ in range(self.config.ticks_per_control):
            frame = self._tick()
        self._steps += 1
        ego, time_s = self._box(self._ego), self._elapsed_s() - self._t0
        new = self.criteria.update(self._criteria_tick(ego, time_s))
        terminated = self.criteria.done
        truncated = (not terminated and self.config.max_steps is not None
                     and self._steps >= self.config.max_steps)
        return self._obs(frame), 0.0, terminated, truncated, self._info(new, ego, time_s)

    def make_observation(self, obs: dict[str, Any], info: dict[str, Any]) -> Observation:
        if self.observer is None:
            raise RuntimeError("make_observation() before reset()")
        return self.observer.observe(obs["input_data"], info["time_s"], self._steer)

    def privileged_state(self) -> PrivilegedState:
        """The actors and lights now; no live handle (``backend`` None)."""
        if self.criteria is None:
            raise RuntimeError("privileged_state() before reset()")
        ego = self._box(self._ego)
        others = self._world.get_actors()
        actors = tuple(self._box(a) for pattern in ("vehicle.*", "walker.*")
                       for a in others.filter(pattern) if a.id != self._ego.id)
        route = self.criteria.route
        return PrivilegedState(
            time_s=self._elapsed_s() - self._t0, ego=ego, actors=actors,
            lights=self._light_views(), scenario=f"carla:{self.config.route.town}",
            intent=INTENT, route_polyline=route.points.copy(), route_length_m=route.length_m,
            route_progress_m=self.criteria.progress_m,
            speed_limit_mps=self.config.speed_limit_mps,
            outside_route_lanes_m=self.criteria.outside_route_lanes_m, backend=None,
            snapshots=self.privileged_state, lanes=self._lanes)

    def terminate_route(self, reason: str) -> None:
        if self.criteria is not None and not self.criteria.done:
            self.criteria.terminate(reason)

    def route_result(self) -> RouteResult:
        if self.criteria is None:
            raise RuntimeError("route_result() before reset()")
        return self.criteria.result()

    def close(self) -> None:
        """Destroy the sensors, the traffic and the hero; restore the world's settings. A
        server that is gone by now is logged, not raised (nothing is left to clean)."""
        try:
            for sensor in self._sensors:
                sensor.stop()
            for actor in [*self._sensors, *self._traffic, self._ego]:
                if actor is not None and actor.is_alive:
                    actor.destroy()
            if self._world is not None and self._settings is not None:
                self._client.get_trafficmanager(
                    self.config.connection.traffic_manager_port).set_synchronous_mode(False)
                self._world.apply_settings(self._settings)
        except RuntimeError as exc:
            log.warning("CARLA %s: cleaning up failed: %s", self.config.connection.address, exc)
        self._sensors, self._traffic, self._ego, self._settings = [], [], None, None

    # ------------------------------------------------------------------ the server
    def _call(self, what: str, fn, *args: Any) -> Any:
        try:
            return fn(*args)
        except RuntimeError as exc:  # the client's errors (time-outs, refused spawns)
            raise CarlaUnavailableError(
                f"CARLA {self.config.connection.address}: could not {what}: {exc}") from exc

    def _connect(self) -> Any:
        import carla  # optional heavy dependency (the `carla` extra): lazy

        conn, town = self.config.connection, self.config.route.town
        self._client = carla.Client(conn.host, int(conn.port))
        self._client.set_timeout(float(conn.timeout_s))
        world = self._call("connect (is the server running?)", self._client.get_world)
        world_map = world.get_map()
        if town and not world_map.name.endswith(town):
            world = self._call(f"load town {town!r}", self._client.load_world, town)
            world_map = world.get_map()
        self._settings = world.get_settings()
        self._call("make the world synchronous", world.apply_settings,
                   synchronous_settings(self.config.sim_rate_hz))
        tm = self._call("start the Traffic Manager", self._client.get_trafficmanager,
                        conn.traffic_manager_port)
        tm.set_synchronous_mode(True)
        tm.set_random_device_seed(int(self.config.seed))
        if self._map is None or self._map.name != world_map.name:  # once per town
            driving = [w for w in world_map.generate_waypoints(LANE_STEP_M)
                       if w.lane_type == carla.LaneType.Driving]
            self._lanes = tuple(lane_geometries(driving, self.config.speed_limit_mps))
        self._world, self._map = world, world_map
        return world

    def _tick(self) -> int:
        return int(self._call("tick the world", self._world.tick, float(self.config.connection
                                                                        .timeout_s)))

    def _elapsed_s(self) -> float:
        return float(self._world.get_snapshot().timestamp.elapsed_seconds)

    def _spawn_hero(self, world: Any, start: Any) -> None:
        import carla  # optional heavy dependency (the `carla` extra): lazy

        blueprint = world.get_blueprint_library().find(self.config.hero_blueprint)
        blueprint.set_attribute("role_name", "hero")
        loc, rot = start.location, start.rotation
        self._ego = world.spawn_actor(blueprint, carla.Transform(
            carla.Location(x=loc.x, y=loc.y, z=loc.z + 0.5), rot))

    def _spawn_sensors(self, world: Any) -> None:
        library = world.get_blueprint_library()
        dicts = [camera_to_sensor_dict(c) for c in self.config.observer.cameras]
        dicts += navigation_sensors((GNSS_ID, IMU_ID, SPEED_ID), self.config.sim_rate_hz)
        specs = sensor_spawn_specs(dicts, noise=self.config.gnss_noise)
        self._buffer = FrameBuffer([s.sensor_id for s in specs])
        for spec in specs:
            blueprint = library.find(spec.blueprint)
            for key, value in spec.attributes.items():
                blueprint.set_attribute(key, value)
            sensor = world.spawn_actor(blueprint, spec.transform, attach_to=self._ego)
            self._sensors.append(sensor)
            sensor.listen(self._buffer.callback(spec.sensor_id, spec.blueprint))
        collision = world.spawn_actor(library.find("sensor.other.collision"),
                                      _identity_transform(), attach_to=self._ego)
        self._sensors.append(collision)
        self._collisions = CollisionLog()
        collision.listen(self._collisions.on_event)

    def _spawn_traffic(self, world: Any, seed: int) -> None:
        rng = np.random.default_rng(seed)
        blueprints = sorted((b for b in world.get_blueprint_library().filter("vehicle.*")
                             if b.get_attribute("number_of_wheels").as_int() == 4),
                            key=lambda b: b.id)
        start = self._plan_xy[0]
        spots = [t for t in self._map.get_spawn_points()
                 if np.hypot(*(np.array(carla_transform_to_world(t)[:2]) - start))
                 > _SPAWN_CLEARANCE_M]
        port = self.config.connection.traffic_manager_port
        for i in rng.permutation(len(spots))[: self.config.vehicles]:
            actor = world.try_spawn_actor(blueprints[rng.integers(len(blueprints))], spots[i])
            if actor is not None:
                actor.set_autopilot(True, port)
                self._traffic.append(actor)

    def _read_lights(self, world: Any) -> list[tuple[Any, list[LightCrossing]]]:
        return [(light, light_crossings(light.id, light.state, [
            (w.transform, float(w.lane_width)) for w in light.get_stop_waypoints()]))
                for light in world.get_actors().filter("traffic.traffic_light*")]

    # ------------------------------------------------------------------ per tick
    def _obs(self, frame: int) -> dict[str, Any]:
        data = self._buffer.pop_frame(frame, _SENSOR_WAIT_S)
        data[SPEED_ID] = (frame, speedometer_data(self._ego.get_velocity(),
                                                  self._ego.get_transform()))
        return {"input_data": data, "frame": frame}

    def _box(self, actor: Any) -> ActorBox:
        return actor_box(actor.id, actor.type_id, actor.get_transform(),
                         actor.bounding_box.extent, actor.get_velocity())

    def _criteria_tick(self, ego: ActorBox, time_s: float) -> CriteriaTick:
        import carla  # optional heavy dependency (the `carla` extra): lazy

        lane = self._map.get_waypoint(self._ego.get_location(), project_to_road=False,
                                      lane_type=carla.LaneType.Driving)
        lane_yaw = None if lane is None else carla_transform_to_world(lane.transform)[2]
        outside, wrong = lane_flags(ego.yaw, lane_yaw, self.config.criteria.wrong_way_angle_deg)
        lights = []
        for light, crossings in self._lights:
            near = [c for c in crossings if math.hypot(c.light_xy[0] - ego.x,
                                                       c.light_xy[1] - ego.y)
                    < NEARBY_LIGHT_RADIUS_M]
            state = light_state_name(light.state) if near else None
            lights += [dataclasses.replace(c, state=state) for c in near]
        traffic = mean_speed([a.get_velocity() for a in self._traffic if a.is_alive])
        return CriteriaTick(
            time_s=time_s, x=ego.x, y=ego.y, yaw=ego.yaw,
            speed_mps=ego.speed_mps, ego_length=ego.length, ego_width=ego.width,
            collisions=self._collisions.drain(), outside_route_lanes=outside, wrong_way=wrong,
            lights=lights, traffic_speed_mps=traffic)

    def _light_views(self) -> tuple[TrafficLightView, ...]:
        """One view per stop line of each light that is on, its lamps facing the lane's
        approaching traffic (the view's ``yaw``: the lane's driving direction + pi)."""
        views = []
        for light, crossings in self._lights:
            state = light_state_name(light.state)
            if state == "off":
                continue
            x, y, _ = carla_transform_to_world(light.get_transform())
            z = float(light.get_location().z)
            views += [TrafficLightView(int(light.id), x, y, z, float(c.approach_yaw) + math.pi,
                                       LightState(state), c.stop_line) for c in crossings]
        return tuple(views)

    def _info(self, new_infractions: list[Any], ego: ActorBox, time_s: float
              ) -> dict[str, Any]:
        criteria = self.criteria
        instruction = self.observer.instruction()
        return {
            "time_s": time_s, "step": self._steps,
            "ego": {"x": ego.x, "y": ego.y, "yaw": ego.yaw, "speed_mps": ego.speed_mps,
                    "length": ego.length, "width": ego.width, "lane": None},
            "scenario": f"carla:{self.config.route.town}", "intent": INTENT,
            "instruction": instruction, "navigation_instruction": instruction,
            "instruction_kind": "navigation",
            "active_events": [], "instruction_events": [],
            "route_progress_m": criteria.progress_m, "route_length_m": criteria.route.length_m,
            "route_completion": criteria.route_completion,
            "speed_limit_mps": self.config.speed_limit_mps,
            "infractions": [i.to_dict() for i in new_infractions],
        }


def _identity_transform() -> Any:
    import carla  # optional heavy dependency (the `carla` extra): lazy

    return carla.Transform()
