"""The policy contract every driver implements (expert, baselines, the VLA).

A policy has ``reset(privileged=None)`` and ``act(Observation) -> Decision``. Privileged
policies (the expert, rule-based baselines) read ground truth from the
:class:`~drivevla.core.env.PrivilegedState` handed to ``reset`` (``env.privileged_state()``)
and raise without it; learned policies ignore it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from drivevla.core.env import PrivilegedState
from drivevla.core.types import Decision, Observation


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self, privileged: PrivilegedState | None = None) -> None: ...

    def act(self, obs: Observation) -> Decision: ...


@contextlib.contextmanager
def policy_threads(policy: Any, threads: int | None) -> Iterator[int | None]:
    """Run ``policy`` on ``threads`` CPU threads inside the block: ``set_threads`` for a
    policy with its own pool (``onnx:DIR``: ONNX Runtime) and ``torch.set_num_threads`` when
    torch is loaded (never imported here). Yields torch's thread count (None without torch or
    with ``threads`` None: nothing changes); torch's previous count is restored on exit, so a
    library call leaves the process as it was."""
    if threads is None:
        yield None
        return
    if callable(getattr(policy, "set_threads", None)):
        policy.set_threads(threads)
    torch = sys.modules.get("torch")
    if torch is None:
        yield None
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
