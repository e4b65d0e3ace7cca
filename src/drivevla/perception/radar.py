"""A forward radar as a car has one: range and range rate of the nearest object in a cone
ahead, rendered from the world's boxes (never from route data).

    reading = forward_radar(snapshot, RadarSpec(), rng)   # RadarReading or None

The sensor sits on the ego's front bumper, looking along its heading. It casts rays every
``ray_step_deg`` across its field of view and intersects them with the 2D footprints of every
other actor (vehicles, pedestrians, static props); the nearest hit within ``range_m`` is the
detection. ``range_rate_mps`` is the relative velocity along the line of sight to that
point (negative: closing in). Gaussian noise of ``range_noise_m`` / ``rate_noise_mps`` is
added from the caller's generator; with nothing in the cone the reading is None (a radar
reports no target, not a range of infinity). Ray casting on footprints is what a production
radar's tracker output looks like to a planner at this level of detail: one object, its range
and closing speed; no elevation, no multipath.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivevla.core.scene import SceneSnapshot
from drivevla.core.types import RadarReading


@dataclass(frozen=True)
class RadarSpec:
    """Field of view (full angle, degrees), maximum range (m), ray spacing (degrees) and noise
    (1-sigma, m and m/s) of the forward radar."""

    fov_deg: float = 20.0
    range_m: float = 80.0
    ray_step_deg: float = 0.5
    range_noise_m: float = 0.1
    rate_noise_mps: float = 0.1

    def __post_init__(self) -> None:
        checks = {"fov_deg": 0 < self.fov_deg < 180, "range_m": self.range_m > 0,
                  "ray_step_deg": 0 < self.ray_step_deg <= self.fov_deg,
                  "range_noise_m": self.range_noise_m >= 0,
                  "rate_noise_mps": self.rate_noise_mps >= 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError("RadarSpec: invalid "
                             + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad))


def _ray_hits(origin: np.ndarray, dirs: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(R,) distance along each unit ray ``dirs`` (R, 2) from ``origin`` to the polygon
    ``poly`` (4, 2), inf where it misses."""
    a = poly
    e = np.roll(poly, -1, axis=0) - poly  # edges a -> a + e
    w = a - origin  # (4, 2)
    # solve origin + t d = a + u e for t >= 0, 0 <= u <= 1, per ray and edge
    denom = dirs[:, None, 0] * e[None, :, 1] - dirs[:, None, 1] * e[None, :, 0]  # (R, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (w[None, :, 0] * e[None, :, 1] - w[None, :, 1] * e[None, :, 0]) / denom
        u = (w[None, :, 0] * dirs[:, None, 1] - w[None, :, 1] * dirs[:, None, 0]) / denom
    ok = (np.abs(denom) > 1e-12) & (t >= 0) & (u >= 0) & (u <= 1)
    return np.where(ok, t, np.inf).min(axis=1)


def forward_radar(snapshot: SceneSnapshot, spec: RadarSpec | None = None,
                  rng: np.random.Generator | None = None) -> RadarReading | None:
    """The radar's reading at ``snapshot`` (see the module docstring); no noise without
    ``rng``."""
    spec = spec or RadarSpec()
    ego = snapshot.ego
    heading = np.array([math.cos(ego.yaw), math.sin(ego.yaw)])
    origin = np.array([ego.x, ego.y]) + heading * ego.length / 2.0
    half = math.radians(spec.fov_deg) / 2.0
    bearings = np.arange(-half, half + 1e-9, math.radians(spec.ray_step_deg))
    angles = ego.yaw + bearings
    dirs = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    best: tuple[float, int, int] | None = None  # (range, ray index, actor index)
    for i, actor in enumerate(snapshot.actors):
        if actor.actor_id == ego.actor_id:  # a snapshot may list the ego among the actors
            continue
        centre = np.array([actor.x, actor.y])
        if np.linalg.norm(centre - origin) > spec.range_m + max(actor.length, actor.width):
            continue
        hits = _ray_hits(origin, dirs, actor.footprint())
        k = int(np.argmin(hits))
        if hits[k] <= spec.range_m and (best is None or hits[k] < best[0]):
            best = (float(hits[k]), k, i)
    if best is None:
        return None
    rng_m, k, i = best
    actor = snapshot.actors[i]
    rate = float((actor.velocity - ego.velocity) @ dirs[k])
    if rng is not None:
        rng_m = max(0.0, rng_m + rng.normal(0.0, spec.range_noise_m))
        rate += rng.normal(0.0, spec.rate_noise_mps)
    return RadarReading(rng_m, rate, float(bearings[k]), actor.actor_id)
