"""Simulator backends behind one contract: the embedded simulator (the only backend today;
a CARLA backend is planned)."""

from drivevla.core.types import (
    CameraSpec,
    Control,
    Decision,
    EgoState,
    HighLevelCommand,
    Infraction,
    InfractionType,
    MetaAction,
    Observation,
    RouteInfo,
    RouteResult,
)
from drivevla.sim_bridge.embedded import ENV_IDS, register

register()

__all__ = [
    "ENV_IDS",
    "CameraSpec",
    "Control",
    "Decision",
    "EgoState",
    "HighLevelCommand",
    "Infraction",
    "InfractionType",
    "MetaAction",
    "Observation",
    "RouteInfo",
    "RouteResult",
    "register",
]
