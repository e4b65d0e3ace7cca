"""The policy contract every driver implements (expert, baselines, the VLA).

A policy has ``reset(privileged=None)`` and ``act(Observation) -> Decision``. Privileged
policies (the expert, rule-based baselines) read ground truth from the
:class:`~drivevla.core.env.PrivilegedState` handed to ``reset`` (``env.privileged_state()``)
and raise without it; learned policies ignore it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from drivevla.core.env import PrivilegedState
from drivevla.core.types import Decision, Observation


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self, privileged: PrivilegedState | None = None) -> None: ...

    def act(self, obs: Observation) -> Decision: ...
