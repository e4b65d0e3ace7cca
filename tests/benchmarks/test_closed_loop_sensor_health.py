"""Closed-loop route records count the ticks of each sensor fault the agent reported
(``metrics.sensor_faults``); healthy embedded-simulator routes record none."""

from __future__ import annotations

import json

import numpy as np
import yaml

from drivevla.agents.rollout import Tick
from drivevla.benchmarks.closed_loop import (
    RouteJob,
    Trace,
    _empty_result,
    _route_record,
    run_closed_loop,
)
from drivevla.core.types import Decision, SensorHealth
from drivevla.sim_bridge.embedded.suites import RouteSpec


def _decision(*faults: str) -> Decision:
    health = SensorHealth(faults)
    return Decision(np.cumsum(np.ones((6, 2)), axis=0), np.full(6, 5.0), health=health)


def test_the_route_record_counts_ticks_per_fault_code(tmp_path):
    trace = Trace()
    ticks = [("camera_black:front",), ("camera_black:front", "timestamp_invalid"), (),
             ("camera_black:front",)]
    for i, faults in enumerate(ticks):
        info = {"time_s": 0.1 * i, "ego": {"speed_mps": 5.0}}
        trace.after_decision(Tick(i, {}, info, decision=_decision(*faults)))
    trace.after_decision(Tick(4, {}, {"time_s": 0.4, "ego": {"speed_mps": 5.0}},
                              decision=Decision(np.ones((6, 2)), np.ones(6))))  # unchecked
    spec = RouteSpec("r1", "intersection", "turn_right", 1700001)
    job = RouteJob(spec, "expert", None, str(tmp_path), "s", provenance={})
    record = _route_record(job, None, _empty_result(spec, "Completed"), trace, {}, None)
    assert record["metrics"]["sensor_faults"] == {"camera_black:front": 3,
                                                  "timestamp_invalid": 1}
    assert record["metrics"]["n_ticks"] == 5


def test_healthy_routes_with_cameras_record_no_fault(tmp_path):
    routes = [
        {"id": "int-right", "scenario": "intersection", "intent": "turn_right", "seed": 1700001},
        {"id": "urban-red", "scenario": "urban", "intent": "go_straight", "seed": 1700004,
         "config": {"light_offset_s": 43.0, "light_cycle_s": [40.0, 3.0, 45.0]}},
    ]  # default camera (front, 320x180); the urban route stands at a red light from ~5 s
    suite = tmp_path / "cams.yaml"
    suite.write_text(yaml.safe_dump({"name": "cams", "routes": routes}), encoding="utf-8")
    run_closed_loop("expert", suite, tmp_path / "out", workers=0, max_steps=100,
                    progress=False, print_table=False)
    for route in routes:
        rec = json.loads((tmp_path / "out" / "routes" / f"{route['id']}.json").read_text())
        assert rec["metrics"]["n_ticks"] == 100, rec["status"]
        assert rec["metrics"]["sensor_faults"] == {}
