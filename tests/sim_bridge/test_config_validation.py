"""Every field of SimConfig and CriteriaConfig is validated for type, finiteness and range
from one table per config; the error names the field and what it allows."""

from __future__ import annotations

import dataclasses
import math

import pytest

from drivevla.sim_bridge.embedded.config import SIM_FIELD_RULES, SimConfig
from drivevla.sim_bridge.embedded.criteria_config import CRITERIA_FIELD_RULES, CriteriaConfig
from drivevla.sim_bridge.embedded.field_rules import Rule

# SimConfig fields that hold several values, checked by hand in __post_init__
COMPOUND = {
    "cameras": ["front", [1, 2], 3],
    "light_cycle_s": [[10.0, 3.0], [math.nan, 3.0, 15.0], [0.0, 0.0, 0.0], [-1.0, 3.0, 15.0],
                      "10,3,15", [math.inf, 3.0, 15.0]],
    "criteria": ["x", [1]],
    "phrasings": ["mine.json", 3, {"weather": {}}, {"navigation": {"fly": ["Up."]}}],
}


def _bad_values(rule: Rule) -> list:
    if rule.kind == "bool":
        bad = [1, "true", 0.0]
    elif rule.kind == "str":
        bad = [3, "", 1.5]
    elif rule.kind == "choice":
        bad = ["no-such-choice", 3, True]
    else:
        bad = [math.nan, math.inf, -math.inf, "1", True, [1]]
        if rule.kind == "int":
            bad.append(1.5)
        if rule.lo is not None:
            bad.append(rule.lo if rule.lo_open else rule.lo - 1)
        if rule.hi is not None:
            bad.append(rule.hi if rule.hi_open else rule.hi + 1)
    if not rule.optional:
        bad.append(None)
    return bad


def _good_values(rule: Rule, default) -> list:
    good = [default]
    if rule.kind in ("float", "int"):
        for bound, is_open in ((rule.lo, rule.lo_open), (rule.hi, rule.hi_open)):
            if bound is not None and not is_open:
                good.append(int(bound) if rule.kind == "int" else float(bound))
    if rule.optional:
        good.append(None)
    return good


def _cases(rules: dict[str, Rule]) -> list:
    return [
        pytest.param(name, value, id=f"{name}={value!r}")
        for name, rule in rules.items()
        for value in _bad_values(rule)
    ]


def test_the_tables_cover_every_field():
    sim_fields = {f.name for f in dataclasses.fields(SimConfig)}
    assert set(SIM_FIELD_RULES) | set(COMPOUND) == sim_fields
    assert set(CRITERIA_FIELD_RULES) == {f.name for f in dataclasses.fields(CriteriaConfig)}


def test_defaults_are_valid_and_unchanged():
    cfg = SimConfig()
    assert cfg.max_steer_deg == 35.0 and cfg.max_accel_mps2 == 4.0 and cfg.control_hz == 10.0
    assert cfg.light_cycle_s == (10.0, 3.0, 15.0) and cfg.max_steps is None
    assert SimConfig.from_dict(cfg.to_dict()) == cfg
    assert CriteriaConfig().to_dict() == CriteriaConfig.from_dict({}).to_dict()


@pytest.mark.parametrize(("name", "value"), _cases(SIM_FIELD_RULES))
def test_sim_config_refuses_a_bad_value_naming_field_and_range(name, value):
    rule = SIM_FIELD_RULES[name]
    with pytest.raises(ValueError) as err:
        SimConfig.from_dict({name: value})
    assert f"SimConfig.{name}=" in str(err.value)
    assert rule.describe() in str(err.value)


@pytest.mark.parametrize("name", sorted(SIM_FIELD_RULES))
def test_sim_config_accepts_good_values(name):
    default = getattr(SimConfig(), name)
    for value in _good_values(SIM_FIELD_RULES[name], default):
        assert getattr(SimConfig.from_dict({name: value}), name) == value


@pytest.mark.parametrize(
    ("name", "value"),
    [pytest.param(n, v, id=f"{n}={v!r}") for n, values in COMPOUND.items() for v in values],
)
def test_sim_config_refuses_bad_compound_values(name, value):
    with pytest.raises(ValueError, match=f"SimConfig.{name}="):
        SimConfig.from_dict({name: value})


def test_issue_examples_are_named_errors():
    for name, value in (("max_steer_deg", math.nan), ("max_accel_mps2", math.nan),
                        ("traffic_density", "dense"), ("max_steps", -1), ("max_steps", 0)):
        with pytest.raises(ValueError, match=name):
            SimConfig.from_dict({name: value})


@pytest.mark.parametrize(("name", "value"), _cases(CRITERIA_FIELD_RULES))
def test_criteria_refuse_a_bad_value_naming_field_and_range(name, value):
    rule = CRITERIA_FIELD_RULES[name]
    for build in (lambda: CriteriaConfig.from_dict({name: value}),
                  lambda: SimConfig.from_dict({"criteria": {name: value}})):
        with pytest.raises(ValueError) as err:
            build()
        assert f"CriteriaConfig.{name}=" in str(err.value)
        assert rule.describe() in str(err.value)


@pytest.mark.parametrize("name", sorted(CRITERIA_FIELD_RULES))
def test_criteria_accept_good_values(name):
    default = getattr(CriteriaConfig(), name)
    for value in _good_values(CRITERIA_FIELD_RULES[name], default):
        assert getattr(CriteriaConfig.from_dict({name: value}), name) == value
