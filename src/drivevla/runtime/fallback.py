"""What the car drives when the policy has nothing valid in time: the last valid trajectory,
re-timed to the current pose, then a controlled stop along it.

Both are ordinary :class:`~drivevla.core.types.Decision` objects in the current ego frame,
so the same controller follows them. Re-timing: the last valid decision's waypoints go
through the world frame (the pose it was made at) into the current ego frame; the car's
position is projected onto that path, and the path is walked from there with the old speed
profile shifted by the time elapsed since it was made (the part already driven is dropped).
A stop keeps the same path (the lane the policy was following) with the speed falling from
the current speed at a comfortable deceleration to standstill. Without any valid trajectory
(the policy failed on its first tick) the path is straight ahead.
"""

from __future__ import annotations

import numpy as np

from drivevla.core.frames import ego_to_world, world_to_ego
from drivevla.core.types import Decision, EgoState, MetaAction

STEPS = 6  # a fallback plan covers 6 x 0.5 s = 3 s, the contract's minimum
STEP_S = 0.5


def path_in_current_frame(decision: Decision, made_at: EgoState, now: EgoState) -> np.ndarray:
    """(N + 1, 2) the decision's path, from the pose it was made at through its waypoints,
    in the ego frame of ``now`` (metres)."""
    pts = np.vstack([np.zeros((1, 2)), np.asarray(decision.waypoints, dtype=np.float64)])
    world = ego_to_world(pts, made_at.xy, made_at.yaw)
    return world_to_ego(world, now.xy, now.yaw)


def project_on_path(path: np.ndarray) -> float:
    """Arc length (m) along ``path`` of the point nearest to the origin (the car now)."""
    seg = np.diff(path, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    best_s, best_d, s0 = 0.0, np.inf, 0.0
    for a, d, length in zip(path[:-1], seg, lengths, strict=True):
        u = 0.0 if length < 1e-9 else float(np.clip(-a @ d / (length * length), 0.0, 1.0))
        dist = float(np.linalg.norm(a + u * d))
        if dist < best_d:
            best_s, best_d = s0 + u * length, dist
        s0 += length
    return best_s


def point_at_arc(path: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Points at arc lengths ``s`` along ``path`` (extrapolated along its last segment, or
    straight ahead of the first point for a path that does not move)."""
    seg = np.diff(path, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    keep = lengths > 1e-6
    if not keep.any():
        return path[0] + np.stack([s, np.zeros_like(s)], axis=-1)
    pts = np.vstack([path[:1], path[1:][keep]])
    seg, lengths = seg[keep], lengths[keep]
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    s = np.asarray(s, dtype=np.float64)
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    u = (s - cum[i]) / lengths[i]
    return pts[i] + seg[i] * u[:, None]


def _walk(path: np.ndarray, s0: float, speeds: np.ndarray, v_now: float) -> np.ndarray:
    """Waypoints every STEP_S seconds driving ``speeds`` along ``path`` from arc ``s0``
    (trapezoid integration from the current speed)."""
    prev = np.concatenate([[max(v_now, 0.0)], speeds[:-1]])
    s = s0 + np.cumsum(0.5 * (prev + speeds) * STEP_S)
    return point_at_arc(path, s)


def hold_decision(last: Decision, made_at: EgoState, now: EgoState, elapsed_s: float
                  ) -> Decision:
    """The last valid decision re-timed: its path from the car's current position, its
    speed profile shifted by ``elapsed_s`` (the last speed held beyond its end)."""
    path = path_in_current_frame(last, made_at, now)
    t_old = np.arange(1, len(last.target_speeds) + 1) * last.dt_s
    t_new = elapsed_s + np.arange(1, STEPS + 1) * STEP_S
    speeds = np.interp(t_new, t_old, last.target_speeds).clip(min=0.0)
    waypoints = _walk(path, project_on_path(path), speeds, now.speed_mps)
    return Decision(waypoints, speeds, dt_s=STEP_S, meta_action=last.meta_action,
                    reason=last.reason)


def stop_decision(last: Decision | None, made_at: EgoState | None, now: EgoState,
                  decel_mps2: float) -> Decision:
    """A stop from the current speed at ``decel_mps2`` along the last valid path (straight
    ahead without one)."""
    if last is None or made_at is None:
        path = np.array([[0.0, 0.0], [1.0, 0.0]])
        s0 = 0.0
    else:
        path = path_in_current_frame(last, made_at, now)
        s0 = project_on_path(path)
    v_now = max(float(now.speed_mps), 0.0)
    speeds = (v_now - decel_mps2 * np.arange(1, STEPS + 1) * STEP_S).clip(min=0.0)
    waypoints = _walk(path, s0, speeds, v_now)
    return Decision(waypoints, speeds, dt_s=STEP_S, meta_action=MetaAction.STOP)
