"""``drivevla demo``: drivevla-tiny (the trained default model shipped in the package) drives
a handful of routes of different families in the embedded simulator, each with a
spoken-style instruction, through the real-time runtime with its safety filter
(``--runtime``), and writes per-route videos (front camera, BEV with the planned trajectory,
instruction and explanation captions, the decided reason beside the shadow expert's, the
running DS and a banner for each infraction) and a report (:mod:`drivevla.benchmarks.report`:
``report.md`` and a self-contained ``report.html``).

The drive is the closed-loop benchmark (:func:`run_closed_loop`) on the ``smoke`` suite, so
the report's numbers are the benchmark's (LB2.0 driving score, route completion, instruction
success, explanation faithfulness). Routes already finished in ``out`` are kept: rerun the
command to resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.benchmarks.report import write_report
from drivevla.benchmarks.report_render import headline

DEFAULT_POLICY = "drivevla-tiny"


def run_demo(out: Path, suite_name: str = "smoke", video: bool = True,
             policy: str = DEFAULT_POLICY, workers: int = 2,
             expert_drive: bool = True, runtime: str = "realtime-safety") -> dict[str, Any]:
    """Drive the suite and write the report; returns the run's summary.

    ``expert_drive``: the report also drives the privileged expert on each route (no
    cameras, a few seconds a route) for its speed profile and path. ``runtime``: the driver,
    as ``eval closed-loop --runtime`` (e.g. ``realtime-safety``: the real-time runner with
    the safety filter)."""
    out = Path(out)
    # the demo's explainer runs a shadow expert anyway: its reason in the videos costs nothing
    summary = run_closed_loop(policy, suite_name, out, workers=workers, video=video,
                              explain_every=10, print_table=False, video_expert_reason=True,
                              runtime=runtime)
    html = write_report(out, summary, expert_drive=expert_drive)
    for r in summary["routes"]:
        print(f"{r['route_id']:<32} DS {r['driving_score']:5.1f}  RC {r['route_completion']:5.1f}"
              f"  {r['status']}")
    print(f"\n{headline(summary)}")
    print(f"report: {out / 'report.md'}, {html}" + (f"  videos: {out / 'videos'}" if video else ""))
    return summary
