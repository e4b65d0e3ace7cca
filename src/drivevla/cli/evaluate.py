"""``drivevla eval closed-loop``: drive a suite with a policy and score every route;
``drivevla eval report``: the report (markdown and self-contained HTML) of such a run;
``drivevla eval open-loop``: score a policy and camera-free baselines on nuScenes-style logs;
``drivevla eval explanations``: BLEU-4, ROUGE-L, CIDEr-D and faithfulness of a policy's
explanations on held-out recorded frames, beside a constant-sentence baseline;
``drivevla eval compare``: two closed-loop runs route by route, where their drives part."""

from __future__ import annotations

import argparse
from pathlib import Path

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.benchmarks.closed_loop_runtime import CLOCKS, RUNTIMES
from drivevla.benchmarks.compare_runs import compare_runs, format_comparison, write_comparison
from drivevla.benchmarks.ego_mlp import default_ego_mlp_path, ego_mlp_files, train_split_for
from drivevla.benchmarks.explanation_eval import Explainer, run_explanation_eval
from drivevla.benchmarks.leaderboard_import import import_leaderboard
from drivevla.benchmarks.open_loop import run_open_loop
from drivevla.benchmarks.report import EMBED_VIDEOS_MAX_MB, write_report
from drivevla.cli._backend import add_backend_options, suite_and_server
from drivevla.cli._execution import add_executor_options, executor_from_args
from drivevla.cli._parsing import add_command, add_group, non_negative_int, positive_int
from drivevla.datasets import replay
from drivevla.datasets.nuscenes_openloop import ALL_SPLIT, open_openloop_source
from drivevla.datasets.reader import open_dataset
from drivevla.language.phrasing_sets import LOCKED, load_phrasing_set
from drivevla.runtime.fault_spec import FaultSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluate = add_group(subparsers, "eval", "evaluations of a policy")
    p = add_command(
        evaluate, "closed-loop", "drive a suite with a policy; resumable, one JSON per route"
    )
    p.add_argument("--policy", required=True, help="registered name or checkpoint dir")
    add_backend_options(p)
    p.add_argument("--out", required=True, help="results dir (rerun it to resume)")
    p.add_argument("--workers", type=non_negative_int, default=1,
                   help="routes in flight at once: worker processes, or Ray tasks with "
                   "--executor ray (0: inline, process executor only)")
    add_executor_options(p)
    p.add_argument("--video", action="store_true", help="an MP4 per route in OUT/videos")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="cap on control steps (default: the route's own)")
    p.add_argument(
        "--explain-every",
        type=non_negative_int,
        default=None,
        help="ticks between explanations of a learned policy, each checked against the "
        "expert's reason (faithfulness); 0: none; unset: 10 (embedded), 0 (carla)",
    )
    p.add_argument("--video-expert-reason", action="store_true",
                   help="the videos show the shadow expert's reason beside the policy's "
                   "(debug; where the explainer runs)")
    p.add_argument("--runtime", choices=RUNTIMES, default="none",
                   help="realtime: drive through the real-time runner (deadline watchdog, "
                   "hold then stop fallback, on simulated time; docs/runtime.md); "
                   "realtime-safety: with the safety filter and AEB; none: the plain agent")
    p.add_argument("--clock", choices=CLOCKS, default="simulated",
                   help="the runtime's clock: simulated (deterministic; only injected latency "
                   "counts) or wall (real time: the policy's own compute counts, late ticks "
                   "are measured)")
    p.add_argument("--faults", type=fault_spec, default=None, metavar="KEY=VALUE,...",
                   help="inject faults, seeded: policy.{latency_share,latency_ms,"
                   "exception_share,nan_share}, sensors.{drop_share,stale_share,black_share,"
                   "noise_share,noise_std,latency_ms,radar_dropout_share}, seed "
                   "(docs/runtime.md)")
    p.add_argument("--phrasings", default=None, metavar="locked|FILE",
                   help="render instructions from these wordings instead of the suite's "
                   "held-out phrasings: locked (kept out of every design decision; look once) "
                   "or a JSON phrasing set (docs/benchmark.md); default: the suite's")
    p.set_defaults(fn=_cmd_eval_closed_loop)
    r = add_command(
        evaluate, "report",
        "write OUT/report.md and a self-contained OUT/report.html for a closed-loop run folder",
    )
    r.add_argument("--out", required=True, help="a finished closed-loop results dir")
    r.add_argument("--no-expert-drive", action="store_true",
                   help="do not drive the privileged expert on each route for the speed and "
                   "path references (a few seconds a route, cached in OUT/report_files)")
    r.add_argument("--link-videos", action="store_true",
                   help="link the videos from the HTML instead of embedding them (embedded up "
                   f"to {EMBED_VIDEOS_MAX_MB:g} MB of video by default)")
    r.set_defaults(fn=_cmd_eval_report)
    _register_open_loop(evaluate)
    _register_explanations(evaluate)
    _register_compare(evaluate)
    i = add_command(
        evaluate, "import-leaderboard",
        "turn a CARLA Leaderboard 2.0 / Bench2Drive results JSON into OUT/summary.json and "
        "OUT/routes (DS, RC, IS, infractions per km, Bench2Drive success)",
    )
    i.add_argument("results", help="the evaluator's --checkpoint JSON")
    i.add_argument("--out", required=True, help="folder for summary.json and routes/")
    i.add_argument("--policy", default=None, help="the policy's name, for the summary")
    i.set_defaults(fn=_cmd_eval_import_leaderboard)


def _register_open_loop(evaluate: argparse._SubParsersAction) -> None:
    o = add_command(
        evaluate, "open-loop",
        "score a policy's 3 s plans on nuScenes-style logs (L2, collision; ST-P3/VAD and "
        "UniAD conventions) beside camera-free baselines; resumable",
    )
    o.add_argument("--policy", required=True,
                   help="registered name, checkpoint dir or onnx:DIR ('expert': the logged "
                   "future, a sanity row)")
    o.add_argument("--dataroot", required=True,
                   help="nuScenes dataroot (real nuScenes or `drivevla data export-nuscenes`)")
    o.add_argument("--version", required=True, help="table folder, e.g. v1.0-mini")
    o.add_argument("--split", default=ALL_SPLIT,
                   help="scenes to score: a nuscenes.utils.splits name (val, mini_val, ...) "
                   "or, on our export, one of its drivevla_export.json splits; 'all': every "
                   "scene")
    o.add_argument("--out", required=True, help="results dir (rerun it to resume)")
    o.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                   help="score log replay, constant velocity, constant velocity + yaw "
                   "rate and the ego-status MLP (see --ego-mlp) on the same samples")
    o.add_argument("--ego-mlp", default=None, metavar="PATH",
                   help="the ego-status MLP baseline's weights (a folder or .safetensors "
                   "file of `drivevla train-baseline ego-mlp`); default: DATAROOT/"
                   "drivevla_baselines/ego_mlp-VERSION-train (mini_train for mini_* "
                   "splits) when it exists, else the table says how to train it")
    o.add_argument("--mode", choices=["language", "target_point"], default=None,
                   help="navigation input: language (the command as an instruction) or "
                        "target_point (also route target points from the logged future, "
                        "which leaks where the log went); default: the policy's own mode")
    o.add_argument("--skip-bad", action="store_true",
                   help="skip a sample without a camera the policy needs or with an "
                   "unreadable image (counted and listed) instead of stopping")
    o.add_argument("--max-samples", type=positive_int, default=None,
                   help="score only the first N samples with a full future")
    o.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of the policy (torch / ONNX Runtime; default: the "
                   "library's own)")
    o.set_defaults(fn=_cmd_eval_open_loop)


def _register_explanations(evaluate: argparse._SubParsersAction) -> None:
    e = add_command(
        evaluate, "explanations",
        "BLEU-4, ROUGE-L and CIDEr-D (pycocoevalcap) and faithfulness of a policy's "
        "explanations against the expert's on held-out frames of a drivevla dataset, beside "
        "the most frequent explanation as a baseline",
    )
    e.add_argument("--policy", required=True,
                   help="a learned policy: registered name, checkpoint dir or onnx:DIR")
    e.add_argument("--data", required=True, help="a drivevla dataset directory")
    e.add_argument("--split", default="val", choices=("train", "val", "test"),
                   help="the frames to score (the baseline's sentence comes from 'train')")
    e.add_argument("--frames", type=positive_int, default=200,
                   help="frames spread evenly over the split's episodes")
    e.add_argument("--out", required=True,
                   help="folder for explanations.jsonl and summary.json (replaced)")
    e.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of the policy (torch / ONNX Runtime; default: the "
                   "library's own; 1 is fastest on a busy 2-core machine)")
    e.set_defaults(fn=_cmd_eval_explanations)


def _register_compare(evaluate: argparse._SubParsersAction) -> None:
    c = add_command(
        evaluate, "compare",
        "two closed-loop runs of one suite route by route: status, DS, and where each pair "
        "of drives first parts and by how much",
    )
    c.add_argument("run_a", help="a closed-loop run folder (e.g. the PyTorch checkpoint's)")
    c.add_argument("run_b", help="another run folder of the same routes (e.g. its onnx: export)")
    c.add_argument("--tol-m", type=float, default=0.01,
                   help="drives part where the ego positions differ by more than this (m)")
    c.add_argument("--tol-mps", type=float, default=0.01,
                   help="... or the planned speeds by more than this (m/s)")
    c.add_argument("--all", action="store_true",
                   help="list every route, not only those whose status differs")
    c.add_argument("--json", default=None, metavar="FILE", help="also write the comparison here")
    c.set_defaults(fn=_cmd_eval_compare)


def _cmd_eval_compare(args: argparse.Namespace) -> int:
    result = compare_runs(args.run_a, args.run_b, tol_m=args.tol_m, tol_mps=args.tol_mps)
    print(format_comparison(result, all_routes=args.all))
    if args.json:
        write_comparison(result, args.json)
        print(f"wrote {args.json}")
    return 0


def fault_spec(text: str) -> FaultSpec:
    """``--faults``: the spec, or argparse's error naming what is wrong."""
    try:
        return FaultSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_eval_closed_loop(args: argparse.Namespace) -> int:
    suite, server = suite_and_server(args)
    if args.explain_every is None:
        args.explain_every = 0 if server is not None else 10
    base = None
    if args.phrasings is not None:
        if server is not None:
            raise ValueError("--phrasings applies to the embedded simulator's suites; a CARLA "
                             "route file carries no instruction phrasings")
        wordings = load_phrasing_set(args.phrasings)  # a file's set goes into the results
        base = {"phrasings": LOCKED if args.phrasings == LOCKED else wordings}
    summary = run_closed_loop(
        args.policy,
        suite,
        Path(args.out),
        workers=args.workers,
        executor=executor_from_args(args),
        video=args.video,
        max_steps=args.max_steps,
        explain_every=args.explain_every,
        video_expert_reason=args.video_expert_reason,
        runtime=args.runtime,
        faults=args.faults,
        clock=args.clock,
        carla=server,
        base_config=base,
    )
    print(f"wrote {Path(args.out) / 'summary.json'} ({summary['n_routes']} routes)")
    return 0


def _cmd_eval_report(args: argparse.Namespace) -> int:
    html = write_report(Path(args.out), expert_drive=not args.no_expert_drive,
                        embed_videos=False if args.link_videos else None)
    print(f"wrote {Path(args.out) / 'report.md'} and {html}")
    return 0


def _cmd_eval_open_loop(args: argparse.Namespace) -> int:
    if args.ego_mlp is not None and not args.baselines:
        raise ValueError("--ego-mlp is a baseline row: it needs --baselines (the default), "
                         "not --no-baselines")
    source = open_openloop_source(args.dataroot, args.version, args.split)
    ego_mlp, note = args.ego_mlp, None
    if ego_mlp is None and args.baselines:
        train_split = train_split_for(args.split)
        default = default_ego_mlp_path(args.dataroot, args.version, train_split)
        if ego_mlp_files(default)[0].is_file():
            ego_mlp = default
        else:
            note = (f"no ego-status MLP row: no weights at {default}; train them with "
                    f"`drivevla train-baseline ego-mlp --dataroot {args.dataroot} --version "
                    f"{args.version} --split {train_split}` (or pass --ego-mlp PATH)")
    run_open_loop(args.policy, source, Path(args.out), mode=args.mode, baselines=args.baselines,
                  skip_bad=args.skip_bad, max_samples=args.max_samples,
                  threads=args.threads, ego_mlp=ego_mlp, ego_mlp_note=note)
    print(f"wrote {Path(args.out) / 'summary.json'}")
    return 0


def _cmd_eval_explanations(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.data)
    n_split = len(dataset.split(args.split))
    if n_split == 0:
        raise ValueError(f"split {args.split!r} of {args.data} has no episode (its splits: "
                         + ", ".join(f"{s} {len(dataset.split(s))}"
                                     for s in ("train", "val", "test")) + ")")
    explainer = Explainer(args.policy)
    ticks = replay.recorded_ticks(Path(args.data), explainer.cameras, args.frames, args.split)
    train = replay.split_explanations(Path(args.data), "train")
    data = {"root": str(Path(args.data).resolve()), "split": args.split,
            "n_episodes": n_split, "frames_requested": args.frames}
    run_explanation_eval(args.policy, ticks, Path(args.out), train_explanations=train,
                         data=data, total=args.frames, explainer=explainer,
                         threads=args.threads)
    print(f"wrote {Path(args.out) / 'summary.json'}")
    return 0


def _cmd_eval_import_leaderboard(args: argparse.Namespace) -> int:
    summary = import_leaderboard(args.results, Path(args.out), policy=args.policy)
    print(f"wrote {Path(args.out) / 'summary.json'} ({summary['n_routes']} routes, "
          f"DS {summary['driving_score']:.2f}, RC {summary['route_completion']:.2f})")
    return 0
