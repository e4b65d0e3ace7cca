"""The drawn motorway's bend: chained highway-env lane pieces measured by one arc length,
lanes that stay parallel through the bend, and routes that change lanes on it without a
jump."""

from __future__ import annotations

import math

import numpy as np
import pytest
from highway_env.road.road import RoadNetwork

from drivevla.sim_bridge.embedded.bent_road import add_bent_road
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.roads import LANE_WIDTH_M


def _road(angle_deg: float) -> RoadNetwork:
    net = RoadNetwork()
    add_bent_road(net, ("a", "b"), np.array([10.0, 5.0]), 0.0, 3, 25.0, straight_m=50.0,
                  radius_m=400.0, angle_deg=angle_deg, after_m=100.0)
    return net


@pytest.mark.parametrize("angle", [30.0, -20.0])
def test_lanes_turn_by_the_angle_and_stay_parallel(angle):
    net = _road(angle)
    lanes = [net.get_lane(("a", "b", i)) for i in range(3)]
    for lane in lanes:
        assert lane.heading_at(lane.length - 1.0) == pytest.approx(math.radians(angle))
        np.testing.assert_allclose(lane.position(0.0, 0.0)[0], 10.0)
    # the rightmost lane's radius is 400 m: its length is 50 + 400 * angle + 100
    assert lanes[0].length == pytest.approx(150.0 + 400.0 * math.radians(abs(angle)))
    assert (lanes[2].length < lanes[0].length) == (angle > 0)  # the inner lane is shorter
    for s in np.linspace(0.0, lanes[0].length, 40):
        _, lat = lanes[1].local_coordinates(lanes[0].position(s, 0.0))
        assert lat == pytest.approx(-LANE_WIDTH_M, abs=1e-6)


def test_positions_round_trip_through_local_coordinates():
    lane = _road(25.0).get_lane(("a", "b", 1))
    for s in (-5.0, 0.0, 30.0, 49.9, 50.1, 120.0, lane.length - 1.0, lane.length + 4.0):
        for lat in (-1.5, 0.0, 1.2):
            got = lane.local_coordinates(lane.position(s, lat))
            assert got == pytest.approx((s, lat), abs=1e-6), (s, lat)


def test_a_bend_needs_a_radius_wider_than_the_road_and_an_angle():
    with pytest.raises(ValueError, match="radius_m > the road's width"):
        add_bent_road(RoadNetwork(), ("a", "b"), np.zeros(2), 0.0, 3, 25.0, straight_m=10.0,
                      radius_m=8.0, angle_deg=10.0, after_m=10.0)


def test_lane_changes_on_a_drawn_bend_leave_no_gap_in_the_route():
    env = EmbeddedDrivingEnv({"scenario": "highway", "intent": "overtake", "geometry": "train",
                              "cameras": []})
    # a 31 deg bend from 82 m on: the return to the right lane (230 m) is on the arc, where
    # the lanes' arc lengths differ (the same s on both lanes left a 0.4 m jump)
    env.reset(seed=1700002)
    try:
        assert env.geometry["bend_deg"] > 20.0 and env.geometry["bend_start_m"] < 100.0
        steps = np.linalg.norm(np.diff(np.asarray(env.scenario.route.polyline), axis=0), axis=1)
        assert steps.max() < 1.2 * np.median(steps)
    finally:
        env.close()
