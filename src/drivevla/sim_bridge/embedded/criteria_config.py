"""The criteria's settings and constants: penalty factors, route statuses and
:class:`CriteriaConfig` (thresholds; defaults: CARLA Leaderboard 2.0)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from drivevla.core.types import InfractionType
from drivevla.sim_bridge.embedded.field_rules import Rule, check_fields

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

_POSITIVE = Rule("float", 0.0, None, lo_open=True)
_NON_NEGATIVE = Rule("float", 0.0, None)
_SHARE = Rule("float", 0.0, 1.0, lo_open=True)
# What every field of CriteriaConfig allows.
CRITERIA_FIELD_RULES: dict[str, Rule] = {
    "collision_same_actor_window_s": _POSITIVE,
    "collision_min_separation_m": _POSITIVE,
    "collision_min_ego_speed_mps": _NON_NEGATIVE,
    "outside_lane_tolerance_m": _NON_NEGATIVE,
    "wrong_way_angle_deg": Rule("float", 0.0, 180.0, lo_open=True),
    "red_light_check_distance_m": _POSITIVE,
    "route_deviation_m": _POSITIVE,
    "route_deviation_far_m": _POSITIVE,
    "route_deviation_far_share": _SHARE,
    "blocked_speed_mps": _NON_NEGATIVE,
    "blocked_time_s": _POSITIVE,
    "timeout_base_s": _NON_NEGATIVE,
    "timeout_speed_fraction": _POSITIVE,
    "min_speed_checkpoints": Rule("int", 1, None),
    "enable_min_speed": Rule("bool"),
    "completion_snap_fraction": _SHARE,
    "completion_snap_distance_m": _POSITIVE,
    "outside_lanes_basis": Rule("choice", choices=_OUTSIDE_LANES_BASES),
    "projection_window_m": _POSITIVE,
}


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
        check_fields("CriteriaConfig", self, CRITERIA_FIELD_RULES)

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
