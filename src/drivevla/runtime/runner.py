"""The real-time runner: any policy, a control every tick, on time, whatever the policy does.

:class:`RealtimeRunner` is an :class:`~drivevla.agents.agent.Agent` (a rollout driver) whose
``step`` never waits on the policy past a deadline (default: one control period minus the
controller's budget). Each tick:

1. the sensor check runs (as in ``Agent``); the policy's ``act`` runs on the action worker
   (:mod:`drivevla.runtime.worker`) against the deadline, behind the instruction gate
   (:class:`~drivevla.runtime.safety.InstructionGate`) when the safety filter screens
   instructions: the gate's refusal check is part of the same job, so nothing unbounded runs
   on the tick's thread;
2. the result is used when it came in time and passes :func:`invalid_reason`; otherwise the
   tick falls back with its cause: ``deadline``, ``busy`` (a late job still runs),
   ``exception: ...`` or ``invalid: ...``;
3. fallback (:mod:`drivevla.runtime.fallback`): for ``hold_horizon_s`` after the last valid
   decision, that decision re-timed to the current pose (``hold``); after it, a controlled
   stop along the same path at ``stop_decel_mps2``, hazard flagged (``stop``). The first
   valid decision ends the fallback;
4. the controller turns the decision into the control; the tick's wall time is accounted;
5. with an :class:`~drivevla.runtime.explainer.ExplanationWorker`, a valid decision is
   offered to it (its own thread, a lower rate) and a finished explanation is published: the
   latest text rides on ``Decision.explanation`` (when the policy gave none) and in
   :attr:`RealtimeRunner.explanations` with the tick it belongs to. Controls never wait for
   it or depend on it.

Every decision carries a :class:`~drivevla.core.types.RuntimeStatus` (``Decision.runtime``);
:attr:`RealtimeRunner.stats` counts fallbacks by cause and late ticks for the route record;
entering and leaving fallback is logged with the cause.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from drivevla.agents.agent import Agent
from drivevla.core.env import Env
from drivevla.core.policy import Policy
from drivevla.core.types import Control, Decision, EgoState, Observation, RuntimeStatus
from drivevla.perception.sensor_health import SensorHealthMonitor
from drivevla.planner.controllers import TrajectoryController
from drivevla.runtime.clock import Clock, MonotonicClock
from drivevla.runtime.explainer import Explanation, ExplanationWorker
from drivevla.runtime.fallback import hold_decision, stop_decision
from drivevla.runtime.safety import (
    Aeb,
    InstructionGate,
    SafetyConfig,
    feasible,
    mark_refused,
)
from drivevla.runtime.validity import TrajectoryBounds, invalid_reason
from drivevla.runtime.worker import ActionWorker

log = logging.getLogger(__name__)

MAX_EVENTS = 200  # mode changes kept in a route record (a 30 %-fault route has hundreds)


@dataclass(frozen=True)
class RealtimeConfig:
    """The runner's timing and fallback settings (seconds, m/s^2).

    ``deadline_s``: how long a tick may take until its decision is chosen (the sensor
    check and the action worker's job: the instruction gate and the action pass); None =
    ``control_dt_s - controller_budget_s`` (what is left covers the filter and the
    controller).
    ``hold_horizon_s``: how long after the last valid decision it is followed before the
    stop begins. ``stop_decel_mps2``: the stop's deceleration (under
    nuPlan's 4.05 m/s^2 comfort bound)."""

    control_dt_s: float = 0.1
    deadline_s: float | None = None
    controller_budget_s: float = 0.010
    hold_horizon_s: float = 1.0
    stop_decel_mps2: float = 2.0
    bounds: TrajectoryBounds = field(default_factory=TrajectoryBounds)
    # the safety filter (feasibility limits, AEB from the radar); None: off
    safety: SafetyConfig | None = None

    def __post_init__(self) -> None:
        if not self.control_dt_s > 0:
            raise ValueError(f"control_dt_s={self.control_dt_s!r} must be positive")
        if not 0 < self.effective_deadline_s <= self.control_dt_s:
            raise ValueError(
                f"deadline {self.effective_deadline_s!r} s must be in (0, control_dt_s="
                f"{self.control_dt_s}]: set deadline_s or a smaller controller_budget_s")
        if self.hold_horizon_s < 0 or not self.stop_decel_mps2 > 0:
            raise ValueError(f"hold_horizon_s={self.hold_horizon_s!r} must be >= 0 and "
                             f"stop_decel_mps2={self.stop_decel_mps2!r} positive")

    @property
    def effective_deadline_s(self) -> float:
        if self.deadline_s is not None:
            return float(self.deadline_s)
        return self.control_dt_s - self.controller_budget_s


@dataclass
class RuntimeStats:
    """The runner's accounting of one episode (for the route record)."""

    ticks: int = 0
    fallback_ticks: int = 0
    fallback_entries: int = 0  # times the runner left the policy's decisions for a fallback
    stop_ticks: int = 0
    causes: dict[str, int] = field(default_factory=dict)
    aeb_ticks: int = 0  # ticks driven by the AEB's emergency stop
    aeb_activations: int = 0  # times it began braking
    speed_limited_ticks: int = 0  # ticks whose target speeds the safety filter lowered
    refused_instruction_ticks: int = 0  # ticks the instruction gate kept the text away
    late_ticks: int = 0  # ticks whose control took longer than one control period (wall)
    max_tick_s: float = 0.0  # the slowest tick's wall time (action wait + controller)
    # where the slowest tick spent its time: its index and the wall time (s) before the action
    # worker was asked (the sensor check)
    slowest_tick: int | None = None
    slowest_tick_pre_s: float = 0.0
    # fallback entries and exits, the first MAX_EVENTS of them (all are logged)
    events: list[dict[str, Any]] = field(default_factory=list)
    events_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "fallback_ticks": self.fallback_ticks,
                "fallback_entries": self.fallback_entries, "stop_ticks": self.stop_ticks,
                "causes": dict(self.causes),
                "aeb_ticks": self.aeb_ticks, "aeb_activations": self.aeb_activations,
                "speed_limited_ticks": self.speed_limited_ticks,
                "refused_instruction_ticks": self.refused_instruction_ticks,
                "late_ticks": self.late_ticks, "max_tick_ms": round(self.max_tick_s * 1e3, 3),
                "slowest_tick": self.slowest_tick,
                "slowest_tick_pre_ms": round(self.slowest_tick_pre_s * 1e3, 3),
                "events": list(self.events), "events_dropped": self.events_dropped}


def cause_key(cause: str) -> str:
    """The cause's kind, for counting: ``exception: ValueError: x`` -> ``exception``."""
    return cause.split(":", 1)[0]


class RealtimeRunner(Agent):
    """A policy under deadlines with a fallback (see the module docstring)."""

    def __init__(self, policy: Policy, controller: TrajectoryController | None = None,
                 monitor: SensorHealthMonitor | None = None,
                 config: RealtimeConfig | None = None, clock: Clock | None = None,
                 explainer: ExplanationWorker | None = None) -> None:
        super().__init__(policy, controller, monitor)
        self.config = config or RealtimeConfig()
        self.clock = clock or MonotonicClock()
        self.worker = ActionWorker(self.clock)
        self.explainer = explainer
        safety = self.config.safety
        self.aeb = Aeb(safety) if safety is not None and safety.aeb else None
        self.gate = InstructionGate() if safety is not None and safety.screen_instructions \
            else None
        self._reset_state()

    def _reset_state(self) -> None:
        self.tick = 0
        self.stats = RuntimeStats()
        self._valid: Decision | None = None  # the last valid decision
        self._valid_pose: EgoState | None = None  # the pose it was made at
        self._valid_time_s = 0.0  # its observation's timestamp
        self._mode = "policy"
        self._explanation: Explanation | None = None
        if self.aeb is not None:
            self.aeb.reset()
        if self.gate is not None:
            self.gate.reset()

    @property
    def explanations(self) -> list[Explanation]:
        """The explanations published this episode (empty without an explainer)."""
        return [] if self.explainer is None else list(self.explainer.published)

    def reset(self, env: Env | None = None) -> None:
        self.worker.drain()  # a late act must end before the policy is reset
        if self.explainer is not None:
            self.explainer.reset()  # so must a running explanation
        super().reset(env)
        self._reset_state()

    def close(self) -> None:
        """Stop the worker threads (waits for a running act or explanation)."""
        self.worker.close()
        if self.explainer is not None:
            self.explainer.close()

    def step(self, obs: Observation) -> tuple[Control, Decision]:
        wall0 = time.perf_counter()
        self.clock.begin_tick(obs.timestamp_s)
        start = self.clock.now()
        health = self.monitor.check(obs)
        # the deadline counts from the tick's start: the sensor check spends the same budget
        left = max(0.0, self.config.effective_deadline_s - (self.clock.now() - start))
        pre_s = time.perf_counter() - wall0
        outcome = self.worker.run(self._act, obs, left)
        result, cause, refused = outcome.result, outcome.cause, False
        if self.gate is not None:  # a refused instruction never reaches the action path
            if cause is None:
                self.gate.commit(result)
                result, refused = result.decision, result.refused
            else:
                refused = self.gate.verdict(obs.instruction)
        if cause is None:
            reason = invalid_reason(result, self.config.bounds)
            cause = None if reason is None else f"invalid: {reason}"
        if cause is None:
            decision, mode = copy.copy(result), "policy"
            self._valid, self._valid_pose = decision, obs.ego
            self._valid_time_s = float(obs.timestamp_s)
        else:
            decision, mode = self._fallback(obs)
        decision, aeb, limited = self._filter(decision, obs)
        if refused:
            decision = mark_refused(decision)
            self.stats.refused_instruction_ticks += 1
        decision.runtime = RuntimeStatus(self.tick, mode, cause, mode == "stop" or aeb,
                                         outcome.latency_s, aeb, limited)
        decision.health = health
        self._explain(decision, mode == "policy")
        self._account(decision.runtime)
        self.last_decision = decision
        control = self.controller.control(decision, obs.ego)
        self._account_time(time.perf_counter() - wall0, pre_s)
        self.tick += 1
        return control, decision

    def _act(self, obs: Observation) -> Any:
        """The action worker's job: the policy's act, behind the instruction gate if any."""
        if self.gate is None:
            return self.policy.act(obs)
        return self.gate.act(self.policy, obs)

    def _filter(self, decision: Decision, obs: Observation) -> tuple[Decision, bool, bool]:
        """The safety filter (when configured): (the decision to drive, AEB braking, speeds
        lowered)."""
        safety = self.config.safety
        if safety is None:
            return decision, False, False
        limited = feasible(decision, safety, obs.ego, obs.route.speed_limit_mps)
        out = limited
        if self.aeb is not None:
            was = self.aeb.active
            out = self.aeb.step(limited, obs.radar, obs.ego, float(obs.timestamp_s))
            self.stats.aeb_activations += self.aeb.active and not was
        self.stats.aeb_ticks += out is not limited
        self.stats.speed_limited_ticks += limited is not decision
        return out, out is not limited, limited is not decision

    def _fallback(self, obs: Observation) -> tuple[Decision, str]:
        """The fallback decision of this tick and its mode (``hold`` or ``stop``)."""
        elapsed = float(obs.timestamp_s) - self._valid_time_s
        if self._valid is not None and elapsed <= self.config.hold_horizon_s:
            return hold_decision(self._valid, self._valid_pose, obs.ego, elapsed), "hold"
        return stop_decision(self._valid, self._valid_pose, obs.ego,
                             self.config.stop_decel_mps2), "stop"

    def _explain(self, decision: Decision, valid: bool) -> None:
        if self.explainer is None:
            return
        if valid:
            self.explainer.offer(self.tick, self.policy)
        self._explanation = self.explainer.poll(self.tick) or self._explanation
        if decision.explanation is None and self._explanation is not None:
            decision.explanation = self._explanation.text

    def _account(self, status: RuntimeStatus) -> None:
        stats = self.stats
        stats.ticks += 1
        if status.fallback:
            stats.fallback_ticks += 1
            stats.fallback_entries += self._mode == "policy"
            stats.stop_ticks += status.mode == "stop"
            key = cause_key(status.cause)
            stats.causes[key] = stats.causes.get(key, 0) + 1
        if status.mode != self._mode:
            event = {"tick": status.tick, "mode": status.mode, "cause": status.cause}
            if len(stats.events) < MAX_EVENTS:
                stats.events.append(event)
            else:
                stats.events_dropped += 1
            level = logging.INFO if status.mode == "policy" else logging.WARNING
            log.log(level, "%s: tick %d: %s -> %s (%s)", self.name, status.tick, self._mode,
                    status.mode, status.cause or "valid decision")
            self._mode = status.mode

    def _account_time(self, wall_s: float, pre_s: float) -> None:
        if wall_s > self.stats.max_tick_s:
            self.stats.max_tick_s, self.stats.slowest_tick = wall_s, self.tick
            self.stats.slowest_tick_pre_s = pre_s
        if wall_s > self.config.control_dt_s and isinstance(self.clock, MonotonicClock):
            self.stats.late_ticks += 1
