"""An :class:`Agent` couples a policy with the shared trajectory controller, so that every
policy (expert, baselines, the VLA) is driven by the same controllers."""

from __future__ import annotations

from typing import Any

from drivevla.core.policy import Policy
from drivevla.core.types import Control, Decision, Observation
from drivevla.planner.controllers import TrajectoryController


class Agent:
    """Policy -> Decision -> controller -> Control, one tick at a time."""

    def __init__(self, policy: Policy, controller: TrajectoryController | None = None) -> None:
        self.policy = policy
        self.controller = controller or TrajectoryController()
        self.last_decision: Decision | None = None

    def reset(self, env: Any | None = None) -> None:
        self.policy.reset(env)
        self.controller.reset()
        self.last_decision = None

    def step(self, obs: Observation) -> tuple[Control, Decision]:
        decision = self.policy.act(obs)
        if not isinstance(decision, Decision):
            raise TypeError(
                f"policy {self.policy.name!r} returned {type(decision).__name__}, not a Decision"
            )
        self.last_decision = decision
        return self.controller.control(decision, obs.ego), decision
