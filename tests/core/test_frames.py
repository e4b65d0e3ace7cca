"""Frame conversions and the CARLA steering convention in the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.frames import (
    carla_to_world_xy_yaw,
    ego_to_world,
    steer_to_wheel_angle,
    wheel_angle_to_steer,
    world_to_carla_xy_yaw,
    world_to_ego,
)
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv


def test_world_ego_roundtrip_and_axes():
    ego_xy, yaw = np.array([10.0, -3.0]), math.radians(30)
    pts = np.random.default_rng(0).normal(size=(20, 2)) * 30
    back = ego_to_world(world_to_ego(pts, ego_xy, yaw), ego_xy, yaw)
    assert np.allclose(back, pts)
    ahead = ego_xy + 5 * np.array([math.cos(yaw), math.sin(yaw)])
    left = ego_xy + 2 * np.array([-math.sin(yaw), math.cos(yaw)])
    assert np.allclose(world_to_ego(ahead[None], ego_xy, yaw), [[5.0, 0.0]])
    assert np.allclose(world_to_ego(left[None], ego_xy, yaw), [[0.0, 2.0]])


def test_carla_conversion_is_a_mirror_and_roundtrips():
    x, y, yaw = carla_to_world_xy_yaw(3.0, 4.0, 90.0)  # CARLA +90 deg faces +y_carla (right)
    assert (x, y) == (3.0, -4.0)
    assert yaw == pytest.approx(-math.pi / 2)
    assert world_to_carla_xy_yaw(x, y, yaw) == pytest.approx((3.0, 4.0, 90.0))


def test_positive_steer_turns_right_as_in_carla():
    assert steer_to_wheel_angle(1.0, 0.5) == pytest.approx(-0.5)
    assert wheel_angle_to_steer(-0.25, 0.5) == pytest.approx(0.5)
    env = EmbeddedDrivingEnv(
        {"scenario": "highway", "intent": "cruise", "cameras": [], "traffic_density": 0.0}
    )
    _, info = env.reset(seed=0)
    yaw0 = info["ego"]["yaw"]
    for _ in range(10):
        _, _, _, _, info = env.step([0.3, 0.4, 0.0])
    assert info["ego"]["yaw"] < yaw0 - 0.05  # clockwise from above = a right turn
    # the route's target points are expressed in the ego frame: now they lie to the left
    assert env._observe()["route"][2, 1] > 0
