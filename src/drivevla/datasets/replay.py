"""Recorded frames as the observations a policy saw: for replaying a dataset through a
policy offline (e.g. ``drivevla export parity``), without the simulator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivevla.core.types import EgoState, HighLevelCommand, Observation, RouteInfo
from drivevla.datasets.torch_dataset import FrameDataset
from drivevla.language.reasons import Reason

ODOMETRY_KEYS = ("heading_change", "lateral_offset", "distance_travelled")
_REASON_OF_INDEX = {r.index: r.value for r in Reason}


@dataclass
class RecordedTick:
    """One recorded frame: its observation and the odometry readings the dataset derives for
    it (since the episode's first frame; channel name -> raw value)."""

    episode_id: str
    frame_index: int
    observation: Observation
    odometry: dict[str, float]
    explanation: str = ""  # the expert's explanation at this frame ("" when none)
    reason: str | None = None  # the expert's reason (a Reason value), None when unlabelled


def recorded_ticks(root: str | Path, cameras: Sequence[str], frames: int,
                   split: str | None = None) -> Iterator[RecordedTick]:
    """``frames`` frames of the dataset at ``root`` (``split``: 'train', 'val' or 'test';
    None: every split), spread evenly over its episodes in order, with the images back as
    uint8 HWC (decoded from JPEG as uint8) and the expert's explanation and reason."""
    dataset = FrameDataset(root, split=split, cameras=list(cameras))
    picks = np.unique(np.linspace(0, len(dataset) - 1, num=min(frames, len(dataset))).round())
    for index in picks.astype(int):
        item = dataset[int(index)]
        images = {spec.name: np.rint(item["images"][i].permute(1, 2, 0).numpy() * 255.0
                                     ).astype(np.uint8)
                  for i, spec in enumerate(dataset.camera_specs)}
        speed, accel, yaw_rate, steer = (float(v) for v in item["ego"])
        route = RouteInfo(item["route"].numpy().astype(np.float64),
                          list(HighLevelCommand)[int(item["command"])], "", 0.0)
        obs = Observation(images, {s.name: s for s in dataset.camera_specs},
                          EgoState(0.0, 0.0, 0.0, speed, accel, yaw_rate, steer), route,
                          item["instruction"], float(item["frame_index"]))
        yield RecordedTick(item["episode_id"], int(item["frame_index"]), obs,
                           {name: float(item[name]) for name in ODOMETRY_KEYS},
                           item["explanation"], _REASON_OF_INDEX.get(int(item["reason"])))


def split_explanations(root: str | Path, split: str) -> list[str]:
    """The expert's explanation of every frame of ``split`` (text only, no image decoded)."""
    dataset = FrameDataset(root, split=split, cameras=[])
    return [str(t) for t in dataset.label_column("explanation")]
