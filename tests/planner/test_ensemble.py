"""Temporal ensembling of predicted trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.frames import ego_to_world, world_to_ego
from drivevla.core.types import EgoState
from drivevla.planner.ensemble import TemporalEnsemble

DT = 0.5
STEPS = 6


def _arc_prediction(ego: EgoState, v: float, yaw_rate: float):
    """The ego-frame waypoints of driving on at speed v and yaw rate (the same world path
    from any pose on it)."""
    t = np.arange(1, STEPS + 1) * DT
    if abs(yaw_rate) < 1e-12:
        pts = np.stack([v * t, np.zeros_like(t)], axis=1)
    else:
        r = v / yaw_rate
        pts = np.stack([r * np.sin(yaw_rate * t), r * (1 - np.cos(yaw_rate * t))], axis=1)
    return pts, np.full(STEPS, v)


def test_predictions_that_agree_on_the_world_path_fuse_to_that_path():
    ens = TemporalEnsemble(window_s=1.0, half_life_s=0.3, dt_s=DT)
    v, w = 10.0, 0.2
    for k in range(15):  # 0.1 s ticks along the arc
        t = 0.1 * k
        r = v / w
        ego = EgoState(r * math.sin(w * t), r * (1 - math.cos(w * t)), w * t, v)
        wps, speeds = _arc_prediction(ego, v, w)
        fused, fused_v = ens(t, ego, wps, speeds)
        np.testing.assert_allclose(fused, wps, atol=0.05)  # chord interpolation only
        np.testing.assert_allclose(fused_v, speeds)


def test_flipping_predictions_are_damped_and_old_ones_dropped():
    ens = TemporalEnsemble(window_s=0.5, half_life_s=0.3, dt_s=DT)
    ego = EgoState(0.0, 0.0, 0.0, 0.0)  # standing still: every prediction starts here
    base = np.stack([np.arange(1, STEPS + 1) * 2.0, np.zeros(STEPS)], axis=1)
    left, right = base + [0, 2.0], base - [0, 2.0]
    outs = [ens(0.1 * k, ego, left if k % 2 == 0 else right, np.full(STEPS, 5.0))[0]
            for k in range(6)]
    assert outs[0] == pytest.approx(left)  # nothing to fuse with yet
    # +-2 m flips shrink wherever older predictions reach (all but the last step)
    assert all(np.abs(o[:-1, 1]).max() < 1.0 for o in outs[1:])
    # a new prediction after a gap longer than the window stands alone
    far = ens(5.0, ego, left, np.full(STEPS, 7.0))
    assert far[0] == pytest.approx(left) and far[1] == pytest.approx(np.full(STEPS, 7.0))
    # acting again on the same tick replaces that tick's prediction, it does not add one
    again = ens(5.0, ego, right, np.full(STEPS, 7.0))
    assert again[0] == pytest.approx(right)
    # a clock that goes back is a new route
    ens(5.1, ego, left, np.full(STEPS, 7.0))
    assert ens(0.0, ego, right, np.full(STEPS, 3.0))[0] == pytest.approx(right)


def test_an_older_prediction_is_carried_into_the_current_frame_and_time():
    ens = TemporalEnsemble(window_s=1.0, half_life_s=1e6, dt_s=DT)  # equal weights
    first = EgoState(100.0, 50.0, math.pi / 2, 10.0)  # heading north
    path = np.stack([np.zeros(STEPS), np.zeros(STEPS)], axis=1)
    path[:, 0] = np.arange(1, STEPS + 1) * 5.0  # 5 m per 0.5 s, straight on
    ens(0.0, first, path, np.full(STEPS, 10.0))
    now = EgoState(100.0, 55.0, math.pi / 2, 10.0)  # 0.5 s later, 5 m north
    current = path + [0.0, 1.0]  # this tick's prediction says 1 m further left
    fused, _ = ens(0.5, now, current, np.full(STEPS, 10.0))
    old_now = world_to_ego(ego_to_world(path, np.array([100.0, 50.0]), math.pi / 2),
                           np.array([100.0, 55.0]), math.pi / 2)
    # steps 1-5 average the two (the old path, shifted by one step, covers them); step 6
    # lies past the old prediction's horizon and is the current one alone
    np.testing.assert_allclose(fused[:5], (current[:5] + old_now[1:]) / 2, atol=1e-5)
    np.testing.assert_allclose(fused[5], current[5], atol=1e-9)
    with pytest.raises(ValueError, match="half_life_s"):
        TemporalEnsemble(1.0, 0.0, DT)
