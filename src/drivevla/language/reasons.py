"""The closed vocabulary of driving reasons, shared by the expert's labels, explanations,
datasets and the faithfulness metric."""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    """Why the car does what it does at one step (the binding constraint of the expert)."""

    FOLLOW_ROUTE = "follow_route"  # nothing binding: cruise along the route
    SPEED_LIMIT = "speed_limit"  # at or slowing to the speed limit
    CURVE = "curve"  # slowing for a bend, a turn or the roundabout
    RED_LIGHT = "red_light"  # stopping / waiting at a red or yellow light
    PEDESTRIAN_CROSSING = "pedestrian_crossing"  # a pedestrian is crossing or about to
    SLOW_LEADER = "slow_leader"  # following a slower or braking vehicle ahead
    YIELD_JUNCTION = "yield_junction"  # giving way to traffic at a junction
    YIELD_ROUNDABOUT = "yield_roundabout"  # giving way to traffic on the ring
    INSTRUCTED_LANE_CHANGE = "instructed_lane_change"
    INSTRUCTED_OVERTAKE = "instructed_overtake"
    INSTRUCTED_TURN = "instructed_turn"  # turning as instructed at a junction
    INSTRUCTED_EXIT = "instructed_exit"  # taking the exit / roundabout exit instructed
    INSTRUCTED_MERGE = "instructed_merge"
    INSTRUCTED_SPEED = "instructed_speed"  # honouring a speed request
    REFUSED_UNSAFE_INSTRUCTION = "refused_unsafe_instruction"

    @property
    def index(self) -> int:
        return list(Reason).index(self)
