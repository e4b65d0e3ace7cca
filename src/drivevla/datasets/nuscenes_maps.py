"""Maps of a nuScenes export: one binary drivable-area mask per location (scenario family).

nuScenes map masks put the global origin at the mask's bottom-left pixel, so every global
coordinate must be positive: each location gets an integer world-to-global offset, and its
mask covers the family's lanes (or, for an unknown family, a corridor around the ego paths)
plus a margin, at the devkit's native 0.1 m per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from drivevla.datasets.nuscenes_annotations import actor_kind, actor_world
from drivevla.datasets.nuscenes_episodes import SourceEpisode
from drivevla.datasets.nuscenes_tables import Tables, make_token
from drivevla.sim_bridge.embedded.roads import lane_geometries
from drivevla.sim_bridge.embedded.scenario_types import BuildContext
from drivevla.sim_bridge.embedded.scenarios import FAMILIES, build_scenario

__all__ = [
    "MAP_RESOLUTION_M",
    "MAP_MARGIN_M",
    "MAX_MAP_PIXELS",
    "EGO_CORRIDOR_HALF_WIDTH_M",
    "MapPlan",
    "plan_maps",
    "add_map",
]

MAP_RESOLUTION_M = 0.1  # the devkit's native map-mask resolution (MapMask assumes it)
MAP_MARGIN_M = 50.0  # drivable-area raster extends this far beyond lanes and poses
MAX_MAP_PIXELS = 400_000_000  # refuse rasters above ~400 MB (40 km^2 at 0.1 m)
EGO_CORRIDOR_HALF_WIDTH_M = 3.5  # fallback map: one lane width either side of the ego path


def _lane_polygons(family: str) -> list[np.ndarray] | None:
    """World polygons (M, 2) of every lane of a scenario family, or None if it is unknown."""

    fam = FAMILIES.get(family)
    if fam is None:
        return None
    polygons = []
    for intent in fam.intents:  # road geometry does not depend on the seed; traffic does
        ctx = BuildContext(
            rng=np.random.default_rng(0),
            traffic_density=0.0,
            pedestrians=False,
            light_cycle_s=(10.0, 3.0, 15.0),
            light_offset_s=0.0,
            guard_rails=False,
        )
        for lane in lane_geometries(build_scenario(family, intent, ctx).network, step_m=1.0):
            right, left = lane.edges()
            polygons.append(np.concatenate([right, left[::-1]]))
    return polygons


@dataclass
class MapPlan:
    """One location's map: its token and file, the world-to-global offset and mask size."""

    location: str
    token: str
    filename: str
    offset: np.ndarray  # global = world + offset (integer metres)
    size_px: tuple[int, int]  # (width, height)
    source: str  # "lanes" or "ego_corridor"
    polygons: list[np.ndarray] | None
    episodes: list[SourceEpisode]


def _plan_map(location: str, episodes: list[SourceEpisode]) -> MapPlan:
    polygons = _lane_polygons(location)
    pts = [e.xy for e in episodes]
    for e in episodes:
        for k, actors in enumerate(e.actors):
            for a in actors:
                if actor_kind(a):
                    pts.append(np.array([actor_world(a, e.xy[k], e.yaw[k])[:2]]))
    if polygons:
        pts += polygons
    allpts = np.concatenate(pts)
    lo = np.floor(allpts.min(axis=0) - MAP_MARGIN_M)
    hi = np.ceil(allpts.max(axis=0) + MAP_MARGIN_M)
    size = np.ceil((hi - lo) / MAP_RESOLUTION_M).astype(int)
    if int(size[0]) * int(size[1]) > MAX_MAP_PIXELS:
        raise ValueError(
            f"location {location!r}: the drivable-area raster would be {size[0]} x {size[1]} px "
            f"({hi[0] - lo[0]:.0f} x {hi[1] - lo[1]:.0f} m at {MAP_RESOLUTION_M} m/px), above "
            f"{MAX_MAP_PIXELS} px; export fewer or more compact episodes per location"
        )
    token = make_token("map", location)
    return MapPlan(
        location=location,
        token=token,
        filename=f"maps/{token}.png",
        offset=-lo,
        size_px=(int(size[0]), int(size[1])),
        source="lanes" if polygons else "ego_corridor",
        polygons=polygons,
        episodes=episodes,
    )


def plan_maps(episodes: list[SourceEpisode]) -> list[MapPlan]:
    """One plan per location (the episodes' scenario), in location order."""
    locations: dict[str, list[SourceEpisode]] = {}
    for ep in episodes:
        locations.setdefault(ep.scenario, []).append(ep)
    return [_plan_map(loc, group) for loc, group in sorted(locations.items())]


def _render_map(plan: MapPlan, path: Path) -> None:
    """Binary mask (255 = drivable), pixel (px, py) = (gx / res, H - gy / res) as MapMask."""
    from PIL import Image, ImageDraw

    w, h = plan.size_px
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)

    def to_px(world_xy: np.ndarray) -> list[tuple[float, float]]:
        g = np.asarray(world_xy, dtype=np.float64) + plan.offset
        return [(float(x), float(h - y)) for x, y in g / MAP_RESOLUTION_M]

    if plan.polygons:
        for poly in plan.polygons:
            draw.polygon(to_px(poly), fill=255)
    else:
        r = EGO_CORRIDOR_HALF_WIDTH_M / MAP_RESOLUTION_M
        for e in plan.episodes:
            px = to_px(e.xy)
            if len(px) > 1:
                draw.line(px, fill=255, width=int(round(2 * r)), joint="curve")
            for x, y in (px[0], px[-1]):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")


def add_map(tables: Tables, plan: MapPlan, out_dir: Path) -> None:
    """Write the plan's mask under ``out_dir``, give its episodes the plan's world offset, and
    add a log record per episode and the map record."""
    _render_map(plan, out_dir / plan.filename)
    log_tokens = []
    for ep in plan.episodes:
        ep.world_offset = plan.offset
        log_token = make_token("log", ep.episode_id)
        log_tokens.append(log_token)
        tables.add(
            "log",
            {
                "token": log_token,
                "logfile": ep.episode_id,
                "vehicle": "drivevla-ego",
                "date_captured": datetime.fromtimestamp(ep.start_us / 1e6, UTC).strftime(
                    "%Y-%m-%d"
                ),
                "location": plan.location,
            },
        )
    tables.add(
        "map",
        {
            "token": plan.token,
            "log_tokens": log_tokens,
            "category": "semantic_prior",
            "filename": plan.filename,
            # extra keys (the devkit ignores them): how to get back to our world frame
            "drivevla_world_offset_m": [float(v) for v in plan.offset],
            "drivevla_source": plan.source,
        },
    )
