"""Record one demonstration episode: drive it, encode its frames and write its Parquet shard.

Runs in a worker process of :func:`drivevla.datasets.collect.collect` (see that module for
seeds, resume and DAgger). Per frame it records every camera as JPEG, the ego state, the
control applied, the route, the instruction, the expert's labels (plan, meta-action, reason,
reason object, explanation), the actors within ``ACTOR_RADIUS_M`` and the ground-truth
perception targets (:func:`drivevla.perception.bev_targets.frame_targets`); after the episode
it computes the future trajectory from the poses actually driven.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.agents.agent import Agent
from drivevla.agents.hooks import DaggerMixing, ParentWatch, parent_gone
from drivevla.agents.registry import make_policy
from drivevla.agents.rollout import Episode, Hook, Tick, run_episode
from drivevla.core.env import Env
from drivevla.core.frames import world_to_ego, wrap_angle
from drivevla.core.jsonio import json_ready
from drivevla.core.provenance import versions
from drivevla.core.types import HighLevelCommand
from drivevla.datasets.format import FUTURE_DT_S, FUTURE_STEPS, episode_file, feature_names
from drivevla.datasets.reader import arrow_schema
from drivevla.language.instructions import colour_name
from drivevla.perception.bev_targets import frame_targets
from drivevla.planner.box_expert import BoxExpert
from drivevla.planner.expert import ExpertPolicy
from drivevla.sim_bridge.carla.env import CarlaDrivingEnv
from drivevla.sim_bridge.embedded.config import SimConfig
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.suites import RouteSpec

ACTOR_RADIUS_M = 60.0
ROW_GROUP_FRAMES = 64  # rows per Parquet row group: random access reads one group
_PARENT_CHECK_EVERY = 25  # control steps between checks that the main process is alive
_COMMANDS = list(HighLevelCommand)


@dataclass(frozen=True)
class EpisodeJob:
    index: int
    episode_id: str
    route: dict[str, Any]
    seed: int
    sim_config: dict[str, Any]
    jpeg_quality: int
    out: str
    policy: str | None = None
    beta: float = 1.0
    parent_pid: int | None = None
    # a CARLA route (sim_bridge.carla.suite.CarlaRouteSpec): the episode runs on its server
    # with ``sim_config`` as the run's base config; None: the embedded simulator
    carla_route: Any = None

    @property
    def file(self) -> str:
        return episode_file(self.index, self.episode_id)


# ---------------------------------------------------------------------------------- geometry


def future_waypoints(
    poses: np.ndarray, n_frames: int, stride: float
) -> tuple[np.ndarray, np.ndarray]:
    """Future ego positions in each frame's ego frame, from the poses actually driven.

    ``poses``: (N, 3) world ``x, y, yaw`` of every observation of the episode (the frames and
    the final observation after the last step); ``stride``: control steps per
    ``FUTURE_DT_S``. Returns ``(waypoints (n_frames, FUTURE_STEPS, 2) float64, valid
    (n_frames,) int32)``; waypoints past ``valid`` are NaN. A fractional stride interpolates
    positions linearly between observations."""

    poses = np.asarray(poses, dtype=np.float64)
    last = len(poses) - 1
    out = np.full((n_frames, FUTURE_STEPS, 2), np.nan)
    valid = np.zeros(n_frames, dtype=np.int32)
    for i in range(n_frames):
        pts = []
        for k in range(1, FUTURE_STEPS + 1):
            j = i + k * stride
            if j > last + 1e-9:
                break
            j0 = int(math.floor(j + 1e-9))
            frac = j - j0
            if frac < 1e-9 or j0 >= last:
                pts.append(poses[min(j0, last), :2])
            else:
                pts.append((1.0 - frac) * poses[j0, :2] + frac * poses[j0 + 1, :2])
        if pts:
            valid[i] = len(pts)
            out[i, : len(pts)] = world_to_ego(np.array(pts), poses[i, :2], poses[i, 2])
    return out, valid


def _actors_json(actors: list[Any], ego_xy: np.ndarray, ego_yaw: float) -> str:
    """Actors within ACTOR_RADIUS_M in the ego frame, rounded to 1 mm / 1 mrad / 1 mm/s."""

    out = []
    for a in actors:
        d = math.hypot(a.x - ego_xy[0], a.y - ego_xy[1])
        if d > ACTOR_RADIUS_M:
            continue
        x, y = world_to_ego(np.array([a.x, a.y]), ego_xy, ego_yaw)
        out.append(
            {
                "id": int(a.actor_id),
                "kind": a.kind.value,
                "x": round(float(x), 3),
                "y": round(float(y), 3),
                "yaw": round(float(wrap_angle(a.yaw - ego_yaw)), 3),
                "length": round(float(a.length), 3),
                "width": round(float(a.width), 3),
                "speed": round(float(a.speed_mps), 3),
                "colour": colour_name(a.color),
            }
        )
    out.sort(key=lambda o: math.hypot(o["x"], o["y"]))
    return json.dumps(out, separators=(",", ":"))


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image (PIL, 4:2:0 chroma subsampling)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def _plan_6(decision: Any) -> tuple[np.ndarray, np.ndarray]:
    """The decision's first 3 s at 0.5 s (resampled by time if its ``dt_s`` differs)."""
    wp = np.asarray(decision.waypoints, dtype=np.float64)
    sp = np.asarray(decision.target_speeds, dtype=np.float64)
    if abs(float(decision.dt_s) - FUTURE_DT_S) < 1e-9 and len(wp) >= FUTURE_STEPS:
        return wp[:FUTURE_STEPS], sp[:FUTURE_STEPS]
    t_src = float(decision.dt_s) * np.arange(1, len(wp) + 1)
    t = FUTURE_DT_S * np.arange(1, FUTURE_STEPS + 1)
    wps = np.stack([np.interp(t, t_src, wp[:, 0]), np.interp(t, t_src, wp[:, 1])], axis=1)
    return wps, np.interp(t, t_src, sp)


# ---------------------------------------------------------------------------------- one episode


class _FrameRecorder(Hook):
    """The columns of the episode's shard, one row per tick (see the module docstring), and
    every pose driven (the frames' and the final one, for the future trajectories)."""

    def __init__(self, job: EpisodeJob, cameras: list[str], expert: Any,
                 typed: bool = False) -> None:
        self.job, self.cameras, self.expert = job, cameras, expert
        self.typed = typed  # read the typed observation (a backend without the raw layout)
        self._steer = 0.0  # the last applied steer (the typed observation has no wheel)
        self.cols: dict[str, list[Any]] = {name: [] for name in feature_names(cameras)}
        self.poses: list[tuple[float, float, float]] = []
        self.kind_counts: collections.Counter[str] = collections.Counter()
        self.env: Env | None = None

    def on_reset(self, env: Env, driver: Any, info: dict[str, Any]) -> None:
        self.env = env

    def before_tick(self, tick: Tick) -> None:
        ego = tick.info["ego"]
        self.poses.append((ego["x"], ego["y"], ego["yaw"]))

    def on_end(self, episode: Episode) -> None:
        ego = episode.info["ego"]
        self.poses.append((ego["x"], ego["y"], ego["yaw"]))  # the final pose: a future, not a frame

    def after_decision(self, tick: Tick) -> None:
        info, ego = tick.info, tick.info["ego"]
        control, decision = tick.control, tick.decision
        wps, speeds = _plan_6(decision)
        c = self.cols
        c["episode_id"].append(self.job.episode_id)
        c["frame_index"].append(info["step"])
        c["timestamp_s"].append(float(info["time_s"]))
        c["scenario"].append(info["scenario"])
        c["intent"].append(info["intent"])
        images, motion, targets, command = self._inputs(tick)
        for name in self.cameras:
            c[f"image.{name}"].append(encode_jpeg(images[name], self.job.jpeg_quality))
        c["ego.x"].append(float(ego["x"]))
        c["ego.y"].append(float(ego["y"]))
        c["ego.yaw"].append(float(ego["yaw"]))
        for part, value in zip(("speed", "accel", "yaw_rate", "steer"), motion, strict=True):
            c[f"ego.{part}"].append(float(value))
        c["control.throttle"].append(float(control.throttle))
        c["control.steer"].append(float(control.steer))
        c["control.brake"].append(float(control.brake))
        self._steer = float(control.steer)
        c["route.targets"].append(np.asarray(targets, dtype=np.float32).ravel())
        c["route.command"].append(command.value)
        c["route.progress"].append(float(info["route_progress_m"]))
        c["instruction"].append(info["instruction"])
        c["instruction.kind"].append(info["instruction_kind"])
        c["instruction.navigation"].append(info["navigation_instruction"])
        c["expert.waypoints"].append(wps.astype(np.float32).ravel())
        c["expert.target_speeds"].append(speeds.astype(np.float32))
        c["expert.meta_action"].append(json_ready(decision.meta_action) or "")
        c["expert.reason"].append(str(decision.reason or ""))
        c["expert.reason_object"].append(
            json.dumps(json_ready(self.expert.last_object), sort_keys=True)
        )
        c["expert.explanation"].append(decision.explanation or "")
        state = self.env.privileged_state()
        c["actors"].append(_actors_json(state.actors, np.array([ego["x"], ego["y"]]),
                                        float(ego["yaw"])))
        c["driver"].append(tick.driver)
        for name, value in frame_targets(state).items():
            c[name].append(value)
        self.kind_counts[info["instruction_kind"]] += 1

    def _inputs(self, tick: Tick) -> tuple[dict[str, np.ndarray], tuple[float, ...], Any,
                                           HighLevelCommand]:
        """(images, (speed, accel, yaw rate, steer), route targets, command) the policy saw:
        the embedded simulator's raw observation, or the typed one (``typed``)."""
        if not self.typed:
            obs = tick.obs
            return (obs["cameras"], tuple(obs["ego"][:4]), obs["route"],
                    _COMMANDS[int(obs["command"])])
        o = tick.observation
        return (o.images, (o.ego.speed_mps, o.ego.accel_mps2, o.ego.yaw_rate_rps, self._steer),
                o.route.target_points, o.route.command)


def _route_spec(job: EpisodeJob) -> RouteSpec:
    r = job.route
    return RouteSpec(
        r["id"],
        r["scenario"],
        r["intent"],
        job.seed,
        r.get("instruction"),
        dict(r.get("config") or {}),
        tuple(r.get("events") or ()),
    )


@dataclass
class _EpisodeParts:
    """What one episode drives: the route, the env, the demonstrator and the rig."""

    spec: Any  # RouteSpec or CarlaRouteSpec (route_id, scenario, intent, reset_options)
    env: Env
    expert: Any  # ExpertPolicy or BoxExpert
    cameras: list[str]
    control_hz: float
    config: dict[str, Any]
    typed: bool  # the recorder reads the typed observation


def _episode_parts(job: EpisodeJob) -> _EpisodeParts:
    """The embedded simulator with the lane-graph expert, or (``job.carla_route``) a CARLA
    server with the box expert (the one that needs no lane graph)."""
    if job.carla_route is not None:
        cfg = job.carla_route.sim_config(job.sim_config)
        cams = cfg.observer.cameras
        expert = BoxExpert(explanation_split="train", seed=job.seed, cameras=cams)
        return _EpisodeParts(job.carla_route, CarlaDrivingEnv(cfg), expert,
                             [c.name for c in cams], cfg.control_hz, cfg.to_dict(), True)
    sim = SimConfig.from_dict(job.sim_config)
    expert = ExpertPolicy(explanation_split="train", seed=job.seed)
    return _EpisodeParts(_route_spec(job), EmbeddedDrivingEnv(sim), expert,
                         [c.name for c in sim.cameras], sim.control_hz, sim.to_dict(), False)


def collect_episode(job: EpisodeJob) -> dict[str, Any]:
    """Drive one episode, write its shard (tmp + rename) and return its ``episodes.jsonl`` line.

    The line is appended by the caller, after this returns (so after the rename)."""
    t0 = time.perf_counter()
    parts = _episode_parts(job)
    spec, env = parts.spec, parts.env
    recorder = _FrameRecorder(job, parts.cameras, parts.expert, parts.typed)
    mixing = job.policy is not None and job.beta < 1.0
    hooks: list[Hook] = [DaggerMixing(lambda: make_policy(job.policy), job.beta, job.seed)]
    hooks = (hooks if mixing else []) + [recorder, ParentWatch(job.parent_pid, _PARENT_CHECK_EVERY)]
    try:
        episode = run_episode(
            env, Agent(parts.expert), hooks, seed=job.seed, options=spec.reset_options()
        )
        route_result = env.route_result().to_dict()
    finally:
        env.close()
    final, n_frames = _write_shard(job, parts.control_hz, recorder)
    return {
        "episode_id": job.episode_id,
        "scenario": spec.scenario,
        "intent": spec.intent,
        "seed": job.seed,
        "n_frames": n_frames,
        "file": job.file,
        "config": parts.config,
        "route_result": json_ready(route_result),
        "instruction": episode.info["navigation_instruction"],
        "instruction_kind_counts": dict(sorted(recorder.kind_counts.items())),
        "driver": job.policy if mixing else parts.expert.name,
        "beta": float(job.beta),
        "versions": versions(),
        # optional fields of this collector (see format.EPISODE_FIELDS)
        "episode_index": job.index,
        "route_id": spec.route_id,
        "bytes": final.stat().st_size,
        "wall_time_s": round(time.perf_counter() - t0, 3),
    }


def _write_shard(job: EpisodeJob, control_hz: float, recorder: _FrameRecorder
                 ) -> tuple[Path, int]:
    """Add the future trajectories and write the Parquet shard (fsync, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols, cameras = recorder.cols, recorder.cameras
    n_frames = len(cols["episode_id"])
    stride = FUTURE_DT_S * control_hz
    future, valid = future_waypoints(np.array(recorder.poses), n_frames, stride)
    cols["future.waypoints"] = [w.astype(np.float32).ravel() for w in future]
    cols["future.valid"] = valid.tolist()
    schema = arrow_schema(cameras)
    table = pa.Table.from_pydict({name: cols[name] for name in schema.names}, schema=schema)
    final = Path(job.out) / job.file
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_FRAMES)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    if parent_gone(job.parent_pid):
        tmp.unlink(missing_ok=True)
        os._exit(3)
    os.replace(tmp, final)
    return final, n_frames
