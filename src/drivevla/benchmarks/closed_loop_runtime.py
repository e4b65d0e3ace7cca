"""``eval closed-loop --runtime``: which driver runs the policy on each route, and the
runtime's accounting in the route record and the summary.

- ``none`` (default): the plain :class:`~drivevla.agents.agent.Agent`, as before;
- ``realtime``: the :class:`~drivevla.runtime.runner.RealtimeRunner` (deadline watchdog,
  hold / stop fallback) on a :class:`~drivevla.runtime.clock.SimulatedClock`: the simulator
  waits for the policy and only simulated latency counts against the deadline, so a run is
  reproducible and the runtime costs nothing when all is well (the policy's own compute time
  on this machine is not what a car would see; ``bench latency`` measures that);
- ``realtime-safety``: the same with the safety filter (:mod:`drivevla.runtime.safety`:
  feasibility limits on the plan's speeds, AEB from the forward radar).

The route record's ``metrics.runtime`` holds the runner's :class:`RuntimeStats` (None
without the runtime); the summary's ``runtime`` adds them over the routes.
"""

from __future__ import annotations

from typing import Any

from drivevla.agents.agent import Agent
from drivevla.agents.rollout import Episode, Hook
from drivevla.core.policy import Policy
from drivevla.runtime.clock import SimulatedClock
from drivevla.runtime.faults import FaultyPolicy
from drivevla.runtime.runner import RealtimeConfig, RealtimeRunner
from drivevla.runtime.safety import SafetyConfig

RUNTIMES = ("none", "realtime", "realtime-safety")


def check_runtime(runtime: Any) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime={runtime!r}; use one of {', '.join(RUNTIMES)}")


def make_driver(policy: Policy, runtime: str) -> Agent:
    """The route's driver for ``policy`` under ``runtime`` (see the module docstring). A
    :class:`FaultyPolicy` (e.g. from a registered factory) injects its latency on the
    runner's simulated clock."""
    check_runtime(runtime)
    if runtime.startswith("realtime"):
        clock = SimulatedClock()
        if isinstance(policy, FaultyPolicy):
            policy.clock = clock
        safety = SafetyConfig() if runtime == "realtime-safety" else None
        return RealtimeRunner(policy, clock=clock, config=RealtimeConfig(safety=safety))
    return Agent(policy)


class RuntimeRecord(Hook):
    """At the end of a route: the runner's accounting into ``trace.runtime``; its worker
    threads stopped."""

    def __init__(self, trace: Any) -> None:
        self.trace = trace

    def on_end(self, episode: Episode) -> None:
        driver = episode.driver
        if isinstance(driver, RealtimeRunner):
            self.trace.runtime = driver.stats.to_dict()
            driver.close()


def runtime_summary(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Ticks, fallback / stop / late / AEB / speed-limited ticks, AEB activations and causes
    summed over the routes' records
    (None when no route ran under the runtime)."""
    stats = [r["metrics"].get("runtime") for r in records if r.get("metrics")]
    stats = [s for s in stats if s]
    if not stats:
        return None
    total: dict[str, Any] = {"routes": len(stats), "causes": {}}
    for key in ("ticks", "fallback_ticks", "stop_ticks", "late_ticks", "aeb_ticks",
                "aeb_activations", "speed_limited_ticks"):
        total[key] = sum(int(s.get(key, 0)) for s in stats)  # older records lack the AEB
    for s in stats:
        for cause, n in s["causes"].items():
            total["causes"][cause] = total["causes"].get(cause, 0) + int(n)
    total["fallback_share"] = total["fallback_ticks"] / total["ticks"] if total["ticks"] else None
    total["max_tick_ms"] = max(float(s["max_tick_ms"]) for s in stats)
    return total
