"""Rollout hooks shared by collection and evaluation (see :mod:`drivevla.agents.rollout`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from drivevla.agents.agent import Agent
from drivevla.agents.rollout import Driver, Hook, Tick
from drivevla.core.env import Env
from drivevla.core.policy import Policy

DAGGER_STREAM = 0xDA66E2  # separates the DAgger coin flips from every other seeded stream


class DaggerMixing(Hook):
    """DAgger's beta mixing: the driver (the expert) labels every tick; a learner acts on the
    same observation and its control is applied instead with probability ``1 - beta`` (a coin
    seeded by ``seed`` and :data:`DAGGER_STREAM`). ``tick.driver`` names who drove."""

    def __init__(self, make_learner: Callable[[], Policy], beta: float, seed: int) -> None:
        self.make_learner, self.beta, self.seed = make_learner, float(beta), int(seed)
        self.learner: Agent | None = None
        self.coin: np.random.Generator | None = None

    def on_reset(self, env: Env, driver: Driver, info: dict[str, Any]) -> None:
        self.learner = Agent(self.make_learner())
        self.learner.reset(env)
        self.coin = np.random.default_rng([self.seed, DAGGER_STREAM])

    def after_decision(self, tick: Tick) -> None:
        l_control, _ = self.learner.step(tick.observation)
        if self.coin.random() >= self.beta:
            tick.control, tick.driver = l_control, self.learner.policy.name


class ParentWatch(Hook):
    """Ends this worker process (exit code 3, nothing written) when the process that started
    it is gone; checked every ``every`` simulator steps."""

    def __init__(self, parent_pid: int | None, every: int) -> None:
        self.parent_pid, self.every = parent_pid, int(every)

    def after_step(self, tick: Tick, info: dict[str, Any]) -> None:
        if info["step"] % self.every == 0 and parent_gone(self.parent_pid):
            os._exit(3)  # the run was killed: leave nothing, the rerun redoes this work


def parent_gone(parent_pid: int | None) -> bool:
    return parent_pid is not None and os.getppid() != parent_pid
