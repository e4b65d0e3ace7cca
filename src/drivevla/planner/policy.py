"""The policy contract every driver implements (expert, baselines, the VLA).

A policy has ``reset(env=None)`` and ``act(Observation) -> Decision``. Privileged policies
(the expert, rule-based baselines) read ground truth from the ``env`` handed to ``reset``;
learned policies ignore it. An :class:`Agent` couples a policy with the shared trajectory
controller so that every policy is driven by the same controllers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from drivevla.sim_bridge.types import Control, Decision, Observation

if TYPE_CHECKING:
    from drivevla.planner.controllers import TrajectoryController


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self, env: Any | None = None) -> None: ...

    def act(self, obs: Observation) -> Decision: ...


class Agent:
    """Policy -> Decision -> controller -> Control, one tick at a time."""

    def __init__(self, policy: Policy, controller: TrajectoryController | None = None) -> None:
        from drivevla.planner.controllers import TrajectoryController

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
