"""Sensor health: each fault is found on a crafted observation, and real frames of the
embedded simulator (moving and standing at a red light) raise none."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.types import Decision, SensorHealth
from drivevla.perception.sensor_health import (
    FROZEN_MIN_SPEED_MPS,
    FROZEN_TICKS,
    SensorHealthMonitor,
    frame_faults,
)
from support.sensor_obs import RED_LIGHT_STOP, H, W, expert_drive, observation

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def drive():
    """A 12 s expert drive: ~5 s to the red light, then standing at it (frames kept)."""
    return expert_drive(RED_LIGHT_STOP, 120, keep_frames=True)


@pytest.fixture(scope="module")
def real_frame(drive) -> np.ndarray:
    return drive[10].frame


def _check(images, **kw) -> tuple[str, ...]:
    return SensorHealthMonitor().check(observation(images, **kw)).faults


def test_a_real_frame_is_healthy(real_frame):
    assert real_frame.shape == (H, W, 3) and real_frame.std() > 20  # a real, textured view
    assert _check({"front": real_frame}) == ()


@pytest.mark.parametrize(
    ("frame", "fault"),
    [
        (np.zeros((H, W, 3), np.uint8), "camera_black:front"),
        (RNG.integers(0, 4, (H, W, 3), dtype=np.uint8), "camera_black:front"),  # read noise
        (np.full((H, W, 3), 255, np.uint8), "camera_saturated:front"),
        (RNG.integers(251, 256, (H, W, 3), dtype=np.uint8), "camera_saturated:front"),
        (RNG.integers(0, 256, (H, W, 3), dtype=np.uint8), "camera_noise:front"),
        (np.clip(RNG.normal(128, 30, (H, W, 3)), 0, 255).astype(np.uint8), "camera_noise:front"),
    ],
    ids=["black", "black_read_noise", "white", "white_read_noise", "uniform_noise",
         "gaussian_noise"],
)
def test_each_bad_frame_is_named(frame, fault):
    assert _check({"front": frame}) == (fault,)


def test_noise_over_a_real_scene_is_found_but_a_real_scene_is_not(real_frame):
    noise = RNG.normal(0.0, real_frame.std(), real_frame.shape)
    noisy = np.clip(real_frame + noise, 0, 255).astype(np.uint8)
    assert frame_faults(noisy) == ["camera_noise"]
    assert frame_faults(real_frame) == []


def test_a_frame_repeated_while_moving_is_frozen_after_frozen_ticks(real_frame):
    mon = SensorHealthMonitor()
    faults = [mon.check(observation({"front": real_frame.copy()}, t=0.1 * i, speed=5.0)).faults
              for i in range(20)]
    # the first frame and FROZEN_TICKS - 1 unchanged ones are not yet a fault
    assert faults[:FROZEN_TICKS] == [()] * FROZEN_TICKS
    assert faults[FROZEN_TICKS:] == [("camera_frozen:front",)] * (20 - FROZEN_TICKS)
    mon.reset()  # a new episode starts counting again
    assert mon.check(observation({"front": real_frame}, t=0.0)).ok


@pytest.mark.parametrize("speed", [0.0, FROZEN_MIN_SPEED_MPS / 2])
def test_a_frame_repeated_while_standing_is_not_frozen(real_frame, speed):
    mon = SensorHealthMonitor()
    for i in range(20):
        assert mon.check(observation({"front": real_frame}, t=0.1 * i, speed=speed)).ok


def test_standing_still_restarts_the_frozen_count(real_frame):
    mon = SensorHealthMonitor()
    speeds = [5.0] * (FROZEN_TICKS - 1) + [0.0] + [5.0] * (FROZEN_TICKS - 1)
    for i, v in enumerate(speeds):
        assert mon.check(observation({"front": real_frame}, t=0.1 * i, speed=v)).ok
    assert not mon.check(observation({"front": real_frame}, t=10.0)).ok


def test_a_flat_frame_repeated_while_moving_is_only_black():
    mon = SensorHealthMonitor()
    black = np.zeros((H, W, 3), np.uint8)
    for i in range(20):
        assert mon.check(observation({"front": black}, t=0.1 * i)).faults == (
            "camera_black:front",
        )


@pytest.mark.parametrize(
    ("ego", "fault"),
    [
        ({"speed": 1e6}, "ego_speed_implausible"),
        ({"speed": -150.0}, "ego_speed_implausible"),
        ({"speed": math.nan}, "ego_speed_implausible"),
        ({"accel_mps2": math.inf}, "ego_accel_implausible"),
        ({"accel_mps2": -500.0}, "ego_accel_implausible"),
        ({"yaw_rate_rps": 2 * math.pi / 0.1}, "ego_yaw_rate_implausible"),  # a heading wrap
        ({"x": math.nan}, "ego_pose_invalid"),
        ({"t": math.nan}, "timestamp_invalid"),
        ({"t": math.inf}, "timestamp_invalid"),
    ],
)
def test_implausible_ego_state_and_timestamp(real_frame, ego, fault):
    assert _check({"front": real_frame}, **ego) == (fault,)


def test_plausible_extremes_are_not_faults(real_frame):
    assert _check({"front": real_frame}, speed=-3.0, accel_mps2=-9.0, yaw_rate_rps=1.5) == ()


def test_timestamp_must_increase(real_frame):
    mon = SensorHealthMonitor()
    times = [0.0, 0.1, 0.1, 0.05, 0.2, math.nan, 0.3]
    ok = [mon.check(observation({"front": real_frame}, t=t, speed=0.0)).ok for t in times]
    assert ok == [True, True, False, False, True, False, True]


def test_no_cameras_several_cameras_and_a_missing_image(real_frame):
    assert _check({}) == ()
    black = np.zeros((36, 64, 3), np.uint8)
    assert _check({"front": real_frame, "rear": black}) == ("camera_black:rear",)
    specs = observation({"front": real_frame, "rear": black}).cameras
    assert _check({"front": real_frame}, cameras=specs) == ("camera_missing:rear",)


def test_several_faults_at_once():
    faults = _check({"front": np.full((H, W, 3), 255, np.uint8)}, speed=1e6, t=math.nan)
    assert faults == ("camera_saturated:front", "ego_speed_implausible", "timestamp_invalid")


def test_sensor_health_type():
    assert SensorHealth().ok and SensorHealth().to_dict() == {"ok": True, "faults": []}
    bad = SensorHealth(["camera_black:front"])
    assert bad.faults == ("camera_black:front",) and not bad.ok
    assert bad.to_dict() == {"ok": False, "faults": ["camera_black:front"]}
    assert SensorHealth("timestamp_invalid").faults == ("timestamp_invalid",)
    with pytest.raises(ValueError, match="non-empty strings"):
        SensorHealth(("",))
    with pytest.raises(ValueError, match="SensorHealth or None"):
        Decision(np.zeros((6, 2)), np.zeros(6), health=["camera_black:front"])


def test_real_frames_of_a_drive_with_a_red_light_stop_raise_no_fault(drive):
    """The simulator renders without noise: standing at the light, the frame repeats for
    seconds; moving, it never does. Neither is a fault."""
    standing = [t.ego.speed_mps < 0.05 for t in drive]
    same = [False] + [a.frame_crc == b.frame_crc for a, b in zip(drive, drive[1:], strict=False)]
    assert sum(t.ego.speed_mps > FROZEN_MIN_SPEED_MPS for t in drive) >= 30  # it drove ...
    assert sum(s and r for s, r in zip(standing, same, strict=True)) >= 4 * FROZEN_TICKS  # stood
    mon = SensorHealthMonitor()
    for i, tick in enumerate(drive):
        obs = observation({"front": tick.frame}, t=tick.timestamp_s, ego_state=tick.ego)
        assert mon.check(obs).ok, f"tick {i}: {mon.check(obs).faults}"
