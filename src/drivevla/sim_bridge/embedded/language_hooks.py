"""Where the simulator meets the language layer: instruction slots taken from the scenario,
hazard notices derived from ground truth, and whether an intent was achieved."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from drivevla.core.types import HighLevelCommand
from drivevla.language.events import InstructionEvent
from drivevla.language.instructions import colour_name, render_navigation
from drivevla.language.phrasing_sets import PhrasingSet, render_from_set
from drivevla.sim_bridge.embedded.scenario_types import Scenario

ORDINALS = {1: "first", 2: "second", 3: "third"}
LANE_LEVEL_INTENTS = {"change_lane_left", "change_lane_right", "overtake", "cruise"}
NOTICE_LEAD_S = 2.5  # a pedestrian notice starts this long before the crossing does
NOTICE_DURATION_S = 3.0


def navigation_slots(scenario: Scenario, world) -> dict[str, Any]:
    """Slot values for the navigation phrasings of this route."""
    route = scenario.route
    slots: dict[str, Any] = {}
    for start, leg in zip(route.leg_start_m, route.legs, strict=True):
        if leg.command != HighLevelCommand.LANE_FOLLOW:
            slots["distance"] = int(max(round(start / 10.0) * 10, 10))
            break
    if scenario.intent.startswith("roundabout_exit_"):
        n = int(scenario.intent[-1])
        slots["ordinal"], slots["exit_number"] = ORDINALS[n], n
    if scenario.overtake_target is not None:

        slots["colour"] = colour_name(world.spawned_npcs[scenario.overtake_target].color_rgb)
    return slots


def render_navigation_for(scenario: Scenario, world, rng: np.random.Generator, split: str,
                          phrasings: PhrasingSet | None = None) -> str:
    """The route's navigation instruction: from ``phrasings`` where it has the intent's list
    (:mod:`drivevla.language.phrasing_sets`), else from the language module's ``split``."""
    slots = navigation_slots(scenario, world)
    text = render_from_set(phrasings, "navigation", scenario.intent, rng, slots)
    return text if text is not None else render_navigation(
        scenario.intent, rng, split=split, slots=slots)


def _side_of_route(scenario: Scenario, point: np.ndarray) -> str:
    route = scenario.route
    d = np.linalg.norm(route.polyline - point, axis=1)
    i = int(np.clip(np.argmin(d), 0, len(route.polyline) - 2))
    tangent = route.polyline[i + 1] - route.polyline[i]
    rel = point - route.polyline[i]
    return "left" if tangent[0] * rel[1] - tangent[1] * rel[0] > 0 else "right"


def pedestrian_notices(scenario: Scenario) -> list[InstructionEvent]:
    """A ``pedestrian_crossing`` notice for every pedestrian whose crossing meets the route."""
    events = []
    route = scenario.route.polyline
    for ped in scenario.pedestrians:
        walk = np.linspace(ped.start, ped.end, 20)
        gap = np.min(np.linalg.norm(route[None, :, :] - walk[:, None, :], axis=2))
        if gap > 2.0:
            continue
        start = max(ped.start_time_s - NOTICE_LEAD_S, 0.0)
        events.append(
            InstructionEvent("notice", start, NOTICE_DURATION_S, category="pedestrian_crossing")
        )
    return events


def event_slots(event: InstructionEvent, scenario: Scenario) -> dict[str, Any]:
    """Slots for an event's phrasing (the side a crossing pedestrian comes from, ...)."""
    slots: dict[str, Any] = {}
    if event.kind == "notice" and event.category == "pedestrian_crossing":
        for ped in scenario.pedestrians:
            if abs(max(ped.start_time_s - NOTICE_LEAD_S, 0.0) - event.start_s) < 1e-9:
                slots["side"] = _side_of_route(scenario, ped.start)
                break
    if event.speed_kmh is not None:
        slots["speed"] = int(round(event.speed_kmh))
    return slots


def instruction_success(scenario: Scenario, world, route_completion: float) -> bool:
    """The instructed intent was achieved: the route completed, the ego on the route's final
    road (and, for lane-level intents, its final lane), an overtaken car left behind."""
    if route_completion < 99.0:
        return False
    ego = world.ego
    last = scenario.route.legs[-1].lane
    lane = ego.lane_index
    if lane is None or tuple(lane[:2]) != tuple(last[:2]):
        return False
    if scenario.intent in LANE_LEVEL_INTENTS and lane[2] != last[2]:
        return False
    if scenario.overtake_target is not None:
        target = world.spawned_npcs[scenario.overtake_target]
        heading = np.array([math.cos(ego.heading), math.sin(ego.heading)])
        if float((ego.position - target.position) @ heading) <= 0.0:
            return False
    return True
