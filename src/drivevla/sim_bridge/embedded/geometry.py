"""Procedural road geometry: each family's map parameters drawn from the episode seed, with
disjoint parameter bands per split, so that maps a model is tested on are never maps it was
trained on (issue 28, item 1).

``SimConfig.geometry`` picks the split:

- ``fixed``: every parameter at its fixed value: today's maps, unchanged (the default, and
  the ``standard-fixedmap`` suite);
- ``train`` / ``val`` / ``test``: each parameter drawn uniformly from its split's bands. A
  parameter's range is cut into :data:`N_BANDS` equal bands, each shrunk by
  :data:`BAND_GAP` of its width on both sides; bands 0, 2, 4, 6 are ``train``, band 3 ``val``
  and bands 1, 5 ``test``. A ``test`` map therefore differs from every ``train`` map in
  *every* parameter, by at least two gaps.

The draw uses its own random stream (a child of the reset seed) and takes nothing from the
world's, so every seed's world on the fixed map is what it was before maps were drawn.
Every family has parameters (the highway's: a bend of the main road).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GEOMETRY_SPLITS = ("fixed", "train", "val", "test")
N_BANDS = 7
BAND_GAP = 0.1  # of a band's width, on each side
SPLIT_BANDS = {"train": (0, 2, 4, 6), "val": (3,), "test": (1, 5)}


@dataclass(frozen=True)
class GeometryParam:
    """One map parameter: its value on the fixed map and the range the splits share."""

    name: str
    fixed: float
    lo: float
    hi: float

    def bands(self, split: str) -> list[tuple[float, float]]:
        """The ``(lo, hi)`` intervals ``split`` draws from."""
        width = (self.hi - self.lo) / N_BANDS
        return [(self.lo + (b + BAND_GAP) * width, self.lo + (b + 1 - BAND_GAP) * width)
                for b in SPLIT_BANDS[split]]


def _skews(limit_deg: float, arms: tuple[int, ...]) -> tuple[GeometryParam, ...]:
    return tuple(GeometryParam(f"arm{k}_skew_deg", 0.0, -limit_deg, limit_deg) for k in arms)


# The ego's own arm (3, from the south) is never skewed: routes, crossings and the junctions'
# alignment hang on it.
FAMILY_GEOMETRY: dict[str, tuple[GeometryParam, ...]] = {
    "intersection": (GeometryParam("half_size_m", 12.0, 9.0, 15.0), *_skews(12.0, (0, 1, 2))),
    "roundabout": (GeometryParam("radius_m", 20.0, 14.0, 28.0), *_skews(15.0, (0, 1, 2))),
    "urban": (GeometryParam("junction_gap_m", 110.0, 80.0, 140.0),
              GeometryParam("half_size_m", 10.0, 8.0, 12.0), *_skews(10.0, (0, 2))),
    "merge": (GeometryParam("accel_lane_m", 130.0, 90.0, 170.0),
              GeometryParam("ramp_offset_m", 26.0, 18.0, 34.0),
              GeometryParam("ramp_curve_m", 60.0, 45.0, 75.0)),
    # the motorway bends by bend_deg after bend_start_m of its main road, to the left where
    # bend_side > 0 (so every split has both sides); 0 deg: today's straight road
    "highway": (GeometryParam("bend_deg", 0.0, 6.0, 34.0),
                GeometryParam("bend_side", 1.0, -1.0, 1.0),
                GeometryParam("bend_radius_m", 600.0, 300.0, 900.0),
                GeometryParam("bend_start_m", 100.0, 40.0, 160.0)),
    "exit": (GeometryParam("decel_lane_m", 80.0, 55.0, 110.0),
             GeometryParam("ramp_dx_m", 60.0, 45.0, 80.0),
             GeometryParam("ramp_dy_m", 22.0, 16.0, 30.0)),
}


def draw_geometry(family: str, split: str, rng: np.random.Generator | None = None
                  ) -> dict[str, float]:
    """The family's parameters for ``split`` (every name of :data:`FAMILY_GEOMETRY`;
    empty for a family without procedural geometry yet)."""
    if split not in GEOMETRY_SPLITS:
        raise ValueError(f"geometry split {split!r}; valid: {list(GEOMETRY_SPLITS)}")
    params = FAMILY_GEOMETRY.get(family, ())
    if split == "fixed":
        return {p.name: p.fixed for p in params}
    if rng is None:
        raise ValueError(f"geometry split {split!r} draws from a random stream: pass rng")
    out = {}
    for p in params:
        bands = p.bands(split)
        lo, hi = bands[int(rng.integers(len(bands)))]
        out[p.name] = float(rng.uniform(lo, hi))
    return out


AXIS_ANGLES = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)  # east, north, west, south


def arm_angles(geometry: dict[str, float]) -> tuple[float, ...]:
    """The four arm directions (rad) turned by each arm's skew (exactly the axes on the fixed
    map)."""
    return tuple(a + math.radians(geometry.get(f"arm{k}_skew_deg", 0.0))
                 for k, a in enumerate(AXIS_ANGLES))
