"""A CARLA map's waypoints become our lanes: grouped by road, section and lane, in driving
order (against CARLA's s for positive lane ids), in our world frame (y flipped)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")

from drivevla.sim_bridge.carla.map_lanes import lane_geometries  # noqa: E402


def _waypoint(road, lane, s, x, y, width=3.5):
    return SimpleNamespace(road_id=road, section_id=0, lane_id=lane, s=s, lane_width=width,
                           transform=carla.Transform(carla.Location(x=x, y=y, z=0.0)))


def test_waypoints_group_into_lanes_in_driving_order():
    points = [_waypoint(7, -1, s, 10.0 + s, 2.0) for s in (4.0, 0.0, 2.0)]  # along s
    points += [_waypoint(7, 1, s, 10.0 + s, -2.0, width=3.0) for s in (0.0, 2.0, 4.0)]  # against
    points += [_waypoint(9, -1, 0.0, 0.0, 0.0)]  # a single point: no extent
    lanes = lane_geometries(points, 13.9)
    assert [lane.lane_id for lane in lanes] == [("7", "0", -1), ("7", "0", 1)]
    forward, backward = lanes
    # CARLA's y is to the right: ours to the left
    np.testing.assert_allclose(forward.centerline, [[10.0, -2.0], [12.0, -2.0], [14.0, -2.0]])
    np.testing.assert_allclose(backward.centerline, [[14.0, 2.0], [12.0, 2.0], [10.0, 2.0]])
    assert backward.width == 3.0 and forward.speed_limit_mps == 13.9
