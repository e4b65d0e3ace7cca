"""``drivevla demo``: drivevla-tiny (the trained default model shipped in the package) drives
a handful of routes of different families in the embedded simulator, each with a
spoken-style instruction, and writes per-route videos (front camera, BEV with the planned
trajectory, instruction and explanation captions) and a short report with the scores.

The drive is the closed-loop benchmark (:func:`run_closed_loop`) on the ``smoke`` suite, so
the report's numbers are the benchmark's (LB2.0 driving score, route completion, instruction
success, explanation faithfulness). Routes already finished in ``out`` are kept: rerun the
command to resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.core.paths import safe_child

DEFAULT_POLICY = "drivevla-tiny"


def _fmt(value: float | None, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.1f}"


def _route_rows(out: Path, summary: dict[str, Any]) -> list[str]:
    rows = ["| route | instruction | DS | RC % | status | explanation (sample) |",
            "|---|---|---:|---:|---|---|"]
    for r in summary["routes"]:
        path = safe_child(out / "routes", r["route_id"], ".json", what="route id")
        rec = json.loads(path.read_text(encoding="utf-8"))
        samples = rec["metrics"].get("explanations", {}).get("samples") or [{}]
        text = samples[len(samples) // 2].get("text") or "-"
        rows.append(
            f"| {r['route_id']} | {rec.get('navigation_instruction') or '-'} | "
            f"{r['driving_score']:.1f} | {r['route_completion']:.1f} | {r['status']} | "
            f"{text} |"
        )
    return rows


def run_demo(out: Path, suite_name: str = "smoke", video: bool = True,
             policy: str = DEFAULT_POLICY, workers: int = 2) -> dict[str, Any]:
    out = Path(out)
    summary = run_closed_loop(policy, suite_name, out, workers=workers, video=video,
                              explain_every=10, print_table=False)
    md = [
        f"# drivevla demo: `{policy}` on suite `{summary['suite']}`",
        "",
        *_route_rows(out, summary),
        "",
        f"Driving score {_fmt(summary['driving_score'])} (LB2.0; "
        f"{_fmt(summary['driving_score_no_min_speed'])} without the minimum-speed factor), "
        f"route completion {_fmt(summary['route_completion'])} %, instruction success "
        f"{_fmt(summary['instruction_success']['overall'], 100)} %, explanation "
        f"faithfulness {_fmt(summary['explanation_faithfulness'], 100)} % "
        f"({summary['n_explanations']} explanations).",
        "",
        "Videos: `videos/<route>.mp4`. Scores per route: `routes/<route>.json`; everything, "
        "with config, seeds, versions and hardware: `summary.json`.",
    ]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md[2:-2]))
    print(f"\nreport: {out / 'report.md'}" + (f"  videos: {out / 'videos'}" if video else ""))
    return summary
