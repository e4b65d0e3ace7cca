"""Scenario families: road layouts, the ego route for each navigation intent, traffic,
traffic lights, pedestrians and static props.

Each family is a builder registered in :data:`FAMILIES`
(:mod:`~drivevla.sim_bridge.embedded.scenario_registry`; the builders live in
:mod:`~drivevla.sim_bridge.embedded.scenario_motorway` and
:mod:`~drivevla.sim_bridge.embedded.scenario_junctions`, their shared pieces in
:mod:`~drivevla.sim_bridge.embedded.scenario_helpers`); ``build_scenario(family, intent,
rng, config)`` returns a ``Scenario`` (the records are in
:mod:`drivevla.sim_bridge.embedded.scenario_types`) that the environment instantiates.
Everything random comes from ``rng`` (a ``numpy.random.Generator`` seeded by
``reset(seed=...)``).
"""

from __future__ import annotations

# Importing the builder modules registers their families, motorway first (FAMILIES keeps
# insertion order: highway, merge, exit, intersection, roundabout, urban).
from drivevla.sim_bridge.embedded import scenario_motorway  # noqa: F401

# isort: split
from drivevla.sim_bridge.embedded import scenario_junctions  # noqa: F401
from drivevla.sim_bridge.embedded.scenario_registry import (
    DEFAULT_INSTRUCTIONS,
    FAMILIES,
    Family,
    all_intents,
    build_scenario,
    register_family,
)

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "FAMILIES",
    "Family",
    "all_intents",
    "build_scenario",
    "register_family",
]
