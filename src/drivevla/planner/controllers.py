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

from drivevla.core.frames import wheel_angle_to_steer
from drivevla.core.types import Control, Decision, EgoState

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
    # the most acceleration asked for when speeding up, e.g. 2.2: just under the comfort
    # bound of nuPlan / Bench2Drive (2.40 m/s^2); a plan whose target speed jumps otherwise
    # gets full throttle (4 m/s^2 at standstill). Braking is never capped. None (default):
    # no cap. Measured with drivevla-tiny on `val` (2026-12-02): 2.2 raised comfort 73.5 ->
    # 87.8 % but cost 2.9 DS (merges, which need the acceleration: 73.8 -> 51.9).
    comfort_accel_mps2: float | None = None
    # which target speed to track: the decision's speed at this time ahead (s)
    speed_preview_s: float = 0.5
    stop_speed_mps: float = 0.3  # below this target speed and ego speed: hold the brake
    # lateral pure pursuit
    lookahead_min_m: float = 3.0
    lookahead_gain_s: float = 0.45
    # waypoints closer than this to the previous one are ignored when steering (a plan
    # slowing to a stop bunches them; their direction is noise): see thin_path
    path_min_spacing_m: float = 1.0
    max_steer_deg: float = 35.0


def thin_path(waypoints: np.ndarray, min_spacing_m: float) -> np.ndarray:
    """The waypoints (ego frame) with every point closer than ``min_spacing_m`` to the last
    point kept (the origin first) dropped.

    A plan that slows to a stop bunches its last points within centimetres of each other;
    the direction between two of them is then noise, and extrapolating a path along it can
    ask for full steering lock (traced: a learned policy braking in a left turn, waypoints
    0.2 m apart, steered full left at 3.6 m/s and left its lane). Measured along the path,
    thinning keeps the chords that carry its direction."""
    pts = np.asarray(waypoints, dtype=np.float64).reshape(-1, 2)
    kept: list[np.ndarray] = []
    last = np.zeros(2)
    for p in pts:
        if np.linalg.norm(p - last) >= min_spacing_m:
            kept.append(p)
            last = p
    return np.array(kept).reshape(-1, 2)


def path_point_at(waypoints: np.ndarray, distance_m: float, min_spacing_m: float = 1e-3
                  ) -> np.ndarray:
    """The point at arc length ``distance_m`` along origin -> waypoints (ego frame).

    Waypoints closer than ``min_spacing_m`` to the previous one kept are ignored (see
    :func:`thin_path`). Extrapolates along the last kept segment when the path is shorter
    than the distance; straight ahead when no waypoint is kept (a plan to stand still)."""
    pts = thin_path(waypoints, max(min_spacing_m, 1e-3))
    if len(pts) == 0:
        return np.array([distance_m, 0.0])
    pts = np.vstack([np.zeros((1, 2)), pts])
    seg = np.diff(pts, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    starts = pts[:-1]
    if distance_m >= cum[-1]:
        direction = seg[-1] / lengths[-1]
        return pts[-1] + direction * (distance_m - cum[-1])
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
        if cfg.comfort_accel_mps2 is not None:
            accel = min(accel, cfg.comfort_accel_mps2)
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
        target = path_point_at(decision.waypoints, lookahead, cfg.path_min_spacing_m)
        wheel = pure_pursuit_wheel_angle(target)
        steer = wheel_angle_to_steer(wheel, math.radians(cfg.max_steer_deg))
        v_target = self.target_speed(decision)
        if v_target < cfg.stop_speed_mps and v < 1.0:
            self.pid.reset()
            return Control(0.0, steer, 1.0)
        throttle, brake = self.pid.control(v_target, v)
        return Control(throttle, steer, brake)
