"""Every fault x severity, with and without the runtime's protections, in one run.

    drivevla bench robustness --policy drivevla-tiny --suite standard --out runs/robust
                              [--faults policy-latency,camera-drop] [--severities high]
                              [--protections on,off] [--workers 2]

Each row is a closed-loop run (:func:`~drivevla.benchmarks.closed_loop.run_closed_loop`) of
the policy on the suite with one fault injected (:class:`~drivevla.runtime.fault_spec.
FaultSpec`, seed ``--fault-seed``): protections **on** drive through the real-time runner
with the safety filter (``--runtime realtime-safety``: deadline watchdog, hold / stop
fallback, feasibility limits, AEB from the forward radar); **off** drive the plain agent,
where a late policy blocks the loop while the world moves on
(:class:`~drivevla.runtime.blocking.BlockingAgent`), an exception or a NaN plan ends the
route as an agent crash. The ``none`` rows (no fault) are each side's reference: every row's
DS change is against the ``none`` row with the same protections.

A row's run folder is ``OUT/rows/{row}``; a rerun into the same ``OUT`` resumes every row
route by route, and ``OUT/robustness.json`` is rewritten after each row, so an interrupted
bench loses at most the routes in flight. Bench2Drive's robustness study and the CARLA
leaderboard's agent watchdog are the anchors (docs/runtime.md). The cost is one suite run per
row: ``standard`` is ~9 min per row on 2 workers; the full grid has 38 rows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.core.errors import read_json
from drivevla.core.jsonio import write_json_atomic
from drivevla.core.provenance import provenance
from drivevla.runtime.fault_spec import FaultSpec

BENCHMARK = "robustness"
RESULT_FILE = "robustness.json"
PROTECTIONS = {"on": "realtime-safety", "off": "none"}
SEVERITIES = ("low", "high")

# fault -> severity -> its FaultSpec text (the fault seed is added); the "high" policy
# faults are the issue's 30 % of ticks, the spikes 300 ms
FAULTS: dict[str, dict[str, str]] = {
    "policy-exception": {"low": "policy.exception_share=0.1",
                         "high": "policy.exception_share=0.3"},
    "policy-nan": {"low": "policy.nan_share=0.1", "high": "policy.nan_share=0.3"},
    "policy-latency": {"low": "policy.latency_share=0.1,policy.latency_ms=300",
                       "high": "policy.latency_share=0.3,policy.latency_ms=300"},
    "camera-drop": {"low": "sensors.drop_share=0.1", "high": "sensors.drop_share=0.3"},
    "camera-stale": {"low": "sensors.stale_share=0.1", "high": "sensors.stale_share=0.3"},
    "camera-black": {"low": "sensors.black_share=0.1", "high": "sensors.black_share=0.3"},
    "camera-noise": {"low": "sensors.noise_share=1,sensors.noise_std=10",
                     "high": "sensors.noise_share=1,sensors.noise_std=25"},
    "camera-latency": {"low": "sensors.latency_ms=100", "high": "sensors.latency_ms=300"},
    "radar-dropout": {"low": "sensors.radar_dropout_share=0.1",
                      "high": "sensors.radar_dropout_share=0.3"},
}
COLLISIONS = ("collisions_vehicle", "collisions_pedestrian", "collisions_layout")


def check_names(kind: str, names: list[str]) -> list[str]:
    """``names`` when each is a known ``kind`` (``fault``, ``severity`` or ``protections``)
    and there is at least one; else ValueError naming the unknown ones and the known."""
    known = {"fault": ("none", *FAULTS), "severity": SEVERITIES,
             "protections": tuple(PROTECTIONS)}[kind]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise ValueError(f"unknown {kind} {bad or names}; use {', '.join(known)}")
    return names


def plan_rows(faults: list[str] | None = None, severities: list[str] | None = None,
              protections: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows to run, ``none`` first: ``{"row", "fault", "severity", "protections",
    "spec"}``. Unknown names are refused naming them."""
    faults = check_names("fault", list(FAULTS) if faults is None else list(faults))
    severities = check_names("severity",
                             list(SEVERITIES) if severities is None else list(severities))
    protections = check_names("protections", list(PROTECTIONS) if protections is None
                              else list(protections))
    rows = []
    for side in protections:
        rows.append({"row": f"none-{side}", "fault": "none", "severity": None,
                     "protections": side, "spec": ""})
        for fault in (f for f in faults if f != "none"):
            for severity in severities:
                rows.append({"row": f"{fault}-{severity}-{side}", "fault": fault,
                             "severity": severity, "protections": side,
                             "spec": FAULTS[fault][severity]})
    return rows


def row_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """What the table shows of one row's closed-loop summary."""
    km = float(summary.get("km_driven") or 0.0)
    counts = summary.get("infraction_counts") or {}
    collisions = sum(int(counts.get(k, 0)) for k in COLLISIONS)
    vp = int(counts.get("collisions_vehicle", 0)) + int(counts.get("collisions_pedestrian", 0))
    runtime = summary.get("runtime") or {}
    false_aeb = runtime.get("aeb_false_activations")
    injected = (summary.get("faults") or {}).get("injected") or {}
    return {
        "driving_score": summary["driving_score"],
        "driving_score_no_min_speed": summary["driving_score_no_min_speed"],
        "route_completion": summary["route_completion"],
        "km_driven": km,
        "collisions": collisions,
        "collisions_vehicle_pedestrian": vp,
        "collisions_per_km": collisions / km if km else None,
        "agent_crashed_routes": int((summary.get("statuses") or {}).get(
            "Failed - Agent crashed", 0)),
        "fallback_entries": runtime.get("fallback_entries"),
        "fallback_share": runtime.get("fallback_share"),
        "late_ticks": runtime.get("late_ticks"),
        "aeb_activations": runtime.get("aeb_activations"),
        "aeb_false_activations": false_aeb,
        "aeb_false_per_10km": (10.0 * false_aeb / km) if km and false_aeb is not None else None,
        "blocked_ticks": injected.get("blocked_ticks"),
        "faults_injected": injected,
        "ticks": runtime.get("ticks") or None,
    }


def run_robustness(policy: str, suite: str | Path, out: Path, *, workers: int = 2,
                   faults: list[str] | None = None, severities: list[str] | None = None,
                   protections: list[str] | None = None, fault_seed: int = 0,
                   max_steps: int | None = None, clock: str = "simulated",
                   progress: bool = True) -> dict[str, Any]:
    """Run the planned rows (see the module docstring); returns the result also written to
    ``out/robustness.json``. ``clock="wall"`` runs them in real time (injected latency
    sleeps; the runner's late ticks are measured, not zero by construction)."""
    out = Path(out)
    rows = plan_rows(faults, severities, protections)
    t0 = time.perf_counter()
    config = {"policy": policy, "suite": str(suite), "workers": workers,
              "fault_seed": fault_seed, "max_steps": max_steps, "clock": clock,
              "protections": PROTECTIONS, "faults": FAULTS}
    kept = _earlier_rows(out, config, {r["row"] for r in rows})
    result: dict[str, Any] = {"benchmark": BENCHMARK, "config": config, "rows": [],
                              "provenance": provenance()}
    done: list[dict[str, Any]] = []
    for k, row in enumerate(rows, 1):
        spec = FaultSpec.parse(f"{row['spec']},seed={fault_seed}")  # empty items are skipped
        if progress:
            print(f"[{k}/{len(rows)}] {row['row']}: {row['spec'] or 'no fault'}", flush=True)
        summary = run_closed_loop(policy, suite, out / "rows" / row["row"], workers=workers,
                                  max_steps=max_steps, runtime=PROTECTIONS[row["protections"]],
                                  faults=spec, clock=clock, progress=progress,
                                  print_table=False)
        done.append({**row, **row_metrics(summary)})
        result["rows"] = _ordered(kept + done)
        _add_deltas(result["rows"])
        result["wall_time_s"] = time.perf_counter() - t0
        write_json_atomic(out / RESULT_FILE, result)
    return result


def _earlier_rows(out: Path, config: dict[str, Any], planned: set[str]) -> list[dict[str, Any]]:
    """The rows an earlier run of this bench wrote into ``out`` that this run does not plan
    (a grid run in parts keeps them all); refused if it was another policy, suite, seed or
    clock."""
    path = out / RESULT_FILE
    if not path.is_file():
        return []
    old = read_json(path)
    keys = ("policy", "suite", "fault_seed", "max_steps", "clock")
    mismatch = [k for k in keys if old["config"].get(k, "simulated" if k == "clock" else None)
                != config[k]]
    if mismatch:
        raise ValueError(f"{path} holds rows of another {', '.join(mismatch)} "
                         f"({ {k: old['config'].get(k) for k in mismatch} }); use another --out")
    return [r for r in old["rows"] if r["row"] not in planned]


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the grid's order: protections on first, the no-fault row, then by fault and
    severity."""
    faults = ["none", *FAULTS]
    sides = list(PROTECTIONS)
    return sorted(rows, key=lambda r: (sides.index(r["protections"]), faults.index(r["fault"]),
                                       SEVERITIES.index(r["severity"]) if r["severity"] else -1))


def _add_deltas(rows: list[dict[str, Any]]) -> None:
    """Each row's DS change against the no-fault row with the same protections."""
    reference = {r["protections"]: r["driving_score"] for r in rows if r["fault"] == "none"}
    for r in rows:
        ref = reference.get(r["protections"])
        r["delta_driving_score"] = None if ref is None else r["driving_score"] - ref


def format_table(result: dict[str, Any]) -> str:
    """One line per row: DS and its change, collisions per km, crashes, fallback, AEB."""
    cfg = result["config"]

    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [f"policy {cfg['policy']} on {cfg['suite']}, fault seed {cfg['fault_seed']}, "
             f"{cfg.get('clock', 'simulated')} clock; protections on = realtime-safety runtime, "
             "off = plain agent",
             f"{'row':<28}{'DS':>6}{'dDS':>7}{'coll/km':>8}{'V+P':>5}{'crash':>6}"
             f"{'fb in':>6}{'fb %':>6}{'late':>5}{'AEB':>5}{'false':>6}{'/10km':>6}"]
    for r in result["rows"]:
        share = r["fallback_share"]
        lines.append(
            f"{r['row']:<28}{r['driving_score']:>6.1f}{num(r['delta_driving_score'], '+.1f'):>7}"
            f"{num(r['collisions_per_km'], '.2f'):>8}{r['collisions_vehicle_pedestrian']:>5}"
            f"{r['agent_crashed_routes']:>6}{num(r['fallback_entries'], 'd'):>6}"
            f"{num(None if share is None else 100 * share, '.1f'):>6}"
            f"{num(r['late_ticks'], 'd'):>5}{num(r['aeb_activations'], 'd'):>5}"
            f"{num(r['aeb_false_activations'], 'd'):>6}{num(r['aeb_false_per_10km'], '.2f'):>6}")
    return "\n".join(lines)
