"""Is a policy's output a trajectory a car could drive? The watchdog's plausibility check.

This is not the safety filter (which will clamp feasible-but-uncomfortable plans): it only
rejects outputs that no car can follow, so that the runner falls back instead of steering
on garbage. The bounds sit well outside normal driving (the expert never reaches them) and
near the physical limits of the embedded simulator's car (highway-env's kinematic bicycle,
35 degree wheel lock, 4 m/s^2 full throttle at standstill, 8 m/s^2 full brake):

- every waypoint and target speed finite, at least 3 s ahead (the ``Decision`` contract);
- target speeds in [``min_speed_mps``, ``max_speed_mps``]; the speed the waypoints imply
  (chord length over ``dt_s``) below ``max_speed_mps`` too (no teleporting plans);
- longitudinal acceleration between consecutive target speeds at most ``max_accel_mps2``
  (twice full throttle) and deceleration at most ``max_decel_mps2`` (about 1.5 g; a hard
  stop is a legitimate plan and is never rejected for being uncomfortable);
- path curvature (heading change over arc length between chords at least
  ``curvature_chord_m`` long) at most ``max_curvature_1pm`` (a 4 m radius; the car's lock
  is about 7 m), and lateral acceleration ``v^2 kappa`` at most ``max_lat_accel_mps2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivevla.core.types import Decision
from drivevla.planner.controllers import thin_path


@dataclass(frozen=True)
class TrajectoryBounds:
    """Physical plausibility limits of a decision (SI units); see the module docstring."""

    min_speed_mps: float = -0.5
    max_speed_mps: float = 45.0
    max_accel_mps2: float = 8.0
    max_decel_mps2: float = 15.0
    max_curvature_1pm: float = 0.25
    max_lat_accel_mps2: float = 12.0
    curvature_chord_m: float = 2.0
    min_horizon_s: float = 3.0


def invalid_reason(decision: Any, bounds: TrajectoryBounds | None = None) -> str | None:
    """Why ``decision`` cannot be driven (a short reason naming the value), or None when it
    can. Accepts anything a policy may return: a non-Decision is a reason too."""
    b = bounds or TrajectoryBounds()
    if not isinstance(decision, Decision):
        return f"not a Decision ({type(decision).__name__})"
    wp = np.asarray(decision.waypoints, dtype=np.float64)
    v = np.asarray(decision.target_speeds, dtype=np.float64)
    dt = float(decision.dt_s)
    if wp.ndim != 2 or wp.shape[1] != 2 or v.shape != (wp.shape[0],):
        return f"bad shapes: waypoints {wp.shape}, target_speeds {v.shape}"
    if not (np.isfinite(wp).all() and np.isfinite(v).all() and math.isfinite(dt) and dt > 0):
        return "non-finite waypoints, target speeds or dt_s"
    if len(v) * dt < b.min_horizon_s - 1e-9:
        return f"horizon {len(v) * dt:.2f} s < {b.min_horizon_s} s"
    if v.min() < b.min_speed_mps or v.max() > b.max_speed_mps:
        return (f"target speed {v.min():.1f}..{v.max():.1f} m/s outside "
                f"[{b.min_speed_mps}, {b.max_speed_mps}]")
    steps = np.linalg.norm(np.diff(np.vstack([np.zeros((1, 2)), wp]), axis=0), axis=1) / dt
    if steps.max() > b.max_speed_mps:
        return f"waypoints imply {steps.max():.1f} m/s > {b.max_speed_mps} m/s"
    accel = np.diff(v) / dt
    if len(accel) and (accel.max() > b.max_accel_mps2 or -accel.min() > b.max_decel_mps2):
        return (f"acceleration {accel.min():.1f}..{accel.max():.1f} m/s^2 outside "
                f"[-{b.max_decel_mps2}, {b.max_accel_mps2}]")
    return _curvature_reason(wp, v, dt, b)


def path_curvatures(waypoints: np.ndarray, chord_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(curvature 1/m, arc position m) at the interior vertices of origin -> waypoints
    thinned to chords at least ``chord_m`` long (ego frame); empty under three chords."""
    pts = np.vstack([np.zeros((1, 2)), thin_path(waypoints, chord_m)])
    seg = np.diff(pts, axis=0)
    if len(seg) < 2:
        return np.zeros(0), np.zeros(0)
    lengths = np.linalg.norm(seg, axis=1)
    heading = np.arctan2(seg[:, 1], seg[:, 0])
    turn = (np.diff(heading) + np.pi) % (2 * np.pi) - np.pi
    kappa = turn / (0.5 * (lengths[:-1] + lengths[1:]))
    return kappa, np.cumsum(lengths)[:-1]


def _curvature_reason(wp: np.ndarray, v: np.ndarray, dt: float, b: TrajectoryBounds
                      ) -> str | None:
    kappa, s_at = path_curvatures(wp, b.curvature_chord_m)
    if not len(kappa):
        return None
    worst = float(np.abs(kappa).max())
    if worst > b.max_curvature_1pm:
        return f"curvature {worst:.2f} 1/m > {b.max_curvature_1pm} 1/m"
    # the speed planned where each vertex is reached (arc position along the waypoints)
    arc = np.cumsum(np.linalg.norm(np.diff(np.vstack([np.zeros((1, 2)), wp]), axis=0), axis=1))
    speed_at = np.interp(s_at, arc, v)
    lat = float(np.max(speed_at ** 2 * np.abs(kappa)))
    if lat > b.max_lat_accel_mps2:
        return f"lateral acceleration {lat:.1f} m/s^2 > {b.max_lat_accel_mps2} m/s^2"
    return None
