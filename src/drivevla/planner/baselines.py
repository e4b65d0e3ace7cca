"""Baseline policies under the common contract, so that every table has anchors.

- ``lane_keep``: keeps the lane it is in (straight on at junctions) at a constant speed;
  ignores traffic, lights, pedestrians and instructions.
- ``idm``: the same lane following with an IDM gap to whatever is ahead in its lane (vehicles,
  pedestrians) and stops at red lights; ignores instructions (goes straight on at junctions).

Both read ground truth from the :class:`~drivevla.core.env.PrivilegedState` handed to
``reset`` (they are privileged).
"""

from __future__ import annotations

import numpy as np

from drivevla.core.env import PrivilegedBackend, PrivilegedState
from drivevla.core.types import Decision, MetaAction, Observation
from drivevla.language.reasons import Reason
from drivevla.planner.trajectory import SpeedCap, follow_lanes, plan_decision

PLAN_LENGTH_M = 60.0


class _LaneFollowingBase:
    name = "base"

    def __init__(self) -> None:
        self.sim: PrivilegedBackend | None = None
        self.speed_limit_mps = 0.0

    def reset(self, privileged: PrivilegedState | None = None) -> None:
        if privileged is None:
            raise ValueError(
                f"policy {self.name!r} is privileged: reset() needs the simulator's "
                "PrivilegedState (env.privileged_state())"
            )
        self.sim = privileged.live_backend(f"policy {self.name!r}")
        self.speed_limit_mps = privileged.speed_limit_mps

    def _path(self) -> np.ndarray:
        world = self.sim.world
        ego = world.ego
        return follow_lanes(world.road.network, ego.lane_index, ego.position, PLAN_LENGTH_M)

    def caps(self, path: np.ndarray, obs: Observation) -> list[SpeedCap]:
        return []

    def cruise_speed(self, obs: Observation) -> float:
        return 0.8 * self.speed_limit_mps

    def act(self, obs: Observation) -> Decision:
        ego = obs.ego
        path = self._path()
        caps = [SpeedCap(0.0, self.cruise_speed(obs), "cruise"), *self.caps(path, obs)]
        binding = min(caps, key=lambda c: c.speed_mps + 0.05 * c.s_m)
        stopping = binding.speed_mps < 0.5 and binding.tag != "cruise"
        return plan_decision(
            path,
            ego.xy,
            ego.yaw,
            ego.speed_mps,
            caps,
            meta_action=MetaAction.STOP if stopping else MetaAction.KEEP_LANE,
            reason=binding.tag if binding.tag != "cruise" else Reason.FOLLOW_ROUTE.value,
        )


class LaneKeepPolicy(_LaneFollowingBase):
    """Constant-speed lane keeping."""

    name = "lane_keep"


class IDMPolicy(_LaneFollowingBase):
    """Lane following with IDM-like gaps and red-light stops; no instructions."""

    name = "idm"
    min_gap_m = 4.0
    time_gap_s = 1.5

    def caps(self, path: np.ndarray, obs: Observation) -> list[SpeedCap]:
        world = self.sim.world
        ego = world.ego
        caps: list[SpeedCap] = []
        half = 1.4
        rel = np.cumsum(
            np.linalg.norm(np.diff(np.vstack([ego.position[None], path]), axis=0), axis=1)
        )
        for obj in [*world.npcs, *world.pedestrians]:
            d = np.linalg.norm(path - obj.position, axis=1)
            i = int(np.argmin(d))
            if d[i] < half + obj.WIDTH / 2 and i > 0:
                gap = rel[i] - ego.LENGTH / 2 - obj.LENGTH / 2
                stop_at = max(gap - self.min_gap_m, 0.0)
                caps.append(
                    SpeedCap(
                        stop_at,
                        max(0.0, float(obj.speed) * 0.9),
                        Reason.SLOW_LEADER.value
                        if obj in world.npcs
                        else Reason.PEDESTRIAN_CROSSING.value,
                    )
                )
        for light in world.lights:
            state = world.light_state(light).value
            if state == "green":
                continue
            mid = light.stop_line.mean(axis=0)
            d = np.linalg.norm(path - mid, axis=1)
            i = int(np.argmin(d))
            if d[i] < 2.0:
                dist = rel[i] - ego.LENGTH / 2
                v = max(float(ego.speed), 0.1)
                if state == "yellow" and dist < v * v / (2 * 3.0):
                    continue
                caps.append(SpeedCap(max(dist - 1.0, 0.0), 0.0, Reason.RED_LIGHT.value))
        return caps

    def cruise_speed(self, obs: Observation) -> float:
        return 0.9 * self.speed_limit_mps
