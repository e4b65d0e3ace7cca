"""Explanations fit the scene: no place the car is not at (a highway's off-ramp at a
roundabout, a roundabout on a street), and the side of a pedestrian or of a car given way to
is that object's, never the car's own turn."""

from __future__ import annotations

import re

import numpy as np
import pytest

from drivevla.core.types import MetaAction
from drivevla.language import explanations as ex
from drivevla.language.reasons import Reason

LISTS = [(r, m) for r in Reason for m in ex.EXPLANATION_TEMPLATES[r]]
LIST_IDS = [f"{r.value}-{m.value if m else 'any'}" for r, m in LISTS]
SIDE = re.compile(r"\b(on|from|to) the (left|right)\b")


def test_place_cues():
    assert ex.names_other_place("Taking the slip road off the highway.", "roundabout")
    assert ex.names_other_place("Braking gently on the off-ramp.", "street")
    assert ex.names_other_place("Slowing into the roundabout; the curve is tight.", "highway")
    assert not ex.names_other_place("Leaving the roundabout at the second exit.", "roundabout")
    assert not ex.names_other_place("Taking the exit as instructed.", "roundabout")
    assert not ex.names_other_place("Taking the slip road off the highway.", None)
    with pytest.raises(ValueError, match="valid"):
        ex.names_other_place("text", "moon")


@pytest.mark.parametrize("reason, meta", LISTS, ids=LIST_IDS)
@pytest.mark.parametrize("place", ex.PLACES)
def test_every_list_renders_at_every_place_without_naming_another(reason, meta, place):
    if reason == Reason.YIELD_ROUNDABOUT and place != "roundabout":
        pytest.skip("giving way to a roundabout's ring happens at a roundabout only")
    rng = np.random.default_rng(0)
    for split in ("train", "heldout"):
        for _ in range(40):
            text = ex.render_explanation(reason, meta, rng, split, place=place)
            assert not ex.names_other_place(text, place), (split, text)


def test_roundabout_exit_slowing_says_no_highway():
    # the exit's decelerate list has only highway phrasings in the train split: the reason's
    # general list stands in
    rng = np.random.default_rng(1)
    texts = {
        ex.render_explanation(Reason.INSTRUCTED_EXIT, MetaAction.DECELERATE, rng, "train",
                              {"ordinal": "second"}, place="roundabout")
        for _ in range(200)
    }
    assert texts and not any(ex.names_other_place(t, "roundabout") for t in texts)
    assert any("second exit" in t for t in texts)
    # at a highway exit the decelerate phrasings are used as before
    rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
    for _ in range(50):
        assert ex.render_explanation(
            Reason.INSTRUCTED_EXIT, MetaAction.DECELERATE, rng_a, "train", place="highway"
        ) == ex.render_explanation(Reason.INSTRUCTED_EXIT, MetaAction.DECELERATE, rng_b, "train")


@pytest.mark.parametrize(
    "reason", [Reason.PEDESTRIAN_CROSSING, Reason.YIELD_JUNCTION, Reason.YIELD_ROUNDABOUT]
)
def test_object_side_is_never_taken_from_the_turn(reason):
    rng = np.random.default_rng(3)
    for meta in (MetaAction.TURN_LEFT, MetaAction.STOP, MetaAction.DECELERATE, None):
        texts = {ex.render_explanation(reason, meta, rng, "all") for _ in range(300)}
        assert not any(SIDE.search(t) for t in texts), (meta, texts)
    texts = {
        ex.render_explanation(reason, meta, rng, "all", {"direction": "right"})
        for meta in (MetaAction.TURN_LEFT, MetaAction.STOP, MetaAction.DECELERATE)
        for _ in range(300)
    }
    assert {m.group(2) for t in texts if (m := SIDE.search(t))} <= {"right"}
    if reason != Reason.YIELD_ROUNDABOUT:  # its phrasings name no side
        assert any(SIDE.search(t) for t in texts)
