"""A checkpoint's camera rig: recorded in its config, rendered by the closed-loop benchmark
and declared by the CARLA agent, so a model trained with side cameras is driven with them."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import yaml

from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.benchmarks.closed_loop_run import with_policy_cameras
from drivevla.carla.leaderboard_agent import policy_cameras
from drivevla.datasets.collect import parse_cameras
from drivevla.sim_bridge.embedded.config import CAMERA_RIGS
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.vla_parts import CORPUS, TINY

SIDES = [dataclasses.replace(c, width=64, height=36) for c in CAMERA_RIGS["front+sides"]]


def _config(rig) -> DriveVLAConfig:
    return DriveVLAConfig().with_overrides({
        **TINY, "model.cameras": [c.name for c in rig],
        "model.camera_rig": [dataclasses.asdict(c) for c in rig]})


def test_the_rig_names_the_cameras_in_order_and_bad_specs_are_named():
    config = _config(SIDES).model
    assert [c.yaw_deg for c in config.camera_specs()] == [0.0, 70.0, -70.0]
    assert DriveVLAConfig().model.camera_specs()[0].name == "front"  # no rig: default mount
    with pytest.raises(ValueError, match="must be the cameras"):
        DriveVLAConfig().with_overrides({"model.cameras": ["left", "front"], "model.camera_rig":
                                         [dataclasses.asdict(c) for c in SIDES[:2]]})
    with pytest.raises(ValueError, match="camera_rig.*unknown camera key"):
        DriveVLAConfig().with_overrides({"model.camera_rig": [{"name": "front", "zoom": 2}]})
    assert [c["name"] for c in parse_cameras("front+sides")] == ["front", "left", "right"]


def test_the_caller_s_or_a_route_s_cameras_win_over_the_rig():
    class Loaded:
        config = _config(SIDES)

    rigged = with_policy_cameras({"instruction_split": "heldout"}, Loaded())
    assert [c["name"] for c in rigged["cameras"]] == ["front", "left", "right"]
    assert with_policy_cameras({"cameras": []}, Loaded()) == {"cameras": []}
    assert with_policy_cameras(None, object()) is None

    class Exported(Loaded):  # an ONNX folder exported at another size: its graph's size wins
        deploy = {"cameras": [dataclasses.asdict(dataclasses.replace(c, width=32, height=24))
                              for c in SIDES]}

    exported = with_policy_cameras(None, Exported())
    assert [(c["name"], c["width"]) for c in exported["cameras"]] == [
        ("front", 32), ("left", 32), ("right", 32)]
    assert [c.width for c in policy_cameras(Exported())] == [32, 32, 32]


def test_a_side_camera_checkpoint_is_driven_and_declared_with_its_rig(tmp_path):
    config = _config(SIDES)
    processor = DriveVLAProcessor.build(config, CORPUS)
    torch.manual_seed(0)
    policy = DriveVLAPolicy(DriveVLAModel(config, processor.vocab_size), processor)
    policy.save_pretrained(tmp_path / "ckpt")
    assert [c.yaw_deg for c in policy_cameras(policy)] == [0.0, 70.0, -70.0]

    route = {"id": "r", "scenario": "intersection", "intent": "turn_left", "seed": 1700001}
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "routes": [route]}), encoding="utf-8")
    summary = run_closed_loop(str(tmp_path / "ckpt"), suite, tmp_path / "out", workers=0,
                              max_steps=4, explain_every=0, progress=False, print_table=False)
    assert summary["n_failed"] == 0
    record = json.loads((tmp_path / "out" / "routes" / "r.json").read_text())
    assert record["status"] == "Failed - step limit reached"
    assert [(c["name"], c["width"]) for c in record["config"]["cameras"]] == [
        ("front", 64), ("left", 64), ("right", 64)]
