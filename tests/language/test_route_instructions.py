"""Navigation instructions from a route's next manoeuvre (LangAuto-style)."""

from __future__ import annotations

import numpy as np
import pytest

from drivevla.core.types import HighLevelCommand as C
from drivevla.language.route_instructions import (
    AnnounceRule,
    render_command_instruction,
    route_instruction,
)


def test_each_command_has_a_phrasing_with_and_without_a_distance():
    assert render_command_instruction(C.LEFT) == "Turn left at the next junction."
    assert render_command_instruction(C.LEFT, 42.0) == "In about 40 metres, turn left."
    assert render_command_instruction(C.CHANGE_LANE_RIGHT, 40.0) == \
        "In about 40 metres, move into the right lane."
    for command in C:
        assert "{" not in render_command_instruction(command)
        assert "metres" in render_command_instruction(command, 100.0)
    rng = np.random.default_rng(0)
    text = render_command_instruction(C.RIGHT, 60.0, rng, "train")
    assert "60" in text and "right" in text


def test_the_announce_rule_picks_the_phrasing():
    rule = AnnounceRule(announce_m=80.0, near_m=15.0)
    assert route_instruction(C.LEFT, 100.0, rule) == "Follow the road and keep your lane."
    assert route_instruction(C.LEFT, 60.0, rule) == "In about 60 metres, turn left."
    assert route_instruction(C.LEFT, 10.0, rule) == "Turn left at the next junction."
    assert route_instruction(C.LEFT, -5.0, rule) == "Turn left at the next junction."
    assert route_instruction(C.LANE_FOLLOW, None, rule) == "Follow the road and keep your lane."
    with pytest.raises(ValueError, match="near_m <= announce_m"):
        AnnounceRule(announce_m=10.0, near_m=20.0)
