"""``drivevla bench robustness``: the row plan, one small grid end to end (protections on and
off, the no-fault references, DS deltas, the JSON and the table), resume, and bad names."""

from __future__ import annotations

import json

import pytest

from drivevla.benchmarks import robustness
from drivevla.cli import main
from support.runtime_parts import one_route_suite


@pytest.fixture
def suite(tmp_path):
    return one_route_suite(tmp_path)


def test_the_plan_has_a_reference_row_per_side_and_refuses_unknown_names():
    rows = robustness.plan_rows(["policy-nan", "camera-drop"], ["high"], ["on", "off"])
    assert [r["row"] for r in rows] == [
        "none-on", "policy-nan-high-on", "camera-drop-high-on",
        "none-off", "policy-nan-high-off", "camera-drop-high-off"]
    assert rows[1]["spec"] == "policy.nan_share=0.3"
    full = robustness.plan_rows()
    assert len(full) == 2 * (1 + 2 * len(robustness.FAULTS))
    for args, name in ((["policy-nope"], "policy-nope"), (None, "medium"), (None, "maybe")):
        with pytest.raises(ValueError, match=name):
            robustness.plan_rows(args, ["medium"] if name == "medium" else None,
                                 ["maybe"] if name == "maybe" else None)


def test_exceptions_crash_the_route_without_protections_and_not_with_them(tmp_path, suite,
                                                                          capsys):
    out = tmp_path / "robust"
    argv = ["bench", "robustness", "--policy", "expert", "--suite", str(suite), "--out",
            str(out), "--faults", "policy-exception", "--severities", "high", "--workers", "0",
            "--max-steps", "40"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    result = json.loads((out / robustness.RESULT_FILE).read_text())
    rows = {r["row"]: r for r in result["rows"]}
    assert list(rows) == ["none-on", "policy-exception-high-on", "none-off",
                          "policy-exception-high-off"]
    on, off = rows["policy-exception-high-on"], rows["policy-exception-high-off"]
    assert off["agent_crashed_routes"] == 1 and off["driving_score"] == 0.0
    assert off["delta_driving_score"] == -rows["none-off"]["driving_score"]
    assert on["agent_crashed_routes"] == 0 and on["fallback_entries"] > 0
    assert on["faults_injected"]["exception"] > 0 and on["late_ticks"] == 0
    assert rows["none-on"]["faults_injected"] == {} and rows["none-off"]["fallback_entries"] is None
    assert "policy-exception-high-off" in table and "dDS" in table
    assert result["config"]["faults"]["policy-exception"]["high"] == "policy.exception_share=0.3"
    # a rerun resumes every row from its route files: the same numbers
    assert main(argv) == 0
    again = json.loads((out / robustness.RESULT_FILE).read_text())
    assert [r["driving_score"] for r in again["rows"]] == [r["driving_score"]
                                                           for r in result["rows"]]
    # the grid in parts: another fault into the same folder keeps the earlier rows, in order
    assert main([*argv[:9], "policy-nan", *argv[10:]]) == 0
    parts = json.loads((out / robustness.RESULT_FILE).read_text())
    assert [r["row"] for r in parts["rows"]] == [
        "none-on", "policy-exception-high-on", "policy-nan-high-on",
        "none-off", "policy-exception-high-off", "policy-nan-high-off"]
    with pytest.raises(ValueError, match="fault_seed"):
        robustness.run_robustness("expert", suite, out, workers=0, faults=["policy-nan"],
                                  severities=["high"], fault_seed=3, max_steps=40,
                                  progress=False)
