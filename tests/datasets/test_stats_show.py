"""``drivevla data stats`` (counts and label checks) and ``drivevla data show``."""

from __future__ import annotations

import collections
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from drivevla.cli import main
from drivevla.datasets import label_checks as lc
from drivevla.datasets.collect import CollectConfig, collect
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


# ----------------------------------------------------------------------- label checks
# Full routes that bend (the roundabout ring, the exit ramp, an urban left turn) and end on a
# straight road: the expert of before #23 item 3 labelled 105 of these 652 frames 'curve'
# on the straight before each goal.
LABEL_SUITE = """\
name: labels
description: three full routes with bends, each ending on a straight road
routes:
- {id: roundabout-1, scenario: roundabout, intent: roundabout_exit_1, seed: 21, config: CFG}
- {id: exit, scenario: exit, intent: take_exit, seed: 21, config: CFG}
- {id: urban-left, scenario: urban, intent: turn_left, seed: 21, config: CFG}
""".replace("CFG", "{traffic_density: 0.3, cameras: [{name: front, width: 64, height: 48}]}")


@pytest.fixture(scope="module")
def full_routes(tmp_path_factory):
    """Three full routes collected by the expert (a few seconds)."""
    root = tmp_path_factory.mktemp("label_stats")
    (root / "suite.yaml").write_text(LABEL_SUITE, encoding="utf-8")
    out = root / "ds"
    collect(CollectConfig(suite=str(root / "suite.yaml"), episodes=3, out=str(out), workers=0,
                          show_progress=False))
    return out


def test_stats_of_a_collected_dataset_has_no_curve_on_a_straight_road(full_routes, tmp_path,
                                                                     capsys):
    out_json = tmp_path / "stats.json"
    assert main(["data", "stats", str(full_routes), "--json", str(out_json), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "curve_straight" in out and "label checks: every check passed" in out
    checks = json.loads(out_json.read_text())["label_checks"]
    assert checks["episodes"] == checks["episodes_road_rebuilt"] == 3
    assert checks["curve_frames"] > 0  # the ring and the ramp bend: their curves are kept
    assert checks["counts"]["curve_straight"] == 0, checks["examples"]["curve_straight"]
    assert checks["counts"] == dict.fromkeys(lc.CHECKS, 0), checks["examples"]
    # the checks can be left out
    assert main(["data", "stats", str(full_routes), "--no-check-labels", "--json",
                 str(out_json)]) == 0
    assert "curve_straight" not in capsys.readouterr().out
    assert json.loads(out_json.read_text())["label_checks"] is None


def _relabel_a_straight_frame_curve(root) -> tuple[str, int]:
    """Sets the reason of the first frame on a straight road (the route does not bend within
    80 m ahead) to 'curve' in its shard; returns its episode id and frame index."""
    ds = open_dataset(root)
    for record in ds.episodes:
        road = lc.RoadGeometry.of_episode(record)
        table = ds.read_episode(record["episode_id"])
        reasons = table.column("expert.reason").to_pylist()
        for i, progress in enumerate(table.column("route.progress").to_pylist()):
            if reasons[i] != "curve" and not road.bends_ahead(float(progress), lc.LOOKAHEAD_M):
                reasons[i] = "curve"
                column = table.schema.get_field_index("expert.reason")
                table = table.set_column(column, table.schema.field(column),
                                         pa.array(reasons, table.schema.field(column).type))
                pq.write_table(table, ds.shard_path(record["episode_id"]))
                return record["episode_id"], int(table.column("frame_index")[i].as_py())
    raise AssertionError("no frame on a straight road")


def test_a_curve_label_on_a_straight_road_is_reported_and_fails_strict(full_routes, tmp_path,
                                                                       capsys):
    root = tmp_path / "ds"
    shutil.copytree(full_routes, root)
    episode_id, frame = _relabel_a_straight_frame_curve(root)
    out_json = tmp_path / "stats.json"
    assert main(["data", "stats", str(root), "--json", str(out_json)]) == 0  # reported only
    out = capsys.readouterr().out
    assert "label checks: flagged curve_straight 1" in out
    assert f"e.g. {episode_id}#{frame} curve:" in out
    checks = json.loads(out_json.read_text())["label_checks"]
    assert checks["counts"]["curve_straight"] == 1
    assert checks["by_reason"]["curve_straight"] == {"curve": 1}
    example = checks["examples"]["curve_straight"][0]
    assert (example["episode_id"], example["frame_index"]) == (episode_id, frame)
    # --strict: the same report, then one error line naming the check and its count, exit 2
    assert main(["data", "stats", str(root), "--strict"]) == 2
    captured = capsys.readouterr()
    assert "curve_straight" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("drivevla: error: label checks flagged")
    assert "curve_straight 1" in lines[0] and str(root) in lines[0]


def test_strict_needs_the_label_checks(full_routes, capsys):
    assert main(["data", "stats", str(full_routes), "--strict", "--no-check-labels"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("drivevla: error: ") and "--no-check-labels" in err
