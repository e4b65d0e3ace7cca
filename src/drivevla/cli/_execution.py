"""The options that choose where a command's jobs run (``--executor process|ray`` and Ray's
settings), shared by every command that fans out (see :mod:`drivevla.core.execution`)."""

from __future__ import annotations

import argparse

from drivevla.cli._parsing import non_negative_int, positive_float
from drivevla.core.executor import EXECUTORS, Executor


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 0")
    return value


def add_executor_options(parser: argparse.ArgumentParser, workers: str = "--workers") -> None:
    """``--executor`` and the Ray options (``--backend`` names the simulator, not this);
    ``workers``: the command's option for the jobs in flight."""
    parser.add_argument(
        "--executor", choices=EXECUTORS, default="process",
        help=f"where the jobs run: process, a local pool of {workers} processes; ray, one Ray "
        "task per job on a local Ray instance or the cluster of --ray-address (needs the "
        "extra: pip install -e \".[ray]\"; docs/ray.md). The results are the same, so a run "
        "started on one resumes on the other")
    parser.add_argument(
        "--ray-address", default=None, metavar="ADDR",
        help="Ray cluster to join (e.g. auto, or ray://HEAD:10001); default: a Ray instance "
        "started for this command on this machine")
    parser.add_argument(
        "--ray-num-cpus-per-worker", type=positive_float, default=1.0, metavar="N",
        help="CPUs Ray reserves for each job (with --executor ray)")
    parser.add_argument(
        "--ray-num-gpus-per-worker", type=_non_negative_float, default=0.0, metavar="G",
        help="GPUs Ray reserves for each job, e.g. 1 or 0.25 for a learned policy on GPU "
        "workers (with --executor ray)")
    parser.add_argument(
        "--ray-max-retries", type=non_negative_int, default=1, metavar="K",
        help="reruns of a job whose Ray worker or node died or whose task raised, before it "
        "is recorded as failed (with --executor ray; the process pool reruns a dead "
        "worker's job once)")


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The :class:`Executor` the options name."""
    return Executor(
        kind=args.executor,
        ray_address=args.ray_address,
        num_cpus_per_worker=args.ray_num_cpus_per_worker,
        num_gpus_per_worker=args.ray_num_gpus_per_worker,
        max_retries=args.ray_max_retries,
    )
