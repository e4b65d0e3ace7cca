"""Import a CARLA Leaderboard 2.0 / Bench2Drive results JSON (the evaluator's
``--checkpoint`` file) into drivevla's closed-loop layout, so tables compare across backends.

The file (``leaderboard/utils/statistics_manager.py``)::

    {"_checkpoint": {"progress": [done, total],
                     "global_record": {"scores_mean": {...}, "infractions": {...}, ...},
                     "records": [{"route_id": "RouteScenario_3_rep0", "index": 3,
                                  "status": "Completed" | "Perfect" | "Failed - ...",
                                  "infractions": {"collisions_vehicle": ["<message>", ...],
                                                  ...},
                                  "scores": {"score_route": RC %, "score_penalty": IS,
                                             "score_composed": DS},
                                  "meta": {"route_length": m, "duration_game": s, ...}},
                                 ...]},
     "entry_status": "Finished", "eligible": true, ...}

Bench2Drive's evaluator writes the same layout (its merge tool concatenates the records).
Each record becomes a :class:`RouteResult` (LB 2.0 infraction names are ours): route
completion and penalty are the file's own; each infraction gets its published factor
(outside-lanes and min-speed factors from the percentage in the message; a message without
one keeps factor 1 and is counted in ``source.unparsed_factors``; routes whose file penalty
is not the product of the factors are listed in ``source.penalty_mismatch_routes``).
Locations are read from the message's ``x=.., y=..`` (CARLA frame, converted to our world
frame); the leaderboard records no time, so ``time_s`` is 0. The summary is
:func:`closed_loop_summary.summarize`'s, with comfort and instruction metrics None (not
measured), plus the file's own global record.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from drivevla.benchmarks import scoring
from drivevla.benchmarks.closed_loop_summary import (
    driving_score_no_min_speed,
    result_from_dict,
    summarize,
)
from drivevla.benchmarks.instruction_metrics import route_instruction_metrics
from drivevla.core.errors import InvalidFileError, read_json
from drivevla.core.frames import carla_to_world_xy_yaw
from drivevla.core.jsonio import write_json_atomic
from drivevla.core.paths import safe_child
from drivevla.core.types import Infraction, InfractionType, RouteResult
from drivevla.sim_bridge.embedded.criteria_config import MIN_SPEED_MAX_PENALTY, PENALTY_FACTORS

FORMAT = "CARLA Leaderboard 2.0 / Bench2Drive results JSON (statistics_manager checkpoint)"
_LOCATION = re.compile(r"x=\s*(-?[\d.]+)\s*,\s*y=\s*(-?[\d.]+)")
_PERCENT = re.compile(r"(-?[\d.]+)\s*%")
# "Average speed is 80.0% of the surrounding traffic's one" (some versions drop the "%")
_MIN_SPEED = re.compile(r"is\s+(-?[\d.]+)\s*%?\s+of the surrounding")
_ROUTE_ENDING = (InfractionType.ROUTE_DEVIATION, InfractionType.AGENT_BLOCKED,
                 InfractionType.ROUTE_TIMEOUT)


def _records(data: Any, path: Path) -> list[dict[str, Any]]:
    records = data.get("_checkpoint", {}).get("records") if isinstance(data, dict) else data
    if not isinstance(records, list) or not records:
        raise InvalidFileError(
            path, "no route records: expected a leaderboard results JSON with "
                  "_checkpoint.records (a list of routes), as --checkpoint writes it")
    return records


def _number(path: Path, where: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x):
        raise InvalidFileError(path, f"{where}={value!r} is not a finite number")
    return x


def _infraction(kind: InfractionType, message: str) -> tuple[Infraction, bool]:
    """The infraction of one message, and whether its factor was known."""
    match = _LOCATION.search(message)
    x, y = (0.0, 0.0)
    if match:
        x, y, _ = carla_to_world_xy_yaw(float(match[1]), float(match[2]), 0.0)
    factor, known = 1.0, True
    if kind in PENALTY_FACTORS:
        factor = PENALTY_FACTORS[kind]
    elif kind in (InfractionType.OUTSIDE_ROUTE_LANES, InfractionType.MIN_SPEED):
        pct = (_PERCENT if kind is InfractionType.OUTSIDE_ROUTE_LANES else _MIN_SPEED
               ).search(message)
        known = pct is not None
        if pct is not None and kind is InfractionType.OUTSIDE_ROUTE_LANES:
            factor = 1.0 - float(pct[1]) / 100.0
        elif pct is not None:
            factor = 1.0 - (1.0 - MIN_SPEED_MAX_PENALTY) * (1.0 - float(pct[1]) / 100.0)
    return Infraction(kind, 0.0, x, y, message, min(max(factor, 0.0), 1.0)), known


def _drop_unapplied_min_speed(infractions: list[Infraction], penalty: float
                              ) -> list[Infraction]:
    """Min-speed infractions with factor 1 where the file's penalty left them out (Bench2Drive
    records them but does not apply them): the product matches only without them."""
    def product(items: list[Infraction]) -> float:
        return math.prod(i.penalty for i in items)

    others = [i for i in infractions if i.kind is not InfractionType.MIN_SPEED]
    if abs(product(infractions) - penalty) > 1e-3 and abs(product(others) - penalty) <= 1e-3:
        return [i if i.kind is not InfractionType.MIN_SPEED else Infraction(
            i.kind, i.time_s, i.x, i.y, i.detail, 1.0) for i in infractions]
    return infractions


def route_result_from_record(record: dict[str, Any], path: Path, index: int
                             ) -> tuple[RouteResult, int]:
    """One leaderboard route record as a :class:`RouteResult` (and how many infraction
    factors could not be read from their messages)."""
    where = f"_checkpoint.records[{index}]"
    scores, meta = record.get("scores") or {}, record.get("meta") or {}
    infractions, unparsed, outside_pct = [], 0, 0.0
    for key, messages in (record.get("infractions") or {}).items():
        try:
            kind = InfractionType(key)
        except ValueError:
            raise InvalidFileError(path, f"{where}.infractions has unknown kind {key!r}; "
                                         f"known: {[k.value for k in InfractionType]}") from None
        for message in messages or []:
            infraction, known = _infraction(kind, str(message))
            infractions.append(infraction)
            unparsed += not known
            if kind is InfractionType.OUTSIDE_ROUTE_LANES:
                outside_pct += (1.0 - infraction.penalty) * 100.0
    penalty = _number(path, f"{where}.scores.score_penalty", scores.get("score_penalty"))
    infractions = _drop_unapplied_min_speed(infractions, penalty)
    rc = _number(path, f"{where}.scores.score_route", scores.get("score_route"))
    length = _number(path, f"{where}.meta.route_length", meta.get("route_length", 0.0))
    result = RouteResult(
        route_id=str(record.get("route_id", f"route_{index}")),
        scenario=str(record.get("scenario_name") or record.get("town_name") or "leaderboard"),
        intent="route", seed=int(record.get("index", index)),
        route_length_m=length, route_completion=rc,
        infraction_penalty=penalty,
        infractions=infractions, status=str(record.get("status", "Started")),
        duration_s=_number(path, f"{where}.meta.duration_game", meta.get("duration_game", 0.0)),
        driven_distance_m=length * rc / 100.0, outside_lanes_pct=outside_pct,
    )
    return result, unparsed


def _route_record(result: RouteResult, policy: str | None, source: str) -> dict[str, Any]:
    result_dict = result.to_dict()
    rr = result_from_dict(result_dict)
    return {
        "protocol": FORMAT, "policy": policy, "suite": source,
        "route": {"id": result.route_id, "scenario": result.scenario, "intent": result.intent,
                  "seed": result.seed},
        "status": result.status, "result": result_dict, "error": None,
        "metrics": {
            "driving_score": rr.driving_score,
            "driving_score_no_min_speed": driving_score_no_min_speed(rr),
            "route_completion": rr.route_completion,
            "infraction_penalty": rr.infraction_penalty,
            "success": scoring.success(rr),
            "comfort": {"comfort": None},  # the leaderboard records no trajectory
            "instruction_success": None,
            "instruction": route_instruction_metrics([], [], [], [], [], [], []),
        },
    }


def import_leaderboard(results_json: str | Path, out: str | Path,
                       policy: str | None = None) -> dict[str, Any]:
    """Write ``out/routes/<route_id>.json`` and ``out/summary.json`` from a leaderboard /
    Bench2Drive results JSON; returns the summary."""
    path, out = Path(results_json), Path(out)
    data = read_json(path)
    records, unparsed, mismatched = [], 0, []
    for i, record in enumerate(_records(data, path)):
        if not isinstance(record, dict):
            raise InvalidFileError(path, f"_checkpoint.records[{i}] is not an object")
        result, n = route_result_from_record(record, path, i)
        unparsed += n
        if abs(math.prod(x.penalty for x in result.infractions)
               - result.infraction_penalty) > 1e-3:
            mismatched.append(result.route_id)
        records.append(_route_record(result, policy, path.name))
    for record in records:
        write_json_atomic(safe_child(out / "routes", record["route"]["id"], ".json",
                                     what="route id"), record)
    checkpoint = data.get("_checkpoint", {}) if isinstance(data, dict) else {}
    summary = {
        **summarize(records), "policy": policy, "suite": path.name,
        "source": {
            "file": str(path), "format": FORMAT, "unparsed_factors": unparsed,
            # routes whose penalty is not the product of the factors read from the messages
            # (a message format we do not know, or another penalty table)
            "penalty_mismatch_routes": mismatched,
            "progress": checkpoint.get("progress"),
            "entry_status": data.get("entry_status") if isinstance(data, dict) else None,
            "leaderboard_global_record": checkpoint.get("global_record"),
        },
    }
    write_json_atomic(out / "summary.json", summary)
    return summary
