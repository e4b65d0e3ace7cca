"""The navigation-intent vocabulary: every route goal a scenario family may ask for.

This is the one list of intents. Scenario families (``sim_bridge.embedded.scenarios``) are
checked against it when they register, the instruction phrasings have one list per intent,
and a DriveVLA checkpoint saves it (the intent head's classes are these, in this order).
Append new intents at the end: an existing checkpoint's class order must stay valid.
"""

from __future__ import annotations

NAVIGATION_INTENTS: tuple[str, ...] = (
    "change_lane_left",
    "change_lane_right",
    "cruise",
    "follow_street",
    "go_straight",
    "merge",
    "overtake",
    "pass_exit",
    "roundabout_exit_1",
    "roundabout_exit_2",
    "roundabout_exit_3",
    "take_exit",
    "turn_left",
    "turn_right",
)


def check_intents(intents: tuple[str, ...], owner: str) -> None:
    """Raise ``ValueError`` naming ``owner`` if it uses an intent outside the vocabulary."""
    unknown = [i for i in intents if i not in NAVIGATION_INTENTS]
    if unknown:
        raise ValueError(
            f"{owner} uses intent(s) {unknown} outside the navigation vocabulary "
            f"{list(NAVIGATION_INTENTS)} (add them to drivevla.language.intents)"
        )
