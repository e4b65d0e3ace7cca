"""Leaderboard 2.0 criteria that end a route or judge its pace: minimum speed, deviation,
blocked, timeouts (synthetic tick sequences; see METRICS.md)."""

from __future__ import annotations

import pytest

from drivevla.core.types import InfractionType
from drivevla.sim_bridge.embedded.criteria import (
    STATUS_BLOCKED,
    STATUS_COMPLETED,
    STATUS_DEVIATED,
    STATUS_PERFECT,
    STATUS_TIMED_OUT,
    CriteriaConfig,
)
from support.criteria_parts import DT, drive, make, metres, straight_route, tick

# ------------------------------------------------------------------------------- min speed


def section_speed(slow_section: int, slow: float = 5.0, fast: float = 10.0):
    """Ego speed as a function of s: ``slow`` in the given 25 m section of a 100 m route."""

    def speed(s):
        return slow if 25 * (slow_section - 1) < s <= 25 * slow_section else fast

    return speed


def test_min_speed_checkpoint_below_traffic_speed_is_penalised():
    crit = make(straight_route(100.0))
    raised = drive(
        crit,
        metres(0, 100),
        speed=section_speed(2),
        extra=lambda i, s: {"traffic_speed_mps": 10.0},
    )
    assert crit.checkpoint_values == [100.0, 50.0, 100.0, 100.0]
    assert [i.kind for i in raised] == [InfractionType.MIN_SPEED]
    assert raised[0].penalty == pytest.approx(1 - 0.3 * 0.5)
    assert "50.0%" in raised[0].detail and "2/4" in raised[0].detail
    res = crit.result()
    assert res.status == STATUS_COMPLETED  # an infraction, so not Perfect
    assert res.driving_score == pytest.approx(85.0)


def test_min_speed_last_checkpoint_is_evaluated_when_the_route_ends():
    crit = make(straight_route(100.0))
    drive(
        crit,
        metres(0, 100),
        speed=section_speed(4, slow=8.0),
        extra=lambda i, s: {"traffic_speed_mps": 10.0},
    )
    assert crit.checkpoint_values == [100.0, 100.0, 100.0, 80.0]
    assert crit.result().infraction_penalty == pytest.approx(1 - 0.3 * 0.2)


def test_min_speed_penalty_off_records_but_does_not_penalise():
    crit = make(straight_route(100.0), enable_min_speed=False)
    drive(
        crit,
        metres(0, 100),
        speed=section_speed(2),
        extra=lambda i, s: {"traffic_speed_mps": 10.0},
    )
    res = crit.result()
    assert res.count(InfractionType.MIN_SPEED) == 1
    assert res.infraction_penalty == 1.0
    assert "not applied" in res.infractions[0].detail


def test_min_speed_skips_sections_without_traffic():
    crit = make(straight_route(100.0))
    drive(
        crit,
        metres(0, 100),
        speed=2.0,
        extra=lambda i, s: {"traffic_speed_mps": 10.0} if s > 75 else {},
    )
    assert crit.checkpoint_values == [None, None, None, 20.0]
    assert crit.result().count(InfractionType.MIN_SPEED) == 1


def test_min_speed_no_last_checkpoint_when_the_route_ends_early():
    crit = make(straight_route(100.0))
    drive(crit, metres(0, 60), speed=5.0, extra=lambda i, s: {"traffic_speed_mps": 10.0})
    crit.terminate()
    assert crit.checkpoint_values == [50.0, 50.0]
    assert crit.status == "Failed"


# ------------------------------------------------------------------------------- route ends


def test_more_than_30_m_from_the_route_ends_it():
    crit = make(straight_route(100.0))
    drive(crit, metres(0, 40))
    raised = crit.update(tick(10.0, 45.0, 31.0))
    assert crit.done and crit.status == STATUS_DEVIATED
    assert [i.kind for i in raised] == [InfractionType.ROUTE_DEVIATION]
    res = crit.result()
    assert res.route_completion == pytest.approx(40.0)
    assert res.infraction_penalty == 1.0
    assert res.driving_score == pytest.approx(40.0)


def test_driving_30_pct_of_the_route_beyond_15_m_ends_it():
    crit = make(straight_route(100.0))
    drive(crit, metres(0, 10))
    drive(crit, metres(11, 100), t_start=2.0, lateral=17.0)
    assert crit.done and crit.status == STATUS_DEVIATED
    # 31 m progressed beyond 15 m (> 30 % of 100 m) at s = 41
    assert crit.result().route_completion == pytest.approx(41.0)


def test_blocked_for_exactly_the_configured_time_ends_the_route():
    crit = make(straight_route(100.0))
    drive(crit, metres(0, 10))  # last moving tick at t = 1.1
    t_moving = 11 * DT
    i = 1
    while not crit.done:
        t = t_moving + i * DT
        crit.update(tick(t, 10.0, 0.0, speed=0.05))
        if round(t - t_moving, 6) < 180.0:
            assert not crit.done, f"blocked too early at {t - t_moving:.2f} s"
        i += 1
    assert (i - 1) * DT == pytest.approx(180.0)
    assert crit.status == STATUS_BLOCKED
    res = crit.result()
    assert res.infractions[-1].kind == InfractionType.AGENT_BLOCKED
    assert res.route_completion == pytest.approx(10.0)


def test_slow_creeping_is_not_blocked():
    crit = make(straight_route(100.0), blocked_time_s=5.0)
    for i in range(200):
        crit.update(tick((i + 1) * DT, 0.01 * i, 0.0, speed=0.1))
    assert not crit.done


def test_route_timeout_is_base_plus_length_at_10_pct_of_the_speed_limit():
    crit = make(straight_route(100.0, speed_limit=10.0), timeout_base_s=5.0, blocked_time_s=1e6)
    assert crit.timeout_s == pytest.approx(5.0 + 100.0 / 1.0)
    n = 0
    while not crit.done:
        n += 1
        crit.update(tick(n * DT, 0.05 * n, 0.0, speed=0.5))
    assert n * DT == pytest.approx(105.0)  # the first tick ends the first 0.1 s step
    assert crit.status == STATUS_TIMED_OUT
    res = crit.result()
    assert res.infractions[-1].kind == InfractionType.ROUTE_TIMEOUT
    assert res.route_completion == pytest.approx(round(0.05 * n, 2))
    assert res.duration_s == pytest.approx(105.0)
    assert CriteriaConfig().timeout_base_s == 300.0


def test_completion_wins_over_a_timeout_on_the_same_tick():
    def run(last_x):
        crit = make(straight_route(100.0), timeout_base_s=0.0, timeout_speed_fraction=10.0)
        assert crit.timeout_s == pytest.approx(1.0)
        drive(crit, metres(0, 80, 10.0))  # t = 0.1 .. 0.9 s
        assert not crit.done
        crit.update(tick(1.0, last_x, 0.0))
        return crit.status

    assert run(95.0) == STATUS_TIMED_OUT
    assert run(100.0) == STATUS_PERFECT
