"""Collection: the on-disk format as any Parquet reader sees it, the future trajectory, seeds,
the train suite, refusals and DAgger."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from drivevla.datasets.collect import CollectConfig, collect, episode_seed, plan_collection
from drivevla.datasets.episode import future_waypoints
from drivevla.datasets.format import BEV_SHAPE, EPISODE_FIELDS, FEATURES, feature_names
from drivevla.perception.bev_targets import CHANNELS, BevGrid, unpack_bev
from drivevla.sim_bridge.embedded.suites import SEED_RANGES, generate_suite, load_suite

TINY_SUITE = Path(__file__).with_name("tiny_suite.yaml")
TINY_EPISODES = 6  # as conftest.py collects

# The documented columns and their arrow types, written out independently of format.py.
DOCUMENTED = {
    "episode_id": pa.string(),
    "frame_index": pa.int32(),
    "timestamp_s": pa.float64(),
    "scenario": pa.string(),
    "intent": pa.string(),
    "image.front": pa.binary(),
    "ego.x": pa.float64(),
    "ego.y": pa.float64(),
    "ego.yaw": pa.float32(),
    "ego.speed": pa.float32(),
    "ego.accel": pa.float32(),
    "ego.yaw_rate": pa.float32(),
    "ego.steer": pa.float32(),
    "control.throttle": pa.float32(),
    "control.steer": pa.float32(),
    "control.brake": pa.float32(),
    "route.targets": pa.list_(pa.float32()),
    "route.command": pa.string(),
    "route.progress": pa.float32(),
    "instruction": pa.string(),
    "instruction.kind": pa.string(),
    "instruction.navigation": pa.string(),
    "future.waypoints": pa.list_(pa.float32()),
    "future.valid": pa.int32(),
    "expert.waypoints": pa.list_(pa.float32()),
    "expert.target_speeds": pa.list_(pa.float32()),
    "expert.meta_action": pa.string(),
    "expert.reason": pa.string(),
    "expert.reason_object": pa.string(),
    "expert.explanation": pa.string(),
    "actors": pa.string(),
    "driver": pa.string(),
    "perception.bev": pa.binary(),
    "perception.signal_state": pa.string(),
    "perception.signal_distance": pa.float32(),
    "perception.lead_distance": pa.float32(),
    "perception.lead_speed": pa.float32(),
}


def _check_shard_with_pyarrow_only(path, n_frames: int) -> None:
    """Everything here uses pyarrow, json and numpy only: what an outside reader can rely on."""
    table = pq.read_table(path)
    assert table.num_rows == n_frames
    for name, dtype in DOCUMENTED.items():
        assert name in table.column_names, name
        assert table.schema.field(name).type == dtype, (name, table.schema.field(name).type)
    col = {n: table.column(n).to_pylist() for n in table.column_names}
    assert col["frame_index"] == list(range(n_frames))
    assert np.all(np.diff(col["timestamp_s"]) > 0)
    speeds = np.array(col["ego.speed"])
    assert np.all((speeds >= 0) & (speeds <= 40)), "speeds are m/s"
    assert speeds.max() > 2.0, "the expert gets going"
    for key in ("control.throttle", "control.brake"):
        assert all(0.0 <= v <= 1.0 for v in col[key])
    assert all(-1.0 <= v <= 1.0 for v in col["control.steer"] + col["ego.steer"])
    assert all(img[:2] == b"\xff\xd8" and img[-2:] == b"\xff\xd9" for img in col["image.front"])
    assert all(len(r) == 10 for r in col["route.targets"])
    for key in ("future.waypoints", "expert.waypoints"):
        assert all(len(w) == 12 for w in col[key])
    assert all(len(s) == 6 for s in col["expert.target_speeds"])
    valid = np.array(col["future.valid"])
    assert valid.min() >= 0 and valid.max() == 6 and valid[-1] == 0
    future = np.array(col["future.waypoints"], dtype=np.float64).reshape(-1, 6, 2)
    first = future[valid >= 1, 0]
    assert np.mean(first[:, 0] >= 0) > 0.9, "x is forward in the ego frame"
    assert np.isnan(future[valid == 0]).all(), "missing future waypoints are NaN"
    plan = np.array(col["expert.waypoints"]).reshape(-1, 6, 2)
    assert np.all(plan[:, -1, 0] >= plan[:, 0, 0] - 1e-3), "the plan goes forward"
    route = np.array(col["route.targets"]).reshape(-1, 5, 2)
    assert np.all(np.abs(route) < 200.0)
    for text in col["actors"]:
        for actor in json.loads(text):
            assert math.hypot(actor["x"], actor["y"]) <= 60.0 + 1e-6
            assert {"kind", "x", "y", "yaw", "length", "width", "speed"} <= set(actor)
    for text in col["expert.reason_object"]:
        assert isinstance(json.loads(text), dict)
    assert set(col["driver"]) == {"expert"}
    assert all(col["expert.reason"]) and all(col["expert.explanation"])


def test_every_documented_column_with_its_arrow_type_and_units(tiny_dataset):
    episodes = [
        json.loads(line) for line in (tiny_dataset / "meta/episodes.jsonl").read_text().splitlines()
    ]
    assert len(episodes) == TINY_EPISODES
    for ep in episodes:
        _check_shard_with_pyarrow_only(tiny_dataset / ep["file"], ep["n_frames"])
    # the independent list above is the schema of format.py
    assert set(DOCUMENTED) == set(feature_names(["front"]))


def test_perception_targets_match_the_recorded_frames(tiny_dataset):
    """The raster puts the ego on drivable ground and on its route; a recorded lead object is
    one of the recorded actors at about that distance (the functions themselves are tested on
    constructed scenes in tests/perception)."""
    grid = BevGrid()
    assert (len(CHANNELS), *grid.shape) == BEV_SHAPE
    ego_cell = (int(grid.ahead_m / grid.resolution_m), int(grid.half_width_m / grid.resolution_m))
    on_route = 0
    for ep in (json.loads(x) for x in (tiny_dataset / "meta/episodes.jsonl").read_text()
               .splitlines()):
        t = pq.read_table(tiny_dataset / ep["file"]).to_pydict()
        for k, data in enumerate(t["perception.bev"]):
            bev = unpack_bev(data, BEV_SHAPE)
            assert bev[0][ego_cell]  # drivable under the ego
            on_route += bool(bev[1][ego_cell])
            assert not bev[2][ego_cell]  # the ego is not among the other vehicles
            lead = t["perception.lead_distance"][k]
            assert math.isnan(lead) == math.isnan(t["perception.lead_speed"][k])
            assert math.isnan(lead) or 0.0 <= lead <= 60.0
            if lead < 50.0:  # (NaN: none; the actors column stops at 60 m from the centre)
                actors = json.loads(t["actors"][k])
                assert any(abs(math.hypot(a["x"], a["y"]) - lead) < 8.0 for a in actors)
            state, distance = t["perception.signal_state"][k], t["perception.signal_distance"][k]
            assert state in ("", "red", "yellow", "green")
            assert (state == "") == math.isnan(distance)
    frames = TINY_EPISODES * 40
    assert on_route > 0.95 * frames


def test_episode_lines_and_info_json(tiny_dataset):
    lines = (tiny_dataset / "meta/episodes.jsonl").read_text().splitlines()
    info = json.loads((tiny_dataset / "meta/info.json").read_text())
    ids = []
    for line in lines:
        ep = json.loads(line)
        assert set(EPISODE_FIELDS) <= set(ep)
        assert ep["config"]["instruction_split"] == "train"
        assert SEED_RANGES["train"][0] <= ep["seed"] <= SEED_RANGES["train"][1]
        assert ep["route_result"]["status"]
        assert sum(ep["instruction_kind_counts"].values()) == ep["n_frames"]
        assert ep["driver"] == "expert" and ep["beta"] == 1.0
        assert "numpy" in ep["versions"]
        ids.append(ep["episode_id"])
    assert info["schema_version"] == 2
    assert info["counts"]["episodes"] == TINY_EPISODES
    assert info["counts"]["frames"] == sum(json.loads(x)["n_frames"] for x in lines)
    assert info["cameras"][0]["name"] == "front" and info["cameras"][0]["width"] == 64
    assert info["control_hz"] == 10.0
    assert set(info["features"]) == set(feature_names(["front"]))
    assert info["features"]["ego.speed"]["unit"] == "m/s"
    assert {"versions", "hardware"} <= set(info["provenance"])
    splits = info["splits"]
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == sorted(ids)
    # route r's k-th episode: the suite's seed, then offset by k * (number of routes)
    by_id = sorted((json.loads(x)["episode_id"], json.loads(x)["seed"]) for x in lines)
    seeds = [seed for _, seed in by_id]
    assert seeds == [11, 12, 13, 14, 15, 16]


def test_future_waypoints_land_on_the_recorded_poses(tiny_dataset):
    shard = sorted((tiny_dataset / "data/chunk-000").glob("episode-*.parquet"))[1]
    t = pq.read_table(shard).to_pydict()
    x, y, yaw = np.array(t["ego.x"]), np.array(t["ego.y"]), np.array(t["ego.yaw"], np.float64)
    checked = 0
    for i in range(len(x)):
        wps = np.array(t["future.waypoints"][i], dtype=np.float64).reshape(6, 2)
        for k in range(t["future.valid"][i]):
            j = i + 5 * (k + 1)
            if j >= len(x):  # the final observation after the last frame is not a row
                continue
            c, s = math.cos(yaw[i]), math.sin(yaw[i])
            wx = x[i] + c * wps[k, 0] - s * wps[k, 1]
            wy = y[i] + s * wps[k, 0] + c * wps[k, 1]
            assert abs(wx - x[j]) < 1e-4 and abs(wy - y[j]) < 1e-4, (i, k)
            checked += 1
    assert checked > 50


def test_future_waypoints_helper_on_a_turning_path():
    # a car on a circle of radius 20 m at 1 rad/s... sampled at 10 Hz
    t = np.arange(0, 4.0, 0.1)
    poses = np.stack([20 * np.sin(t / 2), 20 * (1 - np.cos(t / 2)), t / 2], axis=1)
    wps, valid = future_waypoints(poses, len(poses) - 1, stride=5.0)
    assert valid[0] == 6 and valid[-1] == 0 and valid[len(poses) - 6] == 1
    # ahead and to the left in the ego frame, at the chord length
    assert np.all(wps[0, :, 0] > 0) and np.all(wps[0, :, 1] > 0)
    chord = 2 * 20 * np.sin(0.25 * np.arange(1, 7) / 2)  # 2 R sin(theta / 2)
    np.testing.assert_allclose(np.linalg.norm(wps[0], axis=1), chord, atol=1e-9)
    # fractional stride interpolates between poses
    wps_f, valid_f = future_waypoints(poses[:, :], 3, stride=2.5)
    assert valid_f[0] == 6 and np.isfinite(wps_f[0]).all()


def test_seed_rules():
    lo, hi = SEED_RANGES["train"]
    assert episode_seed(0, 0, 42, 3) == 42
    assert episode_seed(0, 2, 42, 3) == 48
    assert episode_seed(1, 1, hi, 3) == lo + 2  # wraps inside the train range
    assert episode_seed(2, 1, 5_000_000, 3) == lo + 5  # neither range: remapped into train
    with pytest.raises(ValueError, match="--allow-eval-seeds"):
        episode_seed(0, 0, SEED_RANGES["eval"][0], 3)
    assert episode_seed(0, 1, SEED_RANGES["eval"][0], 3, allow_eval=True) == (
        SEED_RANGES["eval"][0] + 3
    )
    # the validation range is held out too, and wraps inside itself when allowed
    with pytest.raises(ValueError, match=r"held-out val range.*--allow-eval-seeds"):
        episode_seed(0, 0, SEED_RANGES["val"][0], 3)
    v_lo, v_hi = SEED_RANGES["val"]
    assert episode_seed(0, 1, v_hi, 3, allow_eval=True) == v_lo + 2


def test_eval_suites_are_refused_and_train_phrasings_forced(tmp_path):
    with pytest.raises(ValueError, match="eval range.*--allow-eval-seeds"):
        plan_collection(CollectConfig(suite="smoke", episodes=2, out=str(tmp_path / "x")))
    with pytest.raises(ValueError, match="val range.*--allow-eval-seeds"):
        plan_collection(CollectConfig(suite="val", episodes=2, out=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()
    plan = plan_collection(
        CollectConfig(suite="standard", episodes=2, out=str(tmp_path), allow_eval_seeds=True)
    )
    assert plan.jobs[0].seed == SEED_RANGES["eval"][0]
    # the standard suite renders held-out phrasings; a collection uses the train ones
    assert all(j.sim_config["instruction_split"] == "train" for j in plan.jobs)


def test_a_different_configuration_in_the_same_dir_is_refused(tiny_copy):
    before = (tiny_copy / "meta/info.json").read_text()
    with pytest.raises(ValueError, match="another configuration.*jpeg_quality"):
        collect(
            CollectConfig(
                suite=str(TINY_SUITE),
                episodes=TINY_EPISODES,
                out=str(tiny_copy),
                jpeg_quality=50,
                show_progress=False,
            )
        )
    assert (tiny_copy / "meta/info.json").read_text() == before


def test_shipped_train_suite_matches_the_generator_and_uses_train_seeds():
    suite = load_suite("train")
    assert suite.routes == generate_suite("train", "train", 10, instruction_split="train",
                                          geometry="train").routes
    lo, hi = SEED_RANGES["train"]
    assert all(lo <= r.seed <= hi for r in suite.routes)
    assert all(r.config.get("instruction_split") == "train" for r in suite.routes)
    assert all(r.config.get("geometry") == "train" for r in suite.routes)


def test_dagger_records_both_drivers_and_expert_labels_everywhere(tmp_path):
    suite = yaml.safe_load(TINY_SUITE.read_text())
    suite["routes"] = suite["routes"][1:2]
    suite["routes"][0]["config"]["max_steps"] = 60
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "dagger"
    collect(
        CollectConfig(
            suite=str(path),
            episodes=1,
            out=str(out),
            workers=0,
            policy="lane_keep",
            beta=0.5,
            show_progress=False,
        )
    )
    (ep,) = [json.loads(x) for x in (out / "meta/episodes.jsonl").read_text().splitlines()]
    assert ep["driver"] == "lane_keep" and ep["beta"] == 0.5
    t = pq.read_table(out / ep["file"]).to_pydict()
    drivers = t["driver"]
    assert set(drivers) == {"expert", "lane_keep"}
    assert 0.25 < drivers.count("expert") / len(drivers) < 0.75
    assert all(t["expert.reason"]) and all(t["expert.meta_action"])
    assert all(t["expert.explanation"])
    assert np.isfinite(np.array(t["expert.waypoints"])).all()
    info = json.loads((out / "meta/info.json").read_text())
    assert info["collection"]["config"]["policy"] == "lane_keep"


def test_features_table_is_consistent():
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    assert "image.<camera>" in names
