"""Closed-loop scores over many routes: CARLA Leaderboard 2.0 aggregates, Bench2Drive success.

See ``docs/metrics.md``. Per-route results come from
:class:`drivevla.sim_bridge.embedded.criteria.RouteCriteria` (a CARLA backend is planned) as
:class:`~drivevla.core.types.RouteResult`.
"""

from __future__ import annotations

import statistics
from typing import Any

from drivevla.core.types import InfractionType, RouteResult

PROTOCOL = "CARLA Leaderboard 2.0 (criteria) / Bench2Drive success"
SUCCESS_STATUSES = ("Completed", "Perfect")
# The leaderboard divides by at least 1 m driven so that an empty run does not divide by zero.
_MIN_KM_DRIVEN = 0.001
# How reports and video banners name each infraction kind.
INFRACTION_LABELS: dict[str, str] = {
    InfractionType.COLLISION_PEDESTRIAN.value: "collision with a pedestrian",
    InfractionType.COLLISION_VEHICLE.value: "collision with a vehicle",
    InfractionType.COLLISION_STATIC.value: "collision with the layout",
    InfractionType.RED_LIGHT.value: "red light run",
    InfractionType.STOP_SIGN.value: "stop sign run",
    InfractionType.SCENARIO_TIMEOUT.value: "scenario timeout",
    InfractionType.YIELD_EMERGENCY.value: "failed to yield to an emergency vehicle",
    InfractionType.OUTSIDE_ROUTE_LANES.value: "outside route lanes",
    InfractionType.MIN_SPEED.value: "below the minimum speed",
    InfractionType.ROUTE_DEVIATION.value: "deviated from the route",
    InfractionType.AGENT_BLOCKED.value: "agent blocked",
    InfractionType.ROUTE_TIMEOUT.value: "route timeout",
}


# Kinds that end the route instead of multiplying its score by a factor.
ROUTE_ENDING_KINDS = frozenset({
    InfractionType.ROUTE_DEVIATION.value,
    InfractionType.AGENT_BLOCKED.value,
    InfractionType.ROUTE_TIMEOUT.value,
})


def infraction_label(kind: str) -> str:
    """A short human name of an infraction kind (the kind itself when unknown)."""
    return INFRACTION_LABELS.get(str(getattr(kind, "value", kind)), str(kind))


def success(result: RouteResult) -> bool:
    """Bench2Drive success: status Completed/Perfect and no infraction but minimum speed."""
    if result.status not in SUCCESS_STATUSES:
        return False
    return all(i.kind == InfractionType.MIN_SPEED for i in result.infractions)


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value), as the leaderboard reports."""
    if not values:
        return float("nan"), float("nan")
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def _min_speed_penalty_mode(results: list[RouteResult]) -> str:
    """'on' / 'off' from the recorded min-speed infractions, 'not observed' when there are none."""
    factors = [
        i.penalty for r in results for i in r.infractions if i.kind == InfractionType.MIN_SPEED
    ]
    if not factors:
        return "not observed"
    applied = [f < 1.0 for f in factors]
    if all(applied):
        return "on"
    if not any(applied):
        return "off"
    return "mixed"


def aggregate(
    results: list[RouteResult],
    *,
    n_expected_routes: int | None = None,
    min_speed_penalty: bool | None = None,
) -> dict[str, Any]:
    """Aggregate route results (routes x repetitions) into one JSON-ready dict.

    Returns means and sample standard deviations of driving score, route completion (percent)
    and infraction penalty; ``success_rate_pct`` (Bench2Drive: over all routes, missing ones
    failing); ``infractions_per_km`` by :class:`InfractionType` value, each a count divided by
    ``km_driven = sum(route_km * RC / 100)``. ``outside_route_lanes_km`` is the distance driven
    outside the route lanes (what the leaderboard lists for that key instead of a rate).

    ``n_expected_routes``: how many route runs should exist; missing ones count as DS 0, RC 0
    and failures (Bench2Drive), and are left out of the penalty mean. ``min_speed_penalty``:
    whether DS includes the minimum-speed factor; inferred from the records when None.
    """
    n = len(results)
    n_expected = n if n_expected_routes is None else int(n_expected_routes)
    if n_expected < n:
        raise ValueError(f"n_expected_routes={n_expected_routes} is below the {n} results given")
    if n_expected == 0:
        raise ValueError("aggregate() needs at least one route result or expected route")
    n_missing = n_expected - n

    ds = [r.driving_score for r in results] + [0.0] * n_missing
    rc = [r.route_completion for r in results] + [0.0] * n_missing
    penalty = [r.infraction_penalty for r in results]
    ds_mean, ds_std = _mean_std(ds)
    rc_mean, rc_std = _mean_std(rc)
    p_mean, p_std = _mean_std(penalty)

    km_driven = sum(r.route_length_m / 1000.0 * r.route_completion / 100.0 for r in results)
    km_for_rates = max(km_driven, _MIN_KM_DRIVEN)
    counts = {kind.value: 0 for kind in InfractionType}
    for r in results:
        for infraction in r.infractions:
            counts[infraction.kind.value] += 1
    per_km = {key: count / km_for_rates for key, count in counts.items()}
    outside_km = sum(
        r.outside_lanes_pct / 100.0 * r.route_length_m / 1000.0 * r.route_completion / 100.0
        for r in results
    )
    n_success = sum(1 for r in results if success(r))
    if min_speed_penalty is None:
        min_speed_mode = _min_speed_penalty_mode(results)
    else:
        min_speed_mode = "on" if min_speed_penalty else "off"

    return {
        "protocol": PROTOCOL,
        "min_speed_penalty": min_speed_mode,
        "n_routes": n_expected,
        "n_missing": n_missing,
        "driving_score_mean": ds_mean,
        "driving_score_std": ds_std,
        "route_completion_mean": rc_mean,
        "route_completion_std": rc_std,
        "infraction_penalty_mean": p_mean,
        "infraction_penalty_std": p_std,
        "success_rate_pct": 100.0 * n_success / n_expected,
        "n_success": n_success,
        "km_driven": km_driven,
        "infraction_counts": counts,
        "infractions_per_km": per_km,
        "outside_route_lanes_km": outside_km,
        "statuses": _status_counts(results),
    }


def _status_counts(results: list[RouteResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return dict(sorted(out.items()))
