"""``drivevla eval open-loop`` on our own nuScenes export of the tiny expert collection
(tests/conftest.py's ``tiny_dataset``), read through the real nuscenes-devkit."""

from __future__ import annotations

import json
import math
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from drivevla.benchmarks.open_loop import (
    RECORDS_FILE,
    OpenLoopRunError,
    run_open_loop,
    six_waypoints,
)
from drivevla.benchmarks.open_loop_baselines import constant_velocity_yaw_rate
from drivevla.benchmarks.open_loop_metrics import offroad_steps
from drivevla.cli import main as cli_main
from drivevla.core.errors import DriveVLAError
from drivevla.core.types import Decision
from drivevla.datasets.nuscenes_openloop import (
    NuScenesInputError,
    logged_target_points,
    open_openloop_source,
)
from support.export_parts import save_tiny_checkpoint
from support.vla_parts import TINY

pytest.importorskip(
    "nuscenes.nuscenes",
    reason="nuscenes-devkit is not installed; install it with `pip install --no-deps "
    "nuscenes-devkit==1.2.0` and `pip install opencv-python-headless scikit-learn "
    "pyquaternion cachetools` (see docs/nuscenes.md)",
)

VERSION = "v1.0-drivevla"


def _eval(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main(["eval", "open-loop", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _row(summary: dict, name: str) -> dict:
    return next(r for r in summary["rows"] if r["name"] == name)


def test_expert_log_replay_and_baselines(nuscenes_export, tmp_path, capsys):
    out = tmp_path / "expert"
    code, printed, _ = _eval(["--policy", "expert", "--dataroot", str(nuscenes_export), "--version",
                              VERSION, "--out", str(out)], capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_keyframes"] == 48 and summary["n_scored"] == 12
    assert summary["excluded"] == {"incomplete_future": 36}
    expert = _row(summary, "expert (log replay)")
    for conv in ("stp3", "uniad"):
        assert expert["l2_m"][conv] == pytest.approx({"1s": 0, "2s": 0, "3s": 0, "avg": 0})
        assert expert["collision_rate"][conv]["avg"] == 0.0
    cv = _row(summary, "constant velocity")
    # the expert accelerates from its start speed, so constant velocity lags behind it
    assert cv["l2_m"]["stp3"]["3s"] > 0.5
    # UniAD's value at 3 s exceeds ST-P3's mean up to 3 s for a growing error
    assert cv["l2_m"]["uniad"]["3s"] > cv["l2_m"]["stp3"]["3s"]
    assert [r["kind"] for r in summary["rows"]] == ["baseline"] * 3 + ["policy"]
    assert summary["provenance"]["versions"]["numpy"]
    assert len((out / RECORDS_FILE).read_text().splitlines()) == 12
    # the table: both conventions labelled, baselines above the policy, the caveat
    assert "ST-P3/VAD" in printed and "UniAD" in printed
    assert printed.index("constant velocity") < printed.index("expert (log replay)")
    assert "camera" in summary["caveat"] and "sim domain" in summary["caveat"]


def test_drivevla_tiny_on_a_handful_and_resume(nuscenes_export, tmp_path, capsys):
    out = tmp_path / "tiny"
    argv = ["--policy", "drivevla-tiny", "--dataroot", str(nuscenes_export), "--version", VERSION,
            "--out", str(out), "--max-samples", "3", "--threads", "1"]
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    assert _eval(argv, capsys)[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["torch_threads"] == 1 and torch.get_num_threads() == before
    tiny = _row(summary, "drivevla-tiny")
    assert tiny["n"] == 3 and math.isfinite(tiny["l2_m"]["stp3"]["avg"])
    assert "front" in tiny["inputs"]
    # a half-written last line is dropped and rescored; two more samples with a larger cap
    records = out / RECORDS_FILE
    records.write_text(records.read_text() + '{"sample_token": "trunc')
    argv[argv.index("--max-samples") + 1] = "5"
    assert _eval(argv, capsys)[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["samples_scored_now"] == 2 and summary["n_scored"] == 5
    assert len(records.read_text().splitlines()) == 5
    # another policy into the same folder is refused
    with pytest.raises(OpenLoopRunError, match="another"):
        run_open_loop("expert", open_openloop_source(nuscenes_export, VERSION), out,
                      print_table=False)


def test_bad_dataroot_version_split_and_table(nuscenes_export, tmp_path, capsys):
    code, _, err = _eval(["--policy", "expert", "--dataroot", str(tmp_path / "nope"),
                          "--version", VERSION, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    code, _, err = _eval(["--policy", "expert", "--dataroot", str(nuscenes_export), "--version",
                          "v1.0-mini", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "v1.0-mini" in err and VERSION in err  # names what is there
    with pytest.raises(NuScenesInputError, match="unknown split 'bogus'.*train"):
        open_openloop_source(nuscenes_export, VERSION, "bogus")
    with pytest.raises(NuScenesInputError, match="split 'val' has 0 scene"):  # all in train
        open_openloop_source(nuscenes_export, VERSION, "val")
    broken = tmp_path / "broken"
    shutil.copytree(nuscenes_export, broken)
    (broken / VERSION / "sample.json").write_text('[{"token": "a", ')
    with pytest.raises(NuScenesInputError, match="sample.json") as info:
        open_openloop_source(broken, VERSION)
    assert isinstance(info.value, DriveVLAError)
    # valid JSON, but a sample_data record names a calibrated sensor no table has
    shutil.copy(nuscenes_export / VERSION / "sample.json", broken / VERSION / "sample.json")
    records = json.loads((broken / VERSION / "sample_data.json").read_text())
    records[0]["calibrated_sensor_token"] = "0" * 32
    (broken / VERSION / "sample_data.json").write_text(json.dumps(records))
    code, _, err = _eval(["--policy", "expert", "--dataroot", str(broken), "--version",
                          VERSION, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "0" * 32 in err and len(err.strip().splitlines()) == 1


def _damage(nuscenes_export: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy whose first full-future keyframe has CAM_BACK instead of CAM_FRONT and whose
    second has a truncated image; returns it and those two sample tokens."""
    root = tmp_path / "damaged"
    shutil.copytree(nuscenes_export, root)
    eligible = [s for s in open_openloop_source(nuscenes_export, VERSION).samples
                if s.future_valid.all()]
    first, second = eligible[0], eligible[1]
    tables = root / VERSION
    sensors = json.loads((tables / "sensor.json").read_text())
    calibs = json.loads((tables / "calibrated_sensor.json").read_text())
    records = json.loads((tables / "sample_data.json").read_text())
    back = {"token": uuid.uuid4().hex, "channel": "CAM_BACK", "modality": "camera"}
    by_token = {r["token"]: r for r in records}
    front_sd = by_token[first.channels["CAM_FRONT"]]
    calib = dict(next(c for c in calibs if c["token"] == front_sd["calibrated_sensor_token"]),
                 token=uuid.uuid4().hex, sensor_token=back["token"])
    front_sd["calibrated_sensor_token"] = calib["token"]
    for name, rows in (("sensor", [*sensors, back]), ("calibrated_sensor", [*calibs, calib]),
                       ("sample_data", records)):
        (tables / f"{name}.json").write_text(json.dumps(rows))
    image = root / by_token[second.channels["CAM_FRONT"]]["filename"]
    image.write_bytes(image.read_bytes()[:40])
    return root, [first.sample_token, second.sample_token]


def test_missing_camera_and_bad_image_stop_or_are_skipped(nuscenes_export, tmp_path, capsys,
                                                          tiny_checkpoint):
    root, (no_front, bad_jpeg) = _damage(nuscenes_export, tmp_path)
    argv = ["--policy", str(tiny_checkpoint), "--dataroot", str(root), "--version", VERSION,
            "--max-samples", "4", "--no-baselines"]
    code, _, err = _eval([*argv, "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and no_front in err and "CAM_FRONT" in err
    code, printed, _ = _eval([*argv, "--out", str(tmp_path / "b"), "--skip-bad"], capsys)
    assert code == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["n_scored"] == 2
    assert summary["excluded"]["missing_camera:CAM_FRONT"] == 1
    assert summary["excluded"]["unreadable_image:CAM_FRONT"] == 1
    assert [s["sample_token"] for s in summary["skipped"]] == [no_front, bad_jpeg]
    assert "skipped (--skip-bad): 2" in printed and no_front in printed
    # camera-free planners need no image: the expert scores all 4
    code, _, _ = _eval(["--policy", "expert", "--dataroot", str(root), "--version", VERSION,
                        "--max-samples", "4", "--out", str(tmp_path / "c")], capsys)
    assert code == 0


def test_decision_resampling_and_ctrv_by_hand():
    # 0.25 s steps at 4 m/s straight: the 0.5 s points are every second one
    wps = np.stack([np.arange(1, 13) * 1.0, np.zeros(12)], 1)
    six = six_waypoints(Decision(wps, np.full(12, 4.0), dt_s=0.25))
    np.testing.assert_allclose(six[:, 0], [2, 4, 6, 8, 10, 12])

    class Sample:
        class ego:  # noqa: N801 - a stand-in for EgoState
            speed_mps, yaw_rate_rps = 10.0, 0.5

    # x = v/w sin(w t) = 20 sin(1.5) = 19.950, y = 20 (1 - cos 1.5) = 18.585 at t = 3 s
    assert constant_velocity_yaw_rate(Sample)[-1] == pytest.approx([19.950, 18.585], abs=1e-3)


def _as_real_layout(nuscenes_export: Path, tmp_path: Path) -> Path:
    """A copy laid out as real nuScenes: no drivevla_export.json, and a LIDAR_TOP keyframe
    per sample (the pose channel real nuScenes has; its own prev/next chain per scene)."""
    root = tmp_path / "real"
    shutil.copytree(nuscenes_export, root)
    (root / "drivevla_export.json").unlink()
    tables = root / VERSION
    load = lambda name: json.loads((tables / f"{name}.json").read_text())  # noqa: E731
    sensors, calibs, records = load("sensor"), load("calibrated_sensor"), load("sample_data")
    samples, scenes = {s["token"]: s for s in load("sample")}, load("scene")
    lidar = {"token": uuid.uuid4().hex, "channel": "LIDAR_TOP", "modality": "lidar"}
    calib = {"token": uuid.uuid4().hex, "sensor_token": lidar["token"],
             "translation": [0.94, 0.0, 1.84], "rotation": [0.707, 0.0, 0.0, 0.707],
             "camera_intrinsic": []}
    front = {r["sample_token"]: r for r in records if r["is_key_frame"]
             and r["calibrated_sensor_token"] in {c["token"] for c in calibs}}
    for scene in scenes:
        token, chain = scene["first_sample_token"], []
        while token:
            cam = front[token]
            chain.append({"token": uuid.uuid4().hex, "sample_token": token,
                          "ego_pose_token": cam["ego_pose_token"],
                          "calibrated_sensor_token": calib["token"],
                          "timestamp": cam["timestamp"], "fileformat": "pcd",
                          "is_key_frame": True, "height": 0, "width": 0,
                          "filename": f"samples/LIDAR_TOP/{token}.pcd.bin"})
            token = samples[token]["next"]
        for i, rec in enumerate(chain):
            rec["prev"] = chain[i - 1]["token"] if i else ""
            rec["next"] = chain[i + 1]["token"] if i + 1 < len(chain) else ""
        records += chain
    for name, rows in (("sensor", [*sensors, lidar]), ("calibrated_sensor", [*calibs, calib]),
                       ("sample_data", records)):
        (tables / f"{name}.json").write_text(json.dumps(rows))
    return root


def test_the_same_command_on_a_real_nuscenes_layout(nuscenes_export, tmp_path, capsys,
                                                    tiny_checkpoint):
    root = _as_real_layout(nuscenes_export, tmp_path)
    source = open_openloop_source(root, VERSION)
    assert {"LIDAR_TOP", "CAM_FRONT"} <= set(source.samples[0].channels)
    argv = ["--dataroot", str(root), "--version", VERSION, "--max-samples", "3"]
    assert _eval(["--policy", str(tiny_checkpoint), *argv, "--out", str(tmp_path / "o")],
                 capsys)[0] == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["data"]["drivevla_export"] is False
    assert summary["ego_box"]["forward_offset_m"] == 0.5  # rear-axle pose: ST-P3's offset
    assert summary["n_scored"] == 3 and _row(summary, "log replay")["l2_m"]["stp3"]["avg"] == 0
    # the splits are nuScenes' own: 'val' names scene-NNNN, none of which is here
    code, _, err = _eval(["--policy", "expert", *argv, "--split", "val", "--out",
                          str(tmp_path / "v")], capsys)
    assert code == 2 and "split 'val'" in err


def _sample_with_future(future: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(future_waypoints=np.asarray(future, np.float64))


def test_logged_target_points_follow_the_future_then_go_straight():
    straight = _sample_with_future([[2.0 * i, 0.0] for i in range(1, 7)])  # 12 m along x
    assert logged_target_points(straight, 4, 5.0) == pytest.approx(
        np.array([[5, 0], [10, 0], [15, 0], [20, 0]]))
    # a left turn: 6 m along x, then 6 m along y; past the end, straight on along +y
    turn = _sample_with_future([[2, 0], [4, 0], [6, 0], [6, 2], [6, 4], [6, 6]])
    assert logged_target_points(turn, 3, 5.0) == pytest.approx(
        np.array([[5, 0], [6, 4], [6, 9]]))
    standing = _sample_with_future(np.zeros((6, 2)))
    assert logged_target_points(standing, 2, 10.0) == pytest.approx(
        np.array([[10, 0], [20, 0]]))


def test_target_point_mode(nuscenes_export, tmp_path, capsys):
    ckpt = save_tiny_checkpoint(tmp_path / "tp", seed=2)  # a target-point checkpoint
    base = ["--dataroot", str(nuscenes_export), "--version", VERSION, "--max-samples", "2",
            "--no-baselines"]
    code, printed, _ = _eval(["--policy", str(ckpt), "--out", str(tmp_path / "a"), *base],
                             capsys)
    assert code == 0
    row = _row(json.loads((tmp_path / "a" / "summary.json").read_text()), str(ckpt))
    assert row["n"] == 2 and "target points from the logged future" in row["inputs"]
    assert "not comparable with command-only" in printed
    # a mode the policy does not navigate by is refused, naming both
    code, _, err = _eval(["--policy", str(ckpt), "--mode", "language", "--out",
                          str(tmp_path / "b"), *base], capsys)
    assert code == 2 and "navigation_mode target_point" in err
    code, _, err = _eval(["--policy", "drivevla-tiny", "--mode", "target_point", "--out",
                          str(tmp_path / "c"), *base], capsys)
    assert code == 2 and "navigation_mode language" in err


SIX = ("front", "front_left", "front_right", "back", "back_left", "back_right")


def _add_cameras(root: Path) -> dict[str, int]:
    """Five more camera channels beside CAM_FRONT (nuScenes' names), each keyframe's image
    a flat grey of the channel's own level; returns the level per camera name."""
    tables = root / VERSION
    load = lambda name: json.loads((tables / f"{name}.json").read_text())  # noqa: E731
    sensors, calibs, records = load("sensor"), load("calibrated_sensor"), load("sample_data")
    front_sensor = next(s for s in sensors if s["channel"] == "CAM_FRONT")
    front_calib = next(c for c in calibs if c["sensor_token"] == front_sensor["token"])
    front = [r for r in records if r["calibrated_sensor_token"] == front_calib["token"]
             and r["is_key_frame"]]
    levels = {"front": None}
    for i, name in enumerate(SIX[1:]):
        channel = "CAM_" + name.upper()
        sensor = {"token": uuid.uuid4().hex, "channel": channel, "modality": "camera"}
        calib = dict(front_calib, token=uuid.uuid4().hex, sensor_token=sensor["token"])
        sensors.append(sensor)
        calibs.append(calib)
        levels[name] = 40 * (i + 1)
        (root / "samples" / channel).mkdir(parents=True, exist_ok=True)
        for rec in front:
            filename = f"samples/{channel}/{rec['token']}.jpg"
            Image.new("RGB", (rec["width"], rec["height"]), (levels[name],) * 3).save(
                root / filename, quality=95)
            records.append(dict(rec, token=uuid.uuid4().hex, calibrated_sensor_token=calib[
                "token"], filename=filename, prev="", next=""))
    for name, rows in (("sensor", sensors), ("calibrated_sensor", calibs),
                       ("sample_data", records)):
        (tables / f"{name}.json").write_text(json.dumps(rows))
    return levels


def test_six_cameras_are_read_from_their_own_channels(nuscenes_export, tmp_path, capsys):
    root = tmp_path / "six"
    shutil.copytree(nuscenes_export, root)
    levels = _add_cameras(root)
    source = open_openloop_source(root, VERSION)
    sample = next(s for s in source.samples if bool(np.all(s.future_valid)))
    obs = source.observation(sample, SIX)
    assert sorted(obs.images) == sorted(SIX) and sorted(obs.cameras) == sorted(SIX)
    for name in SIX[1:]:
        assert abs(float(obs.images[name].mean()) - levels[name]) < 2.0, name
    assert float(np.abs(obs.images["front"].astype(float) - levels["back"]).mean()) > 2.0
    # a six-camera checkpoint scores on it end to end
    ckpt = save_tiny_checkpoint(tmp_path / "six-ckpt", settings={**TINY,
                                                                 "model.cameras": list(SIX)})
    code, _, _ = _eval(["--policy", str(ckpt), "--dataroot", str(root), "--version", VERSION,
                        "--max-samples", "2", "--no-baselines", "--out", str(tmp_path / "o")],
                       capsys)
    assert code == 0
    row = _row(json.loads((tmp_path / "o" / "summary.json").read_text()), str(ckpt))
    assert row["n"] == 2 and "+".join(SIX) in row["inputs"]


def test_offroad_flags_flip_at_the_drivable_edge():
    # a drivable band |y| <= 2 m; the ego box is 1.85 m wide (0.925 m each side)
    def band(points):
        return np.abs(points[:, 1]) <= 2.0

    along = np.array([[5.0 * (k + 1), 0.0] for k in range(6)])
    assert not offroad_steps(along, band).any()
    inside, outside = along.copy(), along.copy()
    inside[:, 1], outside[:, 1] = 1.0, 1.2  # box edges at 1.925 m and 2.125 m
    assert not offroad_steps(inside, band)[1:].any()  # step 0 heads diagonally from the origin
    assert offroad_steps(outside, band)[1:].all()


def test_off_drivable_area_from_the_exports_map(nuscenes_export, tmp_path, capsys):
    source = open_openloop_source(nuscenes_export, VERSION)
    sample = next(s for s in source.samples if bool(np.all(s.future_valid)))
    on = source.on_drivable(sample)
    # the logged ego position is on the road; a point 1 km to its left is not
    assert on(np.array([[0.0, 0.0], [0.0, 1000.0]])).tolist() == [True, False]
    code, printed, _ = _eval(["--policy", "expert", "--dataroot", str(nuscenes_export),
                              "--version", VERSION, "--out", str(tmp_path / "o")], capsys)
    assert code == 0 and "off drivable area (%)" in printed
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["samples_where_log_is_off_road"] == 0
    for row in summary["rows"]:
        assert set(row["off_road_rate"]) == {"stp3", "uniad"}
    assert _row(summary, "expert (log replay)")["off_road_rate"]["uniad"]["avg"] == 0.0
