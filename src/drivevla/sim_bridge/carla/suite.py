"""A Leaderboard 2.0 / Bench2Drive route file as a suite of the closed-loop benchmark: one
:class:`CarlaRouteSpec` per ``<route>``, each giving the :class:`~.env.CarlaEnvConfig` its
:class:`~.env.CarlaDrivingEnv` drives (``drivevla eval closed-loop --backend carla --routes
FILE.xml``).

A run's ``base_config`` may set these keys (the embedded simulator's names where they mean the
same): ``cameras`` (CameraSpec dicts; default the front camera), ``vehicles``, ``sim_rate_hz``,
``control_hz``, ``mode``, ``instruction``, ``gnss_noise``, ``gnss_filter``,
``speed_limit_mps``, ``hero_blueprint``, ``criteria`` (CriteriaConfig keys), ``max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivevla.core.types import CameraSpec
from drivevla.sim_bridge.carla.env import INTENT, CarlaConnection, CarlaEnvConfig
from drivevla.sim_bridge.carla.observer import ObserverSettings
from drivevla.sim_bridge.carla.routes_xml import LeaderboardRoute, read_route_file
from drivevla.sim_bridge.embedded.criteria import CriteriaConfig
from drivevla.sim_bridge.embedded.suites import Suite

_ENV_KEYS = ("vehicles", "sim_rate_hz", "gnss_noise", "speed_limit_mps", "hero_blueprint",
             "max_steps")
_OBSERVER_KEYS = {"control_hz": "control_rate_hz", "mode": "mode",
                  "instruction": "instruction", "gnss_filter": "gnss_filter"}
CONFIG_KEYS = frozenset((*_ENV_KEYS, *_OBSERVER_KEYS, "cameras", "criteria"))


@dataclass(frozen=True)
class CarlaRouteSpec:
    """One route of a route file, on the server of ``connection``."""

    route: LeaderboardRoute
    source: str  # the route file's name
    seed: int
    connection: CarlaConnection = field(default_factory=CarlaConnection, compare=False)

    @property
    def route_id(self) -> str:
        return self.route.route_id

    @property
    def scenario(self) -> str:
        return f"carla:{self.route.town}"

    @property
    def intent(self) -> str:
        return INTENT

    def reset_options(self) -> dict[str, Any]:
        return {"route_id": self.route_id}

    def sim_config(self, base: dict[str, Any] | None = None) -> CarlaEnvConfig:
        """The env config of this route with a run's ``base_config`` (keys in the module
        docstring; anything else is a ValueError naming it)."""
        base = dict(base or {})
        unknown = sorted(set(base) - CONFIG_KEYS)
        if unknown:
            raise ValueError(f"route {self.route_id!r}: unknown CARLA config key(s) {unknown}; "
                             f"valid: {sorted(CONFIG_KEYS)}")
        cameras = tuple(CameraSpec.from_dict(dict(c)) for c in base.get("cameras") or [{}])
        observer = ObserverSettings(cameras, **{
            name: base[key] for key, name in _OBSERVER_KEYS.items() if key in base})
        return CarlaEnvConfig(
            self.route, observer, self.connection, seed=self.seed,
            criteria=CriteriaConfig.from_dict(base.get("criteria", {})),
            **{k: base[k] for k in _ENV_KEYS if k in base})

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.route_id, "scenario": self.scenario, "intent": self.intent,
                "seed": self.seed, "file": self.source, "town": self.route.town,
                "waypoints_carla": self.route.waypoints_carla.tolist()}


def carla_suite(path: str | Path, connection: CarlaConnection, seed: int = 0) -> Suite:
    """Every route of the route file ``path`` (route ``i`` seeded ``seed + i``)."""
    path = Path(path)
    routes = read_route_file(path)
    specs = tuple(CarlaRouteSpec(r, path.name, seed + i, connection)
                  for i, r in enumerate(routes))
    return Suite(f"carla:{path.stem}", specs,  # type: ignore[arg-type]
                 f"CARLA routes of {path.name} on {connection.address}")
