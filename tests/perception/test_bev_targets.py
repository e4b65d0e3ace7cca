"""Perception targets against the ground truth of a constructed scene: a straight two-lane
road east, the ego in the right lane heading east, a car 20 m ahead in its lane, a pedestrian
on the left verge, another car in the left lane beside it, a red light 30 m ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.env import PrivilegedState
from drivevla.core.scene import (
    ActorBox,
    ActorKind,
    LaneGeometry,
    LightState,
    MarkingType,
    TrafficLightView,
)
from drivevla.perception.bev_targets import (
    CHANNELS,
    BevGrid,
    bev_raster,
    frame_targets,
    governing_signal,
    lead_object,
    unpack_bev,
)

XS = np.linspace(-50.0, 150.0, 401)


def _lane(y: float, lane: int) -> LaneGeometry:
    return LaneGeometry(("a", "b", lane), np.stack([XS, np.full_like(XS, y)], axis=1), 3.5,
                        MarkingType.SOLID, MarkingType.SOLID, 13.9)


LANES = [_lane(0.0, 0), _lane(3.5, 1)]  # right lane at y = 0, left lane at y = 3.5
ROUTE = LANES[0].centerline
EGO_XY = np.array([10.0, 0.0])
LEAD = ActorBox(1, ActorKind.VEHICLE, 30.0, 0.0, 0.0, 4.5, 2.0, 1.5, speed_mps=6.0)
BESIDE = ActorBox(2, ActorKind.VEHICLE, 12.0, 3.5, 0.0, 4.5, 2.0, 1.5, speed_mps=9.0)
WALKER = ActorBox(3, ActorKind.PEDESTRIAN, 18.0, 7.0, math.pi / 2, 0.6, 0.6, 1.7)
LIGHT = TrafficLightView(7, 42.0, -3.0, 4.5, math.pi, LightState.RED,
                         np.array([[40.0, -1.75], [40.0, 1.75]]))


@pytest.fixture(scope="module")
def raster():
    return bev_raster(BevGrid(), EGO_XY, 0.0, LANES, ROUTE, [LEAD, BESIDE, WALKER])


def _at(grid: BevGrid, raster: np.ndarray, channel: str, x: float, y: float) -> bool:
    """The raster's value at ego-frame (x, y)."""
    row = int((grid.ahead_m - x) / grid.resolution_m)
    col = int((grid.half_width_m - y) / grid.resolution_m)
    return bool(raster[CHANNELS.index(channel), row, col])


def test_the_raster_has_its_grid_shape_and_pixel_centres():
    grid = BevGrid()
    assert grid.shape == (80, 80)
    assert grid.centre_of(0, 0) == (31.75, 19.75)
    assert grid.centre_of(79, 79) == (-7.75, -19.75)


def test_drivable_and_route_channels_follow_the_lanes(raster):
    grid = BevGrid()
    assert _at(grid, raster, "drivable", 5.2, 0.3) and _at(grid, raster, "drivable", 5.2, 4.2)
    assert not _at(grid, raster, "drivable", 5.2, -2.3)  # right of the right lane
    assert not _at(grid, raster, "drivable", 5.2, 5.8)  # left of the left lane
    assert _at(grid, raster, "route", 5.2, 0.3) and not _at(grid, raster, "route", 5.2, 3.6)
    # both lanes, 7 m wide (y -1.75 .. 5.25), over the grid's 40 m length: the outer cells
    # (y -2 .. -1.5 and 5 .. 5.5) are exactly half covered and count, so 15 cells across
    drivable = raster[CHANNELS.index("drivable")].sum(axis=1)
    assert drivable.tolist() == [15] * 80


def test_actors_land_in_their_channels_at_their_ego_frame_places(raster):
    grid = BevGrid()
    assert _at(grid, raster, "vehicle", 20.2, 0.2)  # LEAD: 20 m ahead of the ego
    assert _at(grid, raster, "vehicle", 2.2, 3.7)  # BESIDE: 2 m ahead, in the left lane
    assert not _at(grid, raster, "vehicle", 12.0, 0.2)
    assert _at(grid, raster, "pedestrian", 8.1, 7.1) and not _at(grid, raster, "vehicle", 8.1, 7.1)
    area = raster[CHANNELS.index("vehicle")].sum() * grid.resolution_m ** 2
    assert area == pytest.approx(2 * 4.5 * 2.0, rel=0.25)


def test_a_turned_ego_sees_the_scene_turned():
    # heading north: the lane (east-west) now runs across the raster
    turned = bev_raster(BevGrid(), EGO_XY, math.pi / 2, LANES, ROUTE, [LEAD])
    grid = BevGrid()
    assert _at(grid, turned, "drivable", 0.2, -15.2)  # the road extends to the ego's right
    assert not _at(grid, turned, "drivable", 15.2, 0.2)  # nothing straight ahead
    assert _at(grid, turned, "vehicle", 0.2, -20.0 + 0.3)  # LEAD, 20 m to the right


def test_the_signal_that_governs_the_route_and_its_distance():
    assert governing_signal([LIGHT], EGO_XY, ROUTE) == (LightState.RED, pytest.approx(30.0))
    assert governing_signal([LIGHT], EGO_XY, ROUTE, max_m=25.0) is None
    assert governing_signal([LIGHT], np.array([45.0, 0.0]), ROUTE) is None  # already past
    aside = TrafficLightView(8, 20.0, 6.0, 4.5, 0.0, LightState.GREEN,
                             np.array([[20.0, 2.0], [20.0, 5.0]]))  # the left lane's only
    assert governing_signal([aside, LIGHT], EGO_XY, ROUTE)[0] == LightState.RED


def test_the_lead_object_is_the_nearest_in_the_corridor():
    distance, speed = lead_object([BESIDE, WALKER, LEAD], EGO_XY, ROUTE)
    assert distance == pytest.approx(30.0 - 2.25 - 10.0, abs=0.5) and speed == 6.0
    assert lead_object([BESIDE, WALKER], EGO_XY, ROUTE) is None
    crossing = ActorBox(4, ActorKind.PEDESTRIAN, 15.0, 0.5, math.pi / 2, 0.6, 0.6, 1.7)
    assert lead_object([LEAD, crossing], EGO_XY, ROUTE)[0] == pytest.approx(4.7, abs=0.5)


def test_frame_targets_are_the_three_targets_of_a_snapshot(raster):
    # a far lane (a town's other streets) is left out before drawing: same raster
    far = LaneGeometry(("c", "d", 0), np.stack([XS, np.full_like(XS, 500.0)], axis=1), 3.5,
                       MarkingType.SOLID, MarkingType.SOLID, 13.9)
    ego = ActorBox(0, ActorKind.VEHICLE, *EGO_XY, 0.0, 4.8, 2.0, 1.5, speed_mps=8.0)
    state = PrivilegedState(0.0, ego, (LEAD, BESIDE, WALKER), (LIGHT,), "urban", "cruise",
                            ROUTE, 200.0, 60.0, 13.9, 0.0, backend=None,
                            lanes=(*LANES, far))
    targets = frame_targets(state)
    np.testing.assert_array_equal(unpack_bev(targets["perception.bev"], raster.shape), raster)
    assert targets["perception.signal_state"] == "red"
    assert targets["perception.signal_distance"] == pytest.approx(30.0)
    assert targets["perception.lead_distance"] == pytest.approx(
        lead_object([LEAD], EGO_XY, ROUTE)[0])
    assert targets["perception.lead_speed"] == 6.0
    empty = frame_targets(PrivilegedState(0.0, ego, (), (), "urban", "cruise", ROUTE, 200.0,
                                          60.0, 13.9, 0.0, backend=None))
    assert math.isnan(empty["perception.lead_distance"]) and empty["perception.signal_state"] == ""
