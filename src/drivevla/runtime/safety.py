"""The safety filter between a decision and the controller, independent of the learned model.

Two parts, both on the decision the runner is about to drive (the policy's, or a fallback):

- **Feasibility** (:func:`feasible`): target speeds capped so that the lateral acceleration
  ``v^2 kappa`` along the planned path stays within ``max_lat_accel_mps2`` (nuPlan's comfort
  bound, 4.89 m/s^2), and speed-ups re-limited to ``max_accel_mps2`` between steps from the
  current speed (decelerations are kept: a stop the plan asks for is never softened). The
  path is kept; only the speeds change.
- **Automatic emergency braking** (:class:`Aeb`): from the forward radar of the
  observation (``Observation.radar``), never from route or privileged data. It triggers when
  an object in the corridor ahead (its lateral offset ``range * sin(bearing)`` within
  ``corridor_m``) is closing with a time to collision under ``ttc_s``, or is nearer than
  ``min_range_m`` while the car moves; it then replaces the decision with a stop along the
  same path at ``decel_mps2`` and holds it for ``hold_s`` after the last trigger (no chatter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from drivevla.core.types import Decision, EgoState, RadarReading
from drivevla.runtime.fallback import stop_decision
from drivevla.runtime.validity import path_curvatures


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of the safety filter (SI units; see the module docstring)."""

    max_lat_accel_mps2: float = 4.89
    max_accel_mps2: float = 2.4
    curvature_chord_m: float = 2.0
    aeb: bool = True
    ttc_s: float = 1.5
    min_range_m: float = 2.0
    corridor_m: float = 1.5
    decel_mps2: float = 6.0
    hold_s: float = 1.0

    def __post_init__(self) -> None:
        positive = ("max_lat_accel_mps2", "max_accel_mps2", "curvature_chord_m", "ttc_s",
                    "corridor_m", "decel_mps2")
        bad = [n for n in positive if not getattr(self, n) > 0]
        bad += [n for n in ("min_range_m", "hold_s") if not getattr(self, n) >= 0]
        if bad:
            raise ValueError("SafetyConfig: must be positive (min_range_m, hold_s: >= 0): "
                             + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad))


def feasible(decision: Decision, config: SafetyConfig, v_now: float) -> Decision:
    """``decision`` with its target speeds capped for lateral acceleration and re-limited in
    acceleration (see the module docstring); the same object when nothing changes."""
    v = np.asarray(decision.target_speeds, np.float64).clip(min=0.0)
    wp = np.asarray(decision.waypoints, np.float64)
    kappa, s_at = path_curvatures(wp, config.curvature_chord_m)
    if len(kappa):
        arc = np.cumsum(np.linalg.norm(np.diff(np.vstack([np.zeros((1, 2)), wp]), axis=0),
                                       axis=1))
        # the tightest curvature at or ahead of each waypoint's position limits its speed
        cap = np.full(len(v), np.inf)
        for k, s in zip(np.abs(kappa), s_at, strict=True):
            cap[arc >= s - 1e-9] = np.minimum(cap[arc >= s - 1e-9],
                                              math.sqrt(config.max_lat_accel_mps2 / max(k, 1e-9)))
        v = np.minimum(v, cap)
    dt = float(decision.dt_s)
    out, prev = v.copy(), max(float(v_now), 0.0)
    for i, target in enumerate(v):
        out[i] = min(target, prev + config.max_accel_mps2 * dt)
        prev = out[i]
    if np.allclose(out, decision.target_speeds):
        return decision
    return replace(decision, target_speeds=out)


class Aeb:
    """Automatic emergency braking from the forward radar (see the module docstring)."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._until_s = -math.inf
        self.active = False

    def threat(self, radar: RadarReading | None, speed_mps: float) -> bool:
        """Whether ``radar``'s object calls for emergency braking now."""
        cfg = self.config
        if radar is None or abs(radar.range_m * math.sin(radar.bearing_rad)) > cfg.corridor_m:
            return False
        if radar.range_m < cfg.min_range_m and speed_mps > 1.0:
            return True
        return radar.time_to_collision_s < cfg.ttc_s

    def step(self, decision: Decision, radar: RadarReading | None, ego: EgoState,
             time_s: float) -> Decision:
        """The decision to drive: ``decision``, or an emergency stop along its path while the
        AEB is triggered or holding (:attr:`active` says which)."""
        if self.threat(radar, ego.speed_mps):
            self._until_s = time_s + self.config.hold_s
        self.active = time_s <= self._until_s
        if not self.active:
            return decision
        return emergency_stop(decision, ego, self.config.decel_mps2)


def emergency_stop(decision: Decision, ego: EgoState, decel_mps2: float) -> Decision:
    """A stop from the current speed at ``decel_mps2`` along ``decision``'s path (made at the
    current pose: the fallback's stop, keeping the decision's reason and explanation)."""
    stop = stop_decision(decision, ego, ego, decel_mps2)
    return replace(stop, reason=decision.reason, explanation=decision.explanation)
