"""Features of the ego-status MLP from an open-loop sample (no camera, no map).

A sample is anything with ``scene_token``, ``index_in_scene``, ``ego`` (global ``x``, ``y``,
``yaw``; ``speed_mps``, ``accel_mps2``, ``yaw_rate_rps``) and ``command`` (a
:class:`~drivevla.core.types.HighLevelCommand`), as
:class:`~drivevla.datasets.nuscenes_import.OpenLoopSample`. The features (``N_FEATURES``):

- the ego's positions at -0.5, -1.0, -1.5 and -2.0 s (the scene's previous keyframes) in the
  current ego frame (x forward, y left, m); before the scene's first keyframe, the position
  constant velocity gives (``(-v t, 0)``), as a log starts mid-drive;
- speed (m/s), longitudinal acceleration (m/s^2), yaw rate (rad/s);
- the command one-hot: left, right, straight (VAD's three).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from drivevla.benchmarks.ego_mlp.configuration_ego_mlp import HISTORY_STEPS, N_FEATURES
from drivevla.core.types import HighLevelCommand

STEP_S = 0.5
COMMANDS = (HighLevelCommand.LEFT, HighLevelCommand.RIGHT, HighLevelCommand.STRAIGHT)


class EgoHistory:
    """The keyframes of a set of scenes by (scene token, index in scene): the past a sample's
    features read. Build it from *every* keyframe of the split, not only the scored ones."""

    def __init__(self, samples: Iterable[Any]) -> None:
        self._by_index = {(s.scene_token, s.index_in_scene): s for s in samples}

    def past_positions(self, sample: Any) -> np.ndarray:
        """(HISTORY_STEPS, 2) ego-frame positions at -0.5 .. -2 s (see the module doc)."""
        ego = sample.ego
        cos, sin = math.cos(ego.yaw), math.sin(ego.yaw)
        out = np.zeros((HISTORY_STEPS, 2))
        for k in range(1, HISTORY_STEPS + 1):
            past = self._by_index.get((sample.scene_token, sample.index_in_scene - k))
            if past is None:
                out[k - 1] = (-float(ego.speed_mps) * k * STEP_S, 0.0)
                continue
            dx, dy = past.ego.x - ego.x, past.ego.y - ego.y
            out[k - 1] = (cos * dx + sin * dy, -sin * dx + cos * dy)
        return out


def ego_features(sample: Any, history: EgoHistory) -> np.ndarray:
    """The (N_FEATURES,) float64 feature vector of ``sample`` (see the module doc)."""
    ego = sample.ego
    command = [float(sample.command == c) for c in COMMANDS]
    status = [float(ego.speed_mps), float(ego.accel_mps2), float(ego.yaw_rate_rps)]
    feats = np.concatenate([history.past_positions(sample).ravel(), status, command])
    assert feats.shape == (N_FEATURES,)
    return feats
