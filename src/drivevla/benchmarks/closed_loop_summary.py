"""Scoring and summaries of closed-loop route records (see :mod:`.closed_loop`).

Everything here reads the route files ``closed_loop`` writes, so a finished (or resumed) run
can be re-summarised without driving again.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from drivevla.benchmarks import scoring
from drivevla.benchmarks.instruction_metrics import pooled_instruction_metrics
from drivevla.core.types import Infraction, InfractionType, RouteResult

PROTOCOL = (
    "CARLA Leaderboard 2.0 criteria; success and comfort as Bench2Drive (nuPlan comfort "
    "bounds); LangAuto-style instructions (navigation, notice, misleading) plus speed requests"
)
STATUS_AGENT_CRASHED = "Failed - Agent crashed"
STATUS_AGENT_SETUP = "Failed - Agent couldn't be set up"
STATUS_SIM_CRASHED = "Failed - Simulation crashed"
CRASH_STATUSES = (STATUS_AGENT_CRASHED, STATUS_AGENT_SETUP, STATUS_SIM_CRASHED)


# ---------------------------------------------------------------------------------- records


class _CrashedRouteResult(RouteResult):
    """A route ended by an agent or simulator crash: DS 0 whatever was reached."""

    @property
    def driving_score(self) -> float:
        return 0.0


def result_from_dict(data: dict[str, Any]) -> RouteResult:
    """Rebuild a :class:`RouteResult` from its ``to_dict`` form (crashes score DS 0)."""
    names = {f.name for f in fields(RouteResult)}
    kwargs = {k: v for k, v in data.items() if k in names}
    kwargs["infractions"] = [
        Infraction(
            InfractionType(i["kind"]),
            float(i["time_s"]),
            float(i["x"]),
            float(i["y"]),
            i.get("detail", ""),
            float(i.get("penalty", 1.0)),
        )
        for i in data.get("infractions", [])
    ]
    cls = _CrashedRouteResult if data.get("status") in CRASH_STATUSES else RouteResult
    return cls(**kwargs)


def driving_score_no_min_speed(result: RouteResult) -> float:
    """DS with the minimum-speed factors removed (Bench2Drive's convention)."""
    if isinstance(result, _CrashedRouteResult):
        return 0.0
    penalty = 1.0
    for i in result.infractions:
        if i.kind != InfractionType.MIN_SPEED:
            penalty *= i.penalty
    return max(result.route_completion * penalty, 0.0)


# ---------------------------------------------------------------------------------- summary

UNITS = {
    "driving_score": "percent (0-100)",
    "route_completion": "percent (0-100)",
    "infraction_score": "factor (0-1)",
    "success_rate": "percent of routes",
    "comfort": "percent of 2 s windows within the nuPlan bounds, mean over routes",
    "instruction_success": "fraction of routes",
    "unsafe_refusal_rate": "fraction of misleading events",
    "false_refusal_rate": "fraction of ticks outside misleading events",
    "speed_request_success": "fraction of speed requests",
    "infractions_per_km": "count / km driven (route km x RC)",
    "explanation_faithfulness": "fraction of generated explanations naming the expert's reason",
    "explanation_faithfulness_route_mean": "per-route faithfulness averaged over routes",
    "reason_head_agreement": "fraction of ticks the reason head says the expert's reason",
}


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else (0.0 if values else None)


def _block(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Every metric over a set of route records (a suite, or one family of it)."""
    results = [result_from_dict(r["result"]) for r in records]
    agg = scoring.aggregate(results)
    ds_nms = [driving_score_no_min_speed(r) for r in results]
    comfort = [
        r["metrics"]["comfort"]["comfort"]
        for r in records
        if r["metrics"]["comfort"]["comfort"] is not None
    ]
    by_intent: dict[str, list[bool]] = {}
    for r in records:
        ok = r["metrics"]["instruction_success"]
        if ok is None and r["status"] in CRASH_STATUSES:
            ok = False
        if ok is not None:
            by_intent.setdefault(r["route"]["intent"], []).append(bool(ok))
    flat = [v for vs in by_intent.values() for v in vs]
    pooled = pooled_instruction_metrics([r["metrics"]["instruction"] for r in records])
    expl = [r["metrics"].get("explanations") or {} for r in records]
    n_expl = sum(e.get("n_explained", 0) for e in expl)
    n_ticks = sum(e.get("n_ticks_compared", 0) for e in expl)
    return {
        "n_routes": len(records),
        "driving_score": agg["driving_score_mean"],
        "driving_score_std": agg["driving_score_std"],
        "driving_score_no_min_speed": _mean(ds_nms),
        "driving_score_no_min_speed_std": _std(ds_nms),
        "route_completion": agg["route_completion_mean"],
        "route_completion_std": agg["route_completion_std"],
        "infraction_score": agg["infraction_penalty_mean"],
        "infraction_score_std": agg["infraction_penalty_std"],
        "success_rate": agg["success_rate_pct"],
        "n_success": agg["n_success"],
        "km_driven": agg["km_driven"],
        "infraction_counts": agg["infraction_counts"],
        "infractions_per_km": agg["infractions_per_km"],
        "comfort": _mean(comfort),
        "comfort_n_routes": len(comfort),
        "instruction_success": {
            "overall": _mean([float(v) for v in flat]),
            "per_intent": {k: _mean([float(v) for v in vs]) for k, vs in sorted(by_intent.items())},
            "n_routes": len(flat),
        },
        **pooled,
        "explanation_faithfulness": (
            sum(e.get("n_faithful", 0) for e in expl) / n_expl if n_expl else None
        ),
        "n_explanations": n_expl,
        # the same per route, then averaged over routes (as DS is): a route stuck for
        # thousands of ticks weighs as much as any other, not hundreds of times more
        "explanation_faithfulness_route_mean": _mean(
            [e["n_faithful"] / e["n_explained"] for e in expl if e.get("n_explained")]),
        "reason_confusion": merge_confusions(e.get("reason_confusion") or {} for e in expl),
        "reason_head_agreement": (
            sum(e.get("n_reason_head_agree", 0) for e in expl) / n_ticks if n_ticks else None
        ),
        "statuses": agg["statuses"],
        "leaderboard": agg,
    }


def merge_confusions(tables: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Sum ``{expert reason: {named reason: count}}`` tables (routes -> suite)."""
    out: dict[str, dict[str, int]] = {}
    for table in tables:
        for expert, row in table.items():
            dst = out.setdefault(expert, {})
            for named, n in row.items():
                dst[named] = dst.get(named, 0) + int(n)
    return {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in sorted(out.items())}


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The suite summary from its route records (as written to ``out/routes``)."""
    if not records:
        raise ValueError("summarize() needs at least one route record")
    overall = _block(records)
    families: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        families.setdefault(r["route"]["scenario"], []).append(r)
    per_family = {f: _block(rs) for f, rs in sorted(families.items())}
    for block in per_family.values():
        block.pop("leaderboard")
    failed = [
        {
            "route_id": r["route"]["id"],
            "status": r["status"],
            "error": (r["error"] or {}).get("message"),
            "error_type": (r["error"] or {}).get("type"),
            "phase": (r["error"] or {}).get("phase"),
        }
        for r in records
        if r.get("error") is not None or r["status"] in CRASH_STATUSES
    ]
    routes = [
        {
            "route_id": r["route"]["id"],
            "family": r["route"]["scenario"],
            "intent": r["route"]["intent"],
            "seed": r["route"]["seed"],
            "status": r["status"],
            "driving_score": r["metrics"]["driving_score"],
            "driving_score_no_min_speed": r["metrics"]["driving_score_no_min_speed"],
            "route_completion": r["metrics"]["route_completion"],
            "infraction_score": r["metrics"]["infraction_penalty"],
            "success": r["metrics"]["success"],
            "comfort": r["metrics"]["comfort"]["comfort"],
            "instruction_success": r["metrics"]["instruction_success"],
            "unsafe_refusal_rate": r["metrics"]["instruction"]["unsafe_refusal_rate"],
        }
        for r in records
    ]
    return {
        "protocol": PROTOCOL,
        "protocols": {
            "driving": scoring.PROTOCOL,
            "driving_score_no_min_speed": "Bench2Drive: DS with the minimum-speed factors removed",
            "success": "Bench2Drive: Completed/Perfect and no infraction but minimum speed",
            "comfort": "Bench2Drive comfort, nuPlan bounds, 20-step windows, Savitzky-Golay 7/2",
            "instructions": "LangAuto-style navigation / notice / misleading, plus speed requests",
        },
        "min_speed_penalty": overall["leaderboard"]["min_speed_penalty"],
        "units": UNITS,
        **overall,
        "per_family": per_family,
        "n_failed": len(failed),
        "failed_routes": failed,
        "routes": routes,
    }


def _fmt(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def format_table(summary: dict[str, Any]) -> str:
    """One row per family and the overall row (DS, DS without min speed, RC, IS, ...)."""
    head = (
        f"{'family':<14}{'n':>4}{'DS':>8}{'DS-noMS':>9}{'RC':>8}{'IS':>7}{'succ%':>8}"
        f"{'comfort':>9}{'instr%':>8}{'refuse%':>9}{'falseref%':>11}{'faithful%':>11}"
    )
    rows = [head, "-" * len(head)]

    def row(name: str, b: dict[str, Any]) -> str:
        return (
            f"{name:<14}{b['n_routes']:>4}{_fmt(b['driving_score']):>8}"
            f"{_fmt(b['driving_score_no_min_speed']):>9}{_fmt(b['route_completion']):>8}"
            f"{_fmt(b['infraction_score'], digits=3):>7}{_fmt(b['success_rate']):>8}"
            f"{_fmt(b['comfort']):>9}{_fmt(b['instruction_success']['overall'], 100):>8}"
            f"{_fmt(b['unsafe_refusal_rate'], 100):>9}{_fmt(b['false_refusal_rate'], 100, 2):>11}"
            f"{_fmt(b.get('explanation_faithfulness'), 100):>11}"
        )

    rows += [row(f, b) for f, b in summary["per_family"].items()]
    rows += ["-" * len(head), row("overall", summary)]
    lines = "\n".join(rows)
    lines += (
        f"\npolicy {summary.get('policy')}  suite {summary.get('suite')}  "
        f"failed routes {summary['n_failed']}  "
        f"misleading events {summary['n_misleading_events']}  "
        f"speed requests {summary['n_speed_requests']} "
        f"(success {_fmt(summary['speed_request_success'], 100)}%)  "
        f"min-speed penalty in DS: {summary['min_speed_penalty']}"
    )
    return lines
