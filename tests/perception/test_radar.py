"""The forward radar: range and range rate of the nearest box in its cone, from the world's
geometry (a constructed scene with hand-computed values), and in the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.scene import ActorBox, ActorKind, SceneSnapshot
from drivevla.core.types import Control
from drivevla.perception.radar import RadarSpec, forward_radar
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv

EGO = ActorBox(0, ActorKind.VEHICLE, 0.0, 0.0, 0.0, 4.0, 2.0, 1.5, speed_mps=10.0)


def _scene(*actors: ActorBox, ego: ActorBox = EGO) -> SceneSnapshot:
    return SceneSnapshot(0.0, ego, list(actors))


def _car(actor_id: int, x: float, y: float, speed: float = 0.0, yaw: float = 0.0) -> ActorBox:
    return ActorBox(actor_id, ActorKind.VEHICLE, x, y, yaw, 4.0, 2.0, 1.5, speed_mps=speed)


def test_range_and_rate_of_a_car_ahead_by_hand():
    # bumper at x = 2; the car's rear at 30 - 2 = 28: range 26 m; closing at 10 - 4 = 6 m/s
    reading = forward_radar(_scene(_car(7, 30.0, 0.0, speed=4.0)))
    assert reading.range_m == pytest.approx(26.0, abs=1e-9)
    assert reading.range_rate_mps == pytest.approx(-6.0, abs=1e-9)
    assert reading.actor_id == 7 and reading.bearing_rad == pytest.approx(0.0, abs=1e-9)
    assert reading.time_to_collision_s == pytest.approx(26.0 / 6.0)


def test_the_nearest_of_several_and_nothing_outside_the_cone_or_range():
    near, far = _car(1, 15.0, 0.5), _car(2, 40.0, 0.0)
    assert forward_radar(_scene(far, near)).actor_id == 1
    beside = _car(3, 10.0, 8.0)  # 8 m to the left at 8 m ahead: 45 degrees, cone is +-10
    assert forward_radar(_scene(beside)) is None
    assert forward_radar(_scene(_car(4, 120.0, 0.0))) is None  # beyond 80 m
    assert forward_radar(_scene(_car(5, -20.0, 0.0))) is None  # behind
    # a pedestrian crossing 12 m ahead, seen at range 12 - 2 - 0.25 (its half depth)
    ped = ActorBox(6, ActorKind.PEDESTRIAN, 12.0, 0.0, math.pi / 2, 0.5, 0.5, 1.8,
                   speed_mps=1.5)
    reading = forward_radar(_scene(ped))
    assert reading.range_m == pytest.approx(9.75, abs=1e-6)
    assert reading.range_rate_mps == pytest.approx(-10.0, abs=1e-6)  # crossing: no radial part


def test_a_turned_ego_looks_along_its_heading_and_noise_is_seeded():
    ego = ActorBox(0, ActorKind.VEHICLE, 0.0, 0.0, math.pi / 2, 4.0, 2.0, 1.5, speed_mps=5.0)
    reading = forward_radar(_scene(_car(9, 0.0, 22.0, yaw=math.pi / 2), ego=ego))
    assert reading.range_m == pytest.approx(22.0 - 2.0 - 2.0, abs=1e-9)
    a = forward_radar(_scene(_car(7, 30.0, 0.0)), rng=np.random.default_rng(1))
    b = forward_radar(_scene(_car(7, 30.0, 0.0)), rng=np.random.default_rng(1))
    assert a == b and a.range_m != 26.0 and abs(a.range_m - 26.0) < 1.0
    with pytest.raises(ValueError, match="fov_deg"):
        RadarSpec(fov_deg=0.0)


def test_the_simulators_radar_sees_the_world_and_leaves_the_drive_unchanged():
    def drive(radar: bool):
        env = EmbeddedDrivingEnv({"scenario": "urban", "cameras": [], "radar": radar})
        try:
            obs, info = env.reset(seed=3)
            poses, readings = [], []
            for _ in range(20):
                obs, _, _, _, info = env.step(Control(throttle=0.5))
                o = env.make_observation(obs, info)
                poses.append((o.ego.x, o.ego.y))
                readings.append((o.radar, env.world.snapshot()))
            return poses, readings
        finally:
            env.close()

    with_radar, readings = drive(True)
    without, none = drive(False)
    assert with_radar == without  # a passive sensor
    assert all(r is None for r, _ in none)
    seen = [(r, snap) for r, snap in readings if r is not None]
    assert seen
    for reading, snap in seen:  # each detection is an actor of the world, within range
        actor = next(a for a in snap.actors if a.actor_id == reading.actor_id)
        exact = forward_radar(SceneSnapshot(snap.time_s, snap.ego, [actor]))
        assert abs(reading.range_m - exact.range_m) < 1.0
