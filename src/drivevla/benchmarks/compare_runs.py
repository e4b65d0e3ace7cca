"""Two closed-loop runs of the same suite side by side, route by route: status, DS, and for
every route where the two drives differ, the first tick where they part and how far apart they
were there (closed loop amplifies a 1e-6 difference in a plan into a different route; this
shows whether that is what happened).

The drives are the route records' ``drive`` traces: the ego path (one point per tick, m) and
the policy's planned speed per tick (m/s). Two drives *part* at the first tick where the ego
positions differ by more than ``tol_m`` or the planned speeds by more than ``tol_mps``. The
traces hold positions to 1 cm and speeds to 1 mm/s: smaller tolerances mean "any recorded
difference".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.errors import DriveVLAError, read_json


class RunComparisonError(DriveVLAError, ValueError):
    """Two run folders that cannot be compared (missing routes, other suites)."""


def _routes(run: Path) -> dict[str, dict[str, Any]]:
    folder = Path(run) / "routes"
    if not folder.is_dir():
        raise RunComparisonError(f"{run}: no routes/ folder: not a closed-loop run folder")
    records = {}
    for file in sorted(folder.glob("*.json")):
        record = read_json(file)
        records[str(record["route"]["id"])] = record
    if not records:
        raise RunComparisonError(f"{folder}: no route files")
    return records


def first_parting(a: dict[str, Any], b: dict[str, Any], tol_m: float = 0.01,
                  tol_mps: float = 0.01) -> dict[str, Any] | None:
    """Where drive traces ``a`` and ``b`` first part (tick, time, position and planned-speed
    differences there and the largest planned-speed difference before it), or ``None`` when
    they never do over their common length."""
    pa, pb = np.asarray(a["path_xy"], float), np.asarray(b["path_xy"], float)
    sa, sb = np.asarray(a["planned_speed_mps"], float), np.asarray(b["planned_speed_mps"], float)
    n_path, n_speed = min(len(pa), len(pb)), min(len(sa), len(sb))
    dpos = np.linalg.norm(pa[:n_path] - pb[:n_path], axis=1) if n_path else np.zeros(0)
    dspeed = np.abs(sa[:n_speed] - sb[:n_speed])
    n = max(n_path, n_speed)
    pos = np.pad(dpos, (0, n - n_path))
    spd = np.pad(dspeed, (0, n - n_speed))
    parted = np.flatnonzero((pos > tol_m) | (spd > tol_mps))
    if parted.size == 0:
        return None
    tick = int(parted[0])
    times = a.get("time_s") or []
    return {
        "tick": tick,
        "time_s": float(times[tick]) if tick < len(times) else None,
        "position_diff_m": float(pos[tick]),
        "planned_speed_diff_mps": float(spd[tick]),
        "max_planned_speed_diff_before_mps": float(spd[:tick].max()) if tick else 0.0,
    }


def compare_runs(run_a: Path | str, run_b: Path | str, *, tol_m: float = 0.01,
                 tol_mps: float = 0.01) -> dict[str, Any]:
    """Per route of both runs: statuses, DS and where the drives part; and the totals."""
    a, b = _routes(Path(run_a)), _routes(Path(run_b))
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise RunComparisonError(f"{run_a} and {run_b} hold different routes, e.g. {only[:5]}")
    rows = []
    for rid in sorted(a):
        ra, rb = a[rid], b[rid]
        da, db = ra.get("drive"), rb.get("drive")
        parting = first_parting(da, db, tol_m, tol_mps) if da and db else None
        rows.append({
            "route": rid, "status_a": ra["status"], "status_b": rb["status"],
            "ds_a": ra["metrics"]["driving_score"], "ds_b": rb["metrics"]["driving_score"],
            "has_drive": bool(da and db), "parting": parting,
        })
    ds_a = float(np.mean([r["ds_a"] for r in rows]))
    ds_b = float(np.mean([r["ds_b"] for r in rows]))
    return {
        "run_a": str(run_a), "run_b": str(run_b), "tol_m": tol_m, "tol_mps": tol_mps,
        "routes": len(rows), "ds_a": ds_a, "ds_b": ds_b,
        "same_status": sum(r["status_a"] == r["status_b"] for r in rows),
        "never_parted": sum(r["has_drive"] and r["parting"] is None for r in rows),
        "rows": rows,
    }


def format_comparison(result: dict[str, Any], all_routes: bool = False) -> str:
    """The totals, then one line per route whose status differs (every route with
    ``all_routes``), with the first tick where its drives part."""
    n = result["routes"]
    lines = [f"A {result['run_a']}: DS {result['ds_a']:.1f}   B {result['run_b']}: DS "
             f"{result['ds_b']:.1f}   same status {result['same_status']}/{n} "
             f"({100 * result['same_status'] / n:.0f} %)   drives never parted "
             f"{result['never_parted']}/{n}",
             f"{'route':<34}{'status A':<40}{'status B':<40}{'DS A':>7}{'DS B':>7}"
             f"{'parts at tick':>15}{'dpos m':>9}{'dv m/s':>9}{'dv before':>11}"]
    for r in result["rows"]:
        if not all_routes and r["status_a"] == r["status_b"]:
            continue
        p = r["parting"]
        where = ("never" if p is None else str(p["tick"])) if r["has_drive"] else "no trace"
        sizes = (f"{p['position_diff_m']:>9.3g}{p['planned_speed_diff_mps']:>9.3g}"
                 f"{p['max_planned_speed_diff_before_mps']:>11.3g}") if p else ""
        lines.append(f"{r['route']:<34}{r['status_a']:<40}{r['status_b']:<40}"
                     f"{r['ds_a']:>7.1f}{r['ds_b']:>7.1f}{where:>15}{sizes}")
    return "\n".join(lines)


def write_comparison(result: dict[str, Any], out: Path | str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1), encoding="utf-8")
