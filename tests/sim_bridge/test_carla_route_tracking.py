"""Route tracking on the leaderboard's plans: both plan kinds, repeated points, progress."""

from __future__ import annotations

import numpy as np
import pytest

from drivevla.core.types import HighLevelCommand as C
from drivevla.sim_bridge.carla.convert import world_xy_to_gnss
from drivevla.sim_bridge.carla.route_tracking import RouteTracker, plan_points

carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")


def test_the_world_plan_and_the_gps_plan_give_the_same_route():
    # CARLA: 0..40 m along +x, then a right turn (CARLA +y is to the right of +x)
    carla_xy = [(0.0, 0.0), (20.0, 0.0), (40.0, 0.0), (40.0, 20.0)]
    options = [4, 4, 2, 4]
    world = [(carla.Transform(carla.Location(x=x, y=y)), o)
             for (x, y), o in zip(carla_xy, options, strict=True)]
    gps = []
    for (x, y), o in zip(carla_xy, options, strict=True):
        lat, lon, z = world_xy_to_gnss(x, -y)
        gps.append(({"lat": lat, "lon": lon, "z": z}, o))
    pts_w, cmds_w = plan_points(None, world)
    pts_g, cmds_g = plan_points(gps, world)  # the GPS plan is preferred
    np.testing.assert_allclose(pts_w, [[0, 0], [20, 0], [40, 0], [40, -20]], atol=1e-5)
    np.testing.assert_allclose(pts_g, pts_w, atol=1e-5)
    assert cmds_w == cmds_g == [C.LANE_FOLLOW, C.LANE_FOLLOW, C.RIGHT, C.LANE_FOLLOW]
    with pytest.raises(ValueError, match="the global plan is empty"):
        plan_points([], [])
    with pytest.raises(ValueError, match=r"global_plan_gps\[0\]"):
        plan_points([({"latitude": 0.0}, 4)])


def test_progress_targets_and_the_next_manoeuvre():
    points = np.array([[0, 0], [20, 0], [20, 0], [40, 0], [40, -20]], dtype=float)
    commands = [C.LANE_FOLLOW, C.LANE_FOLLOW, C.RIGHT, C.LANE_FOLLOW, C.LANE_FOLLOW]
    tracker = RouteTracker(points, commands, target_points=3, spacing_m=10.0)
    assert tracker.length_m == pytest.approx(60.0)
    # the repeated point at 20 m is dropped; its option starts the right turn (20-40 m)
    np.testing.assert_allclose(tracker.leg_start_m, [0.0, 20.0, 40.0])
    assert tracker.leg_command == [C.LANE_FOLLOW, C.RIGHT, C.LANE_FOLLOW]
    tracker.update(np.array([5.0, 0.3]))
    assert tracker.progress_m == pytest.approx(5.0)
    manoeuvre = tracker.next_manoeuvre(30.0)
    assert manoeuvre.command is C.RIGHT and manoeuvre.distance_m == pytest.approx(15.0)
    info = tracker.route_info(np.array([5.0, 0.0]), 0.0)
    np.testing.assert_allclose(info.target_points, [[10, 0], [20, 0], [30, 0]], atol=1e-9)
    assert info.command is C.RIGHT and info.intent == "turn_right"
    assert info.distance_to_goal_m == pytest.approx(55.0)
    for x, y in ((20.0, 0.0), (35.0, 0.0)):
        tracker.update(np.array([x, y]))
    assert tracker.next_manoeuvre(30.0).distance_m == pytest.approx(-15.0)  # turning
    tracker.update(np.array([40.0, -15.0]))
    assert tracker.progress_m == pytest.approx(55.0)
    assert tracker.next_manoeuvre(30.0) is None  # the turn is behind
