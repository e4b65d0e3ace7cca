"""The scenario-family registry: :data:`FAMILIES` (filled by :func:`register_family` as the
builder modules load), each intent's canonical instruction and :func:`build_scenario`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drivevla.language.intents import check_intents
from drivevla.sim_bridge.embedded.scenario_types import (
    BuildContext,
    Scenario,
)


@dataclass(frozen=True)
class Family:
    name: str
    intents: tuple[str, ...]
    description: str
    build: Callable[[str, BuildContext], Scenario]


FAMILIES: dict[str, Family] = {}


def register_family(name: str, intents: tuple[str, ...], description: str):
    check_intents(intents, f"scenario family {name!r}")

    def deco(fn: Callable[[str, BuildContext], Scenario]):
        FAMILIES[name] = Family(name, intents, description, fn)
        return fn

    return deco


# Canonical instruction per intent; the language module renders many phrasings on top.
DEFAULT_INSTRUCTIONS = {
    "cruise": "Follow the road and keep your lane.",
    "change_lane_left": "Change to the left lane.",
    "change_lane_right": "Move over to the right lane.",
    "overtake": "Overtake the slow car ahead.",
    "merge": "Merge onto the highway.",
    "take_exit": "Take the next exit.",
    "pass_exit": "Stay on the highway and pass the exit.",
    "turn_left": "Turn left at the next junction.",
    "turn_right": "Turn right at the next junction.",
    "go_straight": "Go straight through the junction.",
    "roundabout_exit_1": "At the roundabout, take the first exit.",
    "roundabout_exit_2": "At the roundabout, take the second exit.",
    "roundabout_exit_3": "At the roundabout, take the third exit.",
    "follow_street": "Follow the street through both sets of lights.",
}


def all_intents() -> list[str]:
    return sorted({i for f in FAMILIES.values() for i in f.intents})


def build_scenario(family: str, intent: str, ctx: BuildContext) -> Scenario:
    if family not in FAMILIES:
        raise ValueError(f"unknown scenario family {family!r}; valid: {sorted(FAMILIES)}")
    fam = FAMILIES[family]
    if intent not in fam.intents:
        raise ValueError(
            f"unknown intent {intent!r} for family {family!r}; valid: {list(fam.intents)}"
        )
    return fam.build(intent, ctx)
