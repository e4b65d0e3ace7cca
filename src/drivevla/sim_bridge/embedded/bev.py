"""Top-down (bird's-eye view) debug rendering of the embedded world, with PIL.

``render_bev`` draws a square window of ``metres`` x ``metres`` centred on the ego: road
surfaces, lane markings, an optional route and planned trajectory, actors as oriented
rectangles (the ego in cyan), pedestrians as orange discs and traffic lights as coloured dots
on their stop lines. With ``heading_up`` the ego's heading points up the image; otherwise
world north (+y) is up and east (+x) is right.

The polyline helpers here (:func:`dash_polylines`, :func:`offset_polyline`) are shared with the
camera renderer so that both views paint the same dashes.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from drivevla.core.scene import (
    ActorBox,
    ActorKind,
    LaneGeometry,
    LightState,
    MarkingType,
    SceneSnapshot,
    TrafficLightView,
)

__all__ = [
    "render_bev",
    "dash_polylines",
    "offset_polyline",
    "lane_markings",
    "marking_pieces",
    "DASH_M",
    "GAP_M",
]

DASH_M = 3.0  # painted length of a striped marking
GAP_M = 6.0  # gap between dashes

_BACKGROUND = (28, 48, 30)
_ROAD = (85, 85, 88)
_WHITE = (235, 235, 235)
_YELLOW = (235, 200, 60)
_ROUTE = (40, 140, 255)
_TRAJECTORY = (255, 40, 220)
_EGO = (0, 230, 255)
_PEDESTRIAN = (255, 140, 0)
_LIGHT = {
    LightState.RED: (255, 30, 30),
    LightState.YELLOW: (255, 210, 0),
    LightState.GREEN: (30, 230, 60),
}


def _clean(polyline: np.ndarray) -> np.ndarray:
    """Drop repeated vertices so arc length is strictly increasing."""
    pts = np.asarray(polyline, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return pts
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6
    return pts[keep]


def offset_polyline(polyline: np.ndarray, offset: float) -> np.ndarray:
    """Shift a polyline ``(N, 2)`` sideways by ``offset`` metres (positive = to its left)."""
    pts = np.asarray(polyline, dtype=np.float64)
    d = np.gradient(pts, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return pts + offset * np.stack([-d[:, 1], d[:, 0]], axis=1)


def dash_polylines(
    polyline: np.ndarray, dash: float = DASH_M, gap: float = GAP_M
) -> list[np.ndarray]:
    """Cut a polyline into dashes of ``dash`` metres separated by ``gap`` metres.

    The first dash starts at the polyline's first vertex. Each dash is returned as its own
    polyline ``(M, 2)`` (M >= 2) that follows the curve.
    """
    pts = _clean(polyline)
    if len(pts) < 2:
        return []
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    out = []
    for start in np.arange(0.0, s[-1], dash + gap):
        end = min(start + dash, s[-1])
        if end - start < 1e-3:
            continue
        inner = (s > start) & (s < end)
        ss = np.concatenate([[start], s[inner], [end]])
        out.append(np.stack([np.interp(ss, s, pts[:, 0]), np.interp(ss, s, pts[:, 1])], axis=1))
    return out


def _canonical(polyline: np.ndarray) -> tuple[np.ndarray, tuple]:
    """A direction-independent key for a marking polyline, and the polyline in that direction."""
    a, b = np.round(polyline[0], 2), np.round(polyline[-1], 2)
    if (a[0], a[1]) > (b[0], b[1]):
        polyline, a, b = polyline[::-1], b, a
    length = float(np.linalg.norm(np.diff(polyline, axis=0), axis=1).sum())
    return polyline, (float(a[0]), float(a[1]), float(b[0]), float(b[1]), round(length, 1))


def lane_markings(lanes: Sequence[LaneGeometry]) -> list[tuple[np.ndarray, MarkingType, bool]]:
    """The painted lines of a road network as ``(polyline, kind, is_yellow)``, each line once.

    A boundary shared by two lanes (same endpoints, either direction) is returned once, in a
    canonical direction so that its dashes do not depend on which lane it came from; solid
    wins over striped. Solid *left* markings (towards oncoming traffic, or the left road edge)
    are yellow unless another lane has the same line as its right marking; all else is white.
    """
    found: dict[tuple, list] = {}
    for lane in lanes:
        right, left = lane.edges()
        for edge, kind, is_left in (
            (right, lane.right_marking, False),
            (left, lane.left_marking, True),
        ):
            kind = MarkingType(kind)
            if kind == MarkingType.NONE or len(edge) < 2:
                continue
            edge, key = _canonical(edge)
            yellow = is_left and kind == MarkingType.SOLID
            entry = found.get(key)
            if entry is None:
                found[key] = [edge, kind, yellow]
            else:
                entry[2] = entry[2] and yellow
                if kind == MarkingType.SOLID:
                    entry[1] = kind
    return [(e, k, y) for e, k, y in found.values()]


def marking_pieces(lanes: Sequence[LaneGeometry]) -> list[tuple[np.ndarray, bool]]:
    """Every painted piece ``(polyline, is_yellow)``: whole solid lines and single dashes."""
    out = []
    for edge, kind, yellow in lane_markings(lanes):
        pieces = [edge] if kind == MarkingType.SOLID else dash_polylines(edge)
        out.extend((piece, yellow) for piece in pieces if len(piece) >= 2)
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the True runs of a 1D mask, widened by one each side."""
    if not mask.any():
        return []
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    n = len(mask)
    return [(max(a - 1, 0), min(b + 1, n)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


@dataclass
class _StaticBev:
    """Per-road-network arrays, computed once and reused across frames."""

    lanes: tuple[LaneGeometry, ...]  # kept alive so that the ids in the cache key stay valid
    centre: list[np.ndarray]
    polygons: list[tuple[np.ndarray, np.ndarray]]  # (right, left) edges per lane
    mark_pts: np.ndarray  # (M, 2) all marking vertices
    mark_bounds: np.ndarray  # (P + 1,) piece p is mark_pts[bounds[p]:bounds[p + 1]]
    mark_mid: np.ndarray  # (P, 2) a representative point per piece, for culling
    mark_radius: np.ndarray  # (P,) how far a piece reaches from that point
    mark_yellow: np.ndarray  # (P,) bool


_STATIC_CACHE: OrderedDict[tuple[int, ...], _StaticBev] = OrderedDict()
_STATIC_CACHE_SIZE = 8
_CHUNK_VERTICES = 24


def _static_bev(lanes: Sequence[LaneGeometry]) -> _StaticBev:
    key = tuple(id(lane) for lane in lanes)
    hit = _STATIC_CACHE.get(key)
    if hit is not None:
        _STATIC_CACHE.move_to_end(key)
        return hit
    pieces = []
    for piece, yellow in marking_pieces(lanes):  # long solid lines in chunks, for culling
        step = _CHUNK_VERTICES - 1
        for a in range(0, max(len(piece) - 1, 1), step):
            pieces.append((piece[a : a + _CHUNK_VERTICES], yellow))
    if pieces:
        pts = np.concatenate([p for p, _ in pieces], axis=0)
        bounds = np.concatenate([[0], np.cumsum([len(p) for p, _ in pieces])])
        mid = np.array([p[len(p) // 2] for p, _ in pieces])
        radius = np.array(
            [np.linalg.norm(p - m, axis=1).max() for (p, _), m in zip(pieces, mid, strict=True)]
        )
        yellow = np.array([y for _, y in pieces], dtype=bool)
    else:
        pts, bounds = np.zeros((0, 2)), np.zeros(1, dtype=int)
        mid, radius, yellow = np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=bool)
    static = _StaticBev(
        lanes=tuple(lanes),
        centre=[np.asarray(lane.centerline, dtype=np.float64) for lane in lanes],
        polygons=[lane.edges() for lane in lanes],
        mark_pts=pts,
        mark_bounds=bounds,
        mark_mid=mid,
        mark_radius=radius,
        mark_yellow=yellow,
    )
    _STATIC_CACHE[key] = static
    while len(_STATIC_CACHE) > _STATIC_CACHE_SIZE:
        _STATIC_CACHE.popitem(last=False)
    return static


@dataclass(frozen=True)
class _BevView:
    """The image window: world points to pixel coordinates, and what is near enough to draw."""

    origin: np.ndarray  # the ego's world (x, y), the image centre
    c: float  # cos and sin of the world direction drawn as "up"
    s: float
    half: float  # pixel coordinate of the image centre
    scale: float  # px per metre
    reach: float  # anything farther from the ego than this is off-image

    def to_px(self, pts: np.ndarray) -> np.ndarray:
        d = np.asarray(pts, dtype=np.float64).reshape(-1, 2) - self.origin
        fwd = d[:, 0] * self.c + d[:, 1] * self.s
        left = -d[:, 0] * self.s + d[:, 1] * self.c
        return np.stack([self.half - left * self.scale, self.half - fwd * self.scale], axis=1)

    def near(self, pts: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(pts).reshape(-1, 2) - self.origin, axis=1) < self.reach


def _xy(px: np.ndarray) -> list[tuple[float, float]]:
    return [(float(u), float(v)) for u, v in px]


def _draw_roads(draw: ImageDraw.ImageDraw, view: _BevView, static: _StaticBev, line_w: int) -> None:
    """Road surfaces near the ego, then the lane markings whose pieces can reach the image."""
    for centre, (right, left) in zip(static.centre, static.polygons, strict=True):
        for a, b in _runs(view.near(centre)):
            poly = np.concatenate([right[a:b], left[a:b][::-1]], axis=0)
            if len(poly) >= 3:
                draw.polygon(view.to_px(poly).ravel().tolist(), fill=_ROAD)
    if len(static.mark_mid):
        visible = (
            np.linalg.norm(static.mark_mid - view.origin, axis=1) < view.reach + static.mark_radius
        )
        px = view.to_px(static.mark_pts)
        bounds = static.mark_bounds
        for p in np.flatnonzero(visible):
            colour = _YELLOW if static.mark_yellow[p] else _WHITE
            draw.line(px[bounds[p] : bounds[p + 1]].ravel().tolist(), fill=colour, width=line_w)


def _draw_lights(
    draw: ImageDraw.ImageDraw, view: _BevView, lights: Sequence[TrafficLightView], line_w: int
) -> None:
    """Each traffic light as its stop line in the light's colour, with a dot at its middle."""
    for light in lights:
        line = np.asarray(light.stop_line, dtype=np.float64).reshape(-1, 2)
        if not view.near(line).any():
            continue
        colour = _LIGHT.get(LightState(light.state), _WHITE)
        px = view.to_px(line)
        draw.line(_xy(px), fill=colour, width=max(2, line_w))
        cu, cv = px.mean(axis=0)
        r = max(2.0, 0.8 * view.scale)
        draw.ellipse([cu - r, cv - r, cu + r, cv + r], fill=colour, outline=(0, 0, 0))


def _draw_box(
    draw: ImageDraw.ImageDraw, view: _BevView, box: ActorBox, colour: tuple[int, int, int]
) -> None:
    """An oriented footprint with a black line from its centre to its nose."""
    px = view.to_px(box.footprint())
    draw.polygon(_xy(px), fill=colour, outline=(0, 0, 0))
    nose = view.to_px(
        np.array([[box.x, box.y], [box.x, box.y]])
        + 0.5 * box.length * np.array([[0.0, 0.0], [math.cos(box.yaw), math.sin(box.yaw)]])
    )
    draw.line(_xy(nose), fill=(0, 0, 0), width=1)


def _draw_actors(draw: ImageDraw.ImageDraw, view: _BevView, snapshot: SceneSnapshot) -> None:
    """Every actor near the ego but the ego: pedestrians as discs, the rest as boxes."""
    for actor in snapshot.actors:
        if (
            actor.actor_id == snapshot.ego.actor_id
            or not view.near(np.array([actor.x, actor.y])).any()
        ):
            continue
        if actor.kind == ActorKind.PEDESTRIAN:
            (cu, cv), r = view.to_px(np.array([actor.x, actor.y]))[0], max(2.0, 0.4 * view.scale)
            draw.ellipse([cu - r, cv - r, cu + r, cv + r], fill=_PEDESTRIAN, outline=(0, 0, 0))
        else:
            colour = tuple(int(np.clip(round(255 * ch), 0, 255)) for ch in actor.color[:3])
            _draw_box(draw, view, actor, colour)  # type: ignore[arg-type]


def render_bev(
    lanes: Sequence[LaneGeometry],
    snapshot: SceneSnapshot,
    *,
    size_px: int = 256,
    metres: float = 64.0,
    route: np.ndarray | None = None,
    trajectory_world: np.ndarray | None = None,
    heading_up: bool = True,
) -> np.ndarray:
    """Top-down view centred on ``snapshot.ego``; returns ``(size_px, size_px, 3)`` uint8 RGB.

    ``route`` and ``trajectory_world`` are optional ``(N, 2)`` world-frame polylines.
    """
    if size_px < 8:
        raise ValueError(f"size_px={size_px} is too small for a BEV image")
    if not metres > 0:
        raise ValueError(f"metres={metres} must be positive")
    ego = snapshot.ego
    yaw = ego.yaw if heading_up else math.pi / 2.0  # the world direction drawn as "up"
    view = _BevView(
        origin=np.array([ego.x, ego.y]),
        c=math.cos(yaw),
        s=math.sin(yaw),
        half=size_px / 2.0 - 0.5,  # PIL addresses pixel centres by integer coordinates
        scale=size_px / float(metres),
        reach=0.75 * metres + 10.0,
    )
    img = Image.new("RGB", (size_px, size_px), _BACKGROUND)
    draw = ImageDraw.Draw(img)
    line_w = max(1, round(0.15 * view.scale))

    _draw_roads(draw, view, _static_bev(lanes), line_w)
    _draw_lights(draw, view, snapshot.lights, line_w)
    for polyline, colour in ((route, _ROUTE), (trajectory_world, _TRAJECTORY)):
        if polyline is not None and len(polyline) >= 2:
            draw.line(_xy(view.to_px(np.asarray(polyline)[:, :2])), fill=colour, width=2)
    _draw_actors(draw, view, snapshot)
    _draw_box(draw, view, ego, _EGO)
    return np.asarray(img, dtype=np.uint8)
