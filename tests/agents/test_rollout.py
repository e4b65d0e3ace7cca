"""The one rollout loop: call order, hooks replacing the control, tick limits, step-limit
termination and captured error phases, on a scripted fake env (no simulator)."""

from __future__ import annotations

from typing import Any

import pytest

from drivevla.agents.rollout import Driver, Hook, RolloutError, Tick, run_episode
from drivevla.core.types import Control


class FakeEnv:
    """Counts steps; ``truncate_at`` ends by the step limit, ``fail_at`` raises in step."""

    def __init__(self, truncate_at: int = 3, fail_at: int | None = None) -> None:
        self.truncate_at, self.fail_at = truncate_at, fail_at
        self.calls: list[str] = []
        self.applied: list[Control] = []
        self.terminated_with: str | None = None
        self.n = 0

    def _info(self) -> dict[str, Any]:
        return {"step": self.n, "time_s": 0.1 * self.n}

    def reset(self, *, seed=None, options=None):
        self.calls.append(f"reset {seed}")
        self.n = 0
        return {"o": 0}, self._info()

    def make_observation(self, obs, info):
        self.calls.append("observe")
        return ("observation", info["step"])

    def step(self, action):
        self.calls.append("step")
        if self.fail_at is not None and self.n == self.fail_at:
            raise RuntimeError("the simulator broke")
        self.applied.append(action)
        self.n += 1
        return {"o": self.n}, 0.0, False, self.n >= self.truncate_at, self._info()

    def privileged_state(self):
        raise AssertionError("not used here")

    def terminate_route(self, reason: str) -> None:
        self.terminated_with = reason

    def route_result(self):
        return None

    def close(self) -> None:
        pass


class ScriptedDriver:
    name = "scripted"

    def __init__(self, env: FakeEnv, fail_at: int | None = None) -> None:
        self.env, self.fail_at = env, fail_at

    def reset(self, env) -> None:
        self.env.calls.append("driver.reset")

    def drive(self, tick: Tick):
        self.env.calls.append("drive")
        if tick.index == self.fail_at:
            raise ValueError("the policy broke")
        return Control(0.5, 0.0, 0.0), None


class Recorder(Hook):
    def __init__(self, env: FakeEnv) -> None:
        self.env = env

    def on_reset(self, env, driver, info):
        self.env.calls.append("on_reset")

    def before_tick(self, tick):
        self.env.calls.append("before_tick")

    def after_decision(self, tick):
        self.env.calls.append("after_decision")
        tick.control = Control(0.0, 0.0, 1.0)  # what gets applied is the hook's choice
        tick.driver = "hook"

    def after_step(self, tick, info):
        self.env.calls.append("after_step")

    def on_end(self, episode):
        self.env.calls.append(f"on_end {episode.ticks}")


def test_one_tick_runs_in_order_and_hooks_choose_the_control():
    env = FakeEnv(truncate_at=2)
    driver = ScriptedDriver(env)
    assert isinstance(driver, Driver)
    episode = run_episode(env, driver, [Recorder(env)], seed=7)
    tick = ["before_tick", "observe", "drive", "after_decision", "step", "after_step"]
    assert env.calls == ["reset 7", "driver.reset", "on_reset", *tick, *tick, "on_end 2"]
    assert env.applied == [Control(0.0, 0.0, 1.0)] * 2
    assert episode.truncated and not episode.terminated and episode.ticks == 2
    assert env.terminated_with == "step limit reached"


def test_max_ticks_stops_without_ending_the_route():
    env = FakeEnv(truncate_at=100)
    episode = run_episode(env, lambda e: ScriptedDriver(env), max_ticks=3)
    assert episode.ticks == 3 and env.calls.count("step") == 3
    assert env.terminated_with is None


@pytest.mark.parametrize(
    ("env_fail", "driver_fail", "phase", "step"),
    [(None, 1, "agent", 1), (2, None, "simulation", 2)],
)
def test_captured_errors_name_their_phase(env_fail, driver_fail, phase, step):
    env = FakeEnv(truncate_at=10, fail_at=env_fail)
    episode = run_episode(env, ScriptedDriver(env, driver_fail), capture_errors=True)
    assert isinstance(episode.error, RolloutError)
    assert (episode.error.phase, episode.error.step) == (phase, step)
    assert episode.info["step"] == step  # the info of the tick that failed
    assert env.terminated_with is None  # the caller decides how a failed route ends


def test_errors_propagate_without_capture():
    env = FakeEnv(truncate_at=10)
    with pytest.raises(ValueError, match="the policy broke"):
        run_episode(env, ScriptedDriver(env, fail_at=0))
