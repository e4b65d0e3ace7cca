"""One run's fault injection: the policy-side faults (:mod:`.faults`) and the sensor-side
faults (:mod:`.sensor_faults`) under one seed, as ``eval closed-loop --faults`` and
``bench robustness`` take them.

Written as ``KEY=VALUE`` pairs separated by commas, keys prefixed by the side they act on::

    policy.latency_share=0.3,policy.latency_ms=300,sensors.drop_share=0.1,seed=7

or as the dict :meth:`FaultSpec.to_dict` writes (``{"seed", "policy": {...}, "sensors":
{...}}``, what a run's ``run.json`` and summary record). An unknown key or a value out of
range is refused naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from drivevla.runtime.faults import PolicyFaults, PolicyFaultsError
from drivevla.runtime.sensor_faults import SensorFaults

_SIDES = {"policy": PolicyFaults, "sensors": SensorFaults}


@dataclass(frozen=True)
class FaultSpec:
    """The faults of a run: ``policy`` and ``sensors`` share ``seed`` (their own ``seed``
    fields are set from it)."""

    seed: int = 0
    policy: PolicyFaults = field(default_factory=PolicyFaults)
    sensors: SensorFaults = field(default_factory=SensorFaults)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise PolicyFaultsError(f"seed={self.seed!r} must be an integer >= 0")
        object.__setattr__(self, "policy", dataclasses.replace(self.policy, seed=self.seed))
        object.__setattr__(self, "sensors", dataclasses.replace(self.sensors, seed=self.seed))

    @property
    def active(self) -> bool:
        """Whether anything is injected at all."""
        return self.policy.active or self.sensors.active

    def to_dict(self) -> dict[str, Any]:
        """Only what differs from no fault (the seed always): the run's fingerprint."""
        out: dict[str, Any] = {"seed": self.seed}
        for side, cls in _SIDES.items():
            default, values = cls(), getattr(self, side).to_dict()
            changed = {k: v for k, v in values.items()
                       if k != "seed" and v != getattr(default, k)}
            if changed:
                out[side] = changed
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FaultSpec:
        """The spec :meth:`to_dict` wrote (None or ``{}``: no faults)."""
        data = dict(data or {})
        unknown = sorted(set(data) - {"seed", *_SIDES})
        if unknown:
            raise PolicyFaultsError(f"unknown fault key(s) {unknown}; use seed, policy.*, "
                                    "sensors.*")
        sides = {}
        for side, kind in _SIDES.items():
            values = dict(data.get(side) or {})
            names = {f.name for f in dataclasses.fields(kind)} - {"seed"}
            bad = sorted(set(values) - names)
            if bad:
                raise PolicyFaultsError(f"unknown {side} fault(s) {bad}; known: "
                                        f"{', '.join(sorted(names))}")
            sides[side] = kind(**values)
        return cls(int(data.get("seed", 0)), **sides)

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """``"policy.nan_share=0.3,seed=2"`` -> a spec (see the module docstring)."""
        data: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise PolicyFaultsError(f"fault {item!r} is not KEY=VALUE")
            try:
                number = float(value)
            except ValueError:
                raise PolicyFaultsError(f"fault {key!r}: {value!r} is not a number") from None
            side, dot, name = key.strip().partition(".")
            if not dot:
                if side != "seed" or not number.is_integer():
                    raise PolicyFaultsError(f"fault key {key!r}: use seed=N, policy.NAME or "
                                            "sensors.NAME")
                data["seed"] = int(number)
                continue
            data.setdefault(side, {})[name] = number
        return cls.from_dict(data)
