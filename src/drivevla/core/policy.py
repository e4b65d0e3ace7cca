"""The policy contract every driver implements (expert, baselines, the VLA).

A policy has ``reset(env=None)`` and ``act(Observation) -> Decision``. Privileged policies
(the expert, rule-based baselines) read ground truth from the ``env`` handed to ``reset``;
learned policies ignore it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from drivevla.core.types import Decision, Observation


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self, env: Any | None = None) -> None: ...

    def act(self, obs: Observation) -> Decision: ...
