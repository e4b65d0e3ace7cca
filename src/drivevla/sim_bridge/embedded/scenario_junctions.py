"""Junction scenario families: ``intersection`` (unsignalised four-way), ``roundabout`` and
``urban`` (two signalised junctions with pedestrians)."""

from __future__ import annotations

import numpy as np
from highway_env.road.road import RoadNetwork

from drivevla.core.types import HighLevelCommand
from drivevla.sim_bridge.embedded.actors import TrafficLight
from drivevla.sim_bridge.embedded.geometry import arm_angles
from drivevla.sim_bridge.embedded.roads import (
    LANE_WIDTH_M,
    Junction,
    add_straight_road,
    build_junction,
    build_roundabout,
    left_normal,
    unit,
)
from drivevla.sim_bridge.embedded.routes import Route, RouteLeg, legs_along_path
from drivevla.sim_bridge.embedded.scenario_helpers import (
    EGO_ARM,
    TURN_COMMAND,
    TURN_TO_ARM,
    arm_roads,
    fill_lanes,
    junction_yield_rules,
    light_offsets,
    signal_for,
)
from drivevla.sim_bridge.embedded.scenario_registry import DEFAULT_INSTRUCTIONS, register_family
from drivevla.sim_bridge.embedded.scenario_types import (
    BuildContext,
    LaneId,
    NpcSpawn,
    PedestrianSpawn,
    Scenario,
    StaticSpawn,
    YieldRule,
)

# --------------------------------------------------------------------------------------
# unsignalised four-way intersection with cross traffic


@register_family(
    "intersection",
    ("turn_left", "turn_right", "go_straight"),
    "Four-way priority junction; the ego's road yields to cross traffic.",
)
def _intersection(intent: str, ctx: BuildContext) -> Scenario:
    v_lim = 12.0
    net = RoadNetwork()
    major = (0, 2)
    j = build_junction(net, "J", np.zeros(2), ctx.geo("intersection", "half_size_m"), 8.0,
                       arm_angles(ctx.geometry), priority_arms=major)
    arm_roads(net, j, v_lim, priority_arms=major)
    target = TURN_TO_ARM[intent]
    path = [
        ("J_f3", j.node_in(3), 0),
        (j.node_in(3), j.node_out(target), 0),
        (j.node_out(target), f"J_t{target}", 0),
    ]
    legs = legs_along_path(net, path, commands={1: TURN_COMMAND[intent]}, first_s=40.0, last_s=70.0)
    rng = ctx.rng
    npcs = []
    for k in (0, 1, 2):
        lane = (f"J_f{k}", j.node_in(k), 0)
        choices = [m for m in range(4) if m != k and m != EGO_ARM] if k != 1 else [3]
        npcs += fill_lanes(
            ctx,
            net,
            [lane],
            (7.0, 10.0),
            [],
            destination=lambda _l, c=choices: f"J_t{int(rng.choice(c))}",
            lane_change=False,
            s_range=(20.0, 115.0),
        )
    npcs += fill_lanes(
        ctx,
        net,
        [(j.node_out(m), f"J_t{m}", 0) for m in range(4)],
        (7.0, 10.0),
        [],
        lane_change=False,
    )
    return Scenario(
        "intersection",
        intent,
        net,
        Route(intent, legs, net),
        v_lim,
        6.0,
        DEFAULT_INSTRUCTIONS[intent],
        npcs=npcs,
        yield_rules=junction_yield_rules(net, j, (1, 3), major),
    )


# --------------------------------------------------------------------------------------
# roundabout


@register_family(
    "roundabout",
    ("roundabout_exit_1", "roundabout_exit_2", "roundabout_exit_3"),
    "Single-lane roundabout with four arms; ring traffic has priority.",
)
def _roundabout(intent: str, ctx: BuildContext) -> Scenario:
    v_lim = 9.0
    net = RoadNetwork()
    build_roundabout(net, "R", np.zeros(2), ctx.geo("roundabout", "radius_m"), v_lim,
                     arm_length=100.0, arm_angles=arm_angles(ctx.geometry))
    n_exit = int(intent[-1])
    k0 = 3
    path: list[LaneId] = [("R_a3", "R_ai3", 0), ("R_ai3", "R_e3", 0)]
    k = k0
    for n in range(1, n_exit + 1):
        nxt = (k + 1) % 4
        path.append((f"R_e{k}", f"R_x{nxt}", 0))
        if n < n_exit:
            path.append((f"R_x{nxt}", f"R_e{nxt}", 0))
        k = nxt
    path += [(f"R_x{k}", f"R_xo{k}", 0), (f"R_xo{k}", f"R_b{k}", 0)]
    command = {1: HighLevelCommand.RIGHT, 2: HighLevelCommand.STRAIGHT, 3: HighLevelCommand.LEFT}[
        n_exit
    ]
    legs = legs_along_path(net, path, commands={1: command}, first_s=30.0, last_s=60.0)
    rng = ctx.rng
    npcs = []
    for m in (0, 1, 2):
        npcs += fill_lanes(
            ctx,
            net,
            [(f"R_a{m}", f"R_ai{m}", 0)],
            (5.0, 8.0),
            [],
            destination=lambda _l, m=m: f"R_b{int(rng.choice([x for x in range(4) if x != m]))}",
            lane_change=False,
            s_range=(30.0, 95.0),
        )
    ring = [(f"R_x{m}", f"R_e{m}", 0) for m in range(4)] + [
        (f"R_e{m}", f"R_x{(m + 1) % 4}", 0) for m in range(4)
    ]
    npcs += [
        NpcSpawn(
            lane,
            float(ctx.rng.uniform(1, max(net.get_lane(lane).length - 1, 1.5))),
            6.0,
            f"R_b{int(rng.choice([0, 1, 2]))}",
            False,
            color=tuple(float(c) for c in ctx.rng.uniform(0.15, 0.85, size=3)),
        )
        for lane in ring
        if ctx.rng.uniform() < 0.15 * ctx.traffic_density
    ]
    rules = []
    for m in range(4):
        upstream_ring = [
            ((f"R_e{(m - 1) % 4}", f"R_x{m}", 0), 25.0),
            ((f"R_x{m}", f"R_e{m}", 0), 1e9),
        ]
        lane = (f"R_a{m}", f"R_ai{m}", 0)
        rules.append(YieldRule(lane, net.get_lane(lane).length, upstream_ring))
    return Scenario(
        "roundabout",
        intent,
        net,
        Route(intent, legs, net),
        v_lim,
        6.0,
        DEFAULT_INSTRUCTIONS[intent],
        npcs=npcs,
        yield_rules=rules,
    )


# --------------------------------------------------------------------------------------
# urban street with two signalised junctions and crossing pedestrians


@register_family(
    "urban",
    ("turn_left", "turn_right", "go_straight", "follow_street"),
    "Urban street with two signalised junctions and pedestrians who cross.",
)
def _urban(intent: str, ctx: BuildContext) -> Scenario:
    v_lim = 11.0
    net, j1, j2 = _urban_roads(v_lim, ctx)
    legs = _urban_route(net, j1, j2, intent)
    lights = _urban_lights(net, j1, j2, ctx)
    peds = _urban_pedestrians(j1, ctx)
    npcs = _urban_traffic(net, j1, j2, ctx)
    statics = [StaticSpawn(lt.position, 0.0, 0.3, 0.3, lt.height_m) for lt in lights]
    return Scenario(
        "urban",
        intent,
        net,
        Route(intent, legs, net),
        v_lim,
        5.0,
        DEFAULT_INSTRUCTIONS[intent],
        npcs=npcs,
        lights=lights,
        pedestrians=peds,
        statics=statics,
    )


def _urban_roads(v_lim: float, ctx: BuildContext) -> tuple[RoadNetwork, Junction, Junction]:
    """Junction A at the origin, B ``junction_gap_m`` (110 m on the fixed map) north of it,
    their arms and the block between."""
    net = RoadNetwork()
    gap = ctx.geo("urban", "junction_gap_m")  # junction spacing (centre to centre)
    half, angles = ctx.geo("urban", "half_size_m"), arm_angles(ctx.geometry)
    j1 = build_junction(net, "A", np.array([0.0, 0.0]), half, 7.0, angles)
    j2 = build_junction(net, "B", np.array([0.0, gap]), half, 7.0, angles)
    arm_roads(net, j1, v_lim, arms=(0, 2, 3))
    arm_roads(net, j2, v_lim, arms=(0, 1, 2))
    # the block between the junctions: A's north exit feeds B's south entry, and back
    add_straight_road(
        net,
        (j1.node_out(1), j2.node_in(3)),
        j1.exits[1][0],
        j2.entries[3][0],
        1,
        v_lim,
        left_line=3,
    )
    add_straight_road(
        net,
        (j2.node_out(3), j1.node_in(1)),
        j2.exits[3][0],
        j1.entries[1][0],
        1,
        v_lim,
        left_line=0,
    )
    return net, j1, j2


def _urban_route(
    net: RoadNetwork, j1: Junction, j2: Junction, intent: str
) -> list[RouteLeg]:
    """The ego's legs from A's south arm: a turn at A, straight into the block, or
    (follow_street) straight through both junctions."""
    first = [("A_f3", j1.node_in(3), 0)]
    if intent in TURN_TO_ARM and intent != "go_straight":
        t = TURN_TO_ARM[intent]
        path = first + [(j1.node_in(3), j1.node_out(t), 0), (j1.node_out(t), f"A_t{t}", 0)]
        legs = legs_along_path(
            net, path, commands={1: TURN_COMMAND[intent]}, first_s=50.0, last_s=60.0
        )
    elif intent == "go_straight":
        path = first + [(j1.node_in(3), j1.node_out(1), 0), (j1.node_out(1), j2.node_in(3), 0)]
        legs = legs_along_path(
            net, path, commands={1: HighLevelCommand.STRAIGHT}, first_s=50.0, last_s=60.0
        )
    else:  # follow_street: straight through both junctions
        path = first + [
            (j1.node_in(3), j1.node_out(1), 0),
            (j1.node_out(1), j2.node_in(3), 0),
            (j2.node_in(3), j2.node_out(1), 0),
            (j2.node_out(1), "B_t1", 0),
        ]
        legs = legs_along_path(
            net,
            path,
            commands={1: HighLevelCommand.STRAIGHT, 3: HighLevelCommand.STRAIGHT},
            first_s=50.0,
            last_s=50.0,
        )
    return legs


def _urban_lights(
    net: RoadNetwork, j1: Junction, j2: Junction, ctx: BuildContext
) -> list[TrafficLight]:
    """A signal on every incoming arm of both junctions, north-south and east-west groups in
    anti-phase."""
    ns, ew = light_offsets(ctx)
    lights = []
    for junction, arms in ((j1, (0, 1, 2, 3)), (j2, (0, 1, 2, 3))):
        for k in arms:
            lane_id = next(
                (a, b, 0) for a, tos in net.graph.items() for b in tos if b == junction.node_in(k)
            )
            length = net.get_lane(lane_id).length
            lights.append(
                signal_for(
                    len(lights), junction, k, lane_id, length, ctx, ns if k in (1, 3) else ew
                )
            )
    return lights


def _urban_pedestrians(j1: Junction, ctx: BuildContext) -> list[PedestrianSpawn]:
    """A mid-block crossing on the ego's approach and one on each of A's side exits."""
    rng = ctx.rng
    peds: list[PedestrianSpawn] = []
    if ctx.pedestrians:
        # a mid-block crossing on the ego's approach, and one on each of A's exits
        y_cross = -j1.half_size - float(rng.uniform(25.0, 40.0))
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        peds.append(
            PedestrianSpawn(
                np.array([side * 7.0, y_cross]),
                np.array([-side * 7.0, y_cross]),
                float(rng.uniform(0.5, 6.0)),
                float(rng.uniform(1.1, 1.6)),
            )
        )
        for k in (0, 2):
            exit_pt, h_out = j1.exits[k]
            centre = exit_pt + unit(h_out) * 6.0 + left_normal(unit(h_out)) * LANE_WIDTH_M / 2
            across = left_normal(unit(h_out)) * 7.0
            peds.append(
                PedestrianSpawn(
                    centre - across,
                    centre + across,
                    float(rng.uniform(2.0, 14.0)),
                    float(rng.uniform(1.1, 1.6)),
                )
            )
    return peds


def _urban_traffic(
    net: RoadNetwork, j1: Junction, j2: Junction, ctx: BuildContext
) -> list[NpcSpawn]:
    """Cross traffic through A, oncoming traffic from the block, and traffic leaving A."""
    npcs = []
    for k in (0, 2):
        lane = (f"A_f{k}", j1.node_in(k), 0)
        npcs += fill_lanes(
            ctx,
            net,
            [lane],
            (6.0, 9.0),
            [],
            destination=lambda _l, k=k: f"A_t{2 - k}",
            lane_change=False,
            s_range=(30.0, 110.0),
        )
    npcs += fill_lanes(
        ctx,
        net,
        [(j2.node_out(3), j1.node_in(1), 0)],
        (6.0, 9.0),
        [],
        destination=lambda _l: "A_t3",
        lane_change=False,
    )
    npcs += fill_lanes(
        ctx,
        net,
        [(j1.node_out(m), f"A_t{m}", 0) for m in (0, 2, 3)],
        (6.0, 9.0),
        [],
        lane_change=False,
    )
    return npcs
