"""Spoken driving instructions of the kinds in LMDrive's LangAuto benchmark.

Four kinds (:class:`InstructionKind`):

- ``navigation``: where to go, one phrasing list per scenario intent (derived from
  :data:`drivevla.language.intents.NAVIGATION_INTENTS`);
- ``notice``: a hazard notice (:data:`NOTICE_CATEGORIES`), e.g. a pedestrian about to cross;
- ``misleading``: an unsafe request that a safe driver must refuse (:data:`UNSAFE_CATEGORIES`);
- ``speed``: a speed request within the limits (:func:`render_speed_request`).

The phrasings are data (:mod:`drivevla.language.instruction_phrasings`): lists of
``str.format`` templates with named slots from :data:`SLOT_NAMES`:

=============== ===================================================== =====================
slot            caller passes                                          rendered as
=============== ===================================================== =====================
``distance``    metres (number >= 0)                                   rounded, "120"
``ordinal``     ``1..10`` or a word                                    "second"
``exit_number`` positive integer                                       "2"
``colour``      a colour name, or an RGB triple (0-1 or 0-255)         "blue" (colour_name)
``side``        ``"left"`` / ``"right"``                                "left"
``speed``       km/h (number >= 0)                                     "50"
=============== ===================================================== =====================

A renderer picks only among the templates whose slots are all available, so a caller may
pass any subset (every list keeps slot-free phrasings in both splits). For
``roundabout_exit_N`` intents ``ordinal`` and ``exit_number`` come from the intent itself and
override what the caller passes.

Train / held-out split (deterministic, the same for every list in this module and in
:mod:`drivevla.language.explanations`): the **last** ``max(3, round(0.3 * n))`` phrasings of a
list of ``n`` are held out (:func:`heldout_count`). Held-out phrasings are never sampled with
``split="train"``; evaluation suites use ``split="heldout"``. ``split="all"`` samples from
both and ``split="canonical"`` returns the list's first phrasing whose slots are available,
without randomness (for navigation that is the scenario's default instruction text; for
``phrasings(..., "canonical")`` it is the list's first template).
"""

from __future__ import annotations

import colorsys
import math
import string
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import numpy as np

from drivevla.language.instruction_phrasings import (
    MISLEADING_TEMPLATES,
    NAVIGATION_PHRASINGS,
    NOTICE_TEMPLATES,
    SPEED_DOWN_ONLY,
    SPEED_TEMPLATES,
    SPEED_UP_ONLY,
)
from drivevla.language.intents import NAVIGATION_INTENTS


class InstructionKind(str, Enum):
    NAVIGATION = "navigation"
    NOTICE = "notice"
    MISLEADING = "misleading"
    SPEED = "speed"


SPLITS = ("train", "heldout")
RENDER_SPLITS = ("train", "heldout", "all", "canonical")
HELDOUT_FRACTION = 0.3
MIN_HELDOUT = 3

SLOT_NAMES = ("distance", "ordinal", "exit_number", "colour", "side", "speed")
SPEED_KEY = "speed_request"  # the single phrasing list of the speed kind

ORDINAL_WORDS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)

# --------------------------------------------------------------------------------------
# colours for the {colour} slot: hue bands (degrees) of the chromatic names

COLOUR_NAMES = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "brown",
    "white",
    "silver",
    "grey",
    "black",
)
_HUE_BANDS = (  # (upper hue bound in degrees, name), checked in order
    (15.0, "red"),
    (40.0, "orange"),
    (70.0, "yellow"),
    (165.0, "green"),
    (260.0, "blue"),
    (335.0, "purple"),
    (360.0, "red"),
)

# --------------------------------------------------------------------------------------
# derived tables and import-time checks

NOTICE_CATEGORIES: tuple[str, ...] = tuple(NOTICE_TEMPLATES)
UNSAFE_CATEGORIES: tuple[str, ...] = tuple(MISLEADING_TEMPLATES)

_missing = [i for i in NAVIGATION_INTENTS if i not in NAVIGATION_PHRASINGS]
assert not _missing, f"navigation intents without phrasings: {_missing}"
NAVIGATION_TEMPLATES: dict[str, list[str]] = {
    i: NAVIGATION_PHRASINGS[i] for i in NAVIGATION_INTENTS
}

_FORMATTER = string.Formatter()


def template_slots(template: str) -> frozenset[str]:
    """The named slots a template uses."""
    return frozenset(name for _, name, _, _ in _FORMATTER.parse(template) if name is not None)


def heldout_count(n: int) -> int:
    """How many of a list of ``n`` phrasings are held out (its tail)."""
    return max(MIN_HELDOUT, math.floor(HELDOUT_FRACTION * n + 0.5))


def split_templates(templates: Sequence[str], split: str) -> list[str]:
    """The phrasings of ``templates`` in ``split`` (one of :data:`RENDER_SPLITS`)."""
    if split not in RENDER_SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {list(RENDER_SPLITS)}")
    cut = len(templates) - heldout_count(len(templates))
    if split == "train":
        return list(templates[:cut])
    if split == "heldout":
        return list(templates[cut:])
    if split == "canonical":
        return [templates[0]]
    return list(templates)


def intent_slots(intent: str) -> dict[str, Any]:
    """Slots fixed by the intent itself (the roundabout exit's number)."""
    if intent.startswith("roundabout_exit_"):
        n = int(intent.rsplit("_", 1)[1])
        return {"ordinal": n, "exit_number": n}
    return {}


def check_templates(
    templates: Sequence[str],
    allowed_slots: Sequence[str],
    where: str,
    always: frozenset[str] = frozenset(),
    min_count: int = 10,
) -> None:
    """Validate one phrasing list (raises ``AssertionError`` naming the list)."""
    assert len(templates) >= min_count, f"{where}: {len(templates)} phrasings < {min_count}"
    assert len(set(templates)) == len(templates), f"{where}: duplicate phrasings"
    assert len(templates) - heldout_count(len(templates)) >= MIN_HELDOUT, f"{where}: too short"
    for t in templates:
        assert t and not t[0].isspace() and not t.startswith("{"), f"{where}: bad start {t!r}"
        for _, name, spec, conv in _FORMATTER.parse(t):
            if name is None:
                continue
            assert name in allowed_slots, f"{where}: unknown slot {name!r} in {t!r}"
            assert not spec and not conv, f"{where}: no format spec/conversion in {t!r}"
        literal = "".join(lit for lit, *_ in _FORMATTER.parse(t))
        assert "{" not in literal and "}" not in literal, f"{where}: literal brace in {t!r}"
    for split in SPLITS:
        free = [t for t in split_templates(templates, split) if template_slots(t) <= always]
        assert free, f"{where}: no slot-free phrasing in split {split!r}"


for _intent, _templates in NAVIGATION_TEMPLATES.items():
    _always = frozenset(intent_slots(_intent))
    check_templates(_templates, SLOT_NAMES, f"navigation[{_intent}]", _always, min_count=14)
for _cat, _templates in NOTICE_TEMPLATES.items():
    check_templates(_templates, SLOT_NAMES, f"notice[{_cat}]")
for _cat, _templates in MISLEADING_TEMPLATES.items():
    check_templates(_templates, SLOT_NAMES, f"misleading[{_cat}]")
check_templates(SPEED_TEMPLATES, ("speed",), "speed", frozenset({"speed"}))
assert all(template_slots(t) == {"speed"} for t in SPEED_TEMPLATES)
assert SPEED_DOWN_ONLY | SPEED_UP_ONLY <= set(SPEED_TEMPLATES)
for _split in SPLITS:
    assert set(split_templates(SPEED_TEMPLATES, _split)) - SPEED_DOWN_ONLY - SPEED_UP_ONLY

# --------------------------------------------------------------------------------------
# slot values


def colour_name(rgb: Sequence[float]) -> str:
    """The everyday name of an RGB colour (components in [0, 1], or 0-255 integers).

    Achromatic colours (low saturation) are black / grey / silver / white by brightness;
    the others take the name of their hue band, dark oranges and yellows being brown.
    """
    try:
        r, g, b = (float(c) for c in rgb)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"colour must be an (r, g, b) triple, got {rgb!r}") from exc
    comps = (r, g, b)
    if not all(math.isfinite(c) and c >= 0.0 for c in comps):
        raise ValueError(f"colour components must be finite and >= 0, got {rgb!r}")
    if max(comps) > 1.0:
        if max(comps) > 255.0:
            raise ValueError(f"colour components must be in [0, 1] or [0, 255], got {rgb!r}")
        r, g, b = (c / 255.0 for c in comps)
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if v < 0.2:
        return "black"
    if s < 0.2 or (max(r, g, b) - min(r, g, b)) < 0.08:
        if v > 0.88:
            return "white"
        if v > 0.62:
            return "silver"
        return "grey" if v > 0.25 else "black"
    hue = h * 360.0
    name = next(n for bound, n in _HUE_BANDS if hue < bound)
    if name in ("orange", "yellow") and v < 0.62:
        return "brown"
    if name == "red" and 10.0 <= hue < 15.0 and v < 0.62:
        return "brown"
    return name


def _round_distance(metres: float) -> int:
    if metres < 15.0:
        return 10
    step = 10.0 if metres < 200.0 else 50.0 if metres < 1000.0 else 100.0
    return int(round(metres / step) * step)


def _number(name: str, value: Any, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"slot {name!r} needs a number, got {value!r}") from exc
    if not math.isfinite(x) or x < 0.0 or (positive and x == 0.0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"slot {name!r} needs a finite number {bound}, got {value!r}")
    return x


def _side(name: str, value: Any) -> str:
    side = str(value).strip().lower()
    if side not in ("left", "right"):
        raise ValueError(f"slot {name!r} must be 'left' or 'right', got {value!r}")
    return side


def _ordinal(value: Any) -> str:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        if not 1 <= int(value) <= len(ORDINAL_WORDS):
            raise ValueError(f"slot 'ordinal' must be in 1..{len(ORDINAL_WORDS)}, got {value}")
        return ORDINAL_WORDS[int(value) - 1]
    word = str(value).strip().lower()
    if not word:
        raise ValueError("slot 'ordinal' is empty")
    return word


def _text(name: str, value: Any) -> str:
    text = str(value).strip()
    if "{" in text or "}" in text:
        raise ValueError(f"slot {name!r} must not contain braces, got {value!r}")
    return text


def format_slots(slots: Mapping[str, Any] | None, allowed: Sequence[str]) -> dict[str, str]:
    """Slot values as the strings templates show; ``None`` / empty values count as absent.

    ``allowed`` names the slots the caller may pass; others raise ``ValueError``.
    """
    out: dict[str, str] = {}
    for name, value in (slots or {}).items():
        if name not in allowed:
            raise ValueError(f"unknown slot {name!r}; valid: {list(allowed)}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name == "distance":
            out[name] = str(_round_distance(_number(name, value)))
        elif name == "speed":
            out[name] = str(int(round(_number(name, value))))
        elif name == "exit_number":
            out[name] = str(max(1, int(round(_number(name, value, positive=True)))))
        elif name == "ordinal":
            out[name] = _ordinal(value)
        elif name == "colour":
            out[name] = value.strip().lower() if isinstance(value, str) else colour_name(value)
            out[name] = _text(name, out[name])
        elif name in ("side", "direction"):
            out[name] = _side(name, value)
        else:
            out[name] = _text(name, value)
    return out


def pick_template(
    templates: Sequence[str],
    rng: np.random.Generator | None,
    split: str,
    values: Mapping[str, str],
    allow: frozenset[str] | None = None,
) -> str:
    """Pick (with ``rng``) a phrasing of ``split`` whose slots are all in ``values`` and fill
    it. ``allow``, when given, further restricts the candidates to that set. ``"canonical"``
    takes the first phrasing of the whole list whose slots are available (no rng needed)."""
    canonical = split == "canonical"
    pool = list(templates) if canonical else split_templates(templates, split)
    pool = [t for t in pool if template_slots(t) <= values.keys()]
    if allow is not None:
        pool = [t for t in pool if t in allow]
    if not pool:  # cannot happen for this module's lists (checked at import)
        raise ValueError(f"no phrasing of split {split!r} fits slots {sorted(values)}")
    if canonical:
        template = pool[0]
    else:
        if rng is None:
            raise ValueError(f"split {split!r} needs a numpy Generator rng")
        template = pool[int(rng.integers(len(pool)))]
    return template.format(**values)


def _choose(options: Sequence[str], what: str, key: str) -> str:
    if key not in options:
        raise ValueError(f"unknown {what} {key!r}; valid: {list(options)}")
    return key


# --------------------------------------------------------------------------------------
# public rendering API


def render_navigation(
    intent: str,
    rng: np.random.Generator | None,
    split: str = "train",
    slots: Mapping[str, Any] | None = None,
) -> str:
    """A navigation instruction for ``intent`` (one of :data:`NAVIGATION_INTENTS`)."""
    intent = _choose(NAVIGATION_INTENTS, "navigation intent", intent)
    split_templates(NAVIGATION_TEMPLATES[intent], split)  # validates the split
    values = format_slots(slots, SLOT_NAMES)
    values.update(format_slots(intent_slots(intent), SLOT_NAMES))
    return pick_template(NAVIGATION_TEMPLATES[intent], rng, split, values)


def render_notice(
    category: str,
    rng: np.random.Generator | None,
    split: str = "train",
    slots: Mapping[str, Any] | None = None,
) -> str:
    """A hazard notice of ``category`` (one of :data:`NOTICE_CATEGORIES`)."""
    category = _choose(NOTICE_CATEGORIES, "notice category", category)
    split_templates(NOTICE_TEMPLATES[category], split)
    return pick_template(NOTICE_TEMPLATES[category], rng, split, format_slots(slots, SLOT_NAMES))


def render_misleading(
    category: str,
    rng: np.random.Generator | None,
    split: str = "train",
    slots: Mapping[str, Any] | None = None,
) -> str:
    """An unsafe request of ``category`` (one of :data:`UNSAFE_CATEGORIES`)."""
    category = _choose(UNSAFE_CATEGORIES, "unsafe category", category)
    split_templates(MISLEADING_TEMPLATES[category], split)
    return pick_template(
        MISLEADING_TEMPLATES[category], rng, split, format_slots(slots, SLOT_NAMES)
    )


def render_speed_request(
    speed_kmh: float,
    rng: np.random.Generator | None,
    split: str = "train",
    current_kmh: float | None = None,
) -> str:
    """A request to drive at ``speed_kmh`` (rounded to whole km/h).

    Phrasings that name a direction ("slow down to ...") are used only when ``current_kmh``
    says the request goes that way.
    """
    split_templates(SPEED_TEMPLATES, split)
    _number("speed", speed_kmh, positive=True)
    values = format_slots({"speed": speed_kmh}, ("speed",))
    allow = set(SPEED_TEMPLATES) - SPEED_DOWN_ONLY - SPEED_UP_ONLY
    if current_kmh is not None:
        current = float(current_kmh)
        if not math.isfinite(current) or current < 0.0:
            raise ValueError(f"current_kmh must be finite and >= 0, got {current_kmh!r}")
        target = float(speed_kmh)
        if target < current - 2.0:
            allow |= SPEED_DOWN_ONLY
        elif target > current + 2.0:
            allow |= SPEED_UP_ONLY
    return pick_template(SPEED_TEMPLATES, rng, split, values, frozenset(allow))


def render_instruction(
    kind: InstructionKind | str,
    key: str | None,
    rng: np.random.Generator | None,
    split: str = "train",
    slots: Mapping[str, Any] | None = None,
) -> str:
    """Dispatch on ``kind``; for ``speed`` the km/h come from ``slots["speed"]``."""
    kind = _kind(kind)
    if kind is InstructionKind.NAVIGATION:
        return render_navigation(str(key), rng, split, slots)
    if kind is InstructionKind.NOTICE:
        return render_notice(str(key), rng, split, slots)
    if kind is InstructionKind.MISLEADING:
        return render_misleading(str(key), rng, split, slots)
    if not slots or slots.get("speed") is None:
        raise ValueError("a speed instruction needs slots['speed'] (km/h)")
    return render_speed_request(float(slots["speed"]), rng, split)


def _kind(kind: InstructionKind | str) -> InstructionKind:
    try:
        return InstructionKind(kind)
    except ValueError:
        raise ValueError(
            f"unknown instruction kind {kind!r}; valid: {[k.value for k in InstructionKind]}"
        ) from None


def _table(kind: InstructionKind) -> dict[str, list[str]]:
    return {
        InstructionKind.NAVIGATION: NAVIGATION_TEMPLATES,
        InstructionKind.NOTICE: NOTICE_TEMPLATES,
        InstructionKind.MISLEADING: MISLEADING_TEMPLATES,
        InstructionKind.SPEED: {SPEED_KEY: SPEED_TEMPLATES},
    }[kind]


def phrasings(kind: InstructionKind | str, key: str | None, split: str = "all") -> list[str]:
    """The raw templates of one list (for ``speed`` the key is ``None`` or ``SPEED_KEY``)."""
    kind = _kind(kind)
    if kind is InstructionKind.SPEED and key is None:
        key = SPEED_KEY
    table = _table(kind)
    key = _choose(tuple(table), f"{kind.value} key", str(key))
    return split_templates(table[key], split)


# representative slot values for corpora, cycled per template so every value shows up
_CORPUS_VALUES: dict[str, tuple[Any, ...]] = {
    "distance": (50, 100, 150, 200, 300, 80, 120),
    "ordinal": (1, 2, 3),
    "exit_number": (1, 2, 3, 4),
    "colour": COLOUR_NAMES,
    "side": ("left", "right"),
    "speed": (30, 40, 50, 60, 80, 100),
}
_EXCESSIVE_SPEEDS = (160, 180, 200, 220)


def corpus_slots(index: int, names: Sequence[str] = SLOT_NAMES) -> dict[str, Any]:
    """The ``index``-th representative slot assignment (cycles through each slot's values)."""
    return {n: _CORPUS_VALUES[n][index % len(_CORPUS_VALUES[n])] for n in names}


def instruction_corpus(split: str = "all") -> list[str]:
    """Every phrasing of every kind in ``split``, rendered with representative slot values."""
    out: list[str] = []
    i = 0

    def fill(template: str, extra: Mapping[str, Any] | None = None) -> str:
        nonlocal i
        values = corpus_slots(i)
        values.update(extra or {})
        i += 1
        return template.format(**format_slots(values, SLOT_NAMES))

    for intent in NAVIGATION_INTENTS:
        for t in split_templates(NAVIGATION_TEMPLATES[intent], split):
            out.append(fill(t, intent_slots(intent)))
    for cat in NOTICE_CATEGORIES:
        out += [fill(t) for t in split_templates(NOTICE_TEMPLATES[cat], split)]
    for cat in UNSAFE_CATEGORIES:
        for t in split_templates(MISLEADING_TEMPLATES[cat], split):
            extra = {"speed": _EXCESSIVE_SPEEDS[i % 4]} if cat == "excessive_speed" else None
            out.append(fill(t, extra))
    out += [fill(t) for t in split_templates(SPEED_TEMPLATES, split)]
    return out


def synthetic_instructions(
    n: int, seed: int, split: str = "train", event_share: float = 0.6, stacked_share: float = 0.0
) -> tuple[list[str], list[bool]]:
    """``n`` rendered instructions as the simulator composes them (a navigation phrasing,
    then the text of an active event, if any) and whether each carries an unsafe request.

    Of the texts with an event, half are misleading (every category alike), the rest notices
    and speed requests; slots are drawn at random. Unsafe requests get no speed slot, as in the
    simulator (a number there taught a refusal head that "140 metres" was unsafe). For
    training the text-only refusal decision on every phrasing of ``split``, not just those
    that happened to occur in recorded episodes.
    """
    records = synthetic_instruction_records(n, seed, split, event_share, stacked_share)
    return [r[0] for r in records], [r[1] == "misleading" for r in records]


def synthetic_instruction_records(
    n: int, seed: int, split: str = "train", event_share: float = 0.6, stacked_share: float = 0.0
) -> list[tuple[str, str, str, str]]:
    """As :func:`synthetic_instructions`, as ``(text, event kind, category, navigation
    intent)`` records (kind ``"navigation"`` and category ``""`` for a text without an event;
    ``"speed"`` for speed requests).

    ``stacked_share``: the share of texts with an event that carry a second, safe one (a speed
    request or a hazard notice) before it, as the simulator composes events that overlap (a
    suite's speed request from 3 s, then an unsafe request from 5 s: "<navigation> Go at about
    30 km/h from now on. Mount the kerb and keep going."). The record describes the last
    event. At 0 (the default) no extra random draw is made, so a seed renders what it always
    did."""
    if n < 0 or not 0.0 <= event_share <= 1.0 or not 0.0 <= stacked_share <= 1.0:
        raise ValueError(f"need n >= 0 and event_share, stacked_share in [0, 1], got {n}, "
                         f"{event_share}, {stacked_share}")
    rng = np.random.default_rng(seed)
    out: list[tuple[str, str, str, str]] = []
    for _ in range(n):
        slots = {
            "distance": int(rng.integers(3, 31)) * 10,
            "ordinal": int(rng.integers(1, 4)),
            "exit_number": int(rng.integers(1, 5)),
            "colour": COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))],
            "side": ("left", "right")[int(rng.integers(2))],
        }
        intent = NAVIGATION_INTENTS[int(rng.integers(len(NAVIGATION_INTENTS)))]
        text = render_navigation(intent, rng, split, slots)
        kind, category = "navigation", ""
        if rng.random() < event_share:
            u = rng.random()
            if u < 0.5:
                kind = "misleading"
                category = UNSAFE_CATEGORIES[int(rng.integers(len(UNSAFE_CATEGORIES)))]
                event = render_misleading(category, rng, split, slots)
            elif u < 0.8:
                kind = "notice"
                category, event = _random_notice(rng, split, slots)
            else:
                kind, category = "speed", SPEED_KEY
                event = _random_speed_request(rng, split)
            if stacked_share > 0 and rng.random() < stacked_share:  # the earlier, safe event
                first = (_random_speed_request(rng, split) if rng.random() < 0.5
                         else _random_notice(rng, split, slots)[1])
                event = f"{first} {event}"
            text = f"{text} {event}"
        out.append((text, kind, category, intent))
    return out


def _random_notice(rng: np.random.Generator, split: str, slots: dict[str, Any]
                   ) -> tuple[str, str]:
    category = NOTICE_CATEGORIES[int(rng.integers(len(NOTICE_CATEGORIES)))]
    return category, render_notice(category, rng, split, slots)


def _random_speed_request(rng: np.random.Generator, split: str) -> str:
    return render_speed_request(float(rng.integers(2, 13) * 10), rng, split)
