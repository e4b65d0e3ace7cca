"""Controllers that turn any ``Decision`` into a ``Control``: a longitudinal PID on target
speed and lateral pure pursuit on the decision's waypoints. The expert and every learned
policy are driven by these same controllers.

Vehicle model assumed (the embedded simulator's): highway-env's kinematic bicycle with the
slip angle ``beta = atan(tan(delta) / 2)`` and yaw rate ``v sin(beta) / (L / 2)``, L = 4.8 m;
longitudinal ``a = throttle * a_max * (1 - v / 50) - brake * b_max - resistance``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivevla.sim_bridge.frames import wheel_angle_to_steer
from drivevla.sim_bridge.types import Control, Decision, EgoState

VEHICLE_LENGTH_M = 4.8


@dataclass
class ControllerConfig:
    """Gains and limits (SI units)."""

    control_dt_s: float = 0.1
    # longitudinal PID on speed error -> desired acceleration
    kp: float = 2.0  # = 1 / speed_preview_s: track the planned acceleration
    ki: float = 0.15
    kd: float = 0.0
    integral_limit: float = 4.0
    integral_band_mps: float = 1.0
    max_accel_mps2: float = 4.0  # the simulator's full-throttle acceleration at standstill
    max_brake_mps2: float = 8.0
    # which target speed to track: the decision's speed at this time ahead (s)
    speed_preview_s: float = 0.5
    stop_speed_mps: float = 0.3  # below this target speed and ego speed: hold the brake
    # lateral pure pursuit
    lookahead_min_m: float = 3.0
    lookahead_gain_s: float = 0.45
    max_steer_deg: float = 35.0


def path_point_at(waypoints: np.ndarray, distance_m: float) -> np.ndarray:
    """The point at arc length ``distance_m`` along origin -> waypoints (ego frame).

    Extrapolates along the last segment when the path is shorter than the distance."""
    pts = np.vstack([np.zeros((1, 2)), np.asarray(waypoints, dtype=np.float64)])
    seg = np.diff(pts, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    keep = lengths > 1e-3
    if not keep.any():
        return np.array([distance_m, 0.0])
    seg, lengths = seg[keep], lengths[keep]
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    starts = np.vstack([np.zeros((1, 2)), np.cumsum(seg, axis=0)[:-1]])
    if distance_m >= cum[-1]:
        direction = seg[-1] / lengths[-1]
        return starts[-1] + seg[-1] + direction * (distance_m - cum[-1])
    i = int(np.searchsorted(cum, distance_m, side="right") - 1)
    return starts[i] + seg[i] * ((distance_m - cum[i]) / lengths[i])


def pure_pursuit_wheel_angle(target_ego: np.ndarray, length_m: float = VEHICLE_LENGTH_M) -> float:
    """Wheel angle (rad, + left) that puts the bicycle on the arc through ``target_ego``.

    The centre of the bicycle moves along ``heading + beta`` (slip angle) on a circle of
    curvature ``2 sin(beta) / L``; requiring that circle to pass through the target, with the
    target expressed in the velocity frame, gives ``tan(beta) = L y / (ld^2 + L x)``."""
    x, y = float(target_ego[0]), float(target_ego[1])
    ld2 = max(x * x + y * y, 1e-6)
    tan_beta = length_m * y / max(ld2 + length_m * x, 1e-6)
    return math.atan(2.0 * tan_beta)


class LongitudinalPID:
    """Speed error -> desired acceleration -> (throttle, brake)."""

    def __init__(self, cfg: ControllerConfig) -> None:
        self.cfg = cfg
        self.integral = 0.0
        self.prev_error: float | None = None

    def reset(self) -> None:
        self.integral = 0.0
        self.prev_error = None

    def control(self, target_speed: float, speed: float) -> tuple[float, float]:
        cfg = self.cfg
        error = target_speed - speed
        # conditional integration (anti-windup): only near the target, not during ramps
        if abs(error) < cfg.integral_band_mps:
            self.integral = float(
                np.clip(
                    self.integral + error * cfg.control_dt_s,
                    -cfg.integral_limit,
                    cfg.integral_limit,
                )
            )
        deriv = 0.0 if self.prev_error is None else (error - self.prev_error) / cfg.control_dt_s
        self.prev_error = error
        accel = cfg.kp * error + cfg.ki * self.integral + cfg.kd * deriv
        # feed-forward the simulator's rolling and air resistance
        resist = (0.1 + 0.0004 * speed * speed) if speed > 0.05 else 0.0
        if accel + resist >= 0.0:
            gain = cfg.max_accel_mps2 * max(1.0 - speed / 50.0, 0.05)
            return float(np.clip((accel + resist) / gain, 0.0, 1.0)), 0.0
        return 0.0, float(np.clip(-(accel + resist) / cfg.max_brake_mps2, 0.0, 1.0))


class TrajectoryController:
    """Decision (ego-frame waypoints + target speeds) -> Control."""

    def __init__(self, cfg: ControllerConfig | None = None) -> None:
        self.cfg = cfg or ControllerConfig()
        self.pid = LongitudinalPID(self.cfg)

    def reset(self) -> None:
        self.pid.reset()

    def target_speed(self, decision: Decision) -> float:
        t = np.arange(1, len(decision.target_speeds) + 1) * decision.dt_s
        return float(np.interp(self.cfg.speed_preview_s, t, decision.target_speeds))

    def control(self, decision: Decision, ego: EgoState) -> Control:
        cfg = self.cfg
        v = max(float(ego.speed_mps), 0.0)
        lookahead = cfg.lookahead_min_m + cfg.lookahead_gain_s * v
        target = path_point_at(decision.waypoints, lookahead)
        wheel = pure_pursuit_wheel_angle(target)
        steer = wheel_angle_to_steer(wheel, math.radians(cfg.max_steer_deg))
        v_target = self.target_speed(decision)
        if v_target < cfg.stop_speed_mps and v < 1.0:
            self.pid.reset()
            return Control(0.0, steer, 1.0)
        throttle, brake = self.pid.control(v_target, v)
        return Control(throttle, steer, brake)
