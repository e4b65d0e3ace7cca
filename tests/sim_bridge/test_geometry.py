"""Procedural road geometry: disjoint parameter bands per split, draws that are deterministic
per seed and inside their split's bands, the fixed map unchanged, and drawn maps that the
scenario builders turn into connected routes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from drivevla.sim_bridge.embedded.config import SimConfig
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.geometry import (
    BAND_GAP,
    FAMILY_GEOMETRY,
    N_BANDS,
    draw_geometry,
)
from drivevla.sim_bridge.embedded.roads import lane_geometries
from drivevla.sim_bridge.embedded.scenarios import FAMILIES

PARAMS = [(family, p) for family, params in FAMILY_GEOMETRY.items() for p in params]


@pytest.mark.parametrize(("family", "param"), PARAMS, ids=lambda x: getattr(x, "name", x))
def test_the_splits_bands_are_disjoint_with_a_gap(family, param):
    width = (param.hi - param.lo) / N_BANDS
    for a, b in itertools.combinations(("train", "val", "test"), 2):
        for (lo1, hi1), (lo2, hi2) in itertools.product(param.bands(a), param.bands(b)):
            gap = max(lo2 - hi1, lo1 - hi2)
            assert gap >= 2 * BAND_GAP * width - 1e-9, (family, param.name, a, b)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_draws_fall_in_their_splits_bands(split):
    for family, params in FAMILY_GEOMETRY.items():
        for seed in range(30):
            drawn = draw_geometry(family, split, np.random.default_rng(seed))
            assert set(drawn) == {p.name for p in params}
            for p in params:
                assert any(lo <= drawn[p.name] <= hi for lo, hi in p.bands(split)), p.name


def _env(family: str, split: str) -> EmbeddedDrivingEnv:
    return EmbeddedDrivingEnv({"scenario": family, "geometry": split, "cameras": []})


def _lane_ends(env: EmbeddedDrivingEnv) -> np.ndarray:
    net = env.scenario.network
    return np.array([np.concatenate([lane.position(0, 0), lane.position(lane.length, 0)])
                     for tos in net.graph.values() for lanes in tos.values() for lane in lanes])


@pytest.mark.parametrize("family", sorted(FAMILY_GEOMETRY))
def test_a_seed_draws_the_same_map_every_time_and_seeds_differ(family):
    a, b, c = _env(family, "test"), _env(family, "test"), _env(family, "test")
    a.reset(seed=11)
    b.reset(seed=11)
    c.reset(seed=12)
    assert a.geometry == b.geometry != c.geometry
    np.testing.assert_array_equal(_lane_ends(a), _lane_ends(b))
    assert _lane_ends(a).shape != _lane_ends(c).shape or not np.allclose(
        _lane_ends(a), _lane_ends(c))


@pytest.mark.parametrize("family", sorted(FAMILY_GEOMETRY))
def test_the_fixed_map_is_the_default_and_takes_nothing_from_the_worlds_stream(family):
    fixed, default = _env(family, "fixed"), EmbeddedDrivingEnv(
        {"scenario": family, "cameras": []})
    _, info_fixed = fixed.reset(seed=5)
    _, info_default = default.reset(seed=5)
    assert fixed.geometry == {p.name: p.fixed for p in FAMILY_GEOMETRY[family]}
    np.testing.assert_array_equal(_lane_ends(fixed), _lane_ends(default))
    assert info_fixed["actors"] == info_default["actors"]
    # a drawn map moves the roads, not the seed's choices: the same intent and instruction
    drawn = _env(family, "test")
    _, info_drawn = drawn.reset(seed=5)
    assert info_drawn["intent"] == info_fixed["intent"]
    assert info_drawn["navigation_instruction"] == info_fixed["navigation_instruction"]
    assert not np.allclose(_lane_ends(drawn), _lane_ends(fixed))


@pytest.mark.parametrize("family", sorted(FAMILY_GEOMETRY))
def test_drawn_maps_give_connected_routes_of_every_intent(family):
    env = _env(family, "test")
    for intent in FAMILIES[family].intents:
        env.reset(seed=21, options={"intent": intent})
        route = env.scenario.route
        pts = route.polyline
        assert route.length_m > 100.0
        assert np.max(np.linalg.norm(np.diff(pts, axis=0), axis=1)) < 6.0  # no jumps


def test_an_unknown_split_is_refused():
    with pytest.raises(ValueError, match="geometry"):
        SimConfig(geometry="holdout")
    with pytest.raises(ValueError, match="pass rng"):
        draw_geometry("roundabout", "test")


def _pole_clearance(env: EmbeddedDrivingEnv) -> float:
    """The smallest gap (m) between a signal pole and the edge of any lane."""
    lanes = lane_geometries(env.scenario.network, step_m=0.5)
    gaps = [np.min(np.linalg.norm(lane.centerline - light.position, axis=1)) - lane.width / 2
            for light in env.scenario.lights for lane in lanes]
    return float(min(gaps))


@pytest.mark.parametrize("split", ["fixed", "train", "val", "test"])
def test_signal_poles_stay_clear_of_every_lane_on_drawn_junctions(split):
    env = _env("urban", split)
    for seed in range(12):
        env.reset(seed=seed)
        assert _pole_clearance(env) >= 1.0, (split, seed, env.geometry)
