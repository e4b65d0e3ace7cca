"""Bench2Drive comfort (nuPlan bounds on 20-step windows): the pure function."""

from __future__ import annotations

import numpy as np
import pytest

from drivevla.benchmarks.comfort import (
    COMFORT_BOUNDS,
    WINDOW_STEPS,
    route_comfort,
    window_failures,
    window_signals,
)

DT = 0.1


def _integrate(speed: np.ndarray, yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poses of a point moving with ``speed`` along ``yaw`` (exact for constant inputs)."""
    x = np.concatenate([[0.0], np.cumsum(speed[:-1] * np.cos(yaw[:-1]) * DT)])
    y = np.concatenate([[0.0], np.cumsum(speed[:-1] * np.sin(yaw[:-1]) * DT)])
    return x, y


def test_constant_speed_straight_drive_passes_every_window():
    n = 200
    speed = np.full(n, 12.0)
    yaw = np.full(n, 0.3)
    x, y = _integrate(speed, yaw)
    out = route_comfort(x, y, yaw, speed)
    assert out["n_windows"] == n // WINDOW_STEPS
    assert out["n_passed"] == out["n_windows"]
    assert out["comfort"] == pytest.approx(100.0)
    assert all(v == 0 for v in out["failures"].values())


def test_gentle_constant_curve_passes():
    n = 100
    t = np.arange(n) * DT
    radius, v = 100.0, 10.0  # lateral 1 m/s^2, yaw rate 0.1 rad/s
    yaw = v / radius * t + np.pi / 2
    x, y = radius * np.cos(yaw - np.pi / 2), radius * np.sin(yaw - np.pi / 2)
    out = route_comfort(x, y, yaw, np.full(n, v))
    assert out["comfort"] == pytest.approx(100.0)
    sig = window_signals(x[:20], y[:20], yaw[:20])
    assert np.allclose(sig["lat_accel"], 1.0, atol=0.02)
    assert np.allclose(sig["yaw_rate"], 0.1, atol=1e-6)
    assert np.allclose(sig["lon_accel"], 0.0, atol=0.05)  # window-edge fit error


def test_hard_brake_fails_its_windows():
    n = 100
    t = np.arange(n) * DT
    speed = np.where(t < 4.0, 20.0, np.maximum(20.0 - 8.0 * (t - 4.0), 0.0))  # 8 m/s^2 stop
    yaw = np.zeros(n)
    x, y = _integrate(speed, yaw)
    out = route_comfort(x, y, yaw, speed)
    assert 0 < out["n_passed"] < out["n_windows"]
    assert out["failures"]["lon_accel"] >= 1
    assert out["comfort"] < 100.0


def test_zig_zag_fails_yaw_bounds():
    n = 100
    t = np.arange(n) * DT
    yaw = 0.4 * np.sin(2 * np.pi * 1.0 * t)  # yaw rate up to 2.5 rad/s
    speed = np.full(n, 8.0)
    x, y = _integrate(speed, yaw)
    out = route_comfort(x, y, yaw, speed)
    assert out["comfort"] == pytest.approx(0.0)
    assert out["failures"]["yaw_rate"] == out["n_windows"]
    assert out["failures"]["yaw_accel"] == out["n_windows"]


@pytest.mark.parametrize(
    ("accel", "passes"),
    [(2.0, True), (2.6, False), (-3.5, True), (-4.5, False)],
)
def test_longitudinal_bounds_are_asymmetric(accel, passes):
    t = np.arange(WINDOW_STEPS) * DT
    x = 15.0 * t + 0.5 * accel * t**2
    y, yaw = np.zeros_like(t), np.zeros_like(t)
    sig = window_signals(x, y, yaw)
    assert np.allclose(sig["lon_accel"], accel, atol=1e-6)
    assert ("lon_accel" not in window_failures(sig)) is passes


def test_yaw_unwrapping_across_pi():
    n = 40
    yaw = np.pi - 0.05 + 0.005 * np.arange(n)  # crosses +pi: wraps to -pi
    wrapped = (yaw + np.pi) % (2 * np.pi) - np.pi
    speed = np.full(n, 5.0)
    x, y = _integrate(speed, yaw)
    out = route_comfort(x, y, wrapped, speed)
    assert out["comfort"] == pytest.approx(100.0)


def test_short_drive_and_remainder():
    t = np.arange(15) * DT
    assert route_comfort(t, 0 * t, 0 * t)["comfort"] is None
    t = np.arange(45) * DT
    out = route_comfort(10 * t, 0 * t, 0 * t)
    assert out["n_windows"] == 2  # the 5-step remainder is not scored
    with pytest.raises(ValueError):
        route_comfort(t, t[:-1], t)


def test_bounds_are_the_nuplan_ones():
    assert COMFORT_BOUNDS["lon_accel"] == (-4.05, 2.40)
    assert COMFORT_BOUNDS["lat_accel"] == (-4.89, 4.89)
    assert COMFORT_BOUNDS["jerk"] == (-8.37, 8.37)
    assert COMFORT_BOUNDS["lon_jerk"] == (-4.13, 4.13)
    assert COMFORT_BOUNDS["yaw_accel"] == (-1.93, 1.93)
    assert COMFORT_BOUNDS["yaw_rate"] == (-0.95, 0.95)
