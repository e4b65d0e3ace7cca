"""eval compare: two closed-loop runs route by route, and where their drives first part."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.benchmarks.compare_runs import RunComparisonError, compare_runs, first_parting
from drivevla.cli import main as cli_main

ROUTES = [{"id": "a", "scenario": "highway", "intent": "cruise", "seed": 3,
           "config": {"cameras": []}},
          {"id": "b", "scenario": "urban", "intent": "turn_left", "seed": 4,
           "config": {"cameras": []}}]


@pytest.fixture(scope="module")
def expert_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    suite = root / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "compare", "routes": ROUTES}), encoding="utf-8")
    run_closed_loop("expert", suite, root / "run", workers=0, max_steps=40, progress=False,
                    print_table=False)
    return root / "run"


def test_first_parting_by_hand():
    a = {"path_xy": [[0, 0], [1, 0], [2, 0], [3, 0]], "planned_speed_mps": [5, 5, 5, 5],
         "time_s": [0.0, 0.1, 0.2, 0.3]}
    b = {"path_xy": [[0, 0], [1, 0], [2, 0.005], [3, 0.5]],
         "planned_speed_mps": [5, 5.004, 5, 5]}
    assert first_parting(a, a) is None
    parting = first_parting(a, b, tol_m=0.01, tol_mps=0.01)
    assert parting["tick"] == 3 and parting["time_s"] == 0.3
    assert parting["position_diff_m"] == pytest.approx(0.5)
    assert parting["max_planned_speed_diff_before_mps"] == pytest.approx(0.004)
    assert first_parting(a, b, tol_m=0.001)["tick"] == 2  # 5 mm apart at tick 2


def test_a_run_against_itself_and_against_an_edited_copy(expert_run, tmp_path, capsys):
    same = compare_runs(expert_run, expert_run)
    assert same["routes"] == 2 and same["same_status"] == 2 and same["never_parted"] == 2
    copy = tmp_path / "copy"
    shutil.copytree(expert_run, copy)
    file = copy / "routes" / "b.json"
    record = json.loads(file.read_text(encoding="utf-8"))
    record["drive"]["planned_speed_mps"][7] += 0.5
    record["status"] = "Failed - TooSlow"
    file.write_text(json.dumps(record), encoding="utf-8")
    out = tmp_path / "cmp.json"
    assert cli_main(["eval", "compare", str(expert_run), str(copy), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "same status 1/2" in printed and "Failed - TooSlow" in printed
    row = {r["route"]: r for r in json.loads(out.read_text(encoding="utf-8"))["rows"]}["b"]
    assert row["parting"]["tick"] == 7
    assert row["parting"]["planned_speed_diff_mps"] == pytest.approx(0.5)


def test_runs_of_other_routes_or_no_run_are_named_errors(expert_run, tmp_path, capsys):
    copy = tmp_path / "fewer"
    shutil.copytree(expert_run, copy)
    (copy / "routes" / "a.json").unlink()
    with pytest.raises(RunComparisonError, match="different routes"):
        compare_runs(expert_run, copy)
    assert cli_main(["eval", "compare", str(expert_run), str(tmp_path / "nope")]) == 2
    assert "not a closed-loop run folder" in capsys.readouterr().err
