"""Motorway scenario families: ``highway`` (cruising, lane changes, overtaking), ``merge``
(on-ramp) and ``exit`` (take or pass an exit)."""

from __future__ import annotations

import math

import numpy as np
from highway_env.road.road import RoadNetwork

from drivevla.core.types import HighLevelCommand
from drivevla.sim_bridge.embedded.bent_road import add_bent_road
from drivevla.sim_bridge.embedded.roads import (
    LANE_WIDTH_M,
    add_arc,
    add_straight_road,
    unit,
)
from drivevla.sim_bridge.embedded.routes import (
    Route,
    RouteLeg,
    beside,
    lane_change_legs,
    legs_along_path,
)
from drivevla.sim_bridge.embedded.scenario_helpers import (
    fill_lanes,
    guard_rails,
    guard_rails_along,
)
from drivevla.sim_bridge.embedded.scenario_registry import DEFAULT_INSTRUCTIONS, register_family
from drivevla.sim_bridge.embedded.scenario_types import (
    BuildContext,
    NpcSpawn,
    Scenario,
)

# --------------------------------------------------------------------------------------
# highway: multi-lane cruising, lane changes, overtaking

HIGHWAY_LANES = 3


@register_family(
    "highway",
    ("cruise", "change_lane_left", "change_lane_right", "overtake"),
    "Three-lane motorway with traffic.",
)
def _highway(intent: str, ctx: BuildContext) -> Scenario:
    v_lim = 25.0
    net = RoadNetwork()
    add_straight_road(net, ("h0", "h1"), (0, 0), (100, 0), HIGHWAY_LANES, v_lim)
    bend = ctx.geo("highway", "bend_deg")  # 0 on the fixed map: one straight road
    if bend == 0.0:
        add_straight_road(net, ("h1", "h2"), (100, 0), (1100, 0), HIGHWAY_LANES, v_lim)
    else:
        start = ctx.geo("highway", "bend_start_m")
        radius = ctx.geo("highway", "bend_radius_m")
        side = 1.0 if ctx.geo("highway", "bend_side") > 0 else -1.0
        arc = radius * math.radians(bend)
        add_bent_road(net, ("h1", "h2"), np.array([100.0, 0.0]), 0.0, HIGHWAY_LANES, v_lim,
                      straight_m=start, radius_m=radius, angle_deg=side * bend,
                      after_m=max(1000.0 - start - arc, 400.0))
    rng = ctx.rng
    choices = {
        "cruise": [0, 1, 2],
        "change_lane_left": [0, 1],
        "change_lane_right": [1, 2],
        "overtake": [0, 1],
    }[intent]
    k = int(rng.choice(choices))
    npcs: list[NpcSpawn] = []
    end_s = 380.0
    if intent == "cruise":
        legs = [RouteLeg(("h0", "h1", k), 20, 100), RouteLeg(("h1", "h2", k), 0, end_s)]
    elif intent in ("change_lane_left", "change_lane_right"):
        target = k + 1 if intent == "change_lane_left" else k - 1
        legs = [
            RouteLeg(("h0", "h1", k), 20, 100),
            *lane_change_legs(net, ("h1", "h2"), k, target, 0, 60, end_s),
        ]
    else:  # overtake: a slow leader ahead; pass on the left and come back
        back = beside(net, ("h1", "h2", k + 1), ("h1", "h2", k), 230.0)
        legs = [
            RouteLeg(("h0", "h1", k), 20, 100),
            *lane_change_legs(net, ("h1", "h2"), k, k + 1, 0, 30, 230),
            RouteLeg(
                ("h1", "h2", k),
                back,
                end_s,
                lateral_start=LANE_WIDTH_M,
                blend_m=40.0,
                command=HighLevelCommand.CHANGE_LANE_RIGHT,
            ),
        ]
        npcs.append(
            NpcSpawn(
                ("h0", "h1", k),
                70.0,
                11.0,
                lane_change=False,
                target_speed=11.0,
                color=(0.9, 0.8, 0.1),
            )
        )
    keep_clear = [(("h0", "h1", k), 0.0, 100.0)]
    if intent == "overtake":
        keep_clear += [(("h0", "h1", k + 1), 0.0, 100.0), (("h1", "h2", k), 0.0, 120.0)]
    lanes = [(a, b, i) for a, b in (("h0", "h1"), ("h1", "h2")) for i in range(HIGHWAY_LANES)]
    npcs += fill_lanes(ctx, net, lanes, (17.0, 23.0), keep_clear, s_range=(0.0, 300.0))
    statics = _highway_rails(net) if ctx.guard_rails else []
    return Scenario(
        "highway",
        intent,
        net,
        Route(intent, legs, net),
        v_lim,
        20.0,
        DEFAULT_INSTRUCTIONS[intent],
        npcs=npcs,
        statics=statics,
        overtake_target=0 if intent == "overtake" else None,
    )


def _highway_rails(net: RoadNetwork) -> list:
    """Guard rails right of the motorway, along the rightmost lane of both edges (20 m
    segments; on the fixed map the same rails as one straight run from 0 to 1100 m)."""
    offset = LANE_WIDTH_M / 2 + 2.0
    return [rail for edge in (("h0", "h1", 0), ("h1", "h2", 0))
            for rail in guard_rails_along(net.get_lane(edge), offset)]


# --------------------------------------------------------------------------------------
# on-ramp merge


@register_family("merge", ("merge",), "On-ramp with an acceleration lane onto a two-lane road.")
def _merge(intent: str, ctx: BuildContext) -> Scenario:
    v_lim = 25.0
    net = RoadNetwork()
    accel = ctx.geo("merge", "accel_lane_m")  # 130 m on the fixed map
    offset = ctx.geo("merge", "ramp_offset_m")  # 26 m
    curve = ctx.geo("merge", "ramp_curve_m")  # 60 m
    add_straight_road(net, ("m0", "m1"), (0, 0), (200, 0), 2, v_lim)
    # acceleration lane is lane 0 of the middle section (its left side is striped)
    add_straight_road(net, ("m1", "m2"), (200, -LANE_WIDTH_M), (200 + accel, -LANE_WIDTH_M), 3,
                      v_lim)
    add_straight_road(net, ("m2", "m3"), (200 + accel, 0), (800, 0), 2, v_lim)
    # ramp: straight, then an S-curve of two arcs into the acceleration lane
    add_straight_road(net, ("r0", "r1"), (40, -offset), (200 - curve, -offset), 1, 20.0)
    mid = np.array([200 - curve / 2, -(offset + LANE_WIDTH_M) / 2])
    first = add_arc(net, ("r1", "r2"), (200 - curve, -offset), 0.0, mid, 20.0, lines=(3, 3))
    add_arc(
        net,
        ("r2", "m1"),
        mid,
        float(first.heading_at(first.length)),
        (200, -LANE_WIDTH_M),
        20.0,
        lines=(3, 3),
    )
    legs = [
        RouteLeg(("r0", "r1", 0), 10, 160 - curve),
        *legs_along_path(net, [("r1", "r2", 0), ("r2", "m1", 0)]),
        *lane_change_legs(net, ("m1", "m2"), 0, 1, 0, 40, accel),
        RouteLeg(("m2", "m3", 0), 0, 180),
    ]
    lanes = [(a, b, i) for a, b in (("m0", "m1"),) for i in range(2)] + [
        ("m1", "m2", 1),
        ("m1", "m2", 2),
    ]
    npcs = fill_lanes(ctx, net, lanes, (16.0, 22.0), [], lane_change=False)
    statics = (
        guard_rails(np.array([200 + accel, 0.0]), np.array([800.0, 0.0]), LANE_WIDTH_M / 2 + 2.0)
        if ctx.guard_rails
        else []
    )
    return Scenario(
        "merge",
        intent,
        net,
        Route(intent, legs, net),
        v_lim,
        14.0,
        DEFAULT_INSTRUCTIONS[intent],
        npcs=npcs,
        statics=statics,
    )


# --------------------------------------------------------------------------------------
# highway exit


@register_family("exit", ("take_exit", "pass_exit"), "Three-lane road with an exit ramp.")
def _exit(intent: str, ctx: BuildContext) -> Scenario:
    v_lim = 25.0
    net = RoadNetwork()
    decel = ctx.geo("exit", "decel_lane_m")  # 80 m on the fixed map
    ramp_end = (250 + decel + ctx.geo("exit", "ramp_dx_m"), -ctx.geo("exit", "ramp_dy_m"))
    add_straight_road(net, ("x0", "x1"), (0, 0), (250, 0), 3, v_lim)
    add_straight_road(net, ("x1", "x1b"), (250, 0), (250 + decel, 0), 3, v_lim, right_line=0)
    add_straight_road(net, ("x1b", "x2"), (250 + decel, 0), (900, 0), 3, v_lim)
    # deceleration lane beside lane 0, then the ramp curving away to the right
    add_straight_road(
        net, ("x1", "e0"), (250, -LANE_WIDTH_M), (250 + decel, -LANE_WIDTH_M), 1, 20.0,
        left_line=1
    )
    arc = add_arc(net, ("e0", "e1"), (250 + decel, -LANE_WIDTH_M), 0.0, ramp_end, 18.0,
                  lines=(3, 3))
    h_end = float(arc.heading_at(arc.length))
    p_end = arc.position(arc.length, 0)
    add_straight_road(net, ("e1", "e2"), p_end, p_end + 150 * unit(h_end), 1, 18.0)
    rng = ctx.rng
    if intent == "take_exit":
        k = int(rng.choice([1, 2]))
        if k == 2:
            legs = [
                RouteLeg(("x0", "x1", 2), 20, 40),
                *lane_change_legs(net, ("x0", "x1"), 2, 1, 40, 40, 110)[1:],
                *lane_change_legs(net, ("x0", "x1"), 1, 0, 110, 110, 250)[1:],
            ]
        else:
            legs = [
                RouteLeg(("x0", "x1", 1), 20, 90),
                *lane_change_legs(net, ("x0", "x1"), 1, 0, 90, 90, 250)[1:],
            ]
        legs += [
            RouteLeg(
                ("x1", "e0", 0),
                0,
                decel,
                lateral_start=LANE_WIDTH_M,
                blend_m=40.0,
                command=HighLevelCommand.RIGHT,
            ),
            *legs_along_path(net, [("e0", "e1", 0), ("e1", "e2", 0)], last_s=80.0),
        ]
    else:
        k = int(rng.choice([0, 1, 2]))
        legs = [
            RouteLeg(("x0", "x1", k), 20, 250),
            *legs_along_path(
                net,
                [("x1", "x1b", k), ("x1b", "x2", k)],
                last_s=150.0,
                commands={0: HighLevelCommand.STRAIGHT},
            ),
        ]
    lanes = [(a, b, i) for a, b in (("x0", "x1"), ("x1", "x1b")) for i in range(3)]
    npcs = fill_lanes(ctx, net, lanes, (16.0, 22.0), [(("x0", "x1", k), 0.0, 90.0)])
    return Scenario(
        "exit",
        intent,
        net,
        Route(intent, legs, net),
        v_lim,
        18.0,
        DEFAULT_INSTRUCTIONS[intent],
        npcs=npcs,
        extra_route_edges={("x1", "x1b")} if intent == "take_exit" else set(),
    )
