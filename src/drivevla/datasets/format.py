"""The on-disk demonstration format (schema version 1): the contract between collection,
training, export and anyone reading the data with pyarrow, pandas or Hugging Face datasets.

Layout of a dataset directory::

    meta/info.json            schema version, features (dtype, shape, unit, frame), cameras,
                              control rate, counts, the train/val/test split of episodes,
                              and the provenance of the collection (config, versions, hardware)
    meta/episodes.jsonl       one JSON object per finished episode (see EPISODE_FIELDS)
    data/chunk-000/episode-<id>.parquet
                              one Parquet file per episode, one row per frame (FEATURES)

An episode's Parquet file is written to a temporary name and renamed when complete, and its
line in ``episodes.jsonl`` is appended only after that, so a killed collection never leaves a
half-written shard and a rerun skips every episode that has its line.

Frames: the ego frame is x forward, y left (metres), at the frame's own timestamp; world
coordinates are the simulator's right-handed world frame (see drivevla.core.frames).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivevla.core.paths import check_name

SCHEMA_VERSION = 1
FUTURE_STEPS = 6  # 3 s ahead at 0.5 s: nuScenes open-loop scoring applies
FUTURE_DT_S = 0.5
ROUTE_TARGETS = 5
EPISODES_PER_CHUNK = 1000
INFO_PATH = "meta/info.json"
EPISODES_PATH = "meta/episodes.jsonl"

logger = logging.getLogger(__name__)


class CorruptDataError(RuntimeError):
    """A shard or an image of the dataset cannot be read; names the file, row and column."""

    def __init__(
        self, path: str | Path, row: int | None, detail: str, column: str | None = None
    ) -> None:
        self.path, self.row, self.column = str(path), row, column
        where = "row unknown (the file cannot be parsed)" if row is None else f"row {row}"
        col = f", column {column!r}" if column else ""
        super().__init__(f"corrupt data in {path}: {where}{col}: {detail}")


def read_episode_log(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The records of ``episodes.jsonl`` in file order (duplicates kept) and whether a partial
    last line was dropped (a collection killed while appending: that episode is unfinished).
    A bad line anywhere else raises :class:`CorruptDataError`. No file: no records."""
    if not path.is_file():
        return [], False
    records: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines) - 1:
                logger.warning("%s: ignoring a partial last line", path)
                return records, True
            raise CorruptDataError(path, n, f"line {n + 1} is not JSON: {exc}") from exc
    return records, False


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # arrow type name: string, int32, float32, float64, binary, list<float32>
    shape: tuple[int, ...]
    unit: str
    frame: str
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("episode_id", "string", (), "", "", "episode identifier (unique in the dataset)"),
    Feature("frame_index", "int32", (), "", "", "0-based index of the frame in its episode"),
    Feature("timestamp_s", "float64", (), "s", "", "simulation time of the frame"),
    Feature("scenario", "string", (), "", "", "scenario family"),
    Feature("intent", "string", (), "", "", "navigation intent of the route"),
    # images: one column per camera, "image.<camera name>" (JPEG bytes, RGB)
    Feature("image.<camera>", "binary", (), "JPEG", "camera",
            "JPEG-encoded RGB image of each camera named in info.json 'cameras'"),
    Feature("ego.x", "float64", (), "m", "world", "ego position x"),
    Feature("ego.y", "float64", (), "m", "world", "ego position y"),
    Feature("ego.yaw", "float32", (), "rad", "world", "ego heading, counter-clockwise from +x"),
    Feature("ego.speed", "float32", (), "m/s", "ego", "ego speed along its heading"),
    Feature("ego.accel", "float32", (), "m/s^2", "ego", "longitudinal acceleration"),
    Feature("ego.yaw_rate", "float32", (), "rad/s", "ego", "yaw rate, counter-clockwise +"),
    Feature("ego.steer", "float32", (), "[-1, 1]", "control", "current steer (CARLA: + right)"),
    Feature("control.throttle", "float32", (), "[0, 1]", "control", "throttle applied"),
    Feature("control.steer", "float32", (), "[-1, 1]", "control", "steer applied (+ right)"),
    Feature("control.brake", "float32", (), "[0, 1]", "control", "brake applied"),
    Feature("route.targets", "list<float32>", (ROUTE_TARGETS, 2), "m", "ego",
            "next route target points every 10 m, flattened (x0, y0, x1, y1, ...)"),
    Feature("route.command", "string", (), "", "", "high-level command (HighLevelCommand)"),
    Feature("route.progress", "float32", (), "m", "route", "distance along the route"),
    Feature("instruction", "string", (), "", "", "instruction text the policy saw"),
    Feature("instruction.kind", "string", (), "", "",
            "navigation, notice, misleading or speed (kind of the active event)"),
    Feature("instruction.navigation", "string", (), "", "", "the navigation instruction alone"),
    Feature("future.waypoints", "list<float32>", (FUTURE_STEPS, 2), "m", "ego",
            "positions actually driven 0.5, 1.0, ... 3.0 s later, in this frame's ego frame "
            "(NaN past future.valid)"),
    Feature("future.valid", "int32", (), "", "",
            "how many of the future waypoints exist (fewer at the end of an episode)"),
    Feature("expert.waypoints", "list<float32>", (FUTURE_STEPS, 2), "m", "ego",
            "the expert's planned trajectory at this frame"),
    Feature("expert.target_speeds", "list<float32>", (FUTURE_STEPS,), "m/s", "",
            "the expert's target speeds along its plan"),
    Feature("expert.meta_action", "string", (), "", "", "MetaAction of the expert"),
    Feature("expert.reason", "string", (), "", "", "Reason of the expert (closed vocabulary)"),
    Feature("expert.reason_object", "string", (), "", "world",
            "JSON: the object the reason refers to (kind, position, colour, ...)"),
    Feature("expert.explanation", "string", (), "", "", "natural-language explanation"),
    Feature("actors", "string", (), "m, rad, m/s", "ego",
            "JSON list of actors within 60 m: kind, x, y, yaw, length, width, speed"),
    Feature("driver", "string", (), "", "",
            "who drove this frame: 'expert' or the policy's name (DAgger)"),
)

EPISODE_FIELDS = (
    "episode_id", "scenario", "intent", "seed", "n_frames", "file", "config", "route_result",
    "instruction", "instruction_kind_counts", "driver", "beta", "versions",
)
# Optional per-episode fields a writer may add (the simulator collector writes them):
# episode_index (int, its position in the collection), route_id, bytes (shard size),
# wall_time_s (collection time).


def feature_names(cameras: list[str]) -> list[str]:
    """Column names of a frame table for the given camera names."""
    names = []
    for f in FEATURES:
        if f.name == "image.<camera>":
            names += [f"image.{c}" for c in cameras]
        else:
            names.append(f.name)
    return names


def episode_file(episode_index: int, episode_id: str) -> str:
    """Relative path of an episode's Parquet shard (``episode_id``: a safe file name)."""
    check_name(episode_id, "episode id")
    return f"data/chunk-{episode_index // EPISODES_PER_CHUNK:03d}/episode-{episode_id}.parquet"
