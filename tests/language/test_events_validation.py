"""Instruction events validate every field on construction: a NaN start or a text that is not
a string is an error naming the field, never an event that silently never fires."""

from __future__ import annotations

import math

import pytest

from drivevla.language.events import InstructionEvent


@pytest.mark.parametrize(
    ("field", "value"),
    [("start_s", math.nan), ("start_s", math.inf), ("duration_s", math.nan), ("start_s", "3"),
     ("duration_s", True), ("speed_kmh", math.nan), ("category", 3), ("text", ["a"])],
)
def test_a_bad_event_field_is_refused_by_name(field, value):
    good = {"kind": "speed", "start_s": 1.0, "duration_s": 2.0, "speed_kmh": 50.0}
    with pytest.raises(ValueError, match=field):
        InstructionEvent.from_dict({**good, field: value})
    InstructionEvent.from_dict(good)  # the same event with that field right is fine
