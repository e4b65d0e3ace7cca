"""A hand-made Leaderboard 2.0 results JSON imports to the right summary values."""

from __future__ import annotations

import json

import pytest

from drivevla.benchmarks.leaderboard_import import import_leaderboard
from drivevla.cli import main
from drivevla.core.errors import InvalidFileError

EMPTY = {k: [] for k in (
    "collisions_layout", "collisions_pedestrian", "collisions_vehicle", "red_light",
    "stop_infraction", "outside_route_lanes", "min_speed_infractions",
    "yield_emergency_vehicle_infractions", "scenario_timeouts", "route_dev",
    "vehicle_blocked", "route_timeout")}


def _record(index, status, rc, penalty, length_m, **infractions):
    return {
        "index": index, "route_id": f"RouteScenario_{index}_rep0", "status": status,
        "num_infractions": sum(len(v) for v in infractions.values()),
        "infractions": {**EMPTY, **infractions},
        "scores": {"score_route": rc, "score_penalty": penalty,
                   "score_composed": rc * penalty},
        "meta": {"route_length": length_m, "duration_game": 100.0, "duration_system": 300.0},
    }


RESULTS = {
    "_checkpoint": {
        "progress": [3, 3],
        "global_record": {"scores_mean": {"score_composed": 61.22}},
        "records": [
            # a vehicle (0.6) and a red light (0.7): 0.42
            _record(0, "Completed", 100.0, 0.42, 1000.0, collisions_vehicle=[
                "Agent collided against object with type=vehicle.tesla.model3 and id=7 at "
                "(x=10.5, y=-20.0, z=0.1)"],
                red_light=["Agent ran a red light 456 at (x=100.0, y=50.0, z=0.0)"]),
            # outside lanes 5 % (0.95), min speed 80 % (1 - 0.3 * 0.2 = 0.94): 0.893
            _record(1, "Failed - Agent got blocked", 50.0, 0.893, 2000.0,
                    outside_route_lanes=["Agent went outside its route lanes for about "
                                         "50.000 meters (5.00% of the completed route)"],
                    min_speed_infractions=["Average speed is 80.00% of the surrounding "
                                           "traffic's one"],
                    vehicle_blocked=["Agent got blocked at (x=1.0, y=2.0, z=0.0)"]),
            # only a min-speed factor (90 %: 0.97): still a Bench2Drive success
            _record(2, "Completed", 100.0, 0.97, 500.0, min_speed_infractions=[
                "Average speed is 90.00% of the surrounding traffic's one"]),
        ],
    },
    "entry_status": "Finished",
}


def test_a_leaderboard_results_json_imports_to_the_right_summary(tmp_path):
    src = tmp_path / "results.json"
    src.write_text(json.dumps(RESULTS))
    summary = import_leaderboard(src, tmp_path / "out", policy="drivevla-tiny")
    assert summary["n_routes"] == 3
    assert summary["driving_score"] == pytest.approx((42.0 + 44.65 + 97.0) / 3)
    assert summary["route_completion"] == pytest.approx(250.0 / 3)
    assert summary["infraction_score"] == pytest.approx((0.42 + 0.893 + 0.97) / 3)
    # Bench2Drive: DS without min-speed factors, and success (only route 2)
    assert summary["driving_score_no_min_speed"] == pytest.approx((42.0 + 47.5 + 100.0) / 3)
    assert summary["success_rate"] == pytest.approx(100.0 / 3)
    # km driven: 1 x 100 % + 2 x 50 % + 0.5 x 100 % = 2.5 km
    assert summary["km_driven"] == pytest.approx(2.5)
    per_km = summary["infractions_per_km"]
    assert per_km["collisions_vehicle"] == pytest.approx(0.4)
    assert per_km["red_light"] == pytest.approx(0.4)
    assert per_km["min_speed_infractions"] == pytest.approx(0.8)
    assert summary["comfort"] is None
    assert summary["source"]["unparsed_factors"] == 0
    assert summary["source"]["penalty_mismatch_routes"] == []
    assert summary["source"]["progress"] == [3, 3]
    route = json.loads((tmp_path / "out/routes/RouteScenario_0_rep0.json").read_text())
    collision = route["result"]["infractions"][0]
    assert collision["kind"] == "collisions_vehicle" and collision["penalty"] == 0.6
    assert (collision["x"], collision["y"]) == (10.5, 20.0)  # CARLA y right -> world y north
    on_disk = json.loads((tmp_path / "out/summary.json").read_text())
    assert on_disk["driving_score"] == pytest.approx(summary["driving_score"])


def test_the_command_and_a_bad_file(tmp_path, capsys):
    src = tmp_path / "results.json"
    src.write_text(json.dumps(RESULTS))
    assert main(["eval", "import-leaderboard", str(src), "--out", str(tmp_path / "o")]) == 0
    assert "3 routes, DS 61.22" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"_checkpoint": {"records": []}}))
    with pytest.raises(InvalidFileError, match="no route records"):
        import_leaderboard(bad, tmp_path / "o2")
    odd = json.loads(json.dumps(RESULTS))
    odd["_checkpoint"]["records"][0]["scores"]["score_route"] = "n/a"
    bad.write_text(json.dumps(odd))
    with pytest.raises(InvalidFileError, match=r"records\[0\].scores.score_route='n/a'"):
        import_leaderboard(bad, tmp_path / "o3")


def test_bench2drive_min_speed_records_that_do_not_count(tmp_path):
    # Bench2Drive records min-speed checkpoints but leaves them out of the penalty
    record = _record(0, "Completed", 100.0, 1.0, 800.0, min_speed_infractions=[
        "Average agent speed is 50.0 of the surrounding traffic's one",
        "Average speed is 1200.0% of the surrounding traffic's one"])
    src = tmp_path / "b2d.json"
    src.write_text(json.dumps({"_checkpoint": {"records": [record]}}))
    summary = import_leaderboard(src, tmp_path / "out")
    assert summary["driving_score"] == 100.0 and summary["success_rate"] == 100.0
    assert summary["min_speed_penalty"] == "off"
    assert summary["source"]["penalty_mismatch_routes"] == []
    assert summary["source"]["unparsed_factors"] == 0
