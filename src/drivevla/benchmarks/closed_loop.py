"""The closed-loop benchmark: drive every route of a suite with a policy, score it, resume.

``run_closed_loop(policy, suite, out)`` drives each route in its own simulator (worker
processes started with ``spawn``: Panda3D and torch do not survive ``fork`` after init; each
worker builds its env and its policy through :func:`drivevla.agents.registry.make_policy`)
and writes, atomically as each route finishes, ``out/routes/{route_id}.json``: the
``RouteResult``, per-route metrics, the route spec, the config, the seed and the provenance.
With ``executor=Executor("ray")`` each route is a Ray task whose record this process writes,
to the same file (:mod:`drivevla.core.execution`, docs/ray.md).

- **Resume**: a rerun into the same ``out`` never redoes a route whose file exists; it runs the
  missing ones and recomputes ``out/summary.json`` from all route files. ``out/run.json``
  records the policy, the suite and a fingerprint of the routes, config, ``max_steps``,
  ``explain_every``, ``runtime`` and the checkpoint's content (sha256 of its files); another
  policy, suite, config, option or checkpoint content into the same ``out`` is refused.
- **Checkpoints** are loaded once in the parent before any route starts: a broken one
  (truncated weights, bad ``config.json``, unknown key) raises the policy's
  :class:`~drivevla.vla.policy.CheckpointError`. A second run into the same ``out`` while
  one runs fails with :class:`~drivevla.core.paths.OutputFolderBusyError`.
- **Failures**: a policy that raises, returns something that is not a valid ``Decision``
  (NaN waypoints, ...) or makes the controller fail ends its route as
  ``"Failed - Agent crashed"`` (DS 0, RC as reached, the error and a traceback tail in the
  route file); a simulator error, ``"Failed - Simulation crashed"`` (both DS 0). The run goes
  on. A route whose policy cannot be built or reset, or whose simulator cannot be built or
  reset, is **not a finished route**: nothing is written under ``routes/``, the error goes to
  ``out/setup_failures/{route_id}.json``, the other routes run, and the run then fails with
  :class:`AgentSetupError` (no summary); the same command, rerun, retries those routes. A worker
  process that dies (segfault, out of memory) breaks the process pool: the routes that were
  in flight or queued are **retried once**, each in a fresh single-worker process; a route
  whose worker dies again is recorded as ``"Failed - Agent crashed"`` with RC 0 and the error.
- **Metrics**: CARLA Leaderboard 2.0 criteria through :func:`scoring.aggregate`; Bench2Drive
  success (:func:`scoring.success`) and DS without the minimum-speed factors; Bench2Drive
  comfort (:mod:`.comfort`); LangAuto-style instruction metrics (:mod:`.instruction_metrics`).

Units in ``summary.json``: driving scores, route completion, success rate and comfort in
percent; infraction score in [0, 1]; instruction success and the refusal / speed-request rates
as fractions in [0, 1] (``None`` when there was nothing to count).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import statistics
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.agents import registry
from drivevla.agents.agent import Agent
from drivevla.agents.hooks import ParentWatch
from drivevla.agents.rollout import Hook, run_episode
from drivevla.benchmarks import scoring
from drivevla.benchmarks.closed_loop_hooks import (  # noqa: F401  (re-exported)
    CheckDecision,
    Explainer,
    InvalidDecisionError,
    RouteVideo,
    Trace,
    check_decision,
    explanation_metrics,
)
from drivevla.benchmarks.closed_loop_run import (
    check_carla_options,
    check_policy_loads,
    check_run_options,
    claim_out_dir,
    resolve_factory,
    run_meta,
    with_policy_cameras,
)
from drivevla.benchmarks.closed_loop_runtime import (
    RuntimeRecord,
    WallPacer,
    check_runtime,
    faults_summary,
    make_driver,
    runtime_summary,
)
from drivevla.benchmarks.closed_loop_summary import (  # noqa: F401  (re-exported)
    CRASH_STATUSES,
    PROTOCOL,
    STATUS_AGENT_CRASHED,
    STATUS_AGENT_SETUP,
    STATUS_SIM_CRASHED,
    _CrashedRouteResult,
    driving_score_no_min_speed,
    format_table,
    result_from_dict,
    summarize,
)
from drivevla.benchmarks.comfort import route_comfort
from drivevla.benchmarks.instruction_metrics import (
    route_instruction_metrics,
)
from drivevla.core.errors import DriveVLAError
from drivevla.core.execution import Executor, TaskLost, run_jobs
from drivevla.core.jsonio import write_json_atomic
from drivevla.core.paths import exclusive_dir, safe_child
from drivevla.core.provenance import provenance
from drivevla.runtime.fault_spec import FaultSpec
from drivevla.sim_bridge.carla.env import CarlaConnection, CarlaDrivingEnv, CarlaEnvConfig
from drivevla.sim_bridge.carla.suite import carla_suite
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.suites import RouteSpec, Suite, load_suite

logger = logging.getLogger(__name__)

_TRACEBACK_TAIL_CHARS = 4000
_PARENT_CHECK_EVERY = 50  # ticks between checks that the run's main process is alive
SUMMARY_FILE = "summary.json"
SETUP_FAILURES_DIR = "setup_failures"  # routes that never started: not results, retried


class AgentSetupError(DriveVLAError, RuntimeError):
    """Routes whose policy or simulator could not be built or reset: they have no result, so
    the run has no summary; the finished routes are kept and a rerun retries these."""


# ---------------------------------------------------------------------------------- one route


@dataclass(frozen=True)
class RouteJob:
    spec: RouteSpec
    policy: str
    policy_factory: Any  # a picklable factory registered in the parent process, or None
    out: str
    suite: str
    video: bool = False
    base_config: dict[str, Any] | None = None
    max_steps: int | None = None
    parent_pid: int | None = None
    # versions and hardware measured once by the run (workers need not import torch for it)
    provenance: dict[str, Any] | None = None
    # every this many ticks a policy with ``explain()`` explains itself, and the explanation
    # is checked against the expert's reason at that tick (0: never)
    explain_every: int = 0
    # the video shows the shadow expert's reason beside the policy's (where it runs)
    video_expert_reason: bool = False
    runtime: str = "none"  # the driver: see closed_loop_runtime.RUNTIMES
    faults: dict[str, Any] | None = None  # FaultSpec.to_dict() of the run (None: no faults)
    clock: str = "simulated"  # the runtime's clock: see closed_loop_runtime.CLOCKS

    @property
    def route_file(self) -> Path:
        return safe_child(Path(self.out) / "routes", self.spec.route_id, ".json", what="route id")

    @property
    def setup_failure_file(self) -> Path:
        return safe_child(Path(self.out) / SETUP_FAILURES_DIR, self.spec.route_id, ".json",
                          what="route id")


def _error_record(phase: str, exc: BaseException, step: int | None, t: float | None) -> dict:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {
        "phase": phase,
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback_tail": tb[-_TRACEBACK_TAIL_CHARS:],
        "step": step,
        "time_s": t,
    }


_STATUS_OF_PHASE = {
    "setup": STATUS_AGENT_SETUP,
    "observation": STATUS_SIM_CRASHED,
    "agent": STATUS_AGENT_CRASHED,
    "explanation": STATUS_AGENT_CRASHED,
    "simulation": STATUS_SIM_CRASHED,
}


def _agent_factory(job: RouteJob):
    """Builds the job's agent once the env is reset (the rollout's ``setup`` phase)."""

    def make(env: Any) -> Agent:
        if job.policy_factory is not None:
            registry.policy_names()  # the built-in names first (the registry loads them
            registry.register_policy(job.policy, job.policy_factory)  # only when empty)
        return make_driver(registry.make_policy(job.policy), job.runtime,
                           FaultSpec.from_dict(job.faults), env.config.dt_s, job.clock)

    return make


def _route_hooks(job: RouteJob, cfg: Any, trace: Trace) -> tuple[list[Hook], RouteVideo | None]:
    hooks: list[Hook] = [CheckDecision(), trace]
    explainer = Explainer(job.explain_every, trace) if job.explain_every > 0 else None
    hooks += [explainer] if explainer is not None else []
    video = None
    if job.video:
        path = safe_child(Path(job.out) / "videos", job.spec.route_id, ".tmp.mp4", prefix=".",
                          what="route id")
        video = RouteVideo(path, cfg.control_hz,
                           explainer if job.video_expert_reason else None)
        hooks.append(video)
    hooks += [RuntimeRecord(trace)] if job.runtime != "none" or job.faults else []
    hooks += [WallPacer(cfg.dt_s)] if job.clock == "wall" else []
    hooks.append(ParentWatch(job.parent_pid, _PARENT_CHECK_EVERY))
    return hooks, video


def drive_route(job: RouteJob) -> dict[str, Any]:
    """Drive one route with the job's policy, score it and write its route file.

    Errors of the policy, the controller or the simulator end the route as a failure (see the
    module docstring); only errors writing the file propagate. Returns the record; a route
    that could not be set up is written to ``setup_failures/``, not ``routes/``, and its
    record has ``"setup_failed": True``."""
    return write_route_record(job, compute_route(job))


def write_route_record(job: RouteJob, record: dict[str, Any]) -> dict[str, Any]:
    """Write a record of :func:`compute_route` atomically to the job's route file (or, for a
    route that could not be set up, to ``setup_failures/``); returns it."""
    if record.get("setup_failed"):
        write_json_atomic(job.setup_failure_file, record)
        return record
    job.setup_failure_file.unlink(missing_ok=True)  # an earlier failed setup, now retried
    write_json_atomic(job.route_file, record)
    return record


def compute_route(job: RouteJob) -> dict[str, Any]:
    """Drive and score one route (see :func:`drive_route`) without writing its record (the
    video, if asked for, is written under the job's ``out``): what a Ray task returns."""

    spec = job.spec
    t0 = time.perf_counter()
    cfg = spec.sim_config(job.base_config)
    if job.max_steps is not None and cfg.max_steps is None:
        cfg = cfg.replace(max_steps=int(job.max_steps))
    trace = Trace()
    hooks, video = _route_hooks(job, cfg, trace)
    error: dict[str, Any] | None = None
    status: str | None = None
    env = None
    result: dict[str, Any]
    try:
        env = CarlaDrivingEnv(cfg) if isinstance(cfg, CarlaEnvConfig) else EmbeddedDrivingEnv(cfg)
        episode = run_episode(
            env,
            _agent_factory(job),
            hooks,
            seed=spec.seed,
            options=spec.reset_options(),
            capture_errors=True,
        )
        if episode.error is not None:
            err = episode.error
            status = _STATUS_OF_PHASE[err.phase]
            error = _error_record(err.phase, err.cause, err.step, err.time_s)
            env.terminate_route(status.removeprefix("Failed - "))
        result = env.route_result().to_dict()
    except Exception as exc:  # the env could not be built or reset: the route never started
        error, status = _error_record("setup", exc, None, None), STATUS_SIM_CRASHED
        result = _empty_result(spec, status)
    finally:
        if env is not None:
            env.close()
        if video is not None and video.writer is not None:
            video.writer.close()
            final = safe_child(Path(job.out) / "videos", spec.route_id, ".mp4", what="route id")
            os.replace(video.writer.path, final)
    if status in CRASH_STATUSES:
        result["status"] = status
        result["driving_score"] = 0.0
    if error is not None:
        logger.warning("route %s: %s: %s", spec.route_id, status, error["message"])
    record = _route_record(job, cfg.to_dict(), result, trace, trace.info, error)
    record["wall_time_s"] = time.perf_counter() - t0
    if video is not None and video.writer is not None:  # what the video shows, for the report
        record["video"] = video.record(f"videos/{final.name}")
    if error is not None and error["phase"] == "setup":
        record["setup_failed"] = True
    return record


def _empty_result(spec: RouteSpec, status: str) -> dict[str, Any]:
    return _CrashedRouteResult(
        spec.route_id,
        spec.scenario,
        spec.intent,
        spec.seed,
        0.0,
        0.0,
        1.0,
        status=status,
        instruction_success=False,
    ).to_dict()


def _route_record(
    job: RouteJob,
    config: dict[str, Any] | None,
    result: dict[str, Any],
    trace: Trace,
    info: dict[str, Any],
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    rr = result_from_dict(result)
    pose = np.asarray(trace.pose, dtype=np.float64).reshape(-1, 4)
    dt = 1.0 / float((config or {}).get("control_hz", 10.0))
    events = list(info.get("instruction_events", []))
    metrics = {
        "driving_score": rr.driving_score,
        "driving_score_no_min_speed": driving_score_no_min_speed(rr),
        "route_completion": rr.route_completion,
        "infraction_penalty": rr.infraction_penalty,
        "success": scoring.success(rr),
        "comfort": route_comfort(pose[:, 0], pose[:, 1], pose[:, 2], pose[:, 3], dt=dt),
        "instruction_success": result.get("instruction_success"),
        "instruction": route_instruction_metrics(
            events,
            trace.times,
            trace.active,
            trace.refused,
            trace.speeds,
            result.get("infractions", []),
            trace.outside_times,
        ),
        "n_ticks": len(trace.times),
        "explanations": explanation_metrics(trace),
        "sensor_faults": dict(sorted(trace.sensor_faults.items())),
        "runtime": trace.runtime,  # the real-time runner's accounting (None without it)
        "faults": trace.faults,  # faults injected by kind (None without fault injection)
    }
    drive = trace.drive_record() if trace.times or trace.pose else None
    return {
        "protocol": PROTOCOL,
        "policy": job.policy,
        "suite": job.suite,
        "route": job.spec.to_dict(),
        "status": result["status"],
        "result": result,
        "metrics": metrics,
        "error": error,
        "instruction_events": events,
        "navigation_instruction": info.get("navigation_instruction"),
        "config": config,
        "seed": job.spec.seed,
        "provenance": _route_provenance(job),
        "drive": drive,  # per-tick speeds, path and route for the report
    }


def _route_provenance(job: RouteJob) -> dict[str, Any]:
    if job.provenance is None:
        return provenance()
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return {**job.provenance, "created_utc": now, "pid": os.getpid()}


def _failure_record(
    job: RouteJob, exc: BaseException, why: str, status: str = STATUS_AGENT_CRASHED
) -> dict[str, Any]:
    """Record a route whose worker could not report (it died): RC 0, the error kept."""
    result = _empty_result(job.spec, status)
    error = _error_record("worker", exc, None, None)
    error["message"] = f"{why}: {error['message']}"
    record = _route_record(job, None, result, Trace(), {}, error)
    write_json_atomic(job.route_file, record)
    return record


# ---------------------------------------------------------------------------------- the pool


def _execute(
    jobs: list[RouteJob], workers: int, on_done, executor: Executor | None = None
) -> list[RouteJob]:
    """Run the jobs on ``executor`` (:mod:`drivevla.core.execution`; default the process pool);
    ``on_done(record)`` for each, once its file is written. Returns the jobs retried after a
    worker died. A process-pool worker writes its route's file; a Ray task returns the record
    and this process writes it (the same file either way)."""
    on_ray = executor is not None and executor.kind == "ray"

    def on_result(job: RouteJob, record: dict[str, Any]) -> None:
        on_done(write_route_record(job, record) if on_ray else record)

    def on_lost(job: RouteJob, lost: TaskLost) -> None:
        if lost.died:
            times = {1: "once", 2: "twice"}.get(lost.attempts, f"{lost.attempts} times")
            record = _failure_record(job, lost.error,
                                     f"the worker process died {times} on this route")
        else:  # the harness, not the policy (drive_route catches those)
            record = _failure_record(job, lost.error, "the route's worker failed",
                                     STATUS_SIM_CRASHED)
        on_done(record)

    fn = compute_route if on_ray else drive_route
    return run_jobs(fn, jobs, workers, on_result, on_lost, executor)


# ---------------------------------------------------------------------------------- run


def _load_records(out: Path, suite: Suite) -> dict[str, dict[str, Any]]:
    records = {}
    for spec in suite.routes:
        path = safe_child(out / "routes", spec.route_id, ".json", what="route id")
        if not path.is_file():
            continue
        try:
            records[spec.route_id] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:  # cannot happen with atomic writes
            logger.warning("ignoring unreadable route file %s (%s); rerunning it", path, exc)
    return records


def _run_fields(
    meta: dict[str, Any],
    suite_obj: Suite,
    suite: str | Path,
    explain_every: int,
    video: bool,
    workers: int,
    t0: float,
    jobs: list[RouteJob],
    done: dict[str, Any],
    retried: list[RouteJob],
) -> dict[str, Any]:
    """What the summary says about the run itself (policy, config, seeds, provenance)."""
    return {
        "policy": meta["policy"],
        "suite": suite_obj.name,
        "config": {
            "suite_source": str(suite),
            "base_config": meta["base_config"],
            "max_steps": meta["max_steps"],
            "explain_every": explain_every,
            "runtime": meta["runtime"],
            "clock": meta["clock"],
            "faults": meta["faults"],
            "fingerprint": meta["fingerprint"],
        },
        "seeds": [s.seed for s in suite_obj.routes],
        "provenance": provenance(),
        "run": {
            "wall_time_s": time.perf_counter() - t0,
            "routes_run": len(jobs),
            "routes_skipped": len(done),
            "routes_retried_after_worker_death": [j.spec.route_id for j in retried],
            "workers": workers,
            "video": video,
        },
    }


def run_closed_loop(
    policy: str,
    suite: str | Path,
    out: Path,
    workers: int = 1,
    video: bool = False,
    base_config: dict | None = None,
    max_steps: int | None = None,
    explain_every: int = 0,
    *,
    progress: bool = True,
    print_table: bool = True,
    executor: Executor | None = None,
    video_expert_reason: bool = False,
    runtime: str = "none",
    faults: FaultSpec | None = None,
    clock: str = "simulated",
    carla: CarlaConnection | None = None,
) -> dict:
    """Drive every route of ``suite`` with ``policy`` (see the module docstring).

    ``workers``: routes in flight at once (0 runs in this process, without crash isolation).
    ``executor``: where they run (:class:`~drivevla.core.execution.Executor`; default the
    local process pool; never part of the resume fingerprint: the results are the same).
    ``video_expert_reason``: the videos show the shadow expert's reason beside the policy's
    (a debug view; only where the explainer's shadow expert runs). ``runtime``: the driver
    (:mod:`.closed_loop_runtime`), ``clock`` its clock (``simulated`` or ``wall``);
    ``faults``: what to inject (:class:`FaultSpec`; all three part of the resume
    fingerprint). ``carla``: drive on that CARLA server, ``suite`` being a Leaderboard 2.0 /
    Bench2Drive route file (:mod:`drivevla.sim_bridge.carla.suite`). Returns the summary
    (also written to ``out/summary.json``)."""
    t0 = time.perf_counter()
    out = Path(out)
    executor = _check_executor(executor, workers)
    check_run_options(max_steps, explain_every, workers)
    check_runtime(runtime, clock)
    if carla is not None:
        check_carla_options(explain_every, video, runtime, faults)
    suite_obj = load_suite(suite) if carla is None else carla_suite(suite, carla)
    factory = resolve_factory(policy)
    base_config = with_policy_cameras(base_config, check_policy_loads(policy))
    for spec in suite_obj.routes:  # every route's config is valid before any route starts
        spec.sim_config(base_config)
    meta_provenance = provenance()
    fault_dict = faults.to_dict() if faults is not None and faults.active else None
    meta = run_meta(policy, suite_obj, suite, base_config, max_steps, explain_every, runtime,
                    fault_dict, clock)
    meta.update(protocol=PROTOCOL, **meta_provenance)
    with exclusive_dir(out, ".lock", what="evaluation"):  # a second run into `out` fails at once
        claim_out_dir(out, meta)
        done = _load_records(out, suite_obj)
        todo = [s for s in suite_obj.routes if s.route_id not in done]
        if done:
            logger.info("%s: %d route(s) already done, %d to run", out, len(done), len(todo))
        parent_pid = os.getpid() if workers > 0 and executor.kind == "process" else None
        jobs = [
            RouteJob(spec, policy, factory, str(out), suite_obj.name, video, base_config,
                     max_steps, parent_pid, meta_provenance, explain_every, video_expert_reason,
                     runtime, fault_dict, clock)
            for spec in todo
        ]
        retried = _drive_jobs(jobs, workers, done, len(suite_obj.routes), policy, progress,
                              executor)
        _raise_setup_failures(out, suite_obj)
        records = _load_records(out, suite_obj)
        missing = [s.route_id for s in suite_obj.routes if s.route_id not in records]
        if missing:
            raise RuntimeError(f"route file(s) missing after the run: {missing}")
        summary = summarize([records[s.route_id] for s in suite_obj.routes])
        ordered = [records[s.route_id] for s in suite_obj.routes]
        summary["runtime"] = runtime_summary(ordered)
        summary["faults"] = {"spec": fault_dict, "injected": faults_summary(ordered)}
        summary.update(_run_fields(meta, suite_obj, suite, explain_every, video, workers, t0,
                                   jobs, done, retried))
        summary["run"]["executor"] = executor.describe()
        write_json_atomic(out / SUMMARY_FILE, summary)
    if print_table:
        print(format_table(summary))
    return summary


def _raise_setup_failures(out: Path, suite: Suite) -> None:
    failed = {}
    for spec in suite.routes:
        path = safe_child(out / SETUP_FAILURES_DIR, spec.route_id, ".json", what="route id")
        if path.is_file():
            failed[spec.route_id] = json.loads(path.read_text(encoding="utf-8"))["error"]
    if not failed:
        return
    first_id, first = next(iter(failed.items()))
    raise AgentSetupError(
        f"{len(failed)} of {len(suite.routes)} route(s) could not be set up, so the run has no "
        f"summary: {', '.join(failed)}. Route {first_id}: {first['type']}: {first['message']} "
        f"(tracebacks in {out / SETUP_FAILURES_DIR}). The other routes are saved; rerun the "
        "same command to retry these."
    )


def _check_executor(executor: Executor | None, workers: int) -> Executor:
    executor = executor or Executor()
    if executor.kind != "process" and workers == 0:
        raise ValueError(f"workers=0 runs the routes in this process; the {executor.kind} "
                         "executor needs workers >= 1 (routes in flight at once)")
    return executor


def _drive_jobs(
    jobs: list[RouteJob], workers: int, done: dict[str, Any], n_routes: int, policy: str,
    progress: bool, executor: Executor | None = None,
) -> list[RouteJob]:
    """Run the jobs under a progress bar showing the running mean DS; returns the jobs retried
    after a worker died."""
    from tqdm import tqdm

    scores = [r["metrics"]["driving_score"] for r in done.values()]
    bar = tqdm(total=n_routes, initial=len(done), desc=f"closed-loop {policy}", unit="route",
               disable=not progress)

    def on_done(record: dict[str, Any]) -> None:
        bar.update(1)
        if record.get("setup_failed"):
            return
        scores.append(record["metrics"]["driving_score"])
        bar.set_postfix(DS=f"{statistics.fmean(scores):.1f}")

    if scores:
        bar.set_postfix(DS=f"{statistics.fmean(scores):.1f}")
    try:
        return _execute(jobs, workers, on_done, executor) if jobs else []
    finally:
        bar.close()
