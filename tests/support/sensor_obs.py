"""Observations for the sensor-health tests: crafted frames and real drives of the embedded
simulator (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from drivevla.agents.agent import Agent
from drivevla.agents.rollout import Hook, run_episode
from drivevla.core.types import (
    CameraSpec,
    Decision,
    EgoState,
    HighLevelCommand,
    Observation,
    RouteInfo,
)
from drivevla.planner.expert import ExpertPolicy
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv

H, W = 180, 320  # the embedded simulator's default front camera
# the quiet urban street, straight on, reaching a red light after ~5 s and standing at it for
# ~30 s: no traffic or pedestrians, so the stopped ego sees a static scene
RED_LIGHT_STOP = {
    "scenario": "urban", "intent": "go_straight", "light_offset_s": 43.0,
    "light_cycle_s": [40.0, 3.0, 45.0], "traffic_density": 0.0, "pedestrians": False,
}


def observation(
    images: dict[str, np.ndarray] | None = None,
    *,
    t: float = 0.0,
    speed: float = 5.0,
    cameras: dict[str, CameraSpec] | None = None,
    ego_state: EgoState | None = None,
    **ego: float,
) -> Observation:
    """An observation of ``images`` (one spec per image unless ``cameras`` is given) with
    ``ego_state`` or an ego at the origin with ``speed`` and the ``ego`` fields given."""
    images = {} if images is None else images
    if cameras is None:
        cameras = {n: CameraSpec(name=n, width=i.shape[1], height=i.shape[0])
                   for n, i in images.items()}
    return Observation(
        images=images,
        cameras=cameras,
        ego=ego_state or EgoState(**{"x": 0.0, "y": 0.0, "yaw": 0.0, "speed_mps": speed, **ego}),
        route=RouteInfo(np.zeros((5, 2)), HighLevelCommand.LANE_FOLLOW, "go_straight", 50.0),
        instruction="Go straight.",
        timestamp_s=t,
    )


@dataclass
class DriveTick:
    timestamp_s: float
    ego: EgoState
    frame_crc: int | None  # CRC-32 of the first camera's frame
    frame: np.ndarray | None
    decision: Decision


class _Record(Hook):
    def __init__(self, keep_frames: bool) -> None:
        self.keep_frames = keep_frames
        self.ticks: list[DriveTick] = []

    def after_decision(self, tick) -> None:
        obs = tick.observation
        img = next(iter(obs.images.values()), None)
        self.ticks.append(DriveTick(
            obs.timestamp_s,
            obs.ego,
            None if img is None else zlib.crc32(np.ascontiguousarray(img).data),
            img.copy() if self.keep_frames and img is not None else None,
            tick.decision,
        ))


def expert_drive(config: dict, ticks: int, seed: int = 0, keep_frames: bool = False):
    """Drive the expert through an :class:`Agent` for ``ticks`` ticks; the ticks recorded."""
    env = EmbeddedDrivingEnv({**config, "max_steps": ticks})
    record = _Record(keep_frames)
    try:
        run_episode(env, lambda e: Agent(ExpertPolicy()), [record], seed=seed,
                    options={"intent": config["intent"]})
    finally:
        env.close()
    return record.ticks


def longest_run(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best
