"""Pieces the runtime tests share: deterministic fake policies, observations of a car on a
straight road, and a tiny kinematic loop that drives a runner without the simulator."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from drivevla.core.types import (
    Control,
    Decision,
    EgoState,
    HighLevelCommand,
    Observation,
    RouteInfo,
)

DT = 0.1


def cruise_decision(speed: float = 8.0, steps: int = 6, curvature: float = 0.0) -> Decision:
    """A plan at constant ``speed`` along an arc of ``curvature`` (1/m, + left), ego frame."""
    s = speed * 0.5 * np.arange(1, steps + 1)
    if abs(curvature) < 1e-9:
        pts = np.stack([s, np.zeros_like(s)], axis=-1)
    else:
        r = 1.0 / curvature
        pts = np.stack([r * np.sin(s / r), r * (1 - np.cos(s / r))], axis=-1)
    return Decision(pts, np.full(steps, speed))


def obs_at(t: float, x: float = 0.0, y: float = 0.0, yaw: float = 0.0, speed: float = 8.0
           ) -> Observation:
    return Observation(
        images={}, cameras={}, ego=EgoState(x, y, yaw, speed),
        route=RouteInfo(np.zeros((5, 2)), HighLevelCommand.LANE_FOLLOW, "go_straight", 50.0),
        instruction="Go straight.", timestamp_s=t)


class ScriptedPolicy:
    """Acts by a per-tick script: ``"ok"`` (a cruise plan), ``"raise"``, ``"nan"``,
    ``"fast"`` (100 m/s), ``("sleep", s)`` (on ``clock``), ``("wall", s)`` (``time.sleep``),
    ``"block"`` (until ``release``).
    Ticks past the script's end are ``"ok"``. ``speed`` follows the observed ego speed
    (``None``) or is fixed."""

    name = "scripted"

    def __init__(self, script=(), clock=None, speed: float | None = 8.0) -> None:
        self.script, self.clock, self.speed = list(script), clock, speed
        self.release = threading.Event()
        self.calls = 0

    def reset(self, privileged=None) -> None:
        self.calls = 0

    def act(self, obs: Observation) -> Decision:
        step = self.script[self.calls] if self.calls < len(self.script) else "ok"
        self.calls += 1
        if isinstance(step, tuple) and step[0] == "sleep":
            self.clock.sleep(step[1])
        elif isinstance(step, tuple) and step[0] == "wall":
            time.sleep(step[1])
        elif step == "block":
            self.release.wait(timeout=60)
        elif step == "raise":
            raise RuntimeError("boom")
        decision = cruise_decision(self.speed if self.speed is not None else obs.ego.speed_mps)
        if step == "nan":
            decision.waypoints[2, 1] = math.nan
        elif step == "fast":
            decision.target_speeds[:] = 100.0
        return decision


def advance(ego: EgoState, control: Control, dt: float = DT) -> EgoState:
    """A crude kinematic car: good enough to move the pose between ticks."""
    accel = 4.0 * control.throttle - 8.0 * control.brake
    v = max(ego.speed_mps + accel * dt, 0.0)
    yaw = ego.yaw - 0.3 * control.steer * v * dt
    return EgoState(ego.x + v * math.cos(yaw) * dt, ego.y + v * math.sin(yaw) * dt, yaw, v,
                    accel)


def drive(runner, ticks: int, speed: float = 8.0):
    """(controls, decisions) of ``ticks`` ticks of ``runner`` on the kinematic car."""
    ego, controls, decisions = EgoState(0.0, 0.0, 0.0, speed), [], []
    for k in range(ticks):
        obs = obs_at(round(k * DT, 6), ego.x, ego.y, ego.yaw, ego.speed_mps)
        control, decision = runner.step(obs)
        controls.append(control)
        decisions.append(decision)
        ego = advance(ego, control)
    return controls, decisions


ONE_ROUTE = {"id": "int-right", "scenario": "intersection", "intent": "turn_right",
             "seed": 1700001}


def one_route_suite(folder) -> Path:
    """A suite file of :data:`ONE_ROUTE` alone in ``folder``."""
    path = Path(folder) / "one.yaml"
    path.write_text(yaml.safe_dump({"name": "one", "routes": [ONE_ROUTE]}), encoding="utf-8")
    return path


def route_record(out) -> dict:
    """The route file of :data:`ONE_ROUTE` in the run folder ``out``."""
    return json.loads((Path(out) / "routes" / f"{ONE_ROUTE['id']}.json").read_text())
