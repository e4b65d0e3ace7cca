"""Lane-level routes through a highway-env road network, and their centreline polylines.

A route is a list of :class:`RouteLeg` s: a stretch of one lane, optionally with a lateral
offset that moves smoothly from one value to another (a lane change is a leg whose lateral
offset goes from 0 to +/- one lane width). The polyline is what the criteria project onto
and what ``Observation.route.target_points`` are sampled from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from highway_env.road.road import RoadNetwork

from drivevla.core.types import HighLevelCommand

LaneId = tuple[str, str, int]

ROUTE_SAMPLE_STEP_M = 1.0


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class RouteLeg:
    """A stretch ``[s_start, s_end]`` (m) of lane ``lane``.

    The lateral offset (m, left-positive) blends from ``lateral_start`` to ``lateral_end``
    over the first ``blend_m`` metres of the leg. ``command`` is the high-level command a
    driver receives while approaching/driving this leg.
    """

    lane: LaneId
    s_start: float
    s_end: float
    lateral_start: float = 0.0
    lateral_end: float = 0.0
    blend_m: float = 0.0
    command: HighLevelCommand = HighLevelCommand.LANE_FOLLOW

    def sample(self, network: RoadNetwork) -> np.ndarray:
        lane = network.get_lane(self.lane)
        length = max(self.s_end - self.s_start, 1e-3)
        n = max(int(np.ceil(length / ROUTE_SAMPLE_STEP_M)), 1)
        s = np.linspace(self.s_start, self.s_end, n + 1)
        if self.blend_m > 0:
            w = _smoothstep((s - self.s_start) / self.blend_m)
        else:
            w = np.ones_like(s)
        lat = self.lateral_start + (self.lateral_end - self.lateral_start) * w
        return np.array([lane.position(si, li) for si, li in zip(s, lat, strict=True)])


@dataclass
class Route:
    """The ego's route: legs, the sampled polyline, and commands along it."""

    intent: str
    legs: list[RouteLeg]
    network: RoadNetwork
    polyline: np.ndarray = field(init=False)
    cumulative_m: np.ndarray = field(init=False)
    # s (along the polyline) at which each leg starts, and each leg's command
    leg_start_m: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        pieces, starts, total = [], [], 0.0
        for leg in self.legs:
            pts = leg.sample(self.network)
            if pieces:
                pts = pts[1:] if np.linalg.norm(pts[0] - pieces[-1][-1]) < 0.5 else pts
            starts.append(total)
            seg = np.concatenate([pieces[-1][-1:], pts]) if pieces else pts
            total += float(np.sum(np.linalg.norm(np.diff(seg, axis=0), axis=1)))
            pieces.append(pts)
        self.polyline = np.concatenate(pieces)
        d = np.linalg.norm(np.diff(self.polyline, axis=0), axis=1)
        self.cumulative_m = np.concatenate([[0.0], np.cumsum(d)])
        self.leg_start_m = np.array(starts)

    @property
    def length_m(self) -> float:
        return float(self.cumulative_m[-1])

    @property
    def edges(self) -> set[tuple[str, str]]:
        """Road edges (from, to) of the route: every same-direction lane on them is a route lane."""
        return {leg.lane[:2] for leg in self.legs}

    @property
    def start_pose(self) -> tuple[np.ndarray, float]:
        leg = self.legs[0]
        lane = self.network.get_lane(leg.lane)
        return lane.position(leg.s_start, leg.lateral_start), float(lane.heading_at(leg.s_start))

    def point_at(self, s: float) -> np.ndarray:
        s = float(np.clip(s, 0.0, self.length_m))
        x = np.interp(s, self.cumulative_m, self.polyline[:, 0])
        y = np.interp(s, self.cumulative_m, self.polyline[:, 1])
        return np.array([x, y])

    def points_ahead(self, s: float, count: int, spacing_m: float) -> np.ndarray:
        """(count, 2) world points at s + spacing, s + 2 spacing, ... (clamped at the goal)."""
        return np.array([self.point_at(s + spacing_m * (i + 1)) for i in range(count)])

    def command_at(self, s: float, lookahead_m: float = 30.0) -> HighLevelCommand:
        """The command of the first non-lane-follow leg within ``lookahead_m`` ahead of s."""
        idx = int(np.searchsorted(self.leg_start_m, s, side="right") - 1)
        for i in range(max(idx, 0), len(self.legs)):
            if self.leg_start_m[i] > s + lookahead_m:
                break
            if self.legs[i].command != HighLevelCommand.LANE_FOLLOW:
                # an upcoming manoeuvre leg is announced; a finished one is no longer
                leg_end = self.leg_start_m[i + 1] if i + 1 < len(self.legs) else self.length_m
                if s <= leg_end:
                    return self.legs[i].command
        return HighLevelCommand.LANE_FOLLOW


def legs_along_path(
    network: RoadNetwork,
    path: list[LaneId],
    commands: dict[int, HighLevelCommand] | None = None,
    first_s: float = 0.0,
    last_s: float | None = None,
) -> list[RouteLeg]:
    """Whole-lane legs along a lane path; ``commands`` maps leg index to its command."""
    commands = commands or {}
    legs = []
    for i, lane_id in enumerate(path):
        lane = network.get_lane(lane_id)
        s0 = first_s if i == 0 else 0.0
        s1 = last_s if (i == len(path) - 1 and last_s is not None) else lane.length
        legs.append(
            RouteLeg(lane_id, s0, s1, command=commands.get(i, HighLevelCommand.LANE_FOLLOW))
        )
    return legs


def beside(network: RoadNetwork, src: LaneId, dst: LaneId, s: float) -> float:
    """The arc length on lane ``dst`` beside ``s`` on the parallel lane ``src``: ``s`` itself
    where the lanes share their cross-sections (straight lanes started side by side), else
    the projection (lanes on a bend differ in length)."""
    s_dst, _ = network.get_lane(dst).local_coordinates(network.get_lane(src).position(s, 0.0))
    return s if abs(s_dst - s) < 1e-6 else float(s_dst)


def lane_change_legs(
    network: RoadNetwork,
    edge: tuple[str, str],
    from_lane: int,
    to_lane: int,
    s_start: float,
    s_change: float,
    s_end: float,
    blend_m: float = 40.0,
) -> list[RouteLeg]:
    """Drive lane ``from_lane`` of ``edge`` until ``s_change``, then change to ``to_lane``.

    The change leg is expressed on the *target* lane with a lateral offset that starts at the
    source lane's offset and blends to 0, so the polyline is continuous and ends centred.
    """
    src = network.get_lane((*edge, from_lane))
    dst = network.get_lane((*edge, to_lane))
    # lateral offset of the source lane's centre seen from the destination lane
    _, lat = dst.local_coordinates(src.position(s_change, 0.0))
    command = HighLevelCommand.CHANGE_LANE_LEFT if lat < 0 else HighLevelCommand.CHANGE_LANE_RIGHT
    return [
        RouteLeg((*edge, from_lane), s_start, s_change),
        RouteLeg(
            (*edge, to_lane),
            beside(network, (*edge, from_lane), (*edge, to_lane), s_change),
            s_end,
            lateral_start=lat,
            lateral_end=0.0,
            blend_m=blend_m,
            command=command,
        ),
    ]
