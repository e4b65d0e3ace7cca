"""Sensor-side fault injection: each fault on the tick it is drawn for, deterministic per
seed, and a wrapped driver's policy sees the faulted observation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from drivevla.agents.agent import Agent
from drivevla.core.types import CameraSpec, RadarReading
from drivevla.runtime.faults import PolicyFaultsError
from drivevla.runtime.sensor_faults import FaultySensors, SensorFaultInjector, SensorFaults
from support.runtime_parts import ScriptedPolicy, obs_at

CAM = CameraSpec(name="front", width=16, height=16)


def _obs(tick: int):
    """A camera frame whose grey level is the tick number (so a frame says when it was
    taken), and a radar reading."""
    base = obs_at(0.1 * tick)
    return dataclasses.replace(
        base, images={"front": np.full((16, 16, 3), 10 + tick, np.uint8)},
        cameras={"front": CAM}, radar=RadarReading(20.0, -1.0, 0.0, 3))


def _run(faults: SensorFaults, ticks: int = 40):
    inject = SensorFaultInjector(faults)
    return [inject(_obs(k)) for k in range(ticks)], inject


def test_each_camera_fault_on_its_drawn_ticks():
    faults = SensorFaults(seed=3, drop_share=0.2, stale_share=0.2, black_share=0.2,
                          noise_share=0.2)
    out, inject = _run(faults)
    delivered = None
    for k, obs in enumerate(out):
        kinds = faults.at_tick(0, k)
        if "drop" in kinds:
            assert "front" not in obs.images
            continue
        image = obs.images["front"]
        if "black" in kinds:  # noise, when drawn too, is added to the black frame
            assert image.max() == 0 if "noise" not in kinds else image.mean() < 30
        elif "noise" in kinds:
            assert image.std() > 5  # 25 grey levels of noise around one level
        elif "stale" in kinds and delivered is not None:
            assert np.array_equal(image, delivered)
        else:
            assert np.all(image == 10 + k)
        delivered = image
    assert all(inject.counts[kind] > 0 for kind in ("drop", "stale", "black", "noise"))
    # the same seed, the same faults; another seed, others
    again, _ = _run(faults)
    assert all(a.images.keys() == b.images.keys() and all(
        np.array_equal(a.images[n], b.images[n]) for n in a.images)
        for a, b in zip(out, again, strict=True))
    other = [SensorFaults(seed=4, drop_share=0.2).at_tick(0, k) for k in range(40)]
    assert other != [faults.at_tick(0, k) for k in range(40)]


def test_latency_delivers_old_frames_and_radar_drops_out():
    out, _ = _run(SensorFaults(latency_ms=300.0), ticks=6)  # 3 ticks at 10 Hz
    assert [int(o.images["front"][0, 0, 0]) for o in out] == [10, 10, 10, 10, 11, 12]
    out, inject = _run(SensorFaults(seed=1, radar_dropout_share=0.5))
    lost = [o.radar is None for o in out]
    assert 5 < sum(lost) < 35 and inject.counts["radar_dropout"] == sum(lost)
    with pytest.raises(PolicyFaultsError, match="drop_share"):
        SensorFaults(drop_share=1.5)


def test_a_wrapped_driver_sees_the_faulted_frames():
    seen = []

    class Recorder(ScriptedPolicy):
        def act(self, obs):
            seen.append(obs.images.get("front"))
            return super().act(obs)

    driver = FaultySensors(Agent(Recorder()), SensorFaults(black_share=1.0))
    driver.reset()
    for k in range(3):
        driver.step(_obs(k))
    assert len(seen) == 3 and all(image.max() == 0 for image in seen)
    assert driver.name == "scripted" and driver.injector.counts["black"] == 3
