"""The ``drivevla`` command: one module per command group, each with ``register(subparsers)``.

    drivevla demo | sim list | sim drive | suite show | bench sim | bench latency
    drivevla bench refusal | eval closed-loop | collect | data stats | data show
    drivevla data export-nuscenes | train | fit-refusal | fit-intent

``drivevla COMMAND --help`` lists every option with its default. A new command group is a
module here with a ``register`` function, added to :data:`GROUPS`.
"""

from __future__ import annotations

import logging
import os
import sys

# Before the simulator (pygame) is imported by the command modules: no window, ever.
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

from drivevla.cli import (  # noqa: E402
    bench,
    collect,
    data,
    demo,
    evaluate,
    fit,
    sim,
    suite,
    train,
)
from drivevla.cli._parsing import Parser  # noqa: E402

DESCRIPTION = (
    "drivevla: a vision-language-action driving agent and its embedded simulator. Drive and "
    "evaluate policies, collect demonstration datasets and train on them."
)

# Command groups in the order `drivevla --help` lists them.
GROUPS = (demo, sim, suite, bench, evaluate, collect, data, train, fit)


def build_parser() -> Parser:
    """The ``drivevla`` argument parser with every command group registered."""
    parser = Parser(prog="drivevla", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``drivevla`` command; returns its exit status (2: a bad value or file)."""
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
