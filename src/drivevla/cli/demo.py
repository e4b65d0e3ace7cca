"""``drivevla demo``: drive a handful of routes and write videos and a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from drivevla.benchmarks.closed_loop_runtime import RUNTIMES
from drivevla.benchmarks.demo import run_demo
from drivevla.cli._parsing import add_command, non_negative_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "demo", "drive a handful of routes and write videos + a report")
    p.add_argument("--out", default="runs/demo", help="output directory (rerun it to resume)")
    p.add_argument("--suite", default="smoke", help="built-in suite name or YAML/JSON file")
    p.add_argument("--no-video", action="store_true", help="skip the MP4 videos")
    p.add_argument("--policy", default="drivevla-tiny", help="name or checkpoint dir")
    p.add_argument("--workers", type=non_negative_int, default=2,
                   help="worker processes (0: inline)")
    p.add_argument("--no-expert-drive", action="store_true",
                   help="the report does not drive the privileged expert on each route for its "
                   "speed and path references")
    p.add_argument("--runtime", choices=RUNTIMES, default="realtime-safety",
                   help="the driver (docs/runtime.md): the real-time runner with its safety "
                   "filter, the runner alone, or the plain agent")
    p.set_defaults(fn=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    run_demo(Path(args.out), args.suite, video=not args.no_video, policy=args.policy,
             workers=args.workers, expert_drive=not args.no_expert_drive,
             runtime=args.runtime)
    return 0
