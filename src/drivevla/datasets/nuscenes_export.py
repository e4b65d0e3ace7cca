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

Modules: tokens, rotations and the fixed tables are :mod:`nuscenes_tables`, the actor
annotations :mod:`nuscenes_annotations`, the map masks :mod:`nuscenes_maps`; this module
writes the images, samples and sensor records of each episode and the export as a whole.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.frames import ego_to_camera_rotation
from drivevla.core.types import CameraSpec
from drivevla.datasets.format import (
    INFO_PATH,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
)
from drivevla.datasets.nuscenes_annotations import export_annotations
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
from drivevla.datasets.nuscenes_maps import MAP_RESOLUTION_M, MapPlan, add_map, plan_maps
from drivevla.datasets.nuscenes_tables import (
    CATEGORY_BY_KIND,
    DEFAULT_VERSION,
    NUSCENES_TABLES,
    Tables,
    add_vocabulary,
    camera_channel,
    link,
    make_token,
    quaternion_from_matrix,
    yaw_quaternion,
)

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

# Sim time 0 of the first episode; later episodes start after the previous one ends, so
# every timestamp in the export is unique (nuScenes timestamps are UTC microseconds).
EPOCH_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
EPISODE_GAP_S = 60.0


def _jpeg_size(blob: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        if im.format != "JPEG":
            raise ValueError(f"image is {im.format}, expected JPEG")
        return im.size


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# --------------------------------------------------------------------------------------
# one episode


@dataclass
class _EpisodeFrames:
    """What every camera of an episode shares: frame times, global poses and samples."""

    ep: SourceEpisode
    t_us: list[int]  # per frame, the export timestamp
    gxy: np.ndarray  # (N, 2) global ego positions
    keyframes: list[int]
    sample_of_frame: dict[int, str]  # frame -> token of the sample it belongs to


def _add_samples(
    tables: Tables, eid: str, keyframes: list[int], t_us: list[int], scene_token: str
) -> list[dict[str, Any]]:
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
    link(samples)
    return samples


def _add_calibrated_sensor(tables: Tables, eid: str, channel: str, spec: CameraSpec) -> str:
    """The camera's mount and intrinsics as a calibrated_sensor record; returns its token."""
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
    return cs_token


def _export_frame(
    frames: _EpisodeFrames,
    tables: Tables,
    out_dir: Path,
    cam: str,
    cs_token: str,
    i: int,
    is_key: bool,
) -> dict[str, Any]:
    """Write frame ``i`` of camera ``cam`` and add its ego_pose and sample_data records."""
    ep, t_us, eid = frames.ep, frames.t_us, frames.ep.episode_id
    channel = camera_channel(cam)
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
            "translation": [float(frames.gxy[i, 0]), float(frames.gxy[i, 1]), 0.0],
        },
    )
    return tables.add(
        "sample_data",
        {
            "token": make_token("sample_data", eid, channel, i),
            "sample_token": frames.sample_of_frame[i],
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


def _export_camera(
    frames: _EpisodeFrames,
    tables: Tables,
    out_dir: Path,
    cam: str,
    spec: CameraSpec,
    sweeps: bool,
) -> None:
    """The camera's calibrated_sensor, then its keyframes (and sweeps), linked in time."""
    cs_token = _add_calibrated_sensor(tables, frames.ep.episode_id, camera_channel(cam), spec)
    chain = []
    key_set = set(frames.keyframes)
    for i in range(len(frames.t_us)):
        is_key = i in key_set
        if not (is_key or sweeps):
            continue
        chain.append(_export_frame(frames, tables, out_dir, cam, cs_token, i, is_key))
    link(chain)


def _export_episode(
    ep: SourceEpisode,
    tables: Tables,
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

    samples = _add_samples(tables, eid, keyframes, t_us, scene_token)
    sample_of_frame = {}
    for i in range(n):  # a sweep belongs to the next keyframe (the devkit interpolates to it)
        j = min(-(-i // stride), len(keyframes) - 1)
        sample_of_frame[i] = samples[j]["token"]

    frames = _EpisodeFrames(ep, t_us, gxy, keyframes, sample_of_frame)
    for cam, spec in specs.items():
        _export_camera(frames, tables, out_dir, cam, spec, sweeps)

    export_annotations(ep, tables, keyframes, samples)

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


# --------------------------------------------------------------------------------------
# export


def _read_info(
    dataset_dir: Path, out_dir: Path, version: str, overwrite: bool
) -> tuple[dict[str, Any], dict[str, CameraSpec], Path]:
    """The dataset's info, its cameras and the table folder, after checking the arguments."""
    if not version or "/" in version or os.sep in version or version in (".", ".."):
        raise ValueError(f"version={version!r} must be a plain folder name, e.g. 'v1.0-drivevla'")
    info = read_json(dataset_dir / INFO_PATH)
    if int(info.get("schema_version", SCHEMA_VERSION)) not in READABLE_SCHEMA_VERSIONS:
        raise ValueError(
            f"{dataset_dir / INFO_PATH}: schema_version {info.get('schema_version')} is not "
            f"one of {list(READABLE_SCHEMA_VERSIONS)}, the versions this exporter reads"
        )
    specs = cameras_from_info(info)
    if not specs:
        raise ValueError(f"{dataset_dir / INFO_PATH} lists no cameras; nothing to export")
    table_dir = out_dir / version
    if table_dir.exists() and not overwrite:
        raise FileExistsError(f"{table_dir} exists; pass overwrite=True (--overwrite) to replace")
    return info, specs, table_dir


def _read_episodes(
    dataset_dir: Path, specs: dict[str, CameraSpec], episodes: Iterable[str] | None
) -> list[SourceEpisode]:
    """The episodes to export (all, or those of ``episodes``), read in id order."""
    from tqdm import tqdm

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

    return [
        read_episode(dataset_dir, m, index_of[str(m["episode_id"])], list(specs))
        for m in tqdm(metas, desc="reading episodes", unit="ep", disable=len(metas) < 5)
    ]


def _set_start_times(eps: list[SourceEpisode]) -> None:
    start = EPOCH_US
    for ep in eps:
        ep.start_us = start
        duration = float(ep.timestamps_s[-1] - ep.timestamps_s[0])
        start += int(math.ceil(duration + EPISODE_GAP_S)) * 1_000_000


def _write_tables(tables: Tables, out_dir: Path, version: str, table_dir: Path) -> None:
    """Tables last, into a temporary folder renamed at the end: a killed export has no tables."""
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


def _manifest(
    dataset_dir: Path,
    version: str,
    stride: int,
    sweeps: bool,
    specs: dict[str, CameraSpec],
    plans: list[MapPlan],
    info: dict[str, Any],
    tables: Tables,
) -> dict[str, Any]:
    """The contents of ``drivevla_export.json``: what was exported from where, and the maps."""
    return {
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
    info, specs, table_dir = _read_info(dataset_dir, out_dir, version, overwrite)
    eps = _read_episodes(dataset_dir, specs, episodes)
    stride = keyframe_stride(control_hz(info, eps[0].timestamps_s))
    _set_start_times(eps)
    plans = plan_maps(eps)

    out_dir.mkdir(parents=True, exist_ok=True)
    for channel in {camera_channel(c) for c in specs}:
        (out_dir / "samples" / channel).mkdir(parents=True, exist_ok=True)
        if sweeps:
            (out_dir / "sweeps" / channel).mkdir(parents=True, exist_ok=True)

    tables = Tables()
    add_vocabulary(tables, specs)
    for plan in plans:
        add_map(tables, plan, out_dir)
    for ep in tqdm(eps, desc="exporting to nuScenes", unit="ep", disable=len(eps) < 5):
        _export_episode(
            ep, tables, out_dir, specs, stride, make_token("log", ep.episode_id), sweeps
        )
    _write_tables(tables, out_dir, version, table_dir)

    manifest = _manifest(dataset_dir, version, stride, sweeps, specs, plans, info, tables)
    (out_dir / "drivevla_export.json").write_text(json.dumps(manifest, indent=2))
    log.info(
        "exported %d episodes, %d samples, %d annotations to %s",
        len(eps),
        len(tables.records["sample"]),
        len(tables.records["sample_annotation"]),
        table_dir,
    )
    return out_dir
