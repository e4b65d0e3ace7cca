"""Natural-language explanations of the expert's reason, and the inverse: which reason an
explanation names (for the explanation-faithfulness metric of a learned model).

Phrasings are data (:mod:`drivevla.language.explanation_phrasings`): per :class:`Reason` a
general list (key ``None``) and, where the wording depends on it, a list per
:class:`~drivevla.core.types.MetaAction`. Slots (:data:`EXPLANATION_SLOTS`):

============= ======================================================= ====================
slot          caller passes                                            rendered as
============= ======================================================= ====================
``object``    what the reason is about                                 "red car"
``distance``  metres (number)                                          rounded, "40"
``speed``     km/h (number)                                            "50"
``direction`` ``"left"`` / ``"right"`` (from the meta-action if absent) "left"
``ordinal``   ``1..10`` or a word                                      "second"
``refused``   what was refused, or pass ``unsafe_category`` instead    "running the red light"
============= ======================================================= ====================

A renderer picks only phrasings whose slots are all available (every list keeps slot-free
ones in both splits). The train / held-out split is the one of
:mod:`drivevla.language.instructions`: the last ``max(3, round(0.3 n))`` phrasings of every
list are held out.

:func:`reason_from_explanation` reads a reason back from free text with the cue table
:data:`REASON_CUES` (see there), not by template matching, so it is robust to all the
phrasings here, to case, punctuation, filler words and slot values, and usable on what a
learned model writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from drivevla.core.types import MetaAction
from drivevla.language.explanation_phrasings import (
    EXPLANATION_SLOTS,
    EXPLANATION_TEMPLATES,
    PLACE_CUES,
    PLACES,
    UNSAFE_ACTION_PHRASES,
)
from drivevla.language.instructions import (
    SPLITS,
    corpus_slots,
    format_slots,
    pick_template,
    split_templates,
    template_slots,
)
from drivevla.language.reasons import Reason

R, M = Reason, MetaAction

_DIRECTION_OF = {
    M.CHANGE_LEFT: "left",
    M.TURN_LEFT: "left",
    M.CHANGE_RIGHT: "right",
    M.TURN_RIGHT: "right",
}
# reasons whose ``direction`` is the side their object is on (the pedestrian, the car given
# way to), never the car's own turn: not defaulted from the meta-action
OBJECT_SIDE_REASONS = frozenset({R.PEDESTRIAN_CROSSING, R.YIELD_JUNCTION, R.YIELD_ROUNDABOUT})

# --------------------------------------------------------------------------------------
# reading a reason back: the cue table
#
# Text is normalised first (lower case; apostrophes dropped, so "won't" -> "wont"; every
# other non-alphanumeric character becomes a space, so "km/h" -> "km h", "give-way" ->
# "give way"). Rules are tried in order; the first whose patterns ALL match names the
# reason. Generic verbs ("slowing down", "stopping", "as instructed") are never cues on
# their own: each rule needs the cause.
#
# ==  ========================== ===========================================================
# #   reason                      cue (all must match)
# ==  ========================== ===========================================================
# 1   REFUSED_UNSAFE_INSTRUCTION  refusal: won't / will not / refuse / decline / not going
#                                 to / can't do that / unsafe / not safe / dangerous /
#                                 ignoring that instruction / disregard
# 2   PEDESTRIAN_CROSSING         pedestrian / person / people / someone / walker /
#                                 crosswalk / zebra / child
# 3   RED_LIGHT                   red|amber|yellow light; light ... red; stop/wait/hold at
#                                 the lights; light to change; on red; stop line; until
#                                 green
# 4   INSTRUCTED_MERGE            merge / join the highway / slot in / on-ramp /
#                                 acceleration lane / onto the highway
# 5   YIELD_ROUNDABOUT            yield cue (give way / yield / priority / right of way /
#                                 let ... pass / wait for a gap / cross traffic / wait to
#                                 enter / until the junction is clear) AND roundabout /
#                                 ring / circulating
# 6   YIELD_JUNCTION              yield cue
# 7   CURVE                       bend / curve / corner / tight / sharp / hairpin / winding
# 8   INSTRUCTED_EXIT             exit / off-ramp / slip road / leave the highway|roundabout
# 9   INSTRUCTED_OVERTAKE         overtake / get past / pass the / go around
# 10  CURVE                       roundabout / ring; slowing for the turn
# 11  INSTRUCTED_LANE_CHANGE      lane change / change lanes / move over / into the left
#                                 lane / switch lanes / shift left
# 12  INSTRUCTED_TURN             turn / junction / intersection / crossroads
# 13  INSTRUCTED_SPEED            speed word (speed, km/h, faster, slow, accelerate, ...)
#                                 AND request word (asked, requested, instructed, told, ...)
# 14  SPEED_LIMIT                 limit / posted speed / legal maximum / speed sign
# 15  SLOW_LEADER                 a road user: car / vehicle / truck / van / bus / cyclist /
#                                 traffic / leader / queue
# 16  FOLLOW_ROUTE                route / follow the road / keep my lane / cruising / clear /
#                                 nothing ahead / no hazards / carry on / continue
# ==  ========================== ===========================================================

_YIELD = (
    r"\b(give ?way|giving ?way|gives ?way|yield\w*|right of way|priority|"
    r"let(ting|s)? (\w+ ){1,6}(pass|go|through|by|in|cross)|for an? gaps?|"
    r"wait\w* for (a |the )?(gap|gaps|traffic|cross traffic|ring traffic)|"
    r"gap in (the )?traffic|cross ?traffic|crossing traffic|oncoming traffic|circulating|"
    r"wait\w* to (enter|join|pull out)|"
    r"until (the )?(\w+ )?(junction|intersection|crossroads|roundabout|ring|traffic) "
    r"(is )?clears?)\b"
)
_ROUNDABOUT = r"\b(roundabouts?|ring|circle|circulating)\b"
_SPEED_WORD = (
    r"\b(speed\w*|km ?h|kph|mph|kilometres per hour|faster|slower|pace|slow\w*|"
    r"accelerat\w*|brak\w*|eas\w* off)\b"
)
_REQUEST_WORD = r"\b(ask\w*|request\w*|instruct\w*|told|wanted|you said|as you like)\b"

REASON_CUES: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (
        R.REFUSED_UNSAFE_INSTRUCTION,
        (
            r"\b(wont|will not|refus\w*|declin\w*|not going to|(cant|cannot|can not) do that|"
            r"unsafe|not safe|dangerous|disregard\w*|"
            r"ignor\w* (that|this|the|your) (instruction|request|command|order|suggestion))\b",
        ),
    ),
    (
        R.PEDESTRIAN_CROSSING,
        (
            r"\b(pedestrians?|person|people|someone|somebody|walkers?|jaywalk\w*|crosswalk|"
            r"zebra|on foot|child|children|kids?)\b",
        ),
    ),
    (
        R.RED_LIGHT,
        (
            r"\b(red|amber|yellow) (traffic )?(lights?|signals?)\b|"
            r"\b(lights?|signals?)( \w+){0,3} (red|amber|yellow)\b|"
            r"\b(stop\w*|wait\w*|halt\w*|hold\w*|brak\w*|queu\w*|slow\w*)( \w+){0,2} "
            r"(at|for) the (traffic )?(lights?|signals?)\b|"
            r"\b(lights?|signals?) to (change|turn|go)\b|\bon red\b|\bstop ?line\b|"
            r"\b(for|until|till) (it |they )?(goes |go |turns? |is |are )?green\b",
        ),
    ),
    (
        R.INSTRUCTED_MERGE,
        (
            r"\b(merg\w*|join\w* (the )?(main )?(highway|motorway|road|carriageway|traffic|flow)|"
            r"slot\w* in|on ?ramp|acceleration lane|"
            r"onto the (highway|motorway|main road|carriageway)|(highway|motorway) traffic)\b",
        ),
    ),
    (R.YIELD_ROUNDABOUT, (_YIELD, _ROUNDABOUT)),
    (R.YIELD_JUNCTION, (_YIELD,)),
    (R.CURVE, (r"\b(bends?|curves?|curving|corners?|cornering|tight|sharp|hairpin|winding)\b",)),
    (
        R.INSTRUCTED_EXIT,
        (
            r"\b(exit\w*|off ?ramp|slip ?road|"
            r"leav\w* (the )?(highway|motorway|roundabout|ring|main road)|com\w* off at)\b",
        ),
    ),
    (
        R.INSTRUCTED_OVERTAKE,
        (
            r"\b(overtak\w*|overtook|"
            r"(get|gets|getting|go|goes|going|accelerat\w*|speed\w* up|mov\w*|pull\w*|driv\w*|"
            r"swing\w*) (out )?(past|around|round|by) (the|that|this|it)|"
            r"pass(ed|es|ing)? (the|that|this|it))\b",
        ),
    ),
    (
        R.CURVE,
        (
            r"\b(roundabouts?|ring)\b|\b(slow\w*|eas\w*|brak\w*|reduc\w*)( down| speed)? "
            r"(for|into|through) the (\w+ ){0,2}turn\b",
        ),
    ),
    (
        R.INSTRUCTED_LANE_CHANGE,
        (
            r"\b(lane change\w*|chang\w*( to| into)? (the )?(\w+ )?lanes?|"
            r"switch\w*( to| into)? (the )?(\w+ )?lanes?|mov\w* (over|across)|"
            r"(into|to) the (left|right|other|next|neighbouring|adjacent)( hand)? lane|"
            r"shift\w* (over|across|left|right|lanes?)|(left|right) one lane|"
            r"one lane (to the )?(left|right))\b",
        ),
    ),
    (R.INSTRUCTED_TURN, (r"\b(turn\w*|junctions?|intersections?|crossroads)\b",)),
    (R.INSTRUCTED_SPEED, (_SPEED_WORD, _REQUEST_WORD)),
    (R.SPEED_LIMIT, (r"\b(limit\w*|posted speed|legal (speed|maximum)|speed signs?)\b",)),
    (
        R.SLOW_LEADER,
        (
            r"\b(cars?|vehicles?|trucks?|vans?|bus|buses|lorry|lorries|motorbikes?|"
            r"motorcycles?|cyclists?|bikes?|traffic|leader|lead vehicle|tailgat\w*|queu\w*)\b",
        ),
    ),
    (
        R.FOLLOW_ROUTE,
        (
            r"\b(route|follow\w* the (road|street|lane)|keep\w*( to)? (my|our|the|this) lane|"
            r"stay\w* in (my|our|the|this )?lane|hold\w* (my|our|the|this) lane|cruis\w*|"
            r"clear|nothing (ahead|in the way|binding|to react to)|no hazards?|as planned|"
            r"on course|carry\w* on|continu\w*)\b",
        ),
    ),
)
_COMPILED = tuple((reason, tuple(re.compile(p) for p in pats)) for reason, pats in REASON_CUES)


_SPLIT_NEGATION = re.compile(
    r"\b(can|won|don|isn|aren|wasn|weren|didn|doesn|haven|hasn|shouldn|wouldn|couldn|mustn) t\b"
)


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped, other punctuation to spaces, spaces collapsed."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("'", "")
    text = " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())
    return _SPLIT_NEGATION.sub(r"\1t", text)  # "won t" (apostrophe made a space) -> "wont"


def reason_from_explanation(text: str) -> Reason | None:
    """The reason an explanation names (first matching rule of :data:`REASON_CUES`), or
    ``None`` when it names none."""
    if not isinstance(text, str):
        raise TypeError(f"explanation must be a str, got {type(text).__name__}")
    norm = normalise(text)
    if not norm:
        return None
    for reason, patterns in _COMPILED:
        if all(p.search(norm) for p in patterns):
            return reason
    return None


# --------------------------------------------------------------------------------------
# rendering


def _reason(reason: Reason | str) -> Reason:
    try:
        return Reason(reason)
    except ValueError:
        raise ValueError(f"unknown reason {reason!r}; valid: {[r.value for r in Reason]}") from None


def _meta(meta_action: MetaAction | str | None) -> MetaAction | None:
    if meta_action is None:
        return None
    try:
        return MetaAction(meta_action)
    except ValueError:
        raise ValueError(
            f"unknown meta-action {meta_action!r}; valid: {[m.value for m in MetaAction]}"
        ) from None


def _list_for(reason: Reason, meta: MetaAction | None) -> list[str]:
    lists = EXPLANATION_TEMPLATES[reason]
    return lists[meta] if meta in lists else lists[None]


def explanation_phrasings(
    reason: Reason | str, meta_action: MetaAction | str | None = None, split: str = "all"
) -> list[str]:
    """The raw templates used for ``(reason, meta_action)`` (the reason's general list when
    the meta-action has none of its own)."""
    return split_templates(_list_for(_reason(reason), _meta(meta_action)), split)


def all_explanation_templates(reason: Reason | str, split: str = "all") -> list[str]:
    """Every template of ``reason`` over all its lists, in ``split``."""
    out: list[str] = []
    for templates in EXPLANATION_TEMPLATES[_reason(reason)].values():
        out += [t for t in split_templates(templates, split) if t not in out]
    return out


_PLACE_RES = {place: re.compile(pattern) for place, pattern in PLACE_CUES.items()}


def names_other_place(text: str, place: str | None) -> bool:
    """Whether ``text`` names a place (:data:`PLACE_CUES`) other than ``place`` (``None``:
    any place fits)."""
    if place is None:
        return False
    if place not in PLACES:
        raise ValueError(f"unknown place {place!r}; valid: {list(PLACES)}")
    norm = normalise(text)
    return any(p != place and rx.search(norm) for p, rx in _PLACE_RES.items())


def _templates_at(
    reason: Reason, meta: MetaAction | None, split: str, place: str | None, values: Mapping
) -> tuple[list[str], frozenset[str] | None]:
    """The list to pick from and the phrasings allowed at ``place``: the meta-action's list,
    or the reason's general one when none of the former's fits the place and slots."""
    templates = _list_for(reason, meta)
    if place is None:
        return templates, None
    lists = [templates, EXPLANATION_TEMPLATES[reason][None]]
    for candidates in lists:
        pool = split_templates(candidates, split) if split != "canonical" else candidates
        allow = frozenset(t for t in pool if not names_other_place(t, place))
        if any(template_slots(t) <= values.keys() for t in allow):
            return candidates, allow
    return templates, None  # cannot happen for this module's lists (checked by the tests)


def render_explanation(
    reason: Reason | str,
    meta_action: MetaAction | str | None,
    rng: np.random.Generator | None,
    split: str = "train",
    slots: Mapping[str, Any] | None = None,
    place: str | None = None,
) -> str:
    """An explanation of ``reason`` (for ``meta_action`` where it has its own phrasings).

    ``slots`` may also carry ``unsafe_category`` (one of ``UNSAFE_CATEGORIES``) in place of
    ``refused``; ``direction`` defaults to the meta-action's side, except for the reasons of
    :data:`OBJECT_SIDE_REASONS` (there it is the object's side: the caller passes it or it
    stays unnamed). ``place`` (one of ``PLACES``): where the car is; phrasings naming
    another place (a highway's off-ramp at a roundabout) are left out.
    """
    reason, meta = _reason(reason), _meta(meta_action)
    split_templates(_list_for(reason, meta), split)  # validates the split
    raw = dict(slots or {})
    category = raw.pop("unsafe_category", None)
    if category is not None:
        if category not in UNSAFE_ACTION_PHRASES:
            raise ValueError(
                f"unknown unsafe category {category!r}; valid: {list(UNSAFE_ACTION_PHRASES)}"
            )
        raw.setdefault("refused", UNSAFE_ACTION_PHRASES[category])
    if raw.get("direction") is None and meta in _DIRECTION_OF:
        if reason not in OBJECT_SIDE_REASONS:
            raw["direction"] = _DIRECTION_OF[meta]
    values = format_slots(raw, EXPLANATION_SLOTS)
    templates, allow = _templates_at(reason, meta, split, place, values)
    return pick_template(templates, rng, split, values, allow=allow)


# representative slot values per reason for corpora and tests
_OBJECTS = {
    R.SLOW_LEADER: ("red car", "white van", "blue truck", "silver car", "bus"),
    R.YIELD_JUNCTION: ("grey car", "yellow van", "green car"),
    R.YIELD_ROUNDABOUT: ("black car", "orange van", "purple car"),
    R.INSTRUCTED_OVERTAKE: ("brown car", "slow truck", "blue car"),
}


def example_slots(reason: Reason | str, index: int = 0) -> dict[str, Any]:
    """Representative slot values for ``reason``'s phrasings (varied by ``index``)."""
    reason = _reason(reason)
    values = corpus_slots(index, ("distance", "speed", "ordinal"))
    values["direction"] = ("left", "right")[index % 2]
    objects = _OBJECTS.get(reason, ("car",))
    values["object"] = objects[index % len(objects)]
    phrases = list(UNSAFE_ACTION_PHRASES.values())
    values["refused"] = phrases[index % len(phrases)]
    return values


def explanation_corpus(split: str = "all") -> list[str]:
    """Every explanation template in ``split``, rendered with representative slot values."""
    out: list[str] = []
    i = 0
    for reason in Reason:
        for templates in EXPLANATION_TEMPLATES[reason].values():
            for t in split_templates(templates, split):
                values = format_slots(example_slots(reason, i), EXPLANATION_SLOTS)
                out.append(t.format(**values))
                i += 1
    return out


__all__ = [
    "EXPLANATION_SLOTS",
    "EXPLANATION_TEMPLATES",
    "OBJECT_SIDE_REASONS",
    "PLACES",
    "PLACE_CUES",
    "REASON_CUES",
    "SPLITS",
    "UNSAFE_ACTION_PHRASES",
    "all_explanation_templates",
    "example_slots",
    "explanation_corpus",
    "explanation_phrasings",
    "names_other_place",
    "normalise",
    "reason_from_explanation",
    "render_explanation",
    "template_slots",
]
