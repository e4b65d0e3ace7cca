"""The ``drivevla`` command: one module per command group, each with ``register(subparsers)``.

    drivevla demo | sim list | sim drive | suite show | bench sim | bench latency
    drivevla bench refusal | eval closed-loop | collect | data stats | data show
    drivevla data export-nuscenes | train | fit-refusal | fit-intent | export onnx
    drivevla export parity | eval open-loop | eval explanations | train-baseline ego-mlp

``drivevla COMMAND --help`` lists every option with its default. A new command group is a
module here with a ``register`` function, added to :data:`GROUPS`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

# Before the simulator (pygame) is imported by the command modules: no window, ever.
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

from drivevla.cli import (  # noqa: E402
    baselines,
    bench,
    collect,
    data,
    demo,
    evaluate,
    export,
    fit,
    sim,
    suite,
    train,
)
from drivevla.cli._parsing import Parser, TopHelpFormatter  # noqa: E402
from drivevla.core.errors import DriveVLAError  # noqa: E402
from drivevla.datasets.format import CorruptDataError  # noqa: E402

DESCRIPTION = """\
drivevla: a vision-language-action driving agent and its embedded simulator.
Drive and evaluate policies, collect demonstration datasets and train on them."""

# The top-level help's epilog: the common workflows, one command a line (kept as written).
WORKFLOWS = """\
common workflows:
  a first look: the smoke suite driven by drivevla-tiny, videos and report.html
    drivevla demo --out runs/demo
  the simulator: its scenario families, then one route with the rule-based driver
    drivevla sim list
    drivevla sim drive --scenario urban --video --out runs/drive
  evaluate a policy, then its report (report.md and a self-contained report.html)
    drivevla eval closed-loop --policy drivevla-tiny --suite standard --out runs/eval
    drivevla eval report --out runs/eval
  collect expert demonstrations, check their counts and labels, train, evaluate
    drivevla collect --suite train --episodes 200 --out data/demos
    drivevla data stats data/demos
    drivevla train --data data/demos --out runs/mine
    drivevla eval closed-loop --policy runs/mine --suite standard --out runs/eval-mine
  a policy's per-tick latency (report it with the thread count and machine load)
    drivevla bench latency --policy drivevla-tiny --threads 1 --out runs/latency.json

Each command's options and their defaults: drivevla COMMAND [SUBCOMMAND] --help.
A bad argument, value or file: one line "drivevla: error: ..." and exit status 2."""

# Command groups in the order `drivevla --help` lists them.
GROUPS = (demo, sim, suite, bench, evaluate, collect, data, train, fit, export, baselines)

# Errors about the user's input, files or machine, not about drivevla's code: one line and
# exit 2. drivevla's own (DriveVLAError) name the file and the line, row or field; the
# builtin ones are kept for what libraries raise on a bad value or file (OSError names the
# file itself). Anything else is a bug: its traceback and a request to report it, exit 1.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (DriveVLAError, ValueError, OSError)
EXIT_KNOWN, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130
BUG_REPORT = ("drivevla: internal error: this is a bug; please report it with the command "
              "and the traceback above")


def build_parser() -> Parser:
    """The ``drivevla`` argument parser with every command group registered."""
    parser = Parser(prog="drivevla", description=DESCRIPTION, epilog=WORKFLOWS,
                    formatter_class=TopHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``drivevla`` command; returns its exit status (2: a bad value or file, 1: a
    bug in drivevla, 130: interrupted)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """``args.fn(args)`` behind the error boundary (see :data:`KNOWN_ERRORS`)."""
    try:
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        print("drivevla: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KNOWN_ERRORS as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"drivevla: error: {error_line(exc, args)}", file=sys.stderr)
        return EXIT_KNOWN
    except Exception:
        traceback.print_exc()
        print(BUG_REPORT, file=sys.stderr)
        return EXIT_BUG


def error_line(exc: BaseException, args: argparse.Namespace) -> str:
    """The message of a known error on one line; corruption that ``--skip-corrupt`` can
    skip says so when the command has that option and it was not given."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    text = text or type(exc).__name__
    if (isinstance(exc, CorruptDataError) and exc.skippable
            and getattr(args, "skip_corrupt", None) is False):
        text += " (--skip-corrupt leaves it out, counted and listed)"
    return text
