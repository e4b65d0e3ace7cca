"""Reading datasets back: episodes, splits, pandas, and damaged shards and images."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drivevla.datasets.reader import CorruptDataError, open_dataset, split_of


def test_open_read_and_iterate(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    assert ds.cameras == ["front"]
    assert ds.camera_specs[0].width == 64
    assert len(ds.episode_ids) == 6 and len(ds.shards()) == 6
    table = ds.read_episode(ds.episode_ids[0])
    assert isinstance(table, pa.Table)
    assert table.num_rows == ds.episode(ds.episode_ids[0])["n_frames"]
    frames = list(ds.iter_frames(columns=["episode_id", "image.front"], decode_images=True))
    assert len(frames) == ds.n_frames == len(ds)
    assert frames[0]["image.front"].shape == (48, 64, 3)
    assert ds.skipped.files == ds.skipped.rows == 0


def test_pandas_reads_a_shard(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    df = pd.read_parquet(ds.shards()[0])
    assert len(df) == ds.episodes[0]["n_frames"]
    assert df["ego.speed"].between(0, 40).all()
    assert df["expert.waypoints"].map(len).eq(12).all()


def test_splits_are_disjoint_cover_everything_and_are_stable(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    parts = {s: set(ds.split(s)) for s in ("train", "val", "test")}
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"])
    assert not parts["val"] & parts["test"]
    assert set().union(*parts.values()) == set(ds.episode_ids)
    ids = [f"{i:06d}" for i in range(2000)]
    counts = {s: sum(split_of(i, 0) == s for i in ids) for s in ("train", "val", "test")}
    assert 1700 < counts["train"] < 1900 and counts["val"] > 50 and counts["test"] > 50
    assert [split_of(i, 1) for i in ids] != [split_of(i, 0) for i in ids]  # the seed matters
    with pytest.raises(ValueError, match="valid"):
        ds.split("holdout")


def test_truncated_shard_names_the_file_and_skip_counts_it(tiny_copy):
    ds = open_dataset(tiny_copy)
    victim = ds.shards()[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError) as err:
        list(open_dataset(tiny_copy).iter_frames())
    assert str(victim) in str(err.value) and "row" in str(err.value)
    skipping = open_dataset(tiny_copy, skip_corrupt=True)
    frames = list(skipping.iter_frames())
    n_victim = skipping.episode(skipping.episode_ids[2])["n_frames"]
    assert len(frames) == skipping.n_frames - n_victim
    assert skipping.skipped.files == 1 and skipping.skipped.rows == n_victim
    assert str(victim) in skipping.skipped.errors[0]


def test_undecodable_jpeg_names_file_and_row_and_skip_counts_it(tiny_copy):
    ds = open_dataset(tiny_copy)
    victim = ds.shards()[1]
    table = pq.read_table(victim)
    images = table.column("image.front").to_pylist()
    images[7] = images[7][:40]  # a truncated JPEG
    images[9] = b"not a jpeg at all"
    i = table.schema.get_field_index("image.front")
    table = table.set_column(i, table.schema.field(i), pa.array(images, pa.binary()))
    pq.write_table(table, victim)
    with pytest.raises(CorruptDataError, match=r"row 7, column 'image.front'") as err:
        list(open_dataset(tiny_copy).iter_frames(decode_images=True))
    assert str(victim) in str(err.value) and err.value.row == 7
    skipping = open_dataset(tiny_copy, skip_corrupt=True)
    frames = list(skipping.iter_frames(decode_images=True))
    assert len(frames) == skipping.n_frames - 2
    assert skipping.skipped.rows == 2 and skipping.skipped.files == 0


def test_a_partial_last_line_is_not_an_episode(tiny_copy):
    path = tiny_copy / "meta/episodes.jsonl"
    path.write_text(path.read_text() + '{"episode_id": "000099", "scen')
    assert len(open_dataset(tiny_copy).episodes) == 6


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="info.json"):
        open_dataset(tmp_path)


def test_info_json_is_plain_json_with_the_features(tiny_dataset):
    info = json.loads((tiny_dataset / "meta/info.json").read_text())
    assert info["features"]["image.front"]["dtype"] == "binary"
    assert info["features"]["future.waypoints"]["shape"] == [6, 2]
    assert info["future"] == {"steps": 6, "dt_s": 0.5}
