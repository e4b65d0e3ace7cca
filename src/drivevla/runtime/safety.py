"""The safety filter between a decision and the controller, independent of the learned model.

Two parts on the decision the runner is about to drive (the policy's, or a fallback), one on
the observation before the policy sees it:

- **Feasibility** (:func:`feasible`): target speeds capped at the route's speed limit
  (``RouteInfo.speed_limit_mps``, where the map knows it) and so that the lateral
  acceleration ``v^2 kappa`` along the planned path stays within ``max_lat_accel_mps2``
  (nuPlan's comfort bound, 4.89 m/s^2); speed-ups re-limited from the current speed and
  acceleration to ``max_accel_mps2`` and, in how fast the acceleration may grow, to
  ``max_jerk_mps3`` (nuPlan's longitudinal jerk bound, 4.13 m/s^3). Decelerations are kept:
  a stop the plan asks for is never softened. The path is kept; only the speeds change.
- **Automatic emergency braking** (:class:`Aeb`): from the forward radar of the
  observation (``Observation.radar``), never from route or privileged data. It triggers when
  an object in the corridor ahead (its lateral offset ``range * sin(bearing)`` within
  ``corridor_m``) is closing with a time to collision under ``ttc_s``, or is nearer than
  ``min_range_m`` while the car moves; it then replaces the decision with a stop along the
  same path at ``decel_mps2`` and holds it for ``hold_s`` after the last trigger (no chatter).
- **Instruction gate** (:class:`InstructionGate`): an instruction the policy's own text-only
  refusal head refuses (``policy.refuses(text)``, where the policy has one) never reaches its
  action path: the action pass reads the last instruction it accepted instead (at a route's
  start, the navigator's canonical sentence for the route command), and the decision's reason
  says the instruction was refused (:func:`mark_refused`). The check runs inside the action
  pass's job, so the deadline bounds it too. A policy without ``refuses`` sees every
  instruction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from drivevla.core.types import Decision, EgoState, Observation, RadarReading
from drivevla.language.reasons import Reason
from drivevla.language.route_instructions import render_command_instruction
from drivevla.runtime.fallback import stop_decision
from drivevla.runtime.validity import path_curvatures


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of the safety filter (SI units; see the module docstring)."""

    max_lat_accel_mps2: float = 4.89
    max_accel_mps2: float = 2.4
    max_jerk_mps3: float = 4.13
    speed_limit: bool = True  # cap at RouteInfo.speed_limit_mps
    curvature_chord_m: float = 2.0
    aeb: bool = True
    screen_instructions: bool = True  # the instruction gate
    ttc_s: float = 1.5
    min_range_m: float = 2.0
    corridor_m: float = 1.5
    decel_mps2: float = 6.0
    hold_s: float = 1.0

    def __post_init__(self) -> None:
        positive = ("max_lat_accel_mps2", "max_accel_mps2", "max_jerk_mps3",
                    "curvature_chord_m", "ttc_s",
                    "corridor_m", "decel_mps2")
        bad = [n for n in positive if not getattr(self, n) > 0]
        bad += [n for n in ("min_range_m", "hold_s") if not getattr(self, n) >= 0]
        if bad:
            raise ValueError("SafetyConfig: must be positive (min_range_m, hold_s: >= 0): "
                             + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad))


def feasible(decision: Decision, config: SafetyConfig, ego: EgoState,
             speed_limit_mps: float | None = None) -> Decision:
    """``decision`` with its target speeds capped at the speed limit and for lateral
    acceleration, and speed-ups re-limited in acceleration and jerk from ``ego``'s speed and
    acceleration (see the module docstring); the same object when nothing changes."""
    v = np.asarray(decision.target_speeds, np.float64).clip(min=0.0)
    if config.speed_limit and speed_limit_mps is not None and speed_limit_mps > 0:
        v = np.minimum(v, float(speed_limit_mps))
    v = np.minimum(v, _curvature_caps(np.asarray(decision.waypoints, np.float64), len(v),
                                      config))
    dt = float(decision.dt_s)
    out, prev_v, prev_a = v.copy(), max(float(ego.speed_mps), 0.0), float(ego.accel_mps2)
    for i, target in enumerate(v):
        accel = (target - prev_v) / dt
        if accel > 0:  # a speed-up: within the acceleration and jerk bounds
            accel = min(accel, config.max_accel_mps2,
                        max(prev_a, 0.0) + config.max_jerk_mps3 * dt)
        out[i] = prev_v + accel * dt
        prev_v, prev_a = out[i], accel
    if np.allclose(out, decision.target_speeds):
        return decision
    return replace(decision, target_speeds=out)


def _curvature_caps(wp: np.ndarray, n: int, config: SafetyConfig) -> np.ndarray:
    """Per waypoint, the speed at which the tightest curvature at or ahead of it stays within
    the lateral acceleration bound (inf on a straight path)."""
    cap = np.full(n, np.inf)
    kappa, s_at = path_curvatures(wp, config.curvature_chord_m)
    if not len(kappa):
        return cap
    arc = np.cumsum(np.linalg.norm(np.diff(np.vstack([np.zeros((1, 2)), wp]), axis=0), axis=1))
    for k, s in zip(np.abs(kappa), s_at, strict=True):
        ahead = arc >= s - 1e-9
        cap[ahead] = np.minimum(cap[ahead], math.sqrt(config.max_lat_accel_mps2 / max(k, 1e-9)))
    return cap


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


@dataclass(frozen=True)
class Screened:
    """One screened action pass: the policy's ``decision``, whether the tick's instruction
    was ``refused``, and the instruction the gate holds as accepted after it."""

    decision: Decision
    refused: bool
    accepted: str | None


class InstructionGate:
    """Keeps refused instructions off the action path (see the module docstring).

    :meth:`act` is the action worker's job: the refusal check and the action pass run
    together under the tick's deadline (a new text's check is a whole pass for an exported
    model; on the tick's thread it was unbounded). The runner :meth:`commit` s a screened
    pass that came in time; :meth:`verdict` answers for ticks that fell back, from the checks
    that finished (in time or late: a verdict depends on the text alone)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.accepted: str | None = None  # the last instruction the policy did not refuse
        self._verdicts: dict[str, bool] = {}

    def act(self, policy: Any, obs: Observation) -> Screened:
        """``policy.act`` on ``obs`` as the action path may see it (runs on the worker)."""
        refuses = getattr(policy, "refuses", None)
        text = obs.instruction
        if refuses is None or not text:
            return Screened(policy.act(obs), False, self.accepted)
        refused = bool(refuses(text))
        self._verdicts[text] = refused
        if not refused:
            return Screened(policy.act(obs), False, text)
        seen = replace(obs, instruction=self.accepted
                       or render_command_instruction(obs.route.command))
        return Screened(policy.act(seen), True, self.accepted)

    def commit(self, screened: Screened) -> None:
        """Take the accepted text of a pass that came in time."""
        self.accepted = screened.accepted

    def verdict(self, text: str | None) -> bool:
        """Whether ``text`` is known to be refused (False when no check has finished)."""
        return bool(text) and self._verdicts.get(text, False)


def mark_refused(decision: Decision) -> Decision:
    """``decision`` with the reason a refused instruction gives."""
    return replace(decision, reason=Reason.REFUSED_UNSAFE_INSTRUCTION.value)
