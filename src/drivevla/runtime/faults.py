"""Fault injection on the policy side, seeded and reproducible.

:class:`FaultyPolicy` wraps any policy and, on a share of ticks each, delays its ``act``
(``latency_ms`` on the runner's clock: real sleep on :class:`MonotonicClock`, simulated time
on :class:`SimulatedClock`), raises :class:`InjectedFault`, or returns its decision with a
NaN waypoint; ``odometer_bias_m`` shifts the odometer of a policy that keeps one (the
odometer-shift probe: does the model time its manoeuvres by the road it sees or by the
distance it counted?). Which faults hit tick ``k`` depends only on ``(seed, k)`` (ticks counted from
the policy's ``reset``): three independent uniform draws from
``numpy.random.default_rng([seed, FAULT_STREAM, k])``, so the same seed gives the same
faults on every run, machine and worker split, whatever else draws random numbers. Every
route of a run sees the same pattern for one seed.

Camera faults (drops, stale, black, noise, latency) and radar dropout act on the
observation, not the policy: :mod:`drivevla.runtime.sensor_faults`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from drivevla.core.env import PrivilegedState
from drivevla.core.errors import DriveVLAError
from drivevla.core.policy import Policy
from drivevla.core.types import Decision, Observation
from drivevla.runtime.clock import Clock, MonotonicClock

FAULT_STREAM = 0xFA017  # separates the fault draws from every other seeded stream
FAULT_KINDS = ("latency", "exception", "nan")


class InjectedFault(RuntimeError):
    """The exception :class:`FaultyPolicy` raises on an ``exception`` tick."""


@dataclass(frozen=True)
class PolicyFaults:
    """Which policy-side faults to inject: each ``*_share`` is the probability per tick
    (independent draws); ``latency_ms`` the delay of a ``latency`` tick."""

    seed: int = 0
    latency_share: float = 0.0
    latency_ms: float = 0.0
    exception_share: float = 0.0
    nan_share: float = 0.0
    odometer_bias_m: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency_share", "exception_share", "nan_share"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise PolicyFaultsError(f"{name}={value!r} must be a share in [0, 1]")
        if not (isinstance(self.latency_ms, int | float) and math.isfinite(self.latency_ms)
                and self.latency_ms >= 0):
            raise PolicyFaultsError(f"latency_ms={self.latency_ms!r} must be >= 0 ms")
        if not (isinstance(self.odometer_bias_m, int | float)
                and math.isfinite(self.odometer_bias_m)):
            raise PolicyFaultsError(f"odometer_bias_m={self.odometer_bias_m!r} must be a "
                                    "finite number of metres")

    @property
    def active(self) -> bool:
        return any((self.latency_share and self.latency_ms, self.exception_share,
                    self.nan_share, self.odometer_bias_m))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def at_tick(self, tick: int) -> tuple[str, ...]:
        """The faults injected at ``tick`` (ticks since reset), in :data:`FAULT_KINDS` order."""
        u = np.random.default_rng([int(self.seed), FAULT_STREAM, int(tick)]).random(3)
        shares = (self.latency_share if self.latency_ms > 0 else 0.0, self.exception_share,
                  self.nan_share)
        return tuple(k for k, draw, share in zip(FAULT_KINDS, u, shares, strict=True)
                     if draw < share)


class PolicyFaultsError(DriveVLAError, ValueError):
    """A fault-injection setting out of range; the message names it."""


@dataclass
class FaultRecord:
    tick: int
    kinds: tuple[str, ...] = field(default_factory=tuple)


class FaultyPolicy:
    """``policy`` with :class:`PolicyFaults` injected (see the module docstring). Other
    attributes (``explain``, ``config``...) are the wrapped policy's."""

    def __init__(self, policy: Policy, faults: PolicyFaults, clock: Clock | None = None) -> None:
        self.policy, self.faults = policy, faults
        self.clock = clock or MonotonicClock()
        self.tick = 0
        self.injected: list[FaultRecord] = []  # the ticks with a fault, this episode

    @property
    def name(self) -> str:
        return self.policy.name

    def __getattr__(self, name: str) -> Any:
        if name == "policy":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.policy, name)

    def reset(self, privileged: PrivilegedState | None = None) -> None:
        self.tick, self.injected = 0, []
        self.policy.reset(privileged)
        if self.faults.odometer_bias_m:
            shift = getattr(self.policy, "shift_odometer", None)
            if shift is None:
                raise PolicyFaultsError(f"policy {self.policy.name!r} keeps no odometer: "
                                        "the odometer-shift probe (odometer_bias_m) does "
                                        "not apply")
            shift(self.faults.odometer_bias_m)

    def act(self, obs: Observation) -> Decision:
        tick, kinds = self.tick, self.faults.at_tick(self.tick)
        self.tick += 1
        if kinds:
            self.injected.append(FaultRecord(tick, kinds))
        if "latency" in kinds:
            self.clock.sleep(self.faults.latency_ms / 1000.0)
        if "exception" in kinds:
            raise InjectedFault(f"injected policy exception at tick {tick}")
        decision = self.policy.act(obs)
        if "nan" in kinds and isinstance(decision, Decision):
            decision = copy.copy(decision)  # the Decision validates on construction only
            decision.waypoints = decision.waypoints.copy()
            decision.waypoints[len(decision.waypoints) // 2] = math.nan
        return decision
