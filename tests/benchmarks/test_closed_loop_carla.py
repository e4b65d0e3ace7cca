"""`eval closed-loop --backend carla`: a route file becomes the benchmark's suite, and a dead
server is a setup failure naming it (nothing written under routes/, a rerun retries). Driving
on a live server: tests/carla_agent/test_carla_live.py."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")

from tests.support.carla_routes import free_port, write_routes  # noqa: E402

from drivevla.benchmarks.closed_loop import AgentSetupError, run_closed_loop  # noqa: E402
from drivevla.benchmarks.closed_loop_run import fingerprint  # noqa: E402
from drivevla.runtime.fault_spec import FaultSpec  # noqa: E402
from drivevla.sim_bridge.carla.env import CarlaConnection  # noqa: E402
from drivevla.sim_bridge.carla.suite import carla_suite  # noqa: E402


@pytest.fixture
def route_file(tmp_path):
    return write_routes(tmp_path)


def test_a_route_file_is_a_suite_of_env_configs(route_file):
    suite = carla_suite(route_file, CarlaConnection("h", 1), seed=5)
    assert suite.name == "carla:my_routes"
    assert [(s.route_id, s.scenario, s.seed) for s in suite.routes] == [
        ("3", "carla:Town03", 5), ("4", "carla:Town05", 6)]
    cfg = suite.routes[1].sim_config({"vehicles": 4, "control_hz": 5.0,
                                      "cameras": [{"name": "front", "width": 320}]})
    assert (cfg.vehicles, cfg.ticks_per_control, cfg.seed) == (4, 4, 6)
    assert cfg.observer.cameras[0].width == 320 and cfg.route.town == "Town05"
    with pytest.raises(ValueError, match=r"unknown CARLA config key\(s\) \['scenario'\]"):
        suite.routes[0].sim_config({"scenario": "urban"})


def test_the_server_address_is_not_part_of_the_fingerprint(route_file):
    a = carla_suite(route_file, CarlaConnection("host-a", 2000))
    b = carla_suite(route_file, CarlaConnection("host-b", 3000))
    assert fingerprint(a, None, None) == fingerprint(b, None, None)
    assert fingerprint(a, None, None) != fingerprint(a, {"vehicles": 0}, None)


def test_options_the_carla_backend_cannot_honour_are_refused(route_file, tmp_path):
    server = CarlaConnection("127.0.0.1", 1)
    for options, named in (({"explain_every": 10}, "explain_every > 0"),
                           ({"video": True}, "video"),
                           ({"runtime": "realtime"}, "runtime='realtime'"),
                           ({"faults": FaultSpec.parse("policy.nan_share=0.1")}, "faults")):
        with pytest.raises(ValueError, match=rf"CARLA backend does not support: {named}"):
            run_closed_loop("drivevla-tiny", route_file, tmp_path / "out", workers=0,
                            carla=server, progress=False, print_table=False, **options)


def test_a_dead_server_fails_setup_naming_it_and_writes_no_result(route_file, tmp_path):
    port = free_port()
    out = tmp_path / "out"
    server = CarlaConnection("127.0.0.1", port, timeout_s=1.0)
    with pytest.raises(AgentSetupError, match=r"2 of 2 route\(s\) could not be set up") as err:
        run_closed_loop("drivevla-tiny", route_file, out, workers=0, carla=server,
                        progress=False, print_table=False)
    assert f"127.0.0.1:{port}: could not connect" in str(err.value)
    assert not list(out.glob("routes/*.json"))
    failure = json.loads((out / "setup_failures" / "3.json").read_text(encoding="utf-8"))
    assert failure["error"]["type"] == "CarlaUnavailableError"
