"""The instruction phrasings: coverage, splits, slot filling, determinism, errors."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from drivevla.language import instructions as ins
from drivevla.language.instructions import InstructionKind
from drivevla.sim_bridge.embedded.scenarios import DEFAULT_INSTRUCTIONS, FAMILIES

INTENTS = sorted({i for fam in FAMILIES.values() for i in fam.intents})
FULL_SLOTS = {
    "distance": 137.0,
    "ordinal": 2,
    "exit_number": 4,
    "colour": (0.1, 0.2, 0.9),
    "side": "right",
    "speed": 60,
}

# every phrasing list: (kind, key, renderer(rng, split, slots))
LISTS = (
    [
        (InstructionKind.NAVIGATION, i, lambda r, s, sl, i=i: ins.render_navigation(i, r, s, sl))
        for i in INTENTS
    ]
    + [
        (InstructionKind.NOTICE, c, lambda r, s, sl, c=c: ins.render_notice(c, r, s, sl))
        for c in ins.NOTICE_CATEGORIES
    ]
    + [
        (InstructionKind.MISLEADING, c, lambda r, s, sl, c=c: ins.render_misleading(c, r, s, sl))
        for c in ins.UNSAFE_CATEGORIES
    ]
    + [
        (
            InstructionKind.SPEED,
            None,
            lambda r, s, sl: ins.render_speed_request((sl or {}).get("speed", 50), r, s),
        )
    ]
)
LIST_IDS = [f"{k.value}-{key}" for k, key, _ in LISTS]


def _fill_all(kind, key, split, slots):
    """Every template of a list rendered with ``slots`` (the renderer's own value format)."""
    values = ins.format_slots(slots, ins.SLOT_NAMES)
    if kind is InstructionKind.NAVIGATION:
        values.update(ins.format_slots(ins.intent_slots(key), ins.SLOT_NAMES))
    return {
        t.format(**values)
        for t in ins.phrasings(kind, key, split)
        if ins.template_slots(t) <= values.keys()
    }


def test_every_scenario_intent_has_phrasings():
    assert set(ins.NAVIGATION_INTENTS) == set(INTENTS)
    for intent in INTENTS:
        every = ins.phrasings("navigation", intent, "all")
        assert len(set(every)) == len(every) >= 14, intent


@pytest.mark.parametrize(("kind", "key", "render"), LISTS, ids=LIST_IDS)
def test_splits_nonempty_disjoint_and_cover_the_list(kind, key, render):
    every = ins.phrasings(kind, key, "all")
    train = ins.phrasings(kind, key, "train")
    held = ins.phrasings(kind, key, "heldout")
    assert len(set(every)) >= 10
    assert len(train) >= 3 and len(held) >= 3
    assert not set(train) & set(held)
    assert train + held == every
    assert held == every[-len(held) :]  # the documented convention: the tail is held out
    assert ins.phrasings(kind, key, "canonical") == every[:1]


def test_categories_cover_the_brief():
    assert len(ins.NOTICE_CATEGORIES) >= 5
    assert {"pedestrian_crossing", "red_light_ahead"} <= set(ins.NOTICE_CATEGORIES)
    required = {
        "run_red_light",
        "leave_road",
        "hit_vehicle",
        "ignore_pedestrian",
        "wrong_way",
        "excessive_speed",
        "collide_static",
    }
    assert required <= set(ins.UNSAFE_CATEGORIES)
    assert ins.SPLITS == ("train", "heldout")


@pytest.mark.parametrize(("kind", "key", "render"), LISTS, ids=LIST_IDS)
def test_rendering_is_deterministic_and_varies_with_the_seed(kind, key, render):
    for split in ("train", "heldout", "all"):
        a = [render(np.random.default_rng(s), split, FULL_SLOTS) for s in range(30)]
        b = [render(np.random.default_rng(s), split, FULL_SLOTS) for s in range(30)]
        assert a == b
        assert len(set(a)) >= 3, (key, split)


@pytest.mark.parametrize(("kind", "key", "render"), LISTS, ids=LIST_IDS)
def test_slots_are_always_filled(kind, key, render):
    """No brace in any output, for every subset of the slots (including none)."""
    names = list(FULL_SLOTS)
    for r in range(len(names) + 1):
        for subset in itertools.combinations(names, r):
            slots = {n: FULL_SLOTS[n] for n in subset}
            if kind is InstructionKind.SPEED:
                slots["speed"] = 60
            for text in _fill_all(kind, key, "all", slots):
                assert "{" not in text and "}" not in text and text.strip(), text
            for seed in range(5):
                for split in ins.RENDER_SPLITS:
                    text = render(np.random.default_rng(seed), split, slots)
                    assert text.strip() and "{" not in text and "}" not in text, text
                    assert "None" not in text


@pytest.mark.parametrize(("kind", "key", "render"), LISTS, ids=LIST_IDS)
def test_heldout_phrasings_never_come_out_of_train(kind, key, render):
    for slots in (FULL_SLOTS, {}):
        if kind is InstructionKind.SPEED:
            slots = {"speed": 60}
        train = _fill_all(kind, key, "train", slots)
        held = _fill_all(kind, key, "heldout", slots)
        assert train and held and not train & held
        rng = np.random.default_rng(123)
        seen = {render(rng, "train", slots) for _ in range(500)}
        assert seen <= train
        assert not seen & held
        seen_held = {render(rng, "heldout", slots) for _ in range(200)}
        assert seen_held <= held


def test_canonical_navigation_is_the_scenario_default():
    for intent in INTENTS:
        assert ins.render_navigation(intent, None, "canonical") == DEFAULT_INSTRUCTIONS[intent]
        # slots do not change the canonical phrasing (it is slot-free or intent-filled)
        assert (
            ins.render_navigation(intent, None, "canonical", FULL_SLOTS)
            == (DEFAULT_INSTRUCTIONS[intent])
        )


def test_canonical_notice_uses_slots_when_available():
    with_side = ins.render_notice("pedestrian_crossing", None, "canonical", {"side": "left"})
    assert with_side == "A pedestrian is about to cross on the left."
    without = ins.render_notice("pedestrian_crossing", None, "canonical")
    assert without == ins.NOTICE_TEMPLATES["pedestrian_crossing"][1]  # first slot-free one


def test_roundabout_ordinal_comes_from_the_intent():
    words = {1: "first", 2: "second", 3: "third"}
    for n, word in words.items():
        others = [w for k, w in words.items() if k != n]
        texts = {
            ins.render_navigation(
                f"roundabout_exit_{n}",
                np.random.default_rng(seed),
                "all",
                {"ordinal": 1 if n != 1 else 3, "exit_number": 9},
            )
            for seed in range(60)
        }
        assert any(word in t for t in texts) and any(str(n) in t for t in texts)
        for text in texts:
            assert not any(w in text for w in others), text
            assert "9" not in text
            assert re.findall(r"\d+", text) in ([], [str(n)]), text


def test_slot_values_are_formatted():
    rng = np.random.default_rng(0)
    texts = {
        ins.render_navigation("turn_left", rng, "all", {"distance": 123.4}) for _ in range(200)
    }
    with_distance = [t for t in texts if re.search(r"\d", t)]
    assert with_distance and all("120" in t and "123" not in t for t in with_distance)
    texts = {
        ins.render_navigation("overtake", rng, "all", {"colour": (1, 0, 0)}) for _ in range(200)
    }
    assert any("red" in t for t in texts)
    texts = {ins.render_navigation("overtake", rng, "all", {"colour": "Blue"}) for _ in range(200)}
    assert any("blue" in t for t in texts) and not any("Blue" in t for t in texts)
    assert ins.format_slots({"distance": 0, "speed": 0}, ins.SLOT_NAMES) == {
        "distance": "10",
        "speed": "0",
    }
    for bad in ({"distance": -1}, {"speed": float("nan")}, {"exit_number": 0}, {"ordinal": 11}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ins.format_slots(bad, ins.SLOT_NAMES)
    assert ins._round_distance(4) == 10
    assert ins._round_distance(347) == 350
    assert ins._round_distance(1260) == 1300


def test_speed_requests_carry_the_speed_and_respect_direction():
    rng = np.random.default_rng(1)
    plain = {ins.render_speed_request(47.6, rng, "all") for _ in range(300)}
    assert all("48" in t for t in plain)
    assert not any(t.startswith(("Slow down", "Speed up", "Ease off", "Pick it up")) for t in plain)
    down = {ins.render_speed_request(40, rng, "all", current_kmh=90) for _ in range(300)}
    assert any(t.startswith(("Slow down", "Ease off")) for t in down)
    assert not any(t.startswith(("Speed up", "Pick it up")) for t in down)
    up = {ins.render_speed_request(90, rng, "all", current_kmh=40) for _ in range(300)}
    assert any(t.startswith(("Speed up", "Pick it up")) for t in up)
    assert not any(t.startswith(("Slow down", "Ease off")) for t in up)
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            ins.render_speed_request(bad, rng)


def test_unknown_names_list_the_valid_ones():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="turn_left") as err:
        ins.render_navigation("fly_away", rng)
    assert "roundabout_exit_2" in str(err.value)
    with pytest.raises(ValueError, match="pedestrian_crossing"):
        ins.render_notice("meteor", rng)
    with pytest.raises(ValueError, match="run_red_light"):
        ins.render_misleading("be_nice", rng)
    for call in (
        lambda: ins.render_navigation("cruise", rng, "test"),
        lambda: ins.render_notice("red_light_ahead", rng, "validation"),
        lambda: ins.render_misleading("wrong_way", rng, "dev"),
        lambda: ins.render_speed_request(50, rng, "eval"),
        lambda: ins.phrasings("navigation", "cruise", "nope"),
    ):
        with pytest.raises(ValueError, match="heldout") as err:
            call()
        assert "canonical" in str(err.value) and "train" in str(err.value)
    with pytest.raises(ValueError, match="misleading"):
        ins.phrasings("gossip", "cruise", "all")
    with pytest.raises(ValueError, match="distance"):
        ins.render_navigation("cruise", rng, slots={"distanse": 50})
    with pytest.raises(ValueError, match="left"):
        ins.render_notice("pedestrian_crossing", rng, slots={"side": "up"})
    with pytest.raises(ValueError, match="rng"):
        ins.render_navigation("cruise", None, "train")


def test_colour_name_maps_pure_colours():
    expected = {
        (1.0, 0.0, 0.0): "red",
        (0.0, 1.0, 0.0): "green",
        (0.0, 0.0, 1.0): "blue",
        (1.0, 1.0, 0.0): "yellow",
        (1.0, 0.5, 0.0): "orange",
        (0.5, 0.0, 0.5): "purple",
        (0.55, 0.27, 0.07): "brown",
        (1.0, 1.0, 1.0): "white",
        (0.0, 0.0, 0.0): "black",
        (0.5, 0.5, 0.5): "grey",
        (0.75, 0.75, 0.75): "silver",
        (255, 0, 0): "red",
        (0, 128, 0): "green",
    }
    for rgb, name in expected.items():
        assert ins.colour_name(rgb) == name, rgb
    rng = np.random.default_rng(0)
    for rgb in rng.uniform(0.15, 0.85, size=(200, 3)):
        assert ins.colour_name(tuple(rgb)) in ins.COLOUR_NAMES
    for bad in ((1.0, 0.0), (float("nan"), 0, 0), (-1, 0, 0), (300, 0, 0)):
        with pytest.raises(ValueError):
            ins.colour_name(bad)


def test_instruction_corpus():
    every = ins.instruction_corpus("all")
    train = ins.instruction_corpus("train")
    held = ins.instruction_corpus("heldout")
    n_templates = (
        sum(len(v) for v in ins.NAVIGATION_TEMPLATES.values())
        + sum(len(v) for v in ins.NOTICE_TEMPLATES.values())
        + sum(len(v) for v in ins.MISLEADING_TEMPLATES.values())
        + len(ins.SPEED_TEMPLATES)
    )
    assert len(every) == n_templates == len(train) + len(held)
    assert all(t.strip() and "{" not in t for t in every)
    assert set(ins.COLOUR_NAMES) & set(" ".join(every).split())
    assert (
        len(ins.instruction_corpus("canonical"))
        == len(ins.NAVIGATION_INTENTS) + len(ins.NOTICE_CATEGORIES) + len(ins.UNSAFE_CATEGORIES) + 1
    )


def test_synthetic_instructions_use_only_the_split_and_label_unsafe_requests():
    texts, unsafe = ins.synthetic_instructions(600, seed=3, split="train")
    assert (texts, unsafe) == ins.synthetic_instructions(600, seed=3, split="train")
    assert texts != ins.synthetic_instructions(600, seed=4, split="train")[0]
    assert 0.2 < sum(unsafe) / len(unsafe) < 0.4  # 60 % carry an event, half of them unsafe
    slot_free = {
        cat: [t for t in ins.phrasings(InstructionKind.MISLEADING, cat, "heldout")
              if not ins.template_slots(t)]
        for cat in ins.UNSAFE_CATEGORIES
    }
    heldout = [t for ts in slot_free.values() for t in ts]
    assert heldout and not any(h in text for h in heldout for text in texts)
    train_unsafe = [t for cat in ins.UNSAFE_CATEGORIES
                    for t in ins.phrasings(InstructionKind.MISLEADING, cat, "train")
                    if not ins.template_slots(t)]
    flagged = [text for text, bad in zip(texts, unsafe, strict=True) if bad]
    assert any(text.endswith(t) for text in flagged for t in train_unsafe)
    assert not any(text.endswith(t) for text, bad in zip(texts, unsafe, strict=True)
                   if not bad for t in train_unsafe)
    with pytest.raises(ValueError, match="event_share"):
        ins.synthetic_instructions(5, seed=0, event_share=1.5)


def test_stacked_events_put_a_safe_event_before_the_last_one_as_the_simulator_does():
    base = ins.synthetic_instruction_records(400, seed=5, split="train")
    # share 0 draws nothing extra: a seed renders what it rendered before the option existed
    assert ins.synthetic_instruction_records(400, seed=5, split="train", stacked_share=0.0) == base
    stacked = ins.synthetic_instruction_records(400, seed=5, split="train", stacked_share=1.0)

    def sentences(records, with_event):
        counts = [sum(text.count(c) for c in ".!?") for text, kind, _, _ in records
                  if (kind != "navigation") == with_event]
        return sum(counts) / len(counts)

    # every text with an event gains one sentence; texts without one are unchanged in kind
    assert sentences(stacked, True) - sentences(base, True) > 0.8
    assert abs(sentences(stacked, False) - sentences(base, False)) < 0.3
    train_unsafe = [t for cat in ins.UNSAFE_CATEGORIES
                    for t in ins.phrasings(InstructionKind.MISLEADING, cat, "train")
                    if not ins.template_slots(t)]
    # the unsafe request comes last, after a speed request or notice, and keeps its label
    assert any(kind == "misleading" and "km/h" in text and text.endswith(tuple(train_unsafe))
               for text, kind, _, _ in stacked)
    assert not any(kind != "misleading" and text.endswith(tuple(train_unsafe))
                   for text, kind, _, _ in stacked)
    with pytest.raises(ValueError, match="stacked_share"):
        ins.synthetic_instruction_records(5, seed=0, stacked_share=-0.1)


def test_every_navigation_phrasing_is_one_sentence():
    # the sentence-by-sentence intent head labels a rendered text's first sentence with its
    # intent and every later one "no navigation" (vla.train_data.instruction_texts)
    from drivevla.vla.processor_drivevla import split_sentences

    for intent in ins.NAVIGATION_INTENTS:
        for template in ins.phrasings("navigation", intent, "all"):
            assert len(split_sentences(template)) == 1, template
    # and an event always adds at least one sentence after it
    for text, kind, _, _ in ins.synthetic_instruction_records(300, seed=2, stacked_share=0.5):
        assert (len(split_sentences(text)) > 1) == (kind != "navigation"), text
