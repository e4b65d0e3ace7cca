"""The words of a privileged planner's decision: the slots that name its reason's object as
the cameras show it, and the explanation rendered from them.

Shared by the lane-graph expert (:mod:`drivevla.planner.expert`) and the box expert
(:mod:`drivevla.planner.box_expert`), so both label the same situation with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from drivevla.core.frames import world_to_ego
from drivevla.core.types import CameraSpec, Decision, HighLevelCommand, MetaAction
from drivevla.language.explanations import OBJECT_SIDE_REASONS, render_explanation
from drivevla.language.reasons import Reason
from drivevla.perception.camera_model import ego_point_in_view

# an object the explanation names by colour must be this close and inside a camera's view
VISIBLE_RANGE_M = 60.0
_ORDINALS = {"1": "first", "2": "second", "3": "third"}
TURN_META = {HighLevelCommand.LEFT: MetaAction.TURN_LEFT,
             HighLevelCommand.RIGHT: MetaAction.TURN_RIGHT}


def meta_action(decision: Decision, v: float, binding_speed_mps: float,
                command: HighLevelCommand, change: MetaAction | None = None) -> MetaAction:
    """The step's meta-action: stop (the plan and its binding cap at rest), the lane change
    under way (``change``), the turn the command announces, else by the plan's next speed
    against the current one ``v``."""
    v_next = float(decision.target_speeds[1])
    if v_next < 0.5 and binding_speed_mps < 0.5:
        return MetaAction.STOP
    if change is not None:
        return change
    if command in TURN_META:
        return TURN_META[command]
    if v_next < v - 0.7:
        return MetaAction.DECELERATE
    if v_next > v + 0.7:
        return MetaAction.ACCELERATE
    return MetaAction.KEEP_LANE


def object_slots(obj: dict[str, Any], ego_xy: np.ndarray, ego_yaw: float,
                 cameras: Sequence[CameraSpec]) -> dict[str, Any]:
    """Slots naming the reason's object ``obj`` (a cap's object: ``kind``, world ``x, y``,
    ...) as the cameras show it: a vehicle by its colour only while it is in view (within
    ``VISIBLE_RANGE_M`` and inside a camera's field of view: the picture must show the car
    the text names), its distance, and the side it is on (``side``: ``left`` / ``right``,
    None within 1 m of the ego's axis)."""
    slots: dict[str, Any] = {}
    kind = obj.get("kind")
    if kind == "pedestrian":
        slots["object"] = "pedestrian"
    if kind == "speed":
        slots["speed"] = int(round(obj["speed_kmh"]))
    if "x" not in obj:
        return slots
    rel = world_to_ego(np.array([obj["x"], obj["y"]], dtype=float), np.asarray(ego_xy),
                       float(ego_yaw))
    dist = float(np.hypot(rel[0], rel[1]))
    slots["distance"] = int(round(dist))
    visible = dist <= VISIBLE_RANGE_M and any(
        ego_point_in_view(cam, float(rel[0]), float(rel[1])) for cam in cameras)
    if kind == "vehicle" and visible:
        slots["object"] = f"{obj.get('colour', '')} car".strip()
    if abs(rel[1]) > 1.0:
        slots["side"] = "left" if rel[1] > 0 else "right"
    return slots


def explain(reason: Reason, meta: MetaAction, slots: dict[str, Any], intent: str,
            rng: np.random.Generator, split: str, place: str | None) -> str:
    """The explanation of ``reason`` / ``meta`` with the object's ``slots``: the direction is
    the object's side for reasons about an object (the pedestrian, the car given way to),
    else the manoeuvre's; a roundabout intent names its exit's ordinal."""
    slots = dict(slots)
    side = slots.pop("side", None)
    if reason in OBJECT_SIDE_REASONS:
        slots["direction"] = side
    elif meta in (MetaAction.TURN_LEFT, MetaAction.CHANGE_LEFT):
        slots["direction"] = "left"
    elif meta in (MetaAction.TURN_RIGHT, MetaAction.CHANGE_RIGHT):
        slots["direction"] = "right"
    if intent.startswith("roundabout_exit_"):
        slots["ordinal"] = _ORDINALS[intent[-1]]
    return render_explanation(reason, meta, rng, split=split, slots=slots, place=place)
