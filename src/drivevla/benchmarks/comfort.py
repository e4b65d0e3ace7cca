"""Comfort as in Bench2Drive: nuPlan's comfort bounds checked on 20-step windows of a drive.

See ``/work/shared/METRICS.md``. The ego's x, y, yaw and speed are recorded every control tick
(0.1 s). The drive is cut into consecutive windows of 20 ticks (a shorter remainder at the end is
not scored). In each window the kinematic signals are estimated with Savitzky-Golay derivative
filters (window 7, order 2, ``scipy.signal.savgol_filter``):

- velocity (world) = d/dt of x, y; acceleration (world) = d/dt of that velocity, projected on
  the ego heading (longitudinal) and its left normal (lateral), as nuPlan does in the ego frame;
- jerk = d/dt of the acceleration magnitude; longitudinal jerk = d/dt of the longitudinal
  acceleration;
- yaw rate = d/dt of the unwrapped yaw; yaw acceleration = d/dt of the yaw rate.

A window passes when every sample is within the nuPlan bounds (:data:`COMFORT_BOUNDS`). The
route score is the share of passing windows; a benchmark reports the mean over routes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

WINDOW_STEPS = 20
SAVGOL_WINDOW = 7
SAVGOL_ORDER = 2
DT_S = 0.1

# nuPlan ego comfort bounds (open intervals): (low, high); None = unbounded on that side.
COMFORT_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "lon_accel": (-4.05, 2.40),  # m/s^2
    "lat_accel": (-4.89, 4.89),  # m/s^2, |.| < 4.89
    "jerk": (-8.37, 8.37),  # m/s^3, |.| < 8.37
    "lon_jerk": (-4.13, 4.13),  # m/s^3, |.| < 4.13
    "yaw_accel": (-1.93, 1.93),  # rad/s^2, |.| < 1.93
    "yaw_rate": (-0.95, 0.95),  # rad/s, |.| < 0.95
}


def _deriv(values: np.ndarray, dt: float) -> np.ndarray:
    window = min(SAVGOL_WINDOW, len(values) if len(values) % 2 else len(values) - 1)
    if window <= SAVGOL_ORDER:
        return np.gradient(values, dt) if len(values) > 1 else np.zeros_like(values)
    from scipy.signal import savgol_filter  # imported on first use: 0.7 s

    return savgol_filter(values, window, SAVGOL_ORDER, deriv=1, delta=dt, mode="interp")


def window_signals(
    x: np.ndarray, y: np.ndarray, yaw: np.ndarray, dt: float = DT_S
) -> dict[str, np.ndarray]:
    """The six nuPlan comfort signals of one window (arrays of the window's length)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    heading = np.unwrap(np.asarray(yaw, dtype=np.float64))
    vx, vy = _deriv(x, dt), _deriv(y, dt)
    ax, ay = _deriv(vx, dt), _deriv(vy, dt)
    c, s = np.cos(heading), np.sin(heading)
    lon = ax * c + ay * s
    lat = -ax * s + ay * c
    yaw_rate = _deriv(heading, dt)
    return {
        "lon_accel": lon,
        "lat_accel": lat,
        "jerk": _deriv(np.hypot(lon, lat), dt),
        "lon_jerk": _deriv(lon, dt),
        "yaw_accel": _deriv(yaw_rate, dt),
        "yaw_rate": yaw_rate,
    }


def window_failures(signals: dict[str, np.ndarray]) -> list[str]:
    """Names of the bounds a window violates (empty: the window passes)."""
    failed = []
    for name, (lo, hi) in COMFORT_BOUNDS.items():
        v = signals[name]
        if not np.all(np.isfinite(v)):
            failed.append(name)
        elif (lo is not None and np.any(v <= lo)) or (hi is not None and np.any(v >= hi)):
            failed.append(name)
    return failed


def route_comfort(
    x: np.ndarray,
    y: np.ndarray,
    yaw: np.ndarray,
    speed: np.ndarray | None = None,
    dt: float = DT_S,
    window_steps: int = WINDOW_STEPS,
) -> dict[str, Any]:
    """Comfort of one drive sampled every ``dt`` seconds.

    Returns ``comfort`` (percent of passing windows; None when the drive is shorter than one
    window), ``n_windows``, ``n_passed`` and ``failures`` (how many windows broke each bound).
    ``speed`` is accepted for the record layout but the signals come from the poses."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if not (len(y) == n and len(yaw) == n and (speed is None or len(speed) == n)):
        raise ValueError("x, y, yaw (and speed) must have the same length")
    n_windows = n // window_steps
    failures = {name: 0 for name in COMFORT_BOUNDS}
    passed = 0
    for k in range(n_windows):
        sl = slice(k * window_steps, (k + 1) * window_steps)
        failed = window_failures(window_signals(x[sl], np.asarray(y)[sl], np.asarray(yaw)[sl], dt))
        for name in failed:
            failures[name] += 1
        passed += not failed
    return {
        "comfort": 100.0 * passed / n_windows if n_windows else None,
        "n_windows": n_windows,
        "n_passed": passed,
        "failures": failures,
    }
