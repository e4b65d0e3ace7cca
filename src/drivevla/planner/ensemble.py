"""Temporal ensembling of predicted trajectories (as in ACT's action chunking).

A policy that predicts 3 s of trajectory every 0.1 s has, at any tick, several predictions that
cover the next seconds: the current one and those of the last few ticks. Averaging them, each
carried to the current ego frame and time, damps the tick-to-tick jitter of a single-frame
model (a lane change that flips between left and right) at the cost of a little lag; recent
predictions weigh more (``half_life_s``), and a prediction older than ``window_s`` is dropped.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from drivevla.core.frames import ego_to_world, world_to_ego
from drivevla.core.types import EgoState


class TemporalEnsemble:
    def __init__(self, window_s: float, half_life_s: float, dt_s: float) -> None:
        if window_s < 0 or half_life_s <= 0 or dt_s <= 0:
            raise ValueError(f"need window_s >= 0, half_life_s > 0, dt_s > 0; got {window_s}, "
                             f"{half_life_s}, {dt_s}")
        self.window_s, self.half_life_s, self.dt_s = window_s, half_life_s, dt_s
        # (time, world-frame path from the ego's position then: (T+1, 2), speeds (T,))
        self._history: deque[tuple[float, np.ndarray, np.ndarray]] = deque()

    def reset(self) -> None:
        self._history.clear()

    def __call__(self, time_s: float, ego: EgoState, waypoints: np.ndarray,
                 speeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fuse the prediction made now (ego frame, ``dt_s`` apart) with the kept ones;
        returns the fused waypoints (ego frame) and speeds, same shapes."""
        waypoints = np.asarray(waypoints, dtype=np.float64)
        speeds = np.asarray(speeds, dtype=np.float64)
        steps = len(speeds)
        xy, yaw = np.array([ego.x, ego.y]), float(ego.yaw)
        path = np.vstack([xy, ego_to_world(waypoints, xy, yaw)])
        if self._history and self._history[-1][0] > time_s:
            self._history.clear()  # the clock went back: a new route
        while self._history and time_s - self._history[0][0] > self.window_s + 1e-9:
            self._history.popleft()  # too old
        if self._history and self._history[-1][0] == time_s:
            self._history.pop()  # acting again on the same observation replaces, never adds
        self._history.append((time_s, path, speeds))
        grid = np.arange(steps + 1) * self.dt_s  # the times of a path's points, from its start
        wsum = np.zeros(steps)
        acc_xy = np.zeros((steps, 2))
        acc_v = np.zeros(steps)
        for t0, p, v in self._history:
            age = time_s - t0
            times = age + grid[1:]  # the query times, on that prediction's clock
            ok = times <= grid[-1] + 1e-9
            if not ok.any():
                continue
            w = math.pow(0.5, age / self.half_life_s)
            px = np.interp(times[ok], grid, p[:, 0])
            py = np.interp(times[ok], grid, p[:, 1])
            acc_xy[ok] += w * world_to_ego(np.stack([px, py], axis=1), xy, yaw)
            acc_v[ok] += w * np.interp(times[ok], grid[1:], v)
            wsum[ok] += w
        return acc_xy / wsum[:, None], acc_v / wsum
