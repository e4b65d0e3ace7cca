"""Phrasing sets: instruction wordings that replace the language module's split for an
evaluation.

A set names, per instruction kind, the phrasings to render instead of the split's:

.. code-block:: json

    {"navigation": {"turn_left": ["Hang a louie at the lights.", ...], ...},
     "misleading": {"run_red_light": ["Skip the red light.", ...], ...},
     "notice": {"cross_traffic": [...]},
     "speed": ["Hold {speed} km/h."]}

Kinds and keys it leaves out keep the split's phrasings. Templates use the language module's
slots (:data:`drivevla.language.instructions.SLOT_NAMES`); a renderer picks among those whose
slots the scene provides, so every list needs a slot-free phrasing (speed phrasings: exactly
the ``{speed}`` slot; roundabout exits may use ``{ordinal}`` and ``{exit_number}``, which the
intent fixes). Sources: ``"locked"`` (:mod:`drivevla.language.locked_phrasings`, kept out of
every design decision), a JSON file of wordings from outside the repository, or a mapping.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.language.instructions import (
    NOTICE_CATEGORIES,
    SLOT_NAMES,
    UNSAFE_CATEGORIES,
    format_slots,
    intent_slots,
    pick_template,
    template_slots,
)
from drivevla.language.intents import NAVIGATION_INTENTS
from drivevla.language.locked_phrasings import LOCKED_PHRASINGS

LOCKED = "locked"
KEYS_OF_KIND: dict[str, tuple[str, ...]] = {
    "navigation": NAVIGATION_INTENTS,
    "notice": NOTICE_CATEGORIES,
    "misleading": UNSAFE_CATEGORIES,
}
PhrasingSet = dict[str, Any]  # kind -> {key: [templates]}; "speed" -> [templates]


def load_phrasing_set(source: str | Path | Mapping[str, Any]) -> PhrasingSet:
    """The checked set of ``source``: ``"locked"``, a JSON file path or a mapping. Errors
    (``ValueError``) name the file, kind, key or phrasing at fault."""
    if isinstance(source, Mapping):
        return check_phrasing_set(source)
    if str(source) == LOCKED:
        return check_phrasing_set(LOCKED_PHRASINGS)
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"phrasing set {str(path)!r}: no such file (or use 'locked')") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"phrasing set {str(path)!r} is not readable JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"phrasing set {str(path)!r}: expected a JSON object of kinds")
    try:
        return check_phrasing_set(data)
    except ValueError as exc:
        raise ValueError(f"phrasing set {str(path)!r}: {exc}") from None


def check_phrasing_set(data: Mapping[str, Any]) -> PhrasingSet:
    """``data`` as a plain dict after checking kinds, keys and every template."""
    kinds = (*KEYS_OF_KIND, "speed")
    unknown = set(data) - set(kinds)
    if unknown:
        raise ValueError(f"unknown instruction kind(s) {sorted(unknown)}; valid: {list(kinds)}")
    if not data:
        raise ValueError("the phrasing set is empty; name at least one kind")
    out: PhrasingSet = {}
    for kind, table in data.items():
        if kind == "speed":
            out[kind] = _check_list(table, "speed", ("speed",), frozenset({"speed"}), exact=True)
            continue
        if not isinstance(table, Mapping) or not table:
            raise ValueError(f"{kind}: expected a non-empty object of {kind} keys to phrasings")
        bad = set(table) - set(KEYS_OF_KIND[kind])
        if bad:
            raise ValueError(f"unknown {kind} key(s) {sorted(bad)}; valid: "
                             f"{list(KEYS_OF_KIND[kind])}")
        out[kind] = {
            key: _check_list(templates, f"{kind}[{key}]", SLOT_NAMES,
                             frozenset(intent_slots(key)) if kind == "navigation" else frozenset())
            for key, templates in table.items()
        }
    return out


def _check_list(templates: Any, where: str, allowed: tuple[str, ...], always: frozenset[str],
                exact: bool = False) -> list[str]:
    if not isinstance(templates, list) or not templates:
        raise ValueError(f"{where}: expected a non-empty list of phrasings")
    for t in templates:
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"{where}: every phrasing must be a non-empty string, got {t!r}")
        try:
            parts = list(string.Formatter().parse(t))
        except ValueError as exc:
            raise ValueError(f"{where}: {t!r} is not a valid template ({exc})") from None
        for _, name, spec, conv in parts:
            if name is not None and (name not in allowed or spec or conv):
                raise ValueError(f"{where}: slot {{{name}}} in {t!r}; slots allowed: "
                                 f"{list(allowed)}, without format specs")
        if exact and template_slots(t) != always:
            raise ValueError(f"{where}: {t!r} must use exactly the slots {sorted(always)}")
    if len(set(templates)) != len(templates):
        raise ValueError(f"{where}: duplicate phrasings")
    if not any(template_slots(t) <= always for t in templates):
        raise ValueError(f"{where}: needs a phrasing without slots (other than "
                         f"{sorted(always)}), for scenes that provide none")
    return list(templates)


def render_from_set(phrasings: PhrasingSet | None, kind: str, key: str,
                    rng: np.random.Generator, slots: Mapping[str, Any] | None = None
                    ) -> str | None:
    """A phrasing of ``phrasings[kind][key]`` filled with ``slots`` (for ``speed``, ``key`` is
    unused and ``slots["speed"]`` holds the km/h); None when the set leaves that list to the
    split."""
    if not phrasings or kind not in phrasings:
        return None
    templates = phrasings[kind] if kind == "speed" else phrasings[kind].get(key)
    if not templates:
        return None
    values = format_slots(slots, SLOT_NAMES)
    if kind == "navigation":
        values.update(format_slots(intent_slots(key), SLOT_NAMES))
    return pick_template(templates, rng, "all", values)


def phrasing_set_texts(phrasings: PhrasingSet) -> list[str]:
    """Every template of a set, in order (for checks that it appears nowhere else)."""
    out: list[str] = list(phrasings.get("speed", []))
    for kind in KEYS_OF_KIND:
        for templates in phrasings.get(kind, {}).values():
            out += [t for t in templates if t not in out]
    return out
