"""Camera-free open-loop planners that expose what ego status alone predicts.

Each takes an open-loop sample (anything with ``ego.speed_mps``, ``ego.yaw_rate_rps`` and
``future_waypoints``) and returns (6, 2) ego-frame waypoints 0.5 s apart. On nuScenes an
MLP on ego status alone already rivals camera planners ("Is Ego Status All You Need for
Open-Loop End-to-End Autonomous Driving?", Li et al. 2024); these rows show how much of a
score the current motion explains before any camera is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from drivevla.benchmarks.open_loop_metrics import FUTURE_STEPS, STEP_S

__all__ = ["BASELINES", "LOG_REPLAY", "constant_velocity", "constant_velocity_yaw_rate",
           "log_replay"]

_TIMES = STEP_S * np.arange(1, FUTURE_STEPS + 1)
_MIN_YAW_RATE = 1e-4  # rad/s: below it the arc is a straight line (no 0/0)


def constant_velocity(sample: Any) -> np.ndarray:
    """Straight ahead at the current speed: ``(v t, 0)`` at t = 0.5 .. 3 s."""
    v = float(sample.ego.speed_mps)
    return np.stack([v * _TIMES, np.zeros_like(_TIMES)], axis=1)


def constant_velocity_yaw_rate(sample: Any) -> np.ndarray:
    """A circular arc at the current speed and yaw rate (CTRV):
    ``x = v/w sin(w t)``, ``y = v/w (1 - cos(w t))``; constant velocity when ``w`` ~ 0."""
    v, w = float(sample.ego.speed_mps), float(sample.ego.yaw_rate_rps)
    if abs(w) < _MIN_YAW_RATE:
        return constant_velocity(sample)
    return np.stack([v / w * np.sin(w * _TIMES), v / w * (1.0 - np.cos(w * _TIMES))], axis=1)


def log_replay(sample: Any) -> np.ndarray:
    """The logged future itself: a sanity row (L2 0 and no counted collision by
    construction). On our export the log is what the privileged expert drove."""
    return np.asarray(sample.future_waypoints, np.float64).copy()


LOG_REPLAY = "log replay"
# name -> (planner, what it reads), in the order the table prints them
BASELINES: dict[str, tuple[Callable[[Any], np.ndarray], str]] = {
    LOG_REPLAY: (log_replay, "the logged future (sanity)"),
    "constant velocity": (constant_velocity, "ego speed"),
    "constant velocity + yaw rate": (constant_velocity_yaw_rate, "ego speed, yaw rate"),
}
