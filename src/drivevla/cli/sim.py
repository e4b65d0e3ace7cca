"""``drivevla sim list|drive``: the embedded simulator's scenario families, and one route
driven by the rule-based route follower."""

from __future__ import annotations

import argparse
from pathlib import Path

from drivevla.benchmarks.drive import drive_route, rule_based_driver
from drivevla.cli._parsing import add_command, add_group
from drivevla.sim_bridge.embedded import ENV_IDS
from drivevla.sim_bridge.embedded.scenarios import FAMILIES
from drivevla.sim_bridge.embedded.suites import RouteSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    sim = add_group(subparsers, "sim", "the embedded simulator")
    add_command(sim, "list", "scenario families, intents and gymnasium ids").set_defaults(
        fn=_cmd_sim_list
    )
    drive = add_command(sim, "drive", "drive one route with the rule-based route follower")
    drive.add_argument("--scenario", required=True, choices=sorted(FAMILIES),
                       help="scenario family")
    drive.add_argument("--intent", help="route intent (default: the family's first; "
                                        "`drivevla sim list` names them)")
    drive.add_argument("--seed", type=int, default=0, help="seed of the route")
    drive.add_argument("--instruction",
                       help="instruction text (default: the scenario's own for the intent)")
    drive.add_argument("--out", default="runs/drive", help="output directory")
    drive.add_argument("--video", action="store_true", help="also write an MP4")
    drive.set_defaults(fn=_cmd_sim_drive)


def _cmd_sim_list(args: argparse.Namespace) -> int:
    by_family = {v: k for k, v in ENV_IDS.items()}
    for name, fam in sorted(FAMILIES.items()):
        print(f"{name:<13} {by_family.get(name, ''):<26} {fam.description}")
        print(f"{'':<13} intents: {', '.join(fam.intents)}")
    return 0


def _cmd_sim_drive(args: argparse.Namespace) -> int:
    intent = args.intent or FAMILIES[args.scenario].intents[0]
    if intent not in FAMILIES[args.scenario].intents:
        raise ValueError(
            f"unknown intent {intent!r} for {args.scenario!r}; "
            f"valid: {list(FAMILIES[args.scenario].intents)}"
        )
    spec = RouteSpec(
        f"{args.scenario}-{intent}-{args.seed}", args.scenario, intent, args.seed, args.instruction
    )
    rec = drive_route(spec, rule_based_driver(), Path(args.out), video=args.video)
    r = rec["result"]
    print(
        f"{spec.route_id}: DS={r['driving_score']:.1f} RC={r['route_completion']:.1f} "
        f"P={r['infraction_penalty']:.3f} {r['status']}"
    )
    return 0
