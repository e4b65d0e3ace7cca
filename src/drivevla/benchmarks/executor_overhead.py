"""The same closed-loop suite on the local process pool and on Ray, one after the other in one
command: wall time side by side, Ray's overhead per route, whether the results agree, and an
extrapolation to N nodes with its assumptions stated (``drivevla bench executors``).

Both runs drive every route from scratch into their own folder (``OUT/process``,
``OUT/ray``), so neither resumes the other. Ray is started here with ``num_cpus=workers`` (its
start is timed apart: a running cluster pays it once, not per command) unless this process
already joined one; ``ray_address`` joins a cluster instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.core.errors import read_json
from drivevla.core.execution import Executor
from drivevla.core.execution_ray import connect_ray, import_ray
from drivevla.core.jsonio import write_json_atomic
from drivevla.core.provenance import provenance

EXTRAPOLATION_NODES = (1, 4, 16, 64)
EXTRAPOLATION_ROUTES = (None, 5000)  # None: the measured suite's own route count
CORES_PER_NODE = 32


def _row(summary: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """One executor's figures: wall time, the routes' own times (from their files), DS."""
    routes = summary["routes"]
    times = [float(read_json(run_dir / "routes" / f"{r['route_id']}.json")["wall_time_s"])
             for r in routes]
    return {"wall_s": summary["run"]["wall_time_s"], "route_s_sum": sum(times),
            "route_s_mean": sum(times) / len(times), "route_s_max": max(times),
            "driving_score": summary["driving_score"],
            "statuses": {r["route_id"]: r["status"] for r in routes},
            "scores": {r["route_id"]: r["driving_score"] for r in routes}}


def _start_ray(workers: int, executor: Executor) -> tuple[float, bool]:
    """(seconds the start took, whether this call started Ray): a local instance of
    ``workers`` CPUs, or the cluster ``executor`` names."""
    t0 = time.perf_counter()
    started = connect_ray(import_ray(), executor, num_cpus=workers)
    return time.perf_counter() - t0, started


def extrapolate(n_routes: int, route_s_mean: float, route_s_max: float, overhead_s: float,
                start_s: float, cores_per_node: int = CORES_PER_NODE) -> list[dict[str, Any]]:
    """Estimated wall time on N nodes: ``start + max(longest route, routes x (mean route +
    Ray per route) / (N x cores))``; the assumptions are in :func:`assumptions`."""
    rows = []
    for routes in (r or n_routes for r in EXTRAPOLATION_ROUTES):
        for nodes in EXTRAPOLATION_NODES:
            cores = nodes * cores_per_node
            wall = start_s + max(route_s_max,
                                 routes * (route_s_mean + max(overhead_s, 0.0)) / cores)
            rows.append({"routes": routes, "nodes": nodes, "cores": cores,
                         "wall_s": round(wall, 1)})
    return rows


def assumptions(cores_per_node: int = CORES_PER_NODE) -> list[str]:
    return [f"nodes of {cores_per_node} cores, one CPU per route, every route in flight at "
            "once up to the cores",
            "routes cost what the measured ones did (their mean; the longest bounds the wall)",
            "Ray's overhead per route as measured here (negative counts as 0), its start once",
            "routes spread evenly over the cores; a shared file system that keeps up",
            "not measured: no cluster was used"]


def run_executors(policy: str, suite: str, out: str | Path, workers: int = 2,
                  base_config: dict[str, Any] | None = None, max_steps: int | None = None,
                  ray_address: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Drive ``suite`` with ``policy`` on both executors; write and return the result."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out} is not empty: the benchmark times whole runs, so it "
                         "never resumes one; give a new folder")
    kw = dict(workers=workers, base_config=base_config, max_steps=max_steps,
              progress=progress, print_table=False)
    pool = run_closed_loop(policy, suite, out / "process", **kw)
    executor = Executor(kind="ray", ray_address=ray_address)
    start_s, started = _start_ray(workers, executor)
    try:
        on_ray = run_closed_loop(policy, suite, out / "ray", executor=executor, **kw)
    finally:
        if started:
            import_ray().shutdown()
    rows = {"process": _row(pool, out / "process"), "ray": _row(on_ray, out / "ray")}
    n = len(pool["routes"])
    overhead = (rows["ray"]["wall_s"] - rows["process"]["wall_s"]) / n
    same = (rows["process"]["statuses"] == rows["ray"]["statuses"]
            and rows["process"]["scores"] == rows["ray"]["scores"])
    result = {
        "benchmark": "executors",
        "config": {"policy": policy, "suite": suite, "workers": workers,
                   "base_config": base_config, "max_steps": max_steps,
                   "ray_address": ray_address},
        "seeds": pool["seeds"],
        "routes": n,
        "process": {k: v for k, v in rows["process"].items() if k not in ("statuses", "scores")},
        "ray": {k: v for k, v in rows["ray"].items() if k not in ("statuses", "scores")},
        "ray_start_s": start_s if started else None,
        "ray_overhead_s_per_route": overhead,
        "same_results": same,
        "extrapolation": extrapolate(n, rows["process"]["route_s_mean"],
                                     rows["process"]["route_s_max"], overhead,
                                     start_s if started else 0.0),
        "assumptions": assumptions(),
        "provenance": provenance(),
    }
    write_json_atomic(out / "executors.json", result)
    return result


def format_table(result: dict[str, Any]) -> str:
    p, r = result["process"], result["ray"]
    start = result["ray_start_s"]
    lines = [
        f"{result['config']['policy']} on {result['config']['suite']} "
        f"({result['routes']} routes, {result['config']['workers']} in flight)",
        f"{'':22} {'wall s':>8} {'sum of routes s':>16} {'longest s':>10} {'DS':>7}",
        f"{'process pool':22} {p['wall_s']:8.1f} {p['route_s_sum']:16.1f} "
        f"{p['route_s_max']:10.1f} {p['driving_score']:7.2f}",
        f"{'ray':22} {r['wall_s']:8.1f} {r['route_s_sum']:16.1f} "
        f"{r['route_s_max']:10.1f} {r['driving_score']:7.2f}",
        f"ray start: {'joined a running instance' if start is None else f'{start:.1f} s'}; "
        f"ray overhead per route: {result['ray_overhead_s_per_route']:+.3f} s; "
        f"same results: {'yes' if result['same_results'] else 'NO'}",
        "",
        "extrapolation (assumptions below):",
        f"{'routes':>7} {'nodes':>6} {'cores':>6} {'wall s':>8}",
    ]
    lines += [f"{e['routes']:7d} {e['nodes']:6d} {e['cores']:6d} {e['wall_s']:8.1f}"
              for e in result["extrapolation"]]
    lines += [f"- {a}" for a in result["assumptions"]]
    return "\n".join(lines)
