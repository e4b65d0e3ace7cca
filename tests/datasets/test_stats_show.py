"""``drivevla data stats`` and ``drivevla data show``."""

from __future__ import annotations

import collections
import json

from PIL import Image

from drivevla.cli import main
from drivevla.datasets.reader import open_dataset
from drivevla.datasets.stats import dataset_stats, format_stats


def test_stats_count_what_the_episodes_hold(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    stats = dataset_stats(tiny_dataset)
    assert stats["episodes"] == len(ds.episodes) == 6
    assert stats["frames"] == ds.n_frames
    assert stats["episodes_per_scenario"] == dict(
        collections.Counter(e["scenario"] for e in ds.episodes)
    )
    assert sum(stats["episodes_per_intent"].values()) == 6
    for key in ("reason", "meta_action", "instruction_kind", "driver"):
        assert sum(stats[f"frames_per_{key}"].values()) == ds.n_frames, key
    kinds = collections.Counter()
    for e in ds.episodes:
        kinds.update(e["instruction_kind_counts"])
    assert stats["frames_per_instruction_kind"] == dict(kinds)
    assert "misleading" in kinds  # the tiny suite has an unsafe instruction
    assert stats["frames_per_reason"].get("refused_unsafe_instruction", 0) > 0
    assert stats["bytes"] > stats["shard_bytes"] > 0
    assert stats["bytes_per_frame"] == stats["shard_bytes"] / stats["frames"]
    text = format_stats(stats)
    assert "roundabout" in text and "refused_unsafe_instruction" in text


def test_cli_stats_json_and_show_png(tiny_dataset, tmp_path, capsys):
    out_json = tmp_path / "stats.json"
    assert main(["data", "stats", str(tiny_dataset), "--json", str(out_json)]) == 0
    assert "episodes 6" in capsys.readouterr().out
    assert json.loads(out_json.read_text())["episodes"] == 6
    png = tmp_path / "grid.png"
    assert main(["data", "show", str(tiny_dataset), "--out", str(png), "--n", "5"]) == 0
    with Image.open(png) as im:
        assert im.format == "PNG"
        assert im.width >= 4 * 320 and im.height > 2 * 240  # 4 columns, 2 rows of tiles


def test_cli_stats_on_a_corrupt_shard_names_it_or_skips_and_reports(tiny_copy, capsys):
    from drivevla.cli import main
    from drivevla.datasets.reader import open_dataset

    ds = open_dataset(tiny_copy)
    victim = ds.shards()[1]
    n_victim = ds.episode(ds.episode_ids[1])["n_frames"]
    victim.write_bytes(victim.read_bytes()[:100])
    assert main(["data", "stats", str(tiny_copy)]) == 2
    err = capsys.readouterr().err
    assert str(victim) in err and "--skip-corrupt" in err and len(err.splitlines()) == 1
    assert main(["data", "stats", str(tiny_copy), "--skip-corrupt"]) == 0
    out = capsys.readouterr().out
    assert f"skipped as corrupt: 1 shard(s), {n_victim} frame(s)" in out
