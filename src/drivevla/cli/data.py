"""``drivevla data stats|show|export-nuscenes``: look into a demonstration dataset (its counts
and the checks of its expert labels) and export it as a nuScenes database."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from drivevla.cli._parsing import (
    add_command,
    add_group,
    non_negative_int,
    positive_float,
    positive_int,
)
from drivevla.datasets.label_checks import LOOKAHEAD_M
from drivevla.datasets.nuscenes_export import DEFAULT_VERSION, export_nuscenes
from drivevla.datasets.show import render_grid
from drivevla.datasets.stats import dataset_stats, format_stats, label_check_error


def register(subparsers: argparse._SubParsersAction) -> None:
    data = add_group(subparsers, "data", "demonstration datasets")
    _register_stats(data)

    show = add_command(data, "show", "a PNG grid of frames with trajectories and captions")
    show.add_argument("dir", help="drivevla dataset directory")
    show.add_argument("--out", required=True, help="PNG file to write")
    show.add_argument("--n", type=positive_int, default=12, help="frames in the grid")
    show.add_argument("--seed", type=int, default=0, help="seed of the frame draw")
    show.set_defaults(fn=_cmd_data_show)

    export = add_command(
        data, "export-nuscenes", "write a dataset as a nuScenes database (loads with "
        "nuscenes-devkit)"
    )
    export.add_argument("dataset", help="drivevla dataset directory (with meta/info.json)")
    export.add_argument("out", help="output dataroot for NuScenes(version=..., dataroot=OUT)")
    export.add_argument("--version", default=DEFAULT_VERSION, help="table folder name")
    export.add_argument("--no-sweeps", action="store_true", help="keyframes (2 Hz) only")
    export.add_argument("--overwrite", action="store_true",
                        help="replace OUT/VERSION if present")
    export.set_defaults(fn=_cmd_export_nuscenes)


def _register_stats(data: argparse._SubParsersAction) -> None:
    stats = add_command(data, "stats", "counts per scenario, reason, meta-action, ... and "
                        "checks of the expert's labels against the frames")
    stats.add_argument("dir", help="drivevla dataset directory")
    stats.add_argument("--json", metavar="FILE",
                       help="also write the stats (and the label checks) to this JSON file")
    stats.add_argument("--skip-corrupt", action="store_true",
                       help="leave out corrupt shards and lines of meta/episodes.jsonl, and "
                            "count and list them, instead of failing")
    stats.add_argument("--check-labels", action=argparse.BooleanOptionalAction, default=True,
                       help="check the expert's labels against the frames: a 'curve' reason "
                            "on a straight road, an explanation's colour, side, distance, "
                            "reason or place that is not the frame's (label and state "
                            "columns only; each episode's road is rebuilt, ~0.1 s an episode)")
    stats.add_argument("--strict", action="store_true",
                       help="exit 2 with a one-line error naming each check and its count "
                            "when a label check flags any frame (before training, in CI)")
    stats.add_argument("--lookahead-m", type=positive_float, metavar="M", default=LOOKAHEAD_M,
                       help="a 'curve' frame is flagged when the road does not bend within "
                            "this distance ahead (m)")
    stats.add_argument("--label-examples", type=non_negative_int, metavar="N", default=5,
                       help="flagged frames kept per check as examples in the JSON (the "
                            "table shows one)")
    stats.set_defaults(fn=_cmd_data_stats)


def _cmd_data_stats(args: argparse.Namespace) -> int:
    if args.strict and not args.check_labels:
        raise ValueError("--strict needs the label checks: drop --no-check-labels")
    # corrupt data raises CorruptDataError: the CLI's error boundary names the file and
    # says whether --skip-corrupt can leave it out
    stats = dataset_stats(
        args.dir, skip_corrupt=args.skip_corrupt, label_checks=args.check_labels,
        label_check_options={"lookahead_m": args.lookahead_m,
                             "max_examples": args.label_examples},
    )
    print(format_stats(stats))
    skipped = stats["skipped"]
    if skipped["errors"]:
        print(f"skipped as corrupt: {skipped['files']} shard(s), {skipped['rows']} frame(s), "
              f"{len(skipped['episodes_jsonl_lines'])} line(s) of meta/episodes.jsonl")
        for error in skipped["errors"]:
            print(f"  {error}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(stats, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    error = label_check_error(stats) if args.strict else None
    if error is not None:
        raise error
    return 0


def _cmd_data_show(args: argparse.Namespace) -> int:
    print(f"wrote {render_grid(args.dir, args.out, n=args.n, seed=args.seed)}")
    return 0


def _cmd_export_nuscenes(args: argparse.Namespace) -> int:
    out = export_nuscenes(
        args.dataset, args.out, args.version, sweeps=not args.no_sweeps, overwrite=args.overwrite
    )
    counts = json.loads((out / "drivevla_export.json").read_text())["counts"]
    print(
        f"wrote {out / args.version}: {counts['scene']} scenes, {counts['sample']} samples, "
        f"{counts['sample_annotation']} annotations"
    )
    return 0
