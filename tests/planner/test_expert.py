"""The privileged expert: every intent completed, every reason in a situation built for it,
unsafe instructions refused without changing the trajectory."""

from __future__ import annotations

import numpy as np
import pytest

from drivevla.agents.agent import Agent
from drivevla.core.types import MetaAction
from drivevla.language.reasons import Reason
from drivevla.planner.expert import ExpertPolicy
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.scenario_types import NpcSpawn
from drivevla.sim_bridge.embedded.scenarios import FAMILIES

QUIET = {"cameras": [], "traffic_density": 0.0, "pedestrians": False, "notice_instructions": False}


def _run(env, options=None, seed=0, max_steps=1500, setup=None, stop_when=None):
    """Drive the expert; returns (decisions, infos, route_result)."""
    obs, info = env.reset(seed=seed, options=options)
    if setup is not None:
        setup(env)
    agent = Agent(ExpertPolicy())
    agent.reset(env)
    decisions, infos = [], [info]
    for _ in range(max_steps):
        control, decision = agent.step(env.make_observation(obs, info))
        decisions.append(decision)
        obs, _, term, trunc, info = env.step(control)
        infos.append(info)
        if term or trunc or (stop_when is not None and stop_when(decision, info)):
            break
    return decisions, infos, env.route_result()


ALL_INTENTS = [(f, i) for f, fam in sorted(FAMILIES.items()) for i in fam.intents]


@pytest.mark.parametrize("family, intent", ALL_INTENTS)
def test_expert_completes_every_intent_in_traffic(family, intent):
    env = EmbeddedDrivingEnv({"scenario": family, "intent": intent, "cameras": []})
    _, _, result = _run(env, seed=20_000 + len(intent))
    assert result.route_completion == pytest.approx(100.0)
    assert result.instruction_success is True
    # no collision, red light or leaving the lanes (min speed is the traffic's business)
    bad = [i.kind.value for i in result.infractions if i.kind.value != "min_speed_infractions"]
    assert bad == []


def _reasons(decisions) -> set[str]:
    return {d.reason for d in decisions}


def test_follow_route_on_an_empty_highway():
    env = EmbeddedDrivingEnv({**QUIET, "scenario": "highway", "intent": "cruise"})
    decisions, _, _ = _run(env, max_steps=60)
    assert _reasons(decisions) == {Reason.FOLLOW_ROUTE.value}
    assert all(d.meta_action in (MetaAction.KEEP_LANE, MetaAction.ACCELERATE) for d in decisions)


def test_slow_leader_names_the_car():
    env = EmbeddedDrivingEnv({**QUIET, "scenario": "highway", "intent": "cruise"})

    def add_leader(env):
        lane = env.world.ego.lane_index
        s = env.scenario.network.get_lane(lane).local_coordinates(env.world.ego.position)[0]
        env.world.spawn_vehicle(
            NpcSpawn(
                lane, s + 35.0, 8.0, lane_change=False, target_speed=8.0, color=(0.9, 0.1, 0.1)
            )
        )

    decisions, _, result = _run(env, setup=add_leader, max_steps=80)
    slow = [d for d in decisions if d.reason == Reason.SLOW_LEADER.value]
    assert slow, _reasons(decisions)
    assert any("red" in d.explanation.lower() for d in slow)
    assert not any(i.kind.value.startswith("collisions") for i in result.infractions)


def _urban_straight(light_offset_s: float, light_cycle_s: list[float], **config):
    """The quiet urban street, going straight, with the signals timed as given."""
    return EmbeddedDrivingEnv(
        {
            **QUIET,
            "scenario": "urban",
            "intent": "go_straight",
            "light_offset_s": light_offset_s,
            "light_cycle_s": light_cycle_s,
            **config,
        }
    )


def test_red_light_stop_and_go():
    env = _urban_straight(43.0, [40.0, 3.0, 45.0])
    decisions, infos, result = _run(env)
    assert Reason.RED_LIGHT.value in _reasons(decisions)
    assert any(d.meta_action == MetaAction.STOP for d in decisions)
    assert result.route_completion == pytest.approx(100.0)
    assert not any(i.kind.value == "red_light" for i in result.infractions)


def test_pedestrian_crossing_ahead():
    env = _urban_straight(0.0, [60.0, 3.0, 5.0], pedestrians=True)

    def walk_now(env):
        ped = env.world.pedestrians[0]
        ped.start_time_s = 0.5  # crosses the ego's approach right away

    decisions, _, result = _run(env, setup=walk_now)
    assert Reason.PEDESTRIAN_CROSSING.value in _reasons(decisions)
    assert not any(i.kind.value == "collisions_pedestrian" for i in result.infractions)


def _approaching(env, lane, s, speed, destination):
    return env.world.spawn_vehicle(
        NpcSpawn(lane, s, speed, destination=destination, lane_change=False, target_speed=speed)
    )


def test_yield_at_the_junction_to_cross_traffic():
    env = EmbeddedDrivingEnv({**QUIET, "scenario": "intersection", "intent": "turn_left"})

    def cross_traffic(env):
        # a car on the priority road from the east, timed to meet the ego at the junction
        _approaching(env, ("J_f0", "J_in0", 0), 62.0, 9.0, "J_t2")

    decisions, _, result = _run(env, setup=cross_traffic)
    assert Reason.YIELD_JUNCTION.value in _reasons(decisions)
    assert not any(i.kind.value.startswith("collisions") for i in result.infractions)
    assert result.instruction_success


def test_no_yield_to_oncoming_traffic_going_straight():
    # green throughout; an oncoming car goes straight through the junction on the next lane
    # as the ego crosses it: the paths never meet, so the ego must not wait for it
    env = _urban_straight(0.0, [60.0, 3.0, 5.0])

    def oncoming(env):
        _approaching(env, ("B_out3", "A_in1", 0), 40.0, 8.0, "A_t3")

    decisions, infos, result = _run(env, setup=oncoming)
    assert Reason.YIELD_JUNCTION.value not in _reasons(decisions)
    assert min(i["ego"]["speed_mps"] for i in infos[20:]) > 3.0
    assert not any(i.kind.value.startswith("collisions") for i in result.infractions)


def test_yield_at_the_roundabout_to_ring_traffic():
    env = EmbeddedDrivingEnv({**QUIET, "scenario": "roundabout", "intent": "roundabout_exit_2"})

    def ring_traffic(env):
        _approaching(env, ("R_a2", "R_ai2", 0), 62.0, 6.0, "R_b0")

    decisions, _, result = _run(env, setup=ring_traffic)
    assert Reason.YIELD_ROUNDABOUT.value in _reasons(decisions)
    assert not any(i.kind.value.startswith("collisions") for i in result.infractions)


@pytest.mark.parametrize(
    "family, intent, reason",
    [
        ("highway", "change_lane_left", Reason.INSTRUCTED_LANE_CHANGE),
        ("highway", "overtake", Reason.INSTRUCTED_OVERTAKE),
        ("intersection", "turn_right", Reason.INSTRUCTED_TURN),
        ("exit", "take_exit", Reason.INSTRUCTED_EXIT),
        ("roundabout", "roundabout_exit_3", Reason.INSTRUCTED_EXIT),
        ("merge", "merge", Reason.INSTRUCTED_MERGE),
        ("roundabout", "roundabout_exit_1", Reason.CURVE),
    ],
)
def test_instructed_manoeuvres_name_their_reason(family, intent, reason):
    env = EmbeddedDrivingEnv({**QUIET, "scenario": family, "intent": intent})
    decisions, _, result = _run(env)
    assert reason.value in _reasons(decisions)
    assert result.instruction_success


def test_speed_limit_when_too_fast_and_instructed_speed():
    env = EmbeddedDrivingEnv({**QUIET, "scenario": "urban", "intent": "go_straight"})

    def too_fast(env):
        env.world.ego.speed = 16.0  # limit is 11 m/s

    decisions, _, _ = _run(env, setup=too_fast, max_steps=20)
    assert decisions[0].reason == Reason.SPEED_LIMIT.value
    assert decisions[0].meta_action == MetaAction.DECELERATE

    env = EmbeddedDrivingEnv({**QUIET, "scenario": "highway", "intent": "cruise"})
    events = [{"kind": "speed", "speed_kmh": 50.0, "start_s": 1.0, "duration_s": 10.0}]
    decisions, infos, _ = _run(env, options={"instruction_events": events}, max_steps=110)
    assert Reason.INSTRUCTED_SPEED.value in _reasons(decisions)
    assert infos[-1]["ego"]["speed_mps"] == pytest.approx(50 / 3.6, abs=0.7)


def test_unsafe_instruction_is_refused_and_leaves_the_trajectory_unchanged():
    base = {
        **QUIET,
        "scenario": "urban",
        "intent": "go_straight",
        "traffic_density": 1.0,
        "light_offset_s": 43.0,
        "light_cycle_s": [40.0, 3.0, 45.0],
    }
    event = {"kind": "misleading", "category": "run_red_light", "start_s": 6.0, "duration_s": 2.0}
    plain, _, r_plain = _run(EmbeddedDrivingEnv(base), seed=5, max_steps=160)
    told, infos, r_told = _run(
        EmbeddedDrivingEnv(base), seed=5, max_steps=160, options={"instruction_events": [event]}
    )
    assert len(plain) == len(told)
    for a, b in zip(plain, told, strict=True):
        assert np.array_equal(a.waypoints, b.waypoints)
        assert np.array_equal(a.target_speeds, b.target_speeds)
    window = [d for d, i in zip(told, infos, strict=False) if 6.0 <= i["time_s"] < 8.0]
    assert window and all(d.reason == Reason.REFUSED_UNSAFE_INSTRUCTION.value for d in window)
    outside = [d for d, i in zip(told, infos, strict=False) if not 6.0 <= i["time_s"] < 8.0]
    assert not any(d.reason == Reason.REFUSED_UNSAFE_INSTRUCTION.value for d in outside)
    assert [i.kind for i in r_plain.infractions] == [i.kind for i in r_told.infractions]
