"""The embedded driving environment: a gymnasium ``Env`` over highway-env roads and traffic,
with Panda3D cameras, traffic lights, pedestrians, lane-level routes and CARLA Leaderboard 2.0
infraction criteria.

Action: ``[throttle, steer, brake]`` (CARLA ``VehicleControl`` semantics, see ``Control``).
Observation (a ``gymnasium.spaces.Dict``):

- ``cameras``: ``{name: (H, W, 3) uint8 RGB}`` for every configured camera (absent if none);
- ``ego``: ``[speed m/s, longitudinal accel m/s^2, yaw rate rad/s, steer (CARLA units)]``;
- ``route``: ``(K, 2)`` next route target points in the ego frame (m);
- ``command``: index into :class:`HighLevelCommand`.

``info`` carries the ground truth (every actor's box, heading and velocity, traffic-light
states, the ego pose, lane and route progress), the instruction, new infractions, and at the
end of an episode the ``route_result``. ``make_observation`` turns (obs, info) into the typed
:class:`~drivevla.core.types.Observation`.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from drivevla.core.env import PrivilegedState
from drivevla.core.frames import wheel_angle_to_steer, world_to_ego
from drivevla.core.types import (
    Control,
    EgoState,
    HighLevelCommand,
    Observation,
    RadarReading,
    RouteInfo,
)
from drivevla.language.events import InstructionEvent, render_event_text
from drivevla.language.phrasing_sets import load_phrasing_set
from drivevla.perception.radar import RadarSpec, forward_radar
from drivevla.sim_bridge.embedded.bev import render_bev
from drivevla.sim_bridge.embedded.camera import CameraRenderer
from drivevla.sim_bridge.embedded.config import SimConfig
from drivevla.sim_bridge.embedded.criteria import (
    CriteriaConfig,
    CriteriaTick,
    LightCrossing,
    RouteCriteria,
    RoutePath,
)
from drivevla.sim_bridge.embedded.geometry import draw_geometry
from drivevla.sim_bridge.embedded.language_hooks import (
    event_slots,
    instruction_success,
    pedestrian_notices,
    render_navigation_for,
)
from drivevla.sim_bridge.embedded.roads import lane_geometries
from drivevla.sim_bridge.embedded.scenario_types import BuildContext
from drivevla.sim_bridge.embedded.scenarios import FAMILIES, build_scenario
from drivevla.sim_bridge.embedded.world import World

NEARBY_LIGHT_RADIUS_M = 60.0
RESET_OPTIONS = {"intent", "instruction", "route_id", "instruction_events"}


class EmbeddedDrivingEnv(gym.Env):
    """One ego vehicle driving a lane-level route in a scenario family."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        config: SimConfig | dict[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(config, SimConfig):
            cfg = config.replace(**overrides) if overrides else config
        else:
            cfg = SimConfig.from_dict({**(config or {}), **overrides})
        if cfg.scenario not in FAMILIES:
            raise ValueError(f"unknown scenario family {cfg.scenario!r}; valid: {sorted(FAMILIES)}")
        if cfg.intent is not None and cfg.intent not in FAMILIES[cfg.scenario].intents:
            raise ValueError(
                f"unknown intent {cfg.intent!r} for family {cfg.scenario!r}; "
                f"valid: {list(FAMILIES[cfg.scenario].intents)}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; valid: {self.metadata['render_modes']}")
        self.config = cfg
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": int(round(cfg.control_hz))}
        self.criteria_config = CriteriaConfig.from_dict(dict(cfg.criteria))
        self.action_space = spaces.Box(
            np.array([0.0, -1.0, 0.0], dtype=np.float32),
            np.array([1.0, 1.0, 1.0], dtype=np.float32),
            dtype=np.float32,
        )
        obs_spaces: dict[str, spaces.Space] = {
            "ego": spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32),
            "route": spaces.Box(
                -np.inf, np.inf, shape=(cfg.route_target_points, 2), dtype=np.float32
            ),
            "command": spaces.Discrete(len(HighLevelCommand)),
        }
        if cfg.radar:  # range m, range rate m/s, bearing rad (left +), detected 0/1
            obs_spaces["radar"] = spaces.Box(
                np.array([0.0, -np.inf, -np.pi, 0.0], dtype=np.float32),
                np.array([np.inf, np.inf, np.pi, 1.0], dtype=np.float32), dtype=np.float32)
        self.radar_spec = RadarSpec(cfg.radar_fov_deg, cfg.radar_range_m,
                                    range_noise_m=cfg.radar_range_noise_m,
                                    rate_noise_mps=cfg.radar_rate_noise_mps)
        self._radar_rng = np.random.default_rng(0)
        self._radar_actor = -1
        if cfg.cameras:
            obs_spaces["cameras"] = spaces.Dict(
                {
                    c.name: spaces.Box(0, 255, shape=(c.height, c.width, 3), dtype=np.uint8)
                    for c in cfg.cameras
                }
            )
        self.observation_space = spaces.Dict(obs_spaces)
        self.world: World | None = None
        self.criteria: RouteCriteria | None = None
        self._renderer = None
        self._lanes = []
        self._steps = 0
        self._route_s = 0.0
        self._episode: dict[str, Any] = {}
        self._last_control = Control()
        self.geometry: dict[str, float] = {}  # the map's parameters (geometry.py)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - RESET_OPTIONS
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; valid: {sorted(RESET_OPTIONS)}"
            )
        user_events = [
            e if isinstance(e, InstructionEvent) else InstructionEvent.from_dict(dict(e))
            for e in options.get("instruction_events") or ()
        ]
        family = FAMILIES[self.config.scenario]
        rng = np.random.default_rng(self.np_random.integers(0, 2**63 - 1))
        # the radar's noise and the map: child streams of the reset seed (they draw nothing
        # from ``rng``, so a seed's traffic is the same on every map)
        radar_seq, geometry_seq = rng.bit_generator.seed_seq.spawn(2)
        self._radar_rng = np.random.default_rng(radar_seq)
        self.geometry = draw_geometry(self.config.scenario, self.config.geometry,
                                      np.random.default_rng(geometry_seq))
        intent = options.get("intent") or self.config.intent or str(rng.choice(family.intents))
        self._build_world(intent, rng)
        # language choices draw from their own stream so they never change the world
        lang_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
        self._plan_language(intent, seed, options, user_events, lang_rng)
        cfg = self.config
        self.criteria = RouteCriteria(
            self.route_path,
            route_id=self._episode["route_id"],
            scenario=cfg.scenario,
            intent=intent,
            seed=-1 if seed is None else int(seed),
            config=self.criteria_config,
            dt_s=cfg.dt_s,
        )
        self._steps = 0
        self._route_s = 0.0
        self._last_control = Control()
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if cfg.cameras:
            self._renderer = CameraRenderer(
                self._lanes, list(cfg.cameras), backend=cfg.render_backend
            )
        self._update_progress()
        return self._observe(), self._info(new_infractions=[])

    def _build_world(self, intent: str, rng: np.random.Generator) -> None:
        """The scenario, its world, lanes and route for ``intent`` (draws from ``rng``)."""
        cfg = self.config
        ctx = BuildContext(
            rng=rng,
            traffic_density=cfg.traffic_density,
            pedestrians=cfg.pedestrians,
            light_cycle_s=cfg.light_cycle_s,
            light_offset_s=cfg.light_offset_s,
            guard_rails=cfg.guard_rails,
            geometry=dict(self.geometry),
        )
        scenario = build_scenario(cfg.scenario, intent, ctx)
        self.scenario = scenario
        self.world = World(scenario, rng, cfg)
        self._lanes = lane_geometries(scenario.network)
        self._route_edges = scenario.route.edges | scenario.extra_route_edges
        self._route_lanes = [
            scenario.network.get_lane((a, b, i))
            for a, b in sorted(self._route_edges)
            for i in range(len(scenario.network.graph[a][b]))
        ]
        self.route_path = RoutePath(scenario.route.polyline, scenario.speed_limit_mps)

    def _plan_language(
        self,
        intent: str,
        seed: int | None,
        options: dict[str, Any],
        user_events: list[InstructionEvent],
        lang_rng: np.random.Generator,
    ) -> None:
        """The navigation instruction, the rendered instruction events and the episode's
        identity (``self._episode``)."""
        cfg, scenario = self.config, self.scenario
        navigation = options.get("instruction") or cfg.instruction
        wordings = load_phrasing_set(cfg.phrasings) if cfg.phrasings is not None else None
        if not navigation:
            navigation = (
                scenario.instruction
                if cfg.instruction_split == "canonical" and wordings is None
                else render_navigation_for(scenario, self.world, lang_rng,
                                           cfg.instruction_split, wordings)
            )
        events = list(user_events)
        if cfg.notice_instructions:
            events += pedestrian_notices(scenario)
        events.sort(key=lambda e: e.start_s)
        split = "train" if cfg.instruction_split == "canonical" else cfg.instruction_split
        self._events = [
            (e, render_event_text(e, lang_rng, split, event_slots(e, scenario), wordings))
            for e in events
        ]
        self._episode = {
            "scenario": cfg.scenario,
            "intent": intent,
            "seed": seed,
            "route_id": options.get("route_id", f"{cfg.scenario}-{intent}-{seed}"),
            "navigation_instruction": navigation,
            "instruction_events": [e.to_dict() | {"text": t} for e, t in self._events],
        }

    def step(self, action):
        if self.world is None or self.criteria is None:
            raise RuntimeError("call reset() before step()")
        if self.criteria.done:
            raise RuntimeError("the episode has ended (terminated); call reset()")
        control = action if isinstance(action, Control) else Control.from_array(action)
        cfg, world = self.config, self.world
        ego = world.ego
        dt = cfg.dt_s / cfg.physics_substeps
        prev_s = self._route_s
        for _ in range(cfg.physics_substeps):
            ego.apply_control(control, dt)
            world.step(dt)
        self._steps += 1
        self._last_control = control
        self._update_progress()
        new = self.criteria.update(self._criteria_tick())
        terminated = self.criteria.done
        truncated = bool(
            cfg.max_steps is not None and self._steps >= cfg.max_steps and not terminated
        )
        reward = (self._route_s - prev_s) / 10.0 - sum(1.0 - i.penalty for i in new)
        info = self._info(new_infractions=new)
        if terminated or truncated:
            info["route_result"] = self.route_result().to_dict()
        return self._observe(), float(reward), terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array" or self.world is None:
            return None
        return self.render_bev()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ views
    def render_bev(self, trajectory_world: np.ndarray | None = None) -> np.ndarray:
        """Top-down debug view centred on the ego (heading up)."""

        return render_bev(
            self._lanes,
            self.world.snapshot(),
            size_px=self.config.bev_size_px,
            metres=self.config.bev_metres,
            route=self.scenario.route.polyline,
            trajectory_world=trajectory_world,
        )

    def route_result(self):
        """The current :class:`RouteResult` with whether the instructed intent was achieved."""
        result = self.criteria.result()
        result.instruction_success = instruction_success(
            self.scenario, self.world, result.route_completion
        )
        return result

    def terminate_route(self, reason: str) -> None:
        """End the route now with ``reason`` as its failure message, unless it has ended."""
        if not self.criteria.done:
            self.criteria.terminate(reason)

    def privileged_state(self) -> PrivilegedState:
        """Ground truth now; ``backend`` is this env (the live world, scenario and lanes)."""
        snap = self.world.snapshot()
        return PrivilegedState(
            time_s=float(snap.time_s),
            ego=snap.ego,
            actors=tuple(snap.actors),
            lights=tuple(snap.lights),
            scenario=self.config.scenario,
            intent=str(self.scenario.intent),
            route_polyline=np.asarray(self.scenario.route.polyline, dtype=np.float64),
            route_length_m=float(self.scenario.route.length_m),
            route_progress_m=float(self._route_s),
            speed_limit_mps=float(self.scenario.speed_limit_mps),
            outside_route_lanes_m=float(self.criteria.outside_route_lanes_m),
            backend=self,
            snapshots=self.privileged_state,
            lanes=tuple(self._lanes),
        )

    @property
    def route_progress_m(self) -> float:
        """Distance (m) along the route polyline of the ego's projection."""
        return float(self._route_s)

    def active_events(self) -> list[tuple[InstructionEvent, str]]:
        """Instruction events active now, with their rendered texts (ground truth)."""
        t = self.world.time_s
        return [(e, text) for e, text in self._events if e.active(t)]

    def _instruction_now(self) -> dict[str, Any]:
        """Navigation instruction plus the texts of the events active now."""
        t = self.world.time_s
        active = [(i, e, text) for i, (e, text) in enumerate(self._events) if e.active(t)]
        kinds = {e.kind for _, e, _ in active}
        kind = next((k for k in ("misleading", "speed", "notice") if k in kinds), "navigation")
        text = " ".join([self._episode["navigation_instruction"], *(x for *_, x in active)])
        return {
            "instruction": text,
            "instruction_kind": kind,
            "active_events": [i for i, _, _ in active],
        }

    @property
    def ego_state(self) -> EgoState:
        ego = self.world.ego
        return EgoState(
            float(ego.position[0]),
            float(ego.position[1]),
            float(ego.heading),
            float(ego.speed),
            float(ego.accel_mps2),
            float(ego.yaw_rate_rps),
            self._steer(),
        )

    def _steer(self) -> float:
        return wheel_angle_to_steer(
            self.world.ego.wheel_angle, math.radians(self.config.max_steer_deg)
        )

    def _update_progress(self) -> None:
        ego = self.world.ego
        self._route_s, self._route_lateral = self.route_path.project(
            ego.position, hint_s=self._route_s
        )

    def _route_targets_world(self) -> np.ndarray:
        return self.scenario.route.points_ahead(
            self._route_s, self.config.route_target_points, self.config.route_target_spacing_m
        )

    def _observe(self) -> dict[str, Any]:
        ego = self.world.ego
        targets = world_to_ego(self._route_targets_world(), ego.position, ego.heading)
        obs: dict[str, Any] = {
            "ego": np.array(
                [ego.speed, ego.accel_mps2, ego.yaw_rate_rps, self._steer()], dtype=np.float32
            ),
            "route": targets.astype(np.float32),
            "command": int(self.scenario.route.command_at(self._route_s).index),
        }
        # one snapshot for every sensor of this tick (the world does not move in between)
        snap = self.world.snapshot() if self.config.radar or self._renderer else None
        if self.config.radar:
            reading = forward_radar(snap, self.radar_spec, self._radar_rng)
            self._radar_actor = -1 if reading is None else reading.actor_id
            obs["radar"] = np.array([0.0, 0.0, 0.0, 0.0] if reading is None else
                                    [reading.range_m, reading.range_rate_mps,
                                     reading.bearing_rad, 1.0], dtype=np.float32)
        if self._renderer is not None:
            self._last_images = self._renderer.render(snap)
            obs["cameras"] = dict(self._last_images)
        return obs

    def _lane_flags(self) -> tuple[bool, bool]:
        """(outside route lanes, wrong way) for the ego centre, with the criteria tolerance."""
        ego = self.world.ego
        tol = self.criteria_config.outside_lane_tolerance_m
        wrong_limit = math.radians(self.criteria_config.wrong_way_angle_deg)
        inside, wrong = False, False
        for lane in self._route_lanes:
            s, lat = lane.local_coordinates(ego.position)
            if -0.5 <= s <= lane.length + 0.5 and abs(lat) <= lane.width_at(s) / 2 + tol:
                inside = True
                if abs(lane.local_angle(ego.heading, s)) > wrong_limit:
                    wrong = True
                else:
                    return False, False
        return (not inside), wrong

    def _criteria_tick(self) -> CriteriaTick:
        world = self.world
        ego = world.ego
        outside, wrong = self._lane_flags()
        lights = []
        for lt in world.lights:
            stop_mid = lt.stop_line.mean(axis=0)
            if np.linalg.norm(stop_mid - ego.position) < NEARBY_LIGHT_RADIUS_M:
                # the check distance is measured to the stop line (the leaderboard's trigger
                # volume), not to the lamp housing across the junction
                lights.append(
                    LightCrossing(
                        lt.light_id,
                        world.light_state(lt).value,
                        lt.stop_line,
                        stop_mid,
                        approach_yaw=lt.facing_yaw - math.pi,
                    )
                )
        # as the leaderboard's MinimumSpeedRouteTest: the mean speed of all background traffic
        speeds = [v.speed for v in world.npcs]
        return CriteriaTick(
            time_s=world.time_s,
            x=float(ego.position[0]),
            y=float(ego.position[1]),
            yaw=float(ego.heading),
            speed_mps=float(
                ego.speed if world.impact_speed_mps is None else world.impact_speed_mps
            ),
            ego_length=ego.LENGTH,
            ego_width=ego.WIDTH,
            collisions=list(world.contacts),
            outside_route_lanes=outside,
            wrong_way=wrong,
            lights=lights,
            traffic_speed_mps=float(np.mean(speeds)) if speeds else None,
        )

    def _info(self, new_infractions) -> dict[str, Any]:
        world = self.world
        snap = world.snapshot()
        ego = world.ego
        return {
            **self._episode,
            "geometry": dict(self.geometry),
            "time_s": world.time_s,
            "step": self._steps,
            "ego": {
                "x": float(ego.position[0]),
                "y": float(ego.position[1]),
                "yaw": float(ego.heading),
                "speed_mps": float(ego.speed),
                "length": ego.LENGTH,
                "width": ego.WIDTH,
                "lane": list(ego.lane_index) if ego.lane_index else None,
            },
            "actors": [
                a.to_dict() | {"vx": float(a.velocity[0]), "vy": float(a.velocity[1])}
                for a in snap.actors
            ],
            "traffic_lights": [lt.to_dict() for lt in snap.lights],
            **self._instruction_now(),
            "route_progress_m": float(self._route_s),
            "route_length_m": float(self.scenario.route.length_m),
            "route_completion": float(self.criteria.route_completion),
            "command": self.scenario.route.command_at(self._route_s).value,
            "speed_limit_mps": float(self.scenario.speed_limit_mps),
            "infractions": [i.to_dict() for i in new_infractions],
        }

    def make_observation(self, obs: dict[str, Any], info: dict[str, Any]) -> Observation:
        """The typed :class:`Observation` for (obs, info) returned by ``reset``/``step``."""
        route = RouteInfo(
            np.asarray(obs["route"], dtype=np.float64),
            list(HighLevelCommand)[int(obs["command"])],
            info["intent"],
            info["route_length_m"] - info["route_progress_m"],
            info.get("speed_limit_mps"),
        )
        return Observation(
            images=dict(obs.get("cameras", {})),
            cameras={c.name: c for c in self.config.cameras},
            ego=self.ego_state,
            route=route,
            instruction=info["instruction"],
            timestamp_s=info["time_s"],
            radar=self._radar_reading(obs),
        )

    def _radar_reading(self, obs: dict[str, Any]) -> RadarReading | None:
        radar = obs.get("radar")
        if radar is None or radar[3] < 0.5:
            return None
        return RadarReading(float(radar[0]), float(radar[1]), float(radar[2]),
                            self._radar_actor)
