"""The control loop without the runtime, as a naive integration runs it: the loop calls the
policy and waits. When the policy is late the world does not wait: the actuators keep the
last control for the ticks the policy is busy, and the late decision, made from the
observation it was given, is driven when it arrives.

:class:`BlockingAgent` is that loop on a :class:`~drivevla.runtime.clock.SimulatedClock`
(latency injected by :class:`~drivevla.runtime.faults.FaultyPolicy` is simulated time;
on a :class:`~drivevla.runtime.clock.MonotonicClock` the policy's real time counts):
``bench robustness`` uses it for the rows without protections, so that latency spikes show
the damage they do to an unprotected car instead of being invisible to a simulator that
waits for the policy.
"""

from __future__ import annotations

import math

from drivevla.agents.agent import Agent
from drivevla.core.env import Env
from drivevla.core.policy import Policy
from drivevla.core.types import Control, Decision, Observation
from drivevla.runtime.clock import Clock


class BlockingAgent(Agent):
    """An :class:`Agent` whose late decisions arrive late (see the module docstring)."""

    def __init__(self, policy: Policy, clock: Clock, control_dt_s: float = 0.1) -> None:
        super().__init__(policy)
        self.clock, self.control_dt_s = clock, float(control_dt_s)
        self._reset_state()

    def _reset_state(self) -> None:
        self._busy_ticks = 0  # ticks the policy is still computing
        self._pending: Decision | None = None  # the decision that arrives when it is done
        self._last: tuple[Control, Decision] | None = None
        self.late_ticks = 0  # ticks that drove the previous control, this episode

    def reset(self, env: Env | None = None) -> None:
        super().reset(env)
        self._reset_state()

    def step(self, obs: Observation) -> tuple[Control, Decision]:
        if self._busy_ticks > 0 and self._last is not None:
            self._busy_ticks -= 1
            if self._busy_ticks > 0:
                self.late_ticks += 1
                return self._last
            decision, self._pending = self._pending, None
            self._last = self.controller.control(decision, obs.ego), decision
            return self._last
        self.clock.begin_tick(float(obs.timestamp_s))
        start = self.clock.now()
        control, decision = super().step(obs)
        took = self.clock.now() - start
        # a decision within one control period drives this tick (as every on-time one does);
        # one that takes n periods drives n - 1 ticks later, the last control until then
        ticks = math.ceil(took / self.control_dt_s - 1e-9)
        if ticks > 1 and self._last is not None:  # late: the world moves on meanwhile
            self._busy_ticks, self._pending = ticks - 1, decision
            self.late_ticks += 1
            return self._last
        self._last = control, decision
        return self._last
