"""Simulator backends behind one contract (:class:`drivevla.core.env.Env`): the embedded
simulator (``embedded``, the default) and a CARLA server (``carla``; untested against a live
server, see docs/carla.md)."""

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
