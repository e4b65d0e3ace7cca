"""The GNSS filter against Leaderboard 2.0's GNSS noise on a known drive."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.sim_bridge.carla.pose_filter import (
    LEADERBOARD_GNSS_NOISE_M,
    GnssFilter,
    GnssFilterConfig,
)


def _odometer(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def test_the_filter_removes_most_of_the_leaderboards_gnss_noise():
    assert LEADERBOARD_GNSS_NOISE_M == pytest.approx(0.5566, abs=1e-4)
    rng = np.random.default_rng(0)
    dt, speed = 0.1, 8.0
    # 20 s along a gentle left curve, then 20 s standing still
    yaws = np.concatenate([np.linspace(0.0, 0.5, 200), np.full(200, 0.5)])
    speeds = np.concatenate([np.full(200, speed), np.zeros(200)])
    truth = [np.zeros(2)]
    for k in range(1, 400):
        truth.append(truth[-1] + speeds[k] * dt * np.array([math.cos(yaws[k]),
                                                            math.sin(yaws[k])]))
    truth = np.array(truth)
    gnss = truth + rng.normal(0.0, LEADERBOARD_GNSS_NOISE_M, truth.shape)
    f = GnssFilter()
    est = np.array([f.update(gnss[k], speeds[k], yaws[k], dt) for k in range(400)])
    raw_err = np.linalg.norm(gnss - truth, axis=1)[50:].mean()
    err = np.linalg.norm(est - truth, axis=1)[50:].mean()
    assert err < 0.5 * raw_err
    # the odometer (what the model reads as distance travelled): raw GNSS adds ~0.7 m per
    # tick of noise, most of it while standing; filtered it is within 2 % of the truth
    true_km = _odometer(truth)
    assert _odometer(gnss) > 1.5 * true_km
    assert _odometer(est) == pytest.approx(true_km, rel=0.02)
    assert np.array_equal(est[-1], est[-100])  # held while standing


def test_a_bad_filter_setting_is_named():
    with pytest.raises(ValueError, match="gnss_noise_m=-1"):
        GnssFilterConfig(gnss_noise_m=-1)
