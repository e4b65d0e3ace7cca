"""Export a drivevla dataset (:mod:`drivevla.datasets.format`) as a nuScenes-format database.

The result loads with the real devkit, ``nuscenes.nuscenes.NuScenes(version, dataroot)``, so
nuScenes tooling (and :func:`drivevla.datasets.nuscenes_import.load_nuscenes_openloop`) reads
our episodes exactly as it reads nuScenes logs. Layout written under ``out_dir``::

    <version>/<table>.json          the 13 tables NuScenes.__init__ loads (NUSCENES_TABLES)
    samples/CAM_<NAME>/*.jpg        keyframe images (2 Hz), the JPEG bytes of our dataset
    sweeps/CAM_<NAME>/*.jpg         the other frames (non-keyframe sample_data), optional
    maps/<token>.png                binary drivable-area mask per location, 0.1 m per pixel
    drivevla_export.json            what was exported from where, and the map offsets

Mapping (details and limitations in docs/nuscenes.md):

- episode -> ``log`` + ``scene`` (name = episode id); scenario family -> ``log.location``
  and one ``map`` per location.
- every ``stride``-th frame (stride = 0.5 s x control rate, 5 at 10 Hz) -> ``sample``.
- each camera ``<name>`` -> sensor channel ``CAM_<NAME>`` ("front" -> ``CAM_FRONT``) with one
  ``calibrated_sensor`` per episode: mount translation in the ego frame, the rotation from the
  camera optical frame (x right, y down, z forward) to the ego frame, intrinsics ``K``.
- ego pose -> ``ego_pose``: global = world + the location's integer offset (nuScenes map
  masks put the global origin at the mask's bottom-left pixel, so every global coordinate must
  be positive); rotation = yaw about +z as a (w, x, y, z) quaternion; z = 0.
- vehicles / pedestrians of the ``actors`` column (ego frame) -> ``sample_annotation`` boxes
  in the global frame (``vehicle.car`` / ``human.pedestrian.adult``), z = height / 2,
  ``size = [width, length, height]``; one ``instance`` per actor id (or per nearest-neighbour
  track when the actors carry no ``id``).
- tokens: ``uuid5(namespace, "<table>/<natural key>").hex`` (32 hex characters, like
  nuScenes), so the same dataset always exports to the same tokens.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.frames import ego_to_camera_rotation, ego_to_world, wrap_angle
from drivevla.core.types import CameraSpec
from drivevla.datasets.format import (
    INFO_PATH,
    SCHEMA_VERSION,
)
from drivevla.datasets.nuscenes_episodes import (
    KEYFRAME_DT_S,
    SourceEpisode,
    cameras_from_info,
    control_hz,
    episode_metas,
    keyframe_stride,
    read_episode,
    read_json,
)
from drivevla.sim_bridge.embedded.roads import lane_geometries
from drivevla.sim_bridge.embedded.scenario_types import BuildContext
from drivevla.sim_bridge.embedded.scenarios import FAMILIES, build_scenario

__all__ = [
    "NUSCENES_TABLES",
    "DEFAULT_VERSION",
    "KEYFRAME_DT_S",
    "MAP_RESOLUTION_M",
    "CATEGORY_BY_KIND",
    "export_nuscenes",
    "cameras_from_info",
    "keyframe_stride",
    "make_token",
    "camera_channel",
    "yaw_quaternion",
    "quaternion_from_matrix",
]

log = logging.getLogger(__name__)

# The tables nuscenes-devkit 1.2.0's NuScenes.__init__ reads (lidarseg/panoptic only if present).
NUSCENES_TABLES = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)
DEFAULT_VERSION = "v1.0-drivevla"
MAP_RESOLUTION_M = 0.1  # the devkit's native map-mask resolution (MapMask assumes it)
MAP_MARGIN_M = 50.0  # drivable-area raster extends this far beyond lanes and poses
MAX_MAP_PIXELS = 400_000_000  # refuse rasters above ~400 MB (40 km^2 at 0.1 m)
EGO_CORRIDOR_HALF_WIDTH_M = 3.5  # fallback map: one lane width either side of the ego path
# Sim time 0 of the first episode; later episodes start after the previous one ends, so
# every timestamp in the export is unique (nuScenes timestamps are UTC microseconds).
EPOCH_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
EPISODE_GAP_S = 60.0

CATEGORY_BY_KIND = {"vehicle": "vehicle.car", "pedestrian": "human.pedestrian.adult"}
DEFAULT_HEIGHT_M = {"vehicle": 1.5, "pedestrian": 1.75}
MOVING_SPEED_MPS = 0.2  # above this an annotation gets the *.moving attribute
# nuScenes category / attribute / visibility records (names and descriptions from v1.0)
_CATEGORIES = {
    "vehicle.car": "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, "
    "wagons, vans, mini-vans, SUVs and jeeps.",
    "human.pedestrian.adult": "Adult subcategory.",
}
_ATTRIBUTES = {
    "vehicle.moving": "Vehicle is moving.",
    "vehicle.stopped": "Vehicle, with a driver/rider in/on it, is currently stationary but "
    "has an intent to move.",
    "pedestrian.moving": "The human is moving.",
    "pedestrian.standing": "The human is standing.",
}
# nuScenes keeps the literal tokens "1".."4" for its visibility bins; so do we.
_VISIBILITY = [
    ("1", "v0-40", "visibility of whole object is between 0 and 40%"),
    ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
    ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
    ("4", "v80-100", "visibility of whole object is between 80 and 100%"),
]
UNKNOWN_VISIBILITY_TOKEN = "4"  # occlusion is not computed; see docs/nuscenes.md
TRACK_GATE_M = 4.0  # nearest-neighbour matching of actors without ids, per 0.5 s

_TOKEN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "drivevla/nuscenes-export/v1")


def make_token(table: str, *key: object) -> str:
    """Deterministic 32-hex-digit token: ``uuid5(namespace, "<table>/<key parts>").hex``."""
    return uuid.uuid5(_TOKEN_NAMESPACE, "/".join([table, *map(str, key)])).hex


def camera_channel(camera_name: str) -> str:
    """nuScenes sensor channel of one of our cameras: ``front`` -> ``CAM_FRONT``."""
    return "CAM_" + "".join(c if c.isalnum() else "_" for c in camera_name).upper()


def yaw_quaternion(yaw: float) -> list[float]:
    """(w, x, y, z) unit quaternion of a rotation by ``yaw`` rad about +z."""
    return [math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0)]


def quaternion_from_matrix(rot: np.ndarray) -> list[float]:
    """(w, x, y, z) unit quaternion (w >= 0) of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    qa = np.asarray(q) / np.linalg.norm(q)
    if qa[0] < 0:
        qa = -qa
    return [float(v) for v in qa]


# --------------------------------------------------------------------------------------
# actors


def _actor_kind(actor: dict[str, Any]) -> str | None:
    kind = str(actor.get("kind", "")).lower()
    return kind if kind in CATEGORY_BY_KIND else None


def _speed(actor: dict[str, Any]) -> float:
    """Actor speed along its heading (m/s): the ``speed`` key, or ``speed_mps``, else 0."""
    return float(actor.get("speed", actor.get("speed_mps", 0.0)) or 0.0)


def _actor_world(actor: dict[str, Any], ego_xy: np.ndarray, ego_yaw: float) -> tuple:
    """World (x, y, yaw) of an actor given in the ego frame."""
    xy = ego_to_world(np.array([float(actor["x"]), float(actor["y"])]), ego_xy, ego_yaw)
    return float(xy[0]), float(xy[1]), float(wrap_angle(ego_yaw + float(actor.get("yaw", 0.0))))


def _track_ids(
    frames: list[list[tuple[str, np.ndarray, np.ndarray]]],
    dt_s: float = KEYFRAME_DT_S,
    gate_m: float = TRACK_GATE_M,
) -> list[list[str]]:
    """Instance keys for actors without ids: greedy nearest-neighbour matching per kind.

    ``frames``: per keyframe, ``(kind, world_xy, world_velocity)`` of each actor. A track seen
    in the previous keyframe is predicted ``dt_s`` ahead at constant velocity; an actor
    continues the closest predicted track of its kind within ``gate_m``, pairs taken in order
    of increasing distance. Otherwise it starts a new track.
    """
    out: list[list[str]] = []
    last: dict[str, tuple[str, np.ndarray]] = {}  # track -> (kind, predicted xy)
    n_tracks = 0
    for actors in frames:
        pairs = sorted(
            (float(np.linalg.norm(xy - pxy)), i, track)
            for i, (kind, xy, _) in enumerate(actors)
            for track, (tkind, pxy) in last.items()
            if tkind == kind
        )
        keys: list[str | None] = [None] * len(actors)
        used: set[str] = set()
        for dist, i, track in pairs:
            if dist > gate_m:
                break
            if keys[i] is None and track not in used:
                keys[i] = track
                used.add(track)
        for i in range(len(actors)):
            if keys[i] is None:
                keys[i] = f"track{n_tracks}"
                n_tracks += 1
        last = {str(k): (a[0], a[1] + a[2] * dt_s) for k, a in zip(keys, actors, strict=True)}
        out.append([str(k) for k in keys])
    return out


# --------------------------------------------------------------------------------------
# maps


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
class _MapPlan:
    location: str
    token: str
    filename: str
    offset: np.ndarray  # global = world + offset (integer metres)
    size_px: tuple[int, int]  # (width, height)
    source: str  # "lanes" or "ego_corridor"
    polygons: list[np.ndarray] | None
    episodes: list[SourceEpisode]


def _plan_map(location: str, episodes: list[SourceEpisode]) -> _MapPlan:
    polygons = _lane_polygons(location)
    pts = [e.xy for e in episodes]
    for e in episodes:
        for k, actors in enumerate(e.actors):
            for a in actors:
                if _actor_kind(a):
                    pts.append(np.array([_actor_world(a, e.xy[k], e.yaw[k])[:2]]))
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
    return _MapPlan(
        location=location,
        token=token,
        filename=f"maps/{token}.png",
        offset=-lo,
        size_px=(int(size[0]), int(size[1])),
        source="lanes" if polygons else "ego_corridor",
        polygons=polygons,
        episodes=episodes,
    )


def _render_map(plan: _MapPlan, path: Path) -> None:
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


# --------------------------------------------------------------------------------------
# export


def _jpeg_size(blob: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        if im.format != "JPEG":
            raise ValueError(f"image is {im.format}, expected JPEG")
        return im.size


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class _Tables:
    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, Any]]] = {t: [] for t in NUSCENES_TABLES}

    def add(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        self.records[table].append(record)
        return record


def _link(records: list[dict[str, Any]]) -> None:
    for a, b in zip(records, records[1:], strict=False):
        a["next"], b["prev"] = b["token"], a["token"]


def _export_episode(
    ep: SourceEpisode,
    tables: _Tables,
    out_dir: Path,
    specs: dict[str, CameraSpec],
    stride: int,
    log_token: str,
    sweeps: bool,
) -> None:
    eid = ep.episode_id
    n = len(ep.timestamps_s)
    keyframes = list(range(0, n, stride))
    t_us = [ep.start_us + int(round((t - ep.timestamps_s[0]) * 1e6)) for t in ep.timestamps_s]
    gxy = ep.xy + ep.world_offset
    scene_token = make_token("scene", eid)

    samples = [
        tables.add(
            "sample",
            {
                "token": make_token("sample", eid, k),
                "timestamp": t_us[k],
                "prev": "",
                "next": "",
                "scene_token": scene_token,
            },
        )
        for k in keyframes
    ]
    _link(samples)
    sample_of_frame = {}
    for i in range(n):  # a sweep belongs to the next keyframe (the devkit interpolates to it)
        j = min(-(-i // stride), len(keyframes) - 1)
        sample_of_frame[i] = samples[j]["token"]

    for cam, spec in specs.items():
        channel = camera_channel(cam)
        cs_token = make_token("calibrated_sensor", eid, channel)
        cam_to_ego = ego_to_camera_rotation(
            math.radians(spec.yaw_deg), math.radians(spec.pitch_deg), math.radians(spec.roll_deg)
        ).T
        tables.add(
            "calibrated_sensor",
            {
                "token": cs_token,
                "sensor_token": make_token("sensor", channel),
                "translation": [float(spec.x), float(spec.y), float(spec.z)],
                "rotation": quaternion_from_matrix(cam_to_ego),
                "camera_intrinsic": spec.intrinsics.tolist(),
            },
        )
        chain = []
        key_set = set(keyframes)
        for i in range(n):
            is_key = i in key_set
            if not (is_key or sweeps):
                continue
            blob = ep.images[cam][i]
            if not blob:
                raise ValueError(f"{ep.path}: frame {i}: camera {cam!r} has no image")
            try:
                width, height = _jpeg_size(blob)
            except Exception as exc:
                raise ValueError(f"{ep.path}: frame {i}: camera {cam!r}: {exc}") from exc
            folder = "samples" if is_key else "sweeps"
            rel = f"{folder}/{channel}/{_safe(eid)}__{channel}__{t_us[i]}.jpg"
            (out_dir / rel).write_bytes(blob)
            pose_token = make_token("ego_pose", eid, channel, i)
            tables.add(
                "ego_pose",
                {
                    "token": pose_token,
                    "timestamp": t_us[i],
                    "rotation": yaw_quaternion(float(ep.yaw[i])),
                    "translation": [float(gxy[i, 0]), float(gxy[i, 1]), 0.0],
                },
            )
            chain.append(
                tables.add(
                    "sample_data",
                    {
                        "token": make_token("sample_data", eid, channel, i),
                        "sample_token": sample_of_frame[i],
                        "ego_pose_token": pose_token,
                        "calibrated_sensor_token": cs_token,
                        "timestamp": t_us[i],
                        "fileformat": "jpg",
                        "is_key_frame": is_key,
                        "height": height,
                        "width": width,
                        "filename": rel,
                        "prev": "",
                        "next": "",
                    },
                )
            )
        _link(chain)

    _export_annotations(ep, tables, keyframes, samples)

    tables.add(
        "scene",
        {
            "token": scene_token,
            "log_token": log_token,
            "nbr_samples": len(samples),
            "first_sample_token": samples[0]["token"],
            "last_sample_token": samples[-1]["token"],
            "name": eid,
            "description": ep.description,
        },
    )


def _export_annotations(
    ep: SourceEpisode, tables: _Tables, keyframes: list[int], samples: list[dict[str, Any]]
) -> None:
    eid = ep.episode_id
    per_frame = []  # per keyframe: list of (kind, world x, y, yaw, actor dict)
    for k in keyframes:
        rows = []
        for a in ep.actors[k]:
            kind = _actor_kind(a)
            if kind is None:
                continue
            try:
                x, y, yaw = _actor_world(a, ep.xy[k], float(ep.yaw[k]))
                length, width = float(a["length"]), float(a["width"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{ep.path}: frame {k}: actor {a!r} lacks a numeric {exc}; actors need "
                    "kind, x, y, yaw, length, width"
                ) from exc
            rows.append((kind, x, y, yaw, length, width, a))
        per_frame.append(rows)
    has_ids = all("id" in r[6] for rows in per_frame for r in rows)
    if has_ids:
        keys = [[f"{r[0]}-{r[6]['id']}" for r in rows] for rows in per_frame]
    else:
        log.info("episode %s: actors carry no 'id'; matching them by nearest position", eid)
        keys = _track_ids(
            [
                [
                    (
                        r[0],
                        np.array(r[1:3]),
                        _speed(r[6]) * np.array([math.cos(r[3]), math.sin(r[3])]),
                    )
                    for r in rows
                ]
                for rows in per_frame
            ],
            dt_s=KEYFRAME_DT_S,
        )

    by_instance: dict[str, list[dict[str, Any]]] = {}
    kind_of: dict[str, str] = {}
    for j, (rows, frame_keys) in enumerate(zip(per_frame, keys, strict=True)):
        for (kind, x, y, yaw, length, width, a), key in zip(rows, frame_keys, strict=True):
            inst = make_token("instance", eid, key)
            height = float(a.get("height") or DEFAULT_HEIGHT_M[kind])
            speed = abs(_speed(a))
            state = (
                "moving"
                if speed > MOVING_SPEED_MPS
                else ("stopped" if kind == "vehicle" else "standing")
            )
            attr = f"{'vehicle' if kind == 'vehicle' else 'pedestrian'}.{state}"
            rec = tables.add(
                "sample_annotation",
                {
                    "token": make_token("sample_annotation", eid, keyframes[j], key),
                    "sample_token": samples[j]["token"],
                    "instance_token": inst,
                    "visibility_token": UNKNOWN_VISIBILITY_TOKEN,
                    "attribute_tokens": [make_token("attribute", attr)],
                    "translation": [
                        x + float(ep.world_offset[0]),
                        y + float(ep.world_offset[1]),
                        height / 2.0,
                    ],
                    "size": [width, length, height],
                    "rotation": yaw_quaternion(yaw),
                    "prev": "",
                    "next": "",
                    "num_lidar_pts": 0,
                    "num_radar_pts": 0,
                },
            )
            by_instance.setdefault(inst, []).append(rec)
            kind_of[inst] = kind
    for inst, recs in by_instance.items():
        _link(recs)
        tables.add(
            "instance",
            {
                "token": inst,
                "category_token": make_token("category", CATEGORY_BY_KIND[kind_of[inst]]),
                "nbr_annotations": len(recs),
                "first_annotation_token": recs[0]["token"],
                "last_annotation_token": recs[-1]["token"],
            },
        )


def export_nuscenes(
    dataset_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    version: str = DEFAULT_VERSION,
    *,
    sweeps: bool = True,
    overwrite: bool = False,
    episodes: Iterable[str] | None = None,
) -> Path:
    """Write the episodes of a drivevla dataset as a nuScenes database under ``out_dir``.

    ``version`` names the table folder (``out_dir/<version>``); ``sweeps`` also writes the
    non-keyframe frames as sample_data (so ego speed can be differenced at the control
    rate); ``episodes`` restricts the export to these episode ids. Returns ``out_dir``, ready
    for ``NuScenes(version=version, dataroot=out_dir)``. Refuses to overwrite an existing
    ``out_dir/<version>`` unless ``overwrite``.
    """
    from tqdm import tqdm

    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    if not version or "/" in version or os.sep in version or version in (".", ".."):
        raise ValueError(f"version={version!r} must be a plain folder name, e.g. 'v1.0-drivevla'")
    info = read_json(dataset_dir / INFO_PATH)
    if int(info.get("schema_version", SCHEMA_VERSION)) != SCHEMA_VERSION:
        raise ValueError(
            f"{dataset_dir / INFO_PATH}: schema_version {info.get('schema_version')} is not "
            f"{SCHEMA_VERSION}, the version this exporter reads"
        )
    specs = cameras_from_info(info)
    if not specs:
        raise ValueError(f"{dataset_dir / INFO_PATH} lists no cameras; nothing to export")
    table_dir = out_dir / version
    if table_dir.exists() and not overwrite:
        raise FileExistsError(f"{table_dir} exists; pass overwrite=True (--overwrite) to replace")

    listed = episode_metas(dataset_dir)
    # the shard index (for episode_file) is the line order; the export order is by id
    index_of = {str(m["episode_id"]): i for i, m in enumerate(listed)}
    metas = sorted(listed, key=lambda m: str(m["episode_id"]))
    if episodes is not None:
        wanted = set(episodes)
        unknown = wanted - set(index_of)
        if unknown:
            raise ValueError(
                f"unknown episode id(s) {sorted(unknown)}; the dataset has {len(index_of)} episodes"
            )
        metas = [m for m in metas if str(m["episode_id"]) in wanted]

    eps = [
        read_episode(dataset_dir, m, index_of[str(m["episode_id"])], list(specs))
        for m in tqdm(metas, desc="reading episodes", unit="ep", disable=len(metas) < 5)
    ]
    stride = keyframe_stride(control_hz(info, eps[0].timestamps_s))
    start = EPOCH_US
    for ep in eps:
        ep.start_us = start
        duration = float(ep.timestamps_s[-1] - ep.timestamps_s[0])
        start += int(math.ceil(duration + EPISODE_GAP_S)) * 1_000_000

    locations: dict[str, list[SourceEpisode]] = {}
    for ep in eps:
        locations.setdefault(ep.scenario, []).append(ep)
    plans = [_plan_map(loc, group) for loc, group in sorted(locations.items())]

    out_dir.mkdir(parents=True, exist_ok=True)
    for channel in {camera_channel(c) for c in specs}:
        (out_dir / "samples" / channel).mkdir(parents=True, exist_ok=True)
        if sweeps:
            (out_dir / "sweeps" / channel).mkdir(parents=True, exist_ok=True)

    tables = _Tables()
    for name, desc in _CATEGORIES.items():
        tables.add(
            "category", {"token": make_token("category", name), "name": name, "description": desc}
        )
    for name, desc in _ATTRIBUTES.items():
        tables.add(
            "attribute", {"token": make_token("attribute", name), "name": name, "description": desc}
        )
    for token, level, desc in _VISIBILITY:
        tables.add("visibility", {"token": token, "level": level, "description": desc})
    for cam in specs:
        channel = camera_channel(cam)
        tables.add(
            "sensor",
            {"token": make_token("sensor", channel), "channel": channel, "modality": "camera"},
        )

    for plan in plans:
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

    for ep in tqdm(eps, desc="exporting to nuScenes", unit="ep", disable=len(eps) < 5):
        _export_episode(
            ep, tables, out_dir, specs, stride, make_token("log", ep.episode_id), sweeps
        )

    # tables last, into a temporary folder renamed at the end: a killed export has no tables
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=out_dir))
    try:
        for name, records in tables.records.items():
            with open(tmp / f"{name}.json", "w") as f:
                json.dump(records, f, indent=0)
        if table_dir.exists():
            shutil.rmtree(table_dir)
        tmp.rename(table_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

    manifest = {
        "source": str(dataset_dir.resolve()),
        "version": version,
        "keyframe_stride": stride,
        "keyframe_dt_s": KEYFRAME_DT_S,
        "sweeps": sweeps,
        "channels": {cam: camera_channel(cam) for cam in specs},
        "maps": {
            p.location: {
                "token": p.token,
                "filename": p.filename,
                "world_offset_m": [float(v) for v in p.offset],
                "source": p.source,
                "resolution_m": MAP_RESOLUTION_M,
            }
            for p in plans
        },
        "splits": info.get("splits") or info.get("split") or {},
        "counts": {name: len(records) for name, records in tables.records.items()},
    }
    (out_dir / "drivevla_export.json").write_text(json.dumps(manifest, indent=2))
    log.info(
        "exported %d episodes, %d samples, %d annotations to %s",
        len(eps),
        len(tables.records["sample"]),
        len(tables.records["sample_annotation"]),
        table_dir,
    )
    return out_dir
