"""Reading drivevla episodes for the nuScenes export: shards, cameras, control rate, and the
keyframe stride (0.5 s keyframes, as nuScenes annotates them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.errors import read_json as read_json_file
from drivevla.core.paths import confined
from drivevla.core.types import CameraSpec
from drivevla.datasets.format import (
    EPISODES_PATH,
    FUTURE_DT_S,
    episode_file,
    read_episode_log,
)

KEYFRAME_DT_S = FUTURE_DT_S  # nuScenes annotates keyframes at 2 Hz


@dataclass
class SourceEpisode:
    episode_id: str
    index: int  # position in the sorted episode list
    scenario: str
    intent: str
    description: str
    path: Path
    timestamps_s: np.ndarray  # (N,)
    xy: np.ndarray  # (N, 2) world
    yaw: np.ndarray  # (N,)
    images: dict[str, list[bytes]]  # camera name -> N JPEG blobs
    actors: list[list[dict[str, Any]]]  # N lists, ego frame
    start_us: int = 0
    world_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))


def read_json(path: Path) -> Any:
    try:
        return read_json_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} is missing: is this a drivevla dataset directory?"
        ) from None


def cameras_from_info(info: dict[str, Any]) -> dict[str, CameraSpec]:
    """Camera specs of ``meta/info.json``: ``cameras`` as ``{name: spec}`` or ``[spec, ...]``.

    Keys that are not :class:`CameraSpec` fields (e.g. derived intrinsics) are ignored.
    """
    raw = info.get("cameras")
    if isinstance(raw, dict):
        items = [{"name": name, **dict(spec)} for name, spec in raw.items()]
    elif isinstance(raw, list):
        items = [dict(spec) for spec in raw]
    else:
        raise ValueError(
            f"info.json 'cameras' must be a dict name -> CameraSpec or a list of CameraSpec "
            f"dicts, got {type(raw).__name__}"
        )
    valid = set(CameraSpec.__dataclass_fields__)
    specs = {}
    for item in items:
        spec = CameraSpec.from_dict({k: v for k, v in item.items() if k in valid})
        specs[spec.name] = spec
    return specs


def control_hz(info: dict[str, Any], timestamps: np.ndarray | None) -> float:
    for key in ("control_hz", "fps", "rate_hz"):
        if isinstance(info.get(key), int | float) and info[key] > 0:
            return float(info[key])
    if timestamps is not None and len(timestamps) > 1:
        return float(1.0 / np.median(np.diff(timestamps)))
    raise ValueError("info.json has no control rate ('control_hz') and no timestamps to infer it")


def keyframe_stride(control_hz: float) -> int:
    """Frames per nuScenes keyframe interval (0.5 s); 5 at 10 Hz."""
    stride = KEYFRAME_DT_S * control_hz
    if round(stride) < 1 or abs(stride - round(stride)) > 1e-6:
        raise ValueError(
            f"control rate {control_hz} Hz has no whole number of frames per {KEYFRAME_DT_S} s "
            "keyframe interval; nuScenes keyframes need a rate that is a multiple of 2 Hz"
        )
    return int(round(stride))


def read_episode(
    dataset_dir: Path, meta: dict[str, Any], index: int, cameras: list[str]
) -> SourceEpisode:
    import pyarrow.parquet as pq

    eid = str(meta["episode_id"])
    path = confined(dataset_dir, str(meta.get("file") or episode_file(index, eid)), "shard file")
    if not path.is_file():
        raise FileNotFoundError(f"episode {eid!r}: shard {path} is missing")
    wanted = ["frame_index", "timestamp_s", "ego.x", "ego.y", "ego.yaw", "actors"]
    wanted += [f"image.{c}" for c in cameras]
    schema_names = set(pq.read_schema(path).names)
    missing = [c for c in wanted if c not in schema_names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {sorted(schema_names)}")
    extra = [c for c in ("scenario", "intent", "instruction") if c in schema_names]
    table = pq.read_table(path, columns=wanted + extra).to_pydict()
    order = np.argsort(np.asarray(table["frame_index"]), kind="stable")
    if len(order) == 0:
        raise ValueError(f"{path}: episode {eid!r} has no frames")
    actors = []
    for i in order:
        try:
            parsed = json.loads(table["actors"][i] or "[]")
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}: frame {table['frame_index'][i]}: 'actors' is not valid JSON ({exc})"
            ) from exc
        if not isinstance(parsed, list):
            raise ValueError(f"{path}: frame {table['frame_index'][i]}: 'actors' is not a list")
        actors.append(parsed)

    def first(col: str, default: str) -> str:
        return str(meta.get(col) or (table[col][0] if col in table else "") or default)

    scenario = first("scenario", "unknown")
    intent = first("intent", "")
    instruction = str(meta.get("instruction") or (table.get("instruction") or [""])[0] or "")
    return SourceEpisode(
        episode_id=eid,
        index=index,
        scenario=scenario,
        intent=intent,
        description=f"{scenario}, {intent}: {instruction}".strip().rstrip(":"),
        path=path,
        timestamps_s=np.asarray(table["timestamp_s"], dtype=np.float64)[order],
        xy=np.stack(
            [np.asarray(table["ego.x"], np.float64), np.asarray(table["ego.y"], np.float64)], 1
        )[order],
        yaw=np.asarray(table["ego.yaw"], dtype=np.float64)[order],
        images={c: [table[f"image.{c}"][i] for i in order] for c in cameras},
        actors=actors,
    )


def episode_metas(dataset_dir: Path) -> list[dict[str, Any]]:
    """The episodes of ``meta/episodes.jsonl`` in the order first listed; a rewritten episode
    (listed again) keeps its place and takes its latest line, as the dataset reader does."""
    path = dataset_dir / EPISODES_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is {dataset_dir} a drivevla dataset?")
    records, _ = read_episode_log(path)  # a bad line (an unfinished last one too) raises
    metas: dict[str, dict[str, Any]] = {}
    for rec in records:
        metas[str(rec["episode_id"])] = rec
    if not metas:
        raise ValueError(f"{path} lists no episodes")
    return list(metas.values())
