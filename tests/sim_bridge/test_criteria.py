"""CARLA Leaderboard 2.0 criteria on synthetic tick sequences (see METRICS.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.scene import LightState
from drivevla.core.types import InfractionType
from drivevla.sim_bridge.embedded.criteria import (
    PENALTY_FACTORS,
    STATUS_COMPLETED,
    STATUS_PERFECT,
    STATUS_RUNNING,
    CriteriaConfig,
    LightCrossing,
    RoutePath,
    segments_intersect,
)
from support.criteria_parts import DT, drive, l_route, make, metres, straight_route, tick

# ------------------------------------------------------------------------------- RoutePath


def test_route_path_length_point_and_projection_on_l_route():
    route = l_route(50.0)
    assert route.length_m == pytest.approx(100.0)
    np.testing.assert_allclose(route.point_at(75.0), [50.0, 25.0])
    np.testing.assert_allclose(route.point_at(-5.0), [0.0, 0.0])
    np.testing.assert_allclose(route.point_at(500.0), [50.0, 50.0])
    assert route.heading_at(75.0) == pytest.approx(math.pi / 2)
    s, d = route.project((20.0, 3.0))
    assert (s, d) == (pytest.approx(20.0), pytest.approx(3.0))
    s, d = route.project((47.0, 30.0), hint_s=78.0)
    assert (s, d) == (pytest.approx(80.0), pytest.approx(3.0))
    # beyond the end: distance to the end point
    s, d = route.project((50.0, 60.0))
    assert (s, d) == (pytest.approx(100.0), pytest.approx(10.0))


def test_route_path_rejects_bad_points_and_drops_duplicates():
    with pytest.raises(ValueError, match="N >= 2"):
        RoutePath(np.zeros((1, 2)), 10.0)
    with pytest.raises(ValueError, match="zero length"):
        RoutePath(np.zeros((3, 2)), 10.0)
    with pytest.raises(ValueError, match="NaN"):
        RoutePath(np.array([[0.0, 0.0], [np.nan, 1.0]]), 10.0)
    with pytest.raises(ValueError, match="speed_limit"):
        RoutePath(np.array([[0.0, 0.0], [1.0, 0.0]]), 0.0)
    route = RoutePath(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]]), 10.0)
    assert route.length_m == pytest.approx(2.0)
    assert route.project((1.5, 0.5)) == (pytest.approx(1.5), pytest.approx(0.5))


def test_project_with_hint_follows_the_current_pass_where_the_route_crosses_itself():
    # East along y=0 to x=100, then a loop that comes back south across (50, 0) and on.
    pts = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 60.0], [50.0, 60.0], [50.0, -60.0]])
    route = RoutePath(pts, 10.0)
    # the crossing point lies on both passes: s = 50 (first) and s = 100 + 60 + 50 + 60 = 270
    assert route.project((50.0, 0.0), hint_s=48.0) == (pytest.approx(50.0), pytest.approx(0.0))
    assert route.project((50.0, 0.0), hint_s=268.0) == (pytest.approx(270.0), pytest.approx(0.0))
    # nearer the second pass, but the hint keeps the projection on the first pass
    s, d = route.project((50.3, 1.0), hint_s=50.0)
    assert (s, d) == (pytest.approx(50.3), pytest.approx(1.0))
    # the global search picks the nearest point regardless of passes
    s, d = route.project((50.3, 1.0))
    assert (s, d) == (pytest.approx(269.0), pytest.approx(0.3))


def test_project_with_hint_prefers_the_current_pass_when_the_window_holds_both():
    # a small loop crossing itself at (10, 0): s = 10 on the first pass, s = 70 on the second
    pts = np.array([[0.0, 0.0], [30.0, 0.0], [30.0, 10.0], [10.0, 10.0], [10.0, -10.0]])
    route = RoutePath(pts, 10.0)
    # slightly nearer the second pass, both passes inside the window
    s, d = route.project((10.05, 0.06), hint_s=10.0, window_m=80.0)
    assert (s, d) == (pytest.approx(10.05), pytest.approx(0.06))
    s, _ = route.project((10.05, 0.06), hint_s=68.0, window_m=80.0)
    assert s == pytest.approx(69.94)


def test_project_with_hint_only_searches_the_window():
    route = straight_route(1000.0)
    s, d = route.project((900.0, 0.0), hint_s=100.0, window_m=40.0)
    assert s == pytest.approx(140.0)
    assert d == pytest.approx(760.0)


# ------------------------------------------------------------------------------- completion


def test_clean_drive_completes_perfect_with_ds_100():
    crit = make(straight_route(100.0))
    assert crit.status == STATUS_RUNNING
    assert drive(crit, metres(0, 120)) == []
    res = crit.result()
    assert crit.done and res.status == STATUS_PERFECT
    assert res.route_completion == 100.0
    assert res.infraction_penalty == 1.0
    assert res.driving_score == 100.0
    assert res.driven_distance_m == pytest.approx(100.0)
    assert res.duration_s == pytest.approx(101 * DT)


def test_completion_snaps_to_100_above_99_pct_within_10_m_of_the_end():
    crit = make(straight_route(100.0))
    drive(crit, [*metres(0, 99), 99.5])
    assert crit.done and crit.result().route_completion == 100.0


def test_completion_does_not_snap_when_far_from_the_end():
    # 99.2 % of 2 km is 16 m short of the end
    crit = make(straight_route(2000.0, spacing=5.0))
    drive(crit, metres(0, 1984, 4.0))
    assert not crit.done
    assert crit.result().route_completion == pytest.approx(99.2)
    assert crit.result().status == STATUS_RUNNING


def test_completion_is_the_monotone_max_and_ignores_far_projections():
    crit = make(straight_route(100.0))
    drive(crit, [*metres(0, 40), 35.0, 30.0])  # reversing does not reduce RC
    assert crit.result().route_completion == pytest.approx(40.0)
    crit.terminate("Simulation crashed")
    assert crit.status == "Failed - Simulation crashed"
    assert crit.result().driving_score == pytest.approx(40.0)


def test_update_after_done_is_a_no_op():
    crit = make(straight_route(100.0))
    drive(crit, metres(0, 100))
    assert crit.done
    before = crit.result()
    assert crit.update(tick(50.0, 50.0, 0.0, collisions=[(1, "vehicle")])) == []
    assert crit.terminate("x") == []
    assert crit.result().to_dict() == before.to_dict()


# ------------------------------------------------------------------------------- collisions


@pytest.mark.parametrize(
    ("kind", "itype", "ds"),
    [
        ("vehicle", InfractionType.COLLISION_VEHICLE, 60.0),
        ("pedestrian", InfractionType.COLLISION_PEDESTRIAN, 50.0),
        ("static", InfractionType.COLLISION_STATIC, 65.0),
    ],
)
def test_one_collision_of_each_kind(kind, itype, ds):
    crit = make(straight_route(100.0))
    # contact lasts three ticks (the env reports the actor while the boxes touch)
    raised = drive(
        crit,
        metres(0, 100),
        extra=lambda i, s: {"collisions": [(7, kind)]} if 50 <= s < 53 else {},
    )
    assert [i.kind for i in raised] == [itype]
    hit = raised[0]
    assert hit.penalty == PENALTY_FACTORS[itype]
    assert hit.time_s == pytest.approx(51 * DT) and hit.x == pytest.approx(50.0)
    assert "id=7" in hit.detail and kind in hit.detail
    res = crit.result()
    assert res.status == STATUS_COMPLETED
    assert res.count(itype) == 1
    assert res.driving_score == pytest.approx(ds)


def test_collision_with_unknown_kind_is_rejected():
    crit = make(straight_route(100.0))
    with pytest.raises(ValueError, match="valid kinds"):
        crit.update(tick(0.1, 0.0, 0.0, collisions=[(3, "tree")]))


def test_same_actor_within_5_s_counts_once_even_far_away():
    crit = make(straight_route(200.0))
    crit.update(tick(1.0, 10.0, 0.0, collisions=[(1, "vehicle")]))
    raised = crit.update(tick(4.0, 40.0, 0.0, collisions=[(1, "vehicle")]))
    assert raised == []
    assert crit.result().count(InfractionType.COLLISION_VEHICLE) == 1


def test_other_actor_within_5_m_of_the_last_collision_counts_once():
    crit = make(straight_route(200.0))
    crit.update(tick(1.0, 10.0, 0.0, collisions=[(1, "vehicle"), (2, "pedestrian")]))
    crit.update(tick(1.1, 11.0, 0.0, collisions=[(3, "static")]))
    res = crit.result()
    assert [i.kind for i in res.infractions] == [InfractionType.COLLISION_VEHICLE]


def test_other_actor_beyond_5_m_counts_again_within_5_s():
    crit = make(straight_route(200.0))
    crit.update(tick(1.0, 10.0, 0.0, collisions=[(1, "vehicle")]))
    crit.update(tick(1.5, 16.0, 0.0, collisions=[(2, "vehicle")]))
    assert crit.result().count(InfractionType.COLLISION_VEHICLE) == 2
    assert crit.result().infraction_penalty == pytest.approx(0.36)


def test_same_actor_counts_again_after_5_s_and_5_m():
    crit = make(straight_route(200.0))
    crit.update(tick(1.0, 10.0, 0.0, collisions=[(1, "vehicle")]))
    # 5.5 s later but still within 5 m of the first hit: ignored
    crit.update(tick(6.5, 14.0, 0.0, collisions=[(1, "vehicle")]))
    assert crit.result().count(InfractionType.COLLISION_VEHICLE) == 1
    crit.update(tick(7.0, 20.0, 0.0, collisions=[(1, "vehicle")]))
    assert crit.result().count(InfractionType.COLLISION_VEHICLE) == 2


def test_collision_position_is_forgotten_once_the_ego_leaves_it():
    crit = make(straight_route(200.0))
    crit.update(tick(1.0, 10.0, 0.0, collisions=[(1, "vehicle")]))
    crit.update(tick(2.0, 20.0, 0.0))  # more than 5 m away: the position is forgotten
    crit.update(tick(3.0, 12.0, 0.0, collisions=[(2, "vehicle")]))
    assert crit.result().count(InfractionType.COLLISION_VEHICLE) == 2


def test_hits_while_the_ego_is_standing_are_ignored():
    crit = make(straight_route(200.0))
    assert crit.update(tick(1.0, 10.0, 0.0, speed=0.05, collisions=[(1, "vehicle")])) == []
    # an ignored hit does not start a dedupe window: the next real hit counts
    raised = crit.update(tick(1.1, 10.2, 0.0, speed=0.1, collisions=[(1, "vehicle")]))
    assert [i.kind for i in raised] == [InfractionType.COLLISION_VEHICLE]


# ------------------------------------------------------------------------------- red lights

STOP_LINE = np.array([[50.0, -3.5], [50.0, 3.5]])


def light(state="red", light_xy=(52.0, -5.0), light_id=11, approach_yaw=None):
    return LightCrossing(light_id, state, STOP_LINE, np.asarray(light_xy, float), approach_yaw)


def run_through_light(state="red", step=1.0, **light_kw):
    crit = make(straight_route(100.0))
    raised = drive(
        crit,
        metres(0, 100, step),
        speed=step / DT,
        extra=lambda i, s: {"lights": [light(state, **light_kw)]} if 30 <= s <= 70 else {},
    )
    return crit, raised


def test_running_a_red_light_is_one_infraction_when_the_tail_crosses():
    crit, raised = run_through_light("red")
    assert [i.kind for i in raised] == [InfractionType.RED_LIGHT]
    # the tail probe (0.8 * 2 m behind the centre) reaches the line with the centre at 51.6 m
    assert raised[0].x == pytest.approx(52.0)
    assert raised[0].penalty == 0.7 and "11" in raised[0].detail
    assert crit.result().driving_score == pytest.approx(70.0)


def test_front_over_the_line_alone_is_not_running_the_light():
    crit = make(straight_route(100.0))
    raised = drive(crit, metres(0, 51), extra=lambda i, s: {"lights": [light("red")]})
    assert raised == []


@pytest.mark.parametrize("state", ["green", "yellow", LightState.GREEN])
def test_green_or_yellow_light_is_not_an_infraction(state):
    _, raised = run_through_light(state)
    assert raised == []


def test_scene_light_state_enum_red_counts():
    _, raised = run_through_light(LightState.RED)
    assert [i.kind for i in raised] == [InfractionType.RED_LIGHT]


def test_red_light_farther_than_15_m_is_not_checked():
    _, raised = run_through_light("red", light_xy=(50.0, 40.0))
    assert raised == []


def test_red_light_for_the_opposite_direction_is_not_checked():
    _, raised = run_through_light("red", approach_yaw=math.pi)
    assert raised == []
    _, raised = run_through_light("red", approach_yaw=0.1)
    assert len(raised) == 1


def test_fast_ego_cannot_jump_the_stop_line_between_ticks():
    # 30 m/s: 3 m per tick, longer than the 1.4 m tail probe
    _, raised = run_through_light("red", step=3.0)
    assert [i.kind for i in raised] == [InfractionType.RED_LIGHT]


def test_same_light_counts_again_on_a_later_pass_only():
    crit = make(straight_route(300.0))
    red = [light("red")]
    # cross, reverse back over the line while still near: same pass, not counted again
    for i, x in enumerate([48.0, 50.0, 52.0, 54.0, 50.0, 47.0, 52.0, 54.0]):
        crit.update(tick(0.1 * (i + 1), x, 0.0, lights=red))
    assert crit.result().count(InfractionType.RED_LIGHT) == 1
    # leave beyond 15 m, then come back through it (a loop): counted again
    crit.update(tick(2.0, 90.0, 0.0))
    crit.update(tick(2.1, 40.0, 0.0))
    crit.update(tick(2.2, 48.0, 0.0, lights=red))
    assert crit.result().count(InfractionType.RED_LIGHT) == 1
    crit.update(tick(2.3, 53.0, 0.0, lights=red))
    assert crit.result().count(InfractionType.RED_LIGHT) == 2


def test_segments_intersect():
    assert segments_intersect((0, 0), (2, 2), (0, 2), (2, 0))
    assert not segments_intersect((0, 0), (1, 1), (0, 2), (2, 4))
    assert segments_intersect((0, 0), (1, 0), (1, -1), (1, 1))  # touching
    assert not segments_intersect((0, 0), (1, 0), (2, 0), (3, 0))  # collinear, apart
    assert segments_intersect((0, 0), (2, 0), (1, 0), (3, 0))  # collinear, overlapping


# ------------------------------------------------------------------------------- outside lanes


def test_twenty_percent_outside_lanes_gives_penalty_0_8():
    crit = make(straight_route(100.0))
    drive(crit, metres(0, 100), extra=lambda i, s: {"outside_route_lanes": 40 < s <= 60})
    res = crit.result()
    assert res.status == STATUS_COMPLETED
    assert res.outside_lanes_pct == pytest.approx(20.0)
    [rec] = res.infractions
    assert rec.kind == InfractionType.OUTSIDE_ROUTE_LANES
    assert rec.penalty == pytest.approx(0.8)
    assert rec.x == pytest.approx(41.0)
    assert res.driving_score == pytest.approx(80.0)


def test_wrong_way_and_outside_lanes_share_one_record():
    crit = make(straight_route(100.0))
    drive(
        crit,
        metres(0, 100),
        extra=lambda i, s: {"outside_route_lanes": 10 < s <= 20, "wrong_way": 15 < s <= 40},
    )
    res = crit.result()
    assert res.count(InfractionType.OUTSIDE_ROUTE_LANES) == 1
    assert res.outside_lanes_pct == pytest.approx(30.0)
    assert res.infraction_penalty == pytest.approx(0.7)


def test_outside_lanes_counts_progress_not_standing_still():
    crit = make(straight_route(100.0))
    drive(crit, metres(0, 50))
    # parked outside the lanes for 100 ticks: no route progress, no share
    for i in range(100):
        crit.update(tick(10.0 + i * DT, 50.0, 0.0, speed=0.0, outside_route_lanes=True))
    # sideways (no progress along the route) while flagged: no share either
    for i in range(1, 11):
        crit.update(tick(20.0 + i * DT, 50.0, float(i), outside_route_lanes=True))
    assert crit.result().driven_distance_m == pytest.approx(60.0)
    assert crit.outside_lanes_pct == 0.0
    assert crit.result().infraction_penalty == 1.0


def test_outside_lanes_driven_basis_uses_odometry():
    crit = make(straight_route(100.0), outside_lanes_basis="driven")
    drive(crit, metres(0, 50))
    # drive 10 m sideways while flagged: odometry grows, route progress does not
    for i in range(1, 11):
        crit.update(tick(10.0 + i * DT, 50.0, float(i), outside_route_lanes=True))
    assert crit.outside_lanes_pct == pytest.approx(100.0 * 10.0 / 60.0)
    # provisional record while running
    assert crit.result().count(InfractionType.OUTSIDE_ROUTE_LANES) == 1


# ------------------------------------------------------------------------------- config


def test_from_dict_rejects_unknown_keys_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown criteria key") as err:
        CriteriaConfig.from_dict({"blocked_time_s": 60.0, "bloked_time": 1})
    assert "bloked_time" in str(err.value)
    assert "blocked_time_s" in str(err.value) and "enable_min_speed" in str(err.value)
    cfg = CriteriaConfig.from_dict({"blocked_time_s": 60.0, "enable_min_speed": False})
    assert cfg.blocked_time_s == 60.0 and cfg.enable_min_speed is False
    assert CriteriaConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "bad",
    [
        {"blocked_time_s": 0.0},
        {"route_deviation_far_share": 1.5},
        {"min_speed_checkpoints": 0},
        {"outside_lanes_basis": "time"},
        {"timeout_speed_fraction": float("nan")},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        CriteriaConfig(**bad)


def test_leaderboard_defaults():
    cfg = CriteriaConfig()
    assert (cfg.collision_same_actor_window_s, cfg.collision_min_separation_m) == (5.0, 5.0)
    assert (cfg.route_deviation_m, cfg.route_deviation_far_m) == (30.0, 15.0)
    assert (cfg.blocked_time_s, cfg.min_speed_checkpoints) == (180.0, 4)
    assert PENALTY_FACTORS[InfractionType.STOP_SIGN] == 0.8
    assert PENALTY_FACTORS[InfractionType.SCENARIO_TIMEOUT] == 0.7
    assert PENALTY_FACTORS[InfractionType.YIELD_EMERGENCY] == 0.7
