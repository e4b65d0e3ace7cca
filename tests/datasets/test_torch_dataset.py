"""The torch Dataset: documented shapes and dtypes, collate, targets, splits, corrupt frames."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from drivevla.core.types import MetaAction
from drivevla.datasets.reader import CorruptDataError, open_dataset
from drivevla.datasets.torch_dataset import FrameDataset, collate
from drivevla.language.reasons import Reason

SHAPES = {
    "images": ((1, 3, 48, 64), torch.float32),
    "ego": ((4,), torch.float32),
    "route": ((5, 2), torch.float32),
    "command": ((), torch.int64),
    "target_waypoints": ((6, 2), torch.float32),
    "target_speeds": ((6,), torch.float32),
    "waypoint_mask": ((6,), torch.float32),
    "meta_action": ((), torch.int64),
    "reason": ((), torch.int64),
    "frame_index": ((), torch.int64),
}


def test_items_and_batches_have_the_documented_shapes(tiny_dataset):
    ds = FrameDataset(tiny_dataset, split=None)
    assert len(ds) == open_dataset(tiny_dataset).n_frames
    item = ds[3]
    for key, (shape, dtype) in SHAPES.items():
        assert tuple(item[key].shape) == shape and item[key].dtype == dtype, key
    assert isinstance(item["instruction"], str) and item["instruction"]
    assert isinstance(item["explanation"], str) and item["explanation"]
    assert 0.0 <= item["images"].min() and item["images"].max() <= 1.0
    assert item["images"].std() > 0.01  # a real picture, not a blank
    assert 0 <= int(item["meta_action"]) < len(MetaAction)
    assert 0 <= int(item["reason"]) < len(Reason)
    assert item["waypoint_mask"].sum() == 6  # the expert's plan is always complete

    loader = DataLoader(ds, batch_size=5, shuffle=True, collate_fn=collate)
    batch = next(iter(loader))
    for key, (shape, dtype) in SHAPES.items():
        assert tuple(batch[key].shape) == (5, *shape) and batch[key].dtype == dtype, key
    assert isinstance(batch["instruction"], list) and len(batch["instruction"]) == 5
    assert isinstance(batch["explanation"], list)


def test_future_targets_are_masked_at_the_end_of_an_episode(tiny_dataset):
    ds = FrameDataset(tiny_dataset, split=None, target="future")
    n0 = open_dataset(tiny_dataset).episodes[0]["n_frames"]
    first, last = ds[0], ds[n0 - 1]
    assert first["waypoint_mask"].tolist() == [1.0] * 6
    assert last["waypoint_mask"].sum() == 0 and last["target_waypoints"].abs().sum() == 0
    # mean speed over the first 0.5 s is close to the ego's speed
    assert abs(float(first["target_speeds"][0]) - float(first["ego"][0])) < 3.0
    assert torch.isfinite(ds[n0 - 3]["target_waypoints"]).all()


def test_splits_partition_the_frames(tiny_dataset):
    sizes = [len(FrameDataset(tiny_dataset, split=s)) for s in ("train", "val", "test")]
    assert sum(sizes) == len(FrameDataset(tiny_dataset, split=None))
    with pytest.raises(ValueError, match="valid"):
        FrameDataset(tiny_dataset, split="everything")


def test_transform_hook_is_applied(tiny_dataset):
    seen = []

    def transform(item):
        seen.append(item["frame_index"])
        item["images"] = item["images"] * 0.0
        return item

    ds = FrameDataset(tiny_dataset, split=None, transform=transform)
    assert ds[2]["images"].abs().sum() == 0 and len(seen) == 1


def test_a_corrupt_jpeg_raises_or_is_skipped(tiny_copy):
    victim = open_dataset(tiny_copy).shards()[0]
    table = pq.read_table(victim)
    images = table.column("image.front").to_pylist()
    images[4] = b"\xff\xd8garbage"
    i = table.schema.get_field_index("image.front")
    pq.write_table(
        table.set_column(i, table.schema.field(i), pa.array(images, pa.binary())), victim
    )
    ds = FrameDataset(tiny_copy, split=None)
    with pytest.raises(CorruptDataError, match="row 4"):
        ds[4]
    skipping = FrameDataset(tiny_copy, split=None, skip_corrupt=True)
    assert int(skipping[4]["frame_index"]) == 5  # the next frame stands in
    assert skipping.dataset.skipped.rows == 1


def _episode_columns(ds, root, columns):
    """Per episode of ``ds``: its item rows and ``columns`` read straight from its shard."""
    episodes = np.array([ds[i]["episode_id"] for i in range(len(ds))])
    for eid in sorted(set(episodes)):
        shard = next(root.glob(f"data/*/episode-{eid}.parquet"))
        table = pq.read_table(shard, columns=columns)
        yield np.flatnonzero(episodes == eid), {c: table.column(c).to_numpy(zero_copy_only=False)
                                                for c in columns}


def test_heading_change_is_the_unwrapped_heading_since_the_episode_began(tiny_dataset):
    ds = FrameDataset(tiny_dataset, split=None)
    heading = ds.label_column("heading_change")
    checked = 0
    for rows, cols in _episode_columns(ds, tiny_dataset, ["ego.yaw"]):
        expected = np.unwrap(cols["ego.yaw"].astype(np.float64))
        np.testing.assert_allclose(heading[rows], expected - expected[0], atol=1e-5)
        assert heading[rows[0]] == 0.0
        checked += 1
    assert checked >= 3
    assert float(ds[len(ds) - 1]["heading_change"]) == pytest.approx(heading[-1])
    # the per-episode unwrapping itself (the tiny routes barely turn in 4 s): two episodes,
    # the first turning left across the +-pi seam, the second starting anew
    from drivevla.datasets.torch_dataset import _heading_change

    yaw = np.array([3.0, 3.1, -3.1, -3.0, 0.5, 0.4, 0.2])
    out = _heading_change(yaw, np.array([0, 0, 0, 0, 1, 1, 1]))
    seam = 2 * np.pi - 6.2
    np.testing.assert_allclose(out, [0, 0.1, 0.1 + seam, 0.2 + seam, 0, -0.1, -0.3], atol=1e-6)


def test_lateral_offset_is_the_sideways_move_since_the_episode_began(tiny_dataset):
    ds = FrameDataset(tiny_dataset, split=None)
    lateral = ds.label_column("lateral_offset")
    checked = 0
    keys = ["ego.x", "ego.y", "ego.yaw"]
    for rows, cols in _episode_columns(ds, tiny_dataset, keys):
        x, y, yaw = (cols[k].astype(np.float64) for k in keys)
        # into the first frame's ego frame: its y is the offset (x forward, y left)
        c, s = np.cos(yaw[0]), np.sin(yaw[0])
        expected = -(x - x[0]) * s + (y - y[0]) * c
        np.testing.assert_allclose(lateral[rows], expected, atol=1e-4)
        assert lateral[rows[0]] == 0.0
        checked += 1
    assert checked >= 3
    assert float(ds[len(ds) - 1]["lateral_offset"]) == pytest.approx(lateral[-1])
    # two episodes: the first heading north (yaw pi/2) and moving over to the west (its
    # left) by one lane, the second heading east and drifting right
    from drivevla.datasets.torch_dataset import _lateral_offset

    x = np.array([10.0, 10.0, 8.0, 6.5, 0.0, 5.0, 10.0])
    y = np.array([0.0, 5.0, 10.0, 15.0, 0.0, 0.0, -1.0])
    yaw = np.array([np.pi / 2, np.pi / 2, 2.0, 1.6, 0.0, 0.0, -0.1])
    out = _lateral_offset(x, y, yaw, np.array([0, 0, 0, 0, 1, 1, 1]))
    np.testing.assert_allclose(out, [0, 0, 2.0, 3.5, 0, 0, -1.0], atol=1e-6)


def test_distance_travelled_is_the_path_length_since_the_episode_began(tiny_dataset):
    ds = FrameDataset(tiny_dataset, split=None)
    distance = ds.label_column("distance_travelled")
    checked = 0
    for rows, cols in _episode_columns(ds, tiny_dataset, ["ego.x", "ego.y"]):
        x, y = cols["ego.x"].astype(np.float64), cols["ego.y"].astype(np.float64)
        steps = np.hypot(np.diff(x), np.diff(y))
        np.testing.assert_allclose(distance[rows], np.r_[0.0, np.cumsum(steps)], atol=1e-3)
        assert distance[rows[-1]] > 5.0  # the tiny episodes do move
        checked += 1
    assert checked >= 3
    assert float(ds[len(ds) - 1]["distance_travelled"]) == pytest.approx(distance[-1])
    # two episodes: the second starts again at 0, whatever the jump between them
    from drivevla.datasets.torch_dataset import _distance_travelled

    x = np.array([0.0, 3.0, 3.0, 100.0, 104.0])
    y = np.array([0.0, 4.0, 5.0, 100.0, 100.0])
    out = _distance_travelled(x, y, np.array([0, 0, 0, 1, 1]))
    np.testing.assert_allclose(out, [0, 5.0, 6.0, 0, 4.0], atol=1e-6)


def test_intent_is_the_routes_navigation_intent(tiny_dataset):
    from drivevla.language.intents import NAVIGATION_INTENTS

    ds = FrameDataset(tiny_dataset, split=None)
    intents = ds.label_column("intent")
    checked = 0
    for rows, cols in _episode_columns(ds, tiny_dataset, ["intent"]):
        names = set(cols["intent"].tolist())
        assert len(names) == 1  # one route, one intent
        assert (intents[rows] == NAVIGATION_INTENTS.index(names.pop())).all()
        assert int(ds[rows[0]]["intent"]) == intents[rows[0]]
        checked += 1
    assert checked >= 3


def test_perception_targets_come_with_schema_2_frames(tiny_dataset):
    ds = FrameDataset(tiny_dataset, split=None)
    assert ds.has_perception
    batch = collate([ds[i] for i in range(8)])
    assert batch["bev"].shape == (8, 4, 80, 80) and batch["bev"].dtype == torch.float32
    assert set(batch["bev"].unique().tolist()) <= {0.0, 1.0}
    assert batch["bev"][:, 0, 64, 40].eq(1.0).all()  # drivable under the ego
    assert batch["signal_state"].dtype == torch.long
    assert ((batch["signal_state"] >= 0) & (batch["signal_state"] <= 3)).all()
    for k in range(0, len(ds), 25):  # no lead object: its distance and speed are 0, not NaN
        item = ds[k]
        assert torch.isfinite(item["lead_distance"]) and torch.isfinite(item["lead_speed"])
        assert item["lead_present"] in (0.0, 1.0)
        assert item["lead_present"] == 1.0 or item["lead_distance"] == 0.0
