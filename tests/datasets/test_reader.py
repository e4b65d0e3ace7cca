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


def test_a_partial_last_line_is_never_dropped_silently(tiny_copy):
    # before: the episode of that line was left out without a word (issue #22)
    path = tiny_copy / "meta/episodes.jsonl"
    path.write_text(path.read_text() + '{"episode_id": "000099", "scen')
    with pytest.raises(CorruptDataError, match=r"episodes\.jsonl: line 7: an unfinished") as err:
        open_dataset(tiny_copy)
    assert err.value.line == 7 and err.value.skippable
    skipping = open_dataset(tiny_copy, skip_corrupt=True)
    assert len(skipping.episodes) == 6
    assert skipping.skipped.lines == [7] and skipping.skipped.files == 0
    assert "line 7" in skipping.skipped.summary()
    assert skipping.skipped.to_dict()["episodes_jsonl_lines"] == [7]


@pytest.mark.parametrize("bad, says", [
    ("{}", "missing"),
    ("[1, 2]", "not a JSON object"),
    ('{"episode_id": "000009", "file": "x.parquet", "n_frames": -1}', "'n_frames' is -1"),
    ("not json at all", "not JSON"),
])
def test_a_bad_line_in_episodes_jsonl_names_its_line_or_is_skipped(tiny_copy, bad, says):
    # before: "{}" was a KeyError from deep in the reader
    path = tiny_copy / "meta/episodes.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], bad, *lines[2:]]) + "\n")
    with pytest.raises(CorruptDataError, match=f"{path}: line 3: .*{says}"):
        open_dataset(tiny_copy)
    skipping = open_dataset(tiny_copy, skip_corrupt=True)
    assert len(skipping.episodes) == 6 and skipping.skipped.lines == [3]


def test_the_collector_alone_takes_a_partial_last_line_as_an_interrupted_append(tmp_path):
    from drivevla.datasets.format import READER_FIELDS, read_episode_log

    path = tmp_path / "episodes.jsonl"
    good = json.dumps({"episode_id": "000000", "file": "a.parquet", "n_frames": 3})
    path.write_text(good + "\n" + '{"episode_id": "0000')
    records, left_out = read_episode_log(path, READER_FIELDS, resume=True)
    assert [r["episode_id"] for r in records] == ["000000"]
    assert [e.line for e in left_out] == [2]  # the collector rewrites the file and redoes it
    with pytest.raises(CorruptDataError, match="line 2"):
        read_episode_log(path, READER_FIELDS)
    path.write_text('{"episode_id": "0000\n' + good + "\n")  # not the last line: corrupt
    with pytest.raises(CorruptDataError, match="line 1: not JSON"):
        read_episode_log(path, READER_FIELDS, resume=True)


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="info.json"):
        open_dataset(tmp_path)


def test_info_json_is_plain_json_with_the_features(tiny_dataset):
    info = json.loads((tiny_dataset / "meta/info.json").read_text())
    assert info["features"]["image.front"]["dtype"] == "binary"
    assert info["features"]["future.waypoints"]["shape"] == [6, 2]
    assert info["future"] == {"steps": 6, "dt_s": 0.5}


def test_a_schema_1_dataset_without_perception_columns_still_trains(tiny_copy):
    # datasets collected before the perception targets (schema 1) are read as before
    from drivevla.datasets.torch_dataset import FrameDataset

    for shard in tiny_copy.glob("data/*/*.parquet"):
        table = pq.read_table(shard)
        keep = [c for c in table.column_names if not c.startswith("perception.")]
        pq.write_table(table.select(keep), shard)
    info_path = tiny_copy / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["schema_version"] = 1
    info_path.write_text(json.dumps(info))
    ds = open_dataset(tiny_copy)
    assert len(list(ds.iter_frames(columns=["episode_id", "ego.speed"]))) == ds.n_frames
    frames = FrameDataset(tiny_copy, split=None)
    assert len(frames) == ds.n_frames and frames[0]["images"].ndim == 4
    assert not frames.has_perception and "bev" not in frames[0]
    with pytest.raises(CorruptDataError, match=r"missing column\(s\) \['perception.bev'\]"):
        ds.read_episode(ds.episode_ids[0], ["perception.bev"])
