"""Leaderboard 2.0 aggregates and Bench2Drive success (see METRICS.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.benchmarks.scoring import PROTOCOL, aggregate, success
from drivevla.core.types import Infraction, InfractionType, RouteResult
from drivevla.sim_bridge.embedded.criteria import (
    CriteriaConfig,
    CriteriaTick,
    RouteCriteria,
    RoutePath,
)


def result(
    rc: float = 100.0,
    penalty: float = 1.0,
    kinds: tuple[InfractionType, ...] = (),
    status: str | None = None,
    length_m: float = 1000.0,
    outside_pct: float = 0.0,
) -> RouteResult:
    infractions = [Infraction(k, 1.0, 0.0, 0.0, "", 1.0) for k in kinds]
    if status is None:
        status = ("Completed" if kinds else "Perfect") if rc >= 100 else "Failed"
    return RouteResult(
        route_id="r",
        scenario="s",
        intent="i",
        seed=0,
        route_length_m=length_m,
        route_completion=rc,
        infraction_penalty=penalty,
        infractions=infractions,
        status=status,
        outside_lanes_pct=outside_pct,
    )


def test_success_requires_completion_and_no_infraction_but_min_speed():
    assert success(result())
    assert success(result(kinds=(InfractionType.MIN_SPEED, InfractionType.MIN_SPEED)))
    assert not success(result(kinds=(InfractionType.COLLISION_VEHICLE,)))
    assert not success(result(kinds=(InfractionType.OUTSIDE_ROUTE_LANES,)))
    assert not success(result(rc=80.0, status="Failed - Agent got blocked"))
    # a route that got far but did not finish is no success, even without infractions
    assert not success(result(rc=99.0, status="Failed - Agent timed out"))


def test_aggregate_means_sample_std_and_success_rate():
    results = [
        result(rc=100.0, penalty=0.6, kinds=(InfractionType.COLLISION_VEHICLE,)),
        result(rc=100.0),
    ]
    summary = aggregate(results)
    assert summary["protocol"] == PROTOCOL
    assert summary["driving_score_mean"] == pytest.approx(80.0)
    assert summary["driving_score_std"] == pytest.approx(math.sqrt(2 * 20.0**2 / 1))
    assert summary["route_completion_mean"] == pytest.approx(100.0)
    assert summary["route_completion_std"] == 0.0
    assert summary["infraction_penalty_mean"] == pytest.approx(0.8)
    assert summary["infraction_penalty_std"] == pytest.approx(np.std([0.6, 1.0], ddof=1))
    assert summary["success_rate_pct"] == pytest.approx(50.0)
    assert summary["statuses"] == {"Completed": 1, "Perfect": 1}


def test_single_route_has_zero_std():
    summary = aggregate([result(rc=42.0, status="Failed - Agent got blocked")])
    assert summary["driving_score_mean"] == pytest.approx(42.0)
    assert summary["driving_score_std"] == 0.0
    assert summary["success_rate_pct"] == 0.0


def test_infractions_per_km_divide_by_the_route_km_actually_completed():
    results = [
        result(rc=50.0, length_m=1000.0, kinds=(InfractionType.COLLISION_VEHICLE,)),
        result(rc=100.0, length_m=2000.0, kinds=(InfractionType.RED_LIGHT,) * 2),
    ]
    summary = aggregate(results)
    assert summary["km_driven"] == pytest.approx(2.5)
    per_km = summary["infractions_per_km"]
    assert per_km["collisions_vehicle"] == pytest.approx(1 / 2.5)
    assert per_km["red_light"] == pytest.approx(2 / 2.5)
    assert per_km["collisions_pedestrian"] == 0.0
    assert set(per_km) == {k.value for k in InfractionType}
    assert summary["infraction_counts"]["red_light"] == 2


def test_outside_lanes_km_is_the_distance_driven_outside():
    summary = aggregate([result(rc=50.0, length_m=2000.0, outside_pct=10.0)])
    assert summary["outside_route_lanes_km"] == pytest.approx(0.1)


def test_missing_routes_count_as_failures_with_ds_0():
    summary = aggregate([result(), result()], n_expected_routes=4)
    assert summary["n_routes"] == 4 and summary["n_missing"] == 2
    assert summary["driving_score_mean"] == pytest.approx(50.0)
    assert summary["route_completion_mean"] == pytest.approx(50.0)
    assert summary["success_rate_pct"] == pytest.approx(50.0)
    assert summary["infraction_penalty_mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="below"):
        aggregate([result(), result()], n_expected_routes=1)
    with pytest.raises(ValueError, match="at least one"):
        aggregate([])


def test_min_speed_penalty_mode_is_recorded():
    on = RouteResult("r", "s", "i", 0, 100.0, 100.0, 0.85, status="Completed")
    on.infractions.append(Infraction(InfractionType.MIN_SPEED, 1.0, 0.0, 0.0, "", 0.85))
    off = RouteResult("r", "s", "i", 0, 100.0, 100.0, 1.0, status="Completed")
    off.infractions.append(Infraction(InfractionType.MIN_SPEED, 1.0, 0.0, 0.0, "", 1.0))
    assert aggregate([on])["min_speed_penalty"] == "on"
    assert aggregate([off])["min_speed_penalty"] == "off"
    assert aggregate([result()])["min_speed_penalty"] == "not observed"
    assert aggregate([result()], min_speed_penalty=False)["min_speed_penalty"] == "off"


def test_aggregate_of_routes_scored_by_the_criteria():
    xs = np.arange(0.0, 200.0 + 1e-9, 1.0)
    route = RoutePath(np.stack([xs, np.zeros_like(xs)], axis=1), 10.0)
    results = []
    for hit in (False, True):
        crit = RouteCriteria(
            route,
            route_id=f"r{int(hit)}",
            scenario="s",
            intent="i",
            seed=0,
            config=CriteriaConfig(),
            dt_s=0.1,
        )
        for i, x in enumerate(xs):
            collisions = [(5, "pedestrian")] if hit and i == 100 else []
            crit.update(CriteriaTick(0.1 * (i + 1), x, 0.0, 0.0, 10.0, 4.0, 2.0, collisions))
        results.append(crit.result())
    summary = aggregate(results)
    assert [r.status for r in results] == ["Perfect", "Completed"]
    assert summary["driving_score_mean"] == pytest.approx(75.0)
    assert summary["success_rate_pct"] == pytest.approx(50.0)
    assert summary["infractions_per_km"]["collisions_pedestrian"] == pytest.approx(1 / 0.4)
