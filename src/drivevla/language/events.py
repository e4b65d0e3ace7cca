"""Timed instruction events on top of a route's navigation instruction (LangAuto style).

- ``notice``: a hazard notice ("a pedestrian is about to cross on the right");
- ``misleading``: an unsafe instruction that a safe driver must refuse ("run the light");
- ``speed``: a speed request within the limits ("keep it at 50").

While an event is active its text is appended to the navigation instruction, so a policy
always sees the navigation goal and the latest remark together.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from drivevla.language import instructions as lang
from drivevla.language.phrasing_sets import PhrasingSet, render_from_set

EVENT_KINDS = ("notice", "misleading", "speed")
_KEYS = {"kind", "start_s", "duration_s", "category", "speed_kmh", "text"}


@dataclass(frozen=True)
class InstructionEvent:
    kind: str
    start_s: float
    duration_s: float
    category: str | None = None  # notice / misleading category
    speed_kmh: float | None = None  # speed requests
    text: str | None = None  # rendered at reset when None

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown instruction event kind {self.kind!r}; valid: {EVENT_KINDS}")
        for name in ("start_s", "duration_s", "speed_kmh"):
            value = getattr(self, name)
            if value is None and name == "speed_kmh":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                    value):
                raise ValueError(f"instruction event {name} must be a finite number, got {value!r}")
        for name in ("category", "text"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"instruction event {name} must be a string, got "
                                 f"{getattr(self, name)!r}")
        if self.start_s < 0 or self.duration_s <= 0:
            raise ValueError(
                f"instruction event needs start_s >= 0 and duration_s > 0, got "
                f"{self.start_s}, {self.duration_s}"
            )
        if self.kind == "speed" and (self.speed_kmh is None or not 5 <= self.speed_kmh <= 200):
            raise ValueError(f"a speed event needs speed_kmh in [5, 200], got {self.speed_kmh!r}")
        if self.kind in ("notice", "misleading") and not self.category:
            raise ValueError(f"a {self.kind} event needs a category")

    def active(self, time_s: float) -> bool:
        return self.start_s <= time_s < self.start_s + self.duration_s

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructionEvent:
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(
                f"unknown instruction event key(s) {sorted(unknown)}; valid: {sorted(_KEYS)}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def render_event_text(event: InstructionEvent, rng, split: str, slots: dict[str, Any],
                      phrasings: PhrasingSet | None = None) -> str:
    """Text of an event: its own, else from ``phrasings`` where it has the category's list
    (:mod:`drivevla.language.phrasing_sets`), else from the language module's ``split``."""

    if event.text:
        return event.text
    key = event.category if event.kind != "speed" else ""
    given = dict(slots, speed=event.speed_kmh) if event.kind == "speed" else slots
    text = render_from_set(phrasings, event.kind, key, rng, given)
    if text is not None:
        return text
    if event.kind == "notice":
        return lang.render_notice(event.category, rng, split=split, slots=slots)
    if event.kind == "misleading":
        return lang.render_misleading(event.category, rng, split=split, slots=slots)
    return lang.render_speed_request(float(event.speed_kmh), rng, split=split)
