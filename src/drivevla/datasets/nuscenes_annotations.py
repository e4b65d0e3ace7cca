"""Actors of an exported episode as nuScenes ``sample_annotation`` and ``instance`` records.

Vehicles and pedestrians of the ``actors`` column (ego frame) become boxes in the global
frame (``vehicle.car`` / ``human.pedestrian.adult``), z = height / 2,
``size = [width, length, height]``; one ``instance`` per actor id, or per nearest-neighbour
track when the actors carry no ``id``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from drivevla.core.frames import ego_to_world, wrap_angle
from drivevla.datasets.nuscenes_episodes import KEYFRAME_DT_S, SourceEpisode
from drivevla.datasets.nuscenes_tables import (
    CATEGORY_BY_KIND,
    UNKNOWN_VISIBILITY_TOKEN,
    Tables,
    link,
    make_token,
    yaw_quaternion,
)

__all__ = [
    "DEFAULT_HEIGHT_M",
    "MOVING_SPEED_MPS",
    "TRACK_GATE_M",
    "actor_kind",
    "actor_world",
    "export_annotations",
]

log = logging.getLogger("drivevla.datasets.nuscenes_export")  # the export's logger

DEFAULT_HEIGHT_M = {"vehicle": 1.5, "pedestrian": 1.75}
MOVING_SPEED_MPS = 0.2  # above this an annotation gets the *.moving attribute
TRACK_GATE_M = 4.0  # nearest-neighbour matching of actors without ids, per 0.5 s

# (kind, world x, world y, world yaw, length, width, the actor's dict) of one actor
_Row = tuple[str, float, float, float, float, float, dict[str, Any]]


def actor_kind(actor: dict[str, Any]) -> str | None:
    """``"vehicle"`` or ``"pedestrian"`` (a key of CATEGORY_BY_KIND), else None."""
    kind = str(actor.get("kind", "")).lower()
    return kind if kind in CATEGORY_BY_KIND else None


def _speed(actor: dict[str, Any]) -> float:
    """Actor speed along its heading (m/s): the ``speed`` key, or ``speed_mps``, else 0."""
    return float(actor.get("speed", actor.get("speed_mps", 0.0)) or 0.0)


def actor_world(actor: dict[str, Any], ego_xy: np.ndarray, ego_yaw: float) -> tuple:
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


def _annotation_rows(ep: SourceEpisode, keyframes: list[int]) -> list[list[_Row]]:
    """Per keyframe, the vehicles and pedestrians in the world frame (other kinds dropped)."""
    per_frame = []
    for k in keyframes:
        rows = []
        for a in ep.actors[k]:
            kind = actor_kind(a)
            if kind is None:
                continue
            try:
                x, y, yaw = actor_world(a, ep.xy[k], float(ep.yaw[k]))
                length, width = float(a["length"]), float(a["width"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{ep.path}: frame {k}: actor {a!r} lacks a numeric {exc}; actors need "
                    "kind, x, y, yaw, length, width"
                ) from exc
            rows.append((kind, x, y, yaw, length, width, a))
        per_frame.append(rows)
    return per_frame


def _instance_keys(ep: SourceEpisode, per_frame: list[list[_Row]]) -> list[list[str]]:
    """Per keyframe, each row's instance key: ``<kind>-<id>``, or a track when ids are missing."""
    has_ids = all("id" in r[6] for rows in per_frame for r in rows)
    if has_ids:
        return [[f"{r[0]}-{r[6]['id']}" for r in rows] for rows in per_frame]
    log.info("episode %s: actors carry no 'id'; matching them by nearest position", ep.episode_id)
    return _track_ids(
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


def _annotation(
    ep: SourceEpisode, row: _Row, token: str, sample_token: str, instance_token: str
) -> dict[str, Any]:
    """The sample_annotation record of one row: a global box with its motion attribute."""
    kind, x, y, yaw, length, width, a = row
    height = float(a.get("height") or DEFAULT_HEIGHT_M[kind])
    speed = abs(_speed(a))
    state = (
        "moving" if speed > MOVING_SPEED_MPS else ("stopped" if kind == "vehicle" else "standing")
    )
    attr = f"{'vehicle' if kind == 'vehicle' else 'pedestrian'}.{state}"
    return {
        "token": token,
        "sample_token": sample_token,
        "instance_token": instance_token,
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
    }


def export_annotations(
    ep: SourceEpisode, tables: Tables, keyframes: list[int], samples: list[dict[str, Any]]
) -> None:
    """Add the episode's sample_annotation records (per keyframe, in actor order), then one
    instance record per instance, each with its annotations linked in time order."""
    eid = ep.episode_id
    per_frame = _annotation_rows(ep, keyframes)
    keys = _instance_keys(ep, per_frame)

    by_instance: dict[str, list[dict[str, Any]]] = {}
    kind_of: dict[str, str] = {}
    for j, (rows, frame_keys) in enumerate(zip(per_frame, keys, strict=True)):
        for row, key in zip(rows, frame_keys, strict=True):
            inst = make_token("instance", eid, key)
            token = make_token("sample_annotation", eid, keyframes[j], key)
            rec = tables.add(
                "sample_annotation", _annotation(ep, row, token, samples[j]["token"], inst)
            )
            by_instance.setdefault(inst, []).append(rec)
            kind_of[inst] = row[0]
    for inst, recs in by_instance.items():
        link(recs)
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
