"""The Agent checks every observation and attaches the result to its Decision
(``decision.health``); real drives of the embedded simulator report no fault."""

from __future__ import annotations

import math

import numpy as np

from drivevla.agents.agent import Agent
from drivevla.core.types import Decision
from drivevla.perception.sensor_health import FROZEN_MIN_SPEED_MPS, FROZEN_TICKS
from support.sensor_obs import RED_LIGHT_STOP, H, W, expert_drive, longest_run, observation


class FixedPolicy:
    """Always the same decision object (so the test sees whether the agent changes it)."""

    name = "fixed"

    def __init__(self) -> None:
        self.decision = Decision(np.cumsum(np.ones((6, 2)), axis=0), np.full(6, 5.0))
        self.seen: list = []

    def reset(self, privileged=None) -> None:
        pass

    def act(self, obs):
        self.seen.append(obs)
        return self.decision


def _frame(value: int) -> np.ndarray:
    img = np.full((H, W, 3), value, np.uint8)
    img[H // 2 :] = 60  # a two-tone view: not flat, not noise
    return img


def test_the_decision_carries_the_health_of_its_observation():
    policy = FixedPolicy()
    agent = Agent(policy)
    agent.reset()
    _, healthy = agent.step(observation({"front": _frame(200)}, t=0.0))
    control, sick = agent.step(
        observation({"front": np.zeros((H, W, 3), np.uint8)}, t=math.nan, speed=1e6)
    )
    assert healthy.health is not None and healthy.health.ok
    assert sick.health.faults == ("camera_black:front", "ego_speed_implausible",
                                 "timestamp_invalid")
    assert agent.last_decision is sick
    # detection only: the policy's own decision is untouched and still drives the car
    assert policy.decision.health is None
    np.testing.assert_array_equal(sick.waypoints, policy.decision.waypoints)
    assert control is not None


def test_reset_starts_the_frozen_count_and_the_clock_again():
    agent = Agent(FixedPolicy())
    agent.reset()
    frame = _frame(200)
    health = [agent.step(observation({"front": frame}, t=0.1 * i))[1].health
              for i in range(FROZEN_TICKS + 1)]
    assert [h.ok for h in health] == [True] * FROZEN_TICKS + [False]
    assert health[-1].faults == ("camera_frozen:front",)
    agent.reset()  # a new episode: same frame, the clock back at 0
    assert agent.step(observation({"front": frame}, t=0.0))[1].health.ok


def test_no_camera_at_all_is_healthy():
    agent = Agent(FixedPolicy())
    agent.reset()
    assert agent.step(observation({}, t=0.0))[1].health.ok


def test_a_real_drive_with_a_red_light_stop_reports_no_fault():
    """Every decision of a 15 s expert drive (5 s driving, then standing at a red light in an
    empty street, where the simulator renders the identical frame tick after tick) is
    healthy."""
    drive = expert_drive(RED_LIGHT_STOP, 150)
    standing_same = [
        b.ego.speed_mps < 0.05 and a.frame_crc == b.frame_crc
        for a, b in zip(drive, drive[1:], strict=False)
    ]
    assert sum(t.ego.speed_mps > FROZEN_MIN_SPEED_MPS for t in drive) >= 30
    assert longest_run(standing_same) >= 10 * FROZEN_TICKS  # the trap is in this drive
    faults = {i: t.decision.health.faults for i, t in enumerate(drive)
              if not t.decision.health.ok}
    assert faults == {}


def test_real_drives_with_traffic_report_no_fault():
    for scenario, intent in (("roundabout", "roundabout_exit_2"), ("highway", "cruise")):
        drive = expert_drive({"scenario": scenario, "intent": intent}, 60, seed=3)
        assert len(drive) == 60 and all(t.frame_crc is not None for t in drive)
        assert [t.decision.health.faults for t in drive] == [()] * 60, scenario
