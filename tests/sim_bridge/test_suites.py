"""Scenario-suite files: the shipped suites, the held-out seed split, and bad files."""

from __future__ import annotations

import itertools

import pytest
import yaml

from drivevla.sim_bridge.embedded.scenarios import FAMILIES
from drivevla.sim_bridge.embedded.suites import (
    SEED_RANGES,
    builtin_suites,
    generate_suite,
    load_suite,
)


def test_standard_suite_covers_every_family_and_intent_on_held_out_seeds_and_maps():
    suite, fixed = load_suite("standard"), load_suite("standard-fixedmap")
    assert len(suite.routes) >= 50
    assert all(r.config.get("geometry") == "test" for r in suite.routes)
    # the fixed-map benchmark: the same routes on the fixed maps
    assert [(r.route_id, r.seed, r.events) for r in fixed.routes] == [
        (r.route_id, r.seed, r.events) for r in suite.routes]
    assert all("geometry" not in r.config for r in fixed.routes)
    covered = {(r.scenario, r.intent) for r in suite.routes}
    expected = {(f, i) for f, fam in FAMILIES.items() for i in fam.intents}
    assert covered == expected
    lo, hi = SEED_RANGES["eval"]
    assert all(lo <= r.seed <= hi for r in suite.routes)
    assert SEED_RANGES["train"][1] < lo  # disjoint ranges


def test_validation_suite_is_disjoint_from_training_and_the_benchmark():
    val, standard = load_suite("val"), load_suite("standard")
    expected = {(f, i) for f, fam in FAMILIES.items() for i in fam.intents}
    assert {(r.scenario, r.intent) for r in val.routes} == expected
    lo, hi = SEED_RANGES["val"]
    assert all(lo <= r.seed <= hi for r in val.routes)
    ranges = sorted(SEED_RANGES.values())
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))  # disjoint
    assert not {r.seed for r in val.routes} & {r.seed for r in standard.routes}
    # validation measures what the benchmark measures: held-out phrasings, unsafe events, and
    # maps of their own
    assert all(r.config.get("instruction_split") == "heldout" for r in val.routes)
    assert all(r.config.get("geometry") == "val" for r in val.routes)
    assert any(e["kind"] == "misleading" for r in val.routes for e in r.events)


def test_shipped_suite_files_match_the_generator():
    # the YAML in the package is what generate_suite produces (no hand edits drifted in)
    assert (
        load_suite("standard").routes
        == generate_suite("standard", "eval", 3, instruction_split="heldout",
                          geometry="test").routes
    )
    assert (load_suite("standard-fixedmap").routes
            == generate_suite("standard-fixedmap", "eval", 3, instruction_split="heldout").routes)
    val = generate_suite("val", "val", 2, instruction_split="heldout", geometry="val")
    assert load_suite("val").routes == val.routes
    assert {"standard", "standard-fixedmap", "smoke", "val"} <= set(builtin_suites())


def test_user_suite_file_with_instruction_and_config(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "mine",
                "routes": [
                    {
                        "scenario": "urban",
                        "intent": "turn_left",
                        "seed": 5,
                        "instruction": "Hang a left.",
                        "config": {"traffic_density": 0.5},
                    },
                ],
            }
        )
    )
    suite = load_suite(path)
    (route,) = suite.routes
    assert route.route_id == "urban-turn_left-5"
    assert route.instruction == "Hang a left."
    cfg = route.sim_config()
    assert cfg.traffic_density == 0.5 and cfg.scenario == "urban" and cfg.intent == "turn_left"


@pytest.mark.parametrize(
    "route, match",
    [
        ({"scenario": "moon", "intent": "x", "seed": 1}, "unknown scenario 'moon'.*highway"),
        ({"scenario": "highway", "intent": "fly", "seed": 1}, "unknown intent 'fly'.*cruise"),
        ({"scenario": "highway", "intent": "cruise", "seed": -1}, "seed"),
        ({"scenario": "highway", "intent": "cruise"}, "missing required key 'seed'"),
        ({"scenario": "highway", "intent": "cruise", "seed": 1, "speed": 3}, "unknown route key"),
        (
            {"scenario": "highway", "intent": "cruise", "seed": 1, "config": {"fog": 1}},
            "unknown simulator config key",
        ),
    ],
)
def test_bad_routes_name_the_problem(tmp_path, route, match):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "routes": [route]}))
    with pytest.raises(ValueError, match=match):
        load_suite(path)


def test_duplicate_ids_and_missing_files_are_errors(tmp_path):
    path = tmp_path / "dup.yaml"
    r = {"id": "a", "scenario": "highway", "intent": "cruise", "seed": 1}
    path.write_text(yaml.safe_dump({"name": "dup", "routes": [r, r]}))
    with pytest.raises(ValueError, match="duplicate route id"):
        load_suite(path)
    with pytest.raises(FileNotFoundError, match="built-in suites.*standard"):
        load_suite("no-such-suite")
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_suite(broken)


def test_route_events_are_loaded_and_validated(tmp_path):
    path = tmp_path / "ev.yaml"
    good = {"kind": "misleading", "category": "run_red_light", "start_s": 3, "duration_s": 2}
    path.write_text(yaml.safe_dump({"name": "ev", "routes": [
        {"scenario": "urban", "intent": "go_straight", "seed": 1, "events": [good]}]}))
    (route,) = load_suite(path).routes
    assert route.events == (good,)
    assert route.reset_options()["instruction_events"] == [good]
    bad = {"kind": "speed", "start_s": 3, "duration_s": 2}  # no speed_kmh
    path.write_text(yaml.safe_dump({"name": "ev", "routes": [
        {"scenario": "urban", "intent": "go_straight", "seed": 1, "events": [bad]}]}))
    with pytest.raises(ValueError, match="event #0.*speed_kmh"):
        load_suite(path)


@pytest.mark.parametrize(
    "route_id",
    ["../../escaped/pwned", "/tmp/abs", "sub/../r1", "a/b", "..", ".hidden", "r 1", "", "é"],
)
def test_route_ids_outside_the_safe_character_set_are_refused(tmp_path, route_id):
    path = tmp_path / "evil.yaml"
    r = {"id": route_id, "scenario": "highway", "intent": "cruise", "seed": 1}
    path.write_text(yaml.safe_dump({"name": "evil", "routes": [r]}))
    if route_id == "":  # an empty id falls back to the generated one
        assert load_suite(path).routes[0].route_id == "highway-cruise-1"
        return
    with pytest.raises(ValueError, match=r"route #0: route id .* must"):
        load_suite(path)


def test_route_ids_that_differ_only_in_case_are_refused(tmp_path):
    path = tmp_path / "case.yaml"
    routes = [
        {"id": "r1", "scenario": "highway", "intent": "cruise", "seed": 1},
        {"id": "R1", "scenario": "highway", "intent": "cruise", "seed": 2},
    ]
    path.write_text(yaml.safe_dump({"name": "case", "routes": routes}))
    with pytest.raises(ValueError, match="'r1' and 'R1' differ only in case"):
        load_suite(path)
