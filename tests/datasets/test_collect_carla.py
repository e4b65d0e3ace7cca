"""`drivevla collect --backend carla` without a server: a route file becomes the collection's
episodes (routes cycled, seeds counted, the server address outside the fingerprint), a dead
server is an error naming it with nothing recorded, and the CLI checks the backend's options.
Recording on a live server: tests/carla_agent/test_carla_live.py."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")

from tests.support.carla_routes import free_port, write_routes  # noqa: E402

from drivevla.cli import main  # noqa: E402
from drivevla.datasets.collect import CollectConfig, collect, plan_collection  # noqa: E402
from drivevla.sim_bridge.carla.env import CarlaConnection, CarlaUnavailableError  # noqa: E402

SOMEWHERE = CarlaConnection("h", 1)


def _config(route_file, out, server=SOMEWHERE, **changes) -> CollectConfig:
    options = {"episodes": 5, "workers": 0, "show_progress": False, **changes}
    return CollectConfig(suite=str(route_file), out=str(out), carla=server, **options)


def test_a_route_file_is_collected_route_by_route_with_counted_seeds(tmp_path):
    routes = write_routes(tmp_path)
    plan = plan_collection(_config(routes, tmp_path / "d"))
    assert [(j.carla_route.route_id, j.seed) for j in plan.jobs] == [
        ("3", 0), ("4", 1), ("3", 2), ("4", 3), ("3", 4)]
    assert all(j.carla_route.sim_config(j.sim_config).seed == j.seed for j in plan.jobs)
    assert plan.jobs[0].sim_config["max_steps"] == 3000
    assert [c["name"] for c in plan.cameras] == ["front"] and plan.control_hz == 10.0
    assert plan.source.startswith("CARLA server") and plan.identity["backend"] == "carla"
    # the server is where it runs, not what is recorded; the rig is
    other = plan_collection(_config(routes, tmp_path / "d", CarlaConnection("elsewhere", 7)))
    assert other.fingerprint == plan.fingerprint
    wide = plan_collection(_config(routes, tmp_path / "d",
                                   cameras=({"name": "front", "width": 640},)))
    assert wide.fingerprint != plan.fingerprint and wide.cameras[0]["width"] == 640


def test_a_dead_server_is_named_and_nothing_is_recorded(tmp_path):
    routes, out, port = write_routes(tmp_path), tmp_path / "d", free_port()
    server = CarlaConnection("127.0.0.1", port, timeout_s=1.0)
    with pytest.raises(CarlaUnavailableError, match=rf"127\.0\.0\.1:{port}: could not connect"):
        collect(_config(routes, out, server, episodes=1))
    info = json.loads((out / "meta" / "info.json").read_text(encoding="utf-8"))
    assert info["counts"]["episodes"] == 0 and info["source"].startswith("CARLA server")
    assert not list(out.glob("data/*/*.parquet"))


def test_the_cli_needs_a_route_file_for_carla_and_a_suite_otherwise(tmp_path, capsys):
    routes = write_routes(tmp_path)
    for argv, named in (
        (["--backend", "carla"], "--backend carla drives a route file"),
        (["--backend", "carla", "--routes", str(routes), "--suite", "val"],
         "--backend carla drives a route file"),
        (["--routes", str(routes)], "the embedded backend drives a suite"),
    ):
        assert main(["collect", *argv, "--episodes", "1", "--out", str(tmp_path / "o")]) == 2
        assert named in capsys.readouterr().err
