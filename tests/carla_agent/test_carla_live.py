"""Checks against a live CARLA server; they run only when DRIVEVLA_CARLA_HOST names one
(DRIVEVLA_CARLA_PORT, default 2000) and skip otherwise. Untested on the project's machines."""

from __future__ import annotations

import json
import math
import os

import pytest

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.datasets.collect import CollectConfig, collect
from drivevla.datasets.reader import open_dataset
from drivevla.sim_bridge.carla.convert import carla_transform_to_world
from drivevla.sim_bridge.carla.env import CarlaConnection

HOST = os.environ.get("DRIVEVLA_CARLA_HOST")
pytestmark = pytest.mark.skipif(
    not HOST, reason="no CARLA server: set DRIVEVLA_CARLA_HOST (and DRIVEVLA_CARLA_PORT)")


@pytest.fixture(scope="module")
def client():
    carla = pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")
    c = carla.Client(HOST, int(os.environ.get("DRIVEVLA_CARLA_PORT", "2000")))
    c.set_timeout(20.0)
    return c


def test_the_server_matches_the_client_version(client):
    assert client.get_server_version() == client.get_client_version() == "0.9.16"


def test_spawn_points_convert_to_finite_world_poses(client):
    spawn_points = client.get_world().get_map().get_spawn_points()
    assert spawn_points
    for transform in spawn_points[:10]:
        x, y, yaw = carla_transform_to_world(transform)
        assert all(math.isfinite(v) for v in (x, y, yaw))


def _live_route(client, folder) -> tuple:
    """A 60 m route from the map's first spawn point, as a route file, and the server."""
    pytest.importorskip("agents.navigation.global_route_planner",
                        reason="CARLA's PythonAPI (${CARLA_ROOT}/PythonAPI/carla) on PYTHONPATH")
    world_map = client.get_world().get_map()
    start = world_map.get_spawn_points()[0]
    end = world_map.get_waypoint(start.location).next(60.0)[0].transform.location
    town = world_map.name.split("/")[-1]
    routes = folder / "live.xml"
    routes.write_text(
        f'<routes><route id="0" town="{town}"><waypoints>'
        f'<position x="{start.location.x}" y="{start.location.y}" z="{start.location.z}"/>'
        f'<position x="{end.x}" y="{end.y}" z="{end.z}"/></waypoints></route></routes>',
        encoding="utf-8")
    return routes, CarlaConnection(HOST, int(os.environ.get("DRIVEVLA_CARLA_PORT", "2000")))


def test_the_benchmark_drives_a_learned_policy_on_the_server(client, tmp_path):
    routes, server = _live_route(client, tmp_path)
    summary = run_closed_loop("drivevla-tiny", routes, tmp_path / "out", workers=0,
                              max_steps=40, explain_every=0, carla=server, progress=False,
                              print_table=False)
    record = json.loads((tmp_path / "out" / "routes" / "0.json").read_text(encoding="utf-8"))
    assert summary["n_routes"] == 1 and record["error"] is None, record["error"]
    assert record["metrics"]["n_ticks"] == 40
    assert 0.0 <= record["metrics"]["route_completion"] <= 100.0


def test_the_box_expert_records_a_dataset_on_the_server(client, tmp_path):
    routes, server = _live_route(client, tmp_path)
    out = tmp_path / "data"
    summary = collect(CollectConfig(suite=str(routes), episodes=1, out=str(out), workers=0,
                                    max_steps=60, show_progress=False, carla=server))
    assert summary["episodes"] == 1 and summary["frames"] > 0
    frame = next(open_dataset(out).iter_frames(decode_images=True))
    assert frame["scenario"].startswith("carla:") and frame["expert.reason"]
    assert frame["image.front"].dtype.name == "uint8"
