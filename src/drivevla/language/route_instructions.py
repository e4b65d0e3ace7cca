"""Navigation instructions from a route's next manoeuvre, LangAuto-style: what a navigator
says while driving a route of high-level commands (CARLA's ``RoadOption`` plans, see
:mod:`drivevla.sim_bridge.carla.convert`), e.g. "In about 40 metres, turn left." or "Turn
left at the next junction.".

The phrasings are the navigation intents' own (:mod:`drivevla.language.instruction_phrasings`),
so a policy trained on the embedded simulator reads the same sentences; the command picks the
intent (:data:`INTENT_OF_COMMAND`), the distance picks a phrasing with a ``{distance}`` slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivevla.core.types import HighLevelCommand
from drivevla.language.instruction_phrasings import NAVIGATION_PHRASINGS
from drivevla.language.instructions import (
    format_slots,
    pick_template,
    split_templates,
    template_slots,
)

INTENT_OF_COMMAND: dict[HighLevelCommand, str] = {
    HighLevelCommand.LANE_FOLLOW: "cruise",
    HighLevelCommand.LEFT: "turn_left",
    HighLevelCommand.RIGHT: "turn_right",
    HighLevelCommand.STRAIGHT: "go_straight",
    HighLevelCommand.CHANGE_LANE_LEFT: "change_lane_left",
    HighLevelCommand.CHANGE_LANE_RIGHT: "change_lane_right",
}


@dataclass(frozen=True)
class AnnounceRule:
    """When a manoeuvre is announced (metres to its start): beyond ``announce_m`` the
    instruction is to follow the road; between ``near_m`` and ``announce_m`` it names the
    distance; closer (or inside the manoeuvre) it names the manoeuvre alone."""

    announce_m: float = 80.0
    near_m: float = 15.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.near_m <= self.announce_m and math.isfinite(self.announce_m)):
            raise ValueError(
                f"need 0 <= near_m <= announce_m (finite), got near_m={self.near_m!r}, "
                f"announce_m={self.announce_m!r}"
            )


def render_command_instruction(
    command: HighLevelCommand | str,
    distance_m: float | None = None,
    rng: np.random.Generator | None = None,
    split: str = "canonical",
) -> str:
    """The instruction for ``command``, naming ``distance_m`` (metres to the manoeuvre,
    rounded as the language layer rounds distances) when given. ``split="canonical"`` is
    deterministic: the intent's first phrasing with (or, without a distance, without) the
    ``{distance}`` slot."""
    intent = INTENT_OF_COMMAND[HighLevelCommand(command)]
    templates = NAVIGATION_PHRASINGS[intent]
    split_templates(templates, "train" if split == "canonical" else split)  # validates split
    if distance_m is None:
        allow = frozenset(t for t in templates if not template_slots(t))
        return pick_template(templates, rng, split, {}, allow)
    values = format_slots({"distance": distance_m}, ("distance",))
    allow = frozenset(t for t in templates if template_slots(t) == {"distance"})
    return pick_template(templates, rng, split, values, allow)


def route_instruction(
    command: HighLevelCommand | str,
    distance_to_manoeuvre_m: float | None,
    rule: AnnounceRule = AnnounceRule(),
    rng: np.random.Generator | None = None,
    split: str = "canonical",
) -> str:
    """The instruction now, given the next manoeuvre's ``command`` and the distance (m) to its
    start (0 or less: driving it now; None: no manoeuvre ahead, follow the road)."""
    command = HighLevelCommand(command)
    if (
        command is HighLevelCommand.LANE_FOLLOW
        or distance_to_manoeuvre_m is None
        or distance_to_manoeuvre_m > rule.announce_m
    ):
        return render_command_instruction(HighLevelCommand.LANE_FOLLOW, None, rng, split)
    if distance_to_manoeuvre_m <= rule.near_m:
        return render_command_instruction(command, None, rng, split)
    return render_command_instruction(command, distance_to_manoeuvre_m, rng, split)
