"""The top-down debug renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.scene import (
    ActorBox,
    ActorKind,
    LaneGeometry,
    LightState,
    MarkingType,
    SceneSnapshot,
    TrafficLightView,
)
from drivevla.sim_bridge.embedded.bev import dash_polylines, render_bev

EGO_RGB = (0, 230, 255)
ACTOR_COLOUR = (0.8, 0.1, 0.1)
ACTOR_RGB = (204, 26, 26)


def _lanes() -> list[LaneGeometry]:
    xs = np.linspace(-50.0, 250.0, 61)
    return [
        LaneGeometry(
            ("r", "s", i), np.column_stack([xs, np.full_like(xs, y)]), 3.5, left, right, 13.9
        )
        for i, (y, left, right) in enumerate(
            [
                (0.0, MarkingType.STRIPED, MarkingType.SOLID),
                (3.5, MarkingType.SOLID, MarkingType.STRIPED),
            ]
        )
    ]


def _box(actor_id: int, x: float, y: float, yaw: float, colour=ACTOR_COLOUR) -> ActorBox:
    return ActorBox(actor_id, ActorKind.VEHICLE, x, y, yaw, 4.5, 1.9, 1.5, color=colour)


def _ahead(x: float, y: float, yaw: float, dist: float) -> tuple[float, float]:
    return x + dist * math.cos(yaw), y + dist * math.sin(yaw)


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.0])
def test_ego_centred_and_actor_ahead_is_up(yaw: float) -> None:
    ego = _box(0, 10.0, 0.0, yaw)
    ax, ay = _ahead(ego.x, ego.y, yaw, 10.0)
    snap = SceneSnapshot(0.0, ego, [_box(1, ax, ay, yaw)])
    img = render_bev(_lanes(), snap, size_px=256, metres=64.0)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    scale = 256 / 64.0
    assert tuple(img[128, 128]) == EGO_RGB
    assert tuple(img[128 - int(10 * scale), 128]) == ACTOR_RGB
    assert tuple(img[128 + int(10 * scale), 128]) != ACTOR_RGB


def test_north_up_puts_east_to_the_right() -> None:
    ego = _box(0, 0.0, 0.0, 0.0)
    snap = SceneSnapshot(0.0, ego, [_box(1, 10.0, 0.0, 0.0)])
    img = render_bev(_lanes(), snap, heading_up=False)
    assert tuple(img[128, 128 + 40]) == ACTOR_RGB
    assert tuple(img[128 - 40, 128]) != ACTOR_RGB


def test_road_route_trajectory_and_light_are_drawn() -> None:
    ego = _box(0, 0.0, 0.0, 0.0)
    light = TrafficLightView(
        3, 22.0, -3.0, 4.0, math.pi, LightState.RED, np.array([[20.0, -1.75], [20.0, 5.25]])
    )
    route = np.array([[0.0, 0.0], [30.0, 0.0]])
    traj = np.array([[0.0, 0.0], [0.0, -0.0], [15.0, -20.0]])
    snap = SceneSnapshot(0.0, ego, [], [light])
    plain = render_bev(_lanes(), SceneSnapshot(0.0, ego), size_px=200, metres=50.0)
    img = render_bev(_lanes(), snap, size_px=200, metres=50.0, route=route, trajectory_world=traj)
    scale = 200 / 50.0
    # road under the ego's lane, grass far to the right of the road
    assert tuple(plain[100 - int(8 * scale), 100]) != tuple(plain[100, 190])
    # route: straight up from the ego
    assert tuple(img[100 - int(6 * scale), 99]) == (40, 140, 255)
    # red stop line dot 20 m ahead (centre of the stop line is 1.75 m left of the ego)
    u, v = 100 - int(1.75 * scale), 100 - int(20 * scale)
    assert tuple(img[v, u]) == (255, 30, 30)
    # the trajectory turns right: magenta pixels right of centre and above it
    magenta = np.all(img == (255, 40, 220), axis=-1)
    ys, xs = np.nonzero(magenta)
    assert magenta.any() and xs.max() > 150 and ys.min() < 50


def test_dashes_are_three_metres_every_nine() -> None:
    line = np.array([[0.0, 0.0], [10.0, 0.0], [30.0, 0.0]])
    dashes = dash_polylines(line)
    starts = [d[0, 0] for d in dashes]
    ends = [d[-1, 0] for d in dashes]
    assert starts == pytest.approx([0.0, 9.0, 18.0, 27.0])
    assert ends == pytest.approx([3.0, 12.0, 21.0, 30.0])
    assert any(len(d) == 3 for d in dashes)  # the dash over the bend keeps the vertex
