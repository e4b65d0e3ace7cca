"""Simulator throughput: control steps per second per scenario family, without cameras,
with one 320x180 front camera and with the front+sides rig (three of them), pinned to one
CPU core.

Only ``env.step`` is timed (the scripted route follower that chooses the controls, the typed
observation the rollout loop builds and ``reset`` are not); resets happen whenever a route
ends, and every family cycles through its intents with seeds from the training range.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from drivevla.agents.rollout import Hook, RouteFollowerDriver, Tick, run_episode
from drivevla.core.provenance import provenance
from drivevla.core.types import CameraSpec
from drivevla.sim_bridge.embedded.config import CAMERA_RIGS
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.scenarios import FAMILIES

CAMERA_MODES = {
    "no_camera": [],
    "front_320x180": [CameraSpec(name="front", width=320, height=180, fov_deg=90.0)],
    "front+sides_320x180": list(CAMERA_RIGS["front+sides"]),
}


class _StepTimer(Hook):
    """Times ``env.step`` alone (the driver's control and ``reset`` are not timed)."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self._t0 = 0.0

    def before_step(self, tick: Tick) -> None:
        self._t0 = time.perf_counter()

    def after_step(self, tick: Tick, info: dict[str, Any]) -> None:
        self.step_times.append(time.perf_counter() - self._t0)


def measure(family: str, cameras: list[CameraSpec], steps: int, seed: int = 0) -> dict[str, Any]:
    env = EmbeddedDrivingEnv({"scenario": family, "cameras": cameras})
    intents = FAMILIES[family].intents
    timer = _StepTimer()
    step_times = timer.step_times
    resets = 0
    try:
        while len(step_times) < steps:
            run_episode(
                env,
                RouteFollowerDriver(),
                [timer],
                seed=seed + resets,
                options={"intent": intents[resets % len(intents)]},
                max_ticks=steps - len(step_times),
            )
            resets += 1
    finally:
        env.close()
    arr = np.array(step_times)
    return {
        "family": family,
        "steps": int(arr.size),
        "episodes": resets,
        "steps_per_s": float(arr.size / arr.sum()),
        "ms_per_step_mean": float(arr.mean() * 1e3),
        "ms_per_step_p95": float(np.percentile(arr, 95) * 1e3),
    }


def run(
    out: Path, steps: int = 1000, families: list[str] | None = None, pin_core: int | None = 0
) -> dict[str, Any]:
    if pin_core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {pin_core})
    families = families or sorted(FAMILIES)
    rows = []
    with tqdm(total=len(families) * len(CAMERA_MODES), desc="bench sim", unit="run") as bar:
        for family in families:
            row: dict[str, Any] = {"family": family}
            for mode, cams in CAMERA_MODES.items():
                bar.set_postfix_str(f"{family} {mode}")
                row[mode] = measure(family, cams, steps)
                bar.update(1)
            rows.append(row)
    result = {
        "benchmark": "sim_throughput",
        "unit": "control steps per second (env.step only), one CPU core",
        "config": {
            "steps_per_run": steps,
            "families": families,
            "pinned_core": pin_core,
            "camera_modes": {k: [c.__dict__ for c in v] for k, v in CAMERA_MODES.items()},
            "control_hz": 10.0,
        },
        "seed": 0,
        "rows": rows,
        **provenance(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{'family':<14}{'no camera (steps/s)':>22}{'front 320x180 (steps/s)':>26}"
        f"{'ms/step (cam, p95)':>22}{'front+sides (steps/s)':>24}"
    ]
    for row in result["rows"]:
        cam, rig = row["front_320x180"], row["front+sides_320x180"]
        lines.append(
            f"{row['family']:<14}{row['no_camera']['steps_per_s']:>22.0f}"
            f"{cam['steps_per_s']:>26.0f}{cam['ms_per_step_p95']:>22.2f}"
            f"{rig['steps_per_s']:>24.0f}"
        )
    return "\n".join(lines)
