"""The embedded simulator: highway-env roads and traffic, Panda3D cameras, and the
project's scenario families, traffic lights, pedestrians, routes and criteria.

``register()`` adds the gymnasium ids (idempotent); importing :mod:`drivevla.sim_bridge`
calls it.
"""

from __future__ import annotations

import gymnasium as gym

ENV_IDS: dict[str, str] = {
    "drivevla/Highway-v0": "highway",
    "drivevla/Merge-v0": "merge",
    "drivevla/Exit-v0": "exit",
    "drivevla/Intersection-v0": "intersection",
    "drivevla/Roundabout-v0": "roundabout",
    "drivevla/Urban-v0": "urban",
}
ENTRY_POINT = "drivevla.sim_bridge.embedded.env:EmbeddedDrivingEnv"


def register() -> list[str]:
    """Register every embedded-simulator id with gymnasium; returns the ids."""
    for env_id, family in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs={"scenario": family})
    return list(ENV_IDS)
