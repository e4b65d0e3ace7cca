"""Drive one route of a suite with a controller and record the result (and a video)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivevla.benchmarks.video import VideoWriter, compose_frame
from drivevla.core.provenance import provenance
from drivevla.core.types import Control
from drivevla.planner.route_follower import RouteFollower
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.suites import RouteSpec

logger = logging.getLogger(__name__)

# A driver maps the env and the latest (obs, info) to a Control and an explanation caption.
Driver = Callable[[EmbeddedDrivingEnv, dict[str, Any], dict[str, Any]], tuple[Control, str]]


def rule_based_driver() -> Callable[[EmbeddedDrivingEnv], Driver]:
    """Factory of the scripted route follower (pure pursuit + gap keeping + red lights)."""

    def make(env: EmbeddedDrivingEnv) -> Driver:
        follower = RouteFollower(env)

        def drive(_env, _obs, info):
            control = follower.control(info)
            v_des = follower.target_speed(info)
            if v_des < 0.5:
                why = "Stopping: something is in the way or the light is not green."
            elif v_des < info["ego"]["speed_mps"] - 1.0:
                why = "Slowing down for the road ahead."
            else:
                why = "Following the route."
            return control, why

        return drive

    return make


def drive_route(
    spec: RouteSpec,
    make_driver: Callable[[EmbeddedDrivingEnv], Driver],
    out_dir: Path,
    *,
    video: bool = False,
    base_config: dict[str, Any] | None = None,
    max_steps: int = 3000,
) -> dict[str, Any]:
    """Drive ``spec`` to its end; write ``{out_dir}/{route_id}.json`` (and ``.mp4``)."""
    cfg = spec.sim_config(base_config)
    if max_steps and cfg.max_steps is None:
        cfg = cfg.replace(max_steps=max_steps)
    env = EmbeddedDrivingEnv(cfg)
    writer = VideoWriter(out_dir / f"{spec.route_id}.mp4", cfg.control_hz) if video else None
    try:
        obs, info = env.reset(seed=spec.seed, options=spec.reset_options())
        driver = make_driver(env)
        while True:
            control, why = driver(env, obs, info)
            if writer is not None:
                cam = obs.get("cameras", {}).get(cfg.cameras[0].name) if cfg.cameras else None
                captions = [
                    f"Instruction: {info['instruction']}",
                    f"Why: {why}",
                    f"t={info['time_s']:.1f}s  v={info['ego']['speed_mps']:.1f} m/s  "
                    f"RC={info['route_completion']:.0f}%",
                ]
                writer.add(compose_frame(cam, env.render_bev(), captions))
            obs, _, terminated, truncated, info = env.step(control)
            if terminated or truncated:
                break
        result = info["route_result"]
        if truncated and not terminated:
            result["status"] = "Failed - step limit reached"
    finally:
        env.close()
        if writer is not None:
            writer.close()
    record = {
        "route": spec.to_dict(),
        "result": result,
        "config": cfg.to_dict(),
        "seed": spec.seed,
        **provenance(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{spec.route_id}.json.tmp"
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tmp.replace(out_dir / f"{spec.route_id}.json")  # atomic: a finished route is never half-written
    return record
