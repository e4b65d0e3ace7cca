"""Open-loop metrics on hand-built geometry, each value computed by hand in the comment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.benchmarks.open_loop_metrics import (
    EGO_LENGTH_M,
    EGO_WIDTH_M,
    at_horizons,
    boxes_overlap,
    collision_steps,
    collision_table,
    ego_footprints,
    l2_errors,
    l2_table,
    per_command,
)
from drivevla.core.scene import box_footprint

GT = np.array([[5.0 * k, 0.0] for k in range(1, 7)])  # straight ahead at 10 m/s
HL, HW = EGO_LENGTH_M / 2, EGO_WIDTH_M / 2  # 2.042, 0.925


def test_l2_both_conventions_by_hand():
    # lateral errors 0.1 .. 0.5 m, and a 3-4-5 triangle (0.36, 0.48) -> 0.6 m at 3 s
    pred = GT + np.array([[0, 0.1], [0, 0.2], [0, 0.3], [0, 0.4], [0, 0.5], [0.36, 0.48]])
    l2 = l2_errors(pred, GT)
    np.testing.assert_allclose(l2, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    table = l2_table(l2[None])
    # ST-P3: means of the first 2, 4, 6 steps: 0.15, 0.25, 0.35; avg 0.25
    assert table["stp3"] == pytest.approx({"1s": 0.15, "2s": 0.25, "3s": 0.35, "avg": 0.25})
    # UniAD: steps 2, 4, 6: 0.2, 0.4, 0.6; avg 0.4
    assert table["uniad"] == pytest.approx({"1s": 0.2, "2s": 0.4, "3s": 0.6, "avg": 0.4})


def test_l2_averages_samples_after_steps():
    l2 = np.array([[1.0, 1, 1, 1, 1, 1], [0.0, 2, 0, 0, 0, 4]])
    # ST-P3 1 s: sample means 1.0 and 1.0 -> 1.0; 3 s: 1.0 and 1.0 -> 1.0
    # UniAD 1 s: (1 + 2) / 2 = 1.5; 2 s: (1 + 0) / 2 = 0.5; 3 s: (1 + 4) / 2 = 2.5
    assert at_horizons(l2, "stp3")["1s"] == pytest.approx(1.0)
    assert at_horizons(l2, "stp3")["3s"] == pytest.approx(1.0)
    assert at_horizons(l2, "uniad") == pytest.approx(
        {"1s": 1.5, "2s": 0.5, "3s": 2.5, "avg": 1.5})
    with pytest.raises(ValueError, match="convention"):
        at_horizons(l2, "vad")


def _car_beside_step2(y: float) -> list[np.ndarray]:
    """A 4 m x 2 m car at step 2 (1.0 s, the ego at x = 10), centre (10, y); others empty."""
    boxes = [np.zeros((0, 4, 2)) for _ in range(6)]
    boxes[1] = box_footprint(10.0, y, 0.0, 4.0, 2.0)[None]
    return boxes


def test_box_just_outside_or_inside_the_path_flips_the_flag():
    # the ego box at step 2 spans |y| <= 0.925, the car |y - c| <= 1.0: touching at 1.925 m
    outside = collision_steps(GT, _car_beside_step2(1.925 + 0.01))
    inside = collision_steps(GT, _car_beside_step2(1.925 - 0.01))
    assert not outside.any()
    assert inside.tolist() == [False, True, False, False, False, False]
    # the same on the other side, and the car at another time does not count at step 2
    assert collision_steps(GT, _car_beside_step2(-1.915))[1]
    late = _car_beside_step2(0.0)
    late[1], late[4] = late[4], late[1]  # at step 5 the ego is at x = 25, the car at 10
    assert not collision_steps(GT, late).any()


def test_oriented_boxes_use_separating_axes_not_bounding_boxes():
    ego = box_footprint(0.0, 0.0, 0.0, 2 * HL, 2 * HW)
    # a 1 m square turned 45 degrees (half-diagonal 0.7071) off the ego's front-left corner:
    # its bounding box overlaps the ego, the diamond's edge x + y = c - 0.7071 is 0.49 m clear
    cx, cy = HL + 0.6, HW + 0.6
    diamond = box_footprint(cx, cy, math.pi / 4, 1.0, 1.0)
    assert diamond[:, 0].min() < HL and diamond[:, 1].min() < HW  # AABBs overlap
    assert not boxes_overlap(ego, diamond[None])[0]
    # a diamond whose tip reaches 1 cm into the ego's front edge
    tip = box_footprint(HL + 0.7071 - 0.01, 0.0, math.pi / 4, 1.0, 1.0)
    gap = box_footprint(HL + 0.7071 + 0.01, 0.0, math.pi / 4, 1.0, 1.0)
    assert boxes_overlap(ego, np.stack([tip, gap])).tolist() == [True, False]


def test_ego_box_heads_along_the_path():
    # driving +y: the box is 1.85 m wide in x and 4.084 m long in y
    fp = ego_footprints(np.array([[0.0, 5.0 * k] for k in range(1, 7)]))
    assert np.ptp(fp[0, :, 0]) == pytest.approx(EGO_WIDTH_M)
    assert np.ptp(fp[0, :, 1]) == pytest.approx(EGO_LENGTH_M)
    # standing still keeps the heading (0); a forward offset moves the centre ahead
    still = ego_footprints(np.zeros((6, 2)), forward_offset_m=0.5)
    assert still[3].mean(axis=0) == pytest.approx([0.5, 0.0])


def test_collision_rates_both_conventions_and_gt_mask():
    pred_all = np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]], bool)
    gt_all = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]], bool)  # the log collides
    pred_veh = np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], bool)
    table = collision_table(pred_all, gt_all, pred_veh, np.zeros((2, 6), bool))
    # ST-P3 (all boxes; sample 2's step 4 masked): sample 1 has 1 of 2, 1 of 4, 1 of 6 steps
    # -> (0.5 + 0) / 2 = 0.25, (0.25 + 0) / 2 = 0.125, (1/6) / 2 = 1/12
    assert table["stp3"] == pytest.approx(
        {"1s": 0.25, "2s": 0.125, "3s": 1 / 12, "avg": (0.25 + 0.125 + 1 / 12) / 3})
    # UniAD (vehicles): step 2 collides in 1 of 2 samples, steps 4 and 6 in none
    assert table["uniad"] == pytest.approx({"1s": 0.5, "2s": 0.0, "3s": 0.0, "avg": 0.5 / 3})


def test_per_command_breakdown():
    l2 = np.array([[1.0] * 6, [3.0] * 6, [2.0] * 6])
    out = per_command(["left", "straight", "left"], l2, "uniad")
    assert set(out) == {"left", "straight"}
    assert out["left"]["n"] == 2 and out["left"]["3s"] == pytest.approx(1.5)
    assert out["straight"]["avg"] == pytest.approx(3.0)
