"""The recorder reads what the policy saw from the typed observation on backends without the
embedded simulator's raw layout (CARLA): on the embedded simulator both readings agree."""

from __future__ import annotations

import numpy as np

from drivevla.agents.rollout import Tick
from drivevla.core.types import Control
from drivevla.datasets.episode import _FrameRecorder
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv


def test_the_typed_observation_records_what_the_raw_one_does():
    env = EmbeddedDrivingEnv({"scenario": "intersection", "intent": "turn_left",
                              "traffic_density": 0.0, "pedestrians": False})
    try:
        obs, info = env.reset(seed=1700003)
        for _ in range(15):
            obs, _, _, _, info = env.step(Control(0.6, 0.1, 0.0))
        tick = Tick(15, obs, info, env.make_observation(obs, info))
        raw = _FrameRecorder(None, ["front"], None, typed=False)._inputs(tick)
        typed = _FrameRecorder(None, ["front"], None, typed=True)._inputs(tick)
    finally:
        env.close()
    assert np.array_equal(raw[0]["front"], typed[0]["front"])
    np.testing.assert_allclose(raw[1][:3], typed[1][:3], rtol=1e-5, atol=1e-5)
    assert raw[1][0] > 1.0  # moving: the comparison is not of zeros
    np.testing.assert_allclose(raw[2], typed[2], atol=1e-4)
    assert raw[3] == typed[3]
