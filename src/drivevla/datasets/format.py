"""The on-disk demonstration format (schema version 2): the contract between collection,
training, export and anyone reading the data with pyarrow, pandas or Hugging Face datasets.
Version 2 added the ``perception.*`` columns (ground-truth targets for auxiliary heads);
version 1 datasets are read as before, without them.

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

from drivevla.core.errors import DriveVLAError, read_utf8
from drivevla.core.paths import check_name

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)  # 1: no perception.* columns
BEV_SHAPE = (4, 80, 80)  # perception.bev: channels (bev_targets.CHANNELS), rows, cols
FUTURE_STEPS = 6  # 3 s ahead at 0.5 s: nuScenes open-loop scoring applies
FUTURE_DT_S = 0.5
ROUTE_TARGETS = 5
EPISODES_PER_CHUNK = 1000
INFO_PATH = "meta/info.json"
EPISODES_PATH = "meta/episodes.jsonl"

logger = logging.getLogger(__name__)


class CorruptDataError(DriveVLAError, RuntimeError):
    """A file of the dataset cannot be read; names the file and the row (shards, images) or
    line (``episodes.jsonl``), and the column where there is one. ``skippable``: whether a
    reader's ``skip_corrupt`` can leave the damaged part out (and count it) instead."""

    def __init__(
        self, path: str | Path, row: int | None, detail: str, column: str | None = None,
        line: int | None = None, skippable: bool = True,
    ) -> None:
        self.path, self.row, self.column, self.line = str(path), row, column, line
        self.detail, self.skippable = detail, skippable
        if line is not None:
            where = f"line {line}"
        else:
            where = "row unknown (the file cannot be parsed)" if row is None else f"row {row}"
        col = f", column {column!r}" if column else ""
        super().__init__(f"corrupt data in {path}: {where}{col}: {detail}")

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return (type(self), (self.path, self.row, self.detail, self.column, self.line,
                             self.skippable))


# what the readers need of an episodes.jsonl record (the collector writes EPISODE_FIELDS)
READER_FIELDS = ("episode_id", "file", "n_frames")


def _record_problem(rec: Any, required: tuple[str, ...]) -> str | None:
    """Why ``rec`` is not a usable episodes.jsonl record (None when it is)."""
    if not isinstance(rec, dict):
        return f"not a JSON object but {type(rec).__name__}"
    missing = [k for k in required if k not in rec]
    if missing:
        return f"field(s) {missing} missing"
    checks = {
        "episode_id": lambda v: isinstance(v, str) and bool(v),
        "file": lambda v: isinstance(v, str) and bool(v),
        "n_frames": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    }
    for key in required:
        if key in checks and not checks[key](rec[key]):
            return f"field {key!r} is {rec[key]!r}"
    return None


def read_episode_log(
    path: Path, required: tuple[str, ...] = ("episode_id",), *, skip_bad: bool = False,
    resume: bool = False,
) -> tuple[list[dict[str, Any]], list[CorruptDataError]]:
    """The records of ``episodes.jsonl`` in file order (duplicates kept) and the lines left
    out. No file: no records.

    A line that is not JSON, not an object or lacks a ``required`` field raises
    :class:`CorruptDataError` naming the file and line, wherever it is: a reader (training,
    stats, export) never drops an episode silently. ``skip_bad`` (a reader's
    ``skip_corrupt``) leaves such lines out and returns their errors instead.

    ``resume`` is for the collector alone: a last line that is not JSON is a collection
    killed while appending it; it is returned as left out (the collector rewrites the file
    and collects that episode again) rather than raised."""
    if not path.is_file():
        return [], []
    records: list[dict[str, Any]] = []
    left_out: list[CorruptDataError] = []
    text = read_utf8(path)
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            last = n == len(lines)
            error = _bad_json(path, n, exc, unfinished=last and not text.endswith("\n"))
            if last and resume:
                logger.warning("%s: ignoring a partial last line %d (an episode being "
                               "written when the collection stopped): collecting it again",
                               path, n)
                left_out.append(error)
                continue
        else:
            problem = _record_problem(rec, required)
            if problem is None:
                records.append(rec)
                continue
            error = CorruptDataError(path, None, problem, line=n)
        if not skip_bad:
            raise error
        left_out.append(error)
    return records, left_out


def _bad_json(path: Path, n: int, exc: json.JSONDecodeError, unfinished: bool
              ) -> CorruptDataError:
    if unfinished:
        detail = (f"an unfinished last line (no newline at its end: written by a collection "
                  f"that was killed, or is still running; rerun the same drivevla collect "
                  f"command to finish it): {exc.msg} (column {exc.colno})")
    else:
        detail = f"not JSON: {exc.msg} (column {exc.colno})"
    return CorruptDataError(path, None, detail, line=n)


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
    # ground-truth perception targets (schema 2; perception/bev_targets.py)
    Feature("perception.bev", "binary", BEV_SHAPE, "bool, np.packbits of the C-order array",
            "ego, heading up",
            "BEV raster 32 m ahead, 8 m behind, 20 m each side at 0.5 m: drivable area, route "
            "lane, vehicles, pedestrians (a cell is set when half of it is covered)"),
    Feature("perception.signal_state", "string", (), "", "",
            "red, yellow or green: the signal whose stop line the route crosses next within "
            "60 m ('' when none)"),
    Feature("perception.signal_distance", "float32", (), "m", "route",
            "distance along the route to that stop line (NaN when none)"),
    Feature("perception.lead_distance", "float32", (), "m", "route",
            "distance along the route to the nearest vehicle or pedestrian in the route's "
            "corridor within 60 m (NaN when none)"),
    Feature("perception.lead_speed", "float32", (), "m/s", "", "its speed (NaN when none)"),
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
