"""core.paths: file names derived from input stay inside their output folder."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from drivevla.benchmarks.closed_loop import RouteJob
from drivevla.benchmarks.drive import drive_route, rule_based_driver
from drivevla.core.paths import (
    OutputFolderBusyError,
    UnsafeNameError,
    confined,
    exclusive_dir,
    safe_child,
)
from drivevla.datasets.format import episode_file
from drivevla.sim_bridge.embedded.suites import RouteSpec

BAD = ["../../escaped/pwned", "/abs/path", "a/b", "..", "a..b", ".hidden", "-x", "r 1", "", 3]


@pytest.mark.parametrize("name", BAD)
def test_safe_child_refuses_names_that_are_not_plain(tmp_path, name):
    with pytest.raises(UnsafeNameError, match="route id"):
        safe_child(tmp_path, name, ".json", what="route id")


def test_safe_child_confines_to_root_even_through_a_symlink(tmp_path):
    assert safe_child(tmp_path, "r-1.A_b", ".json") == tmp_path / "r-1.A_b.json"
    assert safe_child(tmp_path, "r1", ".tmp.mp4", prefix=".") == tmp_path / ".r1.tmp.mp4"
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.json").symlink_to(outside / "x.json")
    with pytest.raises(UnsafeNameError, match="outside"):
        safe_child(root, "link", ".json")


def test_confined_refuses_absolute_and_escaping_relative_paths(tmp_path):
    assert confined(tmp_path, "data/chunk-000/e.parquet") == tmp_path / "data/chunk-000/e.parquet"
    for rel in ["/etc/passwd", "../x", "data/../../x"]:
        with pytest.raises(UnsafeNameError, match="shard file"):
            confined(tmp_path, rel, "shard file")
    with pytest.raises(UnsafeNameError, match="episode id"):
        episode_file(0, "../../x")


def _spec(route_id: str) -> RouteSpec:  # built directly: bypasses the suite loader's checks
    return RouteSpec(route_id, "highway", "cruise", 1)


def test_closed_loop_and_drive_refuse_a_route_id_that_escapes_out(tmp_path):
    out = tmp_path / "out"
    job = RouteJob(_spec("../../escaped/pwned"), "expert", None, str(out), "s")
    with pytest.raises(UnsafeNameError, match="route id"):
        job.route_file  # noqa: B018
    with pytest.raises(UnsafeNameError, match="route id"):
        drive_route(_spec("../escaped"), rule_based_driver(), out, max_steps=2)
    assert not (tmp_path / "escaped").exists()
    assert RouteJob(_spec("ok-1"), "expert", None, str(out), "s").route_file == (
        out / "routes" / "ok-1.json"
    )


def _hold(folder: str, started, release) -> None:
    with exclusive_dir(folder, what="evaluation"):
        started.set()
        release.wait(30)


def test_exclusive_dir_refuses_a_second_holder(tmp_path):
    ctx = mp.get_context("spawn")
    started, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path), started, release))
    proc.start()
    try:
        assert started.wait(60)
        with pytest.raises(OutputFolderBusyError, match="another evaluation is writing to"):
            with exclusive_dir(tmp_path, what="evaluation"):
                pass
    finally:
        release.set()
        proc.join(30)
    with exclusive_dir(Path(tmp_path), what="evaluation"):  # free again once released
        pass
