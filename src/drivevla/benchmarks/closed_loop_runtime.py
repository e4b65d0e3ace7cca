"""``eval closed-loop --runtime``: which driver runs the policy on each route, and the
runtime's accounting in the route record and the summary.

- ``none`` (default): the plain :class:`~drivevla.agents.agent.Agent`, as before;
- ``realtime``: the :class:`~drivevla.runtime.runner.RealtimeRunner` (deadline watchdog,
  hold / stop fallback) on a :class:`~drivevla.runtime.clock.SimulatedClock`: the simulator
  waits for the policy and only simulated latency counts against the deadline, so a run is
  reproducible and the runtime costs nothing when all is well (the policy's own compute time
  on this machine is not what a car would see; ``bench latency`` measures that);
- ``realtime-safety``: the same with the safety filter (:mod:`drivevla.runtime.safety`:
  speed, lateral, acceleration and jerk limits on the plan's speeds, AEB from the forward
  radar, the instruction gate).

``--faults`` (:class:`FaultSpec`) wraps the policy and the driver in the fault injectors;
``--clock wall`` puts the runner on real time and paces the simulator (:class:`WallPacer`).
The route record's ``metrics.runtime`` holds the runner's :class:`RuntimeStats` (None
without the runtime) with the false AEB activations, ``metrics.faults`` the faults injected;
the summary adds them over the routes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from drivevla.agents.agent import Agent
from drivevla.agents.rollout import Episode, Hook
from drivevla.core.policy import Policy
from drivevla.core.types import RadarReading
from drivevla.perception.radar import forward_radar
from drivevla.runtime.blocking import BlockingAgent
from drivevla.runtime.clock import MonotonicClock, SimulatedClock
from drivevla.runtime.fault_spec import FaultSpec
from drivevla.runtime.faults import FaultyPolicy
from drivevla.runtime.runner import RealtimeConfig, RealtimeRunner
from drivevla.runtime.safety import Aeb, SafetyConfig
from drivevla.runtime.sensor_faults import FaultySensors

RUNTIMES = ("none", "realtime", "realtime-safety")
CLOCKS = ("simulated", "wall")


def check_runtime(runtime: Any, clock: Any = "simulated") -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime={runtime!r}; use one of {', '.join(RUNTIMES)}")
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r}; use one of {', '.join(CLOCKS)}")


def make_driver(policy: Policy, runtime: str, faults: FaultSpec | None = None,
                control_dt_s: float = 0.1, clock: str = "simulated") -> Any:
    """The route's driver for ``policy`` under ``runtime`` (see the module docstring), with
    ``faults`` injected: policy faults by a :class:`FaultyPolicy` on the driver's simulated
    clock, sensor faults by :class:`FaultySensors` around the driver. Without the runtime, a
    policy with injected latency runs in a :class:`BlockingAgent` (the world moves on while
    it is late). ``clock``: ``simulated`` (deterministic) or ``wall`` (real time: injected
    latency sleeps, the policy's own compute counts, late ticks are measured)."""
    check_runtime(runtime, clock)
    faults = faults or FaultSpec()
    timer = SimulatedClock() if clock == "simulated" else MonotonicClock()
    if faults.policy.active:
        policy = FaultyPolicy(policy, faults.policy, timer)
    elif isinstance(policy, FaultyPolicy):  # e.g. from a registered factory
        policy.clock = timer
    driver: Any
    if runtime.startswith("realtime"):
        safety = SafetyConfig() if runtime == "realtime-safety" else None
        driver = RealtimeRunner(policy, clock=timer,
                                config=RealtimeConfig(control_dt_s=control_dt_s, safety=safety))
    elif isinstance(policy, FaultyPolicy) and policy.faults.latency_share > 0:
        driver = BlockingAgent(policy, timer, control_dt_s)
    else:
        driver = Agent(policy)
    if faults.sensors.active:
        driver = FaultySensors(driver, faults.sensors, control_dt_s)
    return driver


class WallPacer(Hook):
    """On the wall clock, the simulator runs in real time: each tick starts no earlier than
    ``dt_s`` after the one before (as a car's sensors deliver frames), so a policy that is
    late by 300 ms misses three control ticks, not the hundreds a simulator faster than real
    time would step meanwhile. A tick that already took longer starts at once."""

    def __init__(self, dt_s: float) -> None:
        self.dt_s = float(dt_s)
        self._next: float | None = None

    def on_reset(self, env: Any, driver: Any, info: dict[str, Any]) -> None:
        self._next = None

    def before_tick(self, tick: Any) -> None:
        now = time.monotonic()
        if self._next is not None and now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next or now) + self.dt_s


def unwrap(driver: Any) -> Any:
    """The driver inside a :class:`FaultySensors` (itself otherwise)."""
    return driver.driver if isinstance(driver, FaultySensors) else driver


class RuntimeRecord(Hook):
    """The runtime's and the fault injection's accounting of a route: at the end, the
    runner's stats into ``trace.runtime`` (its worker threads stopped) and the faults
    injected into ``trace.faults``; on every AEB activation, whether the noise-free radar on
    the true world state confirms a threat (:func:`aeb_confirmed`), so that false
    activations are counted against ground truth."""

    def __init__(self, trace: Any) -> None:
        self.trace = trace
        self.env: Any = None
        self.false_aeb = 0
        self._aeb_was = False

    def on_reset(self, env: Any, driver: Any, info: dict[str, Any]) -> None:
        self.env, self.false_aeb, self._aeb_was = env, 0, False

    def after_decision(self, tick: Any) -> None:
        status = getattr(tick.decision, "runtime", None)
        aeb = bool(status is not None and status.aeb)
        if aeb and not self._aeb_was and self.env is not None:
            truth = forward_radar(self.env.world.snapshot(), self.env.radar_spec)
            self.false_aeb += not aeb_confirmed(truth, tick.observation.ego.speed_mps)
        self._aeb_was = aeb

    def on_end(self, episode: Episode) -> None:
        wrapper, driver = episode.driver, unwrap(episode.driver)
        if isinstance(driver, RealtimeRunner):
            self.trace.runtime = dict(driver.stats.to_dict(), aeb_false_activations=self.false_aeb)
            driver.close()
        injected: Counter[str] = Counter()
        policy = getattr(driver, "policy", None)
        if isinstance(policy, FaultyPolicy):
            injected.update(kind for record in policy.injected for kind in record.kinds)
        if isinstance(wrapper, FaultySensors):
            injected.update({k: v for k, v in wrapper.injector.counts.items() if v})
        if isinstance(driver, BlockingAgent):
            injected["blocked_ticks"] = driver.late_ticks
        faulted = isinstance(policy, FaultyPolicy) or wrapper is not driver
        self.trace.faults = dict(injected) if faulted else None


def aeb_confirmed(truth: RadarReading | None, speed_mps: float,
                  config: SafetyConfig | None = None) -> bool:
    """Whether the true (noise-free) radar reading shows a threat to an AEB of ``config``
    with a margin: twice its time to collision and minimum range, its corridor 0.5 m wider;
    an object in that corridor closer than that range confirms braking at any speed (an ego
    standing against a car it hit is not braking for nothing). An activation this does not
    confirm braked with nothing ahead (a false activation)."""
    cfg = config or SafetyConfig()
    relaxed = SafetyConfig(ttc_s=2 * cfg.ttc_s, min_range_m=2 * cfg.min_range_m,
                           corridor_m=cfg.corridor_m + 0.5)
    if (truth is not None and truth.range_m < relaxed.min_range_m
            and abs(truth.range_m * math.sin(truth.bearing_rad)) <= relaxed.corridor_m):
        return True
    return Aeb(relaxed).threat(truth, speed_mps)


def runtime_summary(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Ticks, fallback / stop / late / AEB / speed-limited ticks, AEB activations and causes
    summed over the routes' records
    (None when no route ran under the runtime)."""
    stats = [r["metrics"].get("runtime") for r in records if r.get("metrics")]
    stats = [s for s in stats if s]
    if not stats:
        return None
    total: dict[str, Any] = {"routes": len(stats), "causes": {}}
    for key in ("ticks", "fallback_ticks", "fallback_entries", "stop_ticks", "late_ticks",
                "aeb_ticks", "aeb_activations", "aeb_false_activations", "speed_limited_ticks",
                "refused_instruction_ticks"):
        total[key] = sum(int(s.get(key, 0)) for s in stats)  # older records lack the AEB
    for s in stats:
        for cause, n in s["causes"].items():
            total["causes"][cause] = total["causes"].get(cause, 0) + int(n)
    total["fallback_share"] = total["fallback_ticks"] / total["ticks"] if total["ticks"] else None
    total["max_tick_ms"] = max(float(s["max_tick_ms"]) for s in stats)
    return total


def faults_summary(records: list[dict[str, Any]]) -> dict[str, int] | None:
    """The faults injected, by kind, summed over the routes' records (None without any)."""
    counts = [r["metrics"].get("faults") for r in records if r.get("metrics")]
    counts = [c for c in counts if c is not None]
    if not counts:
        return None
    total: Counter[str] = Counter()
    for c in counts:
        total.update({kind: int(n) for kind, n in c.items()})
    return dict(sorted(total.items()))
