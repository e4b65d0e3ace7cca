"""``drivevla collect``: record a demonstration dataset with the expert (or DAgger), on the
embedded simulator or a CARLA server."""

from __future__ import annotations

import argparse
import json
import sys

from drivevla.cli._backend import add_backend_options, suite_and_server
from drivevla.cli._execution import add_executor_options, executor_from_args
from drivevla.cli._parsing import (
    add_command,
    fraction,
    int_range,
    non_negative_int,
    positive_int,
)
from drivevla.datasets.collect import CollectConfig, collect, parse_cameras


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers, "collect",
        "collect a demonstration dataset with the expert (or DAgger); resumable",
    )
    add_backend_options(p)
    p.add_argument("--episodes", type=positive_int, required=True,
                   help="episodes (cycling the routes)")
    p.add_argument("--out", required=True, help="dataset dir (rerun the command to resume)")
    p.add_argument("--workers", type=non_negative_int, default=2,
                   help="episodes in flight at once: worker processes, or Ray tasks with "
                   "--executor ray (0: inline, process executor only)")
    add_executor_options(p)
    p.add_argument("--jpeg-quality", type=int_range(1, 100), default=90,
                   help="JPEG quality of the frames")
    p.add_argument("--cameras", help="a rig (front, front+sides) or a JSON list of camera "
                   "dicts (or a JSON file); default: the suite's (front)")
    p.add_argument("--policy", help="DAgger: policy driving the non-expert steps")
    p.add_argument("--beta", type=fraction,
                   help="DAgger: expert's share of steps (default: 0.5 with --policy, else 1)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the 90/5/5 split")
    p.add_argument(
        "--allow-eval-seeds", action="store_true", help="collect from held-out eval seeds"
    )
    p.add_argument("--max-steps", type=positive_int, default=3000, help="cap on steps per episode")
    p.set_defaults(fn=_cmd_collect)


def _cmd_collect(args: argparse.Namespace) -> int:
    suite, server = suite_and_server(args)
    config = CollectConfig(
        suite=suite,
        episodes=args.episodes,
        out=args.out,
        workers=args.workers,
        jpeg_quality=args.jpeg_quality,
        cameras=parse_cameras(args.cameras) if args.cameras else None,
        policy=args.policy,
        beta=args.beta if args.beta is not None else (0.5 if args.policy else 1.0),
        split_seed=args.split_seed,
        allow_eval_seeds=args.allow_eval_seeds,
        max_steps=args.max_steps,
        carla=server,
    )
    try:
        summary = collect(config, executor_from_args(args))
    except RuntimeError as exc:  # some episodes failed; the others are saved
        print(f"drivevla: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in summary.items() if k != "failed"}, indent=2))
    return 0
