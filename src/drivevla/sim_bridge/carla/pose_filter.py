"""Smoothing the leaderboard's noisy GNSS before it reaches the policy.

Leaderboard 2.0 spawns its GNSS with ``noise_lat_stddev = noise_lon_stddev = 0.000005`` deg,
about 0.56 m of white noise per reading. Raw, it would make the route projection jitter and
the model's odometer (``distance_travelled``, a sum of position steps) grow by tens of metres
a minute while the car stands still. :class:`GnssFilter` is a scalar (isotropic) Kalman filter
on the world position: predicted with the speedometer along the compass heading, corrected
with each GNSS reading, and frozen while the car stands still (a stopped car does not move,
whatever the GNSS says). carla_garage filters the same way (an EKF on GNSS, speed and compass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEADERBOARD_GNSS_NOISE_M = 0.000005 * math.pi * 6378137.0 / 180.0  # 0.557 m per axis


@dataclass
class GnssFilterConfig:
    """Noise levels (SI units)."""

    gnss_noise_m: float = LEADERBOARD_GNSS_NOISE_M  # std dev of a reading, per axis
    process_noise_m2_per_s: float = 0.05  # growth of the prediction's variance per second
    standstill_mps: float = 0.1  # below this speed the position is held

    def __post_init__(self) -> None:
        for key in ("gnss_noise_m", "process_noise_m2_per_s", "standstill_mps"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"GnssFilterConfig.{key}={value!r} must be a finite number >= 0")


class GnssFilter:
    """World position (m) from GNSS, speed (m/s) and heading (rad), one update per tick."""

    def __init__(self, config: GnssFilterConfig | None = None) -> None:
        self.config = config or GnssFilterConfig()
        self.reset()

    def reset(self) -> None:
        self.xy: np.ndarray | None = None
        self.variance_m2 = 0.0

    def update(self, gnss_xy: np.ndarray, speed_mps: float, yaw: float, dt_s: float
               ) -> np.ndarray:
        """The filtered position after this tick's reading ``gnss_xy`` (world metres)."""
        cfg = self.config
        z = np.asarray(gnss_xy, dtype=np.float64)
        if self.xy is None:
            self.xy, self.variance_m2 = z.copy(), cfg.gnss_noise_m ** 2
            return self.xy.copy()
        if abs(speed_mps) < cfg.standstill_mps:
            return self.xy.copy()
        self.xy = self.xy + speed_mps * dt_s * np.array([math.cos(yaw), math.sin(yaw)])
        predicted = self.variance_m2 + cfg.process_noise_m2_per_s * dt_s
        noise = cfg.gnss_noise_m ** 2
        gain = predicted / (predicted + noise) if predicted + noise > 0 else 1.0
        self.xy = self.xy + gain * (z - self.xy)
        self.variance_m2 = (1.0 - gain) * predicted
        return self.xy.copy()
