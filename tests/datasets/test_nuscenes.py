"""nuScenes export and import, round-tripped through the real nuscenes-devkit.

The dataset is built here directly with pyarrow, following drivevla.datasets.format, so these
tests do not depend on the collection code.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from drivevla.cli import main as cli_main
from drivevla.core.frames import ego_to_camera_rotation, world_to_ego, wrap_angle
from drivevla.core.types import CameraSpec, HighLevelCommand
from drivevla.datasets.format import (
    EPISODES_PATH,
    FUTURE_STEPS,
    CorruptDataError,
)
from drivevla.datasets.nuscenes_export import (
    NUSCENES_TABLES,
    cameras_from_info,
    export_nuscenes,
    keyframe_stride,
    quaternion_from_matrix,
)
from drivevla.datasets.nuscenes_import import (
    AgentBoxes,
    command_from_waypoints,
    load_nuscenes_openloop,
)
from drivevla.perception.camera_model import project_world_points
from support.nuscenes_dataset import (
    CAMERAS,
    EPISODES,
    HZ,
    N_FRAMES,
    SPEED,
    build_dataset,
    future_positions,
)

DEVKIT_REASON = (
    "nuscenes-devkit is not installed; install it with `pip install --no-deps "
    "nuscenes-devkit==1.2.0` and `pip install opencv-python-headless scikit-learn "
    "pyquaternion cachetools` (see docs/nuscenes.md)"
)
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("nusc")
    truth = build_dataset(root / "dataset")
    out = export_nuscenes(root / "dataset", root / "export", "v1.0-test")
    return root, out, truth


@pytest.fixture(scope="module")
def nusc(exported):
    pytest.importorskip("nuscenes", reason=DEVKIT_REASON)
    from nuscenes.nuscenes import NuScenes

    return NuScenes(version="v1.0-test", dataroot=str(exported[1]), verbose=False)


@pytest.fixture(scope="module")
def samples(exported, nusc):
    return load_nuscenes_openloop(exported[1], "v1.0-test", nusc=nusc)


def _offset(nusc, scene_name: str) -> np.ndarray:
    scene = next(s for s in nusc.scene if s["name"] == scene_name)
    log = nusc.get("log", scene["log_token"])
    return np.array(nusc.get("map", log["map_token"])["drivevla_world_offset_m"])


# --------------------------------------------------------------------------------------
# export


def test_export_loads_with_the_devkit(exported, nusc):
    _, out, _ = exported
    keyframes = len(range(0, N_FRAMES, keyframe_stride(HZ)))
    assert keyframes == 8
    assert sorted(s["name"] for s in nusc.scene) == sorted(EPISODES)
    assert len(nusc.sample) == keyframes * len(EPISODES)
    assert all(s["nbr_samples"] == keyframes for s in nusc.scene)
    assert len(nusc.sample_data) == N_FRAMES * len(EPISODES) * len(CAMERAS)  # with sweeps
    assert sum(sd["is_key_frame"] for sd in nusc.sample_data) == len(nusc.sample) * len(CAMERAS)
    assert sorted(s["channel"] for s in nusc.sensor) == ["CAM_FRONT", "CAM_FRONT_LEFT"]
    assert len(nusc.calibrated_sensor) == len(CAMERAS) * len(EPISODES)
    assert len(nusc.log) == len(EPISODES) and len(nusc.map) == 2  # two locations
    for rec in nusc.map:
        assert (out / rec["filename"]).is_file()
        assert rec["mask"].mask().shape[0] > 100
    for sample in nusc.sample:
        assert set(sample["data"]) == {"CAM_FRONT", "CAM_FRONT_LEFT"}
        sd = nusc.get("sample_data", sample["data"]["CAM_FRONT"])
        assert sd["filename"].startswith("samples/CAM_FRONT/") and sd["is_key_frame"]
        assert sd["timestamp"] == sample["timestamp"]
        path = Path(nusc.get_sample_data_path(sd["token"]))
        from PIL import Image

        with Image.open(path) as im:
            assert im.size == (64, 48) and im.format == "JPEG"
    for sd in nusc.sample_data:
        assert (out / sd["filename"]).is_file()
        assert len(sd["token"]) == 32
    manifest = json.loads((out / "drivevla_export.json").read_text())
    assert manifest["keyframe_stride"] == 5 and manifest["splits"]["val"] == ["ep-b"]


def test_export_is_deterministic(exported, tmp_path):
    root, out, _ = exported
    again = export_nuscenes(root / "dataset", tmp_path / "again", "v1.0-test")
    for table in NUSCENES_TABLES:
        assert (again / "v1.0-test" / f"{table}.json").read_bytes() == (
            out / "v1.0-test" / f"{table}.json"
        ).read_bytes(), table
    with pytest.raises(FileExistsError, match="v1.0-test"):
        export_nuscenes(root / "dataset", tmp_path / "again", "v1.0-test")
    export_nuscenes(root / "dataset", tmp_path / "again", "v1.0-test", overwrite=True)


def test_camera_calibration_agrees_with_our_camera_model(exported, nusc):
    from nuscenes.utils.geometry_utils import view_points
    from pyquaternion import Quaternion

    _, _, truth = exported
    for sample in nusc.sample[:3] + nusc.sample[-3:]:
        scene = nusc.get("scene", sample["scene_token"])
        offset = _offset(nusc, scene["name"])
        for cam, raw in CAMERAS.items():
            spec = CameraSpec(name=cam, **raw)
            sd = nusc.get("sample_data", sample["data"]["CAM_" + cam.upper()])
            pose = nusc.get("ego_pose", sd["ego_pose_token"])
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            ego_xy = np.array(pose["translation"][:2]) - offset
            ego_yaw = Quaternion(pose["rotation"]).yaw_pitch_roll[0]
            # points 10-20 m out along the camera's optical axis, a little off-centre
            axis = math.radians(spec.yaw_deg) + ego_yaw
            pts = np.array(
                [
                    [ego_xy[0] + d * math.cos(axis) + o, ego_xy[1] + d * math.sin(axis) - o, h]
                    for d, o, h in ((10.0, 0.5, 1.0), (15.0, -1.0, 0.2), (20.0, 2.0, 2.5))
                ]
            )
            ours, depth = project_world_points(spec, *ego_xy, ego_yaw, pts)
            assert (depth > 1.0).all()
            g = (pts + np.array([*offset, 0.0])).T  # devkit: global -> ego -> camera -> pixels
            g = g - np.array(pose["translation"])[:, None]
            g = Quaternion(pose["rotation"]).inverse.rotation_matrix @ g
            g = g - np.array(cs["translation"])[:, None]
            g = Quaternion(cs["rotation"]).inverse.rotation_matrix @ g
            theirs = view_points(g, np.array(cs["camera_intrinsic"]), normalize=True)[:2].T
            np.testing.assert_allclose(theirs, ours, atol=1e-6)


def test_quaternion_from_matrix_matches_pyquaternion():
    pyq = pytest.importorskip("pyquaternion", reason=DEVKIT_REASON)
    rng = np.random.default_rng(0)
    for _ in range(50):
        yaw, pitch, roll = rng.uniform(-math.pi, math.pi, 3)
        rot = ego_to_camera_rotation(yaw, pitch, roll).T
        q = pyq.Quaternion(quaternion_from_matrix(rot))
        np.testing.assert_allclose(q.rotation_matrix, rot, atol=1e-12)


def test_annotations_and_instances(exported, nusc):
    _, _, truth = exported
    assert sorted(c["name"] for c in nusc.category) == ["human.pedestrian.adult", "vehicle.car"]
    assert len(nusc.instance) == 2 * len(EPISODES)  # ids for ep-a, nearest matching for ep-b
    assert all(inst["nbr_annotations"] == 8 for inst in nusc.instance)
    for scene in nusc.scene:
        offset = _offset(nusc, scene["name"])
        actors = truth[scene["name"]]["actors"]
        sample = nusc.get("sample", scene["first_sample_token"])
        k = 0
        while True:
            anns = [nusc.get("sample_annotation", t) for t in sample["anns"]]
            assert sorted(a["category_name"] for a in anns) == [
                "human.pedestrian.adult",
                "vehicle.car",
            ]
            for kind, _, (ax, ay, ayaw, _), length, width in actors[k]:
                cat = "vehicle.car" if kind == "vehicle" else "human.pedestrian.adult"
                ann = next(a for a in anns if a["category_name"] == cat)
                np.testing.assert_allclose(ann["translation"][:2], [ax, ay] + offset, atol=1e-6)
                assert ann["size"][:2] == pytest.approx([width, length])
                assert ann["translation"][2] == pytest.approx(ann["size"][2] / 2)
                box = nusc.get_box(ann["token"])
                assert wrap_angle(box.orientation.yaw_pitch_roll[0] - ayaw) == pytest.approx(
                    0.0, abs=1e-6
                )
            if not sample["next"]:
                break
            sample, k = nusc.get("sample", sample["next"]), k + 5
    car = next(a for a in nusc.sample_annotation if a["category_name"] == "vehicle.car")
    assert np.linalg.norm(nusc.box_velocity(car["token"])[:2]) == pytest.approx(6.0, abs=1e-3)


def test_map_masks(exported, nusc):
    _, _, truth = exported
    for scene in nusc.scene:
        log = nusc.get("log", scene["log_token"])
        rec = nusc.get("map", log["map_token"])
        offset = np.array(rec["drivevla_world_offset_m"])
        mask = rec["mask"]
        if log["location"] == "highway":  # rasterised from the family's real lanes
            assert rec["drivevla_source"] == "lanes"
            on = np.array([[50.0, 0.0], [500.0, 3.5], [900.0, 7.0]]) + offset
            off = np.array([[500.0, 20.0], [500.0, -10.0]]) + offset
        else:  # unknown family: the ego's swept corridor
            assert rec["drivevla_source"] == "ego_corridor"
            poses = truth[scene["name"]]["poses"]
            on = poses[:, :2] + offset
            normal = np.stack([-np.sin(poses[:, 2]), np.cos(poses[:, 2])], 1)
            off = on + 15.0 * normal
        assert mask.is_on_mask(on[:, 0], on[:, 1]).all()
        assert not mask.is_on_mask(off[:, 0], off[:, 1]).any()
        assert (offset >= 0).all() or (on > 0).all()


# --------------------------------------------------------------------------------------
# import


def test_import_round_trip(exported, samples):
    _, _, truth = exported
    assert len(samples) == 8 * len(EPISODES)
    assert [s.scene_name for s in samples] == ["ep-a"] * 8 + ["ep-b"] * 8
    for s in samples:
        poses = truth[s.scene_name]["poses"]
        i = 5 * s.index_in_scene
        expected, n_valid = future_positions(poses, i)
        assert s.future_valid.sum() == n_valid == min(FUTURE_STEPS, 7 - s.index_in_scene)
        assert s.future_valid[:n_valid].all()
        # within 1 cm of the trajectory computed from our world poses, and of future.waypoints
        np.testing.assert_allclose(s.future_waypoints[:n_valid], expected[:n_valid], atol=0.01)
        column = np.array(truth[s.scene_name]["rows"]["future.waypoints"][i]).reshape(-1, 2)
        np.testing.assert_allclose(s.future_waypoints[:n_valid], column[:n_valid], atol=0.01)
        assert s.command == command_from_waypoints(expected, np.arange(6) < n_valid)
        assert s.image_path.is_file() and s.image_size == (64, 48)
        np.testing.assert_allclose(
            s.camera_intrinsic, CameraSpec(**CAMERAS["front"]).intrinsics, atol=1e-9
        )
        assert s.ego.speed_mps == pytest.approx(SPEED, abs=0.05)
        rate = EPISODES[s.scene_name][4]
        assert s.ego.yaw_rate_rps == pytest.approx(rate(i / HZ - 0.05), abs=0.02)
        assert abs(s.ego.accel_mps2) < 0.1
        # boxes: the car and the pedestrian, in this sample's ego frame
        assert sorted(s.boxes.kind) == ["pedestrian", "vehicle"]
        ex, ey, eyaw = poses[i]
        for kind, _, (ax, ay, ayaw, _), length, width in truth[s.scene_name]["actors"][i]:
            b = s.boxes.select(kind)
            rel = world_to_ego(np.array([ax, ay]), np.array([ex, ey]), eyaw)
            np.testing.assert_allclose(b.xy[0], rel, atol=0.01)
            assert wrap_angle(b.yaw[0] - (ayaw - eyaw)) == pytest.approx(0.0, abs=1e-6)
            np.testing.assert_allclose(b.size[0, :2], [length, width])
            assert b.footprints().shape == (1, 4, 2)
        # future occupancy in the current ego frame
        fb = s.future_boxes()
        assert len(fb) == FUTURE_STEPS
        for k in range(FUTURE_STEPS):
            assert len(fb[k]) == (2 if s.future_valid[k] else 0)
        if s.future_valid[0]:
            car = truth[s.scene_name]["actors"][i + 5][0][2]
            rel = world_to_ego(np.array(car[:2]), np.array([ex, ey]), eyaw)
            np.testing.assert_allclose(fb[0].select("vehicle").xy[0], rel, atol=0.01)
    by = {(s.scene_name, s.index_in_scene): s.command for s in samples}
    assert by["ep-a", 0] == HighLevelCommand.STRAIGHT
    assert by["ep-a", 1] == HighLevelCommand.LEFT
    assert by["ep-b", 0] == HighLevelCommand.RIGHT


def test_import_is_deterministic_and_filters_scenes(exported, nusc, samples):
    again = load_nuscenes_openloop(exported[1], "v1.0-test")  # opens its own NuScenes
    assert [s.sample_token for s in again] == [s.sample_token for s in samples]
    only_b = load_nuscenes_openloop(exported[1], "v1.0-test", scenes=["ep-b"], nusc=nusc)
    assert {s.scene_name for s in only_b} == {"ep-b"} and len(only_b) == 8
    vehicles = load_nuscenes_openloop(exported[1], "v1.0-test", kinds=("vehicle",), nusc=nusc)
    assert all(v.boxes.kind == ("vehicle",) for v in vehicles)
    with pytest.raises(ValueError, match="scene"):
        load_nuscenes_openloop(exported[1], "v1.0-test", scenes=["nope"], nusc=nusc)
    with pytest.raises(ValueError, match="CAM_BACK"):
        load_nuscenes_openloop(exported[1], "v1.0-test", camera="CAM_BACK", nusc=nusc)


def test_import_prefers_lidar_top_ego_poses(exported, nusc, tmp_path):
    """Real nuScenes samples carry LIDAR_TOP; its ego poses define the sample's pose."""
    copy = tmp_path / "copy"
    shutil.copytree(exported[1], copy)
    tdir = copy / "v1.0-test"
    load = lambda name: json.loads((tdir / f"{name}.json").read_text())  # noqa: E731
    sensors, calibs, poses, sds = (
        load(t) for t in ("sensor", "calibrated_sensor", "ego_pose", "sample_data")
    )
    sensors.append({"token": "lidar", "channel": "LIDAR_TOP", "modality": "lidar"})
    calibs.append(
        {
            "token": "lidar-cs",
            "sensor_token": "lidar",
            "translation": [0.9, 0, 1.8],
            "rotation": [0.7071068, 0, 0, -0.7071068],
            "camera_intrinsic": [],
        }
    )
    pose_by_token = {p["token"]: p for p in poses}
    cam_cs = {c["token"] for c in calibs if c["sensor_token"] == sensors[0]["token"]}
    for sd in [sd for sd in sds if sd["calibrated_sensor_token"] in cam_cs]:
        pose = dict(pose_by_token[sd["ego_pose_token"]], token="L" + sd["ego_pose_token"])
        pose["translation"] = [pose["translation"][0] + 1.0, *pose["translation"][1:]]
        poses.append(pose)
        sds.append(
            dict(
                sd,
                token="L" + sd["token"],
                ego_pose_token=pose["token"],
                calibrated_sensor_token="lidar-cs",
                fileformat="pcd",
                prev="L" + sd["prev"] if sd["prev"] else "",
                next="L" + sd["next"] if sd["next"] else "",
            )
        )
    for name, records in (
        ("sensor", sensors),
        ("calibrated_sensor", calibs),
        ("ego_pose", poses),
        ("sample_data", sds),
    ):
        (tdir / f"{name}.json").write_text(json.dumps(records))
    shifted = load_nuscenes_openloop(copy, "v1.0-test")
    base = load_nuscenes_openloop(exported[1], "v1.0-test", nusc=nusc)
    for a, b in zip(shifted, base, strict=True):
        assert a.ego.x == pytest.approx(b.ego.x + 1.0) and a.ego.y == pytest.approx(b.ego.y)
        np.testing.assert_allclose(a.future_waypoints, b.future_waypoints, atol=1e-9)


def test_command_rule():
    wps = np.zeros((6, 2))
    wps[:, 0] = np.arange(1, 7) * 4.0
    for lateral, command in (
        (2.0, HighLevelCommand.LEFT),
        (1.99, HighLevelCommand.STRAIGHT),
        (-1.99, HighLevelCommand.STRAIGHT),
        (-2.0, HighLevelCommand.RIGHT),
    ):
        w = wps.copy()
        w[-1, 1] = lateral
        assert command_from_waypoints(w) == command
    w = wps.copy()
    w[2, 1], w[5, 1] = -3.0, 5.0  # the last *valid* waypoint decides
    assert command_from_waypoints(w, np.arange(6) < 3) == HighLevelCommand.RIGHT
    assert command_from_waypoints(w, np.zeros(6, bool)) == HighLevelCommand.STRAIGHT


def test_agent_boxes_footprints():
    b = AgentBoxes(
        np.array([[10.0, 2.0]]),
        np.array([0.75]),
        np.array([math.pi / 2]),
        np.array([[4.0, 2.0, 1.5]]),
        ("vehicle",),
        ("vehicle.car",),
        ("t",),
    )
    fp = b.footprints()[0]
    np.testing.assert_allclose(fp.min(0), [9.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(fp.max(0), [11.0, 4.0], atol=1e-9)
    assert len(AgentBoxes.empty().select("vehicle")) == 0


# --------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_broken_table_names_the_file(exported, nusc, tmp_path, broken):
    copy = tmp_path / "copy"
    shutil.copytree(exported[1], copy)
    if broken == "missing":
        (copy / "v1.0-test" / "sample.json").unlink()
        with pytest.raises(FileNotFoundError, match=r"sample\.json"):
            load_nuscenes_openloop(copy, "v1.0-test")
    else:
        (copy / "v1.0-test" / "ego_pose.json").write_text('[{"token": "x", "timestamp": ')
        with pytest.raises(ValueError, match=r"ego_pose\.json"):
            load_nuscenes_openloop(copy, "v1.0-test")


def test_missing_map_and_version_are_named(exported, nusc, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(exported[1], copy)
    with pytest.raises(FileNotFoundError, match="v9.9"):
        load_nuscenes_openloop(copy, "v9.9")
    png = next((copy / "maps").glob("*.png"))
    png.unlink()
    with pytest.raises(FileNotFoundError, match=png.name):
        load_nuscenes_openloop(copy, "v1.0-test")


def test_export_errors_name_the_problem(exported, tmp_path):
    root = exported[0] / "dataset"
    with pytest.raises(FileNotFoundError, match="info.json"):
        export_nuscenes(tmp_path / "nothing", tmp_path / "out")
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    good = (root / EPISODES_PATH).read_text().splitlines()[0]
    (broken / EPISODES_PATH).write_text('{"episode_id": "ep-a"\n' + good + "\n")
    with pytest.raises(CorruptDataError, match=r"episodes\.jsonl: line 1: not JSON"):
        export_nuscenes(broken, tmp_path / "out")
    # a partial last line (a collection killed while appending) is named, never dropped
    (broken / EPISODES_PATH).write_text('{"episode_id": "ep-a"')
    with pytest.raises(CorruptDataError, match=r"episodes\.jsonl: line 1: an unfinished"):
        export_nuscenes(broken, tmp_path / "out")
    (broken / EPISODES_PATH).write_text("")
    with pytest.raises(ValueError, match=r"episodes\.jsonl lists no episodes"):
        export_nuscenes(broken, tmp_path / "out")
    with pytest.raises(ValueError, match="unknown episode"):
        export_nuscenes(root, tmp_path / "out", episodes=["ep-z"])


def test_keyframe_stride_and_camera_parsing():
    assert keyframe_stride(10.0) == 5 and keyframe_stride(20.0) == 10 and keyframe_stride(2) == 1
    with pytest.raises(ValueError, match="3.0 Hz"):
        keyframe_stride(3.0)
    spec = {"width": 64, "height": 48, "fov_deg": 90.0, "intrinsics": [[1]]}
    as_dict = cameras_from_info({"cameras": {"front": spec}})
    as_list = cameras_from_info({"cameras": [{"name": "front", **spec}]})
    assert as_dict == as_list == {"front": CameraSpec(name="front", width=64, height=48)}
    with pytest.raises(ValueError, match="cameras"):
        cameras_from_info({})


def test_cli_command(exported, tmp_path, capsys):
    argv = [
        "data",
        "export-nuscenes",
        str(exported[0] / "dataset"),
        str(tmp_path / "o"),
        "--version",
        "v1.0-cli",
        "--no-sweeps",
    ]
    assert cli_main(argv) == 0
    assert "2 scenes, 16 samples" in capsys.readouterr().out
    tables = json.loads((tmp_path / "o" / "v1.0-cli" / "sample_data.json").read_text())
    assert len(tables) == 16 * len(CAMERAS) and all(sd["is_key_frame"] for sd in tables)
