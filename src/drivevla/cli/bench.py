"""``drivevla bench sim|latency|runtimes|cost|refusal|robustness|executors``: simulator
throughput, a policy's per-tick latency, one checkpoint on every runtime side by side, the
counted cost of a checkpoint's tick, its text-only refusal and intent heads, closed-loop
driving under every fault with and without the runtime's protections, and one suite on the
process pool and on Ray side by side."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from drivevla.benchmarks import (
    cost,
    executor_overhead,
    latency,
    refusal_probe,
    robustness,
    runtimes,
    sim_throughput,
)
from drivevla.benchmarks.closed_loop_runtime import CLOCKS
from drivevla.cli._parsing import (
    add_command,
    add_group,
    fraction,
    non_negative_int,
    positive_int,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = add_group(subparsers, "bench", "benchmarks")
    _register_sim(bench)
    _register_latency(bench)
    _register_runtimes(bench)
    _register_cost(bench)
    _register_refusal(bench)
    _register_robustness(bench)
    _register_executors(bench)


def _register_sim(bench: argparse._SubParsersAction) -> None:
    p = add_command(bench, "sim", "simulator steps/s per family, one core")
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--steps", type=positive_int, default=1000,
                   help="simulator steps per measurement")
    p.add_argument("--families", nargs="*", help="scenario families (default: all)")
    p.add_argument("--no-pin", action="store_true", help="do not pin to one CPU core")
    p.set_defaults(fn=_cmd_bench_sim)


def _register_latency(bench: argparse._SubParsersAction) -> None:
    p = add_command(
        bench, "latency", "per-tick latency of a policy in closed loop (ms, p50/p90/p99, Hz)"
    )
    p.add_argument("--policy", required=True, help="registered name or checkpoint dir")
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--steps", type=int, default=300, help="measured control ticks")
    p.add_argument("--warmup", type=int, default=20, help="ticks run before measuring")
    p.add_argument("--scenario", default="urban", help="scenario family")
    p.add_argument(
        "--explain-every", type=int, default=10,
        help="time explain() every N ticks, off the action path (0: never)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the first route")
    p.set_defaults(fn=_cmd_bench_latency)


def _register_runtimes(bench: argparse._SubParsersAction) -> None:
    p = add_command(bench, "runtimes", "one DriveVLA checkpoint on every runtime here (PyTorch, "
                    "torch.compile, ONNX Runtime, TensorRT) side by side: latency and parity")
    p.add_argument("--policy", required=True, help="DriveVLA checkpoint: name or directory")
    p.add_argument("--out", required=True, help="result JSON file (the ONNX export is written "
                                                "beside it, in runtimes-exports/)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] for the PyTorch variants "
                                                   "(cuda: ONNX Runtime's CUDA provider, "
                                                   "TensorRT)")
    p.add_argument("--compile", action="store_true", help="add a torch.compile variant")
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads")
    p.add_argument("--steps", type=positive_int, default=300, help="measured control ticks")
    p.add_argument("--warmup", type=int, default=20, help="ticks run before measuring")
    p.add_argument("--parity-ticks", type=positive_int, default=100,
                   help="ticks of one expert drive every variant decides on")
    p.add_argument("--scenario", default="urban", help="scenario family")
    p.add_argument("--seed", type=int, default=0, help="seed of the first route")
    p.set_defaults(fn=_cmd_bench_runtimes)


def _cmd_bench_runtimes(args: argparse.Namespace) -> int:
    result = runtimes.run_runtimes(
        args.policy, args.out, device=args.device, compile_=args.compile,
        threads=args.threads, steps=args.steps, warmup=args.warmup,
        parity_ticks=args.parity_ticks, scenario=args.scenario, seed=args.seed)
    print(runtimes.format_table(result))
    print(f"wrote {args.out}")
    return 0


def _register_cost(bench: argparse._SubParsersAction) -> None:
    p = add_command(bench, "cost", "parameters, FLOPs and activation bytes of one action tick, "
                    "and the expected rate on Jetson Orin / Thor (counted, not timed)")
    p.add_argument("--policy", required=True, help="DriveVLA checkpoint: name or directory")
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--utilisation", type=fraction, default=cost.DEFAULT_UTILISATION,
                   help="assumed share of the devices' dense peak throughput reached")
    p.set_defaults(fn=_cmd_bench_cost)


def _register_refusal(bench: argparse._SubParsersAction) -> None:
    p = add_command(
        bench,
        "refusal",
        "text-only refusal and intent heads on rendered phrasings (recall, false %%, intent %%)",
    )
    p.add_argument("--policy", required=True,
                   help="checkpoint with refusal_head=true and/or intent_head=true")
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--split", default="heldout", choices=["train", "heldout", "all"],
                   help="which phrasings the instructions are rendered from")
    p.add_argument("--n", type=positive_int, default=3000, help="rendered instructions")
    p.add_argument("--seed", type=int, default=1, help="seed of the rendering")
    p.add_argument("--stacked-share", type=fraction, default=0.0,
                   help="share of event texts with a second, safe event before the first "
                        "(as overlapping events read in the simulator)")
    p.set_defaults(fn=_cmd_bench_refusal)


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    result = sim_throughput.run(
        Path(args.out),
        steps=args.steps,
        families=args.families,
        pin_core=None if args.no_pin else 0,
    )
    print(sim_throughput.format_table(result))
    print(f"wrote {args.out}")
    return 0


def _cmd_bench_latency(args: argparse.Namespace) -> int:
    result = latency.run_latency(
        args.policy,
        Path(args.out),
        threads=args.threads,
        steps=args.steps,
        warmup=args.warmup,
        scenario=args.scenario,
        explain_every=args.explain_every,
        seed=args.seed,
    )
    print(latency.format_table(result))
    print(f"wrote {args.out}")
    return 0


def _cmd_bench_cost(args: argparse.Namespace) -> int:
    result = cost.run_cost(args.policy, Path(args.out), utilisation=args.utilisation)
    print(cost.format_cost(result))
    print(f"wrote {args.out}")
    return 0


def _cmd_bench_refusal(args: argparse.Namespace) -> int:
    result = refusal_probe.run_refusal_probe(args.policy, Path(args.out), split=args.split,
                                             n=args.n, seed=args.seed,
                                             stacked_share=args.stacked_share)
    print(refusal_probe.format_table(result))
    print(f"wrote {args.out}")
    return 0


def _names_of(kind: str) -> Callable[[str], list[str]]:
    """A parser of comma-separated :func:`robustness.check_names` of ``kind``; an unknown
    one is a usage error."""

    def parse(text: str) -> list[str]:
        try:
            return robustness.check_names(kind, [n.strip() for n in text.split(",")
                                                 if n.strip()])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _register_robustness(bench: argparse._SubParsersAction) -> None:
    p = add_command(bench, "robustness", "closed-loop driving under every fault x severity, "
                    "with and without the runtime's protections (DS, collisions, fallback, AEB)")
    p.add_argument("--policy", required=True, help="registered name or checkpoint dir")
    p.add_argument("--suite", default="standard", help="suite name or YAML file")
    p.add_argument("--out", required=True, help="result folder (rows/ and robustness.json); "
                                                "a rerun resumes")
    p.add_argument("--faults", type=_names_of("fault"), default=None,
                   help=f"comma-separated subset of: {', '.join(robustness.FAULTS)} "
                   "(default: all)")
    p.add_argument("--severities", type=_names_of("severity"), default=None,
                   help="comma-separated subset of: low, high (default: both)")
    p.add_argument("--protections", type=_names_of("protections"), default=None,
                   help="comma-separated subset of: on, off (default: both)")
    p.add_argument("--fault-seed", type=non_negative_int, default=0,
                   help="seed of the injected faults")
    _add_route_options(p, non_negative_int, "routes in flight at once per row")
    p.add_argument("--clock", choices=CLOCKS, default="simulated",
                   help="simulated: deterministic; wall: real time (late ticks measured)")
    p.set_defaults(fn=_cmd_bench_robustness)


def _add_route_options(p: argparse.ArgumentParser, workers_type: Callable[[str], int],
                       workers_help: str) -> None:
    """``--workers`` and ``--max-steps`` of the closed-loop benchmarks."""
    p.add_argument("--workers", type=workers_type, default=2, help=workers_help)
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="cap every route at this many ticks (smoke runs)")


def _cmd_bench_robustness(args: argparse.Namespace) -> int:
    result = robustness.run_robustness(
        args.policy, args.suite, Path(args.out), workers=args.workers, faults=args.faults,
        severities=args.severities, protections=args.protections, fault_seed=args.fault_seed,
        max_steps=args.max_steps, clock=args.clock)
    print(robustness.format_table(result))
    print(f"wrote {Path(args.out) / robustness.RESULT_FILE}")
    return 0


def _register_executors(bench: argparse._SubParsersAction) -> None:
    p = add_command(bench, "executors", "one suite on the local process pool and on Ray, one "
                    "after the other: wall time, Ray's overhead per route, N-node extrapolation")
    p.add_argument("--policy", default="expert", help="registered name or checkpoint dir")
    p.add_argument("--suite", default="standard", help="suite name or YAML file")
    p.add_argument("--out", required=True, help="a new result folder (process/, ray/ and "
                                                "executors.json)")
    _add_route_options(p, positive_int, "routes in flight at once on either executor")
    p.add_argument("--cameras", choices=["off", "policy"], default="off",
                   help="off: render no camera (a policy that reads only the privileged "
                   "state, such as the expert); policy: the simulator's default cameras")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join; default: a local instance of --workers CPUs")
    p.set_defaults(fn=_cmd_bench_executors)


def _cmd_bench_executors(args: argparse.Namespace) -> int:
    result = executor_overhead.run_executors(
        args.policy, args.suite, Path(args.out), workers=args.workers,
        base_config={"cameras": []} if args.cameras == "off" else None,
        max_steps=args.max_steps, ray_address=args.ray_address)
    print(executor_overhead.format_table(result))
    print(f"wrote {Path(args.out) / 'executors.json'}")
    return 0
