"""``drivevla bench executors``: one suite on the process pool and on Ray, both run whole,
their results compared, Ray's overhead and an extrapolation reported; a used folder refused."""

from __future__ import annotations

import json

import pytest

from drivevla.benchmarks.executor_overhead import extrapolate
from drivevla.cli import main as cli_main

ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]")')


def test_the_extrapolation_is_bounded_by_the_longest_route_and_scales_with_cores():
    rows = extrapolate(n_routes=51, route_s_mean=1.43, route_s_max=3.3, overhead_s=0.05,
                       start_s=4.1)
    by = {(r["routes"], r["nodes"]): r["wall_s"] for r in rows}
    assert by[(51, 1)] == pytest.approx(4.1 + 3.3, abs=0.05)  # 51 x 1.48 / 32 < 3.3 s
    assert by[(5000, 4)] == pytest.approx(4.1 + 5000 * 1.48 / 128, abs=0.05)
    assert by[(5000, 1)] > by[(5000, 4)] > by[(5000, 16)] > by[(5000, 64)]
    negative = extrapolate(51, 1.43, 3.3, -0.2, 0.0)  # Ray faster than the pool: not a gain
    assert {r["wall_s"] for r in negative if r["routes"] == 5000 and r["nodes"] == 1} == {
        round(5000 * 1.43 / 32, 1)}


def test_the_smoke_suite_on_both_executors_agrees_and_is_reported(tmp_path, capsys):
    out = tmp_path / "bench"
    code = cli_main(["bench", "executors", "--suite", "smoke", "--workers", "2",
                     "--max-steps", "30", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "executors.json").read_text())
    assert result["routes"] == 6 and result["same_results"] is True
    assert result["process"]["driving_score"] == result["ray"]["driving_score"]
    assert result["ray_start_s"] > 0 and not ray.is_initialized()  # started and shut down
    for executor in ("process", "ray"):
        assert len(list((out / executor / "routes").glob("*.json"))) == 6
        row = result[executor]
        assert 0 < row["route_s_max"] <= row["route_s_sum"] and row["wall_s"] > 0
    assert len(result["extrapolation"]) == 8 and result["assumptions"]
    assert result["config"]["base_config"] == {"cameras": []}
    printed = capsys.readouterr().out
    assert "process pool" in printed and "overhead per route" in printed

    # a used folder: the benchmark never resumes, and what is there stays
    assert cli_main(["bench", "executors", "--suite", "smoke", "--out", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert json.loads((out / "executors.json").read_text()) == result
