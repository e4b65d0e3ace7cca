"""Road-network building blocks for the scenario families (world frame, right-hand traffic).

Conventions: on a multi-lane edge, lane id 0 is the *rightmost* lane and ids grow to the
left (so ``change_lane_left`` means id + 1). Each edge carries one driving direction.
highway-env's ``line_types`` are ``(right side, left side)`` in our frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from highway_env.road.lane import AbstractLane, CircularLane, LineType, StraightLane
from highway_env.road.road import RoadNetwork

from drivevla.core.scene import LaneGeometry, MarkingType

LANE_WIDTH_M = 3.5
_MARKING = {
    LineType.NONE: MarkingType.NONE,
    LineType.STRIPED: MarkingType.STRIPED,
    LineType.CONTINUOUS: MarkingType.SOLID,
    LineType.CONTINUOUS_LINE: MarkingType.SOLID,
}
S, C, N = LineType.STRIPED, LineType.CONTINUOUS_LINE, LineType.NONE


def unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def left_normal(direction: np.ndarray) -> np.ndarray:
    return np.array([-direction[1], direction[0]])


def add_straight_road(
    net: RoadNetwork,
    edge: tuple[str, str],
    start: np.ndarray,
    end: np.ndarray,
    lanes: int,
    speed_limit: float,
    *,
    left_line: int = C,
    right_line: int = C,
    priority: int = 0,
) -> None:
    """``lanes`` parallel one-way lanes; ``start``/``end`` are the rightmost lane's centre."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    d = (end - start) / np.linalg.norm(end - start)
    n = left_normal(d)
    for i in range(lanes):
        off = n * LANE_WIDTH_M * i
        right = right_line if i == 0 else N
        left = left_line if i == lanes - 1 else S
        net.add_lane(
            *edge,
            StraightLane(
                start + off,
                end + off,
                width=LANE_WIDTH_M,
                line_types=(right, left),
                speed_limit=speed_limit,
                priority=priority,
            ),
        )


def add_arc(
    net: RoadNetwork,
    edge: tuple[str, str],
    p0: np.ndarray,
    heading0: float,
    p1: np.ndarray,
    speed_limit: float,
    *,
    lines: tuple[int, int] = (N, N),
    priority: int = 0,
) -> AbstractLane:
    """A circular arc leaving ``p0`` with ``heading0`` and ending at ``p1`` (one lane)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d0 = unit(heading0)
    chord = p1 - p0
    cross = d0[0] * chord[1] - d0[1] * chord[0]
    if abs(cross) < 1e-6:
        lane: AbstractLane = StraightLane(
            p0, p1, width=LANE_WIDTH_M, line_types=lines, speed_limit=speed_limit, priority=priority
        )
    else:
        turn_left = cross > 0
        nrm = left_normal(d0) if turn_left else -left_normal(d0)
        # centre = p0 + r * nrm with |centre - p1| = r
        r = float(chord @ chord) / (2.0 * float(chord @ nrm))
        centre = p0 + r * nrm
        a0 = math.atan2(p0[1] - centre[1], p0[0] - centre[0])
        a1 = math.atan2(p1[1] - centre[1], p1[0] - centre[0])
        if turn_left:  # counter-clockwise: phase increases (highway-env's clockwise=True)
            while a1 <= a0:
                a1 += 2 * math.pi
        else:
            while a1 >= a0:
                a1 -= 2 * math.pi
        lane = CircularLane(
            centre,
            abs(r),
            a0,
            a1,
            clockwise=turn_left,
            width=LANE_WIDTH_M,
            line_types=lines,
            speed_limit=speed_limit,
            priority=priority,
        )
    net.add_lane(*edge, lane)
    return lane


def lane_geometries(net: RoadNetwork, step_m: float = 2.0) -> list[LaneGeometry]:
    """Sample every lane of ``net`` for the renderers and criteria."""
    out = []
    for (a, b, i), lane in net.lanes_dict().items():
        n = max(int(math.ceil(lane.length / step_m)), 1)
        s = np.linspace(0.0, lane.length, n + 1)
        pts = np.array([lane.position(si, 0.0) for si in s])
        right, left = lane.line_types
        out.append(
            LaneGeometry(
                lane_id=(a, b, i),
                centerline=pts,
                width=float(lane.width_at(0.0)),
                left_marking=_MARKING.get(left, MarkingType.NONE),
                right_marking=_MARKING.get(right, MarkingType.NONE),
                speed_limit_mps=float(lane.speed_limit),
            )
        )
    return out


@dataclass
class Junction:
    """A 4-arm junction: entry/exit points of each arm and its connectors.

    Arm k points outwards along ``arm_angles[k]``. Node names: ``{name}_in{k}`` (end of the
    incoming lane, at the stop line) and ``{name}_out{k}`` (start of the outgoing lane).
    """

    name: str
    centre: np.ndarray
    half_size: float
    arm_angles: tuple[float, ...]
    entries: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)
    exits: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)

    def node_in(self, k: int) -> str:
        return f"{self.name}_in{k}"

    def node_out(self, k: int) -> str:
        return f"{self.name}_out{k}"

    def turn(self, arm_from: int, arm_to: int) -> str:
        """'straight', 'left' or 'right' for a movement between two arms."""
        delta = (self.arm_angles[arm_to] - self.arm_angles[arm_from]) % (2 * math.pi)
        if abs(delta - math.pi) < 0.3:
            return "straight"
        return "right" if abs(delta - math.pi / 2) < 0.3 else "left"


def build_junction(
    net: RoadNetwork,
    name: str,
    centre: np.ndarray,
    half_size: float,
    speed_limit: float,
    arm_angles: tuple[float, ...] = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2),
    priority_arms: tuple[int, ...] = (),
) -> Junction:
    """Add the connector lanes of a one-lane-per-direction junction and return its layout.

    Incoming lanes end at ``centre + half_size * arm`` on the right-hand side of the inward
    direction; outgoing lanes start at the mirrored point. Connectors: straight lines or arcs.
    Connectors starting on ``priority_arms`` get priority 1 (the others must yield).
    """
    centre = np.asarray(centre, float)
    j = Junction(name, centre, half_size, arm_angles)
    for k, ang in enumerate(arm_angles):
        out_dir = unit(ang)
        in_dir = -out_dir
        right_of_in = -left_normal(in_dir)
        right_of_out = -left_normal(out_dir)
        j.entries[k] = (
            centre + half_size * out_dir + LANE_WIDTH_M / 2 * right_of_in,
            math.atan2(in_dir[1], in_dir[0]),
        )
        j.exits[k] = (
            centre + half_size * out_dir + LANE_WIDTH_M / 2 * right_of_out,
            math.atan2(out_dir[1], out_dir[0]),
        )
    for a in range(len(arm_angles)):
        for b in range(len(arm_angles)):
            if a == b:
                continue
            p0, h0 = j.entries[a]
            p1, _ = j.exits[b]
            add_arc(
                net,
                (j.node_in(a), j.node_out(b)),
                p0,
                h0,
                p1,
                speed_limit,
                priority=1 if a in priority_arms else 0,
            )
    return j


@dataclass
class Roundabout:
    """A one-lane counter-clockwise ring with 4 arms.

    Ring traffic meets arm k first at its exit point ``{name}_x{k}`` (phase angle - half
    angle, where the outgoing lane sits under right-hand traffic), then at its entry point
    ``{name}_e{k}`` (phase angle + half angle)."""

    name: str
    centre: np.ndarray
    radius: float
    arm_angles: tuple[float, ...]
    entry_half_angle: float


def build_roundabout(
    net: RoadNetwork,
    name: str,
    centre: np.ndarray,
    radius: float,
    speed_limit: float,
    arm_length: float,
    arm_angles: tuple[float, ...] = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2),
    entry_half_angle: float = math.radians(22.0),
) -> Roundabout:
    """Ring arcs between entry/exit points, and 2-lane (in/out) arms of ``arm_length``.

    Arm k's incoming lane is ``{name}_a{k} -> {name}_ai{k}`` and connector ``_ai{k} -> _e{k}``;
    its outgoing lane is ``{name}_xo{k} -> {name}_b{k}`` after the connector ``_x{k} -> _xo{k}``.
    Ring arcs have priority 1; entry connectors 0 (yield to the ring).
    """
    c = np.asarray(centre, float)
    rb = Roundabout(name, c, radius, arm_angles, entry_half_angle)
    _add_ring(net, name, c, radius, speed_limit, arm_angles, entry_half_angle)
    for k, ang in enumerate(arm_angles):
        _add_roundabout_arm(net, name, c, radius, speed_limit, arm_length, k, ang,
                            entry_half_angle)
    return rb


def _add_ring(
    net: RoadNetwork, name: str, c: np.ndarray, radius: float, speed_limit: float,
    arm_angles: tuple[float, ...], entry_half_angle: float,
) -> None:
    """The clockwise ring: one arc from each exit/entry node to the next."""
    nodes = []
    for k, ang in enumerate(arm_angles):
        nodes.append((f"{name}_x{k}", ang - entry_half_angle))
        nodes.append((f"{name}_e{k}", ang + entry_half_angle))
    for idx, (node, phase) in enumerate(nodes):
        nxt, nphase = nodes[(idx + 1) % len(nodes)]
        while nphase <= phase:
            nphase += 2 * math.pi
        net.add_lane(
            node,
            nxt,
            CircularLane(
                c,
                radius,
                phase,
                nphase,
                clockwise=True,
                width=LANE_WIDTH_M,
                line_types=(C, C),
                speed_limit=speed_limit,
                priority=1,
            ),
        )


def _add_roundabout_arm(
    net: RoadNetwork, name: str, c: np.ndarray, radius: float, speed_limit: float,
    arm_length: float, k: int, ang: float, entry_half_angle: float,
) -> None:
    """Arm k at angle ``ang``: its incoming lane and entry connector, its exit connector
    and outgoing lane."""
    out_dir = unit(ang)
    right_out = -left_normal(out_dir)
    # the arm's two lanes sit either side of the arm axis
    mouth = c + out_dir * (radius + 12.0)
    far = c + out_dir * (radius + 12.0 + arm_length)
    in_end = mouth - right_out * LANE_WIDTH_M / 2
    in_start = far - right_out * LANE_WIDTH_M / 2
    out_start = mouth + right_out * LANE_WIDTH_M / 2
    out_end = far + right_out * LANE_WIDTH_M / 2
    net.add_lane(
        f"{name}_a{k}",
        f"{name}_ai{k}",
        StraightLane(
            in_start, in_end, width=LANE_WIDTH_M, line_types=(C, S), speed_limit=speed_limit
        ),
    )
    e_pt = c + radius * unit(ang + entry_half_angle)
    x_pt = c + radius * unit(ang - entry_half_angle)
    add_arc(
        net,
        (f"{name}_ai{k}", f"{name}_e{k}"),
        in_end,
        ang + math.pi,
        e_pt,
        speed_limit,
        lines=(C, N),
    )
    # leave the ring tangentially (counter-clockwise tangent at the exit point)
    add_arc(
        net,
        (f"{name}_x{k}", f"{name}_xo{k}"),
        x_pt,
        ang - entry_half_angle + math.pi / 2,
        out_start,
        speed_limit,
        lines=(C, N),
    )
    net.add_lane(
        f"{name}_xo{k}",
        f"{name}_b{k}",
        StraightLane(
            out_start, out_end, width=LANE_WIDTH_M, line_types=(C, N), speed_limit=speed_limit
        ),
    )
