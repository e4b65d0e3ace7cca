"""Scenario families: road layouts, the ego route for each navigation intent, traffic,
traffic lights, pedestrians and static props.

Each family is a builder registered in :data:`FAMILIES`; ``build_scenario(family, intent,
rng, config)`` returns a ``Scenario`` (the records are in
:mod:`drivevla.sim_bridge.embedded.scenario_types`) that the environment instantiates.
Everything random comes from ``rng`` (a ``numpy.random.Generator`` seeded by
``reset(seed=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from highway_env.road.road import RoadNetwork

from drivevla.core.types import HighLevelCommand
from drivevla.language.intents import check_intents
from drivevla.sim_bridge.embedded.actors import TrafficLight
from drivevla.sim_bridge.embedded.roads import (
    LANE_WIDTH_M,
    Junction,
    add_arc,
    add_straight_road,
    build_junction,
    build_roundabout,
    left_normal,
    unit,
)
from drivevla.sim_bridge.embedded.routes import (
    Route,
    RouteLeg,
    lane_change_legs,
    legs_along_path,
)
from drivevla.sim_bridge.embedded.scenario_types import (
    BuildContext,
    LaneId,
    NpcSpawn,
    PedestrianSpawn,
    Scenario,
    StaticSpawn,
    YieldRule,
)


@dataclass(frozen=True)
class Family:
    name: str
    intents: tuple[str, ...]
    description: str
    build: Callable[[str, BuildContext], Scenario]


FAMILIES: dict[str, Family] = {}


def register_family(name: str, intents: tuple[str, ...], description: str):
    check_intents(intents, f"scenario family {name!r}")

    def deco(fn: Callable[[str, BuildContext], Scenario]):
        FAMILIES[name] = Family(name, intents, description, fn)
        return fn

    return deco


# Canonical instruction per intent; the language module renders many phrasings on top.
DEFAULT_INSTRUCTIONS = {
    "cruise": "Follow the road and keep your lane.",
    "change_lane_left": "Change to the left lane.",
    "change_lane_right": "Move over to the right lane.",
    "overtake": "Overtake the slow car ahead.",
    "merge": "Merge onto the highway.",
    "take_exit": "Take the next exit.",
    "pass_exit": "Stay on the highway and pass the exit.",
    "turn_left": "Turn left at the next junction.",
    "turn_right": "Turn right at the next junction.",
    "go_straight": "Go straight through the junction.",
    "roundabout_exit_1": "At the roundabout, take the first exit.",
    "roundabout_exit_2": "At the roundabout, take the second exit.",
    "roundabout_exit_3": "At the roundabout, take the third exit.",
    "follow_street": "Follow the street through both sets of lights.",
}


def all_intents() -> list[str]:
    return sorted({i for f in FAMILIES.values() for i in f.intents})


def build_scenario(family: str, intent: str, ctx: BuildContext) -> Scenario:
    if family not in FAMILIES:
        raise ValueError(f"unknown scenario family {family!r}; valid: {sorted(FAMILIES)}")
    fam = FAMILIES[family]
    if intent not in fam.intents:
        raise ValueError(
            f"unknown intent {intent!r} for family {family!r}; valid: {list(fam.intents)}"
        )
    return fam.build(intent, ctx)


# --------------------------------------------------------------------------------------
# traffic helpers


def _fill_lanes(
    ctx: BuildContext,
    net: RoadNetwork,
    lanes: list[LaneId],
    speed_range: tuple[float, float],
    keep_clear: list[tuple[LaneId, float, float]],
    destination: Callable[[LaneId], str | None] = lambda _: None,
    lane_change: bool = True,
    s_range: tuple[float, float] | None = None,
) -> list[NpcSpawn]:
    """Place traffic on ``lanes`` at ``traffic_density`` per 100 m with >= 20 m headway,
    avoiding the (lane, s_min, s_max) windows in ``keep_clear``."""
    spawns: list[NpcSpawn] = []
    for lane_id in lanes:
        lane = net.get_lane(lane_id)
        lo, hi = s_range if s_range else (5.0, lane.length - 5.0)
        hi = min(hi, lane.length - 5.0)
        if hi <= lo:
            continue
        count = int(ctx.rng.poisson(ctx.traffic_density * (hi - lo) / 100.0))
        taken: list[float] = []
        for _ in range(count):
            s = float(ctx.rng.uniform(lo, hi))
            if any(abs(s - t) < 20.0 for t in taken):
                continue
            if any(k == lane_id and a <= s <= b for k, a, b in keep_clear):
                continue
            taken.append(s)
            speed = float(ctx.rng.uniform(*speed_range))
            color = tuple(float(c) for c in ctx.rng.uniform(0.15, 0.85, size=3))
            spawns.append(
                NpcSpawn(lane_id, s, speed, destination(lane_id), lane_change, color=color)
            )
    return spawns


def _signal_for(
    light_id: int,
    junction: Junction,
    arm: int,
    lane: LaneId,
    lane_length: float,
    ctx: BuildContext,
    group_offset_s: float,
) -> TrafficLight:
    """A signal for arm ``arm``'s incoming lane, standing at the far-right corner."""
    entry, heading = junction.entries[arm]
    d_in = unit(heading)
    right = -left_normal(d_in)
    head = entry + d_in * (2 * junction.half_size + 1.5) + right * (LANE_WIDTH_M / 2 + 1.5)
    stop_line = np.array([entry + right * LANE_WIDTH_M / 2, entry - right * LANE_WIDTH_M / 2])
    g, y, r = ctx.light_cycle_s
    return TrafficLight(
        light_id,
        head,
        4.5,
        heading + math.pi,
        stop_line,
        lane,
        lane_length,
        g,
        y,
        r,
        group_offset_s,
    )


def _light_offsets(ctx: BuildContext) -> tuple[float, float]:
    """Offsets of the north-south and east-west signal groups (anti-phase)."""
    g, y, r = ctx.light_cycle_s
    cycle = g + y + r
    base = (
        ctx.light_offset_s if ctx.light_offset_s is not None else float(ctx.rng.uniform(0, cycle))
    )
    return base, base + (g + y + (r - g - y) / 2.0)


def _guard_rails(start: np.ndarray, end: np.ndarray, offset: float) -> list[StaticSpawn]:
    """Guard-rail segments (20 m) parallel to start->end, ``offset`` m to its right."""
    d = (end - start) / np.linalg.norm(end - start)
    right = -left_normal(d)
    n = int(np.linalg.norm(end - start) // 20.0)
    heading = math.atan2(d[1], d[0])
    return [
        StaticSpawn(start + d * (20.0 * i + 10.0) + right * offset, heading, 19.5, 0.3, 0.8)
        for i in range(n)
    ]


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
    add_straight_road(net, ("h1", "h2"), (100, 0), (1100, 0), HIGHWAY_LANES, v_lim)
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
        legs = [
            RouteLeg(("h0", "h1", k), 20, 100),
            *lane_change_legs(net, ("h1", "h2"), k, k + 1, 0, 30, 230),
            RouteLeg(
                ("h1", "h2", k),
                230,
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
    npcs += _fill_lanes(ctx, net, lanes, (17.0, 23.0), keep_clear, s_range=(0.0, 300.0))
    statics = (
        _guard_rails(np.array([0.0, 0.0]), np.array([1100.0, 0.0]), LANE_WIDTH_M / 2 + 2.0)
        if ctx.guard_rails
        else []
    )
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


# --------------------------------------------------------------------------------------
# on-ramp merge


@register_family("merge", ("merge",), "On-ramp with an acceleration lane onto a two-lane road.")
def _merge(intent: str, ctx: BuildContext) -> Scenario:
    v_lim = 25.0
    net = RoadNetwork()
    add_straight_road(net, ("m0", "m1"), (0, 0), (200, 0), 2, v_lim)
    # acceleration lane is lane 0 of the middle section (its left side is striped)
    add_straight_road(net, ("m1", "m2"), (200, -LANE_WIDTH_M), (330, -LANE_WIDTH_M), 3, v_lim)
    add_straight_road(net, ("m2", "m3"), (330, 0), (800, 0), 2, v_lim)
    # ramp: straight, then an S-curve of two arcs into the acceleration lane
    add_straight_road(net, ("r0", "r1"), (40, -26), (140, -26), 1, 20.0)
    mid = np.array([170.0, -(26 + LANE_WIDTH_M) / 2])
    first = add_arc(net, ("r1", "r2"), (140, -26), 0.0, mid, 20.0, lines=(3, 3))
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
        RouteLeg(("r0", "r1", 0), 10, 100),
        *legs_along_path(net, [("r1", "r2", 0), ("r2", "m1", 0)]),
        *lane_change_legs(net, ("m1", "m2"), 0, 1, 0, 40, 130),
        RouteLeg(("m2", "m3", 0), 0, 180),
    ]
    lanes = [(a, b, i) for a, b in (("m0", "m1"),) for i in range(2)] + [
        ("m1", "m2", 1),
        ("m1", "m2", 2),
    ]
    npcs = _fill_lanes(ctx, net, lanes, (16.0, 22.0), [], lane_change=False)
    statics = (
        _guard_rails(np.array([330.0, 0.0]), np.array([800.0, 0.0]), LANE_WIDTH_M / 2 + 2.0)
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
    add_straight_road(net, ("x0", "x1"), (0, 0), (250, 0), 3, v_lim)
    add_straight_road(net, ("x1", "x1b"), (250, 0), (330, 0), 3, v_lim, right_line=0)
    add_straight_road(net, ("x1b", "x2"), (330, 0), (900, 0), 3, v_lim)
    # deceleration lane beside lane 0, then the ramp curving away to the right
    add_straight_road(
        net, ("x1", "e0"), (250, -LANE_WIDTH_M), (330, -LANE_WIDTH_M), 1, 20.0, left_line=1
    )
    arc = add_arc(net, ("e0", "e1"), (330, -LANE_WIDTH_M), 0.0, (390, -22.0), 18.0, lines=(3, 3))
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
                80,
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
    npcs = _fill_lanes(ctx, net, lanes, (16.0, 22.0), [(("x0", "x1", k), 0.0, 90.0)])
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


# --------------------------------------------------------------------------------------
# four-way junction helpers (intersection and urban)

ARM_LENGTH_M = 120.0
EGO_ARM = 3  # the ego approaches from the south arm, heading north
TURN_TO_ARM = {"turn_right": 0, "go_straight": 1, "turn_left": 2}
TURN_COMMAND = {
    "turn_right": HighLevelCommand.RIGHT,
    "go_straight": HighLevelCommand.STRAIGHT,
    "turn_left": HighLevelCommand.LEFT,
}


def _arm_roads(
    net: RoadNetwork,
    j: Junction,
    v_lim: float,
    arms=range(4),
    lengths: dict[int, float] | None = None,
    priority_arms=(),
) -> None:
    """Incoming (``{j}_f{k} -> in``) and outgoing (``out -> {j}_t{k}``) lanes of each arm."""
    for k in arms:
        length = (lengths or {}).get(k, ARM_LENGTH_M)
        entry, h_in = j.entries[k]
        exit_pt, h_out = j.exits[k]
        pr = 1 if k in priority_arms else 0
        add_straight_road(
            net,
            (f"{j.name}_f{k}", j.node_in(k)),
            entry - unit(h_in) * length,
            entry,
            1,
            v_lim,
            left_line=3,
            priority=pr,
        )
        add_straight_road(
            net,
            (j.node_out(k), f"{j.name}_t{k}"),
            exit_pt,
            exit_pt + unit(h_out) * length,
            1,
            v_lim,
            left_line=0,
        )


def _junction_yield_rules(net: RoadNetwork, j: Junction, minor_arms, major_arms) -> list[YieldRule]:
    rules = []
    for k in minor_arms:
        lane_id = (f"{j.name}_f{k}", j.node_in(k), 0)
        conflicts = [((f"{j.name}_f{m}", j.node_in(m), 0), 45.0) for m in major_arms]
        conflicts += [
            ((j.node_in(m), j.node_out(n), 0), 1e9)
            for m in range(4)
            for n in range(4)
            if m != n and m != k
        ]
        rules.append(YieldRule(lane_id, net.get_lane(lane_id).length, conflicts))
    return rules


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
    j = build_junction(net, "J", np.zeros(2), 12.0, 8.0, priority_arms=major)
    _arm_roads(net, j, v_lim, priority_arms=major)
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
        npcs += _fill_lanes(
            ctx,
            net,
            [lane],
            (7.0, 10.0),
            [],
            destination=lambda _l, c=choices: f"J_t{int(rng.choice(c))}",
            lane_change=False,
            s_range=(20.0, 115.0),
        )
    npcs += _fill_lanes(
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
        yield_rules=_junction_yield_rules(net, j, (1, 3), major),
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
    build_roundabout(net, "R", np.zeros(2), 20.0, v_lim, arm_length=100.0)
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
        npcs += _fill_lanes(
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
    net = RoadNetwork()
    gap = 110.0  # junction spacing (centre to centre)
    j1 = build_junction(net, "A", np.array([0.0, 0.0]), 10.0, 7.0)
    j2 = build_junction(net, "B", np.array([0.0, gap]), 10.0, 7.0)
    _arm_roads(net, j1, v_lim, arms=(0, 2, 3))
    _arm_roads(net, j2, v_lim, arms=(0, 1, 2))
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
    ns, ew = _light_offsets(ctx)
    lights = []
    for junction, arms in ((j1, (0, 1, 2, 3)), (j2, (0, 1, 2, 3))):
        for k in arms:
            lane_id = next(
                (a, b, 0) for a, tos in net.graph.items() for b in tos if b == junction.node_in(k)
            )
            length = net.get_lane(lane_id).length
            lights.append(
                _signal_for(
                    len(lights), junction, k, lane_id, length, ctx, ns if k in (1, 3) else ew
                )
            )
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
    npcs = []
    for k in (0, 2):
        lane = (f"A_f{k}", j1.node_in(k), 0)
        npcs += _fill_lanes(
            ctx,
            net,
            [lane],
            (6.0, 9.0),
            [],
            destination=lambda _l, k=k: f"A_t{2 - k}",
            lane_change=False,
            s_range=(30.0, 110.0),
        )
    npcs += _fill_lanes(
        ctx,
        net,
        [(j2.node_out(3), j1.node_in(1), 0)],
        (6.0, 9.0),
        [],
        destination=lambda _l: "A_t3",
        lane_change=False,
    )
    npcs += _fill_lanes(
        ctx,
        net,
        [(j1.node_out(m), f"A_t{m}", 0) for m in (0, 2, 3)],
        (6.0, 9.0),
        [],
        lane_change=False,
    )
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
