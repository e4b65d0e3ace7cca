"""``drivevla demo``: drive a handful of routes of different families, each with its
spoken-style instruction, and write videos and a short report.

Until the learned model ships, the driver is the rule-based route follower (it does not
yield at junctions, so some routes show infractions; that is what the scores say).
Routes already finished in ``out`` are kept and not driven again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from drivevla.benchmarks.drive import drive_route, rule_based_driver
from drivevla.benchmarks.provenance import provenance
from drivevla.sim_bridge.embedded.scenarios import DEFAULT_INSTRUCTIONS
from drivevla.sim_bridge.embedded.suites import load_suite

logger = logging.getLogger(__name__)


def _table(rows: list[dict[str, Any]]) -> str:
    head = "| route | instruction | DS | RC % | penalty | status |\n|---|---|---:|---:|---:|---|"
    body = [
        f"| {r['route']['id']} | {r['instruction']} | {r['result']['driving_score']:.1f} | "
        f"{r['result']['route_completion']:.1f} | {r['result']['infraction_penalty']:.3f} | "
        f"{r['result']['status']} |"
        for r in rows
    ]
    return "\n".join([head, *body])


def run_demo(out: Path, suite_name: str = "smoke", video: bool = True) -> dict[str, Any]:
    suite = load_suite(suite_name)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for spec in tqdm(suite.routes, desc="demo routes", unit="route"):
        done = out / f"{spec.route_id}.json"
        if done.exists():
            rec = json.loads(done.read_text(encoding="utf-8"))
        else:
            rec = drive_route(spec, rule_based_driver(), out, video=video)
        rec["instruction"] = spec.instruction or DEFAULT_INSTRUCTIONS[spec.intent]
        records.append(rec)
    ds = [r["result"]["driving_score"] for r in records]
    rc = [r["result"]["route_completion"] for r in records]
    report = {
        "suite": suite.name,
        "policy": "rule-based route follower (scripted; the learned model replaces it)",
        "driving_score_mean": float(np.mean(ds)),
        "route_completion_mean": float(np.mean(rc)),
        "routes": [
            {"id": r["route"]["id"], "instruction": r["instruction"], **r["result"]}
            for r in records
        ],
        "seed": [r["seed"] for r in records],
        "config": records[0]["config"] if records else {},
        **provenance(),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    md = (
        f"# drivevla demo: suite `{suite.name}`\n\nDriver: {report['policy']}.\n\n"
        f"{_table(records)}\n\nMean driving score {report['driving_score_mean']:.1f}, "
        f"mean route completion {report['route_completion_mean']:.1f} %.\n"
    )
    (out / "report.md").write_text(md, encoding="utf-8")
    print(_table(records))
    print(
        f"\nmean DS {report['driving_score_mean']:.1f}  mean RC "
        f"{report['route_completion_mean']:.1f}%  -> {out}/report.md"
        + ("  (videos: *.mp4)" if video else "")
    )
    return report
