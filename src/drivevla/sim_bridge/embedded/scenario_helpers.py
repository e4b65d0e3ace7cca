"""Building blocks the scenario builders share: traffic on lanes, traffic signals, guard
rails, and the arms and yield rules of a four-way junction (world metres, SI units)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from highway_env.road.road import RoadNetwork

from drivevla.core.types import HighLevelCommand
from drivevla.sim_bridge.embedded.actors import TrafficLight
from drivevla.sim_bridge.embedded.roads import (
    LANE_WIDTH_M,
    Junction,
    add_straight_road,
    left_normal,
    unit,
)
from drivevla.sim_bridge.embedded.scenario_types import (
    BuildContext,
    LaneId,
    NpcSpawn,
    StaticSpawn,
    YieldRule,
)

# --------------------------------------------------------------------------------------
# traffic helpers


def fill_lanes(
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


def signal_for(
    light_id: int,
    junction: Junction,
    arm: int,
    lane: LaneId,
    lane_length: float,
    ctx: BuildContext,
    group_offset_s: float,
) -> TrafficLight:
    """A signal for arm ``arm``'s incoming lane, standing at the far-right corner: beside the
    outgoing lane of the arm across the junction, 1.5 m past its start and 1.5 m beyond its
    right edge (so it keeps that clearance when the arms are not at right angles)."""
    entry, heading = junction.entries[arm]
    right = -left_normal(unit(heading))
    across, out_heading = junction.exits[(arm + 2) % len(junction.arm_angles)]
    d_out = unit(out_heading)
    head = across + d_out * 1.5 - left_normal(d_out) * (LANE_WIDTH_M / 2 + 1.5)
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


def light_offsets(ctx: BuildContext) -> tuple[float, float]:
    """Offsets of the north-south and east-west signal groups (anti-phase)."""
    g, y, r = ctx.light_cycle_s
    cycle = g + y + r
    base = (
        ctx.light_offset_s if ctx.light_offset_s is not None else float(ctx.rng.uniform(0, cycle))
    )
    return base, base + (g + y + (r - g - y) / 2.0)


def guard_rails_along(lane, offset: float) -> list[StaticSpawn]:
    """Guard-rail segments (20 m) along ``lane``, ``offset`` m to its right."""
    return [StaticSpawn(lane.position(20.0 * i + 10.0, -offset), lane.heading_at(20.0 * i + 10.0),
                        19.5, 0.3, 0.8) for i in range(int(lane.length // 20.0))]


def guard_rails(start: np.ndarray, end: np.ndarray, offset: float) -> list[StaticSpawn]:
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
# four-way junction helpers (intersection and urban)

ARM_LENGTH_M = 120.0
EGO_ARM = 3  # the ego approaches from the south arm, heading north
TURN_TO_ARM = {"turn_right": 0, "go_straight": 1, "turn_left": 2}
TURN_COMMAND = {
    "turn_right": HighLevelCommand.RIGHT,
    "go_straight": HighLevelCommand.STRAIGHT,
    "turn_left": HighLevelCommand.LEFT,
}


def arm_roads(
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


def junction_yield_rules(net: RoadNetwork, j: Junction, minor_arms, major_arms) -> list[YieldRule]:
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
