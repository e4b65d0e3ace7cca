"""Explanations of the expert's reason, and reading the reason back from text."""

from __future__ import annotations

import itertools
import string

import numpy as np
import pytest

from drivevla.core.types import MetaAction
from drivevla.language import explanations as ex
from drivevla.language.instructions import UNSAFE_CATEGORIES, format_slots
from drivevla.language.reasons import Reason

FULL_SLOTS = {
    "object": "blue truck",
    "distance": 42.0,
    "speed": 50,
    "direction": "left",
    "ordinal": 2,
    "refused": "running the red light",
}
# every (reason, meta-action key) list
LISTS = [(r, m) for r in Reason for m in ex.EXPLANATION_TEMPLATES[r]]
LIST_IDS = [f"{r.value}-{m.value if m else 'any'}" for r, m in LISTS]
FILLERS = ("okay, so", "well", "right now", "you know", "basically", "just")


def _filled(reason, template, index):
    values = format_slots(ex.example_slots(reason, index), ex.EXPLANATION_SLOTS)
    return template.format(**values)


def _perturbed(text):
    """Small changes a learned model might make to a phrasing."""
    no_punct = text.translate(str.maketrans("", "", string.punctuation))
    spaced = text.translate(str.maketrans(string.punctuation, " " * len(string.punctuation)))
    head, sep, tail = text.partition(",")
    middle = f"{head}, um,{tail}" if sep else f"{text} Anyway."
    return [
        text,
        text.lower(),
        text.upper(),
        no_punct,
        spaced,
        f"{FILLERS[len(text) % len(FILLERS)].capitalize()}, {text[0].lower()}{text[1:]}",
        f"{text} That's all.",
        middle,
        "  " + text.replace(" ", "  ") + "  ",
        text.replace("'", "\u2019"),
    ]


def _all_templates(reason):
    return ex.all_explanation_templates(reason, "all")


def test_every_reason_has_enough_phrasings():
    for reason in Reason:
        every = _all_templates(reason)
        assert len(set(every)) == len(every) >= 10, reason
        for meta, templates in ex.EXPLANATION_TEMPLATES[reason].items():
            assert len(set(templates)) == len(templates) >= 6, (reason, meta)


@pytest.mark.parametrize(("reason", "meta"), LISTS, ids=LIST_IDS)
def test_splits_nonempty_and_disjoint(reason, meta):
    every = ex.explanation_phrasings(reason, meta, "all")
    train = ex.explanation_phrasings(reason, meta, "train")
    held = ex.explanation_phrasings(reason, meta, "heldout")
    assert len(train) >= 3 and len(held) >= 3
    assert not set(train) & set(held)
    assert train + held == every
    assert ex.explanation_phrasings(reason, meta, "canonical") == every[:1]


def test_per_reason_splits_are_disjoint():
    for reason in Reason:
        train = set(ex.all_explanation_templates(reason, "train"))
        held = set(ex.all_explanation_templates(reason, "heldout"))
        assert train and held and not train & held


@pytest.mark.parametrize(("reason", "meta"), LISTS, ids=LIST_IDS)
def test_rendering_is_deterministic_and_varies(reason, meta):
    for split in ("train", "heldout", "all"):
        a = [
            ex.render_explanation(reason, meta, np.random.default_rng(s), split, FULL_SLOTS)
            for s in range(30)
        ]
        b = [
            ex.render_explanation(reason, meta, np.random.default_rng(s), split, FULL_SLOTS)
            for s in range(30)
        ]
        assert a == b
        assert len(set(a)) >= 2, (reason, meta, split)


@pytest.mark.parametrize(("reason", "meta"), LISTS, ids=LIST_IDS)
def test_slots_are_always_filled(reason, meta):
    names = list(FULL_SLOTS)
    for r in range(len(names) + 1):
        for subset in itertools.combinations(names, r):
            slots = {n: FULL_SLOTS[n] for n in subset}
            for seed in range(4):
                for split in ("train", "heldout", "all", "canonical"):
                    text = ex.render_explanation(
                        reason, meta, np.random.default_rng(seed), split, slots
                    )
                    assert text.strip() and "{" not in text and "}" not in text, text


@pytest.mark.parametrize(("reason", "meta"), LISTS, ids=LIST_IDS)
def test_heldout_phrasings_never_come_out_of_train(reason, meta):
    values = format_slots(FULL_SLOTS, ex.EXPLANATION_SLOTS)
    if meta in (MetaAction.CHANGE_RIGHT, MetaAction.TURN_RIGHT):
        values["direction"] = "right"
    train = {t.format(**values) for t in ex.explanation_phrasings(reason, meta, "train")}
    held = {t.format(**values) for t in ex.explanation_phrasings(reason, meta, "heldout")}
    assert not train & held
    rng = np.random.default_rng(7)
    slots = dict(FULL_SLOTS, direction=values["direction"])
    seen = {ex.render_explanation(reason, meta, rng, "train", slots) for _ in range(500)}
    assert seen <= train and not seen & held
    seen = {ex.render_explanation(reason, meta, rng, "heldout", slots) for _ in range(100)}
    assert seen <= held


def test_direction_follows_the_meta_action():
    rng = np.random.default_rng(3)
    for meta, wrong in ((MetaAction.TURN_LEFT, "right"), (MetaAction.TURN_RIGHT, "left")):
        texts = {
            ex.render_explanation(Reason.INSTRUCTED_TURN, meta, rng, "all") for _ in range(200)
        }
        assert texts and not any(wrong in t for t in texts)
    texts = {
        ex.render_explanation(
            Reason.INSTRUCTED_LANE_CHANGE, None, rng, "all", {"direction": "right"}
        )
        for _ in range(200)
    }
    assert any("right" in t for t in texts) and not any("left" in t for t in texts)


def test_unsafe_category_names_what_was_refused():
    rng = np.random.default_rng(0)
    for category in UNSAFE_CATEGORIES:
        texts = {
            ex.render_explanation(
                Reason.REFUSED_UNSAFE_INSTRUCTION,
                None,
                rng,
                "all",
                {"unsafe_category": category},
            )
            for _ in range(100)
        }
        assert any(ex.UNSAFE_ACTION_PHRASES[category] in t for t in texts)
        assert all(
            ex.reason_from_explanation(t) is Reason.REFUSED_UNSAFE_INSTRUCTION for t in texts
        )
    with pytest.raises(ValueError, match="run_red_light"):
        ex.render_explanation(
            Reason.REFUSED_UNSAFE_INSTRUCTION, None, rng, "all", {"unsafe_category": "be_rude"}
        )


@pytest.mark.parametrize("reason", list(Reason), ids=[r.value for r in Reason])
def test_reason_is_recovered_from_every_phrasing(reason):
    for template in _all_templates(reason):
        for index in range(6):  # several slot values per template
            text = _filled(reason, template, index)
            for variant in _perturbed(text):
                got = ex.reason_from_explanation(variant)
                assert got is reason, f"{variant!r} -> {got}"


def test_reason_is_recovered_from_rendered_explanations():
    rng = np.random.default_rng(11)
    for reason, meta in LISTS:
        for split in ("train", "heldout"):
            for _ in range(20):
                slots = dict(FULL_SLOTS)
                if reason is Reason.SLOW_LEADER:
                    slots["object"] = "white van"
                text = ex.render_explanation(reason, meta, rng, split, slots)
                assert ex.reason_from_explanation(text) is reason, text


def test_explanation_corpus_round_trips():
    for split in ("train", "heldout"):
        corpus = ex.explanation_corpus(split)
        assert corpus and all("{" not in t for t in corpus)
    every = ex.explanation_corpus("all")
    assert len(every) == sum(
        len(t) for lists in ex.EXPLANATION_TEMPLATES.values() for t in lists.values()
    )
    assert all(ex.reason_from_explanation(t) is not None for t in every)


def test_unrelated_or_causeless_text_names_no_reason():
    for text in (
        "The weather is nice.",
        "",
        "   ",
        "Slowing down.",
        "slowing down",
        "Stopping.",
        "Braking now!",
        "Speeding up.",
        "As instructed.",
        "I like this song.",
        "Hmm, let me think.",
    ):
        assert ex.reason_from_explanation(text) is None, text
    with pytest.raises(TypeError):
        ex.reason_from_explanation(None)


def test_shared_verbs_do_not_decide_the_reason():
    """The same verb with different causes gives different reasons."""
    cases = {
        "Slowing down: the light ahead is red.": Reason.RED_LIGHT,
        "Slowing down: a pedestrian is crossing.": Reason.PEDESTRIAN_CROSSING,
        "Slowing down: the car ahead is braking.": Reason.SLOW_LEADER,
        "Slowing down to give way at the junction.": Reason.YIELD_JUNCTION,
        "Slowing down to give way on the roundabout.": Reason.YIELD_ROUNDABOUT,
        "Slowing down for the bend.": Reason.CURVE,
        "Slowing down: the limit here is 30 km/h.": Reason.SPEED_LIMIT,
        "Slowing down to 30 km/h as you asked.": Reason.INSTRUCTED_SPEED,
        "Slowing down to take the exit.": Reason.INSTRUCTED_EXIT,
        "Slowing down to turn left at the junction.": Reason.INSTRUCTED_TURN,
        "Stopping: someone is on the crossing.": Reason.PEDESTRIAN_CROSSING,
        "Stopping at the red light.": Reason.RED_LIGHT,
        "Waiting at the lights until they go green.": Reason.RED_LIGHT,
        "Turning left at the lights as instructed.": Reason.INSTRUCTED_TURN,
        "I won't run the red light, it's unsafe.": Reason.REFUSED_UNSAFE_INSTRUCTION,
        "Not going to hit the pedestrian.": Reason.REFUSED_UNSAFE_INSTRUCTION,
    }
    for text, reason in cases.items():
        assert ex.reason_from_explanation(text) is reason, text


def test_red_light_and_pedestrian_are_never_confused():
    for a, b in (
        (Reason.RED_LIGHT, Reason.PEDESTRIAN_CROSSING),
        (Reason.PEDESTRIAN_CROSSING, Reason.RED_LIGHT),
    ):
        for template in _all_templates(a):
            for index in range(4):
                for variant in _perturbed(_filled(a, template, index)):
                    assert ex.reason_from_explanation(variant) is not b, variant


def test_unknown_names_list_the_valid_ones():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="red_light") as err:
        ex.render_explanation("boredom", None, rng)
    assert "slow_leader" in str(err.value)
    with pytest.raises(ValueError, match="decelerate"):
        ex.render_explanation(Reason.RED_LIGHT, "moonwalk", rng)
    with pytest.raises(ValueError, match="heldout") as err:
        ex.render_explanation(Reason.RED_LIGHT, MetaAction.STOP, rng, "test")
    assert "canonical" in str(err.value)
    with pytest.raises(ValueError, match="object"):
        ex.render_explanation(Reason.SLOW_LEADER, None, rng, slots={"thing": "car"})
    # reasons and meta-actions also work as plain strings
    text = ex.render_explanation("red_light", "stop", rng)
    assert text in ex.explanation_phrasings(Reason.RED_LIGHT, MetaAction.STOP, "train")


def test_meta_action_without_own_list_uses_the_general_one():
    rng = np.random.default_rng(0)
    general = ex.explanation_phrasings(Reason.INSTRUCTED_MERGE, None, "train")
    assert ex.explanation_phrasings(Reason.INSTRUCTED_MERGE, MetaAction.STOP, "train") == general
    text = ex.render_explanation(Reason.INSTRUCTED_MERGE, MetaAction.STOP, rng, "canonical")
    assert text == ex.EXPLANATION_TEMPLATES[Reason.INSTRUCTED_MERGE][None][0]
