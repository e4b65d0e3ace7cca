"""``drivevla suite show``: validate and list a scenario suite."""

from __future__ import annotations

import argparse

from drivevla.cli._parsing import add_command, add_group
from drivevla.sim_bridge.embedded.suites import load_suite


def register(subparsers: argparse._SubParsersAction) -> None:
    suite = add_group(subparsers, "suite", "scenario suites")
    show = add_command(suite, "show", "validate and list a suite")
    show.add_argument("suite", help="built-in suite name or YAML/JSON file")
    show.set_defaults(fn=_cmd_suite_show)


def _cmd_suite_show(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    print(f"{suite.name}: {len(suite.routes)} routes. {suite.description}")
    for r in suite.routes:
        print(f"  {r.route_id:<40} {r.scenario:<13} {r.intent:<20} seed={r.seed}")
    return 0
