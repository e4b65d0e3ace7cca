"""The explanation worker: its own thread, a lower rate, the tick each text belongs to, and
never a change to a control (bit-identical drives with it on and off)."""

from __future__ import annotations

import threading
import time

import pytest

from drivevla.agents.registry import make_policy
from drivevla.agents.rollout import Hook, run_episode
from drivevla.runtime.clock import SimulatedClock
from drivevla.runtime.explainer import ExplanationWorker
from drivevla.runtime.runner import RealtimeRunner
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from support.runtime_parts import ScriptedPolicy, drive


class ExplainingPolicy(ScriptedPolicy):
    """Keeps its last "action pass" (the call index) like DriveVLA keeps its KV cache; the
    explanation of a pass names it. ``gate``: explanations wait for it; ``fail``: raise."""

    def __init__(self, *args, gate: threading.Event | None = None, fail: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate, self.fail = gate, fail
        self._last = None

    def act(self, obs):
        decision = super().act(obs)
        self._last = self.calls - 1
        return decision

    def explain_output(self, last):
        if self.gate is not None:
            self.gate.wait(timeout=60)
        time.sleep(0.002)  # long enough for act to move on: the snapshot must hold
        if self.fail:
            raise RuntimeError("explainer broke")
        return f"decision {last}"


def _drive(policy, explainer, ticks=40):
    runner = RealtimeRunner(policy, clock=SimulatedClock(), explainer=explainer)
    runner.reset()
    try:
        controls, decisions = drive(runner, ticks)
        if explainer is not None:
            explainer.drain()
            explainer.poll(ticks)  # publish the last one
        return controls, decisions, runner
    finally:
        runner.close()


def test_explanations_never_change_a_control_and_name_their_tick():
    off, _, _ = _drive(ExplainingPolicy(), None)
    on, decisions, runner = _drive(ExplainingPolicy(), ExplanationWorker(every_ticks=5))
    assert on == off
    published = runner.explainer.published
    assert len(published) >= 2
    for e in published:
        assert e.text == f"decision {e.tick}" and e.tick <= e.published_tick
    ticks = [e.tick for e in published]
    assert ticks[0] == 0 and all(b - a >= 5 for a, b in zip(ticks, ticks[1:], strict=False))
    assert any(d.explanation == published[0].text for d in decisions)


def test_a_slow_explanation_does_not_hold_up_the_controls():
    gate = threading.Event()
    explainer = ExplanationWorker(every_ticks=2)
    runner = RealtimeRunner(ExplainingPolicy(gate=gate), clock=SimulatedClock(),
                            explainer=explainer)
    runner.reset()
    try:
        controls, _ = drive(runner, 12)  # would hang on the gate if the runner waited
        assert len(controls) == 12 and explainer.published == []
        assert explainer.skipped_busy >= 4
        gate.set()
        explainer.drain()
        published = explainer.poll(12)
        assert (published.tick, published.text, published.published_tick) == (
            0, "decision 0", 12)
    finally:
        gate.set()
        runner.close()


def test_a_failing_explanation_is_counted_not_raised():
    off, _, _ = _drive(ExplainingPolicy(), None, ticks=12)
    on, _, runner = _drive(ExplainingPolicy(fail=True), ExplanationWorker(every_ticks=3), 12)
    assert on == off
    assert runner.explainer.failures >= 1 and runner.explainer.published == []


def test_every_ticks_must_be_positive():
    with pytest.raises(ValueError, match="every_ticks"):
        ExplanationWorker(every_ticks=0)


class _Controls(Hook):
    def __init__(self):
        self.controls = []

    def after_decision(self, tick):
        self.controls.append(tick.control)


def _tiny_drive(explainer, ticks=30):
    policy = make_policy("drivevla-tiny")
    runner = RealtimeRunner(policy, clock=SimulatedClock(), explainer=explainer)
    env = EmbeddedDrivingEnv({"scenario": "urban", "intent": "go_straight", "max_steps": ticks})
    record = _Controls()
    try:
        run_episode(env, lambda e: runner, [record], seed=1, options={"intent": "go_straight"})
    finally:
        env.close()
        runner.close()
    return record.controls, runner


def test_drivevla_tiny_drives_bit_identically_with_the_explainer_on_and_off():
    off, _ = _tiny_drive(None)
    on, runner = _tiny_drive(ExplanationWorker(every_ticks=5))
    assert len(on) == 30 and on == off
    assert runner.explainer.published and runner.explainer.failures == 0
    assert all(e.text.strip() for e in runner.explainer.published)
