"""A ``torch.utils.data.Dataset`` over the frames of a demonstration dataset.

Each item is a dict of model-ready tensors (shapes for one frame; :func:`collate` adds the
batch dimension and keeps strings as lists):

================== ========================= =================================================
key                shape, dtype              meaning
================== ========================= =================================================
images             (N_cam, 3, H, W) float32  RGB in [0, 1], cameras in info.json order
ego                (4,) float32              speed m/s, accel m/s^2, yaw rate rad/s, steer
heading_change     () float32                ego heading now minus at the episode's first
                                             frame, unwrapped (rad, counter-clockwise +): the
                                             odometry a car has (a gyro), no map
lateral_offset     () float32                sideways displacement (m, left +) since the
                                             episode's first frame, across its heading then
distance_travelled () float32                path length driven (m) since the episode's
                                             first frame (an odometer)
route              (5, 2) float32            route target points, ego frame (m)
command            () int64                  index into HighLevelCommand
instruction        str                       the instruction the driver saw
target_waypoints   (6, 2) float32            ego frame (m), 0.5 s apart (see ``target``)
target_speeds      (6,) float32              m/s
waypoint_mask      (6,) float32              1 where the target exists
meta_action        () int64                  index into MetaAction (-100: no label)
reason             () int64                  index into Reason (-100: no label)
intent             () int64                  index into instructions.NAVIGATION_INTENTS, the
                                             route's navigation intent (-100: none of them)
explanation        str                       the expert's explanation
driver             str                       who drove the frame
episode_id         str
frame_index        () int64
================== ========================= =================================================

Schema 2 datasets add the perception targets (absent for schema 1):

================== ========================= =================================================
bev                (4, 80, 80) float32       BEV raster, 0/1 (drivable, route, vehicles,
                                             pedestrians; perception.bev_targets.CHANNELS)
signal_state       () int64                  0 none, 1 red, 2 yellow, 3 green
signal_distance    () float32                m along the route (0 when none)
lead_present       () float32                1 when a lead object is within 60 m
lead_distance      () float32                m along the route (0 when none)
lead_speed         () float32                m/s (0 when none)
================== ========================= =================================================

``target="expert"`` (default) uses the expert's plan (always 6 valid points; the right label
for DAgger data, where the driven path is not the expert's); ``target="future"`` uses the path
actually driven (``future.waypoints``, masked past ``future.valid``) with the mean speed over
each 0.5 s interval as target speed. Masked entries are 0.

Images are decoded lazily per item: only the Parquet row group holding the frame (64 rows)
is read, and the last few row groups are cached per process. Non-image columns of the split
are loaded at construction (small).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from drivevla.core.frames import lateral_offset
from drivevla.core.types import HighLevelCommand, MetaAction
from drivevla.datasets.format import BEV_SHAPE, FUTURE_DT_S, FUTURE_STEPS, ROUTE_TARGETS
from drivevla.datasets.reader import CorruptDataError, DemoDataset, decode_jpeg, open_dataset
from drivevla.language.intents import NAVIGATION_INTENTS
from drivevla.language.reasons import Reason
from drivevla.perception.bev_targets import unpack_bev

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # torch.nn.CrossEntropyLoss's default ignore_index
_TABLE_COLUMNS = (
    "episode_id",
    "frame_index",
    "ego.speed",
    "ego.accel",
    "ego.yaw_rate",
    "ego.steer",
    "ego.yaw",
    "ego.x",
    "ego.y",
    "route.targets",
    "route.command",
    "intent",
    "instruction",
    "future.waypoints",
    "future.valid",
    "expert.waypoints",
    "expert.target_speeds",
    "expert.meta_action",
    "expert.reason",
    "expert.explanation",
    "driver",
)


PERCEPTION_COLUMNS = ("perception.bev", "perception.signal_state",
                      "perception.signal_distance", "perception.lead_distance",
                      "perception.lead_speed")
_SIGNAL_STATES = {"": 0, "red": 1, "yellow": 2, "green": 3}


def _perception_columns(col: dict[str, Any]) -> dict[str, Any]:
    """The schema 2 targets as arrays (the BEV stays packed until an item is read)."""
    def finite(name: str) -> np.ndarray:
        return np.nan_to_num(col[name].to_numpy(zero_copy_only=False).astype(np.float32))

    lead = col["perception.lead_distance"].to_numpy(zero_copy_only=False).astype(np.float32)
    return {
        "bev": col["perception.bev"].to_pylist(),
        "signal_state": np.array([_SIGNAL_STATES.get(v, 0) for v in
                                  col["perception.signal_state"].to_pylist()], np.int64),
        "signal_distance": finite("perception.signal_distance"),
        "lead_present": np.isfinite(lead).astype(np.float32),
        "lead_distance": finite("perception.lead_distance"),
        "lead_speed": finite("perception.lead_speed"),
    }


def _heading_change(yaw: np.ndarray, episode_of: np.ndarray) -> np.ndarray:
    """Per frame: unwrapped heading minus the heading of its episode's first row (the rows of
    an episode are consecutive and in frame order)."""
    out = np.zeros(len(yaw), np.float32)
    if len(yaw) == 0:
        return out
    starts = _episode_starts(episode_of)
    ends = np.append(starts[1:], len(yaw))
    for a, b in zip(starts, ends, strict=True):
        unwrapped = np.unwrap(yaw[a:b])
        out[a:b] = unwrapped - unwrapped[0]
    return out


def _lateral_offset(x: np.ndarray, y: np.ndarray, yaw: np.ndarray,
                    episode_of: np.ndarray) -> np.ndarray:
    """Per frame: :func:`~drivevla.core.frames.lateral_offset` from its episode's first
    row (rows of an episode are consecutive and in frame order)."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    first = _episode_first_rows(_episode_starts(episode_of), len(x))
    return lateral_offset(x, y, x[first], y[first], yaw[first]).astype(np.float32)


def _distance_travelled(x: np.ndarray, y: np.ndarray, episode_of: np.ndarray) -> np.ndarray:
    """Per frame: the path length (m) from its episode's first row, summed frame to frame
    (rows of an episode are consecutive and in frame order)."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    step = np.hypot(np.diff(x, prepend=x[0]), np.diff(y, prepend=y[0]))
    starts = _episode_starts(episode_of)
    step[starts] = 0.0
    total = np.cumsum(step)
    return (total - total[_episode_first_rows(starts, len(x))]).astype(np.float32)


def _episode_starts(episode_of: np.ndarray) -> np.ndarray:
    """Indices of the first row of each episode (``episode_of`` non-empty, rows of an
    episode consecutive)."""
    return np.flatnonzero(np.diff(episode_of, prepend=episode_of[0] - 1))


def _episode_first_rows(starts: np.ndarray, n: int) -> np.ndarray:
    """Per row of ``n``, the index of its episode's first row, from :func:`_episode_starts`."""
    return starts[np.searchsorted(starts, np.arange(n), side="right") - 1]


_COMMANDS = {c.value: c.index for c in HighLevelCommand}
_META = {m.value: i for i, m in enumerate(MetaAction)}
_REASONS = {r.value: r.index for r in Reason}
_INTENTS = {name: i for i, name in enumerate(NAVIGATION_INTENTS)}


def _flat(column, width: int) -> np.ndarray:
    """A list<float32> arrow column of fixed width as an (N, width) float32 array."""
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, width)


class FrameDataset(Dataset):
    """Frames of one split of a dataset directory (see module docstring)."""

    def __init__(
        self,
        root: str | Path | DemoDataset,
        split: str | None = "train",
        cameras: Sequence[str] | None = None,
        target: str = "expert",
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        skip_corrupt: bool = False,
        cache_row_groups: int = 4,
    ) -> None:
        if target not in ("expert", "future"):
            raise ValueError(f"target={target!r}; valid: 'expert', 'future'")
        self.dataset = root if isinstance(root, DemoDataset) else open_dataset(root, skip_corrupt)
        ds = self.dataset
        self.cameras = list(cameras) if cameras is not None else ds.cameras
        unknown = [c for c in self.cameras if c not in ds.cameras]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; the dataset has {ds.cameras}")
        specs = {s.name: s for s in ds.camera_specs}
        self.camera_specs = [specs[c] for c in self.cameras]
        sizes = {(s.height, s.width) for s in self.camera_specs}
        if len(sizes) > 1:
            raise ValueError(
                f"cameras {self.cameras} differ in size {sorted(sizes)}; images are stacked, "
                "so pick cameras of one size with cameras=[...]"
            )
        self.target = target
        self.transform = transform
        if transform is not None and callable(getattr(transform, "bind", None)):
            transform.bind(self.camera_specs)
        self.cache_row_groups = cache_row_groups
        self._load(ds.episode_ids if split is None else ds.split(split))
        self._files: dict[int, Any] = {}
        self._groups: OrderedDict[tuple[int, int], Any] = OrderedDict()

    def _load(self, episode_ids: list[str]) -> None:
        import pyarrow.parquet as pq

        self.paths: list[Path] = []
        self.group_starts: list[np.ndarray] = []
        parts: dict[str, list[Any]] = {}
        episode_of, row_of = [], []
        wanted = list(_TABLE_COLUMNS)
        if int(self.dataset.info.get("schema_version", 1)) >= 2:
            wanted += list(PERCEPTION_COLUMNS)
        for eid in episode_ids:
            table = self.dataset.read_episode(eid, wanted)
            if table is None:
                continue  # skipped as corrupt (counted in dataset.skipped)
            path = self.dataset.shard_path(eid)
            meta = pq.ParquetFile(path).metadata
            counts = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            self.group_starts.append(np.concatenate([[0], np.cumsum(counts)]))
            e = len(self.paths)
            self.paths.append(path)
            episode_of.append(np.full(table.num_rows, e, dtype=np.int64))
            row_of.append(np.arange(table.num_rows, dtype=np.int64))
            for name in wanted:
                parts.setdefault(name, []).append(table.column(name))
        self.episode_of = np.concatenate(episode_of) if episode_of else np.zeros(0, np.int64)
        self.row_of = np.concatenate(row_of) if row_of else np.zeros(0, np.int64)
        if not self.paths:
            self._columns: dict[str, Any] = {}
            return
        import pyarrow as pa

        col = {n: pa.chunked_array([c for t in parts[n] for c in t.chunks]) for n in parts}
        n = len(self.episode_of)
        self._columns = {
            "episode_id": col["episode_id"].to_pylist(),
            "frame_index": col["frame_index"].to_numpy().astype(np.int64),
            "ego": np.stack(
                [
                    col[k].to_numpy().astype(np.float32)
                    for k in ("ego.speed", "ego.accel", "ego.yaw_rate", "ego.steer")
                ],
                axis=1,
            ),
            "heading_change": _heading_change(
                col["ego.yaw"].to_numpy().astype(np.float64), self.episode_of
            ),
            "lateral_offset": _lateral_offset(
                col["ego.x"].to_numpy().astype(np.float64),
                col["ego.y"].to_numpy().astype(np.float64),
                col["ego.yaw"].to_numpy().astype(np.float64), self.episode_of
            ),
            "distance_travelled": _distance_travelled(
                col["ego.x"].to_numpy().astype(np.float64),
                col["ego.y"].to_numpy().astype(np.float64), self.episode_of
            ),
            "route": _flat(col["route.targets"], ROUTE_TARGETS * 2).reshape(n, ROUTE_TARGETS, 2),
            "command": np.array(
                [_COMMANDS.get(c, IGNORE_INDEX) for c in col["route.command"].to_pylist()]
            ),
            "instruction": col["instruction"].to_pylist(),
            "future": _flat(col["future.waypoints"], FUTURE_STEPS * 2).reshape(n, -1, 2),
            "future_valid": col["future.valid"].to_numpy().astype(np.int64),
            "expert": _flat(col["expert.waypoints"], FUTURE_STEPS * 2).reshape(n, -1, 2),
            "expert_speeds": _flat(col["expert.target_speeds"], FUTURE_STEPS),
            "meta_action": np.array(
                [_META.get(m, IGNORE_INDEX) for m in col["expert.meta_action"].to_pylist()]
            ),
            "reason": np.array(
                [_REASONS.get(r, IGNORE_INDEX) for r in col["expert.reason"].to_pylist()]
            ),
            "intent": np.array(
                [_INTENTS.get(i, IGNORE_INDEX) for i in col["intent"].to_pylist()]
            ),
            "explanation": col["expert.explanation"].to_pylist(),
            "driver": col["driver"].to_pylist(),
        }
        if "perception.bev" in col:
            self._columns |= _perception_columns(col)

    def __len__(self) -> int:
        return len(self.episode_of)

    @property
    def has_perception(self) -> bool:
        """Whether the frames carry perception targets (a schema 2 dataset)."""
        return "bev" in self._columns

    def label_column(self, name: str) -> np.ndarray:
        """A copy of one non-image column for every frame of the split (e.g. ``"ego"``,
        ``"heading_change"``), in item order, without decoding images."""
        if name not in self._columns:
            raise KeyError(f"no column {name!r}; have {sorted(self._columns)}")
        return np.array(self._columns[name], copy=True)

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers reopen files themselves
        state = dict(self.__dict__)
        state["_files"], state["_groups"] = {}, OrderedDict()
        return state

    # ------------------------------------------------------------------ images
    def _row_group(self, e: int, g: int):
        key = (e, g)
        if key in self._groups:
            self._groups.move_to_end(key)
            return self._groups[key]
        import pyarrow.parquet as pq

        if e not in self._files:
            self._files[e] = pq.ParquetFile(self.paths[e])
        table = self._files[e].read_row_group(g, columns=[f"image.{c}" for c in self.cameras])
        self._groups[key] = table
        while len(self._groups) > self.cache_row_groups:
            self._groups.popitem(last=False)
        return table

    def images(self, index: int) -> torch.Tensor:
        """(N_cam, 3, H, W) float32 in [0, 1] for frame ``index``."""
        e, row = int(self.episode_of[index]), int(self.row_of[index])
        starts = self.group_starts[e]
        g = int(np.searchsorted(starts, row, side="right") - 1)
        table = self._row_group(e, g)
        out = []
        for c in self.cameras:
            data = table.column(f"image.{c}")[row - int(starts[g])].as_py()
            rgb = decode_jpeg(data, self.paths[e], row, f"image.{c}")
            out.append(torch.from_numpy(rgb.copy()).permute(2, 0, 1))
        return torch.stack(out).float().div_(255.0)

    # ------------------------------------------------------------------ items
    def _targets(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self._columns
        if self.target == "expert":
            return c["expert"][i], c["expert_speeds"][i], np.ones(FUTURE_STEPS, np.float32)
        valid = int(c["future_valid"][i])
        mask = (np.arange(FUTURE_STEPS) < valid).astype(np.float32)
        wps = np.nan_to_num(c["future"][i]) * mask[:, None]
        prev = np.vstack([np.zeros((1, 2), np.float32), wps[:-1]])
        speeds = np.linalg.norm(wps - prev, axis=1) / FUTURE_DT_S * mask
        return wps, speeds.astype(np.float32), mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        for _ in range(len(self)):
            try:
                images = self.images(index)
                break
            except CorruptDataError as exc:
                if not self.dataset.skip_corrupt:
                    raise
                self.dataset.skipped.add(exc, rows=1)
                index = (index + 1) % len(self)  # the next frame stands in, deterministically
        else:
            raise CorruptDataError(self.paths[0], None, "no frame of this split decodes",
                                   skippable=False)
        c = self._columns
        wps, speeds, mask = self._targets(index)
        item = {
            "images": images,
            "ego": torch.from_numpy(c["ego"][index].copy()),
            "heading_change": torch.tensor(float(c["heading_change"][index])),
            "lateral_offset": torch.tensor(float(c["lateral_offset"][index])),
            "distance_travelled": torch.tensor(float(c["distance_travelled"][index])),
            "route": torch.from_numpy(c["route"][index].copy()),
            "command": torch.tensor(int(c["command"][index]), dtype=torch.long),
            "instruction": c["instruction"][index],
            "target_waypoints": torch.from_numpy(np.array(wps, dtype=np.float32)),
            "target_speeds": torch.from_numpy(np.array(speeds, dtype=np.float32)),
            "waypoint_mask": torch.from_numpy(mask),
            "meta_action": torch.tensor(int(c["meta_action"][index]), dtype=torch.long),
            "reason": torch.tensor(int(c["reason"][index]), dtype=torch.long),
            "intent": torch.tensor(int(c["intent"][index]), dtype=torch.long),
            "explanation": c["explanation"][index],
            "driver": c["driver"][index],
            "episode_id": c["episode_id"][index],
            "frame_index": torch.tensor(int(c["frame_index"][index]), dtype=torch.long),
        }
        if "bev" in c:
            item |= {
                "bev": torch.from_numpy(unpack_bev(c["bev"][index], BEV_SHAPE).astype(np.float32)),
                "signal_state": torch.tensor(int(c["signal_state"][index]), dtype=torch.long),
                **{k: torch.tensor(float(c[k][index])) for k in
                   ("signal_distance", "lead_present", "lead_distance", "lead_speed")},
            }
        if self.transform is not None:
            item = self.transform(item)
        return item


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors along a new batch dimension; keep strings (and anything else) as lists."""
    if not batch:
        raise ValueError("collate needs at least one item")
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        else:
            out[key] = values
    return out
