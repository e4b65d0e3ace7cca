"""The ``drivevla`` command.

drivevla demo [--out DIR] [--suite NAME_OR_FILE] [--no-video]
drivevla sim list
drivevla sim drive --scenario F [--intent I] [--seed S] [--out DIR] [--video]
drivevla suite show NAME_OR_FILE
drivevla bench sim --out FILE.json [--steps N] [--families F ...]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def _cmd_sim_list(args: argparse.Namespace) -> int:
    from drivevla.sim_bridge.embedded import ENV_IDS
    from drivevla.sim_bridge.embedded.scenarios import FAMILIES

    by_family = {v: k for k, v in ENV_IDS.items()}
    for name, fam in sorted(FAMILIES.items()):
        print(f"{name:<13} {by_family.get(name, ''):<26} {fam.description}")
        print(f"{'':<13} intents: {', '.join(fam.intents)}")
    return 0


def _cmd_sim_drive(args: argparse.Namespace) -> int:
    from drivevla.benchmarks.drive import drive_route, rule_based_driver
    from drivevla.sim_bridge.embedded.scenarios import FAMILIES
    from drivevla.sim_bridge.embedded.suites import RouteSpec

    if args.scenario not in FAMILIES:
        raise SystemExit(f"unknown scenario {args.scenario!r}; valid: {sorted(FAMILIES)}")
    intent = args.intent or FAMILIES[args.scenario].intents[0]
    if intent not in FAMILIES[args.scenario].intents:
        raise SystemExit(
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from drivevla.benchmarks.demo import run_demo

    run_demo(Path(args.out), args.suite, video=not args.no_video)
    return 0


def _cmd_suite_show(args: argparse.Namespace) -> int:
    from drivevla.sim_bridge.embedded.suites import load_suite

    suite = load_suite(args.suite)
    print(f"{suite.name}: {len(suite.routes)} routes. {suite.description}")
    for r in suite.routes:
        print(f"  {r.route_id:<40} {r.scenario:<13} {r.intent:<20} seed={r.seed}")
    return 0


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    from drivevla.benchmarks.sim_throughput import format_table, run

    result = run(
        Path(args.out),
        steps=args.steps,
        families=args.families,
        pin_core=None if args.no_pin else 0,
    )
    print(format_table(result))
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drivevla", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="drive a handful of routes and write videos + a report")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--suite", default="smoke")
    demo.add_argument("--no-video", action="store_true")
    demo.set_defaults(fn=_cmd_demo)

    sim = sub.add_parser("sim", help="the embedded simulator").add_subparsers(
        dest="sim_cmd", required=True
    )
    sim.add_parser("list", help="scenario families, intents and gymnasium ids").set_defaults(
        fn=_cmd_sim_list
    )
    drive = sim.add_parser("drive", help="drive one route with the rule-based route follower")
    drive.add_argument("--scenario", required=True)
    drive.add_argument("--intent")
    drive.add_argument("--seed", type=int, default=0)
    drive.add_argument("--instruction")
    drive.add_argument("--out", default="runs/drive")
    drive.add_argument("--video", action="store_true")
    drive.set_defaults(fn=_cmd_sim_drive)

    suite = sub.add_parser("suite", help="scenario suites").add_subparsers(
        dest="suite_cmd", required=True
    )
    show = suite.add_parser("show", help="validate and list a suite")
    show.add_argument("suite")
    show.set_defaults(fn=_cmd_suite_show)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench_cmd", required=True
    )
    bsim = bench.add_parser("sim", help="simulator steps/s per family, one core")
    bsim.add_argument("--out", required=True)
    bsim.add_argument("--steps", type=int, default=1000)
    bsim.add_argument("--families", nargs="*")
    bsim.add_argument("--no-pin", action="store_true", help="do not pin to one CPU core")
    bsim.set_defaults(fn=_cmd_bench_sim)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.fn(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"drivevla: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
