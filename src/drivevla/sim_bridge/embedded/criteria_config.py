"""The criteria's settings and constants: penalty factors, route statuses and
:class:`CriteriaConfig` (thresholds; defaults: CARLA Leaderboard 2.0)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from drivevla.core.types import InfractionType

# Constant factors per event (leaderboard-2.0 ``PENALTY_VALUE_DICT``).
PENALTY_FACTORS: dict[InfractionType, float] = {
    InfractionType.COLLISION_PEDESTRIAN: 0.50,
    InfractionType.COLLISION_VEHICLE: 0.60,
    InfractionType.COLLISION_STATIC: 0.65,
    InfractionType.RED_LIGHT: 0.70,
    InfractionType.STOP_SIGN: 0.80,
    InfractionType.SCENARIO_TIMEOUT: 0.70,
    InfractionType.YIELD_EMERGENCY: 0.70,
}
# ``PENALTY_PERC_DICT``: min speed [0.7, "decreases"]: factor 1 - (1 - 0.7) * (1 - v/100).
MIN_SPEED_MAX_PENALTY = 0.70

COLLISION_KINDS: dict[str, InfractionType] = {
    "vehicle": InfractionType.COLLISION_VEHICLE,
    "pedestrian": InfractionType.COLLISION_PEDESTRIAN,
    "static": InfractionType.COLLISION_STATIC,
}

# Route statuses, spelled as the leaderboard's statistics manager writes them.
STATUS_RUNNING = "Started"
STATUS_COMPLETED = "Completed"
STATUS_PERFECT = "Perfect"
STATUS_DEVIATED = "Failed - Agent deviated from the route"
STATUS_BLOCKED = "Failed - Agent got blocked"
STATUS_TIMED_OUT = "Failed - Agent timed out"

_OUTSIDE_LANES_BASES = ("route", "driven")


@dataclass(frozen=True)
class CriteriaConfig:
    """Thresholds of the criteria (defaults: CARLA Leaderboard 2.0). Metres, seconds, m/s."""

    collision_same_actor_window_s: float = 5.0
    collision_min_separation_m: float = 5.0
    collision_min_ego_speed_mps: float = 0.1
    # Documented here; the env applies them when it computes the tick's flags.
    outside_lane_tolerance_m: float = 0.5
    wrong_way_angle_deg: float = 120.0
    red_light_check_distance_m: float = 15.0
    route_deviation_m: float = 30.0
    route_deviation_far_m: float = 15.0
    route_deviation_far_share: float = 0.30
    blocked_speed_mps: float = 0.1
    blocked_time_s: float = 180.0
    timeout_base_s: float = 300.0
    timeout_speed_fraction: float = 0.10  # route timeout = base + length / (fraction * limit)
    min_speed_checkpoints: int = 4
    enable_min_speed: bool = True  # Bench2Drive switches the min-speed penalty off
    completion_snap_fraction: float = 0.99
    completion_snap_distance_m: float = 10.0
    # "route": outside-lanes share of route progress (leaderboard); "driven": of odometry.
    outside_lanes_basis: str = "route"
    # Half-width (m of arc) of the route window searched around the previous projection.
    projection_window_m: float = 20.0

    def __post_init__(self) -> None:
        positive = (
            "collision_same_actor_window_s",
            "collision_min_separation_m",
            "red_light_check_distance_m",
            "route_deviation_m",
            "route_deviation_far_m",
            "blocked_time_s",
            "timeout_speed_fraction",
            "completion_snap_distance_m",
            "projection_window_m",
        )
        for key in positive:
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"CriteriaConfig.{key}={value!r} must be a finite number > 0")
        non_negative = (
            "collision_min_ego_speed_mps",
            "outside_lane_tolerance_m",
            "blocked_speed_mps",
            "timeout_base_s",
        )
        for key in non_negative:
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"CriteriaConfig.{key}={value!r} must be a finite number >= 0")
        for key in ("route_deviation_far_share", "completion_snap_fraction"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and 0 < value <= 1):
                raise ValueError(f"CriteriaConfig.{key}={value!r} must be in (0, 1]")
        if not (0 < self.wrong_way_angle_deg <= 180):
            raise ValueError(
                f"CriteriaConfig.wrong_way_angle_deg={self.wrong_way_angle_deg!r} "
                "must be in (0, 180]"
            )
        if isinstance(self.min_speed_checkpoints, bool) or not (
            isinstance(self.min_speed_checkpoints, int) and self.min_speed_checkpoints >= 1
        ):
            raise ValueError(
                f"CriteriaConfig.min_speed_checkpoints={self.min_speed_checkpoints!r} "
                "must be an integer >= 1"
            )
        if self.outside_lanes_basis not in _OUTSIDE_LANES_BASES:
            raise ValueError(
                f"CriteriaConfig.outside_lanes_basis={self.outside_lanes_basis!r}; "
                f"valid: {list(_OUTSIDE_LANES_BASES)}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CriteriaConfig:
        """Build from a mapping; unknown keys raise a ``ValueError`` listing the valid keys."""
        valid = sorted(f.name for f in fields(cls))
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"unknown criteria key(s) {unknown}; valid keys: {valid}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
