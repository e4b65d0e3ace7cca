"""Open-loop planning metrics on nuScenes-style samples: L2, collision and off-drivable-area
rates at 1/2/3 s.

Every planner predicts 6 ego-frame waypoints (x forward, y left, metres) 0.5 s apart; the
ground truth is the logged ego future at the same steps. Two conventions for "the metric at
T seconds" are in use and published tables mix them (``../shared/METRICS.md``):

- **ST-P3** (also VAD, DriveVLM, OpenDriveVLA): the mean over the steps up to ``2T``
  (``"stp3"``);
- **UniAD**: the value at step ``2T`` (``"uniad"``).

"avg" is the mean of the 1, 2 and 3 s values. Every output of this module carries its
convention's name.

Collision: the ego box (:data:`EGO_LENGTH_M` x :data:`EGO_WIDTH_M`, nuScenes' ego as in
ST-P3 / VAD / UniAD) is placed at each predicted waypoint, heading along the path (the
direction from the previous waypoint, from the origin for the first), and checked against
the annotated boxes of the same future step with an exact oriented-rectangle overlap test
(separating axes). The published code rasterises both into a 0.5 m BEV grid instead; exact
polygons have no quantisation, so a box that the grid merges with a nearby cell may count
there and not here. ST-P3 / VAD count vehicles and pedestrians; UniAD vehicles only. As in
ST-P3's code, a step at which the logged ego box itself overlaps an annotated box (an
annotation or reference-point artefact) is not counted for any planner.

Off the drivable area: where the data has a drivable-area map (the ``map`` table's raster
masks, 0.1 m per pixel, which real nuScenes and our export both ship), the same ego box at
each predicted waypoint is sampled at 15 points (a 5 x 3 grid over it, corners included); a
step is off the drivable area when any of them is off the mask. Steps where the logged
future is off it too are not counted (the same mask as for collisions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "CONVENTIONS",
    "EGO_LENGTH_M",
    "EGO_WIDTH_M",
    "HORIZONS_S",
    "STEP_S",
    "at_horizons",
    "boxes_overlap",
    "collision_steps",
    "collision_table",
    "ego_footprints",
    "l2_errors",
    "l2_table",
    "masked_collisions",
    "offroad_steps",
    "per_command",
]

STEP_S = 0.5  # seconds between waypoints
FUTURE_STEPS = 6  # 3 s
HORIZONS_S = (1, 2, 3)
EGO_LENGTH_M = 4.084  # nuScenes' ego (Renault Zoe), as ST-P3 / VAD / UniAD use
EGO_WIDTH_M = 1.85
CONVENTIONS = {
    "stp3": "ST-P3/VAD: metric at T s = mean over the steps up to T",
    "uniad": "UniAD: metric at T s = value at T",
}
_MIN_HEADING_STEP_M = 0.05  # a shorter step keeps the previous heading (a stopped car)


def l2_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance (m) between predicted and logged waypoints at every step.

    ``pred`` and ``gt``: (..., 6, 2) in the same ego frame. Returns (..., 6)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.shape[-2:] != (FUTURE_STEPS, 2):
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must both be (..., 6, 2)")
    return np.linalg.norm(pred - gt, axis=-1)


def at_horizons(per_step: np.ndarray, convention: str) -> dict[str, float]:
    """The 1/2/3 s values and their average of a per-sample, per-step quantity.

    ``per_step`` (N, 6): an L2 error (m) or a 0/1 collision flag per sample and step.
    ``"stp3"``: at T s, the mean over samples of the mean over steps 1..2T; ``"uniad"``: the
    mean over samples of step 2T. Keys ``"1s"``, ``"2s"``, ``"3s"``, ``"avg"``; NaN for no
    samples."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; valid: {list(CONVENTIONS)}")
    values = np.asarray(per_step, np.float64).reshape(-1, FUTURE_STEPS)
    out: dict[str, float] = {}
    for t in HORIZONS_S:
        k = int(round(t / STEP_S))
        if len(values) == 0:
            out[f"{t}s"] = math.nan
        elif convention == "stp3":
            out[f"{t}s"] = float(values[:, :k].mean(axis=1).mean())
        else:
            out[f"{t}s"] = float(values[:, k - 1].mean())
    out["avg"] = float(np.mean([out[f"{t}s"] for t in HORIZONS_S]))
    return out


def l2_table(l2: np.ndarray) -> dict[str, dict[str, float]]:
    """L2 (m) at 1/2/3 s and avg in both conventions from (N, 6) per-step errors
    (:func:`l2_errors`): ``{"stp3": {...}, "uniad": {...}}``."""
    return {conv: at_horizons(l2, conv) for conv in CONVENTIONS}


def ego_footprints(
    waypoints: np.ndarray,
    length_m: float = EGO_LENGTH_M,
    width_m: float = EGO_WIDTH_M,
    forward_offset_m: float = 0.0,
) -> np.ndarray:
    """(6, 4, 2) ego-frame corners of the ego box at each waypoint, counter-clockwise from
    rear-right.

    The heading at step k is the direction from waypoint k-1 (the origin for k = 1) to
    waypoint k; a step shorter than 5 cm keeps the previous heading (0 at the start).
    ``forward_offset_m``: how far ahead of the waypoint (the reference point) the box centre
    sits, along the heading (0 for a box-centre reference, as our export; ST-P3 uses 0.5 m
    for nuScenes' rear-axle ego pose)."""
    wps = np.asarray(waypoints, np.float64).reshape(-1, 2)
    prev, yaw = np.zeros(2), 0.0
    out = np.empty((len(wps), 4, 2))
    hl, hw = length_m / 2.0, width_m / 2.0
    local = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw]]) + [forward_offset_m, 0.0]
    for k, p in enumerate(wps):
        d = p - prev
        if math.hypot(d[0], d[1]) >= _MIN_HEADING_STEP_M:
            yaw = math.atan2(d[1], d[0])
        c, s = math.cos(yaw), math.sin(yaw)
        out[k] = local @ np.array([[c, s], [-s, c]]) + p
        prev = p
    return out


def boxes_overlap(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Whether the rectangle ``box`` (4, 2) overlaps each of ``others`` (M, 4, 2).

    Separating-axis test on the 4 edge normals (two per rectangle); touching counts as
    overlap. Returns (M,) bool."""
    box = np.asarray(box, np.float64)
    others = np.asarray(others, np.float64).reshape(-1, 4, 2)
    if len(others) == 0:
        return np.zeros(0, dtype=bool)
    own_axes = np.stack([box[1] - box[0], box[3] - box[0]])  # (2, 2)
    their_axes = np.stack([others[:, 1] - others[:, 0], others[:, 3] - others[:, 0]], 1)
    axes = np.concatenate([np.broadcast_to(own_axes, (len(others), 2, 2)), their_axes], 1)
    proj_a = np.einsum("ca,mka->mkc", box, axes)  # (M, 4 axes, 4 corners)
    proj_b = np.einsum("mca,mka->mkc", others, axes)
    separated = (proj_a.max(-1) < proj_b.min(-1)) | (proj_b.max(-1) < proj_a.min(-1))
    return ~separated.any(axis=1)


def collision_steps(
    waypoints: np.ndarray,
    boxes_per_step: Sequence[np.ndarray],
    forward_offset_m: float = 0.0,
    length_m: float = EGO_LENGTH_M,
    width_m: float = EGO_WIDTH_M,
) -> np.ndarray:
    """(6,) bool: whether the ego box at waypoint k (:func:`ego_footprints`) overlaps any of
    the annotated boxes of future step k, ``boxes_per_step[k]`` (M_k, 4, 2) in the same ego
    frame."""
    ego = ego_footprints(waypoints, length_m, width_m, forward_offset_m)
    if len(boxes_per_step) != len(ego):
        raise ValueError(f"{len(boxes_per_step)} steps of boxes for {len(ego)} waypoints")
    return np.array([bool(boxes_overlap(ego[k], np.asarray(b)).any())
                     for k, b in enumerate(boxes_per_step)], dtype=bool)


def footprint_points(footprints: np.ndarray, along: int = 5, across: int = 3) -> np.ndarray:
    """(K, along * across, 2): a grid of points over each (4, 2) footprint of ``footprints``
    (K, 4, 2) (rear-right, front-right, front-left, rear-left), corners included."""
    u = np.linspace(0.0, 1.0, along)[:, None, None]  # rear -> front
    v = np.linspace(0.0, 1.0, across)[None, :, None]  # right -> left
    out = []
    for rr, fr, fl, rl in np.asarray(footprints, np.float64):
        right, left = rr + u * (fr - rr), rl + u * (fl - rl)
        out.append((right + v * (left - right)).reshape(-1, 2))
    return np.stack(out) if out else np.zeros((0, along * across, 2))


def offroad_steps(waypoints: np.ndarray, on_drivable: Callable[[np.ndarray], np.ndarray],
                  forward_offset_m: float = 0.0) -> np.ndarray:
    """(6,) bool: whether the ego box at each waypoint leaves the drivable area.
    ``on_drivable``: (M, 2) ego-frame points -> (M,) bool, True on the drivable area."""
    points = footprint_points(ego_footprints(waypoints, forward_offset_m=forward_offset_m))
    on = np.asarray(on_drivable(points.reshape(-1, 2)), bool).reshape(points.shape[:2])
    return ~on.all(axis=1)


def masked_collisions(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, 6) bool: the planner's collision flags with the steps where the logged future
    itself collides cleared (ST-P3's mask). ``pred`` and ``gt``: (N, 6) flags."""
    return np.asarray(pred, bool) & ~np.asarray(gt, bool)


def collision_table(
    pred_all: np.ndarray, gt_all: np.ndarray, pred_vehicle: np.ndarray, gt_vehicle: np.ndarray
) -> dict[str, dict[str, float]]:
    """Collision rate (fraction of samples, 0..1) at 1/2/3 s and avg in both conventions.

    ``*_all``: (N, 6) flags against vehicles and pedestrians; ``*_vehicle``: against vehicles
    only; ``pred_*`` the planner's, ``gt_*`` the logged future's (:func:`collision_steps`).
    ``"stp3"``: all boxes, mean over the steps up to T; ``"uniad"``: vehicles only, the step at
    T. Steps where the logged future collides are not counted (:func:`masked_collisions`)."""
    return {
        "stp3": at_horizons(masked_collisions(pred_all, gt_all), "stp3"),
        "uniad": at_horizons(masked_collisions(pred_vehicle, gt_vehicle), "uniad"),
    }


def per_command(commands: Sequence[str], values: np.ndarray, convention: str
                ) -> dict[str, dict[str, float]]:
    """:func:`at_horizons` of ``values`` (N, 6) for each driving command separately
    (``{"left": {...}, "right": {...}, "straight": {...}}``, only the commands present),
    with ``"n"`` the number of samples of that command."""
    commands = list(commands)
    values = np.asarray(values, np.float64).reshape(-1, FUTURE_STEPS)
    out: dict[str, dict[str, float]] = {}
    for command in sorted(set(commands)):
        keep = np.array([c == command for c in commands], dtype=bool)
        out[command] = {**at_horizons(values[keep], convention), "n": int(keep.sum())}
    return out
