"""The ``drivevla`` command.

drivevla demo [--out DIR] [--suite NAME_OR_FILE] [--no-video] [--policy NAME_OR_CHECKPOINT]
drivevla sim list
drivevla sim drive --scenario F [--intent I] [--seed S] [--out DIR] [--video]
drivevla suite show NAME_OR_FILE
drivevla bench sim --out FILE.json [--steps N] [--families F ...]
drivevla bench latency --policy NAME_OR_CHECKPOINT --out FILE.json [--threads 2] [--steps 300]
                       [--warmup 20] [--scenario urban] [--explain-every 10] [--seed 0]
drivevla bench refusal --policy CHECKPOINT --out FILE.json [--split heldout] [--n 3000]
drivevla eval closed-loop --policy NAME_OR_CHECKPOINT --suite NAME_OR_FILE --out DIR
                          [--workers N] [--video] [--max-steps N] [--explain-every 10]
drivevla collect --suite NAME_OR_FILE --episodes N --out DIR [--workers W] [--jpeg-quality Q]
                 [--cameras JSON] [--policy NAME_OR_CHECKPOINT --beta B] [--split-seed S]
                 [--max-steps N]
drivevla data stats DIR [--json FILE] [--skip-corrupt]
drivevla data show DIR --out grid.png [--n 12]
drivevla data export-nuscenes DIR OUT [--version V] [--no-sweeps]
drivevla fit-refusal --policy DIR --out DIR2 [--steps 1500]
drivevla fit-intent --policy DIR --out DIR2 [--by-sentence] [--steps 1500]
drivevla train --data DIR [--data DIR ...] --out DIR [--steps N] [--set KEY=VALUE ...]
               [--dagger K --dagger-episodes E --dagger-steps S --dagger-beta B]
               [--dagger-max-steps M]
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

    run_demo(Path(args.out), args.suite, video=not args.no_video, policy=args.policy,
             workers=args.workers)
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


def _cmd_bench_latency(args: argparse.Namespace) -> int:
    from drivevla.benchmarks.latency import format_table, run_latency

    result = run_latency(
        args.policy,
        Path(args.out),
        threads=args.threads,
        steps=args.steps,
        warmup=args.warmup,
        scenario=args.scenario,
        explain_every=args.explain_every,
        seed=args.seed,
    )
    print(format_table(result))
    print(f"wrote {args.out}")
    return 0


def _cmd_bench_refusal(args: argparse.Namespace) -> int:
    from drivevla.benchmarks.refusal_probe import format_table, run_refusal_probe

    result = run_refusal_probe(args.policy, Path(args.out), split=args.split, n=args.n,
                               seed=args.seed, stacked_share=args.stacked_share)
    print(format_table(result))
    print(f"wrote {args.out}")
    return 0


def _cmd_eval_closed_loop(args: argparse.Namespace) -> int:
    from drivevla.benchmarks.closed_loop import run_closed_loop

    summary = run_closed_loop(
        args.policy,
        args.suite,
        Path(args.out),
        workers=args.workers,
        video=args.video,
        max_steps=args.max_steps,
        explain_every=args.explain_every,
    )
    print(f"wrote {Path(args.out) / 'summary.json'} ({summary['n_routes']} routes)")
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    import json as _json

    from drivevla.datasets.collect import CollectConfig, collect, parse_cameras

    config = CollectConfig(
        suite=args.suite,
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
    )
    try:
        summary = collect(config)
    except RuntimeError as exc:  # some episodes failed; the others are saved
        print(f"drivevla: error: {exc}", file=sys.stderr)
        return 1
    print(_json.dumps({k: v for k, v in summary.items() if k != "failed"}, indent=2))
    return 0


def _cmd_data_stats(args: argparse.Namespace) -> int:
    import json as _json

    from drivevla.datasets.reader import CorruptDataError
    from drivevla.datasets.stats import dataset_stats, format_stats

    try:
        stats = dataset_stats(args.dir, skip_corrupt=args.skip_corrupt)
    except CorruptDataError as exc:
        print(f"drivevla: error: {exc} (--skip-corrupt skips it)", file=sys.stderr)
        return 1
    print(format_stats(stats))
    skipped = stats["skipped"]
    if skipped["files"] or skipped["rows"]:
        print(f"skipped as corrupt: {skipped['files']} shard(s), {skipped['rows']} frame(s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(_json.dumps(stats, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _cmd_data_show(args: argparse.Namespace) -> int:
    from drivevla.datasets.show import render_grid

    print(f"wrote {render_grid(args.dir, args.out, n=args.n, seed=args.seed)}")
    return 0


def _add_data_commands(sub) -> None:
    col = sub.add_parser(
        "collect", help="collect a demonstration dataset with the expert (or DAgger); resumable"
    )
    col.add_argument("--suite", required=True, help="built-in suite name or YAML/JSON file")
    col.add_argument("--episodes", type=int, required=True, help="episodes (cycling the routes)")
    col.add_argument("--out", required=True, help="dataset dir (rerun the command to resume)")
    col.add_argument("--workers", type=int, default=2, help="worker processes (0: inline)")
    col.add_argument("--jpeg-quality", type=int, default=90)
    col.add_argument("--cameras", help="JSON list of camera dicts (or a JSON file)")
    col.add_argument("--policy", help="DAgger: policy driving the non-expert steps")
    col.add_argument("--beta", type=float, help="DAgger: expert's share of steps (0.5)")
    col.add_argument("--split-seed", type=int, default=0, help="seed of the 90/5/5 split")
    col.add_argument(
        "--allow-eval-seeds", action="store_true", help="collect from held-out eval seeds"
    )
    col.add_argument("--max-steps", type=int, default=3000, help="cap on steps per episode")
    col.set_defaults(fn=_cmd_collect)

    data = sub.add_parser("data", help="demonstration datasets").add_subparsers(
        dest="data_cmd", required=True
    )
    stats = data.add_parser("stats", help="counts per scenario, reason, meta-action, ...")
    stats.add_argument("dir")
    stats.add_argument("--json", help="also write the stats to this JSON file")
    stats.add_argument("--skip-corrupt", action="store_true",
                       help="skip corrupt shards and report how many, instead of failing")
    stats.set_defaults(fn=_cmd_data_stats)
    show = data.add_parser("show", help="a PNG grid of frames with trajectories and captions")
    show.add_argument("dir")
    show.add_argument("--out", required=True)
    show.add_argument("--n", type=int, default=12)
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(fn=_cmd_data_show)
    from drivevla.datasets.nuscenes_export import register_cli as _register_nuscenes_cli

    _register_nuscenes_cli(data)
    from drivevla.training.head_fit import add_cli as _add_refusal_fit_cli
    from drivevla.training.train import add_cli as _add_train_cli

    _add_train_cli(sub)
    _add_refusal_fit_cli(sub)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drivevla", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="drive a handful of routes and write videos + a report")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--suite", default="smoke")
    demo.add_argument("--no-video", action="store_true")
    demo.add_argument("--policy", default="drivevla-tiny", help="name or checkpoint dir")
    demo.add_argument("--workers", type=int, default=2, help="worker processes (0: inline)")
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
    blat = bench.add_parser(
        "latency", help="per-tick latency of a policy in closed loop (ms, p50/p90/p99, Hz)"
    )
    blat.add_argument("--policy", required=True, help="registered name or checkpoint dir")
    blat.add_argument("--out", required=True, help="result JSON file")
    blat.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    blat.add_argument("--steps", type=int, default=300, help="measured control ticks")
    blat.add_argument("--warmup", type=int, default=20, help="ticks run before measuring")
    blat.add_argument("--scenario", default="urban", help="scenario family")
    blat.add_argument(
        "--explain-every", type=int, default=10,
        help="time explain() every N ticks, off the action path (0: never)",
    )
    blat.add_argument("--seed", type=int, default=0, help="seed of the first route")
    blat.set_defaults(fn=_cmd_bench_latency)
    bref = bench.add_parser(
        "refusal",
        help="text-only refusal and intent heads on rendered phrasings (recall, false %%, "
             "intent %%)",
    )
    bref.add_argument("--policy", required=True,
                      help="checkpoint with refusal_head=true and/or intent_head=true")
    bref.add_argument("--out", required=True, help="result JSON file")
    bref.add_argument("--split", default="heldout", choices=["train", "heldout", "all"])
    bref.add_argument("--n", type=int, default=3000, help="rendered instructions")
    bref.add_argument("--seed", type=int, default=1)
    bref.add_argument("--stacked-share", type=float, default=0.0,
                      help="share of event texts with a second, safe event before the first "
                           "(as overlapping events read in the simulator)")
    bref.set_defaults(fn=_cmd_bench_refusal)

    evaluate = sub.add_parser("eval", help="evaluations of a policy").add_subparsers(
        dest="eval_cmd", required=True
    )
    closed = evaluate.add_parser(
        "closed-loop", help="drive a suite with a policy; resumable, one JSON per route"
    )
    closed.add_argument("--policy", required=True, help="registered name or checkpoint dir")
    closed.add_argument("--suite", required=True, help="built-in suite name or YAML/JSON file")
    closed.add_argument("--out", required=True, help="results dir (rerun it to resume)")
    closed.add_argument("--workers", type=int, default=1, help="worker processes (0: inline)")
    closed.add_argument("--video", action="store_true", help="an MP4 per route in OUT/videos")
    closed.add_argument("--max-steps", type=int, default=None, help="cap on control steps")
    closed.add_argument(
        "--explain-every",
        type=int,
        default=10,
        help="ticks between explanations of a learned policy, each checked against the "
        "expert's reason (faithfulness); 0: none",
    )
    closed.set_defaults(fn=_cmd_eval_closed_loop)
    _add_data_commands(sub)
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
