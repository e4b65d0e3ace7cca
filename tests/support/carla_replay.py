"""An embedded-simulator drive rendered as CARLA's Leaderboard 2.0 would deliver it to an
agent: the route as a ``global_plan_gps`` of RoadOptions, and each tick's ``input_data``
(BGRA images, GNSS, IMU, speedometer), for the leaderboard agent's replay tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from drivevla.agents.agent import Agent
from drivevla.agents.registry import make_policy
from drivevla.agents.rollout import Hook, run_episode
from drivevla.core.types import Control, Observation
from drivevla.sim_bridge.carla.convert import (
    command_to_road_option,
    reading_to_imu,
    rgb_to_bgra,
    world_xy_to_gnss,
)
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv


@dataclass
class EmbeddedDrive:
    observations: list[Observation]
    controls: list[Control]
    plan_gps: list[tuple[dict[str, float], int]]


class _Record(Hook):
    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.controls: list[Control] = []

    def before_step(self, tick) -> None:  # after every hook: what is applied
        self.observations.append(tick.observation)
        self.controls.append(tick.control)


def gps_plan_of_route(route: Any) -> list[tuple[dict[str, float], int]]:
    """The embedded route's polyline as a dense GPS plan: each vertex with the RoadOption of
    the leg that starts there (legs start at polyline vertices)."""
    starts = [int(np.argmin(np.abs(route.cumulative_m - s))) for s in route.leg_start_m]
    option_at = np.zeros(len(route.polyline), dtype=int)
    for leg, first in zip(route.legs, starts, strict=True):
        option_at[first:] = command_to_road_option(leg.command)
    plan = []
    for (x, y), option in zip(route.polyline, option_at, strict=True):
        lat, lon, alt = world_xy_to_gnss(float(x), float(y))
        plan.append(({"lat": float(lat), "lon": float(lon), "z": float(alt)}, int(option)))
    return plan


def embedded_drive(config: dict[str, Any], ticks: int, policy: str = "drivevla-tiny",
                   seed: int = 0) -> EmbeddedDrive:
    """Drive ``policy`` through an :class:`Agent` for ``ticks`` ticks of the embedded
    simulator; the observations, the controls applied and the route's GPS plan."""
    env = EmbeddedDrivingEnv({**config, "max_steps": ticks})
    record = _Record()
    plan: list = []
    try:
        def driver(e):
            plan.extend(gps_plan_of_route(e.unwrapped.scenario.route))
            return Agent(make_policy(policy))

        run_episode(env, driver, [record], seed=seed, options={"intent": config["intent"]})
    finally:
        env.close()
    return EmbeddedDrive(record.observations, record.controls, plan)


def input_data_of(obs: Observation, frame: int) -> dict[str, tuple[int, Any]]:
    """``input_data`` as the leaderboard hands it over for ``obs``."""
    ego = obs.ego
    data: dict[str, tuple[int, Any]] = {
        name: (frame, rgb_to_bgra(img)) for name, img in obs.images.items()}
    data["gps"] = (frame, world_xy_to_gnss(ego.x, ego.y))
    data["imu"] = (frame, reading_to_imu(ego.accel_mps2, ego.yaw_rate_rps, ego.yaw))
    data["speed"] = (frame, {"speed": float(ego.speed_mps)})
    return data
