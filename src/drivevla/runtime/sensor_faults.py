"""Fault injection on the sensor side, seeded and reproducible: what the cameras and the
radar deliver to the driver, before the sensor check and the policy see it.

:class:`SensorFaults` says how often each fault hits; :class:`SensorFaultInjector` applies
them to one route's observations in order; :class:`FaultySensors` wraps any driver (the plain
:class:`~drivevla.agents.agent.Agent` or the real-time runner) so that every observation
passes through the injector first. Per camera and tick:

- ``drop``: the frame does not arrive (the camera is missing from ``Observation.images``);
- ``stale``: the camera delivers its previous frame again (frozen);
- ``black``: an all-black frame;
- ``noise``: Gaussian noise of ``noise_std`` grey levels, clipped to 0..255;
- ``latency_ms``: every frame arrives that much late (rounded to whole control ticks; the
  route's first frame until then);
- ``radar_dropout``: no radar reading this tick.

Which faults hit tick ``k`` depends only on ``(seed, camera index, k)``:
``numpy.random.default_rng([seed, SENSOR_STREAM, camera, k])``, as for the policy faults of
:mod:`drivevla.runtime.faults`, so a run, a worker split or a rerun sees the same pattern.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from drivevla.core.types import Observation
from drivevla.runtime.faults import PolicyFaultsError

SENSOR_STREAM = 0x5E45  # separates these draws from every other seeded stream
CAMERA_FAULTS = ("drop", "stale", "black", "noise")


@dataclass(frozen=True)
class SensorFaults:
    """Per-tick probabilities of each camera fault (independent draws per camera), the
    noise level, the camera latency and the radar dropout probability."""

    seed: int = 0
    drop_share: float = 0.0
    stale_share: float = 0.0
    black_share: float = 0.0
    noise_share: float = 0.0
    noise_std: float = 25.0
    latency_ms: float = 0.0
    radar_dropout_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("drop_share", "stale_share", "black_share", "noise_share",
                     "radar_dropout_share"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise PolicyFaultsError(f"{name}={value!r} must be a share in [0, 1]")
        for name in ("noise_std", "latency_ms"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise PolicyFaultsError(f"{name}={value!r} must be >= 0")

    @property
    def active(self) -> bool:
        """Whether any sensor fault is injected (as :attr:`PolicyFaults.active`)."""
        return bool(self.drop_share or self.stale_share or self.black_share
                    or self.noise_share or self.latency_ms or self.radar_dropout_share)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def at_tick(self, camera: int, tick: int) -> tuple[str, ...]:
        """The camera faults of camera number ``camera`` at ``tick``, in
        :data:`CAMERA_FAULTS` order."""
        u = np.random.default_rng([int(self.seed), SENSOR_STREAM, camera, int(tick)]).random(4)
        shares = (self.drop_share, self.stale_share, self.black_share, self.noise_share)
        return tuple(k for k, draw, share in zip(CAMERA_FAULTS, u, shares, strict=True)
                     if draw < share)

    def radar_drops(self, tick: int) -> bool:
        u = np.random.default_rng([int(self.seed), SENSOR_STREAM + 1, int(tick)]).random()
        return bool(u < self.radar_dropout_share)


class SensorFaultInjector:
    """:class:`SensorFaults` applied to one route's observations, in order (see the module
    docstring); ``control_dt_s`` turns the latency into ticks. :attr:`counts` tallies the
    faults injected since :meth:`reset`."""

    def __init__(self, faults: SensorFaults, control_dt_s: float = 0.1) -> None:
        self.faults = faults
        self.delay_ticks = int(round(faults.latency_ms / 1000.0 / control_dt_s))
        self.reset()

    def reset(self) -> None:
        self.tick = 0
        self._history: deque[dict[str, np.ndarray]] = deque(maxlen=self.delay_ticks + 1)
        self._delivered: dict[str, np.ndarray] = {}
        self.counts = {k: 0 for k in (*CAMERA_FAULTS, "radar_dropout")}

    def __call__(self, obs: Observation) -> Observation:
        tick, self.tick = self.tick, self.tick + 1
        self._history.append(dict(obs.images))
        arriving = self._history[0]  # the frame from delay_ticks ago (the first, early on)
        images: dict[str, np.ndarray] = {}
        for index, name in enumerate(sorted(arriving)):
            kinds = self.faults.at_tick(index, tick)
            for kind in kinds:
                self.counts[kind] += 1
            if "drop" in kinds:
                continue
            image = arriving[name]
            if "stale" in kinds and name in self._delivered:
                image = self._delivered[name]
            if "black" in kinds:
                image = np.zeros_like(image)
            if "noise" in kinds:
                rng = np.random.default_rng([int(self.faults.seed), SENSOR_STREAM, index, tick,
                                             1])
                noisy = image.astype(np.float32) + rng.normal(0.0, self.faults.noise_std,
                                                               image.shape)
                image = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
            images[name] = image
            self._delivered[name] = image
        radar = obs.radar
        if radar is not None and self.faults.radar_drops(tick):
            self.counts["radar_dropout"] += 1
            radar = None
        return dataclasses.replace(obs, images=images, radar=radar)


class FaultySensors:
    """A driver whose observations pass through a :class:`SensorFaultInjector` first; every
    other attribute is the wrapped driver's."""

    def __init__(self, driver: Any, faults: SensorFaults, control_dt_s: float = 0.1) -> None:
        self.driver = driver
        self.injector = SensorFaultInjector(faults, control_dt_s)

    def __getattr__(self, name: str) -> Any:
        if name == "driver":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.driver, name)

    def reset(self, env: Any = None) -> None:
        self.injector.reset()
        self.driver.reset(env)

    def step(self, obs: Observation) -> Any:
        return self.driver.step(self.injector(obs))

    def drive(self, tick: Any) -> Any:
        """The rollout loop's entry point: the tick's observation, faulted, to the driver."""
        return self.step(tick.observation)
