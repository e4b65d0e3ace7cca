"""Policy-side fault injection: deterministic per seed, and every injected fault caught by
the runner on its tick (latency past the deadline, exceptions, NaN outputs)."""

from __future__ import annotations

import numpy as np
import pytest

from drivevla.runtime.clock import MonotonicClock, SimulatedClock
from drivevla.runtime.faults import FaultyPolicy, InjectedFault, PolicyFaults
from drivevla.runtime.runner import RealtimeConfig, RealtimeRunner
from support.runtime_parts import ScriptedPolicy, drive, obs_at


def _pattern(faults, ticks=400):
    return [faults.at_tick(k) for k in range(ticks)]


def test_injection_is_deterministic_per_seed_and_hits_its_share():
    faults = PolicyFaults(seed=7, latency_share=0.3, latency_ms=300, exception_share=0.1,
                          nan_share=0.05)
    assert _pattern(faults) == _pattern(PolicyFaults(**faults.to_dict()))
    assert _pattern(faults) != _pattern(PolicyFaults(**{**faults.to_dict(), "seed": 8}))
    n = 4000
    hits = [faults.at_tick(k) for k in range(n)]
    for kind, share in (("latency", 0.3), ("exception", 0.1), ("nan", 0.05)):
        got = sum(kind in h for h in hits) / n
        assert abs(got - share) < 0.03, (kind, got)
    assert not PolicyFaults(latency_share=0.5).active  # no delay given: nothing to inject
    assert _pattern(PolicyFaults(latency_share=0.5), 50) == [()] * 50


def _faulty_drive(faults, ticks=60):
    clock = SimulatedClock()
    policy = FaultyPolicy(ScriptedPolicy(), faults, clock)
    runner = RealtimeRunner(policy, config=RealtimeConfig(), clock=clock)
    runner.reset()
    try:
        controls, decisions = drive(runner, ticks)
    finally:
        runner.close()
    return controls, decisions, policy


def test_latency_spikes_fall_back_on_their_tick_and_the_drive_repeats_exactly():
    faults = PolicyFaults(seed=3, latency_share=0.3, latency_ms=300)
    controls, decisions, policy = _faulty_drive(faults)
    spiked = {r.tick for r in policy.injected}
    assert spiked and len(controls) == 60  # every tick got a control
    for k, d in enumerate(decisions):
        cause = d.runtime.cause
        assert (cause == "deadline") == (k in _acted_ticks(policy, spiked))
    assert {d.runtime.cause for d in decisions} <= {None, "deadline", "busy"}
    again, _, _ = _faulty_drive(faults)
    assert again == controls


def _acted_ticks(policy, spiked_calls):
    """The runner ticks whose act was a spiked call (busy ticks make no call)."""
    return {k for k, call in _calls_by_tick(policy).items() if call in spiked_calls}


def _calls_by_tick(policy):
    # a spike of 300 ms at a 100 ms period leaves the worker busy for the next 2 ticks
    by_tick, tick, call = {}, 0, 0
    injected = {r.tick for r in policy.injected}
    while call < policy.tick:
        by_tick[tick] = call
        tick += 3 if call in injected else 1
        call += 1
    return by_tick


def test_injected_exceptions_fall_back_once_and_recover_the_next_tick():
    faults = PolicyFaults(seed=11, exception_share=0.2)
    _, decisions, policy = _faulty_drive(faults)
    raised = {r.tick for r in policy.injected}
    assert raised
    for k, d in enumerate(decisions):
        assert (d.runtime.mode != "policy") == (k in raised)
        if k in raised:
            assert d.runtime.cause.startswith("exception: InjectedFault")


def test_injected_nan_outputs_are_caught_as_invalid():
    _, decisions, policy = _faulty_drive(PolicyFaults(seed=5, nan_share=0.25))
    nan_ticks = {r.tick for r in policy.injected}
    assert nan_ticks
    for k, d in enumerate(decisions):
        assert (d.runtime.cause is not None and d.runtime.cause.startswith("invalid: non-finite")
                ) == (k in nan_ticks)
        assert np.isfinite(d.waypoints).all()


def test_a_real_sleep_past_the_deadline_gets_its_fallback_on_that_tick():
    # 2 s of real sleep against a 50 ms deadline: the margin survives a loaded machine
    faults = PolicyFaults(seed=0, latency_share=1.0, latency_ms=2000)
    policy = FaultyPolicy(ScriptedPolicy(), faults, MonotonicClock())
    runner = RealtimeRunner(policy, config=RealtimeConfig(deadline_s=0.05))
    runner.reset()
    try:
        _, decision = runner.step(obs_at(0.0))
        assert decision.runtime.cause == "deadline" and decision.runtime.mode == "stop"
        assert runner.worker.busy()
    finally:
        runner.close()


def test_the_fault_wrapper_keeps_the_policy_interface_and_rejects_bad_settings():
    inner = ScriptedPolicy()
    policy = FaultyPolicy(inner, PolicyFaults(exception_share=1.0), SimulatedClock())
    assert policy.name == "scripted" and policy.release is inner.release
    with pytest.raises(InjectedFault, match="tick 0"):
        policy.act(obs_at(0.0))
    with pytest.raises(ValueError, match="latency_share"):
        PolicyFaults(latency_share=1.5)
    with pytest.raises(ValueError, match="latency_ms"):
        PolicyFaults(latency_ms=-1)
