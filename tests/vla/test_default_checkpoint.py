"""drivevla-tiny ships inside the package: it loads offline, fits the size budget and acts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.agents.registry import make_policy
from drivevla.core.types import EgoState, HighLevelCommand, RouteInfo
from drivevla.vla.policy import default_checkpoint_dir
from support.vla_parts import tiny_obs


def test_the_shipped_default_loads_fits_and_drives_a_few_ticks():
    path = default_checkpoint_dir()
    assert (path / "model.safetensors").stat().st_size <= 25 * 2**20
    card = (path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "drivevla train" in card and "drivevla eval closed-loop" in card
    policy = make_policy("drivevla-tiny")
    assert policy.name == "drivevla-tiny" and policy.config.model.navigation_mode == "language"

    from drivevla.agents.agent import Agent
    from drivevla.sim_bridge.embedded.config import SimConfig
    from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv

    env = EmbeddedDrivingEnv(SimConfig(scenario="highway", intent="cruise"))
    try:
        obs, info = env.reset(seed=5)
        agent = Agent(policy)
        agent.reset(env)
        for _ in range(3):
            control, decision = agent.step(env.make_observation(obs, info))
            assert np.isfinite(decision.waypoints).all() and decision.waypoints.shape == (6, 2)
            assert decision.reason is not None
            obs, _, terminated, truncated, info = env.step(control)
        assert isinstance(policy.explain(), str)
    finally:
        env.close()


@pytest.mark.parametrize(
    ("change", "named"),
    [({"ego": EgoState(0.0, 0.0, 0.0, math.nan)}, "ego"),
     ({"ego": EgoState(0.0, 0.0, 0.0, 1e300)}, "speed_mps"),
     # finite but impossible (found by tests/test_fuzz_inputs.py): overflowed into NaN waypoints
     ({"ego": EgoState(0.0, 0.0, 0.0, 5.0, 1e30)}, "accel_mps2"),
     ({"ego": EgoState(0.0, 0.0, 0.0, 5.0, 0.0, 0.0, -50.0)}, "steer")],
)
def test_a_non_finite_or_impossible_model_input_is_refused_by_name(change, named):
    policy = make_policy("drivevla-tiny")
    policy.reset()
    policy.act(tiny_obs())  # the same observation with finite inputs drives
    with pytest.raises(ValueError, match=named):  # InvalidObservationError is one
        policy.act(tiny_obs(**change))


def test_target_points_a_language_mode_model_never_reads_do_not_stop_it():
    policy = make_policy("drivevla-tiny")
    policy.reset()
    route = RouteInfo(np.full((5, 2), math.inf), HighLevelCommand.LANE_FOLLOW, "turn_left", 50.0)
    decision = policy.act(tiny_obs(route=route))
    assert np.isfinite(decision.waypoints).all()
