"""Collect demonstration datasets from the embedded simulator (or a CARLA server), in the open
on-disk format of :mod:`drivevla.datasets.format` (Parquet shards + JSON metadata).

``collect(CollectConfig(suite=..., episodes=N, out=DIR))`` drives ``N`` episodes with the
privileged expert (or, for DAgger, a mix of a policy and the expert) in worker processes and
writes one Parquet shard per episode. What it guarantees:

- **Episodes and seeds.** Episode ``i`` drives route ``r = i % R`` of the suite (``R`` routes)
  for the ``k = i // R``-th time. Its reset seed is a hash-free function of ``(r, k)``:

  - routes whose seed lies in ``SEED_RANGES["train"]`` use it for ``k = 0`` and
    ``seed + k * R`` (wrapped inside the train range) after that; for a suite written by
    ``generate_suite(..., "train", ...)`` (consecutive seeds) every episode gets its own seed;
  - routes with a seed in ``SEED_RANGES["eval"]`` or ``SEED_RANGES["val"]`` are **refused**
    (held-out benchmark and validation seeds) unless ``allow_eval_seeds``; then the same rule
    applies inside that range;
  - routes with a seed in none of the ranges get
    ``SEED_RANGES["train"][0] + (r + k * R) mod size``.

  Instructions are rendered from the train phrasings (``instruction_split: "train"`` is forced
  into every route's simulator config) and the expert's explanations from its train split.
- **Crash safety and resume.** A shard is written to a temporary name and renamed when
  complete; only then does the main process append the episode's line to
  ``meta/episodes.jsonl`` (flushed and fsynced). Rerunning the same command skips every
  episode with a line and collects only the missing ones; a partial last line (a kill during
  the append) and lines whose shard vanished are dropped on resume. ``meta/info.json`` holds
  a fingerprint of everything that determines the data; it is written atomically when a
  collection starts or resumes and again at the end, and a different configuration in the
  same directory is refused. ``--episodes`` is not part of the fingerprint: a rerun with a
  larger count extends the dataset.
- **DAgger.** With a ``policy`` and ``beta < 1``, at every step the expert's control is
  applied with probability ``beta`` (a generator seeded from the episode seed) and the
  policy's otherwise. The expert is reset with the env and runs on every step, so its labels
  (plan, meta-action, reason, explanation) exist for every visited state; the ``driver``
  column says who drove.
- **Future trajectory.** ``future.waypoints`` is computed after the episode from the recorded
  poses (the path actually driven), in each frame's ego frame; entries past ``future.valid``
  are NaN.

- **CARLA.** With ``carla`` (a server), ``suite`` is a Leaderboard 2.0 / Bench2Drive route
  file; episodes cycle its routes, seeded ``0, 1, 2, ...`` (traffic and sensor noise), and
  the demonstrator is the box expert (:mod:`drivevla.planner.box_expert`: the lane-graph
  expert has no lane graph there). Same shards, columns, resume and DAgger.

One episode is recorded by :func:`drivevla.datasets.episode.collect_episode`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drivevla.agents.registry import make_policy
from drivevla.core.errors import read_json
from drivevla.core.execution import Executor, TaskLost, run_jobs
from drivevla.core.jsonio import json_ready, write_json_atomic
from drivevla.core.paths import exclusive_dir
from drivevla.core.provenance import provenance
from drivevla.core.types import CameraSpec
from drivevla.core.workers import init_worker
from drivevla.datasets.episode import EpisodeJob, collect_episode
from drivevla.datasets.format import (
    EPISODES_PATH,
    FEATURES,
    FUTURE_DT_S,
    FUTURE_STEPS,
    INFO_PATH,
    READER_FIELDS,
    ROUTE_TARGETS,
    SCHEMA_VERSION,
    read_episode_log,
)
from drivevla.datasets.reader import split_of
from drivevla.sim_bridge.carla.env import CarlaConnection
from drivevla.sim_bridge.carla.suite import carla_suite
from drivevla.sim_bridge.embedded.config import CAMERA_RIGS
from drivevla.sim_bridge.embedded.suites import SEED_RANGES, load_suite

__all__ = [
    "CollectConfig",
    "collect",
    "episode_seed",
    "parse_cameras",
    "plan_collection",
    "write_info",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_STEPS = 3000


@dataclass(frozen=True)
class CollectConfig:
    """What to collect and where (units: steps are control steps)."""

    suite: str
    episodes: int
    out: str
    workers: int = 2
    jpeg_quality: int = 90
    # camera rig for every episode (CameraSpec dicts); None: the suite's / simulator's default
    cameras: tuple[dict[str, Any], ...] | None = None
    # DAgger: a registered policy name or checkpoint directory, and the expert's share
    policy: str | None = None
    beta: float = 1.0
    split_seed: int = 0
    allow_eval_seeds: bool = False
    # cap on control steps per episode where the route's config sets none
    max_steps: int = DEFAULT_MAX_STEPS
    show_progress: bool = True
    # a CARLA server: ``suite`` is then a Leaderboard 2.0 / Bench2Drive route file, driven by
    # the box expert (no lane graph there); None: the embedded simulator
    carla: CarlaConnection | None = None

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes} must be >= 1")
        if not (1 <= self.jpeg_quality <= 100):
            raise ValueError(f"jpeg_quality={self.jpeg_quality} must be in [1, 100]")
        if not (0.0 <= self.beta <= 1.0):
            raise ValueError(f"beta={self.beta} must be in [0, 1]")
        if self.policy is None and self.beta != 1.0:
            raise ValueError("beta < 1 needs a policy to drive the other steps (--policy)")
        if self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps} must be >= 1")


# ---------------------------------------------------------------------------------- seeds


def episode_seed(
    route_index: int, repeat: int, route_seed: int, n_routes: int, allow_eval: bool = False
) -> int:
    """Reset seed of the ``repeat``-th episode of route ``route_index`` (see module docstring).

    Raises ``ValueError`` for a seed in the eval or val range unless ``allow_eval``."""

    for name in ("train", "eval", "val"):
        lo, hi = SEED_RANGES[name]
        if lo <= route_seed <= hi:
            if name != "train" and not allow_eval:
                raise ValueError(
                    f"route seed {route_seed} is in the held-out {name} range {SEED_RANGES[name]}"
                    "; collect from a training suite (e.g. --suite train) or pass "
                    "--allow-eval-seeds to collect from held-out seeds on purpose"
                )
            return lo + (route_seed - lo + repeat * n_routes) % (hi - lo + 1)
    lo, hi = SEED_RANGES["train"]
    return lo + (route_index + repeat * n_routes) % (hi - lo + 1)


def episode_id_of(index: int) -> str:
    return f"{index:06d}"


# ---------------------------------------------------------------------------------- the run


def _append_line(path: Path, record: dict[str, Any]) -> None:
    line = json.dumps(json_ready(record), sort_keys=False, allow_nan=False)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def parse_cameras(value: str) -> tuple[dict[str, Any], ...]:
    """``--cameras``: a named rig (:data:`~drivevla.sim_bridge.embedded.config.CAMERA_RIGS`),
    a JSON list (or one object) of CameraSpec dicts, or a path to such a JSON file."""

    if value in CAMERA_RIGS:
        return tuple(asdict(c) for c in CAMERA_RIGS[value])
    path = Path(value)
    if path.is_file():
        data = read_json(path)
    else:
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"--cameras must be a rig name {sorted(CAMERA_RIGS)}, JSON (a list of camera "
                f"dicts) or a JSON file: {exc}"
            ) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError("--cameras must be a non-empty JSON list of camera dicts")
    return tuple(asdict(CameraSpec.from_dict(dict(c))) for c in data)


@dataclass
class _Plan:
    suite_name: str
    jobs: list[EpisodeJob]
    cameras: list[dict[str, Any]]
    control_hz: float
    fingerprint: str
    identity: dict[str, Any] = field(default_factory=dict)
    source: str = "drivevla embedded simulator"


def _fingerprint(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


def _policy_id(config: CollectConfig) -> str | None:
    """The DAgger policy as the fingerprint names it (checked to exist: fail early)."""
    if config.policy is None:
        return None
    make_policy(config.policy)
    path = Path(config.policy)
    return str(path.resolve()) if path.is_dir() else config.policy


def _plan_carla(config: CollectConfig) -> _Plan:
    """Every route of the route file ``config.suite`` on ``config.carla``; the ``k``-th
    episode of route ``r`` (of ``n``) is seeded ``r + k * n`` (traffic and noise)."""
    suite = carla_suite(config.suite, config.carla)
    base: dict[str, Any] = {"max_steps": int(config.max_steps)}
    if config.cameras is not None:
        base["cameras"] = [dict(c) for c in config.cameras]
    first = suite.routes[0].sim_config(base)
    cams = [asdict(c) for c in first.observer.cameras]
    identity = {
        "schema_version": SCHEMA_VERSION, "backend": "carla", "suite": suite.name,
        "routes": [r.to_dict() for r in suite.routes],  # not the server: where, not what
        "route_configs": [r.sim_config(base).to_dict() for r in suite.routes],
        "jpeg_quality": config.jpeg_quality, "policy": _policy_id(config),
        "beta": config.beta, "split_seed": config.split_seed,
    }
    n = len(suite.routes)
    jobs = [EpisodeJob(index=i, episode_id=episode_id_of(i), route=route.to_dict(),
                       seed=i, sim_config=base, jpeg_quality=config.jpeg_quality,
                       out=str(config.out), policy=config.policy, beta=config.beta,
                       parent_pid=os.getpid(), carla_route=dataclasses.replace(route, seed=i))
            for i in range(config.episodes) for route in [suite.routes[i % n]]]
    return _Plan(suite.name, jobs, cams, first.control_hz, _fingerprint(identity), identity,
                 f"CARLA server, route file {Path(config.suite).name}")


def plan_collection(config: CollectConfig) -> _Plan:
    """Episodes, seeds and resolved simulator configs; validates the suite for collection."""
    if config.carla is not None:
        return _plan_carla(config)
    suite = load_suite(config.suite)
    n = len(suite.routes)
    for r, route in enumerate(suite.routes):  # fail before anything is written
        episode_seed(r, 0, route.seed, n, config.allow_eval_seeds)
    overrides: dict[str, Any] = {"instruction_split": "train"}
    if config.cameras is not None:
        overrides["cameras"] = [dict(c) for c in config.cameras]
    route_cfgs = []
    for route in suite.routes:
        cfg = route.sim_config().replace(**overrides)
        if cfg.max_steps is None:
            cfg = cfg.replace(max_steps=int(config.max_steps))
        if not cfg.cameras:
            raise ValueError(f"route {route.route_id!r} has no cameras; pass --cameras")
        if cfg.route_target_points != ROUTE_TARGETS:
            raise ValueError(
                f"route {route.route_id!r}: route_target_points={cfg.route_target_points}; "
                f"the dataset format stores {ROUTE_TARGETS}"
            )
        route_cfgs.append(cfg.to_dict())
    cams = route_cfgs[0]["cameras"]
    hz = route_cfgs[0]["control_hz"]
    for route, cfg in zip(suite.routes, route_cfgs, strict=True):
        if cfg["cameras"] != cams or cfg["control_hz"] != hz:
            raise ValueError(
                f"route {route.route_id!r} has other cameras or control_hz than the first route;"
                " one dataset needs one camera rig and rate (set them with --cameras)"
            )
    policy_id = _policy_id(config)
    identity = {
        "schema_version": SCHEMA_VERSION,
        "suite": suite.to_dict(),
        "route_configs": route_cfgs,
        "jpeg_quality": config.jpeg_quality,
        "policy": policy_id,
        "beta": config.beta,
        "split_seed": config.split_seed,
        "allow_eval_seeds": config.allow_eval_seeds,
    }
    fingerprint = _fingerprint(identity)
    jobs = []
    for i in range(config.episodes):
        r, k = i % n, i // n
        route = suite.routes[r]
        jobs.append(
            EpisodeJob(
                index=i,
                episode_id=episode_id_of(i),
                route=route.to_dict(),
                seed=episode_seed(r, k, route.seed, n, config.allow_eval_seeds),
                sim_config=route_cfgs[r],
                jpeg_quality=config.jpeg_quality,
                out=str(config.out),
                policy=config.policy,
                beta=config.beta,
                parent_pid=os.getpid(),
            )
        )
    return _Plan(suite.name, jobs, cams, hz, fingerprint, identity)


def _load_finished(out: Path) -> tuple[dict[str, dict[str, Any]], bool]:
    """Finished episodes by id from ``episodes.jsonl``; True when the file needs rewriting
    (a partial last line, a duplicate, or a line whose shard is missing)."""
    records, partial = read_episode_log(out / EPISODES_PATH, READER_FIELDS, resume=True)
    dirty = bool(partial)
    finished: dict[str, dict[str, Any]] = {}
    for rec in records:
        if not (out / rec["file"]).is_file():
            logger.warning(
                "episode %s has a line but no shard; collecting it again", rec["episode_id"]
            )
            dirty = True
            continue
        if rec["episode_id"] in finished:
            dirty = True
        finished[rec["episode_id"]] = rec
    return finished, dirty


def _claim(out: Path, plan: _Plan) -> None:
    info_path = out / INFO_PATH
    if info_path.is_file():
        info = read_json(info_path)
        old = info.get("collection", {}) if isinstance(info, dict) else {}
        if old.get("fingerprint") != plan.fingerprint:
            prev = old.get("identity", {})
            diff = sorted(k for k in plan.identity if prev.get(k) != plan.identity[k])
            raise ValueError(
                f"{out} holds a dataset collected with another configuration (differs in: "
                f"{', '.join(diff) or 'unknown'}); use a new --out directory, or rerun the "
                "original command to resume"
            )
    elif (out / EPISODES_PATH).exists() or (out / "data").exists():
        raise ValueError(
            f"{out} has data but no {INFO_PATH}: not a dataset this command can resume; "
            "use a new --out directory"
        )


def _split_of(episode_id: str, seed: int) -> str:

    return split_of(episode_id, seed)


def write_info(out: Path, plan: _Plan, config: CollectConfig, finished: dict[str, dict]) -> dict:
    """(Re)write ``meta/info.json`` atomically from the finished episodes."""

    names = [c["name"] for c in plan.cameras]
    features = {}
    for f in FEATURES:
        d = {"dtype": f.dtype, "shape": list(f.shape), "unit": f.unit, "frame": f.frame}
        d["description"] = f.description
        if f.name == "image.<camera>":
            for cam in names:
                features[f"image.{cam}"] = {**d, "description": f"JPEG-encoded RGB, camera {cam}"}
        else:
            features[f.name] = d
    ids = sorted(finished)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for eid in ids:
        splits[_split_of(eid, config.split_seed)].append(eid)
    frames = sum(int(finished[e]["n_frames"]) for e in ids)
    n_bytes = sum((out / finished[e]["file"]).stat().st_size for e in ids)
    info = {
        "schema_version": SCHEMA_VERSION,
        "source": plan.source,
        "suite": plan.suite_name,
        "features": features,
        "cameras": plan.cameras,
        "control_hz": plan.control_hz,
        "fps": plan.control_hz,
        "future": {"steps": FUTURE_STEPS, "dt_s": FUTURE_DT_S},
        "counts": {
            "episodes": len(ids),
            "frames": frames,
            "bytes": n_bytes,
            "episodes_requested": config.episodes,
        },
        "split_seed": config.split_seed,
        "splits": splits,
        "collection": {
            "fingerprint": plan.fingerprint,
            "identity": plan.identity,
            "config": {k: v for k, v in asdict(config).items() if k != "show_progress"},
        },
        "provenance": provenance(),
    }
    write_json_atomic(out / INFO_PATH, info)
    return info


def _worker_init() -> None:
    init_worker()


def collect(config: CollectConfig, executor: Executor | None = None) -> dict[str, Any]:
    """Collect (or resume) a dataset; returns a summary (episodes, frames, bytes, rates).

    ``executor``: where the episodes run (default: the local process pool; on Ray each episode
    is a task that writes its shard under ``config.out``, which must be a path every node
    sees, and this process appends its line; not part of the fingerprint: the same shards).
    Raises ``RuntimeError`` after writing everything else when some episodes failed."""
    out = Path(config.out)
    plan = plan_collection(config)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_dir(out, "meta/.lock", what="collection"):
        return _collect_locked(config, out, plan, executor or Executor())


def _collect_locked(
    config: CollectConfig, out: Path, plan: _Plan, executor: Executor
) -> dict[str, Any]:
    from tqdm import tqdm

    _claim(out, plan)
    finished, dirty = _load_finished(out)
    if dirty:
        tmp = out / f"{EPISODES_PATH}.{os.getpid()}.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in finished.values()), encoding="utf-8")
        os.replace(tmp, out / EPISODES_PATH)
    for stale in (out / "data").glob("*/.*.tmp"):  # shards of a killed run, never renamed
        stale.unlink(missing_ok=True)
    todo = [j for j in plan.jobs if j.episode_id not in finished]
    # start the workers first: their imports overlap the main process's provenance probe
    on_pool = config.workers > 0 and todo and executor.kind == "process"
    pool = _start_pool(config.workers, len(todo)) if on_pool else None
    try:
        write_info(out, plan, config, finished)
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if len(finished) - sum(j.episode_id in finished for j in plan.jobs):
        logger.info("%s also holds episodes beyond --episodes; they are kept", out)
    logger.info(
        "%s: %d episode(s) done, %d to collect with %d worker(s)",
        out,
        len(plan.jobs) - len(todo),
        len(todo),
        config.workers,
    )
    t0 = time.perf_counter()
    frames = 0
    failures: list[str] = []
    bar = tqdm(total=len(todo), unit="ep", desc="collect", disable=not config.show_progress)

    def done(record: dict[str, Any]) -> None:
        nonlocal frames
        _append_line(out / EPISODES_PATH, record)
        finished[record["episode_id"]] = record
        frames += int(record["n_frames"])
        bar.update(1)
        bar.set_postfix(frames=frames, fps=f"{frames / max(time.perf_counter() - t0, 1e-9):.0f}")

    try:
        if executor.kind != "process" and todo:
            _run_elsewhere(todo, config.workers, done, failures, executor)
        elif pool is None:
            for job in todo:  # in-process (debugging): nobody to outlive
                done(collect_episode(dataclasses.replace(job, parent_pid=None)))
        else:
            _run_pool(pool, todo, done, failures)
    finally:
        bar.close()
        write_info(out, plan, config, finished)
    summary = _summary(out, finished, len(todo), frames, time.perf_counter() - t0, failures)
    if failures:
        raise RuntimeError(
            f"{len(failures)} episode(s) failed ({', '.join(failures[:10])}); the others are "
            "saved: rerun the same command to retry them"
        )
    return summary


def _summary(
    out: Path, finished: dict[str, Any], n_todo: int, frames: int, wall: float,
    failures: list[str],
) -> dict[str, Any]:
    n_bytes = sum((out / finished[e]["file"]).stat().st_size for e in finished)
    total_frames = sum(int(r["n_frames"]) for r in finished.values())
    return {
        "out": str(out),
        "episodes": len(finished),
        "episodes_collected": n_todo - len(failures),
        "frames": total_frames,
        "frames_collected": frames,
        "bytes": n_bytes,
        "bytes_per_frame": n_bytes / max(total_frames, 1),
        "wall_time_s": wall,
        "frames_per_s": frames / max(wall, 1e-9),
        "failed": failures,
    }


def _run_elsewhere(
    todo: list[EpisodeJob], workers: int, done, failures: list[str], executor: Executor
) -> None:
    """The episodes on a non-local executor (Ray): no parent process to watch there; an
    episode whose task is lost after its retries counts as failed, as in the pool."""
    if workers < 1:
        raise ValueError(f"workers={workers} runs the episodes in this process; the "
                         f"{executor.kind} executor needs workers >= 1 (episodes in flight)")

    def lost(job: EpisodeJob, what: TaskLost) -> None:
        logger.error("episode %s (%s) failed after %d attempt(s): %r", job.episode_id,
                     job.route["id"], what.attempts, what.error)
        failures.append(job.episode_id)

    jobs = [dataclasses.replace(job, parent_pid=None) for job in todo]
    run_jobs(collect_episode, jobs, workers, lambda job, record: done(record), lost, executor)


def _warm_up() -> None:
    """Import what an episode needs, so that a worker is ready when its first job comes."""
    import pyarrow.parquet  # noqa: F401
    from PIL import Image  # noqa: F401


def _start_pool(workers: int, n_jobs: int) -> ProcessPoolExecutor:
    n = min(workers, n_jobs)
    pool = ProcessPoolExecutor(
        max_workers=n,
        mp_context=mp.get_context("spawn"),  # Panda3D and torch do not survive fork
        initializer=_worker_init,
    )
    for _ in range(n):
        pool.submit(_warm_up)
    return pool


def _run_pool(pool: ProcessPoolExecutor, todo: list[EpisodeJob], done, failures: list[str]) -> None:
    try:
        pending = {pool.submit(collect_episode, job): job for job in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    record = fut.result()
                except Exception as exc:
                    logger.error("episode %s (%s) failed: %r", job.episode_id, job.route["id"], exc)
                    failures.append(job.episode_id)
                    continue
                done(record)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
