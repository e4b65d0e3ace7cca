"""The embedded simulator's gymnasium contract, determinism and input validation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import drivevla.sim_bridge  # noqa: F401  (registers the ids)
from drivevla.core.env import Env, PrivilegedBackend, PrivilegedState
from drivevla.core.types import CameraSpec, Control, HighLevelCommand
from drivevla.planner.baselines import IDMPolicy, LaneKeepPolicy
from drivevla.planner.expert import ExpertPolicy
from drivevla.sim_bridge.embedded import ENV_IDS
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.scenarios import FAMILIES

SMALL_CAM = [{"name": "front", "width": 96, "height": 64, "fov_deg": 90.0}]


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_check_env_passes_for_every_registered_id(env_id):
    env = gym.make(env_id, cameras=SMALL_CAM, max_steps=50)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_every_family_has_an_id_and_intents():
    assert set(ENV_IDS.values()) == set(FAMILIES)
    for family in FAMILIES.values():
        assert len(family.intents) >= 1


def _rollout(seed: int, steps: int = 25):
    env = EmbeddedDrivingEnv({"scenario": "urban", "intent": "follow_street", "cameras": SMALL_CAM})
    obs, info = env.reset(seed=seed)
    frames, infos = [obs["cameras"]["front"].copy()], [info]
    action = np.array([0.4, 0.0, 0.0], dtype=np.float32)
    for _ in range(steps):
        obs, _, term, trunc, info = env.step(action)
        frames.append(obs["cameras"]["front"].copy())
        infos.append(info)
    env.close()
    return np.stack(frames), infos


def test_same_seed_gives_byte_identical_frames_and_state():
    a, ia = _rollout(7)
    b, ib = _rollout(7)
    assert a.tobytes() == b.tobytes()
    assert [i["actors"] for i in ia] == [i["actors"] for i in ib]
    assert [i["traffic_lights"] for i in ia] == [i["traffic_lights"] for i in ib]


def test_different_seeds_give_different_worlds():
    _, ia = _rollout(1, steps=1)
    _, ib = _rollout(2, steps=1)
    assert ia[0]["actors"] != ib[0]["actors"]


def test_route_intent_and_length_are_reported():
    env = EmbeddedDrivingEnv(
        {"scenario": "roundabout", "intent": "roundabout_exit_3", "cameras": []}
    )
    obs, info = env.reset(seed=3)
    assert info["intent"] == "roundabout_exit_3"
    assert info["route_length_m"] > 150.0
    assert obs["route"].shape == (5, 2)
    # target points lie ahead of the ego (x forward in the ego frame)
    assert obs["route"][0, 0] > 0.0
    assert info["instruction"].startswith("At the roundabout")
    assert 0 <= obs["command"] < len(HighLevelCommand)


def test_make_observation_builds_the_typed_contract():
    env = EmbeddedDrivingEnv({"scenario": "highway", "cameras": SMALL_CAM})
    obs, info = env.reset(seed=0, options={"intent": "cruise", "instruction": "Keep going."})
    o = env.make_observation(obs, info)
    assert o.instruction == "Keep going."
    assert o.images["front"].shape == (64, 96, 3)
    assert o.route.intent == "cruise"
    assert o.ego.speed_mps == pytest.approx(20.0)
    assert o.route.speed_limit_mps == pytest.approx(env.scenario.speed_limit_mps)
    assert o.route.speed_limit_mps > 0
    env.close()


def test_info_ground_truth_has_boxes_velocities_and_lights():
    env = EmbeddedDrivingEnv({"scenario": "urban", "intent": "go_straight", "cameras": []})
    _, info = env.reset(seed=5)
    kinds = {a["kind"] for a in info["actors"]}
    assert {"vehicle", "pedestrian", "static"} <= kinds
    for a in info["actors"]:
        assert {"x", "y", "yaw", "length", "width", "height", "vx", "vy"} <= set(a)
    assert len(info["traffic_lights"]) == 8
    assert {lt["state"] for lt in info["traffic_lights"]} <= {"red", "yellow", "green"}
    assert info["ego"]["lane"] is not None


def test_traffic_lights_cycle():
    env = EmbeddedDrivingEnv(
        {
            "scenario": "urban",
            "intent": "go_straight",
            "cameras": [],
            "light_offset_s": 0.0,
            "light_cycle_s": [2.0, 1.0, 3.0],
        }
    )
    _, info = env.reset(seed=0)
    states = []
    for _ in range(60):
        _, _, _, _, info = env.step([0.0, 0.0, 1.0])
        states.append(info["traffic_lights"][1]["state"])
    assert {"red", "yellow", "green"} == set(states)


def test_pedestrians_start_crossing_at_their_seeded_time():
    env = EmbeddedDrivingEnv({"scenario": "urban", "intent": "go_straight", "cameras": []})
    env.reset(seed=11)
    ped = env.world.pedestrians[0]
    start = ped.position.copy()
    while env.world.time_s < ped.start_time_s - 0.15:
        env.step([0.0, 0.0, 1.0])
    assert np.allclose(ped.position, start)
    for _ in range(10):
        env.step([0.0, 0.0, 1.0])
    assert np.linalg.norm(ped.position - start) > 0.5


# ---------------------------------------------------------------- bad input


def test_unknown_scenario_lists_valid_ones():
    with pytest.raises(ValueError, match="valid.*highway"):
        EmbeddedDrivingEnv({"scenario": "mars"})


def test_unknown_intent_lists_valid_ones():
    with pytest.raises(ValueError, match="turn_left"):
        EmbeddedDrivingEnv({"scenario": "intersection", "intent": "fly"})
    env = EmbeddedDrivingEnv({"scenario": "intersection", "cameras": []})
    with pytest.raises(ValueError, match="go_straight"):
        env.reset(seed=0, options={"intent": "fly"})


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown simulator config key.*'trafic'.*valid keys"):
        EmbeddedDrivingEnv({"scenario": "highway", "trafic": 2})
    with pytest.raises(ValueError, match="valid"):
        EmbeddedDrivingEnv({"scenario": "highway", "criteria": {"blocked_secs": 3}})
    with pytest.raises(ValueError, match="unknown camera key"):
        EmbeddedDrivingEnv({"cameras": [{"name": "f", "resolution": 4}]})


@pytest.mark.parametrize(
    "action, match",
    [
        ([np.nan, 0.0, 0.0], "throttle.*not finite"),
        ([0.5, 2.0, 0.0], r"steer.*outside \[-1.0, 1.0\]"),
        ([0.5, 0.0, -0.1], "brake"),
        ([0.5, 0.0], "shape"),
    ],
)
def test_bad_controls_are_refused(action, match):
    env = EmbeddedDrivingEnv({"scenario": "highway", "cameras": []})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


@pytest.mark.parametrize("width, height", [(0, 180), (320, 0), (100000, 180), (320, 50000)])
def test_zero_or_absurd_camera_resolution_is_refused(width, height):
    with pytest.raises(ValueError, match="resolution"):
        CameraSpec(width=width, height=height)
    with pytest.raises(ValueError, match="resolution"):
        EmbeddedDrivingEnv({"cameras": [{"name": "front", "width": width, "height": height}]})


def test_step_before_reset_and_after_end_are_errors():
    env = EmbeddedDrivingEnv({"scenario": "highway", "cameras": []})
    with pytest.raises(RuntimeError, match="reset"):
        env.step([0.0, 0.0, 0.0])
    assert Control.from_array([0.1, -0.2, 0.0]).steer == pytest.approx(-0.2)


def test_the_env_meets_the_backend_contract_and_hands_out_privileged_state():
    env = EmbeddedDrivingEnv({"scenario": "urban", "intent": "go_straight", "cameras": []})
    assert isinstance(env, Env)
    _, info = env.reset(seed=3)
    for _ in range(5):
        _, _, _, _, info = env.step(Control(0.6, 0.0, 0.0))
    state = env.privileged_state()
    assert isinstance(state, PrivilegedState) and state.backend is env
    assert isinstance(state.backend, PrivilegedBackend)
    assert state.time_s == info["time_s"] and state.intent == info["intent"] == "go_straight"
    assert state.route_progress_m == info["route_progress_m"]
    assert (state.ego.x, state.ego.y) == (info["ego"]["x"], info["ego"]["y"])
    assert [a.actor_id for a in state.actors] == [a["id"] for a in info["actors"]]
    assert state.route_polyline.shape[1] == 2 and state.route_length_m == info["route_length_m"]
    env.terminate_route("test over")
    ended = env.route_result().to_dict()
    assert ended["status"].startswith("Failed")
    env.terminate_route("again")  # an ended route stays as it ended
    assert env.route_result().to_dict() == ended


def test_privileged_policies_refuse_to_reset_without_ground_truth():
    for policy in (ExpertPolicy(), IDMPolicy(), LaneKeepPolicy()):
        with pytest.raises(ValueError, match="PrivilegedState"):
            policy.reset()
