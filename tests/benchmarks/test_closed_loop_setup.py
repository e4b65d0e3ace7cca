"""The closed-loop benchmark refuses bad options and configs before any route starts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.cli import main as cli_main

ROUTE = {"id": "int-right", "scenario": "intersection", "intent": "turn_right", "seed": 1700001,
         "config": {"cameras": []}}


def _suite(tmp_path: Path, route: dict = ROUTE) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "one", "routes": [route]}), encoding="utf-8")
    return path


def _run(policy: str, suite: Path, out: Path, **kw) -> dict:
    return run_closed_loop(policy, suite, out, progress=False, print_table=False, **kw)


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_steps", -1), ("max_steps", 0), ("max_steps", 2.5), ("explain_every", -1),
     ("workers", -2)],
)
def test_bad_run_options_are_refused_before_any_route(tmp_path, option, value):
    with pytest.raises(ValueError, match=option):
        _run("expert", _suite(tmp_path), tmp_path / "out", **{option: value})
    assert not (tmp_path / "out" / "routes").exists()


def test_cli_refuses_negative_max_steps(tmp_path, capsys):
    argv = ["eval", "closed-loop", "--policy", "expert", "--suite", str(_suite(tmp_path)),
            "--out", str(tmp_path / "out"), "--workers", "0", "--max-steps", "-1"]
    assert cli_main(argv) == 2
    assert "max_steps=-1" in capsys.readouterr().err
    assert not (tmp_path / "out" / "routes").exists()


@pytest.mark.parametrize(("key", "value"), [("max_steer_deg", math.nan),
                                            ("traffic_density", "dense")])
def test_a_bad_route_config_fails_the_run_before_any_route(tmp_path, key, value):
    route = {**ROUTE, "config": {**ROUTE["config"], key: value}}
    with pytest.raises(ValueError, match=f"SimConfig.{key}="):
        _run("expert", _suite(tmp_path, route), tmp_path / "out", workers=0)
    assert not (tmp_path / "out" / "routes").exists()
