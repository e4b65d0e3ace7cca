"""The closed-loop benchmark's rollout hooks (:mod:`drivevla.agents.rollout`): the decision
check, the per-tick trace for the comfort and instruction metrics, the explanation
faithfulness probe and the route video."""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import numpy as np

from drivevla.agents.rollout import Driver, Episode, Hook, Tick
from drivevla.benchmarks.instruction_metrics import REFUSAL_REASON
from drivevla.benchmarks.video import Caption, DriveVideo
from drivevla.core.env import Env
from drivevla.core.frames import ego_to_world
from drivevla.core.types import Decision
from drivevla.language.explanations import reason_from_explanation
from drivevla.planner.expert import ExpertPolicy
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv


class InvalidDecisionError(ValueError):
    """The policy returned something the controller cannot safely drive."""


def check_decision(decision: Any) -> None:
    if not isinstance(decision, Decision):
        raise InvalidDecisionError(f"policy returned {type(decision).__name__}, not a Decision")
    wp = np.asarray(decision.waypoints, dtype=np.float64)
    sp = np.asarray(decision.target_speeds, dtype=np.float64)
    if wp.ndim != 2 or wp.shape[1] != 2 or sp.shape != (wp.shape[0],):
        raise InvalidDecisionError(
            f"Decision has waypoints {wp.shape} and target_speeds {sp.shape}; need (T, 2), (T,)"
        )
    if not (np.isfinite(wp).all() and np.isfinite(sp).all()):
        raise InvalidDecisionError("Decision has NaN or inf waypoints or target speeds")


class CheckDecision(Hook):
    """A decision the controller cannot safely drive is an error of the agent."""

    phase = "agent"

    def after_decision(self, tick: Tick) -> None:
        check_decision(tick.decision)


class Trace(Hook):
    """Per-tick record of a drive for the comfort and instruction metrics, the ticks per
    sensor fault the agent's monitor reported (``Decision.health``), and the drive's record for
    the report (:meth:`drive_record`: path, speeds, planned speeds, reasons, the route)."""

    def __init__(self) -> None:
        self.pose: list[tuple[float, float, float, float]] = []  # x, y, yaw, speed per obs
        self.times: list[float] = []  # per decision
        self.active: list[list[int]] = []
        self.refused: list[bool] = []
        self.speeds: list[float] = []
        self.outside_times: list[float] = []
        self._outside_m = 0.0
        self.explanations: list[dict[str, Any]] = []
        self.reason_agree: list[bool] = []  # the policy's reason head vs the expert, per tick
        self.env: EmbeddedDrivingEnv | None = None  # the trace reads its criteria
        self.info: dict[str, Any] = {}  # the latest info the env returned
        self.sensor_faults: dict[str, int] = {}  # ticks per fault code of Decision.health
        # per decision: the policy's planned speed at its first waypoint and its reason; the
        # shadow expert's (Explainer) when one runs
        self.planned_speeds: list[float] = []
        self.reasons: list[str | None] = []
        self.expert_speeds: list[float] = []
        self.expert_reasons: list[str | None] = []
        self.route_polyline: list[list[float]] = []
        self.speed_limit_mps: float | None = None
        self.runtime: dict[str, Any] | None = None  # the real-time runner's stats, at the end
        self.faults: dict[str, int] | None = None  # faults injected by kind, at the end

    def on_reset(self, env: Env, driver: Driver, info: dict[str, Any]) -> None:
        self.env, self.info = env, info
        self.speed_limit_mps = info.get("speed_limit_mps")
        route = getattr(getattr(env, "scenario", None), "route", None)
        if route is not None:
            self.route_polyline = _rounded_xy(route.polyline)

    def observe(self, info: dict[str, Any]) -> None:
        ego = info["ego"]
        self.pose.append((ego["x"], ego["y"], ego["yaw"], ego["speed_mps"]))

    def before_tick(self, tick: Tick) -> None:
        self.observe(tick.info)

    def after_decision(self, tick: Tick) -> None:
        info, decision = tick.info, tick.decision
        self.times.append(float(info["time_s"]))
        self.active.append([int(i) for i in info.get("active_events", [])])
        self.refused.append(
            str(getattr(decision.reason, "value", decision.reason)) == REFUSAL_REASON
        )
        self.speeds.append(float(info["ego"]["speed_mps"]))
        self.planned_speeds.append(_first_speed(decision))
        self.reasons.append(_reason_value(decision.reason))
        health = getattr(decision, "health", None)
        for code in health.faults if health is not None else ():
            self.sensor_faults[code] = self.sensor_faults.get(code, 0) + 1

    def after_step(self, tick: Tick, info: dict[str, Any]) -> None:
        self.info = info
        # the criteria record outside-lanes once per route; the trace needs when it happened
        # (their running count, not a whole privileged snapshot, on this per-tick path)
        outside_m = self.env.criteria.outside_route_lanes_m
        if outside_m > self._outside_m + 1e-9:
            self.outside_times.append(float(info["time_s"]))
        self._outside_m = outside_m

    def on_end(self, episode: Episode) -> None:
        if episode.error is None:
            self.observe(episode.info)  # the final pose

    def drive_record(self) -> dict[str, Any]:
        """The drive for the report (world metres, m/s, rounded): per decision tick its time,
        the ego speed, the planned speed at the first waypoint and the reason (and the shadow
        expert's, when one ran); the path (every observed pose, the last included); the route
        polyline and its speed limit."""
        n = len(self.times)
        record: dict[str, Any] = {
            "time_s": [round(t, 3) for t in self.times],
            "speed_mps": [round(v, 3) for v in self.speeds],
            "planned_speed_mps": [round(v, 3) for v in self.planned_speeds[:n]],
            "reason": self.reasons[:n],
            "path_xy": _rounded_xy([(p[0], p[1]) for p in self.pose]),
            "route_polyline": self.route_polyline,
            "speed_limit_mps": self.speed_limit_mps,
        }
        if self.expert_speeds:
            record["expert_planned_speed_mps"] = [round(v, 3) for v in self.expert_speeds[:n]]
            record["expert_reason"] = self.expert_reasons[:n]
        return record


def _first_speed(decision: Decision) -> float:
    """The planned speed (m/s) at a decision's first waypoint (0 for an empty plan)."""
    speeds = np.asarray(decision.target_speeds, dtype=np.float64).reshape(-1)
    return float(speeds[0]) if len(speeds) else 0.0


def _rounded_xy(points: Any) -> list[list[float]]:
    pts = np.asarray(points, dtype=np.float64)
    if pts.size == 0:
        return []
    return [[round(float(x), 2), round(float(y), 2)] for x, y in pts.reshape(len(pts), -1)[:, :2]]


class Explainer(Hook):
    """Faithfulness of a learned policy's explanations: a shadow privileged expert runs
    beside the policy on every tick (it keeps its own state; its controls are never applied)
    and, every ``every`` ticks, the policy's explanation is generated and the reason it names
    (:func:`reason_from_explanation`) compared with the expert's reason at that tick. The
    explanation then rides on decisions that have none (for the video). Off for a policy
    without ``explain()``."""

    phase = "explanation"

    def __init__(self, every: int, trace: Trace) -> None:
        self.every, self.trace = every, trace
        self.policy: Any = None
        self.expert: ExpertPolicy | None = None
        self.tick = 0
        self.text: str | None = None
        self.expert_reason: str | None = None  # the shadow expert's reason at this tick

    def on_reset(self, env: Env, driver: Driver, info: dict[str, Any]) -> None:
        policy = getattr(driver, "policy", None)
        if callable(getattr(policy, "explain", None)):
            self.policy, self.expert = policy, ExpertPolicy()
            self.expert.reset(env.privileged_state())

    def after_decision(self, tick: Tick) -> None:
        if self.expert is None:
            return
        decision, trace = tick.decision, self.trace
        expert = self.expert.act(tick.observation)
        expert_reason = self.expert_reason = _reason_value(expert.reason)
        trace.reason_agree.append(_reason_value(decision.reason) == expert_reason)
        trace.expert_reasons.append(expert_reason)
        trace.expert_speeds.append(_first_speed(expert))
        if self.tick % self.every == 0:
            t0 = time.perf_counter()
            self.text = str(self.policy.explain())
            ms = (time.perf_counter() - t0) * 1e3
            named = reason_from_explanation(self.text)
            trace.explanations.append({
                "time_s": float(tick.info["time_s"]),
                "text": self.text,
                "named_reason": None if named is None else named.value,
                "expert_reason": expert_reason,
                "reason_head": _reason_value(decision.reason),
                "faithful": named is not None and named.value == expert_reason,
                "latency_ms": ms,
            })
        self.tick += 1
        if decision.explanation is None and self.text is not None:
            tick.decision = dataclasses.replace(decision, explanation=self.text)


def _reason_value(reason: Any) -> str | None:
    return None if reason is None else str(getattr(reason, "value", reason))


def explanation_metrics(trace: Trace) -> dict[str, Any]:
    ex = trace.explanations
    n_faithful = sum(e["faithful"] for e in ex)
    # which reason the explanation named when the expert had which: {expert: {named: n}}
    confusion: dict[str, dict[str, int]] = {}
    for e in ex:
        row = confusion.setdefault(str(e["expert_reason"]), {})
        named = str(e["named_reason"])  # "None": no reason could be read from the text
        row[named] = row.get(named, 0) + 1
    return {
        "n_explained": len(ex),
        "n_faithful": n_faithful,
        "faithfulness": n_faithful / len(ex) if ex else None,
        "n_ticks_compared": len(trace.reason_agree),
        "n_reason_head_agree": sum(trace.reason_agree),
        "mean_latency_ms": statistics.fmean(e["latency_ms"] for e in ex) if ex else None,
        "reason_confusion": confusion,
        "samples": ex[:: max(1, len(ex) // 12)][:12],
    }


class RouteVideo(DriveVideo):
    """The closed-loop video (:class:`DriveVideo`): the BEV shows the planned trajectory; the
    caption the policy's explanation and reason and, with ``explainer`` (a running
    :class:`Explainer`, whose shadow expert costs nothing more here), the expert's reason at
    each tick beside it."""

    show_reason = True

    def __init__(self, path: Any, control_hz: float, explainer: Explainer | None = None) -> None:
        super().__init__(path, control_hz)
        self.control_hz = control_hz
        self.explainer = explainer

    def on_reset(self, env: Env, driver: Driver, info: dict[str, Any]) -> None:
        # the expert's reason only where the shadow expert runs (a policy with explain())
        self.show_expert = self.explainer is not None and self.explainer.expert is not None
        super().on_reset(env, driver, info)

    def trajectory(self, tick: Tick | None) -> np.ndarray | None:
        if tick is None:
            return None
        ego = tick.observation.ego
        return ego_to_world(tick.decision.waypoints, np.array([ego.x, ego.y]), ego.yaw)

    def caption(self, tick: Tick | None, info: dict[str, Any]) -> Caption:
        base = super().caption(tick, info)
        tick = tick or self._last
        if tick is None:
            return base
        decision = tick.decision
        expert = self.explainer.expert_reason if self.show_expert else None
        return dataclasses.replace(base, explanation=decision.explanation,
                                   reason=_reason_value(decision.reason), expert_reason=expert)
