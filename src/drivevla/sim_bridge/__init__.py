"""Backends behind one contract: the embedded simulator (default) and CARLA."""

from drivevla.sim_bridge.embedded import ENV_IDS, register
from drivevla.sim_bridge.types import (
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
