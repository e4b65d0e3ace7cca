"""The agent file loaded the way the Leaderboard 2.0 evaluator loads it: its folder put on
``sys.path``, the file imported by its basename, the class named by ``get_entry_point()``
built with ``(host, port, debug)``, ``set_global_plan`` (with ``carla.Transform``s) before
``setup``. The ``leaderboard`` package here is a stand-in written for this test with the
LB 2.0 interface (``AutonomousAgent``, ``Track``), so the subclass branch is exercised; it
runs in a fresh interpreter because the agent file picks its base class at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import drivevla.carla.leaderboard_agent as agent_module

pytest.importorskip("carla", reason="the carla client (pip install 'carla==0.9.16')")

STAND_IN = '''
from enum import Enum


class Track(Enum):
    SENSORS = "SENSORS"
    MAP = "MAP"


class AutonomousAgent:
    def __init__(self, carla_host, carla_port, debug=False):
        self.track = Track.SENSORS
        self._global_plan = None
        self._global_plan_world_coord = None

    def set_global_plan(self, global_plan_gps, global_plan_world_coord):
        # the real one downsamples through the Transforms' locations
        for transform, _ in global_plan_world_coord:
            transform.location.distance(transform.location)
        self._global_plan = global_plan_gps[::2]
        self._global_plan_world_coord = global_plan_world_coord[::2]
'''

SCRIPT = '''
import importlib, json, os, sys
import carla
agent_file, config = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(agent_file))
module = importlib.import_module(os.path.basename(agent_file).split(".")[0])
from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track
cls = getattr(module, module.get_entry_point())
agent = cls("localhost", 2000, False)
world = [(carla.Transform(carla.Location(x=float(x), y=0.0, z=0.0)), 4) for x in range(0, 50, 5)]
gps = [({"lat": 0.0, "lon": x / 111319.49079327357, "z": 0.0}, 4) for x in range(0, 50, 5)]
agent.set_global_plan(gps, world)
agent.setup(config)
print(json.dumps({"subclass": isinstance(agent, AutonomousAgent),
                  "track": agent.track is Track.SENSORS,
                  "base_plan": len(agent._global_plan),
                  "route_length_m": agent.tracker.length_m,
                  "sensors": [s["id"] for s in agent.sensors()]}))
agent.destroy()
'''


def test_the_evaluator_loads_the_agent_file_as_a_leaderboard_subclass(tmp_path):
    package = tmp_path / "lb" / "leaderboard" / "autoagents"
    package.mkdir(parents=True)
    (tmp_path / "lb" / "leaderboard" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "autonomous_agent.py").write_text(textwrap.dedent(STAND_IN))
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"policy": "drivevla-tiny", "output_dir": None}))
    env_path = f"{tmp_path / 'lb'}"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(Path(agent_module.__file__)), str(config)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": env_path},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"subclass": True, "track": True, "base_plan": 5,
                      "route_length_m": pytest.approx(45.0), "sensors":
                      ["front", "gps", "imu", "speed"]}
