"""Drive one route of a suite with a controller and record the result (and a video)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivevla.agents.rollout import Driver, Hook, RouteFollowerDriver, Tick, run_episode
from drivevla.benchmarks.video import Caption, DriveVideo
from drivevla.core.env import Env
from drivevla.core.paths import safe_child
from drivevla.core.provenance import provenance
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.suites import RouteSpec

logger = logging.getLogger(__name__)


def rule_based_driver() -> Callable[[Env], Driver]:
    """Factory of the scripted route follower (pure pursuit + gap keeping + red lights)."""

    def make(env: Env) -> Driver:
        return RouteFollowerDriver()

    return make


def _why(driver: Driver, info: dict[str, Any]) -> str:
    """The caption explaining a scripted driver's speed choice ("Following the route.")."""
    follower = getattr(driver, "follower", None)
    if follower is None:
        return "-"
    v_des = follower.target_speed(info)
    if v_des < 0.5:
        return "Stopping: something is in the way or the light is not green."
    if v_des < info["ego"]["speed_mps"] - 1.0:
        return "Slowing down for the road ahead."
    return "Following the route."


class _DriveVideo(DriveVideo):
    """The shared video layout; the explanation is the scripted driver's speed choice (it
    has no reason head, so no ``Reason:`` row)."""

    def caption(self, tick: Tick | None, info: dict[str, Any]) -> Caption:
        return dataclasses.replace(super().caption(tick, info),
                                   explanation=_why(self.driver, info))


def drive_route(
    spec: RouteSpec,
    make_driver: Callable[[Env], Driver],
    out_dir: Path,
    *,
    video: bool = False,
    base_config: dict[str, Any] | None = None,
    max_steps: int = 3000,
) -> dict[str, Any]:
    """Drive ``spec`` to its end; write ``{out_dir}/{route_id}.json`` (and ``.mp4``).

    ``make_driver(env)``: the rollout driver, built once the env is reset."""
    cfg = spec.sim_config(base_config)
    if max_steps and cfg.max_steps is None:
        cfg = cfg.replace(max_steps=max_steps)
    video_path = safe_child(out_dir, spec.route_id, ".mp4", what="route id")  # before any work
    env = EmbeddedDrivingEnv(cfg)
    camera = cfg.cameras[0].name if cfg.cameras else None
    recorder = _DriveVideo(video_path, cfg.control_hz, camera) if video else None
    hooks: list[Hook] = [recorder] if recorder is not None else []
    try:
        episode = run_episode(
            env, make_driver, hooks, seed=spec.seed, options=spec.reset_options()
        )
        result = episode.info["route_result"]
        if episode.truncated and not episode.terminated:
            result["status"] = "Failed - step limit reached"
    finally:
        env.close()
        if recorder is not None and recorder.writer is not None:
            recorder.writer.close()
    record = {
        "route": spec.to_dict(),
        "result": result,
        "config": cfg.to_dict(),
        "seed": spec.seed,
        **provenance(),
    }
    if recorder is not None and recorder.writer is not None:
        record["video"] = recorder.record()  # what the video shows (its infraction banners)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = safe_child(out_dir, spec.route_id, ".json.tmp", prefix=".", what="route id")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    # atomic: a finished route is never half-written
    tmp.replace(safe_child(out_dir, spec.route_id, ".json", what="route id"))
    return record
