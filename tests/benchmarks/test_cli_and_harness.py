"""The drivevla command, the throughput benchmark, the demo harness and videos."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import yaml

from drivevla.benchmarks.video import VideoWriter, compose_frame
from drivevla.cli import main


def test_sim_list_names_every_family(capsys):
    assert main(["sim", "list"]) == 0
    out = capsys.readouterr().out
    for family in ("highway", "merge", "exit", "intersection", "roundabout", "urban"):
        assert family in out


def test_bench_sim_writes_json_with_provenance(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            ["bench", "sim", "--out", str(out), "--steps", "20", "--families", "merge", "--no-pin"]
        )
        == 0
    )
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["family"] == "merge"
    assert row["no_camera"]["steps"] == 20 and row["no_camera"]["steps_per_s"] > 0
    assert row["front_320x180"]["steps_per_s"] > 0
    assert row["front+sides_320x180"]["steps"] == 20  # the three-camera rig is measured too
    assert {"versions", "hardware", "config", "seed"} <= set(data)
    assert "steps/s" in capsys.readouterr().out


def _one_route(tmp_path, scenario: str, intent: str, max_steps: int):
    suite = tmp_path / "one.yaml"
    routes = [{"id": "r1", "scenario": scenario, "intent": intent, "seed": 3,
               "config": {"max_steps": max_steps}}]
    suite.write_text(yaml.safe_dump({"name": "one", "routes": routes}))
    return suite


def test_demo_writes_report_and_resumes(tmp_path, tiny_checkpoint):
    suite = _one_route(tmp_path, "roundabout", "roundabout_exit_1", 40)
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--suite", str(suite), "--policy", str(tiny_checkpoint),
            "--workers", "0"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["routes"][0]["route_id"] == "r1"
    assert summary["n_explanations"] == 4  # ticks 0, 10, 20, 30 of 40
    report = (out / "report.md").read_text()
    assert "| r1 |" in report and "faithfulness" in report
    video = out / "videos" / "r1.mp4"
    assert video.stat().st_size > 1000
    route_file = out / "routes" / "r1.json"
    stamp = route_file.stat().st_mtime_ns
    assert main(args) == 0
    assert route_file.stat().st_mtime_ns == stamp  # a finished route is not driven again


def test_demo_drives_through_the_realtime_runtime_unless_told_not_to(tmp_path,
                                                                    tiny_checkpoint):
    suite = _one_route(tmp_path, "highway", "cruise", 20)
    for runtime in ("realtime-safety", "none"):
        out = tmp_path / runtime
        extra = [] if runtime == "realtime-safety" else ["--runtime", "none"]
        assert main(["demo", "--out", str(out), "--suite", str(suite), "--policy",
                     str(tiny_checkpoint), "--workers", "0", "--no-video", "--no-expert-drive",
                     *extra]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["config"]["runtime"] == runtime
        assert (summary["runtime"] or {}).get("ticks") == (20 if extra == [] else None)
        assert (out / "report.md").is_file()


def test_bad_suite_is_a_clean_cli_error(tmp_path, capsys):
    assert main(["suite", "show", str(tmp_path / "missing.yaml")]) == 2
    assert "built-in suites" in capsys.readouterr().err


def test_video_has_camera_bev_and_captions(tmp_path):
    cam = np.full((90, 160, 3), 200, dtype=np.uint8)
    bev = np.zeros((128, 128, 3), dtype=np.uint8)
    frame = compose_frame(cam, bev, ["Instruction: turn left", "Why: following the route"])
    assert frame.shape[1] == round(160 * 128 / 90) + 128  # camera scaled to the BEV height
    assert (frame[:128, :10] == 200).all() and (frame[:128, -10:] == 0).all()
    assert frame.shape[0] > 128  # the caption band is below
    path = tmp_path / "v.mp4"
    with VideoWriter(path, fps=10) as writer:
        for _ in range(5):
            writer.add(frame)
    reader = imageio.get_reader(str(path))
    assert reader.count_frames() == 5
    reader.close()
