"""The summary of an open-loop run (``summary.json``) from its per-sample records, and the
table the command prints: baselines first, both conventions side by side, and what the table
can and cannot show."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from drivevla.benchmarks.open_loop_metrics import (
    CONVENTIONS,
    EGO_LENGTH_M,
    EGO_WIDTH_M,
    FUTURE_STEPS,
    at_horizons,
    collision_table,
    l2_table,
    masked_collisions,
    per_command,
)

PROTOCOL = "drivevla-open-loop-v1"
COLLISION_BOXES = {"stp3": "vehicles and pedestrians", "uniad": "vehicles"}
CAVEAT = (
    "What this table can show: how far each plan lies from the one logged future, and how "
    "often its ego box would overlap an annotated box that moves as logged. What it cannot "
    "show: how a planner drives (open loop: no reaction to its own errors, the other agents "
    "do not react to it). The baselines read no camera: a policy row no better than the "
    "ego-status MLP (without it, constant velocity + yaw rate) has shown nothing ego status "
    "and the command alone do not give. On a drivevla "
    "export the scenes are simulated (sim domain: an expert's smooth driving, few agents), "
    "so its numbers say nothing about real nuScenes and compare with no published row."
)


def _steps(records: list[dict], planner: str, *keys: str) -> np.ndarray:
    out = []
    for r in records:
        value: Any = r["planners"][planner]
        for key in keys:
            value = value[key]
        out.append(value)
    return np.asarray(out, np.float64).reshape(-1, FUTURE_STEPS)


def _gt(records: list[dict], boxes: str) -> np.ndarray:
    return np.asarray([r["gt_collision"][boxes] for r in records], bool).reshape(-1, FUTURE_STEPS)


def planner_row(records: list[dict], planner: dict[str, str]) -> dict[str, Any]:
    """One table row: L2 (m) and collision rate (0..1) in both conventions, per-command
    breakdowns, and the mean seconds per sample of the planner."""
    name = planner["name"]
    commands = [r["command"] for r in records]
    l2 = _steps(records, name, "l2")
    col_all = masked_collisions(_steps(records, name, "collision", "all"), _gt(records, "all"))
    col_veh = masked_collisions(_steps(records, name, "collision", "vehicle"),
                                _gt(records, "vehicle"))
    times = [r["planners"][name]["time_s"] for r in records]
    return {
        **planner,
        "n": len(records),
        "l2_m": l2_table(l2),
        "collision_rate": collision_table(col_all, np.zeros_like(col_all), col_veh,
                                          np.zeros_like(col_veh)),
        "per_command": {
            "l2_m": {conv: per_command(commands, l2, conv) for conv in CONVENTIONS},
            "collision_rate": {"stp3": per_command(commands, col_all, "stp3"),
                               "uniad": per_command(commands, col_veh, "uniad")},
        },
        "seconds_per_sample": float(np.mean(times)) if times else math.nan,
        **_offroad(records, name, commands),
    }


def _offroad(records: list[dict], name: str, commands: list[str]) -> dict[str, Any]:
    """The off-drivable-area rate in both conventions (steps where the log is off the
    area too not counted), when every record has a map; else nothing."""
    if not records or not all("gt_off_road" in r for r in records):
        return {}
    gt = np.asarray([r["gt_off_road"] for r in records], bool).reshape(-1, FUTURE_STEPS)
    off = masked_collisions(_steps(records, name, "off_road"), gt)
    return {"off_road_rate": {conv: at_horizons(off, conv) for conv in CONVENTIONS},
            "per_command_off_road_rate": {conv: per_command(commands, off, conv)
                                          for conv in CONVENTIONS}}


def summarize(records: list[dict], planners: list[dict[str, str]], n_keyframes: int,
              n_incomplete: int, ego_box_forward_offset_m: float) -> dict[str, Any]:
    """The run's summary from its records (scored and skipped) and its planners (dicts with
    ``name``, ``kind`` ``"baseline"``/``"policy"`` and ``inputs``)."""
    scored = [r for r in records if "excluded" not in r]
    skipped = [{"sample_token": r["sample_token"], "reason": r["excluded"],
                "detail": r.get("detail", "")} for r in records if "excluded" in r]
    excluded = Counter({"incomplete_future": n_incomplete})
    excluded.update(s["reason"] for s in skipped)
    return {
        "protocol": PROTOCOL,
        "conventions": CONVENTIONS,
        "collision_boxes": COLLISION_BOXES,
        "ego_box": {"length_m": EGO_LENGTH_M, "width_m": EGO_WIDTH_M,
                    "forward_offset_m": ego_box_forward_offset_m},
        "units": {"l2_m": "metres", "collision_rate": "fraction of samples, 0..1",
                  "off_road_rate": "fraction of samples, 0..1"},
        "n_keyframes": n_keyframes,
        "n_scored": len(scored),
        "excluded": {k: v for k, v in sorted(excluded.items()) if v},
        "skipped": skipped,
        "samples_where_log_collides": int(sum(bool(np.any(r["gt_collision"]["all"]))
                                              for r in scored)),
        "samples_where_log_is_off_road": (int(sum(bool(np.any(r["gt_off_road"]))
                                                  for r in scored))
                                          if scored and all("gt_off_road" in r for r in scored)
                                          else None),
        "commands": dict(sorted(Counter(r["command"] for r in scored).items())),
        "rows": [planner_row(scored, p) for p in planners],
        "caveat": CAVEAT,
    }


def _cells(values: dict[str, float], scale: float = 1.0, digits: int = 2) -> list[str]:
    out = []
    for key in ("1s", "2s", "3s", "avg"):
        v = values.get(key)
        out.append("n/a" if v is None or not math.isfinite(v) else f"{v * scale:.{digits}f}")
    return out


def _block(title: str, header: tuple[str, str], rows: list[dict], key: str, scale: float,
           digits: int) -> list[str]:
    lines = [title, f"{'planner':<30} {'inputs':<34} | {header[0]:<27} | {header[1]}",
             f"{'':<30} {'':<34} | {'1s':>6}{'2s':>7}{'3s':>7}{'avg':>7} | "
             f"{'1s':>6}{'2s':>7}{'3s':>7}{'avg':>7}"]
    for kind, label in (("baseline", "baselines (no camera)"), ("policy", "policy")):
        group = [r for r in rows if r["kind"] == kind]
        if group:
            lines.append(f"-- {label}")
        for r in group:
            a, b = _cells(r[key]["stp3"], scale, digits), _cells(r[key]["uniad"], scale, digits)
            lines.append(f"{r['name'][:30]:<30} {r['inputs'][:34]:<34} | "
                         + "".join(f"{c:>{w}}" for c, w in zip(a, (6, 7, 7, 7), strict=True))
                         + " | " + "".join(f"{c:>{w}}" for c, w in
                                           zip(b, (6, 7, 7, 7), strict=True)))
    return lines


def format_table(summary: dict[str, Any]) -> str:
    """The printed table: L2 and collision in both conventions, baselines above the policy,
    the per-command L2 averages, what was excluded, and the caveat."""
    rows, box = summary["rows"], summary["ego_box"]
    excluded = ", ".join(f"{k} {v}" for k, v in summary["excluded"].items()) or "none"
    lines = [f"open loop: {summary['n_scored']} of {summary['n_keyframes']} keyframes scored "
             f"(excluded: {excluded}); commands {summary['commands']}"]
    lines += _block("L2 (m)", ("ST-P3/VAD: mean up to T", "UniAD: value at T"), rows,
                    "l2_m", 1.0, 2)
    lines += _block("collision rate (%)", ("ST-P3/VAD: all boxes, mean to T",
                                           "UniAD: vehicles, at T"), rows,
                    "collision_rate", 100.0, 1)
    if rows and all("off_road_rate" in r for r in rows):
        lines += _block("off drivable area (%)", ("ST-P3/VAD: mean to T", "UniAD: at T"),
                        rows, "off_road_rate", 100.0, 1)
    else:
        lines.append("off drivable area: not scored (no drivable-area map for these scenes)")
    lines.append("L2 avg (m) by command, ST-P3/VAD | UniAD:")
    for r in rows:
        cells = []
        for command, v in r["per_command"]["l2_m"]["stp3"].items():
            u = r["per_command"]["l2_m"]["uniad"][command]
            cells.append(f"{command} (n={v['n']}) {_cells(v)[3]} | {_cells(u)[3]}")
        lines.append(f"  {r['name']}: " + ("; ".join(cells) or "no samples"))
    lines.append(f"ego box {box['length_m']} m x {box['width_m']} m, centre "
                 f"{box['forward_offset_m']} m ahead of the ego pose; the logged future "
                 f"itself collides in {summary['samples_where_log_collides']} sample(s) "
                 "(those steps are not counted)")
    if summary["skipped"]:
        lines.append(f"skipped (--skip-bad): {len(summary['skipped'])} sample(s): "
                     + "; ".join(f"{s['sample_token']} {s['reason']}"
                                 for s in summary["skipped"][:10])
                     + (" ..." if len(summary["skipped"]) > 10 else ""))
    lines += [f"note: {note}" for note in summary.get("notes", [])]
    lines.append(summary["caveat"])
    return "\n".join(lines)
