"""An :class:`Agent` couples a policy with the shared trajectory controller, so that every
policy (expert, baselines, the VLA) is driven by the same controllers, and checks every
observation with a :class:`SensorHealthMonitor`: the result rides on the returned
``Decision.health`` (detection only; the decision itself is the policy's)."""

from __future__ import annotations

import copy

from drivevla.agents.rollout import Tick, privileged_state_of
from drivevla.core.env import Env
from drivevla.core.policy import Policy
from drivevla.core.types import Control, Decision, Observation
from drivevla.perception.sensor_health import SensorHealthMonitor
from drivevla.planner.controllers import TrajectoryController


class Agent:
    """Policy -> Decision -> controller -> Control, one tick at a time."""

    def __init__(
        self,
        policy: Policy,
        controller: TrajectoryController | None = None,
        monitor: SensorHealthMonitor | None = None,
    ) -> None:
        self.policy = policy
        self.controller = controller or TrajectoryController()
        self.monitor = monitor or SensorHealthMonitor()
        self.last_decision: Decision | None = None

    @property
    def name(self) -> str:
        return self.policy.name

    def reset(self, env: Env | None = None) -> None:
        """Start an episode of ``env``: the policy receives its :class:`PrivilegedState`
        (learned policies ignore it), the controller and the sensor monitor forget the last
        episode."""
        self.policy.reset(None if env is None else privileged_state_of(env))
        self.controller.reset()
        self.monitor.reset()
        self.last_decision = None

    def step(self, obs: Observation) -> tuple[Control, Decision]:
        health = self.monitor.check(obs)
        decision = self.policy.act(obs)
        if not isinstance(decision, Decision):
            raise TypeError(
                f"policy {self.policy.name!r} returned {type(decision).__name__}, not a Decision"
            )
        decision = copy.copy(decision)  # the policy's own object stays as it made it; no
        decision.health = health  # re-validation here (the rollout's checks own that)
        self.last_decision = decision
        return self.controller.control(decision, obs.ego), decision

    def drive(self, tick: Tick) -> tuple[Control, Decision]:
        """The rollout loop's entry point (:class:`drivevla.agents.rollout.Driver`)."""
        return self.step(tick.observation)
